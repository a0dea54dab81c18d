// SPDX-License-Identifier: GPL-2.0
//! `daedalus decode` for H.264: a stateless `V4L2_PIX_FMT_H264_SLICE` client, written the way
//! GStreamer's `v4l2slh264dec` drives hardware decoders.
//!
//! * Input: Annex-B, MP4 or Matroska / WebM ([`super::stream`]); parameter sets and slice headers parsed with
//!   cros-codecs, slices grouped into pictures.
//! * Every request carries SPS, PPS, SCALING_MATRIX and DECODE_PARAMS (GStreamer style);
//!   DECODE_MODE and START_CODE are set once per configuration.
//! * Frame-based mode: one request per picture holding all its slice NAL units (with
//!   `00 00 01` start codes). Slice-based mode: one request per slice with SLICE_PARAMS (and
//!   PRED_WEIGHTS for explicit weighted prediction), `V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF` on all
//!   but the last slice of a picture, start codes optional.
//! * The client's DPB ([`super::dpb`]) names references by the timestamp of their CAPTURE
//!   buffer; a CAPTURE buffer is queued again only when its picture left the DPB and was
//!   output. Pictures come back in decode order and are output in POC order (bumping), cropped
//!   to the SPS cropping window.
//! * Streams the device cannot decode (field pictures / MBAFF: `frame_mbs_only_flag = 0`; an
//!   SPS control the driver rejects: 4:2:2, 4:4:4, other bit depths) end with [`Refused`].

use std::collections::VecDeque;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use daedalus_codecs::h264::controls::{pps_control, scaling_matrix_control, sps_control};
use daedalus_proto::formats::BitDepth;
use log::{debug, info, warn};

use super::dpb::Dpb;
use super::stream::{NalSource, Picture, Pictures};
use super::v4l2::{
    decode_params, has_pred_weights, pic_params, pred_weights, seq_params, slice_params,
};
use crate::codec::Codec;
use crate::decode::{
    complete_request, Input, Observer, Occupancy, Options, Outputs, PictureSink, ProgressFn,
    Summary, MAX_IN_FLIGHT,
};
use crate::demux::Probe;
use crate::ffmpeg_timing::FrameMd5Params;
use crate::media::{MediaDevice, Request};
use crate::names::fourcc_to_string;
use crate::picture::{self, CaptureLayout};
use crate::sys::*;
use crate::v4l2::{CtrlPayload, Mapping, QueueBuf, VideoDevice, Which};

const OUTPUT: u32 = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;
const CAPTURE: u32 = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;
const START_CODE: [u8; 3] = [0, 0, 1];

/// The device cannot decode this stream: the client stops with this error (exit code 3 in
/// `daedalus decode`), which is never counted as success.
#[derive(Debug, thiserror::Error)]
#[error("refused by the device: {0}")]
pub struct Refused(pub String);

/// How pictures are handed to the device (`V4L2_CID_STATELESS_H264_DECODE_MODE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DecodeMode {
    /// One request per picture.
    #[default]
    Frame,
    /// One request per slice.
    Slice,
}

/// Whether slices carry Annex-B start codes (`V4L2_CID_STATELESS_H264_START_CODE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum StartCode {
    /// `00 00 01` before each slice.
    #[default]
    Annexb,
    /// Slices alone (slice-based mode only).
    None,
}

/// H.264 specifics of a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct H264Options {
    /// Decode mode.
    pub mode: DecodeMode,
    /// Start codes.
    pub start_code: StartCode,
}

/// Decodes the H.264 stream `input` through the device of `opts`, calling `progress` now and
/// then.
pub fn run(
    input: &Input,
    opts: &Options,
    h264: H264Options,
    outputs: Outputs,
    progress: &mut dyn FnMut(&Summary),
) -> Result<Summary> {
    run_observed(input, opts, h264, outputs, &mut ProgressFn(progress))
}

