// SPDX-License-Identifier: GPL-2.0
//! Human-readable names for uAPI values: fourccs, capability and flag bits, control types,
//! kernel versions.

use crate::sys::*;

/// Formats a fourcc as its four characters (`"NV12"`), with non-printable bytes as `.` and a
/// `-BE` suffix for the big-endian variants (`v4l2_fourcc_be()`, bit 31).
pub fn fourcc_to_string(fourcc: u32) -> String {
    let be = fourcc & (1 << 31) != 0;
    let bytes = (fourcc & !(1 << 31)).to_le_bytes();
    let mut s: String = bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '.'
            }
        })
        .collect();
    if be {
        s.push_str("-BE");
    }
    s
}

/// Parses a fourcc written as four characters (`"NV12"`; shorter codes are padded with spaces,
/// as V4L2 does for `"GREY"`-style names).
pub fn fourcc_from_str(s: &str) -> Option<u32> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 4 || !b.iter().all(|c| c.is_ascii_graphic()) {
        return None;
    }
    let mut code = [b' '; 4];
    code[..b.len()].copy_from_slice(b);
    Some(fourcc(&code))
}

/// Names of the set bits of `value`, from `table`, plus the unknown rest in hex.
pub fn flag_names(value: u32, table: &[(u32, &'static str)]) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = value;
    for &(bit, name) in table {
        if value & bit == bit && bit != 0 {
            names.push(name.to_owned());
            rest &= !bit;
        }
    }
    if rest != 0 {
        names.push(format!("{rest:#x}"));
    }
    names
}

/// `V4L2_CAP_*` bits.
pub const CAPS: &[(u32, &str)] = &[
    (V4L2_CAP_VIDEO_CAPTURE, "VIDEO_CAPTURE"),
    (V4L2_CAP_VIDEO_OUTPUT, "VIDEO_OUTPUT"),
    (V4L2_CAP_VIDEO_OVERLAY, "VIDEO_OVERLAY"),
    (V4L2_CAP_VBI_CAPTURE, "VBI_CAPTURE"),
    (V4L2_CAP_VBI_OUTPUT, "VBI_OUTPUT"),
    (V4L2_CAP_SLICED_VBI_CAPTURE, "SLICED_VBI_CAPTURE"),
    (V4L2_CAP_SLICED_VBI_OUTPUT, "SLICED_VBI_OUTPUT"),
    (V4L2_CAP_RDS_CAPTURE, "RDS_CAPTURE"),
    (V4L2_CAP_VIDEO_OUTPUT_OVERLAY, "VIDEO_OUTPUT_OVERLAY"),
    (V4L2_CAP_HW_FREQ_SEEK, "HW_FREQ_SEEK"),
    (V4L2_CAP_RDS_OUTPUT, "RDS_OUTPUT"),
    (V4L2_CAP_VIDEO_CAPTURE_MPLANE, "VIDEO_CAPTURE_MPLANE"),
    (V4L2_CAP_VIDEO_OUTPUT_MPLANE, "VIDEO_OUTPUT_MPLANE"),
    (V4L2_CAP_VIDEO_M2M_MPLANE, "VIDEO_M2M_MPLANE"),
    (V4L2_CAP_VIDEO_M2M, "VIDEO_M2M"),
    (V4L2_CAP_TUNER, "TUNER"),
    (V4L2_CAP_AUDIO, "AUDIO"),
    (V4L2_CAP_RADIO, "RADIO"),
    (V4L2_CAP_MODULATOR, "MODULATOR"),
    (V4L2_CAP_SDR_CAPTURE, "SDR_CAPTURE"),
    (V4L2_CAP_EXT_PIX_FORMAT, "EXT_PIX_FORMAT"),
    (V4L2_CAP_SDR_OUTPUT, "SDR_OUTPUT"),
    (V4L2_CAP_META_CAPTURE, "META_CAPTURE"),
    (V4L2_CAP_READWRITE, "READWRITE"),
    (V4L2_CAP_EDID, "EDID"),
    (V4L2_CAP_STREAMING, "STREAMING"),
    (V4L2_CAP_META_OUTPUT, "META_OUTPUT"),
    (V4L2_CAP_TOUCH, "TOUCH"),
    (V4L2_CAP_IO_MC, "IO_MC"),
    (V4L2_CAP_DEVICE_CAPS, "DEVICE_CAPS"),
];

/// `V4L2_FMT_FLAG_*` bits.
pub const FMT_FLAGS: &[(u32, &str)] = &[
    (V4L2_FMT_FLAG_COMPRESSED, "compressed"),
    (V4L2_FMT_FLAG_EMULATED, "emulated"),
    (V4L2_FMT_FLAG_CONTINUOUS_BYTESTREAM, "continuous-bytestream"),
    (V4L2_FMT_FLAG_DYN_RESOLUTION, "dyn-resolution"),
    (
        V4L2_FMT_FLAG_ENC_CAP_FRAME_INTERVAL,
        "enc-cap-frame-interval",
    ),
    (V4L2_FMT_FLAG_CSC_COLORSPACE, "csc-colorspace"),
    (V4L2_FMT_FLAG_CSC_XFER_FUNC, "csc-xfer-func"),
    (V4L2_FMT_FLAG_CSC_YCBCR_ENC, "csc-ycbcr-enc"),
    (V4L2_FMT_FLAG_CSC_QUANTIZATION, "csc-quantization"),
    (V4L2_FMT_FLAG_META_LINE_BASED, "meta-line-based"),
];

/// `V4L2_CTRL_FLAG_*` bits (those QUERY_EXT_CTRL reports).
pub const CTRL_FLAGS: &[(u32, &str)] = &[
    (V4L2_CTRL_FLAG_DISABLED, "disabled"),
    (V4L2_CTRL_FLAG_GRABBED, "grabbed"),
    (V4L2_CTRL_FLAG_READ_ONLY, "read-only"),
    (V4L2_CTRL_FLAG_UPDATE, "update"),
    (V4L2_CTRL_FLAG_INACTIVE, "inactive"),
    (V4L2_CTRL_FLAG_SLIDER, "slider"),
    (V4L2_CTRL_FLAG_WRITE_ONLY, "write-only"),
    (V4L2_CTRL_FLAG_VOLATILE, "volatile"),
    (V4L2_CTRL_FLAG_HAS_PAYLOAD, "has-payload"),
    (V4L2_CTRL_FLAG_EXECUTE_ON_WRITE, "execute-on-write"),
    (V4L2_CTRL_FLAG_MODIFY_LAYOUT, "modify-layout"),
    (V4L2_CTRL_FLAG_DYNAMIC_ARRAY, "dynamic-array"),
];

/// `V4L2_BUF_CAP_*` bits.
pub const BUF_CAPS: &[(u32, &str)] = &[
    (V4L2_BUF_CAP_SUPPORTS_MMAP, "MMAP"),
    (V4L2_BUF_CAP_SUPPORTS_USERPTR, "USERPTR"),
    (V4L2_BUF_CAP_SUPPORTS_DMABUF, "DMABUF"),
    (V4L2_BUF_CAP_SUPPORTS_REQUESTS, "REQUESTS"),
    (V4L2_BUF_CAP_SUPPORTS_ORPHANED_BUFS, "ORPHANED_BUFS"),
    (
        V4L2_BUF_CAP_SUPPORTS_M2M_HOLD_CAPTURE_BUF,
        "M2M_HOLD_CAPTURE_BUF",
    ),
    (V4L2_BUF_CAP_SUPPORTS_MMAP_CACHE_HINTS, "MMAP_CACHE_HINTS"),
    (V4L2_BUF_CAP_SUPPORTS_MAX_NUM_BUFFERS, "MAX_NUM_BUFFERS"),
    (V4L2_BUF_CAP_SUPPORTS_REMOVE_BUFS, "REMOVE_BUFS"),
];

/// `V4L2_BUF_FLAG_*` bits.
pub const BUF_FLAGS: &[(u32, &str)] = &[
    (V4L2_BUF_FLAG_MAPPED, "MAPPED"),
    (V4L2_BUF_FLAG_QUEUED, "QUEUED"),
    (V4L2_BUF_FLAG_DONE, "DONE"),
    (V4L2_BUF_FLAG_KEYFRAME, "KEYFRAME"),
    (V4L2_BUF_FLAG_PFRAME, "PFRAME"),
    (V4L2_BUF_FLAG_BFRAME, "BFRAME"),
    (V4L2_BUF_FLAG_ERROR, "ERROR"),
    (V4L2_BUF_FLAG_IN_REQUEST, "IN_REQUEST"),
    (V4L2_BUF_FLAG_TIMECODE, "TIMECODE"),
    (V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF, "M2M_HOLD_CAPTURE_BUF"),
    (V4L2_BUF_FLAG_PREPARED, "PREPARED"),
    (V4L2_BUF_FLAG_NO_CACHE_INVALIDATE, "NO_CACHE_INVALIDATE"),
    (V4L2_BUF_FLAG_NO_CACHE_CLEAN, "NO_CACHE_CLEAN"),
    (V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC, "TIMESTAMP_MONOTONIC"),
    (V4L2_BUF_FLAG_TIMESTAMP_COPY, "TIMESTAMP_COPY"),
    (V4L2_BUF_FLAG_TSTAMP_SRC_SOE, "TSTAMP_SRC_SOE"),
    (V4L2_BUF_FLAG_LAST, "LAST"),
    (V4L2_BUF_FLAG_REQUEST_FD, "REQUEST_FD"),
];

/// The name of a `V4L2_CTRL_TYPE_*`.
pub fn ctrl_type_name(ctrl_type: u32) -> String {
    let name = match ctrl_type {
        V4L2_CTRL_TYPE_INTEGER => "integer",
        V4L2_CTRL_TYPE_BOOLEAN => "bool",
        V4L2_CTRL_TYPE_MENU => "menu",
        V4L2_CTRL_TYPE_BUTTON => "button",
        V4L2_CTRL_TYPE_INTEGER64 => "int64",
        V4L2_CTRL_TYPE_CTRL_CLASS => "ctrl-class",
        V4L2_CTRL_TYPE_STRING => "string",
        V4L2_CTRL_TYPE_BITMASK => "bitmask",
        V4L2_CTRL_TYPE_INTEGER_MENU => "intmenu",
        V4L2_CTRL_TYPE_U8 => "u8",
        V4L2_CTRL_TYPE_U16 => "u16",
        V4L2_CTRL_TYPE_U32 => "u32",
        V4L2_CTRL_TYPE_AREA => "area",
        V4L2_CTRL_TYPE_HDR10_CLL_INFO => "hdr10-cll-info",
        V4L2_CTRL_TYPE_HDR10_MASTERING_DISPLAY => "hdr10-mastering-display",
        V4L2_CTRL_TYPE_H264_SPS => "h264-sps",
        V4L2_CTRL_TYPE_H264_PPS => "h264-pps",
        V4L2_CTRL_TYPE_H264_SCALING_MATRIX => "h264-scaling-matrix",
        V4L2_CTRL_TYPE_H264_SLICE_PARAMS => "h264-slice-params",
        V4L2_CTRL_TYPE_H264_DECODE_PARAMS => "h264-decode-params",
        V4L2_CTRL_TYPE_H264_PRED_WEIGHTS => "h264-pred-weights",
        V4L2_CTRL_TYPE_FWHT_PARAMS => "fwht-params",
        V4L2_CTRL_TYPE_VP8_FRAME => "vp8-frame",
        V4L2_CTRL_TYPE_MPEG2_QUANTISATION => "mpeg2-quantisation",
        V4L2_CTRL_TYPE_MPEG2_SEQUENCE => "mpeg2-sequence",
        V4L2_CTRL_TYPE_MPEG2_PICTURE => "mpeg2-picture",
        V4L2_CTRL_TYPE_VP9_COMPRESSED_HDR => "vp9-compressed-hdr",
        V4L2_CTRL_TYPE_VP9_FRAME => "vp9-frame",
        V4L2_CTRL_TYPE_HEVC_SPS => "hevc-sps",
        V4L2_CTRL_TYPE_HEVC_PPS => "hevc-pps",
        V4L2_CTRL_TYPE_HEVC_SLICE_PARAMS => "hevc-slice-params",
        V4L2_CTRL_TYPE_HEVC_SCALING_MATRIX => "hevc-scaling-matrix",
        V4L2_CTRL_TYPE_HEVC_DECODE_PARAMS => "hevc-decode-params",
        V4L2_CTRL_TYPE_AV1_SEQUENCE => "av1-sequence",
        V4L2_CTRL_TYPE_AV1_TILE_GROUP_ENTRY => "av1-tile-group-entry",
        V4L2_CTRL_TYPE_AV1_FRAME => "av1-frame",
        V4L2_CTRL_TYPE_AV1_FILM_GRAIN => "av1-film-grain",
        other => return format!("type-{other:#x}"),
    };
    name.to_owned()
}

/// The name of a `V4L2_BUF_TYPE_*`.
pub fn buf_type_name(buf_type: u32) -> &'static str {
    match buf_type {
        V4L2_BUF_TYPE_VIDEO_CAPTURE => "VIDEO_CAPTURE",
        V4L2_BUF_TYPE_VIDEO_OUTPUT => "VIDEO_OUTPUT",
        V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE => "VIDEO_CAPTURE_MPLANE",
        V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE => "VIDEO_OUTPUT_MPLANE",
        _ => "other",
    }
}

/// Formats a `KERNEL_VERSION(a, b, c)` value as `a.b.c`.
pub fn kernel_version(v: u32) -> String {
    format!("{}.{}.{}", v >> 16, (v >> 8) & 0xff, v & 0xff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourcc_round_trip() {
        assert_eq!(fourcc_to_string(V4L2_PIX_FMT_NV12), "NV12");
        assert_eq!(fourcc_to_string(V4L2_PIX_FMT_VP9_FRAME), "VP9F");
        assert_eq!(fourcc_from_str("S264"), Some(V4L2_PIX_FMT_H264_SLICE));
        assert_eq!(fourcc_from_str("P010"), Some(0x3031_3050));
        assert_eq!(fourcc_from_str("Y8"), Some(fourcc(b"Y8  ")));
        assert_eq!(fourcc_from_str(""), None);
        assert_eq!(fourcc_from_str("TOOLONG"), None);
        assert_eq!(fourcc_from_str("a\tb"), None);
        assert_eq!(fourcc_to_string(0x0000_0001), "....");
        assert_eq!(fourcc_to_string(fourcc(b"RGBR") | (1 << 31)), "RGBR-BE");
    }

    #[test]
    fn flags() {
        let caps = V4L2_CAP_VIDEO_M2M_MPLANE | V4L2_CAP_STREAMING | V4L2_CAP_DEVICE_CAPS;
        assert_eq!(
            flag_names(caps, CAPS),
            ["VIDEO_M2M_MPLANE", "STREAMING", "DEVICE_CAPS"]
        );
        assert_eq!(caps, 0x8400_4000);
        assert_eq!(flag_names(0, CAPS), Vec::<String>::new());
        assert_eq!(
            flag_names(V4L2_BUF_CAP_SUPPORTS_REQUESTS | 0x8000_0000, BUF_CAPS),
            ["REQUESTS", "0x80000000"]
        );
        assert_eq!(
            flag_names(V4L2_BUF_FLAG_ERROR | V4L2_BUF_FLAG_DONE, BUF_FLAGS),
            ["DONE", "ERROR"]
        );
    }

    #[test]
    fn names() {
        assert_eq!(ctrl_type_name(V4L2_CTRL_TYPE_VP9_FRAME), "vp9-frame");
        assert_eq!(ctrl_type_name(0xabcd), "type-0xabcd");
        assert_eq!(
            buf_type_name(V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE),
            "VIDEO_OUTPUT_MPLANE"
        );
        assert_eq!(kernel_version(0x060c75), "6.12.117");
    }
}
