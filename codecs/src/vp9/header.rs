// SPDX-License-Identifier: GPL-2.0
//! The uncompressed frame header (VP9 specification, sections 6.2 and 7.2) and the state a
//! parser carries from frame to frame: loop filter deltas, segmentation parameters, the color
//! configuration of the stream and the sizes of the eight reference slots.

use super::bits::BitReader;
use super::ParseError;

/// Number of reference slots.
pub const NUM_REF_FRAMES: usize = 8;
/// Number of references an inter frame uses (last, golden, altref).
pub const REFS_PER_FRAME: usize = 3;
/// Number of segments.
pub const MAX_SEGMENTS: usize = 8;
/// Number of segment features.
pub const SEG_LVL_MAX: usize = 4;

const FRAME_SYNC_CODE: u32 = 0x49_83_42;
const CS_RGB: u8 = 7;
/// `color_space` of profile-0 intra-only frames (`CS_BT_601`).
const CS_BT_601: u8 = 2;

/// Interpolation filters, numbered as libvpx and `V4L2_VP9_INTERP_FILTER_*` number them.
pub mod interp {
    /// Regular 8-tap.
    pub const EIGHTTAP: u8 = 0;
    /// Smooth 8-tap.
    pub const EIGHTTAP_SMOOTH: u8 = 1;
    /// Sharp 8-tap.
    pub const EIGHTTAP_SHARP: u8 = 2;
    /// Bilinear.
    pub const BILINEAR: u8 = 3;
    /// Chosen per block.
    pub const SWITCHABLE: u8 = 4;
    /// `literal_to_type[]` (7.2.7): the coded 2-bit value to the filter.
    pub(crate) const LITERAL_TO_TYPE: [u8; 4] =
        [EIGHTTAP_SMOOTH, EIGHTTAP, EIGHTTAP_SHARP, BILINEAR];
}

/// Loop filter parameters (6.2.8) as they apply to the frame: the deltas are the persistent
/// values after this frame's updates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoopFilter {
    /// `loop_filter_level`.
    pub level: u8,
    /// `loop_filter_sharpness`.
    pub sharpness: u8,
    /// `loop_filter_delta_enabled`.
    pub delta_enabled: bool,
    /// `loop_filter_delta_update`.
    pub delta_update: bool,
    /// `loop_filter_ref_deltas[4]`.
    pub ref_deltas: [i8; 4],
    /// `loop_filter_mode_deltas[2]`.
    pub mode_deltas: [i8; 2],
}

/// Quantization parameters (6.2.9).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quantization {
    /// `base_q_idx`.
    pub base_q_idx: u8,
    /// `delta_q_y_dc`.
    pub delta_q_y_dc: i8,
    /// `delta_q_uv_dc`.
    pub delta_q_uv_dc: i8,
    /// `delta_q_uv_ac`.
    pub delta_q_uv_ac: i8,
}

impl Quantization {
    /// `Lossless` (7.2.9).
    pub fn lossless(&self) -> bool {
        self.base_q_idx == 0
            && self.delta_q_y_dc == 0
            && self.delta_q_uv_dc == 0
            && self.delta_q_uv_ac == 0
    }
}

/// Segmentation parameters (6.2.11) as they apply to the frame (feature data persist across
/// frames until updated or reset).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segmentation {
    /// `segmentation_enabled`.
    pub enabled: bool,
    /// `segmentation_update_map`.
    pub update_map: bool,
    /// `segmentation_tree_probs[7]` (255 when not coded; meaningful with `update_map`).
    pub tree_probs: [u8; 7],
    /// `segmentation_temporal_update` (false without `update_map`).
    pub temporal_update: bool,
    /// `segmentation_pred_prob[3]` (255 when not coded).
    pub pred_probs: [u8; 3],
    /// `segmentation_update_data`.
    pub update_data: bool,
    /// `segmentation_abs_or_delta_update` (persistent).
    pub abs_or_delta_update: bool,
    /// `FeatureEnabled[segment]` as a bit mask over `SEG_LVL_*`.
    pub feature_enabled: [u8; MAX_SEGMENTS],
    /// `FeatureData[segment][feature]`.
    pub feature_data: [[i16; SEG_LVL_MAX]; MAX_SEGMENTS],
}

