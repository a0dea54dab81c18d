// SPDX-License-Identifier: GPL-2.0
//! The daedalus device: platform device, V4L2 device, mem2mem device, media controller, video
//! node and the daemon chardev, and the order in which they come and go.
//!
//! Lifetime: [`Device`] is allocated at module load and freed by the video device's `release`
//! callback, i.e. when the last reference to `/dev/videoN` is gone (as visl does). Files opened
//! on `/dev/videoN` and `/dev/daedalus` hold a reference on this module (the fops' `owner`), so
//! unloading is refused while any is open and [`Registration::drop`] always runs with no user.

use core::mem::offset_of;
use core::ptr::addr_of_mut;

use crate::chardev::Chardev;
use crate::jobs::Jobs;
use crate::media::kernel::{alloc_zeroed, free};
use crate::media::prelude::*;
use crate::media::raw as bindings;
use crate::queue;
use crate::video;

/// Name of the driver, the platform device, the video node and the media model.
pub(crate) const NAME: &[u8] = b"daedalus";
/// [`NAME`] as a C string, for the platform device.
const PDEV_NAME: &[u8] = b"daedalus\0";
/// `bus_info` reported by `VIDIOC_QUERYCAP` and `MEDIA_IOC_DEVICE_INFO` (clients match on it).
pub(crate) const BUS_INFO: &[u8] = b"platform:daedalus";

/// Everything the driver registers, in one allocation that never moves.
///
/// # Invariants
///
/// Allocated zeroed by [`Registration::new`]; the `Opaque` fields are initialized by their C
/// constructors before they are registered, and only touched through C afterwards (or with
/// the locks C documents). Freed only by [`vdev_release`].
pub(crate) struct Device {
    pub(crate) pdev: *mut bindings::platform_device,
    pub(crate) v4l2_dev: Opaque<bindings::v4l2_device>,
    pub(crate) mdev: Opaque<bindings::media_device>,
    pub(crate) vfd: Opaque<bindings::video_device>,
    pub(crate) m2m_dev: *mut bindings::v4l2_m2m_dev,
    /// Serializes the ioctls of every context (`video_device.lock`).
    pub(crate) lock: Opaque<bindings::mutex>,
    pub(crate) chardev: Chardev,
    /// Decode jobs on their way to and from the daemon.
    pub(crate) jobs: Jobs,
}

impl Device {
    /// The device a video node belongs to.
    ///
    /// # Safety
    ///
    /// `vdev` is the `vfd` field of a live [`Device`].
    pub(crate) unsafe fn from_vdev(vdev: *mut bindings::video_device) -> *mut Device {
        // SAFETY: per the contract `vdev` points into a `Device`, so stepping back by the field
        // offset stays inside that allocation. `Opaque` is `repr(transparent)`.
        unsafe {
            vdev.cast::<u8>()
                .sub(offset_of!(Device, vfd))
                .cast::<Device>()
        }
    }

    /// The `struct device` buffers are allocated for (dma-contig).
    pub(crate) fn dma_dev(&self) -> *mut bindings::device {
        // SAFETY: `pdev` is registered for the whole life of `self` (unregistered only after
        // the video node, whose release frees `self`, is gone).
        unsafe { addr_of_mut!((*self.pdev).dev) }
    }
}

/// The module's registration of the device; dropping it unregisters everything.
pub(crate) struct Registration {
    dev: *mut Device,
    pdev: *mut bindings::platform_device,
}

// SAFETY: `Registration` only holds addresses of kernel objects that are used from whatever
// thread runs module init/exit; all concurrent access goes through the C APIs' own locking.
unsafe impl Send for Registration {}
// SAFETY: see `Send`; `&Registration` gives no access at all.
unsafe impl Sync for Registration {}

