// SPDX-License-Identifier: GPL-2.0
//! H.264 through FFmpeg with one picture per request and no reorder delay.
//!
//! FFmpeg's H.264 decoder outputs pictures in POC order (and, with no reorder buffer, drops
//! out-of-order ones from its output), so its *output* is not used to find a request's picture.
//! Instead `get_buffer2` is wrapped: the picture FFmpeg allocates while decoding a packet is
//! referenced here, and once `avcodec_send_packet` has returned for a complete access unit that
//! picture is fully decoded and deblocked (slice threading only, never frame threading). Its
//! planes are then written into the CAPTURE buffer, and FFmpeg's output is drained and dropped so
//! `send_packet` never answers EAGAIN.
//!
//! Per request: the SPS / PPS rebuilt from the controls (`daedalus_codecs::h264::rebuild`) when
//! they changed, then the slices (Annex-B as they are; without start codes each slice gets one).
//! Slice-based decoding feeds one slice per request (`AV_CODEC_FLAG2_CHUNKS`) and writes the
//! picture after every request, so whichever request completes the picture leaves it whole in
//! the held CAPTURE buffer.
//!
//! Refused (`Status::Unsupported`): field pictures / MBAFF (`frame_mbs_only_flag` 0), chroma other
//! than 4:2:0, bit depths other than 8/8 and 10/10, arbitrary slice order. Missing references
//! (a VALID DPB entry naming a timestamp not decoded since the last IDR / flush) and FFmpeg
//! errors (`err_recognition = AV_EF_EXPLODE`) are `Status::DecodeError`, never a wrong picture.

use std::collections::HashSet;
use std::ptr::NonNull;

use daedalus_codecs::h264::rebuild;
use daedalus_codecs::pod::{self, Pod};
use daedalus_codecs::uapi;
use daedalus_proto::formats::Codec;
use daedalus_proto::wire::{Job, JOB_FLAG_HOLD_CAPTURE};
use ffmpeg_next as ffmpeg;
use ffmpeg_next::{codec, ffi};

use super::{Bitstream, DecoderConfig, JobIo, JobOutcome};
use crate::avbuf::PacketSender;
use crate::convert::Planar;
use crate::dump::PacketDump;
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

/// What the `get_buffer2` wrapper records: a reference to the last picture FFmpeg allocated.
struct Allocated {
    frame: NonNull<ffi::AVFrame>,
    count: u64,
}

unsafe extern "C" fn get_buffer2(
    ctx: *mut ffi::AVCodecContext,
    frame: *mut ffi::AVFrame,
    flags: libc::c_int,
) -> libc::c_int {
    // SAFETY: FFmpeg calls this with its open codec context and a frame to fill; the default
    // allocator is the one FFmpeg would have used.
    let r = unsafe { ffi::avcodec_default_get_buffer2(ctx, frame, flags) };
    if r < 0 {
        return r;
    }
    // SAFETY: `opaque` is the `Allocated` boxed by `H264Decoder::new`, which outlives the codec
    // context (the decoder closes the context first); FFmpeg calls get_buffer2 only from the
    // thread decoding (slice threading never allocates pictures), so access is exclusive.
    unsafe {
        let a = (*ctx).opaque.cast::<Allocated>();
        if let Some(a) = a.as_mut() {
            ffi::av_frame_unref(a.frame.as_ptr());
            if ffi::av_frame_ref(a.frame.as_ptr(), frame) >= 0 {
                a.count += 1;
            }
        }
    }
    r
}

/// An FFmpeg H.264 decoder for one context.
pub struct H264Decoder {
    dec: ffmpeg::decoder::Video,
    allocated: Box<Allocated>,
    drain: NonNull<ffi::AVFrame>,
    sender: PacketSender,
    /// The SPS, PPS and scaling matrix controls of the parameter sets last fed.
    fed_params: Option<ParamControls>,
    /// Timestamps decoded since the last IDR / flush.
    decoded: HashSet<u64>,
    /// Timestamp of the picture being filled slice by slice (slice-based mode).
    open_picture: Option<u64>,
    /// Whether the current picture (`allocated.frame`) may be written.
    have_picture: bool,
}