/// One parsed frame header. For `show_existing_frame` only `profile`,
/// `frame_to_show_map_idx` and the size fields (those of the shown slot) are meaningful.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrameHeader {
    /// `Profile` (0..3).
    pub profile: u8,
    /// `show_existing_frame`.
    pub show_existing_frame: bool,
    /// `frame_to_show_map_idx`.
    pub frame_to_show_map_idx: u8,
    /// `frame_type == KEY_FRAME`.
    pub key_frame: bool,
    /// `show_frame`.
    pub show_frame: bool,
    /// `error_resilient_mode`.
    pub error_resilient_mode: bool,
    /// `intra_only`.
    pub intra_only: bool,
    /// `reset_frame_context` as coded (0..3).
    pub reset_frame_context: u8,
    /// `BitDepth` (8, 10 or 12).
    pub bit_depth: u8,
    /// `color_space`.
    pub color_space: u8,
    /// `color_range` (true: full swing).
    pub color_range_full: bool,
    /// `subsampling_x`.
    pub subsampling_x: bool,
    /// `subsampling_y`.
    pub subsampling_y: bool,
    /// `refresh_frame_flags`.
    pub refresh_frame_flags: u8,
    /// `ref_frame_idx[3]` (last, golden, altref).
    pub ref_frame_idx: [u8; REFS_PER_FRAME],
    /// `ref_frame_sign_bias[LAST_FRAME + i]` for last, golden, altref.
    pub ref_frame_sign_bias: [bool; REFS_PER_FRAME],
    /// `FrameWidth`.
    pub width: u32,
    /// `FrameHeight`.
    pub height: u32,
    /// `RenderWidth`.
    pub render_width: u32,
    /// `RenderHeight`.
    pub render_height: u32,
    /// `allow_high_precision_mv`.
    pub allow_high_precision_mv: bool,
    /// `interpolation_filter` (see [`interp`]).
    pub interpolation_filter: u8,
    /// `refresh_frame_context`.
    pub refresh_frame_context: bool,
    /// `frame_parallel_decoding_mode`.
    pub frame_parallel_decoding_mode: bool,
    /// `frame_context_idx` as coded (the decoding process uses 0 for intra and
    /// error-resilient frames, V4L2 drivers apply that themselves).
    pub frame_context_idx: u8,
    /// Loop filter.
    pub lf: LoopFilter,
    /// Quantization.
    pub quant: Quantization,
    /// Segmentation.
    pub seg: Segmentation,
    /// `tile_cols_log2`.
    pub tile_cols_log2: u8,
    /// `tile_rows_log2`.
    pub tile_rows_log2: u8,
    /// `header_size_in_bytes`: size of the compressed header.
    pub compressed_header_size: u16,
    /// Size of the uncompressed header in bytes (including the trailing bits).
    pub uncompressed_header_size: u16,
}

impl FrameHeader {
    /// `FrameIsIntra`.
    pub fn is_intra(&self) -> bool {
        self.key_frame || self.intra_only
    }
}

/// What the parser remembers of a reference slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotInfo {
    /// Width of the frame in the slot.
    pub width: u32,
    /// Height of the frame in the slot.
    pub height: u32,
    /// Bit depth of the frame in the slot.
    pub bit_depth: u8,
}

/// `color_config()` (6.2.2): what a key frame or an intra-only frame sets for the frames after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColorConfig {
    /// `BitDepth` (8, 10 or 12).
    pub bit_depth: u8,
    /// `color_space`.
    pub color_space: u8,
    /// `color_range` (true: full swing).
    pub color_range_full: bool,
    /// `subsampling_x`.
    pub subsampling_x: bool,
    /// `subsampling_y`.
    pub subsampling_y: bool,
}

