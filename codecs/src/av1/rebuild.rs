// SPDX-License-Identifier: GPL-2.0
//! V4L2 AV1 stateless controls → OBUs a software decoder accepts.
//!
//! A stateless client (GStreamer's `v4l2slav1dec`) queues only the tile-group payloads of a frame
//! and hands the sequence header and the frame header as parsed controls
//! (`V4L2_CID_STATELESS_AV1_SEQUENCE`, `…_FRAME`, `…_FILM_GRAIN`, `…_TILE_GROUP_ENTRY`). FFmpeg's
//! libdav1d wants OBUs, so this module writes them back:
//!
//! * a sequence header OBU (AV1 spec 5.5) from the SEQUENCE control;
//! * a frame header OBU (`uncompressed_header()`, 5.9) from FRAME + FILM_GRAIN + SEQUENCE;
//! * one tile group OBU (5.11.1, `tile_start_and_end_present_flag = 0`) re-packed from the tiles
//!   the TILE_GROUP_ENTRY entries locate in the OUTPUT buffer.
//!
//! The headers are *semantically* the same for the decoder, not bit-identical: explicit frame
//! sizes instead of `found_ref`, `frame_refs_short_signaling = 0` with explicit
//! `ref_frame_idx[]`, loop-filter deltas / segmentation data / film grain always sent in full
//! with their update flags set, no frame ids (`frame_id_numbers_present_flag = 0`: they only
//! detect lost frames), no operating points, timing or decoder model. What the decoder derives
//! from its own state is derived here the same way: `skipModeAllowed` from the order hints of
//! the references, global motion parameters coded relative to `PrevGmParams` (the parameters
//! saved with the `primary_ref_frame` slot, tracked by [`RefSlots`] across frames), the
//! `ref_order_hint[]` of error-resilient frames (the tracked order hint of every slot),
//! `CodedLossless` / `AllLossless` (which decide whether loop filter, CDEF and loop restoration
//! are coded) and the tile layout (`uniform_tile_spacing_flag` when the uniform layout
//! reproduces the control's tile starts, explicit sizes otherwise).
//!
//! Every field is validated; an inconsistent control is a [`RebuildError`], never a panic.

use crate::bits::BitWriter;
use crate::uapi::{
    v4l2_ctrl_av1_film_grain, v4l2_ctrl_av1_frame, v4l2_ctrl_av1_sequence,
    v4l2_ctrl_av1_tile_group_entry, V4L2_AV1_FILM_GRAIN_FLAG_APPLY_GRAIN,
    V4L2_AV1_FILM_GRAIN_FLAG_CHROMA_SCALING_FROM_LUMA,
    V4L2_AV1_FILM_GRAIN_FLAG_CLIP_TO_RESTRICTED_RANGE, V4L2_AV1_FILM_GRAIN_FLAG_OVERLAP,
    V4L2_AV1_FRAME_FLAG_ALLOW_HIGH_PRECISION_MV, V4L2_AV1_FRAME_FLAG_ALLOW_INTRABC,
    V4L2_AV1_FRAME_FLAG_ALLOW_SCREEN_CONTENT_TOOLS, V4L2_AV1_FRAME_FLAG_ALLOW_WARPED_MOTION,
    V4L2_AV1_FRAME_FLAG_DISABLE_CDF_UPDATE, V4L2_AV1_FRAME_FLAG_DISABLE_FRAME_END_UPDATE_CDF,
    V4L2_AV1_FRAME_FLAG_ERROR_RESILIENT_MODE, V4L2_AV1_FRAME_FLAG_FORCE_INTEGER_MV,
    V4L2_AV1_FRAME_FLAG_IS_MOTION_MODE_SWITCHABLE, V4L2_AV1_FRAME_FLAG_REDUCED_TX_SET,
    V4L2_AV1_FRAME_FLAG_REFERENCE_SELECT, V4L2_AV1_FRAME_FLAG_SHOWABLE_FRAME,
    V4L2_AV1_FRAME_FLAG_SHOW_FRAME, V4L2_AV1_FRAME_FLAG_SKIP_MODE_PRESENT,
    V4L2_AV1_FRAME_FLAG_USE_REF_FRAME_MVS, V4L2_AV1_FRAME_FLAG_USE_SUPERRES,
    V4L2_AV1_LOOP_FILTER_FLAG_DELTA_ENABLED, V4L2_AV1_LOOP_FILTER_FLAG_DELTA_LF_MULTI,
    V4L2_AV1_LOOP_FILTER_FLAG_DELTA_LF_PRESENT, V4L2_AV1_QUANTIZATION_FLAG_DELTA_Q_PRESENT,
    V4L2_AV1_QUANTIZATION_FLAG_DIFF_UV_DELTA, V4L2_AV1_QUANTIZATION_FLAG_USING_QMATRIX,
    V4L2_AV1_SEGMENTATION_FLAG_ENABLED, V4L2_AV1_SEGMENTATION_FLAG_TEMPORAL_UPDATE,
    V4L2_AV1_SEGMENTATION_FLAG_UPDATE_MAP, V4L2_AV1_SEQUENCE_FLAG_COLOR_RANGE,
    V4L2_AV1_SEQUENCE_FLAG_ENABLE_CDEF, V4L2_AV1_SEQUENCE_FLAG_ENABLE_DUAL_FILTER,
    V4L2_AV1_SEQUENCE_FLAG_ENABLE_FILTER_INTRA, V4L2_AV1_SEQUENCE_FLAG_ENABLE_INTERINTRA_COMPOUND,
    V4L2_AV1_SEQUENCE_FLAG_ENABLE_INTRA_EDGE_FILTER, V4L2_AV1_SEQUENCE_FLAG_ENABLE_JNT_COMP,
    V4L2_AV1_SEQUENCE_FLAG_ENABLE_MASKED_COMPOUND, V4L2_AV1_SEQUENCE_FLAG_ENABLE_ORDER_HINT,
    V4L2_AV1_SEQUENCE_FLAG_ENABLE_REF_FRAME_MVS, V4L2_AV1_SEQUENCE_FLAG_ENABLE_RESTORATION,
    V4L2_AV1_SEQUENCE_FLAG_ENABLE_SUPERRES, V4L2_AV1_SEQUENCE_FLAG_ENABLE_WARPED_MOTION,
    V4L2_AV1_SEQUENCE_FLAG_FILM_GRAIN_PARAMS_PRESENT, V4L2_AV1_SEQUENCE_FLAG_MONO_CHROME,
    V4L2_AV1_SEQUENCE_FLAG_SEPARATE_UV_DELTA_Q, V4L2_AV1_SEQUENCE_FLAG_STILL_PICTURE,
    V4L2_AV1_SEQUENCE_FLAG_SUBSAMPLING_X, V4L2_AV1_SEQUENCE_FLAG_SUBSAMPLING_Y,
    V4L2_AV1_SEQUENCE_FLAG_USE_128X128_SUPERBLOCK,
};

/// The result of the rebuilders: most write into a [`BitWriter`] and return nothing.
type Result<T = (), E = RebuildError> = core::result::Result<T, E>;

/// Why controls cannot be turned into OBUs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RebuildError {
    /// A field is out of its range or contradicts another.
    #[error("AV1 control field {field}: {why}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A tile lies outside the bitstream buffer, or the entries do not cover the frame.
    #[error("AV1 tile group entries: {0}")]
    Tiles(&'static str),
}

fn bad(field: &'static str, why: &'static str) -> RebuildError {
    RebuildError::Invalid { field, why }
}

use super::obu::{OBU_FRAME_HEADER, OBU_SEQUENCE_HEADER, OBU_TILE_GROUP};

