// SPDX-License-Identifier: GPL-2.0
//! `daedalus decode` for H.264: a stateless `V4L2_PIX_FMT_H264_SLICE` client, written the way
//! GStreamer's `v4l2slh264dec` drives hardware decoders.
//!
//! * Input: Annex-B, or a container libavformat reads ([`super::stream`]); parameter sets and
//!   slice headers parsed with cros-codecs, slices grouped into pictures.
//! * Every request carries SPS, PPS, SCALING_MATRIX and DECODE_PARAMS (GStreamer style);
//!   DECODE_MODE and START_CODE are set once per configuration.
//! * Frame-based mode: one request per picture holding all its slice NAL units (with
//!   `00 00 01` start codes). Slice-based mode: one request per slice with SLICE_PARAMS (and
//!   PRED_WEIGHTS for explicit weighted prediction), `V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF` on all
//!   but the last slice of a picture, start codes optional.
//! * The client's DPB ([`super::dpb`]) names references by the timestamp of their CAPTURE
//!   buffer; a CAPTURE buffer is queued again only when its picture left the DPB and was
//!   output. Pictures come back in decode order and are output in POC order (bumping), cropped
//!   to the SPS cropping window.
//! * Streams the device cannot decode (field pictures / MBAFF: `frame_mbs_only_flag = 0`; an
//!   SPS control the driver rejects: 4:2:2, 4:4:4, other bit depths) end with [`Refused`].
//! * Requests, buffers and display go through the shared [`crate::engine`]; the DPB tells it
//!   which pictures are still references ([`References`]).

use anyhow::{anyhow, bail, Context, Result};
use daedalus_codecs::h264::controls::{pps_control, scaling_matrix_control, sps_control};
use daedalus_proto::formats::BitDepth;
use log::debug;

use super::dpb::Dpb;
use super::stream::{NalSource, Picture, Pictures};
use super::v4l2::{
    decode_params, has_pred_weights, pic_params, pred_weights, seq_params, slice_params,
};
use crate::codec::Codec;
use crate::decode::Input;
use crate::demux::Probe;
use crate::engine::{Config, Crop, Engine, References, Refused, Run, StreamSetup, Summary};
use crate::ffmpeg_timing::FrameMd5Params;
use crate::sys::*;
use crate::v4l2::CtrlPayload;

const START_CODE: [u8; 3] = [0, 0, 1];

/// Frames the DPB may hold.
const DPB_FRAMES: u32 = 16;

/// How pictures are handed to the device (`V4L2_CID_STATELESS_H264_DECODE_MODE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DecodeMode {
    /// One request per picture.
    #[default]
    Frame,
    /// One request per slice.
    Slice,
}

/// Whether slices carry Annex-B start codes (`V4L2_CID_STATELESS_H264_START_CODE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum StartCode {
    /// `00 00 01` before each slice.
    #[default]
    Annexb,
    /// Slices alone (slice-based mode only).
    None,
}

/// H.264 specifics of a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct H264Options {
    /// Decode mode.
    pub mode: DecodeMode,
    /// Start codes.
    pub start_code: StartCode,
}

/// Decodes the H.264 stream `input` through the device of `opts`, telling `observer` when
/// each picture's requests are queued and completed (what `daedalus bench` times): a picture's
/// `queued` is just before its first request is queued, `completed` when the request of its
/// last slice completed.
pub(crate) fn run(input: &Input, run: Run<'_>) -> Result<Summary> {
    let opts = run.opts;
    let h264 = opts.h264;
    if h264.mode == DecodeMode::Frame && h264.start_code == StartCode::None {
        bail!("--start-code none needs --h264-mode slice (a frame-based buffer of several slices needs start codes to separate them)");
    }
    let src = match crate::decode::open_container(input, Codec::H264, Probe::Headers)? {
        Some(demuxer) => NalSource::from_container(demuxer)?,
        None => NalSource::load(match input {
            Input::File(path) => {
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
            }
            Input::Memory(d) => d.to_vec(),
        })?,
    };
    let setup = StreamSetup {
        codec: Codec::H264,
        // Every slice of a picture, each with a start code.
        max_payload: src.max_picture_bytes() + 4096,
        // Raw H.264 has no timestamps: FFmpeg's framemd5 of it counts frames at 1/25 s.
        framemd5: FrameMd5Params::numbered(25),
        description: format!("{}, {} NAL units", src.container, src.nals.len()),
    };
    let mut client = Client {
        engine: Engine::new(run, setup)?,
        h264,
        src: &src,
        dpb: Dpb::new(),
        out_ids: Vec::with_capacity(40),
        seen_idr: false,
    };
    let mut pictures = Pictures::new(&src);
    let mut index = 0u64;
    let result = loop {
        let pic = match pictures.next_picture() {
            Ok(Some(p)) => p,
            Ok(None) => break Ok(()),
            Err(e) => break Err(anyhow::Error::from(e)),
        };
        index += 1;
        if index <= opts.start {
            // Before the seek point: parsed (parameter sets), not decoded.
            continue;
        }
        let summary = client.engine.summary_mut();
        if opts.limit.is_some_and(|l| summary.packets >= l) {
            break Ok(());
        }
        summary.packets += 1;
        if let Err(e) = client.picture(&pic) {
            break Err(e);
        }
        client.engine.tick();
    };
    client.engine.summary_mut().skipped += pictures.bad_slices;
    match result {
        Ok(()) => client.finish(),
        Err(e) => {
            client.engine.abort();
            Err(e)
        }
    }
}

