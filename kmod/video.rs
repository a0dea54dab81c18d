// SPDX-License-Identifier: GPL-2.0
//! `/dev/videoN`: one decoding [`Context`] per open file, its formats and its ioctls.
//!
//! OUTPUT carries one of the coded formats of [`Codec`]; CAPTURE is derived from it: same size
//! (rounded up to even), NV12 for 8-bit streams, P010 for 10-bit ones, with the bit depth taken
//! from the codec's controls (see [`crate::ctrls`]). Buffers too small for the current CAPTURE
//! format are refused when queued.

use core::sync::atomic::{AtomicU8, Ordering};

use crate::device::{self, Daedalus, Device};
use crate::formats::{self, BitDepth, CaptureLayout, Codec};
use crate::media::prelude::*;
use crate::media::sync::{LockClass, Mutex};
use crate::media::uapi;
use crate::media::v4l2::file::{LockedFile, V4l2File};
use crate::media::v4l2::format::{BufType, Field, PixFormat, PlaneFormat};
use crate::media::v4l2::ioctl::{Capability, FmtDesc, FrameSizeEnum, IoctlOps};

/// An open file of `/dev/videoN`: the layer's container of a [`Context`].
pub(crate) type VideoFile = V4l2File<Daedalus>;

/// Frame size a new context starts with (clients always set their own).
const DEFAULT_WIDTH: u32 = 1280;
const DEFAULT_HEIGHT: u32 = 720;

/// The OUTPUT format of a context.
#[derive(Clone, Copy)]
pub(crate) struct CodedFormat {
    /// The codec of the OUTPUT pixel format.
    pub(crate) codec: Codec,
    /// Coded width, clamped to the codec's frame sizes (the CAPTURE format follows it).
    pub(crate) width: u32,
    /// Coded height, clamped likewise.
    pub(crate) height: u32,
    /// Size of an OUTPUT (bitstream) buffer.
    pub(crate) sizeimage: u32,
    /// The client's colorimetry, sanitized, reported on CAPTURE too.
    pub(crate) colorimetry: Colorimetry,
}

/// Colorimetry of the stream, passed from OUTPUT to CAPTURE.
#[derive(Clone, Copy)]
pub(crate) struct Colorimetry {
    colorspace: u32,
    xfer_func: u8,
    ycbcr_enc: u8,
    quantization: u8,
}

/// The CAPTURE format of a context.
#[derive(Clone, Copy)]
pub(crate) struct CaptureFormat {
    pub(crate) depth: BitDepth,
    pub(crate) layout: CaptureLayout,
    pub(crate) colorimetry: Colorimetry,
}

/// What a context keeps under the device lock (the driver's `M2mDriver::Locked`): its formats.
/// The CAPTURE format is not stored: it is derived from the OUTPUT format and the bit depth of
/// the codec's controls whenever it is needed.
pub(crate) struct State {
    coded: CodedFormat,
}

/// A decoding context: the driver's data of one open file of `/dev/videoN` (its
/// `M2mDriver::File`).
///
/// Everything here is also read without the device lock (control callbacks, request validation,
/// `device_run`), hence atomics and a mutex: `codec` and `depth` are read / written by request
/// validation and control callbacks, `format` is the copy of the OUTPUT format jobs are made with.
#[pin_data]
pub(crate) struct Context {
    /// Identifies the context to the daemon.
    pub(crate) id: u32,
    codec: AtomicU8,
    depth: [AtomicU8; 3],
    /// A copy of [`State`]'s OUTPUT format, written with it by `S_FMT(OUTPUT)` (under the device
    /// lock), for what reads it without that lock. A leaf lock.
    #[pin]
    format: Mutex<CodedFormat>,
}

/// Whether the OUTPUT queue of a context decoding `codec` offers
/// `V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF`: H.264, whose clients decode slice by slice or field by
/// field into one CAPTURE buffer. VP9 and AV1 requests always carry a whole frame; without the
/// flag their jobs leave the m2m core at once and run in parallel with other contexts' (see
/// `device_run` in [`crate::queue`]).
pub(crate) fn holds_capture(codec: Codec) -> bool {
    codec == Codec::H264
}

fn depth_bits(depth: BitDepth) -> u8 {
    match depth {
        BitDepth::Eight => 8,
        BitDepth::Ten => 10,
    }
}

impl Context {
    /// The data and state of a file being opened on `dev`: VP9 at the default size, 8 bits.
    pub(crate) fn open(dev: &Device) -> Result<(impl PinInit<Context, Error> + '_, State)> {
        let coded = CodedFormat {
            codec: Codec::Vp9,
            width: DEFAULT_WIDTH,
            height: DEFAULT_HEIGHT,
            sizeimage: formats::coded_sizeimage(DEFAULT_WIDTH, DEFAULT_HEIGHT, 0),
            colorimetry: Colorimetry::DEFAULT,
        };
        let bits = depth_bits(BitDepth::Eight);
        let data = try_pin_init!(Context {
            id: dev.data().jobs.new_context_id(),
            codec: AtomicU8::new(coded.codec.index() as u8),
            depth: core::array::from_fn(|_| AtomicU8::new(bits)),
            format <- Mutex::new(coded, LockClass::Format),
        }? Error);
        Ok((data, State { coded }))
    }

