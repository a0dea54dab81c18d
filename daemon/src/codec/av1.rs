// SPDX-License-Identifier: GPL-2.0
//! AV1 decoding: FFmpeg's libdav1d wrapper per context, one picture per request.
//!
//! * Decoder: `libdav1d` opened with `AV_CODEC_FLAG_LOW_DELAY` (libdav1d's `max_frame_delay =
//!   1`: the picture of a packet comes out before the next packet is sent) and the daemon's
//!   thread count.
//! * What the OUTPUT buffer holds ([`BufferKind`]): either full OBUs (a temporal unit or a
//!   frame with its headers, as `daedalus decode` or a client reading IVF sends: used as they
//!   are) or only the tile-group payloads (what GStreamer's `v4l2slav1dec` sends: sequence
//!   header, frame header and tile group OBUs are rebuilt from the SEQUENCE / FRAME /
//!   FILM_GRAIN / TILE_GROUP_ENTRY controls, [`daedalus_codecs::av1::rebuild`]). The rule: the
//!   buffer is full OBUs iff it parses as a chain of OBUs with size fields that ends exactly at
//!   the end of the data, contains a frame header or frame OBU, and every TILE_GROUP_ENTRY the
//!   request carries lies inside a tile group / frame OBU of that chain. Tile payloads never
//!   pass that test in practice (the first entry starts at or near offset 0, inside what would
//!   be the first OBU's header; an OBU's payload starts at offset 2 at the earliest). A tile
//!   may start right at its tile group's payload (one tile: no tile start/end fields).
//! * Hidden frames (`show_frame = 0`): the client shows them later from the CAPTURE buffer, so
//!   the decoded picture must be written now. libdav1d outputs nothing for them; a synthetic
//!   `show_existing_frame` header for a slot the frame refreshed makes it output the picture.
//!   Showing a *key* frame that way would run the reference refresh process (all slots reset)
//!   in the real decoder, so a hidden key frame is shown by a throw-away decoder fed the
//!   sequence header, the key frame (self-contained) and the `show_existing_frame` header.
//! * Film grain: applied iff the FILM_GRAIN control's `V4L2_AV1_FILM_GRAIN_FLAG_APPLY_GRAIN`
//!   says so. Rebuilt headers carry the control's flag. Full OBUs carry the bitstream's
//!   `apply_grain`; when a FILM_GRAIN control contradicts it and the request has the controls
//!   to rebuild the frame, the frame is decoded from rebuilt headers instead (the tiles taken
//!   from the OBUs in the buffer); without those controls the bitstream is followed (logged).
//! * Refused (`Status::Unsupported`): 4:2:2, 4:4:4, monochrome, 12-bit.
//!
//! ## Pipelined decoding
//!
//! With two threads or more, requests go to a second libdav1d at its default frame delay (its
//! frame threading, as `ffmpeg -threads N` runs it) while the context has at least `threads`
//! jobs ([`super::pipeline`], the same rules as VP9 and H.264), routed on the FRAME control
//! before anything is parsed: entered at a shown key frame or by replaying the packets since
//! it (the sequence header kept in front of the key frame), left at a shown key frame. The
//! request is decoded exactly as with low delay (parsers, rebuilt headers, slots), only every
//! packet it makes goes to the pipeline; its picture is the output of its frame's packet, or
//! of the `show_existing_frame` that shows a hidden frame; a hidden key frame is still shown by
//! a scratch decoder, its picture waiting in the pipeline for its turn.
//!
//! The filler is a `show_existing_frame` header of a slot that holds a frame that is not a key
//! frame: it outputs a picture and changes no state. Showing a key frame would reload every
//! slot with it (7.21), so a key frame is used only when every slot holds that same key frame
//! (right after it: reloading them changes nothing). With neither (a hidden key frame refreshed
//! some slots and no other frame came since), there is no filler: a job that would wait for
//! one fails instead of hanging.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use cros_codecs::codec::av1::parser::{
    FrameHeaderObu, FrameType, ObuAction, ParsedObu, Parser, SequenceHeaderObu,
};
use daedalus_codecs::av1::obu;
use daedalus_codecs::av1::rebuild::{
    self, show_existing_frame_obu, Controls, Rebuilder, ShowExistingExtras,
};
use daedalus_codecs::pod;
use daedalus_codecs::uapi::{
    v4l2_ctrl_av1_film_grain, v4l2_ctrl_av1_frame, v4l2_ctrl_av1_sequence,
    v4l2_ctrl_av1_tile_group_entry, V4L2_AV1_FILM_GRAIN_FLAG_APPLY_GRAIN,
    V4L2_AV1_SEQUENCE_FLAG_MONO_CHROME, V4L2_AV1_SEQUENCE_FLAG_SUBSAMPLING_X,
    V4L2_AV1_SEQUENCE_FLAG_SUBSAMPLING_Y, V4L2_CID_STATELESS_AV1_FILM_GRAIN,
    V4L2_CID_STATELESS_AV1_FRAME, V4L2_CID_STATELESS_AV1_SEQUENCE,
    V4L2_CID_STATELESS_AV1_TILE_GROUP_ENTRY,
};
use daedalus_proto::formats::Codec;
use daedalus_proto::wire::{Controls as WireControls, Job};
use ffmpeg_next as ffmpeg;
use ffmpeg_next::{codec, frame, Dictionary};

