// SPDX-License-Identifier: GPL-2.0
//! `/dev/daedalus`: the misc chardev the decode daemon attaches to.
//!
//! Attaching (opening) needs `CAP_SYS_ADMIN` — the daemon sees every client's bitstream and
//! writes into every client's pictures — and only one daemon may be attached at a time (`EBUSY`
//! for a second). The node is created with mode 0600. The job protocol spoken over it is defined
//! in `proto/` and documented in `docs/protocol.md`.

use core::mem::offset_of;
use core::sync::atomic::{AtomicBool, Ordering};

use kernel::types::Opaque;

use crate::bindings;
use crate::shim::{self, c_int, check, code, pr_info, AssertSync};

/// The misc device and its attach state; lives inside [`crate::device::Device`].
pub(crate) struct Chardev {
    misc: Opaque<bindings::miscdevice>,
    /// `true` while a daemon has `/dev/daedalus` open.
    attached: AtomicBool,
}

impl Chardev {
    /// Registers `/dev/daedalus`.
    ///
    /// # Safety
    ///
    /// `this` points to a zeroed `Chardev` inside a [`crate::device::Device`] that outlives the registration
    /// (until [`Chardev::deregister`]).
    pub(crate) unsafe fn register(this: *mut Chardev) -> crate::shim::Result {
        // SAFETY: per the contract `this` is valid, zeroed and not registered yet.
        unsafe {
            let misc = (*this).misc.get();
            (*misc).minor = bindings::MISC_DYNAMIC_MINOR as c_int;
            (*misc).name = NODE_NAME.as_ptr().cast();
            (*misc).fops = &FOPS.0;
            (*misc).mode = 0o600;
            check(bindings::misc_register(misc))
        }
    }

    /// Removes `/dev/daedalus`.
    ///
    /// # Safety
    ///
    /// `self` was registered by [`Chardev::register`] and no file is open on it.
    pub(crate) unsafe fn deregister(&self) {
        // SAFETY: registered per the contract.
        unsafe { bindings::misc_deregister(self.misc.get()) };
    }

    /// Whether a daemon is attached.
    #[allow(dead_code)]
    pub(crate) fn is_attached(&self) -> bool {
        self.attached.load(Ordering::Acquire)
    }
}

const NODE_NAME: &[u8] = b"daedalus\0";

static FOPS: AssertSync<bindings::file_operations> = AssertSync(bindings::file_operations {
    owner: crate::THIS_MODULE.as_ptr().cast(),
    open: Some(chardev_open),
    release: Some(chardev_release),
    // SAFETY: all-zero is a valid `file_operations` (every callback `None`).
    ..unsafe { core::mem::zeroed() }
});

/// The [`Chardev`] behind an open file: `misc_open` stores the `miscdevice` in `private_data`.
///
/// # Safety
///
/// `file` is a file of `/dev/daedalus` (opened through `misc_open`).
unsafe fn chardev_of(file: *mut bindings::file) -> *mut Chardev {
    // SAFETY: `private_data` is our registered `miscdevice`, the `misc` field of a `Chardev`.
    unsafe {
        (*file)
            .private_data
            .cast::<u8>()
            .sub(offset_of!(Chardev, misc))
            .cast::<Chardev>()
    }
}

/// # Safety
///
/// Only called by the VFS (through `misc_open`) for `/dev/daedalus`.
unsafe extern "C" fn chardev_open(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    if !shim::capable_sys_admin() {
        return code::EPERM.to_errno();
    }
    // SAFETY: `file` was opened on our node; the `Chardev` lives while the module does, and
    // the open file holds a module reference.
    let cd = unsafe { &*chardev_of(file) };
    if cd
        .attached
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return code::EBUSY.to_errno();
    }
    pr_info!("decode daemon attached\n");
    0
}

/// # Safety
///
/// Only called by the VFS on the last close of a file opened by [`chardev_open`].
unsafe extern "C" fn chardev_release(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: as in `chardev_open`; the file being released was opened successfully.
    let cd = unsafe { &*chardev_of(file) };
    cd.attached.store(false, Ordering::Release);
    pr_info!("decode daemon detached\n");
    0
}
