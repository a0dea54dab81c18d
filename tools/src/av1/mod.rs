// SPDX-License-Identifier: GPL-2.0
//! `daedalus decode` for AV1: a stateless client in the way of GStreamer's `v4l2slav1dec`, on the
//! shared [`crate::engine`] with the reference slots of `slots.rs`.
//!
//! * Inputs: any container with an AV1 track ([`crate::demux`]: IVF `AV01`, WebM / Matroska
//!   `V_AV1`, MP4 `av01`...), and bare `.obu` files in the
//!   low-overhead (Section 5) or the Annex B format, told apart by splitting the whole file
//!   both ways ([`obu::detect`]). Annex B temporal units are rewritten in the Section 5 format.
//! * Parsing: cros-codecs' AV1 parser (it keeps the reference state the headers need).
//!   Operating point 0 is selected; OBUs outside it are dropped, as dav1d does by default.
//! * One request per frame, with `V4L2_CID_STATELESS_AV1_SEQUENCE`, `_FRAME`,
//!   `_TILE_GROUP_ENTRY` and `_FILM_GRAIN` ([`daedalus_codecs::av1::controls`]). The OUTPUT
//!   buffer holds, per [`Payload`], the frame's OBUs as they are (sequence header, frame header
//!   or frame OBU, tile groups) or only the tile group payloads as GStreamer sends them (the
//!   device then rebuilds the headers from the controls). Tile entry offsets are positions in
//!   the OUTPUT buffer in both cases.
//! * `show_existing_frame` is handled by the client in both modes, as GStreamer does: the
//!   CAPTURE buffer of the slot's frame is output again (a key frame shown this way also takes
//!   every slot). Hidden frames are decoded into a CAPTURE buffer too (the device writes their
//!   picture, film grain included when the FILM_GRAIN control applies it).
//! * Film grain: with `film_grain = false` the FILM_GRAIN control has
//!   `V4L2_AV1_FILM_GRAIN_FLAG_APPLY_GRAIN` cleared (the device applies what the control says).
//! * The device is configured for the sequence header's maximum frame size and bit depth
//!   (NV12 / P010); a new sequence header with other values reconfigures it at the next key
//!   frame. Each picture is output at its frame size (upscaled width with superres).
//! * A stream the device does not decode (profile 1/2: 4:4:4, 4:2:2, 12-bit) makes the driver
//!   refuse the SEQUENCE control: [`crate::engine::Refused`].

use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use anyhow::{anyhow, bail, Context, Result};
use daedalus_codecs::av1::{controls, obu};
use daedalus_codecs::cros_codecs::codec::av1::parser::{
    FrameHeaderObu, FrameType, ObuAction, ParsedObu, Parser, SequenceHeaderObu,
};
use daedalus_proto::formats::BitDepth;
use log::{debug, warn};

use crate::codec::Codec;
use crate::decode::Input;
use crate::demux::Probe;
use crate::engine::{Engine, Refused, Run, StreamSetup, Summary};
use crate::ffmpeg_timing::FrameMd5Params;
use crate::slots::{FrameJob, SlotDecoder};
use crate::sys::*;
use crate::v4l2::CtrlPayload;

/// What the OUTPUT buffer of a request holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Payload {
    /// The frame's OBUs as in the stream (sequence header, frame header / frame, tile groups).
    #[default]
    Obu,
    /// Only the tile group payloads (GStreamer's `v4l2slav1dec`).
    Tiles,
}

/// AV1 options of a decode run.
#[derive(Clone, Copy, Debug)]
pub struct Av1Options {
    /// What the OUTPUT buffers hold.
    pub payload: Payload,
    /// Whether the device applies film grain.
    pub film_grain: bool,
}

impl Default for Av1Options {
    fn default() -> Self {
        Av1Options {
            payload: Payload::Obu,
            film_grain: true,
        }
    }
}

/// The temporal units of an AV1 input (Section 5 format) with their timestamps.
pub struct Av1Input {
    /// Container name, for messages.
    pub container: String,
    /// Temporal units and timestamps.
    pub units: Vec<(i64, Vec<u8>)>,
    /// The timing of the framemd5 output.
    pub framemd5: FrameMd5Params,
}

