// SPDX-License-Identifier: GPL-2.0
//! The stateless codec controls of a decoding context.
//!
//! Every context carries the controls of all three codecs (as visl and hantro do), so a client
//! can switch codecs with `S_FMT(OUTPUT)` without reopening; its requests carry those of the
//! OUTPUT format's codec only ([`carry_codec_in_requests`]). Compound payloads are validated by
//! the V4L2 core (`std_validate_compound`); on top of that, `try_ctrl` refuses streams daedalus
//! cannot output (4:2:2 / 4:4:4, 12-bit) with `EINVAL` at `S_EXT_CTRLS` time, and `s_ctrl`
//! records each codec's bit depth, which selects the CAPTURE format (NV12 or P010) (see the
//! [`CtrlOps`] impl of [`Context`]).

use crate::formats::{BitDepth, Codec};
use crate::media::ctrls::{Ctrl, CtrlBuilder, CtrlHandler, CtrlOps, StdCtrl};
use crate::media::prelude::*;
use crate::video::Context;

const fn compound(id: u32) -> StdCtrl {
    StdCtrl {
        id,
        min: 0,
        max: 0,
        def: 0,
        menu_skip_mask: 0,
        dims0: 0,
        tracked: false,
    }
}

const fn tracked(id: u32) -> StdCtrl {
    StdCtrl {
        tracked: true,
        ..compound(id)
    }
}

const fn menu(id: u32, min: u32, max: u32, def: u32, menu_skip_mask: u64) -> StdCtrl {
    StdCtrl {
        min: min as i64,
        max: max as i64,
        def: def as i64,
        menu_skip_mask,
        ..compound(id)
    }
}

const fn bit(n: u32) -> u64 {
    1 << n
}

use crate::media::uapi::*;

/// How many controls a context has.
pub(crate) const NR_CONTROLS: u32 = 20;

static VP9_CTRLS: [StdCtrl; 4] = [
    // VP9 (profiles 0 and 2: 4:2:0 at 8 and 10 bits)
    tracked(V4L2_CID_STATELESS_VP9_FRAME),
    compound(V4L2_CID_STATELESS_VP9_COMPRESSED_HDR),
    menu(
        V4L2_CID_MPEG_VIDEO_VP9_PROFILE,
        V4L2_MPEG_VIDEO_VP9_PROFILE_0,
        V4L2_MPEG_VIDEO_VP9_PROFILE_2,
        V4L2_MPEG_VIDEO_VP9_PROFILE_0,
        bit(V4L2_MPEG_VIDEO_VP9_PROFILE_1),
    ),
    menu(
        V4L2_CID_MPEG_VIDEO_VP9_LEVEL,
        V4L2_MPEG_VIDEO_VP9_LEVEL_1_0,
        V4L2_MPEG_VIDEO_VP9_LEVEL_6_2,
        V4L2_MPEG_VIDEO_VP9_LEVEL_6_2,
        0,
    ),
];

static AV1_CTRLS: [StdCtrl; 6] = [
    // AV1 (main profile)
    tracked(V4L2_CID_STATELESS_AV1_SEQUENCE),
    compound(V4L2_CID_STATELESS_AV1_FRAME),
    StdCtrl {
        dims0: V4L2_AV1_MAX_TILE_COUNT,
        ..compound(V4L2_CID_STATELESS_AV1_TILE_GROUP_ENTRY)
    },
    compound(V4L2_CID_STATELESS_AV1_FILM_GRAIN),
    menu(
        V4L2_CID_MPEG_VIDEO_AV1_PROFILE,
        V4L2_MPEG_VIDEO_AV1_PROFILE_MAIN,
        V4L2_MPEG_VIDEO_AV1_PROFILE_MAIN,
        V4L2_MPEG_VIDEO_AV1_PROFILE_MAIN,
        0,
    ),
    menu(
        V4L2_CID_MPEG_VIDEO_AV1_LEVEL,
        V4L2_MPEG_VIDEO_AV1_LEVEL_2_0,
        V4L2_MPEG_VIDEO_AV1_LEVEL_6_3,
        V4L2_MPEG_VIDEO_AV1_LEVEL_6_3,
        0,
    ),
];

