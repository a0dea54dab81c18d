// SPDX-License-Identifier: GPL-2.0
//! `daedalus decode`: the input recognition of every codec ([`identify`]), the device set-up and
//! request engine the VP9 and AV1 clients share (`Decoder`), and the V4L2 stateless VP9
//! client itself, written against the uAPI the way hardware-oriented clients are (GStreamer's
//! `v4l2slvp9dec`, FFmpeg's v4l2-request hwaccel). H.264 has its own client ([`crate::h264`]).
//!
//! * The input is an IVF or WebM file. A first pass over it reads the packet sizes (to size the
//!   OUTPUT buffers) and timestamps (for the framemd5 output); the second pass decodes.
//! * Packets are split into frames (superframes); each frame's uncompressed and compressed
//!   headers are parsed into `V4L2_CID_STATELESS_VP9_FRAME` and
//!   `V4L2_CID_STATELESS_VP9_COMPRESSED_HDR`.
//! * Each decoded frame is one request: the two controls and one OUTPUT buffer holding the
//!   frame; up to `in_flight` requests are queued at once. Completion is awaited with
//!   `poll(POLLPRI)` on the request (with a time-out: the tool never hangs), then both buffers
//!   are dequeued. A CAPTURE buffer flagged `V4L2_BUF_FLAG_ERROR` is a decode error: counted,
//!   reported, and decoding goes on.
//! * References are named by timestamp: every frame gets a unique OUTPUT timestamp, the eight
//!   reference slots hold the timestamps of the frames in them (updated by
//!   `refresh_frame_flags`), and the frame control carries those of its last, golden and altref
//!   references. The CAPTURE buffer of a frame is not queued again while a slot or a pending
//!   display holds the frame, so the driver never overwrites a reference.
//! * Display order is decode order minus hidden frames (`show_frame = 0`), plus
//!   `show_existing_frame`, which needs no request: the CAPTURE buffer of that slot's frame is
//!   output again.
//! * A key frame or intra-only frame with a new size (or bit depth) restarts the device as
//!   GStreamer does: drain, stream off, free the buffers, `S_FMT(OUTPUT)` with the new size,
//!   the frame control with the stream's bit depth (so the driver picks NV12 or P010),
//!   `G_FMT(CAPTURE)`, allocate, stream on.
//! * [`run_observed`] also tells an [`Observer`] when each request is queued and completed
//!   (`daedalus bench` times the device with it); [`run`] only reports progress.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use daedalus_proto::formats::{BitDepth, PIX_FMT_VP9_FRAME};
use log::{debug, info, warn};

use crate::codec::Codec;
use crate::demux::{DemuxError, Demuxer, Probe, Track};
use crate::ffmpeg_timing::FrameMd5Params;
use crate::media::{MediaDevice, Request, RequestWait};
use crate::names::fourcc_to_string;
use crate::picture::{self, CaptureLayout, FrameMd5Writer};
use crate::sys::*;
use crate::v4l2::{CtrlPayload, Mapping, QueueBuf, VideoDevice, Which};
use crate::vp9::header::NUM_REF_FRAMES;
use crate::vp9::stream::{StreamError, StreamFrame, Vp9Stream};
use crate::vp9::v4l2::{frame_control, validate_compressed_hdr, validate_frame, RefTimestamps};

const OUTPUT: u32 = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;
const CAPTURE: u32 = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;

/// Most requests in flight.
pub const MAX_IN_FLIGHT: usize = 8;

/// Where the input comes from.
#[derive(Debug)]
pub enum Input {
    /// A file, read twice.
    File(PathBuf),
    /// Data already in memory (standard input), shared with libavformat's reader.
    Memory(Arc<[u8]>),
}

impl Input {
    pub(crate) fn open(&self) -> Result<Box<dyn Read + '_>> {
        Ok(match self {
            Input::File(path) => Box::new(BufReader::new(
                File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
            )),
            Input::Memory(data) => Box::new(Cursor::new(&data[..])),
        })
    }
}

/// The inputs `daedalus decode` reads, for the message about one it does not recognise.
pub const RECOGNISED_INPUTS: &str = "VP9, AV1 or H.264 in any container FFmpeg's \
     libavformat reads (IVF, WebM / Matroska, MP4, MPEG-TS...); AV1 as a low-overhead \
     (Section 5, .obu) or Annex B OBU stream; H.264 as an Annex B byte stream (.264, .h264, .jsv)";

/// An input that is none of the streams `daedalus decode` reads.
#[derive(Debug, thiserror::Error)]
#[error("not a recognised stream (daedalus decode reads {RECOGNISED_INPUTS})")]
pub struct Unrecognised;

/// The codec of `input`, from its container or, for bare streams, its bitstream: H.264 (Annex B,
/// or any container libavformat reads: MP4, Matroska, MPEG-TS...), VP9 or AV1 (IVF, WebM /
/// Matroska, MP4...) or AV1 OBUs. An input that is none of these is an [`Unrecognised`] error;
/// a container holding another codec says which one it holds.
pub fn identify(input: &Input) -> Result<Codec> {
    let mut head = Vec::new();
    input
        .open()?
        .take(64 * 1024)
        .read_to_end(&mut head)
        .context("cannot read the input")?;
    if head.is_empty() {
        bail!("the input is empty");
    }
    if crate::h264::nal::looks_like_annex_b(&head) {
        return Ok(Codec::H264);
    }
    match Demuxer::open(input, Probe::Headers) {
        Ok(Some(demuxer)) => return Ok(demuxer.track().codec),
        Ok(None) => {}
        Err(DemuxError::NoVideo { .. }) => return Err(Unrecognised.into()),
        Err(e) => return Err(e.into()),
    }
    let mut data = Vec::new();
    input
        .open()?
        .read_to_end(&mut data)
        .context("cannot read the input")?;
    match crate::av1::obu::detect(&data) {
        Ok(_) => Ok(Codec::Av1),
        Err(_) => Err(Unrecognised.into()),
    }
}

