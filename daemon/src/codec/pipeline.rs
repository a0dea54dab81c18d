// SPDX-License-Identifier: GPL-2.0
//! Pipelined decoding: an FFmpeg decoder with frame threads, used while a context has enough
//! jobs queued to keep its threads busy (VP9, H.264).
//!
//! A frame-threaded decoder with N threads returns the picture of packet k only once it has
//! been given packet k + N − 1: decoding one frame per thread, it hands pictures back in packet
//! order, each when its thread is done. A stateless job must still end with its own picture in
//! decode order, and a client that stops queueing must never be left waiting, so:
//!
//! * every packet carries a sequence number as `pts`; each job remembers the number of the
//!   packet whose picture is its own ([`FramePipeline::push_job`]), and pictures of other packets
//!   (replayed references, fillers) are dropped;
//! * a decoder whose output order is not its decode order (H.264: POC order) is not asked for
//!   its output: the picture of a packet is the one it allocated for it ([`Allocations`]),
//!   complete once FFmpeg has waited for the thread that decoded it ([`FramePipeline::in_decode_order`]);
//! * when the context has no job to give, the pipeline is pushed on by a **filler**: a packet
//!   that changes no decoder state and decodes at no cost (VP9: a `show_existing_frame` of slot
//!   0; H.264: an end-of-sequence NAL unit), so that references survive and the pipeline can go
//!   on when the next job comes;
//! * a switch from low-delay decoding into the pipeline in the middle of a group of pictures
//!   replays the packets since the key frame ([`History`]) into the frame-threaded decoder;
//!   when jobs go where is decided the same way for every codec ([`Switch`]).
//!
//! FFmpeg 5.1's frame threads: `avcodec_send_packet` gives the packet to the next thread and,
//! once every thread has had one, waits for the oldest thread and keeps its picture, which
//! `avcodec_receive_frame` then returns; a decoding error of the oldest packet comes out of
//! either call. So every send is followed by a collection of what the decoder has ready, and
//! errors are queued with the pictures, in order.

use std::collections::VecDeque;

use ffmpeg_next as ffmpeg;
use ffmpeg_next::frame;

use std::sync::Arc;

use ffmpeg_next::ffi;

use super::allocations::Allocations;
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

    /// Records a packet decoded after the key frame: `parts` one after the other.
    pub fn record(&mut self, parts: &[&[u8]]) {
        if !self.valid {
            return;
        }
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if self.len >= HISTORY_MAX_PACKETS || self.bytes + len > HISTORY_MAX_BYTES {
            self.invalidate();
            return;
        }
        if self.len == self.packets.len() {
            self.packets.push(Vec::with_capacity(len));
        }
        let b = &mut self.packets[self.len];
        b.clear();
        for p in parts {
            b.extend_from_slice(p);
        }
        self.len += 1;
        self.bytes += len;
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

/// Consecutive pipelined jobs that found the pipeline empty (the client waited for every
/// picture before queueing the next request) after which the next key frame goes back to low
/// delay.
pub const STARVED_JOBS: u32 = 8;

/// Where a job goes ([`Switch::route`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// To the low-delay decoder.
    LowDelay,
    /// Into the pipeline, which is in use.
    Pipeline,
    /// Into the pipeline, which is entered now: flushed, then (with `replay`) given the packets
    /// since the key frame ([`Switch::history`]) before the job's.
    Enter {
        /// The job is not a key frame: the references are rebuilt from the history first.
        replay: bool,
    },
}

/// When a context's jobs go to the pipeline rather than the low-delay decoder; the same rules
/// for every codec.
///
/// A job is offered to the pipeline when it and the jobs queued behind it reach the thread
/// count (or the pipeline is in use already). The pipeline is entered at a key frame, or in
/// the middle of a group of pictures by replaying the packets since the key frame; it is left
/// at a key frame once the queue keeps running dry ([`STARVED_JOBS`]). The low-delay decoder
/// missed the pipelined frames: it is flushed before its next frame, a key frame.
pub struct Switch {
    threads: usize,
    pipelined: bool,
    low_delay_stale: bool,
    starved: u32,
    history: History,
}

impl Switch {
    /// The rules for a pipeline of `threads` frame threads (below 2: never).
    pub fn new(threads: usize) -> Switch {
        Switch {
            threads,
            pipelined: false,
            low_delay_stale: false,
            starved: 0,
            history: History::default(),
        }
    }

