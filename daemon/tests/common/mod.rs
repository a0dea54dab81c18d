// SPDX-License-Identifier: GPL-2.0
//! Test support: a stateless VP9 client emulated in-process.
//!
//! It reads IVF files, splits superframes, parses what a stateless client parses from each
//! frame's uncompressed header (independently of the daemon's own parser), puts each frame in a
//! memfd standing in for an OUTPUT dma-buf, sends jobs built with `wire::JobEncoder` (with a
//! VP9 frame control), then reads the CAPTURE memfd back and records the MD5 of every
//! *displayed* frame: shown frames, plus `show_existing_frame` re-outputs of a reference slot,
//! which in the stateless model the client produces from the picture it kept for that slot.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Mutex;

use cros_codecs::codec::h264::parser::{Nalu, NaluType, Parser as H264Parser};
use daedalus_codecs::h264::controls::{pps_control, scaling_matrix_control, sps_control};
use daedalus_codecs::pod;
use daedalus_codecs::uapi;
use daedalus_codecs::vp9::header::FrameStart;
use daedalus_daemon::codec::vp9::FrameControl;
use daedalus_daemon::{Context, Incoming, Transport};
use daedalus_proto::formats::{coded_sizeimage, BitDepth, CaptureLayout, Codec};
use daedalus_proto::wire::{
    self, BufferDesc, Completion, ContextEvent, JobEncoder, JobHeader, Message, PictureFormat,
    Status, MAX_MESSAGE_SIZE,
};
use md5::{Digest, Md5};

/// `V4L2_VP9_FRAME_FLAG_*` (videodev2 / v4l2-controls.h).
pub const FLAG_KEY_FRAME: u32 = 0x001;
/// Frame is shown.
pub const FLAG_SHOW_FRAME: u32 = 0x002;
/// Error resilient mode.
pub const FLAG_ERROR_RESILIENT: u32 = 0x004;
/// Intra-only frame.
pub const FLAG_INTRA_ONLY: u32 = 0x008;

/// Bytes FFmpeg may read past a packet (AV_INPUT_BUFFER_PADDING_SIZE).
pub const PADDING: u32 = 64;

/// Where the shared test vectors are ([`daedalus_codecs::vectors::shared_dir`]).
pub fn vectors_dir() -> Option<PathBuf> {
    daedalus_codecs::vectors::shared_dir()
}

/// The committed test data.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

// ---------------------------------------------------------------------------------------------
// Containers

/// The frames (chunks) of a VP9 IVF file.
pub fn ivf_chunks(data: &[u8]) -> Result<Vec<&[u8]>, String> {
    let (header, frames) = daedalus_codecs::ivf::frames(data).map_err(|e| e.to_string())?;
    if &header.fourcc != b"VP90" {
        return Err(format!("IVF fourcc {:?} is not VP90", header.fourcc));
    }
    Ok(frames.into_iter().map(|(_, f)| f).collect())
}

/// The frames of a chunk: a superframe (VP9 spec Annex B) is split by its index, anything else
/// is one frame.
pub fn split_superframe(chunk: &[u8]) -> Vec<&[u8]> {
    let Some(&marker) = chunk.last() else {
        return vec![];
    };
    if marker & 0xe0 == 0xc0 {
        let frames = (marker & 7) as usize + 1;
        let size_bytes = ((marker >> 3) & 3) as usize + 1;
        let index_len = 2 + size_bytes * frames;
        if chunk.len() >= index_len && chunk[chunk.len() - index_len] == marker {
            let mut sizes = &chunk[chunk.len() - index_len + 1..];
            let mut out = Vec::new();
            let mut off = 0;
            for _ in 0..frames {
                let mut size = 0usize;
                for (i, b) in sizes[..size_bytes].iter().enumerate() {
                    size |= (*b as usize) << (8 * i);
                }
                sizes = &sizes[size_bytes..];
                if off + size > chunk.len() - index_len {
                    break;
                }
                out.push(&chunk[off..off + size]);
                off += size;
            }
            return out;
        }
    }
    vec![chunk]
}

/// Every frame of an IVF file, superframes split.
pub fn ivf_frames(data: &[u8]) -> Vec<Vec<u8>> {
    ivf_chunks(data)
        .expect("IVF")
        .into_iter()
        .flat_map(split_superframe)
        .map(<[u8]>::to_vec)
        .collect()
}

/// The MD5s of a framemd5 file (`ffmpeg -f framemd5` lines, or one MD5 per line).
pub fn read_framemd5(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.rsplit(',').next().unwrap_or(l).trim().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// VP9 uncompressed header, as a stateless client parses it

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn f(&mut self, n: usize) -> u32 {
        let mut v = 0;
        for _ in 0..n {
            let byte = self.data[self.pos / 8];
            v = (v << 1) | u32::from(byte >> (7 - self.pos % 8) & 1);
            self.pos += 1;
        }
        v
    }
}

