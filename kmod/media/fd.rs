// SPDX-License-Identifier: GPL-2.0
//! File descriptors handed to the daemon: [`FdReservation`] and [`DmaBuf`].

use core::marker::PhantomData;
use core::ptr::NonNull;

use super::bindings;
use super::kernel::{c_uint, Error, Result};

/// A reserved, not yet installed fd in the current task's file table.
///
/// # Invariants
///
/// `fd` came from `get_unused_fd_flags(O_CLOEXEC)` in the current task; it is either installed
/// ([`FdReservation::install`]) or released with `put_unused_fd` (drop), exactly once. Not
/// `Send`: the reservation belongs to the task's fd table.
pub(crate) struct FdReservation {
    fd: u32,
    _not_send: PhantomData<*mut ()>,
}

impl FdReservation {
    /// Reserves an fd (close-on-exec) in the current task.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: reserves a slot in the current task's fd table.
        let fd = unsafe { bindings::get_unused_fd_flags(bindings::O_CLOEXEC as c_uint) };
        if fd < 0 {
            return Err(Error::from_errno(fd));
        }
        // INVARIANT: reserved just above.
        Ok(FdReservation {
            fd: fd as u32,
            _not_send: PhantomData,
        })
    }

    /// The reserved fd number.
    pub(crate) fn fd(&self) -> i32 {
        self.fd as i32
    }

    /// Installs `buf`'s file at the reserved fd: the task's file table owns that reference now.
    pub(crate) fn install(self, buf: DmaBuf) {
        let this = core::mem::ManuallyDrop::new(self);
        let buf = core::mem::ManuallyDrop::new(buf);
        // SAFETY: `fd` is reserved and not installed (type invariant; `this` is not dropped, so it
        // is not released either); `buf` holds one reference to the dma-buf's file, which moves
        // into the table (`buf` is not dropped, so it is not put).
        unsafe { bindings::fd_install(this.fd, (*buf.0.as_ptr()).file) };
    }
}

impl Drop for FdReservation {
    fn drop(&mut self) {
        // SAFETY: reserved and not installed (type invariant).
        unsafe { bindings::put_unused_fd(self.fd) };
    }
}

/// One counted reference to a `struct dma_buf` (that is, to its file).
///
/// # Invariants
///
/// The value owns one reference to the dma-buf, put by drop (`dma_buf_put`) or moved into an fd
/// table by [`FdReservation::install`].
pub(crate) struct DmaBuf(NonNull<bindings::dma_buf>);

// SAFETY: a reference to a dma-buf may be put from any task.
unsafe impl Send for DmaBuf {}

impl DmaBuf {
    /// Takes ownership of a reference the caller holds on `buf`.
    ///
    /// # Safety
    ///
    /// The caller owns one reference to `buf` (e.g. from `get_dmabuf`), which moves into the
    /// returned value.
    pub(crate) unsafe fn from_owned(buf: NonNull<bindings::dma_buf>) -> Self {
        // INVARIANT: per the contract.
        DmaBuf(buf)
    }

    /// Takes a new reference on `buf` (`get_dma_buf`).
    ///
    /// # Safety
    ///
    /// `buf` is a live dma-buf for the duration of the call.
    pub(crate) unsafe fn get(buf: NonNull<bindings::dma_buf>) -> Self {
        // SAFETY: `buf` is live (contract).
        unsafe { bindings::daedalus_get_dma_buf(buf.as_ptr()) };
        // INVARIANT: the reference taken just above.
        DmaBuf(buf)
    }
}

impl Drop for DmaBuf {
    fn drop(&mut self) {
        // SAFETY: we own one reference (type invariant).
        unsafe { bindings::dma_buf_put(self.0.as_ptr()) };
    }
}
