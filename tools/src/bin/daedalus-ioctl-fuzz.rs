// SPDX-License-Identifier: GPL-2.0
//! `daedalus-ioctl-fuzz SEED SECONDS [VIDEO MEDIA]`: the device-side fuzzer of issue 14, a client
//! that drives the decoder's V4L2 / media request interface with seeded random sequences
//! (tests/vm/ioctl-fuzz.sh runs it with the real daemon attached). Up to four contexts at once;
//! each step picks one and does something a client may or may not do:
//!
//! * formats: OUTPUT codecs and fourccs that are not, sizes from 0 to 9000 x 5000, `sizeimage`
//!   from 0 to 1 GiB and any; CAPTURE NV12 / P010 / others, at any time (also streaming);
//! * buffers: `REQBUFS` / `CREATE_BUFS` of MMAP, DMABUF, USERPTR and unknown memory, 0..1000
//!   buffers, freed while queued; `EXPBUF` (kept past the buffers' `REQBUFS(0)`) and mmap of any
//!   index;
//! * controls: every stateless control of the three codecs set to random bytes, at the current
//!   value or in a request, now and then with the payload of another control (wrong sizes); AV1
//!   tile entries up to twice the array's dimension;
//! * requests: OUTPUT buffers of random bytes (a "bitstream") queued into requests with random
//!   sizes, timestamps and `HOLD_CAPTURE_BUF`, requests queued twice, re-initialised while
//!   queued, closed while queued; `QBUF` of CAPTURE buffers, `STREAMON` / `STREAMOFF` of either
//!   queue at any time, non-blocking `DQBUF`; contexts closed with everything in flight.
//!
//! * `setup`: now and then a sane configuration (a codec, formats, buffers, CAPTURE queued, both
//!   queues streaming), and requests carrying the codec's controls at their defaults with a few
//!   random bytes changed, so that requests pass the module's checks and reach the daemon.
//!
//! Errors are the expected answers; what must not happen is the kernel's to show (no oops, WARN,
//! lockdep report: the VM test's dmesg check) or a call that does not return: a watchdog thread
//! ends the process with `FAIL: ... stuck` if one step takes longer than 30 s. The summary line
//! counts steps and successful calls per action. Exit 0 unless a step got stuck.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use daedalus_client::discover::{find_media_device, find_video_devices};
use daedalus_client::media::{MediaDevice, Request};
use daedalus_client::sys::*;
use daedalus_client::v4l2::{CtrlPayload, QueueBuf, VideoDevice, Which};
use daedalus_codecs::pod::{self, Pod};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const OUT: u32 = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;
const CAP: u32 = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;

/// The actions, for the watchdog's message and the summary.
const ACTIONS: [&str; 13] = [
    "open",
    "setup",
    "close",
    "s_fmt",
    "reqbufs",
    "create_bufs",
    "export_map",
    "controls",
    "request",
    "qbuf_capture",
    "stream",
    "dqbuf",
    "requeue",
];

/// One open context: its video and media nodes, its requests and exported buffers.
struct Context {
    /// The OUTPUT fourcc last set (the codec whose controls requests carry).
    codec: u32,
    video: VideoDevice,
    media: MediaDevice,
    requests: Vec<Request>,
    exported: Vec<OwnedFd>,
}

/// Random bytes as a value of `T` (any bytes are one: `Pod`).
fn random_pod<T: Pod>(rng: &mut StdRng) -> T {
    let mut bytes = vec![0u8; std::mem::size_of::<T>()];
    rng.fill(&mut bytes[..]);
    pod::read(&bytes).unwrap_or_default()
}

fn pick<T: Copy>(rng: &mut StdRng, items: &[T]) -> T {
    items[rng.gen_range(0..items.len())]
}

struct Fuzzer {
    rng: StdRng,
    video: PathBuf,
    media: PathBuf,
    contexts: Vec<Context>,
    ok: [u64; ACTIONS.len()],
    steps: [u64; ACTIONS.len()],
}

