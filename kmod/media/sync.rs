// SPDX-License-Identifier: GPL-2.0
//! Locks and wait queues: [`Mutex`], [`WaitQueue`], [`PollTable`], [`PollMask`].
//!
//! The 6.12 `kernel` crate has a `Mutex`, but its lockdep class comes from a `static` key made by
//! its `new_mutex!` macro at the call site, and its wait primitives (`CondVar`) do not cover
//! `wait_event_*` with a lock-free condition or `poll_wait`. These wrap the C primitives through
//! one-line forwards in `glue.c`, one `mutex_init` call site (hence one lockdep class) per
//! [`LockClass`].

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};

use core::pin::Pin;

use super::bindings;
use super::kernel::{c_void, code, pin_data, pin_init, pinned_drop, Opaque, PinInit, Result};
use super::time::Delta;

/// A C object whose API locks internally, so that any task may use it, also concurrently (a
/// mutex, a wait queue, a delayed work), set up in place by its C init function.
///
/// # Invariants
///
/// `raw` is zeroed and then initialized by the init function given to [`SyncRaw::new`] before
/// the value is reachable (pin-init), and never moves afterwards.
#[pin_data]
#[repr(transparent)]
pub(crate) struct SyncRaw<T> {
    #[pin]
    raw: Opaque<T>,
}

// SAFETY: `new`'s contract: `T`'s C API may be used from any task.
unsafe impl<T> Send for SyncRaw<T> {}
// SAFETY: as above, concurrently (it locks internally).
unsafe impl<T> Sync for SyncRaw<T> {}

impl<T> SyncRaw<T> {
    /// Zeroes the object (as C expects of kzalloc'ed memory), then calls `init` on it.
    ///
    /// # Safety
    ///
    /// `init` initializes the zeroed object at the (valid, pinned) address it is given, and `T`'s
    /// C API may then be used from any task, concurrently.
    pub(in crate::media) unsafe fn new(init: impl FnOnce(*mut T)) -> impl PinInit<Self> {
        pin_init!(Self {
            raw <- Opaque::ffi_init(move |slot: *mut T| {
                // SAFETY: `slot` is the storage of the object, valid and pinned while the closure
                // is called; `init` then initializes it (contract).
                unsafe { core::ptr::write_bytes(slot, 0, 1) };
                init(slot)
            }),
        })
    }

    /// The C object.
    pub(in crate::media) fn get(&self) -> *mut T {
        self.raw.get()
    }
}

/// The lockdep class of a [`Mutex`]: each variant is its own `mutex_init` call site in `glue.c`.
#[derive(Clone, Copy)]
pub(crate) enum LockClass {
    /// The device's job queue (`daedalus_jobs_lock_init`); nests inside the device lock.
    Jobs,
    /// The device's job ends (`daedalus_job_ends_lock_init`): nests inside the device lock and
    /// outside the job queue's lock, the control handlers' and videobuf2's.
    JobEnds,
    /// A file's format snapshot (`daedalus_format_lock_init`): a leaf, nested inside the device
    /// lock (written by `S_FMT`) or taken alone (read by jobs).
    Format,
    /// A file's held CAPTURE buffer (`daedalus_hold_lock_init`): a leaf, nested inside the device
    /// lock (`DECODER_CMD`, `device_run` from `QBUF`) or taken alone (`device_run` from the m2m
    /// core's job work).
    Hold,
}

/// A sleeping lock protecting a `T`.
///
/// # Invariants
///
/// `raw` is initialized by `mutex_init` (through the [`LockClass`]'s glue function) before the
/// `Mutex` is reachable (pin-init), and never moves afterwards. `value` is only accessed through a
/// [`MutexGuard`], which exists only while the current task holds `raw`.
#[pin_data]
pub(crate) struct Mutex<T> {
    #[pin]
    raw: SyncRaw<bindings::mutex>,
    value: UnsafeCell<T>,
}

