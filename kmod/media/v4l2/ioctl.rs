// SPDX-License-Identifier: GPL-2.0
//! The video node's ioctls: [`IoctlOps`] (what the driver answers), the `v4l2_ioctl_ops` table
//! the layer builds from it, and the argument views [`Capability`], [`FrameSizeEnum`],
//! [`FmtDesc`] (the formats themselves are [`PixFormat`] copies).
//!
//! Buffer, streaming, decoder-command and event ioctls go straight to the V4L2 core's mem2mem,
//! stateless-decoder and control helpers: the driver has no method for them.
//!
//! The V4L2 core calls every op of the table with the file's device lock held
//! (`v4l2_ioctl_get_lock` returns `video_device.lock`: the layer sets neither `m2m_ctx->q_lock`
//! nor `video_device.queue`), after checking that the argument's buffer type is the one the op is
//! registered for.

use core::marker::PhantomData;
use core::ptr::{addr_of_mut, NonNull};

use super::super::bindings;
use super::super::kernel::{c_int, c_void, code, errno, strscpy, zeroed, Result};
use super::device::M2mDriver;
use super::file::{LockedFile, V4l2File};
use super::format::{BufType, PixFormat};
use crate::formats::FrameSizes;

/// The ioctls a driver answers itself.
pub(crate) trait IoctlOps: M2mDriver {
    /// `VIDIOC_QUERYCAP`: names (the core fills in the capability bits from the node).
    fn querycap(file: &V4l2File<Self>, cap: &mut Capability<'_>) -> Result;
    /// `VIDIOC_ENUM_FRAMESIZES`.
    fn enum_framesizes(file: &V4l2File<Self>, fs: &mut FrameSizeEnum<'_>) -> Result;
    /// `VIDIOC_ENUM_FMT` on queue `ty`.
    fn enum_fmt(file: &LockedFile<'_, Self>, ty: BufType, d: &mut FmtDesc<'_>) -> Result;
    /// `VIDIOC_G_FMT` on queue `ty`: `p` holds what the client passed.
    fn g_fmt(file: &LockedFile<'_, Self>, ty: BufType, p: &mut PixFormat) -> Result;
    /// `VIDIOC_TRY_FMT` on queue `ty`: adjusts `p`.
    fn try_fmt(file: &LockedFile<'_, Self>, ty: BufType, p: &mut PixFormat) -> Result;
    /// `VIDIOC_S_FMT` on queue `ty`: adjusts `p` and makes it the queue's format.
    fn s_fmt(file: &mut LockedFile<'_, Self>, ty: BufType, p: &mut PixFormat) -> Result;
}

/// The `v4l2_capability` of a `VIDIOC_QUERYCAP`.
pub(crate) struct Capability<'a>(&'a mut bindings::v4l2_capability);

impl Capability<'_> {
    /// Sets the driver name (truncated to fit, NUL-terminated).
    pub(crate) fn set_driver(&mut self, name: &[u8]) {
        strscpy(&mut self.0.driver, name);
    }

    /// Sets the device name.
    pub(crate) fn set_card(&mut self, name: &[u8]) {
        strscpy(&mut self.0.card, name);
    }

    /// Sets the bus information.
    pub(crate) fn set_bus_info(&mut self, bus_info: &[u8]) {
        strscpy(&mut self.0.bus_info, bus_info);
    }
}

/// The `v4l2_frmsizeenum` of a `VIDIOC_ENUM_FRAMESIZES`.
pub(crate) struct FrameSizeEnum<'a>(&'a mut bindings::v4l2_frmsizeenum);

impl FrameSizeEnum<'_> {
    /// Which entry the client asks for.
    pub(crate) fn index(&self) -> u32 {
        self.0.index
    }

    /// The pixel format whose sizes are asked for.
    pub(crate) fn pixel_format(&self) -> u32 {
        self.0.pixel_format
    }

    /// Answers with a stepwise range (the one definition of a range, shared with userspace).
    pub(crate) fn set_stepwise(&mut self, s: &FrameSizes) {
        self.0.type_ = bindings::V4L2_FRMSIZE_TYPE_STEPWISE;
        self.0.__bindgen_anon_1.stepwise = bindings::v4l2_frmsize_stepwise {
            min_width: s.min_width,
            max_width: s.max_width,
            step_width: s.step_width,
            min_height: s.min_height,
            max_height: s.max_height,
            step_height: s.step_height,
        };
    }
}

/// The `v4l2_fmtdesc` of a `VIDIOC_ENUM_FMT` (the core fills in the description and flags).
pub(crate) struct FmtDesc<'a>(&'a mut bindings::v4l2_fmtdesc);

