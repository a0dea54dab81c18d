// SPDX-License-Identifier: GPL-2.0
//! `struct v4l2_ctrl_vp9_frame` from a parsed frame, and the checks the kernel applies to it
//! and to `struct v4l2_ctrl_vp9_compressed_hdr` (`validate_vp9_frame()` and
//! `validate_vp9_compressed_hdr()` in drivers/media/v4l2-core/v4l2-ctrls-core.c, 6.12), so a
//! payload the kernel would refuse with `EINVAL` is caught with a readable reason.

use super::header::{FrameHeader, SEG_LVL_MAX};
use super::CompressedInfo;
use crate::uapi::*;

/// The timestamps (`v4l2_timeval_to_ns()` of the OUTPUT buffers) of the last, golden and
/// altref reference frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RefTimestamps {
    /// `last_frame_ts`.
    pub last: u64,
    /// `golden_frame_ts`.
    pub golden: u64,
    /// `alt_frame_ts`.
    pub alt: u64,
}

/// `frame_width_minus_1` and friends: VP9 sizes are at most 65536.
fn minus_1(v: u32) -> u16 {
    u16::try_from(v.saturating_sub(1)).unwrap_or(u16::MAX)
}

/// Builds `V4L2_CID_STATELESS_VP9_FRAME` for a frame that is decoded (not for
/// `show_existing_frame`, which has no request).
pub fn frame_control(
    h: &FrameHeader,
    c: &CompressedInfo,
    refs: RefTimestamps,
) -> v4l2_ctrl_vp9_frame {
    let mut f = v4l2_ctrl_vp9_frame {
        flags: flags![
            h.key_frame => V4L2_VP9_FRAME_FLAG_KEY_FRAME,
            h.show_frame => V4L2_VP9_FRAME_FLAG_SHOW_FRAME,
            h.error_resilient_mode => V4L2_VP9_FRAME_FLAG_ERROR_RESILIENT,
            h.intra_only => V4L2_VP9_FRAME_FLAG_INTRA_ONLY,
            h.allow_high_precision_mv => V4L2_VP9_FRAME_FLAG_ALLOW_HIGH_PREC_MV,
            h.refresh_frame_context => V4L2_VP9_FRAME_FLAG_REFRESH_FRAME_CTX,
            h.frame_parallel_decoding_mode => V4L2_VP9_FRAME_FLAG_PARALLEL_DEC_MODE,
            h.subsampling_x => V4L2_VP9_FRAME_FLAG_X_SUBSAMPLING,
            h.subsampling_y => V4L2_VP9_FRAME_FLAG_Y_SUBSAMPLING,
            h.color_range_full => V4L2_VP9_FRAME_FLAG_COLOR_RANGE_FULL_SWING,
        ],
        compressed_header_size: h.compressed_header_size,
        uncompressed_header_size: h.uncompressed_header_size,
        frame_width_minus_1: minus_1(h.width),
        frame_height_minus_1: minus_1(h.height),
        render_width_minus_1: minus_1(h.render_width),
        render_height_minus_1: minus_1(h.render_height),
        last_frame_ts: refs.last,
        golden_frame_ts: refs.golden,
        alt_frame_ts: refs.alt,
        ref_frame_sign_bias: (flags![
            h.ref_frame_sign_bias[0] => V4L2_VP9_SIGN_BIAS_LAST,
            h.ref_frame_sign_bias[1] => V4L2_VP9_SIGN_BIAS_GOLDEN,
            h.ref_frame_sign_bias[2] => V4L2_VP9_SIGN_BIAS_ALT,
        ]) as u8,
        // The uAPI numbers the modes NONE, SPEC, ALL; the bitstream codes 0/1 (none), 2, 3.
        reset_frame_context: match h.reset_frame_context {
            2 => V4L2_VP9_RESET_FRAME_CTX_SPEC,
            3 => V4L2_VP9_RESET_FRAME_CTX_ALL,
            _ => V4L2_VP9_RESET_FRAME_CTX_NONE,
        } as u8,
        frame_context_idx: h.frame_context_idx,
        profile: h.profile,
        bit_depth: h.bit_depth,
        interpolation_filter: h.interpolation_filter,
        tile_cols_log2: h.tile_cols_log2,
        tile_rows_log2: h.tile_rows_log2,
        reference_mode: c.reference_mode,
        ..Default::default()
    };

    f.lf.level = h.lf.level;
    f.lf.sharpness = h.lf.sharpness;
    f.lf.flags = flags![
        h.lf.delta_enabled => V4L2_VP9_LOOP_FILTER_FLAG_DELTA_ENABLED,
        h.lf.delta_update => V4L2_VP9_LOOP_FILTER_FLAG_DELTA_UPDATE,
    ] as u8;
    f.lf.ref_deltas = h.lf.ref_deltas;
    f.lf.mode_deltas = h.lf.mode_deltas;

    f.quant.base_q_idx = h.quant.base_q_idx;
    f.quant.delta_q_y_dc = h.quant.delta_q_y_dc;
    f.quant.delta_q_uv_dc = h.quant.delta_q_uv_dc;
    f.quant.delta_q_uv_ac = h.quant.delta_q_uv_ac;

    let s = &h.seg;
    f.seg.flags = flags![
        s.enabled => V4L2_VP9_SEGMENTATION_FLAG_ENABLED,
        s.update_map => V4L2_VP9_SEGMENTATION_FLAG_UPDATE_MAP,
        s.temporal_update => V4L2_VP9_SEGMENTATION_FLAG_TEMPORAL_UPDATE,
        s.update_data => V4L2_VP9_SEGMENTATION_FLAG_UPDATE_DATA,
        s.abs_or_delta_update => V4L2_VP9_SEGMENTATION_FLAG_ABS_OR_DELTA_UPDATE,
    ] as u8;
    f.seg.tree_probs = s.tree_probs;
    f.seg.pred_probs = s.pred_probs;
    f.seg.feature_enabled = s.feature_enabled;
    f.seg.feature_data = s.feature_data;
    f
}

