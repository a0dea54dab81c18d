// SPDX-License-Identifier: GPL-2.0
//! One open file of the video node: [`V4l2File`] (the layer's container of the driver's
//! per-file data), [`LockedFile`] (the same under the device lock), [`Queue`] (a view of one of
//! its vb2 queues), and the `v4l2_file_operations` table with its `open` / `release`
//! trampolines.

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::mem::offset_of;
use core::ops::Deref;
use core::pin::Pin;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::media::kernel::{pin_data, pin_init_from_closure, try_pin_init, InPlaceInit, PinInit};

use super::super::bindings;
use super::super::ctrls::CtrlHandler;
use super::super::kernel::{
    c_int, check_ptr, code, errno, zeroed, Error, KBox, Opaque, Result, GFP_KERNEL,
};
use super::super::m2m::{queue_init, run_work};
use super::super::sync::{
    wait_var_event, wait_var_event_timeout, wake_up_var, LockClass, Mutex, MutexGuard,
};
use super::super::time::Delta;
use super::super::workqueue::DelayedWork;
use super::device::{Driver, M2mDevice, M2mDriver};
use super::format::BufType;

/// A `v4l2_fh` on the device's video node.
///
/// # Invariants
///
/// `raw` was set up by `v4l2_fh_init` ([`Fh::new`], pin-init: it never moves); drop runs
/// `v4l2_fh_exit` (which unsubscribes its events).
#[repr(transparent)]
struct Fh {
    raw: Opaque<bindings::v4l2_fh>,
}

impl Fh {
    fn new(vdev: *mut bindings::video_device) -> impl PinInit<Self, Error> {
        // SAFETY: the closure initializes the slot completely (zeroed, as the C initializer
        // expects kzalloc'ed memory, then `v4l2_fh_init`, which cannot fail) for the live video
        // node `vdev` (`open::<T>`'s).
        unsafe {
            pin_init_from_closure(move |slot: *mut Self| {
                let fh = crate::media::compat::opaque_raw(slot.cast::<Opaque<bindings::v4l2_fh>>());
                core::ptr::write_bytes(fh, 0, 1);
                bindings::v4l2_fh_init(fh, vdev);
                Ok(())
            })
        }
    }
}

impl Drop for Fh {
    fn drop(&mut self) {
        // SAFETY: initialized (type invariant); exited once, here.
        unsafe { bindings::v4l2_fh_exit(self.raw.get()) };
    }
}

/// One open file of the video node of an [`M2mDevice<T>`].
///
/// # Invariants
///
/// 1. Built in a pinned `KBox` by `open::<T>`, owned by the open file from `daedalus_fh_add`
///    (`file->private_data == &fh`) until `release::<T>` drops it: every file operation and
///    ioctl of the node reaches it through `private_data`.
/// 2. From the end of `open::<T>` on: `fh.ctrl_handler == &hdl`, and `fh.m2m_ctx` is the file's
///    m2m context, never changed, whose two queues have `drv_priv == self` and `lock ==` the
///    device lock (`queue_init::<T>`). `release::<T>` releases it before anything else; after
///    that the file only goes to [`M2mDriver::closed`], then is dropped.
/// 3. `dev` is valid: the V4L2 core holds a reference on the video node from open to release
///    (M2mDevice invariant 5).
/// 4. `locked` is only reached through a [`LockedFile`], i.e. with the device lock held.
/// 5. The controls of `hdl` have `priv == &data` (`open::<T>`): `data` is dropped after `hdl`
///    (field order), so it outlives them.
/// 6. `inflight` counts the file's live [`ActiveJob`](crate::media::m2m::ActiveJob)s, each of
///    which uses the file, its queues and its m2m context. The layer's `stop_streaming`
///    trampoline and `release::<T>` do not return while it is non-zero, so no job outlives the
///    streaming of the file, nor the file itself (jobs only run while both queues stream).
/// 7. `hold` is held by whoever decides on the head of the ready queues with a view to the held
///    CAPTURE buffer (`device_run`'s [`DeviceRun::start`](crate::media::m2m::DeviceRun::start),
///    `DECODER_CMD`): the OUTPUT buffers' hold flags and which CAPTURE buffer holds a picture.
/// 8. `run` runs `m2m::run_work::<T>` for this file (the jobs of a file whose OUTPUT queue
///    offers `HOLD_CAPTURE_BUF`, which the m2m core does not run: see `m2m.rs`). It is cancelled
///    (and waited for) when a queue stops streaming, before its buffers are returned, and in
///    `release::<T>` once the m2m context, which schedules it, is gone.
#[pin_data]
pub(crate) struct V4l2File<T: M2mDriver> {
    // Field drop order = release order: `v4l2_fh_exit` (which unsubscribes the control events),
    // then the control handler, then the driver's data its controls point to.
    #[pin]
    fh: Fh,
    #[pin]
    hdl: CtrlHandler<T::File>,
    #[pin]
    data: T::File,
    locked: UnsafeCell<T::Locked>,
    dev: NonNull<M2mDevice<T>>,
    inflight: AtomicU32,
    #[pin]
    hold: Mutex<()>,
    #[pin]
    run: DelayedWork,
}

