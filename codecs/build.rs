// SPDX-License-Identifier: GPL-2.0
//! Generates the V4L2 / media controller / dma-buf uAPI bindings into `OUT_DIR`: the one set of
//! bindings the tools, the daemon and the bitstream code share.
//!
//! The headers come from `uapi/linux/` (the Linux 6.12 UAPI, vendored by `uapi/update.sh`), which
//! is searched before the system include directories, so an older host `/usr/include/linux` (6.1
//! on Debian 12, which lacks the AV1 stateless controls) is only used for what we do not vendor
//! (`linux/ioctl.h`, `asm/`, `asm-generic/`).

use std::env;
use std::path::PathBuf;

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let uapi = manifest_dir.join("uapi");
    let wrapper = manifest_dir.join("src/uapi_wrapper.h");

    println!("cargo:rerun-if-changed={}", wrapper.display());
    println!("cargo:rerun-if-changed={}", uapi.join("linux").display());

    let bindings = bindgen::Builder::default()
        .header(wrapper.to_string_lossy())
        .clang_arg(format!("-I{}", uapi.display()))
        .allowlist_type("v4l2_.*|media_.*|dma_buf_sync")
        .allowlist_var("V4L2_.*|MEDIA_.*|VIDEO_MAX_.*|DMA_BUF_SYNC_.*|DAEDALUS_C_.*")
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .derive_default(true)
        .derive_partialeq(true)
        .derive_debug(false)
        .layout_tests(true)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen failed on the V4L2 uAPI headers (is libclang installed?)");

    bindings
        .write_to_file(out_dir.join("uapi.rs"))
        .expect("cannot write the generated bindings to OUT_DIR");
}
