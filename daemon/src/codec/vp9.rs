// SPDX-License-Identifier: GPL-2.0
//! VP9: one FFmpeg VP9 decoder per context, configured so that every job yields its own
//! picture, and the little of VP9 the daemon reads itself.
//!
//! ## The decoder
//!
//! * No frame delay: slice (tile) threading only, never frame threading, plus
//!   `AV_CODEC_FLAG_LOW_DELAY`, so the picture of a packet comes out before the next packet is
//!   sent. Every packet carries a sequence number as `pts`, and the frame received is checked to
//!   be the one of the packet just sent.
//! * Hidden frames: after a frame with `show_frame = 0`, FFmpeg outputs nothing; a synthetic
//!   `show_existing_frame` packet for a slot that frame refreshed makes it output the picture
//!   (see below). Such a packet changes no decoder state.
//! * Zero copy: the packet points into the OUTPUT mapping (an `AVBuffer` owning it) when the
//!   buffer has room for FFmpeg's zeroed padding after the data; otherwise the bitstream is
//!   copied into a reusable padded buffer. The `AVPacket`, `AVFrame`s and buffers are reused.
//!
//! ## Pipelined decoding
//!
//! With two threads or more, jobs go to a second, frame-threaded decoder ([`super::pipeline`])
//! while the context has at least `threads` jobs (this one and those queued behind it): entered
//! at a key frame, or in the middle of a group of pictures by replaying the packets since the
//! key frame; left at a key frame once the context's queue keeps running dry
//! ([`super::pipeline::STARVED_JOBS`]). Its filler is a `show_existing_frame` of slot 0 (filled by the key
//! frame).
//!
//! ## The header
//!
//! What is read: the start of a frame's uncompressed header (`FrameStart`, from the VP9 parser
//! the clients share in `daedalus-codecs`), the V4L2 frame control; what is written: the
//! `show_existing_frame` header it synthesises.
//!
//! Why: a stateless VP9 job is one frame, and its CAPTURE buffer must hold the decoded picture
//! even when the frame is hidden (`show_frame = 0`, e.g. an alt-ref frame), because the client
//! shows it later by re-outputting that buffer (`show_existing_frame`). FFmpeg decodes hidden
//! frames but outputs nothing for them; feeding it a one-byte `show_existing_frame` header for a
//! reference slot the hidden frame refreshed makes it output that slot, i.e. the hidden picture.
//! The slot comes from the frame's `refresh_frame_flags`, which the 6.12 V4L2 control
//! (`struct v4l2_ctrl_vp9_frame`) does not carry, so it is parsed from the bitstream (VP9
//! bitstream specification 6.2, `uncompressed_header()`).

use std::mem::offset_of;
use std::ops::Range;

use daedalus_codecs::vp9::header::FrameStart;
use daedalus_codecs::vp9::superframe;
use daedalus_proto::formats::Codec;
use daedalus_proto::wire::Job;
use ffmpeg_next as ffmpeg;
use ffmpeg_next::{codec, frame};

use super::pipeline::{FramePipeline, Switch};
use super::{Bitstream, DecoderConfig, Finished, JobIo, JobOutcome};
use crate::avbuf::{OutputBuffer, PacketSender, PADDING};
use crate::dump::{DumpDir, PacketDump};
use crate::error::JobError;
use crate::sys::{self, v4l2_ctrl_vp9_frame, DMA_BUF_SYNC_READ, DMA_BUF_SYNC_WRITE};

/// A `show_existing_frame` frame header showing reference slot `slot` (0..8): the bytes and how
/// many of them are used (1, or 2 for profile 3).
pub fn show_existing_frame(profile: u8, slot: u8) -> ([u8; 2], usize) {
    // frame_marker (0b10), profile_low_bit, profile_high_bit, [reserved_zero for profile 3],
    // show_existing_frame = 1, frame_to_show_map_idx (3 bits); then zero padding to a byte.
    let mut v: u16 = 0b10;
    let mut n = 2;
    v = (v << 1) | u16::from(profile & 1);
    v = (v << 1) | u16::from(profile >> 1 & 1);
    n += 2;
    if profile == 3 {
        v <<= 1;
        n += 1;
    }
    v = (v << 1) | 1;
    v = (v << 3) | u16::from(slot & 7);
    n += 4;
    if n <= 8 {
        ([(v << (8 - n)) as u8, 0], 1)
    } else {
        ((v << (16 - n)).to_be_bytes(), 2)
    }
}

