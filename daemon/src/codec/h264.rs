// SPDX-License-Identifier: GPL-2.0
//! H.264 through FFmpeg with one picture per request and no reorder delay.
//!
//! FFmpeg's H.264 decoder outputs pictures in POC order (and, with no reorder buffer, drops
//! out-of-order ones from its output), so its *output* is not used to find a request's picture.
//! Instead `get_buffer2` is wrapped ([`super::allocations`]): the picture FFmpeg allocates while
//! decoding a packet is referenced here, and once `avcodec_send_packet` has returned for a
//! complete access unit that picture is fully decoded and deblocked (slice threading only).
//! Its planes are then written into the CAPTURE buffer, and FFmpeg's output is drained and
//! dropped so `send_packet` never answers EAGAIN (its flags still tell a corrupt picture).
//!
//! Per request: the SPS / PPS rebuilt from the controls (`daedalus_codecs::h264::rebuild`) when
//! they changed, then the slices (Annex-B as they are; without start codes each slice gets one).
//! Slice-based decoding feeds one slice per request (`AV_CODEC_FLAG2_CHUNKS`) and writes the
//! picture after every request, so whichever request completes the picture leaves it whole in
//! the held CAPTURE buffer.
//!
//! ## Pipelined decoding
//!
//! With two threads or more, frame-based Annex-B requests go to a second, frame-threaded
//! decoder ([`super::pipeline`]) while the context has at least `threads` jobs, by the same
//! rules as VP9 ([`super::pipeline::Switch`]: entered at an IDR or by replaying the packets
//! since the IDR, parameter sets included; left at an IDR once the queue keeps running dry).
//! A job's picture is the one that decoder allocated for its packet, complete once FFmpeg has
//! waited for the thread that decoded it, N − 1 packets later (FFmpeg's own, POC-ordered output
//! is only checked: with no reorder delay it is the waited packet's picture or nothing, and its
//! flags tell a corrupt picture). A job that fails in the pipeline fails those behind it that
//! refer to it (their DPB names its timestamp), as the low-delay decoder refuses a request
//! whose reference was not decoded.
//!
//! The filler is a packet holding an end-of-sequence NAL unit alone: FFmpeg takes it without
//! starting a picture and without touching the reference state (it only hands out a delayed
//! picture, and with no reorder delay there is none), so it costs nothing, and the next picture
//! decodes exactly as it would have. Other candidates fail: an access unit delimiter alone is a
//! "no frame!" error in FFmpeg (which would fail a job), and a rebuilt skipped P picture would
//! cost a motion-compensated copy and need a slice header consistent with the stream's
//! `frame_num` / POC state. Slice-based requests (one picture in several requests) are never
//! pipelined: frame threads cannot take a picture in chunks.
//!
//! The `get_buffer2` wrapper is marked thread-safe on FFmpeg 5.1 ([`super::allocations`]):
//! unmarked, each frame thread hands its allocation to this thread and waits until this thread
//! next enters libavcodec (and FFmpeg warns once per pipeline that this is unsupported).
//!
//! Refused (`Status::Unsupported`): field pictures / MBAFF (`frame_mbs_only_flag` 0), chroma other
//! than 4:2:0, bit depths other than 8/8 and 10/10, arbitrary slice order. Missing references
//! (a VALID DPB entry naming a timestamp not decoded since the last IDR / flush) and FFmpeg
//! errors (`err_recognition = AV_EF_EXPLODE`) are `Status::DecodeError`, never a wrong picture.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use daedalus_codecs::h264::rebuild;
use daedalus_codecs::pod::{self, Pod};
use daedalus_codecs::uapi;
use daedalus_proto::formats::Codec;
use daedalus_proto::wire::{Job, JOB_FLAG_HOLD_CAPTURE};
use ffmpeg_next as ffmpeg;
use ffmpeg_next::{codec, ffi, frame};

use super::allocations::Allocations;
use super::pipeline::{FramePipeline, Switch};
use super::{Bitstream, DecoderConfig, Finished, JobIo, JobOutcome};
use crate::avbuf::{OutputBuffer, PacketSender};
use crate::convert::Planar;
use crate::dump::{DumpDir, PacketDump};
use crate::error::JobError;
use crate::sys::DMA_BUF_SYNC_READ;

