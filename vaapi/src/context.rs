// SPDX-License-Identifier: GPL-2.0
//! Decode contexts.

use crate::config::Config;

/// A decode context.
pub struct Context {
    /// Its config.
    pub config: Config,
    /// The picture size it was created for.
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// The surfaces the client named at creation (it may decode into others too).
    pub render_targets: Vec<u32>,
    /// The surface between `vaBeginPicture` and `vaEndPicture`.
    pub current: Option<u32>,
}
