// SPDX-License-Identifier: GPL-2.0
//! The mem2mem device: [`M2mDevice`] (everything registered at load, in one pinned allocation),
//! [`DeviceRegistration`] (what the module owns), [`DeviceRef`] (a counted reference).
//!
//! Lifetime: the [`M2mDevice`] is owned by its `KBox` until `video_register_device` succeeds,
//! then by the video node's refcount: the node's `release` callback frees it, when the last
//! reference to `/dev/videoN` is gone (as visl does). Unload order = the drop order of
//! [`DeviceRegistration`]'s fields: watchdog cancelled, media device unregistered, the m2m
//! entities unregistered, the video node unregistered (which frees the device).

use core::marker::PhantomData;
use core::mem::offset_of;
use core::pin::Pin;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::media::kernel::{
    pin_data, pin_init_from_closure, pinned_drop, try_pin_init, InPlaceInit, PinInit,
};

use super::super::bindings;
use super::super::ctrls::{CtrlBuilder, CtrlOps};
use super::super::kernel::{
    c_int, check, check_ptr, code, strscpy, Error, KBox, Opaque, Result, GFP_KERNEL,
};
use super::super::m2m::{M2mOpsVTable, RunOps};
use super::super::platform::PlatformDevice;
use super::super::request::{MediaOpsVTable, RequestOps};
use super::super::sync::DeviceLock;
use super::super::vb2::QueueOps;
use super::super::workqueue::DelayedWork;
use super::file::{FileVTable, V4l2File};
use super::ioctl::{IoctlOps, IoctlVTable};

/// The media entity function of the device's processing entity.
#[derive(Clone, Copy)]
pub(crate) enum EntityFunction {
    /// `MEDIA_ENT_F_PROC_VIDEO_DECODER`.
    ProcVideoDecoder,
}

impl EntityFunction {
    fn raw(self) -> c_int {
        match self {
            EntityFunction::ProcVideoDecoder => bindings::MEDIA_ENT_F_PROC_VIDEO_DECODER as c_int,
        }
    }
}

/// What the device reports about itself.
pub(crate) struct DeviceInfo {
    /// Driver, video node and media model name (no NUL).
    pub(crate) name: &'static [u8],
    /// `bus_info` of `VIDIOC_QUERYCAP` and `MEDIA_IOC_DEVICE_INFO` (no NUL).
    pub(crate) bus_info: &'static [u8],
    /// `video_device.device_caps`.
    pub(crate) device_caps: u32,
    /// The function of the m2m processing entity.
    pub(crate) function: EntityFunction,
}

/// A V4L2 mem2mem driver.
pub(crate) trait M2mDriver: Sized + 'static {
    /// Device-wide driver state.
    type Data: Send + Sync;
    /// Per open file: the owner of the file's controls, and what is read without the device lock
    /// ([`V4l2File::data`]).
    type File: CtrlOps + Send + Sync;
    /// Per open file, only reached with the device lock held ([`LockedFile::state`](super::file::LockedFile::state)).
    type Locked: Send;
    /// Per vb2 buffer ([`Vb2Buffer::data`](crate::media::vb2::Vb2Buffer::data)): made with
    /// `Default` in the buffer's first `buf_init`, never dropped (videobuf2 frees the memory), so
    /// it must not need a destructor (checked at compile time).
    type Buf: Default + Send + Sync;
    /// Names and capabilities.
    const INFO: DeviceInfo;
    /// About how many controls a file has (sizes the handler's hash table).
    const NR_CTRLS: u32;
    /// A file is being opened (device lock held): its data and its locked state.
    fn open(dev: &M2mDevice<Self>) -> Result<(impl PinInit<Self::File, Error>, Self::Locked)>;
    /// Creates the controls of a file being opened; `add_std` errors fail the open.
    fn controls(b: &mut CtrlBuilder<'_, Self::File>);
    /// Whether a new file's OUTPUT queue offers `V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF` (changed
    /// later with
    /// [`LockedFile::set_hold_capture`](super::file::LockedFile::set_hold_capture)).
    fn output_holds_capture(data: &Self::File) -> bool;
    /// A file is open (device lock held).
    fn opened(file: &V4l2File<Self>);
    /// A file is being released, after its m2m context: no job of it is left.
    fn closed(file: &V4l2File<Self>);
    /// The device's watchdog fired ([`M2mDevice::watchdog`]).
    fn watchdog(dev: &M2mDevice<Self>);
}

