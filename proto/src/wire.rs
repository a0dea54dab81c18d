// SPDX-License-Identifier: GPL-2.0
//! The `/dev/daedalus` wire format between the kernel module and the decode daemon.
//!
//! One definition for both sides: the module includes this file with `#[path]` (so it is
//! `no_std`, allocation-free, panic-free and uses no external crate), the daemon uses it through
//! the `daedalus-proto` crate. Everything is native-endian (both ends run on the same machine)
//! and encoded field by field at fixed offsets, so no `unsafe` byte casts are needed.
//!
//! The exchange (see `docs/protocol.md`):
//! 1. the daemon opens `/dev/daedalus` and sends [`Hello`] with [`VERSION`] through
//!    [`IOC_HELLO`]; another version is refused with `EPROTO` and the module's version is
//!    written back so the daemon can say which;
//! 2. `read()` returns one message at a time ([`Message`]): decode jobs and context events;
//! 3. the daemon answers each job with a [`Completion`] through [`IOC_COMPLETE`]. The module
//!    checks every field of it.

use crate::formats::{fourcc, BitDepth, CaptureLayout, Codec, PIX_FMT_NV12, PIX_FMT_P010};

/// Protocol version; a daemon speaking another one is refused.
pub const VERSION: u32 = 1;
/// First word of every message.
pub const MAGIC: u32 = fourcc(b"DDLS");
/// Path of the chardev.
pub const DEVICE_PATH: &str = "/dev/daedalus";

/// Largest message `read()` returns; the daemon reads with a buffer of this size.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;
/// Most controls one job carries (the H.264 set is the largest: 8).
pub const MAX_CONTROLS: usize = 16;
/// Largest payload of one control (AV1 tile group entries: 512 x 16 bytes).
pub const MAX_CONTROL_SIZE: usize = 16 * 1024;

/// Type byte of the daedalus ioctls.
pub const IOC_TYPE: u32 = 0xda;

const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

/// `_IOC(dir, type, nr, size)` with the generic encoding (x86, arm64, riscv).
const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | (IOC_TYPE << 8) | nr
}

/// `_IOWR(0xda, 1, struct daedalus_hello)`: version handshake.
pub const IOC_HELLO: u32 = ioc(IOC_READ | IOC_WRITE, 1, Hello::SIZE);
/// `_IOW(0xda, 2, struct daedalus_completion)`: the answer to a job.
pub const IOC_COMPLETE: u32 = ioc(IOC_WRITE, 2, Completion::SIZE);

/// Why bytes are not a valid message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// The buffer is shorter than the message or its header says.
    Truncated,
    /// The output buffer is too small for the message.
    NoSpace,
    /// The first word is not [`MAGIC`].
    BadMagic(u32),
    /// Unknown message kind.
    BadKind(u32),
    /// The header's size disagrees with the kind or the content.
    BadSize(u32),
    /// More than [`MAX_CONTROLS`] controls or one larger than [`MAX_CONTROL_SIZE`].
    TooManyControls(u32),
    /// A control payload larger than [`MAX_CONTROL_SIZE`].
    ControlTooLarge(u32),
    /// The job's OUTPUT format is not a codec daedalus decodes.
    BadCodec(u32),
    /// A buffer description or the picture format does not fit its buffer.
    BadBuffer,
    /// The completion's status is not a [`Status`].
    BadStatus(u32),
    /// Reserved fields must be zero.
    Reserved,
}

impl core::fmt::Display for WireError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WireError::Truncated => write!(f, "message truncated"),
            WireError::NoSpace => write!(f, "no space for the message"),
            WireError::BadMagic(m) => write!(f, "bad magic {m:#010x}"),
            WireError::BadKind(k) => write!(f, "unknown message kind {k}"),
            WireError::BadSize(s) => write!(f, "bad message size {s}"),
            WireError::TooManyControls(n) => write!(f, "{n} controls (max {MAX_CONTROLS})"),
            WireError::ControlTooLarge(s) => {
                write!(f, "control of {s} bytes (max {MAX_CONTROL_SIZE})")
            }
            WireError::BadCodec(c) => write!(f, "unknown codec fourcc {c:#010x}"),
            WireError::BadBuffer => write!(f, "buffer description out of bounds"),
            WireError::BadStatus(s) => write!(f, "unknown completion status {s}"),
            WireError::Reserved => write!(f, "reserved field not zero"),
        }
    }
}

/// Result of wire operations.
pub type WireResult<T> = core::result::Result<T, WireError>;

// ---------------------------------------------------------------------------------------------
// Field access at fixed offsets

/// The `N` bytes at `off` of `b`.
fn get_bytes<const N: usize>(b: &[u8], off: usize) -> WireResult<[u8; N]> {
    b.get(off..off + N)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or(WireError::Truncated)
}

/// Writes `v` at `off` of `b`.
fn put_bytes<const N: usize>(b: &mut [u8], off: usize, v: [u8; N]) -> WireResult<()> {
    let s = b.get_mut(off..off + N).ok_or(WireError::NoSpace)?;
    s.copy_from_slice(&v);
    Ok(())
}

