// SPDX-License-Identifier: GPL-2.0
//! Safe wrappers around a V4L2 video device node (`/dev/videoN`): capabilities, formats, frame
//! sizes, controls, buffer queues and extended controls (including the Request API's
//! `V4L2_CTRL_WHICH_REQUEST_VAL`).
//!
//! Only what the tools need, for the multi-planar API and MMAP buffers, which is what a
//! stateless m2m decoder uses.

use std::ffi::c_void;
use std::marker::PhantomData;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::raw::c_int;
use std::path::Path;
use std::time::Duration;

use crate::errno::Errno;
use crate::error::{wraps_node, Error, Node, Result};
use crate::sys::{self, *};
use daedalus_proto::formats;

/// The answer of `VIDIOC_QUERYCAP`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capability {
    /// Driver name (`"daedalus"`).
    pub driver: String,
    /// Device name.
    pub card: String,
    /// Location of the device (`"platform:daedalus"`), also reported by the media device.
    pub bus_info: String,
    /// Kernel version (`KERNEL_VERSION()` encoding).
    pub version: u32,
    /// Capabilities of the physical device as a whole.
    pub capabilities: u32,
    /// Capabilities of this device node (valid if `capabilities` has `V4L2_CAP_DEVICE_CAPS`).
    pub device_caps: u32,
}

impl Capability {
    /// The capabilities of this node: `device_caps` when present, else `capabilities`.
    pub fn node_caps(&self) -> u32 {
        if self.capabilities & V4L2_CAP_DEVICE_CAPS != 0 {
            self.device_caps
        } else {
            self.capabilities
        }
    }
}

/// One entry of `VIDIOC_ENUM_FMT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatDesc {
    /// The fourcc.
    pub pixelformat: u32,
    /// Human-readable description.
    pub description: String,
    /// `V4L2_FMT_FLAG_*`.
    pub flags: u32,
}

/// The answer of `VIDIOC_ENUM_FRAMESIZES` for one format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameSizes {
    /// The driver does not enumerate frame sizes for the format.
    Unsupported,
    /// A list of sizes.
    Discrete(Vec<(u32, u32)>),
    /// A range with steps.
    Stepwise(formats::FrameSizes),
    /// A range with steps of 1.
    Continuous(formats::FrameSizes),
}

/// One control, as `VIDIOC_QUERY_EXT_CTRL` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlInfo {
    /// The control ID.
    pub id: u32,
    /// `V4L2_CTRL_TYPE_*`.
    pub ctrl_type: u32,
    /// Name.
    pub name: String,
    /// Minimum value (or first menu index).
    pub minimum: i64,
    /// Maximum value (or last menu index).
    pub maximum: i64,
    /// Step.
    pub step: u64,
    /// Default value (for non-compound controls).
    pub default_value: i64,
    /// `V4L2_CTRL_FLAG_*`.
    pub flags: u32,
    /// Size of one element, in bytes.
    pub elem_size: u32,
    /// Number of elements.
    pub elems: u32,
    /// Dimensions of an array control (empty for a scalar).
    pub dims: Vec<u32>,
}

impl ControlInfo {
    /// Whether `VIDIOC_QUERYMENU` applies to this control.
    pub fn is_menu(&self) -> bool {
        self.ctrl_type == V4L2_CTRL_TYPE_MENU || self.ctrl_type == V4L2_CTRL_TYPE_INTEGER_MENU
    }
}

/// One menu entry of a menu control.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MenuItem {
    /// A `V4L2_CTRL_TYPE_MENU` entry.
    Name {
        /// The index (control value).
        index: u32,
        /// The label.
        name: String,
    },
    /// A `V4L2_CTRL_TYPE_INTEGER_MENU` entry.
    Value {
        /// The index (control value).
        index: u32,
        /// The integer the index stands for.
        value: i64,
    },
}

/// The size and layout of one plane of a multi-planar format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlaneFormat {
    /// Line stride in bytes (0 for compressed formats).
    pub bytesperline: u32,
    /// Buffer size the plane needs.
    pub sizeimage: u32,
}

/// A multi-planar format (`v4l2_pix_format_mplane`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MplaneFormat {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The fourcc.
    pub pixelformat: u32,
    /// `V4L2_FIELD_*`.
    pub field: u32,
    /// Memory planes.
    pub planes: Vec<PlaneFormat>,
}

/// The answer of `VIDIOC_REQBUFS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReqBufs {
    /// Number of buffers allocated.
    pub count: u32,
    /// `V4L2_BUF_CAP_*` of the queue.
    pub capabilities: u32,
}