/// [`run`], telling `observer` when each picture's requests are queued and completed (what
/// `daedalus bench` times): a picture's `queued` is just before its first request is queued,
/// `completed` when the request of its last slice completed.
pub fn run_observed(
    input: &Input,
    opts: &Options,
    h264: H264Options,
    outputs: Outputs,
    observer: &mut dyn Observer,
) -> Result<Summary> {
    if h264.mode == DecodeMode::Frame && h264.start_code == StartCode::None {
        bail!("--start-code none needs --h264-mode slice (a frame-based buffer of several slices needs start codes to separate them)");
    }
    let src = match crate::decode::open_container(input, Codec::H264, Probe::Headers)? {
        Some(demuxer) => NalSource::from_container(demuxer)?,
        None => NalSource::load(match input {
            Input::File(path) => {
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
            }
            Input::Memory(d) => d.to_vec(),
        })?,
    };
    let mut dec = Client::new(opts, h264, &src, outputs, observer)?;
    let mut pictures = Pictures::new(&src);
    let mut last_progress = Instant::now();
    let result = loop {
        let pic = match pictures.next_picture() {
            Ok(Some(p)) => p,
            Ok(None) => break Ok(()),
            Err(e) => break Err(anyhow::Error::from(e)),
        };
        if opts.limit.is_some_and(|l| dec.summary.packets >= l) {
            break Ok(());
        }
        dec.summary.packets += 1;
        if let Err(e) = dec.picture(&pic) {
            break Err(e);
        }
        if last_progress.elapsed() >= Duration::from_millis(500) {
            dec.summary.elapsed = dec.started.map_or(Duration::ZERO, |t| t.elapsed());
            dec.observer.progress(&dec.summary);
            last_progress = Instant::now();
        }
    };
    dec.summary.skipped += pictures.bad_slices;
    match result {
        Ok(()) => {
            dec.finish()?;
            Ok(dec.summary)
        }
        Err(e) => {
            if let Err(abort) = dec.teardown() {
                warn!("while stopping after the error: {abort:#}");
            }
            Err(e)
        }
    }
}

/// The visible window of a picture in its buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Crop {
    left: u32,
    top: u32,
    width: u32,
    height: u32,
}

/// A picture from submission until its buffer is free again.
#[derive(Clone, Copy, Debug)]
struct Tracked {
    id: u64,
    in_flight: bool,
    error: bool,
    capture: Option<u32>,
    /// Output by the DPB, not yet written.
    display_pending: bool,
    crop: Crop,
}

#[derive(Clone, Copy, Debug)]
struct InFlight {
    id: u64,
    buf: usize,
    /// The last request of its picture (its CAPTURE buffer comes back with it).
    last: bool,
}

struct Session {
    coded: (u32, u32),
    depth: BitDepth,
    layout: CaptureLayout,
    output: Vec<Mapping>,
    free_output: Vec<usize>,
    capture: Vec<Mapping>,
}

struct Client<'a> {
    opts: &'a Options,
    h264: H264Options,
    src: &'a NalSource,
    dev: VideoDevice,
    requests: Vec<Request>,
    output_size: u32,
    session: Option<Session>,
    dpb: Dpb,
    tracked: Vec<Tracked>,
    in_flight: VecDeque<InFlight>,
    displays: VecDeque<u64>,
    out_ids: Vec<u64>,
    next_id: u64,
    seen_idr: bool,
    sink: PictureSink,
    shown_index: i64,
    planar: Vec<u8>,
    summary: Summary,
    started: Option<Instant>,
    observer: &'a mut dyn Observer,
}