/// Reads every temporal unit of an AV1 input: the packets of a container's AV1 track, or the
/// temporal units of a bare OBU stream.
pub fn read_input(input: &Input) -> Result<Av1Input> {
    if let Some(mut demuxer) = crate::decode::open_container(input, Codec::Av1, Probe::StreamInfo)?
    {
        let mut units = Vec::new();
        let mut buf = Vec::new();
        while let Some(p) = demuxer.next_packet(&mut buf)? {
            units.push((p.pts, std::mem::take(&mut buf)));
        }
        let track = demuxer.track();
        return Ok(Av1Input {
            container: track.container.clone(),
            units,
            framemd5: track.framemd5,
        });
    }
    let mut data = Vec::new();
    input
        .open()?
        .read_to_end(&mut data)
        .context("cannot read the input")?;
    let (container, units) = match obu::detect(&data)? {
        obu::ObuFormat::Section5 => ("Section 5 OBU", obu::temporal_units_section5(&data)?),
        obu::ObuFormat::AnnexB => ("Annex B OBU", obu::temporal_units_annexb(&data)?),
    };
    // No timestamps: number the temporal units (what FFmpeg's obu demuxer does).
    Ok(Av1Input {
        container: container.to_string(),
        units: units
            .into_iter()
            .enumerate()
            .map(|(i, u)| (i as i64, u))
            .collect(),
        framemd5: FrameMd5Params::numbered(25),
    })
}

/// Runs cros-codecs' parser, turning a panic on malformed input into an error.
fn guarded<T>(what: &str, f: impl FnOnce() -> std::result::Result<T, String>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(anyhow!("{what}: {e}")),
        Err(_) => Err(anyhow!(
            "{what}: the parser rejected the bitstream (internal check)"
        )),
    }
}

/// A tile group of the frame being assembled.
struct TileGroupPart {
    /// The whole OBU in the temporal unit.
    obu: (usize, usize),
    /// Its tile data (for a frame OBU: after the frame header) in the temporal unit.
    payload: (usize, usize),
    /// Tile entries with offsets relative to `payload`.
    entries: Vec<v4l2_ctrl_av1_tile_group_entry>,
}

/// The frame being assembled from the OBUs of a temporal unit.
struct PendingFrame {
    header: FrameHeaderObu,
    /// The frame header OBU (for a frame OBU: none; its tile group part holds it).
    header_obu: Option<(usize, usize)>,
    groups: Vec<TileGroupPart>,
    tiles: u32,
}

struct Av1Client<'a> {
    dec: SlotDecoder<'a>,
    opts: Av1Options,
    parser: Parser,
    seq: Option<Rc<SequenceHeaderObu>>,
    /// The latest sequence header OBU, sent in front of every frame in `obu` mode.
    seq_obu: Vec<u8>,
    /// The sequence the device is configured for.
    configured_seq: Option<v4l2_ctrl_av1_sequence>,
    payload: Vec<u8>,
    entries: Vec<v4l2_ctrl_av1_tile_group_entry>,
    warned_no_key: bool,
}

/// Runs a decode of the AV1 `input`.
pub(crate) fn run(input: &Input, run: Run<'_>) -> Result<Summary> {
    let opts = run.opts;
    let stream = read_input(input)?;
    let max_unit = stream.units.iter().map(|(_, u)| u.len()).max().unwrap_or(0);
    let setup = StreamSetup {
        codec: Codec::Av1,
        // A frame's OBUs plus a sequence header in front of them.
        max_payload: max_unit + 1024,
        framemd5: stream.framemd5,
        description: format!(
            "{} ({} temporal units)",
            stream.container,
            stream.units.len()
        ),
    };
    let dec = SlotDecoder::new(Engine::new(run, setup)?);
    let mut client = Av1Client {
        dec,
        opts: opts.av1,
        parser: Parser::default(),
        seq: None,
        seq_obu: Vec::new(),
        configured_seq: None,
        payload: Vec::with_capacity(max_unit + 1024),
        entries: Vec::with_capacity(64),
        warned_no_key: false,
    };
    // Settle the parser on the low-overhead format (it probes for Annex B on its first OBU):
    // everything it sees is Section 5.
    let td = [0x12u8, 0x00];
    if let Ok(ObuAction::Process(o)) = guarded("temporal delimiter", || client.parser.read_obu(&td))
    {
        let _ = guarded("temporal delimiter", || {
            client.parser.parse_obu(o).map(|_| ())
        });
    }
    let mut result = Ok(());
    for (index, (pts, unit)) in stream.units.iter().enumerate() {
        if opts.limit.is_some_and(|l| index as u64 >= l) {
            break;
        }
        if (index as u64) < opts.start {
            // Before the seek point: not decoded.
            continue;
        }
        client.dec.engine.summary_mut().packets += 1;
        if let Err(e) = client.temporal_unit(index as u64, *pts, unit) {
            if e.downcast_ref::<Refused>().is_some() || e.downcast_ref::<Fatal>().is_some() {
                result = Err(e);
                break;
            }
            warn!("temporal unit {index}: {e:#}; skipped");
            client.dec.engine.summary_mut().skipped += 1;
        }
        client.dec.engine.tick();
    }
    match result {
        Ok(()) => client.dec.finish(),
        Err(e) => {
            client.dec.engine.abort();
            // The engine's own error (a time-out, a close: `daedalus stress` tells them apart).
            Err(match e.downcast::<Fatal>() {
                Ok(Fatal(inner)) => inner,
                Err(e) => e,
            })
        }
    }
}

