// SPDX-License-Identifier: GPL-2.0
//! Parsed AV1 headers (`cros_codecs::codec::av1::parser`) → the V4L2 stateless AV1 controls.
//!
//! The mapping is derived from cros-codecs 0.0.6
//! `src/device/v4l2/stateless/controls/av1.rs` (Copyright 2025 The ChromiumOS Authors,
//! BSD-3-Clause) and checked field by field against the uAPI documentation
//! (`include/uapi/linux/v4l2-controls.h`, "ext-ctrls-codec-stateless" AV1 section) and against
//! what GStreamer's `v4l2slav1dec` sends. It departs from the cros-codecs port where that one
//! disagrees with the uAPI:
//!
//! * `bit_depth` is the number of bits (8 / 10 / 12), not cros-codecs' enum discriminant;
//! * `cdef.damping_minus_3` is `CdefDamping - 3` (the parser stores the damping itself);
//! * `loop_restoration.frame_restoration_type[]` / `loop_restoration_size[]` are the frame's
//!   values (the port wrote constants);
//! * `global_motion.invalid` has a bit set for every reference whose warp is *not* valid;
//! * `film_grain.point_y_value[]` are the values (the port copied the scalings);
//! * `ref_frame_idx[]`, `refresh_frame_flags`, `reference_frame_ts[]` are filled;
//! * `V4L2_AV1_FRAME_FLAG_SKIP_MODE_ALLOWED` is `skipModeAllowed` (the port used
//!   `skip_mode_present` for both flags);
//! * `tile_info.width_in_sbs_minus_1[]` / `height_in_sbs_minus_1[]` are derived from
//!   `MiColStarts` / `MiRowStarts`, so they are right for uniform tile spacing too (the parser
//!   fills them only for explicitly coded sizes).
//!
//! Values are the specification's *variables* where the uAPI says so: `superres_denom` is
//! `SuperresDenom` (8 without superres), `cdef.*_sec_strength[]` hold 4 where the bitstream
//! codes 3, `lr_unit_shift` is the final `lr_unit_shift` (after `lr_unit_extra_shift`),
//! `order_hints[]` is `OrderHints[LAST_FRAME..=ALTREF_FRAME]` (index 0 unused).
//!
//! Film grain: the parser performs `load_grain_params()` for `update_grain = 0`, so the
//! control always carries the *effective* parameters of the frame (with the frame's own
//! `grain_seed`); [`film_grain_control`] therefore always sets
//! `V4L2_AV1_FILM_GRAIN_FLAG_UPDATE_GRAIN` when grain is applied, and a consumer never needs
//! per-slot grain state. `film_grain_params_ref_idx` is passed on as parsed.
//!
//! Tile group entries: `tile_offset` is the byte offset of the tile's data in the OUTPUT
//! buffer (the caller passes where the tile group's payload starts in that buffer), as
//! GStreamer does.

use cros_codecs::codec::av1::parser::{
    BitDepth, FrameHeaderObu, FrameType, SequenceHeaderObu, TileGroupObu, REFS_PER_FRAME,
};

use crate::uapi::*;

/// Why a parsed header cannot be expressed as the V4L2 controls.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ControlError {
    /// A value does not fit its control field (the uAPI limit is given).
    #[error("{field} = {value} does not fit the V4L2 AV1 control (limit {limit})")]
    OutOfRange {
        /// The control field.
        field: &'static str,
        /// The parsed value.
        value: u64,
        /// The largest value the field holds.
        limit: u64,
    },
    /// A frame with `show_existing_frame = 1` has no decode request.
    #[error(
        "show_existing_frame headers have no V4L2 frame control (the client re-outputs the slot)"
    )]
    ShowExistingFrame,
}

fn fit<T: TryFrom<u64>>(field: &'static str, value: u64, limit: u64) -> Result<T, ControlError> {
    if value > limit {
        return Err(ControlError::OutOfRange {
            field,
            value,
            limit,
        });
    }
    T::try_from(value).map_err(|_| ControlError::OutOfRange {
        field,
        value,
        limit,
    })
}

/// The number of bits of a sample (`BitDepth` in the specification).
pub fn bit_depth_bits(depth: BitDepth) -> u8 {
    match depth {
        BitDepth::Depth8 => 8,
        BitDepth::Depth10 => 10,
        BitDepth::Depth12 => 12,
    }
}

