// SPDX-License-Identifier: GPL-2.0
//! Raw V4L2 and media controller uAPI: the bindgen bindings, ioctl numbers, fourccs, and the
//! thin `unsafe` syscall wrappers everything else is built on.
//!
//! The structs, constants and control IDs come from the Linux 6.12 UAPI headers vendored in
//! `codecs/uapi/linux/` (bindgen runs in `codecs/build.rs`). What bindgen cannot produce is
//! computed here:
//!
//! * ioctl numbers (`_IOWR()` and friends are function-like macros), with nix's `request_code_*`
//!   and the size of the Rust struct; the tests compare each of them with the value the C
//!   compiler computes from the same headers (`DAEDALUS_C_*` in `codecs/src/uapi_wrapper.h`);
//! * pixel format fourccs (`v4l2_fourcc()` is a function-like macro): re-exported from the
//!   shared format table (`daedalus_proto::formats`).

use std::marker::PhantomData;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::raw::{c_int, c_ulong};
use std::time::Duration;

use crate::errno::Errno;
/// The `poll()` event flags of [`poll_one`].
pub use nix::poll::PollFlags;
use nix::poll::{poll, PollFd, PollTimeout};

/// The bindgen output for `linux/videodev2.h` and `linux/media.h` (6.12), shared with the daemon.
pub use daedalus_codecs::uapi as bindings;

pub use bindings::*;

use daedalus_proto::formats;
pub use daedalus_proto::formats::fourcc;

/// `V4L2_PIX_FMT_VP9_FRAME`: one VP9 frame per OUTPUT buffer (from the shared format table).
pub const V4L2_PIX_FMT_VP9_FRAME: u32 = formats::PIX_FMT_VP9_FRAME;
/// `V4L2_PIX_FMT_AV1_FRAME`: one AV1 frame per OUTPUT buffer (from the shared format table).
pub const V4L2_PIX_FMT_AV1_FRAME: u32 = formats::PIX_FMT_AV1_FRAME;
/// `V4L2_PIX_FMT_H264_SLICE`: H.264 slice data for the stateless API (from the shared format
/// table).
pub const V4L2_PIX_FMT_H264_SLICE: u32 = formats::PIX_FMT_H264_SLICE;
/// `V4L2_PIX_FMT_NV12`: 8-bit 4:2:0, Y plane then interleaved CbCr, one memory plane (from the
/// shared format table).
pub const V4L2_PIX_FMT_NV12: u32 = formats::PIX_FMT_NV12;
/// `V4L2_PIX_FMT_P010`: as NV12 with 16-bit samples holding 10 significant bits (from the
/// shared format table).
pub const V4L2_PIX_FMT_P010: u32 = formats::PIX_FMT_P010;

/// `_IOWR(type, nr, T)` and friends, through nix (which knows each architecture's `_IOC`
/// layout), as the `c_ulong` the C macros give.
macro_rules! ioc {
    (none, $ty:expr, $nr:expr) => {
        nix::request_code_none!($ty, $nr) as c_ulong
    };
    ($dir:ident, $ty:expr, $nr:expr, $arg:ty) => {
        ioc!(@$dir, $ty, $nr, size_of::<$arg>())
    };
    (@r, $ty:expr, $nr:expr, $size:expr) => {
        nix::request_code_read!($ty, $nr, $size) as c_ulong
    };
    (@w, $ty:expr, $nr:expr, $size:expr) => {
        nix::request_code_write!($ty, $nr, $size) as c_ulong
    };
    (@rw, $ty:expr, $nr:expr, $size:expr) => {
        nix::request_code_readwrite!($ty, $nr, $size) as c_ulong
    };
}

/// `ioc!` for an argument the kernel follows no pointer in: a [`PlainIoctl`].
macro_rules! plain_ioctl {
    ($name:ident, $dir:ident, $ty:expr, $nr:expr, $arg:ty) => {
        // SAFETY: the number is built from `$arg` itself (so it takes one `$arg`), and every use
        // of this macro below is for a struct of integers, arrays and unions of them only.
        unsafe { PlainIoctl::<$arg>::new(stringify!($name), ioc!($dir, $ty, $nr, $arg)) }
    };
}

