// SPDX-License-Identifier: GPL-2.0
//! Tells the daemon's code which FFmpeg it is built against, from what `ffmpeg-sys-next`'s build
//! script found in the headers (its `links = "ffmpeg"` metadata reaches this script as
//! `DEP_FFMPEG_*`, as it is a direct dependency).
//!
//! `cfg(ffmpeg_thread_safe_callbacks)`: `AVCodecContext.thread_safe_callbacks` exists, i.e.
//! `FF_API_THREAD_SAFE_CALLBACKS`, which is `LIBAVCODEC_VERSION_MAJOR < 60` (FFmpeg 5.1 and
//! older). FFmpeg 6.0 removed the field and always calls `get_buffer2` from the frame threads.

use std::env;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(ffmpeg_thread_safe_callbacks)");
    // Present (empty or "true") whenever ffmpeg-sys-next's metadata reaches us at all.
    const PROBED: &str = "DEP_FFMPEG_FFMPEG_6_0";
    // "true" when libavcodec is newer than 59.107, i.e. major 60 or later (59 ended at 59.37).
    const MAJOR_60: &str = "DEP_FFMPEG_AVCODEC_VERSION_GREATER_THAN_59_107";
    println!("cargo::rerun-if-env-changed={PROBED}");
    println!("cargo::rerun-if-env-changed={MAJOR_60}");
    if env::var_os(PROBED).is_none() {
        panic!("{PROBED} is not set: ffmpeg-sys-next must be a direct dependency");
    }
    if env::var(MAJOR_60).map_or(true, |v| v != "true") {
        println!("cargo::rustc-cfg=ffmpeg_thread_safe_callbacks");
    }
}
