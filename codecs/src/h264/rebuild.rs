// SPDX-License-Identifier: GPL-2.0
//! V4L2 H.264 SPS / PPS / SCALING_MATRIX controls → SPS and PPS NAL units.
//!
//! A stateless OUTPUT buffer carries only slice NAL units; a software decoder needs the
//! parameter sets in the bitstream. The controls hold every SPS / PPS syntax element decoding
//! depends on, except:
//!
//! * frame cropping: not carried; the rebuilt SPS has none (the decoder outputs the full coded,
//!   macroblock-aligned picture and the client crops, as with any V4L2 decoder);
//! * VUI: not carried. The rebuilt SPS has a VUI with only `bitstream_restriction`:
//!   `max_num_reorder_frames = 0`, `max_dec_frame_buffering = max_num_ref_frames`. This tells
//!   the decoder no output reordering is needed, so it buffers no decoded pictures for output;
//!   it changes which pictures a decoder *outputs*, never the decoded samples;
//! * the scaling lists' origin: the control carries the lists that apply to the picture (after the
//!   fall-back rules), so when `V4L2_H264_PPS_FLAG_SCALING_MATRIX_PRESENT` is set the rebuilt PPS
//!   carries every list explicitly (`pic_scaling_list_present_flag = 1`, zig-zag order) and the
//!   rebuilt SPS none. When the flag is clear the lists are Flat_4x4/Flat_8x8 (H.264 7.4.2.1.1)
//!   and neither parameter set has a matrix.
//!
//! Every field is checked against the range H.264 (7.4.2.1.1, 7.4.2.2) allows before anything is
//! written; a control the bitstream syntax cannot express is an error, never a panic.

use thiserror::Error;

use super::controls::num_8x8_lists;
use super::{profile_has_chroma_format, ZIGZAG_4X4, ZIGZAG_8X8};
use crate::bits::BitWriter;
use crate::uapi;

