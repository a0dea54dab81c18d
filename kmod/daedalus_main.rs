// SPDX-License-Identifier: GPL-2.0
//! daedalus: a V4L2 memory-to-memory stateless video decoder whose decoding is done in userspace.
//!
//! The module registers `/dev/videoN` (VP9 / AV1 / H.264 stateless decoder, NV12 / P010
//! pictures, videobuf2 dma-contig, Request API), `/dev/mediaN` (its media controller) and
//! `/dev/daedalus`, the chardev the decode daemon attaches to.
//!
//! Layout:
//! - [`media`][media]: the safe media layer, the only place that touches C (the bindings,
//!   generated at build time from the target kernel's headers, and `glue.c`) or the `kernel`
//!   crate's API; see `docs/kmod-safe-layer.md`.
//! - [`device`][device]: what the device is (its `M2mDriver` impl), its job queue, what the module
//!   registers and in which order it goes.
//! - [`video`][video]: one decoding context per open of `/dev/videoN`, formats and ioctls.
//! - [`queue`][queue]: what the videobuf2 queues accept, request validation, the start of a job.
//! - [`ctrls`][ctrls]: the stateless codec controls.
//! - [`chardev`][chardev]: `/dev/daedalus`.
//! - [`job`][job]: one decode job's life, top to bottom; [`encode`][encode] its wire message,
//!   [`bufmap`][bufmap] what the daemon has mapped of each buffer (and the fds a job carries).
//! - [`jobs`][jobs]: the job queue between the V4L2 side and the daemon; [`stats`][stats] its
//!   counters (sysfs, for `daedalus status`).
//! - `formats`, `wire`: shared with userspace (`proto/`).

#![deny(clippy::unwrap_used, clippy::expect_used)]

mod bufmap;
mod chardev;
mod ctrls;
mod device;
mod encode;
#[allow(dead_code, unreachable_pub)]
#[path = "../proto/src/formats.rs"]
mod formats;
mod job;
mod jobs;
mod media;
mod queue;
mod stats;
mod video;
#[allow(dead_code, unreachable_pub)]
#[path = "../proto/src/wire.rs"]
mod wire;

use kernel::prelude::*;

use crate::media::uapi;

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
    assert!(formats::PIX_FMT_VP9_FRAME == uapi::V4L2_PIX_FMT_VP9_FRAME);
    assert!(formats::PIX_FMT_AV1_FRAME == uapi::V4L2_PIX_FMT_AV1_FRAME);
    assert!(formats::PIX_FMT_H264_SLICE == uapi::V4L2_PIX_FMT_H264_SLICE);
    assert!(formats::PIX_FMT_NV12 == uapi::V4L2_PIX_FMT_NV12);
    assert!(formats::PIX_FMT_P010 == uapi::V4L2_PIX_FMT_P010);
};
