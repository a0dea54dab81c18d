// SPDX-License-Identifier: GPL-2.0
//! Parsed H.264 headers and the client's DPB → the per-picture and per-slice V4L2 controls:
//! `V4L2_CID_STATELESS_H264_DECODE_PARAMS`, `_SLICE_PARAMS` and `_PRED_WEIGHTS` (the SPS,
//! PPS and scaling matrix controls come from `daedalus_codecs::h264::controls`).
//!
//! The decode parameters follow cros-codecs' `src/device/v4l2/stateless/controls/h264.rs`
//! (BSD-3-Clause, Copyright 2024 The ChromiumOS Authors) and GStreamer's `v4l2slh264dec`:
//! only reference frames are listed in `dpb[]`, named by the timestamp of their CAPTURE buffer.

use cros_codecs::codec::h264::parser::{MaxLongTermFrameIdx, Pps, SliceHeader, SliceType, Sps};

use super::dpb::{Current, Dpb, ListEntry, Marking, Mmco, PicParams, SeqParams};
use super::stream::{Picture, SliceUnit};
use crate::sys::*;
use daedalus_codecs::h264::controls::{decode_params_control, dpb_entry};

/// The DPB parameters of an SPS.
pub fn seq_params(sps: &Sps) -> SeqParams {
    let n = usize::from(sps.num_ref_frames_in_pic_order_cnt_cycle);
    let vui = &sps.vui_parameters;
    SeqParams {
        poc_type: sps.pic_order_cnt_type,
        max_poc_lsb: 1 << (u32::from(sps.log2_max_pic_order_cnt_lsb_minus4) + 4),
        max_frame_num: sps.max_frame_num(),
        offset_for_non_ref_pic: sps.offset_for_non_ref_pic,
        offset_for_top_to_bottom_field: sps.offset_for_top_to_bottom_field,
        offset_for_ref_frame: sps.offset_for_ref_frame[..n.min(255)].to_vec(),
        max_num_ref_frames: usize::from(sps.max_num_ref_frames),
        dpb_frames: sps.max_dpb_frames().clamp(1, 16),
        max_reorder: (sps.vui_parameters_present_flag && vui.bitstream_restriction_flag)
            .then_some(vui.max_num_reorder_frames as usize),
    }
}

/// The DPB parameters of a picture (from its first slice), tagged `id`.
pub fn pic_params(slice: &SliceUnit, id: u64) -> PicParams {
    let h = &slice.header;
    let m = &h.dec_ref_pic_marking;
    let mmcos = (slice.nal_ref_idc != 0 && !slice.idr && m.adaptive_ref_pic_marking_mode_flag)
        .then(|| {
            m.inner
                .iter()
                .filter_map(|op| {
                    Some(match op.memory_management_control_operation {
                        1 => Mmco::ShortTermUnused {
                            difference_of_pic_nums_minus1: op.difference_of_pic_nums_minus1,
                        },
                        2 => Mmco::LongTermUnused {
                            long_term_pic_num: op.long_term_pic_num,
                        },
                        3 => Mmco::ShortToLong {
                            difference_of_pic_nums_minus1: op.difference_of_pic_nums_minus1,
                            long_term_frame_idx: op.long_term_frame_idx,
                        },
                        4 => Mmco::MaxLongTermFrameIdx(match op.max_long_term_frame_idx {
                            MaxLongTermFrameIdx::NoLongTermFrameIndices => None,
                            MaxLongTermFrameIdx::Idx(i) => Some(i),
                        }),
                        5 => Mmco::AllUnused,
                        6 => Mmco::CurrentToLong {
                            long_term_frame_idx: op.long_term_frame_idx,
                        },
                        _ => return None,
                    })
                })
                .collect()
        });
    PicParams {
        id,
        idr: slice.idr,
        nal_ref_idc: slice.nal_ref_idc,
        frame_num: u32::from(h.frame_num),
        pic_order_cnt_lsb: i32::from(h.pic_order_cnt_lsb),
        delta_pic_order_cnt_bottom: h.delta_pic_order_cnt_bottom,
        delta_pic_order_cnt: h.delta_pic_order_cnt,
        long_term_reference_flag: m.long_term_reference_flag,
        mmcos,
    }
}

/// CAPTURE buffer timestamp in ns of the picture tagged `id` (OUTPUT timestamp in µs).
pub fn reference_ts(id: u64) -> u64 {
    id.saturating_mul(1000)
}

/// `V4L2_CID_STATELESS_H264_DECODE_PARAMS` of `pic` (current picture `cur`) with the
/// references of `dpb`; also returns the tags of the `dpb[]` entries in order.
pub fn decode_params(
    pic: &Picture,
    cur: &Current,
    dpb: &Dpb,
) -> (v4l2_ctrl_h264_decode_params, Vec<u64>) {
    let first = pic.first();
    let mut p = decode_params_control(
        &first.header,
        first.nal_ref_idc,
        first.idr,
        (cur.top_poc, cur.bottom_poc),
        pic.slices.iter().map(|s| s.header.slice_type),
    );
    let mut ids = Vec::with_capacity(16);
    for (entry, f) in p
        .dpb
        .iter_mut()
        .zip(dpb.references().filter(|f| f.id.is_some()))
    {
        let Some(id) = f.id else { continue };
        let (frame_num, pic_num, long) = match f.marking {
            Marking::LongTerm(idx) => (idx as u16, idx, true),
            _ => (f.frame_num as u16, f.frame_num_wrap as u32, false),
        };
        *entry = dpb_entry(
            reference_ts(id),
            frame_num,
            pic_num,
            (f.top_poc, f.bottom_poc),
            long,
        );
        ids.push(id);
    }
    (p, ids)
}

