// SPDX-License-Identifier: GPL-2.0
//! Inputs the fuzz targets found crashing (docs/fuzzing.md, "Findings"), kept as plain tests so
//! that `cargo test` (with overflow checks) replays them without the nightly fuzzing toolchain:
//! `tests/fuzz-regressions/<target>/` holds each target's inputs, and every one must now give an
//! error or a refusal, never a panic or a round-trip mismatch. Add the minimised input
//! (`cargo fuzz tmin`) of each new finding with its fix.

use std::path::{Path, PathBuf};

use daedalus_codecs::h264::roundtrip::{parse_every_unit, round_trip_stream, RoundTripError};

fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-regressions")
        .join(target);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|f| f.expect("directory entry").path())
        .collect();
    out.sort();
    out
}

/// What the `h264_stream` target does with its input: cros-codecs' parser over every NAL unit,
/// then the round trip through the V4L2 controls.
#[test]
fn h264_stream_findings() {
    let files = inputs("h264_stream");
    assert!(!files.is_empty());
    for path in files {
        let data = std::fs::read(&path).expect("regression input");
        parse_every_unit(&data);
        if let Err(e @ RoundTripError::Mismatch(_)) = round_trip_stream(&data) {
            panic!("{}: {e}", path.display());
        }
    }
}
