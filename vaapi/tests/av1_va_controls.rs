// SPDX-License-Identifier: GPL-2.0
//! AV1 through the VA interface makes the same V4L2 controls as the `daedalus decode` client.
//!
//! For each AV1 IVF stream of the shared vectors (`../shared/vectors`, skipped quietly when
//! absent; no AV1 stream is committed in tools/tests/data), one walk of the stream with
//! cros-codecs' parser feeds two sides:
//!
//! * the client: `daedalus_codecs::av1::controls` from the parse, references named by the
//!   timestamps of the eight slots (request *n* has timestamp *n* µs, as the driver numbers
//!   them), `show_existing_frame` of a key frame reloading every slot, as `daedalus decode`
//!   does;
//! * VA: the buffers FFmpeg 7.1's `vaapi_av1.c` makes from the same headers (picture
//!   parameters, one slice parameter + one copy of the tile group's tile data per tile), with
//!   a model of FFmpeg's surfaces (`s->ref[]`, the film grain `ref_tab[]` of clean surfaces,
//!   `tmp_frame`, a pool of 20 surfaces handing out the lowest free id) — through the driver's
//!   AV1 mapping with its deferral: a frame is queued when the next picture's
//!   `ref_frame_map[]` tells its refresh set.
//!
//! Every request must carry the same controls, field by field (a mismatch names the field),
//! and tiles of the same bytes, except for the fields VA does not carry
//! (`daedalus_drv_video::av1::NOT_IN_VA`, taken from the client's side before comparing), and
//! the refresh sets that no later frame can observe (the last frame's, and the frames before
//! a shown key frame: they are queued with refresh 0, and a hidden one marked shown so that
//! the device outputs its picture), which are counted.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use daedalus_codecs::av1::controls::{film_grain_control, frame_control, sequence_control};
use daedalus_codecs::av1::walk::{ObuAt, Obus, TileFrames};
use daedalus_codecs::cros_codecs::codec::av1::parser::{
    BitDepth, FrameHeaderObu, FrameType, ParsedObu, Parser, SequenceHeaderObu,
};
use daedalus_codecs::uapi::*;
use daedalus_drv_video::av1::{self as drv, Av1, Frame};
use daedalus_drv_video::context::{Picture, Rendered};
use daedalus_drv_video::va;

mod common;
use common::{bytes_of, rendered};

/// How the driver queued a request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// With its refresh set (the client's request).
    Normal,
    /// Before its refresh set was known, with refresh 0 (the client needed the picture).
    Early,
    /// Again, with its refresh set, into a scratch buffer (after `Early`).
    Replay,
}

/// What one request carries.
struct Request {
    /// Its timestamp (ns) and how it was queued (driver side only).
    ts: u64,
    kind: Kind,
    seq: v4l2_ctrl_av1_sequence,
    frame: v4l2_ctrl_av1_frame,
    grain: v4l2_ctrl_av1_film_grain,
    /// (row, col, bytes) of each tile.
    tiles: Vec<(u32, u32, Vec<u8>)>,
}

/// (row, column, bytes) of each tile of `data`.
fn tile_bytes(tiles: &[v4l2_ctrl_av1_tile_group_entry], data: &[u8]) -> Vec<(u32, u32, Vec<u8>)> {
    tiles
        .iter()
        .map(|t| {
            let o = t.tile_offset as usize;
            (
                t.tile_row,
                t.tile_col,
                data[o..o + t.tile_size as usize].to_vec(),
            )
        })
        .collect()
}

/// The driver's side: its AV1 state, what it queued, the timestamp of each surface's picture.
#[derive(Default)]
struct VaSide {
    driver: Av1,
    surface_ts: std::collections::HashMap<u32, u64>,
    actual: Vec<Request>,
    queued: u64,
}

impl VaSide {
    /// Queues `frame` with `refresh` (`replay`: under that earlier request's timestamp).
    fn queue(&mut self, frame: &Frame, refresh: u8, kind: Kind, replay: Option<u64>) {
        self.queued += 1;
        let ts = replay.unwrap_or(self.queued * 1000);
        if replay.is_none() {
            self.surface_ts.insert(frame.target, ts);
        }
        if kind == Kind::Normal {
            self.driver.queued(frame, ts);
        }
        self.actual.push(Request {
            ts,
            kind,
            seq: frame.sequence,
            frame: frame.frame_control(refresh),
            grain: frame.film_grain,
            tiles: tile_bytes(&frame.tiles, &frame.data),
        });
    }
}

/// FFmpeg's surfaces.
struct Ffmpeg {
    /// `s->ref[i]`: the display surface of the frame in slot i.
    refs: [Option<u32>; 8],
    /// `ctx->ref_tab[i]` (valid entries): the clean surface of a film grain frame in slot i.
    ref_tab: [Option<u32>; 8],
    /// `ctx->tmp_frame`.
    tmp: Option<u32>,
}

