// SPDX-License-Identifier: GPL-2.0
//! Round trip over the AV1 vectors: parse (cros-codecs) → controls → rebuilt OBUs → parse the
//! rebuilt OBUs with a second parser that sees nothing else → the same controls, for every
//! frame of every 4:2:0 8/10-bit vector.
//!
//! "The same" allows exactly the differences the rebuilder makes on purpose (see
//! `daedalus_codecs::av1::rebuild`): explicit sizes / reference indices / update flags, no frame
//! ids or decoder model, its own `TileSizeBytes`, and explicit tile sizes where the uniform
//! layout cannot be reproduced.

use std::path::{Path, PathBuf};

use cros_codecs::codec::av1::parser::{FrameType, ParsedObu, Parser, SequenceHeaderObu};
use daedalus_codecs::av1::controls::{film_grain_control, frame_control, sequence_control};
use daedalus_codecs::av1::rebuild::{
    show_existing_frame_obu, Controls, Rebuilder, ShowExistingExtras,
};
use daedalus_codecs::av1::walk::{Obus, TileFrame, TileFrames};
use daedalus_codecs::pod::bytes;
use daedalus_codecs::uapi::*;

fn vectors() -> Option<PathBuf> {
    daedalus_codecs::vectors::shared_subdir_or_skip("MANIFEST.tsv")
        .and_then(|m| m.parent().map(PathBuf::from))
}

/// The AV1 4:2:0 8/10-bit vectors of the manifest.
fn av1_420_vectors(dir: &Path) -> Vec<PathBuf> {
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    manifest
        .lines()
        .skip(1)
        .filter_map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (c.len() > 9 && c[0] == "av1" && c[8] == "4:2:0" && (c[2] == "8" || c[2] == "10"))
                .then(|| dir.join(c[1]))
        })
        .collect()
}

/// IVF frames, or the whole file for `.obu` streams (the parser finds the OBUs itself).
fn chunks(data: &[u8]) -> Vec<&[u8]> {
    match daedalus_codecs::ivf::frames(data) {
        Ok((_, frames)) => frames.into_iter().map(|(_, f)| f).collect(),
        Err(daedalus_codecs::ivf::IvfError::NotIvf) => vec![data],
        Err(e) => panic!("broken IVF vector: {e}"),
    }
}

/// Clears what the rebuilder changes on purpose.
fn normalize_frame(mut f: v4l2_ctrl_av1_frame) -> v4l2_ctrl_av1_frame {
    if f.frame_type == V4L2_AV1_KEY_FRAME {
        // Implied 1 for shown key frames, 0 with reduced_still_picture_header: no effect on a
        // key frame's decoding either way.
        f.flags &= !V4L2_AV1_FRAME_FLAG_ERROR_RESILIENT_MODE;
    }
    f.flags &= !(V4L2_AV1_FRAME_FLAG_FRAME_SIZE_OVERRIDE
        | V4L2_AV1_FRAME_FLAG_FRAME_REFS_SHORT_SIGNALING
        | V4L2_AV1_FRAME_FLAG_BUFFER_REMOVAL_TIME_PRESENT);
    f.buffer_removal_time = [0; 32];
    f.current_frame_id = 0;
    f.tile_info.tile_size_bytes = 0;
    f.tile_info.flags = 0;
    f.loop_filter.flags &= !(V4L2_AV1_LOOP_FILTER_FLAG_DELTA_UPDATE as u8);
    f.segmentation.flags &= !(V4L2_AV1_SEGMENTATION_FLAG_UPDATE_DATA as u8);
    f.reference_frame_ts = [0; 8];
    f
}

fn normalize_grain(mut g: v4l2_ctrl_av1_film_grain) -> v4l2_ctrl_av1_film_grain {
    g.film_grain_params_ref_idx = 0;
    g
}

/// Prefix of errors of the parser itself (input it cannot handle).
const PARSE: &str = "cros-codecs cannot parse: ";

struct Side {
    parser: Parser,
    seq: Option<std::rc::Rc<SequenceHeaderObu>>,
}

