// SPDX-License-Identifier: GPL-2.0
//! H.264 through the VA interface makes the same V4L2 controls as the `daedalus decode` client.
//!
//! For each stream (the committed one in tools/tests/data and the shared H.264 vectors when
//! present), two sides run picture by picture:
//!
//! * the client: `daedalus decode`'s parse (cros-codecs, grouped into pictures), its DPB and its
//!   controls (`sps_control`, `pps_control`, `scaling_matrix_control`, `decode_params`), pictures
//!   numbered from 1, frame-based requests with Annex B start codes;
//! * VA: the buffers FFmpeg's `vaapi_h264.c` fills from the same state — picture parameters
//!   (the SPS / PPS fields VA has, `CurrPic` and `ReferenceFrames` as surfaces, frames of a
//!   `frame_num` gap included with surfaces that hold no picture), the effective scaling lists,
//!   one slice parameter + slice data pair per slice (the NAL unit without start code, with a
//!   trailing zero byte of the byte stream as FFmpeg hands it over) — handed
//!   to the driver's H.264 mapping, with each surface's timestamp as the driver keeps it.
//!
//! Every request's controls and bitstream must be identical, except what VA does not carry
//! and decoding does not use (the mapping's module doc): `seq_parameter_set_id`, the
//! constraint flags and `level_idc`; the `num_ref_idx_*_default_active_minus1` of a picture whose
//! slices all override them; the scaling matrix flag when the matrix is flat. Streams the
//! driver refuses (field coding, POC type 1) must be refused at their first picture.

use std::fs;
use std::path::{Path, PathBuf};

use daedalus_codecs::h264::controls::{pps_control, scaling_matrix_control, sps_control};
use daedalus_codecs::pod;
use daedalus_drv_video::caps::Profile;
use daedalus_drv_video::h264::{Frame, H264};
use daedalus_drv_video::va;
use daedalus_tools::decode::Input;
use daedalus_tools::demux::{Demuxer, Probe};
use daedalus_tools::h264::dpb::{Dpb, Marking};
use daedalus_tools::h264::stream::{NalSource, Picture, Pictures};
use daedalus_tools::h264::v4l2::{decode_params, pic_params, reference_ts, seq_params};
use daedalus_tools::sys::*;

/// Surfaces of frames inferred for a `frame_num` gap: allocated by FFmpeg, never decoded.
const GAP_SURFACE: u32 = 0x4000_0000;

/// What one picture's request carries, client side.
struct ClientRequest {
    sps: v4l2_ctrl_h264_sps,
    pps: v4l2_ctrl_h264_pps,
    matrix: v4l2_ctrl_h264_scaling_matrix,
    decode: v4l2_ctrl_h264_decode_params,
    data: Vec<u8>,
}

/// The VA buffers of one picture.
struct VaPicture {
    pic: va::VAPictureParameterBufferH264,
    iq: va::VAIQMatrixBufferH264,
    slices: Vec<(va::VASliceParameterBufferH264, Vec<u8>)>,
}

fn va_picture_h264(
    surface: u32,
    frame_idx: u32,
    flags: u32,
    top: i32,
    bottom: i32,
) -> va::VAPictureH264 {
    va::VAPictureH264 {
        picture_id: surface,
        frame_idx,
        flags,
        TopFieldOrderCnt: top,
        BottomFieldOrderCnt: bottom,
        ..Default::default()
    }
}

