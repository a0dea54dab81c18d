// SPDX-License-Identifier: GPL-2.0
//! Misc devices: [`MiscRegistration`] registers a `/dev` node whose file operations, and its
//! read-only sysfs attributes (up to [`MAX_ATTRS`]), are the methods of a [`MiscOps`]
//! implementation.
//!
//! The attributes follow upstream Rust's configfs `AttributeList`: a constant table built at
//! compile time, one C callback per attribute index (`show::<M, I>`), which passes the index to
//! the driver; the C structs themselves are made by [`super::compat`] (their layout changes
//! between kernel versions).
//!
//! Lifetimes: the registration's data ([`MiscOps::Data`]) is used by `open` and the attribute's
//! `show` only; each open file gets its own value ([`MiscOps::FileData`], made by `open`,
//! dropped by `release`), which every other file operation receives. So a file never reaches
//! the registration after `open`, and needs nothing from it to stay valid: whatever the file's
//! operations use, the file's own value keeps alive (for the daemon chardev, a counted
//! reference on the device).

use core::ffi::CStr;
use core::marker::PhantomData;
use core::mem::offset_of;
use core::pin::Pin;
use core::ptr::{addr_of, null};

use super::bindings;
use super::compat::{self, ShowFn};
use super::kernel::{
    c_int, c_long, c_uint, c_ulong, c_void, check, code, errno, pin_data, pin_init_from_closure,
    pinned_drop, try_pin_init, zeroed, Error, InPlaceInit, KBox, Opaque, PinInit, Result, UserAddr,
    GFP_KERNEL, PAGE_SIZE,
};
use super::sync::{PollMask, PollTable};

