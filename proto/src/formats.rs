// SPDX-License-Identifier: GPL-2.0
//! The formats daedalus decodes and the size arithmetic of its buffers.
//!
//! This file is the single definition shared by the kernel module (which includes it with
//! `#[path]`, so it must stay `no_std`, allocation-free and panic-free) and by userspace (the
//! daemon and the tools, through the `daedalus-proto` crate).

/// Builds a V4L2 fourcc (`v4l2_fourcc()` in `videodev2.h`).
pub const fn fourcc(code: &[u8; 4]) -> u32 {
    (code[0] as u32) | ((code[1] as u32) << 8) | ((code[2] as u32) << 16) | ((code[3] as u32) << 24)
}

/// `V4L2_PIX_FMT_VP9_FRAME`: one VP9 frame per buffer (superframes split by the client).
pub const PIX_FMT_VP9_FRAME: u32 = fourcc(b"VP9F");
/// `V4L2_PIX_FMT_AV1_FRAME`: the OBUs (or only the tile groups) of one AV1 frame per buffer.
pub const PIX_FMT_AV1_FRAME: u32 = fourcc(b"AV1F");
/// `V4L2_PIX_FMT_H264_SLICE`: the slice NAL units of one picture (or one slice) per buffer.
pub const PIX_FMT_H264_SLICE: u32 = fourcc(b"S264");
/// `V4L2_PIX_FMT_NV12`: 8-bit Y plane then interleaved CbCr, in one memory plane.
pub const PIX_FMT_NV12: u32 = fourcc(b"NV12");
/// `V4L2_PIX_FMT_P010`: like NV12 with 16-bit samples holding 10 bits in the high bits.
pub const PIX_FMT_P010: u32 = fourcc(b"P010");

/// `V4L2_CID_CODEC_STATELESS_BASE` (`V4L2_CTRL_CLASS_CODEC_STATELESS | 0x900`).
const CID_STATELESS_BASE: u32 = 0x00a4_0000 | 0x900;
/// `V4L2_CID_STATELESS_H264_DECODE_PARAMS`.
const CID_STATELESS_H264_DECODE_PARAMS: u32 = CID_STATELESS_BASE + 7;
/// `V4L2_CID_STATELESS_VP9_FRAME`.
const CID_STATELESS_VP9_FRAME: u32 = CID_STATELESS_BASE + 300;
/// `V4L2_CID_STATELESS_AV1_FRAME`.
const CID_STATELESS_AV1_FRAME: u32 = CID_STATELESS_BASE + 502;

/// The codecs of the OUTPUT queue.
///
/// `repr(u8)` with the first variant `0`: the kernel module keeps it in zero-initialized state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Codec {
    /// VP9 profiles 0 and 2.
    Vp9,
    /// AV1 main profile.
    Av1,
    /// H.264 baseline, main, high and high 10.
    H264,
}

impl Codec {
    /// Every codec, in the order the OUTPUT queue enumerates them.
    pub const ALL: [Codec; 3] = [Codec::Vp9, Codec::Av1, Codec::H264];

    /// The OUTPUT fourcc of this codec.
    pub const fn fourcc(self) -> u32 {
        match self {
            Codec::Vp9 => PIX_FMT_VP9_FRAME,
            Codec::Av1 => PIX_FMT_AV1_FRAME,
            Codec::H264 => PIX_FMT_H264_SLICE,
        }
    }

    /// The codec of an OUTPUT fourcc.
    pub const fn from_fourcc(fourcc: u32) -> Option<Codec> {
        match fourcc {
            PIX_FMT_VP9_FRAME => Some(Codec::Vp9),
            PIX_FMT_AV1_FRAME => Some(Codec::Av1),
            PIX_FMT_H264_SLICE => Some(Codec::H264),
            _ => None,
        }
    }

    /// The control every request of this codec must carry (the module's request validation
    /// refuses one without it; the daemon's jobs always have it): the per-frame parameters.
    /// Everything else may come from earlier requests (clients send the H.264 SPS, for
    /// example, only when it changes).
    pub const fn frame_control(self) -> u32 {
        match self {
            Codec::Vp9 => CID_STATELESS_VP9_FRAME,
            Codec::Av1 => CID_STATELESS_AV1_FRAME,
            Codec::H264 => CID_STATELESS_H264_DECODE_PARAMS,
        }
    }

    /// Index of the codec in [`Codec::ALL`].
    pub const fn index(self) -> usize {
        match self {
            Codec::Vp9 => 0,
            Codec::Av1 => 1,
            Codec::H264 => 2,
        }
    }

