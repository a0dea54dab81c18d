// SPDX-License-Identifier: GPL-2.0
//! The library's error type.

use std::os::fd::AsFd;
use std::os::raw::c_int;
use std::path::PathBuf;

use crate::errno::Errno;
use crate::sys::PlainIoctl;

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

/// An open device file (a video or media node, or a media request) and the name its errors
/// carry.
#[derive(Debug)]
pub struct Node {
    fd: std::os::fd::OwnedFd,
    path: PathBuf,
}

impl Node {
    /// Opens a device node read-write (and non-blocking with `nonblock`).
    pub(crate) fn open(path: impl AsRef<std::path::Path>, nonblock: bool) -> Result<Node> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = path.as_ref().to_path_buf();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(if nonblock { libc::O_NONBLOCK } else { 0 })
            .open(&path)
            .map_err(|source| Error::Open {
                path: path.clone(),
                source,
            })?;
        Ok(Node::new(file.into(), path))
    }

    /// `fd`, named `path` in errors.
    pub(crate) fn new(fd: std::os::fd::OwnedFd, path: PathBuf) -> Node {
        Node { fd, path }
    }

    /// The device node (or the name of the request).
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Issues `ioctl` with `arg` on this node (errors name the ioctl and the node).
    pub(crate) fn call<T>(&self, ioctl: PlainIoctl<T>, arg: &mut T) -> Result<c_int> {
        ioctl
            .call(self.fd.as_fd(), arg)
            .map_err(self.err(ioctl.name()))
    }

    /// Issues `ioctl` with a zeroed argument and returns what the kernel filled in.
    pub(crate) fn get<T: Default>(&self, ioctl: PlainIoctl<T>) -> Result<T> {
        let mut arg = T::default();
        self.call(ioctl, &mut arg)?;
        Ok(arg)
    }

    /// The error of `ioctl` failing with an errno on this node.
    pub(crate) fn err(&self, ioctl: &'static str) -> impl FnOnce(Errno) -> Error + '_ {
        move |errno| Error::Ioctl {
            ioctl,
            path: self.path.clone(),
            errno,
        }
    }
}

impl std::os::fd::AsFd for Node {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// `AsFd` and `path()` of a type that wraps a [`Node`] in its field `node`.
macro_rules! wraps_node {
    ($t:ty) => {
        impl std::os::fd::AsFd for $t {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                self.node.as_fd()
            }
        }

        impl $t {
            /// The device node (or the name of the request).
            pub fn path(&self) -> &std::path::Path {
                self.node.path()
            }
        }
    };
}
pub(crate) use wraps_node;

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
