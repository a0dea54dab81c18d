// SPDX-License-Identifier: GPL-2.0
//! Reference-counted FFmpeg buffers (`AVBufferRef`) the decoder's packets point into.
//!
//! `avcodec_send_packet` takes its own reference to a packet's `buf` (it copies the data only
//! when `buf` is NULL), so a packet that points into memory wrapped in an `AVBuffer` is decoded
//! without a copy. The wrapped memory must then stay valid for as long as FFmpeg holds its
//! reference, which these types guarantee by construction:
//!
//! * [`OutputBuffer`]: an OUTPUT dma-buf mapping whose `AVBuffer` *owns* the [`Mapping`]: it is
//!   unmapped when the last reference goes, whether that is ours (cache eviction, context close)
//!   or one FFmpeg still held;
//! * [`AvBuffer::alloc_zeroed`]: FFmpeg-allocated memory for the copy path.
//!
//! [`PacketSender`] sends packets pointing into either, with one `AVPacket` and one copy buffer
//! reused for every packet of a decoder.

use std::ptr::NonNull;

use ffmpeg_next as ffmpeg;
use ffmpeg_next::ffi;

use crate::dump::PacketDump;
use crate::error::JobError;
use crate::mapping::{MapError, Mapping};

/// Zeroed bytes FFmpeg's bitstream readers may read past a packet's end.
pub const PADDING: usize = ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize;

/// One owned reference to an `AVBuffer` (unreferenced on drop).
pub struct AvBuffer(NonNull<ffi::AVBufferRef>);

// SAFETY: AVBuffer reference counting is atomic in FFmpeg; the reference itself is only used by
// its owner.
unsafe impl Send for AvBuffer {}

impl AvBuffer {
    /// `size` zeroed bytes from FFmpeg's allocator, or `None` when out of memory.
    pub fn alloc_zeroed(size: usize) -> Option<AvBuffer> {
        // SAFETY: plain allocation; a NULL result is handled.
        NonNull::new(unsafe { ffi::av_buffer_allocz(size) }).map(AvBuffer)
    }

    /// The raw reference, to put in a packet's `buf` (borrowed: FFmpeg takes its own reference).
    pub fn as_ptr(&self) -> *mut ffi::AVBufferRef {
        self.0.as_ptr()
    }

    /// Start of the data.
    pub fn data(&self) -> *mut u8 {
        // SAFETY: `self.0` is a valid reference for as long as `self` lives.
        unsafe { (*self.0.as_ptr()).data }
    }

    /// Size of the data.
    pub fn size(&self) -> usize {
        // SAFETY: as in `data`.
        unsafe { (*self.0.as_ptr()).size }
    }

    /// True when this is the only reference (FFmpeg holds none): the data may be rewritten.
    pub fn is_writable(&self) -> bool {
        // SAFETY: as in `data`.
        unsafe { ffi::av_buffer_is_writable(self.0.as_ptr()) != 0 }
    }

    /// The data, for writing; `None` while FFmpeg still holds a reference to it.
    pub fn data_mut(&mut self) -> Option<&mut [u8]> {
        if !self.is_writable() {
            return None;
        }
        // SAFETY: `data`/`size` describe the buffer's memory, which lives while our reference
        // does; we hold the only reference (checked above) and `&mut self` the only borrow.
        Some(unsafe { std::slice::from_raw_parts_mut(self.data(), self.size()) })
    }
}

impl Drop for AvBuffer {
    fn drop(&mut self) {
        let mut p = self.0.as_ptr();
        // SAFETY: drops the reference this value owns (sets `p` to NULL).
        unsafe { ffi::av_buffer_unref(&mut p) };
    }
}

/// An OUTPUT buffer: its mapping, owned by an `AVBuffer` so that packets can point into it.
pub struct OutputBuffer {
    buf: AvBuffer,
    map: NonNull<Mapping>,
}

// SAFETY: the mapping is `Send` and `Sync`, and the reference is only used by its owner.
unsafe impl Send for OutputBuffer {}

unsafe extern "C" fn free_mapping(opaque: *mut libc::c_void, _data: *mut u8) {
    // SAFETY: `opaque` is the `Box<Mapping>` leaked in `OutputBuffer::new`; FFmpeg calls this
    // exactly once, when the last reference to the buffer goes.
    drop(unsafe { Box::from_raw(opaque.cast::<Mapping>()) });
}