impl Ffmpeg {
    fn alloc(&self, also_busy: &[u32]) -> u32 {
        let busy: BTreeSet<u32> = self
            .refs
            .iter()
            .chain(&self.ref_tab)
            .flatten()
            .copied()
            .chain(self.tmp)
            .chain(also_busy.iter().copied())
            .collect();
        (1..=20)
            .map(|i| 0x4000_0000 | i)
            .find(|s| !busy.contains(s))
            .expect("a free surface in FFmpeg's pool of 20")
    }
}

/// `vaapi_av1_start_frame()`.
fn picture_parameters(
    seq: &SequenceHeaderObu,
    fh: &FrameHeaderObu,
    ffmpeg: &Ffmpeg,
    current: u32,
    display: u32,
) -> va::VADecPictureParameterBufferAV1 {
    let cc = &seq.color_config;
    let mut p = va::VADecPictureParameterBufferAV1 {
        profile: seq.seq_profile as u8,
        order_hint_bits_minus_1: if seq.enable_order_hint {
            seq.order_hint_bits_minus_1 as u8
        } else {
            0
        },
        bit_depth_idx: match seq.bit_depth {
            BitDepth::Depth8 => 0,
            BitDepth::Depth10 => 1,
            BitDepth::Depth12 => 2,
        },
        matrix_coefficients: cc.matrix_coefficients as u8,
        current_frame: current,
        current_display_picture: display,
        frame_width_minus1: (fh.upscaled_width - 1) as u16,
        frame_height_minus1: (fh.frame_height - 1) as u16,
        primary_ref_frame: fh.primary_ref_frame as u8,
        order_hint: fh.order_hint as u8,
        tile_cols: fh.tile_info.tile_cols as u8,
        tile_rows: fh.tile_info.tile_rows as u8,
        context_update_tile_id: fh.tile_info.context_update_tile_id as u16,
        superres_scale_denominator: if fh.use_superres {
            fh.superres_denom as u8
        } else {
            8
        },
        interp_filter: fh.interpolation_filter as u8,
        filter_level: [
            fh.loop_filter_params.loop_filter_level[0],
            fh.loop_filter_params.loop_filter_level[1],
        ],
        filter_level_u: fh.loop_filter_params.loop_filter_level[2],
        filter_level_v: fh.loop_filter_params.loop_filter_level[3],
        base_qindex: fh.quantization_params.base_q_idx as u8,
        y_dc_delta_q: fh.quantization_params.delta_q_y_dc as i8,
        u_dc_delta_q: fh.quantization_params.delta_q_u_dc as i8,
        u_ac_delta_q: fh.quantization_params.delta_q_u_ac as i8,
        v_dc_delta_q: fh.quantization_params.delta_q_v_dc as i8,
        v_ac_delta_q: fh.quantization_params.delta_q_v_ac as i8,
        cdef_damping_minus_3: (fh.cdef_params.cdef_damping - 3) as u8,
        cdef_bits: fh.cdef_params.cdef_bits as u8,
        ..Default::default()
    };
    // SAFETY (all the unions below): writing the bit fields of zeroed unions.
    let s = unsafe { &mut p.seq_info_fields.fields };
    s.set_still_picture(seq.still_picture.into());
    s.set_use_128x128_superblock(seq.use_128x128_superblock.into());
    s.set_enable_filter_intra(seq.enable_filter_intra.into());
    s.set_enable_intra_edge_filter(seq.enable_intra_edge_filter.into());
    s.set_enable_interintra_compound(seq.enable_interintra_compound.into());
    s.set_enable_masked_compound(seq.enable_masked_compound.into());
    s.set_enable_dual_filter(seq.enable_dual_filter.into());
    s.set_enable_order_hint(seq.enable_order_hint.into());
    s.set_enable_jnt_comp(seq.enable_jnt_comp.into());
    s.set_enable_cdef(seq.enable_cdef.into());
    s.set_mono_chrome(cc.mono_chrome.into());
    s.set_color_range(cc.color_range.into());
    s.set_subsampling_x(cc.subsampling_x.into());
    s.set_subsampling_y(cc.subsampling_y.into());
    s.set_chroma_sample_position(cc.chroma_sample_position as u32);
    s.set_film_grain_params_present(seq.film_grain_params_present.into());

    let sp = &fh.segmentation_params;
    let g = unsafe { &mut p.seg_info.segment_info_fields.bits };
    g.set_enabled(sp.segmentation_enabled.into());
    g.set_update_map(sp.segmentation_update_map.into());
    g.set_temporal_update(sp.segmentation_temporal_update.into());
    g.set_update_data(sp.segmentation_update_data.into());
    for i in 0..8 {
        for j in 0..8 {
            p.seg_info.feature_mask[i] |= u8::from(sp.feature_enabled[i][j]) << j;
        }
        p.seg_info.feature_data[i] = sp.feature_data[i];
    }

    let fg = &fh.film_grain_params;
    let b = unsafe { &mut p.film_grain_info.film_grain_info_fields.bits };
    b.set_apply_grain(fg.apply_grain.into());
    b.set_chroma_scaling_from_luma(fg.chroma_scaling_from_luma.into());
    b.set_grain_scaling_minus_8(fg.grain_scaling_minus_8.into());
    b.set_ar_coeff_lag(fg.ar_coeff_lag);
    b.set_ar_coeff_shift_minus_6(fg.ar_coeff_shift_minus_6.into());
    b.set_grain_scale_shift(fg.grain_scale_shift.into());
    b.set_overlap_flag(fg.overlap_flag.into());
    b.set_clip_to_restricted_range(fg.clip_to_restricted_range.into());
    p.film_grain_info = va::VAFilmGrainStructAV1 {
        grain_seed: fg.grain_seed,
        num_y_points: fg.num_y_points,
        num_cb_points: fg.num_cb_points,
        num_cr_points: fg.num_cr_points,
        cb_mult: fg.cb_mult,
        cb_luma_mult: fg.cb_luma_mult,
        cb_offset: fg.cb_offset,
        cr_mult: fg.cr_mult,
        cr_luma_mult: fg.cr_luma_mult,
        cr_offset: fg.cr_offset,
        ..p.film_grain_info
    };
    let v = &mut p.film_grain_info;
    if fg.apply_grain {
        let points = [
            (
                fg.num_y_points,
                &fg.point_y_value[..],
                &fg.point_y_scaling[..],
                &mut v.point_y_value[..],
                &mut v.point_y_scaling[..],
            ),
            (
                fg.num_cb_points,
                &fg.point_cb_value[..],
                &fg.point_cb_scaling[..],
                &mut v.point_cb_value[..],
                &mut v.point_cb_scaling[..],
            ),
            (
                fg.num_cr_points,
                &fg.point_cr_value[..],
                &fg.point_cr_scaling[..],
                &mut v.point_cr_value[..],
                &mut v.point_cr_scaling[..],
            ),
        ];
        for (n, value, scaling, to_value, to_scaling) in points {
            let n = usize::from(n);
            to_value[..n].copy_from_slice(&value[..n]);
            to_scaling[..n].copy_from_slice(&scaling[..n]);
        }
        // FFmpeg: ar_coeffs_*_plus_128 - 128 (24 luma, 25 chroma coefficients).
        let coeffs = [
            (&mut v.ar_coeffs_y[..], &fg.ar_coeffs_y_plus_128[..24]),
            (&mut v.ar_coeffs_cb[..], &fg.ar_coeffs_cb_plus_128[..25]),
            (&mut v.ar_coeffs_cr[..], &fg.ar_coeffs_cr_plus_128[..25]),
        ];
        for (to, from) in coeffs {
            for (d, &c) in to.iter_mut().zip(from) {
                *d = (i16::from(c) - 128) as i8;
            }
        }
    }

    let f = unsafe { &mut p.pic_info_fields.bits };
    f.set_frame_type(fh.frame_type as u32);
    f.set_show_frame(fh.show_frame.into());
    f.set_showable_frame(fh.showable_frame.into());
    f.set_error_resilient_mode(fh.error_resilient_mode.into());
    f.set_disable_cdf_update(fh.disable_cdf_update.into());
    f.set_allow_screen_content_tools(fh.allow_screen_content_tools);
    f.set_force_integer_mv(fh.force_integer_mv);
    f.set_allow_intrabc(fh.allow_intrabc.into());
    f.set_use_superres(fh.use_superres.into());
    f.set_allow_high_precision_mv(fh.allow_high_precision_mv.into());
    f.set_is_motion_mode_switchable(fh.is_motion_mode_switchable.into());
    f.set_use_ref_frame_mvs(fh.use_ref_frame_mvs.into());
    f.set_disable_frame_end_update_cdf(fh.disable_frame_end_update_cdf.into());
    f.set_uniform_tile_spacing_flag(fh.tile_info.uniform_tile_spacing_flag.into());
    f.set_allow_warped_motion(fh.allow_warped_motion.into());

    let lf = &fh.loop_filter_params;
    let l = unsafe { &mut p.loop_filter_info_fields.bits };
    l.set_sharpness_level(lf.loop_filter_sharpness);
    l.set_mode_ref_delta_enabled(lf.loop_filter_delta_enabled.into());
    l.set_mode_ref_delta_update(lf.loop_filter_delta_update.into());
    p.ref_deltas = lf.loop_filter_ref_deltas;
    p.mode_deltas = lf.loop_filter_mode_deltas;

    let q = &fh.quantization_params;
    let m = unsafe { &mut p.qmatrix_fields.bits };
    m.set_using_qmatrix(q.using_qmatrix.into());
    m.set_qm_y(q.qm_y as u16);
    m.set_qm_u(q.qm_u as u16);
    m.set_qm_v(q.qm_v as u16);
    let c = unsafe { &mut p.mode_control_fields.bits };
    c.set_delta_q_present_flag(q.delta_q_present.into());
    c.set_log2_delta_q_res(q.delta_q_res);
    c.set_delta_lf_present_flag(lf.delta_lf_present.into());
    c.set_log2_delta_lf_res(lf.delta_lf_res.into());
    c.set_delta_lf_multi(lf.delta_lf_multi.into());
    c.set_tx_mode(fh.tx_mode as u32);
    c.set_reference_select(fh.reference_select.into());
    c.set_reduced_tx_set_used(fh.reduced_tx_set.into());
    c.set_skip_mode_present(fh.skip_mode_present.into());

    let cd = &fh.cdef_params;
    // The parser holds the secondary strength as the variable (4 where 3 is coded).
    let coded = |s: u32| if s == 4 { 3 } else { s };
    for i in 0..(1usize << cd.cdef_bits) {
        p.cdef_y_strengths[i] =
            ((cd.cdef_y_pri_strength[i] << 2) + coded(cd.cdef_y_sec_strength[i])) as u8;
        p.cdef_uv_strengths[i] =
            ((cd.cdef_uv_pri_strength[i] << 2) + coded(cd.cdef_uv_sec_strength[i])) as u8;
    }
    let lr = &fh.loop_restoration_params;
    let r = unsafe { &mut p.loop_restoration_fields.bits };
    r.set_yframe_restoration_type(lr.frame_restoration_type[0] as u16);
    r.set_cbframe_restoration_type(lr.frame_restoration_type[1] as u16);
    r.set_crframe_restoration_type(lr.frame_restoration_type[2] as u16);
    r.set_lr_unit_shift(lr.lr_unit_shift.into());
    r.set_lr_uv_shift(lr.lr_uv_shift.into());

    let ti = &fh.tile_info;
    let shift = if seq.use_128x128_superblock { 5 } else { 4 };
    let sbs = |a: u32, b: u32| ((b - a).div_ceil(1 << shift) - 1) as u16;
    for i in 0..ti.tile_cols as usize {
        p.width_in_sbs_minus_1[i] = sbs(ti.mi_col_starts[i], ti.mi_col_starts[i + 1]);
    }
    for i in 0..ti.tile_rows as usize {
        p.height_in_sbs_minus_1[i] = sbs(ti.mi_row_starts[i], ti.mi_row_starts[i + 1]);
    }
    let gm = &fh.global_motion_params;
    for i in 1..8 {
        let w = &mut p.wm[i - 1];
        w.wmtype = gm.gm_type[i] as u32;
        w.wmmat[..6].copy_from_slice(&gm.gm_params[i]);
        w.invalid = u8::from(!gm.warp_valid[i]);
    }
    for i in 0..7 {
        p.ref_frame_idx[i] = fh.ref_frame_idx[i];
    }
    for i in 0..8 {
        p.ref_frame_map[i] = if fh.frame_type == FrameType::KeyFrame {
            va::VA_INVALID_ID
        } else {
            ffmpeg.ref_tab[i]
                .or(ffmpeg.refs[i])
                .unwrap_or(va::VA_INVALID_ID)
        };
    }
    p
}

