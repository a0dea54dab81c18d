// SPDX-License-Identifier: GPL-2.0
//! The job queue: decode jobs between the V4L2 side and the daemon attached to `/dev/daedalus`
//! (one job's life, from `device_run` to its end, is [`crate::job`]).
//!
//! `device_run` turns the next OUTPUT/CAPTURE pair of a context into a job: the request's full
//! control state is copied into a wire message ([`crate::wire`]) right away (the next job of the
//! same context will apply its own request to the same handler), and for frame codecs the buffers
//! leave the m2m queues and the m2m job is finished at once, so that every context can have jobs
//! with the daemon at the same time. A job then ends exactly once ([`Job::finish`]) when:
//! - the daemon answers it (`IOC_COMPLETE`, every field checked),
//! - no daemon is attached (at once), the daemon detaches (at once), or it times out
//!   (`job_timeout_ms` module parameter: from when the daemon read it, or for a job still
//!   queued, since the daemon last answered a job),
//! - its context stops streaming (queued jobs at once; jobs the daemon has are waited for, up
//!   to the timeout, so the daemon never writes into a buffer the client got back).
//!
//! Each of these only *decides* how the job ends ([`Job::ending`]); the job then ends once no
//! older job of its context is undecided ([`Jobs::reap`]), so that a context's requests and
//! buffers come back in the order they were queued, as a stateless decoder's clients expect,
//! whichever way and from whichever task each job ends. (The 30-minute stress run caught the
//! race this closes: a daemon killed while a client had several jobs queued; `detach` failed
//! them oldest first, but between two of them the client got a buffer back, queued the next
//! picture, and that job, refused at once for want of a daemon, overtook the older ones.)
//!
//! # Invariants
//!
//! [`Inner`] is only accessed through a `JobsGuard` (`Jobs::locked`), i.e. with the job queue's
//! mutex held, and no job is ended with it held (jobs are taken out of the table, then ended).
//! Every job ends with [`Jobs::ends`] held, and a job leaves the table to end only when its end
//! is decided and no older job of its context is undecided (`Inner::take_ready`).
//! A job owns its buffers and keeps its context alive (the layer's `ActiveJob`: the context does
//! not stop streaming while it has one).

use core::fmt::Write;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::device::Daedalus;
use crate::formats::Codec;
use crate::job::{self, Job, Outcome};
use crate::media::m2m::ActiveJob;
use crate::media::prelude::*;
use crate::media::sync::{LockClass, Mutex, MutexGuard, PollMask, PollTable, WaitQueue};
use crate::media::time::{monotonic_ns, params, Delta, Jiffies};
use crate::media::workqueue::DelayedWork;
use crate::stats::{self, Buffers, ContextStats, Counters, End, Fps};
use crate::video::VideoFile;
use crate::wire::{self, Completion, Hello};

/// Most jobs queued or with the daemon, device-wide; more fail at once with an error buffer.
const MAX_JOBS: usize = 128;
/// Most context events waiting to be read; older ones are dropped when full (they are hints).
const MAX_EVENTS: usize = 64;
/// Most contexts with counters of their own; more are only counted device-wide.
const MAX_TRACKED: usize = 32;

/// The `job_timeout_ms` module parameter, in jiffies.
fn job_timeout() -> Delta {
    Delta::from_msecs(params::job_timeout_ms())
}

#[derive(Clone, Copy)]
struct Event {
    seq: u64,
    /// `None`: a free slot.
    kind: Option<wire::ContextEvent>,
    ctx_id: u32,
}

struct Inner {
    /// Session of the attached daemon; 0 when none.
    session: u64,
    /// Sessions so far (the next attach gets `sessions + 1`).
    sessions: u64,
    /// The attached daemon completed the `IOC_HELLO` handshake.
    greeted: bool,
    next_seq: u64,
    jobs: [Option<KBox<Job>>; MAX_JOBS],
    events: [Event; MAX_EVENTS],
    /// Process id of the attached daemon (0 when none).
    daemon_pid: u32,
    /// Daemons gone so far (`sessions` counts those attached).
    detaches: u64,
    /// Open contexts.
    contexts: u32,
    /// Device-wide counters.
    stats: Counters,
    /// Counters of the open contexts (the first `MAX_TRACKED` at a time).
    ctx_stats: [Option<KBox<ContextStats>>; MAX_TRACKED],
}

