// SPDX-License-Identifier: GPL-2.0
//! The V4L2 side of one decode context: its own open of the video node (its own m2m context),
//! the OUTPUT buffers with one request each, and the CAPTURE buffers that are the surfaces'
//! memory.
//!
//! * Opened at the context's first picture, with that picture's stream controls (which select
//!   the CAPTURE format, as for every stateless client), so the coded size and bit depth are
//!   the stream's.
//! * Surfaces are CAPTURE buffers: a surface gets one the first time it is decoded into
//!   (`VIDIOC_CREATE_BUFS` while streaming, or one of the buffers allocated for the context's
//!   render targets) and keeps it. A stateless m2m decoder takes the next queued CAPTURE
//!   buffer for each job, so each picture queues its surface's buffer right before its
//!   request: the buffer and the request go in the same order.
//! * Pipelining: `queue` returns as soon as the request is queued; up to [`OUTPUT_SLOTS`]
//!   requests are in flight. `reap` takes back what has completed without blocking; waiting
//!   is done by the caller on a request ([`Decoder::oldest_request`]) without holding the
//!   driver's lock.

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use daedalus_client::media::{MediaDevice, Request, RequestWait};
use daedalus_client::names::fourcc_to_string;
use daedalus_client::sys::*;
use daedalus_client::v4l2::{CtrlPayload, Mapping, QueueBuf, VideoDevice, Which};
use daedalus_proto::formats::{BitDepth, Codec};

use crate::device::Device;
use crate::image::Layout;
use crate::mapped::Mapped;
use crate::status::{Error, Result};

const OUTPUT: u32 = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;
const CAPTURE: u32 = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;

/// Requests in flight at most (and OUTPUT buffers).
pub const OUTPUT_SLOTS: usize = 6;

/// How long one request may take before the decoder is given up on.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Logs a device error and turns it into a VA status.
fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    log::warn!("{what}: {e}");
    Error::OPERATION_FAILED
}

/// An OUTPUT buffer and its request.
struct Output {
    map: Mapping,
    request: Arc<Request>,
    busy: bool,
}

/// A CAPTURE buffer.
struct Capture {
    map: Arc<Mapping>,
    /// The surface it belongs to.
    surface: Option<u32>,
    /// Queued to the driver (its picture being decoded).
    queued: bool,
}

/// A request in flight.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    seq: u64,
    /// Its OUTPUT buffer's timestamp (µs): `seq`, or the picture a replay repeats.
    timestamp_us: u64,
    output: usize,
    capture: u32,
    surface: u32,
}

/// A picture whose request completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Done {
    /// Its surface.
    pub surface: u32,
    /// Its sequence number.
    pub seq: u64,
    /// Whether the CAPTURE buffer came back with `V4L2_BUF_FLAG_ERROR`.
    pub error: bool,
}

/// The decoder of one context (see the module doc).
pub struct Decoder {
    codec: Codec,
    dev: VideoDevice,
    /// Coded size and depth the device is configured for.
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// See `width`.
    pub depth: BitDepth,
    /// Where the planes are in a CAPTURE buffer.
    pub layout: Layout,
    outputs: Vec<Output>,
    captures: Vec<Capture>,
    capture_streaming: bool,
    in_flight: VecDeque<InFlight>,
    next_seq: u64,
}

/// The size of the OUTPUT buffers for pictures of `width` x `height`: the most a frame of
/// such a picture plausibly takes (a 1080p intra frame at very high quality is ~1.5 MB).
fn output_size(width: u32, height: u32) -> u32 {
    (width.saturating_mul(height)).clamp(2 << 20, 32 << 20)
}

