// SPDX-License-Identifier: GPL-2.0
//! H.264: VA parameter buffers to the stateless controls `H264_SPS`, `H264_PPS`,
//! `H264_SCALING_MATRIX` and `H264_DECODE_PARAMS` (frame-based decoding, Annex B start codes).
//!
//! VA hands over what a decoder with its own slice parser needs: no SPS / PPS NAL units, and
//! picture parameters without several fields the controls carry. What the driver does about each:
//!
//! * Recovered exactly from the slice NAL units (VA's slice data is each slice's NAL unit, header
//!   byte first, emulation prevention bytes kept — FFmpeg and GStreamer both hand it over so):
//!   `nal_ref_idc` and IDR-ness (the NAL header byte), `idr_pic_id`, `pic_order_cnt_lsb`, the
//!   delta POCs, `dec_ref_pic_marking_bit_size` and `pic_order_cnt_bit_size`. The slice header
//!   is parsed with cros-codecs' parser (the one the `daedalus decode` client uses), fed the SPS
//!   and PPS that `daedalus_codecs::h264::rebuild` writes from the controls made of VA's fields:
//!   every field the slice header syntax depends on comes from VA.
//! * `pic_parameter_set_id`: read from the slice header. `num_ref_idx_l{0,1}_default_active_minus1`:
//!   a slice without `num_ref_idx_active_override_flag` uses the defaults, and VA's slice
//!   parameters give the active counts, so the first such slice reveals them (kept per PPS id
//!   for later pictures); when every slice overrides them their value decodes nothing.
//! * Not in VA and not needed to decode: `seq_parameter_set_id` (0: the request carries its own
//!   SPS and PPS), the constraint flags and `profile_idc` (from the config's profile:
//!   Constrained Baseline is 66 with `constraint_set1_flag`, Main 77, High 100), `level_idc` (the
//!   smallest level of Table A-1 that holds the picture and its reference frames).
//! * Refused, never guessed: POC type 1 (its `offset_for_*` values are in no VA buffer and the
//!   decoder computes POCs with them), field coding (PAFF / MBAFF: the devices this driver
//!   serves decode frames), slice groups (FMO), 4:4:4 / separate colour planes, devices that
//!   cannot take whole frames with start codes.
//!
//! The DPB comes from VA's `ReferenceFrames`: surfaces are named by the timestamp of the request
//! that decoded them (the caller's `reference`), `pic_num` is `FrameNumWrap` (8.2.4.1) or
//! `LongTermPicNum`. A reference surface holding no picture of this context is a frame that
//! FFmpeg invented for a `frame_num` gap; it is left out of `dpb[]` as the `daedalus decode`
//! client leaves such frames out (the decoder builds its own for the gap).

use std::collections::HashMap;
use std::io::Cursor;

use cros_codecs::bitstream_utils::BitReader;
use cros_codecs::codec::h264::parser::{Nalu, Parser, SliceHeader};
use daedalus_client::sys::*;
use daedalus_codecs::h264::controls::{decode_params_control, dpb_entry};
use daedalus_codecs::h264::rebuild::write_parameter_sets;
use daedalus_proto::formats::BitDepth;

use crate::caps::Profile;
use crate::context::Picture;
use crate::mapped::{Control, Mapped};
use crate::status::{Error, Result};
use crate::va;

/// Annex B start code put before each slice.
const START_CODE: [u8; 3] = [0, 0, 1];

/// The controls of one picture and its bitstream.
#[derive(Clone)]
pub struct Frame {
    /// `V4L2_CID_STATELESS_H264_SPS`.
    pub sps: v4l2_ctrl_h264_sps,
    /// `V4L2_CID_STATELESS_H264_PPS`.
    pub pps: v4l2_ctrl_h264_pps,
    /// `V4L2_CID_STATELESS_H264_SCALING_MATRIX`.
    pub matrix: v4l2_ctrl_h264_scaling_matrix,
    /// `V4L2_CID_STATELESS_H264_DECODE_PARAMS`.
    pub decode: v4l2_ctrl_h264_decode_params,
    /// The slices, each with an Annex B start code.
    pub data: Vec<u8>,
}

/// The H.264 state of a decode context.
pub struct H264 {
    profile: Profile,
    /// `num_ref_idx_l{0,1}_default_active_minus1` per PPS id, as slices revealed them.
    defaults: HashMap<u8, [Option<u8>; 2]>,
}

