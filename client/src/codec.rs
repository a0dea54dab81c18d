// SPDX-License-Identifier: GPL-2.0
//! The stateless codecs the Request API check exercises, and the control payloads it sends for
//! them.
//!
//! For each codec: the OUTPUT fourcc, the per-frame control that daedalus requires in every
//! request (its `req_validate` fails with `ENOENT` without it), a control of the same codec that
//! is *not* enough on its own, and a way to make the mandatory payload invalid so that the
//! control framework's `std_validate_compound()` (v4l2-ctrls-core.c) rejects it with `EINVAL`.

use std::fmt;
use std::str::FromStr;

use daedalus_proto::formats;

use crate::error::Result;
use crate::sys::*;
use crate::v4l2::{CtrlPayload, VideoDevice};

/// A stateless decoding codec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// VP9 (`V4L2_PIX_FMT_VP9_FRAME`).
    Vp9,
    /// H.264 (`V4L2_PIX_FMT_H264_SLICE`).
    H264,
    /// AV1 (`V4L2_PIX_FMT_AV1_FRAME`).
    Av1,
}

impl Codec {
    /// Every codec, in the order the check runs them.
    pub const ALL: [Codec; 3] = [Codec::Vp9, Codec::H264, Codec::Av1];

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Vp9 => "VP9",
            Codec::H264 => "H.264",
            Codec::Av1 => "AV1",
        }
    }

    /// The codec in the shared format table.
    pub fn proto(self) -> formats::Codec {
        match self {
            Codec::Vp9 => formats::Codec::Vp9,
            Codec::H264 => formats::Codec::H264,
            Codec::Av1 => formats::Codec::Av1,
        }
    }

    /// The OUTPUT (bitstream) fourcc.
    pub fn fourcc(self) -> u32 {
        self.proto().fourcc()
    }

    /// The codec of an OUTPUT fourcc.
    pub fn from_fourcc(fourcc: u32) -> Option<Codec> {
        Codec::ALL.into_iter().find(|c| c.fourcc() == fourcc)
    }

    /// The control every request of this codec must carry.
    pub fn mandatory_ctrl(self) -> u32 {
        match self {
            Codec::Vp9 => V4L2_CID_STATELESS_VP9_FRAME,
            Codec::H264 => V4L2_CID_STATELESS_H264_DECODE_PARAMS,
            Codec::Av1 => V4L2_CID_STATELESS_AV1_FRAME,
        }
    }

    /// A control of this codec that does not make a request valid on its own.
    pub fn optional_ctrl(self) -> u32 {
        match self {
            Codec::Vp9 => V4L2_CID_STATELESS_VP9_COMPRESSED_HDR,
            Codec::H264 => V4L2_CID_STATELESS_H264_PPS,
            Codec::Av1 => V4L2_CID_STATELESS_AV1_SEQUENCE,
        }
    }

    /// Short names of the mandatory and optional controls, for the check output.
    pub fn ctrl_names(self) -> (&'static str, &'static str) {
        match self {
            Codec::Vp9 => ("VP9_FRAME", "VP9_COMPRESSED_HDR"),
            Codec::H264 => ("H264_DECODE_PARAMS", "H264_PPS"),
            Codec::Av1 => ("AV1_FRAME", "AV1_SEQUENCE"),
        }
    }

    /// What [`Payloads::invalid`] breaks, for the check output.
    pub fn invalid_desc(self) -> &'static str {
        match self {
            Codec::Vp9 => "VP9_FRAME with bit_depth 9",
            Codec::H264 => "H264_DECODE_PARAMS with nal_ref_idc 4",
            Codec::Av1 => "AV1_FRAME with superres_denom 17",
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error of [`Codec::from_str`].
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown codec {0:?} (expected vp9, h264 or av1)")]
pub struct UnknownCodec(pub String);

impl FromStr for Codec {
    type Err = UnknownCodec;

    /// `vp9`, `h264` (or `h.264`, `avc`), `av1`, case-insensitive, or an OUTPUT fourcc.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "vp9" | "vp9f" => Ok(Codec::Vp9),
            "h264" | "h.264" | "avc" | "s264" => Ok(Codec::H264),
            "av1" | "av1f" => Ok(Codec::Av1),
            _ => Err(UnknownCodec(s.to_owned())),
        }
    }
}

