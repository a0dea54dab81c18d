// SPDX-License-Identifier: GPL-2.0
//! AV1: parsed OBU headers (cros-codecs' parser) ↔ the V4L2 stateless AV1 controls.
//!
//! * [`controls`]: parsed sequence / frame headers and tile groups → `v4l2_ctrl_av1_sequence`,
//!   `v4l2_ctrl_av1_frame`, `v4l2_ctrl_av1_film_grain` and `v4l2_ctrl_av1_tile_group_entry`
//!   (what a stateless client such as `daedalus decode` sends).

pub mod controls;
