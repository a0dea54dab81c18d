// SPDX-License-Identifier: GPL-2.0
//! `daedalusd`, the decode daemon of daedalus, as a library: the binary is a thin CLI around
//! [`dispatch::run`] with the real device ([`device::Device`]); tests drive the same code with
//! an in-memory [`Transport`], or a [`Context`] directly.
//!
//! Data path of one job (see `docs/architecture.md`): the module sends the job (bitstream
//! buffer, picture buffer, control state) as one message; the context of the job maps the two
//! dma-bufs once and caches the mappings ([`mapping`]); FFmpeg decodes the bitstream straight
//! from the OUTPUT mapping (the job's [`codec`]); the picture is written in one pass into the CAPTURE
//! mapping as NV12 or P010 ([`convert`]); the completion goes back through an ioctl.

#![deny(missing_docs)]

pub mod avbuf;
pub mod band_pool;
pub mod codec;
pub mod context;
pub mod convert;
pub mod device;
pub mod dispatch;
pub mod dump;
pub mod error;
pub mod mapping;
pub mod sandbox;
pub mod stats;
pub mod sys;
pub mod transport;
pub mod warmup;

#[cfg(test)]
mod testutil;

pub use codec::DecoderConfig;
pub use context::Context;
pub use dispatch::{run, DaemonConfig, Summary};
pub use error::JobError;
pub use transport::{Incoming, Transport};

use ffmpeg_next::ffi;

/// Initialises FFmpeg and sets how much it logs (to stderr) for the daemon's log level: FFmpeg
/// errors about corrupt streams show from `warn`, its warnings from `info`.
pub fn init_ffmpeg(level: log::LevelFilter) {
    // Only registers formats/devices on old FFmpeg versions; harmless to call more than once.
    let _ = ffmpeg_next::init();
    let av_level = match level {
        log::LevelFilter::Off => ffi::AV_LOG_QUIET,
        log::LevelFilter::Error => ffi::AV_LOG_FATAL,
        log::LevelFilter::Warn => ffi::AV_LOG_ERROR,
        log::LevelFilter::Info => ffi::AV_LOG_WARNING,
        log::LevelFilter::Debug => ffi::AV_LOG_VERBOSE,
        log::LevelFilter::Trace => ffi::AV_LOG_DEBUG,
    };
    // SAFETY: sets a global integer in libavutil.
    unsafe { ffi::av_log_set_level(av_level) };
}