/// Tile groups of a frame as FFmpeg's `decode_slice` sees them: (tile data, tiles in it).
type Groups = Vec<(Vec<u8>, Vec<v4l2_ctrl_av1_tile_group_entry>)>;

/// A tile group OBU's (or a frame OBU's) tiles as FFmpeg passes them: the data from the first
/// tile on, offsets relative to it.
fn group_of(tu: &[u8], obu: &ObuAt<'_>) -> Option<(Vec<u8>, Vec<v4l2_ctrl_av1_tile_group_entry>)> {
    let mut entries = Vec::new();
    let start = match &obu.parsed {
        ParsedObu::TileGroup(tg) => {
            daedalus_codecs::av1::controls::push_tile_group_entries(tg, 0, &mut entries).ok()?;
            obu.payload
        }
        ParsedObu::Frame(f) => {
            daedalus_codecs::av1::controls::push_tile_group_entries(&f.tile_group, 0, &mut entries)
                .ok()?;
            obu.payload + f.header.header_bytes
        }
        _ => return None,
    };
    let first = entries.iter().map(|t| t.tile_offset).min()?;
    for t in &mut entries {
        t.tile_offset -= first;
    }
    Some((tu[start + first as usize..obu.end].to_vec(), entries))
}

/// Counts of one stream.
#[derive(Default, Debug)]
struct Counts {
    requests: usize,
    hidden: usize,
    grain: usize,
    multi_tile: usize,
    show_existing: usize,
    unobservable_refresh: usize,
    order_hints_after_shown_key: usize,
    parser_panicked: bool,
    early: usize,
    replays: usize,
}