/// A misc device's behaviour: its node, its file operations, its sysfs attribute.
pub(crate) trait MiscOps: Sized + 'static {
    /// What the registration holds, for [`MiscOps::open`] and [`MiscOps::show`].
    type Data: Send + Sync;
    /// What each open file holds, from [`MiscOps::open`] to [`MiscOps::release`].
    type FileData: Send + Sync;
    /// The node's name: `/dev/NAME`, `/sys/class/misc/NAME`.
    const NAME: &'static CStr;
    /// The node's mode as the kernel creates it (udev rules may give it to a group).
    const MODE: u16;
    /// The names of the node's read-only sysfs attributes (mode 0444: readable by every user),
    /// at most [`MAX_ATTRS`] (more is a build error); [`MiscOps::show`] fills them.
    const ATTRS: &'static [&'static CStr] = &[];

    /// A file is being opened: its data, or the error `open()` returns.
    fn open(data: &Self::Data, file: &MiscFile<'_>) -> Result<Self::FileData>;
    /// The file's last reference is gone (`close()` of its last descriptor).
    fn release(data: Self::FileData, file: &MiscFile<'_>);
    /// `read()` of up to `count` bytes into `buf`: how many bytes were copied.
    fn read(
        data: &Self::FileData,
        file: &MiscFile<'_>,
        buf: UserAddr,
        count: usize,
    ) -> Result<usize>;
    /// `poll()`: registers the queues to wait on (`'a`: until the file is released) and says
    /// which events are ready.
    fn poll<'a>(data: &'a Self::FileData, file: &MiscFile<'_>, pt: &mut PollTable<'a>) -> PollMask;
    /// `ioctl()` (and its 32-bit compat form, `arg` converted by `compat_ptr_ioctl`).
    fn ioctl(data: &Self::FileData, file: &MiscFile<'_>, cmd: u32, arg: UserAddr) -> Result;
    /// Fills the sysfs attribute `ATTRS[attr]`.
    fn show(_data: &Self::Data, _attr: usize, _buf: &mut SysfsBuf<'_>) -> Result {
        Err(code::EIO)
    }
}

/// The most sysfs attributes a misc node has.
pub(crate) const MAX_ATTRS: usize = 24;

/// `[show::<M, 0>, show::<M, 1>, ...]`: one C callback per attribute index.
macro_rules! show_table {
    ($m:ty; $($i:literal)*) => { [$(show::<$m, $i> as ShowFn),*] };
}

/// A registered misc device and its data.
///
/// # Invariants
///
/// 1. `misc` is registered (`misc_register`) from the end of [`MiscRegistration::register`]
///    until the drop (`misc_deregister`, before the fields go), with the fops and attribute
///    tables of `M`; `data` is initialized before (field order in `register`) and dropped after,
///    and the value never moves (pinned).
/// 2. `misc_open` sets `file->private_data` to `&misc` before calling our `open`, which
///    replaces it with a leaked `KBox<M::FileData>` (on success): the `private_data` of every
///    other file operation.
/// 3. `misc_register` makes `&misc` the drvdata of the node's `struct device`, whose sysfs
///    attribute calls `show`; `misc_deregister` removes the attribute, waiting for running
///    `show`s, before `data` goes.
#[pin_data(PinnedDrop)]
pub(crate) struct MiscRegistration<M: MiscOps> {
    data: M::Data,
    #[pin]
    misc: Opaque<bindings::miscdevice>,
}

// SAFETY: registered and deregistered from any task (the misc core locks internally); `data` is
// `Send`.
unsafe impl<M: MiscOps> Send for MiscRegistration<M> {}
// SAFETY: `&MiscRegistration` gives no access at all; the callbacks share `data`, which is `Sync`.
unsafe impl<M: MiscOps> Sync for MiscRegistration<M> {}

impl<M: MiscOps> MiscRegistration<M> {
    /// Registers `/dev/M::NAME` with `data`: the node can be opened as soon as this returns.
    pub(crate) fn register(data: M::Data) -> Result<Pin<KBox<Self>>> {
        // Fields in this order: `data` is there before the node can be opened.
        KBox::try_pin_init(
            try_pin_init!(Self {
                data,
                misc <- Self::misc_register(),
            }? Error),
            GFP_KERNEL,
        )
    }

    /// The registered `miscdevice` (invariant 1).
    fn misc_register() -> impl PinInit<Opaque<bindings::miscdevice>, Error> {
        // SAFETY: the closure either fills and registers the `miscdevice` in the slot, or fails
        // having registered nothing (nothing to undo, nothing to drop).
        unsafe {
            pin_init_from_closure(|slot: *mut Opaque<bindings::miscdevice>| {
                let misc = compat::opaque_raw(slot);
                misc.write(bindings::miscdevice {
                    minor: bindings::MISC_DYNAMIC_MINOR as c_int,
                    name: super::kernel::c_str_ptr(M::NAME),
                    fops: MiscFops::<M>::build(),
                    mode: M::MODE,
                    // The driver core only reads the table (`const struct attribute_group **`).
                    groups: Self::GROUPS.cast_mut(),
                    // Unregistered: no list, no parent, no node name.
                    ..zeroed()
                });
                // The slot is pinned (closure contract): `misc_register` may keep its address.
                check(bindings::misc_register(misc))
            })
        }
    }

    /// The registration whose `misc` is `misc`.
    ///
    /// # Safety
    ///
    /// `misc` is the `misc` field of a `MiscRegistration<M>` that lives for `'a`.
    unsafe fn from_misc<'a>(misc: *mut bindings::miscdevice) -> &'a Self {
        // SAFETY: per the contract; `Opaque` is `repr(transparent)`.
        unsafe { &*misc.cast::<u8>().sub(offset_of!(Self, misc)).cast::<Self>() }
    }

    /// The C callback of each attribute index.
    const SHOWS: [ShowFn; MAX_ATTRS] =
        show_table!(M; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23);

    /// The attributes `M::ATTRS`, read-only; unused entries stay zero (never listed).
    const ATTR_TABLE: [bindings::device_attribute; MAX_ATTRS] = {
        assert!(
            M::ATTRS.len() <= MAX_ATTRS,
            "more sysfs attributes than MAX_ATTRS"
        );
        let mut t = [const { zeroed::<bindings::device_attribute>() }; MAX_ATTRS];
        let mut i = 0;
        while i < M::ATTRS.len() {
            t[i] = compat::device_attribute(M::ATTRS[i], 0o444, Self::SHOWS[i]);
            i += 1;
        }
        t
    };

    /// [`Self::ATTR_TABLE`] as a `'static` table (a promoted constant: sysfs only reads it).
    const ATTR_TABLE_REF: &'static [bindings::device_attribute; MAX_ATTRS] = &Self::ATTR_TABLE;

    /// The NULL-terminated attribute list of the group.
    const ATTR_LIST: [*const bindings::attribute; MAX_ATTRS + 1] = {
        let mut list = [null(); MAX_ATTRS + 1];
        let mut i = 0;
        while i < M::ATTRS.len() {
            list[i] = &Self::ATTR_TABLE_REF[i].attr;
            i += 1;
        }
        list
    };

    /// [`Self::ATTR_LIST`], `'static`.
    const ATTR_LIST_REF: &'static [*const bindings::attribute; MAX_ATTRS + 1] = &Self::ATTR_LIST;

    /// The node's attribute group: no name, no visibility callback, no binary files.
    const GROUP: bindings::attribute_group = compat::attribute_group(Self::ATTR_LIST_REF.as_ptr());

    /// The NULL-terminated group list of the node.
    const GROUP_LIST: &'static [*const bindings::attribute_group; 2] = &[&Self::GROUP, null()];

    /// The node's `groups`: none without attributes.
    const GROUPS: *const *const bindings::attribute_group = if M::ATTRS.is_empty() {
        null()
    } else {
        Self::GROUP_LIST.as_ptr()
    };
}

vtable! {
    /// The `file_operations` of a misc node of `M` (`owner`: files hold a module reference).
    struct MiscFops<M: MiscOps>: bindings::file_operations {
        owner: compat::THIS_MODULE,
        open: Some(open::<M>),
        release: Some(release::<M>),
        read: Some(read::<M>),
        poll: Some(poll::<M>),
        unlocked_ioctl: Some(ioctl::<M>),
        // 32-bit processes exist only with CONFIG_COMPAT (not on arm64 with 16 KiB pages, where
        // the kernel has no `compat_ptr_ioctl` at all).
        #[cfg(CONFIG_COMPAT)]
        compat_ioctl: Some(bindings::compat_ptr_ioctl),
        // Every other callback `None`.
        ..zeroed()
    }
}

#[pinned_drop]
impl<M: MiscOps> PinnedDrop for MiscRegistration<M> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: registered (invariant 1). Afterwards no `open` or `show` starts or runs (the
        // misc core's list and sysfs), and open files only use their own data (invariant 2), so
        // `data` can go.
        unsafe { bindings::misc_deregister(self.misc.get()) };
    }
}