// SAFETY: the mutex can be taken and released from any task; `T` moves with it.
unsafe impl<T: Send> Send for Mutex<T> {}
// SAFETY: `value` is only reached through a guard, i.e. by one task at a time (type invariant),
// so sharing the `Mutex` only needs `T: Send`.
unsafe impl<T: Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    /// A mutex of lockdep class `class` holding `value`.
    pub(crate) fn new(value: T, class: LockClass) -> impl PinInit<Self> {
        let init: unsafe extern "C" fn(*mut bindings::mutex) = match class {
            LockClass::Jobs => bindings::daedalus_jobs_lock_init,
            LockClass::JobEnds => bindings::daedalus_job_ends_lock_init,
            LockClass::Format => bindings::daedalus_format_lock_init,
            LockClass::Hold => bindings::daedalus_hold_lock_init,
        };
        pin_init!(Self {
            // SAFETY: `init` is a `mutex_init` call site; a mutex is taken and released from any
            // task.
            raw <- unsafe { SyncRaw::new(move |slot| init(slot)) },
            value: UnsafeCell::new(value),
        })
    }

    /// Takes the lock (uninterruptibly); it is released when the guard is dropped.
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        // SAFETY: `raw` is initialized (type invariant).
        unsafe { bindings::daedalus_mutex_lock(self.raw.get()) };
        // INVARIANT: the lock is held from here until the guard's `drop`.
        MutexGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }
}

/// Proof that the current task holds a [`Mutex`]; gives access to its value.
///
/// # Invariants
///
/// The current task holds `lock.raw` from the guard's creation until its `drop`. Not `Send`:
/// a mutex must be released by the task that took it.
pub(crate) struct MutexGuard<'a, T> {
    lock: &'a Mutex<T>,
    _not_send: PhantomData<*mut ()>,
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the lock is held (type invariant), so no other task accesses `value`.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the lock is held (type invariant) and `&mut self` is the only way in.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the current task holds the lock (type invariant).
        unsafe { bindings::mutex_unlock(self.lock.raw.get()) };
    }
}

/// A `wait_queue_head`: tasks sleep on it until a condition holds; `poll()` registers on it.
///
/// # Invariants
///
/// `raw` is initialized by `init_waitqueue_head` before the `WaitQueue` is reachable (pin-init)
/// and never moves afterwards. A queue outlives the files polled on it: [`WaitQueue::register`]
/// only takes a [`PollTable<'a>`] with the queue borrowed for `'a`, which the table's maker
/// vouches lasts until the polled file is released (`select()`/`poll()` ignore `POLLFREE`, so
/// nothing else would remove their entries). On drop, `wake_up_pollfree` detaches any poller
/// that honours `POLLFREE` (epoll, aio, io_uring) and an RCU grace period passes before the
/// memory can be freed, as `wake_up_pollfree` requires (like the `kernel` crate's
/// `PollCondVar`): a second line of defence, nothing should be registered any more.
#[pin_data(PinnedDrop)]
pub(crate) struct WaitQueue {
    #[pin]
    raw: SyncRaw<bindings::wait_queue_head>,
}

/// Calls the condition closure `F` behind `arg` (the C side of the `wait_event_*` glue).
///
/// # Safety
///
/// `arg` points to a live `F`.
unsafe extern "C" fn call_cond<F: Fn() -> bool>(arg: *mut c_void) -> bool {
    // SAFETY: per the contract.
    unsafe { (*arg.cast::<F>())() }
}