impl Fuzzer {
    /// One step of action `a` on a random context; returns whether its main call succeeded.
    fn step(&mut self, a: usize) -> bool {
        if ACTIONS[a] == "open" {
            if self.contexts.len() >= 4 {
                return false;
            }
            let (Ok(video), Ok(media)) = (
                VideoDevice::open(&self.video),
                MediaDevice::open(&self.media),
            ) else {
                return false;
            };
            self.contexts.push(Context {
                codec: V4L2_PIX_FMT_VP9_FRAME,
                video,
                media,
                requests: Vec::new(),
                exported: Vec::new(),
            });
            return true;
        }
        if self.contexts.is_empty() {
            return false;
        }
        let i = self.rng.gen_range(0..self.contexts.len());
        if ACTIONS[a] == "close" {
            // Closed with whatever it has in flight.
            drop(self.contexts.swap_remove(i));
            return true;
        }
        let rng = &mut self.rng;
        let c = &mut self.contexts[i];
        match ACTIONS[a] {
            "setup" => {
                // A sane configuration, so that requests reach the daemon: a codec, formats,
                // buffers, every CAPTURE buffer queued, both queues streaming.
                c.codec = pick(
                    rng,
                    &[
                        V4L2_PIX_FMT_VP9_FRAME,
                        V4L2_PIX_FMT_AV1_FRAME,
                        V4L2_PIX_FMT_H264_SLICE,
                    ],
                );
                let (w, h) = (rng.gen_range(16..=1920), rng.gen_range(16..=1088));
                let capture = pick(rng, &[V4L2_PIX_FMT_NV12, V4L2_PIX_FMT_P010]);
                let ok = c.video.set_coded_format(OUT, c.codec, w, h, 0).is_ok()
                    && c.video.set_format(CAP, capture, w, h).is_ok()
                    && c.video.request_buffers(OUT, V4L2_MEMORY_MMAP, 4).is_ok()
                    && c.video.request_buffers(CAP, V4L2_MEMORY_MMAP, 6).is_ok();
                for index in 0..6 {
                    let qb = QueueBuf::capture(index);
                    let _ = c.video.queue_buffer(&qb);
                }
                ok && c.video.stream_on(OUT).is_ok() && c.video.stream_on(CAP).is_ok()
            }
            "s_fmt" => {
                let (w, h) = (rng.gen_range(0..9000), rng.gen_range(0..5000));
                if rng.gen() {
                    let other = rng.gen();
                    let fourcc = pick(
                        rng,
                        &[
                            V4L2_PIX_FMT_VP9_FRAME,
                            V4L2_PIX_FMT_AV1_FRAME,
                            V4L2_PIX_FMT_H264_SLICE,
                            V4L2_PIX_FMT_NV12,
                            other,
                        ],
                    );
                    let any = rng.gen();
                    let sizeimage = pick(rng, &[0, 1, 4096, 1 << 20, 1 << 30, any]);
                    c.video
                        .set_coded_format(OUT, fourcc, w, h, sizeimage)
                        .is_ok()
                } else {
                    let other = rng.gen();
                    let fourcc = pick(rng, &[V4L2_PIX_FMT_NV12, V4L2_PIX_FMT_P010, other]);
                    c.video.set_format(CAP, fourcc, w, h).is_ok()
                }
            }
            "reqbufs" => {
                let other = rng.gen();
                let ty = pick(rng, &[OUT, CAP, OUT, CAP, other]);
                let other = rng.gen();
                let memory = pick(
                    rng,
                    &[
                        V4L2_MEMORY_MMAP,
                        V4L2_MEMORY_MMAP,
                        V4L2_MEMORY_DMABUF,
                        V4L2_MEMORY_USERPTR,
                        other,
                    ],
                );
                let many = rng.gen_range(0..1000);
                let count = pick(rng, &[0, 1, 2, 4, 8, 16, 32, 64, many]);
                c.video.request_buffers(ty, memory, count).is_ok()
            }
            "create_bufs" => {
                let other = rng.gen();
                let ty = pick(rng, &[OUT, CAP, other]);
                c.video.create_buffers(ty, rng.gen_range(0..40)).is_ok()
            }
            "export_map" => {
                let ty = pick(rng, &[OUT, CAP]);
                let index = rng.gen_range(0..40);
                if rng.gen() {
                    match c
                        .video
                        .export_buffer(ty, index, rng.gen_range(0..2), rng.gen())
                    {
                        Ok(fd) => {
                            // Kept a while: the buffer must outlive its queue's REQBUFS(0).
                            c.exported.push(fd);
                            if c.exported.len() > 8 {
                                c.exported.remove(0);
                            }
                            true
                        }
                        Err(_) => false,
                    }
                } else {
                    // SAFETY: the mapping is this process' own and dropped right away.
                    unsafe { c.video.map_buffer(ty, index) }.is_ok()
                }
            }
            "controls" => {
                let request = if rng.gen() { c.requests.last() } else { None };
                let which = match request {
                    Some(r) => Which::Request(r.as_fd()),
                    None => Which::Current,
                };
                set_random_control(rng, &c.video, which)
            }
            "request" => {
                let Ok(req) = c.media.alloc_request() else {
                    return false;
                };
                if rng.gen() {
                    set_random_control(rng, &c.video, Which::Request(req.as_fd()));
                } else {
                    set_codec_controls(rng, &c.video, c.codec, Which::Request(req.as_fd()));
                }
                let index = rng.gen_range(0..8);
                // A "bitstream" of random bytes in the buffer, now and then.
                if rng.gen_ratio(1, 3) {
                    // SAFETY: this process' own mapping of the buffer, written and dropped.
                    if let Ok(mut m) = unsafe { c.video.map_buffer(OUT, index) } {
                        let n = m.len().min(rng.gen_range(0..4096));
                        rng.fill(&mut m.as_mut_slice()[..n]);
                    }
                }
                let any = rng.gen();
                let qb = QueueBuf {
                    buf_type: OUT,
                    index,
                    bytesused: pick(rng, &[0, 1, 100, 4096, any]),
                    timestamp_us: rng.gen_range(0..100) * 1000,
                    request: Some(req.as_fd()),
                };
                let flags = if rng.gen_ratio(1, 3) {
                    V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF
                } else {
                    0
                };
                let queued = c.video.queue_buffer_with_flags(&qb, flags).is_ok();
                let ok = req.queue().is_ok();
                c.requests.push(req);
                if c.requests.len() > 16 {
                    // Closed, maybe while still queued.
                    c.requests.remove(0);
                }
                queued && ok
            }
            "qbuf_capture" => {
                let qb = QueueBuf::capture(rng.gen_range(0..40));
                c.video.queue_buffer(&qb).is_ok()
            }
            "stream" => {
                let ty = pick(rng, &[OUT, CAP]);
                if rng.gen() {
                    c.video.stream_on(ty).is_ok()
                } else {
                    c.video.stream_off(ty).is_ok()
                }
            }
            "dqbuf" => {
                let ok = c.video.dequeue(pick(rng, &[OUT, CAP])).is_ok();
                if let Some(r) = c.requests.first() {
                    let _ = r.wait(Duration::ZERO);
                }
                ok
            }
            _ => {
                // A request queued again, or re-initialised, whatever its state.
                let Some(r) = c.requests.last() else {
                    return false;
                };
                if rng.gen() {
                    r.queue().is_ok()
                } else {
                    r.reinit().is_ok()
                }
            }
        }
    }
}