    /// Frame threads of the pipeline.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Whether jobs go to the pipeline now.
    pub fn pipelined(&self) -> bool {
        self.pipelined
    }

    /// Whether a job with `ahead` jobs queued behind it may go to the pipeline: decided before
    /// looking at the job (the common low-delay case costs nothing).
    pub fn considers(&self, ahead: usize) -> bool {
        self.threads >= 2 && (self.pipelined || ahead + 1 >= self.threads)
    }

    /// Whether a job that [`Self::considers`] and that the pipeline can decode goes to it
    /// ([`Self::route`]); when the pipeline is entered now, `enter` readies it, given the
    /// packets to replay (none at a key frame), and a failure there leaves the job to low delay.
    pub fn admits(
        &mut self,
        key: bool,
        in_flight: usize,
        enter: impl FnOnce(&[Vec<u8>]) -> Result<(), JobError>,
    ) -> bool {
        match self.route(key, in_flight) {
            Route::LowDelay => false,
            Route::Pipeline => true,
            Route::Enter { replay } => {
                let r = enter(if replay { self.history.packets() } else { &[] });
                self.entered(r.as_ref().map(|_| ()));
                r.is_ok()
            }
        }
    }

    /// Where a job goes that [`Self::considers`] and that the pipeline can decode; `key`: it
    /// starts a group of pictures (no reference before it is used), `in_flight`: jobs in the
    /// pipeline now. [`Self::entered`] must follow a [`Route::Enter`].
    pub fn route(&mut self, key: bool, in_flight: usize) -> Route {
        if self.pipelined {
            if in_flight == 0 {
                self.starved += 1;
            } else {
                self.starved = 0;
            }
            if key && self.starved >= STARVED_JOBS {
                log::debug!("the queue keeps running dry: low delay from this key frame");
                self.pipelined = false;
                return Route::LowDelay;
            }
            Route::Pipeline
        } else if key || self.history.usable() {
            Route::Enter { replay: !key }
        } else {
            Route::LowDelay
        }
    }

    /// The pipeline was entered (`Ok`), or could not be (then jobs go on with low delay).
    pub fn entered(&mut self, r: Result<(), &JobError>) {
        match r {
            Ok(()) => {
                self.pipelined = true;
                self.low_delay_stale = true;
                self.starved = 0;
            }
            Err(e) => {
                log::warn!("pipeline unavailable, decoding with low delay: {e}");
                self.pipelined = false;
            }
        }
    }

    /// Whether the low-delay decoder must be flushed before its next frame (it missed the
    /// frames that went to the pipeline); answers true once.
    pub fn take_low_delay_stale(&mut self) -> bool {
        std::mem::take(&mut self.low_delay_stale)
    }

    /// Keeps a decoded packet (`parts` one after the other) for a later entry mid-stream;
    /// `key` starts the history again.
    pub fn record(&mut self, key: bool, parts: &[&[u8]]) {
        if self.threads < 2 {
            return;
        }
        if key {
            self.history.restart();
        }
        self.history.record(parts);
    }

    /// A packet was not recorded (it cannot be replayed): no entry mid-stream before the
    /// next key frame.
    pub fn lost(&mut self) {
        self.history.invalidate();
    }

    /// The packets since the key frame, to replay.
    pub fn history(&self) -> &[Vec<u8>] {
        self.history.packets()
    }

    /// All decoding state is gone (stream off).
    pub fn flush(&mut self) {
        self.pipelined = false;
        self.low_delay_stale = false;
        self.history.invalidate();
        self.starved = 0;
    }
}

/// What the decoder gave for a packet, in packet order.
enum Output {
    /// A picture (its `pts` is its packet's number).
    Picture(frame::Video),
    /// Packet `pts` was decoded and gave no picture (decode-order pipelines only).
    Nothing(i64),
    /// A decoding error.
    Failed(JobError),
}

/// Where a job's picture comes from.
enum JobPicture {
    /// None (a hidden frame that refreshes no reference slot).
    None,
    /// The picture of this packet.
    Packet(i64),
    /// This picture, decoded apart (an AV1 hidden key frame, shown by a scratch decoder).
    Ready(frame::Video),
}

/// A job inside the pipeline.
struct PipeJob {
    picture: JobPicture,
    outcome: JobOutcome,
}

