// SPDX-License-Identifier: GPL-2.0
//! videobuf2: [`Vb2Buffer`] (the layer's container of the driver's per-buffer data),
//! [`QueueOps`] (what the driver decides about its queues), the `vb2_ops` table the layer builds
//! from it, and the views [`PrepareBuf`] / [`OutBuf`] of a buffer in the callbacks that may
//! change it.
//!
//! The layer does the mechanics itself: `buf_queue` hands the buffer to the m2m core,
//! `buf_request_complete` completes the request's controls with the file's handler, and after
//! the driver's [`QueueOps::stop_streaming`] it waits for the file's jobs, then returns the
//! buffers still queued (with an error, completing their requests) before
//! [`QueueOps::streaming_stopped`].
//!
//! The queues are configured by the layer's `queue_init` ([`super::m2m`]): dma-contig, MMAP and
//! DMABUF, requests required on OUTPUT, the device lock as the queue lock. videobuf2 calls
//! `queue_setup`, `buf_prepare` (QBUF, PREPARE_BUF, and a request's prepare, which takes
//! `q->lock` itself), `start_streaming` and `stop_streaming` (STREAMON / STREAMOFF, and the
//! release of the file, whose trampoline takes the lock) with that lock held: they get a
//! [`LockedFile`].

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::bindings;
use super::kernel::{c_int, c_uint, code, errno, zeroed, Opaque, Result};
use super::v4l2::device::{Driver, M2mDriver};
use super::v4l2::file::{LockedFile, V4l2File};
use super::v4l2::format::{BufType, Field};

/// The state a buffer is returned to userspace in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum BufState {
    /// `VB2_BUF_STATE_DONE`.
    Done,
    /// `VB2_BUF_STATE_ERROR`: the client sees `V4L2_BUF_FLAG_ERROR`.
    Error,
}

impl BufState {
    pub(super) fn raw(self) -> bindings::vb2_buffer_state {
        match self {
            BufState::Done => bindings::VB2_BUF_STATE_DONE,
            BufState::Error => bindings::VB2_BUF_STATE_ERROR,
        }
    }
}

/// The first plane of a buffer (daedalus' formats have one plane).
#[derive(Clone, Copy)]
pub(crate) struct Plane {
    /// Size of the plane's memory.
    pub(crate) length: u32,
    /// Bytes of payload.
    pub(crate) bytesused: u32,
    /// Where the payload starts.
    pub(crate) data_offset: u32,
}

/// A videobuf2 buffer of a queue of a [`V4l2File<T>`], with the driver's data `B`
/// (`M2mDriver::Buf`).
///
/// # Invariants
///
/// 1. Allocated (zeroed, `buf_struct_size == size_of::<Self>()`) and freed by videobuf2 for a
///    queue set up by the layer's `queue_init`; `m2m` comes first (`repr(C)`), so videobuf2 and
///    the m2m core use the start of the allocation as the `vb2_buffer` / `vb2_v4l2_buffer` /
///    `v4l2_m2m_buffer` they know.
/// 2. `data` is initialized iff `ready` (zeroed memory reads `false`): the `buf_init` trampoline
///    writes `B::default()` the first time, then sets `ready`. `B` has no destructor
///    (const-asserted there): videobuf2 frees the memory without running Rust drops.
/// 3. The layer hands out a `&Vb2Buffer` only inside a videobuf2 callback for that buffer, or
///    borrowed from the [`ActiveJob`](super::m2m::ActiveJob) that owns it: while it exists,
///    videobuf2 does not change the fields read through it, and the buffer is not freed.
/// 4. `counted` is the size the driver was told of in [`QueueOps::buf_memory_attached`] for the
///    memory now behind the buffer, 0 when none (zeroed memory): `buf_init` sets it, `buf_cleanup`
///    (which videobuf2 calls before it releases that memory) takes it back, so each attached size
///    is released exactly once.
/// 5. `picture` (CAPTURE buffers) is 0 from `buf_queue` until a job takes the buffer, then
///    counts the jobs decoding into it ([`Picture`]).
#[repr(C)]
pub(crate) struct Vb2Buffer<B> {
    m2m: Opaque<bindings::v4l2_m2m_buffer>,
    ready: AtomicBool,
    counted: AtomicU32,
    pub(super) picture: Picture,
    data: UnsafeCell<MaybeUninit<B>>,
}

