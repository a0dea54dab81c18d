// SPDX-License-Identifier: GPL-2.0
//! The pictures an FFmpeg decoder allocates, recorded by a `get_buffer2` wrapper.
//!
//! A decoder that outputs in another order than it decodes (H.264: POC order with a reorder
//! delay) still allocates each picture while decoding its packet, with the packet's `pts`
//! (FFmpeg copies it from the packet before calling `get_buffer2`). Keeping a reference to
//! every allocation gives the picture of a packet by its number, however late or whether the
//! decoder ever outputs it; the picture is complete once the decoder is done with the packet
//! (low delay: when `avcodec_send_packet` returns; frame threads: when the thread decoding it
//! has been waited for, see [`super::pipeline`]).
//!
//! With frame threads `get_buffer2` runs on FFmpeg's decoding threads, so it is marked
//! thread-safe (`thread_safe_callbacks`, on FFmpeg 5.1; FFmpeg 6+ has no such field and always
//! calls it there), and it is: FFmpeg's default allocator, which it forwards to, is what FFmpeg
//! calls from those threads itself when no callback is set; the only state of ours it touches,
//! the record, is behind a mutex, shared with the taking thread; the `AVFrame`s it keeps are
//! only used under that mutex, and `av_frame_ref` only counts references atomically. (FFmpeg
//! also serialises the calls under its own `buffer_mutex`, on 5.1 and 6+ alike.)

use std::collections::VecDeque;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, PoisonError};

use ffmpeg_next::{codec, ffi, frame};

/// Most allocations kept: the oldest go first (a picture nobody asked for, e.g. a replayed
/// reference). Frame threads allocate at most one picture per thread ahead of the one taken.
const KEPT: usize = 64;

/// An `AVFrame` holding a reference to an allocated picture.
struct Held(NonNull<ffi::AVFrame>);

// SAFETY: the frame is owned by the record and only used under its mutex.
unsafe impl Send for Held {}

#[derive(Default)]
struct Record {
    /// (packet number, picture), oldest first.
    kept: VecDeque<(i64, Held)>,
    /// Unreferenced frames to reuse.
    free: Vec<Held>,
}

/// The pictures a decoder allocated, by packet number.
#[derive(Default)]
pub struct Allocations {
    record: Mutex<Record>,
}

impl Drop for Allocations {
    fn drop(&mut self) {
        let r = self
            .record
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        for h in r.kept.drain(..).map(|(_, h)| h).chain(r.free.drain(..)) {
            let mut f = h.0.as_ptr();
            // SAFETY: allocated by av_frame_alloc, owned by the record, freed once.
            unsafe { ffi::av_frame_free(&mut f) };
        }
    }
}

unsafe extern "C" fn get_buffer2(
    ctx: *mut ffi::AVCodecContext,
    frame: *mut ffi::AVFrame,
    flags: libc::c_int,
) -> libc::c_int {
    // SAFETY: FFmpeg calls this with an open codec context and a frame to fill; the default
    // allocator is the one FFmpeg would have used.
    let r = unsafe { ffi::avcodec_default_get_buffer2(ctx, frame, flags) };
    if r < 0 {
        return r;
    }
    // SAFETY: `opaque` is the `Allocations` `install` set, which the context's owner keeps
    // alive until the context is freed; FFmpeg copies `opaque` into its frame threads'
    // contexts.
    let a = unsafe { (*ctx).opaque.cast::<Allocations>().cast_const().as_ref() };
    if let Some(a) = a {
        // SAFETY: `frame` was just allocated by FFmpeg's default allocator.
        unsafe { a.record_frame(&*frame) };
    }
    r
}

