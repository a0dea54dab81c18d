// SPDX-License-Identifier: GPL-2.0
//! Decode counters, device-wide and per context, for `daedalus status`, monitoring and the soak
//! tests (issue 14). Kept by the job queue ([`crate::jobs`]) under its lock, shown read-only in
//! sysfs by [`crate::chardev`] (`/sys/class/misc/daedalus/`, `docs/install.md`, "Watching the
//! device").
//!
//! Every job is counted once when it is made (`submitted`) and once when it ends: `completed`
//! (the daemon decoded it) or `failed` (its buffers came back in error: the daemon's error, an
//! invalid answer, no daemon, the daemon gone, its context stopping, a full queue, or a timeout;
//! `timed_out` counts the timeouts among them). So at any time
//! `submitted = completed + failed + in_flight`, `in_flight` being the jobs in the queue's table.
//!
//! Latency is from the job's start (`device_run`) to its end, for decoded jobs; the percentiles
//! are those of the last [`RECENT`] decoded jobs. Frames per second count the decoded jobs that
//! ended in the last [`FPS_WINDOW_MS`] (or, above [`RECENT`] jobs in that window, the span of the
//! last [`RECENT`]).

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::formats::Codec;
use crate::media::v4l2::format::BufType;

/// How many recent decoded jobs the latency percentiles and the frame rate come from.
pub(crate) const RECENT: usize = 64;
/// The window the frame rate is measured over.
pub(crate) const FPS_WINDOW_MS: u32 = 2000;

/// One decoded job: when it ended and how long it took.
#[derive(Clone, Copy)]
struct Sample {
    /// Monotonic clock, milliseconds (wraps after 49 days; only differences are used).
    end_ms: u32,
    latency_us: u32,
}

/// How a job ended, as the counters see it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Decoded,
    Failed,
    TimedOut,
}

/// The counters of the device or of one context.
#[derive(Clone, Copy)]
pub(crate) struct Counters {
    submitted: u64,
    completed: u64,
    failed: u64,
    timed_out: u64,
    /// The last decoded jobs, a ring: `recent[decoded % RECENT]` is the next slot.
    recent: [Sample; RECENT],
}

impl Counters {
    /// All zero.
    pub(crate) const fn new() -> Counters {
        Counters {
            submitted: 0,
            completed: 0,
            failed: 0,
            timed_out: 0,
            recent: [Sample {
                end_ms: 0,
                latency_us: 0,
            }; RECENT],
        }
    }

    /// A job was made.
    pub(crate) fn submitted(&mut self) {
        self.submitted += 1;
    }

    /// A job that started at `start_ns` ended at `now_ns` (monotonic clock).
    pub(crate) fn ended(&mut self, end: End, start_ns: u64, now_ns: u64) {
        match end {
            End::Decoded => {
                let latency_us = now_ns.saturating_sub(start_ns) / 1000;
                let slot = (self.completed % RECENT as u64) as usize;
                if let Some(s) = self.recent.get_mut(slot) {
                    *s = Sample {
                        end_ms: ms(now_ns),
                        latency_us: u32::try_from(latency_us).unwrap_or(u32::MAX),
                    };
                }
                self.completed += 1;
            }
            End::Failed => self.failed += 1,
            End::TimedOut => {
                self.failed += 1;
                self.timed_out += 1;
            }
        }
    }

    /// The figures at `now_ns`, with `in_flight` jobs in the queue.
    pub(crate) fn snapshot(&self, now_ns: u64, in_flight: u32) -> Snapshot {
        let n = (self.completed.min(RECENT as u64)) as usize;
        let samples = self.recent.get(..n).unwrap_or(&[]);
        // Latencies, sorted (insertion sort: at most RECENT entries; core's sort leaves panic
        // paths objtool warns about on 6.12, see `jobs.rs`).
        let mut lat = [0u32; RECENT];
        for (d, s) in lat.iter_mut().zip(samples) {
            *d = s.latency_us;
        }
        let lat = lat.get_mut(..n).unwrap_or(&mut []);
        for i in 1..lat.len() {
            let mut k = i;
            while k > 0 && lat[k - 1] > lat[k] {
                lat.swap(k - 1, k);
                k -= 1;
            }
        }
        let pct = |p: usize| -> u32 {
            // Nearest rank: the smallest value with at least p% of the samples at or below it.
            let rank = (p * lat.len()).div_ceil(100).max(1);
            lat.get(rank - 1).copied().unwrap_or(0)
        };
        Snapshot {
            submitted: self.submitted,
            completed: self.completed,
            failed: self.failed,
            timed_out: self.timed_out,
            in_flight,
            fps_centi: fps_centi(samples, ms(now_ns)),
            latency_us: [pct(50), pct(95), pct(99)],
        }
    }
}