impl FmtDesc<'_> {
    /// Which entry the client asks for.
    pub(crate) fn index(&self) -> u32 {
        self.0.index
    }

    /// Answers with this pixel format.
    pub(crate) fn set_pixelformat(&mut self, fourcc: u32) {
        self.0.pixelformat = fourcc;
    }
}

/// The multi-planar pixel format of a `VIDIOC_*_FMT` argument.
///
/// # Invariants
///
/// `raw` is the valid `v4l2_format` of an ioctl in progress, of a multi-planar buffer type (so
/// `fmt.pix_mp` is its member), for `'a`.
struct MplaneFormat<'a> {
    raw: NonNull<bindings::v4l2_format>,
    _p: PhantomData<&'a mut bindings::v4l2_format>,
}

impl MplaneFormat<'_> {
    /// # Safety
    ///
    /// As the type invariants, for the lifetime chosen by the caller.
    unsafe fn new(raw: *mut bindings::v4l2_format) -> Option<Self> {
        // INVARIANT: per the contract.
        Some(MplaneFormat {
            raw: NonNull::new(raw)?,
            _p: PhantomData,
        })
    }

    /// Calls `f` with a copy of the format and writes the copy back if `f` succeeds.
    fn update(self, f: impl FnOnce(&mut PixFormat) -> Result) -> Result {
        // SAFETY: `raw` is valid and `pix_mp` is the member for its buffer type (type
        // invariant); the struct is packed (alignment 1) and `Copy`, so it is read whole.
        let mut p = PixFormat::from_raw(&unsafe {
            core::ptr::read(addr_of_mut!((*self.raw.as_ptr()).fmt.pix_mp))
        });
        f(&mut p)?;
        // SAFETY: as above, written whole.
        unsafe { core::ptr::write(addr_of_mut!((*self.raw.as_ptr()).fmt.pix_mp), p.to_raw()) };
        Ok(())
    }
}