static H264_CTRLS: [StdCtrl; 10] = [
    // H.264 (baseline, main, high, high 10; frame- and slice-based; with and without start codes)
    tracked(V4L2_CID_STATELESS_H264_SPS),
    compound(V4L2_CID_STATELESS_H264_PPS),
    compound(V4L2_CID_STATELESS_H264_SCALING_MATRIX),
    compound(V4L2_CID_STATELESS_H264_DECODE_PARAMS),
    compound(V4L2_CID_STATELESS_H264_SLICE_PARAMS),
    compound(V4L2_CID_STATELESS_H264_PRED_WEIGHTS),
    menu(
        V4L2_CID_STATELESS_H264_DECODE_MODE,
        V4L2_STATELESS_H264_DECODE_MODE_SLICE_BASED,
        V4L2_STATELESS_H264_DECODE_MODE_FRAME_BASED,
        V4L2_STATELESS_H264_DECODE_MODE_FRAME_BASED,
        0,
    ),
    menu(
        V4L2_CID_STATELESS_H264_START_CODE,
        V4L2_STATELESS_H264_START_CODE_NONE,
        V4L2_STATELESS_H264_START_CODE_ANNEX_B,
        V4L2_STATELESS_H264_START_CODE_ANNEX_B,
        0,
    ),
    menu(
        V4L2_CID_MPEG_VIDEO_H264_PROFILE,
        V4L2_MPEG_VIDEO_H264_PROFILE_BASELINE,
        V4L2_MPEG_VIDEO_H264_PROFILE_HIGH_10,
        V4L2_MPEG_VIDEO_H264_PROFILE_HIGH,
        bit(V4L2_MPEG_VIDEO_H264_PROFILE_EXTENDED),
    ),
    menu(
        V4L2_CID_MPEG_VIDEO_H264_LEVEL,
        V4L2_MPEG_VIDEO_H264_LEVEL_1_0,
        V4L2_MPEG_VIDEO_H264_LEVEL_5_2,
        V4L2_MPEG_VIDEO_H264_LEVEL_5_2,
        0,
    ),
];

const _: () = assert!(VP9_CTRLS.len() + AV1_CTRLS.len() + H264_CTRLS.len() == NR_CONTROLS as usize);

/// The controls of `codec`.
fn codec_controls(codec: Codec) -> &'static [StdCtrl] {
    match codec {
        Codec::Vp9 => &VP9_CTRLS,
        Codec::Av1 => &AV1_CTRLS,
        Codec::H264 => &H264_CTRLS,
    }
}

/// Most controls a job carries (see [`job_controls`]).
pub(crate) const MAX_JOB_CONTROLS: usize = 8;

/// The controls whose current values a job of `codec` carries to the daemon: everything that
/// describes the bitstream (not the profile / level menus).
pub(crate) fn job_controls(codec: Codec) -> &'static [u32] {
    const VP9: [u32; 2] = [
        V4L2_CID_STATELESS_VP9_FRAME,
        V4L2_CID_STATELESS_VP9_COMPRESSED_HDR,
    ];
    const AV1: [u32; 4] = [
        V4L2_CID_STATELESS_AV1_SEQUENCE,
        V4L2_CID_STATELESS_AV1_FRAME,
        V4L2_CID_STATELESS_AV1_TILE_GROUP_ENTRY,
        V4L2_CID_STATELESS_AV1_FILM_GRAIN,
    ];
    const H264: [u32; 8] = [
        V4L2_CID_STATELESS_H264_SPS,
        V4L2_CID_STATELESS_H264_PPS,
        V4L2_CID_STATELESS_H264_SCALING_MATRIX,
        V4L2_CID_STATELESS_H264_DECODE_PARAMS,
        V4L2_CID_STATELESS_H264_SLICE_PARAMS,
        V4L2_CID_STATELESS_H264_PRED_WEIGHTS,
        V4L2_CID_STATELESS_H264_DECODE_MODE,
        V4L2_CID_STATELESS_H264_START_CODE,
    ];
    // `CtrlHandler::snapshot::<MAX_JOB_CONTROLS, _>` leaves out the ids past its capacity.
    const _: () = assert!(
        VP9.len() <= MAX_JOB_CONTROLS
            && AV1.len() <= MAX_JOB_CONTROLS
            && H264.len() <= MAX_JOB_CONTROLS
    );
    match codec {
        Codec::Vp9 => &VP9,
        Codec::Av1 => &AV1,
        Codec::H264 => &H264,
    }
}

