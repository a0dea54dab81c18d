// SPDX-License-Identifier: GPL-2.0
//! The dispatcher: one thread reads the device and hands each message to the thread of its
//! context, so contexts decode in parallel while the jobs of one context are handled (and
//! answered) in order.
//!
//! A context thread tells its context how many messages wait behind the job it hands it (the
//! decoder pipelines jobs when there are enough), and never sleeps on its channel while jobs
//! are in the pipeline: after a short grace ([`Context::grace`]) without a new message, it
//! pushes the pipeline on, so a client that stops queueing still gets every picture.
//!
//! Messages are read into buffers of [`MAX_MESSAGE_SIZE`] bytes from a pool that grows to at
//! most `max_buffers`, and travel to the context threads through bounded channels: in steady
//! state nothing is allocated per message. When every buffer is in flight the dispatcher waits
//! for one to come back (back-pressure).

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

use daedalus_proto::wire::{self, Completion, Message, MAX_MESSAGE_SIZE};

use crate::codec::DecoderConfig;
use crate::context::Context;
use crate::stats::Stats;
use crate::transport::{Incoming, Transport};

/// Settings of the daemon.
#[derive(Clone, Copy, Debug)]
pub struct DaemonConfig {
    /// Decoder settings of every context.
    pub decoder: DecoderConfig,
    /// Messages queued per context before the dispatcher waits.
    pub queue_depth: usize,
    /// Most message buffers in flight (each [`MAX_MESSAGE_SIZE`] bytes).
    pub max_buffers: usize,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            decoder: DecoderConfig {
                threads: 1,
                ..Default::default()
            },
            queue_depth: 8,
            max_buffers: 64,
        }
    }
}

/// What a run did, for the final log line and for tests.
#[derive(Clone, Default)]
pub struct Summary {
    /// Messages read.
    pub messages: u64,
    /// Malformed messages skipped.
    pub malformed: u64,
    /// Contexts served.
    pub contexts: u64,
    /// The statistics of every context, in the order they ended.
    pub stats: Vec<(u32, Stats)>,
}

type Buf = Box<[u8]>;

struct PoolInner {
    free: Vec<Buf>,
    created: usize,
}

/// The message buffers.
struct Pool {
    inner: Mutex<PoolInner>,
    returned: Condvar,
    max: usize,
}

impl Pool {
    fn new(max: usize) -> Pool {
        let max = max.max(1);
        Pool {
            inner: Mutex::new(PoolInner {
                free: Vec::with_capacity(max),
                created: 0,
            }),
            returned: Condvar::new(),
            max,
        }
    }

    fn get(&self) -> Buf {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(b) = inner.free.pop() {
                return b;
            }
            if inner.created < self.max {
                inner.created += 1;
                drop(inner);
                return vec![0u8; MAX_MESSAGE_SIZE].into_boxed_slice();
            }
            inner = self
                .returned
                .wait(inner)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn put(&self, b: Buf) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.free.push(b); // never beyond the capacity reserved: at most `max` buffers exist
        drop(inner);
        self.returned.notify_one();
    }
}

enum Work {
    /// A validated message of this context, `len` bytes at the start of the buffer.
    Message(Buf, usize),
    /// Print the statistics.
    Stats,
}

struct Worker {
    tx: SyncSender<Work>,
    /// Messages sent to the thread and not received yet.
    queued: Arc<AtomicUsize>,
    thread: JoinHandle<(u32, Stats)>,
}

impl Worker {
    fn send(&self, work: Work) -> Result<(), mpsc::SendError<Work>> {
        self.queued.fetch_add(1, Ordering::Relaxed);
        self.tx.send(work).inspect_err(|_| {
            self.queued.fetch_sub(1, Ordering::Relaxed);
        })
    }
}

/// Runs the daemon until the transport says [`Incoming::Shutdown`] (then finishes the queued
/// jobs) or fails.
pub fn run<T: Transport + 'static>(
    transport: Arc<T>,
    config: &DaemonConfig,
) -> io::Result<Summary> {
    let mut d = Dispatcher {
        transport,
        pool: Arc::new(Pool::new(config.max_buffers)),
        config: *config,
        workers: HashMap::new(),
        ended: Vec::new(),
        live: Arc::new(AtomicUsize::new(0)),
        summary: Summary::default(),
    };
    let result = d.run();
    d.shutdown();
    result.map(|()| d.summary)
}

