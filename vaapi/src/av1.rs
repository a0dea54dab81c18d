// SPDX-License-Identifier: GPL-2.0
//! AV1: VA parameter buffers to `V4L2_CID_STATELESS_AV1_SEQUENCE`, `_FRAME`, `_FILM_GRAIN`
//! and `_TILE_GROUP_ENTRY`, with the reference state VA does not carry.
//!
//! What a VA client sends (FFmpeg 7.1 `vaapi_av1.c`, GStreamer's `vaav1dec`): one
//! `VADecPictureParameterBufferAV1` (sequence and frame header values, the surfaces in the
//! eight reference slots *before* the frame, `ref_frame_map[]`), and for each tile a
//! `VASliceParameterBufferAV1` (offset / size of the tile in the slice data buffer that
//! follows it, row, column), the slice data being the tile group's tile data only (no OBU
//! headers). FFmpeg pairs every tile's parameters with its own copy of the tile group's data;
//! identical consecutive data buffers are put in the OUTPUT buffer once.
//!
//! Mapped exactly (the values FFmpeg takes from its header parse): every frame header field
//! VA has. Derived exactly from VA's values: `frame_width_minus_1` (VA gives the upscaled
//! width: the downscaled one is `(upscaled * 8 + denom / 2) / denom`), `mi_col_starts[]` /
//! `mi_row_starts[]` (from the tile sizes in superblocks), the CDEF strengths (VA packs
//! `pri << 2 | sec`; the control's secondary strength is 4 where the bitstream codes 3),
//! `loop_restoration_size[]`, `uses_lr` / `uses_chroma_lr`, `last_active_seg_id` and
//! `seg_id_pre_skip`, the global motion flags (from the model type), `order_hints[]` (the
//! order hint of the frame in each reference's slot, remembered per surface) and
//! `skip_mode_frame[]` (5.9.22, [`daedalus_codecs::av1::rebuild::skip_mode_frames`]).
//!
//! Not in VA, and set to values that decode the same (see [`NOT_IN_VA`]): the sequence's
//! `enable_warped_motion`, `enable_ref_frame_mvs`, `enable_superres`, `enable_restoration`,
//! `separate_uv_delta_q` (set: the frame-level values, which VA has, then decide),
//! `max_frame_{width,height}_minus_1` (65535: frame sizes are always explicit),
//! `diff_uv_delta` (set iff the V deltas differ from the U ones), `render_{width,height}`
//! (the upscaled frame size; the render size only sets the aspect ratio FFmpeg reports),
//! `tile_size_bytes` (4; the tile entries give sizes), `frame_size_override_flag`,
//! `frame_refs_short_signaling` (explicit `ref_frame_idx[]` are given), `current_frame_id`,
//! `buffer_removal_time[]`, the film grain's `film_grain_params_ref_idx` (VA gives the
//! effective parameters: `update_grain` is always set), and `reference_frame_ts[]` of key
//! frames (VA names no slot for them; a key frame references nothing).
//!
//! **`refresh_frame_flags`** is not in VA either, and it decides the decoder's slot state,
//! so it is recovered exactly, one frame late: the slots frame *n* refreshed are the slots
//! whose surface in frame *n+1*'s `ref_frame_map[]` is frame *n*'s `current_frame` (a surface
//! a new frame is decoded into is in no slot before: the client frees a surface only when no
//! slot holds it). See [`Av1`] for the bookkeeping and `driver.rs` for the deferral.
//!
//! **Film grain**: with `apply_grain`, FFmpeg names two surfaces: `current_frame` (the
//! reference, without grain, which later frames name in `ref_frame_map[]`) and
//! `current_display_picture` (the picture with grain, which it displays). A V4L2 decoder
//! writes the picture with grain into the CAPTURE buffer and keeps the clean reference
//! inside, so the request's CAPTURE buffer is the display surface's, and `current_frame` is
//! only a *name*: it maps to the request's timestamp ([`Av1::reference_name`]) and holds no
//! picture (syncing it is a decoding error, see `driver.rs`).

use std::collections::HashMap;

use daedalus_client::sys::*;
use daedalus_codecs::av1::rebuild::skip_mode_frames;
use daedalus_codecs::flags;
use daedalus_proto::formats::BitDepth;

use crate::context::{element, Picture};
use crate::mapped::{Control, Mapped};
use crate::status::{Error, Result};
use crate::va;

/// The control fields VA does not carry (see the module doc), by control and field name.
pub const NOT_IN_VA: &[&str] = &[
    "sequence.flags.ENABLE_WARPED_MOTION",
    "sequence.flags.ENABLE_REF_FRAME_MVS",
    "sequence.flags.ENABLE_SUPERRES",
    "sequence.flags.ENABLE_RESTORATION",
    "sequence.flags.SEPARATE_UV_DELTA_Q",
    "sequence.max_frame_width_minus_1",
    "sequence.max_frame_height_minus_1",
    "frame.flags.FRAME_SIZE_OVERRIDE",
    "frame.flags.BUFFER_REMOVAL_TIME_PRESENT",
    "frame.flags.FRAME_REFS_SHORT_SIGNALING",
    "frame.quantization.flags.DIFF_UV_DELTA",
    "frame.render_width_minus_1",
    "frame.render_height_minus_1",
    "frame.tile_info.tile_size_bytes",
    "frame.current_frame_id",
    "frame.buffer_removal_time",
    "frame.reference_frame_ts (key frames)",
    "film_grain.film_grain_params_ref_idx",
];

/// The sequence flags VA has no value for, set (the frame-level flags decide).
pub const SEQUENCE_FLAGS_SET: u32 = V4L2_AV1_SEQUENCE_FLAG_ENABLE_WARPED_MOTION
    | V4L2_AV1_SEQUENCE_FLAG_ENABLE_SUPERRES
    | V4L2_AV1_SEQUENCE_FLAG_ENABLE_RESTORATION
    | V4L2_AV1_SEQUENCE_FLAG_SEPARATE_UV_DELTA_Q;

