// SPDX-License-Identifier: GPL-2.0
//! The compressed header (VP9 specification, sections 6.3 and 7.3): the transform mode, the
//! reference mode and the probability updates, decoded into the layout of
//! `struct v4l2_ctrl_vp9_compressed_hdr` (`V4L2_CID_STATELESS_VP9_COMPRESSED_HDR`).
//!
//! The control holds, for every probability, 0 (no update) or the update as coded: the
//! `deltaProb` of `diff_update_prob()` translated with `inv_map_table[]` (the driver applies
//! `inv_remap_prob()` to its own copy of the probabilities), and for the motion vector
//! probabilities the new value `(mv_prob << 1) | 1`.

use super::bits::BoolDecoder;
use super::header::{interp, FrameHeader};
use super::ParseError;
use crate::uapi::*;

/// `inv_map_table[]` (6.3.5): 255 entries, `deltaProb` is at most 254.
pub const INV_MAP_TABLE: [u8; 255] = inv_map_table();

const fn inv_map_table() -> [u8; 255] {
    let mut t = [0u8; 255];
    let mut i = 0;
    // 7, 20, ..., 254: every 13th value first...
    while i < 20 {
        t[i] = 7 + 13 * i as u8;
        i += 1;
    }
    // ... then the others from 1 to 253 in order...
    let mut v = 1u32;
    while v <= 253 {
        if v % 13 != 7 {
            t[i] = v as u8;
            i += 1;
        }
        v += 1;
    }
    // ... and 253 again for deltaProb 254.
    t[i] = 253;
    t
}

/// What the compressed header decides besides the probability updates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompressedInfo {
    /// `tx_mode` (`V4L2_VP9_TX_MODE_*`).
    pub tx_mode: u8,
    /// `reference_mode` (`V4L2_VP9_REFERENCE_MODE_*`).
    pub reference_mode: u8,
    /// Whether the bits after the last symbol are zero, as the specification requires.
    pub padding_zero: bool,
}

/// Parses the compressed header `data` (exactly `header_size_in_bytes` bytes) of the frame
/// described by `h` into `out`, which is overwritten entirely.
pub fn parse(
    h: &FrameHeader,
    data: &[u8],
    out: &mut v4l2_ctrl_vp9_compressed_hdr,
) -> Result<CompressedInfo, ParseError> {
    *out = v4l2_ctrl_vp9_compressed_hdr::default();
    let mut d = BoolDecoder::new(data)?;

    // read_tx_mode()
    let tx_mode = if h.quant.lossless() {
        V4L2_VP9_TX_MODE_ONLY_4X4 as u8
    } else {
        let mut m = d.read_literal(2)?;
        if m == V4L2_VP9_TX_MODE_ALLOW_32X32 as u8 {
            m += d.read_literal(1)?;
        }
        m
    };
    out.tx_mode = tx_mode;
    if tx_mode == V4L2_VP9_TX_MODE_SELECT as u8 {
        for p in out.tx8.iter_mut().flatten() {
            *p = diff_update_prob(&mut d)?;
        }
        for p in out.tx16.iter_mut().flatten() {
            *p = diff_update_prob(&mut d)?;
        }
        for p in out.tx32.iter_mut().flatten() {
            *p = diff_update_prob(&mut d)?;
        }
    }

    // read_coef_probs(): tx_mode_to_biggest_tx_size[] is min(tx_mode, TX_32X32).
    let max_tx_size = usize::from(tx_mode.min(V4L2_VP9_TX_MODE_ALLOW_32X32 as u8));
    for tx in out.coef.iter_mut().take(max_tx_size + 1) {
        if d.read_literal(1)? == 1 {
            for bands in tx.iter_mut().flatten() {
                for (k, band) in bands.iter_mut().enumerate() {
                    let contexts = if k == 0 { 3 } else { 6 };
                    for p in band.iter_mut().take(contexts).flatten() {
                        *p = diff_update_prob(&mut d)?;
                    }
                }
            }
        }
    }

    for p in &mut out.skip {
        *p = diff_update_prob(&mut d)?;
    }

    let mut reference_mode = V4L2_VP9_REFERENCE_MODE_SINGLE_REFERENCE as u8;
    if !h.is_intra() {
        for p in out.inter_mode.iter_mut().flatten() {
            *p = diff_update_prob(&mut d)?;
        }
        if h.interpolation_filter == interp::SWITCHABLE {
            for p in out.interp_filter.iter_mut().flatten() {
                *p = diff_update_prob(&mut d)?;
            }
        }
        for p in &mut out.is_inter {
            *p = diff_update_prob(&mut d)?;
        }

        // frame_reference_mode(): compound prediction needs references on both sides.
        let sb = h.ref_frame_sign_bias;
        let compound_allowed = sb[1] != sb[0] || sb[2] != sb[0];
        if compound_allowed && d.read_literal(1)? == 1 {
            reference_mode = if d.read_literal(1)? == 1 {
                V4L2_VP9_REFERENCE_MODE_SELECT as u8
            } else {
                V4L2_VP9_REFERENCE_MODE_COMPOUND_REFERENCE as u8
            };
        }
        // frame_reference_mode_probs()
        if reference_mode == V4L2_VP9_REFERENCE_MODE_SELECT as u8 {
            for p in &mut out.comp_mode {
                *p = diff_update_prob(&mut d)?;
            }
        }
        if reference_mode != V4L2_VP9_REFERENCE_MODE_COMPOUND_REFERENCE as u8 {
            for p in out.single_ref.iter_mut().flatten() {
                *p = diff_update_prob(&mut d)?;
            }
        }
        if reference_mode != V4L2_VP9_REFERENCE_MODE_SINGLE_REFERENCE as u8 {
            for p in &mut out.comp_ref {
                *p = diff_update_prob(&mut d)?;
            }
        }

        for p in out.y_mode.iter_mut().flatten() {
            *p = diff_update_prob(&mut d)?;
        }
        for p in out.partition.iter_mut().flatten() {
            *p = diff_update_prob(&mut d)?;
        }

        // mv_probs()
        let mv = &mut out.mv;
        for p in &mut mv.joint {
            *p = update_mv_prob(&mut d)?;
        }
        for i in 0..2 {
            mv.sign[i] = update_mv_prob(&mut d)?;
            for p in &mut mv.classes[i] {
                *p = update_mv_prob(&mut d)?;
            }
            mv.class0_bit[i] = update_mv_prob(&mut d)?;
            for p in &mut mv.bits[i] {
                *p = update_mv_prob(&mut d)?;
            }
        }
        for i in 0..2 {
            for p in mv.class0_fr[i].iter_mut().flatten() {
                *p = update_mv_prob(&mut d)?;
            }
            for p in &mut mv.fr[i] {
                *p = update_mv_prob(&mut d)?;
            }
        }
        if h.allow_high_precision_mv {
            for i in 0..2 {
                mv.class0_hp[i] = update_mv_prob(&mut d)?;
                mv.hp[i] = update_mv_prob(&mut d)?;
            }
        }
    }

    Ok(CompressedInfo {
        tx_mode,
        reference_mode,
        padding_zero: d.padding_is_zero()?,
    })
}

