// SPDX-License-Identifier: GPL-2.0
//! Generates the bindings of libva's driver interface (`va/va_backend.h`, with `va/va.h`, the
//! decoder parameter headers it includes, and `va/va_drmcommon.h` for DRM PRIME export) into
//! `OUT_DIR`, from the system's libva headers (`libva-dev`; Debian 12: libva 2.17, VA-API 1.17).
//!
//! Only types and constants are generated: the driver does not link libva (libva loads it).

use std::env;
use std::path::PathBuf;

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let wrapper = manifest_dir.join("src/va_wrapper.h");
    println!("cargo:rerun-if-changed={}", wrapper.display());

    let bindings = bindgen::Builder::default()
        .header(wrapper.to_string_lossy())
        // The driver interface and what the decoders we serve take; bindgen follows what these
        // use (the vtable's argument types among them).
        .allowlist_type(
            "VADriverContext|VADriverVTable|VADriverInit|VAProfile|VAEntrypoint|VAConfigAttribType\
             |VABufferType|VASurfaceStatus|VASurfaceAttribType|VAGenericValueType\
             |VADRMPRIMESurfaceDescriptor|drm_state\
             |VADecPictureParameterBufferVP9|VASliceParameterBufferVP9\
             |VAPictureParameterBufferH264|VASliceParameterBufferH264|VAIQMatrixBufferH264\
             |VADecPictureParameterBufferAV1|VASliceParameterBufferAV1",
        )
        .allowlist_var("VA_.*|DAEDALUS_VA_.*")
        .blocklist_function(".*")
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .derive_default(true)
        .derive_debug(false)
        .layout_tests(true)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect(
            "bindgen failed on the libva headers (is libva-dev installed? scripts/install-deps)",
        );
    bindings
        .write_to_file(out_dir.join("va.rs"))
        .expect("cannot write the generated bindings to OUT_DIR");
}
