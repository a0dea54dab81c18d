// SPDX-License-Identifier: GPL-2.0
//! The client engine every stateless decoding client of the tools is built on (`daedalus
//! decode`, `daedalus bench`, and the VP9, H.264 and AV1 front ends): device set-up and buffers,
//! the request pool and its occupancy, completion, and the picture sink — everything but the
//! bitstream.
//!
//! A codec front end parses its stream, builds the controls of each request, and keeps its own
//! reference structure: eight slots for VP9 and AV1 (`RefSlots`), the DPB for H.264. It tells
//! the engine which pictures that structure still needs through [`References`]; the engine
//! queues a picture's CAPTURE buffer again only when nothing needs it: no request in flight, no
//! display pending, no reference.
//!
//! Pictures are named by the OUTPUT timestamp of their requests (`id` microseconds, unique and
//! increasing): the driver copies it to the CAPTURE buffer, and references name it in the
//! controls (`id * 1000` ns, `v4l2_timeval_to_ns()`).
//!
//! * [`Engine::configure`] (re)starts the device for a picture size and bit depth as GStreamer
//!   does: drain, stream off, free the buffers, `S_FMT(OUTPUT)`, the stream's controls (which
//!   select the CAPTURE format, and which a driver refuses for a stream it does not decode:
//!   [`Refused`]), `G_FMT(CAPTURE)`, allocate and map, stream on.
//! * [`Engine::new_picture`] waits for room (a free request and OUTPUT buffer, fewer than
//!   `--in-flight` requests queued, a CAPTURE buffer nobody holds); [`Engine::queue_request`]
//!   queues one request of it (H.264 slices: several, all but the last with
//!   `V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF`).
//! * One request more than `--in-flight` is prepared: while the device decodes, the next
//!   request is built (bitstream copied, controls set, OUTPUT buffer queued to it), and it is
//!   queued the moment a request completes, before that request's buffers are taken back. The
//!   device never has more than `--in-flight` requests, and the client's own work between two
//!   requests overlaps the decoding instead of adding to every picture's round trip (with
//!   `--in-flight 1` it was in series with each one).
//! * Completion is awaited with `poll(POLLPRI)` on the oldest request, with a time-out: the
//!   engine never hangs; a CAPTURE buffer with `V4L2_BUF_FLAG_ERROR` is a decode error, counted,
//!   and decoding goes on.
//! * [`Engine::show`] puts a picture in the display queue; pictures are written to the
//!   [`Outputs`] in that order as they complete, cropped to their visible window.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use daedalus_proto::formats::BitDepth;
use log::{debug, info, warn};

use crate::codec::Codec;
use crate::ffmpeg_timing::FrameMd5Params;
use crate::media::{MediaDevice, Request, RequestWait};
use crate::names::fourcc_to_string;
use crate::picture::{self, CaptureLayout, FrameMd5Writer};
use crate::sys::*;
use crate::v4l2::{CtrlPayload, Mapping, QueueBuf, VideoDevice, Which};

const OUTPUT: u32 = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;
const CAPTURE: u32 = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;

/// Most requests in flight.
pub const MAX_IN_FLIGHT: usize = 8;

/// How often the observer hears about progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

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
    /// CAPTURE buffers to ask for (at least what the codec's references and one picture being
    /// decoded need: 9 for VP9 / AV1).
    pub capture_buffers: u32,
    /// Stop after this many container packets (or H.264 pictures).
    pub limit: Option<u64>,
    /// Start at this container packet (H.264: picture), which must be a key frame (VP9), a
    /// temporal unit with a sequence header and a shown key frame (AV1) or an IDR picture
    /// (H.264): a seek. The packets before it are read but not decoded (`limit` still counts
    /// VP9 / AV1 packets from the start of the file, H.264 pictures from the seek point).
    pub start: u64,
    /// AV1 streams: what the OUTPUT buffers hold and whether film grain is applied.
    pub av1: crate::av1::Av1Options,
    /// H.264 streams: decode mode and start codes.
    pub h264: crate::h264::client::H264Options,
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Container packets (H.264: pictures) read.
    pub packets: u64,
    /// Pictures queued (one or more requests each).
    pub submitted: u64,
    /// Pictures that came back without the error flag.
    pub decoded: u64,
    /// Pictures that came back with `V4L2_BUF_FLAG_ERROR`.
    pub decode_errors: u64,
    /// Frames that were not submitted (unparsable, refused controls, no key frame yet,
    /// unsupported), counted as errors too.
    pub skipped: u64,
    /// Pictures displayed (shown frames and `show_existing_frame`).
    pub shown: u64,
    /// Displayed pictures that are decode errors (not written to the outputs).
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

    /// Decoded pictures per second.
    pub fn fps(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            (self.decoded + self.decode_errors) as f64 / secs
        } else {
            0.0
        }
    }
}

/// What a caller of a run is told while it goes on.
pub trait Observer {
    /// Called now and then (every 500 ms or so) with the counts so far.
    fn progress(&mut self, _summary: &Summary) {}

    /// The first request of picture `id` was queued: `id` is its OUTPUT timestamp in
    /// microseconds (unique, increasing), `at` the time just before `MEDIA_REQUEST_IOC_QUEUE`.
    fn queued(&mut self, _id: u64, _at: Instant) {}

