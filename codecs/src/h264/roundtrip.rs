// SPDX-License-Identifier: GPL-2.0
//! The round trip every H.264 parameter set must survive: parse (cros-codecs) → V4L2 controls →
//! rebuilt NAL units ([`super::rebuild`]) → parse again → the same controls, and the same parsed
//! fields V4L2 represents. What a stateless client sends must be what the daemon feeds FFmpeg.
//!
//! One definition for its users: the test over every H.264 vector
//! (`codecs/tests/h264_roundtrip.rs`), the fuzz findings' replay (`codecs/tests/fuzz_regressions.rs`)
//! and the `h264_stream` fuzz target (`fuzz/`), which feeds it
//! mutated streams: there a parse error of the input or a refusal of the rebuilder is expected,
//! a [`RoundTripError::Mismatch`] never is.

use std::io::Cursor;
use std::rc::Rc;

use cros_codecs::codec::h264::parser::{Nalu, NaluType, Parser, Pps, Sps};

use super::controls::{pps_control, scaling_matrix_control, sps_control};
use super::rebuild::{write_parameter_sets, write_sps, RebuildError};
use crate::pod;

/// Why a stream's parameter sets did not round-trip.
#[derive(Debug, thiserror::Error)]
pub enum RoundTripError {
    /// The input's own NAL unit does not parse (cros-codecs' message).
    #[error("the stream does not parse: {0}")]
    Parse(String),
    /// The rebuilder refuses the controls made from the parsed NAL unit.
    #[error("the rebuilder refuses the parsed controls: {0}")]
    Refused(#[from] RebuildError),
    /// The rebuilt NAL unit does not parse back to the same controls / fields: a bug.
    #[error("round trip mismatch: {0}")]
    Mismatch(String),
}

/// What [`round_trip_stream`] checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checked {
    /// SPS NAL units.
    pub sps: usize,
    /// PPS NAL units.
    pub pps: usize,
    /// PPS NAL units whose PPS control has a scaling matrix.
    pub matrices: usize,
}

/// The SPS fields V4L2 represents, as parsed.
fn sps_fields(s: &Sps) -> impl PartialEq + std::fmt::Debug {
    (
        (
            s.profile_idc,
            s.constraint_set0_flag,
            s.constraint_set1_flag,
            s.constraint_set2_flag,
        ),
        (
            s.constraint_set3_flag,
            s.constraint_set4_flag,
            s.constraint_set5_flag,
            s.level_idc as u8,
        ),
        (
            s.seq_parameter_set_id,
            s.chroma_format_idc,
            s.separate_colour_plane_flag,
        ),
        (
            s.bit_depth_luma_minus8,
            s.bit_depth_chroma_minus8,
            s.qpprime_y_zero_transform_bypass_flag,
        ),
        (
            s.log2_max_frame_num_minus4,
            s.pic_order_cnt_type,
            s.log2_max_pic_order_cnt_lsb_minus4,
        ),
        (
            s.delta_pic_order_always_zero_flag,
            s.offset_for_non_ref_pic,
            s.offset_for_top_to_bottom_field,
        ),
        (
            s.num_ref_frames_in_pic_order_cnt_cycle,
            s.offset_for_ref_frame.to_vec(),
        ),
        (s.max_num_ref_frames, s.gaps_in_frame_num_value_allowed_flag),
        (
            s.pic_width_in_mbs_minus1,
            s.pic_height_in_map_units_minus1,
            s.frame_mbs_only_flag,
        ),
        (s.mb_adaptive_frame_field_flag, s.direct_8x8_inference_flag),
    )
}

fn pps_fields(p: &Pps) -> impl PartialEq + std::fmt::Debug {
    (
        (
            p.pic_parameter_set_id,
            p.seq_parameter_set_id,
            p.entropy_coding_mode_flag,
        ),
        (
            p.bottom_field_pic_order_in_frame_present_flag,
            p.num_slice_groups_minus1,
        ),
        (
            p.num_ref_idx_l0_default_active_minus1,
            p.num_ref_idx_l1_default_active_minus1,
        ),
        (
            p.weighted_pred_flag,
            p.weighted_bipred_idc,
            p.pic_init_qp_minus26,
            p.pic_init_qs_minus26,
        ),
        (p.chroma_qp_index_offset, p.second_chroma_qp_index_offset),
        (
            p.deblocking_filter_control_present_flag,
            p.constrained_intra_pred_flag,
        ),
        (p.redundant_pic_cnt_present_flag, p.transform_8x8_mode_flag),
    )
}

/// Parses the first NAL unit of `rebuilt` (an SPS or a PPS the rebuilder wrote) into `parser`.
fn parse_rebuilt(parser: &mut Parser, rebuilt: &[u8]) -> Result<(), RoundTripError> {
    let mismatch = |e: String| RoundTripError::Mismatch(format!("rebuilt NAL unit: {e}"));
    let nalu = Nalu::next(&mut Cursor::new(rebuilt)).map_err(mismatch)?;
    match nalu.header.type_ {
        NaluType::Sps => parser.parse_sps(&nalu).map(|_| ()).map_err(mismatch),
        NaluType::Pps => parser.parse_pps(&nalu).map(|_| ()).map_err(mismatch),
        other => Err(mismatch(format!("{other:?}, not a parameter set"))),
    }
}

