// SPDX-License-Identifier: GPL-2.0
//! Where the conformance vectors are (`../shared/vectors/MANIFEST.tsv` says how each was made),
//! for the tests of every crate and for the tools: one rule, so that a machine without them
//! skips the same way everywhere.
//!
//! `$DAEDALUS_VECTORS` if set, else `shared/vectors` beside the repository (where the project's
//! checkouts and CI keep them). A user's clone usually has neither: tests that need them say
//! `skipped: no vectors (set DAEDALUS_VECTORS)` and pass.

use std::path::{Path, PathBuf};

/// What a test prints when it skips for want of the vectors.
pub const SKIPPED: &str = "skipped: no vectors (set DAEDALUS_VECTORS)";

/// The vectors' directory, if it is there.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("DAEDALUS_VECTORS") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"),
    };
    dir.is_dir().then_some(dir)
}

/// `shared_dir()/sub` if it is there; otherwise prints [`SKIPPED`] (naming `sub`) and gives
/// `None`.
pub fn shared_subdir_or_skip(sub: &str) -> Option<PathBuf> {
    let found = shared_dir().map(|d| d.join(sub)).filter(|d| d.exists());
    if found.is_none() {
        eprintln!("{sub}: {SKIPPED}");
    }
    found
}