impl WaitQueue {
    /// An empty wait queue.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `init_waitqueue_head` initializes a wait queue; a wait queue is used from
            // any task, all its operations lock internally.
            raw <- unsafe { SyncRaw::new(|slot| bindings::daedalus_init_waitqueue_head(slot)) },
        })
    }

    /// Wakes every task waiting on the queue (and pollers).
    pub(crate) fn wake_all(&self) {
        // SAFETY: `raw` is initialized (type invariant).
        unsafe { bindings::daedalus_wake_up_all(self.raw.get()) };
    }

    /// Sleeps (interruptibly) until `cond` holds: `ERESTARTSYS` if a signal came first.
    ///
    /// `cond` runs with the task not in `TASK_RUNNING`: it must not sleep (no mutex, no
    /// allocation); it should read atomics.
    pub(crate) fn wait_interruptible<F: Fn() -> bool>(&self, cond: F) -> Result {
        // SAFETY: `raw` is initialized (type invariant); `cond` outlives the call, which is the
        // only time the glue calls `call_cond::<F>` with its address.
        let r = unsafe {
            bindings::daedalus_wait_event_interruptible(
                self.raw.get(),
                Some(call_cond::<F>),
                core::ptr::from_ref(&cond).cast_mut().cast(),
            )
        };
        if r != 0 {
            return Err(code::ERESTARTSYS);
        }
        Ok(())
    }

    /// Registers the file being polled on this queue (`poll_wait`).
    ///
    /// The queue is borrowed for `'a`, the time the poll table's entries may stay on it (until the
    /// polled file is released, see [`PollTable`]), as the `kernel` crate's
    /// `PollTable::register_wait` ties its `PollCondVar` to the file.
    pub(crate) fn register<'a>(&'a self, pt: &mut PollTable<'a>) {
        // SAFETY: `raw` is initialized (type invariant) and stays valid for every entry `poll_wait`
        // adds: the queue is borrowed for `'a`, which lasts until the polled file is released
        // (`PollTable` invariant), after which no entry remains; `file` and `pt` are those of the
        // `poll()` call in progress (`PollTable` invariant).
        unsafe { bindings::daedalus_poll_wait(pt.file, self.raw.get(), pt.pt) };
    }
}

#[pinned_drop]
impl PinnedDrop for WaitQueue {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: `raw` is initialized (type invariant); nothing waits on a queue being dropped
        // (waiters borrow it), only poll entries may remain, which this detaches. The grace
        // period then lets their RCU readers finish before the memory goes.
        unsafe {
            bindings::daedalus_wake_up_pollfree(self.raw.get());
            bindings::synchronize_rcu();
        }
    }
}

/// Sleeps (uninterruptibly) until `cond` holds, rechecking it whenever [`wake_up_var`] is called
/// for `var` (`wait_var_event`). `cond` must not sleep, as for [`WaitQueue::wait_interruptible`].
pub(in crate::media) fn wait_var_event<V, F: Fn() -> bool>(var: &V, cond: F) {
    // SAFETY: `var` is only used as a key (hashed to a shared wait queue, never dereferenced);
    // `cond` outlives the call, which is the only time the glue calls `call_cond::<F>` with its
    // address.
    unsafe {
        bindings::daedalus_wait_var_event(
            core::ptr::from_ref(var).cast_mut().cast(),
            Some(call_cond::<F>),
            core::ptr::from_ref(&cond).cast_mut().cast(),
        )
    };
}

/// As [`wait_var_event`], for at most `timeout`: `true` if `cond` held.
pub(in crate::media) fn wait_var_event_timeout<V, F: Fn() -> bool>(
    var: &V,
    cond: F,
    timeout: Delta,
) -> bool {
    // SAFETY: as in `wait_var_event`.
    let left = unsafe {
        bindings::daedalus_wait_var_event_timeout(
            core::ptr::from_ref(var).cast_mut().cast(),
            Some(call_cond::<F>),
            core::ptr::from_ref(&cond).cast_mut().cast(),
            timeout.as_timeout(),
        )
    };
    left != 0
}

/// Wakes the tasks in [`wait_var_event`] on `var`, after a full barrier that orders the caller's
/// update of what their condition reads before it. `var` may be dangling by then (it is only
/// used as a key): the caller may have made the change that lets a waiter free it.
pub(in crate::media) fn wake_up_var<V>(var: *const V) {
    // SAFETY: `wake_up_var` never dereferences its argument, it only hashes the address to find
    // a wait queue and compares it with the waiters' keys.
    unsafe { bindings::daedalus_wake_up_var(var.cast_mut().cast()) };
}