/// A buffer as `VIDIOC_QUERYBUF` / `VIDIOC_DQBUF` return it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BufferInfo {
    /// Buffer index.
    pub index: u32,
    /// `V4L2_BUF_FLAG_*`.
    pub flags: u32,
    /// `V4L2_FIELD_*`.
    pub field: u32,
    /// Timestamp (for a decoder: copied from the OUTPUT buffer), in microseconds.
    pub timestamp_us: i64,
    /// Sequence number.
    pub sequence: u32,
    /// `(bytesused, length)` of each plane.
    pub planes: Vec<(u32, u32)>,
    /// The request the buffer was queued with (valid with `V4L2_BUF_FLAG_REQUEST_FD`).
    pub request_fd: i32,
}

/// A dequeued buffer, as [`VideoDevice::dequeue`] returns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dequeued {
    /// Buffer index.
    pub index: u32,
    /// `V4L2_BUF_FLAG_*`.
    pub flags: u32,
    /// Timestamp in microseconds (for a decoder: copied from the OUTPUT buffer).
    pub timestamp_us: i64,
    /// Sequence number.
    pub sequence: u32,
    /// Bytes of payload in plane 0.
    pub bytesused: u32,
}

/// Plane 0 of an MMAP buffer mapped into this process (see [`VideoDevice::map_buffer`]);
/// unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    map: memmap2::MmapMut,
}

impl Mapping {
    /// Length of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the mapping is empty (never: [`VideoDevice::map_buffer`] refuses empty planes).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The mapped bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.map
    }

    /// The mapped bytes, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.map
    }

    /// The address of the mapping, for handing it to C code (a VA image of a surface).
    pub fn as_ptr(&self) -> *const u8 {
        self.map.as_ptr()
    }
}

/// The timestamp of a buffer in microseconds.
fn timestamp_us(buf: &v4l2_buffer) -> i64 {
    // `time_t`/`suseconds_t` are `i32` on some 32-bit targets, `i64` elsewhere.
    #[allow(clippy::useless_conversion)]
    let us = i64::from(buf.timestamp.tv_sec)
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(buf.timestamp.tv_usec));
    us
}

/// What to queue with `VIDIOC_QBUF` (MMAP memory, multi-planar).
#[derive(Clone, Copy, Debug)]
pub struct QueueBuf<'a> {
    /// `V4L2_BUF_TYPE_*_MPLANE`.
    pub buf_type: u32,
    /// Buffer index.
    pub index: u32,
    /// Bytes of payload in plane 0 (OUTPUT buffers; ignored for CAPTURE).
    pub bytesused: u32,
    /// Timestamp in microseconds (OUTPUT buffers: the reference tag of the decoded frame).
    pub timestamp_us: u64,
    /// Queue the buffer into this request (`V4L2_BUF_FLAG_REQUEST_FD`).
    pub request: Option<BorrowedFd<'a>>,
}

impl QueueBuf<'_> {
    /// CAPTURE buffer `index`, outside any request: how a stateless decoder's client gives back
    /// a picture buffer (a CAPTURE buffer has no payload or timestamp of its own to set).
    pub fn capture(index: u32) -> Self {
        QueueBuf {
            buf_type: V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
            index,
            bytesused: 0,
            timestamp_us: 0,
            request: None,
        }
    }
}

/// Which value of controls `VIDIOC_{G,S}_EXT_CTRLS` operates on.
#[derive(Clone, Copy, Debug)]
pub enum Which<'a> {
    /// The current value (`V4L2_CTRL_WHICH_CUR_VAL`).
    Current,
    /// The default value (`V4L2_CTRL_WHICH_DEF_VAL`, read only).
    Default,
    /// The value in a request (`V4L2_CTRL_WHICH_REQUEST_VAL`).
    Request(BorrowedFd<'a>),
}

/// A compound control payload lent to `VIDIOC_{G,S}_EXT_CTRLS`.
///
/// Borrowing the payload for `'a` is what makes the pointer handed to the kernel valid.
#[derive(Debug)]
pub struct CtrlPayload<'a> {
    id: u32,
    size: u32,
    ptr: *mut c_void,
    _payload: PhantomData<&'a mut [u8]>,
}

impl<'a> CtrlPayload<'a> {
    /// Lends `payload` as the value of control `id`.
    pub fn new<T: ControlPayload>(id: u32, payload: &'a mut T) -> Self {
        // The structs are at most a few KiB (checked by the ControlPayload impls' size tests).
        let size = u32::try_from(size_of::<T>()).unwrap_or(u32::MAX);
        CtrlPayload {
            id,
            size,
            ptr: (payload as *mut T).cast(),
            _payload: PhantomData,
        }
    }

    /// Lends `payload` as the value of array control `id` (`dims[0]` elements at most, as
    /// many as `payload` holds).
    pub fn array<T: ControlPayload>(id: u32, payload: &'a mut [T]) -> Self {
        let size = u32::try_from(std::mem::size_of_val(payload)).unwrap_or(u32::MAX);
        CtrlPayload {
            id,
            size,
            ptr: payload.as_mut_ptr().cast(),
            _payload: PhantomData,
        }
    }