use super::pipeline::{FramePipeline, Switch};
use super::{Bitstream, DecoderConfig, Finished, JobIo, JobOutcome};
use crate::avbuf::{OutputBuffer, PacketSender};
use crate::dump::{DumpDir, PacketDump};
use crate::error::JobError;
use crate::sys::DMA_BUF_SYNC_READ;

/// What a request's OUTPUT buffer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufferKind {
    /// Full OBUs (with the frame header), decoded as they are.
    FullObus,
    /// Only tile-group payloads: the OBUs are rebuilt from the controls.
    TilePayloads,
}

/// The AV1 controls of one request, read from the raw payloads.
#[derive(Default)]
pub struct Av1Controls {
    /// `V4L2_CID_STATELESS_AV1_SEQUENCE`.
    pub sequence: Option<v4l2_ctrl_av1_sequence>,
    /// `V4L2_CID_STATELESS_AV1_FRAME`.
    pub frame: Option<v4l2_ctrl_av1_frame>,
    /// `V4L2_CID_STATELESS_AV1_FILM_GRAIN`.
    pub film_grain: Option<v4l2_ctrl_av1_film_grain>,
    /// `V4L2_CID_STATELESS_AV1_TILE_GROUP_ENTRY` (reused between requests).
    pub tiles: Vec<v4l2_ctrl_av1_tile_group_entry>,
    /// The OUTPUT buffer's timestamp (`v4l2_timeval_to_ns()`), what clients put in the FRAME
    /// control's `reference_frame_ts[]` for the slots this request refreshes.
    pub timestamp_ns: u64,
}

impl Av1Controls {
    /// Reads the AV1 controls of a request into `self` (tiles buffer reused).
    pub fn read(&mut self, c: &WireControls<'_>) {
        self.sequence = c
            .get(V4L2_CID_STATELESS_AV1_SEQUENCE)
            .and_then(|c| pod::read(c.payload));
        self.frame = c
            .get(V4L2_CID_STATELESS_AV1_FRAME)
            .and_then(|c| pod::read(c.payload));
        self.film_grain = c
            .get(V4L2_CID_STATELESS_AV1_FILM_GRAIN)
            .and_then(|c| pod::read(c.payload));
        match c.get(V4L2_CID_STATELESS_AV1_TILE_GROUP_ENTRY) {
            Some(t) => pod::read_array(t.payload, &mut self.tiles),
            None => self.tiles.clear(),
        }
    }
}

/// The outcome of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// How the buffer was used.
    pub kind: BufferKind,
    /// The picture came through a synthetic `show_existing_frame`.
    pub hidden: bool,
    /// There is a picture ([`Av1Decoder::picture`]); false only for a hidden frame that
    /// refreshes no slot (nobody can ever show it).
    pub picture: bool,
}

/// The frame facts the daemon needs, from the bitstream or the controls.
#[derive(Clone, Copy, Debug, Default)]
struct FrameFacts {
    show_existing: Option<u8>,
    key: bool,
    shown: bool,
    refresh: u8,
    apply_grain: bool,
    extras: ShowExistingExtras,
}

/// What the daemon remembers of a reference slot, to follow client-side `show_existing_frame`
/// of key frames.
#[derive(Clone, Copy, Debug, Default)]
struct SlotInfo {
    /// Timestamp of the request whose frame is in the slot (0: none).
    timestamp_ns: u64,
    /// The frame is a key frame.
    key: bool,
    /// Its `current_frame_id` (frame ids present only).
    frame_id: u32,
}

/// Minimal OBU-chain scan (5.3): validity, whether a frame header is in it, where the sequence
/// header is, and whether a byte range lies inside a tile-carrying OBU.
struct ObuScan {
    valid: bool,
    has_frame_header: bool,
    seq: Option<std::ops::Range<usize>>,
}

/// Walks the OBUs of `data`; `tiles` (if any) must lie inside tile group / frame OBU payloads.
fn scan_obus(data: &[u8], tiles: &[v4l2_ctrl_av1_tile_group_entry]) -> ObuScan {
    let mut s = ObuScan {
        valid: false,
        has_frame_header: false,
        seq: None,
    };
    let Ok(obus) = obu::split_section5(data) else {
        return s;
    };
    let mut tile_ranges = Vec::with_capacity(obus.len());
    for o in &obus {
        match o.obu_type {
            obu::OBU_SEQUENCE_HEADER => s.seq = Some(o.start..o.end),
            obu::OBU_FRAME_HEADER | obu::OBU_REDUNDANT_FRAME_HEADER => s.has_frame_header = true,
            obu::OBU_FRAME => {
                s.has_frame_header = true;
                tile_ranges.push(o.payload..o.end);
            }
            obu::OBU_TILE_GROUP => tile_ranges.push(o.payload..o.end),
            0 | 9..=14 => return s, // reserved types
            _ => {}
        }
    }
    s.valid = tiles.iter().all(|t| {
        let start = t.tile_offset as usize;
        let end = start.saturating_add(t.tile_size as usize);
        tile_ranges.iter().any(|r| start >= r.start && end <= r.end)
    });
    s
}