/// An ioctl number together with the type of its argument, for arguments the kernel follows no
/// pointer in (`v4l2_capability`, `v4l2_fmtdesc`, `int`...): such an ioctl can be issued with
/// nothing more than a `&mut T`, so [`PlainIoctl::call`] is safe. Ioctls whose arguments carry
/// pointers (buffers with plane arrays, control arrays) stay plain numbers for [`ioctl`].
pub struct PlainIoctl<T> {
    name: &'static str,
    request: c_ulong,
    arg: PhantomData<fn(&mut T)>,
}

impl<T> Clone for PlainIoctl<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for PlainIoctl<T> {}

impl<T> PlainIoctl<T> {
    /// # Safety
    ///
    /// `request` must take a pointer to exactly one `T` (its `_IOC_SIZE` is `size_of::<T>()`)
    /// and the kernel must follow no pointer stored in a `T` for it.
    const unsafe fn new(name: &'static str, request: c_ulong) -> Self {
        PlainIoctl {
            name,
            request,
            arg: PhantomData,
        }
    }

    /// The ioctl number.
    pub const fn request(&self) -> c_ulong {
        self.request
    }

    /// Its name (`VIDIOC_QUERYCAP`), for errors.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// Issues the ioctl on `fd` with `arg`, retrying on `EINTR`.
    pub fn call(&self, fd: BorrowedFd<'_>, arg: &mut T) -> Result<c_int, Errno> {
        // SAFETY: `arg` is a valid, writable `T`, the size the number was built from, and holds
        // no pointer the kernel follows (the invariant `new` was given).
        unsafe { ioctl(fd, self.request, arg) }
    }
}

impl<T> From<PlainIoctl<T>> for c_ulong {
    fn from(ioctl: PlainIoctl<T>) -> c_ulong {
        ioctl.request
    }
}

/// `VIDIOC_QUERYCAP`.
pub const VIDIOC_QUERYCAP: PlainIoctl<v4l2_capability> =
    plain_ioctl!(VIDIOC_QUERYCAP, r, b'V', 0, v4l2_capability);
/// `VIDIOC_ENUM_FMT`.
pub const VIDIOC_ENUM_FMT: PlainIoctl<v4l2_fmtdesc> =
    plain_ioctl!(VIDIOC_ENUM_FMT, rw, b'V', 2, v4l2_fmtdesc);
/// `VIDIOC_G_FMT`.
pub const VIDIOC_G_FMT: c_ulong = ioc!(rw, b'V', 4, v4l2_format);
/// `VIDIOC_S_FMT`.
pub const VIDIOC_S_FMT: c_ulong = ioc!(rw, b'V', 5, v4l2_format);
/// `VIDIOC_REQBUFS`.
pub const VIDIOC_REQBUFS: PlainIoctl<v4l2_requestbuffers> =
    plain_ioctl!(VIDIOC_REQBUFS, rw, b'V', 8, v4l2_requestbuffers);
/// `VIDIOC_QUERYBUF`.
pub const VIDIOC_QUERYBUF: c_ulong = ioc!(rw, b'V', 9, v4l2_buffer);
/// `VIDIOC_QBUF`.
pub const VIDIOC_QBUF: c_ulong = ioc!(rw, b'V', 15, v4l2_buffer);
/// `VIDIOC_DQBUF`.
pub const VIDIOC_DQBUF: c_ulong = ioc!(rw, b'V', 17, v4l2_buffer);
/// `VIDIOC_EXPBUF`.
pub const VIDIOC_EXPBUF: PlainIoctl<v4l2_exportbuffer> =
    plain_ioctl!(VIDIOC_EXPBUF, rw, b'V', 16, v4l2_exportbuffer);