/// What the test client needs from a frame header.
#[derive(Clone, Copy, Debug)]
pub struct Header {
    pub profile: u8,
    pub show_existing: Option<usize>,
    pub key_frame: bool,
    pub show_frame: bool,
    pub intra_only: bool,
    pub error_resilient: bool,
    pub refresh: u8,
    pub bit_depth: u8,
    pub width: u32,
    pub height: u32,
}

/// Stream state a header parser needs (reference slot sizes, bit depth).
#[derive(Default)]
pub struct HeaderParser {
    slot_sizes: [(u32, u32); 8],
    bit_depth: u8,
}

impl HeaderParser {
    pub fn parse(&mut self, frame: &[u8]) -> Header {
        let mut r = Bits {
            data: frame,
            pos: 0,
        };
        assert_eq!(r.f(2), 2, "frame marker");
        let low = r.f(1);
        let high = r.f(1);
        let profile = (high << 1 | low) as u8;
        if profile == 3 {
            r.f(1);
        }
        let mut h = Header {
            profile,
            show_existing: None,
            key_frame: false,
            show_frame: true,
            intra_only: false,
            error_resilient: false,
            refresh: 0,
            bit_depth: self.bit_depth.max(8),
            width: 0,
            height: 0,
        };
        if r.f(1) == 1 {
            let idx = r.f(3) as usize;
            h.show_existing = Some(idx);
            (h.width, h.height) = self.slot_sizes[idx];
            return h;
        }
        h.key_frame = r.f(1) == 0;
        h.show_frame = r.f(1) == 1;
        h.error_resilient = r.f(1) == 1;
        let color_config = |r: &mut Bits<'_>| -> u8 {
            let depth = if profile >= 2 {
                if r.f(1) == 1 {
                    12
                } else {
                    10
                }
            } else {
                8
            };
            let cs = r.f(3);
            if cs != 7 {
                r.f(1);
                if profile == 1 || profile == 3 {
                    r.f(3);
                }
            } else if profile == 1 || profile == 3 {
                r.f(1);
            }
            depth
        };
        let frame_size = |r: &mut Bits<'_>| (r.f(16) + 1, r.f(16) + 1);
        if h.key_frame {
            assert_eq!(r.f(24), 0x49_83_42, "sync code");
            h.bit_depth = color_config(&mut r);
            (h.width, h.height) = frame_size(&mut r);
            h.refresh = 0xff;
        } else {
            h.intra_only = if h.show_frame { false } else { r.f(1) == 1 };
            if !h.error_resilient {
                r.f(2);
            }
            if h.intra_only {
                assert_eq!(r.f(24), 0x49_83_42, "sync code");
                h.bit_depth = if profile > 0 { color_config(&mut r) } else { 8 };
                h.refresh = r.f(8) as u8;
                (h.width, h.height) = frame_size(&mut r);
            } else {
                h.refresh = r.f(8) as u8;
                let mut refs = [0usize; 3];
                for r_idx in &mut refs {
                    *r_idx = r.f(3) as usize;
                    r.f(1);
                }
                let mut size = None;
                for &idx in &refs {
                    if r.f(1) == 1 {
                        size = Some(self.slot_sizes[idx]);
                        break;
                    }
                }
                (h.width, h.height) = size.unwrap_or_else(|| frame_size(&mut r));
            }
        }
        self.bit_depth = h.bit_depth;
        for i in 0..8 {
            if h.refresh & (1 << i) != 0 {
                self.slot_sizes[i] = (h.width, h.height);
            }
        }
        h
    }
}

// ---------------------------------------------------------------------------------------------
// Buffers

/// A memfd of `len` bytes.
pub fn memfd(len: usize) -> OwnedFd {
    // SAFETY: memfd_create with a NUL-terminated name; checked.
    let fd = unsafe { libc::memfd_create(c"daedalus-test".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create: {}", io::Error::last_os_error());
    // SAFETY: a new fd nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: resizes our memfd.
    assert_eq!(
        unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) },
        0
    );
    fd
}

/// A duplicate of `fd` for a job (the daemon takes it over, as it does the module's fds).
pub fn dup(fd: &OwnedFd) -> i32 {
    // SAFETY: dup of an open fd; the daemon owns the result.
    let d = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    assert!(d >= 0);
    d
}

pub fn pwrite(fd: &OwnedFd, data: &[u8], off: usize) {
    // SAFETY: writes `data` to our memfd.
    let n = unsafe { libc::pwrite(fd.as_raw_fd(), data.as_ptr().cast(), data.len(), off as i64) };
    assert_eq!(n, data.len() as isize);
}

pub fn pread(fd: &OwnedFd, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    // SAFETY: reads into `v`.
    let n = unsafe { libc::pread(fd.as_raw_fd(), v.as_mut_ptr().cast(), len, 0) };
    assert_eq!(n, len as isize);
    v
}

