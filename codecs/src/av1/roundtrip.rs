// SPDX-License-Identifier: GPL-2.0
//! The round trip every AV1 frame must survive: parse (cros-codecs) → controls → OBUs rebuilt
//! from the controls ([`super::rebuild`]) → parse the rebuilt OBUs with a second parser that
//! sees nothing else → the same controls. What a stateless client sends must be what the daemon
//! feeds its decoder.
//!
//! "The same" allows exactly the differences the rebuilder makes on purpose (see
//! [`super::rebuild`]): explicit sizes / reference indices / update flags, no frame ids or
//! decoder model, its own `TileSizeBytes`, and explicit tile sizes where the uniform layout
//! cannot be reproduced.
//!
//! One definition for its two users: the test over every AV1 vector
//! (`codecs/tests/av1_rebuild.rs`) and the `av1_stream` fuzz target (`fuzz/`), which feeds it
//! mutated streams: there a parse error of the input or a refusal of the controls / rebuilder
//! is expected, a [`RoundTripError::Mismatch`] never is.

use std::rc::Rc;

use cros_codecs::codec::av1::parser::{FrameType, ParsedObu, Parser, SequenceHeaderObu};

use super::controls::{film_grain_control, frame_control, sequence_control};
use super::rebuild::{show_existing_frame_obu, Controls, Rebuilder, ShowExistingExtras};
use super::walk::{Obus, TileFrame, TileFrames};
use crate::pod::bytes;
use crate::uapi::*;