    /// The codec of the OUTPUT queue.
    pub(crate) fn codec(&self) -> Codec {
        Codec::ALL[usize::from(self.codec.load(Ordering::Acquire)) % Codec::ALL.len()]
    }

    /// Records the bit depth the controls of `codec` announce.
    pub(crate) fn set_depth(&self, codec: Codec, depth: BitDepth) {
        self.depth[codec.index()].store(depth_bits(depth), Ordering::Release);
    }

    fn depth(&self, codec: Codec) -> BitDepth {
        let bits = self.depth[codec.index()].load(Ordering::Acquire);
        BitDepth::from_bits(u32::from(bits)).unwrap_or(BitDepth::Eight)
    }

    /// The CAPTURE format that goes with `coded`: its size (rounded up to even) in NV12 or P010
    /// as the bit depth of the codec's controls says.
    fn capture_format_of(&self, coded: &CodedFormat) -> CaptureFormat {
        let depth = self.depth(coded.codec);
        CaptureFormat {
            depth,
            layout: CaptureLayout::new(depth, coded.width, coded.height),
            colorimetry: coded.colorimetry,
        }
    }

    /// The formats, without the device lock (jobs, vb2 callbacks): the copy of the OUTPUT format
    /// and the CAPTURE format that goes with it now.
    pub(crate) fn formats(&self) -> (CodedFormat, CaptureFormat) {
        let coded = *self.format.lock();
        (coded, self.capture_format_of(&coded))
    }

    /// Makes `coded` the OUTPUT format of what runs without the device lock.
    fn publish(&self, coded: &CodedFormat) {
        *self.format.lock() = *coded;
        self.codec
            .store(coded.codec.index() as u8, Ordering::Release);
    }
}

/// `v` if it is at most `max` (the last value the uAPI defines), else `default`.
fn at_most<V: Copy + Into<u32>>(v: V, max: u32, default: V) -> V {
    if v.into() > max {
        default
    } else {
        v
    }
}

/// The CAPTURE format of a context, from its OUTPUT format under the device lock.
fn capture_format(file: &LockedFile<'_, Daedalus>) -> CaptureFormat {
    file.data().capture_format_of(&file.state().coded)
}

impl Colorimetry {
    const DEFAULT: Colorimetry = Colorimetry {
        colorspace: uapi::V4L2_COLORSPACE_REC709,
        xfer_func: uapi::V4L2_XFER_FUNC_DEFAULT as u8,
        ycbcr_enc: uapi::V4L2_YCBCR_ENC_DEFAULT as u8,
        quantization: uapi::V4L2_QUANTIZATION_DEFAULT as u8,
    };

    /// The client's colorimetry, with out-of-range values replaced by the defaults.
    fn sanitized(p: &PixFormat) -> Colorimetry {
        let d = Colorimetry::DEFAULT;
        Colorimetry {
            colorspace: if p.colorspace == 0 {
                d.colorspace
            } else {
                at_most(p.colorspace, uapi::V4L2_COLORSPACE_DCI_P3, d.colorspace)
            },
            xfer_func: at_most(p.xfer_func, uapi::V4L2_XFER_FUNC_SMPTE2084, d.xfer_func),
            ycbcr_enc: at_most(p.ycbcr_enc, uapi::V4L2_YCBCR_ENC_SMPTE240M, d.ycbcr_enc),
            quantization: at_most(
                p.quantization,
                uapi::V4L2_QUANTIZATION_LIM_RANGE,
                d.quantization,
            ),
        }
    }

    fn apply(&self, p: &mut PixFormat) {
        p.colorspace = self.colorspace;
        p.xfer_func = self.xfer_func;
        p.ycbcr_enc = self.ycbcr_enc;
        p.quantization = self.quantization;
    }
}

fn coded_pix(c: &CodedFormat) -> PixFormat {
    let mut p = PixFormat {
        width: c.width,
        height: c.height,
        pixelformat: c.codec.fourcc(),
        field: Field::None,
        num_planes: 1,
        plane0: PlaneFormat {
            sizeimage: c.sizeimage,
            bytesperline: 0,
        },
        ..Default::default()
    };
    c.colorimetry.apply(&mut p);
    p
}

fn capture_pix(c: &CaptureFormat) -> PixFormat {
    let mut p = PixFormat {
        width: c.layout.width,
        height: c.layout.height,
        pixelformat: c.depth.capture_fourcc(),
        field: Field::None,
        num_planes: 1,
        plane0: PlaneFormat {
            sizeimage: c.layout.sizeimage,
            bytesperline: c.layout.bytesperline,
        },
        ..Default::default()
    };
    c.colorimetry.apply(&mut p);
    p
}

