// SPDX-License-Identifier: GPL-2.0
//! Bitstream code shared by the daedalus tools and daemon.
//!
//! * [`av1`]: AV1 parsed headers ↔ V4L2 stateless AV1 controls.
//! * [`bits`]: the MSB-first bit writer the header rebuilders share.
//! * [`uapi`]: the V4L2 / media controller / dma-buf uAPI bindings (Linux 6.12 headers vendored in
//!   `codecs/uapi/`), generated once here by bindgen for every crate of the workspace.
//!
//! Stateless clients hand the decoder parsed headers as V4L2 controls instead of the bitstream's
//! own parameter sets / header OBUs; the codec modules convert between the two directions:
//! parsed headers → controls (what a client does) and controls → bitstream (what the daemon
//! needs to feed FFmpeg a self-contained stream).

/// The bindgen output for `linux/videodev2.h`, `linux/media.h` and `linux/dma-buf.h`.
#[allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    missing_docs,
    unsafe_op_in_unsafe_fn,
    clippy::all,
    clippy::pedantic
)]
pub mod uapi {
    include!(concat!(env!("OUT_DIR"), "/uapi.rs"));
}

pub mod av1;
pub mod pod;
pub mod vectors;
/// The parsers the codec modules work on, for the crates that use those modules.
pub use cros_codecs;
pub mod bits;
pub mod h264;