/// The picture a CAPTURE buffer holds while jobs decode into it: with
/// `V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF` the slices of one picture are several jobs on one CAPTURE
/// buffer, which may all be with the daemon at once, and the buffer goes back to userspace when
/// the picture is complete (released) *and* its last job has ended, whichever comes last.
///
/// One word, so that the job that ends and the `device_run` / `DECODER_CMD` that releases the
/// picture agree without a lock on which of them returns the buffer: bits 0-2 are the flags
/// below, the rest the number of jobs decoding into it. Zeroed memory is a fresh buffer.
pub(super) struct Picture(AtomicU32);

impl Picture {
    /// A job took the buffer since it was queued: it holds (part of) a picture whose timestamp
    /// is the buffer's.
    const STARTED: u32 = 1 << 0;
    /// The picture is complete: the buffer left the m2m ready queue and goes back when no job
    /// decodes into it.
    const RELEASED: u32 = 1 << 1;
    /// A job decoding into it failed: the picture goes back in error.
    const FAILED: u32 = 1 << 2;
    /// One job decoding into it.
    const JOB: u32 = 1 << 3;

    /// The buffer was queued: no picture in it.
    pub(super) fn reset(&self) {
        self.0.store(0, Ordering::Release);
    }

    /// Whether a job took the buffer since it was queued.
    pub(super) fn started(&self) -> bool {
        self.0.load(Ordering::Acquire) & Self::STARTED != 0
    }

    /// A job decodes into the buffer; `last`: the job completes the picture (the buffer left the
    /// ready queue).
    pub(super) fn job_started(&self, last: bool) {
        let release = if last { Self::RELEASED } else { 0 };
        self.0.fetch_add(Self::JOB, Ordering::AcqRel);
        self.0.fetch_or(Self::STARTED | release, Ordering::AcqRel);
    }

    /// The picture is complete (the buffer left the ready queue): `Some(state)` if no job
    /// decodes into it, and the caller returns it now in that state.
    pub(super) fn release(&self) -> Option<BufState> {
        let old = self.0.fetch_or(Self::RELEASED, Ordering::AcqRel);
        (old / Self::JOB == 0).then(|| Self::state(old))
    }

    /// A job decoding into the buffer ended (`failed`: in error): `Some(state)` if it was the
    /// last one of a complete picture, and the caller returns the buffer now in that state.
    pub(super) fn job_ended(&self, failed: bool) -> Option<BufState> {
        let failed = if failed { Self::FAILED } else { 0 };
        let mut old = self.0.load(Ordering::Acquire);
        loop {
            let new = (old | failed).saturating_sub(Self::JOB);
            match self
                .0
                .compare_exchange(old, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    let last = new / Self::JOB == 0 && new & Self::RELEASED != 0;
                    return last.then(|| Self::state(new));
                }
                Err(now) => old = now,
            }
        }
    }

    fn state(word: u32) -> BufState {
        if word & Self::FAILED != 0 {
            BufState::Error
        } else {
            BufState::Done
        }
    }
}

impl<B> Vb2Buffer<B> {
    /// The buffer behind a `vb2_buffer` of ours.
    ///
    /// # Safety
    ///
    /// `vb` is a buffer of a queue set up by `queue_init` for a driver whose `Buf` is `B`
    /// (invariant 1), and the caller keeps to invariant 3 for `'a`.
    pub(super) unsafe fn from_raw<'a>(vb: *mut bindings::vb2_buffer) -> &'a Self {
        // SAFETY: per the contract the allocation is a `Self`, whose first field (at offset 0)
        // holds the `vb2_buffer` (first field of `vb2_v4l2_buffer`, itself first of
        // `v4l2_m2m_buffer`).
        unsafe { &*vb.cast::<Self>() }
    }

    /// The `vb2_v4l2_buffer` (first field of the `v4l2_m2m_buffer` at offset 0).
    pub(super) fn as_v4l2(&self) -> *mut bindings::vb2_v4l2_buffer {
        self.m2m.get().cast()
    }

    /// The `vb2_buffer` (first field of the `vb2_v4l2_buffer`).
    pub(super) fn as_vb2(&self) -> *mut bindings::vb2_buffer {
        self.m2m.get().cast()
    }

    /// The driver's data of the buffer, once `buf_init` ran (always, for a queued buffer:
    /// videobuf2 calls `buf_init` before a buffer can be queued).
    pub(crate) fn data(&self) -> Option<&B> {
        if !self.ready.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: initialized since `ready` is set (invariant 2), never written again.
        Some(unsafe { (*self.data.get()).assume_init_ref() })
    }