impl Decoder {
    /// Opens the decoder of `device` for `codec` pictures of the size and depth of `first`
    /// (the first picture: its menu and stream controls select the CAPTURE format), with
    /// `captures` CAPTURE buffers to start with (the context's render targets; more are added
    /// as surfaces need them).
    pub fn open(
        device: &Device,
        codec: Codec,
        first: &mut Mapped,
        captures: u32,
    ) -> Result<Decoder> {
        let (width, height, depth) = (first.width, first.height, first.depth);
        let video = device.video.display();
        let dev = VideoDevice::open(&device.video).map_err(|e| failed("open", e))?;
        let media = MediaDevice::open(&device.media).map_err(|e| failed("open", e))?;
        let fourcc = codec.fourcc();
        let out_fmt = dev
            .set_coded_format(OUTPUT, fourcc, width, height, output_size(width, height))
            .map_err(|e| failed("OUTPUT format", e))?;
        if out_fmt.pixelformat != fourcc {
            log::warn!(
                "{video}: the driver chose {} for OUTPUT instead of {}",
                fourcc_to_string(out_fmt.pixelformat),
                fourcc_to_string(fourcc)
            );
            return Err(Error::UNSUPPORTED_PROFILE);
        }
        for &(id, value) in &first.menus {
            dev.set_int_ctrl(id, value).map_err(|e| {
                log::warn!(
                    "{video}: the driver refused {value} for control {id:#x} ({e}): this driver \
                     decodes {} that way only",
                    fourcc_to_string(fourcc)
                );
                Error::UNSUPPORTED_PROFILE
            })?;
        }
        dev.set_ext_ctrls(Which::Current, &mut first.stream_payloads())
            .map_err(|e| {
                log::warn!("{video}: the driver refused the stream's parameters: {e}");
                Error::UNSUPPORTED_PROFILE
            })?;
        let cap_fmt = dev
            .get_format(CAPTURE)
            .map_err(|e| failed("CAPTURE format", e))?;
        let plane = cap_fmt.planes.first().copied();
        let Some(plane) = plane.filter(|_| {
            cap_fmt.pixelformat == depth.capture_fourcc()
                && cap_fmt.planes.len() == 1
                && cap_fmt.width >= width
                && cap_fmt.height >= height
        }) else {
            log::warn!(
                "{video}: unusable CAPTURE format {} {}x{} in {} planes for {width}x{height} \
                 {}-bit pictures",
                fourcc_to_string(cap_fmt.pixelformat),
                cap_fmt.width,
                cap_fmt.height,
                cap_fmt.planes.len(),
                depth.bits()
            );
            return Err(Error::UNSUPPORTED_RT_FORMAT);
        };
        let layout = Layout {
            depth,
            pitch: plane.bytesperline,
            chroma_offset: plane.bytesperline.saturating_mul(cap_fmt.height),
            size: plane.sizeimage,
        };
        let rb = dev
            .request_buffers(OUTPUT, V4L2_MEMORY_MMAP, OUTPUT_SLOTS as u32)
            .map_err(|e| failed("OUTPUT buffers", e))?;
        if rb.capabilities & V4L2_BUF_CAP_SUPPORTS_REQUESTS == 0 || rb.count == 0 {
            log::warn!("{video}: the OUTPUT queue has no buffers with requests");
            return Err(Error::OPERATION_FAILED);
        }
        let mut outputs = Vec::with_capacity(rb.count as usize);
        for i in 0..rb.count.min(OUTPUT_SLOTS as u32) {
            // SAFETY: an OUTPUT buffer is written only while no request of it is in flight
            // (`busy` false), i.e. before its QBUF and after its DQBUF.
            let map = unsafe { dev.map_buffer(OUTPUT, i) }.map_err(|e| failed("mmap", e))?;
            let request = media.alloc_request().map_err(|e| failed("request", e))?;
            outputs.push(Output {
                map,
                request: Arc::new(request),
                busy: false,
            });
        }
        dev.stream_on(OUTPUT).map_err(|e| failed("STREAMON", e))?;
        let mut decoder = Decoder {
            codec,
            dev,
            width,
            height,
            depth,
            layout,
            outputs,
            captures: Vec::new(),
            capture_streaming: false,
            in_flight: VecDeque::new(),
            next_seq: 1,
        };
        if captures > 0 {
            decoder.add_captures(captures, true)?;
        }
        log::info!(
            "{video}: {} {width}x{height} {}-bit, CAPTURE pitch {} size {}",
            codec.fourcc_name(),
            depth.bits(),
            layout.pitch,
            layout.size
        );
        Ok(decoder)
    }

