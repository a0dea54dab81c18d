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
    dir_from(
        std::env::var_os("DAEDALUS_VECTORS"),
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"),
    )
}

/// The rule of [`shared_dir`]: `env` (the variable's value) if set and not empty, else
/// `beside_repo`; whichever it is, only if it is a directory.
fn dir_from(env: Option<std::ffi::OsString>, beside_repo: &Path) -> Option<PathBuf> {
    let dir = match env {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => beside_repo.to_path_buf(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_wins_and_missing_directories_are_none() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let missing = here.join("no-such-dir");
        assert_eq!(dir_from(Some(here.into()), &missing), Some(here.into()));
        // A variable naming no directory: no vectors, even if they are beside the repository.
        assert_eq!(dir_from(Some(missing.clone().into()), here), None);
        // Unset or empty: beside the repository, if there.
        assert_eq!(dir_from(None, here), Some(here.into()));
        assert_eq!(dir_from(Some("".into()), here), Some(here.into()));
        assert_eq!(dir_from(None, &missing), None);
    }
}