/// A driver with all its operations: the bound of the C tables the layer builds
/// (`v4l2_file_operations`, `v4l2_ioctl_ops`, `vb2_ops`, `v4l2_m2m_ops`, `media_device_ops`)
/// and of [`DeviceRegistration`]. Implemented for every type that has them.
pub(crate) trait Driver: IoctlOps + QueueOps + RunOps + RequestOps {}

impl<T: IoctlOps + QueueOps + RunOps + RequestOps> Driver for T {}

/// `v4l2_device`, registered on the platform device.
///
/// # Invariants
///
/// `raw` was registered by `v4l2_device_register`; unregistered by drop.
#[repr(transparent)]
struct V4l2Device {
    raw: Opaque<bindings::v4l2_device>,
}

impl V4l2Device {
    fn new(dev: *mut bindings::device, name: &'static [u8]) -> impl PinInit<Self, Error> {
        // SAFETY: the closure initializes the slot completely (zeroed, as the C initializer
        // expects kzalloc'ed memory, then registered) or fails leaving nothing to undo.
        unsafe {
            pin_init_from_closure(move |slot: *mut Self| {
                let raw =
                    crate::media::compat::opaque_raw(slot.cast::<Opaque<bindings::v4l2_device>>());
                core::ptr::write_bytes(raw, 0, 1);
                strscpy(&mut (*raw).name, name);
                // `dev` is the live platform device (reference taken by the callee).
                check(bindings::v4l2_device_register(dev, raw))
            })
        }
    }
}

impl Drop for V4l2Device {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant).
        unsafe { bindings::v4l2_device_unregister(self.raw.get()) };
    }
}

/// `v4l2_m2m_dev`.
///
/// # Invariants
///
/// Returned by `v4l2_m2m_init`; released by drop.
struct M2mDev(NonNull<bindings::v4l2_m2m_dev>);

impl M2mDev {
    fn new<T: Driver>() -> Result<Self> {
        // SAFETY: a `'static` table, whose `device_run` expects the files of an `M2mDevice<T>`,
        // the only device this m2m device belongs to.
        let raw = check_ptr(unsafe { bindings::v4l2_m2m_init(M2mOpsVTable::<T>::build()) })?;
        Ok(M2mDev(NonNull::new(raw).ok_or(code::ENOMEM)?))
    }
}

impl Drop for M2mDev {
    fn drop(&mut self) {
        // SAFETY: from `v4l2_m2m_init` (type invariant).
        unsafe { bindings::v4l2_m2m_release(self.0.as_ptr()) };
    }
}

/// `media_device`, initialized (not registered: [`MediaRegistration`]).
///
/// # Invariants
///
/// `raw` was set up by `media_device_init`; cleaned up by drop.
#[repr(transparent)]
struct MediaDevice {
    raw: Opaque<bindings::media_device>,
}

impl MediaDevice {
    fn new<T: Driver>(dev: *mut bindings::device) -> impl PinInit<Self, Error> {
        let info: &'static DeviceInfo = &T::INFO;
        let ops = MediaOpsVTable::<T>::build();
        // SAFETY: the closure initializes the slot completely (zeroed, the fields
        // `media_device_init` reads, the init itself, then the ops) and cannot fail.
        unsafe {
            pin_init_from_closure(move |slot: *mut Self| {
                let raw =
                    crate::media::compat::opaque_raw(slot.cast::<Opaque<bindings::media_device>>());
                core::ptr::write_bytes(raw, 0, 1);
                (*raw).dev = dev;
                strscpy(&mut (*raw).model, info.name);
                strscpy(&mut (*raw).driver_name, info.name);
                strscpy(&mut (*raw).bus_info, info.bus_info);
                bindings::media_device_init(raw);
                (*raw).ops = ops;
                Ok(())
            })
        }
    }
}

impl Drop for MediaDevice {
    fn drop(&mut self) {
        // SAFETY: initialized (type invariant).
        unsafe { bindings::media_device_cleanup(self.raw.get()) };
    }
}

