// SPDX-License-Identifier: GPL-2.0
//! V4L2 controls: [`CtrlHandler`], [`CtrlBuilder`], [`Ctrl`], [`CtrlOps`], [`CtrlPayload`].
//!
//! The driver describes its controls ([`StdCtrl`]) and implements [`CtrlOps`] for the data that
//! owns the handler (its "owner"); the layer creates the controls with that owner as their
//! `priv`, wires the `v4l2_ctrl_ops` table to the trait, and hands out controls only as [`Ctrl`]
//! views: under a callback (the new value) or under [`CtrlHandler::snapshot`] (the current one).

use core::marker::PhantomData;
use core::ptr::NonNull;

use super::bindings;
use super::kernel::{
    c_int, c_void, check, errno, pin_init_from_closure, Error, Opaque, PinInit, Result,
};

/// The callbacks of a handler's tracked controls, implemented by the handler's owner.
pub(crate) trait CtrlOps: Sync + Sized {
    /// Checks a new value (`S_EXT_CTRLS`, `TRY_EXT_CTRLS`, a request being queued).
    ///
    /// Called by the core with the handler lock held, possibly from `device_run` (request
    /// setup) without the device lock: `self` is the owner only, which must not take the
    /// handler's lock.
    fn try_ctrl(&self, ctrl: &Ctrl<'_>) -> Result;
    /// Applies a new value (also for the defaults, while the handler is being set up).
    fn s_ctrl(&self, ctrl: &Ctrl<'_>) -> Result;
}

/// A standard control to create (name, type and flags come from the core, from `id`).
pub(crate) struct StdCtrl {
    pub(crate) id: u32,
    /// Menu range and default (ignored for compound controls): the lowest menu item,
    pub(crate) min: i64,
    /// the highest one,
    pub(crate) max: i64,
    /// and the default.
    pub(crate) def: i64,
    /// Bit `n` set: menu item `n` is not supported (skipped by `VIDIOC_QUERYMENU`).
    pub(crate) menu_skip_mask: u64,
    /// Maximum number of elements of a dynamic array control (0: not an array).
    pub(crate) dims0: u32,
    /// Whether the owner's [`CtrlOps`] check and track this control.
    pub(crate) tracked: bool,
}

/// A control handler whose tracked controls call `O`'s [`CtrlOps`].
///
/// # Invariants
///
/// - `raw` was initialized by `v4l2_ctrl_handler_init` ([`CtrlHandler::new`], pin-init: it never
///   moves) and is freed by drop with `v4l2_ctrl_handler_free`; in between, `raw.lock` points to
///   its own mutex.
/// - Every control created with ops has `ops == CtrlOpsVTable::<O>` and `priv` = the owner given
///   to [`CtrlHandler::add_controls`], an `O` that outlives the handler (its contract).
#[repr(transparent)]
pub(crate) struct CtrlHandler<O: CtrlOps> {
    raw: Opaque<bindings::v4l2_ctrl_handler>,
    _o: PhantomData<O>,
}

// SAFETY: the handler is used from any task; the core serializes it with its own lock.
unsafe impl<O: CtrlOps> Send for CtrlHandler<O> {}
// SAFETY: as above; `&CtrlHandler` only reaches the handler through the core's locked APIs.
unsafe impl<O: CtrlOps> Sync for CtrlHandler<O> {}

/// Creates a handler's controls (see [`CtrlHandler::add_controls`]).
pub(crate) struct CtrlBuilder<'a, O: CtrlOps> {
    hdl: *mut bindings::v4l2_ctrl_handler,
    owner: &'a O,
}

impl<O: CtrlOps> CtrlBuilder<'_, O> {
    /// Adds a standard control. Errors accumulate in the handler (checked once by
    /// `add_controls`).
    pub(crate) fn add_std(&mut self, c: &StdCtrl) {
        let mut cfg = bindings::v4l2_ctrl_config {
            id: c.id,
            min: c.min,
            max: c.max,
            def: c.def,
            menu_skip_mask: c.menu_skip_mask,
            ..Default::default()
        };
        cfg.dims[0] = c.dims0;
        let mut owner: *mut c_void = core::ptr::null_mut();
        if c.tracked {
            cfg.ops = CtrlOpsVTable::<O>::build();
            owner = core::ptr::from_ref(self.owner).cast_mut().cast();
        }
        // SAFETY: `hdl` is initialized (`add_controls` made this builder); `cfg` describes a
        // standard control and is copied by the core; `owner` outlives the handler
        // (`add_controls`' contract).
        unsafe { bindings::v4l2_ctrl_new_custom(self.hdl, &cfg, owner) };
    }
}