/// Parses the OBUs in `data`, calling `on_frame` for every complete frame (or show-existing
/// header), with the parser's sequence header.
fn parse_frames(
    side: &mut Side,
    data: &[u8],
    mut on_frame: impl FnMut(&mut Parser, &SequenceHeaderObu, TileFrame) -> Result<(), String>,
) -> Result<(), String> {
    let mut assembly = TileFrames::default();
    let mut obus = Obus::new(&mut side.parser, data);
    while let Some(obu) = obus.next() {
        let obu = obu.map_err(|e| format!("{PARSE}{e}"))?;
        if let ParsedObu::SequenceHeader(s) = &obu.parsed {
            side.seq = Some(s.clone());
        }
        let Some(frame) = assembly.push(obu, 0).map_err(|e| e.to_string())? else {
            continue;
        };
        let seq = side.seq.clone().ok_or("frame before sequence header")?;
        on_frame(obus.parser(), &seq, frame)?;
    }
    Ok(())
}

/// Round-trips one stream; returns the number of frames checked.
fn round_trip(path: &Path) -> Result<usize, String> {
    let data = std::fs::read(path).map_err(|e| e.to_string())?;
    let mut a = Side {
        parser: Parser::default(),
        seq: None,
    };
    let mut b = Side {
        parser: Parser::default(),
        seq: None,
    };
    let mut rebuilder = Rebuilder::new();
    let mut frames = 0usize;
    let ts = [0u64; 8];
    for chunk in chunks(&data) {
        parse_frames(&mut a, chunk, |pa, seq_a, fa| {
            let mut obus = Vec::new();
            if fa.header.show_existing_frame {
                // The client shows it itself; the rebuilt stream gets the same header so that
                // both parsers run the same reference process.
                pa.ref_frame_update(&fa.header)?;
                let slot = fa.header.frame_to_show_map_idx;
                if fa.header.frame_type == FrameType::KeyFrame {
                    rebuilder.slots_mut().show_existing_key(usize::from(slot));
                }
                show_existing_frame_obu(slot, ShowExistingExtras::default(), &mut obus)
                    .map_err(|e| e.to_string())?;
                parse_frames(&mut b, &obus, |pb, _, fb| {
                    if !fb.header.show_existing_frame {
                        return Err("rebuilt show-existing is not one".into());
                    }
                    pb.ref_frame_update(&fb.header)
                })?;
                return Ok(());
            }
            let seq_ctrl = sequence_control(seq_a).map_err(|e| e.to_string())?;
            let f = frame_control(seq_a, &fa.header, &ts).map_err(|e| e.to_string())?;
            let g = film_grain_control(&fa.header, true).map_err(|e| e.to_string())?;
            let controls = Controls {
                sequence: &seq_ctrl,
                frame: &f,
                film_grain: Some(&g),
                tiles: &fa.tiles,
            };
            rebuilder
                .rebuild(&controls, chunk, &mut obus)
                .map_err(|e| format!("frame {frames}: {e}"))?;
            pa.ref_frame_update(&fa.header)?;
            rebuilder.commit(&f);
            let mut seen = 0;
            parse_frames(&mut b, &obus, |pb, seq_b, fb| {
                seen += 1;
                let seq_ctrl_b = sequence_control(seq_b).map_err(|e| e.to_string())?;
                if bytes(&seq_ctrl_b) != bytes(&seq_ctrl) {
                    return Err(format!("frame {frames}: sequence control differs"));
                }
                let fb_ctrl = frame_control(seq_b, &fb.header, &ts).map_err(|e| e.to_string())?;
                if bytes(&normalize_frame(fb_ctrl)) != bytes(&normalize_frame(f)) {
                    if std::env::var_os("AV1_DEBUG").is_some() {
                        eprintln!(
                            "A: type {} flags {:#x} gm {:?} {:?}\nB: type {} flags {:#x} gm {:?} {:?}",
                            f.frame_type,
                            f.flags,
                            f.global_motion.type_,
                            f.global_motion.params,
                            fb_ctrl.frame_type,
                            fb_ctrl.flags,
                            fb_ctrl.global_motion.type_,
                            fb_ctrl.global_motion.params
                        );
                    }
                    return Err(format!(
                        "frame {frames}: frame control differs: {}",
                        diff_frame(&normalize_frame(f), &normalize_frame(fb_ctrl))
                    ));
                }
                let gb = film_grain_control(&fb.header, true).map_err(|e| e.to_string())?;
                if bytes(&normalize_grain(gb)) != bytes(&normalize_grain(g)) {
                    return Err(format!("frame {frames}: film grain control differs"));
                }
                if fb.tiles.len() != fa.tiles.len() {
                    return Err(format!("frame {frames}: tile count differs"));
                }
                for (ta, tb) in fa.tiles.iter().zip(&fb.tiles) {
                    let da = &chunk[ta.tile_offset as usize..][..ta.tile_size as usize];
                    let db = obus
                        .get(tb.tile_offset as usize..)
                        .and_then(|d| d.get(..tb.tile_size as usize))
                        .ok_or("rebuilt tile outside the OBUs")?;
                    if da != db || (ta.tile_row, ta.tile_col) != (tb.tile_row, tb.tile_col) {
                        return Err(format!("frame {frames}: tile data differs"));
                    }
                }
                pb.ref_frame_update(&fb.header)
            })
            .map_err(|e| e.replace(PARSE, "rebuilt OBUs do not parse: "))?;
            if seen != 1 {
                return Err(format!("frame {frames}: rebuilt OBUs hold {seen} frames"));
            }
            frames += 1;
            Ok(())
        })?;
    }
    Ok(frames)
}