// SAFETY: the raw FFmpeg objects are owned by this value and only used through `&mut self`;
// FFmpeg codec contexts may move between threads as long as they are not used concurrently.
unsafe impl Send for H264Decoder {}

impl Drop for H264Decoder {
    fn drop(&mut self) {
        // SAFETY: close the codec context before freeing what its get_buffer2 uses; the
        // frames were allocated by FFmpeg and are freed once.
        unsafe {
            let ctx = self.dec.as_mut_ptr();
            ffi::avcodec_flush_buffers(ctx);
            (*ctx).opaque = std::ptr::null_mut();
            let mut f = self.drain.as_ptr();
            ffi::av_frame_free(&mut f);
            let mut a = self.allocated.frame.as_ptr();
            ffi::av_frame_free(&mut a);
        }
    }
}

const INITIAL_PACKET_SIZE: usize = 256 * 1024;
const START_CODE: [u8; 3] = [0, 0, 1];

/// The unopened FFmpeg H.264 decoder context of a context's decoder.
pub(crate) fn open_context(config: &DecoderConfig) -> Result<codec::Context, JobError> {
    let codec = ffmpeg::decoder::find(codec::Id::H264)
        .ok_or(JobError::Internal("FFmpeg has no H.264 decoder"))?;
    let mut ctx = codec::Context::new_with_codec(codec);
    let mut threading = codec::threading::Config::kind(codec::threading::Type::Slice);
    // At least two (also for 0, "FFmpeg chooses", which is one on a single CPU): with one
    // thread FFmpeg 5.1's H.264 decoder ends the picture after every chunk of a slice-based
    // request (AV_CODEC_FLAG2_CHUNKS) and conceals the rest of it, flagging it corrupt;
    // slice threading takes the other path.
    threading.count = config.threads.max(2);
    ctx.set_threading(threading);
    Ok(ctx)
}