impl<O: CtrlOps> CtrlHandler<O> {
    /// An empty handler with room for about `nr_of_controls_hint` controls.
    pub(crate) fn new(nr_of_controls_hint: u32) -> impl PinInit<Self, Error> {
        // SAFETY: the closure initializes the slot completely (zeroed, as the C initializer
        // expects kzalloc'ed memory, then `v4l2_ctrl_handler_init`) or fails leaving nothing to
        // undo: a handler whose init failed has no buckets, which `v4l2_ctrl_handler_free` (run
        // anyway, as the C drivers do) treats as nothing to free.
        unsafe {
            pin_init_from_closure(move |slot: *mut Self| {
                // `repr(transparent)` over the `Opaque`.
                let hdl = crate::media::compat::opaque_raw(
                    slot.cast::<Opaque<bindings::v4l2_ctrl_handler>>(),
                );
                core::ptr::write_bytes(hdl, 0, 1);
                let r = check(bindings::daedalus_ctrl_handler_init(
                    hdl,
                    nr_of_controls_hint,
                ));
                if r.is_err() {
                    bindings::v4l2_ctrl_handler_free(hdl);
                }
                r
            })
        }
    }

    /// Creates the handler's controls with `build`, then applies their defaults (which calls
    /// `owner`'s `s_ctrl`). On an error the controls made so far stay, freed with the handler.
    ///
    /// # Safety
    ///
    /// `owner` stays valid and does not move until the handler is dropped; called once.
    pub(in crate::media) unsafe fn add_controls(
        &self,
        owner: &O,
        build: impl FnOnce(&mut CtrlBuilder<'_, O>),
    ) -> Result {
        let hdl = self.raw.get();
        build(&mut CtrlBuilder { hdl, owner });
        // SAFETY: initialized (type invariant); `error` accumulates the builder's failures.
        check(unsafe { (*hdl).error })?;
        // SAFETY: the handler is complete; applying the defaults calls `owner`'s `s_ctrl`, whose
        // `priv` is valid (contract).
        check(unsafe { bindings::v4l2_ctrl_handler_setup(hdl) })
    }

    /// Makes requests carry only the controls `carried` says yes to (and the control classes):
    /// the control handler a
    /// request gets (at its first `S_EXT_CTRLS`, or when its buffer is queued) has a copy of
    /// those only, the others are neither settable in a request nor copied at its completion.
    /// Controls outside requests (`S_EXT_CTRLS` on the file, `G_EXT_CTRLS`, `QUERYCTRL`) are
    /// unchanged. Applies to requests bound from now on.
    ///
    /// The core clones a handler's controls into each request except those marked
    /// `from_other_dev` (controls a subdevice's handler brought in), and that mark is read
    /// nowhere else: it is what keeps a control out of requests. Every control costs the request
    /// an allocation of its value (a few KB for the three codecs' compound controls together)
    /// and a copy of it when the request completes.
    pub(crate) fn carry_in_requests(&self, carried: impl Fn(u32) -> bool) {
        let hdl = self.raw.get();
        // SAFETY: the handler is initialized (type invariant): `lock` points to its own mutex,
        // under which its list of control references is walked and their marks are changed (the
        // core reads them under it, in `v4l2_ctrl_request_clone`). Each entry of `ctrl_refs` is
        // the `node` of a live `v4l2_ctrl_ref` whose `ctrl` is a live control of the handler.
        unsafe {
            let lock = (*hdl).lock;
            bindings::daedalus_mutex_lock(lock);
            let head = core::ptr::addr_of_mut!((*hdl).ctrl_refs);
            let mut pos = (*head).next;
            while pos != head {
                let r = pos
                    .byte_sub(core::mem::offset_of!(bindings::v4l2_ctrl_ref, node))
                    .cast::<bindings::v4l2_ctrl_ref>();
                let ctrl = &*(*r).ctrl;
                // A class control stays: the core adds one to a request's handler for any
                // non-compound control whose class has none there yet, and that one would
                // have no room for a request value (`cur_to_req` then writes through NULL).
                let class = ctrl.type_ == bindings::V4L2_CTRL_TYPE_CTRL_CLASS;
                (*r).from_other_dev = !(class || carried(ctrl.id));
                pos = (*pos).next;
            }
            bindings::mutex_unlock(lock);
        }
    }

    /// The C handler, for the core APIs that take it (`fh.ctrl_handler`, requests).
    pub(crate) fn as_raw(&self) -> *mut bindings::v4l2_ctrl_handler {
        self.raw.get()
    }

    /// Calls `f` with the current values of the controls `ids` (`None` for an id the handler
    /// does not have), under the handler's lock, so that no `S_EXT_CTRLS` or request setup
    /// changes them meanwhile. At most `N` ids are looked up.
    ///
    /// `f` must not call back into the handler (its lock is held).
    pub(crate) fn snapshot<const N: usize, R>(
        &self,
        ids: &[u32],
        f: impl FnOnce(&[Option<Ctrl<'_>>]) -> R,
    ) -> R {
        let hdl = self.raw.get();
        let n = ids.len().min(N);
        // SAFETY: a plain read of the initialized handler (type invariant): `lock` points to its
        // own mutex, which serializes every change of the controls' current values.
        let lock = unsafe { (*hdl).lock };
        let mut found: [Option<NonNull<bindings::v4l2_ctrl>>; N] = [None; N];
        for (slot, &id) in found.iter_mut().zip(ids) {
            // SAFETY: the handler is initialized (type invariant); `v4l2_ctrl_find` takes its
            // lock itself, so it runs before ours is taken.
            *slot = NonNull::new(unsafe { bindings::v4l2_ctrl_find(hdl, id) });
        }
        // SAFETY: as above: the handler's initialized lock.
        unsafe { bindings::daedalus_mutex_lock(lock) };
        let mut ctrls: [Option<Ctrl<'_>>; N] = [const { None }; N];
        for (c, p) in ctrls.iter_mut().zip(found) {
            // SAFETY: a control of this handler (alive while the handler is), its lock held for
            // as long as the views exist (they do not escape `f`): `p_cur` holds `elems`
            // elements of `elem_size` bytes.
            *c = p.map(|p| unsafe { Ctrl::new(p, (*p.as_ptr()).p_cur.p) });
        }
        let r = f(ctrls.get(..n).unwrap_or(&[]));
        // SAFETY: locked above by this task.
        unsafe { bindings::mutex_unlock(lock) };
        r
    }
}

impl<O: CtrlOps> Drop for CtrlHandler<O> {
    fn drop(&mut self) {
        // SAFETY: initialized (type invariant), freed once, here.
        unsafe { bindings::v4l2_ctrl_handler_free(self.raw.get()) };
    }
}

/// A control and one of its values: the new value in a [`CtrlOps`] callback, the current one
/// under [`CtrlHandler::snapshot`].
///
/// # Invariants
///
/// `raw` is a live control and `val` points to `elems * elem_size` bytes of its value, neither
/// changing for `'a` (the handler's lock is held).
pub(crate) struct Ctrl<'a> {
    raw: NonNull<bindings::v4l2_ctrl>,
    val: *const c_void,
    _p: PhantomData<&'a bindings::v4l2_ctrl>,
}

impl Ctrl<'_> {
    /// # Safety
    ///
    /// As the type invariants, for the lifetime chosen by the caller.
    unsafe fn new(raw: NonNull<bindings::v4l2_ctrl>, val: *const c_void) -> Self {
        // INVARIANT: per the contract.
        Ctrl {
            raw,
            val,
            _p: PhantomData,
        }
    }

    fn ctrl(&self) -> &bindings::v4l2_ctrl {
        // SAFETY: live and not changing (type invariant).
        unsafe { self.raw.as_ref() }
    }

    /// The control id.
    pub(crate) fn id(&self) -> u32 {
        self.ctrl().id
    }

    /// The number of elements of the value.
    pub(crate) fn elems(&self) -> u32 {
        self.ctrl().elems
    }

    /// The value's bytes (`elems * elem_size`).
    pub(crate) fn bytes(&self) -> &[u8] {
        let c = self.ctrl();
        let len = (c.elems as usize).saturating_mul(c.elem_size as usize);
        if self.val.is_null() || len == 0 {
            return &[];
        }
        // SAFETY: `val` points to `len` bytes that do not change for the borrow (type
        // invariant).
        unsafe { core::slice::from_raw_parts(self.val.cast::<u8>(), len) }
    }

    /// The value as the payload struct `P`, if this is `P`'s control.
    pub(crate) fn payload<P: CtrlPayload>(&self) -> Option<&P> {
        let c = self.ctrl();
        if c.id != P::ID || c.elem_size as usize != core::mem::size_of::<P>() || self.val.is_null()
        {
            return None;
        }
        // SAFETY: `val` holds at least one element of `elem_size == size_of::<P>()` bytes, of the
        // payload type of `P::ID` (`CtrlPayload` contract), allocated by the core with the
        // alignment of its type; any bit pattern is a valid `P`.
        Some(unsafe { &*self.val.cast::<P>() })
    }
}

/// A compound control payload.
///
/// # Safety
///
/// `Self` is the uAPI payload struct of control `ID` and valid for every bit pattern (integers
/// and arrays of them, as all V4L2 stateless payloads are).
pub(crate) unsafe trait CtrlPayload {
    /// The control whose payload this is.
    const ID: u32;
}

// SAFETY: the payload of V4L2_CID_STATELESS_VP9_FRAME; integers and arrays only.
unsafe impl CtrlPayload for bindings::v4l2_ctrl_vp9_frame {
    const ID: u32 = bindings::V4L2_CID_STATELESS_VP9_FRAME;
}
// SAFETY: the payload of V4L2_CID_STATELESS_AV1_SEQUENCE; integers only.
unsafe impl CtrlPayload for bindings::v4l2_ctrl_av1_sequence {
    const ID: u32 = bindings::V4L2_CID_STATELESS_AV1_SEQUENCE;
}
// SAFETY: the payload of V4L2_CID_STATELESS_H264_SPS; integers and arrays only.
unsafe impl CtrlPayload for bindings::v4l2_ctrl_h264_sps {
    const ID: u32 = bindings::V4L2_CID_STATELESS_H264_SPS;
}

vtable! {
    /// The `v4l2_ctrl_ops` table of owner type `O`.
    struct CtrlOpsVTable<O: CtrlOps>: bindings::v4l2_ctrl_ops {
        try_ctrl: Some(try_ctrl::<O>),
        s_ctrl: Some(s_ctrl::<O>),
        g_volatile_ctrl: None,
    }
}

/// The owner and the new value of a control the core calls back for.
///
/// # Safety
///
/// `ctrl` is a control created by a [`CtrlBuilder<O>`] with ops, in a core callback: the
/// handler lock is held and `p_new` holds the value being checked or set.
unsafe fn callback_args<'a, O: CtrlOps>(ctrl: *mut bindings::v4l2_ctrl) -> (&'a O, Ctrl<'a>) {
    // SAFETY: per the contract; `priv` is the owner, alive while the handler is (CtrlHandler
    // invariant).
    unsafe {
        let raw = NonNull::new_unchecked(ctrl);
        let owner = &*(*ctrl).priv_.cast::<O>();
        (owner, Ctrl::new(raw, (*ctrl).p_new.p))
    }
}

/// `v4l2_ctrl_ops.try_ctrl`.
///
/// # Safety
///
/// Only called by the V4L2 core, for controls created with this table.
unsafe extern "C" fn try_ctrl<O: CtrlOps>(ctrl: *mut bindings::v4l2_ctrl) -> c_int {
    // SAFETY: a control of ours in a core callback (contract).
    let (owner, c) = unsafe { callback_args::<O>(ctrl) };
    errno(owner.try_ctrl(&c))
}

/// `v4l2_ctrl_ops.s_ctrl`.
///
/// # Safety
///
/// As [`try_ctrl`].
unsafe extern "C" fn s_ctrl<O: CtrlOps>(ctrl: *mut bindings::v4l2_ctrl) -> c_int {
    // SAFETY: a control of ours in a core callback (contract).
    let (owner, c) = unsafe { callback_args::<O>(ctrl) };
    errno(owner.s_ctrl(&c))
}
