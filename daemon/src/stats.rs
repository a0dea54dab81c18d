// SPDX-License-Identifier: GPL-2.0
//! Per-context statistics: job counts by outcome and a fixed-size job-time histogram (recording
//! a sample is a few integer operations, with no allocation).

use std::fmt;
use std::time::Duration;

use daedalus_proto::wire::Status;

/// Sub-buckets per power of two: bucket edges are within 1/8 (12.5 %) of each other.
const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
/// Values below this many microseconds get a bucket each.
const LINEAR: u64 = 2 * SUB as u64;
/// Up to 2^40 us (12 days): anything longer lands in the last bucket.
const MAX_EXP: u32 = 40;
const BUCKETS: usize = LINEAR as usize + (MAX_EXP - SUB_BITS) as usize * SUB;

/// A log-linear histogram of durations in microseconds.
#[derive(Clone)]
pub struct Histogram {
    counts: [u64; BUCKETS],
    total: u64,
    max_us: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: [0; BUCKETS],
            total: 0,
            max_us: 0,
        }
    }
}

fn bucket_of(us: u64) -> usize {
    if us < LINEAR {
        return us as usize;
    }
    let exp = 63 - us.leading_zeros(); // >= SUB_BITS + 1
    if exp >= MAX_EXP {
        return BUCKETS - 1;
    }
    let sub = (us >> (exp - SUB_BITS)) as usize & (SUB - 1);
    LINEAR as usize + (exp - SUB_BITS - 1) as usize * SUB + sub
}

/// The largest value that falls in bucket `b`.
fn bucket_upper(b: usize) -> u64 {
    if b < LINEAR as usize {
        return b as u64;
    }
    let i = b - LINEAR as usize;
    let exp = (i / SUB) as u32 + SUB_BITS + 1;
    let sub = (i % SUB) as u64;
    let lower = (1u64 << exp) + (sub << (exp - SUB_BITS));
    lower + (1u64 << (exp - SUB_BITS)) - 1
}

impl Histogram {
    /// Records one duration.
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.counts[bucket_of(us)] += 1;
        self.total += 1;
        self.max_us = self.max_us.max(us);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The duration below which a fraction `q` (0..=1) of the samples fall (bucket upper
    /// bound, at most the largest sample); zero without samples.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Duration::from_micros(bucket_upper(b).min(self.max_us));
            }
        }
        Duration::from_micros(self.max_us)
    }

    /// The largest sample.
    pub fn max(&self) -> Duration {
        Duration::from_micros(self.max_us)
    }
}

/// Counters of one context.
#[derive(Clone, Default)]
pub struct Stats {
    /// Jobs answered with `Status::Ok`.
    pub ok: u64,
    /// Jobs answered with `Status::DecodeError`.
    pub decode_errors: u64,
    /// Jobs answered with `Status::Unsupported`.
    pub unsupported: u64,
    /// Jobs answered with `Status::InternalError`.
    pub internal_errors: u64,
    /// Hidden frames (decoded through a synthetic `show_existing_frame`).
    pub hidden: u64,
    /// Jobs whose bitstream was decoded in place from the OUTPUT mapping.
    pub zero_copy: u64,
    /// Jobs whose bitstream was copied into a padded buffer first.
    pub copied: u64,
    /// Completions the module refused.
    pub complete_failures: u64,
    /// Jobs decoded in the pipeline (frame threads, [`crate::codec::pipeline`]).
    pub pipelined: u64,
    /// Times the context's queue ran dry with jobs in the pipeline, which was then pushed on
    /// without a new job (fillers, [`crate::Context::push`]): a client that keeps the pipeline
    /// full never causes one; many mean the pipeline lost frames' worth of decoding time.
    pub pushed: u64,
    /// Time from receiving a job to having its completion ready.
    pub job_time: Histogram,
}

impl Stats {
    /// Counts one answered job.
    pub fn record(&mut self, status: Status, took: Duration) {
        match status {
            Status::Ok => self.ok += 1,
            Status::DecodeError => self.decode_errors += 1,
            Status::Unsupported => self.unsupported += 1,
            Status::InternalError => self.internal_errors += 1,
        }
        self.job_time.record(took);
    }

    /// All jobs answered.
    pub fn jobs(&self) -> u64 {
        self.ok + self.decode_errors + self.unsupported + self.internal_errors
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        write!(
            f,
            "{} frames ok, {} decode errors, {} unsupported, {} internal errors; \
             {} hidden, {} zero-copy, {} copied; job time p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.ok,
            self.decode_errors,
            self.unsupported,
            self.internal_errors,
            self.hidden,
            self.zero_copy,
            self.copied,
            ms(self.job_time.quantile(0.5)),
            ms(self.job_time.quantile(0.99)),
            ms(self.job_time.max()),
        )?;
        if self.pipelined > 0 {
            write!(f, "; {} pipelined, {} pushed", self.pipelined, self.pushed)?;
        }
        if self.complete_failures > 0 {
            write!(f, "; {} completions refused", self.complete_failures)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for us in (0..100_000u64).chain([1 << 20, (1 << 39) + 5, 1 << 45, u64::MAX]) {
            let b = bucket_of(us);
            assert!(b >= last, "{us}");
            assert!(b < BUCKETS);
            last = b;
            if us < 1 << MAX_EXP {
                let up = bucket_upper(b);
                assert!(up >= us, "{us} > upper {up}");
                // Within 12.5 % above the value.
                assert!(up - us <= us / 8 + 1, "{us}: upper {up}");
            }
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), Duration::ZERO);
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let p50 = h.quantile(0.5).as_micros() as f64;
        let p99 = h.quantile(0.99).as_micros() as f64;
        assert!((50_000.0..=50_000.0 * 1.125).contains(&p50), "{p50}");
        assert!((99_000.0..=100_000.0).contains(&p99), "{p99}");
        assert_eq!(h.max(), Duration::from_millis(100));
        assert_eq!(h.count(), 100);
    }

    #[test]
    fn stats_display() {
        let mut s = Stats::default();
        s.record(Status::Ok, Duration::from_millis(2));
        s.record(Status::DecodeError, Duration::from_millis(4));
        assert_eq!(s.jobs(), 2);
        let text = s.to_string();
        assert!(text.starts_with("1 frames ok, 1 decode errors"), "{text}");
    }
}
