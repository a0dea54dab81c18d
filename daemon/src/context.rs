// SPDX-License-Identifier: GPL-2.0
//! One decode context (an open file of `/dev/videoN`): its decoder, its mapped buffers and its
//! statistics, and the handling of one job, synchronously. The dispatcher runs each context on
//! its own thread; tests drive a context directly.

use std::cell::OnceCell;
use std::time::Instant;

use daedalus_proto::formats::{BitDepth, Codec};
use daedalus_proto::wire::{Completion, Job, PictureFormat, STATUS_OK};
use ffmpeg_next::{ffi, frame};

use crate::av1::{Av1Controls, Av1Decoder};
use crate::band_pool::BandPool;
use crate::convert::{self, Planar, Plane, SemiPlanar};
use crate::decoder::{DecoderConfig, Vp9Decoder};
use crate::error::JobError;
use crate::mapping::{BufferCache, Mapping};
use crate::stats::Stats;
use crate::vp9::{self, FrameControl};

/// A decode context.
pub struct Context {
    id: u32,
    config: DecoderConfig,
    // Declared before `buffers`: the decoder (and any reference it holds into an OUTPUT
    // mapping) goes first.
    vp9: Option<Vp9Decoder>,
    h264: Option<crate::h264::H264Decoder>,
    av1: Option<Av1Decoder>,
    av1_controls: Av1Controls,
    buffers: BufferCache,
    /// Converts pictures in parallel; started with the first picture.
    bands: OnceCell<BandPool>,
    stats: Stats,
    control_mismatch_logged: bool,
}

/// The context's band pool, started on first use with one band per decoding thread.
fn band_pool<'a>(cell: &'a OnceCell<BandPool>, config: &DecoderConfig) -> &'a BandPool {
    cell.get_or_init(|| BandPool::new(config.threads))
}