/// `V4L2_CID_STATELESS_AV1_SEQUENCE` from a sequence header OBU.
pub fn sequence_control(seq: &SequenceHeaderObu) -> Result<v4l2_ctrl_av1_sequence, ControlError> {
    let cc = &seq.color_config;
    Ok(v4l2_ctrl_av1_sequence {
        flags: flags![
            seq.still_picture => V4L2_AV1_SEQUENCE_FLAG_STILL_PICTURE,
            seq.use_128x128_superblock => V4L2_AV1_SEQUENCE_FLAG_USE_128X128_SUPERBLOCK,
            seq.enable_filter_intra => V4L2_AV1_SEQUENCE_FLAG_ENABLE_FILTER_INTRA,
            seq.enable_intra_edge_filter => V4L2_AV1_SEQUENCE_FLAG_ENABLE_INTRA_EDGE_FILTER,
            seq.enable_interintra_compound => V4L2_AV1_SEQUENCE_FLAG_ENABLE_INTERINTRA_COMPOUND,
            seq.enable_masked_compound => V4L2_AV1_SEQUENCE_FLAG_ENABLE_MASKED_COMPOUND,
            seq.enable_warped_motion => V4L2_AV1_SEQUENCE_FLAG_ENABLE_WARPED_MOTION,
            seq.enable_dual_filter => V4L2_AV1_SEQUENCE_FLAG_ENABLE_DUAL_FILTER,
            seq.enable_order_hint => V4L2_AV1_SEQUENCE_FLAG_ENABLE_ORDER_HINT,
            seq.enable_jnt_comp => V4L2_AV1_SEQUENCE_FLAG_ENABLE_JNT_COMP,
            seq.enable_ref_frame_mvs => V4L2_AV1_SEQUENCE_FLAG_ENABLE_REF_FRAME_MVS,
            seq.enable_superres => V4L2_AV1_SEQUENCE_FLAG_ENABLE_SUPERRES,
            seq.enable_cdef => V4L2_AV1_SEQUENCE_FLAG_ENABLE_CDEF,
            seq.enable_restoration => V4L2_AV1_SEQUENCE_FLAG_ENABLE_RESTORATION,
            cc.mono_chrome => V4L2_AV1_SEQUENCE_FLAG_MONO_CHROME,
            cc.color_range => V4L2_AV1_SEQUENCE_FLAG_COLOR_RANGE,
            cc.subsampling_x => V4L2_AV1_SEQUENCE_FLAG_SUBSAMPLING_X,
            cc.subsampling_y => V4L2_AV1_SEQUENCE_FLAG_SUBSAMPLING_Y,
            seq.film_grain_params_present => V4L2_AV1_SEQUENCE_FLAG_FILM_GRAIN_PARAMS_PRESENT,
            cc.separate_uv_delta_q => V4L2_AV1_SEQUENCE_FLAG_SEPARATE_UV_DELTA_Q,
        ],
        seq_profile: seq.seq_profile as u8,
        // OrderHintBits is 0 without order hints and at most 8.
        order_hint_bits: fit(
            "order_hint_bits",
            u64::try_from(seq.order_hint_bits.max(0)).unwrap_or(0),
            8,
        )?,
        bit_depth: bit_depth_bits(seq.bit_depth),
        reserved: 0,
        max_frame_width_minus_1: seq.max_frame_width_minus_1,
        max_frame_height_minus_1: seq.max_frame_height_minus_1,
    })
}

/// `ceil(len / 2^shift) - 1` for a tile's extent in MI units, as superblocks.
fn sbs_minus_1(start: u32, end: u32, sb_shift: u32) -> u32 {
    let len = end.saturating_sub(start);
    len.div_ceil(1 << sb_shift).saturating_sub(1)
}