impl Default for ColorConfig {
    /// What a parser assumes before the first key frame: 8-bit.
    fn default() -> Self {
        ColorConfig {
            bit_depth: 8,
            color_space: 0,
            color_range_full: false,
            subsampling_x: false,
            subsampling_y: false,
        }
    }
}

impl ColorConfig {
    /// What a profile-0 intra-only frame, which codes no `color_config()`, uses (6.2: 8-bit
    /// BT.601 4:2:0, studio swing).
    const PROFILE_0_INTRA_ONLY: ColorConfig = ColorConfig {
        bit_depth: 8,
        color_space: CS_BT_601,
        color_range_full: false,
        subsampling_x: true,
        subsampling_y: true,
    };

    /// Reads `color_config()` for `profile`.
    fn read(r: &mut BitReader<'_>, profile: u8) -> Result<Self, ParseError> {
        let bit_depth = if profile < 2 {
            8
        } else if r.bit()? {
            12
        } else {
            10
        };
        let color_space = r.bits_u8(3)?;
        let four_four_four = profile == 1 || profile == 3;
        let (color_range_full, subsampling_x, subsampling_y) = if color_space != CS_RGB {
            let range = r.bit()?;
            if four_four_four {
                let (x, y) = (r.bit()?, r.bit()?);
                if r.bit()? {
                    return Err(ParseError::Invalid("reserved_zero after subsampling is 1"));
                }
                (range, x, y)
            } else {
                (range, true, true)
            }
        } else if four_four_four {
            if r.bit()? {
                return Err(ParseError::Invalid("reserved_zero after color space is 1"));
            }
            (true, false, false)
        } else {
            return Err(ParseError::Invalid("RGB in profile 0 or 2"));
        };
        Ok(ColorConfig {
            bit_depth,
            color_space,
            color_range_full,
            subsampling_x,
            subsampling_y,
        })
    }
}

/// The start of an uncompressed header (6.2), everything before the frame size. It depends on
/// no earlier frame, so it parses any frame on its own: what a decoder handed one frame at a
/// time needs (the daemon: the slots a hidden frame refreshes, the bit depth of intra frames);
/// [`HeaderParser::parse`] goes on from it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameStart {
    /// `Profile` (0..3).
    pub profile: u8,
    /// `frame_to_show_map_idx` when `show_existing_frame` is set (the header ends there).
    pub show_existing_frame: Option<u8>,
    /// `frame_type == KEY_FRAME`.
    pub key_frame: bool,
    /// `show_frame`.
    pub show_frame: bool,
    /// `error_resilient_mode`.
    pub error_resilient_mode: bool,
    /// `intra_only`.
    pub intra_only: bool,
    /// `reset_frame_context` as coded (0..3).
    pub reset_frame_context: u8,
    /// The color configuration a key frame or intra-only frame sets; `None` for inter frames
    /// (and `show_existing_frame`), which keep the stream's.
    pub color: Option<ColorConfig>,
    /// `refresh_frame_flags` (all slots for key frames).
    pub refresh_frame_flags: u8,
}

impl FrameStart {
    /// Parses the start of the uncompressed header at the start of `data` (one frame).
    pub fn parse(data: &[u8]) -> Result<Self, ParseError> {
        Self::read(&mut BitReader::new(data))
    }

    /// The reference slot whose picture is this frame's, for a hidden frame: the lowest slot
    /// it refreshes (`None` if it refreshes none).
    pub fn refreshed_slot(&self) -> Option<u8> {
        (self.refresh_frame_flags != 0).then(|| self.refresh_frame_flags.trailing_zeros() as u8)
    }

