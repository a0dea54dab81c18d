// SPDX-License-Identifier: GPL-2.0
//! Raw bindings to the media, V4L2, videobuf2, misc and platform headers of the target kernel.
//!
//! Generated at build time by bindgen from `bindings_helper.h` against KDIR (see `Kbuild`), so
//! they always match the kernel the module is built for. Never edited or committed.

// The kernel's own bindings blocklist these so that they map to Rust's pointer-sized integers;
// do the same (the kernel's rust/bindgen_parameters is part of our bindgen invocation).
pub(crate) type __kernel_size_t = usize;
pub(crate) type __kernel_ssize_t = isize;
pub(crate) type __kernel_ptrdiff_t = isize;

include!("bindings_generated.rs");
