// SPDX-License-Identifier: GPL-2.0
//! Time in jiffies, and the module parameter that sets the job timeout.

use super::bindings;
use super::kernel::{c_long, c_ulong};

/// A point in time or a duration, in jiffies (wrapping, as the kernel's counter does).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Jiffies(c_ulong);

impl Jiffies {
    /// The current time.
    pub(crate) fn now() -> Self {
        // SAFETY: reads the `jiffies` counter.
        Jiffies(unsafe { bindings::daedalus_jiffies() })
    }

    /// `ms` milliseconds (rounded up to whole jiffies, as `msecs_to_jiffies`).
    pub(crate) fn from_msecs(ms: u32) -> Self {
        // SAFETY: a pure conversion.
        Jiffies(unsafe { bindings::__msecs_to_jiffies(ms) })
    }

    /// `self + d`, wrapping.
    pub(crate) fn wrapping_add(self, d: Jiffies) -> Self {
        Jiffies(self.0.wrapping_add(d.0))
    }

    /// Whether `self` is at or after `other` (`time_after_eq`, correct across wrap-around).
    pub(crate) fn is_after_eq(self, other: Jiffies) -> bool {
        (self.0.wrapping_sub(other.0) as isize) >= 0
    }

    /// The time from `self` until `deadline` (`deadline - self`, wrapping).
    pub(crate) fn until(self, deadline: Jiffies) -> Jiffies {
        Jiffies(deadline.0.wrapping_sub(self.0))
    }

    /// The raw count, for the C APIs that take a delay.
    pub(super) fn as_raw(self) -> c_ulong {
        self.0
    }

    /// The count as the `long` timeout of `wait_event_timeout`.
    pub(super) fn as_timeout(self) -> c_long {
        self.0 as c_long
    }
}

/// The module's parameters (declared in `glue.c`: `module!` has none on 6.12).
pub(crate) mod params {
    use super::bindings;

    /// `job_timeout_ms`: how long the daemon has to answer a job.
    pub(crate) fn job_timeout_ms() -> u32 {
        // SAFETY: reads a module parameter (`READ_ONCE`).
        unsafe { bindings::daedalus_job_timeout_ms() }
    }
}
