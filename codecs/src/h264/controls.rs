// SPDX-License-Identifier: GPL-2.0
//! Parsed H.264 parameter sets → V4L2 stateless controls (what a stateless client sends).
//!
//! Derived from cros-codecs `src/device/v4l2/stateless/controls/h264.rs` (BSD-3-Clause,
//! Copyright 2024 The ChromiumOS Authors), which is feature-gated behind its `v4l2` backend there.
//! Differences: the scaling matrix control carries the lists that apply to the picture after the
//! fall-back rules (SPS or PPS), and `V4L2_H264_PPS_FLAG_SCALING_MATRIX_PRESENT` is set whenever a
//! matrix from either parameter set applies, as the uAPI documents ("This flag should be set if a
//! non-flat scaling matrix applies to the picture").

use cros_codecs::codec::h264::parser::{Pps, SliceHeader, SliceType, Sps};

use super::{ZIGZAG_4X4, ZIGZAG_8X8};
use crate::uapi;

/// The SPS control for a parsed SPS. Fields V4L2 does not carry (frame cropping, VUI, the
/// scaling lists — those travel in the SCALING_MATRIX control) are left out.
pub fn sps_control(sps: &Sps) -> uapi::v4l2_ctrl_h264_sps {
    let constraint_bits = [
        (
            sps.constraint_set0_flag,
            uapi::V4L2_H264_SPS_CONSTRAINT_SET0_FLAG,
        ),
        (
            sps.constraint_set1_flag,
            uapi::V4L2_H264_SPS_CONSTRAINT_SET1_FLAG,
        ),
        (
            sps.constraint_set2_flag,
            uapi::V4L2_H264_SPS_CONSTRAINT_SET2_FLAG,
        ),
        (
            sps.constraint_set3_flag,
            uapi::V4L2_H264_SPS_CONSTRAINT_SET3_FLAG,
        ),
        (
            sps.constraint_set4_flag,
            uapi::V4L2_H264_SPS_CONSTRAINT_SET4_FLAG,
        ),
        (
            sps.constraint_set5_flag,
            uapi::V4L2_H264_SPS_CONSTRAINT_SET5_FLAG,
        ),
    ];
    let flag_bits = [
        (
            sps.separate_colour_plane_flag,
            uapi::V4L2_H264_SPS_FLAG_SEPARATE_COLOUR_PLANE,
        ),
        (
            sps.qpprime_y_zero_transform_bypass_flag,
            uapi::V4L2_H264_SPS_FLAG_QPPRIME_Y_ZERO_TRANSFORM_BYPASS,
        ),
        (
            sps.delta_pic_order_always_zero_flag,
            uapi::V4L2_H264_SPS_FLAG_DELTA_PIC_ORDER_ALWAYS_ZERO,
        ),
        (
            sps.gaps_in_frame_num_value_allowed_flag,
            uapi::V4L2_H264_SPS_FLAG_GAPS_IN_FRAME_NUM_VALUE_ALLOWED,
        ),
        (
            sps.frame_mbs_only_flag,
            uapi::V4L2_H264_SPS_FLAG_FRAME_MBS_ONLY,
        ),
        (
            sps.mb_adaptive_frame_field_flag,
            uapi::V4L2_H264_SPS_FLAG_MB_ADAPTIVE_FRAME_FIELD,
        ),
        (
            sps.direct_8x8_inference_flag,
            uapi::V4L2_H264_SPS_FLAG_DIRECT_8X8_INFERENCE,
        ),
    ];
    let fold = |bits: &[(bool, u32)]| {
        bits.iter()
            .filter(|(set, _)| *set)
            .fold(0, |acc, (_, b)| acc | b)
    };
    uapi::v4l2_ctrl_h264_sps {
        profile_idc: sps.profile_idc,
        // The six constraint flags fit in the low 6 bits.
        constraint_set_flags: (fold(&constraint_bits) & 0x3f) as u8,
        level_idc: sps.level_idc as u8,
        seq_parameter_set_id: sps.seq_parameter_set_id,
        chroma_format_idc: sps.chroma_format_idc,
        bit_depth_luma_minus8: sps.bit_depth_luma_minus8,
        bit_depth_chroma_minus8: sps.bit_depth_chroma_minus8,
        log2_max_frame_num_minus4: sps.log2_max_frame_num_minus4,
        pic_order_cnt_type: sps.pic_order_cnt_type,
        log2_max_pic_order_cnt_lsb_minus4: sps.log2_max_pic_order_cnt_lsb_minus4,
        max_num_ref_frames: sps.max_num_ref_frames,
        num_ref_frames_in_pic_order_cnt_cycle: sps.num_ref_frames_in_pic_order_cnt_cycle,
        offset_for_ref_frame: sps.offset_for_ref_frame,
        offset_for_non_ref_pic: sps.offset_for_non_ref_pic,
        offset_for_top_to_bottom_field: sps.offset_for_top_to_bottom_field,
        pic_width_in_mbs_minus1: sps.pic_width_in_mbs_minus1,
        pic_height_in_map_units_minus1: sps.pic_height_in_map_units_minus1,
        flags: fold(&flag_bits),
    }
}