    fn read(r: &mut BitReader<'_>) -> Result<Self, ParseError> {
        let mut f = FrameStart::default();
        if r.bits(2)? != 2 {
            return Err(ParseError::Invalid("frame_marker is not 2"));
        }
        let low = r.bits_u8(1)?;
        let high = r.bits_u8(1)?;
        f.profile = (high << 1) | low;
        if f.profile == 3 && r.bit()? {
            return Err(ParseError::Unsupported("reserved bit after profile 3 set"));
        }
        if r.bit()? {
            f.show_existing_frame = Some(r.bits_u8(3)?);
            return Ok(f);
        }
        f.key_frame = !r.bit()?;
        f.show_frame = r.bit()?;
        f.error_resilient_mode = r.bit()?;
        if f.key_frame {
            sync_code(r)?;
            f.color = Some(ColorConfig::read(r, f.profile)?);
            f.refresh_frame_flags = 0xff;
            return Ok(f);
        }
        f.intra_only = if f.show_frame { false } else { r.bit()? };
        f.reset_frame_context = if f.error_resilient_mode {
            0
        } else {
            r.bits_u8(2)?
        };
        if f.intra_only {
            sync_code(r)?;
            f.color = Some(if f.profile > 0 {
                ColorConfig::read(r, f.profile)?
            } else {
                ColorConfig::PROFILE_0_INTRA_ONLY
            });
        }
        f.refresh_frame_flags = r.bits_u8(8)?;
        Ok(f)
    }
}

/// The state of the header parser between frames.
#[derive(Clone, Debug, Default)]
pub struct HeaderParser {
    color: ColorConfig,
    lf_ref_deltas: [i8; 4],
    lf_mode_deltas: [i8; 2],
    seg: Segmentation,
    slots: [Option<SlotInfo>; NUM_REF_FRAMES],
}

impl HeaderParser {
    /// A parser for a new stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// The reference slots as the frames parsed so far left them.
    pub fn slots(&self) -> &[Option<SlotInfo>; NUM_REF_FRAMES] {
        &self.slots
    }

    /// Parses the uncompressed header at the start of `data` (one frame, superframes already
    /// split) and updates the parser state (including the reference slot sizes).
    pub fn parse(&mut self, data: &[u8]) -> Result<FrameHeader, ParseError> {
        let mut r = BitReader::new(data);
        let start = FrameStart::read(&mut r)?;
        let mut h = FrameHeader {
            profile: start.profile,
            key_frame: start.key_frame,
            show_frame: start.show_frame,
            error_resilient_mode: start.error_resilient_mode,
            intra_only: start.intra_only,
            reset_frame_context: start.reset_frame_context,
            refresh_frame_flags: start.refresh_frame_flags,
            ..FrameHeader::default()
        };

        if let Some(idx) = start.show_existing_frame {
            h.show_existing_frame = true;
            h.frame_to_show_map_idx = idx;
            let slot = self.slots[usize::from(idx)].ok_or(ParseError::Invalid(
                "show_existing_frame of an empty reference slot",
            ))?;
            h.width = slot.width;
            h.height = slot.height;
            h.render_width = slot.width;
            h.render_height = slot.height;
            h.bit_depth = slot.bit_depth;
            h.uncompressed_header_size = header_bytes(&r)?;
            return Ok(h);
        }
        if let Some(color) = start.color {
            self.color = color;
        }

        if h.is_intra() {
            frame_size(&mut r, &mut h)?;
            render_size(&mut r, &mut h)?;
        } else {
            for i in 0..REFS_PER_FRAME {
                h.ref_frame_idx[i] = r.bits_u8(3)?;
                h.ref_frame_sign_bias[i] = r.bit()?;
            }
            self.frame_size_with_refs(&mut r, &mut h)?;
            h.allow_high_precision_mv = r.bit()?;
            h.interpolation_filter = if r.bit()? {
                interp::SWITCHABLE
            } else {
                interp::LITERAL_TO_TYPE[usize::from(r.bits_u8(2)?)]
            };
        }
        h.bit_depth = self.color.bit_depth;
        h.color_space = self.color.color_space;
        h.color_range_full = self.color.color_range_full;
        h.subsampling_x = self.color.subsampling_x;
        h.subsampling_y = self.color.subsampling_y;

        if h.error_resilient_mode {
            h.frame_parallel_decoding_mode = true;
        } else {
            h.refresh_frame_context = r.bit()?;
            h.frame_parallel_decoding_mode = r.bit()?;
        }
        h.frame_context_idx = r.bits_u8(2)?;
        if h.is_intra() || h.error_resilient_mode {
            self.setup_past_independence();
        }

        self.loop_filter_params(&mut r, &mut h)?;
        quantization_params(&mut r, &mut h)?;
        self.segmentation_params(&mut r)?;
        h.seg = self.seg;
        tile_info(&mut r, &mut h)?;
        // Checked above by `frame_size`: at most 65536 x 65536.
        h.compressed_header_size = r.bits(16)? as u16;
        if h.compressed_header_size == 0 {
            return Err(ParseError::Invalid("header_size_in_bytes is 0"));
        }
        h.uncompressed_header_size = header_bytes(&r)?;

        let slot = SlotInfo {
            width: h.width,
            height: h.height,
            bit_depth: h.bit_depth,
        };
        for (i, s) in self.slots.iter_mut().enumerate() {
            if h.refresh_frame_flags & (1 << i) != 0 {
                *s = Some(slot);
            }
        }
        Ok(h)
    }

