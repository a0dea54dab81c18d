// SPDX-License-Identifier: GPL-2.0
//! Decode jobs between the V4L2 side and the daemon attached to `/dev/daedalus`.
//!
//! `device_run` turns the next OUTPUT/CAPTURE pair of a context into a job: the request's full
//! control state is copied into a wire message ([`crate::wire`]) right away (the next job of the
//! same context will apply its own request to the same handler), the buffers leave the m2m
//! queues, and the m2m job is finished at once so that every context can have jobs with the
//! daemon at the same time. A job then ends exactly once, through [`finish`], when:
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
//! mutex held. A job in the table owns its two buffers
//! (they are out of the m2m queues, in videobuf2's "active" state) and counts in its context's
//! `inflight`, which keeps the context alive: `stop_streaming` (which runs before a context is
//! freed) waits until it is zero.

use core::ops::{Deref, DerefMut};
use core::ptr::{addr_of_mut, NonNull};

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::ctrls;
use crate::media::ctrls::Ctrl;
use crate::media::fd::{DmaBuf, FdReservation};
use crate::media::prelude::*;
use crate::media::raw::{self as bindings, vb2_v4l2_buffer};
use crate::media::sync::{LockClass, Mutex, MutexGuard, PollMask, PollTable, WaitQueue};
use crate::media::time::{params, Delta, Jiffies};
use crate::media::workqueue::DelayedWork;
use crate::video::VideoFile;
use crate::wire::{self, BufferDesc, Completion, Hello, JobEncoder, JobHeader, PictureFormat};

/// Most jobs queued or with the daemon, device-wide; more fail at once with an error buffer.
const MAX_JOBS: usize = 128;
/// Most context events waiting to be read; older ones are dropped when full (they are hints).
const MAX_EVENTS: usize = 64;

/// Driver data of every videobuf2 buffer (`buf_struct_size`).
///
/// `m2m` comes first: videobuf2 and the m2m core use the start of the allocation as a
/// `v4l2_m2m_buffer` / `vb2_v4l2_buffer`.
#[repr(C)]
pub(crate) struct Buffer {
    pub(crate) m2m: bindings::v4l2_m2m_buffer,
    /// Changes whenever the memory behind this buffer changes (`buf_init`).
    generation: u32,
    /// The generation the attached daemon has mapped, valid if `mapped_by` is its session.
    mapped_generation: u32,
    mapped_by: u64,
    /// A slice decoded into this (held) CAPTURE buffer failed.
    failed: bool,
}

impl Buffer {
    /// # Safety
    ///
    /// `vbuf` is a buffer of one of our queues (allocated with `size_of::<Buffer>()`).
    unsafe fn of<'a>(vbuf: *mut vb2_v4l2_buffer) -> &'a mut Buffer {
        // SAFETY: `vb2_v4l2_buffer` is the first field of `v4l2_m2m_buffer`, itself the first
        // of the `repr(C)` `Buffer` (contract).
        unsafe { &mut *vbuf.cast::<Buffer>() }
    }
}

/// The `job_timeout_ms` module parameter, in jiffies.
fn job_timeout() -> Delta {
    Delta::from_msecs(params::job_timeout_ms())
}

/// Sources of unique numbers shared by all contexts.
static NEXT_GENERATION: AtomicU32 = AtomicU32::new(1);

/// videobuf2 `buf_init`: new memory behind a buffer (allocation, or a new dma-buf imported).
///
/// # Safety
///
/// videobuf2 callback for a buffer of ours.
pub(crate) unsafe extern "C" fn buf_init(vb: *mut bindings::vb2_buffer) -> c_int {
    // SAFETY: `vb2_buffer` is the first field of `vb2_v4l2_buffer`; the buffer is ours.
    let b = unsafe { Buffer::of(vb.cast()) };
    b.generation = NEXT_GENERATION.fetch_add(1, Ordering::Relaxed);
    b.mapped_by = 0;
    b.failed = false;
    0
}

