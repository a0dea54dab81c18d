// SPDX-License-Identifier: GPL-2.0
//! dma-buf mappings and their per-context cache.
//!
//! A job names each of its buffers by (queue, vb2 index, generation). The first time the module
//! sends a buffer it installs a new dma-buf fd in the daemon's table: the daemon maps it once
//! (`MAP_SHARED`, the plane's `length`) and keeps the mapping until the buffer changes (a new fd
//! for the index) or the context closes. Later jobs send fd `-1` and use the cached mapping.
//!
//! The fd is kept open next to its mapping (and closed with it): `DMA_BUF_IOCTL_SYNC`, which
//! brackets every CPU access, is an ioctl on the dma-buf fd. The mapping holds a reference to the
//! dma-buf anyway, so keeping the fd pins no extra memory.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};
use nix::unistd::{lseek, Whence};

use daedalus_proto::wire::BufferDesc;

use crate::avbuf::OutputBuffer;
use crate::sys;

/// Highest number of buffers per queue (`VIDEO_MAX_FRAME`).
pub const MAX_BUFFERS: usize = 64;

static MMAP_CALLS: AtomicU64 = AtomicU64::new(0);

/// How many `mmap()` calls this process made for buffers so far (for the steady-state checks).
pub fn mmap_calls() -> u64 {
    MMAP_CALLS.load(Ordering::Relaxed)
}

/// The two queues of a context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queue {
    /// Bitstream buffers.
    Output,
    /// Picture buffers.
    Capture,
}

impl std::fmt::Display for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Queue::Output => "OUTPUT",
            Queue::Capture => "CAPTURE",
        })
    }
}

/// Why a job's buffer cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// The index is beyond `VIDEO_MAX_FRAME`.
    #[error("{queue} buffer index {index} out of range (max {MAX_BUFFERS})")]
    BadIndex {
        /// Queue of the buffer.
        queue: Queue,
        /// The index.
        index: u32,
    },
    /// An fd below -1.
    #[error("{queue} buffer {index}: invalid fd {fd}")]
    BadFd {
        /// Queue of the buffer.
        queue: Queue,
        /// The index.
        index: u32,
        /// The fd.
        fd: i32,
    },
    /// fd -1 but nothing cached for the index.
    #[error(
        "{queue} buffer {index} generation {generation}: fd -1 but the buffer was never mapped"
    )]
    Unknown {
        /// Queue of the buffer.
        queue: Queue,
        /// The index.
        index: u32,
        /// The generation the job names.
        generation: u32,
    },
    /// fd -1 but the cached mapping is of another generation.
    #[error(
        "{queue} buffer {index}: fd -1 for generation {generation}, but generation {cached} is mapped"
    )]
    Stale {
        /// Queue of the buffer.
        queue: Queue,
        /// The index.
        index: u32,
        /// The generation the job names.
        generation: u32,
        /// The generation that is mapped.
        cached: u32,
    },
    /// The job says the buffer is larger than what was mapped for it.
    #[error("{queue} buffer {index}: length {length} but {mapped} bytes are mapped")]
    Grown {
        /// Queue of the buffer.
        queue: Queue,
        /// The index.
        index: u32,
        /// The length in the job.
        length: u32,
        /// The mapped size.
        mapped: usize,
    },
    /// The dma-buf is smaller than the length the job gives (mapping it would fault).
    #[error("dma-buf of {size} bytes is smaller than the buffer length {length}")]
    TooSmall {
        /// Size of the dma-buf.
        size: u64,
        /// The length in the job.
        length: u32,
    },
    /// `length` is 0.
    #[error("buffer length is 0")]
    Empty,
    /// `mmap()` failed.
    #[error("mmap of {length} bytes failed: {source}")]
    Mmap {
        /// The length.
        length: u32,
        /// The error.
        source: io::Error,
    },
    /// FFmpeg could not wrap the mapping.
    #[error("out of memory wrapping the mapping for FFmpeg")]
    NoMemory,
}

/// Whether a mapping must be writable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read and write; failing if the fd does not allow writing.
    ReadWrite,
    /// Read and write if the fd allows it, else read-only.
    PreferReadWrite,
}

nix::ioctl_write_ptr_bad!(
    /// `DMA_BUF_IOCTL_SYNC`: starts or ends CPU access to a dma-buf.
    dma_buf_sync,
    sys::DMA_BUF_IOCTL_SYNC,
    sys::bindings::dma_buf_sync
);