/// Why a picture is refused, for the log.
fn refuse(what: String) -> Error {
    log::warn!("H.264: {what}");
    Error::DECODING_ERROR
}

/// The smallest `level_idc` of H.264 Table A-1 whose MaxFS holds a frame of `frame_mbs`
/// macroblocks and whose MaxDpbMbs holds `ref_frames` of them.
fn level_for(frame_mbs: u32, ref_frames: u32) -> u8 {
    const LEVELS: [(u8, u32, u32); 17] = [
        (10, 99, 396),
        (11, 396, 900),
        (12, 396, 2376),
        (13, 396, 2376),
        (20, 396, 2376),
        (21, 792, 4752),
        (22, 1620, 8100),
        (30, 1620, 8100),
        (31, 3600, 18000),
        (32, 5120, 20480),
        (40, 8192, 32768),
        (41, 8192, 32768),
        (42, 8704, 34816),
        (50, 22080, 110400),
        (51, 36864, 184320),
        (52, 36864, 184320),
        (60, 139264, 696320),
    ];
    let dpb = frame_mbs.saturating_mul(ref_frames.max(1));
    LEVELS
        .iter()
        .find(|&&(_, max_fs, max_dpb)| frame_mbs <= max_fs && dpb <= max_dpb)
        .map_or(62, |&(level, _, _)| level)
}

/// `pic_parameter_set_id` of a slice NAL unit (header byte first).
fn pps_id(nal: &[u8]) -> Result<u8> {
    let mut r = BitReader::new(nal.get(1..).unwrap_or_default(), true);
    let read = |r: &mut BitReader| r.read_ue::<u32>();
    read(&mut r)
        .and_then(|_| read(&mut r))
        .and_then(|_| r.read_ue_max::<u8>(255))
        .map_err(|e| refuse(format!("slice header: {e}")))
}

impl H264 {
    /// A context's state before its first picture, for contexts of `profile`.
    pub fn new(profile: Profile) -> H264 {
        H264 {
            profile,
            defaults: HashMap::new(),
        }
    }

    /// The request of the VA picture `picture`; `reference` gives the timestamp (ns) of the
    /// picture decoded into a surface (`None`: the surface holds no picture of this context).
    pub fn map(
        &mut self,
        picture: &Picture,
        reference: impl Fn(va::VASurfaceID) -> Option<u64>,
    ) -> Result<Mapped> {
        let pic: va::VAPictureParameterBufferH264 =
            picture.param(va::VAPictureParameterBufferType)?;
        let iq: Option<va::VAIQMatrixBufferH264> =
            match picture.of_type(va::VAIQMatrixBufferType).next() {
                Some(_) => Some(picture.param(va::VAIQMatrixBufferType)?),
                None => None,
            };
        let slices = picture.slices::<va::VASliceParameterBufferH264>(|s| {
            (s.slice_data_offset, s.slice_data_size, s.slice_data_flag)
        })?;
        let f = self.frame(&pic, iq.as_ref(), &slices, reference)?;
        let width = (u32::from(f.sps.pic_width_in_mbs_minus1) + 1) * 16;
        let height = (u32::from(f.sps.pic_height_in_map_units_minus1) + 1) * 16;
        Ok(Mapped {
            width,
            height,
            depth: BitDepth::Eight,
            data: vec![f.data],
            controls: vec![
                Control::new(V4L2_CID_STATELESS_H264_SPS, f.sps).stream(),
                Control::new(V4L2_CID_STATELESS_H264_PPS, f.pps),
                Control::new(V4L2_CID_STATELESS_H264_SCALING_MATRIX, f.matrix),
                Control::new(V4L2_CID_STATELESS_H264_DECODE_PARAMS, f.decode),
            ],
            menus: vec![
                (
                    V4L2_CID_STATELESS_H264_DECODE_MODE,
                    V4L2_STATELESS_H264_DECODE_MODE_FRAME_BASED as i32,
                ),
                (
                    V4L2_CID_STATELESS_H264_START_CODE,
                    V4L2_STATELESS_H264_START_CODE_ANNEX_B as i32,
                ),
            ],
            starts_stream: f.decode.flags & V4L2_H264_DECODE_PARAM_FLAG_IDR_PIC != 0,
        })
    }