impl OutputBuffer {
    /// Wraps a mapping (allocates the `AVBuffer` once per mapping, not per job).
    pub fn new(map: Mapping) -> Result<OutputBuffer, MapError> {
        let (data, len) = (map.as_ptr(), map.len());
        let map = Box::into_raw(Box::new(map));
        // SAFETY: `data`/`len` describe the mapping, which the buffer owns from now on and
        // frees through `free_mapping`; flags 0: FFmpeg never writes through it (not writable
        // for it, since we keep a reference).
        let raw = unsafe { ffi::av_buffer_create(data, len, Some(free_mapping), map.cast(), 0) };
        match NonNull::new(raw) {
            Some(raw) => Ok(OutputBuffer {
                buf: AvBuffer(raw),
                // SAFETY: `Box::into_raw` never returns NULL.
                map: unsafe { NonNull::new_unchecked(map) },
            }),
            None => {
                // SAFETY: av_buffer_create failed, so it did not take the mapping: free it.
                drop(unsafe { Box::from_raw(map) });
                Err(MapError::NoMemory)
            }
        }
    }

    /// The mapping.
    pub fn mapping(&self) -> &Mapping {
        // SAFETY: the buffer owns the mapping and we hold a reference to the buffer, so the
        // mapping lives at least as long as `self`.
        unsafe { self.map.as_ref() }
    }

    /// The `AVBuffer` owning the mapping.
    pub fn av_buffer(&self) -> &AvBuffer {
        &self.buf
    }
}

/// Sends a decoder its packets without allocating per packet: one `AVPacket` whose data is
/// borrowed from an `AVBuffer` (this sender's padded copy buffer, or an OUTPUT mapping for zero
/// copy), and the copy buffer, grown geometrically and reused. Every packet sent also goes to
/// the decoder's [`PacketDump`], if any.
pub struct PacketSender {
    pkt: NonNull<ffi::AVPacket>,
    copy: AvBuffer,
    dump: Option<PacketDump>,
    /// Packets are not dumped while set (a scratch decoder's).
    dump_paused: bool,
}

// SAFETY: the packet is owned by this value, holds no references between calls and is only
// used through `&mut self`; the copy buffer is `Send`.
unsafe impl Send for PacketSender {}

impl Drop for PacketSender {
    fn drop(&mut self) {
        let mut p = self.pkt.as_ptr();
        // SAFETY: allocated by av_packet_alloc, freed once; it holds no references (its
        // borrowed `buf` is cleared after every send).
        unsafe { ffi::av_packet_free(&mut p) };
    }
}

impl PacketSender {
    /// A sender with a copy buffer of `initial` bytes (plus padding).
    pub fn new(initial: usize, dump: Option<PacketDump>) -> Result<PacketSender, JobError> {
        let copy =
            AvBuffer::alloc_zeroed(initial + PADDING).ok_or(JobError::Internal("out of memory"))?;
        // SAFETY: plain allocation; NULL is handled.
        let pkt = NonNull::new(unsafe { ffi::av_packet_alloc() })
            .ok_or(JobError::Internal("out of memory"))?;
        Ok(PacketSender {
            pkt,
            copy,
            dump,
            dump_paused: false,
        })
    }

