// SPDX-License-Identifier: GPL-2.0
//! The progress bar of `decode` and `bench` (indicatif), drawn on standard error when it is a
//! terminal and the command was not given `--quiet`; otherwise nothing at all is drawn, so
//! scripts, tests and CI (standard error redirected) see the same output as before. Standard
//! error, not standard output: `decode` may write pictures or MD5s to standard output.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar, or nothing when progress is not shown.
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// A bar of `total` frames (a spinner with a frame count when the total is unknown), shown
    /// if `wanted` and standard error is a terminal.
    pub fn frames(wanted: bool, total: Option<u64>) -> Progress {
        if !wanted || !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let (bar, template) = match total {
            Some(n) => (
                ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
                "{prefix}{bar:30} {pos}/{len} frames  {msg}  [{elapsed_precise} < {eta}]",
            ),
            None => (
                ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
                "{prefix}{spinner} {pos} frames  {msg}  [{elapsed_precise}]",
            ),
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress(Some(bar))
    }

    /// A bar of `total` seconds (`daedalus stress`), shown if `wanted` and standard error is a
    /// terminal; [`Self::update`] sets the seconds elapsed.
    pub fn seconds(wanted: bool, total: u64) -> Progress {
        let p = Progress::frames(wanted, Some(total));
        if let Some(bar) = &p.0 {
            if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} s  {msg}") {
                bar.set_style(style);
            }
        }
        p
    }

    /// A spinner with `message`, for a step whose progress is not known (an FFmpeg run).
    pub fn spinner(wanted: bool, message: String) -> Progress {
        let p = Progress::frames(wanted, None);
        if let Some(bar) = &p.0 {
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}  [{elapsed_precise}]")
            {
                bar.set_style(style);
            }
            bar.set_message(message);
        }
        p
    }

    /// Text before the bar (e.g. `device: `).
    pub fn with_prefix(self, prefix: &'static str) -> Progress {
        if let Some(bar) = &self.0 {
            bar.set_prefix(prefix);
        }
        self
    }

    /// `done` frames so far, and what to say about them.
    pub fn update(&self, done: u64, message: impl FnOnce() -> String) {
        if let Some(bar) = &self.0 {
            bar.set_position(done);
            bar.set_message(message());
        }
    }

    /// Removes the bar (before the command prints its results).
    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