/// The frame flags VA has no value for (left clear).
pub const FRAME_FLAGS_UNSET: u32 = V4L2_AV1_FRAME_FLAG_FRAME_SIZE_OVERRIDE
    | V4L2_AV1_FRAME_FLAG_BUFFER_REMOVAL_TIME_PRESENT
    | V4L2_AV1_FRAME_FLAG_FRAME_REFS_SHORT_SIGNALING;

const KEY_FRAME: u32 = 0;
const INTRA_ONLY_FRAME: u32 = 2;
const SWITCH_FRAME: u32 = 3;

/// Why a picture is refused, for the log.
fn refuse(what: String) -> Error {
    log::warn!("AV1: {what}");
    Error::DECODING_ERROR
}

/// Like [`refuse`], for what the driver does not decode at all.
fn unsupported(what: String) -> Error {
    log::warn!("AV1: {what}");
    Error::UNSUPPORTED_PROFILE
}

/// One picture's VA parameters, checked, and its tiles gathered into one OUTPUT buffer.
pub struct VaPicture {
    /// The picture parameters.
    pub pic: va::VADecPictureParameterBufferAV1,
    /// The tile entries, `tile_offset` in `data`.
    pub tiles: Vec<v4l2_ctrl_av1_tile_group_entry>,
    /// The OUTPUT buffer's bytes: the tile groups' data, each once.
    pub data: Vec<u8>,
}

impl VaPicture {
    /// `frame_type` (0 key, 1 inter, 2 intra-only, 3 switch).
    pub fn frame_type(&self) -> u32 {
        // SAFETY: reading the bit fields of the union (plain integers either way).
        unsafe { self.pic.pic_info_fields.bits }.frame_type()
    }

    /// `show_frame`.
    pub fn show_frame(&self) -> bool {
        // SAFETY: as above.
        unsafe { self.pic.pic_info_fields.bits }.show_frame() != 0
    }

    /// The refresh set when the frame header fixes it (shown key frames and switch frames
    /// refresh every slot), else `None` (known at the next frame).
    pub fn known_refresh(&self) -> Option<u8> {
        let t = self.frame_type();
        (t == SWITCH_FRAME || (t == KEY_FRAME && self.show_frame())).then_some(0xff)
    }

    /// Whether `ref_frame_map[]` names the slots (FFmpeg names none for key frames).
    pub fn names_slots(&self) -> bool {
        self.frame_type() != KEY_FRAME
    }

    /// The slots whose surface is `surface` in this picture's `ref_frame_map[]`.
    pub fn slots_of(&self, surface: va::VASurfaceID) -> u8 {
        self.pic
            .ref_frame_map
            .iter()
            .enumerate()
            .filter(|(_, &s)| s == surface && s != va::VA_INVALID_SURFACE)
            .fold(0, |m, (i, _)| m | (1 << i))
    }
}

/// Reads and checks the VA buffers of `picture`.
pub fn va_picture(picture: &Picture) -> Result<VaPicture> {
    let pic: va::VADecPictureParameterBufferAV1 =
        picture.param(va::VAPictureParameterBufferType)?;
    // Slice parameters pair with the slice data buffer that follows them.
    let mut pending: Vec<va::VASliceParameterBufferAV1> = Vec::new();
    let mut tiles = Vec::new();
    let mut data: Vec<u8> = Vec::new();
    let mut last: Option<(usize, usize)> = None; // the previous data buffer, in `data`
    for b in &picture.buffers {
        if b.buf_type == va::VASliceParameterBufferType {
            for i in 0..b.num_elements as usize {
                pending.push(element(b, i).ok_or_else(|| {
                    log::warn!(
                        "AV1: slice parameter buffer of {}-byte elements, expected {}",
                        b.element_size,
                        std::mem::size_of::<va::VASliceParameterBufferAV1>()
                    );
                    Error::INVALID_PARAMETER
                })?);
            }
            continue;
        }
        if b.buf_type != va::VASliceDataBufferType {
            continue;
        }
        if pending.is_empty() {
            return Err(refuse("slice data without slice parameters".into()));
        }
        let bytes = &b.bytes;
        let base = match last {
            Some((start, len)) if len == bytes.len() && data[start..start + len] == bytes[..] => {
                start
            }
            _ => {
                let start = data.len();
                data.extend_from_slice(bytes);
                last = Some((start, bytes.len()));
                start
            }
        };
        for s in pending.drain(..) {
            let end = u64::from(s.slice_data_offset) + u64::from(s.slice_data_size);
            if s.slice_data_size == 0 || end > bytes.len() as u64 {
                return Err(refuse(format!(
                    "tile ({}, {}) at {}+{} outside its {}-byte slice data",
                    s.tile_row,
                    s.tile_column,
                    s.slice_data_offset,
                    s.slice_data_size,
                    bytes.len()
                )));
            }
            if s.slice_data_flag != va::VA_SLICE_DATA_FLAG_ALL {
                return Err(refuse("partial slice data".into()));
            }
            tiles.push(v4l2_ctrl_av1_tile_group_entry {
                tile_offset: (base as u64 + u64::from(s.slice_data_offset))
                    .try_into()
                    .map_err(|_| refuse("slice data beyond 4 GiB".into()))?,
                tile_size: s.slice_data_size,
                tile_row: s.tile_row.into(),
                tile_col: s.tile_column.into(),
            });
        }
    }
    if !pending.is_empty() {
        return Err(refuse("slice parameters without slice data".into()));
    }
    // SAFETY: reading the bit fields of the unions (plain integers either way).
    let p = unsafe { pic.pic_info_fields.bits };
    if p.large_scale_tile() != 0 || pic.anchor_frames_num != 0 {
        return Err(unsupported(
            "large-scale tile decoding (anchor frames) is not supported".into(),
        ));
    }
    let (cols, rows) = (u32::from(pic.tile_cols), u32::from(pic.tile_rows));
    if cols == 0
        || rows == 0
        || cols > V4L2_AV1_MAX_TILE_COLS
        || rows > V4L2_AV1_MAX_TILE_ROWS
        || cols * rows > V4L2_AV1_MAX_TILE_COUNT
    {
        return Err(refuse(format!("{cols}x{rows} tiles")));
    }
    if tiles.len() as u32 != cols * rows {
        return Err(refuse(format!(
            "{} tiles in the slice parameters, the frame has {cols}x{rows}",
            tiles.len()
        )));
    }
    let mut seen = vec![false; (cols * rows) as usize];
    for t in &tiles {
        if t.tile_row >= rows || t.tile_col >= cols {
            return Err(refuse(format!(
                "tile ({}, {}) outside the {cols}x{rows} tiles",
                t.tile_row, t.tile_col
            )));
        }
        let i = (t.tile_row * cols + t.tile_col) as usize;
        if std::mem::replace(&mut seen[i], true) {
            return Err(refuse(format!(
                "tile ({}, {}) given twice",
                t.tile_row, t.tile_col
            )));
        }
    }
    Ok(VaPicture { pic, tiles, data })
}