fn slice_type_value(t: SliceType) -> u8 {
    t as u8
}

/// `V4L2_CID_STATELESS_H264_SLICE_PARAMS` of one slice: header fields and the reference
/// lists (initial lists of 8.2.4.2 with the slice's modifications), as indices into the
/// `dpb[]` whose tags are `dpb_ids`. Entries naming no picture with a buffer get index 0xff.
pub fn slice_params(
    slice: &SliceUnit,
    cur: &Current,
    dpb: &Dpb,
    dpb_ids: &[u64],
) -> v4l2_ctrl_h264_slice_params {
    let h = &slice.header;
    let t = h.slice_type;
    let mut p = v4l2_ctrl_h264_slice_params {
        header_bit_size: h.header_bit_size as u32,
        first_mb_in_slice: h.first_mb_in_slice,
        slice_type: slice_type_value(t),
        colour_plane_id: h.colour_plane_id,
        redundant_pic_cnt: h.redundant_pic_cnt,
        cabac_init_idc: h.cabac_init_idc,
        slice_qp_delta: h.slice_qp_delta,
        slice_qs_delta: h.slice_qs_delta,
        disable_deblocking_filter_idc: h.disable_deblocking_filter_idc,
        slice_alpha_c0_offset_div2: h.slice_alpha_c0_offset_div2,
        slice_beta_offset_div2: h.slice_beta_offset_div2,
        ..Default::default()
    };
    if h.direct_spatial_mv_pred_flag {
        p.flags |= V4L2_H264_SLICE_FLAG_DIRECT_SPATIAL_MV_PRED;
    }
    if h.sp_for_switch_flag {
        p.flags |= V4L2_H264_SLICE_FLAG_SP_FOR_SWITCH;
    }
    if t.is_i() || t.is_si() {
        return p;
    }
    let b = t.is_b();
    let (l0, l1) = dpb.initial_lists(cur, b);
    let index_of = |e: &Option<ListEntry>| -> u8 {
        e.and_then(|e| e.id)
            .and_then(|id| dpb_ids.iter().position(|&d| d == id))
            .map_or(0xff, |i| i as u8)
    };
    let mods = |m: &[cros_codecs::codec::h264::parser::RefPicListModification]| -> Vec<(u8, u32)> {
        m.iter()
            .take_while(|m| m.modification_of_pic_nums_idc != 3)
            .map(|m| {
                let v = if m.modification_of_pic_nums_idc == 2 {
                    m.long_term_pic_num
                } else {
                    m.abs_diff_pic_num_minus1
                };
                (m.modification_of_pic_nums_idc, v)
            })
            .collect()
    };
    // RefPicList0 / RefPicList1: the initial list with the slice's modifications (8.2.4.3),
    // `num_ref_idx_active` entries, as indices into DECODE_PARAMS' dpb[].
    let fill = |dst: &mut [v4l2_h264_reference; 32], initial, active_minus1: u8, modified, list| {
        let m = if modified { mods(list) } else { Vec::new() };
        let n = (usize::from(active_minus1) + 1).min(32);
        for (dst, e) in dst
            .iter_mut()
            .zip(dpb.modify_list(cur, initial, n, &m).iter())
        {
            *dst = v4l2_h264_reference {
                fields: V4L2_H264_FRAME_REF as u8,
                index: index_of(e),
            };
        }
    };
    p.num_ref_idx_l0_active_minus1 = h.num_ref_idx_l0_active_minus1;
    fill(
        &mut p.ref_pic_list0,
        &l0,
        h.num_ref_idx_l0_active_minus1,
        h.ref_pic_list_modification_flag_l0,
        &h.ref_pic_list_modification_l0,
    );
    if b {
        p.num_ref_idx_l1_active_minus1 = h.num_ref_idx_l1_active_minus1;
        fill(
            &mut p.ref_pic_list1,
            &l1,
            h.num_ref_idx_l1_active_minus1,
            h.ref_pic_list_modification_flag_l1,
            &h.ref_pic_list_modification_l1,
        );
    }
    p
}

/// Whether the slice carries a prediction weight table (explicit weighted prediction).
pub fn has_pred_weights(pps: &Pps, header: &SliceHeader) -> bool {
    let t = header.slice_type;
    (pps.weighted_pred_flag && (t.is_p() || t.is_sp()))
        || (pps.weighted_bipred_idc == 1 && t.is_b())
}

/// `V4L2_CID_STATELESS_H264_PRED_WEIGHTS` of a slice (see [`has_pred_weights`]).
pub fn pred_weights(header: &SliceHeader) -> v4l2_ctrl_h264_pred_weights {
    let t = &header.pred_weight_table;
    let mut p = v4l2_ctrl_h264_pred_weights {
        luma_log2_weight_denom: u16::from(t.luma_log2_weight_denom),
        chroma_log2_weight_denom: u16::from(t.chroma_log2_weight_denom),
        ..Default::default()
    };
    let [f0, f1] = &mut p.weight_factors;
    for i in 0..32 {
        f0.luma_weight[i] = t.luma_weight_l0[i];
        f0.luma_offset[i] = i16::from(t.luma_offset_l0[i]);
        f1.luma_weight[i] = t.luma_weight_l1[i];
        f1.luma_offset[i] = t.luma_offset_l1[i];
        for c in 0..2 {
            f0.chroma_weight[i][c] = t.chroma_weight_l0[i][c];
            f0.chroma_offset[i][c] = i16::from(t.chroma_offset_l0[i][c]);
            f1.chroma_weight[i][c] = t.chroma_weight_l1[i][c];
            f1.chroma_offset[i][c] = i16::from(t.chroma_offset_l1[i][c]);
        }
    }
    p
}