/// `V4L2_CID_STATELESS_AV1_FRAME` for a decoded frame (not `show_existing_frame`).
///
/// `reference_frame_ts[i]` is the timestamp (`v4l2_timeval_to_ns()`) of the OUTPUT buffer whose
/// decode last refreshed slot `i` (0 for a slot never filled).
pub fn frame_control(
    seq: &SequenceHeaderObu,
    fh: &FrameHeaderObu,
    reference_frame_ts: &[u64; 8],
) -> Result<v4l2_ctrl_av1_frame, ControlError> {
    if fh.show_existing_frame {
        return Err(ControlError::ShowExistingFrame);
    }
    // All zero: the uAPI's reset state (reserved fields zeroed as the uAPI asks).
    let mut f = v4l2_ctrl_av1_frame::default();

    // Tile info (6.8.14). MiColStarts / MiRowStarts have TileCols + 1 / TileRows + 1 entries.
    let ti = &fh.tile_info;
    let max_cols = V4L2_AV1_MAX_TILE_COLS as u64;
    let max_rows = V4L2_AV1_MAX_TILE_ROWS as u64;
    let tile_cols: u8 = fit("tile_info.tile_cols", ti.tile_cols.into(), max_cols)?;
    let tile_rows: u8 = fit("tile_info.tile_rows", ti.tile_rows.into(), max_rows)?;
    let sb_shift = if seq.use_128x128_superblock { 5 } else { 4 };
    f.tile_info.flags = flags![
        ti.uniform_tile_spacing_flag => V4L2_AV1_TILE_INFO_FLAG_UNIFORM_TILE_SPACING,
    ] as u8;
    f.tile_info.context_update_tile_id = fit(
        "tile_info.context_update_tile_id",
        ti.context_update_tile_id.into(),
        u64::from(u8::MAX),
    )?;
    f.tile_info.tile_cols = tile_cols;
    f.tile_info.tile_rows = tile_rows;
    for i in 0..=usize::from(tile_cols) {
        f.tile_info.mi_col_starts[i] = ti.mi_col_starts[i];
    }
    for i in 0..=usize::from(tile_rows) {
        f.tile_info.mi_row_starts[i] = ti.mi_row_starts[i];
    }
    for i in 0..usize::from(tile_cols) {
        f.tile_info.width_in_sbs_minus_1[i] =
            sbs_minus_1(ti.mi_col_starts[i], ti.mi_col_starts[i + 1], sb_shift);
    }
    for i in 0..usize::from(tile_rows) {
        f.tile_info.height_in_sbs_minus_1[i] =
            sbs_minus_1(ti.mi_row_starts[i], ti.mi_row_starts[i + 1], sb_shift);
    }
    f.tile_info.tile_size_bytes = fit("tile_info.tile_size_bytes", ti.tile_size_bytes.into(), 4)?;

    // Quantization (6.8.11).
    let q = &fh.quantization_params;
    f.quantization.flags = flags![
        q.diff_uv_delta => V4L2_AV1_QUANTIZATION_FLAG_DIFF_UV_DELTA,
        q.using_qmatrix => V4L2_AV1_QUANTIZATION_FLAG_USING_QMATRIX,
        q.delta_q_present => V4L2_AV1_QUANTIZATION_FLAG_DELTA_Q_PRESENT,
    ] as u8;
    f.quantization.base_q_idx = fit("quantization.base_q_idx", q.base_q_idx.into(), 255)?;
    // The deltas are su(1+6): -64..=63.
    let delta = |v: i32| i8::try_from(v).unwrap_or(if v < 0 { i8::MIN } else { i8::MAX });
    f.quantization.delta_q_y_dc = delta(q.delta_q_y_dc);
    f.quantization.delta_q_u_dc = delta(q.delta_q_u_dc);
    f.quantization.delta_q_u_ac = delta(q.delta_q_u_ac);
    f.quantization.delta_q_v_dc = delta(q.delta_q_v_dc);
    f.quantization.delta_q_v_ac = delta(q.delta_q_v_ac);
    f.quantization.qm_y = fit("quantization.qm_y", q.qm_y.into(), 15)?;
    f.quantization.qm_u = fit("quantization.qm_u", q.qm_u.into(), 15)?;
    f.quantization.qm_v = fit("quantization.qm_v", q.qm_v.into(), 15)?;
    f.quantization.delta_q_res = fit("quantization.delta_q_res", q.delta_q_res.into(), 3)?;

    f.superres_denom = fit("superres_denom", fh.superres_denom.into(), 16)?;

    // Segmentation (6.8.13).
    let seg = &fh.segmentation_params;
    f.segmentation.flags = flags![
        seg.segmentation_enabled => V4L2_AV1_SEGMENTATION_FLAG_ENABLED,
        seg.segmentation_update_map => V4L2_AV1_SEGMENTATION_FLAG_UPDATE_MAP,
        seg.segmentation_temporal_update => V4L2_AV1_SEGMENTATION_FLAG_TEMPORAL_UPDATE,
        seg.segmentation_update_data => V4L2_AV1_SEGMENTATION_FLAG_UPDATE_DATA,
        seg.seg_id_pre_skip => V4L2_AV1_SEGMENTATION_FLAG_SEG_ID_PRE_SKIP,
    ] as u8;
    f.segmentation.last_active_seg_id = seg.last_active_seg_id;
    for (i, enabled) in seg.feature_enabled.iter().enumerate() {
        f.segmentation.feature_enabled[i] = enabled
            .iter()
            .enumerate()
            .fold(0u8, |m, (j, &on)| m | (u8::from(on) << j));
        f.segmentation.feature_data[i] = seg.feature_data[i];
    }

    // Loop filter (6.8.10, 6.8.16).
    let lf = &fh.loop_filter_params;
    f.loop_filter.flags = flags![
        lf.loop_filter_delta_enabled => V4L2_AV1_LOOP_FILTER_FLAG_DELTA_ENABLED,
        lf.loop_filter_delta_update => V4L2_AV1_LOOP_FILTER_FLAG_DELTA_UPDATE,
        lf.delta_lf_present => V4L2_AV1_LOOP_FILTER_FLAG_DELTA_LF_PRESENT,
        lf.delta_lf_multi => V4L2_AV1_LOOP_FILTER_FLAG_DELTA_LF_MULTI,
    ] as u8;
    f.loop_filter.level = lf.loop_filter_level;
    f.loop_filter.sharpness = lf.loop_filter_sharpness;
    f.loop_filter.ref_deltas = lf.loop_filter_ref_deltas;
    f.loop_filter.mode_deltas = lf.loop_filter_mode_deltas;
    f.loop_filter.delta_lf_res = lf.delta_lf_res;

    // CDEF (6.10.14).
    let cdef = &fh.cdef_params;
    f.cdef.damping_minus_3 = fit(
        "cdef.damping_minus_3",
        u64::from(cdef.cdef_damping.saturating_sub(3)),
        3,
    )?;
    f.cdef.bits = fit("cdef.bits", cdef.cdef_bits.into(), 3)?;
    for i in 0..V4L2_AV1_CDEF_MAX as usize {
        f.cdef.y_pri_strength[i] = fit(
            "cdef.y_pri_strength",
            cdef.cdef_y_pri_strength[i].into(),
            15,
        )?;
        f.cdef.y_sec_strength[i] =
            fit("cdef.y_sec_strength", cdef.cdef_y_sec_strength[i].into(), 4)?;
        f.cdef.uv_pri_strength[i] = fit(
            "cdef.uv_pri_strength",
            cdef.cdef_uv_pri_strength[i].into(),
            15,
        )?;
        f.cdef.uv_sec_strength[i] = fit(
            "cdef.uv_sec_strength",
            cdef.cdef_uv_sec_strength[i].into(),
            4,
        )?;
    }

    // skip_mode_frame[] is LAST_FRAME + i when skipModeAllowed, else 0 (never INTRA_FRAME).
    for i in 0..2 {
        f.skip_mode_frame[i] = fit("skip_mode_frame", fh.skip_mode_frame[i].into(), 7)?;
    }
    f.primary_ref_frame = fit("primary_ref_frame", fh.primary_ref_frame.into(), 7)?;

    // Loop restoration (6.10.15).
    let lr = &fh.loop_restoration_params;
    f.loop_restoration.flags = flags![
        lr.uses_lr => V4L2_AV1_LOOP_RESTORATION_FLAG_USES_LR,
        lr.uses_chroma_lr => V4L2_AV1_LOOP_RESTORATION_FLAG_USES_CHROMA_LR,
    ] as u8;
    f.loop_restoration.lr_unit_shift = lr.lr_unit_shift;
    f.loop_restoration.lr_uv_shift = lr.lr_uv_shift;
    for i in 0..V4L2_AV1_NUM_PLANES_MAX as usize {
        // cros-codecs' FrameRestorationType uses the uAPI numbering (NONE, WIENER, SGRPROJ,
        // SWITCHABLE) after its lr_type remapping.
        f.loop_restoration.frame_restoration_type[i] = lr.frame_restoration_type[i] as u32;
        f.loop_restoration.loop_restoration_size[i] = lr.loop_restoration_size[i].into();
    }

    // Global motion (6.8.17), per reference frame LAST..ALTREF (index 0 = INTRA unused).
    let gm = &fh.global_motion_params;
    for i in 0..V4L2_AV1_TOTAL_REFS_PER_FRAME as usize {
        f.global_motion.flags[i] = flags![
            gm.is_global[i] => V4L2_AV1_GLOBAL_MOTION_FLAG_IS_GLOBAL,
            gm.is_rot_zoom[i] => V4L2_AV1_GLOBAL_MOTION_FLAG_IS_ROT_ZOOM,
            gm.is_translation[i] => V4L2_AV1_GLOBAL_MOTION_FLAG_IS_TRANSLATION,
        ] as u8;
        f.global_motion.type_[i] = gm.gm_type[i] as u32;
        f.global_motion.params[i] = gm.gm_params[i];
        if i > 0 && !gm.warp_valid[i] {
            f.global_motion.invalid |= 1 << i;
        }
    }

    f.flags = flags![
        fh.show_frame => V4L2_AV1_FRAME_FLAG_SHOW_FRAME,
        fh.showable_frame => V4L2_AV1_FRAME_FLAG_SHOWABLE_FRAME,
        fh.error_resilient_mode => V4L2_AV1_FRAME_FLAG_ERROR_RESILIENT_MODE,
        fh.disable_cdf_update => V4L2_AV1_FRAME_FLAG_DISABLE_CDF_UPDATE,
        fh.allow_screen_content_tools != 0 => V4L2_AV1_FRAME_FLAG_ALLOW_SCREEN_CONTENT_TOOLS,
        fh.force_integer_mv != 0 => V4L2_AV1_FRAME_FLAG_FORCE_INTEGER_MV,
        fh.allow_intrabc => V4L2_AV1_FRAME_FLAG_ALLOW_INTRABC,
        fh.use_superres => V4L2_AV1_FRAME_FLAG_USE_SUPERRES,
        fh.allow_high_precision_mv => V4L2_AV1_FRAME_FLAG_ALLOW_HIGH_PRECISION_MV,
        fh.is_motion_mode_switchable => V4L2_AV1_FRAME_FLAG_IS_MOTION_MODE_SWITCHABLE,
        fh.use_ref_frame_mvs => V4L2_AV1_FRAME_FLAG_USE_REF_FRAME_MVS,
        fh.disable_frame_end_update_cdf => V4L2_AV1_FRAME_FLAG_DISABLE_FRAME_END_UPDATE_CDF,
        fh.allow_warped_motion => V4L2_AV1_FRAME_FLAG_ALLOW_WARPED_MOTION,
        fh.reference_select => V4L2_AV1_FRAME_FLAG_REFERENCE_SELECT,
        fh.reduced_tx_set => V4L2_AV1_FRAME_FLAG_REDUCED_TX_SET,
        // skipModeAllowed (5.9.22): the parser sets SkipModeFrame[] exactly when it is 1.
        fh.skip_mode_frame[0] > 0 => V4L2_AV1_FRAME_FLAG_SKIP_MODE_ALLOWED,
        fh.skip_mode_present => V4L2_AV1_FRAME_FLAG_SKIP_MODE_PRESENT,
        fh.frame_size_override_flag => V4L2_AV1_FRAME_FLAG_FRAME_SIZE_OVERRIDE,
        fh.buffer_removal_time_present_flag => V4L2_AV1_FRAME_FLAG_BUFFER_REMOVAL_TIME_PRESENT,
        fh.frame_refs_short_signaling => V4L2_AV1_FRAME_FLAG_FRAME_REFS_SHORT_SIGNALING,
    ];
    // FrameType / InterpolationFilter / TxMode discriminants are the uAPI enum values.
    f.frame_type = fh.frame_type as u32;
    f.order_hint = fh.order_hint;
    f.upscaled_width = fh.upscaled_width;
    f.interpolation_filter = fh.interpolation_filter as u32;
    f.tx_mode = fh.tx_mode as u32;
    if fh.frame_width == 0 || fh.frame_height == 0 || fh.upscaled_width == 0 {
        return Err(ControlError::OutOfRange {
            field: "frame size",
            value: 0,
            limit: 65536,
        });
    }
    f.frame_width_minus_1 = fh.frame_width - 1;
    f.frame_height_minus_1 = fh.frame_height - 1;
    f.render_width_minus_1 = fit(
        "render_width_minus_1",
        u64::from(fh.render_width.saturating_sub(1)),
        u64::from(u16::MAX),
    )?;
    f.render_height_minus_1 = fit(
        "render_height_minus_1",
        u64::from(fh.render_height.saturating_sub(1)),
        u64::from(u16::MAX),
    )?;
    f.current_frame_id = fh.current_frame_id;
    for (dst, src) in f
        .buffer_removal_time
        .iter_mut()
        .zip(fh.buffer_removal_time.iter())
    {
        *dst = *src;
    }
    f.order_hints = fh.order_hints;
    f.reference_frame_ts = *reference_frame_ts;
    // Intra frames code no ref_frame_idx[]; the parser leaves them 0 (the uAPI ignores them).
    for i in 0..REFS_PER_FRAME {
        f.ref_frame_idx[i] = fit("ref_frame_idx", fh.ref_frame_idx[i].into(), 7)?;
    }
    f.refresh_frame_flags = fit(
        "refresh_frame_flags",
        fh.refresh_frame_flags.into(),
        u64::from(u8::MAX),
    )?;
    Ok(f)
}