    /// Copies `parts`, one after the other, to the start of the copy buffer, followed by
    /// zeroed padding; returns their total length. The buffer grows (rarely: geometrically)
    /// when they do not fit or FFmpeg still holds a reference to it.
    pub fn fill(&mut self, parts: &[&[u8]]) -> Result<usize, JobError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > i32::MAX as usize - PADDING {
            return Err(JobError::Corrupt("bitstream too large"));
        }
        let need = len + PADDING;
        if self.copy.size() < need || !self.copy.is_writable() {
            // Grown geometrically when too small; a buffer FFmpeg still holds (frame threads
            // decoding the previous packet) is replaced by one of the same size.
            let size = if self.copy.size() < need {
                need.max(self.copy.size() * 3 / 2)
            } else {
                self.copy.size()
            };
            self.copy = AvBuffer::alloc_zeroed(size).ok_or(JobError::Internal("out of memory"))?;
        }
        let buf = self
            .copy
            .data_mut()
            .ok_or(JobError::Internal("packet buffer busy"))?;
        let mut at = 0;
        for p in parts {
            buf[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        buf[at..need].fill(0);
        Ok(len)
    }

    /// Sends the `len` bytes [`Self::fill`] wrote (`len` as it returned).
    pub fn send_filled(
        &mut self,
        dec: &mut ffmpeg::decoder::Video,
        len: usize,
        pts: i64,
    ) -> Result<(), JobError> {
        if len + PADDING > self.copy.size() {
            return Err(JobError::Internal("packet longer than the copy buffer"));
        }
        let (buf, data) = (self.copy.as_ptr(), self.copy.data());
        // SAFETY: `fill` wrote `len` bytes and zeroed PADDING more inside the copy buffer's
        // memory (checked above), which lives while `self` does.
        unsafe { self.send_raw(dec, buf, data, len, pts) }
    }

    /// Sends `len` bytes at `data` inside `buf`'s memory, without a copy.
    ///
    /// # Safety
    ///
    /// `data..data + len + PADDING` lies inside the live memory of `buf`, whose last PADDING
    /// bytes are zero, and nothing writes it while FFmpeg may read it.
    pub unsafe fn send_borrowed(
        &mut self,
        dec: &mut ffmpeg::decoder::Video,
        buf: &AvBuffer,
        data: *const u8,
        len: usize,
        pts: i64,
    ) -> Result<(), JobError> {
        if len > i32::MAX as usize - PADDING {
            return Err(JobError::Corrupt("bitstream too large"));
        }
        // SAFETY: the caller's guarantee.
        unsafe { self.send_raw(dec, buf.as_ptr(), data.cast_mut(), len, pts) }
    }

    /// Packets are not dumped while `paused` (a scratch decoder's packets).
    pub fn pause_dump(&mut self, paused: bool) {
        self.dump_paused = paused;
    }

    /// # Safety
    ///
    /// As [`Self::send_borrowed`], and `len <= i32::MAX - PADDING`.
    unsafe fn send_raw(
        &mut self,
        dec: &mut ffmpeg::decoder::Video,
        buf: *mut ffi::AVBufferRef,
        data: *mut u8,
        len: usize,
        pts: i64,
    ) -> Result<(), JobError> {
        if let (Some(d), false) = (&mut self.dump, self.dump_paused) {
            // SAFETY: `data..data + len` is readable (the caller's guarantee).
            d.packet(unsafe { std::slice::from_raw_parts(data, len) }, pts);
        }
        let pkt = self.pkt.as_ptr();
        // SAFETY: `pkt` is ours and holds no references between calls. `buf` is a live
        // AVBufferRef and `data..data + len + PADDING` lies inside its memory (the caller's
        // guarantee); it is only borrowed: avcodec_send_packet takes its own reference (it
        // copies nothing when `buf` is set), and `buf` is cleared right after, so the packet
        // never unreferences what it does not own. `len` fits an int (checked by callers).
        let r = unsafe {
            (*pkt).buf = buf;
            (*pkt).data = data;
            (*pkt).size = len as libc::c_int;
            (*pkt).pts = pts;
            (*pkt).dts = pts;
            let r = ffi::avcodec_send_packet(dec.as_mut_ptr(), pkt);
            (*pkt).buf = std::ptr::null_mut();
            (*pkt).data = std::ptr::null_mut();
            (*pkt).size = 0;
            r
        };
        match r {
            0.. => Ok(()),
            e if e == ffi::AVERROR(libc::EAGAIN) => Err(JobError::Internal(
                "decoder refused a packet: output left undrained",
            )),
            e => Err(JobError::Decode(ffmpeg::Error::from(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::Access;
    use crate::testutil::memfd;
    use std::os::fd::{FromRawFd, OwnedFd};

    #[test]
    fn mapping_outlives_our_reference_while_ffmpeg_holds_one() {
        // SAFETY: `memfd` returns a new fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(memfd(4096)) };
        let map = Mapping::new(fd, 4096, Access::PreferReadWrite).unwrap();
        assert!(map.zero(0, 16));
        let out = OutputBuffer::new(map).unwrap();
        assert!(out.av_buffer().is_writable());
        assert_eq!(out.av_buffer().size(), 4096);
        assert_eq!(out.av_buffer().data(), out.mapping().as_ptr());
        // What avcodec_send_packet does with a packet pointing into the mapping.
        // SAFETY: takes a second reference to a live buffer.
        let mut theirs = unsafe { ffi::av_buffer_ref(out.av_buffer().as_ptr()) };
        assert!(!theirs.is_null());
        assert!(!out.av_buffer().is_writable());
        drop(out);
        // Our reference is gone (e.g. the buffer was replaced): the memory is still mapped.
        // SAFETY: `theirs` keeps the mapping alive; reads its first bytes.
        let first = unsafe { std::slice::from_raw_parts((*theirs).data, 16) };
        assert_eq!(first, &[0u8; 16]);
        // SAFETY: drops the last reference: the mapping is unmapped now.
        unsafe { ffi::av_buffer_unref(&mut theirs) };
        assert!(theirs.is_null());
    }

    #[test]
    fn copy_buffer() {
        let mut b = AvBuffer::alloc_zeroed(100).unwrap();
        assert_eq!(b.size(), 100);
        b.data_mut().unwrap()[..3].copy_from_slice(&[1, 2, 3]);
        // SAFETY: a second reference, as a packet in flight would hold.
        let mut r = unsafe { ffi::av_buffer_ref(b.as_ptr()) };
        assert!(b.data_mut().is_none());
        // SAFETY: drops it again.
        unsafe { ffi::av_buffer_unref(&mut r) };
        assert_eq!(&b.data_mut().unwrap()[..4], &[1, 2, 3, 0]);
    }
}