const KEY_FRAME: u32 = 0;
const INTER_FRAME: u32 = 1;
const INTRA_ONLY_FRAME: u32 = 2;
const SWITCH_FRAME: u32 = 3;
const PRIMARY_REF_NONE: u8 = 7;
const NUM_REF_FRAMES: usize = 8;
const REFS_PER_FRAME: usize = 7;
const WARPEDMODEL_PREC_BITS: u32 = 16;
const MAX_TILE_COLS: u32 = 64;
const MAX_TILE_ROWS: u32 = 64;
const SEG_LVL_ALT_Q: usize = 0;
const SEGMENTATION_FEATURE_BITS: [u32; 8] = [8, 6, 6, 6, 6, 3, 0, 0];
const SEGMENTATION_FEATURE_SIGNED: [bool; 8] = [true, true, true, true, true, false, false, false];
const SEGMENTATION_FEATURE_MAX: [i32; 8] = [255, 63, 63, 63, 63, 7, 0, 0];

/// Identity global motion parameters (`gm_params` defaults, 7.20).
pub const DEFAULT_GM_PARAMS: [[i32; 6]; NUM_REF_FRAMES] = {
    let one = 1 << WARPEDMODEL_PREC_BITS;
    [[0, 0, one, 0, 0, one]; NUM_REF_FRAMES]
};

/// What the rebuilder needs to remember of one reference slot: the decoder state the next
/// frame headers are coded against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotState {
    /// `SavedGmParams[slot]`, indexed by reference frame (0 = intra, unused).
    pub gm_params: [[i32; 6]; NUM_REF_FRAMES],
    /// `RefOrderHint[slot]`.
    pub order_hint: u32,
    /// `RefFrameType[slot]`.
    pub frame_type: u32,
    /// Whether a frame was stored in the slot since the last reset.
    pub valid: bool,
}

impl Default for SlotState {
    fn default() -> Self {
        SlotState {
            gm_params: DEFAULT_GM_PARAMS,
            order_hint: 0,
            frame_type: KEY_FRAME,
            valid: false,
        }
    }
}

/// The reference slots as the decoder sees them, updated with every frame
/// ([`RefSlots::refresh`]); the global motion parameters and order hints of later frame
/// headers are coded against them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RefSlots {
    /// The eight slots.
    pub slots: [SlotState; NUM_REF_FRAMES],
}

impl RefSlots {
    /// Empty slots (a new stream).
    pub fn new() -> RefSlots {
        RefSlots::default()
    }

    /// Runs the reference update process (7.20) for a decoded frame: every slot in its
    /// `refresh_frame_flags` takes its global motion parameters and order hint.
    pub fn refresh(&mut self, frame: &v4l2_ctrl_av1_frame) {
        let intra = frame.frame_type == KEY_FRAME || frame.frame_type == INTRA_ONLY_FRAME;
        let gm = if intra {
            DEFAULT_GM_PARAMS
        } else {
            effective_gm_params(frame)
        };
        let flags = refresh_flags(frame);
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if flags & (1 << i) != 0 {
                *slot = SlotState {
                    gm_params: gm,
                    order_hint: frame.order_hint,
                    frame_type: frame.frame_type,
                    valid: true,
                };
            }
        }
    }

    /// The frame that a `show_existing_frame` of a key frame in `slot` re-activates: the
    /// reference refresh process loads it into every slot (7.21).
    pub fn show_existing_key(&mut self, slot: usize) {
        if let Some(&s) = self.slots.get(slot) {
            self.slots = [s; NUM_REF_FRAMES];
        }
    }
}

/// `refresh_frame_flags` as the decoder uses it (all slots for switch frames and shown key
/// frames).
pub fn refresh_flags(frame: &v4l2_ctrl_av1_frame) -> u8 {
    let show = frame.flags & V4L2_AV1_FRAME_FLAG_SHOW_FRAME != 0;
    if frame.frame_type == SWITCH_FRAME || (frame.frame_type == KEY_FRAME && show) {
        0xff
    } else {
        frame.refresh_frame_flags
    }
}

/// The global motion parameters of a frame as the decoder stores them: identity for references
/// without global motion, the derived terms of a ROTZOOM model filled in.
fn effective_gm_params(frame: &v4l2_ctrl_av1_frame) -> [[i32; 6]; NUM_REF_FRAMES] {
    let mut gm = DEFAULT_GM_PARAMS;
    let g = &frame.global_motion;
    #[allow(clippy::needless_range_loop)] // r indexes three arrays of the uAPI struct
    for r in 1..NUM_REF_FRAMES {
        match g.type_[r] {
            1 => {
                gm[r][0] = g.params[r][0];
                gm[r][1] = g.params[r][1];
            }
            2 => {
                gm[r] = g.params[r];
                gm[r][4] = -g.params[r][3];
                gm[r][5] = g.params[r][2];
            }
            3 => gm[r] = g.params[r],
            _ => {}
        }
    }
    gm
}

/// The controls of one frame, as the client set them.
#[derive(Clone, Copy)]
pub struct Controls<'a> {
    /// `V4L2_CID_STATELESS_AV1_SEQUENCE`.
    pub sequence: &'a v4l2_ctrl_av1_sequence,
    /// `V4L2_CID_STATELESS_AV1_FRAME`.
    pub frame: &'a v4l2_ctrl_av1_frame,
    /// `V4L2_CID_STATELESS_AV1_FILM_GRAIN` (absent: no film grain).
    pub film_grain: Option<&'a v4l2_ctrl_av1_film_grain>,
    /// `V4L2_CID_STATELESS_AV1_TILE_GROUP_ENTRY`, one per tile of the frame.
    pub tiles: &'a [v4l2_ctrl_av1_tile_group_entry],
}