/// How the pictures of a decoder that outputs in another order than it decodes (H.264) are
/// found: by allocation ([`Allocations`]), each complete once the frame thread decoding its
/// packet has been waited for. FFmpeg's frame threads (5.1 and 7.1 alike) hand the N-th packet
/// since a flush to the N-th thread and, from the (threads)-th packet on, wait for the oldest
/// thread after each new packet: so packet k is done when packet k + threads − 1 has been
/// sent, and an error of packet k comes out of that send (or the receives after it).
struct DecodeOrder {
    allocations: Arc<Allocations>,
    /// Packets sent whose thread has not been waited for, oldest first.
    decoding: VecDeque<i64>,
    /// FFmpeg's actual thread count.
    threads: usize,
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
    outputs: VecDeque<Output>,
    free: Vec<frame::Video>,
    /// The picture of the latest finished job.
    current: frame::Video,
    /// The filler packet (changes no state, decodes at no cost).
    filler: Vec<u8>,
    /// Pictures found by allocation rather than by output order.
    decode_order: Option<DecodeOrder>,
}

// SAFETY: FFmpeg codec contexts and frames may move between threads as long as they are not
// used concurrently (`&mut self` only); the sender is `Send`.
unsafe impl Send for FramePipeline {}

impl FramePipeline {
    /// A pipeline on `dec`, opened with `threads` frame threads, whose pictures are its output
    /// (in packet order, each with its packet's number as `pts`).
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
            filler: Vec::with_capacity(16),
            decode_order: None,
        }
    }

    /// A pipeline on `dec` whose pictures are the ones `allocations` recorded (`dec` was
    /// opened with [`Allocations::install`]): each complete once the frame thread decoding
    /// its packet has been waited for, `threads` − 1 packets later.
    pub fn in_decode_order(
        dec: ffmpeg::decoder::Video,
        sender: PacketSender,
        allocations: Arc<Allocations>,
    ) -> Self {
        let threads = dec.threading().count.max(1);
        let mut p = FramePipeline::new(dec, sender, threads);
        p.decode_order = Some(DecodeOrder {
            allocations,
            decoding: VecDeque::with_capacity(threads + 1),
            threads,
        });
        p
    }

    /// The pipeline in `slot` (opened by `open` if there is none) made ready for a switch
    /// into it: flushed, then given the packets `replay`.
    pub fn enter<'a>(
        slot: &'a mut Option<FramePipeline>,
        open: impl FnOnce() -> Result<FramePipeline, JobError>,
        replay: &[Vec<u8>],
    ) -> Result<&'a mut FramePipeline, JobError> {
        let pipe = match slot {
            Some(p) => p,
            None => slot.insert(open()?),
        };
        pipe.flush();
        for p in replay {
            pipe.send_copy(&[p])?;
            pipe.drop_pictures();
        }
        Ok(pipe)
    }

    /// Drops the pictures the decoder returned so far (with no job inside, those of replayed
    /// packets): holding them would keep FFmpeg from reusing their buffers, a picture's worth
    /// of memory per packet replayed. Errors stay for the job to come.
    fn drop_pictures(&mut self) {
        for _ in 0..self.outputs.len() {
            match self.outputs.pop_front() {
                Some(Output::Picture(f)) => recycle(&mut self.free, f),
                Some(o @ Output::Failed(_)) => self.outputs.push_back(o),
                Some(Output::Nothing(_)) | None => {}
            }
        }
    }

    /// The number of the next packet.
    pub fn next_pts(&mut self) -> i64 {
        self.pts += 1;
        self.pts
    }

    /// Sets the filler packet.
    pub fn set_filler(&mut self, bytes: &[u8]) {
        self.filler.clear();
        self.filler.extend_from_slice(bytes);
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
            if let Output::Picture(f) = o {
                recycle(&mut self.free, f);
            }
        }
        if let Some(d) = &mut self.decode_order {
            d.decoding.clear();
            d.allocations.clear();
        }
    }

    /// Copies `parts` into one packet and sends it; returns its number.
    pub fn send_copy(&mut self, parts: &[&[u8]]) -> Result<i64, JobError> {
        let n = self.sender.fill(parts)?;
        let pts = self.next_pts();
        let r = self.sender.send_filled(&mut self.dec, n, pts);
        self.sent(pts, r)?;
        Ok(pts)
    }

    /// What the send of packet `pts` returned: a decoding error there is an earlier packet's,
    /// queued in order.
    pub fn sent(&mut self, pts: i64, r: Result<(), JobError>) -> Result<(), JobError> {
        let error = match r {
            Ok(()) => None,
            Err(JobError::Decode(e)) => Some(e),
            Err(e) => return Err(e),
        };
        match self.decode_order.is_some() {
            true => self.collect_decode_order(pts, error),
            false => {
                if let Some(e) = error {
                    self.outputs.push_back(Output::Failed(JobError::Decode(e)));
                }
                self.collect();
            }
        }
        Ok(())
    }

    /// Takes every picture (or error) the decoder has ready.
    fn collect(&mut self) {
        // A decoder returns one picture per packet at most (two for a VP9 superframe): this
        // only bounds the loop.
        for _ in 0..4 * self.threads + 8 {
            let mut f = self.free.pop().unwrap_or_else(frame::Video::empty);
            match self.dec.receive_frame(&mut f) {
                Ok(()) => self.outputs.push_back(Output::Picture(f)),
                Err(ffmpeg::Error::Other {
                    errno: libc::EAGAIN,
                })
                | Err(ffmpeg::Error::Eof) => {
                    recycle(&mut self.free, f);
                    return;
                }
                Err(e) => {
                    recycle(&mut self.free, f);
                    self.outputs.push_back(Output::Failed(JobError::Decode(e)));
                }
            }
        }
    }

    /// [`Self::collect`] for a decode-order pipeline: packet `pts` was just sent (`error`: what
    /// the send returned); the packet whose thread that send waited for is done.
    fn collect_decode_order(&mut self, pts: i64, mut error: Option<ffmpeg::Error>) {
        let Some(d) = &mut self.decode_order else {
            return;
        };
        d.decoding.push_back(pts);
        let done = if d.decoding.len() >= d.threads {
            d.decoding.pop_front()
        } else {
            None
        };
        // FFmpeg's own output: with no reorder delay (the rebuilt SPS says none), the picture
        // of the packet just waited for, or nothing (a picture FFmpeg drops as out of order).
        // Only its flags are used: the picture is the allocated one.
        let mut corrupt = false;
        let mut out_of_step = false;
        for _ in 0..4 * d.threads + 8 {
            let mut f = self.free.pop().unwrap_or_else(frame::Video::empty);
            match self.dec.receive_frame(&mut f) {
                Ok(()) => {
                    if f.pts() != done {
                        out_of_step = true;
                    }
                    // SAFETY: reads two fields of a valid frame.
                    let (errors, flags) = unsafe {
                        let p = f.as_ptr();
                        ((*p).decode_error_flags, (*p).flags)
                    };
                    corrupt |= errors != 0 || flags & ffi::AV_FRAME_FLAG_CORRUPT != 0;
                    recycle(&mut self.free, f);
                }
                Err(ffmpeg::Error::Other {
                    errno: libc::EAGAIN,
                })
                | Err(ffmpeg::Error::Eof) => {
                    recycle(&mut self.free, f);
                    break;
                }
                Err(e) => {
                    recycle(&mut self.free, f);
                    error = error.or(Some(e));
                }
            }
        }
        let Some(done) = done else {
            if let Some(e) = error {
                // Not expected before every thread has a packet: the oldest packet takes it,
                // and completions are counted one send later from now on (later is safe).
                if let Some(p) = d.decoding.pop_front() {
                    log::warn!("frame threads: packet {p} failed before its thread was waited for");
                }
                self.outputs.push_back(Output::Failed(JobError::Decode(e)));
            }
            return;
        };
        let output = if let Some(e) = error {
            Output::Failed(JobError::Decode(e))
        } else if out_of_step {
            log::error!(
                "frame threads: FFmpeg output a picture of another packet than the one waited for"
            );
            Output::Failed(JobError::Internal(
                "the frame-threaded decoder is not in the expected step",
            ))
        } else if corrupt {
            Output::Failed(JobError::Corrupt("FFmpeg flagged the picture as corrupt"))
        } else {
            let mut f = self.free.pop().unwrap_or_else(frame::Video::empty);
            if d.allocations.take(done, &mut f) {
                Output::Picture(f)
            } else {
                recycle(&mut self.free, f);
                Output::Nothing(done)
            }
        };
        self.outputs.push_back(output);
    }

    /// A job was sent: its picture is that of packet `picture`.
    pub fn push_job(&mut self, picture: Option<i64>, outcome: JobOutcome) {
        let picture = picture.map_or(JobPicture::None, JobPicture::Packet);
        self.jobs.push_back(PipeJob { picture, outcome });
    }

    /// A job was sent whose picture is `picture` (copied), decoded apart.
    pub fn push_ready(&mut self, picture: &frame::Video, outcome: JobOutcome) {
        let picture = JobPicture::Ready(picture.clone());
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
            let want = match front.picture {
                JobPicture::Packet(p) => p,
                JobPicture::None => {
                    self.jobs.pop_front();
                    return Some(Finished::NoPicture(outcome));
                }
                JobPicture::Ready(_) => {
                    if let Some(PipeJob {
                        picture: JobPicture::Ready(f),
                        ..
                    }) = self.jobs.pop_front()
                    {
                        let old = std::mem::replace(&mut self.current, f);
                        recycle(&mut self.free, old);
                    }
                    return Some(Finished::Picture(&self.current, false, outcome));
                }
            };
            while let Some(out) = self.outputs.pop_front() {
                let got = match out {
                    Output::Failed(e) => {
                        self.jobs.pop_front();
                        return Some(Finished::Failed(e));
                    }
                    Output::Picture(f) => match f.pts() {
                        Some(p) if p == want => {
                            let old = std::mem::replace(&mut self.current, f);
                            recycle(&mut self.free, old);
                            self.jobs.pop_front();
                            return Some(Finished::Picture(&self.current, false, outcome));
                        }
                        Some(p) if p > want => Err(Output::Picture(f)),
                        // An earlier packet's: a replayed reference or a filler.
                        _ => {
                            recycle(&mut self.free, f);
                            Ok(())
                        }
                    },
                    Output::Nothing(p) if p >= want => Err(Output::Nothing(p)),
                    Output::Nothing(_) => Ok(()),
                };
                if let Err(later) = got {
                    // A later packet's output (or the job's packet gave none): the job's
                    // picture never came.
                    if !matches!(later, Output::Nothing(p) if p == want) {
                        self.outputs.push_front(later);
                    }
                    self.jobs.pop_front();
                    return Some(Finished::Failed(JobError::Corrupt(
                        "the decoder produced no picture for the frame",
                    )));
                }
            }
            if !push {
                return None;
            }
            if fillers > self.threads + 2 || self.filler.is_empty() {
                self.jobs.pop_front();
                return Some(Finished::Failed(JobError::Internal(
                    "the frame-threaded decoder held a picture back",
                )));
            }
            fillers += 1;
            let filler = std::mem::take(&mut self.filler);
            self.sender.pause_dump(true);
            let r = self.send_copy(&[&filler]);
            self.sender.pause_dump(false);
            self.filler = filler;
            if let Err(e) = r {
                self.jobs.pop_front();
                return Some(Finished::Failed(e));
            }
        }
    }
}