/// Why the kernel would refuse a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the kernel would refuse this VP9 control: {0}")]
pub struct Invalid(pub &'static str);

/// The checks of `validate_vp9_frame()` (v4l2-ctrls-core.c).
pub fn validate_frame(f: &v4l2_ctrl_vp9_frame) -> Result<(), Invalid> {
    let known = V4L2_VP9_FRAME_FLAG_KEY_FRAME
        | V4L2_VP9_FRAME_FLAG_SHOW_FRAME
        | V4L2_VP9_FRAME_FLAG_ERROR_RESILIENT
        | V4L2_VP9_FRAME_FLAG_INTRA_ONLY
        | V4L2_VP9_FRAME_FLAG_ALLOW_HIGH_PREC_MV
        | V4L2_VP9_FRAME_FLAG_REFRESH_FRAME_CTX
        | V4L2_VP9_FRAME_FLAG_PARALLEL_DEC_MODE
        | V4L2_VP9_FRAME_FLAG_X_SUBSAMPLING
        | V4L2_VP9_FRAME_FLAG_Y_SUBSAMPLING
        | V4L2_VP9_FRAME_FLAG_COLOR_RANGE_FULL_SWING;
    if f.flags & !known != 0 {
        return Err(Invalid("unknown frame flags"));
    }
    if f.flags & V4L2_VP9_FRAME_FLAG_ERROR_RESILIENT != 0
        && f.flags & V4L2_VP9_FRAME_FLAG_REFRESH_FRAME_CTX != 0
    {
        return Err(Invalid("error resilient with refresh_frame_context"));
    }
    if u32::from(f.profile) > V4L2_VP9_PROFILE_MAX {
        return Err(Invalid("profile above 3"));
    }
    if u32::from(f.reset_frame_context) > V4L2_VP9_RESET_FRAME_CTX_ALL {
        return Err(Invalid("reset_frame_context above RESET_FRAME_CTX_ALL"));
    }
    if u32::from(f.frame_context_idx) >= V4L2_VP9_NUM_FRAME_CTX {
        return Err(Invalid("frame_context_idx above 3"));
    }
    if (f.profile < 2 && f.bit_depth != 8)
        || (f.profile >= 2 && f.bit_depth != 10 && f.bit_depth != 12)
    {
        return Err(Invalid("bit depth does not match the profile"));
    }
    let subsampled = V4L2_VP9_FRAME_FLAG_X_SUBSAMPLING | V4L2_VP9_FRAME_FLAG_Y_SUBSAMPLING;
    if (f.profile == 0 || f.profile == 2) && f.flags & subsampled != subsampled {
        return Err(Invalid("profiles 0 and 2 are 4:2:0 only"));
    }
    if (f.profile == 1 || f.profile == 3) && f.flags & subsampled == subsampled {
        return Err(Invalid("profiles 1 and 3 cannot be 4:2:0"));
    }
    if u32::from(f.interpolation_filter) > V4L2_VP9_INTERP_FILTER_SWITCHABLE {
        return Err(Invalid("interpolation_filter above SWITCHABLE"));
    }
    if f.tile_cols_log2 > 6 {
        return Err(Invalid("tile_cols_log2 above 6"));
    }
    if u32::from(f.reference_mode) > V4L2_VP9_REFERENCE_MODE_SELECT {
        return Err(Invalid("reference_mode above SELECT"));
    }

    // validate_vp9_lf_params()
    let lf = &f.lf;
    if u32::from(lf.flags)
        & !(V4L2_VP9_LOOP_FILTER_FLAG_DELTA_ENABLED | V4L2_VP9_LOOP_FILTER_FLAG_DELTA_UPDATE)
        != 0
    {
        return Err(Invalid("unknown loop filter flags"));
    }
    if lf.level > 63 || lf.sharpness > 7 {
        return Err(Invalid("loop filter level or sharpness out of range"));
    }
    if lf
        .ref_deltas
        .iter()
        .chain(lf.mode_deltas.iter())
        .any(|d| !(-63..=63).contains(d))
    {
        return Err(Invalid("loop filter delta out of -63..=63"));
    }

    // validate_vp9_quant_params()
    let q = &f.quant;
    if [q.delta_q_y_dc, q.delta_q_uv_dc, q.delta_q_uv_ac]
        .iter()
        .any(|d| !(-15..=15).contains(d))
    {
        return Err(Invalid("quantizer delta out of -15..=15"));
    }

    // validate_vp9_seg_params()
    let seg = &f.seg;
    let seg_flags = V4L2_VP9_SEGMENTATION_FLAG_ENABLED
        | V4L2_VP9_SEGMENTATION_FLAG_UPDATE_MAP
        | V4L2_VP9_SEGMENTATION_FLAG_TEMPORAL_UPDATE
        | V4L2_VP9_SEGMENTATION_FLAG_UPDATE_DATA
        | V4L2_VP9_SEGMENTATION_FLAG_ABS_OR_DELTA_UPDATE;
    if u32::from(seg.flags) & !seg_flags != 0 {
        return Err(Invalid("unknown segmentation flags"));
    }
    if seg
        .feature_enabled
        .iter()
        .any(|&e| u32::from(e) & !V4L2_VP9_SEGMENT_FEATURE_ENABLED_MASK != 0)
    {
        return Err(Invalid("unknown segment feature bits"));
    }
    const RANGE: [i16; SEG_LVL_MAX] = [255, 63, 3, 0];
    for data in &seg.feature_data {
        for (d, range) in data.iter().zip(RANGE) {
            if !(-range..=range).contains(d) {
                return Err(Invalid("segment feature data out of range"));
            }
        }
    }
    Ok(())
}

/// The checks of `validate_vp9_compressed_hdr()` (v4l2-ctrls-core.c).
pub fn validate_compressed_hdr(c: &v4l2_ctrl_vp9_compressed_hdr) -> Result<(), Invalid> {
    if u32::from(c.tx_mode) > V4L2_VP9_TX_MODE_SELECT {
        return Err(Invalid("tx_mode above TX_MODE_SELECT"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> v4l2_ctrl_vp9_frame {
        v4l2_ctrl_vp9_frame {
            flags: V4L2_VP9_FRAME_FLAG_X_SUBSAMPLING | V4L2_VP9_FRAME_FLAG_Y_SUBSAMPLING,
            bit_depth: 8,
            ..Default::default()
        }
    }

    #[test]
    fn accepts_the_defaults() {
        assert_eq!(validate_frame(&valid()), Ok(()));
        let f = frame_control(
            &FrameHeader {
                bit_depth: 8,
                subsampling_x: true,
                subsampling_y: true,
                width: 64,
                height: 64,
                render_width: 64,
                render_height: 64,
                reset_frame_context: 3,
                ..Default::default()
            },
            &CompressedInfo::default(),
            RefTimestamps::default(),
        );
        assert_eq!(validate_frame(&f), Ok(()));
        assert_eq!(f.reset_frame_context, V4L2_VP9_RESET_FRAME_CTX_ALL as u8);
        assert_eq!(f.frame_width_minus_1, 63);
    }

    #[test]
    fn rejects_what_the_kernel_rejects() {
        type Breaks = fn(&mut v4l2_ctrl_vp9_frame);
        let cases: [(&str, Breaks); 12] = [
            ("flags", |f| f.flags |= 0x400),
            ("resilient+refresh", |f| {
                f.flags |=
                    V4L2_VP9_FRAME_FLAG_ERROR_RESILIENT | V4L2_VP9_FRAME_FLAG_REFRESH_FRAME_CTX
            }),
            ("profile", |f| f.profile = 4),
            ("reset", |f| f.reset_frame_context = 3),
            ("ctx", |f| f.frame_context_idx = 4),
            ("depth", |f| f.bit_depth = 10),
            ("420", |f| f.flags &= !V4L2_VP9_FRAME_FLAG_Y_SUBSAMPLING),
            ("filter", |f| f.interpolation_filter = 5),
            ("tiles", |f| f.tile_cols_log2 = 7),
            ("refmode", |f| f.reference_mode = 3),
            ("lf delta", |f| f.lf.ref_deltas[2] = -64),
            ("seg data", |f| f.seg.feature_data[7][2] = 4),
        ];
        for (what, breaks) in cases {
            let mut f = valid();
            breaks(&mut f);
            assert!(validate_frame(&f).is_err(), "{what} accepted");
        }
        let c = v4l2_ctrl_vp9_compressed_hdr {
            tx_mode: 5,
            ..Default::default()
        };
        assert!(validate_compressed_hdr(&c).is_err());
    }
}