/// The controls of one H.264 request, decoded from the job.
#[derive(Clone, Copy)]
pub struct H264Controls {
    /// `V4L2_CID_STATELESS_H264_SPS`.
    pub sps: uapi::v4l2_ctrl_h264_sps,
    /// `V4L2_CID_STATELESS_H264_PPS`.
    pub pps: uapi::v4l2_ctrl_h264_pps,
    /// `V4L2_CID_STATELESS_H264_SCALING_MATRIX` (flat lists when the job has none).
    pub scaling_matrix: uapi::v4l2_ctrl_h264_scaling_matrix,
    /// `V4L2_CID_STATELESS_H264_DECODE_PARAMS`.
    pub decode_params: uapi::v4l2_ctrl_h264_decode_params,
    /// `first_mb_in_slice` of `V4L2_CID_STATELESS_H264_SLICE_PARAMS` (slice-based mode).
    pub first_mb_in_slice: Option<u32>,
    /// `V4L2_CID_STATELESS_H264_DECODE_MODE` is slice-based.
    pub slice_based: bool,
    /// `V4L2_CID_STATELESS_H264_START_CODE` is Annex-B.
    pub annex_b: bool,
}

impl H264Controls {
    /// Reads the controls of `job`; SPS, PPS and DECODE_PARAMS are mandatory.
    pub fn from_job(job: &Job<'_>) -> Result<H264Controls, JobError> {
        fn get<T: Pod>(job: &Job<'_>, id: u32) -> Option<T> {
            job.controls.get(id).and_then(|c| pod::read(c.payload))
        }
        let missing = |what| JobError::Corrupt(what);
        let slice_based = get::<i32>(job, uapi::V4L2_CID_STATELESS_H264_DECODE_MODE)
            .map(|m| m as u32 == uapi::V4L2_STATELESS_H264_DECODE_MODE_SLICE_BASED)
            .unwrap_or(false);
        Ok(H264Controls {
            sps: get(job, uapi::V4L2_CID_STATELESS_H264_SPS)
                .ok_or(missing("H.264 job without an SPS control"))?,
            pps: get(job, uapi::V4L2_CID_STATELESS_H264_PPS)
                .ok_or(missing("H.264 job without a PPS control"))?,
            scaling_matrix: get(job, uapi::V4L2_CID_STATELESS_H264_SCALING_MATRIX).unwrap_or(
                uapi::v4l2_ctrl_h264_scaling_matrix {
                    scaling_list_4x4: [[16; 16]; 6],
                    scaling_list_8x8: [[16; 64]; 6],
                },
            ),
            decode_params: get(job, uapi::V4L2_CID_STATELESS_H264_DECODE_PARAMS)
                .ok_or(missing("H.264 job without a DECODE_PARAMS control"))?,
            first_mb_in_slice: get::<uapi::v4l2_ctrl_h264_slice_params>(
                job,
                uapi::V4L2_CID_STATELESS_H264_SLICE_PARAMS,
            )
            .map(|s| s.first_mb_in_slice),
            slice_based,
            annex_b: get::<i32>(job, uapi::V4L2_CID_STATELESS_H264_START_CODE)
                .map(|m| m as u32 == uapi::V4L2_STATELESS_H264_START_CODE_ANNEX_B)
                .unwrap_or(false),
        })
    }
}

/// The controls the SPS / PPS NAL units are rebuilt from.
type ParamControls = (
    uapi::v4l2_ctrl_h264_sps,
    uapi::v4l2_ctrl_h264_pps,
    uapi::v4l2_ctrl_h264_scaling_matrix,
);

impl H264Controls {
    fn params(&self) -> ParamControls {
        (self.sps, self.pps, self.scaling_matrix)
    }

    fn idr(&self) -> bool {
        self.decode_params.flags & uapi::V4L2_H264_DECODE_PARAM_FLAG_IDR_PIC != 0
    }
}