/// One `MAP_SHARED` mapping of a dma-buf, unmapped (and its fd closed) on drop.
pub struct Mapping {
    /// A raw mapping: the daemon hands its memory to FFmpeg (an `AVBuffer`) and to the CPU
    /// access brackets, so aliasing is managed here, not by slices memmap2 would lend.
    map: MmapRaw,
    writable: bool,
    fd: OwnedFd,
    /// Cleared after `DMA_BUF_IOCTL_SYNC` answered `ENOTTY` (a memfd in tests, not a dma-buf).
    sync: AtomicBool,
}

// SAFETY: a mapping is plain shared memory plus an fd; nothing in it is tied to a thread. The
// CPU-access methods take `&mut self` where they write through the mapping.
unsafe impl Send for Mapping {}
// SAFETY: the `&self` methods only read the memory or issue ioctls on the fd.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps the first `length` bytes of `fd` (the mapping owns the fd from now on).
    pub fn new(fd: OwnedFd, length: u32, access: Access) -> Result<Mapping, MapError> {
        if length == 0 {
            return Err(MapError::Empty);
        }
        // A mapping past the end of the object raises SIGBUS on access: refuse it up front.
        // dma-bufs and memfds both report their size through lseek(SEEK_END).
        if let Ok(size) = lseek(fd.as_raw_fd(), 0, Whence::SeekEnd) {
            if (size as u64) < u64::from(length) {
                return Err(MapError::TooSmall {
                    size: size as u64,
                    length,
                });
            }
        }
        let (map, writable) = match Self::mmap(&fd, length, true) {
            Ok(m) => (m, true),
            Err(e)
                if access == Access::PreferReadWrite
                    && matches!(
                        e.raw_os_error().map(Errno::from_raw),
                        Some(Errno::EACCES | Errno::EPERM)
                    ) =>
            {
                let m = Self::mmap(&fd, length, false)
                    .map_err(|source| MapError::Mmap { length, source })?;
                (m, false)
            }
            Err(e) => return Err(MapError::Mmap { length, source: e }),
        };
        Ok(Mapping {
            map,
            writable,
            fd,
            sync: AtomicBool::new(true),
        })
    }

    fn mmap(fd: &OwnedFd, length: u32, writable: bool) -> Result<MmapRaw, io::Error> {
        MMAP_CALLS.fetch_add(1, Ordering::Relaxed);
        let mut options = MmapOptions::new();
        options.len(length as usize);
        if writable {
            options.map_raw(fd.as_raw_fd())
        } else {
            options.map_raw_read_only(fd.as_raw_fd())
        }
    }

    /// Size of the mapping.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Always false: mappings are never empty.
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// Whether the mapping may be written.
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// Start of the mapping.
    pub fn as_ptr(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }

    /// The mapped bytes.
    ///
    /// The buffer belongs to the driver while a job runs (V4L2 ownership rules), so nobody else
    /// writes it while the daemon reads it.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is live for `self.len()` bytes until `self` is dropped, and the
        // lifetime of the slice is tied to `&self`.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr(), self.map.len()) }
    }

    /// The mapped bytes, for writing (an empty slice if the mapping is read-only).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        if !self.writable {
            return &mut [];
        }
        // SAFETY: as `bytes`, and `&mut self` makes this the only live view in this process;
        // the mapping is writable.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_mut_ptr(), self.map.len()) }
    }

    /// Zeroes `len` bytes at `offset` (the padding FFmpeg reads past a packet). Returns false
    /// (and writes nothing) if the range is outside the mapping or the mapping is read-only.
    ///
    /// Takes `&self` because the mapping is shared with FFmpeg through an `AVBuffer`; the range
    /// written is past the packet data, which is the only part of the mapping anything borrows
    /// while this runs.
    pub fn zero(&self, offset: usize, len: usize) -> bool {
        let in_bounds = offset
            .checked_add(len)
            .is_some_and(|end| end <= self.map.len());
        if !self.writable || !in_bounds {
            return false;
        }
        // SAFETY: the range is inside a live writable mapping (checked above); no Rust reference
        // to these bytes exists while the context (the only user of the mapping) runs this.
        unsafe { std::ptr::write_bytes(self.map.as_mut_ptr().add(offset), 0, len) };
        true
    }

    /// Runs `f` on the mapped bytes for writing, bracketed by `DMA_BUF_IOCTL_SYNC` write
    /// access. `f` gets an empty slice if the mapping is read-only.
    ///
    /// What `f` wrote is then in memory, not only in this CPU's caches: the module's buffers are
    /// mapped cached (it declares its device DMA-coherent: only CPUs touch them), but a client
    /// may hand a picture to a device that reads memory without snooping the caches (a display
    /// importing the dma-buf), and vb2-dma-contig maps for importers without a CPU sync.
    pub fn write_with<R>(&mut self, f: impl FnOnce(&mut [u8]) -> R) -> R {
        self.sync_ioctl(sys::DMA_BUF_SYNC_START | sys::DMA_BUF_SYNC_WRITE);
        let r = f(self.bytes_mut());
        clean_to_point_of_coherency(self.bytes());
        self.sync_ioctl(sys::DMA_BUF_SYNC_END | sys::DMA_BUF_SYNC_WRITE);
        r
    }

    /// Starts CPU access (`DMA_BUF_IOCTL_SYNC`); access ends when the guard is dropped.
    /// `flags` is `DMA_BUF_SYNC_READ`, `_WRITE` or both.
    pub fn cpu_access(&self, flags: u64) -> CpuAccess<'_> {
        self.sync_ioctl(sys::DMA_BUF_SYNC_START | flags);
        CpuAccess { map: self, flags }
    }

    fn sync_ioctl(&self, flags: u64) {
        if !self.sync.load(Ordering::Relaxed) {
            return;
        }
        let arg = sys::bindings::dma_buf_sync { flags };
        loop {
            // SAFETY: DMA_BUF_IOCTL_SYNC reads one `struct dma_buf_sync`, which `arg` is.
            match unsafe { dma_buf_sync(self.fd.as_raw_fd(), &arg) } {
                Ok(_) => return,
                Err(Errno::EINTR | Errno::EAGAIN) => continue,
                // Not a dma-buf (a memfd standing in for one): nothing to synchronise.
                Err(Errno::ENOTTY) => {
                    self.sync.store(false, Ordering::Relaxed);
                    return;
                }
                Err(e) => {
                    log::warn!(
                        "DMA_BUF_IOCTL_SYNC({flags:#x}) failed: {e}; not syncing this buffer again"
                    );
                    self.sync.store(false, Ordering::Relaxed);
                    return;
                }
            }
        }
    }
}