/// The VA buffers FFmpeg's `vaapi_h264.c` fills for `pic` (tagged `id`), with `dpb` as it is
/// before the picture.
fn va_buffers(
    src: &NalSource,
    pic: &Picture,
    id: u64,
    cur: &daedalus_tools::h264::dpb::Current,
    dpb: &Dpb,
    matrix: &v4l2_ctrl_h264_scaling_matrix,
) -> VaPicture {
    let sps = &pic.sps;
    let pps = &pic.pps;
    let first = pic.first();
    let mut p = va::VAPictureParameterBufferH264 {
        CurrPic: va_picture_h264(
            id as u32,
            u32::from(first.header.frame_num),
            0,
            cur.top_poc,
            cur.bottom_poc,
        ),
        picture_width_in_mbs_minus1: sps.pic_width_in_mbs_minus1,
        picture_height_in_mbs_minus1: (sps.pic_height_in_map_units_minus1 + 1)
            * (2 - u16::from(sps.frame_mbs_only_flag))
            - 1,
        bit_depth_luma_minus8: sps.bit_depth_luma_minus8,
        bit_depth_chroma_minus8: sps.bit_depth_chroma_minus8,
        num_ref_frames: sps.max_num_ref_frames,
        pic_init_qp_minus26: pps.pic_init_qp_minus26,
        pic_init_qs_minus26: pps.pic_init_qs_minus26,
        chroma_qp_index_offset: pps.chroma_qp_index_offset,
        second_chroma_qp_index_offset: pps.second_chroma_qp_index_offset,
        frame_num: first.header.frame_num,
        ..Default::default()
    };
    for r in p.ReferenceFrames.iter_mut() {
        *r = va_picture_h264(va::VA_INVALID_SURFACE, 0, va::VA_PICTURE_H264_INVALID, 0, 0);
    }
    for (slot, (k, f)) in p
        .ReferenceFrames
        .iter_mut()
        .zip(dpb.references().enumerate())
    {
        let (frame_idx, flags) = match f.marking {
            Marking::LongTerm(idx) => (idx, va::VA_PICTURE_H264_LONG_TERM_REFERENCE),
            _ => (f.frame_num, va::VA_PICTURE_H264_SHORT_TERM_REFERENCE),
        };
        let surface = f.id.map_or(GAP_SURFACE + k as u32, |id| id as u32);
        *slot = va_picture_h264(surface, frame_idx, flags, f.top_poc, f.bottom_poc);
    }
    // SAFETY: writing the bit fields of the unions.
    unsafe {
        let s = &mut p.seq_fields.bits;
        s.set_chroma_format_idc(u32::from(sps.chroma_format_idc));
        s.set_residual_colour_transform_flag(u32::from(sps.separate_colour_plane_flag));
        s.set_gaps_in_frame_num_value_allowed_flag(u32::from(
            sps.gaps_in_frame_num_value_allowed_flag,
        ));
        s.set_frame_mbs_only_flag(u32::from(sps.frame_mbs_only_flag));
        s.set_mb_adaptive_frame_field_flag(u32::from(sps.mb_adaptive_frame_field_flag));
        s.set_direct_8x8_inference_flag(u32::from(sps.direct_8x8_inference_flag));
        s.set_MinLumaBiPredSize8x8(u32::from(sps.level_idc as u8 >= 31));
        s.set_log2_max_frame_num_minus4(u32::from(sps.log2_max_frame_num_minus4));
        s.set_pic_order_cnt_type(u32::from(sps.pic_order_cnt_type));
        s.set_log2_max_pic_order_cnt_lsb_minus4(u32::from(sps.log2_max_pic_order_cnt_lsb_minus4));
        s.set_delta_pic_order_always_zero_flag(u32::from(sps.delta_pic_order_always_zero_flag));
        let f = &mut p.pic_fields.bits;
        f.set_entropy_coding_mode_flag(u32::from(pps.entropy_coding_mode_flag));
        f.set_weighted_pred_flag(u32::from(pps.weighted_pred_flag));
        f.set_weighted_bipred_idc(u32::from(pps.weighted_bipred_idc));
        f.set_transform_8x8_mode_flag(u32::from(pps.transform_8x8_mode_flag));
        f.set_field_pic_flag(u32::from(first.header.field_pic_flag));
        f.set_constrained_intra_pred_flag(u32::from(pps.constrained_intra_pred_flag));
        f.set_pic_order_present_flag(u32::from(pps.bottom_field_pic_order_in_frame_present_flag));
        f.set_deblocking_filter_control_present_flag(u32::from(
            pps.deblocking_filter_control_present_flag,
        ));
        f.set_redundant_pic_cnt_present_flag(u32::from(pps.redundant_pic_cnt_present_flag));
        f.set_reference_pic_flag(u32::from(first.nal_ref_idc != 0));
    }
    // FFmpeg copies the lists that apply (after the fall-back rules), in raster order.
    let mut iq = va::VAIQMatrixBufferH264 {
        ScalingList4x4: matrix.scaling_list_4x4,
        ..Default::default()
    };
    iq.ScalingList8x8
        .copy_from_slice(&matrix.scaling_list_8x8[..2]);
    let slices = pic
        .slices
        .iter()
        .map(|s| {
            let h = &s.header;
            // FFmpeg's slice data runs to the next start code: with the byte stream's
            // trailing_zero_8bits (one here: a 4-byte start code follows).
            let mut nal = src.data[s.range.clone()].to_vec();
            nal.push(0);
            let t = h.slice_type;
            let sp = va::VASliceParameterBufferH264 {
                slice_data_size: nal.len() as u32,
                slice_data_offset: 0,
                slice_data_flag: va::VA_SLICE_DATA_FLAG_ALL,
                slice_data_bit_offset: h.header_bit_size as u16,
                first_mb_in_slice: h.first_mb_in_slice as u16,
                slice_type: t as u8,
                direct_spatial_mv_pred_flag: u8::from(h.direct_spatial_mv_pred_flag),
                num_ref_idx_l0_active_minus1: if t.is_i() || t.is_si() {
                    0
                } else {
                    h.num_ref_idx_l0_active_minus1
                },
                num_ref_idx_l1_active_minus1: if t.is_b() {
                    h.num_ref_idx_l1_active_minus1
                } else {
                    0
                },
                cabac_init_idc: h.cabac_init_idc,
                slice_qp_delta: h.slice_qp_delta,
                disable_deblocking_filter_idc: h.disable_deblocking_filter_idc,
                slice_alpha_c0_offset_div2: h.slice_alpha_c0_offset_div2,
                slice_beta_offset_div2: h.slice_beta_offset_div2,
                ..Default::default()
            };
            (sp, nal)
        })
        .collect();
    VaPicture { pic: p, iq, slices }
}