struct TestBuffer {
    fd: OwnedFd,
    len: u32,
    generation: u32,
    mapped: bool,
    layout: Option<PictureFormat>,
}

impl TestBuffer {
    fn desc(&mut self, index: u32, bytesused: u32, data_offset: u32) -> BufferDesc {
        let fd = if self.mapped { -1 } else { dup(&self.fd) };
        self.mapped = true;
        BufferDesc {
            fd,
            index,
            generation: self.generation,
            length: self.len,
            bytesused,
            data_offset,
        }
    }
}

/// A pool of buffers used round robin, reallocated when a job needs another size.
struct BufferPool {
    bufs: Vec<Option<TestBuffer>>,
    next: usize,
    generation: u32,
}

impl BufferPool {
    fn new(n: usize) -> Self {
        BufferPool {
            bufs: (0..n).map(|_| None).collect(),
            next: 0,
            generation: 0,
        }
    }

    /// The next buffer, (re)allocated unless `fits` accepts it.
    fn next(
        &mut self,
        len: u32,
        layout: Option<PictureFormat>,
        fits: impl Fn(&TestBuffer) -> bool,
    ) -> (u32, &mut TestBuffer) {
        let i = self.next;
        self.next = (self.next + 1) % self.bufs.len();
        let slot = &mut self.bufs[i];
        if !slot.as_ref().is_some_and(&fits) {
            self.generation += 1;
            *slot = Some(TestBuffer {
                fd: memfd(len as usize),
                len,
                generation: self.generation,
                mapped: false,
                layout,
            });
        }
        (i as u32, slot.as_mut().unwrap())
    }
}

// ---------------------------------------------------------------------------------------------
// The client

/// How the client sizes its CAPTURE buffers.
#[derive(Clone, Copy, Debug)]
pub enum CaptureSizing {
    /// Each job gets a buffer of its frame's size (reallocated when the size changes).
    PerFrame,
    /// All buffers have this size (the largest frame of the stream).
    Fixed(u32, u32),
}

/// Client behaviour.
#[derive(Clone, Copy, Debug)]
pub struct ClientConfig {
    pub ctx_id: u32,
    pub capture: CaptureSizing,
    /// OUTPUT buffers exactly as large as `data_offset + frame` (forces the copy path), instead
    /// of roomy ones.
    pub tight_output: bool,
    /// Bytes of garbage before the bitstream in the OUTPUT buffer.
    pub data_offset: u32,
    pub output_buffers: usize,
    pub capture_buffers: usize,
    /// Send `show_existing_frame` frames as jobs too (instead of re-outputting the slot's
    /// picture in the client, as V4L2 stateless clients do).
    pub show_existing_as_jobs: bool,
}

impl ClientConfig {
    pub fn new(ctx_id: u32) -> Self {
        ClientConfig {
            ctx_id,
            capture: CaptureSizing::PerFrame,
            tight_output: false,
            data_offset: 0,
            output_buffers: 3,
            capture_buffers: 6,
            show_existing_as_jobs: false,
        }
    }
}

/// The emulated client of one context.
pub struct Client {
    pub cfg: ClientConfig,
    job_id: u64,
    output: BufferPool,
    capture: BufferPool,
    parser: HeaderParser,
    slots: [Option<String>; 8],
    /// MD5 of every displayed frame, in display order.
    pub displayed: Vec<String>,
    /// Jobs sent.
    pub jobs: u64,
    /// Hidden frames sent.
    pub hidden: u64,
    msg: Vec<u8>,
}

/// A job ready to send, and what to do with its answer.
pub struct PendingJob {
    pub message: Vec<u8>,
    header: Header,
    capture_index: u32,
}

impl Client {
    pub fn new(cfg: ClientConfig) -> Self {
        Client {
            cfg,
            job_id: 0,
            output: BufferPool::new(cfg.output_buffers),
            capture: BufferPool::new(cfg.capture_buffers),
            parser: HeaderParser::default(),
            slots: Default::default(),
            displayed: Vec::new(),
            jobs: 0,
            hidden: 0,
            msg: vec![0u8; MAX_MESSAGE_SIZE],
        }
    }