/// The container of `input` opened for decoding `codec`, or `None` for a bare stream.
pub(crate) fn open_container(input: &Input, codec: Codec, probe: Probe) -> Result<Option<Demuxer>> {
    let Some(demuxer) = Demuxer::open(input, probe)? else {
        return Ok(None);
    };
    let track = demuxer.track();
    if track.codec != codec {
        bail!(
            "the {} file holds {}, not {}",
            track.container,
            track.codec.name(),
            codec.name()
        );
    }
    Ok(Some(demuxer))
}

/// The outputs of decoded pictures.
#[derive(Default)]
pub struct Outputs {
    /// Raw planar pictures (`yuv420p` / `yuv420p10le`), one after the other.
    pub raw: Option<Box<dyn Write>>,
    /// FFmpeg framemd5 lines.
    pub framemd5: Option<Box<dyn Write>>,
    /// One MD5 per line.
    pub md5: Option<Box<dyn Write>>,
    /// One MD5 of all displayed pictures, one after the other (the layout of dav1d's / aomdec's
    /// `--md5`: planar, 8-bit samples as bytes, deeper ones as 16-bit little endian).
    pub whole_md5: Option<Box<dyn Write>>,
}

/// Where the decoded pictures go: the run's [`Outputs`], fed one planar picture at a time in
/// display order. Shared by every codec's client.
pub(crate) struct PictureSink {
    raw: Option<Box<dyn Write>>,
    md5: Option<Box<dyn Write>>,
    framemd5: Option<FrameMd5Writer<Box<dyn Write>>>,
    /// The running MD5 of every picture and where it goes at the end.
    whole_md5: Option<(md5::Md5, Box<dyn Write>)>,
}

impl PictureSink {
    /// `params` times the framemd5 output like FFmpeg.
    pub(crate) fn new(outputs: Outputs, params: FrameMd5Params) -> Self {
        PictureSink {
            raw: outputs.raw,
            md5: outputs.md5,
            framemd5: outputs.framemd5.map(|out| FrameMd5Writer::new(out, params)),
            whole_md5: outputs
                .whole_md5
                .map(|out| (<md5::Md5 as md5::Digest>::new(), out)),
        }
    }

    /// Whether any output needs the pictures (else the client need not read them).
    pub(crate) fn wants_pictures(&self) -> bool {
        self.raw.is_some()
            || self.md5.is_some()
            || self.framemd5.is_some()
            || self.whole_md5.is_some()
    }

    /// Writes one picture (planar, as [`picture::to_planar`] makes it) shown at `pts`.
    pub(crate) fn write(&mut self, pts: i64, width: u32, height: u32, planar: &[u8]) -> Result<()> {
        if let Some(raw) = &mut self.raw {
            raw.write_all(planar).context("cannot write the pictures")?;
        }
        if let Some(w) = &mut self.framemd5 {
            w.frame(pts, width, height, planar)
                .context("cannot write the framemd5 output")?;
        }
        if let Some(md5) = &mut self.md5 {
            writeln!(md5, "{}", picture::md5_hex(planar)).context("cannot write the MD5s")?;
        }
        if let Some((ctx, _)) = &mut self.whole_md5 {
            md5::Digest::update(ctx, planar);
        }
        Ok(())
    }

    /// Writes the whole-output MD5 (once: the end of the run) and flushes every output.
    pub(crate) fn finish(&mut self) -> Result<()> {
        if let Some((ctx, mut out)) = self.whole_md5.take() {
            let digest = md5::Digest::finalize(ctx);
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            writeln!(out, "{hex}").context("cannot write the MD5")?;
            out.flush().context("cannot write the MD5")?;
        }
        if let Some(w) = &mut self.framemd5 {
            w.flush().context("cannot write the framemd5 output")?;
        }
        for out in [&mut self.raw, &mut self.md5].into_iter().flatten() {
            out.flush().context("cannot write an output")?;
        }
        Ok(())
    }
}

/// Buffer and request occupancy of a client, to decide whether another request may be queued.
pub(crate) struct Occupancy {
    /// Requests queued and not yet completed.
    pub in_flight: usize,
    /// The most requests to keep queued (`--in-flight`).
    pub max_in_flight: usize,
    /// OUTPUT buffers, and how many of them are free.
    pub outputs: usize,
    pub free_outputs: usize,
    /// CAPTURE buffers, and how many of them hold a picture (in flight, reference, or waiting
    /// for display).
    pub captures: usize,
    pub held_captures: usize,
}

impl Occupancy {
    /// True when a request can be queued now, false when the oldest one must complete first;
    /// an error when nothing in flight can free a CAPTURE buffer (the client would wait forever).
    pub fn has_room(&self) -> Result<bool> {
        if self.has_output_room() && self.held_captures < self.captures {
            return Ok(true);
        }
        if self.in_flight == 0 {
            bail!(
                "all {} CAPTURE buffers hold reference or pending pictures \
                 (ask for more with --capture-buffers)",
                self.captures
            );
        }
        Ok(false)
    }
}

impl Occupancy {
    /// True when a request that needs no CAPTURE buffer of its own (a further slice of a held
    /// picture) can be queued now.
    pub fn has_output_room(&self) -> bool {
        self.in_flight < self.max_in_flight.min(self.outputs) && self.free_outputs > 0
    }
}

/// A request that completed: when, and the CAPTURE buffer it returned (if it was asked for).
pub(crate) struct Completed {
    pub at: Instant,
    /// The CAPTURE buffer's index and whether it carries `V4L2_BUF_FLAG_ERROR`.
    pub capture: Option<(u32, bool)>,
}

