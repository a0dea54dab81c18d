// SPDX-License-Identifier: GPL-2.0
//! The platform device the V4L2 device hangs off: [`PlatformDevice`].

use core::ffi::CStr;
use core::ptr::{addr_of_mut, NonNull};

use super::bindings;
use super::kernel::{check_ptr, code, Result};

/// A registered platform device (`PLATFORM_DEVID_NONE`: named exactly as given).
///
/// # Invariants
///
/// `raw` was returned by `platform_device_register_full` and is unregistered only by drop.
pub(crate) struct PlatformDevice {
    raw: NonNull<bindings::platform_device>,
}

// SAFETY: the device may be unregistered from any task.
unsafe impl Send for PlatformDevice {}
// SAFETY: `&PlatformDevice` only reads the address of its `struct device`.
unsafe impl Sync for PlatformDevice {}

impl PlatformDevice {
    /// Registers the platform device `name`, whose buffers may live at any address below
    /// `dma_mask`, as DMA-coherent: only CPUs access its buffers (see
    /// `daedalus_device_set_dma_coherent` in glue.c), so dma-contig maps them cached on
    /// architectures where a device without firmware description defaults to non-coherent.
    pub(crate) fn register(name: &'static CStr, dma_mask: u64) -> Result<Self> {
        let info = bindings::platform_device_info {
            name: super::kernel::c_str_ptr(name),
            id: -1, // PLATFORM_DEVID_NONE
            dma_mask,
            ..Default::default()
        };
        // SAFETY: `info` is a valid description; the name is copied by the callee.
        let raw = check_ptr(unsafe { bindings::platform_device_register_full(&info) })?;
        // INVARIANT: registered just above.
        let pdev = PlatformDevice {
            raw: NonNull::new(raw).ok_or(code::ENOMEM)?,
        };
        // SAFETY: the device is registered and has no buffer yet (nothing allocates before
        // `register` returns), so no mapping depends on its coherency.
        unsafe { bindings::daedalus_device_set_dma_coherent(pdev.dev()) };
        Ok(pdev)
    }

    /// Whether the DMA API treats the device as cache-coherent (its buffers mapped cached).
    pub(crate) fn dma_coherent(&self) -> bool {
        // SAFETY: registered (type invariant): the device is alive while `self` is.
        unsafe { bindings::daedalus_device_is_dma_coherent(self.dev()) }
    }

    /// The `struct device` (for `v4l2_device_register`, the media device, dma-contig).
    pub(super) fn dev(&self) -> *mut bindings::device {
        // SAFETY: registered (type invariant): the device is alive while `self` is.
        unsafe { addr_of_mut!((*self.raw.as_ptr()).dev) }
    }
}

impl Drop for PlatformDevice {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant), unregistered only here.
        unsafe { bindings::platform_device_unregister(self.raw.as_ptr()) };
    }
}