/// `V4L2_CID_STATELESS_AV1_FILM_GRAIN` for a frame (6.8.20); `apply` = false clears
/// `V4L2_AV1_FILM_GRAIN_FLAG_APPLY_GRAIN` (the device then outputs the picture without grain),
/// keeping the parameters.
pub fn film_grain_control(
    fh: &FrameHeaderObu,
    apply: bool,
) -> Result<v4l2_ctrl_av1_film_grain, ControlError> {
    let fg = &fh.film_grain_params;
    let mut g = v4l2_ctrl_av1_film_grain::default();
    if !fg.apply_grain {
        // Everything else is meaningless without apply_grain (the parser resets it too).
        return Ok(g);
    }
    g.flags = flags![
        apply => V4L2_AV1_FILM_GRAIN_FLAG_APPLY_GRAIN,
        // The parameters are always the effective ones (see the module docs).
        true => V4L2_AV1_FILM_GRAIN_FLAG_UPDATE_GRAIN,
        fg.chroma_scaling_from_luma => V4L2_AV1_FILM_GRAIN_FLAG_CHROMA_SCALING_FROM_LUMA,
        fg.overlap_flag => V4L2_AV1_FILM_GRAIN_FLAG_OVERLAP,
        fg.clip_to_restricted_range => V4L2_AV1_FILM_GRAIN_FLAG_CLIP_TO_RESTRICTED_RANGE,
    ] as u8;
    g.cr_mult = fg.cr_mult;
    g.grain_seed = fg.grain_seed;
    g.film_grain_params_ref_idx = fit(
        "film_grain_params_ref_idx",
        fg.film_grain_params_ref_idx.into(),
        7,
    )?;
    let ny = usize::from(fit::<u8>(
        "num_y_points",
        fg.num_y_points.into(),
        V4L2_AV1_MAX_NUM_Y_POINTS.into(),
    )?);
    let ncb = usize::from(fit::<u8>(
        "num_cb_points",
        fg.num_cb_points.into(),
        V4L2_AV1_MAX_NUM_CB_POINTS.into(),
    )?);
    let ncr = usize::from(fit::<u8>(
        "num_cr_points",
        fg.num_cr_points.into(),
        V4L2_AV1_MAX_NUM_CR_POINTS.into(),
    )?);
    g.num_y_points = ny as u8;
    g.point_y_value[..ny].copy_from_slice(&fg.point_y_value[..ny]);
    g.point_y_scaling[..ny].copy_from_slice(&fg.point_y_scaling[..ny]);
    g.num_cb_points = ncb as u8;
    g.point_cb_value[..ncb].copy_from_slice(&fg.point_cb_value[..ncb]);
    g.point_cb_scaling[..ncb].copy_from_slice(&fg.point_cb_scaling[..ncb]);
    g.num_cr_points = ncr as u8;
    g.point_cr_value[..ncr].copy_from_slice(&fg.point_cr_value[..ncr]);
    g.point_cr_scaling[..ncr].copy_from_slice(&fg.point_cr_scaling[..ncr]);
    g.grain_scaling_minus_8 = fg.grain_scaling_minus_8;
    g.ar_coeff_lag = fit("ar_coeff_lag", fg.ar_coeff_lag.into(), 3)?;
    let n = V4L2_AV1_AR_COEFFS_SIZE as usize;
    g.ar_coeffs_y_plus_128
        .copy_from_slice(&fg.ar_coeffs_y_plus_128[..n]);
    g.ar_coeffs_cb_plus_128
        .copy_from_slice(&fg.ar_coeffs_cb_plus_128[..n]);
    g.ar_coeffs_cr_plus_128
        .copy_from_slice(&fg.ar_coeffs_cr_plus_128[..n]);
    g.ar_coeff_shift_minus_6 = fg.ar_coeff_shift_minus_6;
    g.grain_scale_shift = fg.grain_scale_shift;
    g.cb_mult = fg.cb_mult;
    g.cb_luma_mult = fg.cb_luma_mult;
    g.cr_luma_mult = fg.cr_luma_mult;
    g.cb_offset = fg.cb_offset;
    g.cr_offset = fg.cr_offset;
    Ok(g)
}