    /// The frame sizes the OUTPUT queue accepts for this codec (`VIDIOC_ENUM_FRAMESIZES`).
    ///
    /// H.264 stops at 4096x2304 (level 5.2 picture size); VP9 and AV1 go up to 8K
    /// (8192x4352), which needs ~107 MB of contiguous memory per 10-bit CAPTURE buffer.
    pub const fn frame_sizes(self) -> FrameSizes {
        match self {
            Codec::H264 => FrameSizes {
                max_width: 4096,
                max_height: 2304,
                ..FRAME_SIZES_BASE
            },
            Codec::Vp9 | Codec::Av1 => FrameSizes {
                max_width: 8192,
                max_height: 4352,
                ..FRAME_SIZES_BASE
            },
        }
    }
}

/// A stepwise frame size range, as `struct v4l2_frmsize_stepwise`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameSizes {
    /// Smallest width.
    pub min_width: u32,
    /// Largest width.
    pub max_width: u32,
    /// Width granularity.
    pub step_width: u32,
    /// Smallest height.
    pub min_height: u32,
    /// Largest height.
    pub max_height: u32,
    /// Height granularity.
    pub step_height: u32,
}

const FRAME_SIZES_BASE: FrameSizes = FrameSizes {
    min_width: 16,
    max_width: 16,
    step_width: 1,
    min_height: 16,
    max_height: 16,
    step_height: 1,
};

impl FrameSizes {
    /// Clamps `width` x `height` into the range (what `TRY_FMT` does with a size).
    pub const fn clamp(&self, width: u32, height: u32) -> (u32, u32) {
        (
            clamp_u32(width, self.min_width, self.max_width),
            clamp_u32(height, self.min_height, self.max_height),
        )
    }
}

const fn clamp_u32(v: u32, min: u32, max: u32) -> u32 {
    if v < min {
        min
    } else if v > max {
        max
    } else {
        v
    }
}

const fn align_up(v: u32, a: u32) -> u32 {
    // `a` is a power of two and `v` at most 8192 * 2: no overflow.
    (v + a - 1) & !(a - 1)
}

/// Bit depth of the decoded picture, which selects the CAPTURE format.
///
/// `repr(u8)` with the first variant `0`: the kernel module keeps it in zero-initialized state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum BitDepth {
    /// 8-bit samples: NV12.
    Eight,
    /// 10-bit samples: P010.
    Ten,
}

impl BitDepth {
    /// The bit depth for a number of bits, if daedalus decodes it.
    pub const fn from_bits(bits: u32) -> Option<BitDepth> {
        match bits {
            8 => Some(BitDepth::Eight),
            10 => Some(BitDepth::Ten),
            _ => None,
        }
    }

    /// The number of bits.
    pub const fn bits(self) -> u32 {
        match self {
            BitDepth::Eight => 8,
            BitDepth::Ten => 10,
        }
    }

    /// The CAPTURE fourcc that carries pictures of this depth.
    pub const fn capture_fourcc(self) -> u32 {
        match self {
            BitDepth::Eight => PIX_FMT_NV12,
            BitDepth::Ten => PIX_FMT_P010,
        }
    }

    /// The bit depth a CAPTURE fourcc carries.
    pub const fn of_capture_fourcc(fourcc: u32) -> Option<BitDepth> {
        match fourcc {
            PIX_FMT_NV12 => Some(BitDepth::Eight),
            PIX_FMT_P010 => Some(BitDepth::Ten),
            _ => None,
        }
    }

    /// Bytes per sample in the CAPTURE format.
    pub const fn bytes_per_sample(self) -> u32 {
        match self {
            BitDepth::Eight => 1,
            BitDepth::Ten => 2,
        }
    }
}

/// Row alignment of CAPTURE buffers in bytes: lets the daemon write rows with wide SIMD stores
/// and matches what GPU importers of the dma-buf commonly require.
pub const CAPTURE_STRIDE_ALIGN: u32 = 64;

/// Layout of a CAPTURE buffer: one memory plane holding the luma plane, then the interleaved
/// chroma plane at `bytesperline * height`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaptureLayout {
    /// Width in pixels (even).
    pub width: u32,
    /// Height in pixels (even).
    pub height: u32,
    /// Bytes per row of both planes.
    pub bytesperline: u32,
    /// Total bytes of the buffer.
    pub sizeimage: u32,
}

impl CaptureLayout {
    /// The layout for a decoded picture of `width` x `height` (already clamped to the codec's
    /// frame sizes): 4:2:0 chroma needs even dimensions, so odd ones are rounded up.
    pub const fn new(depth: BitDepth, width: u32, height: u32) -> CaptureLayout {
        let width = align_up(width, 2);
        let height = align_up(height, 2);
        let bytesperline = align_up(width * depth.bytes_per_sample(), CAPTURE_STRIDE_ALIGN);
        // Luma rows plus half as many chroma rows. 8192 * 2 * 4352 * 3 / 2 < 2^31.
        let sizeimage = bytesperline * height + bytesperline * (height / 2);
        CaptureLayout {
            width,
            height,
            bytesperline,
            sizeimage,
        }
    }