/// Writes the SPS and PPS NAL units of `c` to `out`.
fn parameter_sets(c: &H264Controls, out: &mut Vec<u8>) -> Result<(), JobError> {
    rebuild::write_parameter_sets(&c.sps, &c.pps, &c.scaling_matrix, out).map_err(|e| {
        log::warn!("H.264 controls cannot be used: {e}");
        JobError::Corrupt("invalid H.264 SPS/PPS/SCALING_MATRIX controls")
    })
}

/// The slices of a request as they go to FFmpeg: a start code to put in front (or none) and
/// the OUTPUT buffer's payload `bitstream` without its trailing zero bytes.
fn slices<'a>(
    c: &H264Controls,
    bitstream: &'a [u8],
) -> Result<(&'static [u8], &'a [u8]), JobError> {
    // Zero bytes after a NAL unit are the byte stream's trailing_zero_8bits (H.264 B.1),
    // not part of it (a NAL unit never ends in 00): clients that cut NAL units out of an
    // Annex-B stream at the next start code may leave them.
    let bitstream = match bitstream.iter().rposition(|&b| b != 0) {
        Some(last) => &bitstream[..=last],
        None => return Err(JobError::Corrupt("empty bitstream")),
    };
    if c.annex_b {
        return Ok((&[], bitstream));
    }
    if !c.slice_based {
        // Frame-based without start codes: the slices of a multi-slice picture are plainly
        // concatenated and cannot be told apart (FFmpeg would decode the first one over
        // the others' bytes, a wrong picture without an error).
        return Err(JobError::Unsupported(
            "H.264 frame-based decoding without start codes (slices cannot be separated; use START_CODE_ANNEX_B or slice-based mode)",
        ));
    }
    // One slice NAL unit per buffer: emulation prevention keeps 00 00 00/01/02 out of a
    // NAL unit, so such bytes mean several NAL units, which cannot be split here.
    if bitstream
        .windows(3)
        .any(|w| w[0] == 0 && w[1] == 0 && w[2] <= 2)
    {
        return Err(JobError::Corrupt(
            "START_CODE_NONE buffer holds more than one NAL unit (cannot be split without start codes)",
        ));
    }
    Ok((&START_CODE, bitstream))
}

/// An end-of-sequence NAL unit alone: the pipeline's filler. FFmpeg's H.264 decoder takes a
/// packet of it without starting a picture and answers it with a delayed picture, if any
/// (`send_next_delayed_frame`); it touches no reference state, and the next picture decodes
/// exactly as it would have. (A packet with no slice and no end of sequence, e.g. an access
/// unit delimiter, is a "no frame!" error instead.)
const FILLER: [u8; 5] = [0, 0, 0, 1, 0x0a];

/// A pipelined job, for what its end means to the references.
struct PipelinedJob {
    timestamp: u64,
    /// The timestamps of its VALID DPB entries.
    references: [u64; 16],
    reference_count: usize,
}

/// An FFmpeg H.264 decoder for one context.
pub struct H264Decoder {
    // Declared before `allocations`: the codec contexts (and their threads) go first.
    dec: ffmpeg::decoder::Video,
    /// The frame-threaded decoder, opened when first needed.
    pipe: Option<FramePipeline>,
    /// The parameter-set controls the frame-threaded decoder was last given.
    pipe_params: Option<ParamControls>,
    allocations: Arc<Allocations>,
    /// The picture of the last request.
    current: frame::Video,
    drain: frame::Video,
    sender: PacketSender,
    pts: i64,
    /// The SPS, PPS and scaling matrix controls of the parameter sets last fed.
    fed_params: Option<ParamControls>,
    /// Timestamps decoded (or in the pipeline) since the last IDR / flush.
    decoded: HashSet<u64>,
    /// Timestamp of the picture being filled slice by slice (slice-based mode).
    open_picture: Option<u64>,
    /// Whether the current picture may be written.
    have_picture: bool,
    dump_dir: Option<&'static DumpDir>,
    /// When jobs go to the pipeline (and the packets since the IDR).
    switch: Switch,
    /// The parameter-set controls last written into the history.
    recorded_params: Option<ParamControls>,
    /// Parameter sets being written (reused).
    params: Vec<u8>,
    /// The jobs in the pipeline, oldest first.
    pipelined: VecDeque<PipelinedJob>,
    /// Timestamps of pipelined jobs that failed while later jobs were in the pipeline: those
    /// that refer to them fail too.
    failed: Vec<u64>,
}

