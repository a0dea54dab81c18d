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

impl MediaDevice {
    /// The device nodes (`major`, `minor`) of the V4L2 video interfaces of the media graph
    /// (`MEDIA_IOC_G_TOPOLOGY`, interfaces of type `MEDIA_INTF_T_V4L_VIDEO`).
    pub fn video_interfaces(&self) -> Result<Vec<(u32, u32)>> {
        // The graph may change between the counting call and the copying one (ENOSPC): retry.
        for _ in 0..4 {
            let mut topo = media_v2_topology::default();
            // SAFETY: `_IOWR(media_v2_topology)` on a valid, writable struct whose `ptr_*` are
            // all 0: the kernel only counts.
            unsafe { ioctl(self.as_fd(), MEDIA_IOC_G_TOPOLOGY, &mut topo) }
                .map_err(self.node.err("MEDIA_IOC_G_TOPOLOGY"))?;
            let mut interfaces = vec![media_v2_interface::default(); topo.num_interfaces as usize];
            let mut topo = media_v2_topology {
                num_interfaces: topo.num_interfaces,
                ptr_interfaces: interfaces.as_mut_ptr() as u64,
                ..Default::default()
            };
            // SAFETY: as above; the kernel writes at most `num_interfaces` entries to
            // `ptr_interfaces`, which points to that many live, writable `media_v2_interface`s
            // (and fails with ENOSPC rather than write more). The other pointers are 0.
            match unsafe { ioctl(self.as_fd(), MEDIA_IOC_G_TOPOLOGY, &mut topo) } {
                Ok(_) => {}
                Err(Errno::ENOSPC) => continue,
                Err(errno) => return Err(self.node.err("MEDIA_IOC_G_TOPOLOGY")(errno)),
            }
            interfaces.truncate(topo.num_interfaces as usize);
            return Ok(interfaces
                .iter()
                .filter(|i| i.intf_type == MEDIA_INTF_T_V4L_VIDEO)
                // SAFETY: V4L interfaces are device nodes: the kernel fills `devnode`, two
                // integers (any bits are valid).
                .map(|i| unsafe {
                    (
                        i.__bindgen_anon_1.devnode.major,
                        i.__bindgen_anon_1.devnode.minor,
                    )
                })
                .collect());
        }
        Err(Error::Unexpected {
            path: self.path().to_path_buf(),
            what: "the media graph kept changing during MEDIA_IOC_G_TOPOLOGY".into(),
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