/// A frame mapped to its controls, but for `refresh_frame_flags` (decided when it is queued).
#[derive(Clone)]
pub struct Frame {
    /// `V4L2_CID_STATELESS_AV1_SEQUENCE`.
    pub sequence: v4l2_ctrl_av1_sequence,
    /// `V4L2_CID_STATELESS_AV1_FRAME` (`refresh_frame_flags` 0 until known).
    pub frame: v4l2_ctrl_av1_frame,
    /// `V4L2_CID_STATELESS_AV1_FILM_GRAIN`.
    pub film_grain: v4l2_ctrl_av1_film_grain,
    /// `V4L2_CID_STATELESS_AV1_TILE_GROUP_ENTRY`.
    pub tiles: Vec<v4l2_ctrl_av1_tile_group_entry>,
    /// The OUTPUT buffer's bytes.
    pub data: Vec<u8>,
    /// The surface whose CAPTURE buffer gets the picture (`current_display_picture`).
    pub target: va::VASurfaceID,
    /// The surface later frames name it by (`current_frame`; the target without grain).
    pub current: va::VASurfaceID,
    /// The refresh set, when the frame header fixes it.
    pub known_refresh: Option<u8>,
    /// Bit depth.
    pub depth: BitDepth,
}

impl Frame {
    /// The frame's request with `refresh` as its `refresh_frame_flags`.
    ///
    /// A hidden frame queued with no slot to refresh would give the daemon (libdav1d, which
    /// outputs a hidden frame only through `show_existing_frame` of a slot) no picture: such
    /// a request is marked shown (`SHOW_FRAME` set, `SHOWABLE_FRAME` cleared). For an inter
    /// or intra-only frame with refresh 0 that changes nothing else in the frame header (the
    /// film grain parameters are coded for shown or showable frames alike), and the picture
    /// is the one `show_existing_frame` would output. A hidden key frame cannot be marked
    /// shown (a shown key frame refreshes every slot): it stays hidden.
    pub fn mapped(&self, refresh: u8) -> Mapped {
        let frame = self.frame_control(refresh);
        Mapped {
            width: self.frame.upscaled_width,
            height: self.frame.frame_height_minus_1 + 1,
            depth: self.depth,
            data: vec![self.data.clone()],
            controls: vec![
                Control::new(V4L2_CID_STATELESS_AV1_SEQUENCE, self.sequence).stream(),
                Control::new(V4L2_CID_STATELESS_AV1_FRAME, frame),
                Control::new(V4L2_CID_STATELESS_AV1_FILM_GRAIN, self.film_grain),
                Control::array(V4L2_CID_STATELESS_AV1_TILE_GROUP_ENTRY, self.tiles.clone()),
            ],
            menus: Vec::new(),
            starts_stream: self.is_shown_key_frame(),
        }
    }

    /// The `V4L2_CID_STATELESS_AV1_FRAME` of [`Frame::mapped`].
    pub fn frame_control(&self, refresh: u8) -> v4l2_ctrl_av1_frame {
        let mut frame = self.frame;
        frame.refresh_frame_flags = refresh;
        if refresh == 0
            && frame.flags & V4L2_AV1_FRAME_FLAG_SHOW_FRAME == 0
            && frame.frame_type != KEY_FRAME
        {
            frame.flags |= V4L2_AV1_FRAME_FLAG_SHOW_FRAME;
            frame.flags &= !V4L2_AV1_FRAME_FLAG_SHOWABLE_FRAME;
        }
        frame
    }

    /// Whether it is shown (a `SHOW_FRAME` frame).
    pub fn shown(&self) -> bool {
        self.frame.flags & V4L2_AV1_FRAME_FLAG_SHOW_FRAME != 0
    }

    /// Whether it is a shown key frame (it refreshes every slot: the stream starts over).
    pub fn is_shown_key_frame(&self) -> bool {
        self.frame.frame_type == KEY_FRAME && self.shown()
    }
}

/// A frame whose refresh set is not known yet.
pub struct Awaiting {
    /// The frame.
    pub frame: Frame,
    /// Set once it was queued before its refresh was known (with refresh 0, because the
    /// client needed its picture): the request's timestamp (ns), for the replay.
    pub queued_as: Option<u64>,
}

/// What to queue, in this order.
pub struct Submit {
    /// The frame.
    pub frame: Frame,
    /// Its `refresh_frame_flags`.
    pub refresh: u8,
    /// A replay: the frame was queued already (with refresh 0) under this timestamp (ns);
    /// queue it again with `refresh` into a scratch CAPTURE buffer under the same timestamp,
    /// so that the decoder's slots become right.
    pub replay_of: Option<u64>,
}