/// Compares the client's and the driver's requests for `path`; with `early_every` > 0, the VA
/// client syncs the picture of every `early_every`-th frame before the next one begins (the
/// driver queues it early, and replays it when it refreshed slots).
fn compare(path: &Path, counts: &mut Counts, early_every: u64) {
    let data = std::fs::read(path).unwrap();
    let Ok((_, tus)) = daedalus_codecs::ivf::frames(&data) else {
        return;
    };
    let mut parser = Parser::default();
    // Client.
    let mut slot_ts = [0u64; 8];
    let mut expected: Vec<Request> = Vec::new();
    let mut next_ts = 1u64; // the client's request numbers
                            // Whether a key frame was shown through show_existing_frame after each request (which
                            // reloads every slot before the next request).
    let mut key_after: Vec<bool> = Vec::new();
    // The slots holding a key frame reloaded by show_existing_frame, before each request.
    let mut reloaded = [false; 8];
    let mut reloaded_at: Vec<[bool; 8]> = Vec::new();
    // VA.
    let mut ffmpeg = Ffmpeg {
        refs: [None; 8],
        ref_tab: [None; 8],
        tmp: None,
    };
    let mut va = VaSide::default();
    for (_, tu) in tus {
        let mut assembly = TileFrames::default();
        let mut groups: Groups = Vec::new();
        let mut obus = Obus::new(&mut parser, tu);
        loop {
            // cros-codecs asserts on some streams (as the daemon, skip them).
            let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| obus.next()));
            let Ok(Some(obu)) = next else {
                if next.is_err() {
                    counts.parser_panicked = true;
                    return;
                }
                break;
            };
            let Ok(obu) = obu else { return };
            if let Some(g) = group_of(tu, &obu) {
                groups.push(g);
            }
            let Ok(Some(tf)) = assembly.push(obu, 0) else {
                continue;
            };
            let parser = obus.parser();
            let fh = tf.header;
            let Some(seq) = parser.sequence_header.clone() else {
                return;
            };
            if seq.bit_depth == BitDepth::Depth12
                || seq.color_config.mono_chrome
                || !(seq.color_config.subsampling_x && seq.color_config.subsampling_y)
            {
                return; // refused by the driver: nothing to compare
            }
            if fh.show_existing_frame {
                counts.show_existing += 1;
                if fh.frame_type == FrameType::KeyFrame {
                    reloaded = [true; 8];
                    if let Some(last) = key_after.last_mut() {
                        *last = true;
                    }
                    let k = usize::from(fh.frame_to_show_map_idx);
                    slot_ts = [slot_ts[k]; 8];
                    // av1dec's refresh process; vaapi_av1_end_frame is not called, so
                    // ref_tab[] stays.
                    ffmpeg.refs = [ffmpeg.refs[k]; 8];
                }
                parser.ref_frame_update(&fh).unwrap();
                groups.clear();
                continue;
            }
            // The client.
            let e = Request {
                ts: next_ts * 1000,
                kind: Kind::Normal,
                seq: sequence_control(&seq).unwrap(),
                frame: frame_control(&seq, &fh, &slot_ts).unwrap(),
                grain: film_grain_control(&fh, true).unwrap(),
                tiles: tile_bytes(&tf.tiles, tu),
            };
            reloaded_at.push(reloaded);
            for i in 0..8 {
                if e.frame.refresh_frame_flags & (1 << i) != 0
                    || (fh.frame_type == FrameType::KeyFrame && fh.show_frame)
                {
                    slot_ts[i] = next_ts * 1000;
                    reloaded[i] = false;
                }
            }
            next_ts += 1;
            expected.push(e);
            key_after.push(false);
            parser.ref_frame_update(&fh).unwrap();

            // VA.
            let grain = fh.film_grain_params.apply_grain;
            let display = ffmpeg.alloc(&[]);
            let current = if grain {
                ffmpeg.tmp = None;
                let t = ffmpeg.alloc(&[display]);
                ffmpeg.tmp = Some(t);
                t
            } else {
                display
            };
            let pic = picture_parameters(&seq, &fh, &ffmpeg, current, display);
            let mut buffers = vec![rendered(va::VAPictureParameterBufferType, &pic)];
            for (data, tiles) in groups.drain(..) {
                for t in tiles {
                    let sp = va::VASliceParameterBufferAV1 {
                        slice_data_size: t.tile_size,
                        slice_data_offset: t.tile_offset,
                        slice_data_flag: va::VA_SLICE_DATA_FLAG_ALL,
                        tile_row: t.tile_row as u16,
                        tile_column: t.tile_col as u16,
                        ..Default::default()
                    };
                    buffers.push(rendered(va::VASliceParameterBufferType, &sp));
                    buffers.push(Rendered {
                        buf_type: va::VASliceDataBufferType,
                        element_size: data.len() as u32,
                        num_elements: 1,
                        bytes: data.clone(),
                    });
                }
            }
            // vaBeginPicture(pic->output_surface): current_frame.
            let picture = Picture {
                surface: current,
                buffers,
            };
            let vp = drv::va_picture(&picture)
                .unwrap_or_else(|e| panic!("{}: VA buffers refused: {}", path.display(), e.name()));
            if std::env::var_os("AV1_DEBUG").is_some() {
                eprintln!(
                    "frame {}: type {:?} show {} refresh {:#x} display {display:#x} current {current:#x} map {:x?} awaiting {:x?}",
                    next_ts - 1,
                    fh.frame_type,
                    fh.show_frame,
                    fh.refresh_frame_flags,
                    pic.ref_frame_map,
                    va.driver.awaiting.iter().map(|a| a.frame.current).collect::<Vec<_>>()
                );
            }
            for s in va.driver.resolve(&vp) {
                let kind = if s.replay_of.is_some() {
                    counts.replays += 1;
                    Kind::Replay
                } else {
                    Kind::Normal
                };
                va.queue(&s.frame, s.refresh, kind, s.replay_of);
            }
            let reference = |id: u32| va.surface_ts.get(&id).copied();
            let frame = va
                .driver
                .frame(vp, current, reference)
                .unwrap_or_else(|e| panic!("{}: frame refused: {}", path.display(), e.name()));
            if let Some(f) = frame {
                let r = f.known_refresh.unwrap();
                va.queue(&f, r, Kind::Normal, None);
            }
            // A client that syncs some pictures before it begins the next one.
            if early_every > 0 && (next_ts - 1) % early_every == 0 {
                for (i, f) in va.driver.flush_for(Some(display)) {
                    va.queue(&f, 0, Kind::Early, None);
                    let ts = va.actual.last().unwrap().ts;
                    va.driver.queued_early(i, ts);
                    counts.early += 1;
                }
            }
            // vaapi_av1_end_frame / av1dec's reference update.
            let refresh = if fh.frame_type == FrameType::KeyFrame && fh.show_frame {
                0xff
            } else {
                fh.refresh_frame_flags
            };
            for i in 0..8 {
                if refresh & (1 << i) != 0 {
                    ffmpeg.refs[i] = Some(display);
                    ffmpeg.ref_tab[i] = grain.then_some(current);
                }
            }
        }
    }
    // End of stream: the client destroys the context.
    for (i, f) in va.driver.flush_for(None) {
        va.queue(&f, 0, Kind::Normal, None);
        let _ = i;
    }
    // An early request that was replayed: the replay stands for it (at its place: nothing was
    // queued between them); it must be the same request but for refresh 0 (and a hidden frame
    // marked shown).
    let mut effective: Vec<&Request> = Vec::new();
    for (k, a) in va.actual.iter().enumerate() {
        let replay = va.actual[k + 1..]
            .iter()
            .find(|r| r.kind == Kind::Replay && r.ts == a.ts);
        match (a.kind, replay) {
            (Kind::Early, Some(r)) => {
                let mut f = r.frame;
                f.refresh_frame_flags = 0;
                f.flags = a.frame.flags;
                assert!(
                    bytes_of(&f) == bytes_of(&a.frame) && a.tiles == r.tiles,
                    "{}: the replay of request {k} is not the same request",
                    path.display()
                );
            }
            _ => effective.push(a),
        }
    }
    // The driver's timestamps → the client's numbering of the same requests.
    let renumber: std::collections::HashMap<u64, u64> = effective
        .iter()
        .enumerate()
        .map(|(i, a)| (a.ts, (i as u64 + 1) * 1000))
        .collect();
    let actual: Vec<Request> = effective
        .into_iter()
        .map(|a| {
            let mut frame = a.frame;
            for t in frame.reference_frame_ts.iter_mut().filter(|t| **t != 0) {
                *t = renumber[t];
            }
            Request {
                ts: a.ts,
                kind: a.kind,
                seq: a.seq,
                frame,
                grain: a.grain,
                tiles: a.tiles.clone(),
            }
        })
        .collect();
    assert_eq!(
        expected.len(),
        actual.len(),
        "{}: request counts",
        path.display()
    );
    let name = path.display();
    for (n, (e, a)) in expected.iter().zip(&actual).enumerate() {
        counts.requests += 1;
        let mut e_frame = e.frame;
        let mut e_seq = e.seq;
        let mut e_grain = e.grain;
        // Not in VA (NOT_IN_VA): the client's values where the driver has its own.
        e_seq.flags =
            (e_seq.flags & !drv::SEQUENCE_FLAGS_SET & !V4L2_AV1_SEQUENCE_FLAG_ENABLE_REF_FRAME_MVS)
                | (a.seq.flags
                    & (drv::SEQUENCE_FLAGS_SET | V4L2_AV1_SEQUENCE_FLAG_ENABLE_REF_FRAME_MVS));
        e_seq.max_frame_width_minus_1 = a.seq.max_frame_width_minus_1;
        e_seq.max_frame_height_minus_1 = a.seq.max_frame_height_minus_1;
        e_frame.flags =
            (e_frame.flags & !drv::FRAME_FLAGS_UNSET) | (a.frame.flags & drv::FRAME_FLAGS_UNSET);
        let diff = V4L2_AV1_QUANTIZATION_FLAG_DIFF_UV_DELTA as u8;
        e_frame.quantization.flags =
            (e_frame.quantization.flags & !diff) | (a.frame.quantization.flags & diff);
        e_frame.render_width_minus_1 = a.frame.render_width_minus_1;
        e_frame.render_height_minus_1 = a.frame.render_height_minus_1;
        e_frame.tile_info.tile_size_bytes = a.frame.tile_info.tile_size_bytes;
        e_frame.current_frame_id = a.frame.current_frame_id;
        e_frame.buffer_removal_time = a.frame.buffer_removal_time;
        e_grain.film_grain_params_ref_idx = a.grain.film_grain_params_ref_idx;
        if e_frame.frame_type == 0 {
            e_frame.reference_frame_ts = a.frame.reference_frame_ts;
        }
        // After a key frame shown through show_existing_frame, cros-codecs' parser (and so
        // the client) has 0 as every slot's order hint, where the specification reloads the
        // key frame's (7.21 then 7.20: RefOrderHint[i] = OrderHint of the shown key frame), as
        // FFmpeg and the driver have it. Counted, not compared.
        let reloaded = reloaded_at[n];
        let mut fixed = false;
        for i in 0..7 {
            let slot = e_frame.ref_frame_idx[i] as usize;
            if e_frame.frame_type != 0
                && e_frame.frame_type != 2
                && reloaded[slot]
                && e_frame.order_hints[i + 1] != a.frame.order_hints[i + 1]
            {
                e_frame.order_hints[i + 1] = a.frame.order_hints[i + 1];
                fixed = true;
            }
        }
        if fixed {
            counts.order_hints_after_shown_key += 1;
            e_frame.skip_mode_frame = a.frame.skip_mode_frame;
            let allowed = V4L2_AV1_FRAME_FLAG_SKIP_MODE_ALLOWED;
            e_frame.flags = (e_frame.flags & !allowed) | (a.frame.flags & allowed);
        }
        // Refresh sets nothing can observe: queued with 0 (hidden: marked shown).
        if e_frame.refresh_frame_flags != a.frame.refresh_frame_flags
            && a.frame.refresh_frame_flags == 0
        {
            let next_is_shown_key = key_after[n]
                || expected.get(n + 1).is_some_and(|x| {
                    x.frame.frame_type == 0 && x.frame.flags & V4L2_AV1_FRAME_FLAG_SHOW_FRAME != 0
                });
            if !(n + 1 == expected.len() || next_is_shown_key) {
                for k in n.saturating_sub(3)..(n + 3).min(expected.len()) {
                    let x = &expected[k].frame;
                    eprintln!(
                        "request {k}: type {} flags {:#x} refresh {:#x} / driver {:#x}",
                        x.frame_type,
                        x.flags,
                        x.refresh_frame_flags,
                        actual[k].frame.refresh_frame_flags
                    );
                }
            }
            assert!(
                n + 1 == expected.len() || next_is_shown_key,
                "{name}: request {n}: refresh_frame_flags {:#x}, the driver {:#x}",
                e_frame.refresh_frame_flags,
                a.frame.refresh_frame_flags
            );
            counts.unobservable_refresh += 1;
            e_frame.refresh_frame_flags = 0;
        }
        if e_frame.refresh_frame_flags == 0
            && e_frame.flags & V4L2_AV1_FRAME_FLAG_SHOW_FRAME == 0
            && e_frame.frame_type != 0
        {
            e_frame.flags |= V4L2_AV1_FRAME_FLAG_SHOW_FRAME;
            e_frame.flags &= !V4L2_AV1_FRAME_FLAG_SHOWABLE_FRAME;
        }
        if e.frame.flags & V4L2_AV1_FRAME_FLAG_SHOW_FRAME == 0 {
            counts.hidden += 1;
        }
        if u32::from(e.grain.flags) & V4L2_AV1_FILM_GRAIN_FLAG_APPLY_GRAIN != 0 {
            counts.grain += 1;
        }
        if e.tiles.len() > 1 {
            counts.multi_tile += 1;
        }
        macro_rules! same {
            ($what:literal, $e:expr, $a:expr) => {
                assert!(
                    bytes_of(&$e) == bytes_of(&$a),
                    "{name}: request {n}: {} differs:\n client {:?}\n driver {:?}",
                    $what,
                    bytes_of(&$e),
                    bytes_of(&$a)
                );
            };
        }
        same!("sequence", e_seq, a.seq);
        let (ef, af) = (&e_frame, &a.frame);
        macro_rules! by_field {
            ($($f:ident),+) => {
                [$((stringify!($f), bytes_of(&ef.$f), bytes_of(&af.$f))),+]
            };
        }
        #[rustfmt::skip]
        let fields = by_field![
            tile_info, quantization, segmentation, loop_filter, cdef, loop_restoration,
            global_motion, flags, frame_type, order_hint, upscaled_width, interpolation_filter,
            tx_mode, frame_width_minus_1, frame_height_minus_1, superres_denom, skip_mode_frame,
            primary_ref_frame, order_hints, ref_frame_idx, reference_frame_ts,
            refresh_frame_flags
        ];
        for (field, e, a) in fields {
            assert!(
                e == a,
                "{name}: request {n}: frame.{field} differs:\n client {e:?}\n driver {a:?}"
            );
        }
        same!("frame (the rest)", e_frame, a.frame);
        same!("film_grain", e_grain, a.grain);
        assert!(e.tiles == a.tiles, "{name}: request {n}: tiles differ");
    }
}

