// SPDX-License-Identifier: GPL-2.0
//! videobuf2 queues, request validation and decode jobs.
//!
//! Both queues use dma-contig memory, so the daemon can map every buffer through its dma-buf.
//! OUTPUT requires requests (a stateless decoder cannot decode a buffer without its controls)
//! and, for H.264, supports `V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF` (slice-based decoding, fields).

use core::mem::offset_of;

use crate::jobs::{self, Mode};
use crate::media::prelude::*;
use crate::media::raw::{
    self as bindings, media_request, media_request_object, vb2_buffer, vb2_queue, vb2_v4l2_buffer,
};
use crate::media::v4l2::format::BufType;
use crate::video::VideoFile;
use crate::wire;

pub(crate) static M2M_OPS: AssertSync<bindings::v4l2_m2m_ops> =
    AssertSync::new(bindings::v4l2_m2m_ops {
        device_run: Some(device_run),
        job_ready: None,
        job_abort: None,
    });

pub(crate) static MEDIA_OPS: AssertSync<bindings::media_device_ops> =
    AssertSync::new(bindings::media_device_ops {
        req_validate: Some(request_validate),
        req_queue: Some(bindings::v4l2_m2m_request_queue),
        // Remaining callbacks `None`.
        ..zeroed()
    });

pub(crate) static QUEUE_OPS: AssertSync<bindings::vb2_ops> = AssertSync::new(bindings::vb2_ops {
    queue_setup: Some(queue_setup),
    buf_init: Some(jobs::buf_init),
    buf_out_validate: Some(buf_out_validate),
    buf_prepare: Some(buf_prepare),
    buf_queue: Some(buf_queue),
    start_streaming: Some(start_streaming),
    stop_streaming: Some(stop_streaming),
    // Gone in 7.0, where vb2 drops `q->lock` itself while DQBUF blocks (media/compat.mk).
    #[cfg(daedalus_vb2_wait_ops)]
    wait_prepare: Some(bindings::vb2_ops_wait_prepare),
    #[cfg(daedalus_vb2_wait_ops)]
    wait_finish: Some(bindings::vb2_ops_wait_finish),
    buf_request_complete: Some(buf_request_complete),
    // Remaining callbacks `None`.
    ..zeroed()
});

fn is_output(ty: u32) -> bool {
    ty == bindings::V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE
}

/// The open file a queue belongs to.
///
/// # Safety
///
/// `q` is one of the two queues of a file (the layer's `queue_init` set its `drv_priv` to the
/// file).
unsafe fn ctx_of<'a>(q: *mut vb2_queue) -> &'a VideoFile {
    // SAFETY: per the contract; the file outlives its queues.
    unsafe { &*(*q).drv_priv.cast::<VideoFile>() }
}

/// The `vb2_v4l2_buffer` a `vb2_buffer` is embedded in (`to_vb2_v4l2_buffer`).
///
/// # Safety
///
/// `vb` belongs to one of our queues (`buf_struct_size` is a `v4l2_m2m_buffer`).
unsafe fn to_v4l2_buf(vb: *mut vb2_buffer) -> *mut vb2_v4l2_buffer {
    // SAFETY: per the contract the buffer is embedded in a `vb2_v4l2_buffer`.
    unsafe {
        vb.cast::<u8>()
            .sub(offset_of!(vb2_v4l2_buffer, vb2_buf))
            .cast()
    }
}

/// # Safety
///
/// videobuf2 callback (device lock held: it is the queue lock): the arrays have
/// `VIDEO_MAX_PLANES` entries.
unsafe extern "C" fn queue_setup(
    q: *mut vb2_queue,
    _nbuffers: *mut c_uint,
    num_planes: *mut c_uint,
    sizes: *mut c_uint,
    _alloc_devs: *mut *mut bindings::device,
) -> c_int {
    // SAFETY: one of our queues.
    let (ctx, output) = unsafe { (ctx_of(q), is_output((*q).type_)) };
    // The device lock is held (REQBUFS / CREATE_BUFS), so these are the ioctls' formats.
    let (coded, capture) = ctx.data().formats();
    let size = if output {
        coded.sizeimage
    } else {
        capture.layout.sizeimage
    };
    // SAFETY: valid pointers from the core (contract).
    unsafe {
        if *num_planes != 0 {
            // CREATE_BUFS: the client's sizes must hold our format.
            if *num_planes != 1 || *sizes < size {
                return code::EINVAL.to_errno();
            }
        } else {
            *num_planes = 1;
            *sizes = size;
        }
    }
    0
}

/// # Safety
///
/// videobuf2 callback for an OUTPUT buffer of ours.
unsafe extern "C" fn buf_out_validate(vb: *mut vb2_buffer) -> c_int {
    // SAFETY: our buffers are `vb2_v4l2_buffer`s.
    unsafe { (*to_v4l2_buf(vb)).field = bindings::V4L2_FIELD_NONE };
    0
}

