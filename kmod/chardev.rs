// SPDX-License-Identifier: GPL-2.0
//! `/dev/daedalus`: the misc chardev the decode daemon attaches to.
//!
//! Attaching (opening) needs `CAP_SYS_ADMIN` — the daemon sees every client's bitstream and
//! writes into every client's pictures — and only one daemon may be attached at a time (`EBUSY`
//! for a second). The node is created with mode 0600. The protocol ([`crate::wire`],
//! `docs/protocol.md`): `IOC_HELLO` first, then `read()` / `poll()` for jobs and context events,
//! `IOC_COMPLETE` for each job's answer. The queue behind it is [`crate::jobs`].

use core::mem::offset_of;
use core::ptr::NonNull;

use crate::device::Daedalus;
use crate::jobs::Jobs;
use crate::media::prelude::*;
use crate::media::raw::{self as bindings, file, inode};
use crate::media::sync::PollTable;
use crate::media::v4l2::device::DeviceRef;
use crate::wire::{self, Completion, Hello};

/// The misc device, in an allocation of its own.
struct Chardev {
    misc: Opaque<bindings::miscdevice>,
    /// Keeps the device, hence its job queue, alive while the chardev exists.
    dev: DeviceRef<Daedalus>,
}

/// `/dev/daedalus`, registered; dropping it removes the node.
///
/// # Invariants
///
/// `cd` is a leaked `KBox<Chardev>` whose `misc` is registered, until drop.
pub(crate) struct Registration {
    cd: NonNull<Chardev>,
}

// SAFETY: deregistered from whatever task unloads the module; the C calls lock internally.
unsafe impl Send for Registration {}
// SAFETY: `&Registration` gives no access at all.
unsafe impl Sync for Registration {}

impl Registration {
    /// Registers `/dev/daedalus` for the job queue of `dev`.
    pub(crate) fn new(dev: DeviceRef<Daedalus>) -> Result<Self> {
        // `into_raw` never returns null; checked before registering, so no error path can
        // follow a successful registration.
        let cd = NonNull::new(KBox::into_raw(KBox::new(
            Chardev {
                misc: Opaque::new(zeroed()),
                dev,
            },
            GFP_KERNEL,
        )?))
        .ok_or(code::ENOMEM)?;
        // SAFETY: `cd` is a fresh, exclusively owned allocation with a zeroed `miscdevice`; it
        // never moves, and lives until after `misc_deregister` (drop).
        let r = unsafe {
            let misc = (*cd.as_ptr()).misc.get();
            (*misc).minor = bindings::MISC_DYNAMIC_MINOR as c_int;
            (*misc).name = NODE_NAME.as_ptr().cast();
            (*misc).fops = &FOPS.0;
            (*misc).mode = 0o600;
            // The driver core only reads the table (`const struct attribute_group **`).
            (*misc).groups = GROUPS.0.as_ptr().cast_mut();
            check(bindings::misc_register(misc))
        };
        if let Err(e) = r {
            // SAFETY: not registered: nothing else knows the allocation.
            drop(unsafe { KBox::from_raw(cd.as_ptr()) });
            return Err(e);
        }
        // INVARIANT: registered above.
        Ok(Registration { cd })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant); no file is open on it (module references), and
        // after `misc_deregister` nothing reaches the allocation, which is ours to free.
        unsafe {
            bindings::misc_deregister((*self.cd.as_ptr()).misc.get());
            drop(KBox::from_raw(self.cd.as_ptr()));
        }
    }
}

const NODE_NAME: &[u8] = b"daedalus\0";

// sysfs: /sys/class/misc/daedalus/daemon_attached ("1" while a daemon is attached), for
// `daedalus info`, monitoring and tests. The tables are never written (sysfs only reads them).
static ATTACHED_ATTR: AssertSync<bindings::device_attribute> =
    AssertSync(bindings::device_attribute {
        attr: bindings::attribute {
            name: c"daemon_attached".as_ptr().cast(),
            mode: 0o444,
            // The remaining (lockdep) fields of a static attribute are zero.
            ..zeroed()
        },
        show: Some(show_attached),
        store: None,
    });
static ATTRS: AssertSync<[*const bindings::attribute; 2]> =
    AssertSync([&ATTACHED_ATTR.0.attr, core::ptr::null()]);
static GROUP: AssertSync<bindings::attribute_group> = AssertSync(bindings::attribute_group {
    attrs: ATTRS.0.as_ptr().cast_mut().cast(),
    // No name, no visibility callback, no binary files.
    ..zeroed()
});
static GROUPS: AssertSync<[*const bindings::attribute_group; 2]> =
    AssertSync([&GROUP.0, core::ptr::null()]);

