// SPDX-License-Identifier: GPL-2.0
//! `/dev/videoN`: one decoding [`Context`] per open file, its formats and its ioctls.
//!
//! OUTPUT carries one of the coded formats of [`Codec`]; CAPTURE is derived from it: same size
//! (rounded up to even), NV12 for 8-bit streams, P010 for 10-bit ones, with the bit depth taken
//! from the codec's controls (see [`crate::ctrls`]). Buffers too small for the current CAPTURE
//! format are refused when queued.

use core::cell::UnsafeCell;
use core::mem::offset_of;
use core::ptr::addr_of_mut;
use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};

use crate::ctrls;
use crate::device::{self, Device};
use crate::formats::{self, BitDepth, CaptureLayout, Codec};
use crate::media::ctrls::CtrlHandler;
use crate::media::kernel::{alloc_zeroed, free};
use crate::media::prelude::*;
use crate::media::raw::{self as bindings, file, v4l2_fh, v4l2_format, v4l2_pix_format_mplane};
use crate::queue;
use crate::wire;

/// Frame size a new context starts with (clients always set their own).
const DEFAULT_WIDTH: u32 = 1280;
const DEFAULT_HEIGHT: u32 = 720;

/// The OUTPUT format of a context.
#[derive(Clone, Copy)]
pub(crate) struct CodedFormat {
    pub(crate) codec: Codec,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) sizeimage: u32,
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

/// Formats of a context. The CAPTURE format is not stored: it is derived from the OUTPUT
/// format and the bit depth of the codec's controls whenever it is needed.
struct State {
    coded: CodedFormat,
}

/// A decoding context: one open file of `/dev/videoN`.
///
/// # Invariants
///
/// `fh` and `hdl` are initialized by [`video_open`] before the context is visible to
/// the V4L2 core and torn down by [`video_release`]. `state` is only accessed with the device
/// lock held (every ioctl and videobuf2 callback of this driver runs under it; see
/// [`Context::state`]). `codec` and `depth` are atomics because request validation and
/// control callbacks read / write them without that lock.
pub(crate) struct Context {
    pub(crate) fh: Opaque<v4l2_fh>,
    pub(crate) dev: *const Device,
    /// Identifies the context to the daemon.
    pub(crate) id: u32,
    /// Jobs of this context not finished yet (see [`crate::jobs`]).
    pub(crate) inflight: AtomicU32,
    pub(crate) hdl: CtrlHandler<Context>,
    codec: AtomicU8,
    depth: [AtomicU8; 3],
    state: UnsafeCell<State>,
}

// SAFETY: the control callbacks reach the context from any task (`CtrlOps: Sync`), as the
// job queue and the m2m core already do: what they touch is atomics (`codec`, `depth`,
// `inflight`) or C objects with their own locking (`fh`, `hdl`); `state` is only touched under
// the device lock (see `Context::state`), `dev` is never written after open.
unsafe impl Sync for Context {}

impl Context {
    /// The context of a file handle.
    ///
    /// # Safety
    ///
    /// `fh` is the `fh` field of a live [`Context`].
    pub(crate) unsafe fn from_fh(fh: *mut v4l2_fh) -> *mut Context {
        // SAFETY: per the contract, stepping back by the field offset stays in the context.
        unsafe { fh.cast::<u8>().sub(offset_of!(Context, fh)).cast() }
    }

    /// The context of an open file of `/dev/videoN`.
    ///
    /// # Safety
    ///
    /// `file` was opened by [`video_open`] and is not released yet.
    pub(crate) unsafe fn from_file<'a>(file: *mut file) -> &'a Context {
        // SAFETY: `video_open` stored `&ctx.fh` in `private_data`; it lives until release.
        unsafe { &*Self::from_fh((*file).private_data.cast()) }
    }

    /// The formats of the context.
    ///
    /// # Safety
    ///
    /// The caller holds the device lock (`video_device.lock`), which the V4L2 core takes
    /// around every ioctl, and does not keep the reference past it.
    #[allow(clippy::mut_from_ref)]
    unsafe fn state(&self) -> &mut State {
        // SAFETY: the device lock serializes all users (contract).
        unsafe { &mut *self.state.get() }
    }