/// The fields of `struct v4l2_ctrl_vp9_frame` the daemon looks at (read at the offsets of the
/// bindgen-generated struct, so no unsafe cast of the payload is needed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameControl {
    /// `V4L2_VP9_FRAME_FLAG_*`.
    pub flags: u32,
    /// Profile 0..3.
    pub profile: u8,
    /// 8, 10 or 12.
    pub bit_depth: u8,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
}

/// `V4L2_CID_STATELESS_VP9_FRAME`.
pub const CID_FRAME: u32 = sys::V4L2_CID_STATELESS_VP9_FRAME;

const FLAGS: usize = offset_of!(v4l2_ctrl_vp9_frame, flags);
const WIDTH: usize = offset_of!(v4l2_ctrl_vp9_frame, frame_width_minus_1);
const HEIGHT: usize = offset_of!(v4l2_ctrl_vp9_frame, frame_height_minus_1);
const PROFILE: usize = offset_of!(v4l2_ctrl_vp9_frame, profile);
const BIT_DEPTH: usize = offset_of!(v4l2_ctrl_vp9_frame, bit_depth);

impl FrameControl {
    /// Size of the control's payload.
    pub const SIZE: usize = std::mem::size_of::<v4l2_ctrl_vp9_frame>();

    /// Reads the control from its payload (`None` if the payload is too short).
    pub fn parse(payload: &[u8]) -> Option<FrameControl> {
        if payload.len() < Self::SIZE {
            return None;
        }
        let u16_at = |o: usize| u16::from_ne_bytes([payload[o], payload[o + 1]]);
        Some(FrameControl {
            flags: u32::from_ne_bytes([
                payload[FLAGS],
                payload[FLAGS + 1],
                payload[FLAGS + 2],
                payload[FLAGS + 3],
            ]),
            profile: payload[PROFILE],
            bit_depth: payload[BIT_DEPTH],
            width: u32::from(u16_at(WIDTH)) + 1,
            height: u32::from(u16_at(HEIGHT)) + 1,
        })
    }

    /// Writes these fields into a payload of [`Self::SIZE`] bytes (the other fields are left
    /// as they are); for clients and tests. Returns false if `out` is too short.
    pub fn write(&self, out: &mut [u8]) -> bool {
        if out.len() < Self::SIZE {
            return false;
        }
        out[FLAGS..FLAGS + 4].copy_from_slice(&self.flags.to_ne_bytes());
        out[PROFILE] = self.profile;
        out[BIT_DEPTH] = self.bit_depth;
        let w = self.width.saturating_sub(1).min(u16::MAX.into()) as u16;
        let h = self.height.saturating_sub(1).min(u16::MAX.into()) as u16;
        out[WIDTH..WIDTH + 2].copy_from_slice(&w.to_ne_bytes());
        out[HEIGHT..HEIGHT + 2].copy_from_slice(&h.to_ne_bytes());
        true
    }

    /// `V4L2_VP9_FRAME_FLAG_SHOW_FRAME`.
    pub fn show_frame(&self) -> bool {
        self.flags & sys::V4L2_VP9_FRAME_FLAG_SHOW_FRAME != 0
    }
}

/// Size of the copy-path buffer allocated up front (grown when a larger frame comes).
const INITIAL_COPY_SIZE: usize = 256 * 1024;