/// The AV1 state of a decode context.
#[derive(Default)]
pub struct Av1 {
    /// The order hint of the frame each `current_frame` surface names.
    hints: HashMap<va::VASurfaceID, u32>,
    /// `current_frame` surfaces of film grain frames (names only) → their request's timestamp.
    names: HashMap<va::VASurfaceID, u64>,
    /// Frames whose refresh set is not known yet, in decode order (the last frame; a run of
    /// hidden key frames and the frame before them, whose `ref_frame_map[]` name no slot).
    pub awaiting: Vec<Awaiting>,
    /// Frames queued before their refresh set was known.
    pub early: u64,
    /// Of those, the ones queued again because they did refresh slots.
    pub replays: u64,
    /// Frames mapped.
    pub frames: u64,
}

impl Av1 {
    /// A context's state before its first frame.
    pub fn new() -> Av1 {
        Av1::default()
    }

    /// The timestamp a film grain frame's `current_frame` surface names (it holds no picture).
    pub fn reference_name(&self, surface: va::VASurfaceID) -> Option<u64> {
        self.names.get(&surface).copied()
    }

    /// Whether `surface` is the target or the reference name of a frame that was not queued.
    pub fn holds(&self, surface: va::VASurfaceID) -> bool {
        self.awaiting.iter().any(|a| {
            a.queued_as.is_none() && (a.frame.target == surface || a.frame.current == surface)
        })
    }

    /// The frames that must be queued now, with refresh 0, because the client needs the
    /// picture of `surface` (every frame not queued up to the one of `surface`, in order).
    /// The caller queues each and reports its timestamp with [`Av1::queued_early`].
    pub fn flush_for(&mut self, surface: Option<va::VASurfaceID>) -> Vec<(usize, Frame)> {
        let upto = match surface {
            Some(s) => match self.awaiting.iter().rposition(|a| {
                a.queued_as.is_none() && (a.frame.target == s || a.frame.current == s)
            }) {
                Some(i) => i,
                None => return Vec::new(),
            },
            None => match self.awaiting.len() {
                0 => return Vec::new(),
                n => n - 1,
            },
        };
        self.awaiting[..=upto]
            .iter()
            .enumerate()
            .filter(|(_, a)| a.queued_as.is_none())
            .map(|(i, a)| (i, a.frame.clone()))
            .collect()
    }

    /// Frame `index` of [`Av1::awaiting`] was queued with refresh 0 under `timestamp_ns`.
    pub fn queued_early(&mut self, index: usize, timestamp_ns: u64) {
        if let Some(a) = self.awaiting.get_mut(index) {
            a.queued_as = Some(timestamp_ns);
            self.early += 1;
            let f = &a.frame;
            if f.current != f.target {
                self.names.insert(f.current, timestamp_ns);
            }
        }
    }

    /// A frame was queued (at its refresh set) under `timestamp_ns`.
    pub fn queued(&mut self, frame: &Frame, timestamp_ns: u64) {
        if frame.current != frame.target {
            self.names.insert(frame.current, timestamp_ns);
        }
    }

    /// Takes the next picture's VA parameters: the refresh sets of the frames awaiting them,
    /// as what to queue (or replay) now, in decode order. Call before [`Av1::frame`].
    pub fn resolve(&mut self, next: &VaPicture) -> Vec<Submit> {
        let shown_key = next.known_refresh() == Some(0xff) && next.frame_type() == KEY_FRAME;
        if !next.names_slots() && !shown_key {
            // A hidden key frame: its ref_frame_map names nothing; wait for a frame that does.
            return Vec::new();
        }
        // A surface in a slot is not free: when two awaiting frames have the same surface,
        // the earlier one's slots were all overwritten before it was reused, and the slots
        // that hold it now are the later frame's.
        let mut taken = Vec::new();
        let mut refreshes = vec![0u8; self.awaiting.len()];
        for (i, a) in self.awaiting.iter().enumerate().rev() {
            // A shown key frame refreshes every slot: what the frames before it refreshed is
            // overwritten before anything can use it.
            if !shown_key && !taken.contains(&a.frame.current) {
                refreshes[i] = next.slots_of(a.frame.current);
            }
            taken.push(a.frame.current);
        }
        let mut out = Vec::new();
        for (a, refresh) in self.awaiting.drain(..).zip(refreshes) {
            match a.queued_as {
                None => out.push(Submit {
                    frame: a.frame,
                    refresh,
                    replay_of: None,
                }),
                Some(ts) if refresh != 0 => {
                    self.replays += 1;
                    log::debug!(
                        "AV1: frame of surface {:#x} refreshed slots {refresh:#04x}: replayed \
                         (queued early with refresh 0 for the client)",
                        a.frame.target
                    );
                    out.push(Submit {
                        frame: a.frame,
                        refresh,
                        replay_of: Some(ts),
                    });
                }
                Some(_) => {}
            }
        }
        out
    }

    /// Maps `va` (after [`Av1::resolve`] and the queueing of what it returned), the picture
    /// `vaBeginPicture` started on `target` (its `current_frame`), to its frame; `reference` gives the timestamp (ns) of the picture decoded into a surface (`None`:
    /// the surface holds no picture of this context). The frame is returned to queue at once
    /// when its refresh set is known ([`Frame::known_refresh`]); else it is kept in
    /// [`Av1::awaiting`] and `None` returned.
    pub fn frame(
        &mut self,
        va: VaPicture,
        target: va::VASurfaceID,
        reference: impl Fn(va::VASurfaceID) -> Option<u64>,
    ) -> Result<Option<Frame>> {
        let frame = self.map(va, target, reference)?;
        self.frames += 1;
        if frame.known_refresh.is_some() {
            return Ok(Some(frame));
        }
        self.awaiting.push(Awaiting {
            frame,
            queued_as: None,
        });
        Ok(None)
    }