    /// The last request of picture `id` completed: `at` is when waiting for it returned
    /// (requests are waited for in the order they were queued), `error` whether its CAPTURE
    /// buffer came back with `V4L2_BUF_FLAG_ERROR`.
    fn completed(&mut self, _id: u64, _at: Instant, _error: bool) {}

    /// Whether [`Self::displayed`] wants the pictures themselves (else it is given `None` for
    /// every picture, and the engine reads none for it).
    fn wants_pictures(&self) -> bool {
        false
    }

    /// A picture was displayed (in display order, every one, decode errors included): `pts` is
    /// what its codec gave [`Engine::show`], `picture` the planar picture (as the outputs get
    /// it) when it decoded without error and [`Self::wants_pictures`], else `None`; `error`
    /// whether it is a decode error (or its buffer is gone).
    fn displayed(&mut self, _pts: Option<i64>, _picture: Option<Shown<'_>>, _error: bool) {}

    /// What the run should do now (asked once per frame, from [`Engine::tick`]): go on, or
    /// disturb itself the way a real client may (`daedalus stress`).
    fn action(&mut self) -> Action {
        Action::Continue
    }
}

/// A displayed picture, for [`Observer::displayed`].
#[derive(Clone, Copy, Debug)]
pub struct Shown<'a> {
    /// Visible width.
    pub width: u32,
    /// Visible height.
    pub height: u32,
    /// The planar picture (`yuv420p` / `yuv420p10le`, what the framemd5 output hashes).
    pub planar: &'a [u8],
}

/// What an [`Observer`] asks the run to do (see [`Observer::action`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Go on.
    Continue,
    /// Stop at once, without waiting for the requests in flight: the run ends with an
    /// [`Interrupted`] error, and the device is closed with whatever is still queued.
    Close,
    /// Wait for the requests in flight, then STREAMOFF both queues and free the buffers: the
    /// codec starts again from its next key frame (a forward seek in the same context).
    Restart,
    /// STREAMOFF the OUTPUT queue with requests still queued (they are dropped: their pictures
    /// become errors), then the CAPTURE queue; the codec starts again from its next key frame.
    DropQueued,
}

/// The run was stopped by its observer ([`Action::Close`]).
#[derive(Debug, thiserror::Error)]
#[error("the run was closed by its observer")]
pub struct Interrupted;

/// A request did not complete in time: the driver (or its decoding daemon) does not answer.
#[derive(Debug, thiserror::Error)]
#[error(
    "the request of picture {id} (timestamp {id} us) did not complete within {ms} ms: \
     the driver (or its decoding daemon) does not answer"
)]
pub struct RequestTimedOut {
    /// The picture (its OUTPUT timestamp in microseconds).
    pub id: u64,
    /// The time-out.
    pub ms: u128,
}

/// An [`Observer`] that only forwards progress.
pub(crate) struct ProgressFn<'a>(pub(crate) &'a mut dyn FnMut(&Summary));

impl Observer for ProgressFn<'_> {
    fn progress(&mut self, summary: &Summary) {
        (self.0)(summary)
    }
}

/// The device refused the stream's parameters (the controls describing it): the stream is out
/// of what the device decodes, as opposed to a failure of the client or the device. `daedalus
/// decode` exits with status 3 on it.
#[derive(Debug, thiserror::Error)]
#[error("refused by the device: {0}")]
pub struct Refused(pub String);

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

/// Opens an output: `-` is standard output.
pub fn open_output(path: &std::path::Path) -> Result<Box<dyn Write>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(io::BufWriter::new(io::stdout())));
    }
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(Box::new(io::BufWriter::new(file)))
}

/// Where the decoded pictures go: the run's [`Outputs`], fed one planar picture at a time in
/// display order.
struct PictureSink {
    raw: Option<Box<dyn Write>>,
    md5: Option<Box<dyn Write>>,
    framemd5: Option<FrameMd5Writer<Box<dyn Write>>>,
    /// The running MD5 of every picture and where it goes at the end.
    whole_md5: Option<(md5::Md5, Box<dyn Write>)>,
}

impl PictureSink {
    /// `params` times the framemd5 output like FFmpeg.
    fn new(outputs: Outputs, params: FrameMd5Params) -> Self {
        PictureSink {
            raw: outputs.raw,
            md5: outputs.md5,
            framemd5: outputs.framemd5.map(|out| FrameMd5Writer::new(out, params)),
            whole_md5: outputs
                .whole_md5
                .map(|out| (<md5::Md5 as md5::Digest>::new(), out)),
        }
    }

    /// Whether any output needs the pictures (else the engine does not read them).
    fn wants_pictures(&self) -> bool {
        self.raw.is_some()
            || self.md5.is_some()
            || self.framemd5.is_some()
            || self.whole_md5.is_some()
    }