/// The outcome of decoding one frame.
#[derive(Clone, Copy, Debug)]
pub struct Decoded {
    /// The frame's header.
    pub header: FrameStart,
    /// Whether the packet pointed into the OUTPUT mapping (else it was copied).
    pub zero_copy: bool,
    /// Whether the picture came through a synthetic `show_existing_frame`.
    pub hidden: bool,
    /// Whether there is a picture ([`Vp9Decoder::picture`]); false only for a hidden frame that
    /// refreshes no reference slot, whose picture nobody can ever show.
    pub picture: bool,
}

/// An FFmpeg VP9 decoder and the objects it reuses for every job.
pub struct Vp9Decoder {
    dec: ffmpeg::decoder::Video,
    sender: PacketSender,
    frame: frame::Video,
    spare: frame::Video,
    pts: i64,
    /// A disagreement between the frame control and the bitstream was logged (once a decoder).
    control_mismatch_logged: bool,
    dump_dir: Option<&'static DumpDir>,
    /// The frame-threaded decoder, opened when first needed.
    pipe: Option<FramePipeline>,
    /// When jobs go to the pipeline (and the packets since the key frame).
    switch: Switch,
}

// SAFETY: FFmpeg codec contexts and frames may move between threads as long as they are not
// used concurrently (`&mut self` only); the sender is `Send`.
unsafe impl Send for Vp9Decoder {}

impl Vp9Decoder {
    /// Opens a decoder.
    pub fn new(config: &DecoderConfig) -> Result<Vp9Decoder, JobError> {
        let dec = super::slice_threaded_context(codec::Id::VP9, config.threads)?
            .decoder()
            .video()
            .map_err(JobError::Ffmpeg)?;
        let d = Vp9Decoder {
            dec,
            sender: PacketSender::new(
                INITIAL_COPY_SIZE,
                PacketDump::create(config.dump_dir, Codec::Vp9),
            )?,
            frame: frame::Video::empty(),
            spare: frame::Video::empty(),
            pts: 0,
            control_mismatch_logged: false,
            dump_dir: config.dump_dir,
            pipe: None,
            switch: Switch::new(super::thread_count(config.threads)),
        };
        let (kind, count) = d.threading();
        log::debug!("VP9 decoder open: {kind:?} threading, {count} threads");
        Ok(d)
    }

    /// The threading FFmpeg actually uses: (kind, thread count).
    pub fn threading(&self) -> (codec::threading::Type, usize) {
        let t = self.dec.threading();
        (t.kind, t.count)
    }

    /// The picture of the last successful [`Vp9Decoder::decode`].
    pub fn picture(&self) -> &frame::Video {
        &self.frame
    }

