// SPDX-License-Identifier: GPL-2.0
//! The FFmpeg-free layer of the daedalus stateless decoding clients, shared by the `daedalus`
//! CLI (`daedalus-tools`) and the VA-API driver (`daedalus-vaapi`, a shared object loaded into
//! processes that bring their own FFmpeg, so this crate must never depend on it):
//!
//! * safe wrappers around the V4L2 and media controller uAPI ([`v4l2`], [`media`], raw layer in
//!   [`sys`]; bindings generated at build time from the vendored Linux 6.12 headers by
//!   `daedalus-codecs`) and their [`Error`];
//! * device discovery ([`discover`]) and names of uAPI values ([`names`]);
//! * the stateless codecs and their per-frame controls ([`codec`]);
//! * VP9 frame header parsing into `V4L2_CID_STATELESS_VP9_*` controls ([`vp9`], from
//!   `daedalus-codecs`, whose parser the daemon shares).
#![deny(missing_docs)]

pub mod codec;
pub mod discover;
pub use nix::errno;
mod error;
pub mod media;
pub mod names;
pub mod sys;
pub mod v4l2;
pub use daedalus_codecs::vp9;

pub use error::{Error, Result};
