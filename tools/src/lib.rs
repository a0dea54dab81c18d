// SPDX-License-Identifier: GPL-2.0
//! Userspace tooling for daedalus, the V4L2 stateless decoder kernel module: safe wrappers
//! around the V4L2 and media controller uAPI ([`v4l2`], [`media`]; bindings generated at build
//! time from the vendored Linux 6.12 headers by `daedalus-codecs`) and device discovery
//! ([`discover`]), re-exported from the FFmpeg-free `daedalus-client` crate (which the VA-API
//! driver shares), the Request API conformance check ([`conformance`]), the stateless decoding
//! clients — one [`engine`] and the VP9 ([`vp9`]), H.264 ([`h264`]) and AV1 ([`av1`]) front ends
//! on it, started by [`decode`] — with their inputs (any container libavformat reads through
//! [`demux`]; Annex B and OBU streams) and picture output ([`picture`]), and the benchmark
//! against plain FFmpeg ([`mod@bench`]), the module's counters ([`status`]), and the stress test ([`stress`]).
//!
//! The `daedalus` binary (src/main.rs) is the command-line front end.
#![deny(missing_docs)]

pub mod av1;
pub mod bench;
pub mod conformance;
pub mod decode;
pub mod demux;
pub mod engine;
pub mod ffmpeg_timing;
pub mod h264;
pub use daedalus_codecs::ivf;
pub mod picture;
pub mod progress;
mod slots;
pub mod status;
pub mod stress;
pub mod vp9;

pub use daedalus_client::{codec, discover, errno, media, names, sys, v4l2, Error, Result};