struct JobRecord {
    id: u64,
    /// Position in the read order, shared with events.
    seq: u64,
    ctx: *const VideoFile,
    ctx_id: u32,
    src: *mut vb2_v4l2_buffer,
    dst: *mut vb2_v4l2_buffer,
    mode: Mode,
    /// Handed to the daemon by `read()`.
    read: bool,
    deadline: Jiffies,
    msg: KVec<u8>,
}

// SAFETY: a job record is only reached under the job queue's lock, from any task: the buffers
// it owns and its context (alive while the job counts in `inflight`) are used through C calls
// that do not depend on the calling task.
unsafe impl Send for JobRecord {}

#[derive(Clone, Copy)]
struct Event {
    seq: u64,
    /// `wire::KIND_CONTEXT_*`; 0 = free slot.
    kind: u32,
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
    jobs: [Option<KBox<JobRecord>>; MAX_JOBS],
    events: [Event; MAX_EVENTS],
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
}

/// What becomes of a finished job's buffers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The picture is in the CAPTURE buffer, `bytesused` bytes.
    Decoded(u32),
    Failed,
}

/// Ends a job: completes its request and returns its buffers to userspace.
///
/// # Safety
///
/// `job` was removed from the table (so nothing else can finish it); its context is alive
/// (it counts in `inflight` until this returns).
unsafe fn finish(jobs: &Jobs, job: KBox<JobRecord>, outcome: Outcome) {
    // SAFETY: forwarded contract.
    unsafe { finish_buffers(&*job.ctx, job.src, job.dst, job.mode, outcome) };
    drop(job);
    jobs.wake();
}

/// How a job's buffers relate to the m2m core.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The buffers left the m2m queues and the m2m job finished at once (frame codecs): other
    /// contexts run meanwhile. `hold`: the CAPTURE buffer stays queued for more slices.
    Detached { hold: bool },
    /// The m2m job runs until this job ends (contexts that may hold CAPTURE buffers, i.e.
    /// H.264: the m2m core's held-buffer bookkeeping needs `v4l2_m2m_buf_done_and_job_finish`).
    Running { hold: bool },
}

impl Mode {
    fn hold(self) -> bool {
        match self {
            Mode::Detached { hold } | Mode::Running { hold } => hold,
        }
    }
}

/// Completes a job's request and returns its buffers.
///
/// # Safety
///
/// As [`finish`]; `src`/`dst` are the job's buffers, `mode` how they were taken.
unsafe fn finish_buffers(
    ctx: &VideoFile,
    src: *mut vb2_v4l2_buffer,
    dst: *mut vb2_v4l2_buffer,
    mode: Mode,
    outcome: Outcome,
) {
    // SAFETY: per the contract the context and both buffers are alive and ours.
    unsafe {
        let req = (*src).vb2_buf.req_obj.req;
        if !req.is_null() {
            bindings::v4l2_ctrl_request_complete(req, ctx.hdl());
        }
        let d = Buffer::of(dst);
        if outcome == Outcome::Failed {
            d.failed = true;
        }
        let picture_ok = !d.failed;
        if !mode.hold() {
            (*dst).vb2_buf.planes[0].bytesused = match outcome {
                Outcome::Decoded(n) if picture_ok => n,
                _ => 0,
            };
            d.failed = false;
        }
        let state = |ok: bool| {
            if ok {
                bindings::VB2_BUF_STATE_DONE
            } else {
                bindings::VB2_BUF_STATE_ERROR
            }
        };
        match mode {
            Mode::Running { .. } => {
                // Returns both buffers (keeping a held CAPTURE buffer) and runs the next job.
                bindings::v4l2_m2m_buf_done_and_job_finish(
                    ctx.device().m2m_raw(),
                    ctx.m2m_ctx(),
                    state(picture_ok),
                );
            }
            Mode::Detached { hold } => {
                // CAPTURE first: completing the OUTPUT buffer may complete the request, which
                // wakes the client, and the picture must be there by then (as the m2m core does).
                if !hold {
                    bindings::vb2_buffer_done(&mut (*dst).vb2_buf, state(picture_ok));
                }
                let decoded = matches!(outcome, Outcome::Decoded(_));
                bindings::vb2_buffer_done(&mut (*src).vb2_buf, state(decoded));
            }
        }
    }
    ctx.data().inflight.fetch_sub(1, Ordering::AcqRel);
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
                kind: 0,
                ctx_id: 0,
            }; MAX_EVENTS],
        }
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
            .filter(|(_, e)| e.kind != 0)
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
    fn take(&mut self, pred: impl Fn(&JobRecord) -> bool) -> Taken {
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
    jobs: [Option<KBox<JobRecord>>; MAX_JOBS],
    len: usize,
}