impl Context {
    /// A new context; its decoder is created with the first job.
    pub fn new(id: u32, config: DecoderConfig) -> Context {
        Context {
            id,
            config,
            vp9: None,
            h264: None,
            av1: None,
            av1_controls: Av1Controls::default(),
            buffers: BufferCache::new(),
            bands: OnceCell::new(),
            stats: Stats::default(),
            control_mismatch_logged: false,
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
        if let Some(d) = &mut self.vp9 {
            d.flush();
        }
        if let Some(d) = &mut self.h264 {
            d.flush();
        }
        if let Some(d) = &mut self.av1 {
            d.flush();
        }
    }

    /// Handles one job and returns its completion. Never fails: errors become a status.
    pub fn handle_job(&mut self, job: &Job<'_>) -> Completion {
        let start = Instant::now();
        let status = match self.run(job) {
            Ok(()) => STATUS_OK,
            Err(e) => {
                let status = e.status();
                if matches!(
                    e,
                    JobError::Buffer(_) | JobError::Internal(_) | JobError::Ffmpeg(_)
                ) {
                    log::error!("context {} job {}: {e}", self.id, job.job_id);
                } else {
                    log::warn!("context {} job {}: {e}", self.id, job.job_id);
                }
                status
            }
        };
        let took = start.elapsed();
        self.stats.record(status, took);
        log::debug!(
            "context {} job {} (ts {}, OUTPUT {} CAPTURE {}): status {status} in {took:?}",
            self.id,
            job.job_id,
            job.timestamp_ns,
            job.output.index,
            job.capture.index
        );
        Completion {
            job_id: job.job_id,
            ctx_id: job.ctx_id,
            status,
            // The module validates this against the CAPTURE buffer: always the picture size.
            capture_bytesused: job.picture.sizeimage,
        }
    }

    fn run(&mut self, job: &Job<'_>) -> Result<(), JobError> {
        if job.codec == Codec::Av1 {
            return self.run_av1(job);
        }
        // Both buffers first: a new fd is taken over whatever else fails.
        let (out, cap) = self.buffers.resolve(&job.output, &job.capture);
        let (out, cap) = (out?, cap?);
        if job.codec == Codec::H264 {
            let dec = match &mut self.h264 {
                Some(d) => d,
                None => self
                    .h264
                    .insert(crate::h264::H264Decoder::new(&self.config)?),
            };
            let bands = band_pool(&self.bands, &self.config);
            return crate::h264::decode_job(dec, job, out.mapping(), cap, bands);
        }
        if job.codec != Codec::Vp9 {
            return Err(JobError::Unsupported(
                "only VP9 and H.264 are decoded so far",
            ));
        }
        let dec = match &mut self.vp9 {
            Some(d) => d,
            None => self.vp9.insert(Vp9Decoder::new(&self.config)?),
        };
        let range = job.output.data_offset as usize..job.output.bytesused as usize;
        let d = dec.decode(out, range)?;
        if d.zero_copy {
            self.stats.zero_copy += 1;
        } else {
            self.stats.copied += 1;
        }
        if d.hidden {
            self.stats.hidden += 1;
        }
        if !self.control_mismatch_logged {
            let ctrl = job
                .controls
                .get(vp9::CID_FRAME)
                .and_then(|c| FrameControl::parse(c.payload));
            if let Some(c) = ctrl {
                let h = &d.header;
                if h.show_existing_frame.is_none()
                    && (c.profile != h.profile || c.show_frame() != h.show_frame)
                {
                    log::info!(
                        "context {}: VP9 frame control (profile {}, show_frame {}) disagrees with \
                         the bitstream (profile {}, show_frame {}); following the bitstream",
                        self.id,
                        c.profile,
                        c.show_frame(),
                        h.profile,
                        h.show_frame
                    );
                    self.control_mismatch_logged = true;
                }
            }
        }
        if !d.picture {
            return Ok(());
        }
        let bands = band_pool(&self.bands, &self.config);
        write_picture(dec.picture(), cap, &job.picture, bands)
    }
}

impl Context {
    fn run_av1(&mut self, job: &Job<'_>) -> Result<(), JobError> {
        let (out, cap) = self.buffers.resolve(&job.output, &job.capture);
        let (out, cap) = (out?, cap?);
        let dec = match &mut self.av1 {
            Some(d) => d,
            None => self.av1.insert(Av1Decoder::new(&self.config)?),
        };
        self.av1_controls.read(&job.controls);
        self.av1_controls.timestamp_ns = job.timestamp_ns;
        let map = out.mapping();
        let (start, end) = (
            job.output.data_offset as usize,
            job.output.bytesused as usize,
        );
        if start > end || end > map.len() {
            return Err(JobError::Internal(
                "bitstream range outside the OUTPUT mapping",
            ));
        }
        let access = map.cpu_access(crate::sys::DMA_BUF_SYNC_READ);
        let d = dec.decode(&map.bytes()[start..end], &self.av1_controls)?;
        drop(access);
        self.stats.copied += 1;
        if d.hidden {
            self.stats.hidden += 1;
        }
        if !d.picture {
            return Ok(());
        }
        let bands = band_pool(&self.bands, &self.config);
        write_picture_clipped(dec.picture(), cap, &job.picture, bands)
    }
}

/// Writes a decoded frame into the CAPTURE mapping, clipped to the CAPTURE format (AV1: the
/// frame's own size, e.g. the upscaled width with superres, may exceed a stale format).
pub fn write_picture_clipped(
    frame: &frame::Video,
    cap: &mut Mapping,
    pic: &PictureFormat,
    bands: &BandPool,
) -> Result<(), JobError> {
    write_planar(&video_planes(frame)?, cap, pic, true, bands)
}

/// Writes a decoded frame into the CAPTURE mapping in the job's layout, in parallel bands on
/// `bands`; a frame larger than the CAPTURE format is an error.
pub fn write_picture(
    frame: &frame::Video,
    cap: &mut Mapping,
    pic: &PictureFormat,
    bands: &BandPool,
) -> Result<(), JobError> {
    write_planar(&video_planes(frame)?, cap, pic, false, bands)
}

/// Writes `src` into the CAPTURE mapping as the job's NV12 / P010 layout. A picture larger than
/// the CAPTURE format is clipped to it when `clip` is set (AV1 superres, H.264 coded size with
/// cropping), an error otherwise.
pub(crate) fn write_planar(
    src: &Planar<'_>,
    cap: &mut Mapping,
    pic: &PictureFormat,
    clip: bool,
    bands: &BandPool,
) -> Result<(), JobError> {
    let want = BitDepth::of_capture_fourcc(pic.fourcc).ok_or(JobError::Internal(
        "CAPTURE format is neither NV12 nor P010",
    ))?;
    if src.depth != want {
        let bits = |d: BitDepth| if d == BitDepth::Eight { 8 } else { 10 };
        return Err(JobError::DepthMismatch {
            frame: bits(src.depth),
            capture: bits(want),
        });
    }
    let (width, height) = (src.width, src.height);
    if !clip && (width > pic.width as usize || height > pic.height as usize) {
        return Err(JobError::TooLarge {
            width: width as u32,
            height: height as u32,
            max_width: pic.width,
            max_height: pic.height,
        });
    }
    let clipped = Planar {
        width: width.min(pic.width as usize),
        height: height.min(pic.height as usize),
        ..*src
    };
    let layout = SemiPlanar {
        bytesperline: pic.bytesperline as usize,
        chroma_offset: pic.chroma_offset as usize,
    };
    cap.write_with(|dst| {
        let n = bands.bands_for(clipped.semiplanar_bytes());
        let mut split = convert::split_semiplanar(&clipped, dst, layout, n)?;
        bands.run(split.as_mut_slice());
        Ok::<(), convert::ConvertError>(())
    })?;
    Ok(())
}

/// The planes of a decoded frame.
fn video_planes(frame: &frame::Video) -> Result<Planar<'_>, JobError> {
    // SAFETY: `frame` wraps a valid AVFrame for as long as it is borrowed.
    frame_planes(unsafe { &*frame.as_ptr() })
}