// SAFETY: the FFmpeg objects are owned by this value and only used through `&mut self`;
// FFmpeg codec contexts may move between threads as long as they are not used concurrently.
unsafe impl Send for H264Decoder {}

const INITIAL_PACKET_SIZE: usize = 256 * 1024;
const START_CODE: [u8; 3] = [0, 0, 1];

/// The unopened FFmpeg H.264 decoder context of a context's decoder.
pub(crate) fn open_context(config: &DecoderConfig) -> Result<codec::Context, JobError> {
    // At least two threads (also for 0, "FFmpeg chooses", which is one on a single CPU): with
    // one thread FFmpeg 5.1's H.264 decoder ends the picture after every chunk of a
    // slice-based request (AV_CODEC_FLAG2_CHUNKS) and conceals the rest of it, flagging it
    // corrupt; slice threading takes the other path.
    super::slice_threaded_context(codec::Id::H264, config.threads.max(2)).map(|mut ctx| {
        // The low-delay flag is not what gives one picture per request here (the pictures
        // are taken as allocated): FFmpeg's H.264 default is kept.
        ctx.set_flags(codec::Flags::empty());
        ctx
    })
}

/// Opens `ctx` recording its pictures into `allocations`, failing on any decoding error.
fn open_recording(
    mut ctx: codec::Context,
    allocations: &Arc<Allocations>,
) -> Result<ffmpeg::decoder::Video, JobError> {
    Allocations::install(allocations, &mut ctx);
    // SAFETY: the context is not open yet; this field is ours to set.
    unsafe { (*ctx.as_mut_ptr()).err_recognition = ffi::AV_EF_EXPLODE as libc::c_int };
    ctx.decoder().video().map_err(JobError::Ffmpeg)
}

impl H264Decoder {
    /// Opens a decoder.
    pub fn new(config: &DecoderConfig) -> Result<H264Decoder, JobError> {
        let allocations = Arc::new(Allocations::default());
        let dec = open_recording(open_context(config)?, &allocations)?;
        let sender = PacketSender::new(
            INITIAL_PACKET_SIZE,
            PacketDump::create(config.dump_dir, Codec::H264),
        )?;
        Ok(H264Decoder {
            dec,
            pipe: None,
            pipe_params: None,
            allocations,
            current: frame::Video::empty(),
            drain: frame::Video::empty(),
            sender,
            pts: 0,
            fed_params: None,
            decoded: HashSet::with_capacity(64),
            open_picture: None,
            have_picture: false,
            dump_dir: config.dump_dir,
            switch: Switch::new(super::thread_count(config.threads)),
            recorded_params: None,
            params: Vec::with_capacity(256),
            pipelined: VecDeque::with_capacity(16),
            failed: Vec::new(),
        })
    }

