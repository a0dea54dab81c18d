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
//! # Invariants
//!
//! [`Inner`] is only accessed through a `JobsGuard` (`Jobs::locked`), i.e. with the job queue's
//! mutex held, and no job is ended with it held (jobs are taken out of the table, then ended).
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

    /// Where the oldest unread message is: a job slot or an event slot.
    fn next_message(&self) -> Option<(bool, usize)> {
        let job = self
            .jobs
            .iter()
            .enumerate()
            .filter_map(|(i, j)| j.as_ref().filter(|j| !j.read).map(|j| (j.seq, i)))
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

    /// Takes every job matching `pred` out of the table.
    fn take(&mut self, pred: impl Fn(&Job) -> bool) -> Taken {
        let mut out = Taken::new();
        for slot in self.jobs.iter_mut() {
            if slot.as_ref().is_some_and(|j| pred(j)) {
                out.push(slot.take());
            }
        }
        out
    }
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

    /// Finishes every job as failed (`end`: how the counters see it), oldest first: a
    /// context's buffers come back in the order they were queued, as clients expect.
    fn fail_all(mut self, jobs: &Jobs, end: End) {
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
            jobs.finish(job, Outcome::Failed, end);
        }
    }
}

impl Jobs {
    /// An empty queue.
    pub(crate) fn new() -> impl PinInit<Jobs> {
        pin_init!(Jobs {
            inner <- Mutex::new(Inner::new(), LockClass::Jobs),
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
            inner.take(|_| true)
        };
        if taken.len > 0 {
            pr_warn!(
                "decode daemon detached with {} jobs: failing them\n",
                taken.len
            );
        }
        taken.fail_all(self, End::Failed);
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
        let (job, outcome, bad) = {
            let mut g = self.locked();
            let inner = &mut *g;
            if !inner.greeted {
                return Err(eproto());
            }
            let slot = inner
                .jobs
                .iter_mut()
                .find(|j| j.as_ref().is_some_and(|j| j.id == c.job_id && j.read))
                .ok_or(code::ENOENT)?;
            let Some(job) = slot.take() else {
                return Err(code::ENOENT);
            };
            // The daemon makes progress: jobs still waiting to be read are not late because
            // their queue is long (a slow stream, many requests in flight).
            let deadline = Jiffies::now().wrapping_add(job_timeout());
            for j in inner.jobs.iter_mut().flatten().filter(|j| !j.read) {
                j.deadline = deadline;
            }
            let (outcome, bad) = job.check(&c);
            (job, outcome, bad)
        };
        if bad {
            pr_warn!("invalid completion of job {}: failing it\n", c.job_id);
        }
        let end = match outcome {
            Outcome::Decoded(_) => End::Decoded,
            Outcome::Failed => End::Failed,
        };
        self.finish(job, outcome, end);
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
    /// whatever happens it ends through [`Job::finish`] or [`job::end`].
    pub(crate) fn submit(&self, watchdog: &DelayedWork, active: ActiveJob<Daedalus>) {
        let id = self.next_job.fetch_add(1, Ordering::Relaxed);
        let start_ns = monotonic_ns();
        let ctx_id = active.file().data().id;
        self.count_submitted(ctx_id, active.file().data().codec());
        let msg = Job::encode(&active, id);
        let timeout = job_timeout();
        let now = Jiffies::now();
        let rejected: Option<(Error, ActiveJob<Daedalus>)> = match msg {
            Err(e) => Some((e, active)),
            Ok(msg) => {
                let mut g = self.locked();
                let inner = &mut *g;
                let slot = inner.free_slot();
                match (inner.session != 0, slot) {
                    (false, _) => Some((code::ENODEV, active)),
                    (true, None) => Some((code::EBUSY, active)),
                    (true, Some(slot)) => {
                        let seq = inner.next_seq;
                        inner.next_seq += 1;
                        // The slot first: the job (with its buffers) is only moved in once it
                        // cannot fail any more.
                        match (
                            KBox::<Job>::new_uninit(GFP_KERNEL),
                            inner.jobs.get_mut(slot),
                        ) {
                            (Ok(b), Some(entry)) => {
                                let job = Job::new(
                                    id,
                                    seq,
                                    now.wrapping_add(timeout),
                                    start_ns,
                                    msg,
                                    active,
                                );
                                *entry = Some(KBox::write(b, job));
                                None
                            }
                            (Ok(_), None) => Some((code::EBUSY, active)),
                            (Err(_), _) => Some((code::ENOMEM, active)),
                        }
                    }
                }
            }
        };
        match rejected {
            None => {
                // A no-op when already pending.
                watchdog.schedule(timeout);
                self.wake();
            }
            Some((e, active)) => {
                if e != code::ENODEV {
                    pr_warn!("job {} not queued: {:?}\n", id, e);
                }
                self.count_end(ctx_id, start_ns, End::Failed);
                job::end(active, Outcome::Failed);
                self.wake();
            }
        }
    }

    /// Ends the jobs of a context that stops streaming: queued ones fail at once, those the
    /// daemon has are waited for (up to the job timeout), then failed.
    pub(crate) fn cancel_context(&self, file: &VideoFile) {
        let id = file.data().id;
        let queued = self.locked().take(|j| j.ctx_id == id && !j.read);
        queued.fail_all(self, End::Failed);
        // The daemon has no job of the context any more.
        if !file.wait_idle_timeout(job_timeout()) {
            let late = self.locked().take(|j| j.ctx_id == id);
            if late.len > 0 {
                pr_warn!(
                    "context {}: {} jobs not answered in time, failed\n",
                    id,
                    late.len
                );
            }
            late.fail_all(self, End::TimedOut);
        }
    }

    /// Fails the jobs past their deadline (the device's watchdog) and re-arms `watchdog` for
    /// the next deadline.
    pub(crate) fn expire(&self, watchdog: &DelayedWork) {
        let now = Jiffies::now();
        let (expired, next) = {
            let mut g = self.locked();
            let inner = &mut *g;
            let expired = inner.take(|j| now.is_after_eq(j.deadline));
            let next = inner
                .jobs
                .iter()
                .flatten()
                .map(|j| now.until(j.deadline))
                .min();
            (expired, next)
        };
        if expired.len > 0 {
            pr_warn!("{} jobs timed out\n", expired.len);
        }
        expired.fail_all(self, End::TimedOut);
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