// SAFETY: `fh` and `hdl` are C objects the core uses from any task under its own locking; `data`
// is `Send + Sync` (`M2mDriver::File`); `locked` is only reached under the device lock
// (invariant 4), like a mutex's value, and `M2mDriver::Locked: Send`; `dev` is a `Sync` device.
unsafe impl<T: M2mDriver> Send for V4l2File<T> {}
// SAFETY: as above.
unsafe impl<T: M2mDriver> Sync for V4l2File<T> {}

impl<T: M2mDriver> V4l2File<T> {
    /// The file behind a `struct file` of the video node.
    ///
    /// # Safety
    ///
    /// `file` was opened by `open::<T>` and is not released for `'a` (invariant 1).
    pub(in crate::media) unsafe fn from_file<'a>(file: *mut bindings::file) -> &'a Self {
        // SAFETY: per the contract `private_data` is `&fh` of a live `V4l2File<T>`; `Fh` is
        // `repr(transparent)` over the `v4l2_fh`.
        unsafe {
            let fh = (*file).private_data.cast::<u8>();
            &*fh.sub(offset_of!(Self, fh)).cast::<Self>()
        }
    }

    /// The driver's data of this file.
    pub(crate) fn data(&self) -> &T::File {
        &self.data
    }

    /// The device the file is open on.
    pub(crate) fn device(&self) -> &M2mDevice<T> {
        // SAFETY: valid while the file is (invariant 3).
        unsafe { self.dev.as_ref() }
    }

    /// The file's control handler.
    pub(crate) fn handler(&self) -> &CtrlHandler<T::File> {
        &self.hdl
    }

    /// Waits up to `timeout` until no job of the file is left: `true` if none is.
    pub(crate) fn wait_idle_timeout(&self, timeout: Delta) -> bool {
        wait_var_event_timeout(
            &self.inflight,
            || self.inflight.load(Ordering::Acquire) == 0,
            timeout,
        )
    }

    /// Waits (uninterruptibly, without limit) until no job of the file is left.
    pub(in crate::media) fn wait_idle(&self) {
        wait_var_event(&self.inflight, || {
            self.inflight.load(Ordering::Acquire) == 0
        });
    }

    /// A job of the file starts (invariant 6).
    pub(in crate::media) fn job_started(&self) {
        self.inflight.fetch_add(1, Ordering::AcqRel);
    }

