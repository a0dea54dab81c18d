// SPDX-License-Identifier: GPL-2.0
//! `daedalus_drv_video.so`: a VA-API driver (a libva backend) for V4L2 stateless decoders,
//! written for daedalus and usable with any stateless decoder of VP9, H.264 or AV1 that
//! outputs NV12 / P010. It lets VA-API applications (mpv `--hwdec=vaapi`, `ffmpeg -hwaccel
//! vaapi`, GStreamer's `va` plugin) decode through the Request API.
//!
//! libva loads it as `LIBVA_DRIVER_NAME=daedalus` from `LIBVA_DRIVERS_PATH` and calls
//! [`__vaDriverInit_1_17`], which finds the decoder ([`device`]), derives the VA profiles from
//! what it reports ([`caps`]) and installs the vtable ([`entry`], the C side; [`driver`], the
//! operations in safe Rust on the object heaps of [`heap`]).
//!
//! Built against libva 2.17 (VA-API 1.17, Debian 12): libva looks the init function up for
//! its own minor version down to 0, so newer libva versions load it too. The driver never
//! links FFmpeg (it lives in processes that bring their own): it shares the FFmpeg-free client
//! layer `daedalus-client` with the `daedalus` CLI, not the CLI itself.

pub mod buffer;
pub mod caps;
pub mod config;
pub mod context;
pub mod decoder;
pub mod device;
pub mod driver;
pub mod entry;
pub mod export;
pub mod heap;
pub mod image;
pub mod status;
pub mod surface;
pub mod va;
pub mod vp9;

use std::panic::{catch_unwind, AssertUnwindSafe};

use status::Error;

// The exported name must be the version of the headers we are built with.
const _: () = assert!(va::DAEDALUS_VA_MAJOR == 1 && va::DAEDALUS_VA_MINOR >= 17);

/// libva's entry point: finds the decoder and installs the driver in `ctx`.
///
/// On failure (no decoder, no decode daemon for daedalus) the reason goes to libva's error
/// callback (`vainfo` prints it) and the status is `VA_STATUS_ERROR_OPERATION_FAILED`; the
/// context is left as it was.
///
/// # Safety
///
/// `ctx` is NULL or a driver context being initialized by libva (with its vtable allocated).
#[no_mangle]
pub unsafe extern "C" fn __vaDriverInit_1_17(ctx: va::VADriverContextP) -> va::VAStatus {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller's contract.
        match unsafe { ctx.as_ref() } {
            Some(c) if !c.vtable.is_null() => {}
            _ => return Err(Error::INVALID_DISPLAY),
        }
        init_logging();
        let overrides = device::Overrides::from_env();
        let found = device::find(&overrides, &device::Roots::default()).and_then(|d| {
            device::check_daemon(&d, daedalus_client::discover::daemon_state).map(|()| d)
        });
        let dev = match found {
            Ok(dev) => dev,
            Err(why) => {
                // SAFETY: the caller's contract.
                unsafe { entry::message(ctx, true, &why) };
                return Err(Error::OPERATION_FAILED);
            }
        };
        let driver = driver::Driver::new(dev);
        let profiles: Vec<&str> = driver.profiles.iter().map(|p| p.profile.name()).collect();
        let text = format!(
            "{} and {}: {}",
            driver.device.video.display(),
            driver.device.media.display(),
            profiles.join(" ")
        );
        // SAFETY: the caller's contract.
        unsafe { entry::install(ctx, driver) }?;
        // SAFETY: as above.
        unsafe { entry::message(ctx, false, &text) };
        Ok(())
    }));
    match outcome {
        Ok(r) => status::to_status(r),
        Err(_) => Error::OPERATION_FAILED.status(),
    }
}

/// `DAEDALUS_VA_LOG=error|warn|info|debug|trace` prints the driver's log to standard error
/// (unless the process already has a logger).
fn init_logging() {
    struct Stderr;
    impl log::Log for Stderr {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &log::Record<'_>) {
            if self.enabled(record.metadata()) {
                eprintln!("daedalus-va {}: {}", record.level(), record.args());
            }
        }
        fn flush(&self) {}
    }
    static LOGGER: Stderr = Stderr;
    let Some(level) = std::env::var("DAEDALUS_VA_LOG")
        .ok()
        .and_then(|l| l.parse::<log::LevelFilter>().ok())
    else {
        return;
    };
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}