/// A file of a misc device, during one of its file operations.
///
/// # Invariants
///
/// `raw` is a live `struct file` for `'a`.
pub(crate) struct MiscFile<'a> {
    raw: *mut bindings::file,
    _p: PhantomData<&'a bindings::file>,
}

impl MiscFile<'_> {
    /// # Safety
    ///
    /// `raw` is a live `struct file` for as long as the value exists.
    unsafe fn from_raw(raw: *mut bindings::file) -> Self {
        // INVARIANT: per the contract.
        MiscFile {
            raw,
            _p: PhantomData,
        }
    }

    /// Whether the file was opened (or `fcntl`ed) with `O_NONBLOCK`.
    pub(crate) fn nonblocking(&self) -> bool {
        // SAFETY: live (type invariant); `F_SETFL` may change the flags at any time, so this is
        // one `READ_ONCE`-like read, as C reads them.
        let flags = unsafe { addr_of!((*self.raw).f_flags).read_volatile() };
        flags & bindings::O_NONBLOCK != 0
    }
}

/// The page a sysfs `show` fills.
///
/// # Invariants
///
/// `page` is writable for `PAGE_SIZE` bytes for `'a`; the first `len <= PAGE_SIZE` are written.
pub(crate) struct SysfsBuf<'a> {
    page: *mut u8,
    len: usize,
    _p: PhantomData<&'a mut [u8]>,
}

impl core::fmt::Write for SysfsBuf<'_> {
    /// Appends formatted text (`write!`); an error (nothing more written) when the page is full.
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.write(s.as_bytes()).map_err(|_| core::fmt::Error)
    }
}

impl SysfsBuf<'_> {
    /// Appends `text`: `EFBIG` (and nothing written) if it does not fit in the page.
    pub(crate) fn write(&mut self, text: &[u8]) -> Result {
        let end = self
            .len
            .checked_add(text.len())
            .filter(|&end| end <= PAGE_SIZE)
            .ok_or(code::EFBIG)?;
        // SAFETY: `page[len..end]` is within the page (type invariant, `end <= PAGE_SIZE`) and
        // does not overlap `text`, a Rust slice.
        unsafe {
            core::ptr::copy_nonoverlapping(text.as_ptr(), self.page.add(self.len), text.len())
        };
        // INVARIANT: written up to `end`, at most `PAGE_SIZE`.
        self.len = end;
        Ok(())
    }
}

/// The data of a file opened by [`open`].
///
/// # Safety
///
/// `file` is a file of a `MiscRegistration<M>`'s node opened by `open::<M>`, not yet released,
/// for `'a`.
unsafe fn file_data<'a, M: MiscOps>(file: *mut bindings::file) -> &'a M::FileData {
    // SAFETY: `private_data` is the file's leaked `KBox<M::FileData>` (invariant 2), freed only
    // by `release::<M>`.
    unsafe { &*(*file).private_data.cast::<M::FileData>() }
}

