// SPDX-License-Identifier: GPL-2.0
//! Pipelined decoding: an FFmpeg decoder with frame threads, used while a context has enough
//! jobs queued to keep its threads busy.
//!
//! A frame-threaded decoder with N threads returns the picture of packet k only once it has
//! been given packet k + N − 1: decoding one frame per thread, it hands pictures back in packet
//! order, each when its thread is done. A stateless job must still end with its own picture in
//! decode order, and a client that stops queueing must never be left waiting, so:
//!
//! * every packet carries a sequence number as `pts`; each job remembers the number of the
//!   packet whose picture is its own ([`FramePipeline::push_job`]), and pictures of other packets
//!   (replayed references, fillers) are dropped;
//! * when the context has no job to give, the pipeline is pushed on by a **filler**: a packet
//!   that changes no decoder state and decodes at no cost (VP9: a `show_existing_frame` of slot
//!   0), so that references survive and the pipeline can go on when the next job comes;
//! * a switch from low-delay decoding into the pipeline in the middle of a group of pictures
//!   replays the packets since the key frame ([`History`]) into the frame-threaded decoder.
//!
//! FFmpeg 5.1's frame threads: `avcodec_send_packet` gives the packet to the next thread and,
//! once every thread has had one, waits for the oldest thread and keeps its picture, which
//! `avcodec_receive_frame` then returns; a decoding error of the oldest packet comes out of
//! either call. So every send is followed by [`FramePipeline::collect`], and errors are queued
//! with the pictures, in order.

use std::collections::VecDeque;

use ffmpeg_next as ffmpeg;
use ffmpeg_next::frame;

use super::{Finished, JobOutcome};
use crate::avbuf::PacketSender;
use crate::error::JobError;

/// Most packets kept since a key frame; past it a switch into the pipeline waits for a key
/// frame.
const HISTORY_MAX_PACKETS: usize = 512;
/// Most bytes kept since a key frame.
const HISTORY_MAX_BYTES: usize = 32 << 20;

/// The packets since the last key frame, copied (the client gets its OUTPUT buffers back),
/// to rebuild the references of another decoder. The copies' buffers are reused from one group
/// of pictures to the next.
#[derive(Default)]
pub struct History {
    packets: Vec<Vec<u8>>,
    len: usize,
    bytes: usize,
    /// A key frame was seen since the decoder was flushed and nothing was dropped since.
    valid: bool,
}

impl History {
    /// A key frame starts the history again (the key frame is recorded next).
    pub fn restart(&mut self) {
        self.len = 0;
        self.bytes = 0;
        self.valid = true;
    }

    /// The references are unknown (a flush, too much history) until the next key frame.
    pub fn invalidate(&mut self) {
        self.len = 0;
        self.bytes = 0;
        self.valid = false;
    }

    /// Records a packet decoded after the key frame.
    pub fn record(&mut self, data: &[u8]) {
        if !self.valid {
            return;
        }
        if self.len >= HISTORY_MAX_PACKETS || self.bytes + data.len() > HISTORY_MAX_BYTES {
            self.invalidate();
            return;
        }
        if self.len == self.packets.len() {
            self.packets.push(Vec::with_capacity(data.len()));
        }
        let b = &mut self.packets[self.len];
        b.clear();
        b.extend_from_slice(data);
        self.len += 1;
        self.bytes += data.len();
    }

    /// Whether the packets since the last key frame are all here.
    pub fn usable(&self) -> bool {
        self.valid
    }

    /// The packets since the last key frame, in decode order.
    pub fn packets(&self) -> &[Vec<u8>] {
        &self.packets[..self.len]
    }
}

/// A job inside the pipeline.
struct PipeJob {
    /// The number of the packet whose picture is the job's; `None`: the job has no picture
    /// (a hidden frame that refreshes no reference slot).
    picture: Option<i64>,
    outcome: JobOutcome,
}

/// A frame-threaded decoder and the jobs inside it, oldest first.
pub struct FramePipeline {
    /// The decoder (frame threads, no low delay).
    pub dec: ffmpeg::decoder::Video,
    /// Its packets.
    pub sender: PacketSender,
    threads: usize,
    pts: i64,
    jobs: VecDeque<PipeJob>,
    /// What the decoder returned, in order, not matched to a job yet.
    outputs: VecDeque<Result<frame::Video, ffmpeg::Error>>,
    free: Vec<frame::Video>,
    /// The picture of the latest finished job.
    current: frame::Video,
    /// The filler packet (changes no state, outputs a picture of a reference).
    filler: [u8; 2],
    filler_len: usize,
}

// SAFETY: FFmpeg codec contexts and frames may move between threads as long as they are not
// used concurrently (`&mut self` only); the sender is `Send`.
unsafe impl Send for FramePipeline {}

impl FramePipeline {
    /// A pipeline on `dec`, opened with `threads` frame threads.
    pub fn new(dec: ffmpeg::decoder::Video, sender: PacketSender, threads: usize) -> Self {
        let room = 2 * threads + 8;
        FramePipeline {
            dec,
            sender,
            threads,
            pts: 0,
            jobs: VecDeque::with_capacity(room),
            outputs: VecDeque::with_capacity(room),
            free: Vec::with_capacity(room),
            current: frame::Video::empty(),
            filler: [0; 2],
            filler_len: 0,
        }
    }

