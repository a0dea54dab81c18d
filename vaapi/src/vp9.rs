// SPDX-License-Identifier: GPL-2.0
//! VP9: VA parameter buffers to `V4L2_CID_STATELESS_VP9_FRAME` and
//! `V4L2_CID_STATELESS_VP9_COMPRESSED_HDR`.
//!
//! VA's picture parameters carry what a hardware decoder with its own header parser needs,
//! which is not what the V4L2 controls carry: VA gives per-segment dequantizers and loop filter
//! levels where the controls want `base_q_idx`, the delta-q values and the loop filter deltas,
//! and VA has no compressed header at all (the probability updates). The slice data is the
//! whole frame, headers included, so the driver parses the frame's headers with the same
//! parser as the `daedalus decode` client (`daedalus_client::vp9`), keeping its state across
//! frames as the client does, and builds the controls the same way. The VA parameters are
//! checked against the parse (frame size, header sizes, profile, bit depth, reference slots):
//! a disagreement means the client and the driver read different streams, and the picture is
//! refused rather than decoded wrong.
//!
//! References: VA names the eight reference slots by surface (`reference_frames`) and the
//! frame's three references by slot (`last_ref_frame`...); the controls name them by the
//! timestamp of the request that decoded the surface, which the caller looks up.

use daedalus_client::sys::*;
use daedalus_client::vp9::v4l2::{
    frame_control, validate_compressed_hdr, validate_frame, RefTimestamps,
};
use daedalus_client::vp9::{parse_frame, HeaderParser, ParsedFrame};
use daedalus_proto::formats::BitDepth;

use crate::context::Picture;
use crate::mapped::{Control, Mapped};
use crate::status::{Error, Result};
use crate::va;

/// The controls of one VP9 frame and where its bitstream is.
pub struct Frame {
    /// `V4L2_CID_STATELESS_VP9_FRAME`.
    pub frame: v4l2_ctrl_vp9_frame,
    /// `V4L2_CID_STATELESS_VP9_COMPRESSED_HDR`.
    pub compressed: Box<v4l2_ctrl_vp9_compressed_hdr>,
    /// The frame's bytes within the slice data.
    pub data: std::ops::Range<usize>,
    /// Coded size.
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// Bit depth.
    pub depth: BitDepth,
    /// Whether it is a key frame.
    pub key_frame: bool,
}

/// The VP9 state of a decode context: the header parser's memory of earlier frames.
#[derive(Default)]
pub struct Vp9 {
    parser: HeaderParser,
}

/// Why a frame is refused, for the log.
fn refuse(what: String) -> Error {
    log::warn!("VP9: {what}");
    Error::DECODING_ERROR
}

impl Vp9 {
    /// A context's state before its first frame.
    pub fn new() -> Vp9 {
        Vp9 {
            parser: HeaderParser::new(),
        }
    }

    /// The request of the VA picture `picture` (see [`Vp9::frame`]).
    pub fn map(
        &mut self,
        picture: &Picture,
        reference: impl Fn(va::VASurfaceID) -> Option<u64>,
    ) -> Result<Mapped> {
        let pic: va::VADecPictureParameterBufferVP9 =
            picture.param(va::VAPictureParameterBufferType)?;
        let slice: va::VASliceParameterBufferVP9 = picture.param(va::VASliceParameterBufferType)?;
        let data = picture
            .of_type(va::VASliceDataBufferType)
            .next()
            .ok_or(Error::INVALID_PARAMETER)?;
        let f = self.frame(&pic, &slice, &data.bytes, reference)?;
        Ok(Mapped {
            width: f.width,
            height: f.height,
            depth: f.depth,
            data: vec![data.bytes[f.data.clone()].to_vec()],
            controls: vec![
                Control::new(V4L2_CID_STATELESS_VP9_FRAME, f.frame).stream(),
                Control::new(V4L2_CID_STATELESS_VP9_COMPRESSED_HDR, *f.compressed),
            ],
            menus: Vec::new(),
            starts_stream: f.key_frame,
        })
    }