    /// Decodes one request: `bitstream` is the OUTPUT buffer's payload.
    pub fn decode(
        &mut self,
        c: &H264Controls,
        timestamp: u64,
        hold_capture: bool,
        bitstream: &[u8],
    ) -> Result<(), JobError> {
        check_supported(&c.sps)?;
        if self.switch.take_low_delay_stale() {
            // It missed the pictures that went to the pipeline; this is an IDR.
            self.dec.flush();
        }
        let continues_picture = c.slice_based && self.open_picture == Some(timestamp);
        if !continues_picture {
            if c.slice_based && c.first_mb_in_slice.is_some_and(|mb| mb != 0) {
                self.open_picture = None;
                return Err(JobError::Unsupported(
                    "H.264 arbitrary slice order (a picture's first slice does not start at macroblock 0)",
                ));
            }
            self.check_references(&c.decode_params)?;
        }
        let (prefix, slices) = slices(c, bitstream)?;
        if c.slice_based {
            // Never pipelined: nothing to replay.
            self.switch.lost();
        } else {
            self.record(c, prefix, slices);
        }

        // Assemble the packet: parameter sets if changed, then the slice(s).
        let key = c.params();
        let changed = self.fed_params != Some(key);
        self.params.clear();
        if changed {
            parameter_sets(c, &mut self.params)?;
        }
        let len = self.sender.fill(&[&self.params, prefix, slices])?;

        // SAFETY: flags2 is read by the H.264 decoder on every packet; chunked input is how
        // it accepts a picture's slices in several packets.
        unsafe {
            let ctx = self.dec.as_mut_ptr();
            if c.slice_based {
                (*ctx).flags2 |= ffi::AV_CODEC_FLAG2_CHUNKS as libc::c_int;
            } else {
                (*ctx).flags2 &= !(ffi::AV_CODEC_FLAG2_CHUNKS as libc::c_int);
            }
        }
        self.pts += 1;
        let sent = (self.sender).send_filled(&mut self.dec, len, self.pts);
        // The picture is the one get_buffer2 allocated for this packet (none for a slice
        // that continues a picture).
        let started = self.allocations.take_latest(&mut self.current);
        let corrupt_output = self.drain();
        if changed {
            // Re-sent after any failure.
            self.fed_params = sent.is_ok().then_some(key);
        }
        if let Err(e) = sent {
            self.open_picture = None;
            self.have_picture = false;
            return Err(e);
        }
        if !continues_picture && !started {
            self.have_picture = false;
            return Err(JobError::Corrupt("the request's slices started no picture"));
        }
        if corrupt_output {
            self.have_picture = false;
            return Err(JobError::Corrupt("FFmpeg flagged the picture as corrupt"));
        }
        self.have_picture = true;
        if c.idr() && !continues_picture {
            self.decoded.clear();
        }
        self.decoded.insert(timestamp);
        self.open_picture = (c.slice_based && hold_capture).then_some(timestamp);
        Ok(())
    }

    /// Keeps a frame-based request's packet in the history (with the parameter sets whenever
    /// they change, so that the history replays into any decoder).
    fn record(&mut self, c: &H264Controls, prefix: &[u8], slices: &[u8]) {
        if self.switch.threads() < 2 {
            return;
        }
        let idr = c.idr();
        if idr {
            self.recorded_params = None;
        }
        let mut params = std::mem::take(&mut self.params);
        params.clear();
        if self.recorded_params != Some(c.params()) {
            if parameter_sets(c, &mut params).is_err() {
                self.params = params;
                self.switch.lost();
                return;
            }
            self.recorded_params = Some(c.params());
        }
        self.switch.record(idr, &[&params, prefix, slices]);
        self.params = params;
    }

    fn check_references(&self, p: &uapi::v4l2_ctrl_h264_decode_params) -> Result<(), JobError> {
        if p.flags & uapi::V4L2_H264_DECODE_PARAM_FLAG_IDR_PIC != 0 {
            return Ok(());
        }
        for e in &p.dpb {
            if e.flags & uapi::V4L2_H264_DPB_ENTRY_FLAG_VALID != 0
                && !self.decoded.contains(&e.reference_ts)
            {
                log::warn!(
                    "H.264 DPB entry references timestamp {} which was not decoded since the last IDR",
                    e.reference_ts
                );
                return Err(JobError::Corrupt("H.264 reference picture missing"));
            }
        }
        Ok(())
    }

