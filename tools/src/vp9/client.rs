// SPDX-License-Identifier: GPL-2.0
//! `daedalus decode` for VP9: a stateless `V4L2_PIX_FMT_VP9_FRAME` client on the shared
//! [`crate::engine`], written the way hardware-oriented clients are (GStreamer's
//! `v4l2slvp9dec`, FFmpeg's v4l2-request hwaccel).
//!
//! * The input is a container ([`crate::demux`]). A first pass reads the packet sizes (to size
//!   the OUTPUT buffers without holding the file in memory); the second pass decodes.
//! * Packets are split into frames (superframes); each frame's uncompressed and compressed
//!   headers are parsed into `V4L2_CID_STATELESS_VP9_FRAME` and
//!   `V4L2_CID_STATELESS_VP9_COMPRESSED_HDR`: one request per frame.
//! * References are named by timestamp: the eight slots ([`crate::slots`]) hold the pictures
//!   `refresh_frame_flags` put there, and the frame control carries the timestamps of its last,
//!   golden and altref references.
//! * Display order is decode order minus hidden frames (`show_frame = 0`), plus
//!   `show_existing_frame`, which needs no request.
//! * A key frame or intra-only frame with a new size (or bit depth) reconfigures the device
//!   with the frame control of the stream's bit depth (so the driver picks NV12 or P010).

use anyhow::{bail, Context, Result};
use daedalus_proto::formats::BitDepth;
use log::warn;

use super::stream::{StreamError, StreamFrame, Vp9Stream};
use super::v4l2::{frame_control, validate_compressed_hdr, validate_frame, RefTimestamps};
use crate::codec::Codec;
use crate::decode::{open_container, Input};
use crate::demux::Probe;
use crate::engine::{Engine, Run, StreamSetup, Summary};
use crate::slots::{FrameJob, SlotDecoder};
use crate::sys::*;
use crate::v4l2::CtrlPayload;

/// Runs a decode of the VP9 `input`.
pub(crate) fn run(input: &Input, run: Run<'_>) -> Result<Summary> {
    let opts = run.opts;
    // The first pass: what the container says, and its largest packet.
    let Some(mut demuxer) = open_container(input, Codec::Vp9, Probe::StreamInfo)? else {
        bail!("a VP9 stream must be in a container (IVF, WebM, MP4...)");
    };
    let mut max_packet = 0;
    let mut buf = Vec::new();
    while demuxer.next_packet(&mut buf)?.is_some() {
        max_packet = max_packet.max(buf.len());
    }
    let track = demuxer.track();
    let setup = StreamSetup {
        codec: Codec::Vp9,
        max_payload: max_packet,
        framemd5: track.framemd5,
        description: format!("{}x{} {}", track.width, track.height, track.container),
    };
    let mut dec = SlotDecoder::new(Engine::new(run, setup)?);
    let demuxer = open_container(input, Codec::Vp9, Probe::Headers)?
        .context("the input is no longer a VP9 container")?;
    let mut stream = Vp9Stream::new(demuxer);
    let mut compressed = Box::<v4l2_ctrl_vp9_compressed_hdr>::default();
    let mut warned_no_key = false;
    let mut last_packet = None;
    let result = loop {
        let frame = match stream.next_frame(&mut compressed) {
            Ok(Some(frame)) => frame,
            Ok(None) => break Ok(()),
            Err(StreamError::Frame {
                packet,
                frame,
                error,
            }) => {
                warn!("packet {packet}, frame {frame}: {error}: skipped");
                dec.engine.summary_mut().skipped += 1;
                continue;
            }
            Err(e) => break Err(anyhow::Error::from(e)),
        };
        if frame.packet < opts.start {
            // Before the seek point: read, not decoded.
            continue;
        }
        if last_packet != Some(frame.packet) {
            if opts.limit.is_some_and(|limit| frame.packet >= limit) {
                break Ok(());
            }
            last_packet = Some(frame.packet);
            dec.engine.summary_mut().packets += 1;
        }
        if let Err(e) = decode_frame(&mut dec, &frame, &compressed, &mut warned_no_key) {
            break Err(e);
        }
        dec.engine.tick();
    };
    match result {
        Ok(()) => dec.finish(),
        Err(e) => {
            // Do not wait for requests again after a failure (a time-out would repeat for
            // each): stream off, which returns everything, and report the first error.
            dec.engine.abort();
            Err(e)
        }
    }
}

/// Handles one frame of the stream.
fn decode_frame(
    dec: &mut SlotDecoder<'_>,
    f: &StreamFrame<'_>,
    compressed: &v4l2_ctrl_vp9_compressed_hdr,
    warned_no_key: &mut bool,
) -> Result<()> {
    let h = &f.parsed.header;
    if h.show_existing_frame {
        return dec.show_existing(f.packet, f.pts, h.frame_to_show_map_idx, false);
    }
    let Some(depth) = BitDepth::from_bits(u32::from(h.bit_depth)) else {
        warn!(
            "packet {}: {}-bit frame: daedalus decodes 8 and 10 bits only; skipped",
            f.packet, h.bit_depth
        );
        return dec.skip(h.refresh_frame_flags);
    };
    if h.is_intra() {
        let reconfigure = dec.engine.configured().map_or(true, |c| {
            (c.width, c.height, c.depth) != (h.width, h.height, depth)
        });
        if reconfigure {
            let mut control = frame_control(h, &f.parsed.compressed, RefTimestamps::default());
            dec.configure(
                h.width,
                h.height,
                depth,
                &mut [CtrlPayload::new(V4L2_CID_STATELESS_VP9_FRAME, &mut control)],
                format!("profile {}, {}-bit", h.profile, h.bit_depth),
            )?;
        }
    } else {
        let Some(c) = dec.engine.configured() else {
            if !*warned_no_key {
                warn!("the stream does not start with a key frame: skipping to the first one");
                *warned_no_key = true;
            }
            return dec.skip(h.refresh_frame_flags);
        };
        if h.width > c.width || h.height > c.height || depth != c.depth {
            warn!(
                "packet {}: inter frame of {}x{} ({}-bit) does not fit the {}x{} CAPTURE \
                 buffers (V4L2 clients reallocate on key frames only); skipped",
                f.packet, h.width, h.height, h.bit_depth, c.width, c.height
            );
            return dec.skip(h.refresh_frame_flags);
        }
    }

    let refs = if h.is_intra() {
        RefTimestamps::default()
    } else {
        let ts = dec.slot_timestamps();
        let slot = |i: usize| ts[usize::from(h.ref_frame_idx[i]) % ts.len()];
        RefTimestamps {
            last: slot(0),
            golden: slot(1),
            alt: slot(2),
        }
    };
    let mut control = frame_control(h, &f.parsed.compressed, refs);
    if let Err(e) = validate_frame(&control).and(validate_compressed_hdr(compressed)) {
        warn!("packet {}: {e}; skipped", f.packet);
        return dec.skip(h.refresh_frame_flags);
    }
    let mut compressed_copy = *compressed;
    dec.submit(
        f.data,
        &mut [
            CtrlPayload::new(V4L2_CID_STATELESS_VP9_FRAME, &mut control),
            CtrlPayload::new(V4L2_CID_STATELESS_VP9_COMPRESSED_HDR, &mut compressed_copy),
        ],
        FrameJob {
            packet: f.packet,
            pts: f.pts,
            refresh: h.refresh_frame_flags,
            show: h.show_frame,
            width: h.width,
            height: h.height,
        },
    )
}