    fn frame_size_with_refs(
        &mut self,
        r: &mut BitReader<'_>,
        h: &mut FrameHeader,
    ) -> Result<(), ParseError> {
        let mut found = false;
        for i in 0..REFS_PER_FRAME {
            if r.bit()? {
                let slot = self.slots[usize::from(h.ref_frame_idx[i])].ok_or(
                    ParseError::Invalid("frame size from an empty reference slot"),
                )?;
                h.width = slot.width;
                h.height = slot.height;
                found = true;
                break;
            }
        }
        if !found {
            frame_size(r, h)?;
        }
        render_size(r, h)
    }

    /// `setup_past_independence()`, the parts the header parser keeps.
    fn setup_past_independence(&mut self) {
        self.seg.feature_data = Default::default();
        self.seg.feature_enabled = Default::default();
        self.seg.abs_or_delta_update = false;
        self.lf_ref_deltas = [1, 0, -1, -1];
        self.lf_mode_deltas = [0, 0];
    }

    fn loop_filter_params(
        &mut self,
        r: &mut BitReader<'_>,
        h: &mut FrameHeader,
    ) -> Result<(), ParseError> {
        let lf = &mut h.lf;
        lf.level = r.bits_u8(6)?;
        lf.sharpness = r.bits_u8(3)?;
        lf.delta_enabled = r.bit()?;
        if lf.delta_enabled {
            lf.delta_update = r.bit()?;
            if lf.delta_update {
                for d in &mut self.lf_ref_deltas {
                    if r.bit()? {
                        *d = r.signed(6)?;
                    }
                }
                for d in &mut self.lf_mode_deltas {
                    if r.bit()? {
                        *d = r.signed(6)?;
                    }
                }
            }
        }
        lf.ref_deltas = self.lf_ref_deltas;
        lf.mode_deltas = self.lf_mode_deltas;
        Ok(())
    }