    /// The picture of the last successful [`Self::decode`], full coded (macroblock-aligned) size.
    pub fn picture(&self) -> Result<Planar<'_>, JobError> {
        if !self.have_picture {
            return Err(JobError::Internal("no H.264 picture decoded"));
        }
        // SAFETY: the frame holds our reference to the picture's buffers, alive until the
        // next decode, which needs `&mut self`.
        crate::convert::frame_planes(unsafe { &*self.current.as_ptr() })
    }

    /// Drops FFmpeg's output; true if the current picture was among it, flagged corrupt.
    fn drain(&mut self) -> bool {
        let mut corrupt = false;
        while self.dec.receive_frame(&mut self.drain).is_ok() {
            // SAFETY: both frames are valid; only fields are read.
            unsafe {
                let (d, a) = (&*self.drain.as_ptr(), &*self.current.as_ptr());
                if d.data[0] == a.data[0]
                    && (d.decode_error_flags != 0 || d.flags & ffi::AV_FRAME_FLAG_CORRUPT != 0)
                {
                    corrupt = true;
                }
            }
        }
        corrupt
    }

    /// Makes the frame threads' decoder in `slot` ready (opened with `threads` threads if
    /// needed): flushed, then given the packets `replay`; returns the parameter sets it was
    /// given (those the replay ends with, `replayed_params`).
    fn enter_pipeline(
        slot: &mut Option<FramePipeline>,
        threads: usize,
        dump_dir: Option<&'static DumpDir>,
        replay: &[Vec<u8>],
        replayed_params: Option<ParamControls>,
    ) -> Result<Option<ParamControls>, JobError> {
        let open = || {
            let allocations = Arc::new(Allocations::default());
            let ctx = super::frame_threaded_context(codec::Id::H264, threads)?;
            let dec = open_recording(ctx, &allocations)?;
            let sender = PacketSender::new(
                INITIAL_PACKET_SIZE,
                PacketDump::create(dump_dir, Codec::H264),
            )?;
            let mut pipe = FramePipeline::in_decode_order(dec, sender, allocations);
            pipe.set_filler(&FILLER);
            log::debug!("H.264 pipeline open: {threads} frame threads");
            Ok(pipe)
        };
        FramePipeline::enter(slot, open, replay)?;
        Ok(if replay.is_empty() {
            None
        } else {
            replayed_params
        })
    }

    /// [`super::Decoder::offer`].
    fn offer_request(
        &mut self,
        job: &Job<'_>,
        out: &OutputBuffer,
        ahead: usize,
    ) -> Result<bool, JobError> {
        if !self.switch.considers(ahead) {
            return Ok(false);
        }
        // What the pipeline cannot take goes to the low-delay decoder, which reports it.
        let Ok(c) = H264Controls::from_job(job) else {
            return Ok(false);
        };
        if c.slice_based || !c.annex_b || check_supported(&c.sps).is_err() {
            return Ok(false);
        }
        let idr = c.idr();
        let in_flight = self.pipelined.len();
        let (slot, fed, dump_dir) = (&mut self.pipe, &mut self.pipe_params, self.dump_dir);
        let (threads, recorded) = (self.switch.threads(), self.recorded_params);
        let admitted = self.switch.admits(idr, in_flight, |replay| {
            *fed = Self::enter_pipeline(slot, threads, dump_dir, replay, recorded)?;
            Ok(())
        });
        if !admitted {
            return Ok(false);
        }
        // From here on the job is the pipeline's: its errors are its own.
        self.check_references(&c.decode_params)?;
        let map = out.mapping();
        let range = super::bitstream_range(job, map.len())?;
        let _access = map.cpu_access(DMA_BUF_SYNC_READ);
        let (prefix, slices) = slices(&c, &map.bytes()[range])?;
        self.record(&c, prefix, slices);
        let Some(pipe) = self.pipe.as_mut() else {
            return Err(JobError::Internal("H.264 pipeline missing"));
        };
        let key = c.params();
        self.params.clear();
        if self.pipe_params != Some(key) {
            parameter_sets(&c, &mut self.params)?;
        }
        let pts = match pipe.send_copy(&[&self.params, prefix, slices]) {
            Ok(pts) => pts,
            Err(e) => {
                self.pipe_params = None;
                return Err(e);
            }
        };
        self.pipe_params = Some(key);
        pipe.push_job(
            Some(pts),
            JobOutcome {
                // The parameter sets rebuilt from the controls go in front of the slices.
                bitstream: Bitstream::Copied,
                hidden: false,
            },
        );
        if idr {
            self.decoded.clear();
        }
        let timestamp = job.header.timestamp_ns;
        self.decoded.insert(timestamp);
        let mut j = PipelinedJob {
            timestamp,
            references: [0; 16],
            reference_count: 0,
        };
        if !idr {
            for e in &c.decode_params.dpb {
                if e.flags & uapi::V4L2_H264_DPB_ENTRY_FLAG_VALID != 0 {
                    j.references[j.reference_count] = e.reference_ts;
                    j.reference_count += 1;
                }
            }
        }
        self.pipelined.push_back(j);
        Ok(true)
    }
}

