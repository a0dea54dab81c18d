// SPDX-License-Identifier: GPL-2.0
//! One FFmpeg VP9 decoder per context, configured so that every job yields its own picture.
//!
//! * No frame delay: slice (tile) threading only, never frame threading, plus
//!   `AV_CODEC_FLAG_LOW_DELAY`, so the picture of a packet comes out before the next packet is
//!   sent. Every packet carries a sequence number as `pts`, and the frame received is checked to
//!   be the one of the packet just sent.
//! * Hidden frames: after a frame with `show_frame = 0`, FFmpeg outputs nothing; a synthetic
//!   `show_existing_frame` packet for a slot that frame refreshed makes it output the picture
//!   (see [`crate::vp9`]). Such a packet changes no decoder state.
//! * Zero copy: the packet points into the OUTPUT mapping (an `AVBuffer` owning it) when the
//!   buffer has room for FFmpeg's zeroed padding after the data; otherwise the bitstream is
//!   copied into a reusable padded buffer. The `AVPacket`, `AVFrame`s and buffers are reused.

use std::ops::Range;

use ffmpeg_next as ffmpeg;
use ffmpeg_next::{codec, frame};

use daedalus_proto::formats::Codec;

use crate::avbuf::{OutputBuffer, PacketSender, PADDING};
use crate::dump::PacketDump;
use crate::error::JobError;
use crate::sys::{DMA_BUF_SYNC_READ, DMA_BUF_SYNC_WRITE};
use crate::vp9::{self, FrameHeader};

/// Size of the copy-path buffer allocated up front (grown when a larger frame comes).
const INITIAL_COPY_SIZE: usize = 256 * 1024;

/// Settings of the decoders.
#[derive(Clone, Copy, Debug, Default)]
pub struct DecoderConfig {
    /// FFmpeg slice threads per decoder (0: FFmpeg chooses).
    pub threads: usize,
    /// Where to write every decoder's packets (`daedalusd --dump-dir`, see [`crate::dump`]).
    pub dump_dir: Option<&'static std::path::Path>,
}

/// The outcome of decoding one frame.
#[derive(Clone, Copy, Debug)]
pub struct Decoded {
    /// The frame's header.
    pub header: FrameHeader,
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
}

/// An unopened FFmpeg decoder context for `id` with `threads` slice threads (0: FFmpeg
/// chooses) in low-delay mode: one picture out per packet in, as every request needs.
pub(crate) fn slice_threaded_context(
    id: codec::Id,
    threads: usize,
) -> Result<codec::Context, JobError> {
    let codec =
        ffmpeg::decoder::find(id).ok_or(JobError::Internal("FFmpeg lacks a decoder we need"))?;
    let mut ctx = codec::Context::new_with_codec(codec);
    let mut threading = codec::threading::Config::kind(codec::threading::Type::Slice);
    threading.count = threads;
    ctx.set_threading(threading);
    ctx.set_flags(codec::Flags::LOW_DELAY);
    Ok(ctx)
}

// SAFETY: FFmpeg codec contexts and frames may move between threads as long as they are not
// used concurrently (`&mut self` only); the sender is `Send`.
unsafe impl Send for Vp9Decoder {}

impl Vp9Decoder {
    /// Opens a decoder.
    pub fn new(config: &DecoderConfig) -> Result<Vp9Decoder, JobError> {
        let dec = slice_threaded_context(codec::Id::VP9, config.threads)?
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

    /// Drops all decoder state (references, buffered data): the next frame must be a key frame.
    pub fn flush(&mut self) {
        self.dec.flush();
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
        let header = vp9::parse_frame_header(&map.bytes()[start..end])?;
        if header.profile & 1 == 1 {
            return Err(JobError::Unsupported(
                "VP9 profiles 1 and 3 (4:2:2, 4:4:0, 4:4:4)",
            ));
        }
        if header.bit_depth == Some(12) {
            return Err(JobError::Unsupported("12-bit VP9"));
        }

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
        let (bytes, n) = vp9::show_existing_frame(header.profile, slot);
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
        match self.dec.receive_frame(&mut self.frame) {
            Ok(()) => {}
            Err(ffmpeg::Error::Other {
                errno: libc::EAGAIN,
            }) => return Ok(false),
            Err(e) => return Err(JobError::Decode(e)),
        }
        // One packet, at most one frame. Drain anything more so nothing is ever left for the
        // next job; keep the newest.
        while self.dec.receive_frame(&mut self.spare).is_ok() {
            log::warn!("decoder output more than one frame for one packet");
            std::mem::swap(&mut self.frame, &mut self.spare);
        }
        if self.frame.pts() != Some(self.pts) {
            return Err(JobError::Internal(
                "decoder output a frame of an earlier packet (frame delay)",
            ));
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