/// `file_operations.open`, called by `misc_open`.
///
/// # Safety
///
/// Only called by the VFS (through `misc_open`) for a file of a `MiscRegistration<M>`'s node.
unsafe extern "C" fn open<M: MiscOps>(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: `misc_open` stored the registration's `misc` in `private_data` (invariant 2),
    // and holds the misc core's lock, so the registration is not deregistered meanwhile; the
    // file is live during its `open`.
    let (reg, f) = unsafe {
        (
            MiscRegistration::<M>::from_misc((*file).private_data.cast()),
            MiscFile::from_raw(file),
        )
    };
    // Allocated first, so that nothing can fail once the driver's `open` succeeded.
    let slot = match KBox::<M::FileData>::new_uninit(GFP_KERNEL) {
        Ok(slot) => slot,
        Err(e) => return Error::from(e).to_errno(),
    };
    match M::open(&reg.data, &f) {
        Ok(data) => {
            let data = KBox::into_raw(KBox::write(slot, data));
            // SAFETY: the file is ours while it is being opened; from here on `private_data`
            // is its data (invariant 2), freed by `release::<M>`.
            unsafe { (*file).private_data = data.cast::<c_void>() };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `file_operations.release`.
///
/// # Safety
///
/// Only called by the VFS on the last reference of a file opened by [`open`].
unsafe extern "C" fn release<M: MiscOps>(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: opened by `open::<M>` (invariant 2: `private_data` is its leaked box), released
    // once: the box is ours again; the file is live during its `release`.
    let (data, f) = unsafe {
        (
            KBox::from_raw((*file).private_data.cast::<M::FileData>()),
            MiscFile::from_raw(file),
        )
    };
    M::release(KBox::into_inner(data), &f);
    0
}

/// `file_operations.read`.
///
/// # Safety
///
/// VFS `read` on a file opened by [`open`]; `buf` is a userspace address.
unsafe extern "C" fn read<M: MiscOps>(
    file: *mut bindings::file,
    buf: *mut u8,
    count: usize,
    _ppos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: opened by `open::<M>`, not released while one of its operations runs.
    let (data, f) = unsafe { (file_data::<M>(file), MiscFile::from_raw(file)) };
    match M::read(data, &f, UserAddr::new(buf as usize), count) {
        Ok(n) => isize::try_from(n).unwrap_or(isize::MAX),
        Err(e) => e.to_errno() as isize,
    }
}

/// `file_operations.poll`.
///
/// # Safety
///
/// VFS `poll` on a file opened by [`open`].
unsafe extern "C" fn poll<M: MiscOps>(
    file: *mut bindings::file,
    pt: *mut bindings::poll_table_struct,
) -> u32 {
    // SAFETY: opened by `open::<M>`; `file` and `pt` are those of this `poll()` call; the
    // file's data, and the table's lifetime with it, last until the file is released.
    let (data, f, mut pt) = unsafe {
        (
            file_data::<M>(file),
            MiscFile::from_raw(file),
            PollTable::from_raw(file, pt),
        )
    };
    M::poll(data, &f, &mut pt).raw()
}

/// `file_operations.unlocked_ioctl`.
///
/// # Safety
///
/// VFS `unlocked_ioctl` on a file opened by [`open`]; `arg` is a userspace address.
unsafe extern "C" fn ioctl<M: MiscOps>(
    file: *mut bindings::file,
    cmd: c_uint,
    arg: c_ulong,
) -> c_long {
    // SAFETY: opened by `open::<M>`, not released while one of its operations runs.
    let (data, f) = unsafe { (file_data::<M>(file), MiscFile::from_raw(file)) };
    errno(M::ioctl(data, &f, cmd, UserAddr::new(arg))) as c_long
}

/// `device_attribute.show` of attribute `I` of `M` (`M::ATTRS[I]`).
///
/// # Safety
///
/// Only called by sysfs for attribute `I` of a `MiscRegistration<M>`'s node, with a page.
unsafe extern "C" fn show<M: MiscOps, const I: usize>(
    dev: *mut bindings::device,
    _attr: *mut bindings::device_attribute,
    buf: *mut u8,
) -> isize {
    // SAFETY: the node's drvdata is the registration's `misc`, alive while the attribute
    // exists (invariant 3); `buf` is a `PAGE_SIZE` buffer for this call.
    let reg = unsafe { MiscRegistration::<M>::from_misc((*dev).driver_data.cast()) };
    // INVARIANT: as above; nothing written yet.
    let mut page = SysfsBuf {
        page: buf,
        len: 0,
        _p: PhantomData,
    };
    match M::show(&reg.data, I, &mut page) {
        Ok(()) => isize::try_from(page.len).unwrap_or(0),
        Err(e) => e.to_errno() as isize,
    }
}
