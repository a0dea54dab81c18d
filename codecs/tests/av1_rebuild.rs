// SPDX-License-Identifier: GPL-2.0
//! Round trip over the AV1 vectors (`daedalus_codecs::av1::roundtrip`): parse (cros-codecs) →
//! controls → rebuilt OBUs → parse the rebuilt OBUs with a second parser that sees nothing else
//! → the same controls, for every frame of every 4:2:0 8/10-bit vector.

use std::path::{Path, PathBuf};

use daedalus_codecs::av1::roundtrip::{round_trip_chunks, RoundTripError};

fn vectors() -> Option<PathBuf> {
    daedalus_codecs::vectors::shared_subdir_or_skip("MANIFEST.tsv")
        .and_then(|m| m.parent().map(PathBuf::from))
}

/// The AV1 4:2:0 8/10-bit vectors of the manifest.
fn av1_420_vectors(dir: &Path) -> Vec<PathBuf> {
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    manifest
        .lines()
        .skip(1)
        .filter_map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (c.len() > 9 && c[0] == "av1" && c[8] == "4:2:0" && (c[2] == "8" || c[2] == "10"))
                .then(|| dir.join(c[1]))
        })
        .collect()
}

/// IVF frames, or the whole file for `.obu` streams (the parser finds the OBUs itself).
fn chunks(data: &[u8]) -> Vec<&[u8]> {
    match daedalus_codecs::ivf::frames(data) {
        Ok((_, frames)) => frames.into_iter().map(|(_, f)| f).collect(),
        Err(daedalus_codecs::ivf::IvfError::NotIvf) => vec![data],
        Err(e) => panic!("broken IVF vector: {e}"),
    }
}

#[test]
fn every_420_vector_round_trips() {
    let Some(dir) = vectors() else { return };
    let list = av1_420_vectors(&dir);
    assert!(
        list.len() > 500 || std::env::var_os("AV1_ONLY").is_some(),
        "only {} AV1 4:2:0 vectors",
        list.len()
    );
    let (mut ok, mut frames) = (0, 0);
    let mut unparsable = Vec::new();
    let mut failures = Vec::new();
    let only = std::env::var("AV1_ONLY").ok();
    for path in list.iter().filter(|p| {
        only.as_ref()
            .is_none_or(|o| p.to_string_lossy().contains(o.as_str()))
    }) {
        let data = std::fs::read(path).unwrap();
        match round_trip_chunks(chunks(&data)) {
            Ok(n) => {
                ok += 1;
                frames += n;
            }
            Err(e @ RoundTripError::Parse(_)) => {
                unparsable.push(format!("{}: {e}", path.display()))
            }
            Err(e) => failures.push(format!("{}: {e}", path.display())),
        }
    }
    eprintln!(
        "AV1 rebuild round trip: {ok}/{} streams byte-checked ({frames} frames); {} streams \
         cros-codecs cannot parse; {} failed",
        list.len(),
        unparsable.len(),
        failures.len()
    );
    for f in &unparsable {
        eprintln!("not checked: {f}");
    }
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    assert!(failures.is_empty(), "{} streams failed", failures.len());
}