/// `VIDIOC_STREAMON`.
pub const VIDIOC_STREAMON: PlainIoctl<c_int> = plain_ioctl!(VIDIOC_STREAMON, w, b'V', 18, c_int);
/// `VIDIOC_STREAMOFF`.
pub const VIDIOC_STREAMOFF: PlainIoctl<c_int> = plain_ioctl!(VIDIOC_STREAMOFF, w, b'V', 19, c_int);
/// `VIDIOC_QUERYMENU`.
pub const VIDIOC_QUERYMENU: PlainIoctl<v4l2_querymenu> =
    plain_ioctl!(VIDIOC_QUERYMENU, rw, b'V', 37, v4l2_querymenu);
/// `VIDIOC_TRY_FMT`.
pub const VIDIOC_TRY_FMT: c_ulong = ioc!(rw, b'V', 64, v4l2_format);
/// `VIDIOC_G_EXT_CTRLS`.
pub const VIDIOC_G_EXT_CTRLS: c_ulong = ioc!(rw, b'V', 71, v4l2_ext_controls);
/// `VIDIOC_S_EXT_CTRLS`.
pub const VIDIOC_S_EXT_CTRLS: c_ulong = ioc!(rw, b'V', 72, v4l2_ext_controls);
/// `VIDIOC_TRY_EXT_CTRLS`.
pub const VIDIOC_TRY_EXT_CTRLS: c_ulong = ioc!(rw, b'V', 73, v4l2_ext_controls);
/// `VIDIOC_ENUM_FRAMESIZES`.
pub const VIDIOC_ENUM_FRAMESIZES: PlainIoctl<v4l2_frmsizeenum> =
    plain_ioctl!(VIDIOC_ENUM_FRAMESIZES, rw, b'V', 74, v4l2_frmsizeenum);
/// `VIDIOC_QUERY_EXT_CTRL`.
pub const VIDIOC_QUERY_EXT_CTRL: PlainIoctl<v4l2_query_ext_ctrl> =
    plain_ioctl!(VIDIOC_QUERY_EXT_CTRL, rw, b'V', 103, v4l2_query_ext_ctrl);
/// `VIDIOC_CREATE_BUFS` (its `v4l2_format` is a union with pointer members: not plain).
pub const VIDIOC_CREATE_BUFS: c_ulong = ioc!(rw, b'V', 92, v4l2_create_buffers);
/// `MEDIA_IOC_DEVICE_INFO`.
pub const MEDIA_IOC_DEVICE_INFO: PlainIoctl<media_device_info> =
    plain_ioctl!(MEDIA_IOC_DEVICE_INFO, rw, b'|', 0x00, media_device_info);
/// `MEDIA_IOC_G_TOPOLOGY` (the kernel follows the `ptr_*` members: not plain).
pub const MEDIA_IOC_G_TOPOLOGY: c_ulong = ioc!(rw, b'|', 0x04, media_v2_topology);
/// `MEDIA_IOC_REQUEST_ALLOC`.
pub const MEDIA_IOC_REQUEST_ALLOC: PlainIoctl<c_int> =
    plain_ioctl!(MEDIA_IOC_REQUEST_ALLOC, r, b'|', 0x05, c_int);
/// `MEDIA_REQUEST_IOC_QUEUE` (on a request fd).
pub const MEDIA_REQUEST_IOC_QUEUE: c_ulong = ioc!(none, b'|', 0x80);
/// `MEDIA_REQUEST_IOC_REINIT` (on a request fd).
pub const MEDIA_REQUEST_IOC_REINIT: c_ulong = ioc!(none, b'|', 0x81);