    fn segmentation_params(&mut self, r: &mut BitReader<'_>) -> Result<(), ParseError> {
        const FEATURE_BITS: [u32; SEG_LVL_MAX] = [8, 6, 2, 0];
        const FEATURE_SIGNED: [bool; SEG_LVL_MAX] = [true, true, false, false];

        let seg = &mut self.seg;
        seg.update_map = false;
        seg.temporal_update = false;
        seg.update_data = false;
        seg.enabled = r.bit()?;
        if !seg.enabled {
            return Ok(());
        }
        seg.update_map = r.bit()?;
        if seg.update_map {
            for p in &mut seg.tree_probs {
                *p = read_prob(r)?;
            }
            seg.temporal_update = r.bit()?;
            for p in &mut seg.pred_probs {
                *p = if seg.temporal_update {
                    read_prob(r)?
                } else {
                    255
                };
            }
        }
        seg.update_data = r.bit()?;
        if seg.update_data {
            seg.abs_or_delta_update = r.bit()?;
            for i in 0..MAX_SEGMENTS {
                seg.feature_enabled[i] = 0;
                for j in 0..SEG_LVL_MAX {
                    let mut value = 0i16;
                    if r.bit()? {
                        seg.feature_enabled[i] |= 1 << j;
                        // At most 8 bits.
                        value = r.bits(FEATURE_BITS[j])? as i16;
                        if FEATURE_SIGNED[j] && r.bit()? {
                            value = -value;
                        }
                    }
                    seg.feature_data[i][j] = value;
                }
            }
        }
        Ok(())
    }
}

fn sync_code(r: &mut BitReader<'_>) -> Result<(), ParseError> {
    if r.bits(24)? != FRAME_SYNC_CODE {
        return Err(ParseError::Invalid("bad frame sync code"));
    }
    Ok(())
}

fn frame_size(r: &mut BitReader<'_>, h: &mut FrameHeader) -> Result<(), ParseError> {
    h.width = r.bits(16)? + 1;
    h.height = r.bits(16)? + 1;
    Ok(())
}

fn render_size(r: &mut BitReader<'_>, h: &mut FrameHeader) -> Result<(), ParseError> {
    if r.bit()? {
        h.render_width = r.bits(16)? + 1;
        h.render_height = r.bits(16)? + 1;
    } else {
        h.render_width = h.width;
        h.render_height = h.height;
    }
    Ok(())
}

fn quantization_params(r: &mut BitReader<'_>, h: &mut FrameHeader) -> Result<(), ParseError> {
    fn delta_q(r: &mut BitReader<'_>) -> Result<i8, ParseError> {
        Ok(if r.bit()? { r.signed(4)? } else { 0 })
    }
    h.quant.base_q_idx = r.bits_u8(8)?;
    h.quant.delta_q_y_dc = delta_q(r)?;
    h.quant.delta_q_uv_dc = delta_q(r)?;
    h.quant.delta_q_uv_ac = delta_q(r)?;
    Ok(())
}

fn read_prob(r: &mut BitReader<'_>) -> Result<u8, ParseError> {
    Ok(if r.bit()? { r.bits_u8(8)? } else { 255 })
}

fn tile_info(r: &mut BitReader<'_>, h: &mut FrameHeader) -> Result<(), ParseError> {
    let mi_cols = (h.width + 7) >> 3;
    let sb64_cols = (mi_cols + 7) >> 3;
    let mut min_log2 = 0u8;
    while (64u32 << min_log2) < sb64_cols {
        min_log2 += 1;
    }
    let mut max_log2 = 1u8;
    while (sb64_cols >> max_log2) >= 4 {
        max_log2 += 1;
    }
    max_log2 -= 1;
    h.tile_cols_log2 = min_log2;
    while h.tile_cols_log2 < max_log2 && r.bit()? {
        h.tile_cols_log2 += 1;
    }
    h.tile_rows_log2 = r.bits_u8(1)?;
    if h.tile_rows_log2 == 1 {
        h.tile_rows_log2 += r.bits_u8(1)?;
    }
    Ok(())
}