/// The job queue of the device; lives in its [`crate::device::DaedalusData`]. Jobs past their
/// deadline are failed by the device's watchdog ([`Jobs::expire`]).
#[pin_data]
pub(crate) struct Jobs {
    #[pin]
    inner: Mutex<Inner>,
    /// Held while jobs end (taken out of the table and finished, [`Jobs::reap`], or refused in
    /// [`Jobs::submit`]): two tasks never end jobs at the same time, so a job cannot overtake an
    /// older one of its context that another task has taken out of the table but not yet ended.
    #[pin]
    ends: Mutex<()>,
    /// Woken when a message is queued, a job ends, or the daemon goes.
    #[pin]
    wq: WaitQueue,
    /// Mirrors "a message waits or no daemon is attached", updated whenever the lock is
    /// released, so that the blocking-read wait condition does not take the lock (it is
    /// evaluated in a non-running task state, where sleeping on a mutex is not allowed).
    readable: AtomicBool,
    next_job: AtomicU64,
    next_ctx: AtomicU32,
    /// Buffer memory of the open contexts.
    buffers: Buffers,
}

/// Holds the job queue's lock; releasing it updates [`Jobs::readable`].
struct JobsGuard<'a> {
    jobs: &'a Jobs,
    inner: MutexGuard<'a, Inner>,
}

impl Deref for JobsGuard<'_> {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl DerefMut for JobsGuard<'_> {
    fn deref_mut(&mut self) -> &mut Inner {
        &mut self.inner
    }
}

impl Drop for JobsGuard<'_> {
    fn drop(&mut self) {
        // Runs before the `inner` field (the lock) is dropped, i.e. still under the lock.
        let readable = self.inner.session == 0 || self.inner.next_message().is_some();
        self.jobs.readable.store(readable, Ordering::Release);
    }
}

impl Inner {
    fn new() -> Inner {
        Inner {
            session: 0,
            sessions: 0,
            greeted: false,
            next_seq: 0,
            jobs: [const { None }; MAX_JOBS],
            events: [Event {
                seq: 0,
                kind: None,
                ctx_id: 0,
            }; MAX_EVENTS],
            daemon_pid: 0,
            detaches: 0,
            contexts: 0,
            stats: Counters::new(),
            ctx_stats: [const { None }; MAX_TRACKED],
        }
    }

    /// The counters of context `id`, if it has its own.
    fn ctx_stats(&mut self, id: u32) -> Option<&mut ContextStats> {
        self.ctx_stats
            .iter_mut()
            .flatten()
            .find(|s| s.id == id)
            .map(|s| &mut **s)
    }