/// Issues `request` on `fd` with the argument `arg`, retrying on `EINTR`.
///
/// # Safety
///
/// `arg` must be valid for reads and writes of `_IOC_SIZE(request)` bytes (for the numbers built
/// here from `T`: `size_of::<T>()`, so a `&mut T` qualifies), and
/// every pointer stored inside `*arg` that the kernel follows for this request (plane arrays,
/// control arrays, control payloads) must be valid for the accesses the kernel makes through
/// it, as described by the uAPI documentation of the request.
pub unsafe fn ioctl<T>(fd: BorrowedFd<'_>, request: c_ulong, arg: *mut T) -> Result<c_int, Errno> {
    loop {
        // SAFETY: `fd` is an open descriptor for the lifetime of the borrow; the caller
        // guarantees that `arg` (and what it points to) satisfies the contract of `request`.
        // `as` on the request number is the C conversion of the `unsigned long` ioctl macros to
        // libc's request type (`unsigned long` on glibc, `int` on musl: the kernel only looks at
        // the low 32 bits).
        let ret = unsafe { libc::ioctl(fd.as_raw_fd(), request as libc::Ioctl, arg) };
        if ret >= 0 {
            return Ok(ret);
        }
        let errno = last_errno(request);
        if errno != Errno::EINTR {
            return Err(errno);
        }
    }
}

/// The errno of the ioctl `request` that just failed. nix's [`Errno`] has no value for numbers
/// outside the Linux userspace set (`UnknownErrno`); a driver leaking a kernel-internal code
/// (`ENOIOCTLCMD` 515, `ERESTARTSYS` 512) is exactly what this tool should show, so the number
/// is logged before it is lost.
fn last_errno(request: c_ulong) -> Errno {
    let raw = Errno::last_raw();
    let errno = Errno::from_raw(raw);
    if errno == Errno::UnknownErrno {
        log::warn!("ioctl {request:#x} failed with errno {raw}, which is no userspace errno");
    }
    errno
}

/// Issues an argument-less (`_IO`) ioctl, retrying on `EINTR`.
///
/// Safe because `_IO()` numbers carry no argument, so the kernel touches no user memory for
/// them; callers pass only those (`MEDIA_REQUEST_IOC_*`), a number with a payload must go
/// through [`ioctl`].
pub fn ioctl_none(fd: BorrowedFd<'_>, request: c_ulong) -> Result<c_int, Errno> {
    loop {
        // SAFETY: `fd` is open for the lifetime of the borrow and `request` is an `_IO()`
        // number (checked above in debug builds): the kernel reads no argument, so passing
        // none through the variadic call is what the C API does as well.
        let ret = unsafe { libc::ioctl(fd.as_raw_fd(), request as libc::Ioctl) };
        if ret >= 0 {
            return Ok(ret);
        }
        let errno = last_errno(request);
        if errno != Errno::EINTR {
            return Err(errno);
        }
    }
}