    /// A job of the file ended (invariant 6). The file may be freed as soon as this has counted
    /// it: the caller does not use the file afterwards.
    pub(in crate::media) fn job_ended(&self) {
        let var = core::ptr::from_ref(&self.inflight);
        // As the last `Arc` drop: the counter may go (with the file) while this call returns.
        // `V4l2File` holds `UnsafeCell`s, so `&self` carries no "dereferenceable for the whole
        // call" promise that this would break.
        self.inflight.fetch_sub(1, Ordering::AcqRel);
        // Only the address is used from here (a key, never dereferenced).
        wake_up_var(var);
    }

    /// Where `run` is in the file, for the work's function to find the file.
    pub(in crate::media) fn run_offset() -> usize {
        offset_of!(Self, run)
    }

    /// Runs the file's jobs from the system workqueue soon (invariant 8), unless that is already
    /// pending.
    pub(in crate::media) fn schedule_run(&self) {
        self.run.schedule(Delta::from_msecs(0));
    }

    /// Cancels the file's pending job run and waits for a running one (invariant 8).
    pub(in crate::media) fn cancel_run(&self) {
        self.run.cancel_sync();
    }

    /// Takes the lock of the held CAPTURE buffer's bookkeeping (invariant 7).
    pub(in crate::media) fn lock_hold(&self) -> MutexGuard<'_, ()> {
        self.hold.lock()
    }

    /// The file's m2m context: valid until the file is released, i.e. not in
    /// [`M2mDriver::closed`].
    pub(in crate::media) fn m2m_ctx(&self) -> *mut bindings::v4l2_m2m_ctx {
        // SAFETY: `fh` is initialized; `m2m_ctx` is written once in `open::<T>`, before the file
        // is reachable (invariant 2).
        unsafe { (*self.fh.raw.get()).m2m_ctx }
    }

    /// The vb2 queue of type `ty`: valid as long as [`V4l2File::m2m_ctx`] is.
    pub(in crate::media) fn queue_raw(&self, ty: BufType) -> *mut bindings::vb2_queue {
        // SAFETY: `v4l2_m2m_get_vq` only computes the address of the context's queue of type
        // `ty` (one of its two), without reading it: no access to a released context happens
        // here, whatever the caller does with the result.
        unsafe { bindings::v4l2_m2m_get_vq(self.m2m_ctx(), ty.raw()) }
    }
}

/// A file whose device lock the current task holds: the way to the driver's locked state and to
/// the file's queues.
///
/// # Invariants
///
/// The current task holds the device lock of `file`'s device for `'a`, and no other
/// `LockedFile` of `file` exists meanwhile. Made by the layer's trampolines of callbacks the core
/// runs under that lock, only. Not `Send`.
pub(crate) struct LockedFile<'a, T: M2mDriver> {
    file: &'a V4l2File<T>,
    _not_send: PhantomData<*mut ()>,
}

impl<'a, T: M2mDriver> LockedFile<'a, T> {
    /// The file of an ioctl in progress.
    ///
    /// # Safety
    ///
    /// As [`V4l2File::from_file`]; the current task holds the device lock for `'a` and makes no
    /// other `LockedFile` of this file meanwhile.
    pub(super) unsafe fn enter(file: *mut bindings::file) -> Self {
        // INVARIANT: per the contract.
        LockedFile {
            // SAFETY: per the contract.
            file: unsafe { V4l2File::from_file(file) },
            _not_send: PhantomData,
        }
    }

    /// The file of a vb2 callback the core runs under the device lock.
    ///
    /// # Safety
    ///
    /// The current task holds the device lock of `file`'s device for `'a` and makes no other
    /// `LockedFile` of this file meanwhile.
    pub(in crate::media) unsafe fn assume_locked(file: &'a V4l2File<T>) -> Self {
        // INVARIANT: per the contract.
        LockedFile {
            file,
            _not_send: PhantomData,
        }
    }