/// What `TRY_FMT(OUTPUT)` makes of a requested format.
fn try_coded(p: &PixFormat, current: Codec) -> CodedFormat {
    let codec = Codec::from_fourcc(p.pixelformat).unwrap_or(current);
    let (width, height) = codec.frame_sizes().clamp(p.width, p.height);
    let requested = if p.num_planes >= 1 {
        p.plane0.sizeimage
    } else {
        0
    };
    CodedFormat {
        codec,
        width,
        height,
        sizeimage: formats::coded_sizeimage(width, height, requested),
        colorimetry: Colorimetry::sanitized(p),
    }
}

/// `S_FMT(OUTPUT)`: sets the codec and size; CAPTURE follows.
fn set_coded(file: &mut LockedFile<'_, Daedalus>, p: &mut PixFormat) -> Result {
    let ctx = file.data();
    let coded = try_coded(p, ctx.codec());
    // A new size (resolution change) may keep the buffers, as long as neither queue streams and
    // the codec stays (as rkvdec). The CAPTURE format follows at once; CAPTURE buffers too small
    // for it are refused when queued (`buf_prepare`) and a job that would not fit fails, so
    // clients that keep them (GStreamer does, until it has set the new OUTPUT format) are safe.
    let (out_q, cap_q) = (
        file.queue(BufType::VideoOutputMplane),
        file.queue(BufType::VideoCaptureMplane),
    );
    if out_q.is_streaming()
        || cap_q.is_streaming()
        || (out_q.is_busy() && coded.codec != ctx.codec())
    {
        return Err(code::EBUSY);
    }
    // The codec, hence the flag, only changes without buffers (checked above).
    file.set_hold_capture(holds_capture(coded.codec))?;
    file.state_mut().coded = coded;
    ctx.publish(&coded);
    crate::ctrls::carry_codec_in_requests(file.handler(), coded.codec);
    *p = coded_pix(&coded);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// ioctls. The layer calls them with the device lock held (`LockedFile`); buffer, streaming and
// event ioctls go to the V4L2 core's helpers directly.

impl IoctlOps for Daedalus {
    fn querycap(_file: &VideoFile, cap: &mut Capability<'_>) -> Result {
        cap.set_driver(device::NAME);
        cap.set_card(device::NAME);
        cap.set_bus_info(device::BUS_INFO);
        Ok(())
    }

    fn enum_framesizes(_file: &VideoFile, fs: &mut FrameSizeEnum<'_>) -> Result {
        let codec = Codec::from_fourcc(fs.pixel_format()).ok_or(code::EINVAL)?;
        if fs.index() != 0 {
            return Err(code::EINVAL);
        }
        fs.set_stepwise(&codec.frame_sizes());
        Ok(())
    }

    fn enum_fmt(file: &LockedFile<'_, Daedalus>, ty: BufType, d: &mut FmtDesc<'_>) -> Result {
        let fourcc = match ty {
            BufType::VideoCaptureMplane => {
                if d.index() != 0 {
                    return Err(code::EINVAL);
                }
                capture_format(file).depth.capture_fourcc()
            }
            BufType::VideoOutputMplane => {
                let codec = Codec::ALL.get(d.index() as usize).ok_or(code::EINVAL)?;
                codec.fourcc()
            }
        };
        d.set_pixelformat(fourcc);
        Ok(())
    }

    fn g_fmt(file: &LockedFile<'_, Daedalus>, ty: BufType, p: &mut PixFormat) -> Result {
        *p = match ty {
            BufType::VideoCaptureMplane => capture_pix(&capture_format(file)),
            BufType::VideoOutputMplane => coded_pix(&file.state().coded),
        };
        Ok(())
    }

    fn try_fmt(file: &LockedFile<'_, Daedalus>, ty: BufType, p: &mut PixFormat) -> Result {
        match ty {
            // The CAPTURE format is dictated by the stream, whatever is asked.
            BufType::VideoCaptureMplane => Self::g_fmt(file, ty, p),
            BufType::VideoOutputMplane => {
                *p = coded_pix(&try_coded(p, file.data().codec()));
                Ok(())
            }
        }
    }

    fn s_fmt(file: &mut LockedFile<'_, Daedalus>, ty: BufType, p: &mut PixFormat) -> Result {
        match ty {
            BufType::VideoCaptureMplane => {
                let current = capture_format(file);
                let busy = file.queue(BufType::VideoCaptureMplane).is_busy();
                let changes = p.pixelformat != current.depth.capture_fourcc()
                    || p.width != current.layout.width
                    || p.height != current.layout.height;
                if busy && changes {
                    return Err(code::EBUSY);
                }
                Self::g_fmt(file, ty, p)
            }
            BufType::VideoOutputMplane => set_coded(file, p),
        }
    }
}