/// Sets one stateless control to random bytes (now and then another control's payload).
fn set_random_control(rng: &mut StdRng, video: &VideoDevice, which: Which<'_>) -> bool {
    macro_rules! set {
        ($id:expr, $ty:ty) => {{
            let mut v: $ty = random_pod(rng);
            video
                .set_ext_ctrls(which, &mut [CtrlPayload::new($id, &mut v)])
                .is_ok()
        }};
    }
    let id = pick(
        rng,
        &[
            V4L2_CID_STATELESS_VP9_FRAME,
            V4L2_CID_STATELESS_VP9_COMPRESSED_HDR,
            V4L2_CID_STATELESS_H264_SPS,
            V4L2_CID_STATELESS_H264_PPS,
            V4L2_CID_STATELESS_H264_SCALING_MATRIX,
            V4L2_CID_STATELESS_H264_DECODE_PARAMS,
            V4L2_CID_STATELESS_H264_SLICE_PARAMS,
            V4L2_CID_STATELESS_H264_PRED_WEIGHTS,
            V4L2_CID_STATELESS_AV1_SEQUENCE,
            V4L2_CID_STATELESS_AV1_FRAME,
            V4L2_CID_STATELESS_AV1_FILM_GRAIN,
            V4L2_CID_STATELESS_AV1_TILE_GROUP_ENTRY,
        ],
    );
    // The payload's type: the control's own, or now and then another's (a wrong size).
    let payload = if rng.gen_ratio(1, 8) {
        pick(
            rng,
            &[
                V4L2_CID_STATELESS_VP9_FRAME,
                V4L2_CID_STATELESS_H264_SPS,
                V4L2_CID_STATELESS_AV1_FRAME,
            ],
        )
    } else {
        id
    };
    match payload {
        V4L2_CID_STATELESS_VP9_FRAME => set!(id, v4l2_ctrl_vp9_frame),
        V4L2_CID_STATELESS_VP9_COMPRESSED_HDR => set!(id, v4l2_ctrl_vp9_compressed_hdr),
        V4L2_CID_STATELESS_H264_SPS => set!(id, v4l2_ctrl_h264_sps),
        V4L2_CID_STATELESS_H264_PPS => set!(id, v4l2_ctrl_h264_pps),
        V4L2_CID_STATELESS_H264_SCALING_MATRIX => set!(id, v4l2_ctrl_h264_scaling_matrix),
        V4L2_CID_STATELESS_H264_DECODE_PARAMS => set!(id, v4l2_ctrl_h264_decode_params),
        V4L2_CID_STATELESS_H264_SLICE_PARAMS => set!(id, v4l2_ctrl_h264_slice_params),
        V4L2_CID_STATELESS_H264_PRED_WEIGHTS => set!(id, v4l2_ctrl_h264_pred_weights),
        V4L2_CID_STATELESS_AV1_SEQUENCE => set!(id, v4l2_ctrl_av1_sequence),
        V4L2_CID_STATELESS_AV1_FRAME => set!(id, v4l2_ctrl_av1_frame),
        V4L2_CID_STATELESS_AV1_FILM_GRAIN => set!(id, v4l2_ctrl_av1_film_grain),
        _ => {
            // Up to twice the array's dimension.
            let n = rng.gen_range(1..=2 * V4L2_AV1_MAX_TILE_COUNT as usize);
            let mut tiles: Vec<v4l2_ctrl_av1_tile_group_entry> =
                (0..n).map(|_| random_pod(rng)).collect();
            video
                .set_ext_ctrls(which, &mut [CtrlPayload::array(id, &mut tiles)])
                .is_ok()
        }
    }
}