/// The VA profile FFmpeg picks for a stream, `None` for the profiles the driver has none of.
fn va_profile(profile_idc: u8) -> Option<Profile> {
    match profile_idc {
        66 => Some(Profile::H264ConstrainedBaseline),
        77 => Some(Profile::H264Main),
        100 => Some(Profile::H264High),
        _ => None,
    }
}

/// What happened to one stream.
#[derive(Debug, Default)]
struct Outcome {
    pictures: usize,
    refused: Option<String>,
}

/// Asserts the named fields of two structs are equal, naming the first that is not.
macro_rules! same {
    ($at:expr, $what:expr, $a:expr, $b:expr, $($field:ident),+ $(,)?) => {{
        let (a, b) = (&$a, &$b);
        $(
            assert!(
                a.$field == b.$field,
                "{}: {} {}: client {:?}, VA {:?}",
                $at, $what, stringify!($field), a.$field, b.$field
            );
        )+
    }};
}

fn bytes<T: pod::Pod>(v: &T) -> &[u8] {
    pod::bytes(v)
}

/// Runs both sides over one stream.
fn check_stream(name: &str, src: &NalSource) -> Outcome {
    let mut pictures = Pictures::new(src);
    let mut dpb = Dpb::new();
    let mut driver: Option<H264> = None;
    let mut seen_idr = false;
    let mut next_id = 1u64;
    let mut out = Vec::new();
    let mut outcome = Outcome::default();
    // Defaults revealed per PPS id by the current picture (see the module doc).
    while let Some(pic) = pictures
        .next_picture()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
    {
        let sps = pic.sps.clone();
        let first = pic.first();
        if !first.idr && !seen_idr {
            continue;
        }
        let Some(profile) = va_profile(sps.profile_idc) else {
            outcome.refused = Some(format!("profile_idc {}", sps.profile_idc));
            return outcome;
        };
        let h264 = driver.get_or_insert_with(|| H264::new(profile));
        if first.idr {
            seen_idr = true;
            dpb.set_seq(seq_params(&sps));
        }
        let id = next_id;
        next_id += 1;
        out.clear();
        let cur = dpb.start_picture(pic_params(first, id), &mut out);
        let client = {
            let (decode, _) = decode_params(&pic, &cur, &dpb);
            let mut data = Vec::new();
            for s in &pic.slices {
                data.extend_from_slice(&[0, 0, 1]);
                data.extend_from_slice(&src.data[s.range.clone()]);
            }
            ClientRequest {
                sps: sps_control(&sps),
                pps: pps_control(&pic.pps),
                matrix: scaling_matrix_control(&pic.pps),
                decode,
                data,
            }
        };
        let vap = va_buffers(src, &pic, id, &cur, &dpb, &client.matrix);
        let slices: Vec<(va::VASliceParameterBufferH264, &[u8])> =
            vap.slices.iter().map(|(p, d)| (*p, &d[..])).collect();
        let decoded = |surface: va::VASurfaceID| {
            (u64::from(surface) < id && surface < GAP_SURFACE).then(|| reference_ts(surface.into()))
        };
        let mapped = h264.frame(&vap.pic, Some(&vap.iq), &slices, decoded);
        let refusable = !sps.frame_mbs_only_flag
            || sps.pic_order_cnt_type == 1
            || sps.chroma_format_idc != 1
            || sps.bit_depth_luma_minus8 != 0;
        if refusable {
            assert!(
                mapped.is_err(),
                "{name}: picture {id} should be refused (frame_mbs_only {}, POC type {})",
                sps.frame_mbs_only_flag,
                sps.pic_order_cnt_type
            );
            outcome.refused = Some(format!(
                "refused: frame_mbs_only {} poc type {} chroma {} depth {}",
                sps.frame_mbs_only_flag,
                sps.pic_order_cnt_type,
                sps.chroma_format_idc,
                sps.bit_depth_luma_minus8 + 8
            ));
            return outcome;
        }
        let mapped = mapped.unwrap_or_else(|e| panic!("{name}: picture {id}: refused: {e:?}"));
        compare(name, id, &pic, &client, mapped);
        outcome.pictures += 1;
        out.clear();
        dpb.finish_picture(cur, &mut out)
            .unwrap_or_else(|e| panic!("{name}: picture {id}: {e}"));
    }
    outcome
}