/// Creates the controls of a context (see [`crate::media::ctrls::CtrlHandler::add_controls`]).
pub(crate) fn build(b: &mut CtrlBuilder<'_, Context>) {
    for codec in Codec::ALL {
        for d in codec_controls(codec) {
            b.add_std(d);
        }
    }
}

/// Makes the context's requests carry the controls of `codec` only (a request of another
/// codec's controls means nothing to its jobs), so that a request does not copy the others'
/// values, several KB (see [`crate::media::ctrls::CtrlHandler::carry_in_requests`]).
pub(crate) fn carry_codec_in_requests(handler: &CtrlHandler<Context>, codec: Codec) {
    let ctrls = codec_controls(codec);
    handler.carry_in_requests(|id| ctrls.iter().any(|c| c.id == id));
}

/// The codec and bit depth a tracked control's new value selects, or why it is refused.
fn depth_of(ctrl: &Ctrl<'_>) -> Result<(Codec, BitDepth)> {
    match ctrl.id() {
        V4L2_CID_STATELESS_VP9_FRAME => {
            let f = ctrl.payload::<v4l2_ctrl_vp9_frame>().ok_or(code::EINVAL)?;
            // Profiles 1 and 3 are 4:2:2 / 4:4:0 / 4:4:4: not representable in NV12 / P010.
            if f.profile != 0 && f.profile != 2 {
                return Err(code::EINVAL);
            }
            let depth = BitDepth::from_bits(u32::from(f.bit_depth)).ok_or(code::EINVAL)?;
            Ok((Codec::Vp9, depth))
        }
        V4L2_CID_STATELESS_AV1_SEQUENCE => {
            let s = ctrl
                .payload::<v4l2_ctrl_av1_sequence>()
                .ok_or(code::EINVAL)?;
            // Main profile only: 4:2:0 (or monochrome) at 8 or 10 bits.
            if s.seq_profile != 0 {
                return Err(code::EINVAL);
            }
            let depth = BitDepth::from_bits(u32::from(s.bit_depth)).ok_or(code::EINVAL)?;
            Ok((Codec::Av1, depth))
        }
        V4L2_CID_STATELESS_H264_SPS => {
            let s = ctrl.payload::<v4l2_ctrl_h264_sps>().ok_or(code::EINVAL)?;
            // 4:0:0 and 4:2:0 only; luma and chroma of the same depth (NV12 / P010 have one).
            if s.chroma_format_idc > 1 || s.bit_depth_luma_minus8 != s.bit_depth_chroma_minus8 {
                return Err(code::EINVAL);
            }
            // Field pictures and MBAFF are not decoded: refusing the SPS makes clients fail at
            // once (GStreamer sets it before streaming) instead of getting error buffers for
            // every picture, which some (GStreamer 1.26) display anyway. profile_idc 0 is no
            // H.264 profile: the all-zero default of an unconfigured context stays settable.
            if s.profile_idc != 0 && s.flags & V4L2_H264_SPS_FLAG_FRAME_MBS_ONLY == 0 {
                return Err(code::EINVAL);
            }
            let bits = u32::from(s.bit_depth_luma_minus8) + 8;
            let depth = BitDepth::from_bits(bits).ok_or(code::EINVAL)?;
            Ok((Codec::H264, depth))
        }
        _ => Err(code::EINVAL),
    }
}

/// The tracked controls (those carrying the bit depth) of a context. The core calls these with
/// the handler lock held, possibly from `device_run` without the device lock: they only touch
/// the context's atomics.
impl CtrlOps for Context {
    /// Refuses what cannot be decoded into NV12 / P010.
    fn try_ctrl(&self, ctrl: &Ctrl<'_>) -> Result {
        depth_of(ctrl).map(|_| ())
    }

    /// Records the bit depth of the codec's stream.
    fn s_ctrl(&self, ctrl: &Ctrl<'_>) -> Result {
        let (codec, depth) = depth_of(ctrl)?;
        self.set_depth(codec, depth);
        Ok(())
    }
}