/// `show` of `daemon_attached`.
///
/// # Safety
///
/// Only called by sysfs for our misc device, with a `PAGE_SIZE` buffer.
unsafe extern "C" fn show_attached(
    dev: *mut bindings::device,
    _attr: *mut bindings::device_attribute,
    buf: *mut u8,
) -> isize {
    // SAFETY: `misc_register` made the misc device the drvdata of its `this_device`; it is the
    // `misc` field of a registered `Chardev`, alive while its sysfs files exist.
    let jobs = unsafe {
        let misc = (*dev).driver_data;
        let cd = misc
            .cast::<u8>()
            .sub(offset_of!(Chardev, misc))
            .cast::<Chardev>();
        &(*cd).dev.data().jobs
    };
    let text: &[u8] = if jobs.attached() { b"1\n" } else { b"0\n" };
    // SAFETY: `buf` has room for a page; we write 2 bytes.
    unsafe { core::ptr::copy_nonoverlapping(text.as_ptr(), buf, text.len()) };
    text.len() as isize
}

static FOPS: AssertSync<bindings::file_operations> = AssertSync(bindings::file_operations {
    owner: crate::THIS_MODULE.as_ptr().cast(),
    open: Some(chardev_open),
    release: Some(chardev_release),
    read: Some(chardev_read),
    poll: Some(chardev_poll),
    unlocked_ioctl: Some(chardev_ioctl),
    compat_ioctl: Some(bindings::compat_ptr_ioctl),
    // Every other callback `None`.
    ..zeroed()
});

/// The job queue behind a file of `/dev/daedalus`.
///
/// # Safety
///
/// `file` is a file of `/dev/daedalus`: `misc_open` stored our `miscdevice` in `private_data`.
unsafe fn jobs_of<'a>(file: *mut file) -> &'a Jobs {
    // SAFETY: `private_data` is the `misc` field of a registered `Chardev`, which outlives
    // every open file (module reference) and keeps the device, hence `jobs`, alive.
    unsafe {
        let cd = (*file)
            .private_data
            .cast::<u8>()
            .sub(offset_of!(Chardev, misc))
            .cast::<Chardev>();
        &(*cd).dev.data().jobs
    }
}

/// # Safety
///
/// Only called by the VFS (through `misc_open`) for `/dev/daedalus`.
unsafe extern "C" fn chardev_open(_inode: *mut inode, file: *mut file) -> c_int {
    if !capable_sys_admin() {
        return code::EPERM.to_errno();
    }
    // SAFETY: `file` is being opened on our node.
    let jobs = unsafe { jobs_of(file) };
    match jobs.attach() {
        Ok(session) => {
            pr_info!("decode daemon attached (session {})\n", session);
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// Only called by the VFS on the last close of a file opened by [`chardev_open`].
unsafe extern "C" fn chardev_release(_inode: *mut inode, file: *mut file) -> c_int {
    // SAFETY: opened by `chardev_open`.
    let jobs = unsafe { jobs_of(file) };
    jobs.detach();
    pr_info!("decode daemon detached\n");
    0
}

/// # Safety
///
/// VFS `read` on a file opened by [`chardev_open`]; `buf` is a userspace address.
unsafe extern "C" fn chardev_read(
    file: *mut file,
    buf: *mut u8,
    count: usize,
    _ppos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: opened by `chardev_open`.
    let (jobs, flags) = unsafe { (jobs_of(file), (*file).f_flags) };
    let nonblock = flags & bindings::O_NONBLOCK != 0;
    match jobs.read(UserAddr::new(buf as usize), count, nonblock) {
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// VFS `poll` on a file opened by [`chardev_open`].
unsafe extern "C" fn chardev_poll(file: *mut file, pt: *mut bindings::poll_table_struct) -> u32 {
    // SAFETY: opened by `chardev_open`; `file` and `pt` are those of this `poll()` call.
    let (jobs, mut pt) = unsafe { (jobs_of(file), PollTable::from_raw(file, pt)) };
    jobs.poll(&mut pt)
}

/// # Safety
///
/// VFS `unlocked_ioctl` on a file opened by [`chardev_open`]; `arg` is a userspace address.
unsafe extern "C" fn chardev_ioctl(file: *mut file, cmd: c_uint, arg: c_ulong) -> c_long {
    // SAFETY: opened by `chardev_open`.
    let jobs = unsafe { jobs_of(file) };
    let ptr = UserAddr::new(arg);
    let r: Result<(), Error> = match cmd {
        wire::IOC_HELLO => (|| {
            let mut b = [0u8; Hello::SIZE];
            ptr.copy_from(&mut b)?;
            let theirs = Hello::decode(&b).map_err(|_| code::EINVAL)?;
            let (ours, r) = jobs.hello(theirs);
            ptr.copy_to(&ours.encode())?;
            r
        })(),
        wire::IOC_COMPLETE => (|| {
            let mut b = [0u8; Completion::SIZE];
            ptr.copy_from(&mut b)?;
            let c = Completion::decode(&b).map_err(|_| code::EINVAL)?;
            jobs.complete(c)
        })(),
        _ => Err(code::ENOTTY),
    };
    match r {
        Ok(()) => 0,
        Err(e) => e.to_errno() as c_long,
    }
}