/// A field of a fixed wire struct: a native-endian integer at an offset.
trait Field: Sized {
    const SIZE: usize;
    fn get(b: &[u8], off: usize) -> WireResult<Self>;
    fn put(self, b: &mut [u8], off: usize) -> WireResult<()>;
}

/// The integer fields: native-endian bytes (a `u64` is its two `u32` halves in memory order).
macro_rules! int_fields {
    ($($ty:ty),+) => {
        $(impl Field for $ty {
            const SIZE: usize = core::mem::size_of::<$ty>();
            fn get(b: &[u8], off: usize) -> WireResult<Self> {
                get_bytes(b, off).map(<$ty>::from_ne_bytes)
            }
            fn put(self, b: &mut [u8], off: usize) -> WireResult<()> {
                put_bytes(b, off, self.to_ne_bytes())
            }
        })+
    };
}

int_fields!(u32, i32, u64);

fn get_u32(b: &[u8], off: usize) -> WireResult<u32> {
    u32::get(b, off)
}

fn get_u64(b: &[u8], off: usize) -> WireResult<u64> {
    u64::get(b, off)
}

fn put_u32(b: &mut [u8], off: usize, v: u32) -> WireResult<()> {
    v.put(b, off)
}

fn put_u64(b: &mut [u8], off: usize, v: u64) -> WireResult<()> {
    v.put(b, off)
}

/// Defines a fixed-size wire struct: its fields follow each other without holes, in the order
/// written (as `docs/protocol.md` lays them out), and the rest of its `SIZE` bytes is reserved
/// (written as zero, refused when not zero). Generates `put_at` / `get_at` (at an offset of a
/// larger buffer); the one list of fields is the only place the layout is written.
macro_rules! wire_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident ($size:expr) {
            $($(#[$field_meta:meta])* pub $field:ident: $ty:ty,)*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $($(#[$field_meta])* pub $field: $ty,)*
        }

        impl $name {
            /// Encoded size.
            pub const SIZE: usize = $size;

            /// Encodes the struct alone (an ioctl payload).
            pub fn encode(&self) -> [u8; $size] {
                let mut b = [0u8; $size];
                // The fields are within SIZE: cannot fail.
                let _ = self.put_at(&mut b, 0);
                b
            }

            /// Writes the struct at `off` of `b` (reserved bytes zeroed).
            fn put_at(&self, b: &mut [u8], off: usize) -> WireResult<()> {
                let end = off + Self::SIZE;
                let mut pos = off;
                $(
                    Field::put(self.$field, b, pos)?;
                    pos += <$ty as Field>::SIZE;
                )*
                b.get_mut(pos..end).ok_or(WireError::NoSpace)?.fill(0);
                Ok(())
            }

            /// Reads the struct at `off` of `b` (reserved bytes must be zero).
            fn get_at(b: &[u8], off: usize) -> WireResult<$name> {
                let end = off + Self::SIZE;
                let mut pos = off;
                let v = $name {
                    $($field: {
                        let f = <$ty as Field>::get(b, pos)?;
                        pos += <$ty as Field>::SIZE;
                        f
                    },)*
                };
                let reserved = b.get(pos..end).ok_or(WireError::Truncated)?;
                if reserved.iter().any(|&x| x != 0) {
                    return Err(WireError::Reserved);
                }
                Ok(v)
            }
        }
    };
}