/// Everything registered at load, in one pinned allocation.
///
/// # Invariants
///
/// 1. Built in place by [`M2mDevice::new`] (every C object zeroed first), never moves.
/// 2. `vfd.release == release_callback::<T>` from [`VideoRegistration::register`] on. From the
///    moment `video_register_device` succeeds, the allocation is owned by the video_device's
///    refcount and freed only by that callback; before, only by the `KBox` holding it (or,
///    when registration fails after `device_register`, never: see [`VideoRegistration::register`]).
/// 3. `vfd.lock == lock.as_raw()` (set by the layer only).
/// 4. From [`VideoRegistration::register`] on: `v4l2.mdev == &media`,
///    `media.ops == MediaOpsVTable::<T>`, `m2m`'s ops are `M2mOpsVTable::<T>`,
///    `vfd.fops == FileVTable::<T>` and `vfd.ioctl_ops == IoctlVTable::<T>` (the only device
///    with these tables).
/// 5. A file of the video node holds a reference on `vfd` (V4L2 core, open to release), so a
///    `&M2mDevice<T>` reached from one is valid.
/// 6. `watchdog` runs `work_fn::<T>`; it is cancelled before anything else is torn down
///    (drop, and earlier [`DeviceRegistration`]'s drop).
#[pin_data(PinnedDrop)]
pub(crate) struct M2mDevice<T: M2mDriver> {
    // Field drop order = the order the device was torn down in before the layer:
    // v4l2_device_unregister, v4l2_m2m_release, media_device_cleanup, then the rest.
    #[pin]
    v4l2: V4l2Device,
    m2m: M2mDev,
    #[pin]
    media: MediaDevice,
    #[pin]
    vfd: Opaque<bindings::video_device>,
    #[pin]
    lock: DeviceLock,
    #[pin]
    watchdog: DelayedWork,
    /// `video_register_device` is running (see [`VideoRegistration::register`]).
    registering: AtomicBool,
    dma_dev: *mut bindings::device,
    #[pin]
    data: T::Data,
}

// SAFETY: the C objects are used from any task through their own locking; `dma_dev` is only
// read; `T::Data: Send + Sync`.
unsafe impl<T: M2mDriver> Send for M2mDevice<T> {}
// SAFETY: as above.
unsafe impl<T: M2mDriver> Sync for M2mDevice<T> {}

/// The watchdog's work function.
///
/// # Safety
///
/// Only called by the workqueue for the `watchdog` of a live `M2mDevice<T>`.
unsafe extern "C" fn work_fn<T: M2mDriver>(work: *mut bindings::work_struct) {
    // `DelayedWork` is `repr(transparent)` over `delayed_work`.
    let off = offset_of!(M2mDevice<T>, watchdog) + offset_of!(bindings::delayed_work, work);
    // SAFETY: `work` is the `work` of the `watchdog` of a live `M2mDevice<T>` (invariant 6: it
    // is cancelled before the device goes).
    let dev = unsafe { &*work.cast::<u8>().sub(off).cast::<M2mDevice<T>>() };
    T::watchdog(dev);
}

impl<T: Driver> M2mDevice<T> {
    fn new(pdev: &PlatformDevice, data: impl PinInit<T::Data>) -> impl PinInit<Self, Error> {
        let dma_dev = pdev.dev();
        try_pin_init!(Self {
            lock <- DeviceLock::new(),
            // SAFETY: `work_fn::<T>` expects exactly the `watchdog` of an `M2mDevice<T>`.
            watchdog <- unsafe { DelayedWork::new(work_fn::<T>) },
            data <- data,
            v4l2 <- V4l2Device::new(dma_dev, T::INFO.name),
            m2m: M2mDev::new::<T>()?,
            media <- MediaDevice::new::<T>(dma_dev),
            // SAFETY: `slot` is valid while the closure runs; filled in by `register`.
            vfd <- Opaque::ffi_init(|slot| unsafe { core::ptr::write_bytes(slot, 0, 1) }),
            registering: AtomicBool::new(false),
            dma_dev,
        }? Error)
    }
}

impl<T: M2mDriver> M2mDevice<T> {
    /// The device from its video node.
    ///
    /// # Safety
    ///
    /// `vdev` is the `vfd` of a live `M2mDevice<T>` for `'a` (invariant 5: a file of the node).
    pub(super) unsafe fn from_vdev<'a>(vdev: *mut bindings::video_device) -> &'a Self {
        let off = offset_of!(Self, vfd);
        // SAFETY: per the contract; `Opaque` is `repr(transparent)`.
        unsafe { &*vdev.cast::<u8>().sub(off).cast::<Self>() }
    }