impl<'a> Client<'a> {
    fn new(
        opts: &'a Options,
        h264: H264Options,
        src: &'a NalSource,
        outputs: Outputs,
        observer: &'a mut dyn Observer,
    ) -> Result<Self> {
        if !(1..=MAX_IN_FLIGHT).contains(&opts.in_flight) {
            bail!("requests in flight must be 1 to {MAX_IN_FLIGHT}");
        }
        let dev = VideoDevice::open(&opts.video)?;
        let cap = dev.query_capability()?;
        if !dev
            .enum_formats(OUTPUT)?
            .iter()
            .any(|f| f.pixelformat == V4L2_PIX_FMT_H264_SLICE)
        {
            bail!(
                "{} ({}) does not decode H.264 (no S264 OUTPUT format)",
                opts.video.display(),
                cap.driver
            );
        }
        let media = MediaDevice::open(&opts.media)?;
        let requests = (0..opts.in_flight)
            .map(|_| media.alloc_request())
            .collect::<Result<Vec<_>, _>>()?;
        let output_size = u32::try_from((src.max_picture_bytes() + 4096).next_multiple_of(4096))
            .context("a picture is larger than 4 GiB")?;
        // Raw H.264 has no timestamps: FFmpeg's framemd5 of it counts frames at 1/25 s.
        // Pictures are numbered in output order, as FFmpeg numbers those of an Annex-B stream.
        let sink = PictureSink::new(outputs, FrameMd5Params::numbered(25));
        info!(
            "{}: {} H.264, {} NAL units, largest picture {} bytes",
            opts.video.display(),
            src.container,
            src.nals.len(),
            src.max_picture_bytes()
        );
        Ok(Client {
            opts,
            h264,
            src,
            dev,
            requests,
            output_size,
            session: None,
            dpb: Dpb::new(),
            tracked: Vec::with_capacity(40),
            in_flight: VecDeque::with_capacity(MAX_IN_FLIGHT),
            displays: VecDeque::with_capacity(40),
            out_ids: Vec::with_capacity(40),
            next_id: 1,
            seen_idr: false,
            sink,
            shown_index: 0,
            planar: Vec::new(),
            summary: Summary::default(),
            started: None,
            observer,
        })
    }

    /// Decodes one picture.
    fn picture(&mut self, pic: &Picture) -> Result<()> {
        let sps = &pic.sps;
        let first = pic.first();
        if !sps.frame_mbs_only_flag {
            return Err(Refused(format!(
                "the stream codes fields (frame_mbs_only_flag = 0: field pictures or MBAFF), \
                 which the device does not decode (profile_idc {})",
                sps.profile_idc
            ))
            .into());
        }
        if !first.idr && !self.seen_idr {
            debug!("picture before the first IDR picture: skipped");
            self.summary.skipped += 1;
            return Ok(());
        }
        let coded = (
            (u32::from(sps.pic_width_in_mbs_minus1) + 1) * 16,
            (u32::from(sps.pic_height_in_map_units_minus1) + 1) * 16,
        );
        let bits = u32::from(sps.bit_depth_luma_minus8) + 8;
        let mut sps_ctrl = sps_control(sps);
        let mut pps_ctrl = pps_control(&pic.pps);
        let mut matrix = scaling_matrix_control(&pic.pps);
        if first.idr {
            self.seen_idr = true;
            let changed = self.session.as_ref().map_or(true, |s| {
                s.coded != coded || BitDepth::from_bits(bits) != Some(s.depth)
            });
            if changed {
                self.reconfigure(coded, bits, &mut sps_ctrl)?;
            }
            self.dpb.set_seq(seq_params(sps));
        }
        let id = self.next_id;
        self.next_id += 1;
        self.out_ids.clear();
        let cur = self
            .dpb
            .start_picture(pic_params(first, id), &mut self.out_ids);
        self.queue_displays()?;
        self.make_room()?;
        let (mut params, dpb_ids) = decode_params(pic, &cur, &self.dpb);
        // cros-codecs' `max` is the visible size (coded size minus both crop offsets), not the
        // bottom-right corner.
        let vis = sps.visible_rectangle();
        let crop = Crop {
            left: vis.min.x,
            top: vis.min.y,
            width: vis.max.x.min(coded.0.saturating_sub(vis.min.x)),
            height: vis.max.y.min(coded.1.saturating_sub(vis.min.y)),
        };
        self.tracked.push(Tracked {
            id,
            in_flight: true,
            error: false,
            capture: None,
            display_pending: false,
            crop,
        });
        if self.started.is_none() {
            self.started = Some(Instant::now());
        }
        let slices: Vec<usize> = match self.h264.mode {
            DecodeMode::Frame => vec![pic.slices.len()],
            DecodeMode::Slice => (1..=pic.slices.len()).collect(),
        };
        let mut from = 0;
        for (n, &to) in slices.iter().enumerate() {
            let last = n + 1 == slices.len();
            if n > 0 {
                self.make_output_room()?;
            }
            let buf = self.fill_output(pic, from..to)?;
            let request = &self.requests[buf];
            let fd = request.as_fd();
            {
                let mut payloads = vec![
                    CtrlPayload::new(V4L2_CID_STATELESS_H264_SPS, &mut sps_ctrl),
                    CtrlPayload::new(V4L2_CID_STATELESS_H264_PPS, &mut pps_ctrl),
                    CtrlPayload::new(V4L2_CID_STATELESS_H264_SCALING_MATRIX, &mut matrix),
                    CtrlPayload::new(V4L2_CID_STATELESS_H264_DECODE_PARAMS, &mut params),
                ];
                let mut sp;
                let mut pw;
                if self.h264.mode == DecodeMode::Slice {
                    let s = &pic.slices[from];
                    sp = slice_params(s, &cur, &self.dpb, &dpb_ids);
                    payloads.push(CtrlPayload::new(
                        V4L2_CID_STATELESS_H264_SLICE_PARAMS,
                        &mut sp,
                    ));
                    if has_pred_weights(&pic.pps, &s.header) {
                        pw = pred_weights(&s.header);
                        payloads.push(CtrlPayload::new(
                            V4L2_CID_STATELESS_H264_PRED_WEIGHTS,
                            &mut pw,
                        ));
                    }
                }
                self.dev
                    .set_ext_ctrls(Which::Request(fd), &mut payloads)
                    .with_context(|| format!("picture {id}: the driver refused its controls"))?;
            }
            let bytes = self.output_bytes(pic, from..to);
            let flags = if last {
                0
            } else {
                V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF
            };
            self.dev
                .queue_buffer_with_flags(
                    &QueueBuf {
                        buf_type: OUTPUT,
                        index: buf as u32,
                        bytesused: bytes as u32,
                        timestamp_us: id,
                        request: Some(fd),
                    },
                    flags,
                )
                .context("cannot queue an OUTPUT buffer")?;
            if from == 0 {
                self.observer.queued(id, Instant::now());
            }
            request.queue()?;
            if let Some(s) = &mut self.session {
                s.free_output.retain(|&b| b != buf);
            }
            self.in_flight.push_back(InFlight { id, buf, last });
            self.summary.submitted += u64::from(last);
            from = to;
        }
        self.out_ids.clear();
        self.dpb
            .finish_picture(cur, &mut self.out_ids)
            .map_err(|e| anyhow!("picture {id}: {e}"))?;
        self.queue_displays()?;
        self.flush_displays()?;
        self.collect()
    }