/// FFmpeg's libdav1d decoder of one context, plus what the AV1 requests need around it.
pub struct Av1Decoder {
    dec: ffmpeg::decoder::Video,
    threads: usize,
    frame: frame::Video,
    spare: frame::Video,
    pts: i64,
    parser: Parser,
    rebuilder: Rebuilder,
    packet: Vec<u8>,
    seq_obu: Vec<u8>,
    /// libdav1d's current sequence header is a rebuilt one (a full-OBU frame was rebuilt to
    /// follow the FILM_GRAIN control): the stream's own sequence header differs from it in
    /// bytes (timing / decoder model info, color description), and libdav1d would take it
    /// as a new sequence and drop every reference, so later full-OBU frames are rebuilt too
    /// until a shown key frame starts over.
    rebuilt_sequence: bool,
    grain_mismatch_logged: bool,
    slots: [SlotInfo; 8],
    timestamp_ns: u64,
    show: Vec<u8>,
    sender: PacketSender,
    /// The controls of the job at hand (kept: the tile entries' buffer is reused).
    job_controls: Av1Controls,
    dump_dir: Option<&'static DumpDir>,
    /// The frame-threaded decoder, opened when first needed.
    pipe: Option<FramePipeline>,
    /// When jobs go to the pipeline (and the packets since the key frame).
    switch: Switch,
    /// The request at hand goes to the pipeline: every packet is sent there.
    offering: bool,
    /// The number of the last packet sent into the pipeline.
    piped: i64,
    /// The pipeline was entered at a key frame (flushed, nothing replayed): its next packet
    /// gets the sequence header in front.
    pipe_fresh: bool,
    /// The last frame's headers were parsed (or rebuilt from the controls), not guessed from
    /// the FRAME control.
    understood: bool,
    /// Every frame since the last shown key frame was understood: `slots` are what the
    /// decoder holds (a guessed frame may have refreshed others, or carry a frame id the
    /// parser could not read), so a `show_existing_frame` filler can be written.
    slots_known: bool,
    /// A frame other than a key frame was understood since the last shown key frame, and the
    /// slots are known: the stream is one the parser reads, the pipeline may be entered (a
    /// stream whose inter frames the parser cannot read could not be pushed on).
    inter_understood: bool,
}

// SAFETY: FFmpeg codec contexts may move between threads as long as they are not used
// concurrently (`&mut self` only); the parser's `Rc`s are owned by this value alone and never
// shared outside it.
unsafe impl Send for Av1Decoder {}

/// Copy buffer allocated up front (grown when a larger packet comes).
const INITIAL_PACKET_SIZE: usize = 256 * 1024;

pub(crate) fn open_libdav1d(threads: usize) -> Result<ffmpeg::decoder::Video, JobError> {
    open_libdav1d_with(threads, true)
}

/// libdav1d with `threads` threads, with a frame delay of 1 (`low_delay`) or libdav1d's
/// default, which grows with the thread count (its frame threading: the pipeline's).
fn open_libdav1d_with(threads: usize, low_delay: bool) -> Result<ffmpeg::decoder::Video, JobError> {
    let codec = ffmpeg::decoder::find_by_name("libdav1d")
        .ok_or(JobError::Internal("FFmpeg has no libdav1d decoder"))?;
    let mut ctx = codec::Context::new_with_codec(codec);
    let mut opts = Dictionary::new();
    if low_delay {
        // FFmpeg 5.1's wrapper has no `max_frame_delay` option: it sets libdav1d's
        // max_frame_delay to 1 when AV_CODEC_FLAG_LOW_DELAY is set (otherwise libdav1d's
        // default grows the delay with the thread count, and a picture would come out
        // requests later). Newer FFmpeg has the option too; both are set.
        ctx.set_flags(codec::Flags::LOW_DELAY);
        opts.set("max_frame_delay", "1");
    }
    opts.set("threads", &threads.to_string());
    ctx.decoder()
        .open_as_with(codec, opts)
        .and_then(|o| o.video())
        .map_err(JobError::Ffmpeg)
}

impl Av1Decoder {
    /// Opens a decoder.
    pub fn new(config: &DecoderConfig) -> Result<Av1Decoder, JobError> {
        Ok(Av1Decoder {
            dec: open_libdav1d(config.threads)?,
            threads: config.threads,
            frame: frame::Video::empty(),
            spare: frame::Video::empty(),
            pts: 0,
            parser: Parser::default(),
            rebuilder: Rebuilder::new(),
            packet: Vec::new(),
            seq_obu: Vec::new(),
            rebuilt_sequence: false,
            grain_mismatch_logged: false,
            slots: [SlotInfo::default(); 8],
            timestamp_ns: 0,
            show: Vec::with_capacity(16),
            sender: PacketSender::new(
                INITIAL_PACKET_SIZE,
                PacketDump::create(config.dump_dir, Codec::Av1),
            )?,
            job_controls: Av1Controls::default(),
            dump_dir: config.dump_dir,
            pipe: None,
            switch: Switch::new(super::thread_count(config.threads)),
            offering: false,
            piped: 0,
            pipe_fresh: false,
            understood: true,
            slots_known: false,
            inter_understood: false,
        })
    }

    /// The picture of the last [`Av1Decoder::decode`] that returned one.
    pub fn picture(&self) -> &frame::Video {
        &self.frame
    }

    /// The last packet given to libdav1d for a request (the buffer as it is, or the rebuilt
    /// OBUs): for diagnostics.
    pub fn last_packet(&self) -> &[u8] {
        &self.packet
    }

