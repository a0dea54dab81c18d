// SPDX-License-Identifier: GPL-2.0
//! Helpers for the unit tests.

/// A memfd of `len` bytes, standing in for a dma-buf; the caller owns the fd.
pub fn memfd(len: usize) -> i32 {
    // SAFETY: memfd_create with a NUL-terminated name; the result is checked.
    let fd = unsafe { libc::memfd_create(c"daedalus-test".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: resizes the new memfd.
    assert_eq!(unsafe { libc::ftruncate(fd, len as libc::off_t) }, 0);
    fd
}