    /// Bytes of the slices `range` of `pic` in an OUTPUT buffer.
    fn output_bytes(&self, pic: &Picture, range: std::ops::Range<usize>) -> usize {
        let sc = if self.h264.start_code == StartCode::Annexb {
            3
        } else {
            0
        };
        pic.slices[range].iter().map(|s| s.range.len() + sc).sum()
    }

    /// Copies the slices `range` of `pic` into a free OUTPUT buffer; returns its index.
    fn fill_output(&mut self, pic: &Picture, range: std::ops::Range<usize>) -> Result<usize> {
        let annexb = self.h264.start_code == StartCode::Annexb;
        let needed = self.output_bytes(pic, range.clone());
        let s = self
            .session
            .as_mut()
            .ok_or_else(|| anyhow!("internal error: no session"))?;
        let buf = *s
            .free_output
            .last()
            .ok_or_else(|| anyhow!("internal error: no free OUTPUT buffer"))?;
        let dst = s.output[buf].as_mut_slice();
        if needed > dst.len() {
            bail!(
                "a picture of {needed} bytes does not fit the {}-byte OUTPUT buffer",
                dst.len()
            );
        }
        let mut at = 0;
        for sl in &pic.slices[range] {
            if annexb {
                dst[at..at + 3].copy_from_slice(&START_CODE);
                at += 3;
            }
            let nal = &self.src.data[sl.range.clone()];
            dst[at..at + nal.len()].copy_from_slice(nal);
            at += nal.len();
        }
        Ok(buf)
    }

    fn queue_displays(&mut self) -> Result<()> {
        for &id in &self.out_ids {
            if let Some(t) = self.tracked.iter_mut().find(|t| t.id == id) {
                t.display_pending = true;
                self.displays.push_back(id);
            }
        }
        self.out_ids.clear();
        Ok(())
    }