    /// The controls of the picture VA describes with `pic`, `iq` and `slices` (each slice's
    /// parameters with its NAL unit).
    pub fn frame(
        &mut self,
        pic: &va::VAPictureParameterBufferH264,
        iq: Option<&va::VAIQMatrixBufferH264>,
        slices: &[(va::VASliceParameterBufferH264, &[u8])],
        reference: impl Fn(va::VASurfaceID) -> Option<u64>,
    ) -> Result<Frame> {
        // SAFETY: reading the bit fields of the unions (plain integers either way).
        let (seq, pf) = unsafe { (pic.seq_fields.bits, pic.pic_fields.bits) };
        if seq.frame_mbs_only_flag() == 0 || pf.field_pic_flag() != 0 {
            return Err(refuse(
                "the stream codes fields (frame_mbs_only_flag = 0: field pictures or MBAFF), \
                 which the decoder does not decode"
                    .into(),
            ));
        }
        if pic.num_slice_groups_minus1 != 0 {
            return Err(refuse(format!(
                "{} slice groups (FMO): not decoded",
                u32::from(pic.num_slice_groups_minus1) + 1
            )));
        }
        if seq.pic_order_cnt_type() == 1 {
            return Err(refuse(
                "pic_order_cnt_type 1: its offset_for_* values are not in the VA parameters, \
                 and the decoder needs them"
                    .into(),
            ));
        }
        if seq.chroma_format_idc() != 1 || seq.residual_colour_transform_flag() != 0 {
            return Err(refuse(format!(
                "chroma_format_idc {} (separate planes {}): only 4:2:0 is decoded",
                seq.chroma_format_idc(),
                seq.residual_colour_transform_flag()
            )));
        }
        if pic.bit_depth_luma_minus8 != 0 || pic.bit_depth_chroma_minus8 != 0 {
            return Err(refuse(format!(
                "{}-bit luma / {}-bit chroma: only 8-bit is decoded",
                u32::from(pic.bit_depth_luma_minus8) + 8,
                u32::from(pic.bit_depth_chroma_minus8) + 8
            )));
        }
        let (profile_idc, constraint_set_flags) = match self.profile {
            Profile::H264ConstrainedBaseline => (66, V4L2_H264_SPS_CONSTRAINT_SET1_FLAG as u8),
            Profile::H264Main => (77, 0),
            _ => (100, 0),
        };
        // (65536 x 65536 macroblocks do not fit 32 bits: saturated, as a level bound.)
        let frame_mbs = u32::try_from(
            (u64::from(pic.picture_width_in_mbs_minus1) + 1)
                * (u64::from(pic.picture_height_in_mbs_minus1) + 1),
        )
        .unwrap_or(u32::MAX);
        let mut sps_flags = V4L2_H264_SPS_FLAG_FRAME_MBS_ONLY;
        for (on, flag) in [
            (
                seq.delta_pic_order_always_zero_flag(),
                V4L2_H264_SPS_FLAG_DELTA_PIC_ORDER_ALWAYS_ZERO,
            ),
            (
                seq.gaps_in_frame_num_value_allowed_flag(),
                V4L2_H264_SPS_FLAG_GAPS_IN_FRAME_NUM_VALUE_ALLOWED,
            ),
            (
                seq.direct_8x8_inference_flag(),
                V4L2_H264_SPS_FLAG_DIRECT_8X8_INFERENCE,
            ),
        ] {
            if on != 0 {
                sps_flags |= flag;
            }
        }
        let sps = v4l2_ctrl_h264_sps {
            profile_idc,
            constraint_set_flags,
            level_idc: level_for(frame_mbs, u32::from(pic.num_ref_frames)),
            seq_parameter_set_id: 0,
            chroma_format_idc: 1,
            bit_depth_luma_minus8: 0,
            bit_depth_chroma_minus8: 0,
            log2_max_frame_num_minus4: seq.log2_max_frame_num_minus4() as u8,
            pic_order_cnt_type: seq.pic_order_cnt_type() as u8,
            log2_max_pic_order_cnt_lsb_minus4: seq.log2_max_pic_order_cnt_lsb_minus4() as u8,
            max_num_ref_frames: pic.num_ref_frames,
            pic_width_in_mbs_minus1: pic.picture_width_in_mbs_minus1,
            pic_height_in_map_units_minus1: pic.picture_height_in_mbs_minus1,
            flags: sps_flags,
            ..Default::default()
        };
        let mut pps_flags = 0;
        for (on, flag) in [
            (
                pf.entropy_coding_mode_flag(),
                V4L2_H264_PPS_FLAG_ENTROPY_CODING_MODE,
            ),
            (
                pf.pic_order_present_flag(),
                V4L2_H264_PPS_FLAG_BOTTOM_FIELD_PIC_ORDER_IN_FRAME_PRESENT,
            ),
            (pf.weighted_pred_flag(), V4L2_H264_PPS_FLAG_WEIGHTED_PRED),
            (
                pf.deblocking_filter_control_present_flag(),
                V4L2_H264_PPS_FLAG_DEBLOCKING_FILTER_CONTROL_PRESENT,
            ),
            (
                pf.constrained_intra_pred_flag(),
                V4L2_H264_PPS_FLAG_CONSTRAINED_INTRA_PRED,
            ),
            (
                pf.redundant_pic_cnt_present_flag(),
                V4L2_H264_PPS_FLAG_REDUNDANT_PIC_CNT_PRESENT,
            ),
            (
                pf.transform_8x8_mode_flag(),
                V4L2_H264_PPS_FLAG_TRANSFORM_8X8_MODE,
            ),
        ] {
            if on != 0 {
                pps_flags |= flag;
            }
        }
        // The lists apply as VA gives them; flat lists are the same as no matrix.
        let mut matrix = v4l2_ctrl_h264_scaling_matrix {
            scaling_list_4x4: [[16; 16]; 6],
            scaling_list_8x8: [[16; 64]; 6],
        };
        if let Some(iq) = iq {
            matrix.scaling_list_4x4 = iq.ScalingList4x4;
            if pf.transform_8x8_mode_flag() != 0 {
                matrix.scaling_list_8x8[..2].copy_from_slice(&iq.ScalingList8x8);
            }
        }
        let flat = matrix.scaling_list_4x4.iter().flatten().all(|&v| v == 16)
            && matrix.scaling_list_8x8.iter().flatten().all(|&v| v == 16);
        if !flat {
            pps_flags |= V4L2_H264_PPS_FLAG_SCALING_MATRIX_PRESENT;
        }
        let mut pps = v4l2_ctrl_h264_pps {
            pic_parameter_set_id: 0,
            seq_parameter_set_id: 0,
            num_slice_groups_minus1: 0,
            num_ref_idx_l0_default_active_minus1: 0,
            num_ref_idx_l1_default_active_minus1: 0,
            weighted_bipred_idc: pf.weighted_bipred_idc() as u8,
            pic_init_qp_minus26: pic.pic_init_qp_minus26,
            pic_init_qs_minus26: pic.pic_init_qs_minus26,
            chroma_qp_index_offset: pic.chroma_qp_index_offset,
            second_chroma_qp_index_offset: pic.second_chroma_qp_index_offset,
            flags: pps_flags as u16,
        };

        // The slices: their headers parsed with parameter sets made of the VA fields.
        if slices.is_empty() {
            return Err(refuse("a picture without slices".into()));
        }
        // A parser per picture: its parameter sets are the picture's (and it is not `Send`).
        let mut parser = Parser::default();
        let mut data = Vec::new();
        let mut headers: Vec<(SliceHeader, u8, bool)> = Vec::with_capacity(slices.len());
        let mut revealed: [Option<u8>; 2] = [None; 2];
        for (i, (sp, data_of_slice)) in slices.iter().enumerate() {
            // FFmpeg hands over the bytes up to the next start code: trailing_zero_8bits of
            // the byte stream, not of the NAL unit (an RBSP never ends in a zero byte).
            let end = data_of_slice
                .iter()
                .rposition(|&b| b != 0)
                .map_or(0, |p| p + 1);
            let nal = &data_of_slice[..end];
            let id = pps_id(nal)?;
            if i == 0 {
                pps.pic_parameter_set_id = id;
            } else if id != pps.pic_parameter_set_id {
                return Err(refuse(format!(
                    "slice {i} uses PPS {id}, the first slice PPS {}",
                    pps.pic_parameter_set_id
                )));
            }
            // Parse with the defaults equal to this slice's active counts: right when the slice
            // does not override them, and unused when it does.
            let mut parse_pps = pps;
            parse_pps.num_ref_idx_l0_default_active_minus1 = sp.num_ref_idx_l0_active_minus1;
            parse_pps.num_ref_idx_l1_default_active_minus1 = sp.num_ref_idx_l1_active_minus1;
            let header = parse_slice(&mut parser, &sps, &parse_pps, &matrix, nal)?;
            let (h, ref_idc, idr) = &header;
            self.check_slice(i, pic, sp, h, *ref_idc)?;
            if !h.num_ref_idx_active_override_flag {
                let t = h.slice_type;
                if t.is_p() || t.is_sp() || t.is_b() {
                    learn(&mut revealed[0], sp.num_ref_idx_l0_active_minus1, "l0")?;
                }
                if t.is_b() {
                    learn(&mut revealed[1], sp.num_ref_idx_l1_active_minus1, "l1")?;
                }
            }
            if i > 0 && *idr != headers[0].2 {
                return Err(refuse("IDR and non-IDR slices in one picture".into()));
            }
            data.extend_from_slice(&START_CODE);
            data.extend_from_slice(nal);
            headers.push(header);
        }
        let known = self
            .defaults
            .entry(pps.pic_parameter_set_id)
            .or_insert([None; 2]);
        for (k, r) in known.iter_mut().zip(revealed) {
            if r.is_some() {
                *k = r;
            }
        }
        pps.num_ref_idx_l0_default_active_minus1 = known[0].unwrap_or(0);
        pps.num_ref_idx_l1_default_active_minus1 = known[1].unwrap_or(0);

        let (first, nal_ref_idc, idr) = &headers[0];
        // (`pic.frame_num` is the header's: `check_slice` compared them.)
        let mut decode = decode_params_control(
            first,
            *nal_ref_idc,
            *idr,
            (
                pic.CurrPic.TopFieldOrderCnt,
                pic.CurrPic.BottomFieldOrderCnt,
            ),
            headers.iter().map(|(h, _, _)| h.slice_type),
        );
        let max_frame_num = 1i64 << (seq.log2_max_frame_num_minus4() + 4);
        let mut n = 0;
        for r in &pic.ReferenceFrames {
            let long = r.flags & va::VA_PICTURE_H264_LONG_TERM_REFERENCE != 0;
            let short = r.flags & va::VA_PICTURE_H264_SHORT_TERM_REFERENCE != 0;
            if r.picture_id == va::VA_INVALID_SURFACE
                || r.flags & va::VA_PICTURE_H264_INVALID != 0
                || !(long || short)
            {
                continue;
            }
            if r.flags & (va::VA_PICTURE_H264_TOP_FIELD | va::VA_PICTURE_H264_BOTTOM_FIELD) != 0 {
                return Err(refuse("a field reference in a frame-coded stream".into()));
            }
            let Some(ts) = reference(r.picture_id) else {
                log::debug!(
                    "H.264: reference surface {:#x} (frame_num {}) holds no picture: a frame \
                     of a frame_num gap, left to the decoder",
                    r.picture_id,
                    r.frame_idx
                );
                continue;
            };
            let entry = decode
                .dpb
                .get_mut(n)
                .ok_or_else(|| refuse("more than 16 reference frames".into()))?;
            n += 1;
            let (frame_num, pic_num) = if long {
                (r.frame_idx as u16, r.frame_idx)
            } else {
                // FrameNumWrap (8.2.4.1).
                let f = i64::from(r.frame_idx);
                let wrap = if f > i64::from(pic.frame_num) {
                    f - max_frame_num
                } else {
                    f
                };
                (r.frame_idx as u16, wrap as u32)
            };
            *entry = dpb_entry(
                ts,
                frame_num,
                pic_num,
                (r.TopFieldOrderCnt, r.BottomFieldOrderCnt),
                long,
            );
        }
        Ok(Frame {
            sps,
            pps,
            matrix,
            decode,
            data,
        })
    }