/// Whether a non-flat scaling matrix applies to pictures using `pps` (from the PPS itself or
/// inherited from its SPS).
pub fn scaling_matrix_applies(pps: &Pps) -> bool {
    pps.pic_scaling_matrix_present_flag || pps.sps.seq_scaling_matrix_present_flag
}

/// The PPS control for a parsed PPS (its SPS is the one the parser linked it to).
pub fn pps_control(pps: &Pps) -> uapi::v4l2_ctrl_h264_pps {
    let flag_bits = [
        (
            pps.entropy_coding_mode_flag,
            uapi::V4L2_H264_PPS_FLAG_ENTROPY_CODING_MODE,
        ),
        (
            pps.bottom_field_pic_order_in_frame_present_flag,
            uapi::V4L2_H264_PPS_FLAG_BOTTOM_FIELD_PIC_ORDER_IN_FRAME_PRESENT,
        ),
        (
            pps.weighted_pred_flag,
            uapi::V4L2_H264_PPS_FLAG_WEIGHTED_PRED,
        ),
        (
            pps.deblocking_filter_control_present_flag,
            uapi::V4L2_H264_PPS_FLAG_DEBLOCKING_FILTER_CONTROL_PRESENT,
        ),
        (
            pps.constrained_intra_pred_flag,
            uapi::V4L2_H264_PPS_FLAG_CONSTRAINED_INTRA_PRED,
        ),
        (
            pps.redundant_pic_cnt_present_flag,
            uapi::V4L2_H264_PPS_FLAG_REDUNDANT_PIC_CNT_PRESENT,
        ),
        (
            pps.transform_8x8_mode_flag,
            uapi::V4L2_H264_PPS_FLAG_TRANSFORM_8X8_MODE,
        ),
        (
            scaling_matrix_applies(pps),
            uapi::V4L2_H264_PPS_FLAG_SCALING_MATRIX_PRESENT,
        ),
    ];
    let flags = flag_bits
        .iter()
        .filter(|(set, _)| *set)
        .fold(0, |acc, (_, b)| acc | b);
    uapi::v4l2_ctrl_h264_pps {
        pic_parameter_set_id: pps.pic_parameter_set_id,
        seq_parameter_set_id: pps.seq_parameter_set_id,
        // The parser refuses slice groups (FMO), so this is 0; saturate rather than wrap anyway.
        num_slice_groups_minus1: u8::try_from(pps.num_slice_groups_minus1).unwrap_or(u8::MAX),
        num_ref_idx_l0_default_active_minus1: pps.num_ref_idx_l0_default_active_minus1,
        num_ref_idx_l1_default_active_minus1: pps.num_ref_idx_l1_default_active_minus1,
        weighted_bipred_idc: pps.weighted_bipred_idc,
        pic_init_qp_minus26: pps.pic_init_qp_minus26,
        pic_init_qs_minus26: pps.pic_init_qs_minus26,
        chroma_qp_index_offset: pps.chroma_qp_index_offset,
        second_chroma_qp_index_offset: pps.second_chroma_qp_index_offset,
        // All PPS flags fit in 8 bits.
        flags: (flags & 0xffff) as u16,
    }
}

/// Number of 8x8 scaling lists the bitstream carries (H.264 7.3.2.1.1 / 7.3.2.2): 2 (Y intra,
/// Y inter) unless 4:4:4, then 6.
pub fn num_8x8_lists(chroma_format_idc: u8) -> usize {
    if chroma_format_idc == 3 {
        6
    } else {
        2
    }
}