impl Taken {
    fn new() -> Taken {
        Taken {
            jobs: [const { None }; MAX_JOBS],
            len: 0,
        }
    }

    fn push(&mut self, job: Option<KBox<JobRecord>>) {
        // At most MAX_JOBS jobs exist, so this never overflows.
        if let Some(slot) = self.jobs.get_mut(self.len) {
            *slot = job;
            self.len += 1;
        }
    }

    /// Finishes every job as failed, oldest first: a context's buffers come back in the
    /// order they were queued, as clients expect.
    fn fail_all(mut self, jobs: &Jobs) {
        // Insertion sort by `seq` (at most MAX_JOBS entries, nearly sorted already). Not
        // `sort_unstable_by_key`: objtool on 6.12 does not know the panic paths of core's sort
        // and warns that they fall through.
        let seq = |j: &Option<KBox<JobRecord>>| j.as_ref().map_or(u64::MAX, |j| j.seq);
        for i in 1..self.len.min(MAX_JOBS) {
            let mut k = i;
            while k > 0 && seq(&self.jobs[k - 1]) > seq(&self.jobs[k]) {
                self.jobs.swap(k - 1, k);
                k -= 1;
            }
        }
        for job in self.jobs.into_iter().flatten() {
            // SAFETY: taken out of the table under the lock; contexts are alive while they
            // have jobs (module invariant).
            unsafe { finish(jobs, job, Outcome::Failed) };
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

    /// A new context id.
    pub(crate) fn new_context_id(&self) -> u32 {
        self.next_ctx.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether a daemon is attached.
    pub(crate) fn attached(&self) -> bool {
        self.locked().session != 0
    }

    // -----------------------------------------------------------------------------------------
    // The daemon side

    /// A daemon opens `/dev/daedalus`: starts a session, or `EBUSY` if one is attached.
    pub(crate) fn attach(&self) -> Result<u64> {
        let mut g = self.locked();
        let inner = &mut *g;
        if inner.session != 0 {
            return Err(code::EBUSY);
        }
        inner.sessions += 1;
        inner.session = inner.sessions;
        inner.greeted = false;
        Ok(inner.session)
    }

    /// The daemon's file is released: every job it has or would get fails now.
    pub(crate) fn detach(&self) {
        let taken = {
            let mut g = self.locked();
            let inner = &mut *g;
            inner.session = 0;
            inner.greeted = false;
            for e in inner.events.iter_mut() {
                e.kind = 0;
            }
            inner.take(|_| true)
        };
        if taken.len > 0 {
            pr_warn!(
                "decode daemon detached with {} jobs: failing them\n",
                taken.len
            );
        }
        taken.fail_all(self);
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

    /// Hands job `i` to the daemon: dma-buf fds for the buffers it has not mapped yet, then the
    /// message. Called with the lock held (`inner`).
    fn read_job(&self, inner: &mut Inner, i: usize, buf: UserAddr, count: usize) -> Result<usize> {
        let session = inner.session;
        let Some(job) = inner.jobs[i].as_mut() else {
            return Err(code::EINVAL);
        };
        if count < job.msg.len() {
            return Err(code::EINVAL);
        }
        // Dropping a prepared `FdInstall` (on any error below) gives up its fd and reference.
        let mut fds: [Option<FdInstall>; 2] = [None, None];
        for (slot, vbuf) in fds.iter_mut().zip([job.src, job.dst]) {
            // SAFETY: the job owns its buffers (module invariant).
            let b = unsafe { Buffer::of(vbuf) };
            if b.mapped_by != session || b.mapped_generation != b.generation {
                // SAFETY: as above.
                *slot = Some(unsafe { FdInstall::prepare(vbuf) }?);
            }
        }
        let fd = |f: &Option<FdInstall>| f.as_ref().map_or(-1, |f| f.res.fd());
        let [out_fd, cap_fd] = &fds;
        wire::set_job_fds(&mut job.msg, fd(out_fd), fd(cap_fd)).map_err(|_| code::EINVAL)?;
        buf.copy_to(&job.msg)?;
        // The daemon has it now: it gets the full timeout for this job from here.
        job.deadline = Jiffies::now().wrapping_add(job_timeout());
        for (f, vbuf) in fds.into_iter().zip([job.src, job.dst]) {
            if let Some(f) = f {
                // SAFETY: as above.
                let b = unsafe { Buffer::of(vbuf) };
                b.mapped_by = session;
                b.mapped_generation = b.generation;
                f.commit();
            }
        }
        job.read = true;
        Ok(job.msg.len())
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
            // SAFETY: the job owns its CAPTURE buffer.
            let length = unsafe { (*job.dst).vb2_buf.planes[0].length };
            let bad = job.ctx_id != c.ctx_id
                || (c.status == wire::STATUS_OK
                    && (c.capture_bytesused == 0 || c.capture_bytesused > length));
            let outcome = if c.status == wire::STATUS_OK && !bad {
                Outcome::Decoded(c.capture_bytesused)
            } else {
                Outcome::Failed
            };
            (job, outcome, bad)
        };
        if bad {
            pr_warn!("invalid completion of job {}: failing it\n", c.job_id);
        }
        // SAFETY: taken out of the table; its context is alive while it counts in `inflight`.
        unsafe { finish(self, job, outcome) };
        if bad {
            Err(code::EINVAL)
        } else {
            Ok(())
        }
    }

    // -----------------------------------------------------------------------------------------
    // The V4L2 side

    /// Queues a context event for the daemon (if one is attached).
    pub(crate) fn event(&self, kind: u32, ctx_id: u32) {
        {
            let mut g = self.locked();
            let inner = &mut *g;
            if inner.session == 0 {
                return;
            }
            let seq = inner.next_seq;
            inner.next_seq += 1;
            // A full ring drops the oldest event: they only let the daemon free state early.
            let slot = match inner.events.iter().position(|e| e.kind == 0) {
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
            inner.events[slot] = Event { seq, kind, ctx_id };
        }
        self.wake();
    }

    /// Turns the next buffers of `ctx` into a job (from `device_run`); whatever happens they
    /// are returned through [`finish`].
    ///
    /// # Safety
    ///
    /// `src` and `dst` are the context's next buffers, taken as `mode` says; the request's
    /// controls have been applied.
    pub(crate) unsafe fn submit(
        &self,
        watchdog: &DelayedWork,
        ctx: &VideoFile,
        src: *mut vb2_v4l2_buffer,
        dst: *mut vb2_v4l2_buffer,
        mode: Mode,
    ) {
        ctx.data().inflight.fetch_add(1, Ordering::AcqRel);
        let id = self.next_job.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded contract.
        let msg = unsafe { encode_job(ctx, id, src, dst, mode.hold()) };
        let timeout = job_timeout();
        let now = Jiffies::now();
        let rejected: Option<Error> = match msg {
            Err(e) => Some(e),
            Ok(msg) => {
                let mut g = self.locked();
                let inner = &mut *g;
                let slot = inner.free_slot();
                match (inner.session != 0, slot) {
                    (false, _) => Some(code::ENODEV),
                    (true, None) => Some(code::EBUSY),
                    (true, Some(slot)) => {
                        let seq = inner.next_seq;
                        inner.next_seq += 1;
                        let record = JobRecord {
                            id,
                            seq,
                            ctx: ctx as *const VideoFile,
                            ctx_id: ctx.data().id,
                            src,
                            dst,
                            mode,
                            read: false,
                            deadline: now.wrapping_add(timeout),
                            msg,
                        };
                        match KBox::new(record, GFP_KERNEL) {
                            Ok(b) => {
                                inner.jobs[slot] = Some(b);
                                None
                            }
                            Err(_) => Some(code::ENOMEM),
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
            Some(e) => {
                if e != code::ENODEV {
                    pr_warn!("job {} not queued: {:?}\n", id, e);
                }
                // SAFETY: never in the table; the context is alive (it is running a job).
                unsafe { finish_buffers(ctx, src, dst, mode, Outcome::Failed) };
                self.wake();
            }
        }
    }

    /// Ends the jobs of a context that stops streaming: queued ones fail at once, those the
    /// daemon has are waited for (up to the job timeout), then failed.
    pub(crate) fn cancel_context(&self, ctx: &VideoFile) {
        let ctx = ctx.data();
        let queued = self.locked().take(|j| j.ctx_id == ctx.id && !j.read);
        queued.fail_all(self);
        // The daemon has no job of the context any more.
        let idle = self
            .wq
            .wait_timeout(|| ctx.inflight.load(Ordering::Acquire) == 0, job_timeout());
        if !idle {
            let late = self.locked().take(|j| j.ctx_id == ctx.id);
            if late.len > 0 {
                pr_warn!(
                    "context {}: {} jobs not answered in time, failed\n",
                    ctx.id,
                    late.len
                );
            }
            late.fail_all(self);
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
        expired.fail_all(self);
        if let Some(delay) = next {
            watchdog.schedule(delay);
        }
    }
}

/// Copies a context event to userspace.
fn read_event(inner: &mut Inner, i: usize, buf: UserAddr, count: usize) -> Result<usize> {
    let e = inner.events[i];
    let mut msg = [0u8; wire::CONTEXT_EVENT_SIZE];
    let n = wire::encode_context_event(e.kind, e.ctx_id, &mut msg).map_err(|_| code::EINVAL)?;
    if count < n {
        return Err(code::EINVAL);
    }
    buf.copy_to(msg.get(..n).ok_or(code::EINVAL)?)?;
    inner.events[i].kind = 0;
    Ok(n)
}

/// A dma-buf fd being handed to the daemon: reserved first, installed only once the message
/// carrying it reached userspace. Dropping it gives up the reservation, then the reference.
struct FdInstall {
    res: FdReservation,
    buf: DmaBuf,
}

impl FdInstall {
    /// Gets a dma-buf for the buffer's memory and reserves an fd for it.
    ///
    /// # Safety
    ///
    /// `vbuf` is a buffer of ours owned by a job.
    unsafe fn prepare(vbuf: *mut vb2_v4l2_buffer) -> Result<FdInstall> {
        // SAFETY: per the contract, the buffer and its queue are alive; a DMABUF plane holds a
        // reference to its dma-buf while the buffer is queued, and `get_dmabuf` returns a new one.
        let buf = unsafe {
            let vb = addr_of_mut!((*vbuf).vb2_buf);
            let q = (*vb).vb2_queue;
            if (*q).memory == bindings::VB2_MEMORY_DMABUF {
                let d = NonNull::new((*vb).planes[0].dbuf).ok_or(code::EINVAL)?;
                DmaBuf::get(d)
            } else {
                let get = (*(*q).mem_ops).get_dmabuf.ok_or(code::EINVAL)?;
                let d = check_ptr(get(
                    vb,
                    (*vb).planes[0].mem_priv,
                    bindings::O_RDWR as c_ulong,
                ))?;
                DmaBuf::from_owned(NonNull::new(d).ok_or(code::ENOMEM)?)
            }
        };
        let res = FdReservation::new()?;
        Ok(FdInstall { res, buf })
    }

    /// Installs the fd: the daemon's file table now owns our reference.
    fn commit(self) {
        self.res.install(self.buf);
    }
}

/// Builds the wire message of a job: its buffers, formats and the full control state.
///
/// # Safety
///
/// As [`Jobs::submit`].
unsafe fn encode_job(
    ctx: &VideoFile,
    id: u64,
    src: *mut vb2_v4l2_buffer,
    dst: *mut vb2_v4l2_buffer,
    hold: bool,
) -> Result<KVec<u8>> {
    let (coded, capture) = ctx.data().formats();
    let ids = ctrls::job_controls(coded.codec);
    // The controls' current values, under the handler's lock (against S_EXT_CTRLS and the
    // request setup of the context's next job).
    ctx.handler()
        .snapshot::<{ ctrls::MAX_JOB_CONTROLS }, _>(ids, |found| {
            // SAFETY: forwarded contract.
            unsafe { encode_locked(ctx, id, src, dst, hold, &coded, &capture, found) }
        })
}

/// # Safety
///
/// As [`encode_job`]; `ctrls` is a snapshot of the context's controls.
#[allow(clippy::too_many_arguments)]
unsafe fn encode_locked(
    ctx: &VideoFile,
    id: u64,
    src: *mut vb2_v4l2_buffer,
    dst: *mut vb2_v4l2_buffer,
    hold: bool,
    coded: &crate::video::CodedFormat,
    capture: &crate::video::CaptureFormat,
    ctrls: &[Option<Ctrl<'_>>],
) -> Result<KVec<u8>> {
    let mut size = wire::JOB_FIXED_SIZE;
    for c in ctrls.iter().flatten() {
        size += (wire::CONTROL_HEADER_SIZE + c.bytes().len() + 7) & !7;
    }
    if size > wire::MAX_MESSAGE_SIZE {
        return Err(code::E2BIG);
    }
    // SAFETY: the buffers are owned by this job.
    let (s, d) = unsafe { (&(*src).vb2_buf, &(*dst).vb2_buf) };
    // The CAPTURE format follows the controls: a stream whose bit depth changed without the
    // client reallocating no longer fits its buffers.
    if capture.layout.sizeimage > d.planes[0].length {
        pr_warn!(
            "job {}: a {}x{} picture does not fit CAPTURE buffer {}\n",
            id,
            capture.layout.width,
            capture.layout.height,
            d.index
        );
        return Err(code::ENOSPC);
    }
    let mut msg = KVec::from_elem(0u8, size, GFP_KERNEL)?;
    let l = &capture.layout;
    let header = JobHeader {
        job_id: id,
        ctx_id: ctx.data().id,
        codec: coded.codec,
        flags: if hold { wire::JOB_FLAG_HOLD_CAPTURE } else { 0 },
        timestamp_ns: s.timestamp,
        coded_width: coded.width,
        coded_height: coded.height,
        output: BufferDesc {
            fd: -1,
            index: s.index,
            // SAFETY: ours, see above.
            generation: unsafe { Buffer::of(src).generation },
            length: s.planes[0].length,
            bytesused: s.planes[0].bytesused,
            data_offset: s.planes[0].data_offset.min(s.planes[0].bytesused),
        },
        capture: BufferDesc {
            fd: -1,
            index: d.index,
            // SAFETY: ours, see above.
            generation: unsafe { Buffer::of(dst).generation },
            length: d.planes[0].length,
            bytesused: 0,
            data_offset: 0,
        },
        picture: PictureFormat::of_layout(capture.depth, l),
    };
    let mut enc = JobEncoder::new(&mut msg, &header).map_err(|_| code::EINVAL)?;
    for c in ctrls.iter().flatten() {
        let bytes = c.bytes();
        let out = enc
            .control(c.id(), c.elems(), bytes.len())
            .map_err(|_| code::E2BIG)?;
        out.copy_from_slice(bytes);
    }
    let n = enc.finish().map_err(|_| code::EINVAL)?;
    if n != size {
        return Err(code::EINVAL);
    }
    Ok(msg)
}
