// SPDX-License-Identifier: GPL-2.0
//! Userspace tooling for daedalus, the V4L2 stateless decoder kernel module: safe wrappers
//! around the V4L2 and media controller uAPI (bindings generated at build time from the vendored
//! Linux 6.12 headers), device discovery, and the Request API conformance check.
//!
//! The `daedalus` binary (src/main.rs) is the command-line front end.
#![deny(missing_docs)]

pub mod codec;
pub mod conformance;
pub mod discover;
pub mod errno;
mod error;
pub mod media;
pub mod names;
pub mod sys;
pub mod v4l2;

pub use error::{Error, Result};
