// SPDX-License-Identifier: GPL-2.0
//! Requests of the media device: [`RequestOps`] (the driver's validation), [`Request`] (a request
//! being validated), [`RequestCtrls`] (its controls), and the `media_device_ops` table.
//!
//! `req_validate` runs under the media device's `req_queue_mutex`, not the device lock: the
//! driver gets no [`LockedFile`](super::v4l2::file::LockedFile). After it succeeds the layer runs
//! `vb2_request_validate` (which prepares the request's buffers); queueing is the m2m core's
//! `v4l2_m2m_request_queue`.

use core::marker::PhantomData;
use core::mem::offset_of;
use core::ptr::NonNull;

use super::bindings;
use super::kernel::{c_int, check, code, errno, zeroed, Result};
use super::v4l2::device::{Driver, M2mDriver};
use super::v4l2::file::V4l2File;

/// The driver's check of a request being queued.
pub(crate) trait RequestOps: M2mDriver {
    /// Whether `req` can be queued (the layer then validates its buffers).
    fn req_validate(req: &Request<'_, Self>) -> Result;
}

/// A request of the media device, being validated.
///
/// # Invariants
///
/// `raw` is a request of the media device of an `M2mDevice<T>`, which the media core keeps from
/// changing for `'a` (`req_validate` runs under `req_queue_mutex`): its objects are the buffers
/// and control handlers queued in it, and every buffer object is the `req_obj` of a buffer of a
/// queue of a `V4l2File<T>` (requests are only made through this media device, and only
/// `queue_init::<T>` queues support them).
pub(crate) struct Request<'a, T: M2mDriver> {
    raw: NonNull<bindings::media_request>,
    _p: PhantomData<&'a V4l2File<T>>,
}

impl<'a, T: M2mDriver> Request<'a, T> {
    /// The file of the first buffer of the request (`None` if it has no buffer).
    pub(crate) fn owner(&self) -> Option<&'a V4l2File<T>> {
        let req = self.raw.as_ptr();
        // SAFETY: the object list is initialized and stable while the request is validated (type
        // invariant).
        let head = unsafe { core::ptr::addr_of_mut!((*req).objects) };
        // SAFETY: as above.
        let mut node = unsafe { (*head).next };
        while node != head {
            // `list_for_each_entry`: every node of `objects` is the `list` of a
            // `media_request_object`.
            let obj = node
                .cast::<u8>()
                .wrapping_sub(offset_of!(bindings::media_request_object, list))
                .cast::<bindings::media_request_object>();
            // SAFETY: a live object of the request (as above).
            if unsafe { bindings::vb2_request_object_is_buffer(obj) } {
                // SAFETY: a buffer object is the `req_obj` of a `vb2_buffer` of a queue of a
                // `V4l2File<T>` (type invariant), whose `drv_priv` is that file, alive while its
                // buffer is in a request being validated.
                return Some(unsafe {
                    let vb = obj
                        .cast::<u8>()
                        .sub(offset_of!(bindings::vb2_buffer, req_obj))
                        .cast::<bindings::vb2_buffer>();
                    &*(*(*vb).vb2_queue).drv_priv.cast::<V4l2File<T>>()
                });
            }
            // SAFETY: as above.
            node = unsafe { (*node).next };
        }
        None
    }

    /// How many buffers the request holds (`vb2_request_buffer_cnt`).
    pub(crate) fn buffer_count(&self) -> u32 {
        // SAFETY: a live request (type invariant).
        unsafe { bindings::vb2_request_buffer_cnt(self.raw.as_ptr()) }
    }

    /// The controls the request sets on `file`'s handler (`None` if it sets none).
    pub(crate) fn ctrls(&self, file: &V4l2File<T>) -> Option<RequestCtrls<'_>> {
        // SAFETY: a live request (type invariant) and an initialized handler.
        let hdl = unsafe {
            bindings::v4l2_ctrl_request_hdl_find(self.raw.as_ptr(), file.handler().as_raw())
        };
        // INVARIANT: `v4l2_ctrl_request_hdl_find` took a reference on the handler it returned.
        Some(RequestCtrls {
            hdl: NonNull::new(hdl)?,
            _p: PhantomData,
        })
    }
}

/// The control handler of a request.
///
/// # Invariants
///
/// Holds a reference on `hdl` (from `v4l2_ctrl_request_hdl_find`), put by drop.
pub(crate) struct RequestCtrls<'a> {
    hdl: NonNull<bindings::v4l2_ctrl_handler>,
    _p: PhantomData<&'a ()>,
}

impl RequestCtrls<'_> {
    /// Whether the request sets control `id`.
    pub(crate) fn has(&self, id: u32) -> bool {
        // SAFETY: the handler is referenced (type invariant).
        !unsafe { bindings::v4l2_ctrl_request_hdl_ctrl_find(self.hdl.as_ptr(), id) }.is_null()
    }
}

impl Drop for RequestCtrls<'_> {
    fn drop(&mut self) {
        // SAFETY: drops the reference the value holds (type invariant).
        unsafe { bindings::daedalus_ctrl_request_hdl_put(self.hdl.as_ptr()) };
    }
}

vtable! {
    /// The `media_device_ops` of driver `T`.
    pub(super) struct MediaOpsVTable<T: Driver>: bindings::media_device_ops {
        req_validate: Some(req_validate::<T>),
        req_queue: Some(bindings::v4l2_m2m_request_queue),
        // Remaining callbacks `None`.
        ..zeroed()
    }
}

/// `media_device_ops.req_validate`: the driver's check, then the buffers'.
///
/// # Safety
///
/// Only called by the media core, for a request of the media device of an `M2mDevice<T>` (the
/// only one with this table), locked against changes (`req_queue_mutex`).
unsafe extern "C" fn req_validate<T: Driver>(req: *mut bindings::media_request) -> c_int {
    let Some(raw) = NonNull::new(req) else {
        return code::EINVAL.to_errno();
    };
    // INVARIANT: per the contract.
    let r = Request::<T> {
        raw,
        _p: PhantomData,
    };
    if let Err(e) = T::req_validate(&r) {
        return e.to_errno();
    }
    // SAFETY: a live request (contract).
    errno(check(unsafe { bindings::vb2_request_validate(req) }))
}