    /// Decodes the frame in `out`'s bytes `range`; the picture is then [`Self::picture`].
    pub fn decode(&mut self, out: &OutputBuffer, range: Range<usize>) -> Result<Decoded, JobError> {
        let map = out.mapping();
        let Range { start, end } = range;
        if start > end || end > map.len() {
            return Err(JobError::Internal(
                "bitstream range outside the OUTPUT mapping",
            ));
        }
        let len = end - start;
        if len == 0 {
            return Err(JobError::Corrupt("empty bitstream"));
        }
        if len > i32::MAX as usize - PADDING {
            return Err(JobError::Corrupt("bitstream too large"));
        }
        let zero_copy = map.writable() && map.len() - end >= PADDING;
        let access = map.cpu_access(if zero_copy {
            DMA_BUF_SYNC_READ | DMA_BUF_SYNC_WRITE
        } else {
            DMA_BUF_SYNC_READ
        });
        let header = FrameStart::parse(&map.bytes()[start..end])?;
        if header.profile & 1 == 1 {
            return Err(JobError::Unsupported(
                "VP9 profiles 1 and 3 (4:2:2, 4:4:0, 4:4:4)",
            ));
        }
        if header.color.is_some_and(|c| c.bit_depth == 12) {
            return Err(JobError::Unsupported("12-bit VP9"));
        }
        if self.switch.take_low_delay_stale() {
            self.dec.flush();
        }
        self.note_history(&header, &map.bytes()[start..end]);

        if zero_copy {
            // FFmpeg's bitstream readers may read up to PADDING bytes past the data: make them
            // zero in the buffer itself, which has room for them.
            map.zero(end, PADDING);
            self.pts += 1;
            // SAFETY: `start < end` and `end + PADDING <= map.len()` (zero_copy): the packet
            // and its padding, zeroed just now, lie inside the mapping that `out`'s AVBuffer
            // owns; the OUTPUT buffer belongs to the job (the client cannot write it before the job ends).
            unsafe {
                let data = map.as_ptr().add(start);
                (self.sender).send_borrowed(&mut self.dec, out.av_buffer(), data, len, self.pts)?;
            }
        } else {
            let len = self.sender.fill(&[&map.bytes()[start..end]])?;
            self.pts += 1;
            self.sender.send_filled(&mut self.dec, len, self.pts)?;
        }
        let got = self.receive()?;
        drop(access);

        let mut decoded = Decoded {
            header,
            zero_copy,
            hidden: false,
            picture: got,
        };
        if got {
            return Ok(decoded);
        }
        if header.show_frame || header.show_existing_frame.is_some() {
            return Err(JobError::Corrupt(
                "the decoder produced no picture for a shown frame",
            ));
        }
        // A hidden frame: show it through a slot it refreshed.
        let Some(slot) = header.refreshed_slot() else {
            log::debug!("hidden frame that refreshes no reference slot: no picture");
            return Ok(decoded);
        };
        let (bytes, n) = show_existing_frame(header.profile, slot);
        let n = self.sender.fill(&[&bytes[..n]])?;
        self.pts += 1;
        self.sender.send_filled(&mut self.dec, n, self.pts)?;
        if !self.receive()? {
            return Err(JobError::Corrupt(
                "the decoder did not output the hidden frame",
            ));
        }
        decoded.hidden = true;
        decoded.picture = true;
        Ok(decoded)
    }

    /// Receives the picture of the packet just sent, if any.
    fn receive(&mut self) -> Result<bool, JobError> {
        super::receive_picture(&mut self.dec, &mut self.frame, &mut self.spare, self.pts)
    }

    /// Keeps the frame `data` in the history, for a later switch into the pipeline.
    fn note_history(&mut self, header: &FrameStart, data: &[u8]) {
        if header.show_existing_frame.is_none() {
            self.switch.record(header.key_frame, &[data]);
        }
    }

    /// Makes the frame threads' decoder in `slot` ready (opened with `threads` threads if
    /// needed): flushed, then given the packets `replay`.
    fn enter_pipeline(
        slot: &mut Option<FramePipeline>,
        threads: usize,
        dump_dir: Option<&'static DumpDir>,
        replay: &[Vec<u8>],
    ) -> Result<(), JobError> {
        let open = || {
            let dec = super::frame_threaded_context(codec::Id::VP9, threads)?
                .decoder()
                .video()
                .map_err(JobError::Ffmpeg)?;
            let sender =
                PacketSender::new(INITIAL_COPY_SIZE, PacketDump::create(dump_dir, Codec::Vp9))?;
            log::debug!("VP9 pipeline open: {threads} frame threads");
            Ok(FramePipeline::new(dec, sender, threads))
        };
        FramePipeline::enter(slot, open, replay).map(|_| ())
    }

