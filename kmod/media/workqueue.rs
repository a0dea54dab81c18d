// SPDX-License-Identifier: GPL-2.0
//! Delayed work on the system workqueue: [`DelayedWork`] (the job watchdog).

use super::kernel::{pin_data, pin_init, pinned_drop, PinInit};

use core::pin::Pin;

use super::bindings;
use super::sync::SyncRaw;
use super::time::Delta;

/// A `delayed_work` whose function is fixed at initialization.
///
/// # Invariants
///
/// `raw` is initialized by `INIT_DELAYED_WORK` with the function given to
/// [`DelayedWork::new`] before the `DelayedWork` is reachable (pin-init), and never moves. Drop
/// cancels it and waits for a running instance (`cancel_delayed_work_sync`), so the function
/// never runs on freed memory; the owner still cancels it explicitly (and stops re-arming it)
/// before tearing down what the function uses. `repr(transparent)`: the work's function finds
/// its container from the `delayed_work` address.
#[pin_data(PinnedDrop)]
#[repr(transparent)]
pub(crate) struct DelayedWork {
    #[pin]
    raw: SyncRaw<bindings::delayed_work>,
}

impl DelayedWork {
    /// Work that runs `func` when it is due.
    ///
    /// # Safety
    ///
    /// `func` may be called (from the system workqueue) with the address of this work's
    /// `work_struct` whenever the work is due, until it is dropped.
    pub(crate) unsafe fn new(
        func: unsafe extern "C" fn(*mut bindings::work_struct),
    ) -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `INIT_DELAYED_WORK` initializes the zeroed work (it leaves `wq` and `cpu`
            // to the first `queue_delayed_work`); the caller vouches for `func`; the work is
            // scheduled and cancelled from any task, the workqueue API locks internally.
            raw <- unsafe {
                SyncRaw::new(move |slot| bindings::daedalus_init_delayed_work(slot, Some(func)))
            },
        })
    }

    /// Runs the work after `delay`, unless it is already pending (then nothing changes).
    pub(crate) fn schedule(&self, delay: Delta) {
        // SAFETY: `raw` is initialized (type invariant).
        unsafe { bindings::daedalus_schedule_delayed_work(self.raw.get(), delay.as_raw()) };
    }

    /// Cancels the work and waits until a running instance returned. Layer-only: called from the
    /// work itself (the driver's `M2mDriver::watchdog`) it would wait for itself.
    pub(super) fn cancel_sync(&self) {
        // SAFETY: `raw` is initialized (type invariant).
        unsafe { bindings::cancel_delayed_work_sync(self.raw.get()) };
    }
}

#[pinned_drop]
impl PinnedDrop for DelayedWork {
    fn drop(self: Pin<&mut Self>) {
        self.cancel_sync();
    }
}