vtable! {
    /// The `v4l2_ioctl_ops` of driver `T`.
    pub(super) struct IoctlVTable<T: IoctlOps>: bindings::v4l2_ioctl_ops {
        vidioc_querycap: Some(querycap::<T>),
        vidioc_enum_framesizes: Some(enum_framesizes::<T>),

        vidioc_enum_fmt_vid_cap: Some(enum_fmt_vid_cap::<T>),
        vidioc_g_fmt_vid_cap_mplane: Some(g_fmt_vid_cap::<T>),
        vidioc_try_fmt_vid_cap_mplane: Some(try_fmt_vid_cap::<T>),
        vidioc_s_fmt_vid_cap_mplane: Some(s_fmt_vid_cap::<T>),

        vidioc_enum_fmt_vid_out: Some(enum_fmt_vid_out::<T>),
        vidioc_g_fmt_vid_out_mplane: Some(g_fmt_vid_out::<T>),
        vidioc_try_fmt_vid_out_mplane: Some(try_fmt_vid_out::<T>),
        vidioc_s_fmt_vid_out_mplane: Some(s_fmt_vid_out::<T>),

        vidioc_reqbufs: Some(reqbufs::<T>),
        vidioc_querybuf: Some(bindings::v4l2_m2m_ioctl_querybuf),
        vidioc_qbuf: Some(bindings::v4l2_m2m_ioctl_qbuf),
        vidioc_dqbuf: Some(bindings::v4l2_m2m_ioctl_dqbuf),
        vidioc_prepare_buf: Some(bindings::v4l2_m2m_ioctl_prepare_buf),
        vidioc_create_bufs: Some(bindings::v4l2_m2m_ioctl_create_bufs),
        vidioc_expbuf: Some(bindings::v4l2_m2m_ioctl_expbuf),
        vidioc_remove_bufs: Some(bindings::v4l2_m2m_ioctl_remove_bufs),

        vidioc_streamon: Some(bindings::v4l2_m2m_ioctl_streamon),
        vidioc_streamoff: Some(bindings::v4l2_m2m_ioctl_streamoff),

        vidioc_decoder_cmd: Some(super::super::m2m::decoder_cmd::<T>),
        vidioc_try_decoder_cmd: Some(bindings::v4l2_m2m_ioctl_stateless_try_decoder_cmd),

        vidioc_subscribe_event: Some(bindings::v4l2_ctrl_subscribe_event),
        vidioc_unsubscribe_event: Some(bindings::v4l2_event_unsubscribe),
        // Remaining callbacks `None`.
        ..zeroed()
    }
}

impl<T: IoctlOps> IoctlVTable<T> {
    /// Runs an op that needs neither the device lock nor a queue: the file and the ioctl's
    /// argument.
    ///
    /// # Safety
    ///
    /// Only called by the V4L2 core, for a file of the node the table of `T` is installed on:
    /// `arg` is valid and ours for the call.
    unsafe fn file_op<A>(
        file: *mut bindings::file,
        arg: *mut A,
        op: impl FnOnce(&V4l2File<T>, &mut A) -> Result,
    ) -> c_int {
        // SAFETY: the file was opened by `open::<T>` (V4l2File invariant 1), `arg` is valid
        // (contract) and ours for the call.
        let (file, arg) = unsafe { (V4l2File::<T>::from_file(file), &mut *arg) };
        errno(op(file, arg))
    }

    /// `vidioc_enum_fmt_vid_*` on queue `ty`.
    ///
    /// # Safety
    ///
    /// As [`Self::file_op`], for `f`; the core holds the device lock.
    unsafe fn enum_fmt(
        file: *mut bindings::file,
        f: *mut bindings::v4l2_fmtdesc,
        ty: BufType,
    ) -> c_int {
        // SAFETY: as in `file_op`; the core holds the device lock around the op and makes no
        // other `LockedFile` of this file while it runs.
        let (file, f) = unsafe { (LockedFile::<T>::enter(file), &mut *f) };
        errno(T::enum_fmt(&file, ty, &mut FmtDesc(f)))
    }

