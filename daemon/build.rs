// SPDX-License-Identifier: GPL-2.0
//! Generates the few uAPI definitions the daemon needs into `OUT_DIR`: the VP9 stateless frame
//! control (from the Linux 6.12 UAPI headers vendored in `tools/uapi/`, searched before the host's
//! older `/usr/include/linux`) and the dma-buf `DMA_BUF_IOCTL_SYNC` ioctl.

use std::env;
use std::path::PathBuf;

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let uapi = manifest_dir.join("../tools/uapi");
    let wrapper = manifest_dir.join("src/sys/wrapper.h");

    println!("cargo:rerun-if-changed={}", wrapper.display());
    println!("cargo:rerun-if-changed={}", uapi.join("linux").display());

    let bindings = bindgen::Builder::default()
        .header(wrapper.to_string_lossy())
        .clang_arg(format!("-I{}", uapi.display()))
        .allowlist_type("v4l2_ctrl_vp9_frame|dma_buf_sync")
        .allowlist_var(
            "V4L2_CID_STATELESS_VP9_FRAME|V4L2_VP9_FRAME_FLAG_.*|DMA_BUF_SYNC_.*|DAEDALUS_C_.*",
        )
        .derive_default(true)
        .derive_debug(false)
        .layout_tests(true)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen failed on the uAPI headers (is libclang installed?)");

    bindings
        .write_to_file(out_dir.join("uapi.rs"))
        .expect("cannot write the generated bindings to OUT_DIR");
}