/// Writes the data cache lines holding `bytes` back to memory (the point of coherency) on arm64,
/// where a non-snooping device may read them next (see [`Mapping::write_with`]). Linux lets user
/// space do this itself (SCTLR_EL1.UCI), which costs no system call; `DC CIVAC` (clean and
/// invalidate) rather than `DC CVAC` because the kernel itself substitutes it for `CVAC` on
/// cores with clean-cache errata (Cortex-A53). On x86 caches are coherent with every device:
/// nothing to do.
#[cfg(target_arch = "aarch64")]
fn clean_to_point_of_coherency(bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let ctr: u64;
    // SAFETY: reads CTR_EL0, which Linux lets EL0 read (or traps and emulates); no memory access.
    unsafe {
        std::arch::asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack, preserves_flags))
    };
    // DminLine (bits 19:16): log2 of the smallest data cache line, in 4-byte words.
    let line = 4usize << ((ctr >> 16) & 0xf);
    let end = bytes.as_ptr() as usize + bytes.len();
    let mut addr = bytes.as_ptr() as usize & !(line - 1);
    while addr < end {
        // SAFETY: `addr` is in a line that holds bytes of `bytes`, a live mapping of this
        // process (the line's start may precede `bytes` but not its page, which is mapped):
        // DC CIVAC writes the line back and drops it from the caches, leaving memory's contents
        // as they were. Linux enables it at EL0 (SCTLR_EL1.UCI).
        unsafe { std::arch::asm!("dc civac, {}", in(reg) addr, options(nostack, preserves_flags)) };
        addr += line;
    }
    // SAFETY: a barrier: the cache maintenance above completes before the job is answered.
    unsafe { std::arch::asm!("dsb sy", options(nostack, preserves_flags)) };
}

#[cfg(not(target_arch = "aarch64"))]
fn clean_to_point_of_coherency(_bytes: &[u8]) {}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping")
            .field("ptr", &self.map.as_ptr())
            .field("len", &self.map.len())
            .field("writable", &self.writable)
            .finish()
    }
}