    /// The driver's device-wide state.
    pub(crate) fn data(&self) -> &T::Data {
        &self.data
    }

    /// The watchdog (delayed work running [`M2mDriver::watchdog`]).
    pub(crate) fn watchdog(&self) -> &DelayedWork {
        &self.watchdog
    }

    /// The device lock (`video_device.lock`, the vb2 queues' lock).
    pub(in crate::media) fn lock(&self) -> &DeviceLock {
        &self.lock
    }

    /// The `struct device` buffers are allocated for (dma-contig).
    pub(in crate::media) fn dma_dev(&self) -> *mut bindings::device {
        self.dma_dev
    }

    /// The m2m device.
    pub(in crate::media) fn m2m_raw(&self) -> *mut bindings::v4l2_m2m_dev {
        self.m2m.0.as_ptr()
    }
}

#[pinned_drop]
impl<T: M2mDriver> PinnedDrop for M2mDevice<T> {
    fn drop(self: Pin<&mut Self>) {
        // Invariant 6: before any field goes.
        self.watchdog.cancel_sync();
    }
}

/// `video_device.release`: the last reference to the video node is gone.
///
/// # Safety
///
/// Only called by the V4L2 core for the `vfd` of an `M2mDevice<T>` set up by
/// [`VideoRegistration::register`].
unsafe extern "C" fn release_callback<T: M2mDriver>(vdev: *mut bindings::video_device) {
    let off = offset_of!(M2mDevice<T>, vfd);
    let dev = vdev.cast::<u8>().wrapping_sub(off).cast::<M2mDevice<T>>();
    // SAFETY: `dev` is the device of `vdev` (contract), alive: nothing else references it any
    // more. If `registering` is set, `register` failed (or is failing) and owns the device: it
    // frees it, or leaks the allocation with `registering` set for good when this may come late.
    unsafe {
        if (*dev).registering.load(Ordering::Acquire) {
            return;
        }
        // Invariant 2: the video node owned the allocation; this is its one release.
        drop(Pin::new_unchecked(KBox::from_raw(dev)));
    }
}

/// The registered video node, which owns the device.
///
/// # Invariants
///
/// `dev` is a registered `M2mDevice<T>` (its video node is registered until drop, which
/// unregisters it: the last put then frees the device through `release_callback::<T>`).
struct VideoRegistration<T: M2mDriver> {
    dev: NonNull<M2mDevice<T>>,
}

impl<T: Driver> VideoRegistration<T> {
    fn register(dev: Pin<KBox<M2mDevice<T>>>) -> Result<Self> {
        // SAFETY: the device is not moved out of the allocation, only owned through a raw
        // pointer from here on (invariant 2).
        let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(dev) });
        // SAFETY: `raw` is the fresh, exclusively owned, initialized device; its `vfd` is
        // zeroed storage; the tables are `'static`; `lock`, `v4l2` and `media` live as long as
        // `vfd` (same allocation, freed by its release).
        unsafe {
            let d = &*raw;
            let vfd = d.vfd.get();
            strscpy(&mut (*vfd).name, T::INFO.name);
            (*vfd).vfl_dir = bindings::VFL_DIR_M2M;
            (*vfd).fops = FileVTable::<T>::build();
            (*vfd).ioctl_ops = IoctlVTable::<T>::build();
            (*vfd).minor = -1;
            (*vfd).release = Some(release_callback::<T>);
            (*vfd).device_caps = T::INFO.device_caps;
            (*vfd).lock = d.lock.as_raw();
            (*vfd).v4l2_dev = d.v4l2.raw.get();
            (*d.v4l2.raw.get()).mdev = d.media.raw.get();
        }
        // Kernels with upstream commit 2a934fdb01db ("media: v4l2-dev: fix error handling in
        // __video_register_device()", Cc stable) call `vdev->release` when `device_register`
        // fails inside the call, older ones do not (nor any for earlier failures):
        // `release_callback` does nothing while `registering` is set, and a failure is undone
        // here, exactly once.
        // SAFETY: as above.
        let d = unsafe { &*raw };
        d.registering.store(true, Ordering::Release);
        // SAFETY: `vfd` is fully set up.
        let r = check(unsafe { bindings::daedalus_video_register_device(d.vfd.get()) });
        if let Err(e) = r {
            // SAFETY: `vfd` is ours and not registered; its kobject's state bits are only
            // written by `device_initialize`, in the call above.
            let initialized = unsafe { (*d.vfd.get()).dev.kobj.state_initialized() } != 0;
            if initialized {
                // `device_register` was reached: on kernels with the fix the video node's
                // `release` comes from the node's reference, which `CONFIG_DEBUG_KOBJECT_RELEASE`
                // drops seconds later, and reads the video_device (and `registering`, which stays
                // set so that the release does nothing). So the allocation is leaked, and only
                // its contents are torn down now. (Older kernels never call that release: the
                // allocation leaks there too, on this one failure.)
                // SAFETY: not registered, `release_callback` did not and will not free it
                // (`registering`), so we own the contents, dropped once, in place: the memory
                // stays valid (and pinned) for good.
                unsafe { core::ptr::drop_in_place(raw) };
            } else {
                // Failed before `device_register`: no release will come.
                // SAFETY: not registered, and `release_callback` did not free it
                // (`registering`): the box owns it again.
                drop(unsafe { Pin::new_unchecked(KBox::from_raw(raw)) });
            }
            return Err(e);
        }
        d.registering.store(false, Ordering::Release);
        // INVARIANT: registered just above.
        Ok(VideoRegistration {
            // SAFETY: from `KBox::into_raw`.
            dev: unsafe { NonNull::new_unchecked(raw) },
        })
    }
}

