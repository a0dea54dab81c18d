// SPDX-License-Identifier: GPL-2.0
//! Safe wrappers around a media controller device (`/dev/mediaN`) and its requests
//! (`MEDIA_IOC_REQUEST_ALLOC`, `MEDIA_REQUEST_IOC_QUEUE` / `_REINIT`, `poll(POLLPRI)`).

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::raw::c_int;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::errno::Errno;
use crate::error::{wraps_node, Error, Node, Result};
use crate::sys::*;

/// The answer of `MEDIA_IOC_DEVICE_INFO`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaDeviceInfo {
    /// Driver name.
    pub driver: String,
    /// Device model.
    pub model: String,
    /// Serial number (often empty).
    pub serial: String,
    /// Location of the device; the same string as the video node's `bus_info`.
    pub bus_info: String,
    /// Media API version (`KERNEL_VERSION()` encoding).
    pub media_version: u32,
    /// Hardware revision.
    pub hw_revision: u32,
    /// Driver version (`KERNEL_VERSION()` encoding).
    pub driver_version: u32,
}

/// An open media controller device node.
#[derive(Debug)]
pub struct MediaDevice {
    node: Node,
}

wraps_node!(MediaDevice);

impl MediaDevice {
    /// Opens a media device node (read-write).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Ok(MediaDevice {
            node: Node::open(path, false)?,
        })
    }

    /// `MEDIA_IOC_DEVICE_INFO`.
    pub fn device_info(&self) -> Result<MediaDeviceInfo> {
        let info = self.node.get(MEDIA_IOC_DEVICE_INFO)?;
        Ok(MediaDeviceInfo {
            driver: c_str_field(&info.driver),
            model: c_str_field(&info.model),
            serial: c_str_field(&info.serial),
            bus_info: c_str_field(&info.bus_info),
            media_version: info.media_version,
            hw_revision: info.hw_revision,
            driver_version: info.driver_version,
        })
    }

    /// `MEDIA_IOC_REQUEST_ALLOC`: a new, empty request.
    pub fn alloc_request(&self) -> Result<Request> {
        let mut fd: c_int = -1;
        self.node.call(MEDIA_IOC_REQUEST_ALLOC, &mut fd)?;
        if fd < 0 {
            return Err(Error::Unexpected {
                path: self.path().to_path_buf(),
                what: format!("MEDIA_IOC_REQUEST_ALLOC succeeded with fd {fd}"),
            });
        }
        let path = PathBuf::from(format!("{} request fd {fd}", self.path().display()));
        // SAFETY: on success the kernel installed a new request descriptor in `fd` that nothing
        // else owns (it was just created for this call), so it is ours to own and close.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Request {
            node: Node::new(fd, path),
        })
    }
}

/// The state of a request after waiting for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestWait {
    /// The request completed (`POLLPRI`).
    Completed,
    /// The time-out passed first.
    TimedOut,
    /// The request is not queued (`POLLERR`: idle, e.g. after a failed queue).
    NotQueued,
}

/// A media request, owned by its file descriptor (closing it releases the request).
#[derive(Debug)]
pub struct Request {
    /// Named `/dev/media0 request fd 5` in errors.
    node: Node,
}

wraps_node!(Request);

impl Request {
    fn err(&self, ioctl: &'static str) -> impl FnOnce(Errno) -> Error + '_ {
        self.node.err(ioctl)
    }

    /// `MEDIA_REQUEST_IOC_QUEUE`: validates the request and queues it to the driver.
    pub fn queue(&self) -> Result<()> {
        ioctl_none(self.as_fd(), MEDIA_REQUEST_IOC_QUEUE)
            .map_err(self.err("MEDIA_REQUEST_IOC_QUEUE"))?;
        Ok(())
    }

    /// `MEDIA_REQUEST_IOC_REINIT`: drops everything bound to an idle or completed request so it
    /// can be reused.
    pub fn reinit(&self) -> Result<()> {
        ioctl_none(self.as_fd(), MEDIA_REQUEST_IOC_REINIT)
            .map_err(self.err("MEDIA_REQUEST_IOC_REINIT"))?;
        Ok(())
    }

    /// Waits up to `timeout` for the request to complete (`poll(POLLPRI)`).
    pub fn wait(&self, timeout: Duration) -> Result<RequestWait> {
        let revents =
            poll_one(self.as_fd(), PollFlags::POLLPRI, timeout).map_err(|errno| Error::Poll {
                path: self.path().to_path_buf(),
                errno,
            })?;
        Ok(if revents.contains(PollFlags::POLLPRI) {
            RequestWait::Completed
        } else if revents.contains(PollFlags::POLLERR) {
            RequestWait::NotQueued
        } else {
            RequestWait::TimedOut
        })
    }
}