    /// The buffer's index in its queue.
    pub(crate) fn index(&self) -> u32 {
        // SAFETY: a live buffer whose fields do not change meanwhile (invariant 3).
        unsafe { (*self.as_vb2()).index }
    }

    /// The buffer's timestamp (ns; copied from OUTPUT to CAPTURE).
    pub(crate) fn timestamp(&self) -> u64 {
        // SAFETY: as in `index`.
        unsafe { (*self.as_vb2()).timestamp }
    }

    /// The number of planes (at most `VIDEO_MAX_PLANES`).
    pub(crate) fn num_planes(&self) -> u32 {
        // SAFETY: as in `index`.
        unsafe { (*self.as_vb2()).num_planes }
    }

    /// The first plane.
    pub(crate) fn plane0(&self) -> Plane {
        // SAFETY: as in `index`; `planes` is a fixed array of `VIDEO_MAX_PLANES` entries.
        let p = unsafe { &(*self.as_vb2()).planes[0] };
        Plane {
            length: p.length,
            bytesused: p.bytesused,
            data_offset: p.data_offset,
        }
    }

    /// Sets the payload of the first plane.
    fn set_bytesused(&self, n: u32) {
        // SAFETY: a live buffer that only the current callback touches (invariant 3); the field
        // lives in the `Opaque`, so writing it through `&self` is allowed.
        unsafe { (*self.as_vb2()).planes[0].bytesused = n };
    }

    /// The request the buffer is part of (NULL if none).
    pub(super) fn request(&self) -> *mut bindings::media_request {
        // SAFETY: as in `index`.
        unsafe { (*self.as_vb2()).req_obj.req }
    }

    /// The bytes of memory behind the buffer: the lengths of its planes (saturating).
    fn memory_bytes(&self) -> u32 {
        // SAFETY: as in `index`; `planes` is a fixed array of `VIDEO_MAX_PLANES` entries, of
        // which the first `num_planes` are in use.
        let planes = unsafe { &(*self.as_vb2()).planes };
        let n = usize::try_from(self.num_planes())
            .unwrap_or(0)
            .min(planes.len());
        planes
            .iter()
            .take(n)
            .fold(0u32, |sum, p| sum.saturating_add(p.length))
    }

    /// Whether the driver's data is initialized ([`Vb2Buffer::data`] is `Some`).
    pub(super) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// A buffer in `buf_prepare`: the driver checks it and sets its payload.
pub(crate) struct PrepareBuf<'a, B> {
    buf: &'a Vb2Buffer<B>,
    ty: BufType,
}

impl<B> PrepareBuf<'_, B> {
    /// The buffer.
    pub(crate) fn buf(&self) -> &Vb2Buffer<B> {
        self.buf
    }

    /// The type of its queue.
    pub(crate) fn buf_type(&self) -> BufType {
        self.ty
    }

    /// Sets the payload of the first plane (for CAPTURE: what a decoded picture takes).
    pub(crate) fn set_bytesused(&mut self, n: u32) {
        self.buf.set_bytesused(n);
    }
}

/// An OUTPUT buffer in `buf_out_validate`.
pub(crate) struct OutBuf<'a, B> {
    buf: &'a Vb2Buffer<B>,
}

impl<B> OutBuf<'_, B> {
    /// Sets the field order of the buffer.
    pub(crate) fn set_field(&mut self, field: Field) {
        // SAFETY: a live buffer that only the current callback touches (invariant 3 of
        // `Vb2Buffer`); the field lives in its `Opaque`.
        unsafe { (*self.buf.as_v4l2()).field = field.raw() };
    }
}

