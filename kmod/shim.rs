// SPDX-License-Identifier: GPL-2.0
//! The one place that touches the `kernel` crate's API, which moves between kernel versions.
//!
//! The rest of the driver talks to C through [`crate::bindings`] and to the `kernel` crate only
//! through the names re-exported here, so porting to another kernel means editing this file.

pub(crate) use kernel::error::{code, Error, Result};
pub(crate) use kernel::ffi::{c_int, c_long, c_uint, c_ulong, c_void};
pub(crate) use kernel::{pr_err, pr_info, pr_warn};

use kernel::alloc::{flags::GFP_KERNEL, KBox};
use kernel::error::to_result;

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

/// Allocates a zero-filled `T` on the heap and leaks it, returning its address.
///
/// # Safety
///
/// The all-zero bit pattern must be a valid `T` (true of bindgen structs, raw pointers, atomics
/// and `Opaque` wrappers, which is all the driver's C-facing state is made of).
pub(crate) unsafe fn alloc_zeroed<T>() -> Result<*mut T> {
    let mut slot = KBox::<T>::new_uninit(GFP_KERNEL)?;
    // SAFETY: `slot` is a fresh, exclusively owned allocation of one `T`.
    unsafe { core::ptr::write_bytes(slot.as_mut_ptr(), 0, 1) };
    // SAFETY: the memory is zeroed, a valid `T` per this function's contract.
    let boxed = unsafe { slot.assume_init() };
    Ok(KBox::into_raw(boxed))
}

/// Frees what [`alloc_zeroed`] returned, running `T`'s destructor.
///
/// # Safety
///
/// `ptr` comes from [`alloc_zeroed::<T>`] and is not used afterwards.
pub(crate) unsafe fn free<T>(ptr: *mut T) {
    // SAFETY: per the contract, `ptr` is a leaked `KBox<T>` we own again now.
    drop(unsafe { KBox::from_raw(ptr) });
}

/// Copies `src` into the fixed-size C string `dst`, always NUL-terminated (like `strscpy`).
pub(crate) fn strscpy(dst: &mut [u8], src: &[u8]) {
    let n = src.len().min(dst.len().saturating_sub(1));
    dst[..n].copy_from_slice(&src[..n]);
    for b in &mut dst[n..] {
        *b = 0;
    }
}

/// `true` if the current task has `CAP_SYS_ADMIN`.
pub(crate) fn capable_sys_admin() -> bool {
    // SAFETY: `capable` only reads the current task's credentials.
    unsafe { crate::bindings::capable(crate::bindings::CAP_SYS_ADMIN as c_int) }
}

/// `Sync` wrapper for the static C operation tables, which hold raw pointers.
pub(crate) struct AssertSync<T>(pub(crate) T);
// SAFETY: the wrapped tables are never written after compilation and only read by C.
unsafe impl<T> Sync for AssertSync<T> {}

/// `EPROTO`, which the 6.12 `kernel` crate does not name.
pub(crate) fn eproto() -> Error {
    Error::from_errno(-(crate::bindings::EPROTO as c_int))
}

/// Copies `data` to the userspace address `ptr`.
pub(crate) fn copy_to_user(ptr: usize, data: &[u8]) -> Result {
    kernel::uaccess::UserSlice::new(ptr, data.len())
        .writer()
        .write_slice(data)
}

/// Copies `out.len()` bytes from the userspace address `ptr`.
pub(crate) fn copy_from_user(ptr: usize, out: &mut [u8]) -> Result {
    kernel::uaccess::UserSlice::new(ptr, out.len())
        .reader()
        .read_slice(out)
}
