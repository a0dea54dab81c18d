// SPDX-License-Identifier: GPL-2.0
//! The one place that touches the `kernel` crate's API, which moves between kernel versions.
//!
//! The driver talks to the `kernel` crate only through the names re-exported here (and from
//! [`super::prelude`]), so porting to another kernel means editing the layer (this file and
//! [`super::compat`]), never the driver.

pub(crate) use kernel::alloc::{flags::GFP_KERNEL, KBox, KVec};
pub(crate) use kernel::error::{code, Error, Result};
pub(crate) use kernel::ffi::{c_int, c_long, c_uint, c_ulong, c_void};
pub(crate) use kernel::page::PAGE_SIZE;
pub(crate) use kernel::types::Opaque;
pub(crate) use kernel::{pr_err, pr_info, pr_warn};
// Pin-init, named once here: later kernels moved it into a crate of its own, and a path that
// changes is a version difference (rule 5: only `media/kernel.rs` and `compat` name them).
// Pin-init in the `kernel` crate (6.12).
#[cfg(not(daedalus_pin_init_crate))]
pub(crate) use kernel::init::{pin_init_from_closure, InPlaceInit, PinInit};
#[cfg(not(daedalus_pin_init_crate))]
pub(crate) use kernel::pin_init;
// Pin-init as the `pin_init` crate (later kernels): only `InPlaceInit` stays in `kernel::init`.
#[cfg(daedalus_pin_init_crate)]
pub(crate) use kernel::init::InPlaceInit;
pub(crate) use kernel::prelude::{pin_data, pinned_drop};
pub(crate) use kernel::try_pin_init;
#[cfg(daedalus_pin_init_crate)]
pub(crate) use pin_init::{pin_init, pin_init_from_closure, PinInit};

use kernel::error::to_result;

use super::bindings;
use super::compat;

/// The C string pointer of `s` (`CStr::as_ptr`, which later kernels' clippy configuration
/// disallows in favour of their own `CStrExt`; this spelling builds on every kernel).
pub(crate) const fn c_str_ptr(s: &core::ffi::CStr) -> *const kernel::ffi::c_char {
    s.to_bytes_with_nul().as_ptr().cast()
}

/// Converts a C return value (`0` or `-errno`) into a [`Result`].
pub(crate) fn check(ret: c_int) -> Result {
    to_result(ret)
}

/// Converts a C pointer that may carry an error (`ERR_PTR`) into a [`Result`].
pub(crate) fn check_ptr<T>(ptr: *mut T) -> Result<*mut T> {
    let v = ptr as isize;
    // IS_ERR_VALUE(): the top 4095 addresses encode -errno.
    if (-4095..0).contains(&v) {
        return Err(Error::from_errno(v as c_int));
    }
    if ptr.is_null() {
        return Err(code::ENOMEM);
    }
    Ok(ptr)
}

/// Converts a [`Result`] into the `0` / `-errno` a C callback returns.
pub(crate) fn errno(r: Result) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// Copies `src` into the fixed-size C string `dst`, always NUL-terminated (like `strscpy`).
pub(crate) fn strscpy(dst: &mut [u8], src: &[u8]) {
    let n = src.len().min(dst.len().saturating_sub(1));
    let (head, tail) = dst.split_at_mut(n);
    for (d, s) in head.iter_mut().zip(src) {
        *d = *s;
    }
    for b in tail {
        *b = 0;
    }
}

/// The process id (thread group id, initial pid namespace) of the calling task.
pub(crate) fn current_tgid() -> u32 {
    // SAFETY: reads `current`'s tgid.
    let pid = unsafe { bindings::daedalus_current_tgid() };
    u32::try_from(pid).unwrap_or(0)
}

/// `EPROTO`, which the 6.12 `kernel` crate does not name.
pub(crate) fn eproto() -> Error {
    Error::from_errno(-(bindings::EPROTO as c_int))
}

/// Types whose all-zero bit pattern is a valid value.
///
/// # Safety
///
/// Implementors must be valid when zeroed. Implemented only here, for the bindgen structs the
/// operation tables are built from: integers, raw pointers and `Option`s of function pointers.
pub(crate) unsafe trait Zeroable {}

// SAFETY: C structs of function pointers (`Option<fn>`, `None` when zero), raw pointers and
// integers only; all-zero is "no callback" / NULL / 0.
unsafe impl Zeroable for bindings::v4l2_file_operations {}
// SAFETY: as above.
unsafe impl Zeroable for bindings::v4l2_ioctl_ops {}
// SAFETY: as above.
unsafe impl Zeroable for bindings::vb2_ops {}
// SAFETY: as above.
unsafe impl Zeroable for bindings::media_device_ops {}
// SAFETY: as above.
unsafe impl Zeroable for bindings::file_operations {}
// SAFETY: name pointer, mode and (with lockdep) a static key: all-zero is valid.
unsafe impl Zeroable for bindings::attribute {}
// SAFETY: as `file_operations`.
unsafe impl Zeroable for bindings::attribute_group {}
// SAFETY: an `attribute` (above) and two `Option`s of function pointers.
unsafe impl Zeroable for bindings::device_attribute {}
// SAFETY: integers, raw pointers and a list head: all-zero is an unregistered misc device.
unsafe impl Zeroable for bindings::miscdevice {}

/// The all-zero value of `T`, for the tails of C operation tables (`..zeroed()`).
pub(crate) const fn zeroed<T: Zeroable>() -> T {
    // SAFETY: `T: Zeroable`: the all-zero bit pattern is a valid `T`.
    unsafe { core::mem::MaybeUninit::zeroed().assume_init() }
}

/// A userspace address, as `read()` and `ioctl()` receive it.
#[derive(Clone, Copy)]
pub(crate) struct UserAddr(usize);

impl UserAddr {
    /// The address `addr` of the current task's address space.
    pub(crate) const fn new(addr: usize) -> Self {
        UserAddr(addr)
    }

    /// Copies `data` to userspace (`EFAULT` if the range is not writable).
    pub(crate) fn copy_to(self, data: &[u8]) -> Result {
        kernel::uaccess::UserSlice::new(compat::user_ptr(self.0), data.len())
            .writer()
            .write_slice(data)
    }

    /// Fills `out` from userspace (`EFAULT` if the range is not readable).
    pub(crate) fn copy_from(self, out: &mut [u8]) -> Result {
        kernel::uaccess::UserSlice::new(compat::user_ptr(self.0), out.len())
            .reader()
            .read_slice(out)
    }
}