/// The planes of a decoded 4:2:0 8- or 10-bit AVFrame; other formats are unsupported.
pub(crate) fn frame_planes(f: &ffi::AVFrame) -> Result<Planar<'_>, JobError> {
    use ffi::AVPixelFormat as F;
    let depth = match f.format {
        x if x == F::AV_PIX_FMT_YUV420P as i32 || x == F::AV_PIX_FMT_YUVJ420P as i32 => {
            BitDepth::Eight
        }
        x if x == F::AV_PIX_FMT_YUV420P10LE as i32 => BitDepth::Ten,
        _ => {
            return Err(JobError::Unsupported(
                "decoded pixel format (not 4:2:0 8/10-bit)",
            ))
        }
    };
    if f.width <= 0 || f.height <= 0 {
        return Err(JobError::Internal("decoded frame has no size"));
    }
    let (w, h) = (f.width as usize, f.height as usize);
    let bps = depth.bytes_per_sample() as usize;
    let plane = |i: usize, pw: usize, ph: usize| -> Result<Plane<'_>, JobError> {
        let stride = usize::try_from(f.linesize[i])
            .ok()
            .filter(|&s| s >= pw * bps)
            .ok_or(JobError::Internal("unexpected frame stride"))?;
        if f.data[i].is_null() {
            return Err(JobError::Internal("decoded frame lacks a plane"));
        }
        let len = stride * (ph - 1) + pw * bps;
        // SAFETY: a decoded frame's plane `i` holds `ph` rows of `linesize[i]` bytes (FFmpeg
        // allocates its frame buffers at least that large, and H.264's get_buffer2 buffers are
        // sized by FFmpeg's own av_image_fill_arrays for the frame), so its first `len` bytes
        // are readable; the caller's borrow of `f` keeps the frame's reference to that memory.
        let data = unsafe { std::slice::from_raw_parts(f.data[i], len) };
        Ok(Plane { data, stride })
    };
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    Ok(Planar {
        width: w,
        height: h,
        depth,
        y: plane(0, w, h)?,
        u: plane(1, cw, ch)?,
        v: plane(2, cw, ch)?,
    })
}
