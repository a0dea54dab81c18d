// SPDX-License-Identifier: GPL-2.0
//! The daedalus device: what it reports, its device-wide state (the job queue), and what the
//! module registers at load: the platform device, the mem2mem device with `/dev/videoN` and
//! `/dev/mediaN` (`media::v4l2::device`), and `/dev/daedalus`.
//!
//! Lifetime: the device is allocated at module load and freed by the video node's `release`
//! callback, i.e. when the last reference to `/dev/videoN` is gone (as visl does); the daemon
//! chardev holds a counted reference on it. Files opened on `/dev/videoN` and `/dev/daedalus`
//! hold a reference on this module (the fops' `owner`), so unloading is refused while any is
//! open and [`Registration`]'s drop always runs with no user.

use crate::bufmap::BufMap;
use crate::chardev;
use crate::ctrls;
use crate::jobs::Jobs;
use crate::media::ctrls::CtrlBuilder;
use crate::media::platform::PlatformDevice;
use crate::media::prelude::*;
use crate::media::uapi;
use crate::media::v4l2::device::{
    DeviceInfo, DeviceRegistration, EntityFunction, M2mDevice, M2mDriver,
};
use crate::video::{self, Context, State, VideoFile};
use crate::wire;

/// Name of the driver, the platform device, the video node and the media model.
pub(crate) const NAME: &[u8] = b"daedalus";
/// `bus_info` reported by `VIDIOC_QUERYCAP` and `MEDIA_IOC_DEVICE_INFO` (clients match on it).
pub(crate) const BUS_INFO: &[u8] = b"platform:daedalus";

/// The daedalus mem2mem driver.
pub(crate) struct Daedalus;

/// The daedalus device.
pub(crate) type Device = M2mDevice<Daedalus>;

/// Device-wide driver state.
#[pin_data]
pub(crate) struct DaedalusData {
    /// Decode jobs on their way to and from the daemon.
    #[pin]
    pub(crate) jobs: Jobs,
}

impl DaedalusData {
    fn new() -> impl PinInit<Self> {
        pin_init!(DaedalusData { jobs <- Jobs::new() })
    }
}

impl M2mDriver for Daedalus {
    type Data = DaedalusData;
    type File = Context;
    type Locked = State;
    type Buf = BufMap;

    const INFO: DeviceInfo = DeviceInfo {
        name: NAME,
        bus_info: BUS_INFO,
        device_caps: uapi::V4L2_CAP_VIDEO_M2M_MPLANE | uapi::V4L2_CAP_STREAMING,
        function: EntityFunction::ProcVideoDecoder,
    };

    const NR_CTRLS: u32 = ctrls::NR_CONTROLS;

    fn open(dev: &Device) -> Result<(impl PinInit<Context, Error>, State)> {
        Context::open(dev)
    }

    fn controls(b: &mut CtrlBuilder<'_, Context>) {
        ctrls::build(b);
    }

    fn output_holds_capture(ctx: &Context) -> bool {
        video::holds_capture(ctx.codec())
    }

    /// Gives the new context its counters, tells the daemon (if attached) about it.
    fn opened(file: &VideoFile) {
        ctrls::carry_codec_in_requests(file.handler(), file.data().codec());
        file.device().data().jobs.context_opened(file.data().id);
        context_event(file, wire::ContextEvent::Open);
    }

    /// Tells the daemon (if attached) that the context is gone; its counters go.
    fn closed(file: &VideoFile) {
        context_event(file, wire::ContextEvent::Close);
        file.device().data().jobs.context_closed(file.data().id);
    }

    /// Fails the jobs past their deadline.
    fn watchdog(dev: &Device) {
        dev.data().jobs.expire(dev.watchdog());
    }
}

/// Everything the module registers. Field order is unload order.
struct Parts {
    _chardev: chardev::Registration,
    _device: DeviceRegistration<Daedalus>,
    _pdev: PlatformDevice,
}

/// The module's registration of the device; dropping it unregisters everything.
pub(crate) struct Registration {
    parts: Option<Parts>,
}

impl Registration {
    /// Registers the platform device, `/dev/videoN`, `/dev/mediaN` and `/dev/daedalus`.
    pub(crate) fn new() -> Result<Self> {
        // The buffers are only touched by the CPU (and importers of their dma-bufs): any
        // address is fine (DMA_BIT_MASK(64)), so no bounce buffering or 32-bit zone.
        let pdev = PlatformDevice::register(c"daedalus", u64::MAX)?;
        let parts = (|| {
            let device = DeviceRegistration::<Daedalus>::new(&pdev, DaedalusData::new())?;
            let chardev = chardev::register(device.get())?;
            Ok((device, chardev))
        })();
        match parts {
            Ok((device, chardev)) => {
                pr_info!(
                    "registered /dev/video{} ({} buffers)\n",
                    device.num(),
                    if pdev.dma_coherent() {
                        "cached"
                    } else {
                        "uncached"
                    }
                );
                Ok(Registration {
                    parts: Some(Parts {
                        _chardev: chardev,
                        _device: device,
                        _pdev: pdev,
                    }),
                })
            }
            Err(e) => {
                pr_err!("registration failed: {:?}\n", e);
                Err(e)
            }
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // Unregisters everything, in `Parts`' field order.
        drop(self.parts.take());
        pr_info!("unregistered\n");
    }
}

/// Queues `event` of `file`'s context for the daemon (dropped when no daemon is attached).
fn context_event(file: &VideoFile, event: wire::ContextEvent) {
    file.device().data().jobs.event(event, file.data().id);
}