/// Compares the mapping's controls with the client's (see the module doc for what may differ).
fn compare(name: &str, id: u64, pic: &Picture, client: &ClientRequest, mut va: Frame) {
    let at = format!("{name}: picture {id}");
    let mut sps = client.sps;
    sps.seq_parameter_set_id = 0;
    sps.constraint_set_flags = va.sps.constraint_set_flags;
    sps.level_idc = va.sps.level_idc;
    same!(
        &at,
        "SPS",
        sps,
        va.sps,
        profile_idc,
        chroma_format_idc,
        bit_depth_luma_minus8,
        bit_depth_chroma_minus8,
        log2_max_frame_num_minus4,
        pic_order_cnt_type,
        log2_max_pic_order_cnt_lsb_minus4,
        max_num_ref_frames,
        num_ref_frames_in_pic_order_cnt_cycle,
        offset_for_non_ref_pic,
        offset_for_top_to_bottom_field,
        pic_width_in_mbs_minus1,
        pic_height_in_map_units_minus1,
        flags
    );
    assert!(
        bytes(&sps) == bytes(&va.sps),
        "{at}: SPS differs (offset_for_ref_frame)"
    );
    let mut pps = client.pps;
    pps.seq_parameter_set_id = 0;
    // The defaults are checked where a slice of the picture uses them.
    let uses = |l1: bool| {
        pic.slices.iter().any(|s| {
            let t = s.header.slice_type;
            !s.header.num_ref_idx_active_override_flag
                && if l1 {
                    t.is_b()
                } else {
                    !t.is_i() && !t.is_si()
                }
        })
    };
    if !uses(false) {
        pps.num_ref_idx_l0_default_active_minus1 = va.pps.num_ref_idx_l0_default_active_minus1;
    }
    if !uses(true) {
        pps.num_ref_idx_l1_default_active_minus1 = va.pps.num_ref_idx_l1_default_active_minus1;
    }
    // A flat matrix is no matrix.
    let present = V4L2_H264_PPS_FLAG_SCALING_MATRIX_PRESENT as u16;
    let flat = |m: &v4l2_ctrl_h264_scaling_matrix| {
        m.scaling_list_4x4
            .iter()
            .flatten()
            .chain(m.scaling_list_8x8.iter().flatten())
            .all(|&v| v == 16)
    };
    if pps.flags & present != 0 && flat(&client.matrix) {
        pps.flags &= !present;
    }
    same!(
        &at,
        "PPS",
        pps,
        va.pps,
        pic_parameter_set_id,
        num_slice_groups_minus1,
        num_ref_idx_l0_default_active_minus1,
        num_ref_idx_l1_default_active_minus1,
        weighted_bipred_idc,
        pic_init_qp_minus26,
        pic_init_qs_minus26,
        chroma_qp_index_offset,
        second_chroma_qp_index_offset,
        flags
    );
    assert!(bytes(&pps) == bytes(&va.pps), "{at}: PPS differs");
    if client.pps.flags & present != 0 {
        assert!(
            bytes(&client.matrix) == bytes(&va.matrix),
            "{at}: scaling matrix differs"
        );
    } else {
        assert!(flat(&va.matrix), "{at}: a matrix where the client has none");
    }
    // The DPB: the same entries (VA's order is FFmpeg's; compare as sets).
    let mut c = client.decode;
    let sort = |d: &mut v4l2_ctrl_h264_decode_params| {
        d.dpb.sort_by_key(|e| {
            (
                e.flags & V4L2_H264_DPB_ENTRY_FLAG_VALID == 0,
                e.reference_ts,
            )
        });
    };
    sort(&mut c);
    sort(&mut va.decode);
    same!(
        &at,
        "DECODE_PARAMS",
        c,
        va.decode,
        nal_ref_idc,
        frame_num,
        top_field_order_cnt,
        bottom_field_order_cnt,
        idr_pic_id,
        pic_order_cnt_lsb,
        delta_pic_order_cnt_bottom,
        delta_pic_order_cnt0,
        delta_pic_order_cnt1,
        dec_ref_pic_marking_bit_size,
        pic_order_cnt_bit_size,
        slice_group_change_cycle,
        flags
    );
    for (i, (a, b)) in c.dpb.iter().zip(&va.decode.dpb).enumerate() {
        let what = format!("dpb[{i}]");
        same!(
            &at,
            &what,
            *a,
            *b,
            reference_ts,
            pic_num,
            frame_num,
            fields,
            top_field_order_cnt,
            bottom_field_order_cnt,
            flags
        );
    }
    assert!(bytes(&c) == bytes(&va.decode), "{at}: DECODE_PARAMS differ");
    assert!(client.data == va.data, "{at}: the bitstream differs");
}