/// Why a set of controls cannot be turned into parameter sets.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RebuildError {
    /// A field is outside the range the H.264 syntax allows.
    #[error("H.264 {control} control: {field} = {value} is outside {allowed}")]
    OutOfRange {
        /// "SPS", "PPS" or "SCALING_MATRIX".
        control: &'static str,
        /// The syntax element.
        field: &'static str,
        /// The value found.
        value: i64,
        /// The allowed range, as text.
        allowed: &'static str,
    },
    /// Flag bits the uAPI does not define.
    #[error("H.264 {control} control: unknown flag bits {bits:#x}")]
    UnknownFlags {
        /// "SPS" or "PPS".
        control: &'static str,
        /// The unknown bits.
        bits: u32,
    },
    /// A combination the bitstream syntax cannot express.
    #[error("H.264 {control} control: {reason}")]
    Inconsistent {
        /// "SPS", "PPS" or "SCALING_MATRIX".
        control: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

const SPS_KNOWN_FLAGS: u32 = uapi::V4L2_H264_SPS_FLAG_SEPARATE_COLOUR_PLANE
    | uapi::V4L2_H264_SPS_FLAG_QPPRIME_Y_ZERO_TRANSFORM_BYPASS
    | uapi::V4L2_H264_SPS_FLAG_DELTA_PIC_ORDER_ALWAYS_ZERO
    | uapi::V4L2_H264_SPS_FLAG_GAPS_IN_FRAME_NUM_VALUE_ALLOWED
    | uapi::V4L2_H264_SPS_FLAG_FRAME_MBS_ONLY
    | uapi::V4L2_H264_SPS_FLAG_MB_ADAPTIVE_FRAME_FIELD
    | uapi::V4L2_H264_SPS_FLAG_DIRECT_8X8_INFERENCE;

const PPS_KNOWN_FLAGS: u32 = uapi::V4L2_H264_PPS_FLAG_ENTROPY_CODING_MODE
    | uapi::V4L2_H264_PPS_FLAG_BOTTOM_FIELD_PIC_ORDER_IN_FRAME_PRESENT
    | uapi::V4L2_H264_PPS_FLAG_WEIGHTED_PRED
    | uapi::V4L2_H264_PPS_FLAG_DEBLOCKING_FILTER_CONTROL_PRESENT
    | uapi::V4L2_H264_PPS_FLAG_CONSTRAINED_INTRA_PRED
    | uapi::V4L2_H264_PPS_FLAG_REDUNDANT_PIC_CNT_PRESENT
    | uapi::V4L2_H264_PPS_FLAG_TRANSFORM_8X8_MODE
    | uapi::V4L2_H264_PPS_FLAG_SCALING_MATRIX_PRESENT;

/// nal_unit_type of an SPS / PPS (Table 7-1).
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;

/// The checks of one control: each failure names the control.
struct Checks(&'static str);

impl Checks {
    /// `value` must be within `min..=max` (`allowed` says so in the error).
    fn range(
        &self,
        field: &'static str,
        value: i64,
        (min, max): (i64, i64),
        allowed: &'static str,
    ) -> Result<(), RebuildError> {
        if (min..=max).contains(&value) {
            return Ok(());
        }
        Err(RebuildError::OutOfRange {
            control: self.0,
            field,
            value,
            allowed,
        })
    }

    /// Only the flag bits in `known` may be set.
    fn flags(&self, flags: u32, known: u32) -> Result<(), RebuildError> {
        match flags & !known {
            0 => Ok(()),
            bits => Err(RebuildError::UnknownFlags {
                control: self.0,
                bits,
            }),
        }
    }

    /// `ok` must hold; `reason` says what is wrong when it does not.
    fn require(&self, ok: bool, reason: &'static str) -> Result<(), RebuildError> {
        if ok {
            return Ok(());
        }
        Err(RebuildError::Inconsistent {
            control: self.0,
            reason,
        })
    }
}

/// `in_range!(checks, control; field: min..=max, ...)`: each field of the control within its
/// range of the syntax (the error names the field and the range as written here).
macro_rules! in_range {
    ($checks:expr, $ctrl:expr; $($field:ident: $min:literal..=$max:literal),+ $(,)?) => {
        $($checks.range(
            stringify!($field),
            $ctrl.$field.into(),
            ($min, $max),
            concat!(stringify!($min), "..=", stringify!($max)),
        )?;)+
    };
}

fn sps_flag(sps: &uapi::v4l2_ctrl_h264_sps, flag: u32) -> bool {
    sps.flags & flag != 0
}

fn pps_flag(pps: &uapi::v4l2_ctrl_h264_pps, flag: u32) -> bool {
    u32::from(pps.flags) & flag != 0
}

/// Checks an SPS control against the ranges of H.264 7.4.2.1.1.
pub fn validate_sps(sps: &uapi::v4l2_ctrl_h264_sps) -> Result<(), RebuildError> {
    let c = Checks("SPS");
    c.flags(sps.flags, SPS_KNOWN_FLAGS)?;
    in_range!(c, sps; constraint_set_flags: 0..=0x3f, seq_parameter_set_id: 0..=31);
    in_range!(c, sps; chroma_format_idc: 0..=3, bit_depth_luma_minus8: 0..=6, bit_depth_chroma_minus8: 0..=6);
    in_range!(c, sps; log2_max_frame_num_minus4: 0..=12, pic_order_cnt_type: 0..=2);
    in_range!(c, sps; log2_max_pic_order_cnt_lsb_minus4: 0..=12, max_num_ref_frames: 0..=16);
    in_range!(c, sps; num_ref_frames_in_pic_order_cnt_cycle: 0..=254);
    // se(v) fields: the syntax codes -(2^31-1)..=2^31-1, not i32::MIN.
    let se_range = (-i64::from(i32::MAX), i64::from(i32::MAX));
    let se = |field, value: i32| c.range(field, value.into(), se_range, "-(2^31-1)..=2^31-1");
    se("offset_for_non_ref_pic", sps.offset_for_non_ref_pic)?;
    se(
        "offset_for_top_to_bottom_field",
        sps.offset_for_top_to_bottom_field,
    )?;
    let cycle = usize::from(sps.num_ref_frames_in_pic_order_cnt_cycle);
    for &offset in sps.offset_for_ref_frame.iter().take(cycle) {
        se("offset_for_ref_frame", offset)?;
    }
    let transform_bypass = sps_flag(
        sps,
        uapi::V4L2_H264_SPS_FLAG_QPPRIME_Y_ZERO_TRANSFORM_BYPASS,
    );
    c.require(
        profile_has_chroma_format(sps.profile_idc)
            || (
                sps.chroma_format_idc,
                sps.bit_depth_luma_minus8,
                sps.bit_depth_chroma_minus8,
            ) == (1, 0, 0)
                && !transform_bypass,
        "profile_idc has no chroma_format_idc / bit depth syntax, so they must be 4:2:0 8-bit \
         without transform bypass",
    )?;
    let separate_planes = sps_flag(sps, uapi::V4L2_H264_SPS_FLAG_SEPARATE_COLOUR_PLANE);
    c.require(
        !separate_planes || sps.chroma_format_idc == 3,
        "separate_colour_plane_flag needs chroma_format_idc 3",
    )?;
    let mbaff = sps_flag(sps, uapi::V4L2_H264_SPS_FLAG_MB_ADAPTIVE_FRAME_FIELD);
    c.require(
        !mbaff || !sps_flag(sps, uapi::V4L2_H264_SPS_FLAG_FRAME_MBS_ONLY),
        "mb_adaptive_frame_field_flag needs frame_mbs_only_flag 0",
    )
}

/// Checks a PPS control (against the SPS it refers to) per H.264 7.4.2.2.
pub fn validate_pps(
    pps: &uapi::v4l2_ctrl_h264_pps,
    sps: &uapi::v4l2_ctrl_h264_sps,
) -> Result<(), RebuildError> {
    let c = Checks("PPS");
    c.flags(pps.flags.into(), PPS_KNOWN_FLAGS)?;
    c.require(
        pps.seq_parameter_set_id == sps.seq_parameter_set_id,
        "seq_parameter_set_id differs from the SPS control's",
    )?;
    c.range(
        "num_slice_groups_minus1",
        pps.num_slice_groups_minus1.into(),
        (0, 0),
        "0 (slice group maps are not carried by V4L2)",
    )?;
    in_range!(c, pps; num_ref_idx_l0_default_active_minus1: 0..=31, num_ref_idx_l1_default_active_minus1: 0..=31);
    in_range!(c, pps; weighted_bipred_idc: 0..=2);
    let qp_bd_offset = 6 * i64::from(sps.bit_depth_luma_minus8);
    c.range(
        "pic_init_qp_minus26",
        pps.pic_init_qp_minus26.into(),
        (-(26 + qp_bd_offset), 25),
        "-(26 + QpBdOffsetY)..=25",
    )?;
    in_range!(c, pps; pic_init_qs_minus26: -26..=25, chroma_qp_index_offset: -12..=12);
    in_range!(c, pps; second_chroma_qp_index_offset: -12..=12);
    c.require(
        !needs_pps_extension(pps) || pps_extension_allowed(sps),
        "transform_8x8_mode / scaling matrix / second_chroma_qp_index_offset need a High profile \
         SPS",
    )
}

/// Checks the lists of a SCALING_MATRIX control that a picture with these SPS/PPS uses: every
/// entry is 1..=255 (a scaling list entry of 0 cannot be coded).
pub fn validate_scaling_matrix(
    matrix: &uapi::v4l2_ctrl_h264_scaling_matrix,
    pps: &uapi::v4l2_ctrl_h264_pps,
    sps: &uapi::v4l2_ctrl_h264_sps,
) -> Result<(), RebuildError> {
    if !pps_flag(pps, uapi::V4L2_H264_PPS_FLAG_SCALING_MATRIX_PRESENT) {
        return Ok(());
    }
    let zero = RebuildError::OutOfRange {
        control: "SCALING_MATRIX",
        field: "scaling list entry",
        value: 0,
        allowed: "1..=255",
    };
    if matrix.scaling_list_4x4.iter().flatten().any(|&v| v == 0) {
        return Err(zero);
    }
    if pps_flag(pps, uapi::V4L2_H264_PPS_FLAG_TRANSFORM_8X8_MODE) {
        let used = num_8x8_lists(sps.chroma_format_idc);
        if matrix
            .scaling_list_8x8
            .iter()
            .take(used)
            .flatten()
            .any(|&v| v == 0)
        {
            return Err(zero);
        }
    }
    Ok(())
}

fn needs_pps_extension(pps: &uapi::v4l2_ctrl_h264_pps) -> bool {
    pps_flag(pps, uapi::V4L2_H264_PPS_FLAG_TRANSFORM_8X8_MODE)
        || pps_flag(pps, uapi::V4L2_H264_PPS_FLAG_SCALING_MATRIX_PRESENT)
        || pps.second_chroma_qp_index_offset != pps.chroma_qp_index_offset
}

/// Whether a decoder reads the PPS syntax after redundant_pic_cnt_present_flag for this SPS:
/// the High profiles carry it; FFmpeg (and the spec's Baseline/Main/Extended constraints)
/// ignore it for profiles 66/77/88 with constraint_set0..2 flags.
fn pps_extension_allowed(sps: &uapi::v4l2_ctrl_h264_sps) -> bool {
    profile_has_chroma_format(sps.profile_idc)
}

/// Appends a NAL unit (4-byte Annex-B start code, header byte, RBSP with emulation prevention).
fn push_nal(out: &mut Vec<u8>, nal_unit_type: u8, rbsp: &[u8]) {
    out.extend_from_slice(&[0, 0, 0, 1, 0x60 | nal_unit_type]);
    let mut zeros = 0;
    for &b in rbsp {
        if zeros == 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
}

fn trailing_bits(w: &mut BitWriter) {
    w.put_bool(true);
    w.align_zero();
}

/// Appends the SPS NAL unit the SPS control describes (see the module docs for what it adds).
pub fn write_sps(sps: &uapi::v4l2_ctrl_h264_sps, out: &mut Vec<u8>) -> Result<(), RebuildError> {
    validate_sps(sps)?;
    let mut w = BitWriter::new();
    w.put(8, sps.profile_idc.into());
    // constraint_set0_flag comes first in the bitstream but is bit 0 (0x01) of the control.
    for bit in 0..6 {
        w.put_bool(sps.constraint_set_flags & (1 << bit) != 0);
    }
    w.put(2, 0); // reserved_zero_2bits
    w.put(8, sps.level_idc.into());
    w.put_ue(sps.seq_parameter_set_id.into());
    if profile_has_chroma_format(sps.profile_idc) {
        w.put_ue(sps.chroma_format_idc.into());
        if sps.chroma_format_idc == 3 {
            w.put_bool(sps_flag(
                sps,
                uapi::V4L2_H264_SPS_FLAG_SEPARATE_COLOUR_PLANE,
            ));
        }
        w.put_ue(sps.bit_depth_luma_minus8.into());
        w.put_ue(sps.bit_depth_chroma_minus8.into());
        w.put_bool(sps_flag(
            sps,
            uapi::V4L2_H264_SPS_FLAG_QPPRIME_Y_ZERO_TRANSFORM_BYPASS,
        ));
        w.put_bool(false); // seq_scaling_matrix_present_flag: the PPS carries the matrix
    }
    w.put_ue(sps.log2_max_frame_num_minus4.into());
    w.put_ue(sps.pic_order_cnt_type.into());
    match sps.pic_order_cnt_type {
        0 => w.put_ue(sps.log2_max_pic_order_cnt_lsb_minus4.into()),
        1 => {
            w.put_bool(sps_flag(
                sps,
                uapi::V4L2_H264_SPS_FLAG_DELTA_PIC_ORDER_ALWAYS_ZERO,
            ));
            w.put_se(sps.offset_for_non_ref_pic);
            w.put_se(sps.offset_for_top_to_bottom_field);
            w.put_ue(sps.num_ref_frames_in_pic_order_cnt_cycle.into());
            let cycle = usize::from(sps.num_ref_frames_in_pic_order_cnt_cycle);
            for &offset in sps.offset_for_ref_frame.iter().take(cycle) {
                w.put_se(offset);
            }
        }
        _ => {}
    }
    w.put_ue(sps.max_num_ref_frames.into());
    w.put_bool(sps_flag(
        sps,
        uapi::V4L2_H264_SPS_FLAG_GAPS_IN_FRAME_NUM_VALUE_ALLOWED,
    ));
    w.put_ue(sps.pic_width_in_mbs_minus1.into());
    w.put_ue(sps.pic_height_in_map_units_minus1.into());
    let frame_mbs_only = sps_flag(sps, uapi::V4L2_H264_SPS_FLAG_FRAME_MBS_ONLY);
    w.put_bool(frame_mbs_only);
    if !frame_mbs_only {
        w.put_bool(sps_flag(
            sps,
            uapi::V4L2_H264_SPS_FLAG_MB_ADAPTIVE_FRAME_FIELD,
        ));
    }
    w.put_bool(sps_flag(sps, uapi::V4L2_H264_SPS_FLAG_DIRECT_8X8_INFERENCE));
    w.put_bool(false); // frame_cropping_flag: cropping is not carried by the control
    w.put_bool(true); // vui_parameters_present_flag
                      // vui_parameters() (E.1.1): nothing but bitstream_restriction.
    w.put_bool(false); // aspect_ratio_info_present_flag
    w.put_bool(false); // overscan_info_present_flag
    w.put_bool(false); // video_signal_type_present_flag
    w.put_bool(false); // chroma_loc_info_present_flag
    w.put_bool(false); // timing_info_present_flag
    w.put_bool(false); // nal_hrd_parameters_present_flag
    w.put_bool(false); // vcl_hrd_parameters_present_flag
    w.put_bool(false); // pic_struct_present_flag
    w.put_bool(true); // bitstream_restriction_flag
    w.put_bool(true); // motion_vectors_over_pic_boundaries_flag (the inferred default)
    w.put_ue(2); // max_bytes_per_pic_denom (the inferred default)
    w.put_ue(1); // max_bits_per_mb_denom (the inferred default)
    w.put_ue(16); // log2_max_mv_length_horizontal (the inferred default)
    w.put_ue(16); // log2_max_mv_length_vertical (the inferred default)
    w.put_ue(0); // max_num_reorder_frames: output in decoding order
    w.put_ue(sps.max_num_ref_frames.into()); // max_dec_frame_buffering
    trailing_bits(&mut w);
    push_nal(out, NAL_SPS, w.bytes());
    Ok(())
}

fn put_scaling_list(w: &mut BitWriter, raster: &[u8], scan: &[usize]) {
    let mut last = 8i32;
    for &pos in scan {
        let value = i32::from(raster[pos]);
        // delta_scale in -128..=127 such that (last + delta + 256) % 256 == value.
        let delta = (value - last + 128).rem_euclid(256) - 128;
        w.put_se(delta);
        last = value;
    }
}

/// Checks a picture's SPS, PPS and scaling matrix controls together.
pub fn validate(
    sps: &uapi::v4l2_ctrl_h264_sps,
    pps: &uapi::v4l2_ctrl_h264_pps,
    matrix: &uapi::v4l2_ctrl_h264_scaling_matrix,
) -> Result<(), RebuildError> {
    validate_sps(sps)?;
    validate_pps(pps, sps)?;
    validate_scaling_matrix(matrix, pps, sps)
}

/// Appends the PPS NAL unit the PPS control (with its SPS and scaling matrix) describes; the
/// controls have been validated.
fn put_pps(
    pps: &uapi::v4l2_ctrl_h264_pps,
    sps: &uapi::v4l2_ctrl_h264_sps,
    matrix: &uapi::v4l2_ctrl_h264_scaling_matrix,
    out: &mut Vec<u8>,
) {
    let mut w = BitWriter::new();
    w.put_ue(pps.pic_parameter_set_id.into());
    w.put_ue(pps.seq_parameter_set_id.into());
    w.put_bool(pps_flag(pps, uapi::V4L2_H264_PPS_FLAG_ENTROPY_CODING_MODE));
    w.put_bool(pps_flag(
        pps,
        uapi::V4L2_H264_PPS_FLAG_BOTTOM_FIELD_PIC_ORDER_IN_FRAME_PRESENT,
    ));
    w.put_ue(0); // num_slice_groups_minus1 (validated)
    w.put_ue(pps.num_ref_idx_l0_default_active_minus1.into());
    w.put_ue(pps.num_ref_idx_l1_default_active_minus1.into());
    w.put_bool(pps_flag(pps, uapi::V4L2_H264_PPS_FLAG_WEIGHTED_PRED));
    w.put(2, pps.weighted_bipred_idc.into());
    w.put_se(pps.pic_init_qp_minus26.into());
    w.put_se(pps.pic_init_qs_minus26.into());
    w.put_se(pps.chroma_qp_index_offset.into());
    w.put_bool(pps_flag(
        pps,
        uapi::V4L2_H264_PPS_FLAG_DEBLOCKING_FILTER_CONTROL_PRESENT,
    ));
    w.put_bool(pps_flag(
        pps,
        uapi::V4L2_H264_PPS_FLAG_CONSTRAINED_INTRA_PRED,
    ));
    w.put_bool(pps_flag(
        pps,
        uapi::V4L2_H264_PPS_FLAG_REDUNDANT_PIC_CNT_PRESENT,
    ));
    if needs_pps_extension(pps) {
        let transform_8x8 = pps_flag(pps, uapi::V4L2_H264_PPS_FLAG_TRANSFORM_8X8_MODE);
        let matrix_present = pps_flag(pps, uapi::V4L2_H264_PPS_FLAG_SCALING_MATRIX_PRESENT);
        w.put_bool(transform_8x8);
        w.put_bool(matrix_present);
        if matrix_present {
            // The six 4x4 lists, then the 8x8 lists the transform_8x8 mode uses.
            let lists_8x8 = if transform_8x8 {
                num_8x8_lists(sps.chroma_format_idc)
            } else {
                0
            };
            let lists = (matrix.scaling_list_4x4.iter())
                .map(|l| (&l[..], &ZIGZAG_4X4[..]))
                .chain(
                    (matrix.scaling_list_8x8.iter())
                        .take(lists_8x8)
                        .map(|l| (&l[..], &ZIGZAG_8X8[..])),
                );
            for (list, scan) in lists {
                w.put_bool(true); // pic_scaling_list_present_flag
                put_scaling_list(&mut w, list, scan);
            }
        }
        w.put_se(pps.second_chroma_qp_index_offset.into());
    }
    trailing_bits(&mut w);
    push_nal(out, NAL_PPS, w.bytes());
}

/// Appends the SPS then the PPS NAL units for a picture's controls (Annex-B, start codes
/// included). Validates everything before appending anything.
pub fn write_parameter_sets(
    sps: &uapi::v4l2_ctrl_h264_sps,
    pps: &uapi::v4l2_ctrl_h264_pps,
    matrix: &uapi::v4l2_ctrl_h264_scaling_matrix,
    out: &mut Vec<u8>,
) -> Result<(), RebuildError> {
    validate(sps, pps, matrix)?;
    write_sps(sps, out)?;
    put_pps(pps, sps, matrix, out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline_sps() -> uapi::v4l2_ctrl_h264_sps {
        uapi::v4l2_ctrl_h264_sps {
            profile_idc: 66,
            constraint_set_flags: 0,
            level_idc: 30,
            seq_parameter_set_id: 0,
            chroma_format_idc: 1,
            bit_depth_luma_minus8: 0,
            bit_depth_chroma_minus8: 0,
            log2_max_frame_num_minus4: 0,
            pic_order_cnt_type: 2,
            log2_max_pic_order_cnt_lsb_minus4: 0,
            max_num_ref_frames: 1,
            num_ref_frames_in_pic_order_cnt_cycle: 0,
            offset_for_ref_frame: [0; 255],
            offset_for_non_ref_pic: 0,
            offset_for_top_to_bottom_field: 0,
            pic_width_in_mbs_minus1: 10,
            pic_height_in_map_units_minus1: 8,
            flags: uapi::V4L2_H264_SPS_FLAG_FRAME_MBS_ONLY,
        }
    }

    #[test]
    fn emulation_prevention_is_inserted() {
        let mut out = Vec::new();
        push_nal(&mut out, NAL_SPS, &[0, 0, 0, 0, 0, 3, 1]);
        assert_eq!(out, [0, 0, 0, 1, 0x67, 0, 0, 3, 0, 0, 3, 0, 3, 1]);
    }

    #[test]
    fn out_of_range_fields_are_errors() {
        let mut sps = baseline_sps();
        sps.log2_max_frame_num_minus4 = 13;
        assert!(matches!(
            write_sps(&sps, &mut Vec::new()),
            Err(RebuildError::OutOfRange {
                field: "log2_max_frame_num_minus4",
                ..
            })
        ));
        let mut sps = baseline_sps();
        sps.pic_order_cnt_type = 1;
        sps.offset_for_non_ref_pic = i32::MIN;
        assert!(write_sps(&sps, &mut Vec::new()).is_err());
        let mut sps = baseline_sps();
        sps.chroma_format_idc = 2;
        assert!(matches!(
            write_sps(&sps, &mut Vec::new()),
            Err(RebuildError::Inconsistent { .. })
        ));
        let mut sps = baseline_sps();
        sps.flags |= 0x100;
        assert!(matches!(
            write_sps(&sps, &mut Vec::new()),
            Err(RebuildError::UnknownFlags { .. })
        ));
        let sps = baseline_sps();
        let pps = uapi::v4l2_ctrl_h264_pps {
            pic_parameter_set_id: 0,
            seq_parameter_set_id: 0,
            num_slice_groups_minus1: 0,
            num_ref_idx_l0_default_active_minus1: 0,
            num_ref_idx_l1_default_active_minus1: 0,
            weighted_bipred_idc: 3,
            pic_init_qp_minus26: 0,
            pic_init_qs_minus26: 0,
            chroma_qp_index_offset: 0,
            second_chroma_qp_index_offset: 0,
            flags: 0,
        };
        let m = uapi::v4l2_ctrl_h264_scaling_matrix {
            scaling_list_4x4: [[16; 16]; 6],
            scaling_list_8x8: [[16; 64]; 6],
        };
        assert!(write_parameter_sets(&sps, &pps, &m, &mut Vec::new()).is_err());
        // A Baseline SPS cannot carry a scaling matrix.
        let pps = uapi::v4l2_ctrl_h264_pps {
            weighted_bipred_idc: 0,
            flags: uapi::V4L2_H264_PPS_FLAG_SCALING_MATRIX_PRESENT as u16,
            ..pps
        };
        assert!(write_parameter_sets(&sps, &pps, &m, &mut Vec::new()).is_err());
        // A zero scaling list entry cannot be coded.
        let mut high = baseline_sps();
        high.profile_idc = 100;
        let mut zero = m;
        zero.scaling_list_4x4[2][5] = 0;
        assert!(write_parameter_sets(&high, &pps, &zero, &mut Vec::new()).is_err());
        assert!(write_parameter_sets(&high, &pps, &m, &mut Vec::new()).is_ok());
    }
}