/// Why a stream's frames did not round-trip.
#[derive(Debug, thiserror::Error)]
pub enum RoundTripError {
    /// The input does not parse (cros-codecs' message, or a frame before any sequence header).
    #[error("the stream does not parse: {0}")]
    Parse(String),
    /// The controls or the rebuilder refuse what was parsed.
    #[error("frame {frame}: refused: {reason}")]
    Refused {
        /// Frames round-tripped before it.
        frame: usize,
        /// The control mapping's or the rebuilder's error.
        reason: String,
    },
    /// The rebuilt OBUs do not parse back to the same controls: a bug.
    #[error("frame {frame}: round trip mismatch: {reason}")]
    Mismatch {
        /// Frames round-tripped before it.
        frame: usize,
        /// What differs.
        reason: String,
    },
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

/// One parser and the sequence header it last saw.
#[derive(Default)]
struct Side {
    parser: Parser,
    seq: Option<Rc<SequenceHeaderObu>>,
}

/// Errors of one side of the round trip; [`round_trip_chunks`] says which side and frame.
enum Failed {
    /// The parser (or a frame without a sequence header).
    Parse(String),
    /// The control mapping or the rebuilder, on side A.
    Refused(String),
    /// A difference, or side B failing.
    Mismatch(String),
}

impl From<String> for Failed {
    fn from(e: String) -> Failed {
        Failed::Mismatch(e)
    }
}

/// Parses the OBUs in `data`, calling `on_frame` for every complete frame (or show-existing
/// header), with the parser's sequence header.
fn parse_frames(
    side: &mut Side,
    data: &[u8],
    mut on_frame: impl FnMut(&mut Parser, &SequenceHeaderObu, TileFrame) -> Result<(), Failed>,
) -> Result<(), Failed> {
    let mut assembly = TileFrames::default();
    let mut obus = Obus::new(&mut side.parser, data);
    while let Some(obu) = obus.next() {
        let obu = obu.map_err(Failed::Parse)?;
        if let ParsedObu::SequenceHeader(s) = &obu.parsed {
            side.seq = Some(s.clone());
        }
        let Some(frame) = assembly
            .push(obu, 0)
            .map_err(|e| Failed::Parse(e.to_string()))?
        else {
            continue;
        };
        let seq = side
            .seq
            .clone()
            .ok_or_else(|| Failed::Parse("a frame before any sequence header".into()))?;
        on_frame(obus.parser(), &seq, frame)?;
    }
    Ok(())
}

/// Round-trips the frames of a stream given as chunks (IVF frames / temporal units, or one
/// chunk of OBUs); returns the number of frames checked (`show_existing_frame` headers are
/// replayed on both sides, not counted).
pub fn round_trip_chunks<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Result<usize, RoundTripError> {
    let mut a = Side::default();
    let mut b = Side::default();
    let mut rebuilder = Rebuilder::new();
    let mut frames = 0usize;
    let ts = [0u64; 8];
    let refused = |e: &dyn std::fmt::Display| Failed::Refused(e.to_string());
    for chunk in chunks {
        let r = parse_frames(&mut a, chunk, |pa, seq_a, fa| {
            let mut obus = Vec::new();
            if fa.header.show_existing_frame {
                // The client shows it itself; the rebuilt stream gets the same header so that
                // both parsers run the same reference process.
                pa.ref_frame_update(&fa.header).map_err(Failed::Parse)?;
                let slot = fa.header.frame_to_show_map_idx;
                if fa.header.frame_type == FrameType::KeyFrame {
                    rebuilder.slots_mut().show_existing_key(usize::from(slot));
                }
                show_existing_frame_obu(slot, ShowExistingExtras::default(), &mut obus)
                    .map_err(|e| refused(&e))?;
                return parse_frames(&mut b, &obus, |pb, _, fb| {
                    if !fb.header.show_existing_frame {
                        return Err("rebuilt show-existing is not one".to_string().into());
                    }
                    Ok(pb.ref_frame_update(&fb.header)?)
                })
                .map_err(side_b);
            }
            let seq_ctrl = sequence_control(seq_a).map_err(|e| refused(&e))?;
            let f = frame_control(seq_a, &fa.header, &ts).map_err(|e| refused(&e))?;
            let g = film_grain_control(&fa.header, true).map_err(|e| refused(&e))?;
            let controls = Controls {
                sequence: &seq_ctrl,
                frame: &f,
                film_grain: Some(&g),
                tiles: &fa.tiles,
            };
            rebuilder
                .rebuild(&controls, chunk, &mut obus)
                .map_err(|e| refused(&e))?;
            pa.ref_frame_update(&fa.header).map_err(Failed::Parse)?;
            rebuilder.commit(&f);
            let mut seen = 0;
            parse_frames(&mut b, &obus, |pb, seq_b, fb| {
                seen += 1;
                let seq_ctrl_b = sequence_control(seq_b).map_err(|e| e.to_string())?;
                if bytes(&seq_ctrl_b) != bytes(&seq_ctrl) {
                    return Err("sequence control differs".to_string().into());
                }
                let fb_ctrl = frame_control(seq_b, &fb.header, &ts).map_err(|e| e.to_string())?;
                if bytes(&normalize_frame(fb_ctrl)) != bytes(&normalize_frame(f)) {
                    return Err(format!(
                        "frame control differs: {}",
                        diff_frame(&normalize_frame(f), &normalize_frame(fb_ctrl))
                    )
                    .into());
                }
                let gb = film_grain_control(&fb.header, true).map_err(|e| e.to_string())?;
                if bytes(&normalize_grain(gb)) != bytes(&normalize_grain(g)) {
                    return Err("film grain control differs".to_string().into());
                }
                if fb.tiles.len() != fa.tiles.len() {
                    return Err("tile count differs".to_string().into());
                }
                for (ta, tb) in fa.tiles.iter().zip(&fb.tiles) {
                    let da = chunk
                        .get(ta.tile_offset as usize..)
                        .and_then(|d| d.get(..ta.tile_size as usize))
                        .ok_or_else(|| Failed::Parse("a tile outside its chunk".into()))?;
                    let db = obus
                        .get(tb.tile_offset as usize..)
                        .and_then(|d| d.get(..tb.tile_size as usize))
                        .ok_or("rebuilt tile outside the OBUs".to_string())?;
                    if da != db || (ta.tile_row, ta.tile_col) != (tb.tile_row, tb.tile_col) {
                        return Err("tile data differs".to_string().into());
                    }
                }
                Ok(pb.ref_frame_update(&fb.header)?)
            })
            .map_err(side_b)?;
            if seen != 1 {
                return Err(Failed::Mismatch(format!("rebuilt OBUs hold {seen} frames")));
            }
            frames += 1;
            Ok(())
        });
        r.map_err(|e| match e {
            Failed::Parse(reason) => RoundTripError::Parse(reason),
            Failed::Refused(reason) => RoundTripError::Refused {
                frame: frames,
                reason,
            },
            Failed::Mismatch(reason) => RoundTripError::Mismatch {
                frame: frames,
                reason,
            },
        })?;
    }
    Ok(frames)
}

/// Side B parses only what the rebuilder wrote: any failure there is a mismatch.
fn side_b(e: Failed) -> Failed {
    match e {
        Failed::Parse(e) => Failed::Mismatch(format!("rebuilt OBUs do not parse: {e}")),
        other => other,
    }
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
