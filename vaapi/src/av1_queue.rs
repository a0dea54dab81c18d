// SPDX-License-Identifier: GPL-2.0
//! AV1 pictures through the driver: the deferral of each frame until its
//! `refresh_frame_flags` is known (`av1.rs` has the mapping and the bookkeeping).
//!
//! * `vaEndPicture` of frame *n+1* tells which slots frame *n* refreshed (`Av1::resolve`):
//!   frame *n* is queued then, with them, and frame *n+1* is kept. Shown key frames and switch
//!   frames refresh every slot: they are queued at once.
//! * When the client needs the picture of a kept frame first (`vaSyncSurface`,
//!   `vaQuerySurfaceStatus`, `vaDeriveImage`, `vaGetImage`, `vaExportSurfaceHandle`, or the
//!   context is destroyed), it is queued at once with refresh 0: the decoder's slots stay as
//!   they are and the picture is right. If the frame turns out to have refreshed slots, it is
//!   queued again (a *replay*) with them, into a scratch CAPTURE buffer and under the first
//!   request's timestamp, before the next frame, so that the decoder's slots become right.
//!   Only the last frame can be early: the next frame's `vaEndPicture` tells its refresh set
//!   before anything is queued against it.
//! * A film grain frame's `current_frame` surface only names the request (its timestamp, for
//!   later references): it holds no picture, and syncing it is a decoding error
//!   (`State::Lost`), never an empty picture.

use crate::av1::{Av1, Frame};
use crate::context::{CodecState, Picture};
use crate::driver::{fit_to_target, Driver, Objects};
use crate::mapped::Mapped;
use crate::status::{Error, Result};
use crate::surface::State;

/// The pseudo surface a replay's scratch CAPTURE buffer is bound to (no surface has this id:
/// it is `VA_INVALID_SURFACE`).
pub const SCRATCH: u32 = crate::va::VA_INVALID_SURFACE;

fn av1_mut(objects: &mut Objects, context: u32) -> Result<&mut Av1> {
    match &mut objects.contexts.get_mut(context)?.codec {
        CodecState::Av1(a) => Ok(a),
        _ => Err(Error::INVALID_CONTEXT),
    }
}

/// `frame`'s request with `refresh`, sized for its target surface (`fit_to_target`).
fn request(objects: &Objects, frame: &Frame, refresh: u8) -> Mapped {
    let mut m = frame.mapped(refresh);
    // (The target's CAPTURE buffer is its own: see `Driver::adopt`, called before.)
    fit_to_target(objects, frame.target, &mut m);
    m
}

/// After `frame` was queued: its `current_frame` surface, when it is not the target (film
/// grain), names the request but holds no picture.
fn name_only(objects: &mut Objects, frame: &Frame) {
    if frame.current != frame.target {
        if let Ok(s) = objects.surfaces.get_mut(frame.current) {
            s.state = State::Lost;
        }
    }
}

/// `DAEDALUS_VA_AV1_EAGER=1`: every AV1 frame is queued at once with refresh 0 and replayed
/// when it refreshed slots, whatever the client does (for testing the replays).
fn eager() -> bool {
    static EAGER: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *EAGER.get_or_init(|| std::env::var_os("DAEDALUS_VA_AV1_EAGER").is_some_and(|v| v == "1"))
}

impl Driver {
    /// `vaEndPicture` of an AV1 picture.
    pub(crate) fn decode_av1(
        &self,
        objects: &mut Objects,
        context: u32,
        picture: &Picture,
    ) -> Result<()> {
        let va = crate::av1::va_picture(picture)?;
        // The frames this picture tells the refresh sets of.
        let submits = av1_mut(objects, context)?.resolve(&va);
        for s in submits {
            let m = request(objects, &s.frame, s.refresh);
            match s.replay_of {
                Some(ts) => {
                    self.submit(objects, context, SCRATCH, m, Some(ts / 1000))?;
                }
                None => {
                    Self::adopt(objects, context, s.frame.target)?;
                    let seq = self.submit(objects, context, s.frame.target, m, None)?;
                    av1_mut(objects, context)?.queued(&s.frame, seq * 1000);
                    name_only(objects, &s.frame);
                }
            }
        }
        let Objects {
            contexts, surfaces, ..
        } = &mut *objects;
        let CodecState::Av1(av1) = &mut contexts.get_mut(context)?.codec else {
            return Err(Error::INVALID_CONTEXT);
        };
        let reference = |id: u32| surfaces.get(id).ok().and_then(|s| s.reference_in(context));
        let frame = av1.frame(va, picture.surface, reference)?;
        if eager() {
            // As a client that syncs every picture before it begins the next one would.
            self.flush_av1_context(objects, context, None)?;
        }
        if let Some(frame) = frame {
            let refresh = frame.known_refresh.unwrap_or(0);
            let m = request(objects, &frame, refresh);
            Self::restart_at(objects, context, frame.target, &m)?;
            Self::adopt(objects, context, frame.target)?;
            let seq = self.submit(objects, context, frame.target, m, None)?;
            av1_mut(objects, context)?.queued(&frame, seq * 1000);
            name_only(objects, &frame);
        }
        Ok(())
    }

    /// Queues the AV1 frames kept for their refresh sets that the client needs now: up to the
    /// one of `surface` in every context that keeps it.
    pub(crate) fn flush_av1(&self, objects: &mut Objects, surface: u32) -> Result<()> {
        let contexts: Vec<u32> = objects
            .contexts
            .iter()
            .filter(|(_, c)| matches!(&c.codec, CodecState::Av1(a) if a.holds(surface)))
            .map(|(id, _)| id.raw())
            .collect();
        for context in contexts {
            self.flush_av1_context(objects, context, Some(surface))?;
        }
        Ok(())
    }

    /// Queues the kept AV1 frames of `context` up to the one of `surface` (`None`: all of
    /// them, when the context goes), with refresh 0.
    pub(crate) fn flush_av1_context(
        &self,
        objects: &mut Objects,
        context: u32,
        surface: Option<u32>,
    ) -> Result<()> {
        let Ok(av1) = av1_mut(objects, context) else {
            return Ok(());
        };
        for (i, frame) in av1.flush_for(surface) {
            let m = request(objects, &frame, 0);
            Self::adopt(objects, context, frame.target)?;
            let seq = self.submit(objects, context, frame.target, m, None)?;
            av1_mut(objects, context)?.queued_early(i, seq * 1000);
            name_only(objects, &frame);
            log::debug!(
                "AV1: frame of surface {:#x} queued before its refresh set is known",
                frame.target
            );
        }
        Ok(())
    }
}