/// A control value close enough to valid to pass the module's checks now and then and reach
/// the daemon, with a few random bytes changed: half the time the device's default
/// (`G_EXT_CTRLS` with `V4L2_CTRL_WHICH_DEF_VAL`), else zeroed (the uAPI's reset state).
///
/// The device's default once made lockdep report a circular dependency (the handler's lock ->
/// `mm->mmap_lock` in that call, -> vb2's `q->mmap_lock` in mmap, -> the handler's lock when
/// `REQBUFS` cancelled queued requests); the module now cancels them before `REQBUFS` takes
/// `q->mmap_lock` (docs/fuzzing.md), and this keeps the three paths exercised together.
fn mutated<T: ControlPayload>(rng: &mut StdRng, video: &VideoDevice, id: u32) -> T {
    let value: T = if rng.gen_bool(0.5) {
        video.default_payload(id).unwrap_or_default()
    } else {
        T::default()
    };
    let mut bytes = pod::bytes(&value).to_vec();
    for _ in 0..rng.gen_range(0..4) {
        let i = rng.gen_range(0..bytes.len());
        bytes[i] = rng.gen();
    }
    pod::read(&bytes).unwrap_or(value)
}

/// Sets the controls a request of `codec` needs, each its default with a few random bytes.
fn set_codec_controls(rng: &mut StdRng, video: &VideoDevice, codec: u32, which: Which<'_>) -> bool {
    match codec {
        V4L2_PIX_FMT_H264_SLICE => {
            let mut sps: v4l2_ctrl_h264_sps = mutated(rng, video, V4L2_CID_STATELESS_H264_SPS);
            let mut pps: v4l2_ctrl_h264_pps = mutated(rng, video, V4L2_CID_STATELESS_H264_PPS);
            let mut dp: v4l2_ctrl_h264_decode_params =
                mutated(rng, video, V4L2_CID_STATELESS_H264_DECODE_PARAMS);
            video
                .set_ext_ctrls(
                    which,
                    &mut [
                        CtrlPayload::new(V4L2_CID_STATELESS_H264_SPS, &mut sps),
                        CtrlPayload::new(V4L2_CID_STATELESS_H264_PPS, &mut pps),
                        CtrlPayload::new(V4L2_CID_STATELESS_H264_DECODE_PARAMS, &mut dp),
                    ],
                )
                .is_ok()
        }
        V4L2_PIX_FMT_AV1_FRAME => {
            let mut seq: v4l2_ctrl_av1_sequence =
                mutated(rng, video, V4L2_CID_STATELESS_AV1_SEQUENCE);
            let mut frame: v4l2_ctrl_av1_frame = mutated(rng, video, V4L2_CID_STATELESS_AV1_FRAME);
            let mut tiles = [v4l2_ctrl_av1_tile_group_entry {
                tile_offset: 0,
                tile_size: rng.gen_range(0..4096),
                ..Default::default()
            }];
            video
                .set_ext_ctrls(
                    which,
                    &mut [
                        CtrlPayload::new(V4L2_CID_STATELESS_AV1_SEQUENCE, &mut seq),
                        CtrlPayload::new(V4L2_CID_STATELESS_AV1_FRAME, &mut frame),
                        CtrlPayload::array(V4L2_CID_STATELESS_AV1_TILE_GROUP_ENTRY, &mut tiles),
                    ],
                )
                .is_ok()
        }
        _ => {
            let mut frame: v4l2_ctrl_vp9_frame = mutated(rng, video, V4L2_CID_STATELESS_VP9_FRAME);
            let mut hdr: v4l2_ctrl_vp9_compressed_hdr =
                mutated(rng, video, V4L2_CID_STATELESS_VP9_COMPRESSED_HDR);
            video
                .set_ext_ctrls(
                    which,
                    &mut [
                        CtrlPayload::new(V4L2_CID_STATELESS_VP9_FRAME, &mut frame),
                        CtrlPayload::new(V4L2_CID_STATELESS_VP9_COMPRESSED_HDR, &mut hdr),
                    ],
                )
                .is_ok()
        }
    }
}