/// Appends one OBU (header with `obu_has_size_field = 1`, no extension) to `out`.
pub fn put_obu(out: &mut Vec<u8>, obu_type: u8, payload: &[u8]) {
    out.push((obu_type & 0xf) << 3 | 0b10);
    super::obu::write_leb128(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// `trailing_bits()` (5.3.4): a one bit, then zeros up to the byte boundary.
fn trailing_bits(w: &mut BitWriter) {
    w.put_bool(true);
    w.align_zero();
}

/// `su(n)`: `value` as an `n`-bit two's complement number.
fn put_su(w: &mut BitWriter, n: u32, value: i32, field: &'static str) -> Result {
    let lim = 1i32 << (n - 1);
    if value < -lim || value >= lim {
        return Err(bad(field, "out of range"));
    }
    w.put(n, (value as u32) & ((1u32 << n) - 1));
    Ok(())
}

/// `f(n)` with a range check.
fn put_u(w: &mut BitWriter, n: u32, value: u32, field: &'static str) -> Result {
    if n < 32 && value >> n != 0 {
        return Err(bad(field, "does not fit its syntax element"));
    }
    w.put(n, value);
    Ok(())
}

/// Writes explicit tile sizes (`width_in_sbs_minus_1` / `height_in_sbs_minus_1`, 5.9.15): each
/// `ns`-coded against what is left of the `sbs` superblocks, at most `max_sbs`.
fn put_tile_sizes(
    w: &mut BitWriter,
    sizes: &[u32],
    sbs: u32,
    max_sbs: u32,
    what: &'static str,
) -> Result {
    let mut start = 0;
    for &size in sizes {
        put_ns(w, (sbs - start).min(max_sbs), size - 1, what)?;
        start += size;
    }
    Ok(())
}

/// `ns(n)` (4.10.7): `value` in `0..n`.
fn put_ns(w: &mut BitWriter, n: u32, value: u32, field: &'static str) -> Result {
    if value >= n {
        return Err(bad(field, "out of range"));
    }
    let bits = 32 - n.leading_zeros(); // FloorLog2(n) + 1
    let m = (1u32 << bits) - n;
    if value < m {
        w.put(bits - 1, value);
    } else {
        let v = value + m;
        w.put(bits - 1, v >> 1);
        w.put(1, v & 1);
    }
    Ok(())
}

/// `tile_log2(blkSize, target)` (5.9.15).
fn tile_log2(blk: u32, target: u32) -> u32 {
    let mut k = 0;
    while (blk << k) < target {
        k += 1;
    }
    k
}

/// The sequence-level facts frame headers depend on.
#[derive(Clone, Copy, Debug)]
struct Seq {
    profile: u8,
    bit_depth: u8,
    mono: bool,
    sub_x: bool,
    sub_y: bool,
    order_hint_bits: u32,
    enable_order_hint: bool,
    sb128: bool,
    frame_width_bits: u32,
    frame_height_bits: u32,
    flags: u32,
}

impl Seq {
    fn flag(&self, f: u32) -> bool {
        self.flags & f != 0
    }

    fn num_planes(&self) -> u32 {
        if self.mono {
            1
        } else {
            3
        }
    }

    fn from_control(s: &v4l2_ctrl_av1_sequence) -> Result<Seq> {
        let flag = |f: u32| s.flags & f != 0;
        if s.seq_profile > 2 {
            return Err(bad("seq_profile", "must be 0, 1 or 2"));
        }
        let mono = flag(V4L2_AV1_SEQUENCE_FLAG_MONO_CHROME);
        let (sub_x, sub_y) = (
            flag(V4L2_AV1_SEQUENCE_FLAG_SUBSAMPLING_X),
            flag(V4L2_AV1_SEQUENCE_FLAG_SUBSAMPLING_Y),
        );
        match (s.seq_profile, s.bit_depth) {
            (0 | 1, 8 | 10) | (2, 8 | 10 | 12) => {}
            _ => return Err(bad("bit_depth", "not allowed for the profile")),
        }
        let subsampling_ok = match s.seq_profile {
            0 => mono || (sub_x && sub_y),
            1 => !mono && !sub_x && !sub_y,
            _ => {
                mono || if s.bit_depth == 12 {
                    sub_x || !sub_y
                } else {
                    sub_x && !sub_y
                }
            }
        };
        if !subsampling_ok || (mono && !(sub_x && sub_y)) {
            return Err(bad("flags", "subsampling not allowed for the profile"));
        }
        if mono && s.seq_profile == 1 {
            return Err(bad("flags", "profile 1 cannot be monochrome"));
        }
        let enable_order_hint = flag(V4L2_AV1_SEQUENCE_FLAG_ENABLE_ORDER_HINT);
        let order_hint_bits = u32::from(s.order_hint_bits);
        if enable_order_hint && !(1..=8).contains(&order_hint_bits) {
            return Err(bad("order_hint_bits", "must be 1..=8 with order hints"));
        }
        if !enable_order_hint
            && (flag(V4L2_AV1_SEQUENCE_FLAG_ENABLE_JNT_COMP)
                || flag(V4L2_AV1_SEQUENCE_FLAG_ENABLE_REF_FRAME_MVS))
        {
            return Err(bad("flags", "jnt_comp / ref_frame_mvs need order hints"));
        }
        let bits = |m: u16| (16 - m.leading_zeros()).max(1);
        Ok(Seq {
            profile: s.seq_profile,
            bit_depth: s.bit_depth,
            mono,
            sub_x,
            sub_y,
            order_hint_bits: if enable_order_hint {
                order_hint_bits
            } else {
                0
            },
            enable_order_hint,
            sb128: flag(V4L2_AV1_SEQUENCE_FLAG_USE_128X128_SUPERBLOCK),
            frame_width_bits: bits(s.max_frame_width_minus_1),
            frame_height_bits: bits(s.max_frame_height_minus_1),
            flags: s.flags,
        })
    }
}

/// The sequence header OBU (5.5) for the SEQUENCE control: one operating point with all layers
/// (`operating_point_idc = 0`), no timing / decoder model info, no frame ids, screen content
/// tools and integer MV chosen per frame (`SELECT`: the frame header says what the FRAME control
/// says).
pub fn sequence_header_obu(seq: &v4l2_ctrl_av1_sequence, out: &mut Vec<u8>) -> Result {
    let s = Seq::from_control(seq)?;
    let mut w = BitWriter::new();
    w.put(3, u32::from(s.profile));
    w.put_bool(s.flag(V4L2_AV1_SEQUENCE_FLAG_STILL_PICTURE));
    w.put_bool(false); // reduced_still_picture_header
    w.put_bool(false); // timing_info_present_flag
    w.put_bool(false); // initial_display_delay_present_flag
    w.put(5, 0); // operating_points_cnt_minus_1
    w.put(12, 0); // operating_point_idc[0]
    w.put(5, 31); // seq_level_idx[0]: no level constraints
    w.put_bool(false); // seq_tier[0]
    w.put(4, s.frame_width_bits - 1);
    w.put(4, s.frame_height_bits - 1);
    w.put(s.frame_width_bits, u32::from(seq.max_frame_width_minus_1));
    w.put(s.frame_height_bits, u32::from(seq.max_frame_height_minus_1));
    w.put_bool(false); // frame_id_numbers_present_flag
    for f in [
        V4L2_AV1_SEQUENCE_FLAG_USE_128X128_SUPERBLOCK,
        V4L2_AV1_SEQUENCE_FLAG_ENABLE_FILTER_INTRA,
        V4L2_AV1_SEQUENCE_FLAG_ENABLE_INTRA_EDGE_FILTER,
        V4L2_AV1_SEQUENCE_FLAG_ENABLE_INTERINTRA_COMPOUND,
        V4L2_AV1_SEQUENCE_FLAG_ENABLE_MASKED_COMPOUND,
        V4L2_AV1_SEQUENCE_FLAG_ENABLE_WARPED_MOTION,
        V4L2_AV1_SEQUENCE_FLAG_ENABLE_DUAL_FILTER,
        V4L2_AV1_SEQUENCE_FLAG_ENABLE_ORDER_HINT,
    ] {
        w.put_bool(s.flag(f));
    }
    if s.enable_order_hint {
        w.put_bool(s.flag(V4L2_AV1_SEQUENCE_FLAG_ENABLE_JNT_COMP));
        w.put_bool(s.flag(V4L2_AV1_SEQUENCE_FLAG_ENABLE_REF_FRAME_MVS));
    }
    w.put_bool(true); // seq_choose_screen_content_tools -> SELECT
    w.put_bool(true); // seq_choose_integer_mv -> SELECT
    if s.enable_order_hint {
        w.put(3, s.order_hint_bits - 1);
    }
    w.put_bool(s.flag(V4L2_AV1_SEQUENCE_FLAG_ENABLE_SUPERRES));
    w.put_bool(s.flag(V4L2_AV1_SEQUENCE_FLAG_ENABLE_CDEF));
    w.put_bool(s.flag(V4L2_AV1_SEQUENCE_FLAG_ENABLE_RESTORATION));
    // color_config()
    w.put_bool(s.bit_depth > 8); // high_bitdepth
    if s.profile == 2 && s.bit_depth > 8 {
        w.put_bool(s.bit_depth == 12);
    }
    if s.profile != 1 {
        w.put_bool(s.mono);
    }
    w.put_bool(false); // color_description_present_flag
    let color_range = s.flag(V4L2_AV1_SEQUENCE_FLAG_COLOR_RANGE);
    if s.mono {
        w.put_bool(color_range);
    } else {
        w.put_bool(color_range);
        if s.profile == 2 && s.bit_depth == 12 {
            w.put_bool(s.sub_x);
            if s.sub_x {
                w.put_bool(s.sub_y);
            }
        }
        if s.sub_x && s.sub_y {
            w.put(2, 0); // chroma_sample_position: unknown
        }
        w.put_bool(s.flag(V4L2_AV1_SEQUENCE_FLAG_SEPARATE_UV_DELTA_Q));
    }
    w.put_bool(s.flag(V4L2_AV1_SEQUENCE_FLAG_FILM_GRAIN_PARAMS_PRESENT));
    trailing_bits(&mut w);
    put_obu(out, OBU_SEQUENCE_HEADER, w.bytes());
    Ok(())
}

/// Sizes derived from the FRAME control.
struct Dims {
    width: u32,
    upscaled_width: u32,
    height: u32,
    mi_cols: u32,
    mi_rows: u32,
}

/// The tile layout the frame header codes.
struct TileLayout {
    cols_log2: u32,
    rows_log2: u32,
}

/// Writes the frame header OBU (`uncompressed_header()` + `trailing_bits()`) for the controls
/// and returns nothing else; `tile_size_bytes` is the `TileSizeBytes` the tile group that
/// follows uses.
fn frame_header(
    c: &Controls<'_>,
    slots: &RefSlots,
    tile_size_bytes: u32,
    w: &mut BitWriter,
) -> Result<TileLayout> {
    let s = Seq::from_control(c.sequence)?;
    let f = c.frame;
    let flag = |x: u32| f.flags & x != 0;
    let frame_type = f.frame_type;
    if frame_type > SWITCH_FRAME {
        return Err(bad("frame_type", "unknown frame type"));
    }
    let intra = frame_type == KEY_FRAME || frame_type == INTRA_ONLY_FRAME;
    let show_frame = flag(V4L2_AV1_FRAME_FLAG_SHOW_FRAME);
    let showable_frame = if show_frame {
        frame_type != KEY_FRAME
    } else {
        flag(V4L2_AV1_FRAME_FLAG_SHOWABLE_FRAME)
    };
    let error_resilient = if frame_type == SWITCH_FRAME || (frame_type == KEY_FRAME && show_frame) {
        true
    } else {
        flag(V4L2_AV1_FRAME_FLAG_ERROR_RESILIENT_MODE)
    };
    let allow_sct = flag(V4L2_AV1_FRAME_FLAG_ALLOW_SCREEN_CONTENT_TOOLS);
    let force_integer_mv = intra || (allow_sct && flag(V4L2_AV1_FRAME_FLAG_FORCE_INTEGER_MV));

    w.put_bool(false); // show_existing_frame
    w.put(2, frame_type);
    w.put_bool(show_frame);
    if !show_frame {
        w.put_bool(showable_frame);
    }
    if !(frame_type == SWITCH_FRAME || (frame_type == KEY_FRAME && show_frame)) {
        w.put_bool(error_resilient);
    }
    w.put_bool(flag(V4L2_AV1_FRAME_FLAG_DISABLE_CDF_UPDATE));
    w.put_bool(allow_sct);
    if allow_sct {
        w.put_bool(flag(V4L2_AV1_FRAME_FLAG_FORCE_INTEGER_MV));
    }
    if frame_type != SWITCH_FRAME {
        w.put_bool(true); // frame_size_override_flag: sizes are always explicit
    }
    if s.enable_order_hint {
        put_u(w, s.order_hint_bits, f.order_hint, "order_hint")?;
    } else if f.order_hint != 0 {
        return Err(bad("order_hint", "set without order hints"));
    }
    let primary_ref_frame = if intra || error_resilient {
        PRIMARY_REF_NONE
    } else {
        if f.primary_ref_frame > PRIMARY_REF_NONE {
            return Err(bad("primary_ref_frame", "must be 0..=7"));
        }
        w.put(3, u32::from(f.primary_ref_frame));
        f.primary_ref_frame
    };
    let refresh = refresh_flags(f);
    if !(frame_type == SWITCH_FRAME || (frame_type == KEY_FRAME && show_frame)) {
        if frame_type == INTRA_ONLY_FRAME && refresh == 0xff {
            return Err(bad("refresh_frame_flags", "0xff on an intra-only frame"));
        }
        w.put(8, u32::from(refresh));
    }
    if (!intra || refresh != 0xff) && error_resilient && s.enable_order_hint {
        // ref_order_hint[]: what the decoder holds, so that no slot is invalidated.
        for slot in &slots.slots {
            w.put(
                s.order_hint_bits,
                slot.order_hint & ((1 << s.order_hint_bits) - 1),
            );
        }
    }

    // Sizes.
    let upscaled_width = f.upscaled_width;
    let width = f.frame_width_minus_1.saturating_add(1);
    let height = f.frame_height_minus_1.saturating_add(1);
    let use_superres = flag(V4L2_AV1_FRAME_FLAG_USE_SUPERRES);
    if use_superres && !s.flag(V4L2_AV1_SEQUENCE_FLAG_ENABLE_SUPERRES) {
        return Err(bad(
            "flags",
            "superres used but not enabled in the sequence",
        ));
    }
    let denom = if use_superres {
        u32::from(f.superres_denom)
    } else {
        8
    };
    if use_superres && !(9..=16).contains(&denom) {
        return Err(bad("superres_denom", "must be 9..=16"));
    }
    let up = if use_superres { upscaled_width } else { width };
    if up == 0 || up > (1 << s.frame_width_bits) || height > (1 << s.frame_height_bits) {
        return Err(bad(
            "frame_width_minus_1",
            "larger than the sequence allows",
        ));
    }
    if (up * 8 + denom / 2) / denom != width {
        return Err(bad(
            "upscaled_width",
            "does not match frame width and superres",
        ));
    }
    let dims = Dims {
        width,
        upscaled_width: up,
        height,
        mi_cols: 2 * ((width + 7) >> 3),
        mi_rows: 2 * ((height + 7) >> 3),
    };
    let frame_size = |w: &mut BitWriter| {
        w.put(s.frame_width_bits, dims.upscaled_width - 1);
        w.put(s.frame_height_bits, dims.height - 1);
        if s.flag(V4L2_AV1_SEQUENCE_FLAG_ENABLE_SUPERRES) {
            w.put_bool(use_superres);
            if use_superres {
                w.put(3, denom - 9);
            }
        }
        // render_size(): always explicit.
        w.put_bool(true);
        w.put(16, u32::from(f.render_width_minus_1));
        w.put(16, u32::from(f.render_height_minus_1));
    };
    let mut allow_intrabc = false;
    if intra {
        frame_size(w);
        if allow_sct && dims.upscaled_width == dims.width {
            allow_intrabc = flag(V4L2_AV1_FRAME_FLAG_ALLOW_INTRABC);
            w.put_bool(allow_intrabc);
        }
    } else {
        if s.enable_order_hint {
            w.put_bool(false); // frame_refs_short_signaling: explicit indices follow
        }
        for i in 0..REFS_PER_FRAME {
            let idx = f.ref_frame_idx[i];
            if !(0..8).contains(&idx) {
                return Err(bad("ref_frame_idx", "must be 0..=7"));
            }
            w.put(3, idx as u32);
        }
        if frame_type != SWITCH_FRAME && !error_resilient {
            w.put(7, 0); // found_ref = 0 for every reference: explicit size follows
        }
        frame_size(w);
        if !force_integer_mv {
            w.put_bool(flag(V4L2_AV1_FRAME_FLAG_ALLOW_HIGH_PRECISION_MV));
        }
        match f.interpolation_filter {
            4 => w.put_bool(true),
            i @ 0..=3 => {
                w.put_bool(false);
                w.put(2, i);
            }
            _ => return Err(bad("interpolation_filter", "unknown filter")),
        }
        w.put_bool(flag(V4L2_AV1_FRAME_FLAG_IS_MOTION_MODE_SWITCHABLE));
        if !error_resilient && s.flag(V4L2_AV1_SEQUENCE_FLAG_ENABLE_REF_FRAME_MVS) {
            w.put_bool(flag(V4L2_AV1_FRAME_FLAG_USE_REF_FRAME_MVS));
        }
    }
    if !flag(V4L2_AV1_FRAME_FLAG_DISABLE_CDF_UPDATE) {
        w.put_bool(flag(V4L2_AV1_FRAME_FLAG_DISABLE_FRAME_END_UPDATE_CDF));
    }

    let layout = tile_info(w, &s, f, &dims, tile_size_bytes)?;
    quantization_params(w, &s, f)?;
    segmentation_params(w, f, primary_ref_frame)?;
    let q = &f.quantization;
    let delta_q_present =
        q.base_q_idx > 0 && q.flags & V4L2_AV1_QUANTIZATION_FLAG_DELTA_Q_PRESENT as u8 != 0;
    if q.base_q_idx > 0 {
        w.put_bool(delta_q_present);
        if delta_q_present {
            put_u(w, 2, u32::from(q.delta_q_res), "delta_q_res")?;
        }
    }
    let lf = &f.loop_filter;
    let lf_flag = |x: u32| lf.flags & x as u8 != 0;
    if delta_q_present && !allow_intrabc {
        let present = lf_flag(V4L2_AV1_LOOP_FILTER_FLAG_DELTA_LF_PRESENT);
        w.put_bool(present);
        if present {
            put_u(w, 2, u32::from(lf.delta_lf_res), "delta_lf_res")?;
            w.put_bool(lf_flag(V4L2_AV1_LOOP_FILTER_FLAG_DELTA_LF_MULTI));
        }
    }
    let coded_lossless = coded_lossless(f);
    let all_lossless = coded_lossless && dims.width == dims.upscaled_width;
    if !(coded_lossless || allow_intrabc) {
        loop_filter_params(w, &s, f)?;
    }
    if !(coded_lossless || allow_intrabc || !s.flag(V4L2_AV1_SEQUENCE_FLAG_ENABLE_CDEF)) {
        cdef_params(w, &s, f)?;
    }
    if !(all_lossless || allow_intrabc || !s.flag(V4L2_AV1_SEQUENCE_FLAG_ENABLE_RESTORATION)) {
        lr_params(w, &s, f)?;
    }
    if !coded_lossless {
        match f.tx_mode {
            2 => w.put_bool(true),
            1 => w.put_bool(false),
            _ => return Err(bad("tx_mode", "ONLY_4X4 without lossless coding")),
        }
    }
    let reference_select = !intra && flag(V4L2_AV1_FRAME_FLAG_REFERENCE_SELECT);
    if !intra {
        w.put_bool(reference_select);
    }
    if skip_mode_allowed(&s, f, intra, reference_select) {
        w.put_bool(flag(V4L2_AV1_FRAME_FLAG_SKIP_MODE_PRESENT));
    } else if flag(V4L2_AV1_FRAME_FLAG_SKIP_MODE_PRESENT) {
        return Err(bad("flags", "skip mode present but not allowed"));
    }
    if !(intra || error_resilient || !s.flag(V4L2_AV1_SEQUENCE_FLAG_ENABLE_WARPED_MOTION)) {
        w.put_bool(flag(V4L2_AV1_FRAME_FLAG_ALLOW_WARPED_MOTION));
    }
    w.put_bool(flag(V4L2_AV1_FRAME_FLAG_REDUCED_TX_SET));
    if !intra {
        let prev = if primary_ref_frame == PRIMARY_REF_NONE {
            DEFAULT_GM_PARAMS
        } else {
            let slot = f.ref_frame_idx[usize::from(primary_ref_frame)] as usize;
            slots.slots[slot].gm_params
        };
        global_motion_params(w, f, &prev)?;
    }
    if s.flag(V4L2_AV1_SEQUENCE_FLAG_FILM_GRAIN_PARAMS_PRESENT) && (show_frame || showable_frame) {
        film_grain_params(w, &s, frame_type, c.film_grain)?;
    }
    Ok(layout)
}

fn tile_info(
    w: &mut BitWriter,
    s: &Seq,
    f: &v4l2_ctrl_av1_frame,
    d: &Dims,
    tile_size_bytes: u32,
) -> Result<TileLayout> {
    let t = &f.tile_info;
    let sb_shift = if s.sb128 { 5 } else { 4 };
    let sb_cols = (d.mi_cols + (1 << sb_shift) - 1) >> sb_shift;
    let sb_rows = (d.mi_rows + (1 << sb_shift) - 1) >> sb_shift;
    let sb_size = sb_shift + 2;
    let max_tile_width_sb = 4096 >> sb_size;
    let max_tile_area_sb = (4096 * 2304) >> (2 * sb_size);
    let min_log2_tile_cols = tile_log2(max_tile_width_sb, sb_cols);
    let max_log2_tile_cols = tile_log2(1, sb_cols.min(MAX_TILE_COLS));
    let max_log2_tile_rows = tile_log2(1, sb_rows.min(MAX_TILE_ROWS));
    let min_log2_tiles = min_log2_tile_cols.max(tile_log2(max_tile_area_sb, sb_rows * sb_cols));
    let (cols, rows) = (u32::from(t.tile_cols), u32::from(t.tile_rows));
    if cols == 0 || rows == 0 || cols > MAX_TILE_COLS || rows > MAX_TILE_ROWS {
        return Err(bad("tile_info", "tile_cols / tile_rows out of range"));
    }
    let col_starts = &t.mi_col_starts[..cols as usize];
    let row_starts = &t.mi_row_starts[..rows as usize];
    // Tile starts of a uniform layout with 2^log2 tiles over `sbs` superblocks.
    let uniform = |sbs: u32, log2: u32| -> Vec<u32> {
        let size = (sbs + (1 << log2) - 1) >> log2;
        (0..sbs)
            .step_by(size as usize)
            .map(|sb| sb << sb_shift)
            .collect()
    };
    let find_cols =
        (min_log2_tile_cols..=max_log2_tile_cols).find(|&k| uniform(sb_cols, k) == col_starts);
    let find_rows = find_cols.and_then(|kc| {
        let min_rows = min_log2_tiles.saturating_sub(kc);
        (min_rows..=max_log2_tile_rows.max(min_rows)).find(|&k| uniform(sb_rows, k) == row_starts)
    });
    let layout = if let (Some(kc), Some(kr)) = (find_cols, find_rows) {
        w.put_bool(true); // uniform_tile_spacing_flag
        for k in min_log2_tile_cols..max_log2_tile_cols {
            w.put_bool(k < kc);
            if k >= kc {
                break;
            }
        }
        let min_rows = min_log2_tiles.saturating_sub(kc);
        for k in min_rows..max_log2_tile_rows {
            w.put_bool(k < kr);
            if k >= kr {
                break;
            }
        }
        TileLayout {
            cols_log2: kc,
            rows_log2: kr,
        }
    } else {
        w.put_bool(false);
        let sizes = |starts: &[u32], sbs: u32| -> Result<Vec<u32>> {
            let mut out = Vec::with_capacity(starts.len());
            for (i, &st) in starts.iter().enumerate() {
                let end = starts.get(i + 1).map_or(sbs, |&e| e >> sb_shift);
                if st & ((1 << sb_shift) - 1) != 0 || (i == 0 && st != 0) || end <= st >> sb_shift {
                    return Err(bad("tile_info", "tile starts not increasing superblocks"));
                }
                out.push(end - (st >> sb_shift));
            }
            if (starts[starts.len() - 1] >> sb_shift) >= sbs {
                return Err(bad("tile_info", "tile starts beyond the frame"));
            }
            Ok(out)
        };
        let widths = sizes(col_starts, sb_cols)?;
        let heights = sizes(row_starts, sb_rows)?;
        put_tile_sizes(w, &widths, sb_cols, max_tile_width_sb, "tile width")?;
        let widest = widths.iter().copied().max().unwrap_or(1);
        let area = if min_log2_tiles > 0 {
            (sb_rows * sb_cols) >> (min_log2_tiles + 1)
        } else {
            sb_rows * sb_cols
        };
        let max_tile_height_sb = (area / widest).max(1);
        put_tile_sizes(w, &heights, sb_rows, max_tile_height_sb, "tile height")?;
        TileLayout {
            cols_log2: tile_log2(1, cols),
            rows_log2: tile_log2(1, rows),
        }
    };
    if layout.cols_log2 > 0 || layout.rows_log2 > 0 {
        let id = u32::from(t.context_update_tile_id);
        if id >= cols * rows {
            return Err(bad("context_update_tile_id", "not a tile of the frame"));
        }
        w.put(layout.rows_log2 + layout.cols_log2, id);
        w.put(2, tile_size_bytes - 1);
    } else if t.context_update_tile_id != 0 {
        return Err(bad("context_update_tile_id", "nonzero with one tile"));
    }
    Ok(layout)
}

fn quantization_params(w: &mut BitWriter, s: &Seq, f: &v4l2_ctrl_av1_frame) -> Result {
    let q = &f.quantization;
    let qf = |x: u32| q.flags & x as u8 != 0;
    w.put(8, u32::from(q.base_q_idx));
    let delta = |w: &mut BitWriter, v: i8, field| -> Result {
        w.put_bool(v != 0);
        if v != 0 {
            put_su(w, 7, i32::from(v), field)?;
        }
        Ok(())
    };
    delta(w, q.delta_q_y_dc, "delta_q_y_dc")?;
    let separate = s.flag(V4L2_AV1_SEQUENCE_FLAG_SEPARATE_UV_DELTA_Q);
    if s.num_planes() > 1 {
        let diff = qf(V4L2_AV1_QUANTIZATION_FLAG_DIFF_UV_DELTA);
        if diff && !separate {
            return Err(bad(
                "quantization",
                "diff_uv_delta without separate_uv_delta_q",
            ));
        }
        if separate {
            w.put_bool(diff);
        }
        delta(w, q.delta_q_u_dc, "delta_q_u_dc")?;
        delta(w, q.delta_q_u_ac, "delta_q_u_ac")?;
        if diff {
            delta(w, q.delta_q_v_dc, "delta_q_v_dc")?;
            delta(w, q.delta_q_v_ac, "delta_q_v_ac")?;
        } else if q.delta_q_v_dc != q.delta_q_u_dc || q.delta_q_v_ac != q.delta_q_u_ac {
            return Err(bad(
                "quantization",
                "V deltas differ from U without diff_uv_delta",
            ));
        }
    }
    let qm = qf(V4L2_AV1_QUANTIZATION_FLAG_USING_QMATRIX);
    w.put_bool(qm);
    if qm {
        put_u(w, 4, u32::from(q.qm_y), "qm_y")?;
        put_u(w, 4, u32::from(q.qm_u), "qm_u")?;
        if separate {
            put_u(w, 4, u32::from(q.qm_v), "qm_v")?;
        }
    }
    Ok(())
}

fn segmentation_params(
    w: &mut BitWriter,
    f: &v4l2_ctrl_av1_frame,
    primary_ref_frame: u8,
) -> Result {
    let sg = &f.segmentation;
    let sf = |x: u32| sg.flags & x as u8 != 0;
    let enabled = sf(V4L2_AV1_SEGMENTATION_FLAG_ENABLED);
    w.put_bool(enabled);
    if !enabled {
        return Ok(());
    }
    if primary_ref_frame != PRIMARY_REF_NONE {
        let update_map = sf(V4L2_AV1_SEGMENTATION_FLAG_UPDATE_MAP);
        w.put_bool(update_map);
        if update_map {
            w.put_bool(sf(V4L2_AV1_SEGMENTATION_FLAG_TEMPORAL_UPDATE));
        }
        w.put_bool(true); // segmentation_update_data: the full data follows
    }
    for seg in 0..8 {
        for j in 0..8 {
            let on = sg.feature_enabled[seg] & (1 << j) != 0;
            w.put_bool(on);
            if !on {
                continue;
            }
            let v = i32::from(sg.feature_data[seg][j]);
            let max = SEGMENTATION_FEATURE_MAX[j];
            let bits = SEGMENTATION_FEATURE_BITS[j];
            if SEGMENTATION_FEATURE_SIGNED[j] {
                if v < -max || v > max {
                    return Err(bad("segmentation feature_data", "out of range"));
                }
                put_su(w, 1 + bits, v, "segmentation feature_data")?;
            } else {
                if v < 0 || v > max {
                    return Err(bad("segmentation feature_data", "out of range"));
                }
                w.put(bits, v as u32);
            }
        }
    }
    Ok(())
}

/// `CodedLossless` (5.9.2): every segment's quantizer index is 0 and no DC/AC delta is set.
fn coded_lossless(f: &v4l2_ctrl_av1_frame) -> bool {
    let q = &f.quantization;
    if q.delta_q_y_dc != 0
        || q.delta_q_u_dc != 0
        || q.delta_q_u_ac != 0
        || q.delta_q_v_dc != 0
        || q.delta_q_v_ac != 0
    {
        return false;
    }
    let sg = &f.segmentation;
    let enabled = sg.flags & V4L2_AV1_SEGMENTATION_FLAG_ENABLED as u8 != 0;
    (0..8).all(|seg| {
        let qindex = if enabled && sg.feature_enabled[seg] & (1 << SEG_LVL_ALT_Q) != 0 {
            (i32::from(q.base_q_idx) + i32::from(sg.feature_data[seg][SEG_LVL_ALT_Q])).clamp(0, 255)
        } else {
            i32::from(q.base_q_idx)
        };
        qindex == 0
    })
}

fn loop_filter_params(w: &mut BitWriter, s: &Seq, f: &v4l2_ctrl_av1_frame) -> Result {
    let lf = &f.loop_filter;
    put_u(w, 6, u32::from(lf.level[0]), "loop_filter level")?;
    put_u(w, 6, u32::from(lf.level[1]), "loop_filter level")?;
    if s.num_planes() > 1 && (lf.level[0] != 0 || lf.level[1] != 0) {
        put_u(w, 6, u32::from(lf.level[2]), "loop_filter level")?;
        put_u(w, 6, u32::from(lf.level[3]), "loop_filter level")?;
    }
    put_u(w, 3, u32::from(lf.sharpness), "loop_filter sharpness")?;
    let enabled = lf.flags & V4L2_AV1_LOOP_FILTER_FLAG_DELTA_ENABLED as u8 != 0;
    w.put_bool(enabled);
    if enabled {
        w.put_bool(true); // loop_filter_delta_update: all deltas follow
        for &d in lf.ref_deltas.iter().chain(lf.mode_deltas.iter()) {
            w.put_bool(true);
            put_su(w, 7, i32::from(d), "loop_filter deltas")?;
        }
    }
    Ok(())
}

fn cdef_params(w: &mut BitWriter, s: &Seq, f: &v4l2_ctrl_av1_frame) -> Result {
    let cd = &f.cdef;
    put_u(w, 2, u32::from(cd.damping_minus_3), "cdef damping_minus_3")?;
    put_u(w, 2, u32::from(cd.bits), "cdef bits")?;
    // Secondary strengths are 0, 1, 2 or 4 (the coded 3 means 4).
    let sec = |v: u8| match v {
        0..=2 => Ok(u32::from(v)),
        4 => Ok(3),
        _ => Err(bad("cdef sec_strength", "must be 0, 1, 2 or 4")),
    };
    for i in 0..(1usize << cd.bits) {
        put_u(w, 4, u32::from(cd.y_pri_strength[i]), "cdef y_pri_strength")?;
        w.put(2, sec(cd.y_sec_strength[i])?);
        if s.num_planes() > 1 {
            put_u(
                w,
                4,
                u32::from(cd.uv_pri_strength[i]),
                "cdef uv_pri_strength",
            )?;
            w.put(2, sec(cd.uv_sec_strength[i])?);
        }
    }
    Ok(())
}

fn lr_params(w: &mut BitWriter, s: &Seq, f: &v4l2_ctrl_av1_frame) -> Result {
    let lr = &f.loop_restoration;
    let mut uses_lr = false;
    let mut uses_chroma_lr = false;
    for plane in 0..s.num_planes() as usize {
        // Remap_Lr_Type: coded 0 NONE, 1 SWITCHABLE, 2 WIENER, 3 SGRPROJ.
        let t = lr.frame_restoration_type[plane];
        let coded = match t {
            0 => 0,
            3 => 1,
            1 => 2,
            2 => 3,
            _ => return Err(bad("frame_restoration_type", "unknown type")),
        };
        w.put(2, coded);
        if t != 0 {
            uses_lr = true;
            uses_chroma_lr |= plane > 0;
        }
    }
    if !uses_lr {
        return Ok(());
    }
    let shift = match lr.loop_restoration_size[0] {
        64 => 0,
        128 => 1,
        256 => 2,
        _ => return Err(bad("loop_restoration_size", "must be 64, 128 or 256")),
    };
    if s.sb128 {
        if shift == 0 {
            return Err(bad("loop_restoration_size", "64 with 128x128 superblocks"));
        }
        w.put(1, shift - 1);
    } else {
        w.put_bool(shift > 0);
        if shift > 0 {
            w.put(1, shift - 1);
        }
    }
    if s.sub_x && s.sub_y && uses_chroma_lr {
        let size0 = lr.loop_restoration_size[0];
        let uv = match lr.loop_restoration_size[1] {
            x if x == size0 => false,
            x if x == size0 >> 1 => true,
            _ => return Err(bad("loop_restoration_size", "chroma size not luma or half")),
        };
        w.put_bool(uv);
    }
    Ok(())
}

fn skip_mode_allowed(
    s: &Seq,
    f: &v4l2_ctrl_av1_frame,
    intra: bool,
    reference_select: bool,
) -> bool {
    let bits = if s.enable_order_hint {
        s.order_hint_bits
    } else {
        0
    };
    skip_mode_frames(f, bits, intra, reference_select).is_some()
}

/// `SkipModeFrame[]` (5.9.22: `LAST_FRAME + i` of the two references skip mode uses) of a frame
/// whose `order_hint`, `order_hints[]` and `ref_frame_idx[]` are filled, under a sequence with
/// `order_hint_bits` bits of order hints (0: order hints disabled); `None` when
/// `skipModeAllowed` is 0.
pub fn skip_mode_frames(
    f: &v4l2_ctrl_av1_frame,
    order_hint_bits: u32,
    intra: bool,
    reference_select: bool,
) -> Option<[u8; 2]> {
    if intra || !reference_select || order_hint_bits == 0 {
        return None;
    }
    let bits = order_hint_bits;
    let dist = |a: u32, b: u32| -> i32 {
        let m = 1i32 << (bits - 1);
        let diff = a.wrapping_sub(b) as i32;
        (diff & (m - 1)) - (diff & m)
    };
    let hint = |i: usize| f.order_hints[i + 1];
    let mut forward: Option<(usize, u32)> = None;
    let mut backward: Option<(usize, u32)> = None;
    for i in 0..REFS_PER_FRAME {
        let r = hint(i);
        let d = dist(r, f.order_hint);
        if d < 0 {
            if forward.map_or(true, |(_, fh)| dist(r, fh) > 0) {
                forward = Some((i, r));
            }
        } else if d > 0 && backward.map_or(true, |(_, bh)| dist(r, bh) < 0) {
            backward = Some((i, r));
        }
    }
    let (fwd, fwd_hint) = forward?;
    let other = match backward {
        Some((b, _)) => b,
        None => {
            let mut second: Option<(usize, u32)> = None;
            for i in 0..REFS_PER_FRAME {
                let r = hint(i);
                if dist(r, fwd_hint) < 0 && second.map_or(true, |(_, sh)| dist(r, sh) > 0) {
                    second = Some((i, r));
                }
            }
            second?.0
        }
    };
    // LAST_FRAME is 1.
    Some([(fwd.min(other) + 1) as u8, (fwd.max(other) + 1) as u8])
}

/// Encodes `x` (in `0..mx`) so that `decode_unsigned_subexp_with_ref(mx, r)` returns it.
fn put_unsigned_subexp_with_ref(w: &mut BitWriter, mx: u32, r: u32, x: u32) {
    let recenter = |r: u32, x: u32| -> u32 {
        if x > 2 * r {
            x
        } else if x >= r {
            (x - r) << 1
        } else {
            ((r - x) << 1) - 1
        }
    };
    let v = if (r << 1) <= mx {
        recenter(r, x)
    } else {
        recenter(mx - 1 - r, mx - 1 - x)
    };
    // decode_subexp(mx) inverse.
    let (mut i, mut mk, k) = (0u32, 0u32, 3u32);
    loop {
        let b2 = if i > 0 { k + i - 1 } else { k };
        let a = 1u32 << b2;
        if mx <= mk + 3 * a {
            // ns(mx - mk); v >= mk here by construction.
            let _ = put_ns(w, mx - mk, v - mk, "global motion");
            return;
        }
        if v >= mk + a {
            w.put_bool(true); // subexp_more_bits
            i += 1;
            mk += a;
        } else {
            w.put_bool(false);
            w.put(b2, v - mk);
            return;
        }
    }
}

fn global_motion_params(
    w: &mut BitWriter,
    f: &v4l2_ctrl_av1_frame,
    prev: &[[i32; 6]; NUM_REF_FRAMES],
) -> Result {
    let g = &f.global_motion;
    let hp = f.flags & V4L2_AV1_FRAME_FLAG_ALLOW_HIGH_PRECISION_MV != 0;
    let gm = effective_gm_params(f);
    for rf in 1..NUM_REF_FRAMES {
        let ty = g.type_[rf];
        if ty > 3 {
            return Err(bad("global_motion type", "unknown warp model"));
        }
        w.put_bool(ty != 0); // is_global
        if ty != 0 {
            w.put_bool(ty == 2); // is_rot_zoom
            if ty != 2 {
                w.put_bool(ty == 1); // is_translation
            }
        }
        let mut idxs: [usize; 6] = [0; 6];
        let mut n = 0;
        if ty >= 2 {
            idxs[n] = 2;
            idxs[n + 1] = 3;
            n += 2;
            if ty == 3 {
                idxs[n] = 4;
                idxs[n + 1] = 5;
                n += 2;
            }
        }
        if ty >= 1 {
            idxs[n] = 0;
            idxs[n + 1] = 1;
            n += 2;
        }
        for &idx in &idxs[..n] {
            let (abs_bits, prec_bits) = if idx < 2 {
                if ty == 1 {
                    (9 - u32::from(!hp), 3 - u32::from(!hp))
                } else {
                    (12, 6)
                }
            } else {
                (12, 15)
            };
            let prec_diff = WARPEDMODEL_PREC_BITS - prec_bits;
            let round = if idx % 3 == 2 {
                1i32 << WARPEDMODEL_PREC_BITS
            } else {
                0
            };
            let sub = if idx % 3 == 2 { 1i32 << prec_bits } else { 0 };
            let mx = 1i32 << abs_bits;
            let r = (prev[rf][idx] >> prec_diff) - sub;
            let v = gm[rf][idx] - round;
            if v & ((1 << prec_diff) - 1) != 0 {
                return Err(bad("global_motion params", "not representable"));
            }
            let v = v >> prec_diff;
            if v < -mx || v > mx || r < -mx || r > mx {
                return Err(bad("global_motion params", "out of range"));
            }
            // decode_signed_subexp_with_ref(-mx, mx + 1, r)
            put_unsigned_subexp_with_ref(w, (2 * mx + 1) as u32, (r + mx) as u32, (v + mx) as u32);
        }
    }
    Ok(())
}

fn film_grain_params(
    w: &mut BitWriter,
    s: &Seq,
    frame_type: u32,
    fg: Option<&v4l2_ctrl_av1_film_grain>,
) -> Result {
    let apply = fg.is_some_and(|g| g.flags & V4L2_AV1_FILM_GRAIN_FLAG_APPLY_GRAIN as u8 != 0);
    w.put_bool(apply);
    let Some(g) = fg.filter(|_| apply) else {
        return Ok(());
    };
    let gf = |x: u32| g.flags & x as u8 != 0;
    w.put(16, u32::from(g.grain_seed));
    if frame_type == INTER_FRAME {
        w.put_bool(true); // update_grain: the full parameters follow
    }
    let points = |w: &mut BitWriter, n: u8, max: u8, v: &[u8], sc: &[u8]| {
        if n > max {
            return Err(bad("film grain", "too many scaling points"));
        }
        w.put(4, u32::from(n));
        for i in 0..usize::from(n) {
            if i > 0 && v[i] <= v[i - 1] {
                return Err(bad("film grain", "scaling points not increasing"));
            }
            w.put(8, u32::from(v[i]));
            w.put(8, u32::from(sc[i]));
        }
        Ok(())
    };
    points(w, g.num_y_points, 14, &g.point_y_value, &g.point_y_scaling)?;
    let csfl = !s.mono && gf(V4L2_AV1_FILM_GRAIN_FLAG_CHROMA_SCALING_FROM_LUMA);
    if !s.mono {
        w.put_bool(csfl);
    }
    let (num_cb, num_cr) = if s.mono || csfl || (s.sub_x && s.sub_y && g.num_y_points == 0) {
        (0, 0)
    } else {
        points(
            w,
            g.num_cb_points,
            10,
            &g.point_cb_value,
            &g.point_cb_scaling,
        )?;
        points(
            w,
            g.num_cr_points,
            10,
            &g.point_cr_value,
            &g.point_cr_scaling,
        )?;
        (g.num_cb_points, g.num_cr_points)
    };
    put_u(
        w,
        2,
        u32::from(g.grain_scaling_minus_8),
        "grain_scaling_minus_8",
    )?;
    put_u(w, 2, u32::from(g.ar_coeff_lag), "ar_coeff_lag")?;
    let lag = usize::from(g.ar_coeff_lag);
    let num_pos_luma = 2 * lag * (lag + 1);
    let num_pos_chroma = if g.num_y_points > 0 {
        for &c in &g.ar_coeffs_y_plus_128[..num_pos_luma] {
            w.put(8, u32::from(c));
        }
        num_pos_luma + 1
    } else {
        num_pos_luma
    };
    if csfl || num_cb > 0 {
        for &c in &g.ar_coeffs_cb_plus_128[..num_pos_chroma] {
            w.put(8, u32::from(c));
        }
    }
    if csfl || num_cr > 0 {
        for &c in &g.ar_coeffs_cr_plus_128[..num_pos_chroma] {
            w.put(8, u32::from(c));
        }
    }
    put_u(
        w,
        2,
        u32::from(g.ar_coeff_shift_minus_6),
        "ar_coeff_shift_minus_6",
    )?;
    put_u(w, 2, u32::from(g.grain_scale_shift), "grain_scale_shift")?;
    if num_cb > 0 {
        w.put(8, u32::from(g.cb_mult));
        w.put(8, u32::from(g.cb_luma_mult));
        put_u(w, 9, u32::from(g.cb_offset), "cb_offset")?;
    }
    if num_cr > 0 {
        w.put(8, u32::from(g.cr_mult));
        w.put(8, u32::from(g.cr_luma_mult));
        put_u(w, 9, u32::from(g.cr_offset), "cr_offset")?;
    }
    w.put_bool(gf(V4L2_AV1_FILM_GRAIN_FLAG_OVERLAP));
    w.put_bool(gf(V4L2_AV1_FILM_GRAIN_FLAG_CLIP_TO_RESTRICTED_RANGE));
    Ok(())
}

/// Re-packs the frame's tiles (located by the TILE_GROUP_ENTRY entries in `data`) into one
/// tile group OBU payload: `tile_size_minus_1` (`TileSizeBytes` bytes, little endian) before
/// every tile but the last. Returns `TileSizeBytes`.
fn tile_sizes(c: &Controls<'_>, data_len: usize) -> Result<u32> {
    let t = &c.frame.tile_info;
    let n = usize::from(t.tile_cols) * usize::from(t.tile_rows);
    if c.tiles.len() != n {
        return Err(RebuildError::Tiles(
            "entry count is not tile_cols * tile_rows",
        ));
    }
    let mut max = 0u32;
    for (i, e) in c.tiles.iter().enumerate() {
        let end = u64::from(e.tile_offset) + u64::from(e.tile_size);
        if e.tile_size == 0 || end > data_len as u64 {
            return Err(RebuildError::Tiles("a tile lies outside the buffer"));
        }
        if e.tile_row * u32::from(t.tile_cols) + e.tile_col != i as u32 {
            return Err(RebuildError::Tiles("entries not in tile raster order"));
        }
        if i + 1 < n {
            max = max.max(e.tile_size - 1);
        }
    }
    Ok(match max {
        0..=0xff => 1,
        0x100..=0xffff => 2,
        0x1_0000..=0xff_ffff => 3,
        _ => 4,
    })
}

/// What [`Rebuilder::rebuild`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rebuilt {
    /// `refresh_frame_flags` of the frame (all slots for shown key frames and switch frames).
    pub refresh_frame_flags: u8,
    /// Whether the frame is shown right away.
    pub show_frame: bool,
}

/// Rebuilds OBUs from controls, frame after frame, tracking the reference slots.
#[derive(Clone, Debug, Default)]
pub struct Rebuilder {
    slots: RefSlots,
    header: BitWriter,
    tiles: Vec<u8>,
}

impl Rebuilder {
    /// A rebuilder for a new stream.
    pub fn new() -> Rebuilder {
        Rebuilder::default()
    }

    /// Forgets all reference state (stream restart).
    pub fn reset(&mut self) {
        self.slots = RefSlots::new();
    }

    /// The tracked reference slots.
    pub fn slots(&self) -> &RefSlots {
        &self.slots
    }

    /// Mutable access to the tracked slots (e.g. a `show_existing_frame` of a key frame).
    pub fn slots_mut(&mut self) -> &mut RefSlots {
        &mut self.slots
    }

    /// Appends sequence header, frame header and tile group OBUs for one frame to `out`.
    /// `data` is the OUTPUT buffer the tile entries point into. The reference state is not
    /// updated; call [`Rebuilder::commit`] once the decoder accepted the frame.
    pub fn rebuild(&mut self, c: &Controls<'_>, data: &[u8], out: &mut Vec<u8>) -> Result<Rebuilt> {
        let tile_size_bytes = tile_sizes(c, data.len())?;
        sequence_header_obu(c.sequence, out)?;
        self.header = BitWriter::new();
        frame_header(c, &self.slots, tile_size_bytes, &mut self.header)?;
        trailing_bits(&mut self.header);
        put_obu(out, OBU_FRAME_HEADER, self.header.bytes());
        self.tiles.clear();
        let n = c.tiles.len();
        for (i, e) in c.tiles.iter().enumerate() {
            if n > 1 {
                if i == 0 {
                    // tile_start_and_end_present_flag = 0, then byte_alignment().
                    self.tiles.push(0);
                }
                if i + 1 < n {
                    let v = (e.tile_size - 1).to_le_bytes();
                    self.tiles.extend_from_slice(&v[..tile_size_bytes as usize]);
                }
            }
            let start = e.tile_offset as usize;
            self.tiles
                .extend_from_slice(&data[start..start + e.tile_size as usize]);
        }
        put_obu(out, OBU_TILE_GROUP, &self.tiles);
        Ok(Rebuilt {
            refresh_frame_flags: refresh_flags(c.frame),
            show_frame: c.frame.flags & V4L2_AV1_FRAME_FLAG_SHOW_FRAME != 0,
        })
    }

    /// Runs the reference update for the frame just rebuilt and decoded.
    pub fn commit(&mut self, frame: &v4l2_ctrl_av1_frame) {
        self.slots.refresh(frame);
    }
}

/// What a `show_existing_frame` frame header must carry besides the slot, for sequences that
/// have decoder model timing or frame ids (both `None` for the sequence header this module
/// writes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShowExistingExtras {
    /// `frame_presentation_time_length_minus_1 + 1` when `temporal_point_info()` is present
    /// (decoder model info without equal picture interval).
    pub presentation_time_bits: Option<u32>,
    /// `(idLen, display_frame_id)` when frame ids are present.
    pub frame_id: Option<(u32, u32)>,
}

/// Appends a frame header OBU with `show_existing_frame = 1` for reference slot `slot` (0..8):
/// the decoder outputs that slot's picture. Showing a key frame this way also reloads every
/// slot with it (7.21); callers that only want the picture must not feed it for key frames to
/// a decoder whose state matters.
pub fn show_existing_frame_obu(slot: u8, extras: ShowExistingExtras, out: &mut Vec<u8>) -> Result {
    if slot > 7 {
        return Err(bad("frame_to_show_map_idx", "must be 0..=7"));
    }
    let mut w = BitWriter::new();
    w.put_bool(true);
    w.put(3, u32::from(slot));
    if let Some(bits) = extras.presentation_time_bits {
        if !(1..=32).contains(&bits) {
            return Err(bad("frame_presentation_time_length", "must be 1..=32"));
        }
        w.put(bits, 0);
    }
    if let Some((bits, id)) = extras.frame_id {
        if !(1..=32).contains(&bits) {
            return Err(bad("frame id length", "must be 1..=32"));
        }
        put_u(&mut w, bits, id, "display_frame_id")?;
    }
    trailing_bits(&mut w);
    put_obu(out, OBU_FRAME_HEADER, w.bytes());
    Ok(())
}