/// CPU access to a mapping in progress; ends it on drop.
pub struct CpuAccess<'a> {
    map: &'a Mapping,
    flags: u64,
}

impl Drop for CpuAccess<'_> {
    fn drop(&mut self) {
        self.map.sync_ioctl(sys::DMA_BUF_SYNC_END | self.flags);
    }
}

struct Cached<T> {
    generation: u32,
    buf: T,
}

/// Cached buffers of one queue, by vb2 index.
struct Slots<T> {
    queue: Queue,
    slots: Vec<Option<Cached<T>>>,
}

impl<T> Slots<T> {
    fn new(queue: Queue) -> Self {
        Slots {
            queue,
            slots: (0..MAX_BUFFERS).map(|_| None).collect(),
        }
    }

    /// The buffer a job names: a new one from `desc.fd` (built by `make`), or the cached one.
    fn resolve(
        &mut self,
        desc: &BufferDesc,
        len_of: impl Fn(&T) -> usize,
        make: impl FnOnce(OwnedFd, u32) -> Result<T, MapError>,
    ) -> Result<&mut T, MapError> {
        let queue = self.queue;
        let index = desc.index;
        if desc.fd >= 0 {
            if fcntl(desc.fd, FcntlArg::F_GETFD).is_err() {
                return Err(MapError::BadFd {
                    queue,
                    index,
                    fd: desc.fd,
                });
            }
            // SAFETY: a non-negative fd in a job is a new fd the module installed in our table
            // for us to take over (checked open above); nothing else in the daemon knows or
            // owns it. Owning it first means it is closed on every error path below.
            let fd = unsafe { OwnedFd::from_raw_fd(desc.fd) };
            let slot = self
                .slots
                .get_mut(index as usize)
                .ok_or(MapError::BadIndex { queue, index })?;
            // The buffer behind the index changed: whatever was cached is stale either way.
            *slot = None;
            let buf = make(fd, desc.length)?;
            return Ok(&mut slot
                .insert(Cached {
                    generation: desc.generation,
                    buf,
                })
                .buf);
        }
        if desc.fd != -1 {
            return Err(MapError::BadFd {
                queue,
                index,
                fd: desc.fd,
            });
        }
        let slot = self
            .slots
            .get_mut(index as usize)
            .ok_or(MapError::BadIndex { queue, index })?;
        match slot {
            None => Err(MapError::Unknown {
                queue,
                index,
                generation: desc.generation,
            }),
            Some(c) if c.generation != desc.generation => Err(MapError::Stale {
                queue,
                index,
                generation: desc.generation,
                cached: c.generation,
            }),
            Some(c) if desc.length as usize > len_of(&c.buf) => Err(MapError::Grown {
                queue,
                index,
                length: desc.length,
                mapped: len_of(&c.buf),
            }),
            Some(c) => Ok(&mut c.buf),
        }
    }

    fn count(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = None);
    }
}

/// The mapped buffers of one context.
pub struct BufferCache {
    output: Slots<OutputBuffer>,
    capture: Slots<Mapping>,
}

impl Default for BufferCache {
    fn default() -> Self {
        Self::new()
    }
}

impl BufferCache {
    /// An empty cache (room for [`MAX_BUFFERS`] per queue, allocated now).
    pub fn new() -> Self {
        BufferCache {
            output: Slots::new(Queue::Output),
            capture: Slots::new(Queue::Capture),
        }
    }

    /// Resolves both buffers of a job. Both are always attempted, so that a new fd is taken
    /// over (mapped, or closed on error) even when the other buffer fails.
    pub fn resolve(
        &mut self,
        output: &BufferDesc,
        capture: &BufferDesc,
    ) -> (
        Result<&mut OutputBuffer, MapError>,
        Result<&mut Mapping, MapError>,
    ) {
        let out = self.output.resolve(
            output,
            |b| b.mapping().len(),
            |fd, len| OutputBuffer::new(Mapping::new(fd, len, Access::PreferReadWrite)?),
        );
        let cap = self.capture.resolve(capture, Mapping::len, |fd, len| {
            Mapping::new(fd, len, Access::ReadWrite)
        });
        (out, cap)
    }

    /// Number of cached mappings (OUTPUT, CAPTURE).
    pub fn counts(&self) -> (usize, usize) {
        (self.output.count(), self.capture.count())
    }

