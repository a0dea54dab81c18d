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
