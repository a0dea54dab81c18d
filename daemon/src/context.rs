// SPDX-License-Identifier: GPL-2.0
//! One decode context (an open file of `/dev/videoN`): its decoder, its mapped buffers and its
//! statistics, and the handling of its jobs: [`Context::submit`] (pipelined when the decoder
//! can and the context's queue is deep enough; completions come out in order, possibly later)
//! or [`Context::handle_job`] (one job, synchronously). The dispatcher runs each context on its
//! own thread; tests drive a context directly.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use daedalus_proto::wire::{BufferDesc, Completion, Job, JobHeader, Status};

use crate::band_pool::LazyBandPool;
use crate::codec::{self, Bitstream, Decoder, DecoderConfig, Finished, JobIo, JobOutcome};
use crate::error::JobError;
use crate::mapping::BufferCache;
use crate::stats::Stats;

/// A decode context.
pub struct Context {
    id: u32,
    config: DecoderConfig,
    // Declared before `buffers`: the decoder (and any reference it holds into an OUTPUT
    // mapping) goes first.
    /// The decoder of the codec of the latest job; opened with the first job of a codec.
    decoder: Option<Box<dyn Decoder>>,
    buffers: BufferCache,
    /// Converts pictures in parallel; started with the first picture.
    bands: LazyBandPool,
    stats: Stats,
    /// The jobs in the decoder's pipeline, oldest first.
    pending: VecDeque<Pending>,
    /// When the latest pipelined job ended, and the mean time between two such ends.
    last_end: Option<Instant>,
    interval: Option<Duration>,
}

/// A job in the decoder's pipeline.
struct Pending {
    header: JobHeader,
    start: Instant,
}

/// How long [`Context::grace`] waits when nothing is known yet.
const DEFAULT_GRACE: Duration = Duration::from_millis(10);
/// Bounds of [`Context::grace`].
const MIN_GRACE: Duration = Duration::from_millis(1);
const MAX_GRACE: Duration = Duration::from_millis(50);

/// The description of a buffer already taken over (a job's fd is used once).
fn known(desc: &BufferDesc) -> BufferDesc {
    BufferDesc { fd: -1, ..*desc }
}

impl Context {
    /// A new context; its decoder is created with the first job.
    pub fn new(id: u32, config: DecoderConfig) -> Context {
        Context {
            id,
            config,
            decoder: None,
            buffers: BufferCache::new(),
            bands: LazyBandPool::new(config.threads),
            stats: Stats::default(),
            pending: VecDeque::with_capacity(16),
            last_end: None,
            interval: None,
        }
    }

    /// The context's id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The statistics so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Counts a completion the module refused.
    pub fn record_complete_failure(&mut self) {
        self.stats.complete_failures += 1;
    }

    /// Number of cached mappings (OUTPUT, CAPTURE).
    pub fn buffer_counts(&self) -> (usize, usize) {
        self.buffers.counts()
    }

    /// Drops the decoder state (stream off): the next frame must be a key frame. Mappings stay.
    /// The jobs in the pipeline end first (their completions go to `done`).
    pub fn flush(&mut self, done: &mut Vec<Completion>) {
        self.drain(done);
        if let Some(d) = &mut self.decoder {
            d.flush();
        }
    }

    /// Handles one job synchronously (never pipelined) and returns its completion. Never
    /// fails: errors become a status. Only for a context with no job in its pipeline.
    pub fn handle_job(&mut self, job: &Job<'_>) -> Completion {
        let start = Instant::now();
        let r = self.run(job, &job.header.output, &job.header.capture);
        self.complete(&job.header, start, r)
    }

    /// Handles one job, `ahead` more jobs of the context being queued behind it: into the
    /// decoder's pipeline when it takes it, else once the pipeline is empty, synchronously.
    /// The completions of the jobs that ended go to `done`, in job order. Never fails: errors
    /// become a status.
    pub fn submit(&mut self, job: &Job<'_>, ahead: usize, done: &mut Vec<Completion>) {
        let start = Instant::now();
        match self.offer(job, ahead) {
            Ok(true) => {
                self.pending.push_back(Pending {
                    header: job.header,
                    start,
                });
                self.stats.pipelined += 1;
                self.deliver(false, done);
            }
            Ok(false) => {
                self.drain(done);
                // The buffers were resolved by `offer`: their fds are ours now.
                let (output, capture) = (known(&job.header.output), known(&job.header.capture));
                let r = self.run(job, &output, &capture);
                done.push(self.complete(&job.header, start, r));
            }
            Err(e) => {
                self.drain(done);
                done.push(self.complete(&job.header, start, Err(e)));
            }
        }
    }

    /// Jobs in the decoder's pipeline.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// The context has no job to give now: the pipeline moves on until its oldest job ends.
    pub fn push(&mut self, done: &mut Vec<Completion>) {
        if !self.pending.is_empty() {
            self.stats.pushed += 1;
        }
        self.deliver(true, done);
    }

    /// Ends every job in the pipeline.
    pub fn drain(&mut self, done: &mut Vec<Completion>) {
        while !self.pending.is_empty() {
            let before = self.pending.len();
            self.deliver(true, done);
            if self.pending.len() == before {
                break;
            }
        }
        // The decoder lost track of them (it cannot, but a client must never wait forever).
        while let Some(p) = self.pending.pop_front() {
            let e = JobError::Internal("the job was lost in the pipeline");
            done.push(self.complete(&p.header, p.start, Err(e)));
        }
    }