    /// Checks slice `i`'s VA parameters against its parsed header.
    fn check_slice(
        &self,
        i: usize,
        pic: &va::VAPictureParameterBufferH264,
        sp: &va::VASliceParameterBufferH264,
        h: &SliceHeader,
        ref_idc: u8,
    ) -> Result<()> {
        // SAFETY: reading the bit fields of the union (plain integers either way).
        let pf = unsafe { pic.pic_fields.bits };
        let t = h.slice_type;
        let mut checks = vec![
            (
                "frame_num",
                u32::from(pic.frame_num),
                u32::from(h.frame_num),
            ),
            (
                "first_mb_in_slice",
                u32::from(sp.first_mb_in_slice),
                h.first_mb_in_slice,
            ),
            ("slice_type", u32::from(sp.slice_type) % 5, t as u32),
            (
                "reference_pic_flag",
                pf.reference_pic_flag(),
                u32::from(ref_idc != 0),
            ),
            (
                "slice_qp_delta",
                sp.slice_qp_delta as u32,
                h.slice_qp_delta as u32,
            ),
            (
                "disable_deblocking_filter_idc",
                u32::from(sp.disable_deblocking_filter_idc),
                u32::from(h.disable_deblocking_filter_idc),
            ),
        ];
        if t.is_p() || t.is_sp() || t.is_b() {
            checks.push((
                "num_ref_idx_l0_active_minus1",
                u32::from(sp.num_ref_idx_l0_active_minus1),
                u32::from(h.num_ref_idx_l0_active_minus1),
            ));
        }
        if t.is_b() {
            checks.push((
                "num_ref_idx_l1_active_minus1",
                u32::from(sp.num_ref_idx_l1_active_minus1),
                u32::from(h.num_ref_idx_l1_active_minus1),
            ));
        }
        for (name, va_value, parsed) in checks {
            if va_value != parsed {
                return Err(refuse(format!(
                    "slice {i}: the VA parameters say {name} {va_value}, the slice header \
                     {parsed}"
                )));
            }
        }
        Ok(())
    }
}