    /// The codec.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Adds `n` CAPTURE buffers (`first`: with `REQBUFS`, else `CREATE_BUFS`), maps them and
    /// streams the queue on.
    fn add_captures(&mut self, n: u32, first: bool) -> Result<u32> {
        let (index, count) = if first {
            let rb = self
                .dev
                .request_buffers(CAPTURE, V4L2_MEMORY_MMAP, n)
                .map_err(|e| failed("CAPTURE buffers", e))?;
            (0, rb.count)
        } else {
            self.dev
                .create_buffers(CAPTURE, n)
                .map_err(|e| failed("VIDIOC_CREATE_BUFS", e))?
        };
        if count == 0 || index as usize != self.captures.len() {
            log::warn!(
                "CAPTURE buffers: got {count} from index {index}, expected index {}",
                self.captures.len()
            );
            return Err(Error::ALLOCATION_FAILED);
        }
        for i in index..index + count {
            // SAFETY: a CAPTURE buffer is read (through VA images) only while it is not queued:
            // `queued` is set at QBUF and cleared at DQBUF, and images read a surface only
            // after syncing it.
            let map = unsafe { self.dev.map_buffer(CAPTURE, i) }.map_err(|e| failed("mmap", e))?;
            if map.len() < self.layout.size as usize {
                log::warn!(
                    "CAPTURE buffer {i} has {} bytes, less than its format's",
                    map.len()
                );
                return Err(Error::ALLOCATION_FAILED);
            }
            self.captures.push(Capture {
                map: Arc::new(map),
                surface: None,
                queued: false,
            });
        }
        if !self.capture_streaming {
            self.dev
                .stream_on(CAPTURE)
                .map_err(|e| failed("STREAMON", e))?;
            self.capture_streaming = true;
        }
        Ok(index)
    }

    /// The CAPTURE buffer of `surface`: a free one, or a new one.
    pub fn bind(&mut self, surface: u32) -> Result<u32> {
        if let Some(i) = self
            .captures
            .iter()
            .position(|c| c.surface == Some(surface))
        {
            return Ok(i as u32);
        }
        let free = self
            .captures
            .iter()
            .position(|c| c.surface.is_none() && !c.queued);
        let index = match free {
            Some(i) => i as u32,
            None => self.add_captures(1, self.captures.is_empty())?,
        };
        self.captures[index as usize].surface = Some(surface);
        Ok(index)
    }

    /// Gives up `surface`'s CAPTURE buffer (the surface is destroyed): it is reused once its
    /// picture, if any is in flight, is back.
    pub fn unbind(&mut self, surface: u32) {
        for c in &mut self.captures {
            if c.surface == Some(surface) {
                c.surface = None;
            }
        }
    }

    /// The memory of CAPTURE buffer `index`.
    pub fn capture_map(&self, index: u32) -> Option<Arc<Mapping>> {
        self.captures
            .get(index as usize)
            .map(|c| Arc::clone(&c.map))
    }

    /// `VIDIOC_EXPBUF` of CAPTURE buffer `index`.
    pub fn export(&self, index: u32, writable: bool) -> Result<OwnedFd> {
        self.dev
            .export_buffer(CAPTURE, index, 0, writable)
            .map_err(|e| failed("VIDIOC_EXPBUF", e))
    }

    /// The bytes of one CAPTURE buffer.
    pub fn capture_len(&self, index: u32) -> usize {
        self.captures.get(index as usize).map_or(0, |c| c.map.len())
    }

    /// Whether a request can be queued now.
    pub fn has_free_slot(&self) -> bool {
        self.outputs.iter().any(|o| !o.busy)
    }