    /// Drops every mapping.
    pub fn clear(&mut self) {
        self.output.clear();
        self.capture.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::memfd;

    fn desc(fd: i32, index: u32, generation: u32, length: u32) -> BufferDesc {
        BufferDesc {
            fd,
            index,
            generation,
            length,
            bytesused: 0,
            data_offset: 0,
        }
    }

    #[test]
    fn map_cache_and_replace() {
        let mut c = BufferCache::new();
        let o = memfd(4096);
        let k = memfd(8192);
        let (out, cap) = c.resolve(&desc(o, 0, 1, 4096), &desc(k, 3, 7, 8192));
        assert!(out.unwrap().mapping().writable());
        let cap = cap.unwrap();
        cap.bytes_mut()[100] = 42;
        assert_eq!(c.counts(), (1, 1));
        // Cached: fd -1 with the same generation.
        let (out, cap) = c.resolve(&desc(-1, 0, 1, 4096), &desc(-1, 3, 7, 8192));
        assert!(out.is_ok());
        assert_eq!(cap.unwrap().bytes()[100], 42);
        // Another generation without a new fd, or an index never mapped.
        let (out, cap) = c.resolve(&desc(-1, 0, 2, 4096), &desc(-1, 4, 7, 8192));
        assert!(matches!(out, Err(MapError::Stale { cached: 1, .. })));
        assert!(matches!(cap, Err(MapError::Unknown { index: 4, .. })));
        // A new fd for the index replaces the mapping.
        let k2 = memfd(8192);
        let (_, cap) = c.resolve(&desc(-1, 0, 1, 4096), &desc(k2, 3, 8, 8192));
        assert_eq!(cap.unwrap().bytes()[100], 0);
        let (_, cap) = c.resolve(&desc(-1, 0, 1, 4096), &desc(-1, 3, 7, 8192));
        assert!(matches!(cap, Err(MapError::Stale { cached: 8, .. })));
        // A length beyond what was mapped.
        let (out, _) = c.resolve(&desc(-1, 0, 1, 4097), &desc(-1, 3, 8, 8192));
        assert!(matches!(out, Err(MapError::Grown { .. })));
        c.clear();
        assert_eq!(c.counts(), (0, 0));
    }

    #[test]
    fn bad_buffers_are_errors_and_fds_are_closed() {
        let mut c = BufferCache::new();
        // A buffer larger than its dma-buf, an index out of range, a bogus fd.
        let small = memfd(100);
        let far = memfd(4096);
        let (out, cap) = c.resolve(&desc(small, 0, 1, 4096), &desc(far, 64, 1, 4096));
        assert!(matches!(out, Err(MapError::TooSmall { size: 100, .. })));
        assert!(matches!(cap, Err(MapError::BadIndex { index: 64, .. })));
        for fd in [small, far] {
            // SAFETY: probing whether the fd is still open; fcntl(F_GETFD) touches no memory.
            assert_eq!(
                unsafe { libc::fcntl(fd, libc::F_GETFD) },
                -1,
                "fd {fd} leaked"
            );
        }
        let (out, cap) = c.resolve(&desc(-5, 0, 1, 4096), &desc(1 << 30, 0, 1, 4096));
        assert!(matches!(out, Err(MapError::BadFd { fd: -5, .. })));
        assert!(matches!(cap, Err(MapError::BadFd { .. })));
        let zero = memfd(4096);
        let (_, cap) = c.resolve(&desc(-1, 0, 1, 0), &desc(zero, 0, 1, 0));
        assert!(matches!(cap, Err(MapError::Empty)));
        assert_eq!(c.counts(), (0, 0));
    }

    #[test]
    fn read_only_output_falls_back() {
        let fd = memfd(4096);
        let path = format!("/proc/self/fd/{fd}");
        let ro = std::fs::File::open(path).unwrap();
        // SAFETY: closing the test's own memfd (the read-only reopen keeps the memory).
        unsafe { libc::close(fd) };
        let m = Mapping::new(OwnedFd::from(ro), 4096, Access::PreferReadWrite).unwrap();
        assert!(!m.writable());
        assert!(!m.zero(0, 64));
        let _sync = m.cpu_access(sys::DMA_BUF_SYNC_READ);
        assert_eq!(m.bytes().len(), 4096);
    }
}