    /// Jobs in the table, of context `id` or (`None`) of every context.
    fn in_flight(&self, id: Option<u32>) -> u32 {
        let n = self
            .jobs
            .iter()
            .flatten()
            .filter(|j| id.is_none() || id == Some(j.ctx_id))
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    fn free_slot(&self) -> Option<usize> {
        self.jobs.iter().position(|j| j.is_none())
    }

    /// Where the oldest unread message is: a job slot or an event slot. (A job whose end is
    /// decided is not for the daemon any more.)
    fn next_message(&self) -> Option<(bool, usize)> {
        let job = self
            .jobs
            .iter()
            .enumerate()
            .filter_map(|(i, j)| {
                j.as_ref()
                    .filter(|j| !j.read && j.ending.is_none())
                    .map(|j| (j.seq, i))
            })
            .min();
        let event = self
            .events
            .iter()
            .enumerate()
            .filter(|(_, e)| e.kind.is_some())
            .map(|(i, e)| (e.seq, i))
            .min();
        match (job, event) {
            (Some(j), Some(e)) if e.0 < j.0 => Some((false, e.1)),
            (Some(j), _) => Some((true, j.1)),
            (None, Some(e)) => Some((false, e.1)),
            (None, None) => None,
        }
    }

    /// Decides that every undecided job matching `pred` ends as `outcome` (`end` for the
    /// counters); returns how many. They end in [`Jobs::reap`].
    fn decide(&mut self, pred: impl Fn(&Job) -> bool, outcome: Outcome, end: End) -> usize {
        let mut n = 0;
        for j in self.jobs.iter_mut().flatten() {
            if j.ending.is_none() && pred(j) {
                j.ending = Some((outcome, end));
                n += 1;
            }
        }
        n
    }

    /// Whether an undecided job of `job`'s context is older than `job`.
    fn waits_for_older(&self, job: &Job) -> bool {
        self.jobs
            .iter()
            .flatten()
            .any(|o| o.ctx_id == job.ctx_id && o.ending.is_none() && o.seq < job.seq)
    }

    /// Takes the jobs that may end now out of the table: decided, with no undecided older job
    /// of their context.
    fn take_ready(&mut self) -> Taken {
        let mut ready = [false; MAX_JOBS];
        for (r, j) in ready.iter_mut().zip(self.jobs.iter()) {
            *r = j
                .as_ref()
                .is_some_and(|j| j.ending.is_some() && !self.waits_for_older(j));
        }
        let mut out = Taken::new();
        for (r, slot) in ready.iter().zip(self.jobs.iter_mut()) {
            if *r {
                out.push(slot.take());
            }
        }
        out
    }
}

/// What [`Jobs::submit`] made of a job.
enum Filed {
    /// In the table, for the daemon.
    Queued,
    /// Refused (the error), in the table to end after the older jobs of its context.
    Deferred(Error),
    /// Refused (the error): ends at once.
    Refused(Error, ActiveJob<Daedalus>),
}

/// Jobs taken out of the table, to be finished after the lock is dropped.
struct Taken {
    jobs: [Option<KBox<Job>>; MAX_JOBS],
    len: usize,
}

impl Taken {
    fn new() -> Taken {
        Taken {
            jobs: [const { None }; MAX_JOBS],
            len: 0,
        }
    }

    fn push(&mut self, job: Option<KBox<Job>>) {
        // At most MAX_JOBS jobs exist, so this never overflows.
        if let Some(slot) = self.jobs.get_mut(self.len) {
            *slot = job;
            self.len += 1;
        }
    }

    /// Ends every job as decided ([`Job::ending`]), oldest first: a context's buffers come back
    /// in the order they were queued, as clients expect. Called with [`Jobs::ends`] held.
    fn end_all(mut self, jobs: &Jobs) {
        // Insertion sort by `seq` (at most MAX_JOBS entries, nearly sorted already). Not
        // `sort_unstable_by_key`: objtool on 6.12 does not know the panic paths of core's sort
        // and warns that they fall through.
        let seq = |j: &Option<KBox<Job>>| j.as_ref().map_or(u64::MAX, |j| j.seq);
        for i in 1..self.len.min(MAX_JOBS) {
            let mut k = i;
            while k > 0 && seq(&self.jobs[k - 1]) > seq(&self.jobs[k]) {
                self.jobs.swap(k - 1, k);
                k -= 1;
            }
        }
        for job in self.jobs.into_iter().flatten() {
            let (outcome, end) = job.ending.unwrap_or((Outcome::Failed, End::Failed));
            jobs.finish(job, outcome, end);
        }
    }
}

impl Jobs {
    /// An empty queue.
    pub(crate) fn new() -> impl PinInit<Jobs> {
        pin_init!(Jobs {
            inner <- Mutex::new(Inner::new(), LockClass::Jobs),
            ends <- Mutex::new((), LockClass::JobEnds),
            wq <- WaitQueue::new(),
            readable: AtomicBool::new(false),
            next_job: AtomicU64::new(1),
            next_ctx: AtomicU32::new(1),
            buffers: Buffers::new(),
        })
    }

    fn locked(&self) -> JobsGuard<'_> {
        JobsGuard {
            jobs: self,
            inner: self.inner.lock(),
        }
    }

    fn wake(&self) {
        self.wq.wake_all();
    }

    /// Ends the jobs whose end is decided and that no undecided job of their context precedes,
    /// oldest first. Called after every decision (the decided jobs it cannot end yet end in the
    /// call after their older jobs' decision).
    fn reap(&self) {
        let _ends = self.ends.lock();
        let ready = self.locked().take_ready();
        ready.end_all(self);
    }