    /// How long to wait for the context's next job before pushing the pipeline on without
    /// it: half the time between two pipelined pictures, within bounds. A client keeping as
    /// many requests in flight as there are threads queues its next one right after a
    /// completion; pushing on at once would waste a thread's frame on a filler.
    pub fn grace(&self) -> Duration {
        self.interval
            .map_or(DEFAULT_GRACE, |i| (i / 2).clamp(MIN_GRACE, MAX_GRACE))
    }

    /// Whether `buffers` resolve (the fds are taken over) and the decoder takes the job into
    /// its pipeline.
    fn offer(&mut self, job: &Job<'_>, ahead: usize) -> Result<bool, JobError> {
        let (out, cap) = self
            .buffers
            .resolve(&job.header.output, &job.header.capture);
        let (out, _) = (out?, cap?);
        match &mut self.decoder {
            Some(d) if d.codec() == job.header.codec => d.offer(job, out, ahead),
            _ => Ok(false),
        }
    }

    /// Completes the jobs of the pipeline that ended (with `push`, at least the oldest).
    fn deliver(&mut self, mut push: bool, done: &mut Vec<Completion>) {
        loop {
            let Some(decoder) = self.decoder.as_mut() else {
                return;
            };
            let Some(finished) = decoder.finished(push) else {
                return;
            };
            push = false;
            let Some(p) = self.pending.pop_front() else {
                log::error!(
                    "context {}: the decoder ended a job it was not given",
                    self.id
                );
                return;
            };
            let r = match finished {
                Finished::Picture(picture, clip, outcome) => {
                    let (_, cap) = self
                        .buffers
                        .resolve(&known(&p.header.output), &known(&p.header.capture));
                    // On this thread alone, not in bands: the decoder's frame threads keep
                    // every CPU busy meanwhile, so a band helper would only wait for a CPU,
                    // and this thread with it. Measured on a loaded 2-CPU host (1080p VP9,
                    // engine / FFmpeg's frame threads, 12 runs each): median 0.889 with one
                    // band, 0.845 with two; a small gain at best, within the host's noise.
                    match cap {
                        Ok(cap) => crate::convert::write_picture(
                            picture,
                            cap,
                            &p.header.picture,
                            clip,
                            None,
                        )
                        .map(|()| outcome),
                        Err(e) => Err(e.into()),
                    }
                }
                Finished::NoPicture(outcome) => Ok(outcome),
                Finished::Failed(e) => Err(e),
            };
            let now = Instant::now();
            if let Some(last) = self.last_end {
                let d = now - last;
                self.interval = Some(self.interval.map_or(d, |i| (i * 7 + d) / 8));
            }
            self.last_end = Some(now);
            done.push(self.complete(&p.header, p.start, r));
        }
    }

    /// The completion of job `header`, started at `start`, that ended with `r`; counted.
    fn complete(
        &mut self,
        header: &JobHeader,
        start: Instant,
        r: Result<JobOutcome, JobError>,
    ) -> Completion {
        let status = match r {
            Ok(outcome) => {
                match outcome.bitstream {
                    Bitstream::InPlace => self.stats.zero_copy += 1,
                    Bitstream::Copied => self.stats.copied += 1,
                }
                if outcome.hidden {
                    self.stats.hidden += 1;
                }
                Status::Ok
            }
            Err(e) => {
                let status = e.status();
                if matches!(
                    e,
                    JobError::Buffer(_) | JobError::Internal(_) | JobError::Ffmpeg(_)
                ) {
                    log::error!("context {} job {}: {e}", self.id, header.job_id);
                } else {
                    log::warn!("context {} job {}: {e}", self.id, header.job_id);
                }
                status
            }
        };
        let took = start.elapsed();
        self.stats.record(status, took);
        log::debug!(
            "context {} job {} (ts {}, OUTPUT {} CAPTURE {}): status {status:?} in {took:?}",
            self.id,
            header.job_id,
            header.timestamp_ns,
            header.output.index,
            header.capture.index
        );
        Completion {
            job_id: header.job_id,
            ctx_id: header.ctx_id,
            status,
            // The module validates this against the CAPTURE buffer: always the picture size.
            capture_bytesused: header.picture.sizeimage,
        }
    }

    /// Decodes `job` at once, its buffers as `output` and `capture` describe them.
    fn run(
        &mut self,
        job: &Job<'_>,
        output: &BufferDesc,
        capture: &BufferDesc,
    ) -> Result<JobOutcome, JobError> {
        // Both buffers first: a new fd is taken over whatever else fails.
        let (out, cap) = self.buffers.resolve(output, capture);
        let (out, cap) = (out?, cap?);
        let decoder = match &mut self.decoder {
            Some(d) if d.codec() == job.header.codec => d,
            // The first job, or the client switched codecs (after a stream off).
            slot => slot.insert(codec::open(job.header.codec, &self.config)?),
        };
        decoder.decode_job(JobIo {
            job,
            out,
            cap,
            bands: &self.bands,
        })
    }
}
