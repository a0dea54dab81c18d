// SPDX-License-Identifier: GPL-2.0
//! Definitions shared by the daedalus kernel module and its userspace.
//!
//! Every module here is `no_std`, allocation-free and panic-free: the kernel module includes the
//! same source files with `#[path]`, so there is exactly one definition of each format, limit and
//! wire message.
//!
//! * [`formats`]: the codecs (OUTPUT fourccs, frame sizes, the control each request carries)
//!   and the CAPTURE layouts (NV12 / P010 sizes).
//! * [`wire`]: the `/dev/daedalus` protocol: handshake, jobs, context events, completions.
#![no_std]
#![deny(missing_docs)]

pub mod formats;
pub mod wire;