    /// Queues the CAPTURE buffers of pictures nobody needs any more.
    fn collect(&mut self) -> Result<()> {
        let mut i = 0;
        while i < self.tracked.len() {
            let t = self.tracked[i];
            if t.in_flight || t.display_pending || self.dpb.holds(t.id) {
                i += 1;
                continue;
            }
            self.tracked.swap_remove(i);
            if let (Some(index), Some(_)) = (t.capture, &self.session) {
                self.dev
                    .queue_buffer(&QueueBuf {
                        buf_type: CAPTURE,
                        index,
                        bytesused: 0,
                        timestamp_us: 0,
                        request: None,
                    })
                    .context("cannot queue a CAPTURE buffer")?;
            }
        }
        Ok(())
    }

    /// The session's buffers and requests in use.
    fn occupancy(&self) -> Result<Occupancy> {
        let s = self
            .session
            .as_ref()
            .ok_or_else(|| anyhow!("internal error: no session"))?;
        Ok(Occupancy {
            in_flight: self.in_flight.len(),
            max_in_flight: self.opts.in_flight,
            outputs: s.output.len(),
            free_outputs: s.free_output.len(),
            captures: s.capture.len(),
            held_captures: (self.tracked.iter())
                .filter(|t| t.in_flight || t.capture.is_some())
                .count(),
        })
    }

    /// Waits until a request and an OUTPUT buffer are free (a further slice of a held picture).
    fn make_output_room(&mut self) -> Result<()> {
        while !self.occupancy()?.has_output_room() {
            self.complete_oldest()?;
        }
        Ok(())
    }

    /// Waits until a request, an OUTPUT buffer and a CAPTURE buffer are free.
    fn make_room(&mut self) -> Result<()> {
        loop {
            if self.occupancy()?.has_room()? {
                return Ok(());
            }
            self.complete_oldest()?;
            self.flush_displays()?;
            self.collect()?;
        }
    }

    fn complete_oldest(&mut self) -> Result<()> {
        let Some(f) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let request = &self.requests[f.buf];
        let done = complete_request(&self.dev, request, f.buf, f.id, self.opts.timeout, f.last)?;
        if let Some(s) = &mut self.session {
            s.free_output.push(f.buf);
        }
        // Only the last request of a picture returns its CAPTURE buffer.
        let Some((index, error)) = done.capture else {
            return Ok(());
        };
        let completed_at = done.at;
        self.observer.completed(f.id, completed_at, error);
        if error {
            self.summary.decode_errors += 1;
        } else {
            self.summary.decoded += 1;
        }
        let t = self
            .tracked
            .iter_mut()
            .find(|t| t.id == f.id)
            .ok_or_else(|| anyhow!("internal error: picture {} is not tracked", f.id))?;
        t.in_flight = false;
        t.error = error;
        t.capture = Some(index);
        Ok(())
    }

    /// Writes the pictures at the head of the output queue that are decoded.
    fn flush_displays(&mut self) -> Result<()> {
        while let Some(&id) = self.displays.front() {
            let Some(i) = self.tracked.iter().position(|t| t.id == id) else {
                self.displays.pop_front();
                continue;
            };
            let t = self.tracked[i];
            if t.in_flight {
                break;
            }
            self.displays.pop_front();
            self.tracked[i].display_pending = false;
            self.summary.shown += 1;
            match (t.error, t.capture, &self.session) {
                // Without outputs (e.g. `daedalus bench`) the picture is not read.
                (false, Some(_), Some(_)) if !self.sink.wants_pictures() => {}
                (false, Some(index), Some(s)) => {
                    let map = s.capture[index as usize].as_slice();
                    let bps = s.layout.depth.bytes_per_sample() as usize;
                    let bpl = s.layout.bytesperline;
                    let off = t.crop.top as usize * bpl + t.crop.left as usize * bps;
                    let layout = CaptureLayout {
                        depth: s.layout.depth,
                        bytesperline: bpl,
                        chroma_offset: s.layout.chroma_offset - (t.crop.top as usize / 2) * bpl,
                    };
                    let src = map
                        .get(off..)
                        .ok_or_else(|| anyhow!("crop window outside the buffer"))?;
                    picture::to_planar(src, &layout, t.crop.width, t.crop.height, &mut self.planar)
                        .with_context(|| format!("picture {id}: cannot read it"))?;
                    self.write_picture(t.crop.width, t.crop.height)?;
                }
                _ => {
                    self.summary.shown_errors += 1;
                    debug!("output picture {id} is a decode error: not written");
                }
            }
        }
        Ok(())
    }

