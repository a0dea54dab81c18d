// SPDX-License-Identifier: GPL-2.0
//! `/dev/daedalus`: the misc chardev the decode daemon attaches to.
//!
//! Attaching is opening the node, so who may attach is decided by the node's permissions, like
//! for any device: the kernel creates it root-only (mode 0600), and the packaged udev rule
//! (`data/60-daedalus.rules`) gives it to the `daedalus` group (0660), whose only member is the
//! daemon's system user. The daemon sees every client's bitstream and writes into every
//! client's pictures, so the node must never be given to the clients' `video` group. Only one
//! daemon may be attached at a time (`EBUSY` for a second). The protocol ([`crate::wire`],
//! `docs/protocol.md`): `IOC_HELLO` first, then `read()` / `poll()` for jobs and context events,
//! `IOC_COMPLETE` for each job's answer. The queue behind it is [`crate::jobs`].
//!
//! The node's sysfs directory, `/sys/class/misc/daedalus/`, shows the job queue's state and
//! counters ([`ATTRS`], [`crate::stats`]), readable by every user: `daemon_attached` ("1" while a
//! daemon is attached), `daemon_pid`, the job counters, frame rate and latency percentiles, and
//! `contexts`, one line per open context. `daedalus status` reads them; so do tests and
//! monitoring. Per-context detail is in sysfs too (not debugfs, which is root-only and often
//! not mounted): `daedalus status` must work for a user of the `video` group, and the counters
//! tell nothing about the streams.

use core::ffi::CStr;
use core::pin::Pin;

use crate::device::Daedalus;
use crate::jobs::Shown;
use crate::media::kernel::current_tgid;
use crate::media::misc::{MiscFile, MiscOps, MiscRegistration, SysfsBuf};
use crate::media::prelude::*;
use crate::media::sync::{PollMask, PollTable};
use crate::media::v4l2::device::DeviceRef;
use crate::wire::{self, Completion, Hello};

/// The daemon chardev.
pub(crate) struct Chardev;

/// The sysfs attributes of the node and what each shows (`docs/install.md`, "Watching the
/// device"; `tools/src/status.rs` parses them).
const ATTRS: [(&CStr, Shown); 18] = [
    (c"daemon_attached", Shown::DaemonAttached),
    (c"daemon_pid", Shown::DaemonPid),
    (c"daemon_attaches", Shown::DaemonAttaches),
    (c"daemon_detaches", Shown::DaemonDetaches),
    (c"contexts_open", Shown::ContextsOpen),
    (c"jobs_submitted", Shown::JobsSubmitted),
    (c"jobs_completed", Shown::JobsCompleted),
    (c"jobs_failed", Shown::JobsFailed),
    (c"jobs_timed_out", Shown::JobsTimedOut),
    (c"jobs_in_flight", Shown::JobsInFlight),
    (c"fps", Shown::Fps),
    (c"latency_p50_us", Shown::LatencyP50),
    (c"latency_p95_us", Shown::LatencyP95),
    (c"latency_p99_us", Shown::LatencyP99),
    (c"output_buffers", Shown::BuffersOutput),
    (c"capture_buffers", Shown::BuffersCapture),
    (c"buffer_bytes", Shown::BufferBytes),
    (c"contexts", Shown::Contexts),
];

/// The names of [`ATTRS`].
const ATTR_NAMES: [&CStr; ATTRS.len()] = {
    let mut names = [c""; ATTRS.len()];
    let mut i = 0;
    while i < ATTRS.len() {
        names[i] = ATTRS[i].0;
        i += 1;
    }
    names
};

/// `/dev/daedalus`, registered; dropping it removes the node.
pub(crate) type Registration = Pin<KBox<MiscRegistration<Chardev>>>;

/// Registers `/dev/daedalus` for the job queue of `dev`.
pub(crate) fn register(dev: DeviceRef<Daedalus>) -> Result<Registration> {
    MiscRegistration::register(dev)
}

impl MiscOps for Chardev {
    /// Keeps the device, hence its job queue, alive while the chardev exists.
    type Data = DeviceRef<Daedalus>;
    /// The same, for as long as the daemon's file is open.
    type FileData = DeviceRef<Daedalus>;

    const NAME: &'static CStr = c"daedalus";
    const MODE: u16 = 0o600;
    const ATTRS: &'static [&'static CStr] = &ATTR_NAMES;

    fn open(dev: &DeviceRef<Daedalus>, _file: &MiscFile<'_>) -> Result<DeviceRef<Daedalus>> {
        let session = dev.data().jobs.attach(current_tgid())?;
        pr_info!("decode daemon attached (session {})\n", session);
        Ok(dev.clone())
    }

    fn release(dev: DeviceRef<Daedalus>, _file: &MiscFile<'_>) {
        dev.data().jobs.detach();
        pr_info!("decode daemon detached\n");
    }

    fn read(
        dev: &DeviceRef<Daedalus>,
        file: &MiscFile<'_>,
        buf: UserAddr,
        count: usize,
    ) -> Result<usize> {
        dev.data().jobs.read(buf, count, file.nonblocking())
    }

    fn poll<'a>(
        dev: &'a DeviceRef<Daedalus>,
        _file: &MiscFile<'_>,
        pt: &mut PollTable<'a>,
    ) -> PollMask {
        dev.data().jobs.poll(pt)
    }

    fn ioctl(dev: &DeviceRef<Daedalus>, _file: &MiscFile<'_>, cmd: u32, arg: UserAddr) -> Result {
        let jobs = &dev.data().jobs;
        match cmd {
            wire::IOC_HELLO => {
                let mut b = [0u8; Hello::SIZE];
                arg.copy_from(&mut b)?;
                let theirs = Hello::decode(&b).map_err(|_| code::EINVAL)?;
                let (ours, r) = jobs.hello(theirs);
                arg.copy_to(&ours.encode())?;
                r
            }
            wire::IOC_COMPLETE => {
                let mut b = [0u8; Completion::SIZE];
                arg.copy_from(&mut b)?;
                let c = Completion::decode(&b).map_err(|_| code::EINVAL)?;
                jobs.complete(c)
            }
            _ => Err(code::ENOTTY),
        }
    }

    /// The attribute `ATTRS[attr]`.
    fn show(dev: &DeviceRef<Daedalus>, attr: usize, buf: &mut SysfsBuf<'_>) -> Result {
        let (_, what) = ATTRS.get(attr).ok_or(code::EIO)?;
        // A full page (many contexts) shows what fits.
        let _ = dev.data().jobs.show(*what, buf);
        Ok(())
    }
}