/// Waits for the request `request` (frame `id`, OUTPUT buffer `buf`, queued with timestamp
/// `id` us) to complete, dequeues its OUTPUT buffer, re-initialises the request and, with
/// `capture`, dequeues the CAPTURE buffer that must carry the same timestamp. Every way the
/// device can break the contract (time-out, other buffers, decode order) is an error.
pub(crate) fn complete_request(
    dev: &VideoDevice,
    request: &Request,
    buf: usize,
    id: u64,
    timeout: Duration,
    capture: bool,
) -> Result<Completed> {
    let at = match request.wait(timeout)? {
        RequestWait::Completed => Instant::now(),
        RequestWait::TimedOut => bail!(
            "the request of frame {id} (timestamp {id} us) did not complete within {} ms: the \
             driver (or its decoding daemon) does not answer",
            timeout.as_millis()
        ),
        RequestWait::NotQueued => bail!("the request of frame {id} is not queued"),
    };
    let out = dev
        .dequeue_wait(OUTPUT, timeout)
        .context("request completed but its OUTPUT buffer cannot be dequeued")?;
    if out.index as usize != buf {
        bail!(
            "dequeued OUTPUT buffer {} while waiting for {buf}",
            out.index
        );
    }
    request.reinit()?;
    if !capture {
        return Ok(Completed { at, capture: None });
    }
    let cap = dev
        .dequeue_wait(CAPTURE, timeout)
        .context("request completed but no CAPTURE buffer can be dequeued")?;
    if cap.timestamp_us != id as i64 {
        bail!(
            "CAPTURE buffer {} carries timestamp {} us, expected {id} (decode order broken)",
            cap.index,
            cap.timestamp_us
        );
    }
    let error = cap.flags & V4L2_BUF_FLAG_ERROR != 0;
    Ok(Completed {
        at,
        capture: Some((cap.index, error)),
    })
}

/// The device refused the stream's parameters (the controls describing it): the stream is out
/// of what the device decodes, as opposed to a failure of the client or the device.
#[derive(Debug, thiserror::Error)]
#[error("refused by the device: {0}")]
pub struct Refused(pub String);

/// Parameters of a decode run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The video device.
    pub video: PathBuf,
    /// Its media device.
    pub media: PathBuf,
    /// How long one request may take.
    pub timeout: Duration,
    /// Requests in flight (1..=[`MAX_IN_FLIGHT`]).
    pub in_flight: usize,
    /// CAPTURE buffers to ask for (at least 9: 8 reference slots and the frame being decoded).
    pub capture_buffers: u32,
    /// Stop after this many IVF packets.
    pub limit: Option<u64>,
    /// AV1 streams: what the OUTPUT buffers hold and whether film grain is applied.
    pub av1: crate::av1::Av1Options,
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// IVF packets read.
    pub packets: u64,
    /// Requests queued (one per decoded frame).
    pub submitted: u64,
    /// Frames that came back without the error flag.
    pub decoded: u64,
    /// Frames that came back with `V4L2_BUF_FLAG_ERROR`.
    pub decode_errors: u64,
    /// Frames that were not submitted (unparsable, refused controls, no key frame yet,
    /// unsupported), counted as errors too.
    pub skipped: u64,
    /// Frames displayed (shown frames and `show_existing_frame`).
    pub shown: u64,
    /// Displayed frames whose picture is a decode error (not written to the outputs).
    pub shown_errors: u64,
    /// Times the device was (re)configured for a stream size or bit depth.
    pub configurations: u64,
    /// Time from the first request to the end.
    pub elapsed: Duration,
}

impl Summary {
    /// Whether everything decoded without error.
    pub fn success(&self) -> bool {
        self.decode_errors == 0 && self.skipped == 0 && self.shown_errors == 0
    }

    /// Decoded frames per second.
    pub fn fps(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            (self.decoded + self.decode_errors) as f64 / secs
        } else {
            0.0
        }
    }
}

/// What the first pass learns about the file.
struct Prescan {
    track: Track,
    max_packet: usize,
}

/// The first pass over a VP9 container: what it says, and its largest packet (to size the OUTPUT
/// buffers without holding the whole file in memory).
fn prescan(input: &Input) -> Result<Prescan> {
    let Some(mut demuxer) = open_container(input, Codec::Vp9, Probe::StreamInfo)? else {
        bail!("a VP9 stream must be in a container (IVF, WebM, MP4...)");
    };
    let mut max_packet = 0;
    let mut buf = Vec::new();
    while demuxer.next_packet(&mut buf)?.is_some() {
        max_packet = max_packet.max(buf.len());
    }
    Ok(Prescan {
        track: demuxer.track().clone(),
        max_packet,
    })
}

/// What a caller of [`run_observed`] is told while a run goes on.
pub trait Observer {
    /// Called now and then (every 500 ms or so) with the counts so far.
    fn progress(&mut self, _summary: &Summary) {}

    /// A request was queued: `id` is its frame's OUTPUT timestamp in microseconds (unique,
    /// increasing), `at` the time just before `MEDIA_REQUEST_IOC_QUEUE`.
    fn queued(&mut self, _id: u64, _at: Instant) {}

    /// The request of frame `id` completed: `at` is when waiting for it returned (requests are
    /// waited for in the order they were queued), `error` whether its CAPTURE buffer came back
    /// with `V4L2_BUF_FLAG_ERROR`.
    fn completed(&mut self, _id: u64, _at: Instant, _error: bool) {}
}

/// An [`Observer`] that only forwards progress.
pub(crate) struct ProgressFn<'a>(pub(crate) &'a mut dyn FnMut(&Summary));

impl Observer for ProgressFn<'_> {
    fn progress(&mut self, summary: &Summary) {
        (self.0)(summary)
    }
}

/// Runs a decode of `input` on the device of `opts`, writing the pictures to `outputs`, and
/// calling `progress` now and then.
pub fn run(
    input: &Input,
    opts: &Options,
    outputs: Outputs,
    progress: &mut dyn FnMut(&Summary),
) -> Result<Summary> {
    run_observed(input, opts, outputs, &mut ProgressFn(progress))
}