/// Parses one slice header (`nal`: the NAL unit, header byte first) with the SPS and PPS
/// the controls describe; returns it with `nal_ref_idc` and whether the slice is IDR.
fn parse_slice(
    parser: &mut Parser,
    sps: &v4l2_ctrl_h264_sps,
    pps: &v4l2_ctrl_h264_pps,
    matrix: &v4l2_ctrl_h264_scaling_matrix,
    nal: &[u8],
) -> Result<(SliceHeader, u8, bool)> {
    let mut sets = Vec::with_capacity(64);
    write_parameter_sets(sps, pps, matrix, &mut sets)
        .map_err(|e| refuse(format!("the VA parameters make no valid SPS / PPS: {e}")))?;
    let mut cursor = Cursor::new(&sets[..]);
    let sps_nal = Nalu::next(&mut cursor).map_err(|e| refuse(format!("SPS: {e}")))?;
    parser
        .parse_sps(&sps_nal)
        .map_err(|e| refuse(format!("SPS: {e}")))?;
    let pps_nal = Nalu::next(&mut cursor).map_err(|e| refuse(format!("PPS: {e}")))?;
    parser
        .parse_pps(&pps_nal)
        .map_err(|e| refuse(format!("PPS: {e}")))?;
    let mut annex_b = Vec::with_capacity(nal.len() + START_CODE.len());
    annex_b.extend_from_slice(&START_CODE);
    annex_b.extend_from_slice(nal);
    let nalu = Nalu::next(&mut Cursor::new(&annex_b[..]))
        .map_err(|e| refuse(format!("slice NAL unit: {e}")))?;
    if nalu.size != nal.len() {
        return Err(refuse(format!(
            "the slice data holds {} bytes, its NAL unit {}",
            nal.len(),
            nalu.size
        )));
    }
    let (ref_idc, idr) = (nalu.header.ref_idc, nalu.header.idr_pic_flag);
    let slice = parser
        .parse_slice_header(nalu)
        .map_err(|e| refuse(format!("slice header: {e}")))?;
    Ok((slice.header, ref_idc, idr))
}

/// Records a default `num_ref_idx_active_minus1` a slice revealed; two slices of one picture
/// revealing different values cannot both use the PPS's default.
fn learn(known: &mut Option<u8>, value: u8, list: &str) -> Result<()> {
    match *known {
        Some(v) if v != value => Err(refuse(format!(
            "two slices without override use {list} defaults {v} and {value}"
        ))),
        _ => {
            *known = Some(value);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        // 1080p (8160 MBs) with 4 references: MaxDpbMbs 32768 → 4.0.
        assert_eq!(level_for(8160, 4), 40);
        // 720p with 16 references needs 5.0's DPB (57600 MBs).
        assert_eq!(level_for(3600, 16), 50);
        assert_eq!(level_for(99, 1), 10);
        // Beyond every level: the highest.
        assert_eq!(level_for(200_000, 16), 62);
    }

    #[test]
    fn pps_id_of_a_slice() {
        // nal header 0x65 (IDR), first_mb 0 ("1"), slice_type 7 ("0001000"), pps_id 2 ("011").
        let nal = [0x65, 0b1000_1000, 0b0110_0000];
        assert_eq!(pps_id(&nal), Ok(2));
        assert_eq!(pps_id(&[0x65]), Err(Error::DECODING_ERROR));
    }
}