impl Allocations {
    /// Makes the unopened decoder context `ctx` record its allocations into `this`. The
    /// owner of the context keeps an `Arc` of `this` until the context is freed: a field
    /// declared after the one holding the decoder (fields drop in declaration order), as
    /// FFmpeg's threads may still allocate until then.
    pub fn install(this: &Arc<Allocations>, ctx: &mut codec::Context) {
        // SAFETY: the context is not open yet: these fields are ours to set.
        unsafe {
            let c = ctx.as_mut_ptr();
            (*c).get_buffer2 = Some(get_buffer2);
            (*c).opaque = Arc::as_ptr(this).cast_mut().cast();
            // FFmpeg 5.1 otherwise has each frame thread hand its get_buffer2 call over to
            // the thread feeding the decoder and wait until that thread next enters
            // libavcodec; FFmpeg 6+ always calls it on the frame threads (see the module).
            #[cfg(ffmpeg_thread_safe_callbacks)]
            {
                (*c).thread_safe_callbacks = 1;
            }
        }
    }

    /// Records a reference to `frame` (with its `pts`).
    ///
    /// # Safety
    ///
    /// `frame` is a valid frame with buffers.
    unsafe fn record_frame(&self, frame: &ffi::AVFrame) {
        let mut r = self.record.lock().unwrap_or_else(PoisonError::into_inner);
        let held = match r.free.pop() {
            Some(h) => h,
            // SAFETY: plain allocation; NULL is handled.
            None => match NonNull::new(unsafe { ffi::av_frame_alloc() }) {
                Some(f) => Held(f),
                None => return,
            },
        };
        // SAFETY: `held` is an unreferenced frame of ours, `frame` a valid one.
        if unsafe { ffi::av_frame_ref(held.0.as_ptr(), frame) } < 0 {
            r.free.push(held);
            return;
        }
        if r.kept.len() >= KEPT {
            if let Some((_, old)) = r.kept.pop_front() {
                // SAFETY: ours; unreferenced before reuse.
                unsafe { ffi::av_frame_unref(old.0.as_ptr()) };
                r.free.push(old);
            }
        }
        r.kept.push_back((frame.pts, held));
    }

    /// Moves the picture allocated for packet `pts` into `into` (its previous content
    /// dropped); pictures of earlier packets are dropped. False if there is none.
    pub fn take(&self, pts: i64, into: &mut frame::Video) -> bool {
        let mut r = self.record.lock().unwrap_or_else(PoisonError::into_inner);
        let mut found = false;
        let mut i = 0;
        while i < r.kept.len() {
            let p = r.kept[i].0;
            let wanted = !found && p == pts;
            if !(wanted || p < pts) {
                i += 1;
                continue;
            }
            let Some((_, h)) = r.kept.remove(i) else {
                break;
            };
            found |= wanted;
            r.free.push(release(h, wanted.then_some(&mut *into)));
        }
        found
    }

    /// Moves the latest picture allocated into `into`, dropping every other; false if none
    /// was allocated since the last take.
    pub fn take_latest(&self, into: &mut frame::Video) -> bool {
        let mut r = self.record.lock().unwrap_or_else(PoisonError::into_inner);
        let mut found = false;
        while let Some((_, h)) = r.kept.pop_front() {
            let last = r.kept.is_empty();
            found |= last;
            r.free.push(release(h, last.then_some(&mut *into)));
        }
        found
    }

    /// Drops every recorded picture.
    pub fn clear(&self) {
        let mut r = self.record.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some((_, h)) = r.kept.pop_front() {
            r.free.push(release(h, None));
        }
    }
}

/// Moves the picture `h` holds into `into` (its old content dropped), or drops it; returns
/// the emptied frame for reuse.
fn release(h: Held, into: Option<&mut frame::Video>) -> Held {
    // SAFETY: `h` is a frame of ours; `into` a valid frame.
    unsafe {
        match into {
            Some(into) => {
                ffi::av_frame_unref(into.as_mut_ptr());
                ffi::av_frame_move_ref(into.as_mut_ptr(), h.0.as_ptr());
            }
            None => ffi::av_frame_unref(h.0.as_ptr()),
        }
    }
    h
}