    /// Prepares the job for `frame`, or `None` if the client handles the frame itself
    /// (`show_existing_frame`).
    pub fn prepare(&mut self, frame: &[u8]) -> Option<PendingJob> {
        let h = self.parser.parse(frame);
        if let Some(idx) = h.show_existing {
            if !self.cfg.show_existing_as_jobs {
                let md5 = self.slots[idx]
                    .clone()
                    .expect("show_existing of an empty slot");
                self.displayed.push(md5);
                return None;
            }
        }
        let depth = BitDepth::from_bits(u32::from(h.bit_depth)).expect("8 or 10 bits");
        let (cw, ch) = match self.cfg.capture {
            CaptureSizing::PerFrame => (h.width, h.height),
            CaptureSizing::Fixed(w, ht) => (w, ht),
        };
        let l = CaptureLayout::new(depth, cw, ch);
        let picture = PictureFormat::of_layout(depth, &l);
        let (capture_index, cap) = self
            .capture
            .next(l.sizeimage, Some(picture), |b| b.layout == Some(picture));
        let capture = cap.desc(capture_index, 0, 0);

        let off = self.cfg.data_offset;
        let used = off + frame.len() as u32;
        let (out_len, tight) = if self.cfg.tight_output {
            (used, true)
        } else {
            (
                coded_sizeimage(h.width, h.height, 0).max(used + PADDING),
                false,
            )
        };
        let (out_index, out) = self.output.next(out_len, None, |b| {
            if tight {
                b.len == used
            } else {
                b.len >= used + PADDING
            }
        });
        // Garbage around the bitstream: the daemon must neither read before data_offset nor
        // rely on what follows bytesused.
        pwrite(&out.fd, &vec![0xa5; off as usize], 0);
        pwrite(&out.fd, frame, off as usize);
        let tail = (out.len - used).min(256) as usize;
        pwrite(&out.fd, &vec![0xff; tail], used as usize);
        let output = out.desc(out_index, used, off);

        self.job_id += 1;
        let job = JobHeader {
            job_id: self.job_id,
            ctx_id: self.cfg.ctx_id,
            codec: Codec::Vp9,
            flags: 0,
            timestamp_ns: self.job_id * 1000,
            coded_width: h.width,
            coded_height: h.height,
            output,
            capture,
            picture,
        };
        let mut flags = 0;
        for (set, flag) in [
            (h.key_frame, FLAG_KEY_FRAME),
            (h.show_frame, FLAG_SHOW_FRAME),
            (h.error_resilient, FLAG_ERROR_RESILIENT),
            (h.intra_only, FLAG_INTRA_ONLY),
        ] {
            if set {
                flags |= flag;
            }
        }
        let ctrl = FrameControl {
            flags,
            profile: h.profile,
            bit_depth: h.bit_depth,
            width: h.width,
            height: h.height,
        };
        let mut e = JobEncoder::new(&mut self.msg, &job).expect("job header");
        let payload = e
            .control(
                daedalus_daemon::codec::vp9::CID_FRAME,
                1,
                FrameControl::SIZE,
            )
            .expect("control");
        payload.fill(0);
        assert!(ctrl.write(payload));
        let n = e.finish().expect("job");
        self.jobs += 1;
        if !h.show_frame && h.show_existing.is_none() {
            self.hidden += 1;
        }
        Some(PendingJob {
            message: self.msg[..n].to_vec(),
            header: h,
            capture_index,
        })
    }

    /// Takes the answer to a job: reads the picture, records displayed frames and slots.
    pub fn finish(&mut self, job: PendingJob, c: &Completion) {
        assert_eq!(c.status, Status::Ok, "job {} failed: {c:?}", c.job_id);
        let h = job.header;
        let cap = self.capture.bufs[job.capture_index as usize]
            .as_ref()
            .expect("capture buffer");
        let pic = cap.layout.expect("layout");
        assert_eq!(c.capture_bytesused, pic.sizeimage);
        let bytes = pread(&cap.fd, pic.sizeimage as usize);
        let md5 = planar_md5(&bytes, &pic, h.width, h.height);
        if h.show_frame {
            self.displayed.push(md5.clone());
        }
        for i in 0..8 {
            if h.refresh & (1 << i) != 0 {
                self.slots[i] = Some(md5.clone());
            }
        }
    }
}

/// MD5 of the planar yuv420p / yuv420p10le picture (cropped to `w` x `h`) in an NV12 / P010
/// CAPTURE buffer.
pub fn planar_md5(buf: &[u8], pic: &PictureFormat, w: u32, h: u32) -> String {
    window_md5(buf, pic, (0, 0), w, h)
}

