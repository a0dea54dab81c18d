// SPDX-License-Identifier: GPL-2.0
//! One decode job's life, top to bottom:
//!
//! 1. **Made** in `device_run` ([`crate::queue`]): the layer takes the context's next OUTPUT and
//!    CAPTURE buffers as an [`ActiveJob`], and [`Job::encode`] copies the formats and the full
//!    control state into the job's wire message ([`crate::encode`]). The job queue
//!    ([`crate::jobs`]) then files it ([`Job::new`]), or fails it at once ([`end`]).
//! 2. **Handed over** to the daemon by `read()` ([`Job::hand_over`]): dma-buf fds for the buffers
//!    it has not mapped ([`crate::bufmap`]), then the message; the daemon has the job timeout from
//!    then on.
//! 3. **Answered** by `IOC_COMPLETE` ([`Job::check`]): the answer is checked against the job.
//! 4. **Ended** exactly once ([`Job::finish`] / [`end`]): answered, failed (no daemon, the daemon
//!    gone, a timeout, its context stopping), with the held-picture bookkeeping, then the layer
//!    completes the request and returns the buffers ([`ActiveJob::complete`]). The job queue
//!    first decides how it ends ([`Job::ending`]) and ends it once every older job of its context
//!    has ended: a context's requests complete in the order they were queued.

use crate::bufmap::JobFds;
use crate::device::Daedalus;
use crate::encode;
use crate::media::m2m::{ActiveJob, Disposal, JobBuf};
use crate::media::prelude::*;
use crate::media::time::{Delta, Jiffies};
use crate::media::vb2::BufState;
use crate::stats::End;
use crate::wire::{self, Completion};

/// How a job ended.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The picture is in the CAPTURE buffer, `bytesused` bytes.
    Decoded(u32),
    Failed,
}

/// A decode job in the job queue.
pub(crate) struct Job {
    /// Unique id, the `job_id` of the message and of the daemon's completion.
    pub(crate) id: u64,
    /// Position in the read order, shared with events.
    pub(crate) seq: u64,
    /// The context it decodes for.
    pub(crate) ctx_id: u32,
    /// Handed to the daemon by `read()`.
    pub(crate) read: bool,
    /// When it fails if the daemon has not answered.
    pub(crate) deadline: Jiffies,
    /// When it was made (monotonic clock, ns), for its latency.
    pub(crate) start_ns: u64,
    /// How it ends, once that is decided (and how the counters see it); it then waits in the
    /// queue for the older jobs of its context to end first.
    pub(crate) ending: Option<(Outcome, End)>,
    /// The encoded job message `read()` copies out (its fds set at that moment).
    msg: KVec<u8>,
    /// Its buffers; keeps its context alive.
    active: ActiveJob<Daedalus>,
}

impl Job {
    /// 1. The message of job `id` on `active`'s buffers.
    pub(crate) fn encode(active: &ActiveJob<Daedalus>, id: u64) -> Result<KVec<u8>> {
        encode::encode(active, id)
    }

    /// 1. Job `id`, `seq`-th message of the queue, made at `start_ns`, with message `msg`,
    ///    failed at `deadline` if the daemon has not read it by then.
    pub(crate) fn new(
        id: u64,
        seq: u64,
        deadline: Jiffies,
        start_ns: u64,
        msg: KVec<u8>,
        active: ActiveJob<Daedalus>,
    ) -> Job {
        Job {
            id,
            seq,
            ctx_id: active.file().data().id,
            read: false,
            deadline,
            start_ns,
            ending: None,
            msg,
            active,
        }
    }

    /// 2. `read()` by daemon session `session`: the fds of the buffers it has not mapped and the
    ///    message go to `buf`; from now on it has `timeout` to answer.
    pub(crate) fn hand_over(
        &mut self,
        session: u64,
        buf: UserAddr,
        count: usize,
        timeout: Delta,
    ) -> Result<usize> {
        if count < self.msg.len() {
            return Err(code::EINVAL);
        }
        // Dropping the prepared fds (on any error below) gives them up.
        let fds = JobFds::new(&self.active, session)?;
        wire::set_job_fds(
            &mut self.msg,
            fds.fd(JobBuf::Output),
            fds.fd(JobBuf::Capture),
        )
        .map_err(|_| code::EINVAL)?;
        buf.copy_to(&self.msg)?;
        // The daemon has it now: it gets the full timeout for this job from here.
        self.deadline = Jiffies::now().wrapping_add(timeout);
        fds.commit(&self.active, session);
        self.read = true;
        Ok(self.msg.len())
    }

    /// 3. `IOC_COMPLETE`: what the answer `c` makes of the job, and whether the answer is invalid
    ///    (another context's, or a picture that is empty or larger than the CAPTURE buffer).
    pub(crate) fn check(&self, c: &Completion) -> (Outcome, bool) {
        let length = self.active.dst().plane0().length;
        let bad = self.ctx_id != c.ctx_id
            || (c.status == wire::Status::Ok
                && (c.capture_bytesused == 0 || c.capture_bytesused > length));
        let outcome = if c.status == wire::Status::Ok && !bad {
            Outcome::Decoded(c.capture_bytesused)
        } else {
            Outcome::Failed
        };
        (outcome, bad)
    }

    /// 4. The end of a job taken out of the queue.
    pub(crate) fn finish(self, outcome: Outcome) {
        end(self.active, outcome);
    }
}

/// 4. The end of a job's buffers: both in error unless decoded. (A picture held for more slices
///    goes back in error if any of its jobs failed: the layer keeps count.)
pub(crate) fn end(active: ActiveJob<Daedalus>, outcome: Outcome) {
    let disposal = match outcome {
        Outcome::Decoded(n) => Disposal {
            capture: BufState::Done,
            capture_bytesused: n,
            output: BufState::Done,
        },
        Outcome::Failed => Disposal::FAILED,
    };
    active.complete(disposal);
}