    /// Decodes one request: `data` is the OUTPUT buffer's bitstream.
    pub fn decode(&mut self, data: &[u8], c: &Av1Controls) -> Result<Decoded, JobError> {
        if data.is_empty() {
            return Err(JobError::Corrupt("empty bitstream"));
        }
        if let Some(s) = &c.sequence {
            check_sequence_control(s)?;
        }
        self.timestamp_ns = c.timestamp_ns;
        if let Some(f) = &c.frame {
            self.follow_client_show_existing_key(&f.reference_frame_ts)?;
        }
        let scan = scan_obus(data, &c.tiles);
        let full = scan.valid && scan.has_frame_header;
        let facts = if full {
            if let Some(r) = &scan.seq {
                self.seq_obu.clear();
                self.seq_obu.extend_from_slice(&data[r.clone()]);
            }
            self.understood = true;
            let f = match self.parse_full(data) {
                Ok(f) => f,
                Err(JobError::Unsupported(w)) => return Err(JobError::Unsupported(w)),
                // cros-codecs cannot parse everything libdav1d decodes (e.g. 32-bit decoder
                // model fields): decode anyway, taking the frame facts from the FRAME control
                // (or assuming a shown frame, so a missing picture is an error, never stale).
                Err(_) => {
                    self.understood = false;
                    facts_from_control(c.frame.as_ref())
                }
            };
            let control_grain = c
                .film_grain
                .map(|g| u32::from(g.flags) & V4L2_AV1_FILM_GRAIN_FLAG_APPLY_GRAIN != 0);
            let can_rebuild = c.sequence.is_some() && c.frame.is_some() && !c.tiles.is_empty();
            let overridden = control_grain.is_some_and(|want| want != f.apply_grain);
            if self.rebuilt_sequence && f.key && f.shown && !overridden {
                // A shown key frame refreshes every slot: libdav1d may start the stream's
                // sequence over.
                self.rebuilt_sequence = false;
            }
            if self.rebuilt_sequence && can_rebuild && f.show_existing.is_none() {
                return self.decode_rebuilt(data, c, BufferKind::FullObus);
            }
            match control_grain {
                Some(want) if overridden && f.show_existing.is_none() => {
                    if can_rebuild {
                        self.rebuilt_sequence = true;
                        return self.decode_rebuilt(data, c, BufferKind::FullObus);
                    }
                    if !self.grain_mismatch_logged {
                        log::info!(
                            "AV1: FILM_GRAIN control says apply_grain={want}, the bitstream \
                             {}; without FRAME/SEQUENCE/TILE_GROUP_ENTRY controls the \
                             bitstream is followed",
                            f.apply_grain
                        );
                        self.grain_mismatch_logged = true;
                    }
                }
                _ => {}
            }
            f
        } else {
            return self.decode_rebuilt(data, c, BufferKind::TilePayloads);
        };
        self.packet.clear();
        self.packet.extend_from_slice(data);
        if let Some(f) = &c.frame {
            if facts.show_existing.is_none() {
                self.rebuilder.commit(f);
            }
        }
        if let (Some(slot), true) = (facts.show_existing, facts.key) {
            self.rebuilder
                .slots_mut()
                .show_existing_key(usize::from(slot));
        }
        self.finish(facts, BufferKind::FullObus)
    }

    fn decode_rebuilt(
        &mut self,
        data: &[u8],
        c: &Av1Controls,
        kind: BufferKind,
    ) -> Result<Decoded, JobError> {
        let (Some(seq), Some(frame)) = (&c.sequence, &c.frame) else {
            return Err(JobError::Corrupt(
                "AV1 buffer is not full OBUs and the SEQUENCE / FRAME controls are missing",
            ));
        };
        // The frame is what the controls say.
        self.understood = true;
        let controls = Controls {
            sequence: seq,
            frame,
            film_grain: c.film_grain.as_ref(),
            tiles: &c.tiles,
        };
        self.packet.clear();
        let r = self
            .rebuilder
            .rebuild(&controls, data, &mut self.packet)
            .map_err(|e| {
                log::warn!("AV1 controls: {e}");
                JobError::Corrupt("AV1 controls do not describe a valid frame")
            })?;
        // The sequence header is the packet's first OBU (for a hidden key frame's scratch
        // decoder).
        self.seq_obu.clear();
        let mut seq_only = Vec::new();
        if rebuild::sequence_header_obu(seq, &mut seq_only).is_ok() {
            self.seq_obu.extend_from_slice(&seq_only);
        }
        self.rebuilder.commit(frame);
        let facts = FrameFacts {
            show_existing: None,
            key: frame.frame_type == 0,
            shown: r.show_frame,
            refresh: r.refresh_frame_flags,
            apply_grain: false,
            extras: ShowExistingExtras::default(),
        };
        self.finish(facts, kind)
    }

