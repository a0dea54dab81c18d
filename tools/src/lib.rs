// SPDX-License-Identifier: GPL-2.0
//! Userspace tooling for daedalus, the V4L2 stateless decoder kernel module: safe wrappers
//! around the V4L2 and media controller uAPI (bindings generated at build time from the vendored
//! Linux 6.12 headers), device discovery, the Request API conformance check, and a stateless
//! VP9 decoding client (IVF input, VP9 header parsing, reference tracking, picture output), and
//! its benchmark against plain FFmpeg.
//!
//! The `daedalus` binary (src/main.rs) is the command-line front end.
#![deny(missing_docs)]

pub mod av1;
pub mod bench;
pub mod codec;
pub mod conformance;
pub mod container;
pub mod decode;
pub mod discover;
pub use nix::errno;
mod error;
pub mod ffmpeg_timing;
pub mod h264;
pub use daedalus_codecs::ivf;
pub mod media;
pub mod mp4;
pub mod names;
pub mod picture;
pub mod sys;
pub mod v4l2;
pub mod vp9;
pub mod webm;

pub use error::{Error, Result};