/// [`run`], telling `observer` about progress and about every request queued and completed.
pub fn run_observed(
    input: &Input,
    opts: &Options,
    outputs: Outputs,
    observer: &mut dyn Observer,
) -> Result<Summary> {
    if crate::av1::is_av1(input)? {
        return crate::av1::run_observed(input, opts, outputs, observer);
    }
    let scan = prescan(input)?;
    let setup = StreamSetup {
        pixfmt: PIX_FMT_VP9_FRAME,
        codec: "VP9",
        max_packet: scan.max_packet,
        framemd5: scan.track.framemd5,
        description: format!(
            "{}x{} {}",
            scan.track.width, scan.track.height, scan.track.container
        ),
    };
    let mut dec = Decoder::new(opts, setup, outputs, observer)?;
    let demuxer = open_container(input, Codec::Vp9, Probe::Headers)?
        .context("the input is no longer a VP9 container")?;
    let mut stream = Vp9Stream::new(demuxer);
    let mut compressed = Box::<v4l2_ctrl_vp9_compressed_hdr>::default();
    let mut last_progress = Instant::now();
    let mut last_packet = None;
    let result = loop {
        let frame = match stream.next_frame(&mut compressed) {
            Ok(Some(frame)) => frame,
            Ok(None) => break Ok(()),
            Err(StreamError::Frame {
                packet,
                frame,
                error,
            }) => {
                warn!("packet {packet}, frame {frame}: {error}: skipped");
                dec.summary.skipped += 1;
                continue;
            }
            Err(e) => break Err(anyhow::Error::from(e)),
        };
        if last_packet != Some(frame.packet) {
            if opts.limit.is_some_and(|limit| frame.packet >= limit) {
                break Ok(());
            }
            last_packet = Some(frame.packet);
            dec.summary.packets += 1;
        }
        if let Err(e) = dec.frame(&frame, &compressed) {
            break Err(e);
        }
        if last_progress.elapsed() >= Duration::from_millis(500) {
            dec.summary.elapsed = dec.started.map_or(Duration::ZERO, |t| t.elapsed());
            dec.observer.progress(&dec.summary);
            last_progress = Instant::now();
        }
    };
    match result {
        Ok(()) => {
            dec.finish()?;
            Ok(dec.summary)
        }
        Err(e) => {
            // Do not wait for requests again after a failure (a time-out would repeat for
            // each): stream off, which returns everything, and report the first error.
            if let Err(abort) = dec.abort() {
                warn!("while stopping after the error: {abort:#}");
            }
            Err(e)
        }
    }
}

/// A frame the client keeps track of: from its submission until nothing refers to it.
#[derive(Clone, Copy, Debug)]
struct Tracked {
    /// Its OUTPUT timestamp in microseconds (unique).
    id: u64,
    /// Still being decoded.
    in_flight: bool,
    /// Decoded with the error flag (or its picture is gone).
    error: bool,
    /// The CAPTURE buffer holding its picture, once decoded.
    capture: Option<u32>,
    /// Reference slots, pending displays and the in-flight request holding it.
    refs: u32,
    width: u32,
    height: u32,
}

impl Tracked {
    fn holds_buffer(&self) -> bool {
        self.in_flight || self.capture.is_some()
    }
}

/// One picture to output, in display order.
#[derive(Clone, Copy, Debug)]
struct Display {
    id: u64,
    /// Timestamp of the packet that displayed it (for the framemd5 output).
    pts: i64,
}

/// One queued request.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    id: u64,
    /// Index of its OUTPUT buffer and of its request.
    buf: usize,
}

/// The buffers of one device configuration.
struct Session {
    width: u32,
    height: u32,
    depth: BitDepth,
    layout: CaptureLayout,
    output: Vec<Mapping>,
    free_output: Vec<usize>,
    capture: Vec<Mapping>,
}

/// What the codec front end tells the decoder about the stream.
pub(crate) struct StreamSetup {
    /// The OUTPUT fourcc.
    pub pixfmt: u32,
    /// Codec name, for messages.
    pub codec: &'static str,
    /// The largest payload of one request.
    pub max_packet: usize,
    /// The timing of the framemd5 output.
    pub framemd5: FrameMd5Params,
    /// What the container says, for the log.
    pub description: String,
}

/// One frame for [`Decoder::submit`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct FrameJob {
    /// Container packet number (for messages).
    pub packet: u64,
    /// Its timestamp (for the framemd5 output).
    pub pts: i64,
    /// The reference slots the frame refreshes.
    pub refresh: u8,
    /// Whether it is displayed.
    pub show: bool,
    /// The picture size to output.
    pub width: u32,
    /// See `width`.
    pub height: u32,
}