/// The control payloads of one codec: the mandatory per-frame control and the optional one,
/// starting from the driver's default values (the control framework validates compound
/// payloads, and an all-zero VP9 frame, for one, is invalid).
#[derive(Clone)]
pub enum Payloads {
    /// VP9.
    Vp9 {
        /// `V4L2_CID_STATELESS_VP9_FRAME`.
        frame: Box<v4l2_ctrl_vp9_frame>,
        /// `V4L2_CID_STATELESS_VP9_COMPRESSED_HDR`.
        compressed_hdr: Box<v4l2_ctrl_vp9_compressed_hdr>,
    },
    /// H.264.
    H264 {
        /// `V4L2_CID_STATELESS_H264_DECODE_PARAMS`.
        decode_params: Box<v4l2_ctrl_h264_decode_params>,
        /// `V4L2_CID_STATELESS_H264_PPS`.
        pps: Box<v4l2_ctrl_h264_pps>,
    },
    /// AV1.
    Av1 {
        /// `V4L2_CID_STATELESS_AV1_FRAME`.
        frame: Box<v4l2_ctrl_av1_frame>,
        /// `V4L2_CID_STATELESS_AV1_SEQUENCE`.
        sequence: Box<v4l2_ctrl_av1_sequence>,
    },
}

/// `x - 1` for a frame dimension, saturated into the field's type.
fn minus_1<T: TryFrom<u32> + Default>(x: u32) -> T {
    T::try_from(x.saturating_sub(1)).unwrap_or_default()
}

impl Payloads {
    /// Reads the default payloads of `codec` from the device (`V4L2_CTRL_WHICH_DEF_VAL`) and
    /// fills in a plausible key frame of `width`x`height`.
    pub fn load(codec: Codec, dev: &VideoDevice, width: u32, height: u32) -> Result<Self> {
        Ok(match codec {
            Codec::Vp9 => {
                let mut frame: v4l2_ctrl_vp9_frame = dev.default_payload(codec.mandatory_ctrl())?;
                frame.flags |= V4L2_VP9_FRAME_FLAG_KEY_FRAME | V4L2_VP9_FRAME_FLAG_SHOW_FRAME;
                frame.frame_width_minus_1 = minus_1(width);
                frame.frame_height_minus_1 = minus_1(height);
                frame.render_width_minus_1 = minus_1(width);
                frame.render_height_minus_1 = minus_1(height);
                Payloads::Vp9 {
                    frame: Box::new(frame),
                    compressed_hdr: Box::new(dev.default_payload(codec.optional_ctrl())?),
                }
            }
            Codec::H264 => {
                let mut decode_params: v4l2_ctrl_h264_decode_params =
                    dev.default_payload(codec.mandatory_ctrl())?;
                decode_params.flags |= V4L2_H264_DECODE_PARAM_FLAG_IDR_PIC;
                decode_params.nal_ref_idc = 3;
                Payloads::H264 {
                    decode_params: Box::new(decode_params),
                    pps: Box::new(dev.default_payload(codec.optional_ctrl())?),
                }
            }
            Codec::Av1 => {
                let mut frame: v4l2_ctrl_av1_frame = dev.default_payload(codec.mandatory_ctrl())?;
                frame.flags |= V4L2_AV1_FRAME_FLAG_SHOW_FRAME;
                frame.frame_type = V4L2_AV1_KEY_FRAME;
                frame.frame_width_minus_1 = minus_1(width);
                frame.frame_height_minus_1 = minus_1(height);
                frame.render_width_minus_1 = minus_1(width);
                frame.render_height_minus_1 = minus_1(height);
                frame.upscaled_width = width;
                Payloads::Av1 {
                    frame: Box::new(frame),
                    sequence: Box::new(dev.default_payload(codec.optional_ctrl())?),
                }
            }
        })
    }

    /// The codec of these payloads.
    pub fn codec(&self) -> Codec {
        match self {
            Payloads::Vp9 { .. } => Codec::Vp9,
            Payloads::H264 { .. } => Codec::H264,
            Payloads::Av1 { .. } => Codec::Av1,
        }
    }