    /// Ends a job taken out of the table (its buffers return), then wakes the daemon's readers.
    /// It is counted first, so a client that got its buffers back reads counters that include
    /// the job.
    fn finish(&self, job: KBox<Job>, outcome: Outcome, end: End) {
        self.count_end(job.ctx_id, job.start_ns, end);
        KBox::into_inner(job).finish(outcome);
        self.wake();
    }

    /// Counts the end of a job of context `ctx_id` that started at `start_ns`.
    fn count_end(&self, ctx_id: u32, start_ns: u64, end: End) {
        let now = monotonic_ns();
        let mut g = self.locked();
        g.stats.ended(end, start_ns, now);
        if let Some(s) = g.ctx_stats(ctx_id) {
            s.counters.ended(end, start_ns, now);
        }
    }

    /// A new context id.
    pub(crate) fn new_context_id(&self) -> u32 {
        self.next_ctx.fetch_add(1, Ordering::Relaxed)
    }

    // -----------------------------------------------------------------------------------------
    // The daemon side

    /// A daemon (process `pid`) opens `/dev/daedalus`: starts a session, or `EBUSY` if one is
    /// attached.
    pub(crate) fn attach(&self, pid: u32) -> Result<u64> {
        let mut g = self.locked();
        let inner = &mut *g;
        if inner.session != 0 {
            return Err(code::EBUSY);
        }
        inner.sessions += 1;
        inner.session = inner.sessions;
        inner.greeted = false;
        inner.daemon_pid = pid;
        Ok(inner.session)
    }

    /// The daemon's file is released: every job it has or would get fails now.
    pub(crate) fn detach(&self) {
        let taken = {
            let mut g = self.locked();
            let inner = &mut *g;
            inner.session = 0;
            inner.greeted = false;
            inner.daemon_pid = 0;
            inner.detaches += 1;
            for e in inner.events.iter_mut() {
                e.kind = None;
            }
            inner.decide(|_| true, Outcome::Failed, End::Failed)
        };
        if taken > 0 {
            pr_warn!("decode daemon detached with {} jobs: failing them\n", taken);
        }
        self.reap();
        self.wake();
    }

    /// `IOC_HELLO`: checks the daemon's protocol version. Returns the module's side of the
    /// handshake, which the daemon gets back even when its version is refused.
    pub(crate) fn hello(&self, theirs: Hello) -> (Hello, Result) {
        let ours = Hello {
            version: wire::VERSION,
            max_message_size: wire::MAX_MESSAGE_SIZE as u32,
            job_timeout_ms: params::job_timeout_ms(),
        };
        if theirs.version != wire::VERSION {
            pr_warn!(
                "decode daemon speaks protocol v{}, module v{}: refused\n",
                theirs.version,
                wire::VERSION
            );
            return (ours, Err(eproto()));
        }
        self.locked().greeted = true;
        (ours, Ok(()))
    }