/// Keeps `f` for reuse, its picture dropped (a frame kept with its buffers would keep FFmpeg
/// from reusing them).
fn recycle(free: &mut Vec<frame::Video>, mut f: frame::Video) {
    // SAFETY: `f` is a valid frame of ours.
    unsafe { ffi::av_frame_unref(f.as_mut_ptr()) };
    free.push(f);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_the_packets_since_the_key_frame() {
        let mut h = History::default();
        h.record(&[b"before any key frame"]);
        assert!(!h.usable());
        assert!(h.packets().is_empty());
        h.restart();
        h.record(&[b"key"]);
        h.record(&[b"inter"]);
        assert!(h.usable());
        assert_eq!(h.packets(), [b"key".to_vec(), b"inter".to_vec()]);
        h.restart();
        h.record(&[b"k2"]);
        assert_eq!(h.packets(), [b"k2".to_vec()]);
        // The buffers are reused.
        assert_eq!(h.packets.len(), 2);
        h.invalidate();
        h.record(&[b"x"]);
        assert!(!h.usable() && h.packets().is_empty());
    }

    #[test]
    fn history_gives_up_past_its_limits() {
        let mut h = History::default();
        h.restart();
        for _ in 0..HISTORY_MAX_PACKETS {
            h.record(&[b"p"]);
        }
        assert!(h.usable());
        h.record(&[b"one too many"]);
        assert!(!h.usable());
        h.restart();
        h.record(&[&vec![0u8; HISTORY_MAX_BYTES + 1]]);
        assert!(!h.usable());
    }
}
