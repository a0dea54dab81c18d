// SPDX-License-Identifier: GPL-2.0
//! Time in jiffies: [`Jiffies`] (a point in time) and [`Delta`] (a duration), and the module
//! parameter that sets the job timeout.
//!
//! The two are separate types because the counter wraps: two points in time are only ordered
//! by [`Jiffies::is_after_eq`] (`time_after_eq`), never by `<`, whereas durations are plain
//! counts and are ordered.

use super::bindings;
use super::kernel::{c_long, c_ulong};

/// A point in time: a value of the kernel's `jiffies` counter (which wraps).
///
/// Not `Ord`: compare with [`Jiffies::is_after_eq`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Jiffies(c_ulong);

/// A duration in jiffies.
///
/// # Invariants
///
/// At most `LONG_MAX`, so it fits the `long` timeouts of the C APIs.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Delta(c_ulong);

impl Jiffies {
    /// The current time.
    pub(crate) fn now() -> Self {
        // SAFETY: reads the `jiffies` counter.
        Jiffies(unsafe { bindings::daedalus_jiffies() })
    }

    /// `self + d`, wrapping.
    pub(crate) fn wrapping_add(self, d: Delta) -> Self {
        Jiffies(self.0.wrapping_add(d.0))
    }

    /// Whether `self` is at or after `other` (`time_after_eq`, correct across wrap-around).
    pub(crate) fn is_after_eq(self, other: Jiffies) -> bool {
        (self.0.wrapping_sub(other.0) as isize) >= 0
    }

    /// The time from `self` until `deadline`, zero if `deadline` is not after `self`.
    pub(crate) fn until(self, deadline: Jiffies) -> Delta {
        if self.is_after_eq(deadline) {
            return Delta(0);
        }
        // INVARIANT: `deadline` is after `self` (`time_after`), i.e. the difference is positive
        // as a `long`.
        Delta(deadline.0.wrapping_sub(self.0))
    }
}

impl Delta {
    /// `ms` milliseconds (rounded up to whole jiffies, as `msecs_to_jiffies`).
    pub(crate) fn from_msecs(ms: u32) -> Self {
        // SAFETY: a pure conversion.
        let j = unsafe { bindings::__msecs_to_jiffies(ms) };
        // INVARIANT: `__msecs_to_jiffies` saturates at `MAX_JIFFY_OFFSET` (`LONG_MAX / 2 - 1`).
        Delta(j)
    }

    /// The count, for the C APIs that take a delay.
    pub(super) fn as_raw(self) -> c_ulong {
        self.0
    }

    /// The count as the `long` timeout of `wait_event_timeout`.
    pub(super) fn as_timeout(self) -> c_long {
        // Fits (type invariant): the fallback is never taken.
        c_long::try_from(self.0).unwrap_or(c_long::MAX)
    }
}

/// The monotonic clock (`ktime_get`) in nanoseconds since boot, for measuring durations finer
/// than jiffies (job latencies).
pub(crate) fn monotonic_ns() -> u64 {
    // SAFETY: reads the clock; callable from any context.
    let t = unsafe { bindings::ktime_get() };
    u64::try_from(t).unwrap_or(0)
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
