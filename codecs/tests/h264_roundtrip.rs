// SPDX-License-Identifier: GPL-2.0
//! Every H.264 vector: parse each SPS / PPS with cros-codecs → V4L2 controls → rebuilt NAL units
//! → parse again → the controls are equal and so are the parsed fields V4L2 represents.

use std::io::Cursor;
use std::path::PathBuf;
use std::rc::Rc;

use cros_codecs::codec::h264::parser::{Nalu, NaluType, Parser, Pps, Sps};
use daedalus_codecs::h264::controls::{pps_control, scaling_matrix_control, sps_control};
use daedalus_codecs::h264::rebuild::{write_parameter_sets, write_sps};
use daedalus_codecs::pod;

fn vectors_dir() -> PathBuf {
    daedalus_codecs::vectors::shared_dir().unwrap_or_default()
}

fn h264_streams() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let root = vectors_dir().join("h264");
    let Ok(dirs) = std::fs::read_dir(&root) else {
        return out;
    };
    for dir in dirs.flatten() {
        let Ok(files) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        for f in files.flatten() {
            let p = f.path();
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            if matches!(ext, "h264" | "264" | "jsv" | "26l" | "jvt") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
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

/// Parses the first SPS, or PPS, NAL unit of `bytes` into `parser`.
fn parse_into(parser: &mut Parser, bytes: &[u8]) -> Result<Option<u8>, String> {
    let mut cursor = Cursor::new(bytes);
    let nalu = Nalu::next(&mut cursor)?;
    match nalu.header.type_ {
        NaluType::Sps => parser
            .parse_sps(&nalu)
            .map(|s| Some(s.seq_parameter_set_id)),
        NaluType::Pps => parser
            .parse_pps(&nalu)
            .map(|p| Some(p.pic_parameter_set_id)),
        _ => Ok(None),
    }
}

/// The control made from the parse of the rebuilt NAL unit must equal the original.
fn same_control<T: pod::Pod>(what: &str, ours: &T, again: &T) -> Result<(), String> {
    if pod::bytes(ours) != pod::bytes(again) {
        return Err(format!("{what} controls differ after the round trip"));
    }
    Ok(())
}

/// The parsed fields V4L2 represents must survive the round trip.
fn same_fields<T: PartialEq + std::fmt::Debug>(what: &str, a: T, b: T) -> Result<(), String> {
    if a != b {
        return Err(format!("{what} fields differ: {a:?} vs {b:?}"));
    }
    Ok(())
}

fn roundtrip_stream(data: &[u8]) -> Result<(usize, usize, usize), String> {
    let mut parser = Parser::default();
    let mut cursor = Cursor::new(data);
    let (mut n_sps, mut n_pps, mut n_matrix) = (0, 0, 0);
    while let Ok(nalu) = Nalu::next(&mut cursor) {
        match nalu.header.type_ {
            NaluType::Sps => {
                let sps: Rc<Sps> = Rc::clone(parser.parse_sps(&nalu)?);
                let ctrl = sps_control(&sps);
                let mut bytes = Vec::new();
                write_sps(&ctrl, &mut bytes).map_err(|e| e.to_string())?;
                let mut again = Parser::default();
                parse_into(&mut again, &bytes)?;
                let sps2 = again
                    .get_sps(sps.seq_parameter_set_id)
                    .ok_or("rebuilt SPS lost")?;
                same_control("SPS", &ctrl, &sps_control(sps2))?;
                same_fields("SPS", sps_fields(&sps), sps_fields(sps2))?;
                n_sps += 1;
            }
            NaluType::Pps => {
                let id = parser.parse_pps(&nalu)?.pic_parameter_set_id;
                let pps: Rc<Pps> = Rc::clone(parser.get_pps(id).ok_or("parsed PPS lost")?);
                let (sctrl, pctrl, mctrl) = (
                    sps_control(&pps.sps),
                    pps_control(&pps),
                    scaling_matrix_control(&pps),
                );
                let mut bytes = Vec::new();
                write_sps(&sctrl, &mut bytes).map_err(|e| e.to_string())?;
                let sps_len = bytes.len();
                bytes.clear();
                write_parameter_sets(&sctrl, &pctrl, &mctrl, &mut bytes)
                    .map_err(|e| e.to_string())?;
                let mut again = Parser::default();
                parse_into(&mut again, &bytes[..sps_len])?;
                parse_into(&mut again, &bytes[sps_len..])?;
                let pps2 = again
                    .get_pps(pps.pic_parameter_set_id)
                    .ok_or("rebuilt PPS lost")?;
                same_control("PPS", &pctrl, &pps_control(pps2))?;
                same_control("SCALING_MATRIX", &mctrl, &scaling_matrix_control(pps2))?;
                same_fields("PPS", pps_fields(&pps), pps_fields(pps2))?;
                n_pps += 1;
                if pctrl.flags
                    & daedalus_codecs::uapi::V4L2_H264_PPS_FLAG_SCALING_MATRIX_PRESENT as u16
                    != 0
                {
                    n_matrix += 1;
                }
            }
            _ => {}
        }
    }
    Ok((n_sps, n_pps, n_matrix))
}

#[test]
fn every_vector_roundtrips_through_controls() {
    let streams = h264_streams();
    if streams.is_empty() {
        eprintln!("h264: {}", daedalus_codecs::vectors::SKIPPED);
        return;
    }
    let mut failures = Vec::new();
    let mut with_matrix = 0;
    for path in &streams {
        let data = std::fs::read(path).expect("read vector");
        match roundtrip_stream(&data) {
            Ok((s, p, m)) => {
                assert!(
                    s > 0 && p > 0,
                    "{}: no parameter sets found",
                    path.display()
                );
                if m > 0 {
                    with_matrix += 1;
                }
                eprintln!("ok   {} ({s} SPS, {p} PPS)", path.display());
            }
            Err(e) => failures.push(format!("{}: {e}", path.display())),
        }
    }
    eprintln!(
        "{} streams, {} failed, {with_matrix} with scaling matrices",
        streams.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
    // The scaling-matrix vectors (x264 cqm=jvt, JM scaling lists) must exercise the lists.
    assert!(
        with_matrix >= 2,
        "only {with_matrix} streams with a scaling matrix"
    );
}
