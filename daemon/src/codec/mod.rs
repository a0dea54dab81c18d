// SPDX-License-Identifier: GPL-2.0
//! The codecs the daemon decodes, one file each, behind one trait: a [`crate::Context`] knows
//! no codec, it opens the decoder of the job's codec with [`open`] and hands it every job.
//! Adding a codec is one file here and one line in [`open`].
//!
//! * [`vp9`]: FFmpeg's VP9 decoder fed the frames as they are; hidden frames shown through a
//!   synthetic `show_existing_frame` (the little of the VP9 header it needs is parsed there).
//! * [`h264`]: FFmpeg's H.264 decoder, SPS / PPS rebuilt from the controls, the picture taken
//!   from the buffer FFmpeg allocated for the request's slices.
//! * [`av1`]: libdav1d through FFmpeg, sequence and frame headers rebuilt from the controls for
//!   tile-payload clients.
//!
//! Common to all: one picture per request in decode order, packets through
//! [`crate::avbuf::PacketSender`], pictures written by [`crate::convert::write_picture`]. A
//! job is decoded either at once by [`Decoder::decode_job`] (low delay: slice / tile threading
//! only, no frame delay), or, by decoders that can, **pipelined** while the context has enough
//! jobs queued ([`Decoder::offer`], [`pipeline`]: frame threads; the job ends later, still in
//! order).

pub mod allocations;
pub mod av1;
pub mod h264;
pub mod pipeline;
pub mod vp9;

use daedalus_proto::formats::Codec;
use daedalus_proto::wire::Job;
use ffmpeg_next as ffmpeg;
use ffmpeg_next::{codec, frame};

use crate::avbuf::OutputBuffer;
use crate::band_pool::LazyBandPool;
use crate::error::JobError;
use crate::mapping::Mapping;

/// Settings of the decoders.
#[derive(Clone, Copy, Debug, Default)]
pub struct DecoderConfig {
    /// FFmpeg slice threads per decoder (0: FFmpeg chooses).
    pub threads: usize,
    /// Where to write every decoder's packets (`daedalusd --dump-dir`, see [`crate::dump`]).
    pub dump_dir: Option<&'static crate::dump::DumpDir>,
}

/// How a job's bitstream reached FFmpeg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bitstream {
    /// The packet pointed into the OUTPUT mapping.
    InPlace,
    /// It was copied (or rebuilt) into a padded buffer first.
    Copied,
}

/// What one job did, for the context's statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobOutcome {
    /// How the bitstream reached FFmpeg.
    pub bitstream: Bitstream,
    /// The frame is hidden (not shown by itself); its picture was still written.
    pub hidden: bool,
}

/// What a decoder works on for one job.
pub struct JobIo<'a> {
    /// The job: controls, buffer descriptions, picture layout.
    pub job: &'a Job<'a>,
    /// The OUTPUT buffer: the bitstream is at `job.output.data_offset..bytesused`.
    pub out: &'a OutputBuffer,
    /// The CAPTURE buffer the picture goes to, in `job.picture`'s layout.
    pub cap: &'a mut Mapping,
    /// Converts the picture in parallel bands (started with the context's first picture).
    pub bands: &'a LazyBandPool,
}

impl JobIo<'_> {
    /// Writes a decoded FFmpeg picture into the CAPTURE buffer in the job's layout. `clip`: the
    /// picture may be larger than the format (coded size, superres), and is cropped to it.
    pub fn write_picture(self, picture: &ffmpeg::frame::Video, clip: bool) -> Result<(), JobError> {
        let pic = &self.job.header.picture;
        crate::convert::write_picture(picture, self.cap, pic, clip, Some(self.bands.get()))
    }

    /// [`Self::write_picture`] for a picture already described as planes.
    pub fn write_planar(
        self,
        picture: &crate::convert::Planar<'_>,
        clip: bool,
    ) -> Result<(), JobError> {
        let pic = &self.job.header.picture;
        crate::convert::write_planar(picture, self.cap, pic, clip, Some(self.bands.get()))
    }
}

/// The end of the oldest job of a pipelined decoder.
pub enum Finished<'a> {
    /// Its picture, to be written into its CAPTURE buffer (cropped to the format with `clip`,
    /// as [`JobIo::write_picture`]).
    Picture(&'a frame::Video, bool, JobOutcome),
    /// It succeeded without a picture (a hidden frame nobody can show).
    NoPicture(JobOutcome),
    /// It failed.
    Failed(JobError),
}

/// One context's decoder of one codec.
pub trait Decoder: Send {
    /// The codec it decodes.
    fn codec(&self) -> Codec;

    /// Drops all decoding state (stream off): the next job must start at a key frame. Jobs
    /// still in the pipeline are dropped: the context finishes them first.
    fn flush(&mut self);