    pub(crate) fn m2m_ctx(&self) -> *mut bindings::v4l2_m2m_ctx {
        // SAFETY: `m2m_ctx` is set in `video_open` before the context is used and never changes.
        unsafe { (*self.fh.get()).m2m_ctx }
    }

    pub(crate) fn hdl(&self) -> *mut bindings::v4l2_ctrl_handler {
        self.hdl.as_raw()
    }

    pub(crate) fn device(&self) -> &Device {
        // SAFETY: a context holds a file of the video node, which keeps the device alive.
        unsafe { &*self.dev }
    }

    /// The codec of the OUTPUT queue.
    pub(crate) fn codec(&self) -> Codec {
        Codec::ALL[usize::from(self.codec.load(Ordering::Acquire)) % Codec::ALL.len()]
    }

    /// Records the bit depth the controls of `codec` announce.
    pub(crate) fn set_depth(&self, codec: Codec, depth: BitDepth) {
        let bits = match depth {
            BitDepth::Eight => 8,
            BitDepth::Ten => 10,
        };
        self.depth[codec.index()].store(bits, Ordering::Release);
    }

    fn depth(&self, codec: Codec) -> BitDepth {
        let bits = self.depth[codec.index()].load(Ordering::Acquire);
        BitDepth::from_bits(u32::from(bits)).unwrap_or(BitDepth::Eight)
    }

    fn queue(&self, ty: u32) -> *mut bindings::vb2_queue {
        // SAFETY: the m2m context is live; `ty` is one of its two queue types.
        unsafe { bindings::v4l2_m2m_get_vq(self.m2m_ctx(), ty) }
    }

    pub(crate) fn capture_queue(&self) -> *mut bindings::vb2_queue {
        self.queue(bindings::V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE)
    }

    pub(crate) fn output_queue(&self) -> *mut bindings::vb2_queue {
        self.queue(bindings::V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE)
    }

    /// The OUTPUT format.
    ///
    /// # Safety
    ///
    /// As [`Context::state`].
    pub(crate) unsafe fn coded_format(&self) -> CodedFormat {
        // SAFETY: forwarded contract.
        unsafe { self.state().coded }
    }

    /// The CAPTURE format: the OUTPUT size (rounded up to even) in NV12 or P010 as the bit
    /// depth of the codec's controls says.
    ///
    /// # Safety
    ///
    /// As [`Context::state`].
    pub(crate) unsafe fn capture_format(&self) -> CaptureFormat {
        // SAFETY: forwarded contract.
        let coded = unsafe { self.state().coded };
        self.capture_format_of(&coded)
    }

    fn capture_format_of(&self, coded: &CodedFormat) -> CaptureFormat {
        let depth = self.depth(coded.codec);
        CaptureFormat {
            depth,
            layout: CaptureLayout::new(depth, coded.width, coded.height),
            colorimetry: coded.colorimetry,
        }
    }

    /// The formats a decode job is made with, read without the device lock.
    ///
    /// # Safety
    ///
    /// A job of this context is being made, so OUTPUT streams. Then the OUTPUT format cannot
    /// be written: `S_FMT(OUTPUT)` is refused while OUTPUT streams (and streaming stops only
    /// after the context's jobs ended). The bit depth is an atomic.
    pub(crate) unsafe fn job_formats(&self) -> (CodedFormat, CaptureFormat) {
        // SAFETY: no writer can run (contract), so the shared read does not race.
        let coded = unsafe { (*self.state.get()).coded };
        (coded, self.capture_format_of(&coded))
    }
}

/// Reads the multi-planar pixel format out of a `v4l2_format`.
///
/// # Safety
///
/// `f` is a valid `v4l2_format` of a multi-planar buffer type (the core checked the type).
unsafe fn read_pix_mp(f: *mut v4l2_format) -> v4l2_pix_format_mplane {
    // SAFETY: the union member for mplane types; the struct is packed (align 1) and `Copy`.
    unsafe { core::ptr::read(addr_of_mut!((*f).fmt.pix_mp)) }
}

