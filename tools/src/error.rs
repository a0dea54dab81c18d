// SPDX-License-Identifier: GPL-2.0
//! The library's error type.

use std::path::PathBuf;

use crate::errno::Errno;

/// Errors of the device wrappers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A device node could not be opened.
    #[error("cannot open {}: {source}", path.display())]
    Open {
        /// The device node.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An ioctl failed.
    #[error("{ioctl} on {}: {errno}", path.display())]
    Ioctl {
        /// The ioctl's name (`"VIDIOC_QBUF"`).
        ioctl: &'static str,
        /// The device node (or request) it was issued on.
        path: PathBuf,
        /// The error the kernel returned.
        errno: Errno,
    },
    /// `poll()` failed.
    #[error("poll on {}: {errno}", path.display())]
    Poll {
        /// The device node (or request) polled.
        path: PathBuf,
        /// The error the kernel returned.
        errno: Errno,
    },
    /// The device reports a compound control payload size different from the uAPI struct this
    /// tool was built with.
    #[error(
        "control {id:#010x}: the device says its payload is {device} bytes, \
         the 6.12 uAPI struct is {ours} bytes"
    )]
    PayloadSize {
        /// The control ID.
        id: u32,
        /// `elem_size` from `VIDIOC_QUERY_EXT_CTRL`.
        device: u32,
        /// `size_of` of the Rust struct.
        ours: usize,
    },
    /// The device answered with something that does not fit the uAPI contract.
    #[error("{}: {what}", path.display())]
    Unexpected {
        /// The device node.
        path: PathBuf,
        /// What was wrong.
        what: String,
    },
}

impl Error {
    /// The errno of a failed ioctl or poll, if that is what this error is.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Ioctl { errno, .. } | Error::Poll { errno, .. } => Some(*errno),
            Error::Open { source, .. } => source.raw_os_error().map(Errno::from_raw),
            Error::PayloadSize { .. } | Error::Unexpected { .. } => None,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