    /// [`super::Decoder::offer`]: sends the frame in `out`'s bytes `range` into the pipeline,
    /// or says it is for the low-delay decoder (including every frame it would refuse, so that
    /// it reports them).
    fn offer_frame(
        &mut self,
        out: &OutputBuffer,
        range: Range<usize>,
        ahead: usize,
    ) -> Result<bool, JobError> {
        // The common low-delay case decides before touching the buffer (no extra sync ioctls).
        if !self.switch.considers(ahead) {
            return Ok(false);
        }
        let map = out.mapping();
        let Range { start, end } = range;
        if start >= end || end > map.len() || end - start > i32::MAX as usize - PADDING {
            return Ok(false);
        }
        let zero_copy = map.writable() && map.len() - end >= PADDING;
        let access = map.cpu_access(if zero_copy {
            DMA_BUF_SYNC_READ | DMA_BUF_SYNC_WRITE
        } else {
            DMA_BUF_SYNC_READ
        });
        let data = &map.bytes()[start..end];
        let Ok(header) = FrameStart::parse(data) else {
            return Ok(false);
        };
        if header.profile & 1 == 1 || header.color.is_some_and(|c| c.bit_depth == 12) {
            return Ok(false);
        }
        let key = header.key_frame && header.show_existing_frame.is_none();
        let in_flight = self.pipe.as_ref().map_or(0, FramePipeline::in_flight);
        let (slot, dump_dir) = (&mut self.pipe, self.dump_dir);
        let threads = self.switch.threads();
        let admitted = self.switch.admits(key, in_flight, |replay| {
            Self::enter_pipeline(slot, threads, dump_dir, replay)
        });
        if !admitted {
            return Ok(false);
        }
        self.note_history(&header, data);
        let Some(pipe) = self.pipe.as_mut() else {
            return Ok(false);
        };
        let (filler, n) = show_existing_frame(header.profile, 0);
        pipe.set_filler(&filler[..n]);
        let pts = pipe.next_pts();
        let r = if zero_copy {
            map.zero(end, PADDING);
            // SAFETY: `start < end` and `end + PADDING <= map.len()` (zero_copy): the packet
            // and its padding, zeroed just now, lie inside the mapping that `out`'s AVBuffer
            // owns; the OUTPUT buffer belongs to the job until it ends, which is after its
            // picture came out of the decoder, i.e. after the decoder read the packet.
            unsafe {
                pipe.sender.send_borrowed(
                    &mut pipe.dec,
                    out.av_buffer(),
                    map.as_ptr().add(start),
                    end - start,
                    pts,
                )
            }
        } else {
            match pipe.sender.fill(&[data]) {
                Ok(n) => pipe.sender.send_filled(&mut pipe.dec, n, pts),
                Err(e) => Err(e),
            }
        };
        pipe.sent(pts, r)?;
        // A superframe outputs its shown frame; a lone hidden frame is shown through a slot.
        let shown = header.show_frame
            || header.show_existing_frame.is_some()
            || superframe::split(data).is_ok_and(|f| f.len() > 1);
        let (picture, hidden) = if shown {
            (Some(pts), false)
        } else if let Some(slot) = header.refreshed_slot() {
            let (bytes, n) = show_existing_frame(header.profile, slot);
            (Some(pipe.send_copy(&[&bytes[..n]])?), true)
        } else {
            (None, false)
        };
        drop(access);
        pipe.push_job(
            picture,
            JobOutcome {
                bitstream: if zero_copy {
                    Bitstream::InPlace
                } else {
                    Bitstream::Copied
                },
                hidden,
            },
        );
        Ok(true)
    }
}

impl super::Decoder for Vp9Decoder {
    fn codec(&self) -> Codec {
        Codec::Vp9
    }

    fn flush(&mut self) {
        self.dec.flush();
        if let Some(p) = &mut self.pipe {
            p.flush();
        }
        self.switch.flush();
    }

    fn offer(&mut self, job: &Job<'_>, out: &OutputBuffer, ahead: usize) -> Result<bool, JobError> {
        let range = super::bitstream_range(job, out.mapping().len())?;
        self.offer_frame(out, range, ahead)
    }

    fn in_flight(&self) -> usize {
        self.pipe.as_ref().map_or(0, FramePipeline::in_flight)
    }

