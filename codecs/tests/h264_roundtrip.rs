// SPDX-License-Identifier: GPL-2.0
//! Every H.264 vector: parse each SPS / PPS with cros-codecs → V4L2 controls → rebuilt NAL units
//! → parse again → the controls are equal and so are the parsed fields V4L2 represents
//! (`daedalus_codecs::h264::roundtrip`).

use std::path::PathBuf;

use daedalus_codecs::h264::roundtrip::round_trip_stream;

fn vectors_dir() -> PathBuf {
    daedalus_codecs::vectors::shared_dir().unwrap_or_default()
}

fn h264_streams() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let root = vectors_dir().join("h264");
    let Ok(dirs) = std::fs::read_dir(&root) else {
        return out;
    };
    for dir in dirs.flatten() {
        let Ok(files) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        for f in files.flatten() {
            let p = f.path();
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            if matches!(ext, "h264" | "264" | "jsv" | "26l" | "jvt") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_vector_roundtrips_through_controls() {
    let streams = h264_streams();
    if streams.is_empty() {
        eprintln!("h264: {}", daedalus_codecs::vectors::SKIPPED);
        return;
    }
    let mut failures = Vec::new();
    let mut with_matrix = 0;
    for path in &streams {
        let data = std::fs::read(path).expect("read vector");
        match round_trip_stream(&data) {
            Ok(c) => {
                let (s, p, m) = (c.sps, c.pps, c.matrices);
                assert!(
                    s > 0 && p > 0,
                    "{}: no parameter sets found",
                    path.display()
                );
                if m > 0 {
                    with_matrix += 1;
                }
                eprintln!("ok   {} ({s} SPS, {p} PPS)", path.display());
            }
            Err(e) => failures.push(format!("{}: {e}", path.display())),
        }
    }
    eprintln!(
        "{} streams, {} failed, {with_matrix} with scaling matrices",
        streams.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
    // The scaling-matrix vectors (x264 cqm=jvt, JM scaling lists) must exercise the lists.
    assert!(
        with_matrix >= 2,
        "only {with_matrix} streams with a scaling matrix"
    );
}
