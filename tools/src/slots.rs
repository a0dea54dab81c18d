// SPDX-License-Identifier: GPL-2.0
//! What the VP9 and AV1 clients share on top of the [`Engine`]: both codecs have eight reference
//! slots refreshed by `refresh_frame_flags`, hidden frames (decoded, not displayed) and
//! `show_existing_frame` (a slot's picture displayed again without a request). The codec front
//! ends parse and build the controls; this queues one request per frame, keeps the slots and
//! displays the pictures.

use anyhow::Result;
use daedalus_proto::formats::BitDepth;
use log::{debug, warn};

use crate::engine::{Config, Crop, Engine, RefSlots, Summary, NUM_REF_SLOTS};
use crate::v4l2::CtrlPayload;

/// One frame for [`SlotDecoder::submit`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct FrameJob {
    /// Container packet number (for messages).
    pub packet: u64,
    /// Its timestamp (for the framemd5 output).
    pub pts: i64,
    /// The reference slots the frame refreshes.
    pub refresh: u8,
    /// Whether it is displayed.
    pub show: bool,
    /// The picture size to output.
    pub width: u32,
    /// See `width`.
    pub height: u32,
}

/// The engine with VP9 / AV1 reference slots.
pub(crate) struct SlotDecoder<'a> {
    /// The engine the requests go through.
    pub engine: Engine<'a>,
    slots: RefSlots,
}

impl<'a> SlotDecoder<'a> {
    pub(crate) fn new(engine: Engine<'a>) -> Self {
        SlotDecoder {
            engine,
            slots: RefSlots::default(),
        }
    }

    /// (Re)configures the device for `width` x `height` pictures of `depth` bits with the
    /// stream's controls `init` (`describe` says what the stream is if the driver refuses it).
    pub(crate) fn configure(
        &mut self,
        width: u32,
        height: u32,
        depth: BitDepth,
        init: &mut [CtrlPayload<'_>],
        describe: String,
    ) -> Result<()> {
        // Eight slots and the frame being decoded.
        let min = NUM_REF_SLOTS as u32 + 1;
        let capture_buffers = self.engine.opts().capture_buffers.max(min);
        self.engine.configure(
            &self.slots,
            Config {
                width,
                height,
                depth,
                stream_ctrls: init,
                menu_ctrls: &[],
                describe,
                capture_buffers,
                min_capture_buffers: min,
                hold_capture: false,
            },
        )
    }

    /// The timestamps (ns) of the pictures in the reference slots, 0 for an empty slot.
    pub(crate) fn slot_timestamps(&self) -> [u64; NUM_REF_SLOTS] {
        self.slots.timestamps()
    }

    /// Queues one frame: `data` in an OUTPUT buffer, `ctrls` in the request. A frame that does
    /// not fit or whose controls the driver refuses is skipped (counted, warned).
    pub(crate) fn submit(
        &mut self,
        data: &[u8],
        ctrls: &mut [CtrlPayload<'_>],
        job: FrameJob,
    ) -> Result<()> {
        let id = self
            .engine
            .new_picture(&self.slots, Crop::size(job.width, job.height))?;
        if let Err(e) = self.engine.queue_request(id, &[data], ctrls, true)? {
            // A payload the kernel refuses is this client's bug: say so, and go on.
            warn!("packet {}: {e}; skipped", job.packet);
            return self.skip(job.refresh);
        }
        debug!(
            "packet {}: picture {id}, {}refresh {:#04x}, {}x{}",
            job.packet,
            if job.show { "" } else { "hidden, " },
            job.refresh,
            job.width,
            job.height
        );
        self.slots.refresh(job.refresh, Some(id));
        if job.show {
            self.engine.show(id, Some(job.pts))?;
        }
        self.engine.collect(&self.slots)
    }

    /// Counts a frame that is not decoded; the slots it would refresh become empty, so frames
    /// referring to them fail rather than use a stale picture.
    pub(crate) fn skip(&mut self, refresh_frame_flags: u8) -> Result<()> {
        self.engine.summary_mut().skipped += 1;
        self.slots.refresh(refresh_frame_flags, None);
        self.engine.collect(&self.slots)
    }

    /// Displays the picture in reference slot `slot` again (`show_existing_frame`); with
    /// `refresh_all` (an AV1 key frame shown this way) it also takes every slot.
    pub(crate) fn show_existing(
        &mut self,
        packet: u64,
        pts: i64,
        slot: u8,
        refresh_all: bool,
    ) -> Result<()> {
        let Some(id) = self.slots.get(usize::from(slot)) else {
            warn!("packet {packet}: show_existing_frame of slot {slot}, which holds no picture");
            self.engine.summary_mut().skipped += 1;
            return Ok(());
        };
        self.engine.show(id, Some(pts))?;
        if refresh_all {
            self.slots.refresh(0xff, Some(id));
        }
        self.engine.collect(&self.slots)
    }

    /// Ends the run: waits for everything, writes the rest, frees the device.
    pub(crate) fn finish(&mut self) -> Result<Summary> {
        self.engine.finish(&self.slots)
    }
}