    /// Sends the packet in `self.packet`, and gets its picture (through a synthetic
    /// `show_existing_frame` for a hidden frame).
    fn finish(&mut self, facts: FrameFacts, kind: BufferKind) -> Result<Decoded, JobError> {
        match facts.show_existing {
            Some(slot) if facts.key => self.slots = [self.slots[usize::from(slot) & 7]; 8],
            Some(_) => {}
            None => {
                let info = SlotInfo {
                    timestamp_ns: self.timestamp_ns,
                    key: facts.key,
                    frame_id: facts.extras.frame_id.map_or(0, |(_, id)| id),
                };
                for (i, s) in self.slots.iter_mut().enumerate() {
                    if facts.refresh & (1 << i) != 0 {
                        *s = info;
                    }
                }
            }
        }
        let mut decoded = Decoded {
            kind,
            hidden: false,
            picture: false,
        };
        let packet = std::mem::take(&mut self.packet);
        // A shown key frame refreshes every slot: the history starts again there.
        let restart = facts.key && facts.shown && facts.show_existing.is_none();
        if !self.understood {
            self.slots_known = false;
            self.inter_understood = false;
        } else if restart {
            self.slots_known = true;
            self.inter_understood = false;
        } else if !facts.key && self.slots_known {
            self.inter_understood = true;
        }
        let sent = self.send_frame(&packet, restart);
        self.packet = packet;
        if self.offering {
            sent?;
            return self.finish_offered(facts, decoded);
        }
        if sent? {
            decoded.picture = true;
            return Ok(decoded);
        }
        if facts.shown || facts.show_existing.is_some() {
            return Err(JobError::Corrupt(
                "the decoder produced no picture for a shown AV1 frame",
            ));
        }
        let Some(slot) = (facts.refresh != 0).then(|| facts.refresh.trailing_zeros() as u8) else {
            log::debug!("hidden AV1 frame that refreshes no slot: no picture");
            return Ok(decoded);
        };
        let mut show = Vec::with_capacity(8);
        show_existing_frame_obu(slot, facts.extras, &mut show)
            .map_err(|_| JobError::Internal("show_existing_frame header"))?;
        if facts.key {
            self.show_hidden_key(&show)?;
        } else if !self.send_receive(&show)? {
            return Err(JobError::Corrupt(
                "the decoder did not output the hidden AV1 frame",
            ));
        }
        decoded.hidden = true;
        decoded.picture = true;
        Ok(decoded)
    }

    /// Decodes the hidden key frame in `self.packet` with a scratch decoder (the sequence
    /// header, the key frame, then `show`, its `show_existing_frame`) into `self.frame`: the
    /// real decoder must not run the key frame refresh process that showing it would.
    fn show_hidden_key(&mut self, show: &[u8]) -> Result<(), JobError> {
        let mut scratch = open_libdav1d(self.threads)?;
        let mut pkt = Vec::with_capacity(self.seq_obu.len() + self.packet.len() + show.len());
        pkt.extend_from_slice(&self.seq_obu);
        pkt.extend_from_slice(&self.packet);
        pkt.extend_from_slice(show);
        std::mem::swap(&mut self.dec, &mut scratch);
        // Not dumped: the dump is what the context's own decoder was given.
        self.sender.pause_dump(true);
        let r = self.send_receive_low_delay(&pkt);
        self.sender.pause_dump(false);
        std::mem::swap(&mut self.dec, &mut scratch);
        match r? {
            true => Ok(()),
            false => Err(JobError::Corrupt("the hidden AV1 key frame did not decode")),
        }
    }

    /// A client that handles `show_existing_frame` itself (GStreamer, `daedalus decode`) never
    /// sends the request of a shown *key* frame, yet the specification reloads every slot
    /// with it (7.21) and later frames are coded against that. The client's slots show it:
    /// every `reference_frame_ts[]` is then the timestamp of that key frame. When they are,
    /// and ours are not, the key frame is shown here (output discarded) so libdav1d, the
    /// header parser and the rebuilder's slots follow.
    fn follow_client_show_existing_key(&mut self, ts: &[u64; 8]) -> Result<(), JobError> {
        let t = ts[0];
        if t == 0 || ts.iter().any(|&x| x != t) || self.slots.iter().all(|s| s.timestamp_ns == t) {
            return Ok(());
        }
        let Some(slot) = self.slots.iter().position(|s| s.timestamp_ns == t && s.key) else {
            return Ok(());
        };
        log::debug!("AV1: the client showed the key frame of slot {slot}: slots reloaded");
        let seq = self.parser.sequence_header.clone();
        let extras = match &seq {
            Some(seq) => show_existing_extras(seq, self.slots[slot].frame_id),
            // Rebuilt sequence headers have neither timing info nor frame ids.
            None => ShowExistingExtras::default(),
        };
        let mut show = std::mem::take(&mut self.show);
        show.clear();
        show_existing_frame_obu(slot as u8, extras, &mut show)
            .map_err(|_| JobError::Internal("show_existing_frame header"))?;
        if seq.is_some() {
            // Full-OBU requests are parsed: the parser's slots must follow too.
            let parser = &mut self.parser;
            let r = catch_unwind(AssertUnwindSafe(|| parse_obus(parser, &show)));
            if !matches!(r, Ok(Ok(_))) {
                log::warn!("AV1: the reloaded key frame does not parse");
            }
        }
        let r = self.send_receive(&show);
        self.show = show;
        r?;
        self.rebuilder.slots_mut().show_existing_key(slot);
        self.slots = [self.slots[slot]; 8];
        Ok(())
    }