    /// The driver's data of the file (see [`V4l2File::data`]), for as long as the lock is held.
    pub(crate) fn data(&self) -> &'a T::File {
        &self.file.data
    }

    /// The driver's state that only changes under the device lock.
    pub(crate) fn state(&self) -> &T::Locked {
        // SAFETY: the device lock is held and no other `LockedFile` of the file exists (type
        // invariant), so nothing writes `locked` while this borrow of `self` lasts.
        unsafe { &*self.file.locked.get() }
    }

    /// As [`LockedFile::state`], to change it.
    pub(crate) fn state_mut(&mut self) -> &mut T::Locked {
        // SAFETY: as in `state`; `&mut self` excludes every other borrow of it.
        unsafe { &mut *self.file.locked.get() }
    }

    /// The file's vb2 queue of type `ty`.
    pub(crate) fn queue(&self, ty: BufType) -> Queue<'_> {
        // INVARIANT: a queue of the file's live m2m context, whose lock (the device lock) is held
        // for the borrow of `self`.
        Queue {
            raw: self.file.queue_raw(ty),
            _p: PhantomData,
        }
    }

    /// Offers `V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF` on the OUTPUT queue, or stops offering it:
    /// `EBUSY` if that changes it while the queue has buffers or streams.
    pub(crate) fn set_hold_capture(&mut self, on: bool) -> Result {
        let q = self.queue(BufType::VideoOutputMplane);
        let flag = bindings::VB2_V4L2_FL_SUPPORTS_M2M_HOLD_CAPTURE_BUF;
        // SAFETY: a live queue (`Queue` invariant); its lock is held, which serializes every
        // writer of its flags.
        let flags = unsafe { (*q.raw).subsystem_flags };
        if (flags & flag != 0) == on {
            return Ok(());
        }
        if q.is_busy() || q.is_streaming() {
            return Err(code::EBUSY);
        }
        // SAFETY: as above. The queue has no buffers and does not stream, so no job of the file
        // runs or can start: `device_run`, which reads the flags without the lock, does not run
        // for this file meanwhile.
        unsafe { (*q.raw).subsystem_flags = if on { flags | flag } else { flags & !flag } };
        Ok(())
    }
}

impl<T: M2mDriver> Deref for LockedFile<'_, T> {
    type Target = V4l2File<T>;

    fn deref(&self) -> &V4l2File<T> {
        self.file
    }
}

/// A vb2 queue of a file, looked at under the device lock ([`LockedFile::queue`]).
///
/// # Invariants
///
/// `raw` is one of the two queues of a live file's m2m context, and the current task holds its
/// lock (the device lock) for `'a`.
pub(crate) struct Queue<'a> {
    raw: *mut bindings::vb2_queue,
    _p: PhantomData<&'a ()>,
}

impl Queue<'_> {
    /// Whether the queue has buffers (`vb2_is_busy`).
    pub(crate) fn is_busy(&self) -> bool {
        // SAFETY: a live queue, its lock held (type invariant).
        unsafe { bindings::daedalus_vb2_is_busy(self.raw) }
    }

    /// Whether the queue streams (`vb2_is_streaming`).
    pub(crate) fn is_streaming(&self) -> bool {
        // SAFETY: as above.
        unsafe { bindings::daedalus_vb2_is_streaming(self.raw) }
    }

    /// Before `REQBUFS` `rb`: when videobuf2 is going to cancel the queue's queued buffers (the
    /// call is valid for this queue, which has buffers and does not stream), a STREAMOFF of the
    /// stopped queue cancels them now, the same way.
    ///
    /// Why: `vb2_core_reqbufs` cancels them under the queue's `mmap_lock`, and cancelling a
    /// buffer of a queued request completes the request's controls under the control handler's
    /// lock. That order (`q->mmap_lock` -> the handler's lock) closes a cycle with two others of
    /// the V4L2 core, the handler's lock -> `mm->mmap_lock` (`G_EXT_CTRLS` copying a compound
    /// control to user memory) and `mm->mmap_lock` -> `q->mmap_lock` (mmap of a buffer), which
    /// lockdep reports (found by daedalus-ioctl-fuzz). `VIDIOC_STREAMOFF` cancels without
    /// `mmap_lock`; afterwards `REQBUFS` has nothing left to cancel.
    pub(crate) fn cancel_before_reqbufs(&self, rb: &bindings::v4l2_requestbuffers) {
        let q = self.raw;
        // SAFETY: a live queue, its lock held (type invariant): its fields do not change.
        let (ty, io_modes, fileio, waiting) = unsafe {
            (
                (*q).type_,
                (*q).io_modes,
                (*q).fileio,
                (*q).waiting_in_dqbuf() != 0,
            )
        };
        // What `vb2_verify_memory_type` and `vb2_core_reqbufs` check before they cancel.
        let memory_ok = match rb.memory {
            bindings::V4L2_MEMORY_MMAP => io_modes & bindings::VB2_MMAP != 0,
            bindings::V4L2_MEMORY_DMABUF => io_modes & bindings::VB2_DMABUF != 0,
            bindings::V4L2_MEMORY_USERPTR => io_modes & bindings::VB2_USERPTR != 0,
            _ => false,
        };
        let cancels = rb.type_ == ty
            && memory_ok
            && fileio.is_null()
            && !(waiting && rb.count != 0)
            && self.is_busy()
            && !self.is_streaming();
        if cancels {
            // SAFETY: a live queue, its lock held; `ty` is its type, so this only cancels.
            unsafe { bindings::vb2_streamoff(q, ty) };
        }
    }
}