/// Appends the `V4L2_CID_STATELESS_AV1_TILE_GROUP_ENTRY` entries of a tile group whose payload
/// (the tile group OBU's data after its header, i.e. what `TileGroupObu::obu` holds; for a
/// frame OBU, the part after the frame header) starts at byte `payload_offset` of the OUTPUT
/// buffer.
pub fn push_tile_group_entries(
    tg: &TileGroupObu,
    payload_offset: u32,
    out: &mut Vec<v4l2_ctrl_av1_tile_group_entry>,
) -> Result<(), ControlError> {
    let max = u64::from(V4L2_AV1_MAX_TILE_COUNT);
    for t in &tg.tiles {
        if out.len() as u64 >= max {
            return Err(ControlError::OutOfRange {
                field: "tile count",
                value: out.len() as u64 + 1,
                limit: max,
            });
        }
        let offset = u64::from(payload_offset) + u64::from(t.tile_offset);
        out.push(v4l2_ctrl_av1_tile_group_entry {
            tile_offset: fit("tile_offset", offset, u64::from(u32::MAX))?,
            tile_size: t.tile_size,
            tile_row: t.tile_row,
            tile_col: t.tile_col,
        });
    }
    Ok(())
}

/// Whether a frame header is a key frame shown through `show_existing_frame` (which refreshes
/// every slot, 7.21).
pub fn is_shown_key_frame(fh: &FrameHeaderObu) -> bool {
    fh.show_existing_frame && fh.frame_type == FrameType::KeyFrame
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::av1::walk::{Obus, TileFrames};
    use cros_codecs::codec::av1::parser::{ParsedObu, Parser};
    use std::path::PathBuf;

    fn vectors() -> Option<PathBuf> {
        crate::vectors::shared_subdir_or_skip("av1").and_then(|d| d.parent().map(PathBuf::from))
    }

    /// The frames of an IVF file (32-byte file header, 12-byte frame headers).
    fn ivf_frames(data: &[u8]) -> Vec<&[u8]> {
        let (_, frames) = crate::ivf::frames(data).unwrap();
        frames.into_iter().map(|(_, f)| f).collect()
    }

    struct Decoded {
        seq: v4l2_ctrl_av1_sequence,
        frames: Vec<(
            FrameHeaderObu,
            v4l2_ctrl_av1_frame,
            v4l2_ctrl_av1_film_grain,
        )>,
        tiles: Vec<Vec<v4l2_ctrl_av1_tile_group_entry>>,
    }

    /// Parses every OBU of an IVF stream and maps each decoded frame to its controls.
    fn map_stream(path: &std::path::Path) -> Decoded {
        let data = std::fs::read(path).unwrap();
        let mut parser = Parser::default();
        let mut seq_ctrl = None;
        let mut frames = Vec::new();
        let mut tiles = Vec::new();
        let ts = [0u64; 8];
        for tu in ivf_frames(&data) {
            // Payload offsets as if the whole temporal unit were the OUTPUT buffer.
            let mut assembly = TileFrames::default();
            let mut obus = Obus::new(&mut parser, tu);
            while let Some(obu) = obus.next() {
                let obu = obu.unwrap();
                if let ParsedObu::SequenceHeader(s) = &obu.parsed {
                    seq_ctrl = Some(sequence_control(s).unwrap());
                }
                let Some(frame) = assembly.push(obu, 0).unwrap() else {
                    continue;
                };
                let parser = obus.parser();
                let fh = &frame.header;
                let seq = parser.sequence_header.clone().unwrap();
                if fh.show_existing_frame {
                    assert!(matches!(
                        frame_control(&seq, fh, &ts),
                        Err(ControlError::ShowExistingFrame)
                    ));
                    parser.ref_frame_update(fh).unwrap();
                    continue;
                }
                let f = frame_control(&seq, fh, &ts).unwrap();
                let g = film_grain_control(fh, true).unwrap();
                parser.ref_frame_update(fh).unwrap();
                frames.push((frame.header, f, g));
                tiles.push(frame.tiles);
            }
        }
        Decoded {
            seq: seq_ctrl.unwrap(),
            frames,
            tiles,
        }
    }

    #[test]
    fn sbs_minus_1_rounds_up_partial_superblocks() {
        // 64x64 superblocks are 16 MI units.
        assert_eq!(sbs_minus_1(0, 16, 4), 0);
        assert_eq!(sbs_minus_1(0, 17, 4), 1);
        assert_eq!(sbs_minus_1(16, 80, 4), 3);
        // 128x128: 32 MI units.
        assert_eq!(sbs_minus_1(0, 44, 5), 1);
    }

    #[test]
    fn out_of_range_values_are_errors() {
        assert_eq!(
            fit::<u8>("x", 300, 255),
            Err(ControlError::OutOfRange {
                field: "x",
                value: 300,
                limit: 255
            })
        );
        assert_eq!(fit::<u8>("x", 7, 7), Ok(7));
    }

    #[test]
    fn basic_stream_maps_to_controls() {
        let Some(dir) = vectors() else { return };
        let d = map_stream(&dir.join("av1/cros-codecs/test-25fps.av1.ivf"));
        assert_eq!(d.seq.bit_depth, 8);
        assert_eq!(d.seq.seq_profile, 0);
        assert_eq!(
            (
                d.seq.max_frame_width_minus_1,
                d.seq.max_frame_height_minus_1
            ),
            (319, 239)
        );
        assert_ne!(d.seq.flags & V4L2_AV1_SEQUENCE_FLAG_SUBSAMPLING_X, 0);
        assert_eq!(d.frames.len(), d.tiles.len());
        assert!(d.frames.len() >= 250, "{} frames", d.frames.len());
        let (first, f0, _) = &d.frames[0];
        assert_eq!(f0.frame_type, V4L2_AV1_KEY_FRAME);
        assert_eq!(f0.refresh_frame_flags, 0xff);
        assert_eq!(
            (f0.frame_width_minus_1, f0.frame_height_minus_1),
            (319, 239)
        );
        assert_eq!(f0.upscaled_width, 320);
        assert_eq!(f0.superres_denom, 8);
        assert_eq!(f0.primary_ref_frame, 7);
        assert_eq!(
            f0.cdef.damping_minus_3,
            (first.cdef_params.cdef_damping - 3) as u8
        );
        let mut inter = 0;
        for ((fh, f, _), tiles) in d.frames.iter().zip(&d.tiles) {
            let ti = &f.tile_info;
            // The last tile ends at MiCols / MiRows, and the superblock widths cover it.
            assert_eq!(ti.mi_col_starts[usize::from(ti.tile_cols)], fh.mi_cols);
            assert_eq!(ti.mi_row_starts[usize::from(ti.tile_rows)], fh.mi_rows);
            let sbs: u32 = (0..usize::from(ti.tile_cols))
                .map(|i| ti.width_in_sbs_minus_1[i] + 1)
                .sum();
            let sb_mi = if d.seq.flags & V4L2_AV1_SEQUENCE_FLAG_USE_128X128_SUPERBLOCK != 0 {
                32
            } else {
                16
            };
            assert_eq!(sbs, fh.mi_cols.div_ceil(sb_mi));
            assert_eq!(
                tiles.len(),
                usize::from(ti.tile_cols) * usize::from(ti.tile_rows)
            );
            assert!(tiles.iter().all(|t| t.tile_size > 0));
            assert_eq!(f.refresh_frame_flags as u32, fh.refresh_frame_flags);
            if f.frame_type == V4L2_AV1_INTER_FRAME {
                inter += 1;
                for i in 0..REFS_PER_FRAME {
                    assert_eq!(f.ref_frame_idx[i] as u8, fh.ref_frame_idx[i]);
                    assert_eq!(f.order_hints[i + 1], fh.order_hints[i + 1]);
                }
                assert_eq!(
                    f.flags & V4L2_AV1_FRAME_FLAG_SKIP_MODE_ALLOWED != 0,
                    fh.skip_mode_frame[0] != 0
                );
                if f.flags & V4L2_AV1_FRAME_FLAG_SKIP_MODE_PRESENT != 0 {
                    assert_ne!(f.flags & V4L2_AV1_FRAME_FLAG_SKIP_MODE_ALLOWED, 0);
                }
            }
        }
        assert!(inter > 200);
    }

    #[test]
    fn film_grain_stream_maps_grain_and_apply_switch() {
        let Some(dir) = vectors() else { return };
        let d = map_stream(
            &dir.join("av1/dav1d-test-data/8-bit/film_grain/av1-1-b8-23-film_grain-50.ivf"),
        );
        assert_ne!(
            d.seq.flags & V4L2_AV1_SEQUENCE_FLAG_FILM_GRAIN_PARAMS_PRESENT,
            0
        );
        let mut with_grain = 0;
        for (fh, _, g) in &d.frames {
            let fg = &fh.film_grain_params;
            assert_eq!(
                u32::from(g.flags) & V4L2_AV1_FILM_GRAIN_FLAG_APPLY_GRAIN != 0,
                fg.apply_grain
            );
            if !fg.apply_grain {
                continue;
            }
            with_grain += 1;
            assert_ne!(
                u32::from(g.flags) & V4L2_AV1_FILM_GRAIN_FLAG_UPDATE_GRAIN,
                0
            );
            assert_eq!(g.grain_seed, fg.grain_seed);
            let n = usize::from(g.num_y_points);
            assert_eq!(&g.point_y_value[..n], &fg.point_y_value[..n]);
            assert_eq!(&g.point_y_scaling[..n], &fg.point_y_scaling[..n]);
            // Strictly increasing x coordinates (6.8.20) show the values are the values.
            assert!(g.point_y_value[..n].windows(2).all(|w| w[0] < w[1]));
            let off = film_grain_control(fh, false).unwrap();
            assert_eq!(
                u32::from(off.flags) & V4L2_AV1_FILM_GRAIN_FLAG_APPLY_GRAIN,
                0
            );
            assert_eq!(off.grain_seed, g.grain_seed);
        }
        assert!(with_grain > 0);
    }
}