    /// Sends a request's frame (`restart`: a shown key frame) where the request goes, kept in
    /// the history; true when its picture came out (low delay only). A decoder flushed since
    /// its last packet has no sequence header: it gets the latest one in front.
    fn send_frame(&mut self, data: &[u8], restart: bool) -> Result<bool, JobError> {
        let seq = std::mem::take(&mut self.seq_obu);
        // The history starts with a key frame: with the sequence header, it replays into any
        // decoder.
        self.switch
            .record(restart, &[if restart { &seq } else { &[] }, data]);
        let fresh = if self.offering {
            std::mem::take(&mut self.pipe_fresh)
        } else if self.switch.take_low_delay_stale() {
            self.dec.flush();
            true
        } else {
            false
        };
        let prefix: &[u8] = if fresh { &seq } else { &[] };
        let r = if self.offering {
            match self.pipe.as_mut() {
                Some(pipe) => pipe.send_copy(&[prefix, data]).map(|pts| {
                    self.piped = pts;
                    false
                }),
                None => Err(JobError::Internal("AV1 pipeline missing")),
            }
        } else if prefix.is_empty() {
            self.send_receive_low_delay(data)
        } else {
            let mut pkt = Vec::with_capacity(prefix.len() + data.len());
            pkt.extend_from_slice(prefix);
            pkt.extend_from_slice(data);
            self.send_receive_low_delay(&pkt)
        };
        self.seq_obu = seq;
        r
    }

    /// Sends a packet that is not a request's frame (a `show_existing_frame`) where the
    /// request goes, kept in the history; true when a picture came out (low delay only).
    fn send_receive(&mut self, data: &[u8]) -> Result<bool, JobError> {
        self.switch.record(false, &[data]);
        if self.offering {
            self.piped = self.pipe_mut()?.send_copy(&[data])?;
            return Ok(false);
        }
        self.send_receive_low_delay(data)
    }

    fn send_receive_low_delay(&mut self, data: &[u8]) -> Result<bool, JobError> {
        if self.switch.take_low_delay_stale() {
            self.dec.flush();
        }
        self.pts += 1;
        let len = self.sender.fill(&[data])?;
        self.sender.send_filled(&mut self.dec, len, self.pts)?;
        super::receive_picture(&mut self.dec, &mut self.frame, &mut self.spare, self.pts)
    }

    /// [`Self::finish`] for a request in the pipeline, its frame sent: says where its picture
    /// will come from.
    fn finish_offered(
        &mut self,
        facts: FrameFacts,
        mut decoded: Decoded,
    ) -> Result<Decoded, JobError> {
        let outcome = JobOutcome {
            bitstream: Bitstream::Copied,
            hidden: false,
        };
        if facts.shown || facts.show_existing.is_some() {
            decoded.picture = true;
            let pts = self.piped;
            self.pipe_mut()?.push_job(Some(pts), outcome);
            return Ok(decoded);
        }
        let Some(slot) = (facts.refresh != 0).then(|| facts.refresh.trailing_zeros() as u8) else {
            self.pipe_mut()?.push_job(None, outcome);
            return Ok(decoded);
        };
        let outcome = JobOutcome {
            hidden: true,
            ..outcome
        };
        decoded.hidden = true;
        decoded.picture = true;
        let mut show = Vec::with_capacity(8);
        show_existing_frame_obu(slot, facts.extras, &mut show)
            .map_err(|_| JobError::Internal("show_existing_frame header"))?;
        if facts.key {
            // Showing it in the pipeline would reload every slot.
            self.show_hidden_key(&show)?;
            let Some(pipe) = self.pipe.as_mut() else {
                return Err(JobError::Internal("AV1 pipeline missing"));
            };
            pipe.push_ready(&self.frame, outcome);
            return Ok(decoded);
        }
        self.send_receive(&show)?;
        let pts = self.piped;
        self.pipe_mut()?.push_job(Some(pts), outcome);
        Ok(decoded)
    }

    fn pipe_mut(&mut self) -> Result<&mut FramePipeline, JobError> {
        self.pipe
            .as_mut()
            .ok_or(JobError::Internal("AV1 pipeline missing"))
    }

    /// The filler of the pipeline after the packets sent so far: a `show_existing_frame` of a
    /// slot holding a frame that is not a key frame (showing a key frame reloads every slot
    /// with it), or of the key frame every slot holds (then reloading them changes nothing);
    /// none otherwise (the pipeline cannot be pushed on: its job fails rather than wait), and
    /// none while the slots are not known for sure ([`Self::slots_known`]).
    fn filler(&self, out: &mut Vec<u8>) {
        out.clear();
        if !self.slots_known {
            return;
        }
        let first = self.slots[0];
        let slot = match self
            .slots
            .iter()
            .position(|s| s.timestamp_ns != 0 && !s.key)
        {
            Some(i) => i,
            None if first.timestamp_ns != 0
                && self
                    .slots
                    .iter()
                    .all(|s| s.timestamp_ns == first.timestamp_ns) =>
            {
                0
            }
            None => return,
        };
        let extras = match &self.parser.sequence_header {
            Some(seq) => show_existing_extras(seq, self.slots[slot].frame_id),
            None => ShowExistingExtras::default(),
        };
        if show_existing_frame_obu(slot as u8, extras, out).is_err() {
            out.clear();
        }
    }