/// Defines a `u32` enum of the wire: its values, the checked conversion from the wire's `u32`
/// (an unknown value is `WireError::$error(value)`) and its [`Field`] (so a `wire_struct!`
/// field can have the enum's type).
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident($error:ident) {
            $($(#[$variant_meta:meta])* $variant:ident = $value:expr,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u32)]
        pub enum $name {
            $($(#[$variant_meta])* $variant = $value,)+
        }

        impl TryFrom<u32> for $name {
            type Error = WireError;

            fn try_from(v: u32) -> WireResult<$name> {
                $(if v == $value {
                    return Ok($name::$variant);
                })+
                Err(WireError::$error(v))
            }
        }

        impl From<$name> for u32 {
            fn from(v: $name) -> u32 {
                v as u32
            }
        }

        impl Field for $name {
            const SIZE: usize = 4;
            fn get(b: &[u8], off: usize) -> WireResult<Self> {
                $name::try_from(get_u32(b, off)?)
            }
            fn put(self, b: &mut [u8], off: usize) -> WireResult<()> {
                put_u32(b, off, self as u32)
            }
        }
    };
}

const fn align8(v: usize) -> usize {
    (v + 7) & !7
}

// ---------------------------------------------------------------------------------------------
// Handshake and completion (ioctl payloads)

wire_struct! {
    /// `IOC_HELLO` payload. The daemon fills `version`; the module answers with its own version
    /// and its limits.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Hello(32) {
        /// Protocol version (in: the daemon's, out: the module's).
        pub version: u32,
        /// Out: largest message `read()` returns.
        pub max_message_size: u32,
        /// Out: how long (ms) the module waits for a job's completion before failing it.
        pub job_timeout_ms: u32,
    }
}

impl Hello {
    /// Decodes an ioctl payload.
    pub fn decode(b: &[u8; Self::SIZE]) -> WireResult<Hello> {
        Hello::get_at(b, 0)
    }
}

wire_enum! {
    /// How the daemon ended a job ([`Completion::status`]).
    #[derive(Default)]
    pub enum Status(BadStatus) {
        /// The picture is in the CAPTURE buffer.
        #[default]
        Ok = 0,
        /// The bitstream could not be decoded (corrupt, or references missing).
        DecodeError = 1,
        /// The stream uses something daedalus does not decode (e.g. 4:4:4, 12-bit).
        Unsupported = 2,
        /// The daemon failed for another reason (out of memory, mapping failure, ...).
        InternalError = 3,
    }
}

wire_struct! {
    /// `IOC_COMPLETE` payload: the daemon's answer to one job.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Completion(32) {
        /// The job's id.
        pub job_id: u64,
        /// The job's context.
        pub ctx_id: u32,
        /// How the job ended.
        pub status: Status,
        /// Bytes of picture written into the CAPTURE buffer (its `bytesused`).
        pub capture_bytesused: u32,
    }
}

impl Completion {
    /// Decodes and checks an ioctl payload (everything but what only the module can know: that
    /// the job exists and the size fits its buffer); an unknown status is
    /// [`WireError::BadStatus`].
    pub fn decode(b: &[u8; Self::SIZE]) -> WireResult<Completion> {
        Completion::get_at(b, 0)
    }
}

// ---------------------------------------------------------------------------------------------
// Messages (read() from the module)

wire_enum! {
    /// The kind of a message `read()` returns (its header's second word).
    pub enum MessageKind(BadKind) {
        /// A decode job.
        Job = 1,
        /// A client opened `/dev/videoN` (a new context).
        ContextOpen = 2,
        /// A context stopped streaming / flushed: drop its decoder state.
        ContextFlush = 3,
        /// A context is gone: free everything of it.
        ContextClose = 4,
    }
}

/// A context event: the message kinds other than [`MessageKind::Job`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContextEvent {
    /// [`MessageKind::ContextOpen`].
    Open,
    /// [`MessageKind::ContextFlush`].
    Flush,
    /// [`MessageKind::ContextClose`].
    Close,
}

impl ContextEvent {
    /// The kind of the message that carries the event.
    pub const fn kind(self) -> MessageKind {
        match self {
            ContextEvent::Open => MessageKind::ContextOpen,
            ContextEvent::Flush => MessageKind::ContextFlush,
            ContextEvent::Close => MessageKind::ContextClose,
        }
    }
}

/// Size of the message header (magic, kind, size, reserved).
pub const HEADER_SIZE: usize = 16;
/// Size of a context event.
pub const CONTEXT_EVENT_SIZE: usize = HEADER_SIZE + 8;
/// Size of a job without its controls.
pub const JOB_FIXED_SIZE: usize = 152;
// The fixed part: header, ids and sizes (40 bytes), two buffers, the picture format.
const _: () = assert!(JOB_FIXED_SIZE == 56 + 2 * BufferDesc::SIZE + PictureFormat::SIZE);

/// Size of a control entry's header.
pub const CONTROL_HEADER_SIZE: usize = 16;

/// Job flag: more slices follow for the same CAPTURE buffer (slice-based H.264 with
/// `V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF`); the picture is complete with the last one.
pub const JOB_FLAG_HOLD_CAPTURE: u32 = 1;

wire_struct! {
    /// Where a buffer of a job lives.
    ///
    /// Buffers reach the daemon as dma-buf fds: `fd` is a new fd installed in the daemon's table
    /// when the daemon has not seen this buffer yet (it maps it and caches the mapping, with the fd
    /// for `DMA_BUF_IOCTL_SYNC`, under (`ctx_id`, queue, `index`, `generation`), closing both when
    /// the entry is replaced or the context closes); `-1` means "the one you mapped".
    /// `generation` changes whenever the buffer behind an index changes (buffers reallocated or a
    /// different dma-buf queued), so a stale mapping is never used.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct BufferDesc(32) {
        /// New dma-buf fd, or -1.
        pub fd: i32,
        /// videobuf2 index of the buffer.
        pub index: u32,
        /// Changes when the memory behind the index changes.
        pub generation: u32,
        /// Size of the mapping (the plane's length).
        pub length: u32,
        /// Bytes of data (OUTPUT: the bitstream; CAPTURE: 0).
        pub bytesused: u32,
        /// Where the data starts in the plane.
        pub data_offset: u32,
    }
}

impl BufferDesc {
    fn decode(b: &[u8], off: usize) -> WireResult<BufferDesc> {
        let d = BufferDesc::get_at(b, off)?;
        if d.bytesused > d.length || d.data_offset > d.bytesused {
            return Err(WireError::BadBuffer);
        }
        Ok(d)
    }
}

wire_struct! {
    /// Layout of the CAPTURE buffer the picture goes into (one memory plane: luma rows, then
    /// interleaved chroma rows from `chroma_offset`).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct PictureFormat(32) {
        /// `V4L2_PIX_FMT_NV12` or `V4L2_PIX_FMT_P010`.
        pub fourcc: u32,
        /// Width in pixels.
        pub width: u32,
        /// Height in pixels.
        pub height: u32,
        /// Bytes per row of both planes.
        pub bytesperline: u32,
        /// Total size of the picture.
        pub sizeimage: u32,
        /// Offset of the chroma plane.
        pub chroma_offset: u32,
    }
}

