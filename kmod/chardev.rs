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
//! `/sys/class/misc/daedalus/daemon_attached` is "1" while a daemon is attached, for
//! `daedalus info`, monitoring and tests.

use core::ffi::CStr;
use core::pin::Pin;

use crate::device::Daedalus;
use crate::media::misc::{MiscFile, MiscOps, MiscRegistration, SysfsBuf};
use crate::media::prelude::*;
use crate::media::sync::{PollMask, PollTable};
use crate::media::v4l2::device::DeviceRef;
use crate::wire::{self, Completion, Hello};

/// The daemon chardev.
pub(crate) struct Chardev;

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
    const ATTR_NAME: Option<&'static CStr> = Some(c"daemon_attached");

    fn open(dev: &DeviceRef<Daedalus>, _file: &MiscFile<'_>) -> Result<DeviceRef<Daedalus>> {
        let session = dev.data().jobs.attach()?;
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

    /// `daemon_attached`.
    fn show(dev: &DeviceRef<Daedalus>, buf: &mut SysfsBuf<'_>) -> Result {
        buf.write(if dev.data().jobs.attached() {
            b"1\n"
        } else {
            b"0\n"
        })
    }
}