impl<T: M2mDriver> VideoRegistration<T> {
    fn device(&self) -> &M2mDevice<T> {
        // SAFETY: registered, hence alive (type invariant).
        unsafe { self.dev.as_ref() }
    }
}

impl<T: M2mDriver> Drop for VideoRegistration<T> {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant); the last put frees the device.
        unsafe { bindings::video_unregister_device(self.device().vfd.get()) };
    }
}

/// The m2m media-controller entities of the video node.
///
/// # Invariants
///
/// `m2m` had `v4l2_m2m_register_media_controller` succeed; it outlives this value (dropped
/// before the [`VideoRegistration`] that owns its device).
struct McRegistration {
    m2m: NonNull<bindings::v4l2_m2m_dev>,
}

impl McRegistration {
    fn new<T: M2mDriver>(node: &VideoRegistration<T>) -> Result<Self> {
        let d = node.device();
        // SAFETY: the m2m device and the video node are registered and live.
        check(unsafe {
            bindings::v4l2_m2m_register_media_controller(
                d.m2m.0.as_ptr(),
                d.vfd.get(),
                T::INFO.function.raw(),
            )
        })?;
        Ok(McRegistration { m2m: d.m2m.0 })
    }
}

impl Drop for McRegistration {
    fn drop(&mut self) {
        // SAFETY: registered, the device alive (type invariant).
        unsafe { bindings::v4l2_m2m_unregister_media_controller(self.m2m.as_ptr()) };
    }
}

/// `/dev/mediaN`.
///
/// # Invariants
///
/// `mdev` was registered by `media_device_register`; it outlives this value (as
/// [`McRegistration`]).
struct MediaRegistration {
    mdev: NonNull<bindings::media_device>,
}

impl MediaRegistration {
    fn new<T: M2mDriver>(node: &VideoRegistration<T>) -> Result<Self> {
        // Checked before registering, so no error path can follow a successful registration.
        let mdev = NonNull::new(node.device().media.raw.get()).ok_or(code::EINVAL)?;
        // SAFETY: initialized, with its entities.
        check(unsafe { bindings::daedalus_media_device_register(mdev.as_ptr()) })?;
        Ok(MediaRegistration { mdev })
    }
}

impl Drop for MediaRegistration {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant).
        unsafe { bindings::media_device_unregister(self.mdev.as_ptr()) };
    }
}

/// What the module owns: dropping it unregisters everything, in field order.
pub(crate) struct DeviceRegistration<T: M2mDriver> {
    _media: MediaRegistration,
    _mc: McRegistration,
    /// Last: unregistering the node frees the device.
    node: VideoRegistration<T>,
}