impl References for Dpb {
    fn holds(&self, id: u64) -> bool {
        Dpb::holds(self, id)
    }
}

/// The H.264 front end of a run: the engine, the stream and the DPB.
struct Client<'a, 'e> {
    engine: Engine<'e>,
    h264: H264Options,
    src: &'a NalSource,
    dpb: Dpb,
    /// Pictures the DPB outputs, in output order (reused).
    out_ids: Vec<u64>,
    seen_idr: bool,
}

impl Client<'_, '_> {
    /// Decodes one picture.
    fn picture(&mut self, pic: &Picture) -> Result<()> {
        let sps = &pic.sps;
        let first = pic.first();
        if !sps.frame_mbs_only_flag {
            return Err(Refused(format!(
                "the stream codes fields (frame_mbs_only_flag = 0: field pictures or MBAFF), \
                 which the device does not decode (profile_idc {})",
                sps.profile_idc
            ))
            .into());
        }
        // No IDR yet, or the run was restarted (`daedalus stress`): wait for the next IDR.
        if !first.idr && (!self.seen_idr || self.engine.configured().is_none()) {
            debug!("picture before the first IDR picture: skipped");
            self.engine.summary_mut().skipped += 1;
            return Ok(());
        }
        let coded = (
            (u32::from(sps.pic_width_in_mbs_minus1) + 1) * 16,
            (u32::from(sps.pic_height_in_map_units_minus1) + 1) * 16,
        );
        let bits = u32::from(sps.bit_depth_luma_minus8) + 8;
        let mut sps_ctrl = sps_control(sps);
        let mut pps_ctrl = pps_control(&pic.pps);
        let mut matrix = scaling_matrix_control(&pic.pps);
        if first.idr {
            self.seen_idr = true;
            let changed = self.engine.configured().map_or(true, |c| {
                (c.width, c.height) != coded || BitDepth::from_bits(bits) != Some(c.depth)
            });
            if changed {
                self.reconfigure(coded, bits, &mut sps_ctrl)?;
            }
            self.dpb.set_seq(seq_params(sps));
        }
        // The DPB may bump pictures out before this one: they go to display first, so that
        // waiting for room below can write them and free their buffers.
        let id = self.engine.next_picture_id();
        self.out_ids.clear();
        let cur = self
            .dpb
            .start_picture(pic_params(first, id), &mut self.out_ids);
        self.queue_displays()?;
        // cros-codecs' `max` is the visible size (coded size minus both crop offsets), not the
        // bottom-right corner.
        let vis = sps.visible_rectangle();
        let crop = Crop {
            left: vis.min.x,
            top: vis.min.y,
            width: vis.max.x.min(coded.0.saturating_sub(vis.min.x)),
            height: vis.max.y.min(coded.1.saturating_sub(vis.min.y)),
        };
        let new_id = self.engine.new_picture(&self.dpb, crop)?;
        if new_id != id {
            bail!("internal error: picture {new_id} started as {id}");
        }
        let (mut params, dpb_ids) = decode_params(pic, &cur, &self.dpb);
        let requests: Vec<std::ops::Range<usize>> = match self.h264.mode {
            DecodeMode::Frame => std::iter::once(0..pic.slices.len()).collect(),
            DecodeMode::Slice => (0..pic.slices.len()).map(|i| i..i + 1).collect(),
        };
        let last_request = requests.len() - 1;
        for (n, slices) in requests.into_iter().enumerate() {
            let start_code: &[u8] = match self.h264.start_code {
                StartCode::Annexb => &START_CODE,
                StartCode::None => &[],
            };
            let mut parts = Vec::with_capacity(2 * slices.len());
            for s in &pic.slices[slices.clone()] {
                parts.push(start_code);
                parts.push(&self.src.data[s.range.clone()]);
            }
            let mut payloads = vec![
                CtrlPayload::new(V4L2_CID_STATELESS_H264_SPS, &mut sps_ctrl),
                CtrlPayload::new(V4L2_CID_STATELESS_H264_PPS, &mut pps_ctrl),
                CtrlPayload::new(V4L2_CID_STATELESS_H264_SCALING_MATRIX, &mut matrix),
                CtrlPayload::new(V4L2_CID_STATELESS_H264_DECODE_PARAMS, &mut params),
            ];
            let mut sp;
            let mut pw;
            if self.h264.mode == DecodeMode::Slice {
                let s = &pic.slices[slices.start];
                sp = slice_params(s, &cur, &self.dpb, &dpb_ids);
                payloads.push(CtrlPayload::new(
                    V4L2_CID_STATELESS_H264_SLICE_PARAMS,
                    &mut sp,
                ));
                if has_pred_weights(&pic.pps, &s.header) {
                    pw = pred_weights(&s.header);
                    payloads.push(CtrlPayload::new(
                        V4L2_CID_STATELESS_H264_PRED_WEIGHTS,
                        &mut pw,
                    ));
                }
            }
            if let Err(e) =
                self.engine
                    .queue_request(id, &parts, &mut payloads, n == last_request)?
            {
                bail!("picture {id}: {e}");
            }
        }
        self.out_ids.clear();
        self.dpb
            .finish_picture(cur, &mut self.out_ids)
            .map_err(|e| anyhow!("picture {id}: {e}"))?;
        self.queue_displays()?;
        self.engine.collect(&self.dpb)
    }