    /// Byte offset of the chroma plane.
    pub const fn chroma_offset(&self) -> u32 {
        self.bytesperline * self.height
    }
}

/// Smallest OUTPUT buffer daedalus allocates (what GStreamer also uses as its floor).
pub const CODED_SIZEIMAGE_MIN: u32 = 256 * 1024;
/// Largest OUTPUT buffer a client may ask for.
pub const CODED_SIZEIMAGE_MAX: u32 = 64 * 1024 * 1024;

/// The OUTPUT buffer size for a `width` x `height` stream: the client's `requested` size
/// (`0` = let the driver choose) bounded to [`CODED_SIZEIMAGE_MIN`, `CODED_SIZEIMAGE_MAX`];
/// the driver's choice is the size of a raw 8-bit 4:2:0 picture, which compressed frames do
/// not exceed in practice.
pub const fn coded_sizeimage(width: u32, height: u32, requested: u32) -> u32 {
    let size = if requested == 0 {
        width * height * 3 / 2
    } else {
        requested
    };
    clamp_u32(size, CODED_SIZEIMAGE_MIN, CODED_SIZEIMAGE_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourccs_match_videodev2() {
        // Values of the v4l2_fourcc() macros in include/uapi/linux/videodev2.h.
        assert_eq!(PIX_FMT_NV12, 0x3231_564e);
        assert_eq!(PIX_FMT_P010, 0x3031_3050);
        assert_eq!(PIX_FMT_VP9_FRAME, 0x4639_5056);
        assert_eq!(PIX_FMT_AV1_FRAME, 0x4631_5641);
        assert_eq!(PIX_FMT_H264_SLICE, 0x3436_3253);
    }

    #[test]
    fn codec_round_trips() {
        for (i, c) in Codec::ALL.iter().enumerate() {
            assert_eq!(Codec::from_fourcc(c.fourcc()), Some(*c));
            assert_eq!(c.index(), i);
        }
        assert_eq!(Codec::from_fourcc(PIX_FMT_NV12), None);
    }

    #[test]
    fn clamping() {
        let h264 = Codec::H264.frame_sizes();
        assert_eq!(h264.clamp(0, 0), (16, 16));
        assert_eq!(h264.clamp(1920, 1080), (1920, 1080));
        assert_eq!(h264.clamp(8192, 8192), (4096, 2304));
        assert_eq!(
            Codec::Vp9.frame_sizes().clamp(u32::MAX, u32::MAX),
            (8192, 4352)
        );
    }

    #[test]
    fn nv12_layout() {
        let l = CaptureLayout::new(BitDepth::Eight, 1920, 1080);
        assert_eq!((l.width, l.height, l.bytesperline), (1920, 1080, 1920));
        assert_eq!(l.sizeimage, 1920 * 1080 * 3 / 2);
        assert_eq!(l.chroma_offset(), 1920 * 1080);
        // Odd sizes round up to even, rows to 64 bytes.
        let l = CaptureLayout::new(BitDepth::Eight, 201, 209);
        assert_eq!((l.width, l.height, l.bytesperline), (202, 210, 256));
        assert_eq!(l.sizeimage, 256 * 210 + 256 * 105);
    }

    #[test]
    fn p010_layout() {
        let l = CaptureLayout::new(BitDepth::Ten, 352, 288);
        assert_eq!(l.bytesperline, 704);
        assert_eq!(l.sizeimage, 704 * 288 * 3 / 2);
        // The largest layout fits in u32 without overflow.
        let l = CaptureLayout::new(BitDepth::Ten, 8192, 4352);
        assert_eq!(l.sizeimage, 16384 * 4352 * 3 / 2);
    }

    #[test]
    fn bit_depths() {
        assert_eq!(BitDepth::from_bits(8), Some(BitDepth::Eight));
        assert_eq!(BitDepth::from_bits(10), Some(BitDepth::Ten));
        assert_eq!(BitDepth::from_bits(12), None);
        for d in [BitDepth::Eight, BitDepth::Ten] {
            assert_eq!(BitDepth::of_capture_fourcc(d.capture_fourcc()), Some(d));
        }
    }

    #[test]
    fn coded_sizes() {
        assert_eq!(coded_sizeimage(1920, 1080, 0), 1920 * 1080 * 3 / 2);
        assert_eq!(coded_sizeimage(16, 16, 0), CODED_SIZEIMAGE_MIN);
        assert_eq!(coded_sizeimage(16, 16, 1), CODED_SIZEIMAGE_MIN);
        assert_eq!(coded_sizeimage(1920, 1080, 3 << 20), 3 << 20);
        assert_eq!(coded_sizeimage(1920, 1080, u32::MAX), CODED_SIZEIMAGE_MAX);
        assert_eq!(coded_sizeimage(8192, 4352, 0), 8192 * 4352 * 3 / 2);
    }
}