impl PictureFormat {
    /// The picture format of a CAPTURE buffer of `depth` samples laid out as `l`.
    pub const fn of_layout(depth: BitDepth, l: &CaptureLayout) -> PictureFormat {
        PictureFormat {
            fourcc: depth.capture_fourcc(),
            width: l.width,
            height: l.height,
            bytesperline: l.bytesperline,
            sizeimage: l.sizeimage,
            chroma_offset: l.chroma_offset(),
        }
    }

    /// Checks that a picture of this format fits in `buffer_length` bytes: whoever writes the
    /// picture can then trust every row it computes from these fields.
    pub fn check(&self, buffer_length: u32) -> WireResult<()> {
        let bytes_per_sample: u64 = match self.fourcc {
            PIX_FMT_NV12 => 1,
            PIX_FMT_P010 => 2,
            _ => return Err(WireError::BadBuffer),
        };
        let (w, h, bpl) = (
            u64::from(self.width),
            u64::from(self.height),
            u64::from(self.bytesperline),
        );
        let luma_end = bpl * h;
        let chroma_end = u64::from(self.chroma_offset) + bpl * h.div_ceil(2);
        let ok = w > 0
            && h > 0
            && w * bytes_per_sample <= bpl
            && luma_end <= u64::from(self.chroma_offset)
            && chroma_end <= u64::from(self.sizeimage)
            && self.sizeimage <= buffer_length;
        if ok {
            Ok(())
        } else {
            Err(WireError::BadBuffer)
        }
    }
}

/// One control of a job: the value the request's control has after
/// `v4l2_ctrl_request_setup` (the full current state, not only what the request carried).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Control<'a> {
    /// `V4L2_CID_*`.
    pub id: u32,
    /// Number of elements (dynamic arrays such as AV1 tile group entries; 1 otherwise).
    pub elems: u32,
    /// The raw C struct(s) of the control, `elems` times the element size.
    pub payload: &'a [u8],
}

/// The controls of a job, in the order the module wrote them.
#[derive(Clone, Copy, Debug)]
pub struct Controls<'a> {
    bytes: &'a [u8],
    remaining: u32,
}

impl<'a> Iterator for Controls<'a> {
    type Item = Control<'a>;

    fn next(&mut self) -> Option<Control<'a>> {
        if self.remaining == 0 {
            return None;
        }
        // Validated by `decode`: every entry is complete.
        let id = get_u32(self.bytes, 0).ok()?;
        let size = get_u32(self.bytes, 4).ok()? as usize;
        let elems = get_u32(self.bytes, 8).ok()?;
        let payload = self
            .bytes
            .get(CONTROL_HEADER_SIZE..CONTROL_HEADER_SIZE + size)?;
        let next = align8(CONTROL_HEADER_SIZE + size).min(self.bytes.len());
        self.bytes = &self.bytes[next..];
        self.remaining -= 1;
        Some(Control { id, elems, payload })
    }
}

impl<'a> Controls<'a> {
    /// The control with `id`, if the job carries it.
    pub fn get(&self, id: u32) -> Option<Control<'a>> {
        let mut all = *self;
        all.find(|c| c.id == id)
    }
}

/// A decode job: decode the OUTPUT buffer's bitstream with the controls into the CAPTURE buffer.
#[derive(Clone, Copy, Debug)]
pub struct Job<'a> {
    /// Everything but the controls (what the module gives [`JobEncoder::new`]).
    pub header: JobHeader,
    /// The control state of the request.
    pub controls: Controls<'a>,
}

/// A message read from `/dev/daedalus`.
#[derive(Clone, Copy, Debug)]
pub enum Message<'a> {
    /// A decode job.
    Job(Job<'a>),
    /// A context was created.
    ContextOpen {
        /// The context.
        ctx_id: u32,
    },
    /// A context flushed (stream off): references and decoder state are gone.
    ContextFlush {
        /// The context.
        ctx_id: u32,
    },
    /// A context was closed: free its decoder and buffer mappings.
    ContextClose {
        /// The context.
        ctx_id: u32,
    },
}

fn put_header(b: &mut [u8], kind: MessageKind, size: usize) -> WireResult<()> {
    put_u32(b, 0, MAGIC)?;
    kind.put(b, 4)?;
    put_u32(b, 8, size as u32)?;
    put_u32(b, 12, 0)
}

/// Encodes a context event into `out`; returns its size.
pub fn encode_context_event(event: ContextEvent, ctx_id: u32, out: &mut [u8]) -> WireResult<usize> {
    if out.len() < CONTEXT_EVENT_SIZE {
        return Err(WireError::NoSpace);
    }
    put_header(out, event.kind(), CONTEXT_EVENT_SIZE)?;
    put_u32(out, HEADER_SIZE, ctx_id)?;
    put_u32(out, HEADER_SIZE + 4, 0)?;
    Ok(CONTEXT_EVENT_SIZE)
}