/// The SCALING_MATRIX control for pictures using `pps`: the lists that apply after the
/// fall-back rules of Table 7-2 (PPS lists, else the SPS lists, else Flat_4x4/Flat_8x8), in
/// raster order (inverse zig-zag scan), in the list order of the uAPI (4x4: Intra Y/Cb/Cr, Inter
/// Y/Cb/Cr; 8x8: Intra Y, Inter Y, Intra Cb, Inter Cb, Intra Cr, Inter Cr).
///
/// 8x8 lists the picture cannot use (transform_8x8_mode_flag off, or indices 2..5 outside 4:4:4)
/// are set to Flat_8x8 (16), so the control is a function of what decoding depends on.
pub fn scaling_matrix_control(pps: &Pps) -> uapi::v4l2_ctrl_h264_scaling_matrix {
    let mut m = uapi::v4l2_ctrl_h264_scaling_matrix {
        scaling_list_4x4: [[16; 16]; 6],
        scaling_list_8x8: [[16; 64]; 6],
    };
    if !scaling_matrix_applies(pps) {
        return m;
    }
    for (raster, zigzag) in m
        .scaling_list_4x4
        .iter_mut()
        .zip(pps.scaling_lists_4x4.iter())
    {
        for (k, &v) in zigzag.iter().enumerate() {
            raster[ZIGZAG_4X4[k]] = v;
        }
    }
    if pps.transform_8x8_mode_flag {
        let used = num_8x8_lists(pps.sps.chroma_format_idc);
        for (raster, zigzag) in m
            .scaling_list_8x8
            .iter_mut()
            .zip(pps.scaling_lists_8x8.iter())
            .take(used)
        {
            for (k, &v) in zigzag.iter().enumerate() {
                raster[ZIGZAG_8X8[k]] = v;
            }
        }
    }
    m
}

/// `V4L2_CID_STATELESS_H264_DECODE_PARAMS` of a frame, `dpb[]` left empty (see [`dpb_entry`]):
/// from its first slice's header, that slice's `nal_ref_idc` and IDR-ness, the frame's
/// `TopFieldOrderCnt` / `BottomFieldOrderCnt` (8.2.1) and the types of all its slices.
pub fn decode_params_control(
    first: &SliceHeader,
    nal_ref_idc: u8,
    idr: bool,
    (top_poc, bottom_poc): (i32, i32),
    slice_types: impl IntoIterator<Item = SliceType>,
) -> uapi::v4l2_ctrl_h264_decode_params {
    let mut p = uapi::v4l2_ctrl_h264_decode_params {
        nal_ref_idc: u16::from(nal_ref_idc),
        frame_num: first.frame_num,
        top_field_order_cnt: top_poc,
        bottom_field_order_cnt: bottom_poc,
        idr_pic_id: first.idr_pic_id,
        pic_order_cnt_lsb: first.pic_order_cnt_lsb,
        delta_pic_order_cnt_bottom: first.delta_pic_order_cnt_bottom,
        delta_pic_order_cnt0: first.delta_pic_order_cnt[0],
        delta_pic_order_cnt1: first.delta_pic_order_cnt[1],
        dec_ref_pic_marking_bit_size: first.dec_ref_pic_marking_bit_size as u32,
        pic_order_cnt_bit_size: first.pic_order_cnt_bit_size as u32,
        // FMO (slice groups) is refused by the parsers: always 0.
        slice_group_change_cycle: 0,
        ..Default::default()
    };
    if idr {
        p.flags |= uapi::V4L2_H264_DECODE_PARAM_FLAG_IDR_PIC;
    }
    for t in slice_types {
        if t.is_p() || t.is_sp() {
            p.flags |= uapi::V4L2_H264_DECODE_PARAM_FLAG_PFRAME;
        }
        if t.is_b() {
            p.flags |= uapi::V4L2_H264_DECODE_PARAM_FLAG_BFRAME;
        }
    }
    p
}