impl H264Decoder {
    /// Opens a decoder.
    pub fn new(config: &DecoderConfig) -> Result<H264Decoder, JobError> {
        let mut ctx = open_context(config)?;
        let sender = PacketSender::new(
            INITIAL_PACKET_SIZE,
            PacketDump::create(config.dump_dir, Codec::H264),
        )?;
        // SAFETY: plain allocations; NULL is handled.
        let (frame, drain) = unsafe { (ffi::av_frame_alloc(), ffi::av_frame_alloc()) };
        let (Some(frame), Some(drain)) = (NonNull::new(frame), NonNull::new(drain)) else {
            // SAFETY: frees whichever was allocated (av_frame_free ignores NULL).
            unsafe {
                let (mut f, mut d) = (frame, drain);
                ffi::av_frame_free(&mut f);
                ffi::av_frame_free(&mut d);
            }
            return Err(JobError::Internal("out of memory"));
        };
        let mut allocated = Box::new(Allocated { frame, count: 0 });
        // SAFETY: the context is not open yet; these fields are ours to set. `opaque` points
        // into the box, whose address is stable and which lives as long as the decoder.
        unsafe {
            let c = ctx.as_mut_ptr();
            (*c).get_buffer2 = Some(get_buffer2);
            (*c).opaque = (&mut *allocated as *mut Allocated).cast();
            (*c).err_recognition = ffi::AV_EF_EXPLODE as libc::c_int;
        }
        let dec = match ctx.decoder().video() {
            Ok(dec) => dec,
            Err(e) => {
                // SAFETY: the frames are ours and referenced by nothing (the context that
                // pointed at `allocated` is gone with `ctx`).
                unsafe {
                    let (mut f, mut d) = (frame.as_ptr(), drain.as_ptr());
                    ffi::av_frame_free(&mut f);
                    ffi::av_frame_free(&mut d);
                }
                return Err(JobError::Ffmpeg(e));
            }
        };
        Ok(H264Decoder {
            dec,
            allocated,
            drain,
            sender,
            fed_params: None,
            decoded: HashSet::with_capacity(64),
            open_picture: None,
            have_picture: false,
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
        // Zero bytes after a NAL unit are the byte stream's trailing_zero_8bits (H.264 B.1),
        // not part of it (a NAL unit never ends in 00): clients that cut NAL units out of an
        // Annex-B stream at the next start code may leave them.
        let bitstream = match bitstream.iter().rposition(|&b| b != 0) {
            Some(last) => &bitstream[..=last],
            None => return Err(JobError::Corrupt("empty bitstream")),
        };
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

        // Assemble the packet: parameter sets if changed, then the slice(s).
        // Empty (no allocation) unless the parameter sets changed.
        let mut params = Vec::new();
        let key = (c.sps, c.pps, c.scaling_matrix);
        let changed = self.fed_params != Some(key);
        if changed {
            rebuild::write_parameter_sets(&c.sps, &c.pps, &c.scaling_matrix, &mut params).map_err(
                |e| {
                    log::warn!("H.264 controls cannot be used: {e}");
                    JobError::Corrupt("invalid H.264 SPS/PPS/SCALING_MATRIX controls")
                },
            )?;
        }
        let slice_prefix: &[u8] = if c.annex_b {
            &[]
        } else if !c.slice_based {
            // Frame-based without start codes: the slices of a multi-slice picture are plainly
            // concatenated and cannot be told apart (FFmpeg would decode the first one over
            // the others' bytes, a wrong picture without an error).
            return Err(JobError::Unsupported(
                "H.264 frame-based decoding without start codes (slices cannot be separated; use START_CODE_ANNEX_B or slice-based mode)",
            ));
        } else {
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
            &START_CODE
        };
        let len = self.sender.fill(&[&params, slice_prefix, bitstream])?;

        let before = self.allocated.count;
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
        // No pts: the picture is the one get_buffer2 allocated for this packet.
        let sent = (self.sender).send_filled(&mut self.dec, len, ffi::AV_NOPTS_VALUE);
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
        if !continues_picture && self.allocated.count == before {
            self.have_picture = false;
            return Err(JobError::Corrupt("the request's slices started no picture"));
        }
        if corrupt_output {
            self.have_picture = false;
            return Err(JobError::Corrupt("FFmpeg flagged the picture as corrupt"));
        }
        self.have_picture = true;
        if c.decode_params.flags & uapi::V4L2_H264_DECODE_PARAM_FLAG_IDR_PIC != 0
            && !continues_picture
        {
            self.decoded.clear();
        }
        self.decoded.insert(timestamp);
        self.open_picture = (c.slice_based && hold_capture).then_some(timestamp);
        Ok(())
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
        // SAFETY: the frame holds our reference to the picture's buffers (taken in
        // get_buffer2), alive until the next allocation, which needs `&mut self`.
        crate::convert::frame_planes(unsafe { &*self.allocated.frame.as_ptr() })
    }

    fn drain(&mut self) -> bool {
        let mut corrupt = false;
        loop {
            // SAFETY: receive into our spare frame, then drop its references.
            let r =
                unsafe { ffi::avcodec_receive_frame(self.dec.as_mut_ptr(), self.drain.as_ptr()) };
            if r < 0 {
                break;
            }
            // SAFETY: both frames are valid; only fields are read.
            unsafe {
                let (d, a) = (&*self.drain.as_ptr(), &*self.allocated.frame.as_ptr());
                if d.data[0] == a.data[0]
                    && (d.decode_error_flags != 0 || d.flags & ffi::AV_FRAME_FLAG_CORRUPT != 0)
                {
                    corrupt = true;
                }
                ffi::av_frame_unref(self.drain.as_ptr());
            }
        }
        corrupt
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
        self.decoded.clear();
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
}