struct Dispatcher<T> {
    transport: Arc<T>,
    pool: Arc<Pool>,
    config: DaemonConfig,
    workers: HashMap<u32, Worker>,
    ended: Vec<JoinHandle<(u32, Stats)>>,
    /// Context threads not yet finished (the last one to finish trims the allocator).
    live: Arc<AtomicUsize>,
    summary: Summary,
}

impl<T: Transport + 'static> Dispatcher<T> {
    fn run(&mut self) -> io::Result<()> {
        loop {
            let mut buf = self.pool.get();
            let incoming = self.transport.receive(&mut buf);
            match incoming {
                Ok(Incoming::Message(n)) => self.dispatch(buf, n.min(MAX_MESSAGE_SIZE)),
                Ok(Incoming::Stats) => {
                    self.pool.put(buf);
                    eprintln!(
                        "daedalusd: {} messages, {} malformed, {} contexts open",
                        self.summary.messages,
                        self.summary.malformed,
                        self.workers.len()
                    );
                    for w in self.workers.values() {
                        let _ = w.send(Work::Stats);
                    }
                }
                Ok(Incoming::Shutdown) => {
                    self.pool.put(buf);
                    return Ok(());
                }
                Err(e) => {
                    self.pool.put(buf);
                    return Err(e);
                }
            }
            self.reap();
        }
    }

    fn dispatch(&mut self, buf: Buf, n: usize) {
        self.summary.messages += 1;
        let (ctx_id, job, close, open) = match wire::decode(&buf[..n]) {
            Ok(Message::Job(j)) => (j.header.ctx_id, true, false, false),
            Ok(Message::ContextFlush { ctx_id }) => (ctx_id, false, false, false),
            Ok(Message::ContextOpen { ctx_id }) => (ctx_id, false, false, true),
            Ok(Message::ContextClose { ctx_id }) => (ctx_id, false, true, false),
            Err(e) => {
                self.summary.malformed += 1;
                log::warn!("malformed message of {n} bytes skipped: {e}");
                self.pool.put(buf);
                return;
            }
        };
        if open {
            if let Some(old) = self.workers.remove(&ctx_id) {
                log::warn!("context {ctx_id} opened again: dropping its previous state");
                self.retire(old);
            }
            log::debug!("context {ctx_id} opened");
            self.spawn(ctx_id);
            self.pool.put(buf);
            return;
        }
        if !self.workers.contains_key(&ctx_id) {
            if !job {
                log::debug!("flush or close of unknown context {ctx_id} ignored");
                self.pool.put(buf);
                return;
            }
            // E.g. the daemon restarted while clients were streaming: serve the context.
            log::info!("message for unknown context {ctx_id}: creating it");
            self.spawn(ctx_id);
        }
        let work = Work::Message(buf, n);
        let work = match self.workers.get(&ctx_id) {
            Some(w) => match w.send(work) {
                Ok(()) => None,
                Err(mpsc::SendError(work)) => Some(work),
            },
            None => Some(work),
        };
        if let Some(work) = work {
            // The context thread is gone (it panicked): start afresh and resend.
            if let Some(dead) = self.workers.remove(&ctx_id) {
                log::error!("context {ctx_id} thread died; restarting the context");
                self.retire(dead);
            }
            self.spawn(ctx_id);
            match self.workers.get(&ctx_id).map(|w| w.send(work)) {
                Some(Ok(())) => {}
                Some(Err(mpsc::SendError(Work::Message(buf, _)))) => {
                    log::error!("context {ctx_id}: message dropped");
                    self.pool.put(buf);
                }
                _ => log::error!("context {ctx_id}: message dropped"),
            }
        }
        if close {
            if let Some(w) = self.workers.remove(&ctx_id) {
                self.retire(w);
            }
        }
    }

    fn spawn(&mut self, ctx_id: u32) {
        let (tx, rx) = mpsc::sync_channel(self.config.queue_depth.max(1));
        let transport = Arc::clone(&self.transport);
        let pool = Arc::clone(&self.pool);
        let queued = Arc::new(AtomicUsize::new(0));
        let inbox = Inbox {
            rx,
            queued: Arc::clone(&queued),
        };
        let config = self.config.decoder;
        let live = Arc::clone(&self.live);
        live.fetch_add(1, Ordering::AcqRel);
        let spawned = thread::Builder::new()
            .name(format!("ctx{ctx_id}"))
            .spawn(move || {
                let stats = serve(ctx_id, config, &inbox, &*transport, &pool);
                // Its decoder is gone; if no other context is left, the daemon is idle.
                if live.fetch_sub(1, Ordering::AcqRel) == 1 {
                    daedalus_malloc::release_free_memory();
                }
                stats
            });
        if spawned.is_err() {
            self.live.fetch_sub(1, Ordering::AcqRel);
        }
        match spawned {
            Ok(thread) => {
                self.summary.contexts += 1;
                self.workers.insert(ctx_id, Worker { tx, queued, thread });
            }
            Err(e) => log::error!("cannot start a thread for context {ctx_id}: {e}"),
        }
    }

    /// Lets a context thread finish its queue and end (dropping its sender).
    fn retire(&mut self, w: Worker) {
        drop(w.tx);
        self.ended.push(w.thread);
    }

    /// Collects the statistics of ended context threads.
    fn reap(&mut self) {
        let mut i = 0;
        while i < self.ended.len() {
            if self.ended[i].is_finished() {
                let t = self.ended.swap_remove(i);
                self.join(t);
            } else {
                i += 1;
            }
        }
    }

    fn join(&mut self, t: JoinHandle<(u32, Stats)>) {
        match t.join() {
            Ok(s) => self.summary.stats.push(s),
            Err(_) => log::error!("a context thread panicked"),
        }
    }

    fn shutdown(&mut self) {
        let workers: Vec<Worker> = self.workers.drain().map(|(_, w)| w).collect();
        for w in workers {
            self.retire(w);
        }
        for t in std::mem::take(&mut self.ended) {
            self.join(t);
        }
    }
}