vtable! {
    /// The `v4l2_file_operations` of driver `T`.
    pub(super) struct FileVTable<T: Driver>: bindings::v4l2_file_operations {
        owner: crate::media::compat::THIS_MODULE,
        open: Some(open::<T>),
        release: Some(release::<T>),
        poll: Some(bindings::v4l2_m2m_fop_poll),
        unlocked_ioctl: Some(bindings::video_ioctl2),
        mmap: Some(bindings::v4l2_m2m_fop_mmap),
        // Remaining callbacks `None`.
        ..zeroed()
    }
}

/// `v4l2_file_operations.open`: makes the [`V4l2File`] of a new open file.
///
/// # Safety
///
/// Only called by the V4L2 core, for a file being opened on a node this table is installed on.
unsafe extern "C" fn open<T: Driver>(file: *mut bindings::file) -> c_int {
    // SAFETY: `file` is being opened on the video node of an `M2mDevice<T>` (the only node with
    // this table, M2mDevice invariant 4), on which the core holds a reference meanwhile
    // (invariant 5).
    let (vdev, dev) = unsafe {
        let vdev = bindings::video_devdata(file);
        (vdev, M2mDevice::<T>::from_vdev(vdev))
    };
    let _guard = match dev.lock().lock_interruptible() {
        Ok(g) => g,
        Err(e) => return e.to_errno(),
    };
    // SAFETY: as above; the device lock is held.
    errno(unsafe { open_locked::<T>(file, vdev, dev) })
}