/// [`planar_md5`] of the `w` x `h` window at `(left, top)` (even, as 4:2:0 cropping is).
pub fn window_md5(buf: &[u8], pic: &PictureFormat, (l, t): (u32, u32), w: u32, h: u32) -> String {
    let ten = pic.fourcc == daedalus_proto::formats::PIX_FMT_P010;
    let bps = if ten { 2 } else { 1 };
    let (l, t, w, h) = (l as usize, t as usize, w as usize, h as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let bpl = pic.bytesperline as usize;
    let mut out = Vec::with_capacity((w * h + 2 * cw * ch) * bps);
    let mut push = |off: usize| {
        if ten {
            let v = u16::from_le_bytes([buf[off], buf[off + 1]]) >> 6;
            out.extend_from_slice(&v.to_le_bytes());
        } else {
            out.push(buf[off]);
        }
    };
    for y in t..t + h {
        for x in l..l + w {
            push(y * bpl + x * bps);
        }
    }
    let c0 = pic.chroma_offset as usize;
    for plane in 0..2 {
        for y in t / 2..t / 2 + ch {
            for x in l / 2..l / 2 + cw {
                push(c0 + y * bpl + (2 * x + plane) * bps);
            }
        }
    }
    hex(&Md5::digest(&out))
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Runs `frames` through a context synchronously (the daemon's core, without threads).
pub fn run_sync(ctx: &mut Context, client: &mut Client, frames: &[Vec<u8>]) {
    for f in frames {
        if let Some(job) = client.prepare(f) {
            let Ok(Message::Job(j)) = wire::decode(&job.message) else {
                panic!("client built an invalid job")
            };
            let c = ctx.handle_job(&j);
            client.finish(job, &c);
        }
    }
}

/// A client as [`run_windowed`] drives it: frames in, jobs out, answers read.
pub trait WindowedClient {
    /// A job ready to send, and what to do with its answer.
    type Job;
    /// The job's message.
    fn message(job: &Self::Job) -> &[u8];
    /// Whether `frame` can only be prepared once every earlier job is answered.
    fn needs_answers(&self, _frame: &[u8]) -> bool {
        false
    }
    /// The job of `frame`, or `None` if the client handles the frame itself.
    fn prepare_job(&mut self, frame: &[u8]) -> Option<Self::Job>;
    /// Takes the answer to a job.
    fn finish_job(&mut self, job: Self::Job, c: &Completion);
}

impl WindowedClient for Client {
    type Job = PendingJob;

    fn message(job: &PendingJob) -> &[u8] {
        &job.message
    }

    fn needs_answers(&self, frame: &[u8]) -> bool {
        // A shown existing frame is the picture of an earlier request: the emulated client
        // reads it from that request's answer.
        FrameStart::parse(frame).is_ok_and(|h| h.show_existing_frame.is_some())
    }

    fn prepare_job(&mut self, frame: &[u8]) -> Option<PendingJob> {
        self.prepare(frame)
    }

    fn finish_job(&mut self, job: PendingJob, c: &Completion) {
        self.finish(job, c)
    }
}

/// A client keeping `window(i)` requests in flight when it queues the `i`-th frame.
pub fn run_windowed<C: WindowedClient>(
    ctx: &mut Context,
    client: &mut C,
    frames: &[Vec<u8>],
    window: impl Fn(usize) -> usize,
) {
    // Queued to the context's channel, not yet handed to the context.
    let mut queued: VecDeque<C::Job> = VecDeque::new();
    // Handed to the context, not answered yet (answers come in this order).
    let mut handed: VecDeque<C::Job> = VecDeque::new();
    let mut done = Vec::new();
    let mut next = 0;
    loop {
        while next < frames.len() && queued.len() + handed.len() < window(next).max(1) {
            let f = &frames[next];
            if client.needs_answers(f) && !(queued.is_empty() && handed.is_empty()) {
                break;
            }
            next += 1;
            if let Some(job) = client.prepare_job(f) {
                queued.push_back(job);
            }
        }
        if let Some(job) = queued.pop_front() {
            handed.push_back(job);
            let job = handed.back().expect("just pushed");
            let Ok(Message::Job(j)) = wire::decode(C::message(job)) else {
                panic!("client built an invalid job")
            };
            ctx.submit(&j, queued.len(), &mut done);
        } else if ctx.in_flight() > 0 {
            ctx.push(&mut done);
        } else if handed.is_empty() && next >= frames.len() {
            break;
        } else {
            assert!(
                handed.is_empty(),
                "the context holds no job but some are unanswered"
            );
        }
        for c in done.drain(..) {
            let job = handed
                .pop_front()
                .expect("an answer to a job never handed over");
            let Ok(Message::Job(j)) = wire::decode(C::message(&job)) else {
                unreachable!()
            };
            assert_eq!(c.job_id, j.header.job_id, "answers out of order");
            client.finish_job(job, &c);
        }
    }
    assert_eq!(ctx.in_flight(), 0);
}

// ---------------------------------------------------------------------------------------------
// Requests of the H.264 and AV1 clients

/// The buffers and job numbering of a client whose requests carry a whole bitstream and a
/// few controls: builds their messages and reads their pictures back.
pub struct Requests {
    ctx_id: u32,
    job_id: u64,
    output: BufferPool,
    capture: BufferPool,
    msg: Vec<u8>,
    /// Jobs built.
    pub jobs: u64,
}

/// A request's message and where its picture goes.
pub struct Request {
    pub message: Vec<u8>,
    capture_index: u32,
}

impl Requests {
    pub fn new(ctx_id: u32, buffers: usize) -> Self {
        Requests {
            ctx_id,
            job_id: 0,
            output: BufferPool::new(buffers),
            capture: BufferPool::new(buffers),
            msg: vec![0u8; MAX_MESSAGE_SIZE],
            jobs: 0,
        }
    }

    /// The request of `codec` decoding `bitstream` into a `depth` picture of `w` x `h`, with
    /// the controls `controls` writes (through `put`).
    pub fn build(
        &mut self,
        codec: Codec,
        depth: BitDepth,
        (w, h): (u32, u32),
        bitstream: &[u8],
        controls: impl FnOnce(&mut JobEncoder<'_>),
    ) -> Request {
        let l = CaptureLayout::new(depth, w, h);
        let picture = PictureFormat::of_layout(depth, &l);
        let (capture_index, cap) = self
            .capture
            .next(l.sizeimage, Some(picture), |b| b.layout == Some(picture));
        let capture = cap.desc(capture_index, 0, 0);
        let used = bitstream.len() as u32;
        let (out_index, out) = self
            .output
            .next(used + PADDING + 1024, None, |b| b.len >= used + PADDING);
        pwrite(&out.fd, bitstream, 0);
        let output = out.desc(out_index, used, 0);
        self.job_id += 1;
        let job = JobHeader {
            job_id: self.job_id,
            ctx_id: self.ctx_id,
            codec,
            flags: 0,
            timestamp_ns: self.job_id * 1000,
            coded_width: w,
            coded_height: h,
            output,
            capture,
            picture,
        };
        let mut e = JobEncoder::new(&mut self.msg, &job).expect("job header");
        controls(&mut e);
        let n = e.finish().expect("job");
        self.jobs += 1;
        Request {
            message: self.msg[..n].to_vec(),
            capture_index,
        }
    }

    /// The MD5 of the `(left, top, width, height)` window of the request's picture, or its
    /// status if it failed (counted by the context's statistics, which the tests check).
    pub fn picture_md5(
        &self,
        r: &Request,
        c: &Completion,
        (l, t, w, h): (u32, u32, u32, u32),
    ) -> String {
        if c.status != Status::Ok {
            return format!("{:?}", c.status);
        }
        let cap = self.capture.bufs[r.capture_index as usize]
            .as_ref()
            .expect("capture buffer");
        let pic = cap.layout.expect("layout");
        let bytes = pread(&cap.fd, pic.sizeimage as usize);
        window_md5(&bytes, &pic, (l, t), w, h)
    }
}

/// Writes control `id` with the value `v` into a job.
pub fn put<T: pod::Pod>(e: &mut JobEncoder<'_>, id: u32, v: &T) {
    let b = pod::bytes(v);
    e.control(id, 1, b.len())
        .expect("control")
        .copy_from_slice(b);
}

// ---------------------------------------------------------------------------------------------
// An H.264 client

/// The access units of an Annex-B H.264 stream, each with the parameter sets and other NAL
/// units before its first slice (a picture starts at a slice with `first_mb_in_slice` 0).
pub fn h264_access_units(data: &[u8]) -> Vec<Vec<u8>> {
    let mut cursor = io::Cursor::new(data);
    let mut aus: Vec<Vec<u8>> = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let mut current_has_slice = false;
    while let Ok(nalu) = Nalu::next(&mut cursor) {
        let nal: &[u8] = nalu.as_ref();
        let slice = matches!(nalu.header.type_, NaluType::Slice | NaluType::SliceIdr);
        // first_mb_in_slice is the first ue(v) of the header: 0 is the single bit 1.
        let starts_picture = slice && nal.get(1).is_some_and(|b| b & 0x80 != 0);
        if (starts_picture || !slice) && current_has_slice {
            aus.push(std::mem::take(&mut current));
            current_has_slice = false;
        }
        current.extend_from_slice(&[0, 0, 0, 1]);
        current.extend_from_slice(nal);
        current_has_slice |= slice;
    }
    if current_has_slice {
        aus.push(current);
    }
    aus
}

/// A job of [`H264Client`].
pub struct H264Job {
    request: Request,
    /// Left, top, width, height of the displayed window (SPS cropping).
    crop: (u32, u32, u32, u32),
}

/// A frame-based, Annex-B H.264 client (one access unit per request, the parameter sets as
/// controls): records the MD5 of every request's picture, in decode order.
pub struct H264Client {
    requests: Requests,
    parser: H264Parser,
    /// MD5 of every job's picture (cropped; a failed job's status), in job order.
    pub pictures: Vec<String>,
}

impl H264Client {
    pub fn new(ctx_id: u32, buffers: usize) -> Self {
        H264Client {
            requests: Requests::new(ctx_id, buffers),
            parser: H264Parser::default(),
            pictures: Vec::new(),
        }
    }

    /// Jobs sent.
    pub fn jobs(&self) -> u64 {
        self.requests.jobs
    }
}

impl WindowedClient for H264Client {
    type Job = H264Job;

    fn message(job: &H264Job) -> &[u8] {
        &job.request.message
    }

    fn prepare_job(&mut self, au: &[u8]) -> Option<H264Job> {
        let mut cursor = io::Cursor::new(au);
        let mut slices = Vec::new();
        let mut first = None;
        while let Ok(nalu) = Nalu::next(&mut cursor) {
            match nalu.header.type_ {
                NaluType::Sps => {
                    self.parser.parse_sps(&nalu).expect("SPS");
                }
                NaluType::Pps => {
                    self.parser.parse_pps(&nalu).expect("PPS");
                }
                NaluType::Slice | NaluType::SliceIdr => {
                    slices.extend_from_slice(&[0, 0, 0, 1]);
                    slices.extend_from_slice(nalu.as_ref());
                    if first.is_none() {
                        let idr = matches!(nalu.header.type_, NaluType::SliceIdr);
                        let s = self.parser.parse_slice_header(nalu).expect("slice header");
                        first = Some((s.header.pic_parameter_set_id, idr));
                    }
                }
                _ => {}
            }
        }
        let (pps_id, idr) = first.expect("an access unit has a slice");
        let pps = Rc::clone(self.parser.get_pps(pps_id).expect("PPS of the slice"));
        let sps = &pps.sps;
        let depth = BitDepth::from_bits(u32::from(sps.bit_depth_luma_minus8) + 8).expect("8 or 10");
        let (w, h) = (sps.width(), sps.height());
        let crop = if sps.frame_cropping_flag {
            (
                2 * sps.frame_crop_left_offset,
                2 * sps.frame_crop_top_offset,
                w - 2 * (sps.frame_crop_left_offset + sps.frame_crop_right_offset),
                h - 2 * (sps.frame_crop_top_offset + sps.frame_crop_bottom_offset),
            )
        } else {
            (0, 0, w, h)
        };
        let mut decode_params = uapi::v4l2_ctrl_h264_decode_params::default();
        if idr {
            decode_params.flags |= uapi::V4L2_H264_DECODE_PARAM_FLAG_IDR_PIC;
        }
        let request = self
            .requests
            .build(Codec::H264, depth, (w, h), &slices, |e| {
                put(e, uapi::V4L2_CID_STATELESS_H264_SPS, &sps_control(sps));
                put(e, uapi::V4L2_CID_STATELESS_H264_PPS, &pps_control(&pps));
                put(
                    e,
                    uapi::V4L2_CID_STATELESS_H264_SCALING_MATRIX,
                    &scaling_matrix_control(&pps),
                );
                put(
                    e,
                    uapi::V4L2_CID_STATELESS_H264_DECODE_PARAMS,
                    &decode_params,
                );
                put(
                    e,
                    uapi::V4L2_CID_STATELESS_H264_DECODE_MODE,
                    &(uapi::V4L2_STATELESS_H264_DECODE_MODE_FRAME_BASED as i32),
                );
                put(
                    e,
                    uapi::V4L2_CID_STATELESS_H264_START_CODE,
                    &(uapi::V4L2_STATELESS_H264_START_CODE_ANNEX_B as i32),
                );
            });
        Some(H264Job { request, crop })
    }

    fn finish_job(&mut self, job: H264Job, c: &Completion) {
        let md5 = self.requests.picture_md5(&job.request, c, job.crop);
        self.pictures.push(md5);
    }
}

// ---------------------------------------------------------------------------------------------
// An AV1 client

/// A job of [`Av1Client`].
pub struct Av1Job {
    request: Request,
    shown: bool,
}

/// The frames of a temporal unit, each a request of its own as a per-frame client sends them:
/// the OBUs up to and including a frame's last tile group (or its frame OBU, or a
/// `show_existing_frame` header), a sequence header going with the frame after it, temporal
/// delimiters dropped.
pub fn av1_frames(tu: &[u8]) -> Vec<Vec<u8>> {
    use daedalus_codecs::av1::obu;
    let mut frames = Vec::new();
    let mut current = Vec::new();
    for o in obu::split_section5(tu).expect("OBUs") {
        if o.obu_type == obu::OBU_TEMPORAL_DELIMITER {
            continue;
        }
        current.extend_from_slice(&tu[o.start..o.end]);
        let ends = match o.obu_type {
            obu::OBU_FRAME | obu::OBU_TILE_GROUP => true,
            obu::OBU_FRAME_HEADER => tu[o.payload] & 0x80 != 0,
            _ => false,
        };
        if ends {
            frames.push(std::mem::take(&mut current));
        }
    }
    frames
}

/// An AV1 client sending full OBUs, a temporal unit (or a frame: [`av1_frames`]) per request,
/// with a FRAME control saying the frame type and whether it is shown (of the request's last
/// frame header): records the MD5 of every shown request's picture. Each temporal unit shows
/// one frame (its hidden frames come before it), and `show_existing_frame` headers are sent
/// as requests, so the pictures are FFmpeg's output, in order.
pub struct Av1Client {
    requests: Requests,
    depth: BitDepth,
    size: (u32, u32),
    /// MD5 of every shown job's picture (a failed job's status), in job order.
    pub pictures: Vec<String>,
    /// Hidden frames sent.
    pub hidden: u64,
}

impl Av1Client {
    pub fn new(ctx_id: u32, buffers: usize, depth: BitDepth, size: (u32, u32)) -> Self {
        Av1Client {
            requests: Requests::new(ctx_id, buffers),
            depth,
            size,
            pictures: Vec::new(),
            hidden: 0,
        }
    }

    /// Jobs sent.
    pub fn jobs(&self) -> u64 {
        self.requests.jobs
    }
}

/// `(frame_type, show_frame)` of the last frame header of a temporal unit (a
/// `show_existing_frame` counts as a shown inter frame).
pub fn av1_last_frame(tu: &[u8]) -> (u32, bool) {
    use daedalus_codecs::av1::obu;
    let mut last = (1, true);
    for o in obu::split_section5(tu).expect("OBUs") {
        if o.obu_type == obu::OBU_FRAME_HEADER || o.obu_type == obu::OBU_FRAME {
            let b = tu[o.payload];
            last = if b & 0x80 != 0 {
                (1, true)
            } else {
                (u32::from(b >> 5 & 3), b & 0x10 != 0)
            };
        }
    }
    last
}

impl WindowedClient for Av1Client {
    type Job = Av1Job;

    fn message(job: &Av1Job) -> &[u8] {
        &job.request.message
    }

    fn prepare_job(&mut self, tu: &[u8]) -> Option<Av1Job> {
        let (frame_type, shown) = av1_last_frame(tu);
        let mut frame = uapi::v4l2_ctrl_av1_frame {
            frame_type: frame_type as _,
            ..Default::default()
        };
        if shown {
            frame.flags |= uapi::V4L2_AV1_FRAME_FLAG_SHOW_FRAME;
        } else {
            self.hidden += 1;
        }
        let request = self
            .requests
            .build(Codec::Av1, self.depth, self.size, tu, |e| {
                put(e, uapi::V4L2_CID_STATELESS_AV1_FRAME, &frame);
            });
        Some(Av1Job { request, shown })
    }

    fn finish_job(&mut self, job: Av1Job, c: &Completion) {
        if job.shown || c.status != Status::Ok {
            let (w, h) = self.size;
            let md5 = self.requests.picture_md5(&job.request, c, (0, 0, w, h));
            self.pictures.push(md5);
        }
    }
}

/// Largest frame size of a stream.
pub fn max_size(frames: &[Vec<u8>]) -> (u32, u32) {
    let mut p = HeaderParser::default();
    frames.iter().fold((0, 0), |(w, h), f| {
        let hd = p.parse(f);
        (w.max(hd.width), h.max(hd.height))
    })
}

/// Compares displayed MD5s with the references; returns (matching, expected count).
pub fn compare(name: &str, got: &[String], want: &[String]) -> (usize, usize) {
    let matching = got.iter().zip(want).filter(|(a, b)| a == b).count();
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        eprintln!(
            "{name}: first mismatch at displayed frame {i}: {} != {}",
            got[i], want[i]
        );
    }
    (matching, want.len())
}

// ---------------------------------------------------------------------------------------------
// An in-memory transport for the dispatcher

/// Messages in through a channel; completions out to the client of their context.
pub struct MemTransport {
    input: Mutex<Receiver<Vec<u8>>>,
    clients: Mutex<HashMap<u32, Sender<Completion>>>,
}

impl MemTransport {
    /// The transport and the sender feeding it (dropping every sender shuts the daemon down).
    pub fn new() -> (MemTransport, Sender<Vec<u8>>) {
        let (tx, rx) = mpsc::channel();
        (
            MemTransport {
                input: Mutex::new(rx),
                clients: Mutex::new(HashMap::new()),
            },
            tx,
        )
    }

    /// Where the completions of `ctx_id` go.
    pub fn register(&self, ctx_id: u32) -> Receiver<Completion> {
        let (tx, rx) = mpsc::channel();
        self.clients.lock().unwrap().insert(ctx_id, tx);
        rx
    }
}

impl Transport for MemTransport {
    fn receive(&self, buf: &mut [u8]) -> io::Result<Incoming> {
        match self.input.lock().unwrap().recv() {
            Ok(m) if m.is_empty() => Ok(Incoming::Stats),
            Ok(m) => {
                let n = m.len().min(buf.len());
                buf[..n].copy_from_slice(&m[..n]);
                Ok(Incoming::Message(n))
            }
            Err(_) => Ok(Incoming::Shutdown),
        }
    }

    fn complete(&self, c: &Completion) -> io::Result<()> {
        match self.clients.lock().unwrap().get(&c.ctx_id) {
            Some(tx) => tx
                .send(*c)
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client gone")),
            None => Err(io::Error::new(io::ErrorKind::NotFound, "no such context")),
        }
    }
}

/// A context event message.
pub fn event(kind: ContextEvent, ctx_id: u32) -> Vec<u8> {
    let mut b = vec![0u8; wire::CONTEXT_EVENT_SIZE];
    wire::encode_context_event(kind, ctx_id, &mut b).unwrap();
    b
}