/// `diff_update_prob()`: 0 when the probability keeps its value, else
/// `inv_map_table[deltaProb]` (never 0).
fn diff_update_prob(d: &mut BoolDecoder<'_>) -> Result<u8, ParseError> {
    if !d.read_bool(252)? {
        return Ok(0);
    }
    Ok(INV_MAP_TABLE[usize::from(decode_term_subexp(d)?)])
}

/// `decode_term_subexp()`: 0..=254.
fn decode_term_subexp(d: &mut BoolDecoder<'_>) -> Result<u8, ParseError> {
    if d.read_literal(1)? == 0 {
        return d.read_literal(4);
    }
    if d.read_literal(1)? == 0 {
        return Ok(d.read_literal(4)? + 16);
    }
    if d.read_literal(1)? == 0 {
        return Ok(d.read_literal(5)? + 32);
    }
    let v = d.read_literal(7)?;
    if v < 65 {
        return Ok(v + 64);
    }
    let bit = d.read_literal(1)?;
    // v <= 127: (v << 1) - 1 + bit <= 254.
    Ok(((u16::from(v) << 1) - 1 + u16::from(bit)) as u8)
}

/// `update_mv_prob()`: 0 when unchanged, else the new (odd) probability.
fn update_mv_prob(d: &mut BoolDecoder<'_>) -> Result<u8, ParseError> {
    if !d.read_bool(252)? {
        return Ok(0);
    }
    Ok((d.read_literal(7)? << 1) | 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inv_map_table_matches_the_specification() {
        assert_eq!(&INV_MAP_TABLE[..4], &[7, 20, 33, 46]);
        assert_eq!(INV_MAP_TABLE[19], 254);
        assert_eq!(&INV_MAP_TABLE[20..28], &[1, 2, 3, 4, 5, 6, 8, 9]);
        assert_eq!(&INV_MAP_TABLE[251..], &[251, 252, 253, 253]);
        // Every value 1..=254 appears, none is 0 (0 means "no update" in the control).
        for v in 1..=254u8 {
            assert!(INV_MAP_TABLE.contains(&v), "{v} missing");
        }
        assert!(!INV_MAP_TABLE.contains(&0));
    }

    #[test]
    fn zero_header_has_no_updates() {
        // All-zero data: every update flag decodes as 0, tx_mode is ONLY_4X4.
        let h = FrameHeader {
            quant: super::super::header::Quantization {
                base_q_idx: 10,
                ..Default::default()
            },
            ..Default::default()
        };
        let mut out = v4l2_ctrl_vp9_compressed_hdr::default();
        out.skip[0] = 99;
        let info = parse(&h, &[0, 0, 0, 0], &mut out).expect("valid");
        assert_eq!(info.tx_mode, 0);
        assert_eq!(info.reference_mode, 0);
        assert!(info.padding_zero);
        assert_eq!(out.skip, [0, 0, 0]);
    }
}