/// A `poll_table` being filled for one `file`.
///
/// # Invariants
///
/// `file` and `pt` are the arguments of a `file_operations.poll` call in progress, for as long as
/// the value exists. `'a` lasts until `file` is released: the entries `poll_wait` adds may stay
/// on a queue that long (epoll removes them in `__fput` before `release`, `select()`/`poll()`
/// before the call returns, aio and io_uring hold the file while armed). Invariant in `'a`, so a
/// table cannot be narrowed to accept a queue that lives less.
pub(crate) struct PollTable<'a> {
    file: *mut bindings::file,
    pt: *mut bindings::poll_table_struct,
    _p: PhantomData<fn(&'a ()) -> &'a ()>,
}

impl PollTable<'_> {
    /// The poll table of a `poll()` call.
    ///
    /// # Safety
    ///
    /// `file` and `pt` are the arguments of a `file_operations.poll` call that lasts as long as
    /// the returned value, and the table's lifetime parameter lasts until `file` is released.
    pub(super) unsafe fn from_raw(
        file: *mut bindings::file,
        pt: *mut bindings::poll_table_struct,
    ) -> Self {
        // INVARIANT: per the contract.
        PollTable {
            file,
            pt,
            _p: PhantomData,
        }
    }
}

/// The events a `poll()` reports (`__poll_t`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct PollMask(u32);

impl PollMask {
    /// Nothing to report.
    pub(crate) const NONE: PollMask = PollMask(0);
    /// Data can be read without blocking (`EPOLLIN | EPOLLRDNORM`).
    pub(crate) const READABLE: PollMask = PollMask(bindings::DAEDALUS_POLLIN);

    /// The `__poll_t` value.
    pub(super) fn raw(self) -> u32 {
        self.0
    }
}

/// `video_device.lock`, which is also the `lock` of every vb2 queue of the device.
///
/// # Invariants
///
/// `raw` is initialized by `mutex_init` (`daedalus_mutex_init`, its own lockdep class) before
/// the lock is reachable (pin-init), and never moves. Its address is written into
/// `video_device.lock` by the layer and into `vb2_queue.lock` by `queue_init`.
#[pin_data]
#[repr(transparent)]
pub(crate) struct DeviceLock {
    #[pin]
    raw: SyncRaw<bindings::mutex>,
}

impl DeviceLock {
    /// An unlocked device lock.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `mutex_init` initializes a mutex; a mutex is taken and released from any
            // task, all access goes through the C mutex API.
            raw <- unsafe { SyncRaw::new(|slot| bindings::daedalus_mutex_init(slot)) },
        })
    }

    /// Takes the lock (uninterruptibly). Layer only: the driver runs under it when the core
    /// says so ([`LockedFile`](super::v4l2::file::LockedFile)), never takes it.
    pub(in crate::media) fn lock(&self) -> DeviceGuard<'_> {
        // SAFETY: initialized (type invariant).
        unsafe { bindings::daedalus_mutex_lock(self.raw.get()) };
        // INVARIANT: held from here until the guard's drop.
        DeviceGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    /// Takes the lock, or `ERESTARTSYS` if a signal comes first (layer only, as `lock`).
    pub(in crate::media) fn lock_interruptible(&self) -> Result<DeviceGuard<'_>> {
        // SAFETY: initialized (type invariant).
        if unsafe { bindings::daedalus_mutex_lock_interruptible(self.raw.get()) } != 0 {
            return Err(code::ERESTARTSYS);
        }
        // INVARIANT: held from here until the guard's drop.
        Ok(DeviceGuard {
            lock: self,
            _not_send: PhantomData,
        })
    }

    /// The C mutex, for the `lock` fields of the video node and the vb2 queues.
    pub(in crate::media) fn as_raw(&self) -> *mut bindings::mutex {
        self.raw.get()
    }
}

/// Proof that the current task holds a [`DeviceLock`]; releases it when dropped.
///
/// # Invariants
///
/// The current task holds `lock` from the guard's creation until its drop. Not `Send`.
pub(crate) struct DeviceGuard<'a> {
    lock: &'a DeviceLock,
    _not_send: PhantomData<*mut ()>,
}

impl Drop for DeviceGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: held by the current task (type invariant).
        unsafe { bindings::mutex_unlock(self.lock.raw.get()) };
    }
}