/// # Safety
///
/// videobuf2 callback for a buffer of ours (device lock held: QBUF / PREPARE_BUF).
unsafe extern "C" fn buf_prepare(vb: *mut vb2_buffer) -> c_int {
    // SAFETY: `vb` is ours; its queue is one of our two.
    let r = unsafe {
        let q = (*vb).vb2_queue;
        let ctx = ctx_of(q);
        let plane_size = if (*vb).num_planes >= 1 {
            (*vb).planes[0].length
        } else {
            0
        };
        if is_output((*q).type_) {
            // The payload is what the client wrote; it must fit in the plane.
            if (*vb).planes[0].bytesused > plane_size {
                Err(code::EINVAL)
            } else {
                Ok(())
            }
        } else {
            let need = ctx.data().formats().1.layout.sizeimage;
            if plane_size < need {
                pr_warn!("CAPTURE buffer of {} bytes, {} needed\n", plane_size, need);
                Err(code::EINVAL)
            } else {
                (*vb).planes[0].bytesused = need;
                Ok(())
            }
        }
    };
    errno(r)
}

/// # Safety
///
/// videobuf2 callback for a buffer of ours.
unsafe extern "C" fn buf_queue(vb: *mut vb2_buffer) {
    // SAFETY: `vb` belongs to one of our queues, hence to a live context.
    unsafe {
        let ctx = ctx_of((*vb).vb2_queue);
        bindings::v4l2_m2m_buf_queue(ctx.m2m_ctx(), to_v4l2_buf(vb));
    }
}

/// # Safety
///
/// videobuf2 callback: `vb` is an OUTPUT buffer of ours whose request is being completed.
unsafe extern "C" fn buf_request_complete(vb: *mut vb2_buffer) {
    // SAFETY: per the contract.
    unsafe {
        let ctx = ctx_of((*vb).vb2_queue);
        bindings::v4l2_ctrl_request_complete((*vb).req_obj.req, ctx.hdl());
    }
}

/// # Safety
///
/// videobuf2 callback (STREAMON, device lock held).
unsafe extern "C" fn start_streaming(_q: *mut vb2_queue, _count: c_uint) -> c_int {
    0
}

/// Returns every buffer still queued on `q` to userspace with `state`.
///
/// # Safety
///
/// `q` is one of our queues; the caller holds its lock.
unsafe fn return_buffers(q: *mut vb2_queue, state: bindings::vb2_buffer_state) {
    // SAFETY: per the contract.
    let ctx = unsafe { ctx_of(q) };
    // SAFETY: as above.
    let output = is_output(unsafe { (*q).type_ });
    loop {
        // SAFETY: the m2m context is live; removal is locked internally.
        let vbuf = unsafe {
            if output {
                bindings::daedalus_m2m_src_buf_remove(ctx.m2m_ctx())
            } else {
                bindings::daedalus_m2m_dst_buf_remove(ctx.m2m_ctx())
            }
        };
        if vbuf.is_null() {
            break;
        }
        // SAFETY: `vbuf` was just taken off our queue; its request (if any) was set up with
        // our handler.
        unsafe {
            let req = (*vbuf).vb2_buf.req_obj.req;
            if !req.is_null() {
                bindings::v4l2_ctrl_request_complete(req, ctx.hdl());
            }
            bindings::vb2_buffer_done(&mut (*vbuf).vb2_buf, state);
        }
    }
}

/// Stops a queue: the context's jobs end (queued ones at once, those with the daemon when it
/// answers or times out), the buffers still queued return with errors, and the daemon is told
/// to drop the context's decoding state.
///
/// # Safety
///
/// videobuf2 callback (STREAMOFF or release).
unsafe extern "C" fn stop_streaming(q: *mut vb2_queue) {
    // SAFETY: our queue.
    let ctx = unsafe { ctx_of(q) };
    let jobs = &ctx.device().data().jobs;
    jobs.cancel_context(ctx);
    // SAFETY: our queue, lock held by the core.
    unsafe { return_buffers(q, bindings::VB2_BUF_STATE_ERROR) };
    jobs.event(wire::KIND_CONTEXT_FLUSH, ctx.data().id);
}

/// `media_device_ops.req_validate`: a request must carry exactly one OUTPUT buffer and the
/// codec's per-frame control.
///
/// # Safety
///
/// Called by the media core with `req` locked against changes (`req_queue_mutex`).
unsafe extern "C" fn request_validate(req: *mut media_request) -> c_int {
    // SAFETY: per the contract.
    errno(unsafe { validate(req) })
}

