// SPDX-License-Identifier: GPL-2.0
//! The shared object as libva sees it: loaded with `dlopen`, its init function looked up by the
//! name libva 2.17 tries first, called with a driver context like libva's. This host has no
//! decoder, so init must fail cleanly, naming the reason through libva's error callback and
//! leaving the context alone. And it must not link FFmpeg.

use std::cell::RefCell;
use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::path::PathBuf;

use daedalus_drv_video::va;

/// `target/<profile>/deps/libdaedalus_drv_video.so`, built with this test.
fn library() -> PathBuf {
    // Cargo builds the cdylib for the tests next to the test executables (`deps/`); `cargo
    // build` also copies it one level up, which a `cargo test` alone does not (and that copy
    // may be stale).
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .expect("target deps dir")
        .join("libdaedalus_drv_video.so")
}

thread_local! {
    static ERRORS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

unsafe extern "C" fn on_error(_ctx: va::VADriverContextP, text: *const c_char) {
    // SAFETY: the driver passes a C string.
    let text = unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned();
    ERRORS.with(|e| e.borrow_mut().push(text));
}

type Init = unsafe extern "C" fn(va::VADriverContextP) -> va::VAStatus;

#[test]
fn init_without_a_decoder_fails_with_the_reason() {
    // The other test of this file reads no environment.
    std::env::set_var("DAEDALUS_VA_VIDEO", "/nonexistent/video99");
    std::env::set_var("DAEDALUS_VA_MEDIA", "/nonexistent/media99");
    let path = CString::new(library().into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: loading our own library, whose initializers are Rust's.
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!handle.is_null(), "cannot dlopen {}", library().display());
    let symbol = |name: &str| {
        let name = CString::new(name).unwrap();
        // SAFETY: a live handle and a C string.
        unsafe { libc::dlsym(handle, name.as_ptr()) }
    };
    assert!(symbol("__vaDriverInit_1_16").is_null());
    let init = symbol("__vaDriverInit_1_17");
    assert!(!init.is_null(), "no __vaDriverInit_1_17");
    // SAFETY: the exported function has this signature (lib.rs).
    let init: Init = unsafe { std::mem::transmute::<*mut libc::c_void, Init>(init) };

    let mut vtable = va::VADriverVTable::default();
    let mut ctx = va::VADriverContext {
        vtable: &mut vtable,
        error_callback: Some(on_error),
        ..Default::default()
    };
    // SAFETY: a context as libva's, with its vtable.
    let status = unsafe { init(&mut ctx) };
    assert_eq!(status, va::VA_STATUS_ERROR_OPERATION_FAILED as va::VAStatus);
    let errors = ERRORS.with(|e| e.borrow().clone());
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("daedalus: DAEDALUS_VA_VIDEO/DAEDALUS_VA_MEDIA: "),
        "{errors:?}"
    );
    assert!(errors[0].contains("/nonexistent/video99"), "{errors:?}");
    assert!(ctx.pDriverData.is_null());
    assert!(vtable.vaTerminate.is_none());
    // SAFETY: a NULL context must be refused, not dereferenced.
    assert_eq!(
        unsafe { init(std::ptr::null_mut()) },
        va::VA_STATUS_ERROR_INVALID_DISPLAY as va::VAStatus
    );
    // SAFETY: nothing of the library is in use any more.
    assert_eq!(unsafe { libc::dlclose(handle) }, 0);
}

#[test]
fn does_not_link_ffmpeg() {
    let bytes = std::fs::read(library()).expect("the cdylib is built with the tests");
    for lib in [
        &b"libavcodec.so"[..],
        b"libavformat.so",
        b"libavutil.so",
        b"libswscale.so",
        b"libva.so",
    ] {
        assert!(
            !bytes.windows(lib.len()).any(|w| w == lib),
            "{} names {}",
            library().display(),
            String::from_utf8_lossy(lib)
        );
    }
}