/// The slot-based request engine shared by the VP9 and AV1 clients: both codecs have 8
/// reference slots refreshed by `refresh_frame_flags`, hidden frames and
/// `show_existing_frame`; the codec front ends parse and build the controls, this queues the
/// requests, tracks references and outputs the pictures.
pub(crate) struct Decoder<'a> {
    opts: &'a Options,
    pixfmt: u32,
    codec: &'static str,
    /// Output only the luma plane (4:0:0 streams: what the references hash).
    pub luma_only: bool,
    observer: &'a mut dyn Observer,
    dev: VideoDevice,
    requests: Vec<Request>,
    output_size: u32,
    session: Option<Session>,
    tracked: Vec<Tracked>,
    in_flight: VecDeque<InFlight>,
    displays: VecDeque<Display>,
    slots: [Option<u64>; NUM_REF_FRAMES],
    next_id: u64,
    sink: PictureSink,
    planar: Vec<u8>,
    summary: Summary,
    started: Option<Instant>,
    warned_no_key: bool,
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(
        opts: &'a Options,
        setup: StreamSetup,
        outputs: Outputs,
        observer: &'a mut dyn Observer,
    ) -> Result<Self> {
        if !(1..=MAX_IN_FLIGHT).contains(&opts.in_flight) {
            bail!("requests in flight must be 1 to {MAX_IN_FLIGHT}");
        }
        let dev = VideoDevice::open(&opts.video)?;
        let cap = dev.query_capability()?;
        let caps = cap.node_caps();
        if caps & V4L2_CAP_VIDEO_M2M_MPLANE == 0 || caps & V4L2_CAP_STREAMING == 0 {
            bail!(
                "{} ({}) is not a multi-planar memory-to-memory streaming device",
                opts.video.display(),
                cap.driver
            );
        }
        if !dev
            .enum_formats(OUTPUT)?
            .iter()
            .any(|f| f.pixelformat == setup.pixfmt)
        {
            bail!(
                "{} ({}) does not decode {} (no {} OUTPUT format)",
                opts.video.display(),
                cap.driver,
                setup.codec,
                fourcc_to_string(setup.pixfmt)
            );
        }
        let media = MediaDevice::open(&opts.media)?;
        let requests = (0..opts.in_flight)
            .map(|_| media.alloc_request())
            .collect::<Result<Vec<_>, _>>()?;
        // Room for the largest packet; the driver bounds it.
        let output_size = u32::try_from(setup.max_packet.next_multiple_of(4096)).unwrap_or(0);
        let tb = setup.framemd5.time_base;
        info!(
            "{}: {} {}, time base {}/{}, largest packet {} bytes",
            opts.video.display(),
            setup.codec,
            setup.description,
            tb.numerator(),
            tb.denominator(),
            setup.max_packet
        );
        Ok(Decoder {
            opts,
            pixfmt: setup.pixfmt,
            codec: setup.codec,
            luma_only: false,
            observer,
            dev,
            requests,
            output_size,
            session: None,
            tracked: Vec::with_capacity(32),
            in_flight: VecDeque::with_capacity(MAX_IN_FLIGHT),
            displays: VecDeque::with_capacity(64),
            slots: [None; NUM_REF_FRAMES],
            next_id: 1,
            sink: PictureSink::new(outputs, setup.framemd5),
            planar: Vec::new(),
            summary: Summary::default(),
            started: None,
            warned_no_key: false,
        })
    }

    /// Handles one frame of the stream.
    fn frame(
        &mut self,
        f: &StreamFrame<'_>,
        compressed: &v4l2_ctrl_vp9_compressed_hdr,
    ) -> Result<()> {
        let h = &f.parsed.header;
        if h.show_existing_frame {
            return self.show_existing(f.packet, f.pts, h.frame_to_show_map_idx, false);
        }

        let Some(depth) = BitDepth::from_bits(u32::from(h.bit_depth)) else {
            warn!(
                "packet {}: {}-bit frame: daedalus decodes 8 and 10 bits only; skipped",
                f.packet, h.bit_depth
            );
            return self.skip(h.refresh_frame_flags);
        };
        if h.is_intra() {
            let reconfigure = self.session.as_ref().map_or(true, |s| {
                (s.width, s.height, s.depth) != (h.width, h.height, depth)
            });
            if reconfigure {
                let mut control = frame_control(h, &f.parsed.compressed, RefTimestamps::default());
                self.configure(
                    h.width,
                    h.height,
                    depth,
                    &mut [CtrlPayload::new(V4L2_CID_STATELESS_VP9_FRAME, &mut control)],
                )?;
            }
        } else {
            let Some(s) = &self.session else {
                if !self.warned_no_key {
                    warn!("the stream does not start with a key frame: skipping to the first one");
                    self.warned_no_key = true;
                }
                return self.skip(h.refresh_frame_flags);
            };
            if h.width > s.width || h.height > s.height || depth != s.depth {
                warn!(
                    "packet {}: inter frame of {}x{} ({}-bit) does not fit the {}x{} CAPTURE \
                     buffers (V4L2 clients reallocate on key frames only); skipped",
                    f.packet, h.width, h.height, h.bit_depth, s.width, s.height
                );
                return self.skip(h.refresh_frame_flags);
            }
        }

        let refs = if h.is_intra() {
            RefTimestamps::default()
        } else {
            let ts =
                |i: usize| self.slots[usize::from(h.ref_frame_idx[i])].map_or(0, |id| id * 1000);
            RefTimestamps {
                last: ts(0),
                golden: ts(1),
                alt: ts(2),
            }
        };
        let mut control = frame_control(h, &f.parsed.compressed, refs);
        if let Err(e) = validate_frame(&control).and(validate_compressed_hdr(compressed)) {
            warn!("packet {}: {e}; skipped", f.packet);
            return self.skip(h.refresh_frame_flags);
        }

        let mut compressed_copy = *compressed;
        self.submit(
            f.data,
            &mut [
                CtrlPayload::new(V4L2_CID_STATELESS_VP9_FRAME, &mut control),
                CtrlPayload::new(V4L2_CID_STATELESS_VP9_COMPRESSED_HDR, &mut compressed_copy),
            ],
            FrameJob {
                packet: f.packet,
                pts: f.pts,
                refresh: h.refresh_frame_flags,
                show: h.show_frame,
                width: h.width,
                height: h.height,
            },
        )
    }

    /// Displays the frame in reference slot `slot` again (`show_existing_frame`); with
    /// `refresh_all` (an AV1 key frame shown this way) it also takes every slot.
    pub(crate) fn show_existing(
        &mut self,
        packet: u64,
        pts: i64,
        slot: u8,
        refresh_all: bool,
    ) -> Result<()> {
        match self.slots.get(usize::from(slot)).copied().flatten() {
            Some(id) => {
                self.tracked_mut(id)?.refs += 1;
                self.displays.push_back(Display { id, pts });
                if refresh_all {
                    self.tracked_mut(id)?.refs += NUM_REF_FRAMES as u32;
                    self.refresh(0xff, Some(id))?;
                }
            }
            None => {
                warn!(
                    "packet {packet}: show_existing_frame of slot {slot}, which holds no decoded \
                     frame"
                );
                self.summary.skipped += 1;
            }
        }
        self.flush_displays()
    }

    /// The timestamps (ns, `v4l2_timeval_to_ns()`) of the frames in the reference slots, 0 for
    /// an empty slot.
    pub(crate) fn slot_timestamps(&self) -> [u64; NUM_REF_FRAMES] {
        self.slots.map(|s| s.map_or(0, |id| id * 1000))
    }

    /// The counts so far.
    pub(crate) fn summary_mut(&mut self) -> &mut Summary {
        &mut self.summary
    }

    /// Tells the observer the counts so far.
    pub(crate) fn report_progress(&mut self) {
        self.summary.elapsed = self.started.map_or(Duration::ZERO, |t| t.elapsed());
        self.observer.progress(&self.summary);
    }

    /// Queues one request: `data` in an OUTPUT buffer, `ctrls` in the request. A frame that
    /// does not fit or whose controls the driver refuses is skipped (counted, warned).
    pub(crate) fn submit(
        &mut self,
        data: &[u8],
        ctrls: &mut [CtrlPayload<'_>],
        job: FrameJob,
    ) -> Result<()> {
        self.make_room()?;
        let buf = match self.fill_output(data)? {
            Ok(buf) => buf,
            Err(len) => {
                warn!(
                    "packet {}: frame of {} bytes does not fit the {len}-byte OUTPUT buffers; \
                     skipped",
                    job.packet,
                    data.len()
                );
                return self.skip(job.refresh);
            }
        };

        let id = self.next_id;
        self.next_id += 1;
        let request = &self.requests[buf];
        let set = self
            .dev
            .set_ext_ctrls(Which::Request(request.as_fd()), ctrls);
        if let Err(e) = set {
            // A payload the kernel refuses is this client's bug: say so, and go on.
            warn!(
                "packet {}: the driver refused the {} controls: {e}; skipped",
                job.packet, self.codec
            );
            request.reinit()?;
            if let Some(s) = &mut self.session {
                s.free_output.push(buf);
            }
            return self.skip(job.refresh);
        }
        let bytesused = u32::try_from(data.len()).unwrap_or(u32::MAX);
        self.dev
            .queue_buffer(&QueueBuf {
                buf_type: OUTPUT,
                index: u32::try_from(buf).unwrap_or(u32::MAX),
                bytesused,
                timestamp_us: id,
                request: Some(request.as_fd()),
            })
            .with_context(|| format!("packet {}: cannot queue the OUTPUT buffer", job.packet))?;
        let queued_at = Instant::now();
        request
            .queue()
            .with_context(|| format!("packet {}: cannot queue the request", job.packet))?;
        self.observer.queued(id, queued_at);
        self.started.get_or_insert_with(Instant::now);
        self.summary.submitted += 1;
        debug!(
            "packet {}: request {buf}, ts {id} us, {}refresh {:#04x}, {}x{}",
            job.packet,
            if job.show { "" } else { "hidden, " },
            job.refresh,
            job.width,
            job.height
        );

        // The request holds it until completion, each slot it refreshes, and its display.
        let mut refs_count = 1 + u32::from(job.show);
        refs_count += job.refresh.count_ones();
        self.tracked.push(Tracked {
            id,
            in_flight: true,
            error: false,
            capture: None,
            refs: refs_count,
            width: job.width,
            height: job.height,
        });
        self.in_flight.push_back(InFlight { id, buf });
        self.refresh(job.refresh, Some(id))?;
        if job.show {
            self.displays.push_back(Display { id, pts: job.pts });
        }
        self.flush_displays()
    }

    /// Copies a frame into a free OUTPUT buffer: its index, or `Err(buffer size)` if the
    /// frame does not fit.
    fn fill_output(&mut self, data: &[u8]) -> Result<Result<usize, usize>> {
        let session = self
            .session
            .as_mut()
            .ok_or_else(|| anyhow!("internal error: no session"))?;
        let Some(buf) = session.free_output.pop() else {
            bail!("internal error: no free OUTPUT buffer after making room");
        };
        let out = session.output[buf].as_mut_slice();
        if data.len() > out.len() {
            let len = out.len();
            session.free_output.push(buf);
            return Ok(Err(len));
        }
        out[..data.len()].copy_from_slice(data);
        Ok(Ok(buf))
    }

    /// Counts a frame that is not decoded; the slots it would refresh become empty, so frames
    /// referring to them fail rather than use a stale picture.
    pub(crate) fn skip(&mut self, refresh_frame_flags: u8) -> Result<()> {
        self.summary.skipped += 1;
        self.refresh(refresh_frame_flags, None)
    }

    /// Points the slots of `flags` at `id`, releasing what they held.
    fn refresh(&mut self, flags: u8, id: Option<u64>) -> Result<()> {
        for i in 0..NUM_REF_FRAMES {
            if flags & (1 << i) != 0 {
                if let Some(old) = std::mem::replace(&mut self.slots[i], id) {
                    self.release(old)?;
                }
            }
        }
        Ok(())
    }

    fn tracked_index(&self, id: u64) -> Result<usize> {
        self.tracked
            .iter()
            .position(|t| t.id == id)
            .ok_or_else(|| anyhow!("internal error: frame {id} is not tracked"))
    }

    fn tracked_mut(&mut self, id: u64) -> Result<&mut Tracked> {
        let i = self.tracked_index(id)?;
        Ok(&mut self.tracked[i])
    }

    /// Drops one reference to frame `id`; with the last one, its CAPTURE buffer goes back to
    /// the driver.
    fn release(&mut self, id: u64) -> Result<()> {
        let i = self.tracked_index(id)?;
        let t = &mut self.tracked[i];
        t.refs = t.refs.saturating_sub(1);
        if t.refs > 0 {
            return Ok(());
        }
        let t = self.tracked.swap_remove(i);
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
        Ok(())
    }

    /// Waits until a new request can be queued: a free OUTPUT buffer and request, fewer than
    /// `in_flight` requests queued, and a CAPTURE buffer nobody holds.
    fn make_room(&mut self) -> Result<()> {
        loop {
            let Some(s) = &self.session else {
                bail!("internal error: no session");
            };
            let room = Occupancy {
                in_flight: self.in_flight.len(),
                max_in_flight: self.opts.in_flight,
                outputs: s.output.len(),
                free_outputs: s.free_output.len(),
                captures: s.capture.len(),
                held_captures: self.tracked.iter().filter(|t| t.holds_buffer()).count(),
            };
            if room.has_room()? {
                return Ok(());
            }
            self.complete_oldest()?;
            self.flush_displays()?;
        }
    }

    /// Waits for the oldest request and takes its buffers back.
    fn complete_oldest(&mut self) -> Result<()> {
        let Some(f) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let request = &self.requests[f.buf];
        let done = complete_request(&self.dev, request, f.buf, f.id, self.opts.timeout, true)?;
        if let Some(s) = &mut self.session {
            s.free_output.push(f.buf);
        }
        let Some((index, error)) = done.capture else {
            bail!("internal error: no CAPTURE buffer for frame {}", f.id);
        };
        let completed_at = done.at;
        if self.tracked.iter().any(|t| t.capture == Some(index)) {
            bail!(
                "the driver returned CAPTURE buffer {} that holds another picture",
                index
            );
        }
        if error {
            self.summary.decode_errors += 1;
            debug!("frame {}: decode error (CAPTURE buffer {})", f.id, index);
        } else {
            self.summary.decoded += 1;
        }
        self.observer.completed(f.id, completed_at, error);
        let t = self.tracked_mut(f.id)?;
        t.in_flight = false;
        t.error = error;
        t.capture = Some(index);
        self.release(f.id)
    }

    /// Outputs the pictures at the head of the display queue that are decoded.
    fn flush_displays(&mut self) -> Result<()> {
        while let Some(&d) = self.displays.front() {
            let t = self.tracked[self.tracked_index(d.id)?];
            if t.in_flight {
                break;
            }
            self.displays.pop_front();
            self.summary.shown += 1;
            match (t.error, t.capture, &self.session) {
                (false, Some(index), Some(s)) => {
                    if self.sink.wants_pictures() {
                        let src = s.capture[index as usize].as_slice();
                        picture::to_planar(src, &s.layout, t.width, t.height, &mut self.planar)
                            .with_context(|| format!("frame {}: cannot read the picture", d.id))?;
                        if self.luma_only {
                            let sample = if s.depth == BitDepth::Eight { 1 } else { 2 };
                            self.planar
                                .truncate(t.width as usize * t.height as usize * sample);
                        }
                        self.write_picture(d.pts, t.width, t.height)?;
                    }
                }
                _ => {
                    self.summary.shown_errors += 1;
                    debug!("displayed frame {} is a decode error: not written", d.id);
                }
            }
            self.release(d.id)?;
        }
        Ok(())
    }

    fn write_picture(&mut self, pts: i64, width: u32, height: u32) -> Result<()> {
        self.sink.write(pts, width, height, &self.planar)
    }

    /// Waits for every request and outputs what is left.
    fn drain(&mut self) -> Result<()> {
        while !self.in_flight.is_empty() {
            self.complete_oldest()?;
        }
        self.flush_displays()
    }

    /// (Re)configures the device for `width` x `height` pictures of `depth` bits.
    pub(crate) fn configure(
        &mut self,
        width: u32,
        height: u32,
        depth: BitDepth,
        init: &mut [CtrlPayload<'_>],
    ) -> Result<()> {
        self.drain()?;
        self.teardown()?;
        info!(
            "configuring for {width}x{height}, {} bits",
            match depth {
                BitDepth::Eight => 8,
                BitDepth::Ten => 10,
            }
        );
        let dev = &self.dev;
        let out_fmt = dev
            .set_coded_format(OUTPUT, self.pixfmt, width, height, self.output_size)
            .context("cannot set the OUTPUT format")?;
        if out_fmt.pixelformat != self.pixfmt {
            bail!(
                "the driver chose {} for OUTPUT instead of {}",
                fourcc_to_string(out_fmt.pixelformat),
                fourcc_to_string(self.pixfmt)
            );
        }
        // The bit depth of the stream selects the CAPTURE format: set it before G_FMT. The
        // driver refusing this control means it does not decode such a stream at all.
        if let Err(e) = dev.set_ext_ctrls(Which::Current, init) {
            return Err(Refused(format!(
                "the driver refused the {} stream parameters ({e}): profile, bit depth or \
                 chroma format not supported",
                self.codec
            ))
            .into());
        }
        let cap_fmt = dev
            .get_format(CAPTURE)
            .context("cannot get the CAPTURE format")?;
        let plane = cap_fmt
            .planes
            .first()
            .copied()
            .ok_or_else(|| anyhow!("the CAPTURE format has no plane"))?;
        let expected = depth.capture_fourcc();
        if cap_fmt.pixelformat != expected {
            bail!(
                "the driver picked {} for CAPTURE; {}-bit pictures need {}",
                fourcc_to_string(cap_fmt.pixelformat),
                match depth {
                    BitDepth::Eight => 8,
                    BitDepth::Ten => 10,
                },
                fourcc_to_string(expected)
            );
        }
        if cap_fmt.planes.len() != 1 || cap_fmt.width < width || cap_fmt.height < height {
            bail!(
                "unusable CAPTURE format: {}x{} in {} memory planes for {width}x{height} pictures",
                cap_fmt.width,
                cap_fmt.height,
                cap_fmt.planes.len()
            );
        }
        let layout = CaptureLayout::new(depth, plane.bytesperline, cap_fmt.height);
        debug!(
            "OUTPUT {}x{} sizeimage {}, CAPTURE {} {}x{} bytesperline {} sizeimage {}",
            out_fmt.width,
            out_fmt.height,
            out_fmt.planes.first().map_or(0, |p| p.sizeimage),
            fourcc_to_string(cap_fmt.pixelformat),
            cap_fmt.width,
            cap_fmt.height,
            plane.bytesperline,
            plane.sizeimage
        );

        let n_out = u32::try_from(self.requests.len()).unwrap_or(1);
        let rb = dev
            .request_buffers(OUTPUT, V4L2_MEMORY_MMAP, n_out)
            .context("cannot allocate OUTPUT buffers")?;
        if rb.capabilities & V4L2_BUF_CAP_SUPPORTS_REQUESTS == 0 {
            bail!("the OUTPUT queue does not support requests");
        }
        if rb.count == 0 {
            bail!("the driver allocated no OUTPUT buffer");
        }
        let count = self.opts.capture_buffers.max(NUM_REF_FRAMES as u32 + 1);
        let rb_cap = dev
            .request_buffers(CAPTURE, V4L2_MEMORY_MMAP, count)
            .context("cannot allocate CAPTURE buffers")?;
        if (rb_cap.count as usize) <= NUM_REF_FRAMES {
            bail!(
                "the driver allocated {} CAPTURE buffers; {} needs at least {}",
                rb_cap.count,
                self.codec,
                NUM_REF_FRAMES + 1
            );
        }
        let usable_out = rb.count.min(n_out);
        let mut output = Vec::with_capacity(usable_out as usize);
        for i in 0..usable_out {
            // SAFETY: OUTPUT buffers are only written by `frame` while dequeued (listed in
            // `free_output`), and CAPTURE buffers only read by `flush_displays` while a
            // `Tracked` frame holds them, i.e. after DQBUF and before the QBUF in `release`.
            output.push(unsafe { dev.map_buffer(OUTPUT, i) }?);
        }
        let mut capture = Vec::with_capacity(rb_cap.count as usize);
        for i in 0..rb_cap.count {
            // SAFETY: as above.
            let map = unsafe { dev.map_buffer(CAPTURE, i) }?;
            if map.len() < layout.required_len(width, height) {
                bail!(
                    "CAPTURE buffer {i} has {} bytes, a {width}x{height} picture needs {}",
                    map.len(),
                    layout.required_len(width, height)
                );
            }
            capture.push(map);
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
            width,
            height,
            depth,
            layout,
            free_output: (0..output.len()).rev().collect(),
            output,
            capture,
        });
        self.summary.configurations += 1;
        Ok(())
    }

    /// Stops streaming and frees the buffers (after [`Self::drain`]). Frames still in
    /// reference slots lose their pictures.
    fn teardown(&mut self) -> Result<()> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        self.dev.stream_off(OUTPUT)?;
        self.dev.stream_off(CAPTURE)?;
        for t in &mut self.tracked {
            if t.capture.take().is_some() {
                t.error = true;
            }
        }
        drop(session);
        self.dev.request_buffers(OUTPUT, V4L2_MEMORY_MMAP, 0)?;
        self.dev.request_buffers(CAPTURE, V4L2_MEMORY_MMAP, 0)?;
        Ok(())
    }

    /// Ends the run: waits for everything, outputs the rest, frees the device.
    pub(crate) fn finish(&mut self) -> Result<()> {
        let drained = self.drain();
        self.summary.elapsed = self.started.map_or(Duration::ZERO, |t| t.elapsed());
        // Whatever is left in the display queue refers to frames that never completed.
        self.summary.shown += self.displays.len() as u64;
        self.summary.shown_errors += self.displays.len() as u64;
        self.displays.clear();
        let flushed = self.flush_outputs();
        let torn_down = self.teardown();
        drained.and(flushed).and(torn_down)
    }

    /// Stops without waiting for the requests in flight.
    pub(crate) fn abort(&mut self) -> Result<()> {
        self.in_flight.clear();
        self.displays.clear();
        let flushed = self.flush_outputs();
        self.teardown().and(flushed)
    }

    fn flush_outputs(&mut self) -> Result<()> {
        self.sink.finish()
    }
}

