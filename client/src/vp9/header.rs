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

/// The state of the header parser between frames.
#[derive(Clone, Debug, Default)]
pub struct HeaderParser {
    bit_depth: u8,
    color_space: u8,
    color_range_full: bool,
    subsampling_x: bool,
    subsampling_y: bool,
    lf_ref_deltas: [i8; 4],
    lf_mode_deltas: [i8; 2],
    seg: Segmentation,
    slots: [Option<SlotInfo>; NUM_REF_FRAMES],
}

impl HeaderParser {
    /// A parser for a new stream.
    pub fn new() -> Self {
        HeaderParser {
            bit_depth: 8,
            ..Default::default()
        }
    }

    /// The reference slots as the frames parsed so far left them.
    pub fn slots(&self) -> &[Option<SlotInfo>; NUM_REF_FRAMES] {
        &self.slots
    }

    /// Parses the uncompressed header at the start of `data` (one frame, superframes already
    /// split) and updates the parser state (including the reference slot sizes).
    pub fn parse(&mut self, data: &[u8]) -> Result<FrameHeader, ParseError> {
        let mut r = BitReader::new(data);
        let mut h = FrameHeader::default();

        if r.bits(2)? != 2 {
            return Err(ParseError::Invalid("frame_marker is not 2"));
        }
        let low = r.bits_u8(1)?;
        let high = r.bits_u8(1)?;
        h.profile = (high << 1) | low;
        if h.profile == 3 && r.bit()? {
            return Err(ParseError::Unsupported("reserved bit after profile 3 set"));
        }

        h.show_existing_frame = r.bit()?;
        if h.show_existing_frame {
            h.frame_to_show_map_idx = r.bits_u8(3)?;
            let slot = self.slots[usize::from(h.frame_to_show_map_idx)].ok_or(
                ParseError::Invalid("show_existing_frame of an empty reference slot"),
            )?;
            h.width = slot.width;
            h.height = slot.height;
            h.render_width = slot.width;
            h.render_height = slot.height;
            h.bit_depth = slot.bit_depth;
            h.uncompressed_header_size = header_bytes(&r)?;
            return Ok(h);
        }

        h.key_frame = !r.bit()?;
        h.show_frame = r.bit()?;
        h.error_resilient_mode = r.bit()?;

        if h.key_frame {
            sync_code(&mut r)?;
            self.color_config(&mut r, h.profile)?;
            frame_size(&mut r, &mut h)?;
            render_size(&mut r, &mut h)?;
            h.refresh_frame_flags = 0xff;
        } else {
            h.intra_only = if h.show_frame { false } else { r.bit()? };
            h.reset_frame_context = if h.error_resilient_mode {
                0
            } else {
                r.bits_u8(2)?
            };
            if h.intra_only {
                sync_code(&mut r)?;
                if h.profile > 0 {
                    self.color_config(&mut r, h.profile)?;
                } else {
                    self.bit_depth = 8;
                    self.color_space = CS_BT_601;
                    self.color_range_full = false;
                    self.subsampling_x = true;
                    self.subsampling_y = true;
                }
                h.refresh_frame_flags = r.bits_u8(8)?;
                frame_size(&mut r, &mut h)?;
                render_size(&mut r, &mut h)?;
            } else {
                h.refresh_frame_flags = r.bits_u8(8)?;
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
        }
        h.bit_depth = self.bit_depth;
        h.color_space = self.color_space;
        h.color_range_full = self.color_range_full;
        h.subsampling_x = self.subsampling_x;
        h.subsampling_y = self.subsampling_y;

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

    fn color_config(&mut self, r: &mut BitReader<'_>, profile: u8) -> Result<(), ParseError> {
        self.bit_depth = if profile >= 2 {
            if r.bit()? {
                12
            } else {
                10
            }
        } else {
            8
        };
        self.color_space = r.bits_u8(3)?;
        if self.color_space != CS_RGB {
            self.color_range_full = r.bit()?;
            if profile == 1 || profile == 3 {
                self.subsampling_x = r.bit()?;
                self.subsampling_y = r.bit()?;
                if r.bit()? {
                    return Err(ParseError::Invalid("reserved_zero after subsampling is 1"));
                }
            } else {
                self.subsampling_x = true;
                self.subsampling_y = true;
            }
        } else {
            self.color_range_full = true;
            if profile == 1 || profile == 3 {
                self.subsampling_x = false;
                self.subsampling_y = false;
                if r.bit()? {
                    return Err(ParseError::Invalid("reserved_zero after color space is 1"));
                }
            } else {
                return Err(ParseError::Invalid("RGB in profile 0 or 2"));
            }
        }
        Ok(())
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

    /// Writes fields MSB first, for building headers in tests.
    #[derive(Default)]
    pub(crate) struct BitWriter {
        pub(crate) bytes: Vec<u8>,
        bits: usize,
    }

    impl BitWriter {
        pub(crate) fn put(&mut self, value: u32, n: u32) -> &mut Self {
            for i in (0..n).rev() {
                if self.bits % 8 == 0 {
                    self.bytes.push(0);
                }
                let bit = ((value >> i) & 1) as u8;
                let last = self.bytes.len() - 1;
                self.bytes[last] |= bit << (7 - self.bits % 8);
                self.bits += 1;
            }
            self
        }
    }

    /// A profile-0 key frame of `w` x `h` with everything else off.
    fn key_frame(w: u32, h: u32) -> Vec<u8> {
        let mut b = BitWriter::default();
        b.put(2, 2) // frame_marker
            .put(0, 2) // profile 0
            .put(0, 1) // show_existing_frame
            .put(0, 1) // frame_type KEY
            .put(1, 1) // show_frame
            .put(0, 1) // error_resilient_mode
            .put(FRAME_SYNC_CODE, 24)
            .put(1, 3) // color_space BT.601
            .put(0, 1) // color_range
            .put(w - 1, 16)
            .put(h - 1, 16)
            .put(0, 1) // render_and_frame_size_different
            .put(1, 1) // refresh_frame_context
            .put(0, 1) // frame_parallel_decoding_mode
            .put(2, 2) // frame_context_idx
            .put(10, 6) // loop_filter_level
            .put(3, 3) // sharpness
            .put(1, 1) // delta_enabled
            .put(1, 1) // delta_update
            .put(1, 1) // update ref delta 0
            .put(11, 6) // su(6) magnitude
            .put(1, 1) // su(6) sign: -11
            .put(0, 1)
            .put(0, 1)
            .put(0, 1)
            .put(0, 1) // mode deltas
            .put(0, 1)
            .put(60, 8) // base_q_idx
            .put(0, 1)
            .put(0, 1)
            .put(0, 1)
            .put(0, 1) // segmentation_enabled
            .put(0, 1) // tile_rows_log2 (frames this narrow code no tile columns)
            .put(123, 16); // header_size_in_bytes
        b.bytes
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
}