    fn write_picture(&mut self, width: u32, height: u32) -> Result<()> {
        self.sink
            .write(self.shown_index, width, height, &self.planar)?;
        self.shown_index += 1;
        Ok(())
    }

    /// Outputs everything the DPB holds and waits for every request.
    fn drain(&mut self) -> Result<()> {
        self.out_ids.clear();
        self.dpb.flush(&mut self.out_ids);
        self.queue_displays()?;
        while !self.in_flight.is_empty() {
            self.complete_oldest()?;
        }
        self.flush_displays()?;
        self.collect()
    }

    fn reconfigure(
        &mut self,
        coded: (u32, u32),
        bits: u32,
        sps: &mut v4l2_ctrl_h264_sps,
    ) -> Result<()> {
        self.drain()?;
        self.teardown()?;
        self.dpb = Dpb::new();
        let (width, height) = coded;
        info!("configuring for {width}x{height}, {bits} bits");
        let dev = &self.dev;
        let out_fmt = dev
            .set_coded_format(
                OUTPUT,
                V4L2_PIX_FMT_H264_SLICE,
                width,
                height,
                self.output_size,
            )
            .context("cannot set the OUTPUT format")?;
        if out_fmt.pixelformat != V4L2_PIX_FMT_H264_SLICE {
            bail!(
                "the driver chose {} for OUTPUT instead of S264",
                fourcc_to_string(out_fmt.pixelformat)
            );
        }
        // The SPS selects the CAPTURE format (NV12 / P010); the driver refuses what it cannot
        // represent (4:2:2, 4:4:4, luma and chroma depths that differ, other depths).
        if let Err(e) = dev.set_ext_ctrls(
            Which::Current,
            &mut [CtrlPayload::new(V4L2_CID_STATELESS_H264_SPS, sps)],
        ) {
            return Err(Refused(format!(
                "the driver rejected the SPS control (profile_idc {}, chroma_format_idc {}, \
                 bit depth luma {} / chroma {}): {e}",
                sps.profile_idc,
                sps.chroma_format_idc,
                u32::from(sps.bit_depth_luma_minus8) + 8,
                u32::from(sps.bit_depth_chroma_minus8) + 8
            ))
            .into());
        }
        let depth =
            BitDepth::from_bits(bits).ok_or_else(|| Refused(format!("{bits}-bit pictures")))?;
        let mode = match self.h264.mode {
            DecodeMode::Frame => V4L2_STATELESS_H264_DECODE_MODE_FRAME_BASED,
            DecodeMode::Slice => V4L2_STATELESS_H264_DECODE_MODE_SLICE_BASED,
        };
        let start = match self.h264.start_code {
            StartCode::Annexb => V4L2_STATELESS_H264_START_CODE_ANNEX_B,
            StartCode::None => V4L2_STATELESS_H264_START_CODE_NONE,
        };
        dev.set_int_ctrl(V4L2_CID_STATELESS_H264_DECODE_MODE, mode as i32)
            .map_err(|e| Refused(format!("decode mode {:?}: {e}", self.h264.mode)))?;
        dev.set_int_ctrl(V4L2_CID_STATELESS_H264_START_CODE, start as i32)
            .map_err(|e| Refused(format!("start code {:?}: {e}", self.h264.start_code)))?;
        let cap_fmt = dev
            .get_format(CAPTURE)
            .context("cannot get the CAPTURE format")?;
        let plane = cap_fmt
            .planes
            .first()
            .copied()
            .ok_or_else(|| anyhow!("the CAPTURE format has no plane"))?;
        if cap_fmt.pixelformat != depth.capture_fourcc() {
            bail!(
                "the driver picked {} for CAPTURE; {bits}-bit pictures need {}",
                fourcc_to_string(cap_fmt.pixelformat),
                fourcc_to_string(depth.capture_fourcc())
            );
        }
        if cap_fmt.width < width || cap_fmt.height < height {
            bail!(
                "CAPTURE format {}x{} is smaller than {width}x{height}",
                cap_fmt.width,
                cap_fmt.height
            );
        }
        let layout = CaptureLayout::new(depth, plane.bytesperline, cap_fmt.height);
        let n_out = u32::try_from(self.requests.len()).unwrap_or(1);
        let rb = dev
            .request_buffers(OUTPUT, V4L2_MEMORY_MMAP, n_out)
            .context("cannot allocate OUTPUT buffers")?;
        if rb.capabilities & V4L2_BUF_CAP_SUPPORTS_REQUESTS == 0 {
            bail!("the OUTPUT queue does not support requests");
        }
        if self.h264.mode == DecodeMode::Slice
            && rb.capabilities & V4L2_BUF_CAP_SUPPORTS_M2M_HOLD_CAPTURE_BUF == 0
        {
            return Err(Refused(
                "slice-based decoding needs V4L2_BUF_CAP_SUPPORTS_M2M_HOLD_CAPTURE_BUF, which \
                 the OUTPUT queue does not advertise"
                    .into(),
            )
            .into());
        }
        // The DPB, the requests in flight and one picture being output.
        let dpb_frames = self.dpb_frames_hint();
        let count = self
            .opts
            .capture_buffers
            .max(dpb_frames + self.opts.in_flight as u32 + 1);
        let rb_cap = dev
            .request_buffers(CAPTURE, V4L2_MEMORY_MMAP, count)
            .context("cannot allocate CAPTURE buffers")?;
        if rb_cap.count < dpb_frames + 2 {
            bail!(
                "the driver allocated {} CAPTURE buffers; this stream needs {}",
                rb_cap.count,
                dpb_frames + 2
            );
        }
        let mut output = Vec::new();
        for i in 0..rb.count.min(n_out) {
            // SAFETY: OUTPUT buffers are only written by `fill_output` while dequeued (listed
            // in `free_output`); CAPTURE buffers are only read by `flush_displays` after DQBUF
            // and before `collect` queues them again.
            output.push(unsafe { dev.map_buffer(OUTPUT, i) }?);
        }
        let mut capture = Vec::new();
        for i in 0..rb_cap.count {
            // SAFETY: as above.
            capture.push(unsafe { dev.map_buffer(CAPTURE, i) }?);
        }
        for i in 0..rb_cap.count {
            dev.queue_buffer(&QueueBuf {
                buf_type: CAPTURE,
                index: i,
                bytesused: 0,
                timestamp_us: 0,
                request: None,
            })?;
        }
        dev.stream_on(OUTPUT)?;
        dev.stream_on(CAPTURE)?;
        self.session = Some(Session {
            coded,
            depth,
            layout,
            free_output: (0..output.len()).rev().collect(),
            output,
            capture,
        });
        self.summary.configurations += 1;
        Ok(())
    }

    /// CAPTURE buffers the DPB may hold (16: the most H.264 allows; kept simple because the
    /// SPS of later IDRs can ask for more without a reconfiguration).
    fn dpb_frames_hint(&self) -> u32 {
        16
    }

    fn teardown(&mut self) -> Result<()> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        self.in_flight.clear();
        self.dev.stream_off(OUTPUT)?;
        self.dev.stream_off(CAPTURE)?;
        for t in &mut self.tracked {
            t.capture = None;
        }
        self.tracked.clear();
        self.displays.clear();
        drop(session);
        self.dev.request_buffers(OUTPUT, V4L2_MEMORY_MMAP, 0)?;
        self.dev.request_buffers(CAPTURE, V4L2_MEMORY_MMAP, 0)?;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        let drained = self.drain();
        self.summary.elapsed = self.started.map_or(Duration::ZERO, |t| t.elapsed());
        self.summary.shown += self.displays.len() as u64;
        self.summary.shown_errors += self.displays.len() as u64;
        let flushed = self.sink.finish();
        let torn = self.teardown();
        drained.and(flushed).and(torn)
    }
}