    /// Puts the pictures the DPB output in the display queue.
    fn queue_displays(&mut self) -> Result<()> {
        for &id in &self.out_ids {
            // Pictures are numbered as they are written (FFmpeg's numbering of raw H.264).
            if self.engine.tracks(id) {
                self.engine.show(id, None)?;
            }
        }
        self.out_ids.clear();
        Ok(())
    }

    /// Outputs everything the DPB holds; the engine waits for every request.
    fn flush_dpb(&mut self) -> Result<()> {
        self.out_ids.clear();
        self.dpb.flush(&mut self.out_ids);
        self.queue_displays()
    }

    fn reconfigure(
        &mut self,
        coded: (u32, u32),
        bits: u32,
        sps: &mut v4l2_ctrl_h264_sps,
    ) -> Result<()> {
        self.flush_dpb()?;
        let depth =
            BitDepth::from_bits(bits).ok_or_else(|| Refused(format!("{bits}-bit pictures")))?;
        let mode = match self.h264.mode {
            DecodeMode::Frame => V4L2_STATELESS_H264_DECODE_MODE_FRAME_BASED,
            DecodeMode::Slice => V4L2_STATELESS_H264_DECODE_MODE_SLICE_BASED,
        };
        let start = match self.h264.start_code {
            StartCode::Annexb => V4L2_STATELESS_H264_START_CODE_ANNEX_B,
            StartCode::None => V4L2_STATELESS_H264_START_CODE_NONE,
        };
        let describe = format!(
            "profile_idc {}, chroma_format_idc {}, bit depth luma {} / chroma {}, {:?} decoding \
             with start codes {:?}",
            sps.profile_idc,
            sps.chroma_format_idc,
            u32::from(sps.bit_depth_luma_minus8) + 8,
            u32::from(sps.bit_depth_chroma_minus8) + 8,
            self.h264.mode,
            self.h264.start_code
        );
        // The DPB (16 frames: the most H.264 allows, kept simple because the SPS of later IDRs
        // can ask for more without a reconfiguration), one picture being decoded and one being
        // output; more for the requests in flight.
        let opts = self.engine.opts();
        let capture_buffers = opts
            .capture_buffers
            .max(DPB_FRAMES + opts.in_flight as u32 + 1);
        self.engine.configure(
            &self.dpb,
            Config {
                width: coded.0,
                height: coded.1,
                depth,
                stream_ctrls: &mut [CtrlPayload::new(V4L2_CID_STATELESS_H264_SPS, sps)],
                menu_ctrls: &[
                    (V4L2_CID_STATELESS_H264_DECODE_MODE, mode as i32),
                    (V4L2_CID_STATELESS_H264_START_CODE, start as i32),
                ],
                describe,
                capture_buffers,
                min_capture_buffers: DPB_FRAMES + 2,
                hold_capture: self.h264.mode == DecodeMode::Slice,
            },
        )?;
        self.dpb = Dpb::new();
        Ok(())
    }

    fn finish(&mut self) -> Result<Summary> {
        let flushed = self.flush_dpb();
        let summary = self.engine.finish(&self.dpb);
        flushed.and(summary)
    }
}