/// What a driver decides about its vb2 queues.
pub(crate) trait QueueOps: M2mDriver {
    /// The size of the single plane of queue `ty`'s buffers. The layer applies it as `REQBUFS`
    /// (one plane of that size) or checks a `CREATE_BUFS` against it (one plane, at least that
    /// big, else `EINVAL`).
    fn queue_setup(file: &LockedFile<'_, Self>, ty: BufType) -> Result<u32>;
    /// New memory behind a buffer (allocation, or a new dma-buf attached): `data` is the buffer's
    /// data, `Default` the first time.
    fn buf_init(data: &Self::Buf);
    /// `bytes` of memory are now behind a buffer of `file`'s queue `ty` (allocated by REQBUFS /
    /// CREATE_BUFS, or a dma-buf imported at QBUF), for the driver's accounting. The layer calls
    /// [`QueueOps::buf_memory_released`] once with the same size when videobuf2 lets go of it
    /// (REQBUFS 0, a new dma-buf, the file's release).
    fn buf_memory_attached(_file: &V4l2File<Self>, _ty: BufType, _bytes: u32) {}
    /// The memory of an earlier [`QueueOps::buf_memory_attached`] is no longer behind its buffer.
    fn buf_memory_released(_file: &V4l2File<Self>, _ty: BufType, _bytes: u32) {}
    /// Checks (and fixes) an OUTPUT buffer being queued, request or not.
    fn buf_out_validate(buf: &mut OutBuf<'_, Self::Buf>) -> Result;
    /// Checks a buffer before it is queued, and sets what the driver fills in.
    fn buf_prepare(file: &LockedFile<'_, Self>, buf: &mut PrepareBuf<'_, Self::Buf>) -> Result;
    /// Queue `ty` starts streaming.
    fn start_streaming(_file: &LockedFile<'_, Self>, _ty: BufType) -> Result {
        Ok(())
    }
    /// Queue `ty` stops streaming: the driver ends the file's jobs. The layer then waits until
    /// none is left (a job it cannot end in time is a hang, never a use after free), returns the
    /// buffers still queued with an error, and calls [`QueueOps::streaming_stopped`].
    fn stop_streaming(file: &LockedFile<'_, Self>, ty: BufType);
    /// Queue `ty` stopped: no job of the file is left and every buffer of the queue is back.
    fn streaming_stopped(file: &LockedFile<'_, Self>, ty: BufType);
}

vtable! {
    /// The `vb2_ops` of driver `T`.
    pub(super) struct Vb2VTable<T: Driver>: bindings::vb2_ops {
        queue_setup: Some(queue_setup::<T>),
        buf_init: Some(buf_init::<T>),
        buf_cleanup: Some(buf_cleanup::<T>),
        buf_out_validate: Some(buf_out_validate::<T>),
        buf_prepare: Some(buf_prepare::<T>),
        buf_queue: Some(buf_queue::<T>),
        start_streaming: Some(start_streaming::<T>),
        stop_streaming: Some(stop_streaming::<T>),
        // Gone in 7.0, where vb2 drops `q->lock` itself while DQBUF blocks (media/compat.mk).
        #[cfg(daedalus_vb2_wait_ops)]
        wait_prepare: Some(bindings::vb2_ops_wait_prepare),
        #[cfg(daedalus_vb2_wait_ops)]
        wait_finish: Some(bindings::vb2_ops_wait_finish),
        buf_request_complete: Some(buf_request_complete::<T>),
        // Remaining callbacks `None`.
        ..zeroed()
    }
}

/// The file a queue belongs to, and the queue's type.
///
/// # Safety
///
/// `q` is a queue set up by `queue_init::<T>` (its `drv_priv` is the file, V4l2File invariant 2),
/// in a videobuf2 callback: the file outlives the call.
unsafe fn queue_file<'a, T: M2mDriver>(q: *mut bindings::vb2_queue) -> (&'a V4l2File<T>, BufType) {
    // SAFETY: per the contract.
    unsafe {
        (
            &*(*q).drv_priv.cast::<V4l2File<T>>(),
            BufType::of_queue((*q).type_),
        )
    }
}

/// The file and the buffer of a buffer callback.
///
/// # Safety
///
/// `vb` is a buffer of a queue set up by `queue_init::<T>`, in a videobuf2 callback for it.
unsafe fn buf_args<'a, T: M2mDriver>(
    vb: *mut bindings::vb2_buffer,
) -> (&'a V4l2File<T>, BufType, &'a Vb2Buffer<T::Buf>) {
    // SAFETY: per the contract (`Vb2Buffer` invariants 1 and 3: the callback is for this buffer).
    unsafe {
        let (file, ty) = queue_file::<T>((*vb).vb2_queue);
        (file, ty, Vb2Buffer::from_raw(vb))
    }
}

/// `vb2_ops.queue_setup`.
///
/// # Safety
///
/// Only called by videobuf2 for a queue of `queue_init::<T>` (REQBUFS, CREATE_BUFS: the device
/// lock is held), with arrays of `VIDEO_MAX_PLANES` entries.
unsafe extern "C" fn queue_setup<T: Driver>(
    q: *mut bindings::vb2_queue,
    _nbuffers: *mut c_uint,
    num_planes: *mut c_uint,
    sizes: *mut c_uint,
    _alloc_devs: *mut *mut bindings::device,
) -> c_int {
    // SAFETY: our queue, in a callback run under the device lock, where the layer makes no other
    // `LockedFile` (contract).
    let (file, ty) = unsafe { queue_file::<T>(q) };
    // SAFETY: as above.
    let locked = unsafe { LockedFile::assume_locked(file) };
    let size = match T::queue_setup(&locked, ty) {
        Ok(size) => size,
        Err(e) => return e.to_errno(),
    };
    // SAFETY: valid pointers from the core (contract).
    unsafe {
        if *num_planes != 0 {
            // CREATE_BUFS: the client's sizes must hold our format.
            if *num_planes != 1 || *sizes < size {
                return code::EINVAL.to_errno();
            }
        } else {
            *num_planes = 1;
            *sizes = size;
        }
    }
    0
}

/// `vb2_ops.buf_init`.
///
/// # Safety
///
/// Only called by videobuf2 for a buffer of a queue of `queue_init::<T>`, before it can be
/// queued (not owned by a job).
unsafe extern "C" fn buf_init<T: Driver>(vb: *mut bindings::vb2_buffer) -> c_int {
    const { assert!(!core::mem::needs_drop::<T::Buf>()) };
    // SAFETY: our buffer, in a callback for it (contract).
    let (file, ty, buf) = unsafe { buf_args::<T>(vb) };
    let bytes = buf.memory_bytes();
    // INVARIANT: the size the driver is told of; a second `buf_init` without `buf_cleanup` in
    // between (videobuf2 does not make one) would not count the buffer twice.
    if buf
        .counted
        .compare_exchange(0, bytes, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
        && bytes != 0
    {
        T::buf_memory_attached(file, ty, bytes);
    }
    if !buf.ready.load(Ordering::Acquire) {
        // SAFETY: not initialized yet (invariant 2), and nothing else reaches the data: the
        // buffer is in this callback only (invariant 3).
        unsafe { (*buf.data.get()).write(T::Buf::default()) };
        // INVARIANT: initialized just above.
        buf.ready.store(true, Ordering::Release);
    }
    if let Some(data) = buf.data() {
        T::buf_init(data);
    }
    0
}

/// `vb2_ops.buf_cleanup`: the memory behind the buffer is about to be released (or replaced by
/// another dma-buf).
///
/// # Safety
///
/// Only called by videobuf2 for a buffer of a queue of `queue_init::<T>` whose memory it is about
/// to release (not owned by a job: a buffer with a job is queued, and videobuf2 releases no queued
/// buffer's memory).
unsafe extern "C" fn buf_cleanup<T: Driver>(vb: *mut bindings::vb2_buffer) {
    // SAFETY: our buffer, in a callback for it (contract).
    let (file, ty, buf) = unsafe { buf_args::<T>(vb) };
    // INVARIANT: taken back once; the next `buf_init` counts the new memory.
    let bytes = buf.counted.swap(0, Ordering::AcqRel);
    if bytes != 0 {
        T::buf_memory_released(file, ty, bytes);
    }
}

/// `vb2_ops.buf_out_validate`.
///
/// # Safety
///
/// Only called by videobuf2 for an OUTPUT buffer of a queue of `queue_init::<T>`.
unsafe extern "C" fn buf_out_validate<T: Driver>(vb: *mut bindings::vb2_buffer) -> c_int {
    // SAFETY: our buffer, in a callback for it (contract).
    let (_, _, buf) = unsafe { buf_args::<T>(vb) };
    errno(T::buf_out_validate(&mut OutBuf { buf }))
}

/// `vb2_ops.buf_prepare`.
///
/// # Safety
///
/// Only called by videobuf2 for a buffer of a queue of `queue_init::<T>`, with the device lock
/// held (QBUF, PREPARE_BUF, or a request's prepare, which takes `q->lock`).
unsafe extern "C" fn buf_prepare<T: Driver>(vb: *mut bindings::vb2_buffer) -> c_int {
    // SAFETY: our buffer, in a callback for it, under the device lock, where the layer makes no
    // other `LockedFile` (contract).
    let (locked, ty, buf) = unsafe {
        let (file, ty, buf) = buf_args::<T>(vb);
        (LockedFile::assume_locked(file), ty, buf)
    };
    errno(T::buf_prepare(&locked, &mut PrepareBuf { buf, ty }))
}

/// `vb2_ops.buf_queue`: the buffer goes to the m2m core's ready queue.
///
/// # Safety
///
/// Only called by videobuf2 for a buffer of a queue of `queue_init::<T>`.
unsafe extern "C" fn buf_queue<T: Driver>(vb: *mut bindings::vb2_buffer) {
    // SAFETY: our buffer, in a callback for it (contract).
    let (file, _, buf) = unsafe { buf_args::<T>(vb) };
    // INVARIANT: no job has it (userspace queues it).
    buf.picture.reset();
    // SAFETY: the file's m2m context is live (its queue calls us); the buffer is a
    // `v4l2_m2m_buffer` (Vb2Buffer invariant 1).
    unsafe { bindings::v4l2_m2m_buf_queue(file.m2m_ctx(), buf.as_v4l2()) };
}

/// `vb2_ops.buf_request_complete`: the buffer leaves a request without being decoded.
///
/// # Safety
///
/// Only called by videobuf2 for a buffer of a queue of `queue_init::<T>` that is in a request.
unsafe extern "C" fn buf_request_complete<T: Driver>(vb: *mut bindings::vb2_buffer) {
    // SAFETY: our buffer, in a callback for it (contract).
    let (file, _, buf) = unsafe { buf_args::<T>(vb) };
    // SAFETY: the request is live while its buffer is in it; the file's handler is the parent of
    // the request's control handler.
    unsafe { bindings::v4l2_ctrl_request_complete(buf.request(), file.handler().as_raw()) };
}

/// `vb2_ops.start_streaming`.
///
/// # Safety
///
/// Only called by videobuf2 for a queue of `queue_init::<T>` (STREAMON: the device lock is
/// held).
unsafe extern "C" fn start_streaming<T: Driver>(
    q: *mut bindings::vb2_queue,
    _count: c_uint,
) -> c_int {
    // SAFETY: our queue, in a callback run under the device lock, where the layer makes no other
    // `LockedFile` (contract).
    let (locked, ty) = unsafe {
        let (file, ty) = queue_file::<T>(q);
        (LockedFile::assume_locked(file), ty)
    };
    errno(T::start_streaming(&locked, ty))
}

/// `vb2_ops.stop_streaming`: the driver ends the file's jobs, the layer waits until none is left,
/// returns the buffers still queued with an error (completing their requests), then tells the
/// driver.
///
/// # Safety
///
/// Only called by videobuf2 for a queue of `queue_init::<T>` (STREAMOFF, or the file's release:
/// the device lock is held).
unsafe extern "C" fn stop_streaming<T: Driver>(q: *mut bindings::vb2_queue) {
    // SAFETY: our queue, in a callback run under the device lock, where the layer makes no other
    // `LockedFile` (contract).
    let (locked, ty) = unsafe {
        let (file, ty) = queue_file::<T>(q);
        (LockedFile::assume_locked(file), ty)
    };
    // No job of the file starts any more: the m2m core stopped scheduling it (`TRANS_ABORT`)
    // before stopping the queue, and its own work is cancelled here.
    locked.cancel_run();
    T::stop_streaming(&locked, ty);
    // No job of the file outlives streaming: the buffers a job owns come back (the oldest ones)
    // before those still queued, and nothing refers to the file once its queues are released.
    locked.wait_idle();
    return_queued(&locked, ty, BufState::Error);
    T::streaming_stopped(&locked, ty);
}

/// Returns every buffer still queued on the file's queue `ty` to userspace with `state`,
/// completing their requests.
fn return_queued<T: M2mDriver>(file: &LockedFile<'_, T>, ty: BufType, state: BufState) {
    let m2m = file.m2m_ctx();
    loop {
        // SAFETY: the m2m context is live (its queue is being stopped); removal is locked
        // internally.
        let vbuf = unsafe {
            match ty {
                BufType::VideoOutputMplane => bindings::daedalus_m2m_src_buf_remove(m2m),
                BufType::VideoCaptureMplane => bindings::daedalus_m2m_dst_buf_remove(m2m),
            }
        };
        if vbuf.is_null() {
            break;
        }
        // SAFETY: `vbuf` was just taken off our queue, so only this code refers to it; its
        // request (if any) has the file's handler as parent.
        unsafe {
            let req = (*vbuf).vb2_buf.req_obj.req;
            if !req.is_null() {
                bindings::v4l2_ctrl_request_complete(req, file.handler().as_raw());
            }
            bindings::vb2_buffer_done(&mut (*vbuf).vb2_buf, state.raw());
        }
    }
}