    /// `poll()` of the daemon's file: readable when a message waits.
    pub(crate) fn poll<'a>(&'a self, pt: &mut PollTable<'a>) -> PollMask {
        self.wq.register(pt);
        if self.locked().next_message().is_some() {
            PollMask::READABLE
        } else {
            PollMask::NONE
        }
    }

    /// `read()` of the daemon's file: copies the oldest message to `buf` (one per call).
    pub(crate) fn read(&self, buf: UserAddr, count: usize, nonblock: bool) -> Result<usize> {
        loop {
            {
                let mut g = self.locked();
                let inner = &mut *g;
                if !inner.greeted {
                    return Err(eproto());
                }
                if let Some((is_job, i)) = inner.next_message() {
                    return if is_job {
                        self.read_job(inner, i, buf, count)
                    } else {
                        read_event(inner, i, buf, count)
                    };
                }
            }
            if nonblock {
                return Err(code::EAGAIN);
            }
            // A message is there or the daemon is gone (lock-free: see `readable`).
            self.wq
                .wait_interruptible(|| self.readable.load(Ordering::Acquire))?;
        }
    }

    /// Hands job `i` to the daemon ([`Job::hand_over`]). Called with the lock held (`inner`).
    fn read_job(&self, inner: &mut Inner, i: usize, buf: UserAddr, count: usize) -> Result<usize> {
        let session = inner.session;
        let Some(job) = inner.jobs.get_mut(i).and_then(|j| j.as_mut()) else {
            return Err(code::EINVAL);
        };
        job.hand_over(session, buf, count, job_timeout())
    }

    /// `IOC_COMPLETE`: the daemon's answer to a job.
    pub(crate) fn complete(&self, c: Completion) -> Result {
        let bad = {
            let mut g = self.locked();
            let inner = &mut *g;
            if !inner.greeted {
                return Err(eproto());
            }
            let job = inner
                .jobs
                .iter_mut()
                .flatten()
                .find(|j| j.id == c.job_id && j.read && j.ending.is_none())
                .ok_or(code::ENOENT)?;
            let (outcome, bad) = job.check(&c);
            let end = match outcome {
                Outcome::Decoded(_) => End::Decoded,
                Outcome::Failed => End::Failed,
            };
            job.ending = Some((outcome, end));
            // The daemon makes progress: jobs still waiting to be read are not late because
            // their queue is long (a slow stream, many requests in flight).
            let deadline = Jiffies::now().wrapping_add(job_timeout());
            for j in inner.jobs.iter_mut().flatten().filter(|j| !j.read) {
                j.deadline = deadline;
            }
            bad
        };
        if bad {
            pr_warn!("invalid completion of job {}: failing it\n", c.job_id);
        }
        self.reap();
        if bad {
            Err(code::EINVAL)
        } else {
            Ok(())
        }
    }

    // -----------------------------------------------------------------------------------------
    // The V4L2 side

    /// Queues a context event for the daemon (if one is attached).
    pub(crate) fn event(&self, kind: wire::ContextEvent, ctx_id: u32) {
        {
            let mut g = self.locked();
            let inner = &mut *g;
            if inner.session == 0 {
                return;
            }
            let seq = inner.next_seq;
            inner.next_seq += 1;
            // A full ring drops the oldest event: they only let the daemon free state early.
            let slot = match inner.events.iter().position(|e| e.kind.is_none()) {
                Some(i) => i,
                None => {
                    let (i, _) = inner
                        .events
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, e)| e.seq)
                        .unwrap_or((0, &inner.events[0]));
                    i
                }
            };
            inner.events[slot] = Event {
                seq,
                kind: Some(kind),
                ctx_id,
            };
        }
        self.wake();
    }

    /// Files a job the layer started in `device_run` (its buffers, counted in its context);
    /// whatever happens it ends through [`Job::finish`] or [`job::end`], after the older jobs of
    /// its context.
    pub(crate) fn submit(&self, watchdog: &DelayedWork, active: ActiveJob<Daedalus>) {
        let id = self.next_job.fetch_add(1, Ordering::Relaxed);
        let start_ns = monotonic_ns();
        let ctx_id = active.file().data().id;
        self.count_submitted(ctx_id, active.file().data().codec());
        let msg = Job::encode(&active, id);
        let timeout = job_timeout();
        let now = Jiffies::now();
        // Allocated before the locks: the job only moves in once nothing can fail any more.
        let mem = KBox::<Job>::new_uninit(GFP_KERNEL);
        // No other task ends jobs meanwhile: a job refused here cannot overtake an older job of
        // its context that another task has taken out of the table but not ended yet.
        let ends = self.ends.lock();
        let filed = {
            let mut g = self.locked();
            let inner = &mut *g;
            let refused = match (&msg, inner.session != 0) {
                (Err(e), _) => Some(*e),
                (Ok(_), false) => Some(code::ENODEV),
                (Ok(_), true) => None,
            };
            // A refused job of a context with older jobs in the table waits there, decided,
            // to end after them.
            let behind = inner.in_flight(Some(ctx_id)) > 0;
            let seq = inner.next_seq;
            let entry = inner.free_slot().and_then(|s| inner.jobs.get_mut(s));
            match (refused, entry, mem) {
                (Some(e), _, _) if !behind => Filed::Refused(e, active),
                (refused, Some(entry), Ok(b)) => {
                    let msg = match msg {
                        Ok(m) if refused.is_none() => m,
                        _ => KVec::new(),
                    };
                    let mut job =
                        Job::new(id, seq, now.wrapping_add(timeout), start_ns, msg, active);
                    if refused.is_some() {
                        job.ending = Some((Outcome::Failed, End::Failed));
                    }
                    *entry = Some(KBox::write(b, job));
                    inner.next_seq += 1;
                    match refused {
                        None => Filed::Queued,
                        Some(e) => Filed::Deferred(e),
                    }
                }
                (refused, None, _) => Filed::Refused(refused.unwrap_or(code::EBUSY), active),
                (refused, Some(_), Err(_)) => {
                    Filed::Refused(refused.unwrap_or(code::ENOMEM), active)
                }
            }
        };
        match filed {
            Filed::Queued => {
                drop(ends);
                // A no-op when already pending.
                watchdog.schedule(timeout);
                self.wake();
            }
            Filed::Deferred(e) => {
                drop(ends);
                if e != code::ENODEV {
                    pr_warn!("job {} not queued: {:?}\n", id, e);
                }
                // Its older jobs may all be decided already.
                self.reap();
            }
            Filed::Refused(e, active) => {
                if e != code::ENODEV {
                    pr_warn!("job {} not queued: {:?}\n", id, e);
                }
                if self.locked().in_flight(Some(ctx_id)) > 0 {
                    // No slot or no memory to wait in: its older jobs are overtaken.
                    pr_warn!("context {}: job {} fails before older jobs\n", ctx_id, id);
                }
                self.count_end(ctx_id, start_ns, End::Failed);
                job::end(active, Outcome::Failed);
                drop(ends);
                self.wake();
            }
        }
    }

    /// Ends the jobs of a context that stops streaming: queued ones fail at once (after those
    /// the daemon has, which are older), those the daemon has are waited for (up to the job
    /// timeout), then failed.
    pub(crate) fn cancel_context(&self, file: &VideoFile) {
        let id = file.data().id;
        self.locked()
            .decide(|j| j.ctx_id == id && !j.read, Outcome::Failed, End::Failed);
        self.reap();
        // The daemon has no job of the context any more.
        if !file.wait_idle_timeout(job_timeout()) {
            let late = self
                .locked()
                .decide(|j| j.ctx_id == id, Outcome::Failed, End::TimedOut);
            if late > 0 {
                pr_warn!(
                    "context {}: {} jobs not answered in time, failed\n",
                    id,
                    late
                );
            }
            self.reap();
        }
    }

    /// Fails the jobs past their deadline (the device's watchdog) and re-arms `watchdog` for
    /// the next deadline. A job past its deadline behind an older job of its context that is
    /// not past it ends with that job.
    pub(crate) fn expire(&self, watchdog: &DelayedWork) {
        let now = Jiffies::now();
        let (expired, next) = {
            let mut g = self.locked();
            let inner = &mut *g;
            let expired = inner.decide(
                |j| now.is_after_eq(j.deadline),
                Outcome::Failed,
                End::TimedOut,
            );
            let next = inner
                .jobs
                .iter()
                .flatten()
                .filter(|j| j.ending.is_none())
                .map(|j| now.until(j.deadline))
                .min();
            (expired, next)
        };
        if expired > 0 {
            pr_warn!("{} jobs timed out\n", expired);
        }
        self.reap();
        if let Some(delay) = next {
            watchdog.schedule(delay);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Counters (`crate::stats`)

/// What a sysfs attribute of the job queue shows ([`Jobs::show`]).
#[derive(Clone, Copy)]
pub(crate) enum Shown {
    DaemonAttached,
    DaemonPid,
    DaemonAttaches,
    DaemonDetaches,
    ContextsOpen,
    JobsSubmitted,
    JobsCompleted,
    JobsFailed,
    JobsTimedOut,
    JobsInFlight,
    Fps,
    LatencyP50,
    LatencyP95,
    LatencyP99,
    BuffersOutput,
    BuffersCapture,
    BufferBytes,
    /// One line per context with counters of its own: `ctx=ID codec=C key=value...`.
    Contexts,
}

impl Jobs {
    /// Counts a new job of context `ctx_id` decoding `codec`.
    fn count_submitted(&self, ctx_id: u32, codec: Codec) {
        let mut g = self.locked();
        g.stats.submitted();
        if let Some(s) = g.ctx_stats(ctx_id) {
            s.codec = Some(codec);
            s.counters.submitted();
        }
    }

    /// Context `id` was opened: it gets counters of its own if fewer than `MAX_TRACKED`
    /// contexts have them (and memory allows).
    pub(crate) fn context_opened(&self, id: u32) {
        let stats = KBox::new(
            ContextStats {
                id,
                codec: None,
                counters: Counters::new(),
            },
            GFP_KERNEL,
        )
        .ok();
        let mut g = self.locked();
        g.contexts = g.contexts.saturating_add(1);
        if let Some(slot) = g.ctx_stats.iter_mut().find(|s| s.is_none()) {
            *slot = stats;
        }
    }

    /// Context `id` was closed (it has no job left): its counters go.
    pub(crate) fn context_closed(&self, id: u32) {
        let gone = {
            let mut g = self.locked();
            g.contexts = g.contexts.saturating_sub(1);
            g.ctx_stats
                .iter_mut()
                .find(|s| s.as_ref().is_some_and(|s| s.id == id))
                .and_then(|s| s.take())
        };
        // Freed without the lock.
        drop(gone);
    }

    /// The device's buffer memory (without the lock: see [`Buffers`]).
    pub(crate) fn buffers(&self) -> &Buffers {
        &self.buffers
    }

    /// Writes what `what` shows, with a newline, to `w`.
    pub(crate) fn show(&self, what: Shown, w: &mut impl Write) -> core::fmt::Result {
        let now = monotonic_ns();
        let g = self.locked();
        let global = || g.stats.snapshot(now, g.in_flight(None));
        match what {
            Shown::DaemonAttached => writeln!(w, "{}", u8::from(g.session != 0)),
            Shown::DaemonPid => writeln!(w, "{}", g.daemon_pid),
            Shown::DaemonAttaches => writeln!(w, "{}", g.sessions),
            Shown::DaemonDetaches => writeln!(w, "{}", g.detaches),
            Shown::ContextsOpen => writeln!(w, "{}", g.contexts),
            Shown::JobsSubmitted => writeln!(w, "{}", global().submitted),
            Shown::JobsCompleted => writeln!(w, "{}", global().completed),
            Shown::JobsFailed => writeln!(w, "{}", global().failed),
            Shown::JobsTimedOut => writeln!(w, "{}", global().timed_out),
            Shown::JobsInFlight => writeln!(w, "{}", g.in_flight(None)),
            Shown::Fps => writeln!(w, "{}", Fps(global().fps_centi)),
            Shown::LatencyP50 => writeln!(w, "{}", global().latency_us[0]),
            Shown::LatencyP95 => writeln!(w, "{}", global().latency_us[1]),
            Shown::LatencyP99 => writeln!(w, "{}", global().latency_us[2]),
            Shown::BuffersOutput => writeln!(w, "{}", self.buffers.output()),
            Shown::BuffersCapture => writeln!(w, "{}", self.buffers.capture()),
            Shown::BufferBytes => writeln!(w, "{}", self.buffers.bytes()),
            Shown::Contexts => {
                for s in g.ctx_stats.iter().flatten() {
                    write!(w, "ctx={} codec={} ", s.id, stats::codec_name(s.codec))?;
                    s.counters
                        .snapshot(now, g.in_flight(Some(s.id)))
                        .write_pairs(w)?;
                    writeln!(w)?;
                }
                Ok(())
            }
        }
    }
}

/// Copies a context event to userspace.
fn read_event(inner: &mut Inner, i: usize, buf: UserAddr, count: usize) -> Result<usize> {
    let e = inner.events[i];
    let kind = e.kind.ok_or(code::EINVAL)?;
    let mut msg = [0u8; wire::CONTEXT_EVENT_SIZE];
    let n = wire::encode_context_event(kind, e.ctx_id, &mut msg).map_err(|_| code::EINVAL)?;
    if count < n {
        return Err(code::EINVAL);
    }
    buf.copy_to(msg.get(..n).ok_or(code::EINVAL)?)?;
    inner.events[i].kind = None;
    Ok(n)
}