    /// Writes one picture (planar, as [`picture::to_planar`] makes it) shown at `pts`.
    fn write(&mut self, pts: i64, width: u32, height: u32, planar: &[u8]) -> Result<()> {
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
    fn finish(&mut self) -> Result<()> {
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

/// Buffer and request occupancy, to decide whether another request may be queued.
struct Occupancy {
    /// Requests queued whose buffers are not taken back yet.
    in_flight: usize,
    /// The most requests to keep queued on the device (`--in-flight`); one more may be
    /// prepared behind them, queued when one of them completes.
    max_in_flight: usize,
    /// OUTPUT buffers, and how many of them are free.
    outputs: usize,
    free_outputs: usize,
    /// CAPTURE buffers, and how many of them hold a picture (in flight, reference, or waiting
    /// for display).
    captures: usize,
    held_captures: usize,
}

impl Occupancy {
    /// True when a new picture can be queued now, false when the oldest request must complete
    /// first; an error when nothing in flight can free a CAPTURE buffer (the client would wait
    /// forever).
    fn has_room(&self) -> Result<bool> {
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

    /// True when a request that needs no CAPTURE buffer of its own (a further slice of a held
    /// picture) can be queued now.
    fn has_output_room(&self) -> bool {
        self.in_flight < (self.max_in_flight + 1).min(self.outputs) && self.free_outputs > 0
    }
}

/// Which pictures a codec's reference structure still needs (their CAPTURE buffers must not be
/// decoded into again): the reference slots of VP9 and AV1, the H.264 DPB.
pub trait References {
    /// Whether picture `id` is still referenced.
    fn holds(&self, id: u64) -> bool;
}

/// Number of reference slots of VP9 and AV1.
pub const NUM_REF_SLOTS: usize = 8;

/// The eight reference slots of VP9 and AV1, each naming the picture in it.
#[derive(Clone, Copy, Debug, Default)]
pub struct RefSlots([Option<u64>; NUM_REF_SLOTS]);

impl RefSlots {
    /// The picture in slot `slot`.
    pub fn get(&self, slot: usize) -> Option<u64> {
        self.0.get(slot).copied().flatten()
    }

    /// Points the slots of `refresh_frame_flags` at `id` (or empties them).
    pub fn refresh(&mut self, flags: u8, id: Option<u64>) {
        for (i, slot) in self.0.iter_mut().enumerate() {
            if flags & (1 << i) != 0 {
                *slot = id;
            }
        }
    }

    /// The timestamps (ns, `v4l2_timeval_to_ns()`) of the pictures in the slots, 0 for an
    /// empty slot: what the frame controls name references by.
    pub fn timestamps(&self) -> [u64; NUM_REF_SLOTS] {
        self.0.map(|s| s.map_or(0, |id| id * 1000))
    }
}

impl References for RefSlots {
    fn holds(&self, id: u64) -> bool {
        self.0.contains(&Some(id))
    }
}

/// The visible window of a picture in its CAPTURE buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crop {
    /// Left edge in pixels.
    pub left: u32,
    /// Top edge in lines.
    pub top: u32,
    /// Visible width.
    pub width: u32,
    /// Visible height.
    pub height: u32,
}

impl Crop {
    /// The `width` x `height` picture at the buffer's origin.
    pub fn size(width: u32, height: u32) -> Self {
        Crop {
            left: 0,
            top: 0,
            width,
            height,
        }
    }
}

/// What a run is given: its options, where the pictures go, and who watches it.
pub struct Run<'a> {
    /// The options.
    pub opts: &'a Options,
    /// Where the pictures go.
    pub outputs: Outputs,
    /// Told about progress and about every picture queued and completed.
    pub observer: &'a mut dyn Observer,
}

/// What the codec front end tells the engine about the stream.
pub struct StreamSetup {
    /// The codec (its OUTPUT fourcc and name).
    pub codec: Codec,
    /// The largest payload of one request.
    pub max_payload: usize,
    /// The timing of the framemd5 output.
    pub framemd5: FrameMd5Params,
    /// What the container says, for the log.
    pub description: String,
}

/// One device configuration, for [`Engine::configure`].
pub struct Config<'c, 'p> {
    /// Coded picture size.
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// Bit depth (selects NV12 or P010).
    pub depth: BitDepth,
    /// The stream's controls, set before `G_FMT(CAPTURE)` (they select the CAPTURE format).
    pub stream_ctrls: &'c mut [CtrlPayload<'p>],
    /// Menu controls set once per configuration (H.264 decode mode and start code).
    pub menu_ctrls: &'c [(u32, i32)],
    /// What the stream is, for the message when the driver refuses it.
    pub describe: String,
    /// CAPTURE buffers to ask for, and the fewest the codec can work with.
    pub capture_buffers: u32,
    /// See `capture_buffers`.
    pub min_capture_buffers: u32,
    /// Whether requests will hold CAPTURE buffers across slices
    /// (`V4L2_BUF_CAP_SUPPORTS_M2M_HOLD_CAPTURE_BUF` required).
    pub hold_capture: bool,
}

/// Why a request was not queued (its OUTPUT buffer and request are free again, and a picture
/// with no other request queued is forgotten).
#[derive(Debug)]
pub enum NotQueued {
    /// The payload does not fit the OUTPUT buffers.
    TooLarge {
        /// Bytes of the payload.
        payload: usize,
        /// Bytes of an OUTPUT buffer.
        buffer: usize,
    },
    /// The driver refused the controls.
    Ctrls(crate::Error),
}

impl std::fmt::Display for NotQueued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotQueued::TooLarge { payload, buffer } => write!(
                f,
                "a payload of {payload} bytes does not fit the {buffer}-byte OUTPUT buffers"
            ),
            NotQueued::Ctrls(e) => write!(f, "the driver refused the controls: {e}"),
        }
    }
}