/// An error of the device or the client (not of the stream): the run stops.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
struct Fatal(anyhow::Error);

impl Av1Client<'_> {
    fn temporal_unit(&mut self, index: u64, pts: i64, unit: &[u8]) -> Result<()> {
        let obus = obu::split_section5(unit)?;
        let mut pending: Option<PendingFrame> = None;
        for o in obus {
            if unit[o.start] & 1 != 0 {
                bail!("OBU at byte {} has obu_reserved_1bit set", o.start);
            }
            let action = guarded("OBU", || self.parser.read_obu(&unit[o.start..o.end]))?;
            let obu = match action {
                ObuAction::Process(obu) => obu,
                ObuAction::Drop(_) => continue,
            };
            let payload_start = o.payload;
            match guarded("OBU", || self.parser.parse_obu(obu))? {
                ParsedObu::SequenceHeader(seq) => {
                    guarded("operating point", || self.parser.choose_operating_point(0))?;
                    self.seq_obu.clear();
                    self.seq_obu.extend_from_slice(&unit[o.start..o.end]);
                    self.seq = Some(seq);
                }
                ParsedObu::FrameHeader(fh) => {
                    if pending.is_some() {
                        // A copy of the header of the frame being assembled.
                        continue;
                    }
                    if fh.show_existing_frame {
                        self.show_existing(index, pts, &fh)?;
                        continue;
                    }
                    pending = Some(PendingFrame {
                        header: fh,
                        header_obu: Some((o.start, o.end)),
                        groups: Vec::new(),
                        tiles: 0,
                    });
                }
                ParsedObu::TileGroup(tg) => {
                    let Some(p) = &mut pending else {
                        bail!("tile group without a frame header");
                    };
                    let mut entries = Vec::with_capacity(tg.tiles.len());
                    controls::push_tile_group_entries(&tg, 0, &mut entries)?;
                    p.tiles += entries.len() as u32;
                    p.groups.push(TileGroupPart {
                        obu: (o.start, o.end),
                        payload: (payload_start, o.end),
                        entries,
                    });
                }
                ParsedObu::Frame(f) => {
                    let start = payload_start + f.header.header_bytes;
                    let mut entries = Vec::with_capacity(f.tile_group.tiles.len());
                    controls::push_tile_group_entries(&f.tile_group, 0, &mut entries)?;
                    pending = Some(PendingFrame {
                        tiles: entries.len() as u32,
                        header: f.header,
                        header_obu: None,
                        groups: vec![TileGroupPart {
                            obu: (o.start, o.end),
                            payload: (start, o.end),
                            entries,
                        }],
                    });
                }
                _ => continue,
            }
            if let Some(p) = &pending {
                let ti = &p.header.tile_info;
                if p.tiles >= ti.tile_cols * ti.tile_rows {
                    if let Some(p) = pending.take() {
                        self.frame(index, pts, unit, p)?;
                    }
                }
            }
        }
        if pending.is_some() {
            bail!("the temporal unit ends in the middle of a frame");
        }
        Ok(())
    }

    fn show_existing(&mut self, index: u64, pts: i64, fh: &FrameHeaderObu) -> Result<()> {
        let key = controls::is_shown_key_frame(fh);
        self.dec
            .show_existing(index, pts, fh.frame_to_show_map_idx, key)
            .map_err(Fatal)?;
        guarded("reference update", || self.parser.ref_frame_update(fh))
    }

    fn frame(&mut self, index: u64, pts: i64, unit: &[u8], p: PendingFrame) -> Result<()> {
        let fh = &p.header;
        let seq = self
            .seq
            .clone()
            .ok_or_else(|| anyhow!("frame before any sequence header"))?;
        // The parser's reference state moves on whatever happens to this frame.
        guarded("reference update", || self.parser.ref_frame_update(fh))?;
        let refresh = u8::try_from(fh.refresh_frame_flags).unwrap_or(0xff);
        let mut seq_ctrl = controls::sequence_control(&seq)?;
        let depth = BitDepth::from_bits(u32::from(seq_ctrl.bit_depth));
        // The engine loses its configuration when a run is restarted (`daedalus stress`).
        let needs_config = self.dec.engine.configured().is_none()
            || self.configured_seq.map_or(true, |c| {
                (
                    c.max_frame_width_minus_1,
                    c.max_frame_height_minus_1,
                    c.bit_depth,
                    c.seq_profile,
                ) != (
                    seq_ctrl.max_frame_width_minus_1,
                    seq_ctrl.max_frame_height_minus_1,
                    seq_ctrl.bit_depth,
                    seq_ctrl.seq_profile,
                )
            });
        if needs_config {
            if fh.frame_type != FrameType::KeyFrame {
                if !self.warned_no_key {
                    warn!("no key frame for this sequence yet: skipping to the first one");
                    self.warned_no_key = true;
                }
                return self.dec.skip(refresh).map_err(|e| Fatal(e).into());
            }
            // 12-bit has no CAPTURE format here: let the driver say so with the control.
            let cfg_depth = depth.unwrap_or(BitDepth::Ten);
            let width = u32::from(seq_ctrl.max_frame_width_minus_1) + 1;
            let height = u32::from(seq_ctrl.max_frame_height_minus_1) + 1;
            let describe = format!(
                "seq_profile {}, {}-bit{}",
                seq_ctrl.seq_profile,
                seq_ctrl.bit_depth,
                if seq.color_config.mono_chrome {
                    ", 4:0:0"
                } else {
                    ""
                }
            );
            self.dec.configure(
                width,
                height,
                cfg_depth,
                &mut [CtrlPayload::new(
                    V4L2_CID_STATELESS_AV1_SEQUENCE,
                    &mut seq_ctrl,
                )],
                describe,
            )?;
            if depth.is_none() {
                return Err(Refused(format!(
                    "{}-bit AV1 is not decoded (8 and 10 bits only)",
                    seq_ctrl.bit_depth
                ))
                .into());
            }
            self.configured_seq = Some(seq_ctrl);
            self.dec.engine.luma_only = seq.color_config.mono_chrome;
        }
        let ts = self.dec.slot_timestamps();
        let mut frame_ctrl = controls::frame_control(&seq, fh, &ts)?;
        let mut grain = controls::film_grain_control(fh, self.opts.film_grain)?;

        // The OUTPUT payload and the tile entries' offsets in it.
        self.payload.clear();
        self.entries.clear();
        if self.opts.payload == Payload::Obu {
            self.payload.extend_from_slice(&self.seq_obu);
            if let Some((s, e)) = p.header_obu {
                self.payload.extend_from_slice(&unit[s..e]);
            }
        }
        for g in &p.groups {
            let base = match self.opts.payload {
                Payload::Obu => {
                    let at = self.payload.len() + (g.payload.0 - g.obu.0);
                    self.payload.extend_from_slice(&unit[g.obu.0..g.obu.1]);
                    at
                }
                Payload::Tiles => {
                    let at = self.payload.len();
                    self.payload
                        .extend_from_slice(&unit[g.payload.0..g.payload.1]);
                    at
                }
            };
            let base = u32::try_from(base).context("payload too large")?;
            for e in &g.entries {
                let mut e = *e;
                e.tile_offset = e
                    .tile_offset
                    .checked_add(base)
                    .ok_or_else(|| anyhow!("tile offset overflow"))?;
                self.entries.push(e);
            }
        }
        debug!(
            "temporal unit {index}: {:?} {}x{} (upscaled {}), show {}, refresh {refresh:#04x}, \
             {} tiles, {} bytes",
            fh.frame_type,
            fh.frame_width,
            fh.frame_height,
            fh.upscaled_width,
            fh.show_frame,
            self.entries.len(),
            self.payload.len()
        );
        let job = FrameJob {
            packet: index,
            pts,
            refresh,
            show: fh.show_frame,
            width: fh.upscaled_width,
            height: fh.frame_height,
        };
        let payload = std::mem::take(&mut self.payload);
        let mut entries = std::mem::take(&mut self.entries);
        let r = self.dec.submit(
            &payload,
            &mut [
                CtrlPayload::new(V4L2_CID_STATELESS_AV1_SEQUENCE, &mut seq_ctrl),
                CtrlPayload::new(V4L2_CID_STATELESS_AV1_FRAME, &mut frame_ctrl),
                CtrlPayload::array(V4L2_CID_STATELESS_AV1_TILE_GROUP_ENTRY, &mut entries[..]),
                CtrlPayload::new(V4L2_CID_STATELESS_AV1_FILM_GRAIN, &mut grain),
            ],
            job,
        );
        self.payload = payload;
        self.entries = entries;
        r.map_err(|e| Fatal(e).into())
    }
}
