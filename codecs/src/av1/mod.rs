// SPDX-License-Identifier: GPL-2.0
//! AV1: the V4L2 stateless controls and the OBUs they stand for.
//!
//! * [`controls`]: parsed sequence / frame headers and tile groups → `v4l2_ctrl_av1_sequence`,
//!   `v4l2_ctrl_av1_frame`, `v4l2_ctrl_av1_film_grain` and `v4l2_ctrl_av1_tile_group_entry`
//!   (what a stateless client such as `daedalus decode` sends).
//! * [`rebuild`]: controls → sequence header / frame header / tile group OBUs (what the daemon
//!   feeds libdav1d when the client queued only tile-group payloads).
//! * [`obu`]: OBU framing (sizes, temporal units, Annex B), without a parser.
//! * [`walk`]: cros-codecs' parser run over a buffer of OBUs, and a frame's tiles gathered.
//! * [`roundtrip`]: parse → controls → rebuilt OBUs → parse gives the same controls, for the
//!   vector test and the fuzzer.

pub mod controls;
pub mod obu;
pub mod rebuild;
pub mod roundtrip;
pub mod walk;