/// The fixed part of a job: everything but its controls.
#[derive(Clone, Copy, Debug)]
pub struct JobHeader {
    /// Unique id, echoed in the [`Completion`].
    pub job_id: u64,
    /// Context (open file of `/dev/videoN`); jobs of one context come in decode order.
    pub ctx_id: u32,
    /// Codec of the bitstream.
    pub codec: Codec,
    /// `JOB_FLAG_*`.
    pub flags: u32,
    /// Timestamp of the OUTPUT buffer (ns); reference controls name frames by it.
    pub timestamp_ns: u64,
    /// Coded size set on the OUTPUT queue.
    pub coded_width: u32,
    /// Coded height set on the OUTPUT queue.
    pub coded_height: u32,
    /// The bitstream buffer.
    pub output: BufferDesc,
    /// The picture buffer.
    pub capture: BufferDesc,
    /// Layout of the picture buffer (checked to fit `capture.length`).
    pub picture: PictureFormat,
}

/// Writes a job into a caller-provided buffer: the header, then controls one by one (each
/// copied straight from the control's storage), then [`JobEncoder::finish`].
pub struct JobEncoder<'a> {
    out: &'a mut [u8],
    len: usize,
    count: u32,
}

impl<'a> JobEncoder<'a> {
    /// Starts a job in `out`.
    pub fn new(out: &'a mut [u8], h: &JobHeader) -> WireResult<JobEncoder<'a>> {
        if out.len() < JOB_FIXED_SIZE {
            return Err(WireError::NoSpace);
        }
        put_header(out, MessageKind::Job, JOB_FIXED_SIZE)?;
        put_u64(out, 16, h.job_id)?;
        put_u32(out, 24, h.ctx_id)?;
        put_u32(out, 28, h.codec.fourcc())?;
        put_u32(out, 32, h.flags)?;
        put_u32(out, 36, 0)?;
        put_u64(out, 40, h.timestamp_ns)?;
        put_u32(out, 48, h.coded_width)?;
        put_u32(out, 52, h.coded_height)?;
        h.output.put_at(out, JOB_OUTPUT_FD_OFFSET)?;
        h.capture.put_at(out, JOB_CAPTURE_FD_OFFSET)?;
        h.picture.put_at(out, 56 + 2 * BufferDesc::SIZE)?;
        Ok(JobEncoder {
            out,
            len: JOB_FIXED_SIZE,
            count: 0,
        })
    }

    /// Room for the payload of a control of `size` bytes: the caller fills the returned slice
    /// (e.g. with a copy of the control's value).
    pub fn control(&mut self, id: u32, elems: u32, size: usize) -> WireResult<&mut [u8]> {
        if self.count as usize >= MAX_CONTROLS {
            return Err(WireError::TooManyControls(self.count + 1));
        }
        if size > MAX_CONTROL_SIZE {
            return Err(WireError::ControlTooLarge(size as u32));
        }
        let start = self.len;
        let end = align8(start + CONTROL_HEADER_SIZE + size);
        if end > self.out.len() || end > MAX_MESSAGE_SIZE {
            return Err(WireError::NoSpace);
        }
        put_u32(self.out, start, id)?;
        put_u32(self.out, start + 4, size as u32)?;
        put_u32(self.out, start + 8, elems)?;
        put_u32(self.out, start + 12, 0)?;
        // Padding is zero, so no stale kernel memory ever reaches userspace.
        self.out[start + CONTROL_HEADER_SIZE + size..end].fill(0);
        self.len = end;
        self.count += 1;
        Ok(&mut self.out[start + CONTROL_HEADER_SIZE..start + CONTROL_HEADER_SIZE + size])
    }

    /// Completes the job; returns its size.
    pub fn finish(self) -> WireResult<usize> {
        put_u32(self.out, 8, self.len as u32)?;
        put_u32(self.out, 36, self.count)?;
        Ok(self.len)
    }
}

/// Offset of the OUTPUT buffer's `fd` in an encoded job.
const JOB_OUTPUT_FD_OFFSET: usize = 56;
/// Offset of the CAPTURE buffer's `fd` in an encoded job.
const JOB_CAPTURE_FD_OFFSET: usize = 56 + BufferDesc::SIZE;

/// Sets the dma-buf fds of an encoded job (the module installs them in the daemon's fd table
/// only when the daemon reads the job).
pub fn set_job_fds(job: &mut [u8], output_fd: i32, capture_fd: i32) -> WireResult<()> {
    let kind = get_u32(job, 4).unwrap_or(0);
    if job.len() < JOB_FIXED_SIZE
        || get_u32(job, 0)? != MAGIC
        || kind != u32::from(MessageKind::Job)
    {
        return Err(WireError::BadKind(kind));
    }
    put_u32(job, JOB_OUTPUT_FD_OFFSET, output_fd as u32)?;
    put_u32(job, JOB_CAPTURE_FD_OFFSET, capture_fd as u32)
}

/// Decodes and validates one message (what the daemon does with each `read()`).
pub fn decode(b: &[u8]) -> WireResult<Message<'_>> {
    let magic = get_u32(b, 0)?;
    if magic != MAGIC {
        return Err(WireError::BadMagic(magic));
    }
    let kind = get_u32(b, 4)?;
    let size = get_u32(b, 8)?;
    if get_u32(b, 12)? != 0 {
        return Err(WireError::Reserved);
    }
    let len = size as usize;
    if len > b.len() {
        return Err(WireError::Truncated);
    }
    let b = &b[..len];
    let event = match MessageKind::try_from(kind)? {
        MessageKind::Job => return decode_job(b).map(Message::Job),
        MessageKind::ContextOpen => ContextEvent::Open,
        MessageKind::ContextFlush => ContextEvent::Flush,
        MessageKind::ContextClose => ContextEvent::Close,
    };
    if len != CONTEXT_EVENT_SIZE {
        return Err(WireError::BadSize(size));
    }
    let ctx_id = get_u32(b, HEADER_SIZE)?;
    Ok(match event {
        ContextEvent::Open => Message::ContextOpen { ctx_id },
        ContextEvent::Flush => Message::ContextFlush { ctx_id },
        ContextEvent::Close => Message::ContextClose { ctx_id },
    })
}