/// # Safety
///
/// As [`read_pix_mp`].
unsafe fn write_pix_mp(f: *mut v4l2_format, p: v4l2_pix_format_mplane) {
    // SAFETY: see `read_pix_mp`.
    unsafe { core::ptr::write(addr_of_mut!((*f).fmt.pix_mp), p) }
}

impl Colorimetry {
    const DEFAULT: Colorimetry = Colorimetry {
        colorspace: bindings::V4L2_COLORSPACE_REC709,
        xfer_func: bindings::V4L2_XFER_FUNC_DEFAULT as u8,
        ycbcr_enc: bindings::V4L2_YCBCR_ENC_DEFAULT as u8,
        quantization: bindings::V4L2_QUANTIZATION_DEFAULT as u8,
    };

    /// The client's colorimetry, with out-of-range values replaced by the defaults.
    fn sanitized(p: &v4l2_pix_format_mplane) -> Colorimetry {
        let d = Colorimetry::DEFAULT;
        let colorspace = p.colorspace;
        // SAFETY: both union members are `u8`; any value is valid.
        let ycbcr = unsafe { p.__bindgen_anon_1.ycbcr_enc };
        Colorimetry {
            colorspace: if colorspace == 0 || colorspace > bindings::V4L2_COLORSPACE_DCI_P3 {
                d.colorspace
            } else {
                colorspace
            },
            xfer_func: if u32::from(p.xfer_func) > bindings::V4L2_XFER_FUNC_SMPTE2084 {
                d.xfer_func
            } else {
                p.xfer_func
            },
            ycbcr_enc: if u32::from(ycbcr) > bindings::V4L2_YCBCR_ENC_SMPTE240M {
                d.ycbcr_enc
            } else {
                ycbcr
            },
            quantization: if u32::from(p.quantization) > bindings::V4L2_QUANTIZATION_LIM_RANGE {
                d.quantization
            } else {
                p.quantization
            },
        }
    }

    fn apply(&self, p: &mut v4l2_pix_format_mplane) {
        p.colorspace = self.colorspace;
        p.xfer_func = self.xfer_func;
        p.__bindgen_anon_1.ycbcr_enc = self.ycbcr_enc;
        p.quantization = self.quantization;
    }
}

fn coded_pix_mp(c: &CodedFormat) -> v4l2_pix_format_mplane {
    let mut p = v4l2_pix_format_mplane {
        width: c.width,
        height: c.height,
        pixelformat: c.codec.fourcc(),
        field: bindings::V4L2_FIELD_NONE,
        num_planes: 1,
        ..Default::default()
    };
    p.plane_fmt[0].sizeimage = c.sizeimage;
    p.plane_fmt[0].bytesperline = 0;
    c.colorimetry.apply(&mut p);
    p
}

fn capture_pix_mp(c: &CaptureFormat) -> v4l2_pix_format_mplane {
    let mut p = v4l2_pix_format_mplane {
        width: c.layout.width,
        height: c.layout.height,
        pixelformat: c.depth.capture_fourcc(),
        field: bindings::V4L2_FIELD_NONE,
        num_planes: 1,
        ..Default::default()
    };
    p.plane_fmt[0].sizeimage = c.layout.sizeimage;
    p.plane_fmt[0].bytesperline = c.layout.bytesperline;
    c.colorimetry.apply(&mut p);
    p
}