    /// Makes the frame threads' decoder in `slot` ready (opened with `threads` threads if
    /// needed): flushed, then given the packets `replay`.
    fn enter_pipeline(
        slot: &mut Option<FramePipeline>,
        threads: usize,
        dump_dir: Option<&'static DumpDir>,
        replay: &[Vec<u8>],
    ) -> Result<(), JobError> {
        let open = || {
            let dec = open_libdav1d_with(threads, false)?;
            let sender = PacketSender::new(
                INITIAL_PACKET_SIZE,
                PacketDump::create(dump_dir, Codec::Av1),
            )?;
            log::debug!("AV1 pipeline open: libdav1d with {threads} threads, default frame delay");
            Ok(FramePipeline::new(dec, sender, threads))
        };
        FramePipeline::enter(slot, open, replay).map(|_| ())
    }

    /// [`super::Decoder::offer`].
    fn offer_request(
        &mut self,
        job: &Job<'_>,
        out: &OutputBuffer,
        ahead: usize,
    ) -> Result<bool, JobError> {
        if !self.switch.considers(ahead) {
            return Ok(false);
        }
        let mut controls = std::mem::take(&mut self.job_controls);
        controls.read(&job.controls);
        controls.timestamp_ns = job.header.timestamp_ns;
        let r = self.offer_with(job, out, &controls);
        self.job_controls = controls;
        r
    }

    fn offer_with(
        &mut self,
        job: &Job<'_>,
        out: &OutputBuffer,
        c: &Av1Controls,
    ) -> Result<bool, JobError> {
        // Routed on the FRAME control (what the request says, before anything is parsed:
        // the parsers' state must only move for a request that is decoded).
        let Some(f) = &c.frame else {
            return Ok(false);
        };
        let key = f.frame_type == 0
            && f.flags & daedalus_codecs::uapi::V4L2_AV1_FRAME_FLAG_SHOW_FRAME != 0;
        if !(self.switch.pipelined() || self.slots_known && self.inter_understood) {
            return Ok(false);
        }
        let in_flight = self.pipe.as_ref().map_or(0, FramePipeline::in_flight);
        let (slot, dump_dir) = (&mut self.pipe, self.dump_dir);
        let threads = self.switch.threads();
        let mut entered = false;
        let admitted = self.switch.admits(key, in_flight, |replay| {
            entered = replay.is_empty();
            Self::enter_pipeline(slot, threads, dump_dir, replay)
        });
        if !admitted {
            return Ok(false);
        }
        if entered {
            self.pipe_fresh = true;
        }
        let map = out.mapping();
        let range = super::bitstream_range(job, map.len())?;
        let jobs_before = self.pipe.as_ref().map_or(0, FramePipeline::in_flight);
        self.offering = true;
        let r = {
            let _access = map.cpu_access(DMA_BUF_SYNC_READ);
            self.decode(&map.bytes()[range], c)
        };
        self.offering = false;
        r?;
        let mut filler = Vec::with_capacity(16);
        self.filler(&mut filler);
        let pipe = self.pipe_mut()?;
        pipe.set_filler(&filler);
        if pipe.in_flight() != jobs_before + 1 {
            return Err(JobError::Internal("AV1 request not in the pipeline"));
        }
        Ok(true)
    }

    /// Parses the OBUs of a full-OBU buffer (cros-codecs' parser, which keeps the reference
    /// state) and returns the facts of its last frame.
    fn parse_full(&mut self, data: &[u8]) -> Result<FrameFacts, JobError> {
        let parser = &mut self.parser;
        // cros-codecs asserts on some malformed input: a panic there is a corrupt bitstream.
        let r = catch_unwind(AssertUnwindSafe(|| parse_obus(parser, data)));
        let r = match r {
            Ok(r) => r,
            Err(_) => {
                self.parser = Parser::default();
                Err("parser panicked".to_string())
            }
        };
        let (seq, fh) = r.map_err(|e| {
            log::warn!("AV1 bitstream: {e}");
            JobError::Corrupt("AV1 OBUs do not parse")
        })?;
        check_sequence(&seq)?;
        let extras = show_existing_extras(&seq, fh.current_frame_id);
        Ok(FrameFacts {
            show_existing: fh.show_existing_frame.then_some(fh.frame_to_show_map_idx),
            key: fh.frame_type == FrameType::KeyFrame,
            shown: fh.show_frame || fh.show_existing_frame,
            refresh: fh.refresh_frame_flags as u8,
            apply_grain: fh.film_grain_params.apply_grain,
            extras,
        })
    }
}

fn facts_from_control(f: Option<&v4l2_ctrl_av1_frame>) -> FrameFacts {
    match f {
        Some(f) => FrameFacts {
            show_existing: None,
            key: f.frame_type == 0,
            shown: f.flags & daedalus_codecs::uapi::V4L2_AV1_FRAME_FLAG_SHOW_FRAME != 0,
            refresh: rebuild::refresh_flags(f),
            apply_grain: false,
            extras: ShowExistingExtras::default(),
        },
        None => FrameFacts {
            shown: true,
            ..FrameFacts::default()
        },
    }
}

type Parsed = (Rc<SequenceHeaderObu>, FrameHeaderObu);