    /// The controls of `va` (see [`Av1::frame`]).
    pub fn map(
        &mut self,
        va: VaPicture,
        target: va::VASurfaceID,
        reference: impl Fn(va::VASurfaceID) -> Option<u64>,
    ) -> Result<Frame> {
        let pic = &va.pic;
        // SAFETY: reading the bit fields of the unions (plain integers either way).
        let (s, p, lfi, qm, mc, lr, seg, fg) = unsafe {
            (
                pic.seq_info_fields.fields,
                pic.pic_info_fields.bits,
                pic.loop_filter_info_fields.bits,
                pic.qmatrix_fields.bits,
                pic.mode_control_fields.bits,
                pic.loop_restoration_fields.bits,
                pic.seg_info.segment_info_fields.bits,
                pic.film_grain_info.film_grain_info_fields.bits,
            )
        };
        // vaBeginPicture's render target is current_frame (FFmpeg: `pic->output_surface`);
        // with film grain the picture goes to current_display_picture. Without, VA says that
        // field is not valid (GStreamer's vaav1dec leaves it VA_INVALID_SURFACE, FFmpeg sets it
        // to current_frame): the picture goes to current_frame.
        if pic.current_frame != target {
            return Err(refuse(format!(
                "current_frame {:#x} is not the render target {target:#x}",
                pic.current_frame
            )));
        }
        let target = if fg.apply_grain() != 0 {
            pic.current_display_picture
        } else {
            pic.current_frame
        };
        if target == va::VA_INVALID_SURFACE {
            return Err(refuse(format!(
                "film grain with no display surface (current_frame {:#x})",
                pic.current_frame
            )));
        }
        if pic.profile != 0 {
            return Err(unsupported(format!("profile {}", pic.profile)));
        }
        if s.mono_chrome() != 0 || s.subsampling_x() == 0 || s.subsampling_y() == 0 {
            return Err(unsupported(
                "only 4:2:0 is decoded (NV12 / P010 surfaces)".into(),
            ));
        }
        let depth = match pic.bit_depth_idx {
            0 => BitDepth::Eight,
            1 => BitDepth::Ten,
            d => return Err(unsupported(format!("bit_depth_idx {d}"))),
        };
        let enable_order_hint = s.enable_order_hint() != 0;
        let order_hint_bits = if enable_order_hint {
            u32::from(pic.order_hint_bits_minus_1) + 1
        } else {
            0
        };
        if order_hint_bits > 8 {
            return Err(refuse(format!("{order_hint_bits} order hint bits")));
        }
        let sequence = v4l2_ctrl_av1_sequence {
            flags: flags![
                s.still_picture() != 0 => V4L2_AV1_SEQUENCE_FLAG_STILL_PICTURE,
                s.use_128x128_superblock() != 0 => V4L2_AV1_SEQUENCE_FLAG_USE_128X128_SUPERBLOCK,
                s.enable_filter_intra() != 0 => V4L2_AV1_SEQUENCE_FLAG_ENABLE_FILTER_INTRA,
                s.enable_intra_edge_filter() != 0 => V4L2_AV1_SEQUENCE_FLAG_ENABLE_INTRA_EDGE_FILTER,
                s.enable_interintra_compound() != 0 => V4L2_AV1_SEQUENCE_FLAG_ENABLE_INTERINTRA_COMPOUND,
                s.enable_masked_compound() != 0 => V4L2_AV1_SEQUENCE_FLAG_ENABLE_MASKED_COMPOUND,
                s.enable_dual_filter() != 0 => V4L2_AV1_SEQUENCE_FLAG_ENABLE_DUAL_FILTER,
                enable_order_hint => V4L2_AV1_SEQUENCE_FLAG_ENABLE_ORDER_HINT,
                s.enable_jnt_comp() != 0 => V4L2_AV1_SEQUENCE_FLAG_ENABLE_JNT_COMP,
                // enable_ref_frame_mvs is coded only with order hints.
                enable_order_hint => V4L2_AV1_SEQUENCE_FLAG_ENABLE_REF_FRAME_MVS,
                s.enable_cdef() != 0 => V4L2_AV1_SEQUENCE_FLAG_ENABLE_CDEF,
                s.color_range() != 0 => V4L2_AV1_SEQUENCE_FLAG_COLOR_RANGE,
                s.subsampling_x() != 0 => V4L2_AV1_SEQUENCE_FLAG_SUBSAMPLING_X,
                s.subsampling_y() != 0 => V4L2_AV1_SEQUENCE_FLAG_SUBSAMPLING_Y,
                s.film_grain_params_present() != 0 => V4L2_AV1_SEQUENCE_FLAG_FILM_GRAIN_PARAMS_PRESENT,
            ] | SEQUENCE_FLAGS_SET,
            seq_profile: pic.profile,
            order_hint_bits: order_hint_bits as u8,
            bit_depth: depth.bits() as u8,
            reserved: 0,
            max_frame_width_minus_1: u16::MAX,
            max_frame_height_minus_1: u16::MAX,
        };

        let mut f = v4l2_ctrl_av1_frame::default();
        let frame_type = p.frame_type();
        let intra = frame_type == KEY_FRAME || frame_type == INTRA_ONLY_FRAME;
        let upscaled_width = u32::from(pic.frame_width_minus1) + 1;
        let height = u32::from(pic.frame_height_minus1) + 1;
        let denom = u32::from(pic.superres_scale_denominator);
        let use_superres = p.use_superres() != 0;
        if (use_superres && !(9..=16).contains(&denom)) || (!use_superres && denom != 8) {
            return Err(refuse(format!(
                "superres_scale_denominator {denom} with use_superres {}",
                p.use_superres()
            )));
        }
        let width = (upscaled_width * 8 + denom / 2) / denom;
        f.frame_width_minus_1 = width - 1;
        f.frame_height_minus_1 = height - 1;
        f.upscaled_width = upscaled_width;
        f.render_width_minus_1 = pic.frame_width_minus1;
        f.render_height_minus_1 = pic.frame_height_minus1;
        f.superres_denom = denom as u8;
        f.frame_type = frame_type;
        f.order_hint = pic.order_hint.into();
        if p.allow_intrabc() != 0 && !intra {
            return Err(refuse("intrabc on an inter frame".into()));
        }
        let interp = u32::from(pic.interp_filter);
        let tx_mode = mc.tx_mode();
        if interp > 4 || tx_mode > 2 || pic.primary_ref_frame > 7 {
            return Err(refuse(format!(
                "interp_filter {interp}, tx_mode {tx_mode}, primary_ref_frame {}",
                pic.primary_ref_frame
            )));
        }
        f.interpolation_filter = interp;
        f.tx_mode = tx_mode;
        f.primary_ref_frame = pic.primary_ref_frame;

        // Tile info: the starts from the sizes in superblocks, the last clipped to MiCols.
        let sb_shift = if s.use_128x128_superblock() != 0 {
            5
        } else {
            4
        };
        let mi_cols = 2 * ((width + 7) >> 3);
        let mi_rows = 2 * ((height + 7) >> 3);
        let t = &mut f.tile_info;
        t.flags = flags![
            p.uniform_tile_spacing_flag() != 0 => V4L2_AV1_TILE_INFO_FLAG_UNIFORM_TILE_SPACING,
        ] as u8;
        t.tile_cols = pic.tile_cols;
        t.tile_rows = pic.tile_rows;
        let tile_count = u32::from(pic.tile_cols) * u32::from(pic.tile_rows);
        if u32::from(pic.context_update_tile_id) >= tile_count {
            return Err(refuse(format!(
                "context_update_tile_id {} of {tile_count} tiles",
                pic.context_update_tile_id
            )));
        }
        t.context_update_tile_id = pic.context_update_tile_id as u8;
        let starts = |sizes: &[u16], n: usize, mi: u32, what: &str| -> Result<Vec<u32>> {
            let mut v = vec![0u32];
            for &w in &sizes[..n] {
                let last = *v.last().unwrap_or(&0);
                if last >= mi {
                    return Err(refuse(format!("{what}: tiles beyond the frame")));
                }
                v.push((last + ((u32::from(w) + 1) << sb_shift)).min(mi));
            }
            if v[n] != mi {
                return Err(refuse(format!("{what}: the tiles do not cover the frame")));
            }
            Ok(v)
        };
        let cols = starts(
            &pic.width_in_sbs_minus_1,
            usize::from(pic.tile_cols),
            mi_cols,
            "tile columns",
        )?;
        let rows = starts(
            &pic.height_in_sbs_minus_1,
            usize::from(pic.tile_rows),
            mi_rows,
            "tile rows",
        )?;
        t.mi_col_starts[..cols.len()].copy_from_slice(&cols);
        t.mi_row_starts[..rows.len()].copy_from_slice(&rows);
        for i in 0..usize::from(pic.tile_cols) {
            t.width_in_sbs_minus_1[i] = pic.width_in_sbs_minus_1[i].into();
        }
        for i in 0..usize::from(pic.tile_rows) {
            t.height_in_sbs_minus_1[i] = pic.height_in_sbs_minus_1[i].into();
        }
        t.tile_size_bytes = 4;

        // Quantization.
        f.quantization = v4l2_av1_quantization {
            flags: flags![
                pic.u_dc_delta_q != pic.v_dc_delta_q || pic.u_ac_delta_q != pic.v_ac_delta_q
                    => V4L2_AV1_QUANTIZATION_FLAG_DIFF_UV_DELTA,
                qm.using_qmatrix() != 0 => V4L2_AV1_QUANTIZATION_FLAG_USING_QMATRIX,
                mc.delta_q_present_flag() != 0 => V4L2_AV1_QUANTIZATION_FLAG_DELTA_Q_PRESENT,
            ] as u8,
            base_q_idx: pic.base_qindex,
            delta_q_y_dc: pic.y_dc_delta_q,
            delta_q_u_dc: pic.u_dc_delta_q,
            delta_q_u_ac: pic.u_ac_delta_q,
            delta_q_v_dc: pic.v_dc_delta_q,
            delta_q_v_ac: pic.v_ac_delta_q,
            qm_y: qm.qm_y() as u8,
            qm_u: qm.qm_u() as u8,
            qm_v: qm.qm_v() as u8,
            delta_q_res: mc.log2_delta_q_res() as u8,
        };

        // Segmentation: LastActiveSegId and SegIdPreSkip from the enabled features (5.9.14).
        let g = &mut f.segmentation;
        let mut last_active = 0u8;
        let mut pre_skip = false;
        for i in 0..8 {
            let mask = pic.seg_info.feature_mask[i];
            if mask != 0 {
                last_active = i as u8;
            }
            // SEG_LVL_REF_FRAME (5) and above.
            if mask & 0xe0 != 0 {
                pre_skip = true;
            }
            g.feature_enabled[i] = mask;
            g.feature_data[i] = pic.seg_info.feature_data[i];
        }
        let seg_enabled = seg.enabled() != 0;
        g.flags = flags![
            seg_enabled => V4L2_AV1_SEGMENTATION_FLAG_ENABLED,
            seg.update_map() != 0 => V4L2_AV1_SEGMENTATION_FLAG_UPDATE_MAP,
            seg.temporal_update() != 0 => V4L2_AV1_SEGMENTATION_FLAG_TEMPORAL_UPDATE,
            seg.update_data() != 0 => V4L2_AV1_SEGMENTATION_FLAG_UPDATE_DATA,
            seg_enabled && pre_skip => V4L2_AV1_SEGMENTATION_FLAG_SEG_ID_PRE_SKIP,
        ] as u8;
        g.last_active_seg_id = if seg_enabled { last_active } else { 0 };

        // Loop filter.
        let l = &mut f.loop_filter;
        l.flags = flags![
            lfi.mode_ref_delta_enabled() != 0 => V4L2_AV1_LOOP_FILTER_FLAG_DELTA_ENABLED,
            lfi.mode_ref_delta_update() != 0 => V4L2_AV1_LOOP_FILTER_FLAG_DELTA_UPDATE,
            mc.delta_lf_present_flag() != 0 => V4L2_AV1_LOOP_FILTER_FLAG_DELTA_LF_PRESENT,
            mc.delta_lf_multi() != 0 => V4L2_AV1_LOOP_FILTER_FLAG_DELTA_LF_MULTI,
        ] as u8;
        l.level = [
            pic.filter_level[0],
            pic.filter_level[1],
            pic.filter_level_u,
            pic.filter_level_v,
        ];
        if l.level.iter().any(|&v| v > 63) {
            return Err(refuse(format!("loop filter levels {:?}", l.level)));
        }
        l.sharpness = lfi.sharpness_level();
        l.ref_deltas = pic.ref_deltas;
        l.mode_deltas = pic.mode_deltas;
        l.delta_lf_res = mc.log2_delta_lf_res() as u8;

        // CDEF: VA packs (pri << 2) | coded sec; the control's sec strength is 4 for coded 3.
        if pic.cdef_damping_minus_3 > 3 || pic.cdef_bits > 3 {
            return Err(refuse(format!(
                "cdef_damping_minus_3 {}, cdef_bits {}",
                pic.cdef_damping_minus_3, pic.cdef_bits
            )));
        }
        f.cdef.damping_minus_3 = pic.cdef_damping_minus_3;
        f.cdef.bits = pic.cdef_bits;
        let sec = |v: u8| if v & 3 == 3 { 4 } else { v & 3 };
        for i in 0..(1usize << pic.cdef_bits) {
            let (y, uv) = (pic.cdef_y_strengths[i], pic.cdef_uv_strengths[i]);
            if y > 63 || uv > 63 {
                return Err(refuse(format!("cdef strengths {y} / {uv}")));
            }
            f.cdef.y_pri_strength[i] = y >> 2;
            f.cdef.y_sec_strength[i] = sec(y);
            f.cdef.uv_pri_strength[i] = uv >> 2;
            f.cdef.uv_sec_strength[i] = sec(uv);
        }

        // Loop restoration: VA's types use the uAPI numbering (FFmpeg remaps lr_type).
        let types = [
            lr.yframe_restoration_type(),
            lr.cbframe_restoration_type(),
            lr.crframe_restoration_type(),
        ];
        let uses_lr = types.iter().any(|&t| t != 0);
        let uses_chroma_lr = types[1] != 0 || types[2] != 0;
        f.loop_restoration.flags = flags![
            uses_lr => V4L2_AV1_LOOP_RESTORATION_FLAG_USES_LR,
            uses_chroma_lr => V4L2_AV1_LOOP_RESTORATION_FLAG_USES_CHROMA_LR,
        ] as u8;
        let unit_shift = lr.lr_unit_shift();
        if unit_shift > 2 {
            return Err(refuse(format!("lr_unit_shift {unit_shift}")));
        }
        f.loop_restoration.lr_unit_shift = unit_shift as u8;
        f.loop_restoration.lr_uv_shift = lr.lr_uv_shift() as u8;
        let luma_size = 256u32 >> (2 - unit_shift);
        for (i, &ty) in types.iter().enumerate() {
            f.loop_restoration.frame_restoration_type[i] = ty.into();
            // LoopRestorationSize[] is set only when UsesLr (5.9.20).
            f.loop_restoration.loop_restoration_size[i] = if !uses_lr {
                0
            } else if i == 0 {
                luma_size
            } else {
                luma_size >> lr.lr_uv_shift()
            };
        }

        // Global motion, LAST..ALTREF (index 0 = INTRA unused).
        let gm = &mut f.global_motion;
        for i in 1..8 {
            let w = &pic.wm[i - 1];
            let ty = w.wmtype;
            if ty > 3 {
                return Err(refuse(format!("global motion type {ty}")));
            }
            gm.flags[i] = flags![
                ty != 0 => V4L2_AV1_GLOBAL_MOTION_FLAG_IS_GLOBAL,
                ty == 2 => V4L2_AV1_GLOBAL_MOTION_FLAG_IS_ROT_ZOOM,
                ty == 1 => V4L2_AV1_GLOBAL_MOTION_FLAG_IS_TRANSLATION,
            ] as u8;
            gm.type_[i] = ty;
            gm.params[i].copy_from_slice(&w.wmmat[..6]);
            if w.invalid != 0 {
                gm.invalid |= 1 << i;
            }
        }

        // References: slots by surface; order hints by the surface's frame.
        let mut ts = [0u64; 8];
        if frame_type != KEY_FRAME {
            for (slot, &surface) in pic.ref_frame_map.iter().enumerate() {
                if surface == va::VA_INVALID_SURFACE {
                    continue;
                }
                ts[slot] = self
                    .reference_name(surface)
                    .or_else(|| reference(surface))
                    .unwrap_or(0);
            }
        }
        for i in 0..7 {
            let idx = pic.ref_frame_idx[i];
            // An intra frame has no references: its ref_frame_idx[] means nothing (GStreamer's
            // vaav1dec sends 0xff there, FFmpeg 0), and the controls carry 0 as the parse does.
            if intra {
                continue;
            }
            if idx > 7 {
                return Err(refuse(format!("ref_frame_idx[{i}] = {idx}")));
            }
            f.ref_frame_idx[i] = idx as i8;
            let surface = pic.ref_frame_map[usize::from(idx)];
            if ts[usize::from(idx)] == 0 {
                return Err(refuse(format!(
                    "reference {i} is slot {idx}, surface {surface:#x}, which holds no picture \
                     of this context"
                )));
            }
            f.order_hints[i + 1] = self.hints.get(&surface).copied().unwrap_or(0);
        }
        f.reference_frame_ts = ts;

        f.flags = flags![
            p.show_frame() != 0 => V4L2_AV1_FRAME_FLAG_SHOW_FRAME,
            p.showable_frame() != 0 => V4L2_AV1_FRAME_FLAG_SHOWABLE_FRAME,
            p.error_resilient_mode() != 0 => V4L2_AV1_FRAME_FLAG_ERROR_RESILIENT_MODE,
            p.disable_cdf_update() != 0 => V4L2_AV1_FRAME_FLAG_DISABLE_CDF_UPDATE,
            p.allow_screen_content_tools() != 0 => V4L2_AV1_FRAME_FLAG_ALLOW_SCREEN_CONTENT_TOOLS,
            p.force_integer_mv() != 0 => V4L2_AV1_FRAME_FLAG_FORCE_INTEGER_MV,
            p.allow_intrabc() != 0 => V4L2_AV1_FRAME_FLAG_ALLOW_INTRABC,
            use_superres => V4L2_AV1_FRAME_FLAG_USE_SUPERRES,
            p.allow_high_precision_mv() != 0 => V4L2_AV1_FRAME_FLAG_ALLOW_HIGH_PRECISION_MV,
            p.is_motion_mode_switchable() != 0 => V4L2_AV1_FRAME_FLAG_IS_MOTION_MODE_SWITCHABLE,
            p.use_ref_frame_mvs() != 0 => V4L2_AV1_FRAME_FLAG_USE_REF_FRAME_MVS,
            p.disable_frame_end_update_cdf() != 0 => V4L2_AV1_FRAME_FLAG_DISABLE_FRAME_END_UPDATE_CDF,
            p.allow_warped_motion() != 0 => V4L2_AV1_FRAME_FLAG_ALLOW_WARPED_MOTION,
            mc.reference_select() != 0 => V4L2_AV1_FRAME_FLAG_REFERENCE_SELECT,
            mc.reduced_tx_set_used() != 0 => V4L2_AV1_FRAME_FLAG_REDUCED_TX_SET,
            mc.skip_mode_present() != 0 => V4L2_AV1_FRAME_FLAG_SKIP_MODE_PRESENT,
        ];
        if let Some(frames) =
            skip_mode_frames(&f, order_hint_bits, intra, mc.reference_select() != 0)
        {
            f.skip_mode_frame = frames;
            f.flags |= V4L2_AV1_FRAME_FLAG_SKIP_MODE_ALLOWED;
        } else if mc.skip_mode_present() != 0 {
            return Err(refuse(
                "skip_mode_present where skip mode is not allowed".into(),
            ));
        }

        // Film grain: VA gives the effective parameters of the frame.
        let mut grain = v4l2_ctrl_av1_film_grain::default();
        let film = &pic.film_grain_info;
        if fg.apply_grain() != 0 {
            let (ny, ncb, ncr) = (
                usize::from(film.num_y_points),
                usize::from(film.num_cb_points),
                usize::from(film.num_cr_points),
            );
            if ny > 14 || ncb > 10 || ncr > 10 {
                return Err(refuse(format!("film grain points {ny} / {ncb} / {ncr}")));
            }
            grain.flags = flags![
                true => V4L2_AV1_FILM_GRAIN_FLAG_APPLY_GRAIN,
                true => V4L2_AV1_FILM_GRAIN_FLAG_UPDATE_GRAIN,
                fg.chroma_scaling_from_luma() != 0 => V4L2_AV1_FILM_GRAIN_FLAG_CHROMA_SCALING_FROM_LUMA,
                fg.overlap_flag() != 0 => V4L2_AV1_FILM_GRAIN_FLAG_OVERLAP,
                fg.clip_to_restricted_range() != 0 => V4L2_AV1_FILM_GRAIN_FLAG_CLIP_TO_RESTRICTED_RANGE,
            ] as u8;
            grain.cr_mult = film.cr_mult;
            grain.grain_seed = film.grain_seed;
            (grain.num_y_points, grain.num_cb_points, grain.num_cr_points) =
                (ny as u8, ncb as u8, ncr as u8);
            let points = [
                (
                    ny,
                    &film.point_y_value[..],
                    &film.point_y_scaling[..],
                    &mut grain.point_y_value[..],
                    &mut grain.point_y_scaling[..],
                ),
                (
                    ncb,
                    &film.point_cb_value[..],
                    &film.point_cb_scaling[..],
                    &mut grain.point_cb_value[..],
                    &mut grain.point_cb_scaling[..],
                ),
                (
                    ncr,
                    &film.point_cr_value[..],
                    &film.point_cr_scaling[..],
                    &mut grain.point_cr_value[..],
                    &mut grain.point_cr_scaling[..],
                ),
            ];
            for (n, value, scaling, to_value, to_scaling) in points {
                to_value[..n].copy_from_slice(&value[..n]);
                to_scaling[..n].copy_from_slice(&scaling[..n]);
            }
            grain.grain_scaling_minus_8 = fg.grain_scaling_minus_8() as u8;
            grain.ar_coeff_lag = fg.ar_coeff_lag() as u8;
            let coeffs = [
                (&mut grain.ar_coeffs_y_plus_128[..], &film.ar_coeffs_y[..]),
                (&mut grain.ar_coeffs_cb_plus_128[..], &film.ar_coeffs_cb[..]),
                (&mut grain.ar_coeffs_cr_plus_128[..], &film.ar_coeffs_cr[..]),
            ];
            for (to, from) in coeffs {
                for (d, &c) in to.iter_mut().zip(from) {
                    *d = (i16::from(c) + 128) as u8;
                }
            }
            grain.ar_coeff_shift_minus_6 = fg.ar_coeff_shift_minus_6() as u8;
            grain.grain_scale_shift = fg.grain_scale_shift() as u8;
            grain.cb_mult = film.cb_mult;
            grain.cb_luma_mult = film.cb_luma_mult;
            grain.cr_luma_mult = film.cr_luma_mult;
            grain.cb_offset = film.cb_offset;
            grain.cr_offset = film.cr_offset;
        }
        let current = pic.current_frame;
        // The surfaces now name this frame.
        self.names.remove(&current);
        self.names.remove(&target);
        self.hints.insert(current, f.order_hint);
        let known_refresh = va.known_refresh();
        Ok(Frame {
            sequence,
            frame: f,
            film_grain: grain,
            tiles: va.tiles,
            data: va.data,
            target,
            current,
            known_refresh,
            depth,
        })
    }
}