/// The first daedalus video node and its media node.
fn find_decoder() -> Result<(PathBuf, PathBuf), String> {
    let video = find_video_devices(Some("daedalus"))
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
        .ok_or("no /dev/video* of driver daedalus")?;
    let (media, _) = find_media_device(&video.cap.bus_info)
        .map_err(|e| e.to_string())?
        .ok_or("no media node for it")?;
    Ok((video.path, media))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(seed), Some(seconds)) = (
        args.first().and_then(|s| s.parse::<u64>().ok()),
        args.get(1).and_then(|s| s.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: daedalus-ioctl-fuzz SEED SECONDS [VIDEO MEDIA]");
        return ExitCode::from(2);
    };
    let (video, media) = match (args.get(2), args.get(3)) {
        (Some(v), Some(m)) => (PathBuf::from(v), PathBuf::from(m)),
        _ => match find_decoder() {
            Ok(found) => found,
            Err(e) => {
                eprintln!("daedalus-ioctl-fuzz: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    // The watchdog: a step that does not return within 30 s is a hang.
    let progress = Arc::new(AtomicU64::new(0));
    let current = Arc::new(AtomicUsize::new(0));
    {
        let (progress, current) = (Arc::clone(&progress), Arc::clone(&current));
        std::thread::spawn(move || {
            let mut last = (u64::MAX, Instant::now());
            loop {
                std::thread::sleep(Duration::from_secs(1));
                let now = progress.load(Ordering::SeqCst);
                if now != last.0 {
                    last = (now, Instant::now());
                } else if last.1.elapsed() > Duration::from_secs(30) {
                    let action = ACTIONS[current.load(Ordering::SeqCst)];
                    println!("ioctl_fuzz: FAIL: step {now} ({action}) stuck for 30 s");
                    std::process::exit(1);
                }
            }
        });
    }
    let mut f = Fuzzer {
        rng: StdRng::seed_from_u64(seed),
        video,
        media,
        contexts: Vec::new(),
        ok: [0; ACTIONS.len()],
        steps: [0; ACTIONS.len()],
    };
    println!(
        "ioctl_fuzz: seed {seed}, {seconds} s on {} / {}",
        f.video.display(),
        f.media.display()
    );
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut n = 0u64;
    while Instant::now() < end {
        let a = f.rng.gen_range(0..ACTIONS.len());
        current.store(a, Ordering::SeqCst);
        f.steps[a] += 1;
        if f.step(a) {
            f.ok[a] += 1;
        }
        n += 1;
        progress.store(n, Ordering::SeqCst);
    }
    f.contexts.clear();
    let summary: Vec<String> = ACTIONS
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{a} {}/{}", f.ok[i], f.steps[i]))
        .collect();
    println!(
        "ioctl_fuzz: {n} steps (succeeded/tried): {}",
        summary.join(", ")
    );
    ExitCode::SUCCESS
}