/// Parses every OBU, running the reference update per frame; returns the sequence header and
/// the last frame header (the shown one of a temporal unit, if any).
fn parse_obus(parser: &mut Parser, data: &[u8]) -> Result<Parsed, String> {
    let mut pos = 0;
    let mut last: Option<FrameHeaderObu> = None;
    let mut shown: Option<FrameHeaderObu> = None;
    while pos < data.len() {
        let obu = match parser.read_obu(&data[pos..])? {
            ObuAction::Process(obu) => obu,
            ObuAction::Drop(n) => {
                pos += n as usize;
                continue;
            }
        };
        pos += obu.bytes_used;
        let fh = match parser.parse_obu(obu)? {
            ParsedObu::FrameHeader(fh) => fh,
            ParsedObu::Frame(f) => f.header,
            _ => continue,
        };
        parser.ref_frame_update(&fh)?;
        if fh.show_frame || fh.show_existing_frame {
            shown = Some(fh);
        } else {
            last = Some(fh);
        }
    }
    let seq = parser.sequence_header.clone().ok_or("no sequence header")?;
    let fh = shown.or(last).ok_or("no frame header")?;
    Ok((seq, fh))
}

/// What a `show_existing_frame` header for a frame with id `frame_id` needs under `seq`:
/// temporal point info (decoder model timing without equal picture interval) and frame ids.
fn show_existing_extras(seq: &SequenceHeaderObu, frame_id: u32) -> ShowExistingExtras {
    ShowExistingExtras {
        presentation_time_bits: (seq.decoder_model_info_present_flag
            && !seq.timing_info.equal_picture_interval)
            .then(|| {
                seq.decoder_model_info
                    .frame_presentation_time_length_minus_1
                    + 1
            }),
        frame_id: seq.frame_id_numbers_present_flag.then(|| {
            (
                seq.additional_frame_id_length_minus_1 + seq.delta_frame_id_length_minus_2 + 3,
                frame_id,
            )
        }),
    }
}

fn check_sequence(seq: &SequenceHeaderObu) -> Result<(), JobError> {
    let cc = &seq.color_config;
    if cc.mono_chrome {
        return Err(unsupported("monochrome (4:0:0) AV1"));
    }
    if !(cc.subsampling_x && cc.subsampling_y) {
        return Err(unsupported("AV1 4:2:2 / 4:4:4"));
    }
    if cc.twelve_bit {
        return Err(unsupported("12-bit AV1"));
    }
    Ok(())
}

fn check_sequence_control(s: &v4l2_ctrl_av1_sequence) -> Result<(), JobError> {
    let flag = |f: u32| s.flags & f != 0;
    if flag(V4L2_AV1_SEQUENCE_FLAG_MONO_CHROME) {
        return Err(unsupported("monochrome (4:0:0) AV1"));
    }
    if !(flag(V4L2_AV1_SEQUENCE_FLAG_SUBSAMPLING_X) && flag(V4L2_AV1_SEQUENCE_FLAG_SUBSAMPLING_Y)) {
        return Err(unsupported("AV1 4:2:2 / 4:4:4"));
    }
    if s.bit_depth > 10 {
        return Err(unsupported("12-bit AV1"));
    }
    Ok(())
}

fn unsupported(what: &'static str) -> JobError {
    log::warn!("refusing {what}: daedalus decodes AV1 4:2:0 at 8 and 10 bits only");
    JobError::Unsupported(what)
}

impl super::Decoder for Av1Decoder {
    fn codec(&self) -> Codec {
        Codec::Av1
    }

    fn flush(&mut self) {
        self.dec.flush();
        if let Some(p) = &mut self.pipe {
            p.flush();
        }
        self.switch.flush();
        self.pipe_fresh = false;
        self.slots_known = false;
        self.inter_understood = false;
        self.parser = Parser::default();
        self.rebuilder.reset();
        self.rebuilt_sequence = false;
        self.slots = [SlotInfo::default(); 8];
    }

    fn decode_job(&mut self, io: JobIo<'_>) -> Result<JobOutcome, JobError> {
        let (job, out) = (io.job, io.out);
        let map = out.mapping();
        let range = super::bitstream_range(job, map.len())?;
        let mut controls = std::mem::take(&mut self.job_controls);
        controls.read(&job.controls);
        controls.timestamp_ns = job.header.timestamp_ns;
        let decoded = {
            let _access = map.cpu_access(DMA_BUF_SYNC_READ);
            self.decode(&map.bytes()[range], &controls)
        };
        self.job_controls = controls;
        let d = decoded?;
        if d.picture {
            // Clipped: with superres the upscaled width may exceed a stale CAPTURE format.
            io.write_picture(self.picture(), true)?;
        }
        Ok(JobOutcome {
            bitstream: Bitstream::Copied,
            hidden: d.hidden,
        })
    }

    fn offer(&mut self, job: &Job<'_>, out: &OutputBuffer, ahead: usize) -> Result<bool, JobError> {
        self.offer_request(job, out, ahead)
    }

    fn in_flight(&self) -> usize {
        self.pipe.as_ref().map_or(0, FramePipeline::in_flight)
    }

    fn finished(&mut self, push: bool) -> Option<Finished<'_>> {
        match self.pipe.as_mut()?.finished(push)? {
            // Clipped, as with low delay: with superres the upscaled width may exceed a stale
            // CAPTURE format.
            Finished::Picture(picture, _, outcome) => {
                Some(Finished::Picture(picture, true, outcome))
            }
            f => Some(f),
        }
    }
}