/// What `TRY_FMT(OUTPUT)` makes of a requested format.
fn try_coded(p: &v4l2_pix_format_mplane, current: Codec) -> CodedFormat {
    let codec = Codec::from_fourcc(p.pixelformat).unwrap_or(current);
    let (width, height) = codec.frame_sizes().clamp(p.width, p.height);
    let requested = if p.num_planes >= 1 {
        p.plane_fmt[0].sizeimage
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

// ---------------------------------------------------------------------------------------------
// File operations

pub(crate) static FOPS: AssertSync<bindings::v4l2_file_operations> =
    AssertSync::new(bindings::v4l2_file_operations {
        owner: crate::THIS_MODULE.as_ptr().cast(),
        open: Some(video_open),
        release: Some(video_release),
        poll: Some(bindings::v4l2_m2m_fop_poll),
        unlocked_ioctl: Some(bindings::video_ioctl2),
        mmap: Some(bindings::v4l2_m2m_fop_mmap),
        // Remaining callbacks `None`.
        ..zeroed()
    });

/// `open` of `/dev/videoN`: creates a context.
///
/// # Safety
///
/// Only called by the V4L2 core for a file of our video node.
unsafe extern "C" fn video_open(file: *mut file) -> c_int {
    // SAFETY: `file` is being opened on our node.
    let vdev = unsafe { bindings::video_devdata(file) };
    // SAFETY: our only video node is the `vfd` of the device, which lives while the node is
    // being opened (the core holds a reference on it).
    let dev = unsafe { Device::from_vdev(vdev) };
    let _guard = match dev.lock().lock_interruptible() {
        Ok(g) => g,
        Err(e) => return e.to_errno(),
    };
    // SAFETY: the lock is held; `file` and `vdev` as above.
    errno(unsafe { open_locked(file, vdev, dev) })
}

/// # Safety
///
/// As [`video_open`], with the device lock held.
unsafe fn open_locked(file: *mut file, vdev: *mut bindings::video_device, dev: &Device) -> Result {
    // SAFETY: every field of `Context` is valid zeroed (raw pointers, `Opaque`, atomics, and a
    // `State` of integers; it is overwritten below anyway).
    let ctx = unsafe { alloc_zeroed::<Context>() }?;
    // SAFETY: `ctx` is a fresh exclusive allocation.
    let c = unsafe { &mut *ctx };
    c.dev = dev;
    c.id = dev.data().jobs.new_context_id();
    let default = CodedFormat {
        codec: Codec::Vp9,
        width: DEFAULT_WIDTH,
        height: DEFAULT_HEIGHT,
        sizeimage: formats::coded_sizeimage(DEFAULT_WIDTH, DEFAULT_HEIGHT, 0),
        colorimetry: Colorimetry::DEFAULT,
    };
    let depth = BitDepth::Eight;
    *c.state.get_mut() = State { coded: default };
    for codec in Codec::ALL {
        c.set_depth(codec, depth);
    }
    let fh = c.fh.get();
    // SAFETY: `fh` is zeroed storage, `vdev` our live node.
    unsafe { bindings::v4l2_fh_init(fh, vdev) };
    // SAFETY: `hdl` is zeroed storage in `ctx`, which never moves; its owner is the context
    // itself, which outlives it (the handler is freed when the context is dropped). On an
    // error, dropping the context frees the handler (after `fh`, which has no event yet).
    if let Err(e) = unsafe {
        CtrlHandler::init(
            addr_of_mut!((*ctx).hdl),
            &*ctx,
            ctrls::NR_CONTROLS,
            ctrls::build,
        )
    } {
        // SAFETY: initialized above, not added to the device yet.
        unsafe {
            bindings::v4l2_fh_exit(fh);
            free(ctx);
        }
        return Err(e);
    }
    // SAFETY: `fh` is initialized; the handler is complete.
    unsafe { (*fh).ctrl_handler = (*ctx).hdl.as_raw() };
    // SAFETY: the m2m device lives as long as the device; `ctx` is what `queue_init` expects.
    let m2m = check_ptr(unsafe {
        bindings::v4l2_m2m_ctx_init(dev.m2m_raw(), ctx.cast(), Some(queue::queue_init))
    });
    match m2m {
        // SAFETY: `fh` is initialized.
        Ok(m) => unsafe { (*fh).m2m_ctx = m },
        Err(e) => {
            // SAFETY: undo in reverse (dropping the context frees the handler); nothing else
            // saw the context.
            unsafe {
                bindings::v4l2_fh_exit(fh);
                free(ctx);
            }
            return Err(e);
        }
    }
    // SAFETY: `file` is being opened; from here on the core can reach `ctx` through it
    // (`daedalus_fh_add` sets `private_data` to `fh`).
    unsafe { bindings::daedalus_fh_add(fh, file) };
    // SAFETY: as above.
    dev.data()
        .jobs
        .event(wire::KIND_CONTEXT_OPEN, unsafe { (*ctx).id });
    Ok(())
}

/// `release` of `/dev/videoN`: tears the context down.
///
/// # Safety
///
/// Only called by the V4L2 core on the last close of a file opened by [`video_open`].
unsafe extern "C" fn video_release(file: *mut file) -> c_int {
    // SAFETY: opened by `video_open`.
    let c = unsafe { Context::from_file(file) };
    let ctx = core::ptr::from_ref(c).cast_mut();
    // Releasing the m2m context stops streaming, which returns the buffers and completes their
    // requests through `hdl`, so it goes first, under the device lock.
    let guard = c.device().lock().lock();
    // SAFETY: the m2m context is live until here.
    unsafe { bindings::v4l2_m2m_ctx_release(c.m2m_ctx()) };
    drop(guard);
    // SAFETY: the file is being released; `fh` was added in `video_open`.
    unsafe {
        // Also clears `private_data`.
        bindings::daedalus_fh_del(c.fh.get(), file);
        bindings::v4l2_fh_exit(c.fh.get());
    }
    c.device().data().jobs.event(wire::KIND_CONTEXT_CLOSE, c.id);
    // SAFETY: streaming stopped above, which waited for the context's jobs: nothing refers to
    // the context any more. Dropping it frees the control handler (after `fh`, whose control
    // events it served).
    unsafe { free(ctx) };
    0
}

// ---------------------------------------------------------------------------------------------
// ioctls. The V4L2 core calls them with the device lock held (`video_device.lock`), after
// checking the buffer type against the callback; `fh` is the file's `v4l2_fh`.

macro_rules! ctx {
    ($file:expr) => {
        // SAFETY: ioctls are only issued on files opened by `video_open`.
        unsafe { Context::from_file($file) }
    };
}

pub(crate) static IOCTL_OPS: AssertSync<bindings::v4l2_ioctl_ops> =
    AssertSync::new(bindings::v4l2_ioctl_ops {
        vidioc_querycap: Some(querycap),
        vidioc_enum_framesizes: Some(enum_framesizes),

        vidioc_enum_fmt_vid_cap: Some(enum_fmt_vid_cap),
        vidioc_g_fmt_vid_cap_mplane: Some(g_fmt_vid_cap),
        vidioc_try_fmt_vid_cap_mplane: Some(try_fmt_vid_cap),
        vidioc_s_fmt_vid_cap_mplane: Some(s_fmt_vid_cap),

        vidioc_enum_fmt_vid_out: Some(enum_fmt_vid_out),
        vidioc_g_fmt_vid_out_mplane: Some(g_fmt_vid_out),
        vidioc_try_fmt_vid_out_mplane: Some(try_fmt_vid_out),
        vidioc_s_fmt_vid_out_mplane: Some(s_fmt_vid_out),

        vidioc_reqbufs: Some(bindings::v4l2_m2m_ioctl_reqbufs),
        vidioc_querybuf: Some(bindings::v4l2_m2m_ioctl_querybuf),
        vidioc_qbuf: Some(bindings::v4l2_m2m_ioctl_qbuf),
        vidioc_dqbuf: Some(bindings::v4l2_m2m_ioctl_dqbuf),
        vidioc_prepare_buf: Some(bindings::v4l2_m2m_ioctl_prepare_buf),
        vidioc_create_bufs: Some(bindings::v4l2_m2m_ioctl_create_bufs),
        vidioc_expbuf: Some(bindings::v4l2_m2m_ioctl_expbuf),
        vidioc_remove_bufs: Some(bindings::v4l2_m2m_ioctl_remove_bufs),

        vidioc_streamon: Some(bindings::v4l2_m2m_ioctl_streamon),
        vidioc_streamoff: Some(bindings::v4l2_m2m_ioctl_streamoff),

        vidioc_decoder_cmd: Some(bindings::v4l2_m2m_ioctl_stateless_decoder_cmd),
        vidioc_try_decoder_cmd: Some(bindings::v4l2_m2m_ioctl_stateless_try_decoder_cmd),

        vidioc_subscribe_event: Some(bindings::v4l2_ctrl_subscribe_event),
        vidioc_unsubscribe_event: Some(bindings::v4l2_event_unsubscribe),
        // Remaining callbacks `None`.
        ..zeroed()
    });

/// # Safety
///
/// V4L2 ioctl callback: `cap` is a valid `v4l2_capability`.
unsafe extern "C" fn querycap(
    _file: *mut file,
    _fh: *mut c_void,
    cap: *mut bindings::v4l2_capability,
) -> c_int {
    // SAFETY: `cap` is valid (contract); the core fills the capability bits from the node.
    let cap = unsafe { &mut *cap };
    strscpy(&mut cap.driver, device::NAME);
    strscpy(&mut cap.card, device::NAME);
    strscpy(&mut cap.bus_info, device::BUS_INFO);
    0
}

/// # Safety
///
/// V4L2 ioctl callback: `fsize` is a valid `v4l2_frmsizeenum`.
unsafe extern "C" fn enum_framesizes(
    _file: *mut file,
    _fh: *mut c_void,
    fsize: *mut bindings::v4l2_frmsizeenum,
) -> c_int {
    // SAFETY: valid per the contract.
    let fsize = unsafe { &mut *fsize };
    let Some(codec) = Codec::from_fourcc(fsize.pixel_format) else {
        return code::EINVAL.to_errno();
    };
    if fsize.index != 0 {
        return code::EINVAL.to_errno();
    }
    let s = codec.frame_sizes();
    fsize.type_ = bindings::V4L2_FRMSIZE_TYPE_STEPWISE;
    fsize.__bindgen_anon_1.stepwise = bindings::v4l2_frmsize_stepwise {
        min_width: s.min_width,
        max_width: s.max_width,
        step_width: s.step_width,
        min_height: s.min_height,
        max_height: s.max_height,
        step_height: s.step_height,
    };
    0
}

/// # Safety
///
/// V4L2 ioctl callback on one of our files: `f` is a valid `v4l2_fmtdesc`.
unsafe extern "C" fn enum_fmt_vid_cap(
    file: *mut file,
    _fh: *mut c_void,
    f: *mut bindings::v4l2_fmtdesc,
) -> c_int {
    let ctx = ctx!(file);
    // SAFETY: valid per the contract.
    let f = unsafe { &mut *f };
    if f.index != 0 {
        return code::EINVAL.to_errno();
    }
    // SAFETY: ioctls run with the device lock held.
    f.pixelformat = unsafe { ctx.capture_format() }.depth.capture_fourcc();
    0
}

/// # Safety
///
/// V4L2 ioctl callback: `f` is a valid `v4l2_fmtdesc`.
unsafe extern "C" fn enum_fmt_vid_out(
    _file: *mut file,
    _fh: *mut c_void,
    f: *mut bindings::v4l2_fmtdesc,
) -> c_int {
    // SAFETY: valid per the contract.
    let f = unsafe { &mut *f };
    match Codec::ALL.get(f.index as usize) {
        Some(codec) => {
            f.pixelformat = codec.fourcc();
            0
        }
        None => code::EINVAL.to_errno(),
    }
}

/// # Safety
///
/// V4L2 ioctl callback on one of our files: `f` is a valid mplane `v4l2_format`.
unsafe extern "C" fn g_fmt_vid_cap(
    file: *mut file,
    _fh: *mut c_void,
    f: *mut v4l2_format,
) -> c_int {
    let ctx = ctx!(file);
    // SAFETY: device lock held (ioctl); `f` valid (contract).
    unsafe { write_pix_mp(f, capture_pix_mp(&ctx.capture_format())) };
    0
}

/// `TRY_FMT(CAPTURE)`: the CAPTURE format is dictated by the stream, whatever is asked.
///
/// # Safety
///
/// As [`g_fmt_vid_cap`].
unsafe extern "C" fn try_fmt_vid_cap(
    file: *mut file,
    fh: *mut c_void,
    f: *mut v4l2_format,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { g_fmt_vid_cap(file, fh, f) }
}

/// # Safety
///
/// As [`g_fmt_vid_cap`].
unsafe extern "C" fn s_fmt_vid_cap(file: *mut file, fh: *mut c_void, f: *mut v4l2_format) -> c_int {
    let ctx = ctx!(file);
    // SAFETY: `f` is valid (contract).
    let requested = unsafe { read_pix_mp(f) };
    // SAFETY: device lock held.
    let current = unsafe { ctx.capture_format() };
    // SAFETY: the queue is live.
    let busy = unsafe { bindings::daedalus_vb2_is_busy(ctx.capture_queue()) };
    let changes = requested.pixelformat != current.depth.capture_fourcc()
        || requested.width != current.layout.width
        || requested.height != current.layout.height;
    if busy && changes {
        return code::EBUSY.to_errno();
    }
    // SAFETY: forwarded contract.
    unsafe { g_fmt_vid_cap(file, fh, f) }
}

/// # Safety
///
/// As [`g_fmt_vid_cap`].
unsafe extern "C" fn g_fmt_vid_out(
    file: *mut file,
    _fh: *mut c_void,
    f: *mut v4l2_format,
) -> c_int {
    let ctx = ctx!(file);
    // SAFETY: device lock held; `f` valid.
    unsafe { write_pix_mp(f, coded_pix_mp(&ctx.coded_format())) };
    0
}

/// # Safety
///
/// As [`g_fmt_vid_cap`].
unsafe extern "C" fn try_fmt_vid_out(
    file: *mut file,
    _fh: *mut c_void,
    f: *mut v4l2_format,
) -> c_int {
    let ctx = ctx!(file);
    // SAFETY: `f` valid.
    let coded = try_coded(&unsafe { read_pix_mp(f) }, ctx.codec());
    // SAFETY: `f` valid.
    unsafe { write_pix_mp(f, coded_pix_mp(&coded)) };
    0
}

/// `S_FMT(OUTPUT)`: sets the codec and size; CAPTURE follows.
///
/// # Safety
///
/// As [`g_fmt_vid_cap`].
unsafe extern "C" fn s_fmt_vid_out(
    file: *mut file,
    _fh: *mut c_void,
    f: *mut v4l2_format,
) -> c_int {
    let ctx = ctx!(file);
    let r = (|| -> Result {
        // SAFETY: `f` valid.
        let coded = try_coded(&unsafe { read_pix_mp(f) }, ctx.codec());
        let (out_q, cap_q) = (ctx.output_queue(), ctx.capture_queue());
        // A new size (resolution change) may keep the buffers, as long as neither queue
        // streams and the codec stays (as rkvdec). The CAPTURE format follows at once; CAPTURE
        // buffers too small for it are refused when queued (`buf_prepare`) and a job that
        // would not fit fails, so clients that keep them (GStreamer does, until it has set the
        // new OUTPUT format) are safe.
        // SAFETY: the queues are live.
        let refused = unsafe {
            bindings::daedalus_vb2_is_streaming(out_q)
                || bindings::daedalus_vb2_is_streaming(cap_q)
                || (bindings::daedalus_vb2_is_busy(out_q) && coded.codec != ctx.codec())
        };
        if refused {
            return Err(code::EBUSY);
        }
        // SAFETY: device lock held (ioctl); OUTPUT is not streaming, so no job reads the
        // format, and the codec (hence the queue flags) only changes without buffers.
        unsafe {
            ctx.state().coded = coded;
            queue::set_codec(out_q, coded.codec);
        }
        ctx.codec
            .store(coded.codec.index() as u8, Ordering::Release);
        // SAFETY: `f` valid.
        unsafe { write_pix_mp(f, coded_pix_mp(&coded)) };
        Ok(())
    })();
    errno(r)
}
