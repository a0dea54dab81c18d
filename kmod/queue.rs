// SPDX-License-Identifier: GPL-2.0
//! What daedalus decides about its videobuf2 queues, its requests and the start of its decode
//! jobs: [`QueueOps`], [`RequestOps`] and [`RunOps`] for [`Daedalus`]. The mechanics (the C
//! tables, returning buffers, completing requests, the m2m calls) are the layer's
//! (`media::vb2`, `media::request`, `media::m2m`).
//!
//! Both queues use dma-contig memory, so the daemon can map every buffer through its dma-buf.
//! OUTPUT requires requests (a stateless decoder cannot decode a buffer without its controls)
//! and, for H.264, supports `V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF` (slice-based decoding, fields).

use crate::bufmap::BufMap;
use crate::device::Daedalus;
use crate::media::m2m::{DeviceRun, RunOps};
use crate::media::prelude::*;
use crate::media::request::{Request, RequestOps};
use crate::media::v4l2::file::LockedFile;
use crate::media::v4l2::format::{BufType, Field};
use crate::media::vb2::{OutBuf, PrepareBuf, QueueOps};
use crate::video::VideoFile;
use crate::wire;

impl QueueOps for Daedalus {
    fn queue_setup(file: &LockedFile<'_, Self>, ty: BufType) -> Result<u32> {
        // The device lock is held (REQBUFS / CREATE_BUFS), so these are the ioctls' formats.
        let (coded, capture) = file.data().formats();
        Ok(match ty {
            BufType::VideoOutputMplane => coded.sizeimage,
            BufType::VideoCaptureMplane => capture.layout.sizeimage,
        })
    }

    fn buf_init(data: &BufMap) {
        data.init();
    }

    /// Counted in the device's buffer memory (sysfs, `daedalus status`).
    fn buf_memory_attached(file: &VideoFile, ty: BufType, bytes: u32) {
        file.device().data().jobs.buffers().attached(ty, bytes);
    }

    fn buf_memory_released(file: &VideoFile, ty: BufType, bytes: u32) {
        file.device().data().jobs.buffers().released(ty, bytes);
    }

    fn buf_out_validate(buf: &mut OutBuf<'_, BufMap>) -> Result {
        buf.set_field(Field::None);
        Ok(())
    }

    fn buf_prepare(file: &LockedFile<'_, Self>, buf: &mut PrepareBuf<'_, BufMap>) -> Result {
        let b = buf.buf();
        let plane = b.plane0();
        let plane_size = if b.num_planes() >= 1 { plane.length } else { 0 };
        match buf.buf_type() {
            // The payload is what the client wrote; it must fit in the plane.
            BufType::VideoOutputMplane => {
                if plane.bytesused > plane_size {
                    Err(code::EINVAL)
                } else {
                    Ok(())
                }
            }
            BufType::VideoCaptureMplane => {
                let need = file.data().formats().1.layout.sizeimage;
                if plane_size < need {
                    pr_warn!("CAPTURE buffer of {} bytes, {} needed\n", plane_size, need);
                    Err(code::EINVAL)
                } else {
                    buf.set_bytesused(need);
                    Ok(())
                }
            }
        }
    }

    /// The context's jobs end: queued ones at once, those with the daemon when it answers or
    /// times out. (The layer then returns the buffers still queued, with errors.)
    fn stop_streaming(file: &LockedFile<'_, Self>, _ty: BufType) {
        file.device().data().jobs.cancel_context(file);
    }

    /// Tells the daemon to drop the context's decoding state.
    fn streaming_stopped(file: &LockedFile<'_, Self>, _ty: BufType) {
        file.device()
            .data()
            .jobs
            .event(wire::ContextEvent::Flush, file.data().id);
    }
}

impl RequestOps for Daedalus {
    /// A request must carry exactly one OUTPUT buffer and the codec's per-frame control.
    fn req_validate(req: &Request<'_, Self>) -> Result {
        let Some(file) = req.owner() else {
            pr_warn!("request without a buffer\n");
            return Err(code::ENOENT);
        };
        match req.buffer_count() {
            0 => return Err(code::ENOENT),
            1 => {}
            _ => {
                pr_warn!("request with more than one buffer\n");
                return Err(code::EINVAL);
            }
        }
        let Some(ctrls) = req.ctrls(file) else {
            pr_warn!("request without controls\n");
            return Err(code::ENOENT);
        };
        let id = file.data().codec().frame_control();
        let found = ctrls.has(id);
        drop(ctrls);
        if !found {
            pr_warn!("request without control {:#x}\n", id);
            return Err(code::ENOENT);
        }
        Ok(())
    }
}

impl RunOps for Daedalus {
    /// The next OUTPUT buffer of a context and its CAPTURE buffer become a decode job for the
    /// daemon ([`crate::job`]).
    ///
    /// The m2m job finishes when this returns, so other contexts — and the next frame or slice
    /// of this one — are not held up while the daemon decodes; the layer keeps a held CAPTURE
    /// buffer (H.264 slices, see [`crate::video::holds_capture`]) until its picture is complete.
    fn device_run(run: &mut DeviceRun<'_, Self>) {
        // Applies the request's controls over the current ones: the job carries the full
        // control state, not only what this request set. A failure here leaves the values the
        // request validation accepted, so it is not fatal.
        let _ = run.apply_request_controls();
        if let Some(job) = run.start() {
            let dev = run.file().device();
            dev.data().jobs.submit(dev.watchdog(), job);
        }
    }
}