/// # Safety
///
/// As [`open`], with the device lock held; `vdev` is the node, `dev` its device.
unsafe fn open_locked<T: Driver>(
    file: *mut bindings::file,
    vdev: *mut bindings::video_device,
    dev: &M2mDevice<T>,
) -> Result {
    let (data, locked) = T::open(dev)?;
    let f = KBox::pin_init(
        try_pin_init!(V4l2File::<T> {
            fh <- Fh::new(vdev),
            hdl <- CtrlHandler::new(T::NR_CTRLS),
            data <- data,
            locked: UnsafeCell::new(locked),
            dev: NonNull::from(dev),
            inflight: AtomicU32::new(0),
            hold <- Mutex::new((), LockClass::Hold),
            // SAFETY: `run_work::<T>` expects exactly the `run` work of a `V4l2File<T>`, which
            // is cancelled before the file goes (invariant 8).
            run <- unsafe { DelayedWork::new(run_work::<T>) },
        }? Error),
        GFP_KERNEL,
    )?;
    // From here on, an error drops `f`: `v4l2_fh_exit`, then the handler is freed.
    // SAFETY: `data` is pinned in the same allocation as `hdl` and outlives it (invariant 5);
    // called once.
    unsafe { f.hdl.add_controls(&f.data, T::controls) }?;
    let fh = f.fh.raw.get();
    // SAFETY: `fh` is initialized and not visible to the core yet; the handler is complete.
    unsafe { (*fh).ctrl_handler = f.hdl.as_raw() };
    let this = core::ptr::from_ref::<V4l2File<T>>(&*f).cast_mut();
    // SAFETY: the m2m device lives as long as `dev`. `queue_init::<T>` gets `this`, pinned and
    // fully initialized, which outlives the m2m context (released by `release::<T>` before the
    // file is dropped; on an error here the m2m core has freed what it made).
    let m2m = check_ptr(unsafe {
        bindings::v4l2_m2m_ctx_init(dev.m2m_raw(), this.cast(), Some(queue_init::<T>))
    })?;
    // SAFETY: `fh` is initialized and not visible to the core yet.
    unsafe { (*fh).m2m_ctx = m2m };
    // INVARIANT: from `daedalus_fh_add` on, the core reaches the file through `private_data`, and
    // the open file owns the allocation (freed by `release::<T>`).
    // SAFETY: `file` is being opened on `vdev`; `fh` is complete. The box is not moved out of,
    // only owned through the raw pointer from here on.
    let f = unsafe {
        bindings::daedalus_fh_add(fh, file);
        &*KBox::into_raw(Pin::into_inner_unchecked(f))
    };
    T::opened(f);
    Ok(())
}

/// `v4l2_file_operations.release`: the last close of a file; drops its [`V4l2File`].
///
/// # Safety
///
/// Only called by the V4L2 core, once, on the last close of a file `open::<T>` succeeded for.
unsafe extern "C" fn release<T: Driver>(file: *mut bindings::file) -> c_int {
    // SAFETY: opened by `open::<T>` and not released yet (contract).
    let f = unsafe { V4l2File::<T>::from_file(file) };
    // Releasing the m2m context stops streaming, which returns the buffers and completes their
    // requests through `hdl`, so it goes first, under the device lock. A STREAMOFF of each queue
    // does that first, as the ioctl would: `v4l2_m2m_ctx_release` would do it under each
    // queue's `mmap_lock`, and the handler's lock taken there closes a cycle lockdep reports
    // (see [`Queue::cancel`]).
    {
        let _guard = f.device().lock().lock();
        for ty in [BufType::VideoOutputMplane, BufType::VideoCaptureMplane] {
            // SAFETY: the file's live m2m context (invariant 2) and one of its queue types; the
            // device lock, the queues' lock, is held. It fails only for another type.
            unsafe { bindings::v4l2_m2m_streamoff(file, f.m2m_ctx(), ty.raw()) };
        }
        // SAFETY: the m2m context is live until here (invariant 2) and not used afterwards.
        unsafe { bindings::v4l2_m2m_ctx_release(f.m2m_ctx()) };
    }
    // Nothing schedules the file's job run any more (invariant 8).
    f.cancel_run();
    // Stopping the queues waited for the file's jobs already; this only returns at once
    // (invariant 6).
    f.wait_idle();
    // SAFETY: the file is being released; `fh` was added in `open::<T>`. Also clears
    // `private_data`.
    unsafe { bindings::daedalus_fh_del(f.fh.raw.get(), file) };
    T::closed(f);
    let raw = core::ptr::from_ref(f).cast_mut();
    // SAFETY: from `KBox::into_raw` in `open::<T>` (invariant 1). No job of the file is left
    // (invariant 6, waited for above) and the core no longer reaches the file: nothing refers to
    // it any more. Dropping it exits `fh`, then frees the control handler.
    drop(unsafe { Pin::new_unchecked(KBox::from_raw(raw)) });
    0
}