/// The header size in bytes after `trailing_bits()`.
fn header_bytes(r: &BitReader<'_>) -> Result<u16, ParseError> {
    u16::try_from(r.position().div_ceil(8))
        .map_err(|_| ParseError::Invalid("uncompressed header too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes from `(value, bits)` fields written MSB first, zero-padded to a byte.
    fn fields(fields: &[(u32, u32)]) -> Vec<u8> {
        let mut b = crate::bits::BitWriter::new();
        for &(value, n) in fields {
            b.put(n, value);
        }
        b.into_bytes()
    }

    /// A profile-0 key frame of `w` x `h` with everything else off.
    fn key_frame(w: u32, h: u32) -> Vec<u8> {
        fields(&[
            (2, 2), // frame_marker
            (0, 2), // profile 0
            (0, 1), // show_existing_frame
            (0, 1), // frame_type KEY
            (1, 1), // show_frame
            (0, 1), // error_resilient_mode
            (FRAME_SYNC_CODE, 24),
            (1, 3), // color_space BT.601
            (0, 1), // color_range
            (w - 1, 16),
            (h - 1, 16),
            (0, 1),  // render_and_frame_size_different
            (1, 1),  // refresh_frame_context
            (0, 1),  // frame_parallel_decoding_mode
            (2, 2),  // frame_context_idx
            (10, 6), // loop_filter_level
            (3, 3),  // sharpness
            (1, 1),  // delta_enabled
            (1, 1),  // delta_update
            (1, 1),  // update ref delta 0
            (11, 6), // su(6) magnitude
            (1, 1),  // su(6) sign: -11
            (0, 1),
            (0, 1),
            (0, 1),
            (0, 1), // mode deltas
            (0, 1),
            (60, 8), // base_q_idx
            (0, 1),
            (0, 1),
            (0, 1),
            (0, 1),    // segmentation_enabled
            (0, 1),    // tile_rows_log2 (frames this narrow code no tile columns)
            (123, 16), // header_size_in_bytes
        ])
    }

    #[test]
    fn parses_a_key_frame() {
        let data = key_frame(352, 288);
        let mut p = HeaderParser::new();
        let h = p.parse(&data).expect("valid header");
        assert!(h.key_frame && h.show_frame && !h.intra_only);
        assert_eq!((h.width, h.height), (352, 288));
        assert_eq!((h.render_width, h.render_height), (352, 288));
        assert_eq!(h.bit_depth, 8);
        assert!(h.subsampling_x && h.subsampling_y);
        assert_eq!(h.refresh_frame_flags, 0xff);
        assert_eq!(h.frame_context_idx, 2);
        assert!(h.refresh_frame_context);
        assert_eq!((h.lf.level, h.lf.sharpness), (10, 3));
        assert_eq!(h.lf.ref_deltas, [-11, 0, -1, -1]);
        assert_eq!(h.quant.base_q_idx, 60);
        assert_eq!(h.compressed_header_size, 123);
        assert!(p.slots().iter().all(|s| s.map(|s| s.width) == Some(352)));
    }

    #[test]
    fn rejects_garbage() {
        let mut p = HeaderParser::new();
        assert!(p.parse(&[]).is_err());
        assert!(p.parse(&[0x00]).is_err());
        let data = key_frame(64, 64);
        for len in 0..data.len() - 1 {
            assert!(p.parse(&data[..len]).is_err(), "truncated to {len}");
        }
        // show_existing_frame of an empty slot.
        let mut fresh = HeaderParser::new();
        assert!(fresh.parse(&[0b1000_1000]).is_err());
    }

    #[test]
    fn show_existing_takes_the_slot_size() {
        let mut p = HeaderParser::new();
        p.parse(&key_frame(200, 100)).expect("key frame");
        // frame_marker 10, profile 00, show_existing 1, idx 011.
        let h = p.parse(&[0b1000_1011]).expect("show existing");
        assert!(h.show_existing_frame);
        assert_eq!(h.frame_to_show_map_idx, 3);
        assert_eq!((h.width, h.height), (200, 100));
        assert_eq!(h.uncompressed_header_size, 1);
    }

    /// Bytes from a string of bits (whitespace ignored), zero-padded to a byte.
    fn pack(bits: &str) -> Vec<u8> {
        let bits: Vec<_> = bits
            .bytes()
            .filter(|b| !b.is_ascii_whitespace())
            .map(|bit| (u32::from(bit - b'0'), 1))
            .collect();
        fields(&bits)
    }

    #[test]
    fn frame_start_of_a_key_frame() {
        // 0x82: marker 10, profile 00, show_existing 0, frame_type 0 (key), show 1, errres 0;
        // sync code; color_space 2 (bt709), color_range 0 ...
        let f = FrameStart::parse(&[0x82, 0x49, 0x83, 0x42, 0x40, 0x00]).unwrap();
        assert!(f.key_frame && f.show_frame && !f.error_resilient_mode);
        assert_eq!((f.profile, f.refresh_frame_flags), (0, 0xff));
        assert_eq!(f.color.map(|c| (c.bit_depth, c.color_space)), Some((8, 2)));
        assert_eq!(f.refreshed_slot(), Some(0));
    }

    #[test]
    fn frame_start_of_a_hidden_inter_frame() {
        // 0x84: marker 10, profile 00, show_existing 0, non-key 1, show 0, errres 0;
        // then intra_only 0, reset_frame_context 00, refresh_frame_flags 0b0001_0000.
        let f = FrameStart::parse(&[0x84, 0x02, 0x00]).unwrap();
        assert!(!f.key_frame && !f.show_frame && !f.intra_only);
        assert_eq!(f.refresh_frame_flags, 0x10);
        assert_eq!(f.refreshed_slot(), Some(4));
        assert_eq!(f.color, None);
    }

    #[test]
    fn frame_start_of_an_intra_only_frame() {
        // marker 10, profile low 0 high 1, show_existing 0, non-key 1, show 0, errres 1;
        // intra_only 1, (no reset: error resilient), sync code, ten_or_twelve 0, cs 001,
        // range 0, refresh 0b1000_0001.
        let bits = "10 0 1 0 1 0 1 1 010010011000001101000010 0 001 0 10000001";
        let f = FrameStart::parse(&pack(bits)).unwrap();
        assert!(f.intra_only && f.error_resilient_mode && !f.show_frame);
        assert_eq!(f.profile, 2);
        assert_eq!(f.color.map(|c| c.bit_depth), Some(10));
        assert_eq!(f.refresh_frame_flags, 0x81);
        // Profile 0 codes no color_config(): 8-bit BT.601.
        let bits = "10 0 0 0 1 0 0 1 00 010010011000001101000010 00000001";
        let f = FrameStart::parse(&pack(bits)).unwrap();
        assert_eq!(f.color, Some(ColorConfig::PROFILE_0_INTRA_ONLY));
        assert_eq!(f.refreshed_slot(), Some(0));
    }

    #[test]
    fn frame_start_of_malformed_headers() {
        let truncated = |what| matches!(what, Err(ParseError::Truncated(_)));
        assert!(truncated(FrameStart::parse(&[])));
        assert!(truncated(FrameStart::parse(&[0x82, 0x49])));
        assert_eq!(
            FrameStart::parse(&[0x42]),
            Err(ParseError::Invalid("frame_marker is not 2"))
        );
        assert_eq!(
            FrameStart::parse(&[0x82, 0x49, 0x83, 0x43, 0]),
            Err(ParseError::Invalid("bad frame sync code"))
        );
        // Profile 3 with the reserved bit set.
        assert!(matches!(
            FrameStart::parse(&[0xb8]),
            Err(ParseError::Unsupported(_))
        ));
        // RGB (color_space 7) in profile 0.
        assert_eq!(
            FrameStart::parse(&[0x82, 0x49, 0x83, 0x42, 0xe0]),
            Err(ParseError::Invalid("RGB in profile 0 or 2"))
        );
    }
}