/// The control made from the parse of the rebuilt NAL unit must equal the original.
fn same_control<T: pod::Pod>(what: &str, ours: &T, again: &T) -> Result<(), RoundTripError> {
    if pod::bytes(ours) != pod::bytes(again) {
        return Err(RoundTripError::Mismatch(format!("{what} controls differ")));
    }
    Ok(())
}

/// The parsed fields V4L2 represents must survive the round trip.
fn same_fields<T: PartialEq + std::fmt::Debug>(
    what: &str,
    a: T,
    b: T,
) -> Result<(), RoundTripError> {
    if a != b {
        return Err(RoundTripError::Mismatch(format!(
            "{what} fields differ: {a:?} vs {b:?}"
        )));
    }
    Ok(())
}

/// Parses every SPS, PPS and slice header of the Annex B stream `data` with cros-codecs, as the
/// clients do with untrusted streams, dropping the errors: it must return, never panic. The
/// first half of the `h264_stream` fuzz target and of its regression test
/// (`codecs/tests/fuzz_regressions.rs`); [`round_trip_stream`] stops at the first error.
pub fn parse_every_unit(data: &[u8]) {
    let mut parser = Parser::default();
    let mut cursor = Cursor::new(data);
    while let Ok(nalu) = Nalu::next(&mut cursor) {
        match nalu.header.type_ {
            NaluType::Sps => {
                let _ = parser.parse_sps(&nalu);
            }
            NaluType::Pps => {
                let _ = parser.parse_pps(&nalu);
            }
            NaluType::Slice | NaluType::SliceIdr => {
                let _ = parser.parse_slice_header(nalu);
            }
            _ => {}
        }
    }
}

/// Round-trips every SPS and PPS of the Annex B stream `data`, in stream order (a PPS with the
/// SPS the parser linked it to).
pub fn round_trip_stream(data: &[u8]) -> Result<Checked, RoundTripError> {
    let mut parser = Parser::default();
    let mut cursor = Cursor::new(data);
    let mut checked = Checked::default();
    let lost = |what: &str| RoundTripError::Mismatch(format!("rebuilt {what} lost"));
    while let Ok(nalu) = Nalu::next(&mut cursor) {
        match nalu.header.type_ {
            NaluType::Sps => {
                let sps: Rc<Sps> =
                    Rc::clone(parser.parse_sps(&nalu).map_err(RoundTripError::Parse)?);
                let ctrl = sps_control(&sps);
                let mut bytes = Vec::new();
                write_sps(&ctrl, &mut bytes)?;
                let mut again = Parser::default();
                parse_rebuilt(&mut again, &bytes)?;
                let sps2 = again
                    .get_sps(sps.seq_parameter_set_id)
                    .ok_or_else(|| lost("SPS"))?;
                same_control("SPS", &ctrl, &sps_control(sps2))?;
                same_fields("SPS", sps_fields(&sps), sps_fields(sps2))?;
                checked.sps += 1;
            }
            NaluType::Pps => {
                let id = parser
                    .parse_pps(&nalu)
                    .map_err(RoundTripError::Parse)?
                    .pic_parameter_set_id;
                let pps: Rc<Pps> = Rc::clone(
                    parser
                        .get_pps(id)
                        .ok_or_else(|| RoundTripError::Parse("parsed PPS lost".into()))?,
                );
                let (sctrl, pctrl, mctrl) = (
                    sps_control(&pps.sps),
                    pps_control(&pps),
                    scaling_matrix_control(&pps),
                );
                let mut bytes = Vec::new();
                write_sps(&sctrl, &mut bytes)?;
                let sps_len = bytes.len();
                bytes.clear();
                write_parameter_sets(&sctrl, &pctrl, &mctrl, &mut bytes)?;
                let mut again = Parser::default();
                parse_rebuilt(&mut again, &bytes[..sps_len])?;
                parse_rebuilt(&mut again, &bytes[sps_len..])?;
                let pps2 = again
                    .get_pps(pps.pic_parameter_set_id)
                    .ok_or_else(|| lost("PPS"))?;
                same_control("PPS", &pctrl, &pps_control(pps2))?;
                same_control("SCALING_MATRIX", &mctrl, &scaling_matrix_control(pps2))?;
                same_fields("PPS", pps_fields(&pps), pps_fields(pps2))?;
                checked.pps += 1;
                if pctrl.flags & crate::uapi::V4L2_H264_PPS_FLAG_SCALING_MATRIX_PRESENT as u16 != 0
                {
                    checked.matrices += 1;
                }
            }
            _ => {}
        }
    }
    Ok(checked)
}