/// Milliseconds of the monotonic clock, wrapping.
fn ms(ns: u64) -> u32 {
    (ns / 1_000_000) as u32
}

/// Hundredths of frames per second from the decoded jobs `samples`, at `now_ms`.
fn fps_centi(samples: &[Sample], now_ms: u32) -> u64 {
    let age = |s: &Sample| now_ms.wrapping_sub(s.end_ms);
    let in_window = samples.iter().filter(|s| age(s) <= FPS_WINDOW_MS).count() as u64;
    if in_window == 0 {
        return 0;
    }
    if in_window < RECENT as u64 {
        return in_window * 100_000 / u64::from(FPS_WINDOW_MS);
    }
    // Every recent job is in the window: the rate is over their span.
    let span = samples.iter().map(age).max().unwrap_or(0).max(1);
    RECENT as u64 * 100_000 / u64::from(span)
}

/// The figures of one set of counters at one moment.
pub(crate) struct Snapshot {
    pub(crate) submitted: u64,
    pub(crate) completed: u64,
    pub(crate) failed: u64,
    pub(crate) timed_out: u64,
    pub(crate) in_flight: u32,
    /// Frames per second × 100.
    pub(crate) fps_centi: u64,
    /// p50, p95, p99 in microseconds (0 before the first decoded job).
    pub(crate) latency_us: [u32; 3],
}

/// Frames per second with two decimals.
pub(crate) struct Fps(pub(crate) u64);

impl fmt::Display for Fps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl Snapshot {
    /// One line of `key=value` pairs (the `contexts` attribute), without the newline.
    pub(crate) fn write_pairs(&self, w: &mut impl Write) -> fmt::Result {
        write!(
            w,
            "submitted={} completed={} failed={} timed_out={} in_flight={} fps={} \
             latency_p50_us={} latency_p95_us={} latency_p99_us={}",
            self.submitted,
            self.completed,
            self.failed,
            self.timed_out,
            self.in_flight,
            Fps(self.fps_centi),
            self.latency_us[0],
            self.latency_us[1],
            self.latency_us[2],
        )
    }
}

/// The videobuf2 buffers of the open contexts with memory behind them: what the clients'
/// queues hold (allocated by REQBUFS / CREATE_BUFS, or dma-bufs they imported), which on a board
/// comes out of CMA. Counted when memory is attached to a buffer and when videobuf2 releases it
/// (`media::vb2` pairs the two), so with no context open all are 0 again.
///
/// Atomics, not the job queue's lock: videobuf2 releases buffers with `q->mmap_lock` held, which
/// nests inside `mm->mmap_lock`, which the job queue's lock already nests (its reads copy to
/// userspace under it), so taking that lock here would close a cycle (lockdep saw it).
pub(crate) struct Buffers {
    output: AtomicU32,
    capture: AtomicU32,
    bytes: AtomicU64,
}

impl Buffers {
    /// None.
    pub(crate) const fn new() -> Buffers {
        Buffers {
            output: AtomicU32::new(0),
            capture: AtomicU32::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    fn count(&self, ty: BufType) -> &AtomicU32 {
        match ty {
            BufType::VideoOutputMplane => &self.output,
            BufType::VideoCaptureMplane => &self.capture,
        }
    }

    /// `bytes` of memory attached to a buffer of queue `ty`.
    pub(crate) fn attached(&self, ty: BufType, bytes: u32) {
        self.count(ty).fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(u64::from(bytes), Ordering::Relaxed);
    }

    /// The memory of an earlier [`Buffers::attached`] released (the layer pairs them, so the
    /// counts never go below 0).
    pub(crate) fn released(&self, ty: BufType, bytes: u32) {
        self.count(ty).fetch_sub(1, Ordering::Relaxed);
        self.bytes.fetch_sub(u64::from(bytes), Ordering::Relaxed);
    }

    /// OUTPUT buffers with memory.
    pub(crate) fn output(&self) -> u32 {
        self.output.load(Ordering::Relaxed)
    }

    /// CAPTURE buffers with memory.
    pub(crate) fn capture(&self) -> u32 {
        self.capture.load(Ordering::Relaxed)
    }

    /// Bytes of memory behind the buffers.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// The counters of one open context.
pub(crate) struct ContextStats {
    pub(crate) id: u32,
    /// The codec of its last job (`None` before it).
    pub(crate) codec: Option<Codec>,
    pub(crate) counters: Counters,
}

/// The name `daedalus status` shows for `codec`.
pub(crate) fn codec_name(codec: Option<Codec>) -> &'static str {
    match codec {
        Some(Codec::Vp9) => "vp9",
        Some(Codec::Av1) => "av1",
        Some(Codec::H264) => "h264",
        None => "-",
    }
}
