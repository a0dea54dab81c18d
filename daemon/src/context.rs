// SPDX-License-Identifier: GPL-2.0
//! One decode context (an open file of `/dev/videoN`): its decoder, its mapped buffers and its
//! statistics, and the handling of one job, synchronously. The dispatcher runs each context on
//! its own thread; tests drive a context directly.

use std::time::Instant;

use daedalus_proto::wire::{Completion, Job, Status};

use crate::band_pool::LazyBandPool;
use crate::codec::{self, Bitstream, Decoder, DecoderConfig, JobIo};
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
    pub fn flush(&mut self) {
        if let Some(d) = &mut self.decoder {
            d.flush();
        }
    }

    /// Handles one job and returns its completion. Never fails: errors become a status.
    pub fn handle_job(&mut self, job: &Job<'_>) -> Completion {
        let start = Instant::now();
        let status = match self.run(job) {
            Ok(()) => Status::Ok,
            Err(e) => {
                let status = e.status();
                if matches!(
                    e,
                    JobError::Buffer(_) | JobError::Internal(_) | JobError::Ffmpeg(_)
                ) {
                    log::error!("context {} job {}: {e}", self.id, job.header.job_id);
                } else {
                    log::warn!("context {} job {}: {e}", self.id, job.header.job_id);
                }
                status
            }
        };
        let took = start.elapsed();
        self.stats.record(status, took);
        log::debug!(
            "context {} job {} (ts {}, OUTPUT {} CAPTURE {}): status {status:?} in {took:?}",
            self.id,
            job.header.job_id,
            job.header.timestamp_ns,
            job.header.output.index,
            job.header.capture.index
        );
        Completion {
            job_id: job.header.job_id,
            ctx_id: job.header.ctx_id,
            status,
            // The module validates this against the CAPTURE buffer: always the picture size.
            capture_bytesused: job.header.picture.sizeimage,
        }
    }

    fn run(&mut self, job: &Job<'_>) -> Result<(), JobError> {
        // Both buffers first: a new fd is taken over whatever else fails.
        let (out, cap) = self
            .buffers
            .resolve(&job.header.output, &job.header.capture);
        let (out, cap) = (out?, cap?);
        let decoder = match &mut self.decoder {
            Some(d) if d.codec() == job.header.codec => d,
            // The first job, or the client switched codecs (after a stream off).
            slot => slot.insert(codec::open(job.header.codec, &self.config)?),
        };
        let outcome = decoder.decode_job(JobIo {
            job,
            out,
            cap,
            bands: &self.bands,
        })?;
        match outcome.bitstream {
            Bitstream::InPlace => self.stats.zero_copy += 1,
            Bitstream::Copied => self.stats.copied += 1,
        }
        if outcome.hidden {
            self.stats.hidden += 1;
        }
        Ok(())
    }
}
