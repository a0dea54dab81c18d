// SPDX-License-Identifier: GPL-2.0
//! Bitstream code shared by the daedalus tools and daemon.
//!
//! * [`av1`]: AV1 parsed headers ↔ V4L2 stateless AV1 controls.
//! * [`bits`]: the MSB-first bit writer the header rebuilders share.
//! * [`vp9`]: VP9 superframes, uncompressed and compressed frame headers, and the V4L2 stateless
//!   VP9 controls built from them (clients), the start of a frame header (the daemon).
//! * [`uapi`]: the V4L2 / media controller / dma-buf uAPI bindings (Linux 6.12 headers vendored in
//!   `codecs/uapi/`), generated once here by bindgen for every crate of the workspace.
//!
//! Stateless clients hand the decoder parsed headers as V4L2 controls instead of the bitstream's
//! own parameter sets / header OBUs; the codec modules convert between the two directions:
//! parsed headers → controls (what a client does) and controls → bitstream (what the daemon
//! needs to feed FFmpeg a self-contained stream).

/// `bindings! { pub mod name = "file.rs"; }` declares module `name` holding the bindgen output
/// `file.rs` that the crate's build script wrote to `OUT_DIR`, with the lints generated C
/// bindings do not follow allowed: the one way the workspace's crates include their bindings
/// (the uAPI's below, libva's in the VA-API driver).
#[macro_export]
macro_rules! bindings {
    ($(#[$attr:meta])* $vis:vis mod $name:ident = $file:literal;) => {
        $(#[$attr])*
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
        $vis mod $name {
            include!(concat!(env!("OUT_DIR"), "/", $file));
        }
    };
}

/// `flags![cond => BIT, ...]`: the OR of the `BIT`s whose `cond` holds, e.g. a V4L2 control's
/// flags word from a parsed header's booleans (`flags![...] as u8` for the 8-bit words, whose
/// bits are all below `0x100`).
#[macro_export]
macro_rules! flags {
    ($($cond:expr => $bit:expr),+ $(,)?) => {{
        let mut bits = 0;
        $(if $cond {
            bits |= $bit;
        })+
        bits
    }};
}

bindings! {
    /// The bindgen output for `linux/videodev2.h`, `linux/media.h` and `linux/dma-buf.h`.
    pub mod uapi = "uapi.rs";
}

pub mod av1;
pub mod ivf;
pub mod pod;
pub mod vectors;
pub mod vp9;
/// The parsers the codec modules work on, for the crates that use those modules.
pub use cros_codecs;
pub mod bits;
pub mod h264;

#[cfg(test)]
mod tests {
    use daedalus_proto::formats::Codec;

    use crate::uapi::*;

    /// `daedalus-proto` spells out the control ids it needs (it has no bindings: the module
    /// includes it as source); they must be the uAPI's.
    #[test]
    fn proto_control_ids_are_the_uapi_ones() {
        assert_eq!(Codec::Vp9.frame_control(), V4L2_CID_STATELESS_VP9_FRAME);
        assert_eq!(Codec::Av1.frame_control(), V4L2_CID_STATELESS_AV1_FRAME);
        assert_eq!(
            Codec::H264.frame_control(),
            V4L2_CID_STATELESS_H264_DECODE_PARAMS
        );
    }
}