/// The receiving end of a context thread's channel.
struct Inbox {
    rx: Receiver<Work>,
    /// Messages sent and not received yet (the dispatcher counts them up).
    queued: Arc<AtomicUsize>,
}

/// What a context thread waits for next.
enum Next {
    Work(Work),
    /// Nothing came within the grace: push the pipeline on.
    Idle,
    /// The dispatcher is gone.
    End,
}

impl Inbox {
    /// The next message; with jobs in the pipeline, waits `grace` at most.
    fn next(&self, in_flight: usize, grace: std::time::Duration) -> Next {
        let r = if in_flight == 0 {
            self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            self.rx.recv_timeout(grace)
        };
        match r {
            Ok(w) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                Next::Work(w)
            }
            Err(RecvTimeoutError::Timeout) => Next::Idle,
            Err(RecvTimeoutError::Disconnected) => Next::End,
        }
    }

    /// Messages waiting behind the one just received.
    fn waiting(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

/// The thread of one context.
fn serve(
    ctx_id: u32,
    config: DecoderConfig,
    inbox: &Inbox,
    transport: &dyn Transport,
    pool: &Pool,
) -> (u32, Stats) {
    let mut ctx = Context::new(ctx_id, config);
    let mut done = Vec::with_capacity(16);
    // No message came within the grace: the client is waiting for its pictures, so the rest of
    // the pipeline is pushed on without waiting again until a message comes.
    let mut idle = false;
    loop {
        let grace = if idle {
            std::time::Duration::ZERO
        } else {
            ctx.grace()
        };
        let next = inbox.next(ctx.in_flight(), grace);
        idle = matches!(next, Next::Idle);
        match next {
            Next::End => break,
            Next::Idle => ctx.push(&mut done),
            Next::Work(Work::Stats) => eprintln!("context {ctx_id}: {}", ctx.stats()),
            Next::Work(Work::Message(buf, n)) => {
                let close = handle(&mut ctx, &buf[..n], inbox.waiting(), &mut done);
                pool.put(buf);
                if close {
                    ctx.drain(&mut done);
                }
                answer(&mut ctx, &mut done, transport);
                if close {
                    break;
                }
            }
        }
        answer(&mut ctx, &mut done, transport);
    }
    ctx.drain(&mut done);
    answer(&mut ctx, &mut done, transport);
    log::info!("context {ctx_id} closed: {}", ctx.stats());
    (ctx_id, ctx.stats().clone())
}

/// Sends the completions in `done` (emptied).
fn answer(ctx: &mut Context, done: &mut Vec<Completion>, transport: &dyn Transport) {
    for c in done.drain(..) {
        if let Err(e) = transport.complete(&c) {
            // E.g. the module already failed the job after its timeout.
            log::warn!(
                "context {} job {}: completion refused: {e}",
                c.ctx_id,
                c.job_id
            );
            ctx.record_complete_failure();
        }
    }
}

/// Handles one message of a context (`waiting` more queued behind it); true when the context
/// is closed. Completions go to `done`.
fn handle(ctx: &mut Context, bytes: &[u8], waiting: usize, done: &mut Vec<Completion>) -> bool {
    match wire::decode(bytes) {
        Ok(Message::Job(job)) => {
            ctx.submit(&job, waiting, done);
            false
        }
        Ok(Message::ContextFlush { .. }) => {
            log::debug!("context {} flushed", ctx.id());
            ctx.flush(done);
            false
        }
        Ok(Message::ContextClose { .. }) => true,
        Ok(Message::ContextOpen { .. }) => false,
        // Validated by the dispatcher already.
        Err(e) => {
            log::warn!("context {}: malformed message skipped: {e}", ctx.id());
            false
        }
    }
}

#[cfg(all(test, target_env = "gnu"))]
mod tests {
    /// Contexts' frame pools do not stay behind in the idle daemon: what its contexts do to
    /// the allocator, in a child process (the settings are process-wide), with the daemon's
    /// allocator settings: 4 rounds of three threads, each freeing one mapped 24 MiB block
    /// (which would raise glibc's dynamic mmap threshold to 24 MiB and its trim threshold to
    /// 48) and then 16 frame-sized blocks of 3 MiB, written to; after each round the memory is
    /// released as the dispatcher does when a context ends. That leaves less than 8 MiB (with
    /// glibc's dynamic thresholds the frames stay in the threads' arenas, beyond malloc_trim's
    /// reach: 96 MiB measured here).
    #[test]
    fn idle_memory_returns_after_contexts() {
        let limit = std::time::Duration::from_secs(120);
        let growth = daedalus_tools::stress::rss_anon_growth_in_child(limit, || {
            daedalus_malloc::configure();
            for _ in 0..4 {
                let threads: Vec<_> = (0..3)
                    .map(|_| {
                        std::thread::spawn(|| {
                            drop(std::hint::black_box(vec![1u8; 24 << 20]));
                            let frames: Vec<Vec<u8>> =
                                (0..16).map(|i| vec![i as u8; 3 << 20]).collect();
                            std::hint::black_box(&frames);
                        })
                    })
                    .collect();
                if threads.into_iter().any(|t| t.join().is_err()) {
                    return false;
                }
                daedalus_malloc::release_free_memory();
            }
            true
        })
        .expect("allocator child");
        assert!(growth < 8, "idle anonymous RSS grew by {growth} MiB");
    }

    /// A block a decoder allocates and frees for every picture (libdav1d's and FFmpeg's H.264
    /// frame threads' do: 0.7-1.8 MiB) is reused from its arena, not mapped afresh: with the
    /// daemon's allocator settings, 100 rounds of a 1.5 MiB block written whole cost under 4
    /// page faults a round (a fresh mapping costs 384, as with a 256 KiB mmap threshold).
    #[test]
    fn per_picture_blocks_do_not_fault() {
        use nix::sys::resource::{getrusage, UsageWho};
        let faults = || getrusage(UsageWho::RUSAGE_SELF).map(|u| u.minor_page_faults());
        let limit = std::time::Duration::from_secs(60);
        let ok = daedalus_tools::stress::rss_anon_growth_in_child(limit, || {
            daedalus_malloc::configure();
            drop(std::hint::black_box(vec![1u8; 1536 << 10]));
            let Ok(before) = faults() else { return false };
            for i in 0..100u8 {
                drop(std::hint::black_box(vec![i | 1; 1536 << 10]));
            }
            faults().is_ok_and(|after| after - before < 400)
        });
        assert!(ok.is_ok(), "per-picture blocks fault: {ok:?}");
    }
}