// SAFETY: the registrations are dropped from whatever task unloads the module; the C calls
// lock internally.
unsafe impl<T: M2mDriver> Send for DeviceRegistration<T> {}
// SAFETY: `&DeviceRegistration` only gives `&M2mDevice<T>`, which is `Sync`.
unsafe impl<T: M2mDriver> Sync for DeviceRegistration<T> {}

impl<T: Driver> DeviceRegistration<T> {
    /// Builds the device on `pdev` and registers `/dev/videoN`, its media entities and
    /// `/dev/mediaN`; on failure, undoes what was done, in reverse.
    pub(crate) fn new(pdev: &PlatformDevice, data: impl PinInit<T::Data>) -> Result<Self> {
        let dev = KBox::pin_init(M2mDevice::<T>::new(pdev, data), GFP_KERNEL)?;
        let node = VideoRegistration::register(dev)?;
        let mc = McRegistration::new(&node)?;
        let media = MediaRegistration::new(&node)?;
        Ok(DeviceRegistration {
            _media: media,
            _mc: mc,
            node,
        })
    }
}

impl<T: M2mDriver> DeviceRegistration<T> {
    /// A counted reference to the device.
    pub(crate) fn get(&self) -> DeviceRef<T> {
        let d = self.node.device();
        // SAFETY: the video node is registered, so its `struct device` is initialized and live.
        unsafe { bindings::get_device(core::ptr::addr_of_mut!((*d.vfd.get()).dev)) };
        // INVARIANT: the reference taken just above.
        DeviceRef {
            dev: self.node.dev,
            _p: PhantomData,
        }
    }

    /// The number N of `/dev/videoN`.
    pub(crate) fn num(&self) -> u16 {
        // SAFETY: registered: `num` is set and not changed any more.
        unsafe { (*self.node.device().vfd.get()).num }
    }
}

impl<T: M2mDriver> Drop for DeviceRegistration<T> {
    fn drop(&mut self) {
        // Before the fields: no daemon and no file exist any more (module references), so
        // nothing re-arms it.
        self.node.device().watchdog.cancel_sync();
    }
}

/// A counted reference to a registered [`M2mDevice`] (`get_device` on its video node).
///
/// Dropping the last reference runs the device's whole teardown (the video node's release),
/// which sleeps: drop a `DeviceRef` in process context only, never from the device's own
/// watchdog (the teardown cancels the watchdog and would wait for itself). The module's
/// registrations keep a reference until unload, so in practice the last one goes there; the
/// drop checks the context (`might_sleep`) all the same.
///
/// # Invariants
///
/// Holds one reference on `dev`'s `vfd.dev`, so the device is not freed (its release callback
/// does not run) while the value exists.
pub(crate) struct DeviceRef<T: M2mDriver> {
    dev: NonNull<M2mDevice<T>>,
    _p: PhantomData<M2mDevice<T>>,
}

// SAFETY: the reference may be dropped from any task; `M2mDevice<T>` is `Sync`.
unsafe impl<T: M2mDriver> Send for DeviceRef<T> {}
// SAFETY: as above.
unsafe impl<T: M2mDriver> Sync for DeviceRef<T> {}

impl<T: M2mDriver> core::ops::Deref for DeviceRef<T> {
    type Target = M2mDevice<T>;

    fn deref(&self) -> &M2mDevice<T> {
        // SAFETY: the reference keeps the device alive (type invariant).
        unsafe { self.dev.as_ref() }
    }
}

impl<T: M2mDriver> Clone for DeviceRef<T> {
    fn clone(&self) -> Self {
        // SAFETY: we hold a reference (type invariant), so the `struct device` is live.
        unsafe { bindings::get_device(core::ptr::addr_of_mut!((*self.vfd.get()).dev)) };
        // INVARIANT: the reference taken just above.
        DeviceRef {
            dev: self.dev,
            _p: PhantomData,
        }
    }
}

impl<T: M2mDriver> Drop for DeviceRef<T> {
    fn drop(&mut self) {
        // SAFETY: no precondition; warns (`CONFIG_DEBUG_ATOMIC_SLEEP`) in atomic context.
        unsafe { bindings::daedalus_might_sleep() };
        // SAFETY: we hold one reference (type invariant); if it is the last, the video node's
        // release frees the device, which is not used after this.
        unsafe { bindings::put_device(core::ptr::addr_of_mut!((*self.vfd.get()).dev)) };
    }
}