    fn finished(&mut self, push: bool) -> Option<Finished<'_>> {
        self.pipe.as_mut()?.finished(push)
    }

    fn decode_job(&mut self, io: JobIo<'_>) -> Result<JobOutcome, JobError> {
        let (job, out) = (io.job, io.out);
        let range = super::bitstream_range(job, out.mapping().len())?;
        let d = self.decode(out, range)?;
        if !self.control_mismatch_logged {
            let ctrl = job
                .controls
                .get(CID_FRAME)
                .and_then(|c| FrameControl::parse(c.payload));
            if let Some(c) = ctrl {
                let h = &d.header;
                if h.show_existing_frame.is_none()
                    && (c.profile != h.profile || c.show_frame() != h.show_frame)
                {
                    log::info!(
                        "context {} job {}: VP9 frame control (profile {}, show_frame {}) \
                         disagrees with the bitstream (profile {}, show_frame {}); following the \
                         bitstream (logged once per decoder)",
                        job.header.ctx_id,
                        job.header.job_id,
                        c.profile,
                        c.show_frame(),
                        h.profile,
                        h.show_frame
                    );
                    self.control_mismatch_logged = true;
                }
            }
        }
        if d.picture {
            io.write_picture(self.picture(), false)?;
        }
        Ok(JobOutcome {
            bitstream: if d.zero_copy {
                Bitstream::InPlace
            } else {
                Bitstream::Copied
            },
            hidden: d.hidden,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_existing_headers_round_trip() {
        for profile in 0..4 {
            for slot in 0..8 {
                let (b, n) = show_existing_frame(profile, slot);
                assert_eq!(n, if profile == 3 { 2 } else { 1 });
                let h = FrameStart::parse(&b[..n]).unwrap();
                assert_eq!(h.profile, profile);
                assert_eq!(h.show_existing_frame, Some(slot));
            }
        }
        // profile 0, slot 5: 10 0 0 1 101
        assert_eq!(show_existing_frame(0, 5), ([0b1000_1101, 0], 1));
        // profile 2, slot 0: 10 0 1 1 000
        assert_eq!(show_existing_frame(2, 0).0[0], 0b1001_1000);
        // profile 3, slot 7: 10 1 1 0 1 111 -> 1011 0111 1000 0000
        assert_eq!(show_existing_frame(3, 7), ([0b1011_0111, 0b1000_0000], 2));
        // A one-byte header never looks like a superframe index marker (0b110xxxxx).
        for p in 0..3 {
            for s in 0..8 {
                assert_ne!(show_existing_frame(p, s).0[0] & 0xe0, 0xc0);
            }
        }
    }

    #[test]
    fn control_round_trip() {
        let mut payload = vec![0u8; FrameControl::SIZE];
        let c = FrameControl {
            flags: sys::V4L2_VP9_FRAME_FLAG_SHOW_FRAME | sys::V4L2_VP9_FRAME_FLAG_KEY_FRAME,
            profile: 2,
            bit_depth: 10,
            width: 202,
            height: 210,
        };
        assert!(c.write(&mut payload));
        assert_eq!(FrameControl::parse(&payload), Some(c));
        assert!(c.show_frame());
        assert_eq!(FrameControl::parse(&payload[1..]), None);
        assert!(!c.write(&mut payload[1..]));
        // The C layout: flags right after lf/quant/seg; profile/bit_depth near the end.
        assert_eq!(PROFILE + 1, BIT_DEPTH);
        assert_eq!(WIDTH + 2, HEIGHT);
    }

    use ffmpeg_next::ffi;

    #[test]
    fn slice_threading_only() {
        let d = Vp9Decoder::new(&DecoderConfig {
            threads: 3,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(d.threading(), (codec::threading::Type::Slice, 3));
        let d = Vp9Decoder::new(&DecoderConfig {
            threads: 1,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(d.threading().1, 1);
        // SAFETY: reads two fields of the open codec context.
        let (flags, thread_type) = unsafe {
            let c = d.dec.as_ptr();
            ((*c).flags, (*c).thread_type)
        };
        assert_ne!(flags as u32 & ffi::AV_CODEC_FLAG_LOW_DELAY, 0);
        assert_eq!(thread_type, ffi::FF_THREAD_SLICE);
    }
}