/// A picture from its first request until its CAPTURE buffer is free again.
#[derive(Clone, Copy, Debug)]
struct Tracked {
    /// Its OUTPUT timestamp in microseconds (unique).
    id: u64,
    /// Requests of it are queued and its last one has not completed.
    in_flight: bool,
    /// Requests of it queued so far.
    requests: u32,
    /// Decoded with the error flag (or its picture is gone).
    error: bool,
    /// The CAPTURE buffer holding its picture, once decoded.
    capture: Option<u32>,
    /// Displays of it not yet written.
    displays: u32,
    /// Its visible window.
    crop: Crop,
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
    /// Timestamp for the framemd5 output (`None`: the number of pictures written so far).
    pts: Option<i64>,
}

/// One queued request.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    id: u64,
    /// Index of its OUTPUT buffer and of its request.
    buf: usize,
    /// The last request of its picture (its CAPTURE buffer comes back with it).
    last: bool,
    /// When it was seen complete, if it was before its buffers were taken back (a request
    /// prepared behind it was waiting to be queued: [`Engine::queue_request`]).
    completed_at: Option<Instant>,
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

/// The size and bit depth the device is configured for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Configured {
    /// Coded width.
    pub width: u32,
    /// Coded height.
    pub height: u32,
    /// Bit depth of the CAPTURE format.
    pub depth: BitDepth,
}

/// The client engine (see the module doc).
pub struct Engine<'a> {
    opts: &'a Options,
    codec: Codec,
    observer: &'a mut dyn Observer,
    dev: VideoDevice,
    requests: Vec<Request>,
    output_size: u32,
    session: Option<Session>,
    pictures: Vec<Tracked>,
    in_flight: VecDeque<InFlight>,
    displays: VecDeque<Display>,
    next_id: u64,
    sink: PictureSink,
    /// Pictures written so far (the framemd5 timestamp of a display without one).
    written: i64,
    planar: Vec<u8>,
    summary: Summary,
    started: Option<Instant>,
    last_progress: Instant,
    /// Output only the luma plane (AV1 4:0:0 streams: what the references hash).
    pub luma_only: bool,
    /// The observer asked to close ([`Action::Close`]): the next picture fails with
    /// [`Interrupted`].
    interrupted: bool,
    /// An error of an [`Action`] carried out in [`Self::tick`], returned by the next picture.
    pending_error: Option<anyhow::Error>,
}

impl<'a> Engine<'a> {
    /// Opens the device of the run's options for a stream of `setup`: checks that it is a
    /// memory-to-memory device that decodes the codec, and allocates the requests.
    pub fn new(run: Run<'a>, setup: StreamSetup) -> Result<Self> {
        let Run {
            opts,
            outputs,
            observer,
        } = run;
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
        let codec = setup.codec;
        if !dev
            .enum_formats(OUTPUT)?
            .iter()
            .any(|f| f.pixelformat == codec.fourcc())
        {
            bail!(
                "{} ({}) does not decode {codec} (no {} OUTPUT format)",
                opts.video.display(),
                cap.driver,
                fourcc_to_string(codec.fourcc())
            );
        }
        let media = MediaDevice::open(&opts.media)?;
        // One more than in flight: the one being prepared (see the module doc).
        let requests = (0..=opts.in_flight)
            .map(|_| media.alloc_request())
            .collect::<Result<Vec<_>, _>>()?;
        // Room for the largest payload; the driver bounds it.
        let output_size = u32::try_from(setup.max_payload.next_multiple_of(4096))
            .context("a payload is larger than 4 GiB")?;
        let tb = setup.framemd5.time_base;
        info!(
            "{}: {codec} {}, time base {}/{}, largest payload {} bytes",
            opts.video.display(),
            setup.description,
            tb.numerator(),
            tb.denominator(),
            setup.max_payload
        );
        Ok(Engine {
            opts,
            codec,
            observer,
            dev,
            requests,
            output_size,
            session: None,
            pictures: Vec::with_capacity(40),
            in_flight: VecDeque::with_capacity(MAX_IN_FLIGHT),
            displays: VecDeque::with_capacity(64),
            next_id: 1,
            sink: PictureSink::new(outputs, setup.framemd5),
            written: 0,
            planar: Vec::new(),
            summary: Summary::default(),
            started: None,
            last_progress: Instant::now(),
            luma_only: false,
            interrupted: false,
            pending_error: None,
        })
    }