    /// Whether requests are in flight.
    pub fn busy(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// The request of the oldest picture in flight, to wait on without the driver's lock.
    pub fn oldest_request(&self) -> Option<Arc<Request>> {
        let f = self.in_flight.front()?;
        Some(Arc::clone(&self.outputs[f.output].request))
    }

    /// The sequence number of the oldest picture in flight.
    pub fn oldest_seq(&self) -> Option<u64> {
        self.in_flight.front().map(|f| f.seq)
    }

    /// Queues the picture of `surface` (bound to CAPTURE buffer `capture`): `payload` in an
    /// OUTPUT buffer, `ctrls` in its request. Returns its sequence number (its timestamp in
    /// microseconds; references name it as `seq * 1000` ns). Needs a free slot.
    pub fn queue(
        &mut self,
        surface: u32,
        capture: u32,
        payload: &[&[u8]],
        ctrls: &mut [CtrlPayload<'_>],
    ) -> Result<u64> {
        self.queue_as(surface, capture, payload, ctrls, None)
    }

    /// Whether CAPTURE buffer `index` is queued (its picture in flight).
    pub fn capture_queued(&self, index: u32) -> bool {
        self.captures.get(index as usize).is_some_and(|c| c.queued)
    }

    /// [`Decoder::queue`], with the OUTPUT buffer's timestamp (µs) `timestamp_us` instead of
    /// the picture's own sequence number when given (a replay of an earlier picture, which
    /// references keep naming by the earlier request's timestamp).
    pub fn queue_as(
        &mut self,
        surface: u32,
        capture: u32,
        payload: &[&[u8]],
        ctrls: &mut [CtrlPayload<'_>],
        timestamp_us: Option<u64>,
    ) -> Result<u64> {
        let slot = self
            .outputs
            .iter()
            .position(|o| !o.busy)
            .ok_or(Error::OPERATION_FAILED)?;
        let len: usize = payload.iter().map(|p| p.len()).sum();
        let out = &mut self.outputs[slot];
        let dst = out.map.as_mut_slice();
        if len > dst.len() {
            log::warn!(
                "a {len}-byte frame does not fit the {}-byte OUTPUT buffers",
                dst.len()
            );
            return Err(Error::NOT_ENOUGH_BUFFER);
        }
        let mut at = 0;
        for part in payload {
            dst[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        if let Err(e) = self
            .dev
            .set_ext_ctrls(Which::Request(out.request.as_fd()), ctrls)
        {
            log::warn!("the driver refused the picture's controls: {e}");
            let _ = out.request.reinit();
            return Err(Error::DECODING_ERROR);
        }
        let seq = self.next_seq;
        let timestamp_us = timestamp_us.unwrap_or(seq);
        let cap = self
            .captures
            .get_mut(capture as usize)
            .filter(|c| c.surface == Some(surface) && !c.queued)
            .ok_or(Error::SURFACE_BUSY)?;
        self.dev
            .queue_buffer(&QueueBuf::capture(capture))
            .map_err(|e| failed("QBUF CAPTURE", e))?;
        cap.queued = true;
        // From here a failure leaves a CAPTURE buffer queued with no request for it: the
        // caller drops the decoder.
        let out = &mut self.outputs[slot];
        self.dev
            .queue_buffer(&QueueBuf {
                buf_type: OUTPUT,
                index: slot as u32,
                bytesused: len as u32,
                timestamp_us,
                request: Some(out.request.as_fd()),
            })
            .map_err(|e| failed("QBUF OUTPUT", e))?;
        out.request
            .queue()
            .map_err(|e| failed("MEDIA_REQUEST_IOC_QUEUE", e))?;
        out.busy = true;
        self.next_seq += 1;
        self.in_flight.push_back(InFlight {
            seq,
            timestamp_us,
            output: slot,
            capture,
            surface,
        });
        Ok(seq)
    }

    /// Takes back the pictures whose requests have completed, oldest first, without waiting.
    pub fn reap(&mut self) -> Result<Vec<Done>> {
        let mut done = Vec::new();
        while let Some(&f) = self.in_flight.front() {
            let out = &self.outputs[f.output];
            match out
                .request
                .wait(Duration::ZERO)
                .map_err(|e| failed("poll", e))?
            {
                RequestWait::Completed => {}
                RequestWait::TimedOut => break,
                RequestWait::NotQueued => {
                    log::warn!("the request of picture {} is not queued", f.seq);
                    return Err(Error::OPERATION_FAILED);
                }
            }
            self.in_flight.pop_front();
            let o = self
                .dev
                .dequeue_wait(OUTPUT, TIMEOUT)
                .map_err(|e| failed("DQBUF OUTPUT", e))?;
            let c = self
                .dev
                .dequeue_wait(CAPTURE, TIMEOUT)
                .map_err(|e| failed("DQBUF CAPTURE", e))?;
            if o.index as usize != f.output
                || c.index != f.capture
                || c.timestamp_us != f.timestamp_us as i64
            {
                log::warn!(
                    "picture {}: got OUTPUT {} / CAPTURE {} (timestamp {}), expected {} / {}",
                    f.seq,
                    o.index,
                    c.index,
                    c.timestamp_us,
                    f.output,
                    f.capture
                );
                return Err(Error::OPERATION_FAILED);
            }
            let out = &mut self.outputs[f.output];
            out.request
                .reinit()
                .map_err(|e| failed("request reinit", e))?;
            out.busy = false;
            self.captures[f.capture as usize].queued = false;
            done.push(Done {
                surface: f.surface,
                seq: f.seq,
                error: c.flags & V4L2_BUF_FLAG_ERROR != 0,
            });
        }
        Ok(done)
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // Closing the node releases everything; stream off first so that no job of ours is
        // left running on the device.
        let _ = self.dev.stream_off(OUTPUT);
        let _ = self.dev.stream_off(CAPTURE);
    }
}

/// What [`Codec`] is called in the log.
trait FourccName {
    fn fourcc_name(self) -> String;
}

impl FourccName for Codec {
    fn fourcc_name(self) -> String {
        fourcc_to_string(self.fourcc())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_sizes() {
        assert_eq!(output_size(320, 240), 2 << 20);
        assert_eq!(output_size(3840, 2160), 3840 * 2160);
        assert_eq!(output_size(8192, 8192), 32 << 20);
    }
}