/// Refuses streams daedalus does not decode, with a log line saying why.
pub fn check_supported(sps: &uapi::v4l2_ctrl_h264_sps) -> Result<(), JobError> {
    let reason = if sps.flags & uapi::V4L2_H264_SPS_FLAG_FRAME_MBS_ONLY == 0 {
        Some("H.264 field pictures / MBAFF (frame_mbs_only_flag 0)")
    } else if sps.chroma_format_idc != 1 {
        Some("H.264 chroma other than 4:2:0")
    } else if sps.bit_depth_luma_minus8 != sps.bit_depth_chroma_minus8 {
        Some("H.264 with different luma and chroma bit depths")
    } else if sps.bit_depth_luma_minus8 != 0 && sps.bit_depth_luma_minus8 != 2 {
        Some("H.264 bit depth other than 8 or 10")
    } else {
        None
    };
    match reason {
        Some(r) => {
            log::warn!("refusing stream: {r}");
            Err(JobError::Unsupported(r))
        }
        None => Ok(()),
    }
}

impl super::Decoder for H264Decoder {
    fn codec(&self) -> Codec {
        Codec::H264
    }

    fn flush(&mut self) {
        self.dec.flush();
        if let Some(p) = &mut self.pipe {
            p.flush();
        }
        self.pipe_params = None;
        self.switch.flush();
        self.allocations.clear();
        self.decoded.clear();
        self.pipelined.clear();
        self.failed.clear();
        self.open_picture = None;
        self.have_picture = false;
    }

    fn decode_job(&mut self, io: JobIo<'_>) -> Result<JobOutcome, JobError> {
        let (job, out) = (io.job, io.out);
        let controls = H264Controls::from_job(job)?;
        let out = out.mapping();
        let range = super::bitstream_range(job, out.len())?;
        {
            let _access = out.cpu_access(DMA_BUF_SYNC_READ);
            self.decode(
                &controls,
                job.header.timestamp_ns,
                job.header.flags & JOB_FLAG_HOLD_CAPTURE != 0,
                &out.bytes()[range],
            )?;
        }
        // Clipped: the picture is the coded (macroblock-aligned) size, the format the cropped
        // one.
        io.write_planar(&self.picture()?, true)?;
        Ok(JobOutcome {
            // The parameter sets rebuilt from the controls go in front of the slices.
            bitstream: Bitstream::Copied,
            hidden: false,
        })
    }

    fn offer(&mut self, job: &Job<'_>, out: &OutputBuffer, ahead: usize) -> Result<bool, JobError> {
        self.offer_request(job, out, ahead)
    }

    fn in_flight(&self) -> usize {
        self.pipelined.len()
    }

    fn finished(&mut self, push: bool) -> Option<Finished<'_>> {
        let H264Decoder {
            pipe,
            pipelined,
            decoded,
            failed,
            ..
        } = self;
        let finished = pipe.as_mut()?.finished(push)?;
        let job = pipelined.pop_front();
        let finished = match (finished, job) {
            (Finished::Picture(picture, _, outcome), Some(j)) => {
                if j.references[..j.reference_count]
                    .iter()
                    .any(|r| failed.contains(r))
                {
                    decoded.remove(&j.timestamp);
                    failed.push(j.timestamp);
                    Finished::Failed(JobError::Corrupt("H.264 reference picture missing"))
                } else {
                    // Clipped: the coded (macroblock-aligned) size, as with low delay.
                    Finished::Picture(picture, true, outcome)
                }
            }
            (Finished::Failed(e), Some(j)) => {
                decoded.remove(&j.timestamp);
                failed.push(j.timestamp);
                Finished::Failed(e)
            }
            (f, _) => f,
        };
        if pipelined.is_empty() {
            failed.clear();
        }
        Some(finished)
    }
}