    /// The run's options.
    pub fn opts(&self) -> &'a Options {
        self.opts
    }

    /// The counts so far.
    pub fn summary_mut(&mut self) -> &mut Summary {
        &mut self.summary
    }

    /// What the device is configured for, if it is.
    pub fn configured(&self) -> Option<Configured> {
        self.session.as_ref().map(|s| Configured {
            width: s.width,
            height: s.height,
            depth: s.depth,
        })
    }

    /// Tells the observer the counts so far, at most every 500 ms, and carries out what it asks
    /// for ([`Observer::action`]; called once per frame by the codec front ends).
    pub fn tick(&mut self) {
        if !self.interrupted && self.pending_error.is_none() {
            match self.observer.action() {
                Action::Continue => {}
                Action::Close => self.interrupted = true,
                Action::Restart => {
                    if let Err(e) = self.restart(false) {
                        self.pending_error = Some(e);
                    }
                }
                Action::DropQueued => {
                    if let Err(e) = self.restart(true) {
                        self.pending_error = Some(e);
                    }
                }
            }
        }
        if self.last_progress.elapsed() >= PROGRESS_EVERY {
            self.summary.elapsed = self.started.map_or(Duration::ZERO, |t| t.elapsed());
            self.observer.progress(&self.summary);
            self.last_progress = Instant::now();
        }
    }

    /// (Re)configures the device (see the module doc): waits for every request first; pictures
    /// still referenced lose their CAPTURE buffers (they become errors).
    pub fn configure(&mut self, refs: &dyn References, cfg: Config<'_, '_>) -> Result<()> {
        self.drain(refs)?;
        self.teardown()?;
        let (width, height, depth) = (cfg.width, cfg.height, cfg.depth);
        info!("configuring for {width}x{height}, {} bits", depth.bits());
        let fourcc = self.codec.fourcc();
        let dev = &self.dev;
        let out_fmt = dev
            .set_coded_format(OUTPUT, fourcc, width, height, self.output_size)
            .context("cannot set the OUTPUT format")?;
        if out_fmt.pixelformat != fourcc {
            bail!(
                "the driver chose {} for OUTPUT instead of {}",
                fourcc_to_string(out_fmt.pixelformat),
                fourcc_to_string(fourcc)
            );
        }
        // The stream's parameters select the CAPTURE format: set them before G_FMT. The driver
        // refusing them means it does not decode such a stream at all.
        let refused = |e: crate::Error| {
            Refused(format!(
                "the driver refused the {} stream parameters ({}): {e}",
                self.codec, cfg.describe
            ))
        };
        dev.set_ext_ctrls(Which::Current, cfg.stream_ctrls)
            .map_err(refused)?;
        for &(id, value) in cfg.menu_ctrls {
            dev.set_int_ctrl(id, value).map_err(refused)?;
        }
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
                "the driver picked {} for CAPTURE; {}-bit pictures need {}",
                fourcc_to_string(cap_fmt.pixelformat),
                depth.bits(),
                fourcc_to_string(depth.capture_fourcc())
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
        if cfg.hold_capture && rb.capabilities & V4L2_BUF_CAP_SUPPORTS_M2M_HOLD_CAPTURE_BUF == 0 {
            return Err(Refused(
                "slice-based decoding needs V4L2_BUF_CAP_SUPPORTS_M2M_HOLD_CAPTURE_BUF, which \
                 the OUTPUT queue does not advertise"
                    .into(),
            )
            .into());
        }
        if rb.count == 0 {
            bail!("the driver allocated no OUTPUT buffer");
        }
        let rb_cap = dev
            .request_buffers(CAPTURE, V4L2_MEMORY_MMAP, cfg.capture_buffers)
            .context("cannot allocate CAPTURE buffers")?;
        if rb_cap.count < cfg.min_capture_buffers {
            bail!(
                "the driver allocated {} CAPTURE buffers; this {} stream needs at least {}",
                rb_cap.count,
                self.codec,
                cfg.min_capture_buffers
            );
        }
        let mut output = Vec::with_capacity(rb.count.min(n_out) as usize);
        for i in 0..rb.count.min(n_out) {
            // SAFETY: OUTPUT buffers are only written by `queue_request` while dequeued (listed
            // in `free_output`), and CAPTURE buffers only read by `flush_displays` while a
            // tracked picture holds them, i.e. after DQBUF and before the QBUF in `collect`.
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
            self.queue_capture(i)?;
        }
        self.dev.stream_on(OUTPUT)?;
        self.dev.stream_on(CAPTURE)?;
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

    /// The id [`Self::new_picture`] gives the next picture (for a reference structure that
    /// names a picture before it is queued, as the H.264 DPB does).
    pub fn next_picture_id(&self) -> u64 {
        self.next_id
    }

    /// Whether picture `id` is still tracked (queued, and its buffer not yet free again).
    pub fn tracks(&self, id: u64) -> bool {
        self.pictures.iter().any(|t| t.id == id)
    }

    /// Starts a picture with visible window `crop`: waits until a request, an OUTPUT buffer and
    /// a CAPTURE buffer are free, and returns its id (the OUTPUT timestamp of its requests).
    pub fn new_picture(&mut self, refs: &dyn References, crop: Crop) -> Result<u64> {
        if let Some(e) = self.pending_error.take() {
            return Err(e);
        }
        if self.interrupted {
            return Err(Interrupted.into());
        }
        self.make_room(refs)?;
        let id = self.next_id;
        self.next_id += 1;
        self.pictures.push(Tracked {
            id,
            in_flight: false,
            requests: 0,
            error: false,
            capture: None,
            displays: 0,
            crop,
        });
        Ok(id)
    }

    /// Queues one request of picture `id`: `payload` (the concatenation of its parts) in an
    /// OUTPUT buffer, `ctrls` in the request; with `last == false` the CAPTURE buffer is held for
    /// the picture's next request. `Ok(Err(_))` when the request could not be queued (see
    /// [`NotQueued`]); the caller decides whether the stream goes on.
    pub fn queue_request(
        &mut self,
        id: u64,
        payload: &[&[u8]],
        ctrls: &mut [CtrlPayload<'_>],
        last: bool,
    ) -> Result<std::result::Result<(), NotQueued>> {
        while !self.occupancy()?.has_output_room() {
            self.complete_oldest()?;
        }
        let session = self
            .session
            .as_mut()
            .ok_or_else(|| anyhow!("internal error: no device configuration"))?;
        let buf = session
            .free_output
            .pop()
            .ok_or_else(|| anyhow!("internal error: no free OUTPUT buffer"))?;
        let len: usize = payload.iter().map(|p| p.len()).sum();
        let dst = session.output[buf].as_mut_slice();
        let outcome = if len > dst.len() {
            Err(NotQueued::TooLarge {
                payload: len,
                buffer: dst.len(),
            })
        } else {
            let mut at = 0;
            for part in payload {
                dst[at..at + part.len()].copy_from_slice(part);
                at += part.len();
            }
            let request = &self.requests[buf];
            self.dev
                .set_ext_ctrls(Which::Request(request.as_fd()), ctrls)
                .map_err(NotQueued::Ctrls)
        };
        if let Err(e) = outcome {
            self.requests[buf].reinit()?;
            session.free_output.push(buf);
            if let Some(i) = self
                .pictures
                .iter()
                .position(|t| t.id == id && t.requests == 0)
            {
                self.pictures.swap_remove(i);
            }
            return Ok(Err(e));
        }
        let request = &self.requests[buf];
        self.dev
            .queue_buffer_with_flags(
                &QueueBuf {
                    buf_type: OUTPUT,
                    index: u32::try_from(buf).unwrap_or(u32::MAX),
                    bytesused: u32::try_from(len).unwrap_or(u32::MAX),
                    timestamp_us: id,
                    request: Some(request.as_fd()),
                },
                if last {
                    0
                } else {
                    V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF
                },
            )
            .with_context(|| format!("picture {id}: cannot queue the OUTPUT buffer"))?;
        // Prepared; queued once the device has fewer than --in-flight requests.
        if let Err(e) = self.await_device_room() {
            // Unbinds the OUTPUT buffer from the request that was never queued.
            if let Err(reinit) = self.requests[buf].reinit() {
                warn!("picture {id}: cannot reinit its unqueued request: {reinit:#}");
            }
            return Err(e);
        }
        let request = &self.requests[buf];
        let queued_at = Instant::now();
        request
            .queue()
            .with_context(|| format!("picture {id}: cannot queue the request"))?;
        let t = self.tracked_mut(id)?;
        let first = t.requests == 0;
        t.requests += 1;
        t.in_flight = true;
        if first {
            self.observer.queued(id, queued_at);
            self.started.get_or_insert(queued_at);
        }
        self.summary.submitted += u64::from(last);
        self.in_flight.push_back(InFlight {
            id,
            buf,
            last,
            completed_at: None,
        });
        Ok(Ok(()))
    }

    /// Puts picture `id` in the display queue; `pts` is its framemd5 timestamp (`None`: number
    /// the pictures as they are written). Writes what is decoded at the head of the queue.
    pub fn show(&mut self, id: u64, pts: Option<i64>) -> Result<()> {
        self.tracked_mut(id)?.displays += 1;
        self.displays.push_back(Display { id, pts });
        self.flush_displays()
    }

    /// Queues the CAPTURE buffers of pictures nothing needs any more: not in flight, no
    /// display pending, not referenced.
    pub fn collect(&mut self, refs: &dyn References) -> Result<()> {
        let mut i = 0;
        while i < self.pictures.len() {
            let t = self.pictures[i];
            if t.in_flight || t.displays > 0 || refs.holds(t.id) {
                i += 1;
                continue;
            }
            self.pictures.swap_remove(i);
            if let (Some(index), Some(_)) = (t.capture, &self.session) {
                self.queue_capture(index)?;
            }
        }
        Ok(())
    }

    /// Waits for every request and writes what is left to display.
    pub fn drain(&mut self, refs: &dyn References) -> Result<()> {
        while !self.in_flight.is_empty() {
            self.complete_oldest()?;
        }
        self.flush_displays()?;
        self.collect(refs)
    }

    /// Ends the run: waits for everything, writes the rest, frees the device.
    pub fn finish(&mut self, refs: &dyn References) -> Result<Summary> {
        let drained = self.drain(refs);
        self.summary.elapsed = self.started.map_or(Duration::ZERO, |t| t.elapsed());
        // Whatever is left in the display queue refers to pictures that never completed.
        self.summary.shown += self.displays.len() as u64;
        self.summary.shown_errors += self.displays.len() as u64;
        self.displays.clear();
        let flushed = self.sink.finish();
        let torn_down = self.teardown();
        drained.and(flushed).and(torn_down)?;
        Ok(self.summary.clone())
    }

    /// Stops after an error, without waiting for the requests in flight.
    pub fn abort(&mut self) {
        self.in_flight.clear();
        self.displays.clear();
        if let Err(e) = self.sink.finish().and(self.teardown()) {
            warn!("while stopping after the error: {e:#}");
        }
    }

    /// [`Action::Restart`] (`drop_queued` false: the requests in flight complete first) and
    /// [`Action::DropQueued`] (STREAMOFF with them queued; each must still complete, within the
    /// time-out, as a cancelled request): afterwards the device is not configured, so the codec
    /// goes on from its next key frame.
    fn restart(&mut self, drop_queued: bool) -> Result<()> {
        if self.session.is_none() {
            return Ok(());
        }
        if !drop_queued {
            while !self.in_flight.is_empty() {
                self.complete_oldest()?;
            }
            self.flush_displays()?;
            return self.teardown();
        }
        debug!(
            "dropping {} queued requests: STREAMOFF OUTPUT",
            self.in_flight.len()
        );
        self.dev.stream_off(OUTPUT)?;
        let timeout = self.opts.timeout;
        while let Some(InFlight { id, buf, .. }) = self.in_flight.pop_front() {
            match self.requests[buf].wait(timeout)? {
                RequestWait::TimedOut => {
                    return Err(RequestTimedOut {
                        id,
                        ms: timeout.as_millis(),
                    }
                    .into())
                }
                RequestWait::Completed | RequestWait::NotQueued => {}
            }
            self.requests[buf].reinit()?;
            if let Some(s) = &mut self.session {
                s.free_output.push(buf);
            }
            // Its picture is gone: an error wherever it is displayed.
            if let Some(t) = self.pictures.iter_mut().find(|t| t.id == id) {
                t.error = true;
                t.in_flight = false;
            }
            self.summary.decode_errors += 1;
        }
        self.flush_displays()?;
        self.teardown()
    }

    fn queue_capture(&self, index: u32) -> Result<()> {
        self.dev
            .queue_buffer(&QueueBuf::capture(index))
            .context("cannot queue a CAPTURE buffer")
    }

    fn tracked_mut(&mut self, id: u64) -> Result<&mut Tracked> {
        self.pictures
            .iter_mut()
            .find(|t| t.id == id)
            .ok_or_else(|| anyhow!("internal error: picture {id} is not tracked"))
    }

    fn occupancy(&self) -> Result<Occupancy> {
        let s = self
            .session
            .as_ref()
            .ok_or_else(|| anyhow!("internal error: no device configuration"))?;
        Ok(Occupancy {
            in_flight: self.in_flight.len(),
            max_in_flight: self.opts.in_flight,
            outputs: s.output.len(),
            free_outputs: s.free_output.len(),
            captures: s.capture.len(),
            held_captures: self.pictures.iter().filter(|t| t.holds_buffer()).count(),
        })
    }

    /// Waits until a new picture can be queued.
    fn make_room(&mut self, refs: &dyn References) -> Result<()> {
        loop {
            if self.occupancy()?.has_room()? {
                return Ok(());
            }
            self.complete_oldest()?;
            self.flush_displays()?;
            self.collect(refs)?;
        }
    }

    /// Waits for the oldest request (frame `id`, OUTPUT buffer `buf`, timestamp `id` us) and
    /// takes its buffers back: its OUTPUT buffer, and with the last request of a picture the
    /// CAPTURE buffer that must carry the same timestamp. Every way the device can break the
    /// contract (time-out, other buffers, decode order) is an error.
    fn complete_oldest(&mut self) -> Result<()> {
        let Some(&InFlight {
            id,
            buf,
            last,
            completed_at,
        }) = self.in_flight.front()
        else {
            return Ok(());
        };
        let at = match completed_at {
            Some(at) => at,
            None => self.wait_completion(id, buf)?,
        };
        self.in_flight.pop_front();
        let timeout = self.opts.timeout;
        let request = &self.requests[buf];
        let out = self
            .dev
            .dequeue_wait(OUTPUT, timeout)
            .context("request completed but its OUTPUT buffer cannot be dequeued")?;
        if out.index as usize != buf {
            bail!(
                "dequeued OUTPUT buffer {} while waiting for {buf}",
                out.index
            );
        }
        request.reinit()?;
        if let Some(s) = &mut self.session {
            s.free_output.push(buf);
        }
        if !last {
            return Ok(());
        }
        let cap = self
            .dev
            .dequeue_wait(CAPTURE, timeout)
            .context("request completed but no CAPTURE buffer can be dequeued")?;
        if cap.timestamp_us != id as i64 {
            bail!(
                "CAPTURE buffer {} carries timestamp {} us, expected {id} (decode order broken)",
                cap.index,
                cap.timestamp_us
            );
        }
        if self.pictures.iter().any(|t| t.capture == Some(cap.index)) {
            bail!(
                "the driver returned CAPTURE buffer {} that holds another picture",
                cap.index
            );
        }
        let error = cap.flags & V4L2_BUF_FLAG_ERROR != 0;
        if error {
            self.summary.decode_errors += 1;
            debug!("picture {id}: decode error (CAPTURE buffer {})", cap.index);
        } else {
            self.summary.decoded += 1;
        }
        self.observer.completed(id, at, error);
        let t = self.tracked_mut(id)?;
        t.in_flight = false;
        t.error = error;
        t.capture = Some(cap.index);
        Ok(())
    }

    /// Waits for the request of picture `id` (OUTPUT buffer and request `buf`) to complete.
    fn wait_completion(&self, id: u64, buf: usize) -> Result<Instant> {
        let timeout = self.opts.timeout;
        match self.requests[buf].wait(timeout)? {
            RequestWait::Completed => Ok(Instant::now()),
            RequestWait::TimedOut => Err(RequestTimedOut {
                id,
                ms: timeout.as_millis(),
            }
            .into()),
            RequestWait::NotQueued => bail!("the request of picture {id} is not queued"),
        }
    }

    /// Waits until fewer than `--in-flight` requests are on the device (queued and not seen
    /// complete), marking those that complete; their buffers are taken back later
    /// ([`Self::complete_oldest`]), while the next request decodes.
    fn await_device_room(&mut self) -> Result<()> {
        let pending = |r: &InFlight| r.completed_at.is_none();
        while self.in_flight.iter().filter(|r| pending(r)).count() >= self.opts.in_flight {
            // Requests complete in order: the oldest pending one is next.
            let Some(i) = self.in_flight.iter().position(pending) else {
                break;
            };
            let InFlight { id, buf, .. } = self.in_flight[i];
            self.in_flight[i].completed_at = Some(self.wait_completion(id, buf)?);
        }
        Ok(())
    }

    /// Writes the pictures at the head of the display queue that are decoded.
    fn flush_displays(&mut self) -> Result<()> {
        while let Some(&Display { id, pts }) = self.displays.front() {
            let t = *self.tracked_mut(id)?;
            if t.in_flight {
                break;
            }
            self.displays.pop_front();
            self.tracked_mut(id)?.displays -= 1;
            self.summary.shown += 1;
            let (Some(index), Some(s), false) = (t.capture, &self.session, t.error) else {
                self.summary.shown_errors += 1;
                debug!("displayed picture {id} is a decode error: not written");
                self.observer.displayed(pts, None, true);
                continue;
            };
            // Without outputs (e.g. `daedalus bench`) the picture is not read.
            let observer_wants = self.observer.wants_pictures();
            if !self.sink.wants_pictures() && !observer_wants {
                self.observer.displayed(pts, None, false);
                continue;
            }
            let c = t.crop;
            let bps = s.depth.bytes_per_sample() as usize;
            let bpl = s.layout.bytesperline;
            let layout = CaptureLayout {
                depth: s.depth,
                bytesperline: bpl,
                chroma_offset: s.layout.chroma_offset - (c.top as usize / 2) * bpl,
            };
            let src = s.capture[index as usize]
                .as_slice()
                .get(c.top as usize * bpl + c.left as usize * bps..)
                .ok_or_else(|| anyhow!("picture {id}: crop window outside the buffer"))?;
            picture::to_planar(src, &layout, c.width, c.height, &mut self.planar)
                .with_context(|| format!("picture {id}: cannot read it"))?;
            if self.luma_only {
                self.planar
                    .truncate(c.width as usize * c.height as usize * bps);
            }
            self.observer.displayed(
                pts,
                observer_wants.then_some(Shown {
                    width: c.width,
                    height: c.height,
                    planar: &self.planar,
                }),
                false,
            );
            let pts = pts.unwrap_or(self.written);
            self.sink.write(pts, c.width, c.height, &self.planar)?;
            self.written += 1;
        }
        Ok(())
    }

    /// Stops streaming and frees the buffers (after [`Self::drain`]). Pictures still
    /// referenced lose their CAPTURE buffers: they become errors.
    fn teardown(&mut self) -> Result<()> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        self.dev.stream_off(OUTPUT)?;
        self.dev.stream_off(CAPTURE)?;
        for t in &mut self.pictures {
            t.in_flight = false;
            if t.capture.take().is_some() {
                t.error = true;
            }
        }
        drop(session);
        self.dev.request_buffers(OUTPUT, V4L2_MEMORY_MMAP, 0)?;
        self.dev.request_buffers(CAPTURE, V4L2_MEMORY_MMAP, 0)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // --in-flight (4) queued: one more may be prepared behind them; with that one too, no
        // free OUTPUT buffer or every CAPTURE buffer held: wait.
        assert!(occupancy(4, 2, 4).has_room().unwrap());
        assert!(!occupancy(5, 1, 5).has_room().unwrap());
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
        assert!(occupancy(4, 2, 0).has_output_room());
        assert!(!occupancy(5, 1, 0).has_output_room());
        assert!(!occupancy(2, 0, 0).has_output_room());
    }

    #[test]
    fn slots_name_and_hold_pictures() {
        let mut slots = RefSlots::default();
        slots.refresh(0b0000_0101, Some(7));
        assert_eq!(slots.get(0), Some(7));
        assert_eq!(slots.get(1), None);
        assert!(slots.holds(7));
        assert_eq!(slots.timestamps()[2], 7000);
        slots.refresh(0b0000_0001, Some(9));
        slots.refresh(0b0000_0100, None);
        assert!(!slots.holds(7));
        assert!(slots.holds(9));
        assert_eq!(slots.get(8), None);
    }
}