    /// Runs a format op on queue `ty`: the file under its lock and the format of the ioctl in
    /// progress.
    ///
    /// # Safety
    ///
    /// Called from an ioctl trampoline of the table of `T` with its `file` and `f`: `file` was
    /// opened by the layer's `open::<T>`, the core holds the device lock, `f` is valid and of a
    /// multi-planar type.
    unsafe fn format_op(
        file: *mut bindings::file,
        f: *mut bindings::v4l2_format,
        ty: BufType,
        op: impl FnOnce(&mut LockedFile<'_, T>, BufType, &mut PixFormat) -> Result,
    ) -> c_int {
        // SAFETY: per the contract (V4l2File invariant 1; the core holds the lock around the op
        // and makes no other `LockedFile` of this file while it runs).
        let (mut locked, fmt) = unsafe { (LockedFile::<T>::enter(file), MplaneFormat::new(f)) };
        let Some(fmt) = fmt else {
            return code::EINVAL.to_errno();
        };
        errno(fmt.update(|p| op(&mut locked, ty, p)))
    }
}

/// `vidioc_reqbufs`: `v4l2_m2m_ioctl_reqbufs`, the queued buffers cancelled first
/// ([`super::file::Queue::cancel_before_reqbufs`]).
///
/// # Safety
///
/// Only called by the V4L2 core, for a file of the node the table of `T` is installed on, with the
/// device lock held and a valid `rb`.
unsafe extern "C" fn reqbufs<T: IoctlOps>(
    file: *mut bindings::file,
    fh: *mut c_void,
    rb: *mut bindings::v4l2_requestbuffers,
) -> c_int {
    // SAFETY: per the contract (V4l2File invariant 1; the core holds the lock around the op and
    // makes no other `LockedFile` of this file while it runs); `rb` is valid for the call.
    let (locked, req) = unsafe { (LockedFile::<T>::enter(file), &*rb) };
    let ty = if req.type_ == BufType::VideoOutputMplane.raw() {
        BufType::VideoOutputMplane
    } else {
        BufType::VideoCaptureMplane
    };
    locked.queue(ty).cancel_before_reqbufs(req);
    // SAFETY: as the core's own call of the op.
    unsafe { bindings::v4l2_m2m_ioctl_reqbufs(file, fh, rb) }
}

/// Defines the `extern "C"` ops of the table: each forwards the file and the argument to its
/// helper ([`IoctlVTable::file_op`], [`IoctlVTable::enum_fmt`] or [`IoctlVTable::format_op`])
/// with the rest of the call. `cap, out(arg) => helper(...)` defines the op of each queue, the
/// helper getting the queue's buffer type first.
macro_rules! trampolines {
    (@fn $name:ident($arg:ident) => $helper:ident($($rest:expr),+)) => {
        #[doc = concat!("`vidioc_", stringify!($name), "`.")]
        ///
        /// # Safety
        ///
        #[doc = concat!("As [`IoctlVTable::", stringify!($helper), "`].")]
        unsafe extern "C" fn $name<T: IoctlOps>(
            file: *mut bindings::file,
            _fh: *mut c_void,
            arg: *mut bindings::$arg,
        ) -> c_int {
            // SAFETY: forwarded contract (the core calls the op for a file of the node the table
            // is installed on, with its argument checked to be of the buffer type the op is
            // registered for).
            unsafe { IoctlVTable::<T>::$helper(file, arg, $($rest),+) }
        }
    };
    ($name:ident($arg:ident) => $helper:ident($($rest:expr),+); $($tail:tt)*) => {
        trampolines!(@fn $name($arg) => $helper($($rest),+));
        trampolines!($($tail)*);
    };
    ($cap:ident, $out:ident($arg:ident) => $helper:ident($($rest:expr),*); $($tail:tt)*) => {
        trampolines!(@fn $cap($arg) => $helper(BufType::VideoCaptureMplane $(, $rest)*));
        trampolines!(@fn $out($arg) => $helper(BufType::VideoOutputMplane $(, $rest)*));
        trampolines!($($tail)*);
    };
    () => {};
}

trampolines! {
    querycap(v4l2_capability) => file_op(|f, c| T::querycap(f, &mut Capability(c)));
    enum_framesizes(v4l2_frmsizeenum) =>
        file_op(|f, s| T::enum_framesizes(f, &mut FrameSizeEnum(s)));
    enum_fmt_vid_cap, enum_fmt_vid_out(v4l2_fmtdesc) => enum_fmt();
    g_fmt_vid_cap, g_fmt_vid_out(v4l2_format) => format_op(|l, t, p| T::g_fmt(l, t, p));
    try_fmt_vid_cap, try_fmt_vid_out(v4l2_format) => format_op(|l, t, p| T::try_fmt(l, t, p));
    s_fmt_vid_cap, s_fmt_vid_out(v4l2_format) => format_op(|l, t, p| T::s_fmt(l, t, p));
}