/// Names the first differing field group, for the failure message.
fn diff_frame(a: &v4l2_ctrl_av1_frame, b: &v4l2_ctrl_av1_frame) -> String {
    let mut out = Vec::new();
    macro_rules! cmp {
        ($($f:ident),*) => {$(
            if a.$f != b.$f {
                out.push(stringify!($f));
            }
        )*};
    }
    macro_rules! cmp_structs {
        ($($f:ident),*) => {$(
            if bytes(&a.$f) != bytes(&b.$f) {
                out.push(stringify!($f));
            }
        )*};
    }
    cmp_structs!(
        tile_info,
        quantization,
        segmentation,
        loop_filter,
        cdef,
        loop_restoration,
        global_motion
    );
    cmp!(
        superres_denom,
        skip_mode_frame,
        primary_ref_frame,
        flags,
        frame_type,
        order_hint,
        upscaled_width,
        interpolation_filter,
        tx_mode,
        frame_width_minus_1,
        frame_height_minus_1,
        render_width_minus_1,
        render_height_minus_1,
        order_hints,
        ref_frame_idx,
        refresh_frame_flags
    );
    if a.flags != b.flags {
        out.push("(flags xor)");
        return format!("{out:?} {:#x}", a.flags ^ b.flags);
    }
    format!("{out:?}")
}

#[test]
fn every_420_vector_round_trips() {
    let Some(dir) = vectors() else { return };
    let list = av1_420_vectors(&dir);
    assert!(
        list.len() > 500 || std::env::var_os("AV1_ONLY").is_some(),
        "only {} AV1 4:2:0 vectors",
        list.len()
    );
    let (mut ok, mut frames) = (0, 0);
    let mut unparsable = Vec::new();
    let mut failures = Vec::new();
    let only = std::env::var("AV1_ONLY").ok();
    for path in list.iter().filter(|p| {
        only.as_ref()
            .is_none_or(|o| p.to_string_lossy().contains(o.as_str()))
    }) {
        // cros-codecs' parser asserts on some malformed input: a panic is a failure of that
        // stream, not of the run.
        let r = std::panic::catch_unwind(|| round_trip(path))
            .unwrap_or_else(|_| Err("parser panicked".into()));
        match r {
            Ok(n) => {
                ok += 1;
                frames += n;
            }
            Err(e) if e.starts_with(PARSE) || e == "parser panicked" => {
                unparsable.push(format!("{}: {e}", path.display()))
            }
            Err(e) => failures.push(format!("{}: {e}", path.display())),
        }
    }
    eprintln!(
        "AV1 rebuild round trip: {ok}/{} streams byte-checked ({frames} frames); {} streams \
         cros-codecs cannot parse; {} failed",
        list.len(),
        unparsable.len(),
        failures.len()
    );
    for f in &unparsable {
        eprintln!("not checked: {f}");
    }
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    assert!(failures.is_empty(), "{} streams failed", failures.len());
}