impl Registration {
    /// Registers the platform device, `/dev/videoN`, `/dev/mediaN` and `/dev/daedalus`.
    pub(crate) fn new() -> Result<Self> {
        let info = bindings::platform_device_info {
            name: PDEV_NAME.as_ptr().cast(),
            id: -1, // PLATFORM_DEVID_NONE: the device is "daedalus", not "daedalus.0"
            // The buffers are only touched by the CPU (and importers of their dma-bufs): any
            // address is fine, so no bounce buffering or 32-bit zone restriction.
            dma_mask: u64::MAX, // DMA_BIT_MASK(64)
            ..Default::default()
        };
        // SAFETY: `info` is a valid description; the name is copied by the callee.
        let pdev = check_ptr(unsafe { bindings::platform_device_register_full(&info) })?;

        // SAFETY: all fields of `Device` are valid zeroed (raw pointers, `Opaque`, atomics).
        let dev = match unsafe { alloc_zeroed::<Device>() } {
            Ok(d) => d,
            Err(e) => {
                // SAFETY: registered above and not shared with anyone yet.
                unsafe { bindings::platform_device_unregister(pdev) };
                return Err(e);
            }
        };
        // SAFETY: `dev` is a fresh exclusive allocation and `pdev` a registered device.
        match unsafe { init_device(dev, pdev) } {
            Ok(()) => {
                // SAFETY: `vfd` was registered by `init_device`.
                let num = unsafe { (*(*dev).vfd.get()).num };
                pr_info!("registered /dev/video{}\n", num);
                Ok(Registration { dev, pdev })
            }
            Err(e) => {
                pr_err!("registration failed: {:?}\n", e);
                // SAFETY: `init_device` undid its own work and freed `dev` (directly or via the
                // video node's release); the platform device is ours.
                unsafe { bindings::platform_device_unregister(pdev) };
                Err(e)
            }
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let dev = self.dev;
        // SAFETY: `dev` is alive until the video node's release, triggered below; it was fully
        // registered by `init_device`. No file is open on any node (module refcount, see the
        // module docs), so nothing races with the teardown.
        unsafe {
            (*dev).chardev.deregister();
            // No daemon and no context exist any more: nothing can schedule the work again.
            (*dev).jobs.shutdown();
            bindings::media_device_unregister((*dev).mdev.get());
            bindings::v4l2_m2m_unregister_media_controller((*dev).m2m_dev);
            // Drops the last reference: `vdev_release` frees `dev`.
            bindings::video_unregister_device((*dev).vfd.get());
            bindings::platform_device_unregister(self.pdev);
        }
        pr_info!("unregistered\n");
    }
}

/// Initializes and registers everything in `dev`. On failure, undoes what it did and frees `dev`.
///
/// # Safety
///
/// `dev` is a zeroed, exclusively owned allocation from [`alloc_zeroed`]; `pdev` is a
/// registered platform device that outlives `dev`.
unsafe fn init_device(dev: *mut Device, pdev: *mut bindings::platform_device) -> Result {
    // SAFETY: exclusive access to a zeroed `Device` per the contract.
    let d = unsafe { &mut *dev };
    d.pdev = pdev;
    // First: from here on, freeing `dev` drops the job queue, which must be initialized then.
    // SAFETY: `lock` and `jobs` are zeroed storage that is not in use yet.
    unsafe {
        bindings::daedalus_mutex_init(d.lock.get());
        Jobs::init(addr_of_mut!((*dev).jobs));
    }
    let v4l2_dev = d.v4l2_dev.get();
    // SAFETY: `v4l2_dev` is zeroed storage we own; `name` is a plain char array.
    unsafe { strscpy(&mut (*v4l2_dev).name, NAME) };
    // SAFETY: `v4l2_dev` is valid storage and `pdev` a live device (reference taken by callee).
    if let Err(e) = check(unsafe { bindings::v4l2_device_register(d.dma_dev(), v4l2_dev) }) {
        // SAFETY: nothing else references `dev`.
        unsafe { free(dev) };
        return Err(e);
    }
    // SAFETY: `M2M_OPS` is a static table with the signatures `v4l2_m2m_init` expects.
    let m2m = check_ptr(unsafe { bindings::v4l2_m2m_init(&queue::M2M_OPS.0) });
    d.m2m_dev = match m2m {
        Ok(m) => m,
        Err(e) => {
            // SAFETY: registered above; nothing else references `dev`.
            unsafe {
                bindings::v4l2_device_unregister(v4l2_dev);
                free(dev);
            }
            return Err(e);
        }
    };

    let mdev = d.mdev.get();
    // SAFETY: `mdev` is zeroed storage; these are plain fields set before `media_device_init`.
    unsafe {
        (*mdev).dev = d.dma_dev();
        strscpy(&mut (*mdev).model, NAME);
        strscpy(&mut (*mdev).driver_name, NAME);
        strscpy(&mut (*mdev).bus_info, BUS_INFO);
        bindings::media_device_init(mdev);
        (*mdev).ops = &queue::MEDIA_OPS.0;
        (*v4l2_dev).mdev = mdev;
    }

    let vfd = d.vfd.get();
    // SAFETY: `vfd` is zeroed storage; the tables are statics; `lock` and `v4l2_dev` live as
    // long as `vfd` (same allocation, freed in its release).
    unsafe {
        strscpy(&mut (*vfd).name, NAME);
        (*vfd).vfl_dir = bindings::VFL_DIR_M2M;
        (*vfd).fops = &video::FOPS.0;
        (*vfd).ioctl_ops = &video::IOCTL_OPS.0;
        (*vfd).minor = -1;
        (*vfd).release = Some(vdev_release);
        (*vfd).device_caps = bindings::V4L2_CAP_VIDEO_M2M_MPLANE | bindings::V4L2_CAP_STREAMING;
        (*vfd).lock = d.lock.get();
        (*vfd).v4l2_dev = v4l2_dev;
    }
    // SAFETY: `vfd` is fully set up.
    if let Err(e) = check(unsafe { bindings::daedalus_video_register_device(vfd) }) {
        // SAFETY: the video node did not register, so its release will not run: undo by hand.
        unsafe { release_resources(dev) };
        return Err(e);
    }

    // From here on, errors unwind through `video_unregister_device`, whose release frees `dev`.
    let unwind_video = |e| {
        // SAFETY: `vfd` is registered; its release (`vdev_release`) frees `dev`.
        unsafe { bindings::video_unregister_device(vfd) };
        e
    };
    // SAFETY: `m2m_dev` and `vfd` are registered and live.
    check(unsafe {
        bindings::v4l2_m2m_register_media_controller(
            d.m2m_dev,
            vfd,
            bindings::MEDIA_ENT_F_PROC_VIDEO_DECODER as c_int,
        )
    })
    .map_err(unwind_video)?;
    // SAFETY: `mdev` is initialized and has its entities.
    if let Err(e) = check(unsafe { bindings::daedalus_media_device_register(mdev) }) {
        // SAFETY: registered just above.
        unsafe { bindings::v4l2_m2m_unregister_media_controller(d.m2m_dev) };
        return Err(unwind_video(e));
    }
    // SAFETY: `chardev` lives in `dev`, which outlives its registration (deregistered first
    // in `Registration::drop`).
    if let Err(e) = unsafe { Chardev::register(addr_of_mut!((*dev).chardev), &(*dev).jobs) } {
        // SAFETY: all registered above, unwound in reverse order.
        unsafe {
            bindings::media_device_unregister(mdev);
            bindings::v4l2_m2m_unregister_media_controller(d.m2m_dev);
        }
        return Err(unwind_video(e));
    }
    Ok(())
}

/// Frees what [`init_device`] set up once the video node is gone.
///
/// # Safety
///
/// `dev` was set up by [`init_device`] up to (not necessarily including) the video node, and
/// nothing uses it any more.
unsafe fn release_resources(dev: *mut Device) {
    // SAFETY: per the contract, these were initialized and are unused.
    unsafe {
        bindings::v4l2_device_unregister((*dev).v4l2_dev.get());
        bindings::v4l2_m2m_release((*dev).m2m_dev);
        bindings::media_device_cleanup((*dev).mdev.get());
        free(dev);
    }
}

/// `video_device.release`: the last reference to the video node is gone.
///
/// # Safety
///
/// Only called by the V4L2 core for the `vfd` of a [`Device`].
unsafe extern "C" fn vdev_release(vdev: *mut bindings::video_device) {
    // SAFETY: `vdev` is the `vfd` of a `Device`; nothing references either any more.
    unsafe { release_resources(Device::from_vdev(vdev)) };
}