    /// The controls of the frame VA describes with `pic` and `slice`, whose bytes are in
    /// `slice_data`; `reference` gives the timestamp (ns) of the picture decoded into a
    /// surface (`None`: the surface holds no picture of this context).
    pub fn frame(
        &mut self,
        pic: &va::VADecPictureParameterBufferVP9,
        slice: &va::VASliceParameterBufferVP9,
        slice_data: &[u8],
        reference: impl Fn(va::VASurfaceID) -> Option<u64>,
    ) -> Result<Frame> {
        let start = slice.slice_data_offset as usize;
        let data = start..start.saturating_add(slice.slice_data_size as usize);
        let bytes = slice_data.get(data.clone()).ok_or_else(|| {
            refuse(format!(
                "slice data {}..{} outside the {}-byte buffer",
                data.start,
                data.end,
                slice_data.len()
            ))
        })?;
        if slice.slice_data_flag != va::VA_SLICE_DATA_FLAG_ALL {
            return Err(refuse("partial slice data".into()));
        }
        let mut compressed = Box::<v4l2_ctrl_vp9_compressed_hdr>::default();
        let ParsedFrame {
            header: h,
            compressed: info,
        } = parse_frame(&mut self.parser, bytes, &mut compressed)
            .map_err(|e| refuse(format!("frame header: {e}")))?;
        if h.show_existing_frame {
            return Err(refuse("show_existing_frame has nothing to decode".into()));
        }
        // SAFETY: reading the bit fields of the union (plain integers either way).
        let f = unsafe { pic.pic_fields.bits };
        let checks = [
            ("frame_width", u32::from(pic.frame_width), h.width),
            ("frame_height", u32::from(pic.frame_height), h.height),
            ("profile", u32::from(pic.profile), u32::from(h.profile)),
            (
                "bit_depth",
                u32::from(pic.bit_depth),
                u32::from(h.bit_depth),
            ),
            (
                "frame_header_length_in_bytes",
                u32::from(pic.frame_header_length_in_bytes),
                u32::from(h.uncompressed_header_size),
            ),
            (
                "first_partition_size",
                u32::from(pic.first_partition_size),
                u32::from(h.compressed_header_size),
            ),
            ("frame_type", f.frame_type(), u32::from(!h.key_frame)),
            ("show_frame", f.show_frame(), u32::from(h.show_frame)),
            ("intra_only", f.intra_only(), u32::from(h.intra_only)),
        ];
        for (name, va_value, parsed) in checks {
            if va_value != parsed {
                return Err(refuse(format!(
                    "the VA parameters say {name} {va_value}, the frame header {parsed}"
                )));
            }
        }
        let depth = BitDepth::from_bits(u32::from(h.bit_depth))
            .ok_or_else(|| refuse(format!("{}-bit frames are not decoded", h.bit_depth)))?;
        let refs = if h.is_intra() {
            RefTimestamps::default()
        } else {
            let slots = [f.last_ref_frame(), f.golden_ref_frame(), f.alt_ref_frame()];
            let mut ts = [0u64; 3];
            for (i, (&slot, &parsed)) in slots.iter().zip(&h.ref_frame_idx).enumerate() {
                if slot != u32::from(parsed) {
                    return Err(refuse(format!(
                        "reference {i} is slot {slot} in the VA parameters, {parsed} in the \
                         frame header"
                    )));
                }
                let surface = pic.reference_frames[slot as usize % 8];
                ts[i] = reference(surface).ok_or_else(|| {
                    refuse(format!(
                        "reference slot {slot} names surface {surface:#x}, which holds no \
                         picture of this context"
                    ))
                })?;
            }
            RefTimestamps {
                last: ts[0],
                golden: ts[1],
                alt: ts[2],
            }
        };
        let frame = frame_control(&h, &info, refs);
        validate_frame(&frame)
            .and(validate_compressed_hdr(&compressed))
            .map_err(|e| refuse(e.to_string()))?;
        Ok(Frame {
            frame,
            compressed,
            data,
            width: h.width,
            height: h.height,
            depth,
            key_frame: h.key_frame,
        })
    }
}