fn decode_job(b: &[u8]) -> WireResult<Job<'_>> {
    if b.len() < JOB_FIXED_SIZE || b.len() > MAX_MESSAGE_SIZE {
        return Err(WireError::BadSize(b.len() as u32));
    }
    let fourcc = get_u32(b, 28)?;
    let codec = Codec::from_fourcc(fourcc).ok_or(WireError::BadCodec(fourcc))?;
    let num_controls = get_u32(b, 36)?;
    if num_controls as usize > MAX_CONTROLS {
        return Err(WireError::TooManyControls(num_controls));
    }
    let output = BufferDesc::decode(b, 56)?;
    let capture = BufferDesc::decode(b, 56 + BufferDesc::SIZE)?;
    let picture = PictureFormat::get_at(b, 56 + 2 * BufferDesc::SIZE)?;
    picture.check(capture.length)?;
    // Walk the controls once so that iterating them later cannot go out of bounds.
    let area = &b[JOB_FIXED_SIZE..];
    let mut off = 0;
    for _ in 0..num_controls {
        let size = get_u32(area, off + 4)? as usize;
        if size > MAX_CONTROL_SIZE {
            return Err(WireError::ControlTooLarge(size as u32));
        }
        if get_u32(area, off + 12)? != 0 {
            return Err(WireError::Reserved);
        }
        let end = align8(off + CONTROL_HEADER_SIZE + size);
        if end > area.len() {
            return Err(WireError::Truncated);
        }
        off = end;
    }
    if off != area.len() {
        return Err(WireError::BadSize(b.len() as u32));
    }
    Ok(Job {
        header: JobHeader {
            job_id: get_u64(b, 16)?,
            ctx_id: get_u32(b, 24)?,
            codec,
            flags: get_u32(b, 32)?,
            timestamp_ns: get_u64(b, 40)?,
            coded_width: get_u32(b, 48)?,
            coded_height: get_u32(b, 52)?,
            output,
            capture,
            picture,
        },
        controls: Controls {
            bytes: area,
            remaining: num_controls,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::{BitDepth, CaptureLayout};

    fn picture(depth: BitDepth, w: u32, h: u32) -> PictureFormat {
        PictureFormat::of_layout(depth, &CaptureLayout::new(depth, w, h))
    }

    fn header() -> JobHeader {
        let pic = picture(BitDepth::Eight, 352, 288);
        JobHeader {
            job_id: 0x1234_5678_9abc_def0,
            ctx_id: 7,
            codec: Codec::Vp9,
            flags: JOB_FLAG_HOLD_CAPTURE,
            timestamp_ns: 42_000,
            coded_width: 352,
            coded_height: 288,
            output: BufferDesc {
                fd: 5,
                index: 1,
                generation: 2,
                length: 1 << 20,
                bytesused: 999,
                data_offset: 0,
            },
            capture: BufferDesc {
                fd: -1,
                index: 3,
                generation: 4,
                length: pic.sizeimage,
                bytesused: 0,
                data_offset: 0,
            },
            picture: pic,
        }
    }

    fn encode(h: &JobHeader, ctrls: &[(u32, u32, &[u8])], out: &mut [u8]) -> WireResult<usize> {
        let mut e = JobEncoder::new(out, h)?;
        for (id, elems, payload) in ctrls {
            e.control(*id, *elems, payload.len())?
                .copy_from_slice(payload);
        }
        e.finish()
    }

    #[test]
    fn job_round_trip() {
        let mut buf = [0xffu8; 1024];
        let a = [1u8, 2, 3];
        let b = [9u8; 16];
        let n = encode(
            &header(),
            &[(0xa40a2c, 1, &a), (0xa40a2d, 2, &b), (5, 1, &[])],
            &mut buf,
        )
        .unwrap();
        assert_eq!(n, JOB_FIXED_SIZE + 24 + 32 + 16);
        let Message::Job(j) = decode(&buf[..n]).unwrap() else {
            panic!("not a job")
        };
        let h = header();
        assert_eq!(
            (
                j.header.job_id,
                j.header.ctx_id,
                j.header.codec,
                j.header.flags
            ),
            (h.job_id, h.ctx_id, h.codec, h.flags)
        );
        assert_eq!(
            (
                j.header.timestamp_ns,
                j.header.coded_width,
                j.header.coded_height
            ),
            (42_000, 352, 288)
        );
        assert_eq!(
            (j.header.output, j.header.capture, j.header.picture),
            (h.output, h.capture, h.picture)
        );
        let c: [Control<'_>; 3] = {
            let mut it = j.controls;
            [it.next().unwrap(), it.next().unwrap(), it.next().unwrap()]
        };
        assert_eq!(
            c[0],
            Control {
                id: 0xa40a2c,
                elems: 1,
                payload: &a
            }
        );
        assert_eq!(
            c[1],
            Control {
                id: 0xa40a2d,
                elems: 2,
                payload: &b
            }
        );
        assert_eq!(c[2].payload.len(), 0);
        assert!(j.controls.clone().nth(3).is_none());
        assert_eq!(j.controls.get(0xa40a2d).unwrap().payload, &b);
        // Padding after the 3-byte payload is zeroed, not left as it was.
        assert_eq!(&buf[JOB_FIXED_SIZE + 16 + 3..JOB_FIXED_SIZE + 24], &[0; 5]);
        // The same bytes with trailing garbage after `size` decode the same.
        assert!(decode(&buf[..n + 8]).is_ok());
    }

    #[test]
    fn context_events_round_trip() {
        let mut buf = [0u8; CONTEXT_EVENT_SIZE];
        for (event, want) in [
            (ContextEvent::Open, 0),
            (ContextEvent::Flush, 1),
            (ContextEvent::Close, 2),
        ] {
            assert_eq!(
                encode_context_event(event, 99, &mut buf),
                Ok(CONTEXT_EVENT_SIZE)
            );
            // The kind word on the wire: 2, 3, 4 (docs/protocol.md).
            assert_eq!(get_u32(&buf, 4), Ok(2 + want));
            let got = match decode(&buf).unwrap() {
                Message::ContextOpen { ctx_id: 99 } => 0,
                Message::ContextFlush { ctx_id: 99 } => 1,
                Message::ContextClose { ctx_id: 99 } => 2,
                m => panic!("{m:?}"),
            };
            assert_eq!(got, want);
        }
        put_u32(&mut buf, 4, 5).unwrap();
        assert_eq!(decode(&buf).map(|_| ()), Err(WireError::BadKind(5)));
        assert_eq!(
            encode_context_event(ContextEvent::Open, 1, &mut buf[..10]),
            Err(WireError::NoSpace)
        );
    }

    #[test]
    fn ioctl_payloads_round_trip() {
        let h = Hello {
            version: VERSION,
            max_message_size: 65536,
            job_timeout_ms: 1000,
        };
        assert_eq!(Hello::decode(&h.encode()), Ok(h));
        let c = Completion {
            job_id: u64::MAX - 1,
            ctx_id: 3,
            status: Status::DecodeError,
            capture_bytesused: 77,
        };
        assert_eq!(Completion::decode(&c.encode()), Ok(c));
        // The status word on the wire: 0, 1, 2, 3 (docs/protocol.md).
        for (status, wire) in [
            (Status::Ok, 0),
            (Status::DecodeError, 1),
            (Status::Unsupported, 2),
            (Status::InternalError, 3),
        ] {
            let b = Completion { status, ..c }.encode();
            assert_eq!(get_u32(&b, 12), Ok(wire));
            assert_eq!(Status::try_from(wire), Ok(status));
        }
        let mut bad = c.encode();
        bad[12] = 9;
        assert_eq!(Completion::decode(&bad), Err(WireError::BadStatus(9)));
        let mut bad = c.encode();
        bad[31] = 1;
        assert_eq!(Completion::decode(&bad), Err(WireError::Reserved));
        let mut bad = h.encode();
        bad[20] = 1;
        assert_eq!(Hello::decode(&bad), Err(WireError::Reserved));
    }

    #[test]
    fn fds_are_patched_in_place() {
        let mut buf = [0u8; 512];
        let n = encode(&header(), &[], &mut buf).unwrap();
        set_job_fds(&mut buf[..n], 11, -1).unwrap();
        let Message::Job(j) = decode(&buf[..n]).unwrap() else {
            panic!()
        };
        assert_eq!((j.header.output.fd, j.header.capture.fd), (11, -1));
        assert_eq!(j.header.output.index, header().output.index);
        let mut ev = [0u8; CONTEXT_EVENT_SIZE];
        encode_context_event(ContextEvent::Open, 1, &mut ev).unwrap();
        assert!(set_job_fds(&mut ev, 1, 1).is_err());
    }

    #[test]
    fn ioctl_numbers() {
        // _IOWR(0xda, 1, 32 bytes) and _IOW(0xda, 2, 32 bytes) with the generic encoding.
        assert_eq!(IOC_HELLO, 0xc020_da01);
        assert_eq!(IOC_COMPLETE, 0x4020_da02);
    }

    #[test]
    fn malformed_messages_are_rejected() {
        let mut buf = [0u8; 512];
        let n = encode(&header(), &[(1, 1, &[7u8; 10])], &mut buf).unwrap();
        let ok = buf;
        let with = |f: &dyn Fn(&mut [u8])| {
            let mut b = ok;
            f(&mut b);
            decode(&b[..n]).map(|_| ())
        };
        assert_eq!(decode(&[]).map(|_| ()), Err(WireError::Truncated));
        assert_eq!(decode(&ok[..n - 1]).map(|_| ()), Err(WireError::Truncated));
        assert_eq!(with(&|b| b[0] ^= 1), Err(WireError::BadMagic(MAGIC ^ 1)));
        assert_eq!(with(&|b| b[4] = 9), Err(WireError::BadKind(9)));
        assert_eq!(with(&|b| b[12] = 1), Err(WireError::Reserved));
        // Size smaller than the fixed part, size larger than the buffer.
        assert_eq!(
            with(&|b| put_u32(b, 8, 100).unwrap()),
            Err(WireError::BadSize(100))
        );
        assert_eq!(
            with(&|b| put_u32(b, 8, n as u32 + 8).unwrap()),
            Err(WireError::Truncated)
        );
        // Unknown codec.
        assert_eq!(
            with(&|b| put_u32(b, 28, PIX_FMT_NV12).unwrap()),
            Err(WireError::BadCodec(PIX_FMT_NV12))
        );
        // Control count beyond the limit or beyond the bytes.
        assert_eq!(
            with(&|b| put_u32(b, 36, 17).unwrap()),
            Err(WireError::TooManyControls(17))
        );
        assert_eq!(
            with(&|b| put_u32(b, 36, 2).unwrap()),
            Err(WireError::Truncated)
        );
        assert_eq!(
            with(&|b| put_u32(b, 36, 0).unwrap()),
            Err(WireError::BadSize(n as u32))
        );
        // A control whose size runs past the message, or is huge.
        assert_eq!(
            with(&|b| put_u32(b, JOB_FIXED_SIZE + 4, 200).unwrap()),
            Err(WireError::Truncated)
        );
        assert_eq!(
            with(&|b| put_u32(b, JOB_FIXED_SIZE + 4, u32::MAX).unwrap()),
            Err(WireError::ControlTooLarge(u32::MAX))
        );
        // OUTPUT bytesused beyond its length; picture larger than the CAPTURE buffer.
        assert_eq!(
            with(&|b| put_u32(b, 56 + 16, (1 << 20) + 1).unwrap()),
            Err(WireError::BadBuffer)
        );
        assert_eq!(
            with(&|b| put_u32(b, 88 + 12, 100).unwrap()),
            Err(WireError::BadBuffer)
        );
        // Rows that would run past the chroma plane or the picture.
        assert_eq!(
            with(&|b| put_u32(b, 120 + 8, 4000).unwrap()),
            Err(WireError::BadBuffer)
        );
        assert_eq!(
            with(&|b| put_u32(b, 120 + 12, 100).unwrap()),
            Err(WireError::BadBuffer)
        );
        assert_eq!(
            with(&|b| put_u32(b, 120, 0).unwrap()),
            Err(WireError::BadBuffer)
        );
        // Context events must have exactly their size.
        let mut ev = [0u8; CONTEXT_EVENT_SIZE + 8];
        encode_context_event(ContextEvent::Open, 1, &mut ev).unwrap();
        put_u32(&mut ev, 8, CONTEXT_EVENT_SIZE as u32 + 8).unwrap();
        assert_eq!(
            decode(&ev).map(|_| ()),
            Err(WireError::BadSize(CONTEXT_EVENT_SIZE as u32 + 8))
        );
    }

    #[test]
    fn encoder_limits() {
        let mut small = [0u8; JOB_FIXED_SIZE - 1];
        assert!(matches!(
            JobEncoder::new(&mut small, &header()),
            Err(WireError::NoSpace)
        ));
        let mut buf = [0u8; 4096];
        let mut e = JobEncoder::new(&mut buf, &header()).unwrap();
        assert_eq!(
            e.control(1, 1, MAX_CONTROL_SIZE + 1).err(),
            Some(WireError::ControlTooLarge(MAX_CONTROL_SIZE as u32 + 1))
        );
        assert_eq!(e.control(1, 1, 4096).err(), Some(WireError::NoSpace));
        for _ in 0..MAX_CONTROLS {
            e.control(1, 1, 8).unwrap();
        }
        assert_eq!(
            e.control(1, 1, 8).err(),
            Some(WireError::TooManyControls(MAX_CONTROLS as u32 + 1))
        );
        let n = e.finish().unwrap();
        let Message::Job(j) = decode(&buf[..n]).unwrap() else {
            panic!()
        };
        assert_eq!(j.controls.count(), MAX_CONTROLS);
    }

    #[test]
    fn picture_format_check() {
        let p = picture(BitDepth::Ten, 201, 209);
        assert_eq!(p.check(p.sizeimage), Ok(()));
        assert_eq!(p.check(p.sizeimage - 1), Err(WireError::BadBuffer));
        let odd = PictureFormat {
            height: 3,
            chroma_offset: p.bytesperline * 3,
            sizeimage: p.bytesperline * 5,
            ..p
        };
        assert_eq!(odd.check(u32::MAX), Ok(()));
        let short = PictureFormat {
            sizeimage: p.bytesperline * 4 + p.bytesperline - 1,
            ..odd
        };
        assert_eq!(short.check(u32::MAX), Err(WireError::BadBuffer));
        let narrow = PictureFormat {
            bytesperline: 201,
            ..p
        };
        assert_eq!(narrow.check(u32::MAX), Err(WireError::BadBuffer));
    }
}