    /// The number of the next packet.
    pub fn next_pts(&mut self) -> i64 {
        self.pts += 1;
        self.pts
    }

    /// Sets the filler packet (at most 2 bytes).
    pub fn set_filler(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.filler.len());
        self.filler[..n].copy_from_slice(&bytes[..n]);
        self.filler_len = n;
    }

    /// Jobs inside the pipeline.
    pub fn in_flight(&self) -> usize {
        self.jobs.len()
    }

    /// Drops all decoding state. Jobs still inside are dropped: callers finish them first.
    pub fn flush(&mut self) {
        self.dec.flush();
        self.jobs.clear();
        while let Some(o) = self.outputs.pop_front() {
            if let Ok(f) = o {
                self.free.push(f);
            }
        }
    }

    /// What a send returned: a decoding error there is the oldest packet's, queued in order.
    pub fn sent(&mut self, r: Result<(), JobError>) -> Result<(), JobError> {
        match r {
            Ok(()) => {}
            Err(JobError::Decode(e)) => self.outputs.push_back(Err(e)),
            Err(e) => return Err(e),
        }
        self.collect();
        Ok(())
    }

    /// Takes every picture (or error) the decoder has ready.
    fn collect(&mut self) {
        // A decoder returns one picture per packet at most (two for a VP9 superframe): this
        // only bounds the loop.
        for _ in 0..4 * self.threads + 8 {
            let mut f = self.free.pop().unwrap_or_else(frame::Video::empty);
            match self.dec.receive_frame(&mut f) {
                Ok(()) => self.outputs.push_back(Ok(f)),
                Err(ffmpeg::Error::Other {
                    errno: libc::EAGAIN,
                })
                | Err(ffmpeg::Error::Eof) => {
                    self.free.push(f);
                    return;
                }
                Err(e) => {
                    self.free.push(f);
                    self.outputs.push_back(Err(e));
                }
            }
        }
    }

    /// A job was sent: its picture is that of packet `picture`.
    pub fn push_job(&mut self, picture: Option<i64>, outcome: JobOutcome) {
        self.jobs.push_back(PipeJob { picture, outcome });
    }

    /// The end of the oldest job if it has come; with `push`, fillers move the pipeline on
    /// until it comes (a few frames' decoding time at most). `None` when no job is inside, or
    /// without `push` when the oldest job's picture is not out yet.
    pub fn finished(&mut self, push: bool) -> Option<Finished<'_>> {
        let mut fillers = 0;
        loop {
            let front = self.jobs.front()?;
            let outcome = front.outcome;
            let Some(want) = front.picture else {
                self.jobs.pop_front();
                return Some(Finished::NoPicture(outcome));
            };
            while let Some(out) = self.outputs.pop_front() {
                match out {
                    Err(e) => {
                        self.jobs.pop_front();
                        return Some(Finished::Failed(JobError::Decode(e)));
                    }
                    Ok(f) => match f.pts() {
                        Some(p) if p == want => {
                            let old = std::mem::replace(&mut self.current, f);
                            self.free.push(old);
                            self.jobs.pop_front();
                            return Some(Finished::Picture(&self.current, false, outcome));
                        }
                        Some(p) if p > want => {
                            // A later packet's picture: the job's never came.
                            self.outputs.push_front(Ok(f));
                            self.jobs.pop_front();
                            return Some(Finished::Failed(JobError::Corrupt(
                                "the decoder produced no picture for the frame",
                            )));
                        }
                        // An earlier packet's: a replayed reference or a filler.
                        _ => self.free.push(f),
                    },
                }
            }
            if !push {
                return None;
            }
            if fillers > self.threads + 2 {
                self.jobs.pop_front();
                return Some(Finished::Failed(JobError::Internal(
                    "the frame-threaded decoder held a picture back",
                )));
            }
            fillers += 1;
            let n = match self.sender.fill(&[&self.filler[..self.filler_len]]) {
                Ok(n) => n,
                Err(e) => {
                    self.jobs.pop_front();
                    return Some(Finished::Failed(e));
                }
            };
            let pts = self.next_pts();
            self.sender.pause_dump(true);
            let r = self.sender.send_filled(&mut self.dec, n, pts);
            self.sender.pause_dump(false);
            if let Err(e) = self.sent(r) {
                self.jobs.pop_front();
                return Some(Finished::Failed(e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_the_packets_since_the_key_frame() {
        let mut h = History::default();
        h.record(b"before any key frame");
        assert!(!h.usable());
        assert!(h.packets().is_empty());
        h.restart();
        h.record(b"key");
        h.record(b"inter");
        assert!(h.usable());
        assert_eq!(h.packets(), [b"key".to_vec(), b"inter".to_vec()]);
        h.restart();
        h.record(b"k2");
        assert_eq!(h.packets(), [b"k2".to_vec()]);
        // The buffers are reused.
        assert_eq!(h.packets.len(), 2);
        h.invalidate();
        h.record(b"x");
        assert!(!h.usable() && h.packets().is_empty());
    }

    #[test]
    fn history_gives_up_past_its_limits() {
        let mut h = History::default();
        h.restart();
        for _ in 0..HISTORY_MAX_PACKETS {
            h.record(b"p");
        }
        assert!(h.usable());
        h.record(b"one too many");
        assert!(!h.usable());
        h.restart();
        h.record(&vec![0u8; HISTORY_MAX_BYTES + 1]);
        assert!(!h.usable());
    }
}