/// Polls one descriptor for `events`. Returns the `revents` (empty on time-out).
pub fn poll_one(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    timeout: Duration,
) -> Result<PollFlags, Errno> {
    let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    loop {
        let mut fds = [PollFd::new(fd, events)];
        match poll(&mut fds, timeout) {
            Ok(_) => return Ok(fds[0].revents().unwrap_or(PollFlags::empty())),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A V4L2 compound control payload struct: a [`Pod`](daedalus_codecs::pod::Pod) carried by controls of type `TYPE`.
///
/// # Safety
///
/// `TYPE` must be the `V4L2_CTRL_TYPE_*` whose payload is exactly that struct (the kernel
/// writes `size_of::<Self>()` bytes of it), and the struct's size must be the C `sizeof`.
pub unsafe trait ControlPayload: daedalus_codecs::pod::Pod {
    /// The `V4L2_CTRL_TYPE_*` of controls carrying this payload.
    const TYPE: u32;
}

macro_rules! control_payloads {
    ($($ty:ident => $ctrl_type:ident),* $(,)?) => {$(
        // SAFETY: the bindgen struct of the uAPI (`size_of_matches_c` checks the size) carried
        // by controls of the given type (see `v4l2_ctrl_new()` / `std_validate_compound()`).
        unsafe impl ControlPayload for $ty {
            const TYPE: u32 = $ctrl_type;
        }
    )*};
}

control_payloads! {
    v4l2_ctrl_vp9_frame => V4L2_CTRL_TYPE_VP9_FRAME,
    v4l2_ctrl_vp9_compressed_hdr => V4L2_CTRL_TYPE_VP9_COMPRESSED_HDR,
    v4l2_ctrl_h264_sps => V4L2_CTRL_TYPE_H264_SPS,
    v4l2_ctrl_h264_pps => V4L2_CTRL_TYPE_H264_PPS,
    v4l2_ctrl_h264_decode_params => V4L2_CTRL_TYPE_H264_DECODE_PARAMS,
    v4l2_ctrl_h264_scaling_matrix => V4L2_CTRL_TYPE_H264_SCALING_MATRIX,
    v4l2_ctrl_h264_slice_params => V4L2_CTRL_TYPE_H264_SLICE_PARAMS,
    v4l2_ctrl_h264_pred_weights => V4L2_CTRL_TYPE_H264_PRED_WEIGHTS,
    v4l2_ctrl_av1_sequence => V4L2_CTRL_TYPE_AV1_SEQUENCE,
    v4l2_ctrl_av1_frame => V4L2_CTRL_TYPE_AV1_FRAME,
    v4l2_ctrl_av1_film_grain => V4L2_CTRL_TYPE_AV1_FILM_GRAIN,
    v4l2_ctrl_av1_tile_group_entry => V4L2_CTRL_TYPE_AV1_TILE_GROUP_ENTRY,
}

/// Converts a fixed-size, NUL-padded C string field (`__u8` or `char`, which is `i8` on some
/// targets) into a `String` (lossy UTF-8).
pub fn c_str_field<T: Copy + Into<i16>>(field: &[T]) -> String {
    // Through i16, `as u8` keeps the C `char` bits of either signedness.
    let bytes: Vec<u8> = field
        .iter()
        .map(|&c| c.into() as u8)
        .take_while(|&b| b != 0)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! assert_ioctls {
        ($($name:ident => $c:ident),* $(,)?) => {$(
            assert_eq!(
                c_ulong::from($name) as u64,
                $c as u64,
                concat!(stringify!($name), ": Rust and C disagree"),
            );
        )*};
    }

    #[test]
    fn ioctl_numbers_match_c_macros() {
        assert_ioctls!(
            VIDIOC_QUERYCAP => DAEDALUS_C_VIDIOC_QUERYCAP,
            VIDIOC_ENUM_FMT => DAEDALUS_C_VIDIOC_ENUM_FMT,
            VIDIOC_G_FMT => DAEDALUS_C_VIDIOC_G_FMT,
            VIDIOC_S_FMT => DAEDALUS_C_VIDIOC_S_FMT,
            VIDIOC_TRY_FMT => DAEDALUS_C_VIDIOC_TRY_FMT,
            VIDIOC_REQBUFS => DAEDALUS_C_VIDIOC_REQBUFS,
            VIDIOC_QUERYBUF => DAEDALUS_C_VIDIOC_QUERYBUF,
            VIDIOC_QBUF => DAEDALUS_C_VIDIOC_QBUF,
            VIDIOC_DQBUF => DAEDALUS_C_VIDIOC_DQBUF,
            VIDIOC_STREAMON => DAEDALUS_C_VIDIOC_STREAMON,
            VIDIOC_STREAMOFF => DAEDALUS_C_VIDIOC_STREAMOFF,
            VIDIOC_QUERYMENU => DAEDALUS_C_VIDIOC_QUERYMENU,
            VIDIOC_G_EXT_CTRLS => DAEDALUS_C_VIDIOC_G_EXT_CTRLS,
            VIDIOC_S_EXT_CTRLS => DAEDALUS_C_VIDIOC_S_EXT_CTRLS,
            VIDIOC_TRY_EXT_CTRLS => DAEDALUS_C_VIDIOC_TRY_EXT_CTRLS,
            VIDIOC_ENUM_FRAMESIZES => DAEDALUS_C_VIDIOC_ENUM_FRAMESIZES,
            VIDIOC_QUERY_EXT_CTRL => DAEDALUS_C_VIDIOC_QUERY_EXT_CTRL,
            VIDIOC_EXPBUF => DAEDALUS_C_VIDIOC_EXPBUF,
            VIDIOC_CREATE_BUFS => DAEDALUS_C_VIDIOC_CREATE_BUFS,
            MEDIA_IOC_G_TOPOLOGY => DAEDALUS_C_MEDIA_IOC_G_TOPOLOGY,
            MEDIA_IOC_DEVICE_INFO => DAEDALUS_C_MEDIA_IOC_DEVICE_INFO,
            MEDIA_IOC_REQUEST_ALLOC => DAEDALUS_C_MEDIA_IOC_REQUEST_ALLOC,
            MEDIA_REQUEST_IOC_QUEUE => DAEDALUS_C_MEDIA_REQUEST_IOC_QUEUE,
            MEDIA_REQUEST_IOC_REINIT => DAEDALUS_C_MEDIA_REQUEST_IOC_REINIT,
        );
    }

    /// Values from the kernel documentation / strace on x86_64, independent of the headers.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn ioctl_numbers_known_x86_64() {
        assert_eq!(c_ulong::from(VIDIOC_QUERYCAP), 0x8068_5600);
        assert_eq!(c_ulong::from(VIDIOC_S_FMT), 0xc0d0_5605);
        assert_eq!(c_ulong::from(VIDIOC_QBUF), 0xc058_560f);
        assert_eq!(c_ulong::from(VIDIOC_DQBUF), 0xc058_5611);
        assert_eq!(c_ulong::from(VIDIOC_STREAMON), 0x4004_5612);
        assert_eq!(c_ulong::from(VIDIOC_S_EXT_CTRLS), 0xc020_5648);
        assert_eq!(c_ulong::from(VIDIOC_QUERY_EXT_CTRL), 0xc0e8_5667);
        assert_eq!(c_ulong::from(MEDIA_IOC_REQUEST_ALLOC), 0x8004_7c05);
        assert_eq!(c_ulong::from(MEDIA_REQUEST_IOC_QUEUE), 0x7c80);
        assert_eq!(c_ulong::from(MEDIA_REQUEST_IOC_REINIT), 0x7c81);
    }

    macro_rules! assert_sizes {
        ($($ty:ident => $c:ident),* $(,)?) => {$(
            assert_eq!(
                size_of::<$ty>() as u64,
                $c as u64,
                concat!("size_of::<", stringify!($ty), ">() != C sizeof"),
            );
        )*};
    }

    #[test]
    fn size_of_matches_c() {
        assert_sizes!(
            v4l2_capability => DAEDALUS_C_SIZEOF_v4l2_capability,
            v4l2_fmtdesc => DAEDALUS_C_SIZEOF_v4l2_fmtdesc,
            v4l2_format => DAEDALUS_C_SIZEOF_v4l2_format,
            v4l2_pix_format_mplane => DAEDALUS_C_SIZEOF_v4l2_pix_format_mplane,
            v4l2_requestbuffers => DAEDALUS_C_SIZEOF_v4l2_requestbuffers,
            v4l2_buffer => DAEDALUS_C_SIZEOF_v4l2_buffer,
            v4l2_plane => DAEDALUS_C_SIZEOF_v4l2_plane,
            v4l2_querymenu => DAEDALUS_C_SIZEOF_v4l2_querymenu,
            v4l2_ext_control => DAEDALUS_C_SIZEOF_v4l2_ext_control,
            v4l2_ext_controls => DAEDALUS_C_SIZEOF_v4l2_ext_controls,
            v4l2_frmsizeenum => DAEDALUS_C_SIZEOF_v4l2_frmsizeenum,
            v4l2_query_ext_ctrl => DAEDALUS_C_SIZEOF_v4l2_query_ext_ctrl,
            media_device_info => DAEDALUS_C_SIZEOF_media_device_info,
            v4l2_exportbuffer => DAEDALUS_C_SIZEOF_v4l2_exportbuffer,
            v4l2_create_buffers => DAEDALUS_C_SIZEOF_v4l2_create_buffers,
            media_v2_topology => DAEDALUS_C_SIZEOF_media_v2_topology,
            media_v2_interface => DAEDALUS_C_SIZEOF_media_v2_interface,
            v4l2_ctrl_vp9_frame => DAEDALUS_C_SIZEOF_v4l2_ctrl_vp9_frame,
            v4l2_ctrl_vp9_compressed_hdr => DAEDALUS_C_SIZEOF_v4l2_ctrl_vp9_compressed_hdr,
            v4l2_ctrl_h264_sps => DAEDALUS_C_SIZEOF_v4l2_ctrl_h264_sps,
            v4l2_ctrl_h264_pps => DAEDALUS_C_SIZEOF_v4l2_ctrl_h264_pps,
            v4l2_ctrl_h264_decode_params => DAEDALUS_C_SIZEOF_v4l2_ctrl_h264_decode_params,
            v4l2_ctrl_av1_sequence => DAEDALUS_C_SIZEOF_v4l2_ctrl_av1_sequence,
            v4l2_ctrl_av1_frame => DAEDALUS_C_SIZEOF_v4l2_ctrl_av1_frame,
        );
    }

    /// Sizes documented for the 64-bit ABI (and printed by pahole), independent of clang.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn size_of_known_64bit() {
        assert_eq!(size_of::<v4l2_buffer>(), 88);
        assert_eq!(size_of::<v4l2_format>(), 208);
        assert_eq!(size_of::<v4l2_ext_control>(), 20);
        assert_eq!(size_of::<v4l2_ext_controls>(), 32);
        assert_eq!(size_of::<v4l2_query_ext_ctrl>(), 232);
        assert_eq!(size_of::<media_device_info>(), 256);
        assert_eq!(size_of::<v4l2_ctrl_vp9_frame>(), 168);
    }

    #[test]
    fn control_ids() {
        // V4L2_CTRL_CLASS_CODEC_STATELESS (0x00a40000) | 0x900 + offset.
        assert_eq!(V4L2_CID_CODEC_STATELESS_BASE, 0x00a4_0900);
        assert_eq!(V4L2_CID_STATELESS_H264_DECODE_MODE, 0x00a4_0900);
        assert_eq!(V4L2_CID_STATELESS_H264_SPS, 0x00a4_0902);
        assert_eq!(V4L2_CID_STATELESS_H264_PPS, 0x00a4_0903);
        assert_eq!(V4L2_CID_STATELESS_H264_DECODE_PARAMS, 0x00a4_0907);
        assert_eq!(V4L2_CID_STATELESS_VP9_COMPRESSED_HDR, 0x00a4_0a2d);
        assert_eq!(V4L2_CID_STATELESS_VP9_FRAME, 0x00a4_0a2c);
        assert_eq!(V4L2_CID_STATELESS_AV1_SEQUENCE, 0x00a4_0af4);
        assert_eq!(V4L2_CID_STATELESS_AV1_FRAME, 0x00a4_0af6);
        assert_eq!(V4L2_CTRL_WHICH_DEF_VAL, 0x0f00_0000);
        assert_eq!(V4L2_CTRL_WHICH_REQUEST_VAL, 0x0f01_0000);
    }

    #[test]
    fn c_string_fields() {
        assert_eq!(c_str_field(b"daedalus\0\0\0\0"), "daedalus");
        assert_eq!(c_str_field(b"full"), "full");
        assert_eq!(c_str_field(b"\0garbage"), "");
    }
}
