// SPDX-License-Identifier: GPL-2.0
//! The module's safe media layer: everything that touches C or the `kernel` crate.
//!
//! The driver files next to `daedalus_main.rs` hold the decoder's logic; this layer wraps the
//! V4L2, videobuf2, media controller, misc device and kernel primitives they use in types whose
//! invariants are stated once, on the type (`# Invariants`), with every `unsafe` block citing
//! them (`// SAFETY:`). The plan and its progress: `docs/kmod-safe-layer.md`.
//!
//! Rules of the layer:
//! - Only code under `kmod/media/` names the bindings or the `kernel` crate's API (the driver goes
//!   through [`prelude`] and [`uapi`]); `module!` in `daedalus_main.rs` is the one exception.
//! - Kernel-version differences live here only: [`compat`] (Rust), `glue.c` (C), `compat.mk`
//!   (the probes of KDIR that select them).
//! - The driver files contain no `unsafe` (`make module` checks the count against a budget of
//!   0) and cannot name the bindings (`bindings` is private to the layer).

/// `vtable! { /// doc  vis struct Name<T: Bound>: bindings::ops { field: value, ... } }` defines
/// `Name<T>`, whose `build()` returns the C ops table of `T` written in the braces (a promoted
/// constant: `'static`, one per `T`). Every table of the layer is made this way.
macro_rules! vtable {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident<$t:ident: $bound:ident>: $($ty:ident)::+ { $($body:tt)* }
    ) => {
        $(#[$meta])*
        $vis struct $name<$t>(core::marker::PhantomData<$t>);

        impl<$t: $bound> $name<$t> {
            const VTABLE: $($ty)::+ = $($ty)::+ { $($body)* };

            /// The table (a promoted constant: `'static`).
            $vis const fn build() -> &'static $($ty)::+ {
                &Self::VTABLE
            }
        }
    };
}

// The cast lints are those later kernels add to `rust_common_flags` (7.x): generated code.
#[allow(
    unknown_lints,
    unnecessary_transmutes,
    clippy::all,
    clippy::as_ptr_cast_mut,
    clippy::as_underscore,
    clippy::cast_lossless,
    clippy::ptr_as_ptr,
    clippy::ptr_cast_constness,
    clippy::ref_as_ptr,
    clippy::undocumented_unsafe_blocks,
    dead_code,
    missing_docs,
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    improper_ctypes,
    unreachable_pub,
    unsafe_op_in_unsafe_fn
)]
#[path = "../bindings.rs"]
mod bindings;
mod compat;
pub(crate) mod ctrls;
pub(crate) mod fd;
pub(crate) mod kernel;
pub(crate) mod m2m;
pub(crate) mod misc;
pub(crate) mod platform;
pub(crate) mod request;
pub(crate) mod sync;
pub(crate) mod time;
pub(crate) mod uapi;
pub(crate) mod v4l2;
pub(crate) mod vb2;
pub(crate) mod workqueue;

/// What every driver file imports: errors, allocation, printing, user memory.
pub(crate) mod prelude {
    pub(crate) use super::kernel::{
        code, eproto, pr_err, pr_info, pr_warn, Error, KBox, KVec, Result, UserAddr, GFP_KERNEL,
    };
    pub(crate) use super::kernel::{pin_data, pin_init, try_pin_init, PinInit};
}
