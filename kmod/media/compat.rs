// SPDX-License-Identifier: GPL-2.0
//! Every Rust-side difference between the kernel versions the module builds against.
//!
//! Each difference is probed from KDIR's sources by `compat.mk` (a feature, not a version
//! number, because distribution and stable kernels backport API changes) and selected here with
//! a `cfg(daedalus_*)`. The C-side differences are in `glue.c`, selected by `DAEDALUS_*` macros
//! from the same probes.

/// The `kernel` crate's user pointer type for the address `addr`: a plain `usize` on 6.12, a
/// newtype on later kernels.
#[cfg(not(daedalus_userptr_newtype))]
pub(super) fn user_ptr(addr: usize) -> kernel::uaccess::UserPtr {
    addr
}

/// As above, for kernels where `UserPtr` is a newtype.
#[cfg(daedalus_userptr_newtype)]
pub(super) fn user_ptr(addr: usize) -> kernel::uaccess::UserPtr {
    kernel::uaccess::UserPtr::from_addr(addr)
}

// ---------------------------------------------------------------------------------------------
// sysfs attributes (`media::misc`). 6.12's `struct device_attribute` has a plain `show` pointer
// and `struct attribute_group` a plain `attrs` list; 7.x wraps `show` for CFI and moves `attrs`
// into an anonymous union (issue 12). Only these two constructors and `ShowFn` know the layout:
// a 7.x arm goes here, selected by a `compat.mk` probe of `include/linux/sysfs.h` /
// `include/linux/device.h`, with no change to `misc.rs` or the driver.

use core::ffi::CStr;

use super::bindings;
use super::kernel::zeroed;

/// The C type of a `device_attribute`'s `show` callback.
pub(super) type ShowFn = unsafe extern "C" fn(
    *mut bindings::device,
    *mut bindings::device_attribute,
    *mut kernel::ffi::c_char,
) -> isize;

/// A read-only (no `store`) device attribute `name` with `mode`, filled by `show`.
#[cfg(not(daedalus_sysfs_show_alternative))]
pub(super) const fn device_attribute(
    name: &'static CStr,
    mode: u16,
    show: ShowFn,
) -> bindings::device_attribute {
    bindings::device_attribute {
        attr: bindings::attribute {
            name: super::kernel::c_str_ptr(name),
            mode,
            // The remaining (lockdep) fields of a static attribute are zero.
            ..zeroed()
        },
        show: Some(show),
        store: None,
    }
}

/// As above, for 7.x: `show` is one member of an anonymous union with `show_const` (and `store`
/// of one with `store_const`, left zero: no callback).
#[cfg(daedalus_sysfs_show_alternative)]
pub(super) const fn device_attribute(
    name: &'static CStr,
    mode: u16,
    show: ShowFn,
) -> bindings::device_attribute {
    bindings::device_attribute {
        attr: bindings::attribute {
            name: super::kernel::c_str_ptr(name),
            mode,
            // The remaining (lockdep) fields of a static attribute are zero.
            ..zeroed()
        },
        __bindgen_anon_1: bindings::device_attribute__bindgen_ty_1 { show: Some(show) },
        ..zeroed()
    }
}

/// An unnamed attribute group of the NULL-terminated list `attrs` (no visibility callback, no
/// binary attributes). The driver core only reads the list.
#[cfg(not(daedalus_sysfs_attrs_union))]
pub(super) const fn attribute_group(
    attrs: *const *const bindings::attribute,
) -> bindings::attribute_group {
    bindings::attribute_group {
        attrs: attrs.cast_mut().cast(),
        ..zeroed()
    }
}

/// As above, for 7.x: `attrs` is one member of an anonymous union with `attrs_const`.
#[cfg(daedalus_sysfs_attrs_union)]
pub(super) const fn attribute_group(
    attrs: *const *const bindings::attribute,
) -> bindings::attribute_group {
    bindings::attribute_group {
        __bindgen_anon_2: bindings::attribute_group__bindgen_ty_2 { attrs_const: attrs },
        ..zeroed()
    }
}

// ---------------------------------------------------------------------------------------------
// The module's own `struct module` (the `owner` of its file operations): a crate-level static
// `THIS_MODULE` made by `module!` on 6.12, `ModuleMetadata::THIS_MODULE` of the module type on
// 7.x.

/// `THIS_MODULE`.
#[cfg(not(daedalus_this_module_metadata))]
pub(super) const THIS_MODULE: *mut bindings::module = crate::THIS_MODULE.as_ptr().cast();

/// `THIS_MODULE`.
#[cfg(daedalus_this_module_metadata)]
pub(super) const THIS_MODULE: *mut bindings::module =
    <crate::DaedalusModule as kernel::ModuleMetadata>::THIS_MODULE
        .as_ptr()
        .cast();

// ---------------------------------------------------------------------------------------------
// `Opaque<T>` to `*mut T` without a reference: `raw_get` on 6.12, `cast_into` on later kernels.

/// The `T` inside the `Opaque<T>` at `this` (no dereference).
#[cfg(not(daedalus_opaque_cast_into))]
pub(super) const fn opaque_raw<T>(this: *const kernel::types::Opaque<T>) -> *mut T {
    kernel::types::Opaque::raw_get(this)
}

/// The `T` inside the `Opaque<T>` at `this` (no dereference).
#[cfg(daedalus_opaque_cast_into)]
pub(super) const fn opaque_raw<T>(this: *const kernel::types::Opaque<T>) -> *mut T {
    kernel::types::Opaque::cast_into(this)
}
