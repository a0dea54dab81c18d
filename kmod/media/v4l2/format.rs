// SPDX-License-Identifier: GPL-2.0
//! V4L2 formats as plain Rust values: [`BufType`], [`PixFormat`], [`PlaneFormat`], [`Field`].
//!
//! `v4l2_pix_format_mplane` is a packed C struct with a union (`ycbcr_enc` / `hsv_enc`): the
//! layer copies it in and out of [`PixFormat`] once, in the ioctl trampolines, so the driver
//! never reads a union member or a packed field.

use super::super::bindings;

/// The buffer types of a multi-planar mem2mem device.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum BufType {
    /// `V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE`: what the client decodes (bitstream).
    VideoOutputMplane,
    /// `V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE`: the decoded pictures.
    VideoCaptureMplane,
}

impl BufType {
    /// The `v4l2_buf_type` value.
    pub(crate) fn raw(self) -> u32 {
        match self {
            BufType::VideoOutputMplane => bindings::V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
            BufType::VideoCaptureMplane => bindings::V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
        }
    }

    /// The type of a queue the layer set up (`vb2_queue.type_`, one of the two).
    pub(in crate::media) fn of_queue(raw: u32) -> Self {
        if raw == bindings::V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE {
            BufType::VideoOutputMplane
        } else {
            BufType::VideoCaptureMplane
        }
    }
}

/// The field order of a picture (`enum v4l2_field`), as far as a progressive decoder needs it.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Field {
    /// `V4L2_FIELD_ANY`: the driver chooses (what a client asks for; any other order reads as
    /// this too).
    #[default]
    Any,
    /// `V4L2_FIELD_NONE`: progressive.
    None,
}

impl Field {
    pub(in crate::media) fn raw(self) -> u32 {
        match self {
            Field::Any => bindings::V4L2_FIELD_ANY,
            Field::None => bindings::V4L2_FIELD_NONE,
        }
    }

    fn from_raw(v: u32) -> Field {
        if v == bindings::V4L2_FIELD_NONE {
            Field::None
        } else {
            Field::Any
        }
    }
}

/// The first plane of a multi-planar format (daedalus' formats have one plane).
#[derive(Clone, Copy, Default)]
pub(crate) struct PlaneFormat {
    /// Size of a buffer of the plane, in bytes.
    pub(crate) sizeimage: u32,
    /// Bytes per row (0 for compressed formats).
    pub(crate) bytesperline: u32,
}

/// A copy of a `v4l2_pix_format_mplane`: the fields a decoder reads or sets. Written back, the
/// fields it does not carry (`flags`, the planes after the first, reserved bytes) are zero.
#[derive(Clone, Copy, Default)]
pub(crate) struct PixFormat {
    /// Width in pixels.
    pub(crate) width: u32,
    /// Height in pixels.
    pub(crate) height: u32,
    /// The fourcc (`V4L2_PIX_FMT_*`).
    pub(crate) pixelformat: u32,
    /// Progressive or not (the only distinction a decoder of frames makes).
    pub(crate) field: Field,
    /// `V4L2_COLORSPACE_*`.
    pub(crate) colorspace: u32,
    /// `ycbcr_enc` (the union member of YCbCr formats, the only ones here).
    pub(crate) ycbcr_enc: u8,
    /// `V4L2_QUANTIZATION_*` (full or limited range).
    pub(crate) quantization: u8,
    /// `V4L2_XFER_FUNC_*`.
    pub(crate) xfer_func: u8,
    /// Number of memory planes (1 for every format here).
    pub(crate) num_planes: u8,
    /// The first (only) plane.
    pub(crate) plane0: PlaneFormat,
}

impl PixFormat {
    /// Copies the fields out of the C struct.
    pub(super) fn from_raw(p: &bindings::v4l2_pix_format_mplane) -> Self {
        // SAFETY: both members of the union are `u8`: any value is valid for either.
        let ycbcr_enc = unsafe { p.__bindgen_anon_1.ycbcr_enc };
        let plane = p.plane_fmt[0];
        PixFormat {
            width: p.width,
            height: p.height,
            pixelformat: p.pixelformat,
            field: Field::from_raw(p.field),
            colorspace: p.colorspace,
            ycbcr_enc,
            quantization: p.quantization,
            xfer_func: p.xfer_func,
            num_planes: p.num_planes,
            plane0: PlaneFormat {
                sizeimage: plane.sizeimage,
                bytesperline: plane.bytesperline,
            },
        }
    }

    /// The C struct: these fields, everything else zero.
    pub(super) fn to_raw(self) -> bindings::v4l2_pix_format_mplane {
        let mut p = bindings::v4l2_pix_format_mplane {
            width: self.width,
            height: self.height,
            pixelformat: self.pixelformat,
            field: self.field.raw(),
            colorspace: self.colorspace,
            num_planes: self.num_planes,
            quantization: self.quantization,
            xfer_func: self.xfer_func,
            ..Default::default()
        };
        p.__bindgen_anon_1.ycbcr_enc = self.ycbcr_enc;
        p.plane_fmt[0].sizeimage = self.plane0.sizeimage;
        p.plane_fmt[0].bytesperline = self.plane0.bytesperline;
        p
    }
}
