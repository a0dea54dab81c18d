// SPDX-License-Identifier: GPL-2.0
//! Plain-data uAPI values for the driver: fourccs, control ids, colorimetry constants and the
//! compound control payloads. No functions: nothing here can reach C.

pub(crate) use super::bindings::{
    V4L2_PIX_FMT_AV1_FRAME, V4L2_PIX_FMT_H264_SLICE, V4L2_PIX_FMT_NV12, V4L2_PIX_FMT_P010,
    V4L2_PIX_FMT_VP9_FRAME,
};