fn streams() -> Vec<PathBuf> {
    let Some(dir) = daedalus_codecs::vectors::shared_subdir_or_skip("av1") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "ivf") {
                out.push(p);
            }
        }
    }
    out.sort();
    // All of them with AV1_VA_ALL; else every feature directory and a sample of the large ones.
    if std::env::var_os("AV1_VA_ALL").is_none() {
        out.retain(|p| {
            let s = p.to_string_lossy();
            !(s.contains("/8-bit/data/")
                || s.contains("/10-bit/data/")
                || s.contains("/quantizer/")
                || s.contains("/8-bit/size/"))
                || s.ends_with("00000527.ivf")
                || s.ends_with("00000671.ivf")
                || s.ends_with("quantizer-00.ivf")
                || s.ends_with("quantizer-63.ivf")
                || s.ends_with("size-16x16.ivf")
                || s.ends_with("size-66x66.ivf")
        });
    }
    out
}

fn run(early_every: u64) -> Counts {
    let mut total = Counts::default();
    let mut n = 0;
    for s in &streams() {
        let mut c = Counts::default();
        compare(s, &mut c, early_every);
        if c.requests > 0 {
            n += 1;
        }
        if c.parser_panicked {
            eprintln!("{}: skipped (cros-codecs' parser panicked)", s.display());
        }
        total.requests += c.requests;
        total.hidden += c.hidden;
        total.grain += c.grain;
        total.multi_tile += c.multi_tile;
        total.show_existing += c.show_existing;
        total.unobservable_refresh += c.unobservable_refresh;
        total.order_hints_after_shown_key += c.order_hints_after_shown_key;
        total.early += c.early;
        total.replays += c.replays;
    }
    eprintln!("{n} streams (a sync every {early_every} frames): {total:?}");
    total
}

#[test]
fn va_buffers_make_the_clients_controls() {
    if streams().is_empty() {
        return;
    }
    let total = run(0);
    assert!(total.requests > 1000);
    assert!(total.hidden > 0 && total.grain > 0 && total.multi_tile > 0 && total.show_existing > 0);
    assert_eq!((total.early, total.replays), (0, 0));
}

/// A client that needs pictures before it begins the next one (the driver queues them early
/// with refresh 0, then replays those that refreshed slots): the requests that count are the
/// same.
#[test]
fn early_pictures_are_replayed_into_the_same_controls() {
    if streams().is_empty() {
        return;
    }
    for every in [1, 3] {
        let total = run(every);
        assert!(total.requests > 1000);
        assert!(total.early > 0 && total.replays > 0);
    }
}