fn load(path: &Path) -> Option<NalSource> {
    let ext = path.extension()?.to_str()?;
    match ext {
        "264" | "h264" | "jsv" | "jvt" | "26l" | "avc" => {
            NalSource::load(fs::read(path).ok()?).ok()
        }
        "mp4" | "mkv" => {
            let demuxer =
                Demuxer::open(&Input::File(path.to_path_buf()), Probe::Headers).ok()??;
            NalSource::from_container(demuxer).ok()
        }
        _ => None,
    }
}

#[test]
fn committed_stream() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tools/tests/data/h264-cabac-bframes-640x320.mp4");
    let src = load(&path).expect("the committed H.264 stream");
    let o = check_stream("h264-cabac-bframes-640x320.mp4", &src);
    assert!(o.refused.is_none(), "{o:?}");
    assert!(o.pictures >= 9, "{o:?}");
}

#[test]
fn shared_vectors() {
    let Some(dir) = daedalus_codecs::vectors::shared_subdir_or_skip("h264") else {
        return;
    };
    let mut files: Vec<PathBuf> = walk(&dir);
    files.sort();
    let (mut streams, mut pictures, mut refused) = (0, 0, Vec::new());
    for path in files {
        let Some(src) = load(&path) else { continue };
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let o = check_stream(&name, &src);
        streams += 1;
        pictures += o.pictures;
        if let Some(r) = o.refused {
            refused.push(format!("{name}: {r}"));
        }
    }
    eprintln!(
        "H.264 VA mapping: {streams} streams, {pictures} pictures identical, {} refused:\n  {}",
        refused.len(),
        refused.join("\n  ")
    );
    assert!(streams > 0);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