    /// Decodes the job's bitstream and writes its picture into the CAPTURE buffer. Every
    /// failure is a [`JobError`] (the module then returns the CAPTURE buffer with an error).
    /// Only called when no job is in the pipeline ([`Self::in_flight`] is 0).
    fn decode_job(&mut self, io: JobIo<'_>) -> Result<JobOutcome, JobError>;

    /// Offers a job for pipelined decoding, `ahead` more jobs of the context being queued
    /// behind it: `Ok(true)` when the decoder took it (it ends through [`Self::finished`]),
    /// `Ok(false)` when it is to be decoded by [`Self::decode_job`] once the pipeline is empty,
    /// an error when it failed before entering the pipeline. Decoders without a pipeline take
    /// nothing.
    fn offer(
        &mut self,
        _job: &Job<'_>,
        _out: &OutputBuffer,
        _ahead: usize,
    ) -> Result<bool, JobError> {
        Ok(false)
    }

    /// Jobs taken by [`Self::offer`] that have not ended.
    fn in_flight(&self) -> usize {
        0
    }

    /// The end of the oldest job in the pipeline, if it has come; with `push` (the context
    /// has no more jobs to give now), the decoder moves on without them until it comes.
    fn finished(&mut self, _push: bool) -> Option<Finished<'_>> {
        None
    }
}

/// Opens the decoder of `codec` with `config`.
pub fn open(codec: Codec, config: &DecoderConfig) -> Result<Box<dyn Decoder>, JobError> {
    Ok(match codec {
        Codec::Vp9 => Box::new(vp9::Vp9Decoder::new(config)?),
        Codec::H264 => Box::new(h264::H264Decoder::new(config)?),
        Codec::Av1 => Box::new(av1::Av1Decoder::new(config)?),
    })
}

/// An unopened FFmpeg decoder context for `id` with `threads` slice threads (0: FFmpeg
/// chooses) in low-delay mode: one picture out per packet in, as every request needs.
pub(crate) fn slice_threaded_context(
    id: codec::Id,
    threads: usize,
) -> Result<codec::Context, JobError> {
    let mut ctx = threaded_context(id, codec::threading::Type::Slice, threads)?;
    ctx.set_flags(codec::Flags::LOW_DELAY);
    Ok(ctx)
}

/// An unopened FFmpeg decoder context for `id` with `threads` frame threads (FFmpeg's default
/// threading, no low delay): the pipeline's ([`pipeline`]).
pub(crate) fn frame_threaded_context(
    id: codec::Id,
    threads: usize,
) -> Result<codec::Context, JobError> {
    threaded_context(id, codec::threading::Type::Frame, threads)
}

fn threaded_context(
    id: codec::Id,
    kind: codec::threading::Type,
    threads: usize,
) -> Result<codec::Context, JobError> {
    let codec =
        ffmpeg::decoder::find(id).ok_or(JobError::Internal("FFmpeg lacks a decoder we need"))?;
    let mut ctx = codec::Context::new_with_codec(codec);
    let mut threading = codec::threading::Config::kind(kind);
    threading.count = threads;
    ctx.set_threading(threading);
    Ok(ctx)
}

/// The thread count `threads` stands for (0: one per CPU, as FFmpeg chooses).
pub(crate) fn thread_count(threads: usize) -> usize {
    if threads > 0 {
        threads
    } else {
        std::thread::available_parallelism().map_or(1, usize::from)
    }
}

/// The bitstream range of `job` inside an OUTPUT mapping of `len` bytes, checked.
pub(crate) fn bitstream_range(
    job: &Job<'_>,
    len: usize,
) -> Result<std::ops::Range<usize>, JobError> {
    let (start, end) = (
        job.header.output.data_offset as usize,
        job.header.output.bytesused as usize,
    );
    if start > end || end > len {
        return Err(JobError::Internal(
            "bitstream range outside the OUTPUT mapping",
        ));
    }
    Ok(start..end)
}

/// Receives the picture of the packet numbered `pts` that was just sent to `dec`: `true` with
/// it in `picture`, `false` when the packet gave none (a hidden frame). FFmpeg's output is
/// drained so that nothing is left for the next job (newest kept, in `spare`'s place), and a
/// picture of an earlier packet (a frame delay) is an error: every request must get its own.
pub(crate) fn receive_picture(
    dec: &mut ffmpeg::decoder::Video,
    picture: &mut frame::Video,
    spare: &mut frame::Video,
    pts: i64,
) -> Result<bool, JobError> {
    match dec.receive_frame(picture) {
        Ok(()) => {}
        Err(ffmpeg::Error::Other {
            errno: libc::EAGAIN,
        }) => return Ok(false),
        Err(e) => return Err(JobError::Decode(e)),
    }
    while dec.receive_frame(spare).is_ok() {
        log::warn!("the decoder output more than one picture for one packet");
        std::mem::swap(picture, spare);
    }
    if picture.pts() != Some(pts) {
        return Err(JobError::Internal(
            "decoder output a frame of an earlier packet (frame delay)",
        ));
    }
    Ok(true)
}