    /// The control ID.
    pub fn id(&self) -> u32 {
        self.id
    }
}

/// An open V4L2 video device node.
#[derive(Debug)]
pub struct VideoDevice {
    node: Node,
}

wraps_node!(VideoDevice);

/// Upper bound on the menu indices probed with `VIDIOC_QUERYMENU` for one control.
const MAX_MENU_ITEMS: i64 = 1024;

impl VideoDevice {
    /// Opens a video device node (read-write, non-blocking).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Ok(VideoDevice {
            node: Node::open(path, true)?,
        })
    }

    fn err(&self, ioctl: &'static str) -> impl FnOnce(Errno) -> Error + '_ {
        self.node.err(ioctl)
    }

    /// `VIDIOC_QUERYCAP`.
    pub fn query_capability(&self) -> Result<Capability> {
        let cap = self.node.get(VIDIOC_QUERYCAP)?;
        Ok(Capability {
            driver: c_str_field(&cap.driver),
            card: c_str_field(&cap.card),
            bus_info: c_str_field(&cap.bus_info),
            version: cap.version,
            capabilities: cap.capabilities,
            device_caps: cap.device_caps,
        })
    }

    /// Issues an enumeration ioctl for index 0, 1, ... (`arg` makes the argument of an index)
    /// until the driver answers `EINVAL`, the end of the list; returns the answers.
    fn enumerate<T>(&self, ioctl: PlainIoctl<T>, arg: impl Fn(u32) -> T) -> Result<Vec<T>> {
        let mut answers = Vec::new();
        for index in 0.. {
            let mut a = arg(index);
            match ioctl.call(self.as_fd(), &mut a) {
                Ok(_) => answers.push(a),
                Err(Errno::EINVAL) => break,
                Err(errno) => return Err(self.err(ioctl.name())(errno)),
            }
        }
        Ok(answers)
    }

    /// `VIDIOC_ENUM_FMT` over all indices of `buf_type`.
    pub fn enum_formats(&self, buf_type: u32) -> Result<Vec<FormatDesc>> {
        let descs = self.enumerate(VIDIOC_ENUM_FMT, |index| v4l2_fmtdesc {
            index,
            type_: buf_type,
            ..Default::default()
        })?;
        Ok(descs
            .iter()
            .map(|desc| FormatDesc {
                pixelformat: desc.pixelformat,
                description: c_str_field(&desc.description),
                flags: desc.flags,
            })
            .collect())
    }

    /// `VIDIOC_ENUM_FRAMESIZES` for `pixelformat`.
    pub fn enum_frame_sizes(&self, pixelformat: u32) -> Result<FrameSizes> {
        let sizes = self.enumerate(VIDIOC_ENUM_FRAMESIZES, |index| v4l2_frmsizeenum {
            index,
            pixel_format: pixelformat,
            ..Default::default()
        });
        let sizes = match sizes {
            Ok(sizes) if sizes.is_empty() => return Ok(FrameSizes::Unsupported),
            Err(e) if e.errno() == Some(Errno::ENOTTY) => return Ok(FrameSizes::Unsupported),
            other => other?,
        };
        let mut discrete = Vec::new();
        for fse in sizes {
            match fse.type_ {
                V4L2_FRMSIZE_TYPE_DISCRETE => {
                    // SAFETY: reading a union of integer-only structs; the kernel filled the
                    // `discrete` member for this type (and any bits are a valid value).
                    let d = unsafe { fse.__bindgen_anon_1.discrete };
                    discrete.push((d.width, d.height));
                }
                V4L2_FRMSIZE_TYPE_STEPWISE | V4L2_FRMSIZE_TYPE_CONTINUOUS => {
                    // SAFETY: as above, the kernel filled the `stepwise` member for these types.
                    let s = unsafe { fse.__bindgen_anon_1.stepwise };
                    let range = formats::FrameSizes {
                        min_width: s.min_width,
                        max_width: s.max_width,
                        step_width: s.step_width,
                        min_height: s.min_height,
                        max_height: s.max_height,
                        step_height: s.step_height,
                    };
                    return Ok(if fse.type_ == V4L2_FRMSIZE_TYPE_STEPWISE {
                        FrameSizes::Stepwise(range)
                    } else {
                        FrameSizes::Continuous(range)
                    });
                }
                other => {
                    return Err(Error::Unexpected {
                        path: self.path().to_path_buf(),
                        what: format!("VIDIOC_ENUM_FRAMESIZES returned unknown type {other}"),
                    })
                }
            }
        }
        Ok(FrameSizes::Discrete(discrete))
    }

    /// `VIDIOC_QUERY_EXT_CTRL` for one control ID (or with `V4L2_CTRL_FLAG_NEXT_*` flags).
    pub fn query_control(&self, id: u32) -> Result<ControlInfo> {
        let mut q = v4l2_query_ext_ctrl {
            id,
            ..Default::default()
        };
        self.node.call(VIDIOC_QUERY_EXT_CTRL, &mut q)?;
        let nr_of_dims = (q.nr_of_dims as usize).min(q.dims.len());
        Ok(ControlInfo {
            id: q.id,
            ctrl_type: q.type_,
            name: c_str_field(&q.name),
            minimum: q.minimum,
            maximum: q.maximum,
            step: q.step,
            default_value: q.default_value,
            flags: q.flags,
            elem_size: q.elem_size,
            elems: q.elems,
            dims: q.dims[..nr_of_dims].to_vec(),
        })
    }

    /// Every control of the device, including compound ones and control classes, in ID order.
    pub fn query_controls(&self) -> Result<Vec<ControlInfo>> {
        let next = V4L2_CTRL_FLAG_NEXT_CTRL | V4L2_CTRL_FLAG_NEXT_COMPOUND;
        let mut controls: Vec<ControlInfo> = Vec::new();
        let mut id = next;
        loop {
            match self.query_control(id) {
                Ok(info) => {
                    // The IDs must increase; stop rather than loop on a broken driver.
                    if controls.last().is_some_and(|last| last.id >= info.id) {
                        return Err(Error::Unexpected {
                            path: self.path().to_path_buf(),
                            what: format!(
                                "VIDIOC_QUERY_EXT_CTRL enumeration went back to {:#x}",
                                info.id
                            ),
                        });
                    }
                    id = info.id | next;
                    controls.push(info);
                }
                Err(e) if e.errno() == Some(Errno::EINVAL) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(controls)
    }

    /// The entries of a menu control (`VIDIOC_QUERYMENU` over `minimum..=maximum`, skipping the
    /// indices the driver rejects).
    pub fn query_menu(&self, ctrl: &ControlInfo) -> Result<Vec<MenuItem>> {
        let mut items = Vec::new();
        if !ctrl.is_menu() {
            return Ok(items);
        }
        let first = ctrl.minimum.max(0);
        let last = ctrl.maximum.min(first.saturating_add(MAX_MENU_ITEMS));
        for index in first..=last {
            let Ok(index) = u32::try_from(index) else {
                break;
            };
            let mut qm = v4l2_querymenu {
                id: ctrl.id,
                index,
                ..Default::default()
            };
            match VIDIOC_QUERYMENU.call(self.as_fd(), &mut qm) {
                Ok(_) => {}
                // Skipped entries (menu_skip_mask) answer EINVAL.
                Err(Errno::EINVAL) => continue,
                Err(errno) => return Err(self.err("VIDIOC_QUERYMENU")(errno)),
            }
            items.push(if ctrl.ctrl_type == V4L2_CTRL_TYPE_INTEGER_MENU {
                // SAFETY: integer menus fill the `value` member; any bits are a valid i64.
                MenuItem::Value {
                    index,
                    value: unsafe { qm.__bindgen_anon_1.value },
                }
            } else {
                // SAFETY: name menus fill the `name` member; any bytes are a valid [u8; 32].
                MenuItem::Name {
                    index,
                    name: c_str_field(&unsafe { qm.__bindgen_anon_1.name }),
                }
            });
        }
        Ok(items)
    }

    fn mplane_format(&self, fmt: &v4l2_format) -> MplaneFormat {
        // SAFETY: only called for `*_MPLANE` buffer types, for which the kernel fills (and we
        // set) the `pix_mp` member; it holds only integers, so any bits are a valid value.
        let pix_mp = unsafe { fmt.fmt.pix_mp };
        let num_planes = usize::from(pix_mp.num_planes).min(pix_mp.plane_fmt.len());
        MplaneFormat {
            width: pix_mp.width,
            height: pix_mp.height,
            pixelformat: pix_mp.pixelformat,
            field: pix_mp.field,
            planes: pix_mp.plane_fmt[..num_planes]
                .iter()
                .map(|p| PlaneFormat {
                    bytesperline: p.bytesperline,
                    sizeimage: p.sizeimage,
                })
                .collect(),
        }
    }

    /// `VIDIOC_G_FMT` for a multi-planar buffer type.
    pub fn get_format(&self, buf_type: u32) -> Result<MplaneFormat> {
        check_mplane(buf_type);
        let mut fmt = v4l2_format {
            type_: buf_type,
            ..Default::default()
        };
        // SAFETY: VIDIOC_G_FMT is `_IOWR(v4l2_format)` and `fmt` is a valid, writable
        // `v4l2_format`; for MPLANE types it holds no pointers.
        unsafe { ioctl(self.as_fd(), VIDIOC_G_FMT, &mut fmt) }.map_err(self.err("VIDIOC_G_FMT"))?;
        Ok(self.mplane_format(&fmt))
    }

    /// `VIDIOC_S_FMT` for a multi-planar buffer type: asks for `pixelformat` at
    /// `width`x`height` (the driver picks the plane layout) and returns what it chose.
    pub fn set_format(
        &self,
        buf_type: u32,
        pixelformat: u32,
        width: u32,
        height: u32,
    ) -> Result<MplaneFormat> {
        self.set_coded_format(buf_type, pixelformat, width, height, 0)
    }

    /// `VIDIOC_S_FMT` of a coded (OUTPUT) format: as [`Self::set_format`], also asking for
    /// `sizeimage` bytes per buffer (0: the driver's choice).
    pub fn set_coded_format(
        &self,
        buf_type: u32,
        pixelformat: u32,
        width: u32,
        height: u32,
        sizeimage: u32,
    ) -> Result<MplaneFormat> {
        check_mplane(buf_type);
        let mut fmt = v4l2_format {
            type_: buf_type,
            ..Default::default()
        };
        let mut pix_mp = v4l2_pix_format_mplane {
            width,
            height,
            pixelformat,
            field: V4L2_FIELD_NONE,
            num_planes: 1,
            ..Default::default()
        };
        pix_mp.plane_fmt[0].sizeimage = sizeimage;
        fmt.fmt.pix_mp = pix_mp;
        // SAFETY: VIDIOC_S_FMT is `_IOWR(v4l2_format)` and `fmt` is a valid, writable
        // `v4l2_format`; for MPLANE types it holds no pointers.
        unsafe { ioctl(self.as_fd(), VIDIOC_S_FMT, &mut fmt) }.map_err(self.err("VIDIOC_S_FMT"))?;
        Ok(self.mplane_format(&fmt))
    }

    /// `VIDIOC_REQBUFS` (`count` 0 frees the buffers).
    pub fn request_buffers(&self, buf_type: u32, memory: u32, count: u32) -> Result<ReqBufs> {
        let mut rb = v4l2_requestbuffers {
            count,
            type_: buf_type,
            memory,
            ..Default::default()
        };
        self.node.call(VIDIOC_REQBUFS, &mut rb)?;
        Ok(ReqBufs {
            count: rb.count,
            capabilities: rb.capabilities,
        })
    }

    /// `VIDIOC_CREATE_BUFS`: adds `count` MMAP buffers of the queue's current format (the
    /// queue may be streaming). Returns the index of the first new buffer and how many the
    /// driver created.
    pub fn create_buffers(&self, buf_type: u32, count: u32) -> Result<(u32, u32)> {
        check_mplane(buf_type);
        let mut cb = v4l2_create_buffers {
            count,
            memory: V4L2_MEMORY_MMAP,
            format: v4l2_format {
                type_: buf_type,
                ..Default::default()
            },
            ..Default::default()
        };
        // SAFETY: VIDIOC_G_FMT and VIDIOC_CREATE_BUFS are `_IOWR` of the structs passed, which
        // are valid and writable; for MPLANE types the format holds no pointers.
        unsafe { ioctl(self.as_fd(), VIDIOC_G_FMT, &mut cb.format) }
            .map_err(self.err("VIDIOC_G_FMT"))?;
        // SAFETY: as above.
        unsafe { ioctl(self.as_fd(), VIDIOC_CREATE_BUFS, &mut cb) }
            .map_err(self.err("VIDIOC_CREATE_BUFS"))?;
        Ok((cb.index, cb.count))
    }

    /// `VIDIOC_EXPBUF`: plane `plane` of MMAP buffer `index` as a new dma-buf descriptor
    /// (`O_CLOEXEC`, and `O_RDWR` with `writable`).
    pub fn export_buffer(
        &self,
        buf_type: u32,
        index: u32,
        plane: u32,
        writable: bool,
    ) -> Result<std::os::fd::OwnedFd> {
        let mut eb = v4l2_exportbuffer {
            type_: buf_type,
            index,
            plane,
            flags: (libc::O_CLOEXEC
                | if writable {
                    libc::O_RDWR
                } else {
                    libc::O_RDONLY
                }) as u32,
            ..Default::default()
        };
        self.node.call(VIDIOC_EXPBUF, &mut eb)?;
        if eb.fd < 0 {
            return Err(Error::Unexpected {
                path: self.path().to_path_buf(),
                what: format!("VIDIOC_EXPBUF succeeded with fd {}", eb.fd),
            });
        }
        // SAFETY: on success the kernel installed a new dma-buf descriptor in `fd` that nothing
        // else owns, so it is ours to own and close.
        Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(eb.fd) })
    }

    /// Runs a buffer ioctl (`QUERYBUF`, `QBUF`, `DQBUF`) on a multi-planar MMAP buffer, with a
    /// plane array of `VIDEO_MAX_PLANES` entries, and returns the buffer and its planes as the
    /// kernel left them (without allocating).
    fn buffer_ioctl_raw(
        &self,
        request: std::os::raw::c_ulong,
        name: &'static str,
        buf: &mut v4l2_buffer,
        plane_bytesused: u32,
    ) -> Result<[v4l2_plane; VIDEO_MAX_PLANES as usize]> {
        check_mplane(buf.type_);
        let mut planes = [v4l2_plane::default(); VIDEO_MAX_PLANES as usize];
        planes[0].bytesused = plane_bytesused;
        buf.memory = V4L2_MEMORY_MMAP;
        buf.m.planes = planes.as_mut_ptr();
        buf.length = VIDEO_MAX_PLANES;
        // SAFETY: the buffer ioctls are `_IOWR(v4l2_buffer)` and `buf` is a valid, writable
        // `v4l2_buffer`. For MPLANE types the kernel (check_array_args() in v4l2-ioctl.c)
        // follows `m.planes` for `length` entries: `planes` is a live local array of exactly
        // VIDEO_MAX_PLANES `v4l2_plane`s, valid for reads and writes until we return. With
        // MEMORY_MMAP no other pointer is involved.
        let res = unsafe { ioctl(self.as_fd(), request, buf) };
        // Do not leave a pointer to the local array behind in the caller's struct.
        buf.m.planes = std::ptr::null_mut();
        res.map_err(self.err(name))?;
        Ok(planes)
    }

    /// [`Self::buffer_ioctl_raw`] with the result as a [`BufferInfo`].
    fn buffer_ioctl(
        &self,
        request: std::os::raw::c_ulong,
        name: &'static str,
        buf: &mut v4l2_buffer,
        plane_bytesused: u32,
    ) -> Result<BufferInfo> {
        let planes = self.buffer_ioctl_raw(request, name, buf, plane_bytesused)?;
        // A buffer has at most VIDEO_MAX_PLANES planes; for QUERYBUF/DQBUF the kernel sets
        // `length` to the buffer's count.
        let num_planes = (buf.length as usize).min(planes.len());
        Ok(BufferInfo {
            index: buf.index,
            flags: buf.flags,
            field: buf.field,
            timestamp_us: timestamp_us(buf),
            sequence: buf.sequence,
            planes: planes[..num_planes]
                .iter()
                .map(|p| (p.bytesused, p.length))
                .collect(),
            // SAFETY: reading an `__s32`/`__u32` union member; any bits are valid.
            request_fd: unsafe { buf.__bindgen_anon_1.request_fd },
        })
    }

    /// `VIDIOC_QUERYBUF` for an MMAP buffer.
    pub fn query_buffer(&self, buf_type: u32, index: u32) -> Result<BufferInfo> {
        let mut buf = v4l2_buffer {
            index,
            type_: buf_type,
            ..Default::default()
        };
        let info = self.buffer_ioctl(VIDIOC_QUERYBUF, "VIDIOC_QUERYBUF", &mut buf, 0)?;
        Ok(info)
    }

    /// `VIDIOC_QBUF` of an MMAP buffer, optionally into a request.
    pub fn queue_buffer(&self, qb: &QueueBuf<'_>) -> Result<()> {
        self.queue_buffer_with_flags(qb, 0)
    }

    /// [`Self::queue_buffer`] with extra `V4L2_BUF_FLAG_*` bits (e.g.
    /// `V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF`).
    pub fn queue_buffer_with_flags(&self, qb: &QueueBuf<'_>, flags: u32) -> Result<()> {
        let mut buf = v4l2_buffer {
            index: qb.index,
            type_: qb.buf_type,
            field: V4L2_FIELD_NONE,
            timestamp: sys::timeval {
                tv_sec: (qb.timestamp_us / 1_000_000)
                    .try_into()
                    .unwrap_or(sys::__time_t::MAX),
                // Below 1_000_000: fits every suseconds_t.
                tv_usec: (qb.timestamp_us % 1_000_000).try_into().unwrap_or(0),
            },
            ..Default::default()
        };
        buf.flags |= flags;
        if let Some(request) = qb.request {
            buf.flags |= V4L2_BUF_FLAG_REQUEST_FD;
            buf.__bindgen_anon_1.request_fd = request.as_raw_fd();
        }
        self.buffer_ioctl(VIDIOC_QBUF, "VIDIOC_QBUF", &mut buf, qb.bytesused)?;
        Ok(())
    }

    /// `VIDIOC_DQBUF` of an MMAP buffer. The node is non-blocking: `EAGAIN` when none is ready.
    pub fn dequeue_buffer(&self, buf_type: u32) -> Result<BufferInfo> {
        let mut buf = v4l2_buffer {
            type_: buf_type,
            ..Default::default()
        };
        self.buffer_ioctl(VIDIOC_DQBUF, "VIDIOC_DQBUF", &mut buf, 0)
    }

    /// `VIDIOC_DQBUF` of an MMAP buffer without allocating: the fields a decoding loop needs.
    /// The node is non-blocking: `EAGAIN` when none is ready.
    pub fn dequeue(&self, buf_type: u32) -> Result<Dequeued> {
        let mut buf = v4l2_buffer {
            type_: buf_type,
            ..Default::default()
        };
        let planes = self.buffer_ioctl_raw(VIDIOC_DQBUF, "VIDIOC_DQBUF", &mut buf, 0)?;
        Ok(Dequeued {
            index: buf.index,
            flags: buf.flags,
            timestamp_us: timestamp_us(&buf),
            sequence: buf.sequence,
            bytesused: planes[0].bytesused,
        })
    }

    /// [`Self::dequeue`], retrying on `EAGAIN` (with `poll()` on the node) until `timeout`.
    pub fn dequeue_wait(&self, buf_type: u32, timeout: Duration) -> Result<Dequeued> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match self.dequeue(buf_type) {
                Err(e) if e.errno() == Some(Errno::EAGAIN) => {
                    let now = std::time::Instant::now();
                    if now >= deadline {
                        return Err(e);
                    }
                    let events = if buf_type == V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE {
                        PollFlags::POLLOUT
                    } else {
                        PollFlags::POLLIN
                    };
                    // Bounded sleeps: m2m poll() also reports the other queue's events.
                    self.poll(events, (deadline - now).min(Duration::from_millis(10)))?;
                }
                other => return other,
            }
        }
    }

    /// Maps plane 0 of MMAP buffer `index` of `buf_type` (`VIDIOC_QUERYBUF`, then `mmap()`).
    ///
    /// # Safety
    ///
    /// The memory is shared with the driver (and, for daedalus, with the decoding daemon),
    /// which writes CAPTURE buffers and reads OUTPUT buffers while they are queued. The caller
    /// must only access the mapping while the buffer is not queued (before `VIDIOC_QBUF`, after
    /// `VIDIOC_DQBUF`), so that nothing else accesses the memory concurrently.
    pub unsafe fn map_buffer(&self, buf_type: u32, index: u32) -> Result<Mapping> {
        let mut buf = v4l2_buffer {
            index,
            type_: buf_type,
            ..Default::default()
        };
        let planes = self.buffer_ioctl_raw(VIDIOC_QUERYBUF, "VIDIOC_QUERYBUF", &mut buf, 0)?;
        let len = planes[0].length as usize;
        // SAFETY: reading a `__u32` union member (`mem_offset` for MMAP buffers); any bits are
        // valid.
        let offset = unsafe { planes[0].m.mem_offset };
        if len == 0 {
            return Err(Error::Unexpected {
                path: self.path().to_path_buf(),
                what: format!("buffer {index} has an empty plane 0"),
            });
        }
        // SAFETY: a new shared mapping of the buffer the driver exports at `offset` of this
        // open node (the kernel checks that the range belongs to the buffer; the mapping keeps
        // the memory alive even if the buffers are freed). Concurrent access by the driver and
        // the daemon is excluded by this function's contract, so the slices `Mapping` hands
        // out are not changed under the caller's feet.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .offset(u64::from(offset))
                .len(len)
                .map_mut(self.as_fd().as_raw_fd())
        }
        .map_err(|e| self.err("mmap")(Errno::from_raw(e.raw_os_error().unwrap_or(0))))?;
        Ok(Mapping { map })
    }

    /// `VIDIOC_DQBUF`, retrying on `EAGAIN` until `timeout` has passed.
    pub fn dequeue_buffer_timeout(&self, buf_type: u32, timeout: Duration) -> Result<BufferInfo> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match self.dequeue_buffer(buf_type) {
                Err(e) if e.errno() == Some(Errno::EAGAIN) => {
                    if std::time::Instant::now() >= deadline {
                        return Err(e);
                    }
                    // m2m poll() semantics differ between the queues; a short sleep is simpler
                    // and good enough for a conformance check.
                    std::thread::sleep(Duration::from_millis(5));
                }
                other => return other,
            }
        }
    }

    fn stream_ioctl(&self, request: PlainIoctl<c_int>, buf_type: u32) -> Result<()> {
        let mut arg = c_int::try_from(buf_type).unwrap_or(c_int::MAX);
        self.node.call(request, &mut arg)?;
        Ok(())
    }

    /// `VIDIOC_STREAMON`.
    pub fn stream_on(&self, buf_type: u32) -> Result<()> {
        self.stream_ioctl(VIDIOC_STREAMON, buf_type)
    }

    /// `VIDIOC_STREAMOFF` (returns every queued buffer to userspace's hands).
    pub fn stream_off(&self, buf_type: u32) -> Result<()> {
        self.stream_ioctl(VIDIOC_STREAMOFF, buf_type)
    }

    fn ext_ctrls(
        &self,
        request: std::os::raw::c_ulong,
        name: &'static str,
        which: Which<'_>,
        payloads: &mut [CtrlPayload<'_>],
    ) -> Result<()> {
        // Up to 8 controls live on the stack (no allocation per request).
        let mut stack = [v4l2_ext_control::default(); 8];
        let mut heap = Vec::new();
        let controls: &mut [v4l2_ext_control] = if payloads.len() <= stack.len() {
            &mut stack[..payloads.len()]
        } else {
            heap.resize(payloads.len(), v4l2_ext_control::default());
            &mut heap
        };
        for (c, p) in controls.iter_mut().zip(payloads.iter()) {
            c.id = p.id;
            c.size = p.size;
            c.__bindgen_anon_1.ptr = p.ptr;
        }
        let mut ext = v4l2_ext_controls {
            count: u32::try_from(controls.len()).unwrap_or(u32::MAX),
            controls: controls.as_mut_ptr(),
            ..Default::default()
        };
        match which {
            Which::Current => ext.__bindgen_anon_1.which = V4L2_CTRL_WHICH_CUR_VAL,
            Which::Default => ext.__bindgen_anon_1.which = V4L2_CTRL_WHICH_DEF_VAL,
            Which::Request(fd) => {
                ext.__bindgen_anon_1.which = V4L2_CTRL_WHICH_REQUEST_VAL;
                ext.request_fd = fd.as_raw_fd();
            }
        }
        // SAFETY: the ext-control ioctls are `_IOWR(v4l2_ext_controls)` and `ext` is a valid,
        // writable `v4l2_ext_controls`. The kernel follows `controls` for `count` entries: the
        // live `controls` slice has exactly `count` elements. For each of them it follows
        // `ptr` for `size` bytes (compound controls): each `CtrlPayload` carries the pointer
        // and size of a `ControlPayload` value it mutably borrows for its lifetime, which
        // outlives this call, so the memory is valid for reads and writes of `size` bytes and
        // any bytes written form a valid value (ControlPayload contract).
        unsafe { ioctl(self.as_fd(), request, &mut ext) }.map_err(self.err(name))?;
        Ok(())
    }

    /// `VIDIOC_S_EXT_CTRLS` of one integer or menu control (current value).
    pub fn set_int_ctrl(&self, id: u32, value: i32) -> Result<()> {
        let mut control = v4l2_ext_control {
            id,
            ..Default::default()
        };
        control.__bindgen_anon_1.value = value;
        let mut ext = v4l2_ext_controls {
            count: 1,
            controls: &mut control,
            ..Default::default()
        };
        ext.__bindgen_anon_1.which = V4L2_CTRL_WHICH_CUR_VAL;
        // SAFETY: `VIDIOC_S_EXT_CTRLS` is `_IOWR(v4l2_ext_controls)`; `ext` is valid and
        // writable and its `controls` points at the one live, writable `control` (`count` 1),
        // whose value is inline (size 0: not a compound control), so the kernel follows no
        // other pointer.
        unsafe { ioctl(self.as_fd(), VIDIOC_S_EXT_CTRLS, &mut ext) }
            .map_err(self.err("VIDIOC_S_EXT_CTRLS"))?;
        Ok(())
    }

    /// `VIDIOC_G_EXT_CTRLS` of compound controls.
    pub fn get_ext_ctrls(&self, which: Which<'_>, payloads: &mut [CtrlPayload<'_>]) -> Result<()> {
        self.ext_ctrls(VIDIOC_G_EXT_CTRLS, "VIDIOC_G_EXT_CTRLS", which, payloads)
    }

    /// `VIDIOC_S_EXT_CTRLS` of compound controls.
    pub fn set_ext_ctrls(&self, which: Which<'_>, payloads: &mut [CtrlPayload<'_>]) -> Result<()> {
        self.ext_ctrls(VIDIOC_S_EXT_CTRLS, "VIDIOC_S_EXT_CTRLS", which, payloads)
    }

    /// The default value of a compound control, checking that the device's payload size is the
    /// size of `T`.
    pub fn default_payload<T: ControlPayload>(&self, id: u32) -> Result<T> {
        let info = self.query_control(id)?;
        if info.elem_size as usize != size_of::<T>() || info.ctrl_type != T::TYPE {
            return Err(Error::PayloadSize {
                id,
                device: info.elem_size,
                ours: size_of::<T>(),
            });
        }
        let mut value = T::default();
        self.get_ext_ctrls(Which::Default, &mut [CtrlPayload::new(id, &mut value)])?;
        Ok(value)
    }

    /// `poll()` on the node; returns the `revents` (0 on time-out).
    pub fn poll(&self, events: PollFlags, timeout: Duration) -> Result<PollFlags> {
        poll_one(self.as_fd(), events, timeout).map_err(|errno| Error::Poll {
            path: self.path().to_path_buf(),
            errno,
        })
    }
}

fn check_mplane(buf_type: u32) {
    debug_assert!(
        buf_type == V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE
            || buf_type == V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
        "only the multi-planar video buffer types are supported"
    );
}
