// SPDX-License-Identifier: GPL-2.0
//! Inputs the fuzz targets found crashing (docs/fuzzing.md, "Findings"), kept as plain tests so
//! that `cargo test` (with overflow checks) replays them without the nightly fuzzing toolchain:
//! `tests/fuzz-regressions/<target>/` holds a target's inputs, and each must now give an error
//! or a refusal, never a panic or a round-trip mismatch. The targets whose code lives in this
//! crate replay here (`h264_stream`); a folder of another target fails the test until its
//! replay is added (in this file, or in the test of the crate that target exercises). Add each
//! new finding's input with its fix (`cargo fuzz tmin TARGET CRASH` shrinks a large one; an
//! input may also be written by hand, as the SPS of `sps-offset-for-ref-frame-sum-overflow`,
//! made with this crate's `write_sps`: two `offset_for_ref_frame` of 2^31-1).

use std::path::{Path, PathBuf};

use daedalus_codecs::h264::roundtrip::{parse_every_unit, round_trip_stream, RoundTripError};

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|f| f.expect("directory entry").path())
        .collect();
    out.sort();
    out
}

/// What the `h264_stream` target does with its input: cros-codecs' parser over every NAL unit,
/// then the round trip through the V4L2 controls.
fn h264_stream(data: &[u8]) -> Result<(), String> {
    parse_every_unit(data);
    match round_trip_stream(data) {
        Err(e @ RoundTripError::Mismatch(_)) => Err(e.to_string()),
        _ => Ok(()),
    }
}

#[test]
fn every_finding_replays() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut replayed = 0;
    for dir in files(&root) {
        let target = dir.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        let replay: fn(&[u8]) -> Result<(), String> = match target {
            "h264_stream" => h264_stream,
            other => panic!("{}: no replay for the `{other}` target here", dir.display()),
        };
        for path in files(&dir) {
            let data = std::fs::read(&path).expect("regression input");
            if let Err(e) = replay(&data) {
                panic!("{}: {e}", path.display());
            }
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no input under {}", root.display());
}