    /// The mandatory control (`mandatory`) or the optional one, lent for
    /// `VIDIOC_S_EXT_CTRLS`.
    pub fn control(&mut self, mandatory: bool) -> CtrlPayload<'_> {
        let codec = self.codec();
        let id = if mandatory {
            codec.mandatory_ctrl()
        } else {
            codec.optional_ctrl()
        };
        match (self, mandatory) {
            (Payloads::Vp9 { frame, .. }, true) => CtrlPayload::new(id, &mut **frame),
            (Payloads::Vp9 { compressed_hdr, .. }, false) => {
                CtrlPayload::new(id, &mut **compressed_hdr)
            }
            (Payloads::H264 { decode_params, .. }, true) => {
                CtrlPayload::new(id, &mut **decode_params)
            }
            (Payloads::H264 { pps, .. }, false) => CtrlPayload::new(id, &mut **pps),
            (Payloads::Av1 { frame, .. }, true) => CtrlPayload::new(id, &mut **frame),
            (Payloads::Av1 { sequence, .. }, false) => CtrlPayload::new(id, &mut **sequence),
        }
    }

    /// A copy whose mandatory payload violates the uAPI (see [`Codec::invalid_desc`]):
    /// rejected by `validate_vp9_frame()`, the H264_DECODE_PARAMS case of
    /// `std_validate_compound()` and `validate_av1_frame()` respectively.
    pub fn invalid(&self) -> Self {
        let mut bad = self.clone();
        match &mut bad {
            // Profiles 0/1 need 8 bits, 2/3 need 10 or 12: 9 is never valid.
            Payloads::Vp9 { frame, .. } => frame.bit_depth = 9,
            // nal_ref_idc is a 2-bit syntax element.
            Payloads::H264 { decode_params, .. } => decode_params.nal_ref_idc = 4,
            // SUPERRES_DENOM_MIN (9) + 3 coded bits: at most 16.
            Payloads::Av1 { frame, .. } => frame.superres_denom = 17,
        }
        bad
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        assert_eq!("vp9".parse(), Ok(Codec::Vp9));
        assert_eq!("H264".parse(), Ok(Codec::H264));
        assert_eq!("h.264".parse(), Ok(Codec::H264));
        assert_eq!("AV1".parse(), Ok(Codec::Av1));
        assert_eq!("S264".parse(), Ok(Codec::H264));
        assert_eq!("hevc".parse::<Codec>(), Err(UnknownCodec("hevc".into())));
    }

    #[test]
    fn table() {
        for codec in Codec::ALL {
            assert_eq!(Codec::from_fourcc(codec.fourcc()), Some(codec));
            assert_ne!(codec.mandatory_ctrl(), codec.optional_ctrl());
        }
        assert_eq!(Codec::from_fourcc(V4L2_PIX_FMT_NV12), None);
        assert_eq!(Codec::Vp9.fourcc(), V4L2_PIX_FMT_VP9_FRAME);
        assert_eq!(Codec::H264.fourcc(), V4L2_PIX_FMT_H264_SLICE);
        assert_eq!(Codec::Av1.fourcc(), V4L2_PIX_FMT_AV1_FRAME);
    }

    #[test]
    fn invalid_payloads() {
        let vp9 = Payloads::Vp9 {
            frame: Box::new(v4l2_ctrl_vp9_frame {
                bit_depth: 8,
                ..Default::default()
            }),
            compressed_hdr: Box::default(),
        };
        let h264 = Payloads::H264 {
            decode_params: Box::default(),
            pps: Box::default(),
        };
        let av1 = Payloads::Av1 {
            frame: Box::default(),
            sequence: Box::default(),
        };
        // Each codec's payloads stay that codec's, with the value the uAPI refuses.
        for payloads in [vp9, h264, av1] {
            let invalid = payloads.invalid();
            assert_eq!(invalid.codec(), payloads.codec());
            match invalid {
                Payloads::Vp9 { frame, .. } => assert_eq!(frame.bit_depth, 9),
                Payloads::H264 { decode_params, .. } => assert_eq!(decode_params.nal_ref_idc, 4),
                Payloads::Av1 { frame, .. } => assert_eq!(frame.superres_denom, 17),
            }
        }
    }

    #[test]
    fn frame_dimensions() {
        assert_eq!(minus_1::<u16>(320), 319);
        assert_eq!(minus_1::<u16>(0), 0);
        assert_eq!(minus_1::<u16>(100_000), 0);
        assert_eq!(minus_1::<u32>(100_000), 99_999);
    }
}