/// Opens an output: `-` is standard output.
pub fn open_output(path: &std::path::Path) -> Result<Box<dyn Write>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(io::BufWriter::new(io::stdout())));
    }
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(Box::new(io::BufWriter::new(file)))
}

#[cfg(test)]
mod tests {
    use super::Occupancy;

    fn occupancy(in_flight: usize, free_outputs: usize, held_captures: usize) -> Occupancy {
        Occupancy {
            in_flight,
            max_in_flight: 4,
            outputs: 6,
            free_outputs,
            captures: 8,
            held_captures,
        }
    }

    #[test]
    fn room_for_a_request() {
        assert!(occupancy(0, 6, 0).has_room().unwrap());
        assert!(occupancy(3, 3, 7).has_room().unwrap());
        // --in-flight reached, no free OUTPUT buffer, every CAPTURE buffer held: wait.
        assert!(!occupancy(4, 2, 4).has_room().unwrap());
        assert!(!occupancy(2, 0, 2).has_room().unwrap());
        assert!(!occupancy(1, 5, 8).has_room().unwrap());
        // Nothing in flight could free a CAPTURE buffer: an error, not a wait.
        let e = occupancy(0, 6, 8).has_room().unwrap_err().to_string();
        assert!(e.contains("--capture-buffers"), "{e}");
        // Fewer OUTPUT buffers than --in-flight: they are the limit.
        let few = Occupancy {
            outputs: 2,
            ..occupancy(2, 1, 0)
        };
        assert!(!few.has_room().unwrap());
        // A further slice needs no CAPTURE buffer: every one held is no obstacle.
        assert!(occupancy(1, 5, 8).has_output_room());
        assert!(!occupancy(4, 2, 0).has_output_room());
        assert!(!occupancy(2, 0, 0).has_output_room());
    }
}
