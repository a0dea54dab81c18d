// SPDX-License-Identifier: GPL-2.0
//! daedalus: a V4L2 memory-to-memory stateless video decoder whose decoding is done in userspace.
//!
//! The module registers `/dev/videoN` (VP9 / AV1 / H.264 stateless decoder, NV12 / P010
//! pictures, videobuf2 dma-contig, Request API), `/dev/mediaN` (its media controller) and
//! `/dev/daedalus`, the chardev the decode daemon attaches to.
//!
//! Layout:
//! - [`bindings`][bindings]: generated at build time from the target kernel's headers.
//! - [`shim`][shim]: the small surface of the `kernel` crate the driver uses.
//! - [`device`][device]: the platform device, v4l2/media/video registrations and their lifetime.
//! - [`video`][video]: one decoding context per open of `/dev/videoN`, formats and ioctls.
//! - [`queue`][queue]: videobuf2 queues, request validation, decode jobs.
//! - [`ctrls`][ctrls]: the stateless codec controls.
//! - [`chardev`][chardev]: `/dev/daedalus`.
//! - [`jobs`][jobs]: decode jobs between the V4L2 side and the daemon.
//! - `formats`, `wire`: shared with userspace (`proto/`).

#[allow(
    unknown_lints,
    unnecessary_transmutes,
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    dead_code,
    missing_docs,
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    improper_ctypes,
    unreachable_pub,
    unsafe_op_in_unsafe_fn
)]
mod bindings;
mod chardev;
mod ctrls;
mod device;
#[allow(dead_code, unreachable_pub)]
#[path = "../proto/src/formats.rs"]
mod formats;
mod jobs;
mod queue;
mod shim;
mod video;
#[allow(dead_code, unreachable_pub)]
#[path = "../proto/src/wire.rs"]
mod wire;

use kernel::prelude::*;

module! {
    type: DaedalusModule,
    name: "daedalus",
    description: "V4L2 stateless decoder (VP9, AV1, H.264) backed by a userspace daemon",
    license: "GPL",
}

struct DaedalusModule {
    /// Unregisters everything when the module is unloaded (dropped).
    _device: device::Registration,
}

impl kernel::Module for DaedalusModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let device = device::Registration::new()?;
        Ok(DaedalusModule { _device: device })
    }
}

// The format table shared with userspace (proto/) must agree with the target kernel's headers.
const _: () = {
    assert!(formats::PIX_FMT_VP9_FRAME == bindings::V4L2_PIX_FMT_VP9_FRAME);
    assert!(formats::PIX_FMT_AV1_FRAME == bindings::V4L2_PIX_FMT_AV1_FRAME);
    assert!(formats::PIX_FMT_H264_SLICE == bindings::V4L2_PIX_FMT_H264_SLICE);
    assert!(formats::PIX_FMT_NV12 == bindings::V4L2_PIX_FMT_NV12);
    assert!(formats::PIX_FMT_P010 == bindings::V4L2_PIX_FMT_P010);
};