/// The `dpb[]` entry of a reference frame (frame decoding: both fields), named by the
/// timestamp of the request that decoded it: `frame_num` is its `FrameNum` or
/// `LongTermFrameIdx`, `pic_num` its `FrameNumWrap` or `LongTermPicNum` (8.2.4.1).
pub fn dpb_entry(
    reference_ts: u64,
    frame_num: u16,
    pic_num: u32,
    (top_poc, bottom_poc): (i32, i32),
    long_term: bool,
) -> uapi::v4l2_h264_dpb_entry {
    uapi::v4l2_h264_dpb_entry {
        reference_ts,
        pic_num,
        frame_num,
        fields: uapi::V4L2_H264_FRAME_REF as u8,
        top_field_order_cnt: top_poc,
        bottom_field_order_cnt: bottom_poc,
        flags: uapi::V4L2_H264_DPB_ENTRY_FLAG_VALID
            | uapi::V4L2_H264_DPB_ENTRY_FLAG_ACTIVE
            | if long_term {
                uapi::V4L2_H264_DPB_ENTRY_FLAG_LONG_TERM
            } else {
                0
            },
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cros_codecs::codec::h264::parser::{Nalu, Parser};
    use std::io::Cursor;

    /// A High-profile SPS (x264, 64x64, 8x8 transform) and PPS with no scaling matrix, from
    /// cros-codecs' `64x64-I-P-B-P-high.h264` test stream.
    const HIGH_SPS_PPS: &[u8] = &[
        0x00, 0x00, 0x00, 0x01, 0x67, 0x64, 0x00, 0x14, 0xac, 0xe4, 0x10, 0x9b, 0x01, 0x6a, 0x0c,
        0x0c, 0x0d, 0x4a, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x79, 0x1e, 0x28,
        0x52, 0x24, 0x00, 0x00, 0x00, 0x01, 0x68, 0xeb, 0xec, 0xb2, 0x2c,
    ];

    fn parse(bytes: &[u8]) -> (Parser, Vec<u8>) {
        let mut parser = Parser::default();
        let mut cursor = Cursor::new(bytes);
        let mut pps_ids = Vec::new();
        while let Ok(nalu) = Nalu::next(&mut cursor) {
            match nalu.header.type_ {
                cros_codecs::codec::h264::parser::NaluType::Sps => {
                    parser.parse_sps(&nalu).expect("sps");
                }
                cros_codecs::codec::h264::parser::NaluType::Pps => {
                    pps_ids.push(parser.parse_pps(&nalu).expect("pps").pic_parameter_set_id);
                }
                _ => {}
            }
        }
        (parser, pps_ids)
    }

    #[test]
    fn high_profile_sps_maps_every_field() {
        let (parser, pps_ids) = parse(HIGH_SPS_PPS);
        let sps = parser.get_sps(0).expect("sps 0");
        let c = sps_control(sps);
        assert_eq!(c.profile_idc, 100);
        assert_eq!(c.level_idc, 20);
        assert_eq!(c.chroma_format_idc, 1);
        assert_eq!(c.pic_width_in_mbs_minus1, 3);
        assert_eq!(c.pic_height_in_map_units_minus1, 3);
        assert_ne!(c.flags & uapi::V4L2_H264_SPS_FLAG_FRAME_MBS_ONLY, 0);
        assert_ne!(c.flags & uapi::V4L2_H264_SPS_FLAG_DIRECT_8X8_INFERENCE, 0);
        assert_eq!(c.max_num_ref_frames, sps.max_num_ref_frames);
        assert_eq!(pps_ids, [0]);
        let pps = parser.get_pps(0).expect("pps 0");
        let p = pps_control(pps);
        assert_eq!(
            p.flags & uapi::V4L2_H264_PPS_FLAG_ENTROPY_CODING_MODE as u16,
            1
        );
        assert_ne!(
            p.flags & uapi::V4L2_H264_PPS_FLAG_TRANSFORM_8X8_MODE as u16,
            0
        );
        assert_eq!(
            p.flags & uapi::V4L2_H264_PPS_FLAG_SCALING_MATRIX_PRESENT as u16,
            0
        );
        // No matrix applies: the control holds Flat_4x4 / Flat_8x8.
        let m = scaling_matrix_control(pps);
        assert!(m.scaling_list_4x4.iter().flatten().all(|&v| v == 16));
        assert!(m.scaling_list_8x8.iter().flatten().all(|&v| v == 16));
    }

    #[test]
    fn scaling_lists_go_to_raster_order() {
        // A synthetic PPS-like check of the scan: zig-zag position 2 is raster index 4 (row 1,
        // column 0) in 4x4 and position 2 is raster 8 in 8x8.
        assert_eq!(ZIGZAG_4X4[2], 4);
        assert_eq!(ZIGZAG_8X8[2], 8);
    }
}