/// # Safety
///
/// As [`request_validate`].
unsafe fn validate(req: *mut media_request) -> Result {
    // Find the context through the request's buffer (list_for_each_entry on `req->objects`).
    // SAFETY: the object list is stable while the request is validated.
    let head = unsafe { core::ptr::addr_of_mut!((*req).objects) };
    let mut ctx: Option<&VideoFile> = None;
    // SAFETY: `head` is an initialized list head.
    let mut node = unsafe { (*head).next };
    while node != head {
        let obj = node
            .cast::<u8>()
            .wrapping_sub(offset_of!(media_request_object, list))
            .cast::<media_request_object>();
        // SAFETY: every node of `objects` is the `list` of a `media_request_object`.
        if unsafe { bindings::vb2_request_object_is_buffer(obj) } {
            // SAFETY: a buffer object is the `req_obj` of a `vb2_buffer` of one of our queues
            // (requests are only created through our media device).
            ctx = Some(unsafe {
                let vb = obj
                    .cast::<u8>()
                    .sub(offset_of!(vb2_buffer, req_obj))
                    .cast::<vb2_buffer>();
                ctx_of((*vb).vb2_queue)
            });
            break;
        }
        // SAFETY: as above.
        node = unsafe { (*node).next };
    }
    let Some(ctx) = ctx else {
        pr_warn!("request without a buffer\n");
        return Err(code::ENOENT);
    };
    // SAFETY: `req` is valid.
    match unsafe { bindings::vb2_request_buffer_cnt(req) } {
        0 => return Err(code::ENOENT),
        1 => {}
        _ => {
            pr_warn!("request with more than one buffer\n");
            return Err(code::EINVAL);
        }
    }
    // SAFETY: `req` is valid; the parent handler is the context's.
    let hdl = unsafe { bindings::v4l2_ctrl_request_hdl_find(req, ctx.hdl()) };
    if hdl.is_null() {
        pr_warn!("request without controls\n");
        return Err(code::ENOENT);
    }
    let id = ctx.data().codec().frame_control();
    // SAFETY: `hdl` is the request's handler, referenced until the put below.
    let found = unsafe { !bindings::v4l2_ctrl_request_hdl_ctrl_find(hdl, id).is_null() };
    // SAFETY: drops the reference `v4l2_ctrl_request_hdl_find` took.
    unsafe { bindings::daedalus_ctrl_request_hdl_put(hdl) };
    if !found {
        pr_warn!("request without control {:#x}\n", id);
        return Err(code::ENOENT);
    }
    // SAFETY: `req` is valid.
    check(unsafe { bindings::vb2_request_validate(req) })
}

/// `v4l2_m2m_ops.device_run`: the next OUTPUT buffer of a context and its CAPTURE buffer
/// become a decode job for the daemon ([`crate::jobs`]).
///
/// The buffers leave the m2m queues (the CAPTURE one stays while the client holds it for more
/// slices) and the m2m job finishes at once, so other contexts — and the next frame of this
/// one — are not held up while the daemon decodes.
///
/// # Safety
///
/// Called by the m2m core with `priv_` = a context that has a buffer on both queues.
unsafe extern "C" fn device_run(priv_: *mut c_void) {
    // SAFETY: per the contract.
    let ctx = unsafe { &*priv_.cast::<VideoFile>() };
    let m2m = ctx.m2m_ctx();
    // SAFETY: the m2m core only runs jobs with a buffer on both queues; the buffers are ours.
    unsafe {
        let src = bindings::daedalus_m2m_next_src_buf(m2m);
        let dst = bindings::daedalus_m2m_next_dst_buf(m2m);
        if !src.is_null() && !dst.is_null() {
            let req = (*src).vb2_buf.req_obj.req;
            if !req.is_null() {
                // Applies the request's controls over the current ones: the job carries the
                // full control state, not only what this request set. A failure here leaves
                // the values the request validation accepted, so it is not fatal.
                let _ = bindings::v4l2_ctrl_request_setup(req, ctx.hdl());
            }
            bindings::daedalus_m2m_buf_copy_metadata(src, dst);
            let hold = (*src).flags & bindings::V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF != 0;
            if holds_capture(ctx.queue_raw(BufType::VideoOutputMplane)) {
                // The job ends with `v4l2_m2m_buf_done_and_job_finish`.
                let dev = ctx.device();
                dev.data()
                    .jobs
                    .submit(dev.watchdog(), ctx, src, dst, Mode::Running { hold });
                return;
            }
            bindings::daedalus_m2m_src_buf_remove(m2m);
            bindings::daedalus_m2m_dst_buf_remove(m2m);
            let dev = ctx.device();
            dev.data().jobs.submit(
                dev.watchdog(),
                ctx,
                src,
                dst,
                Mode::Detached { hold: false },
            );
        }
        // `v4l2_m2m_job_finish` is only for queues that cannot hold CAPTURE buffers.
        bindings::v4l2_m2m_job_finish(ctx.device().m2m_raw(), m2m);
    }
}

/// Whether the OUTPUT queue offers `V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF` (H.264 contexts).
///
/// # Safety
///
/// `q` is a live queue of ours.
unsafe fn holds_capture(q: *mut vb2_queue) -> bool {
    // SAFETY: per the contract; only changed by `S_FMT(OUTPUT)` while the queue has no buffers
    // and does not stream (`LockedFile::set_hold_capture`).
    unsafe { (*q).subsystem_flags & bindings::VB2_V4L2_FL_SUPPORTS_M2M_HOLD_CAPTURE_BUF != 0 }
}
