// SPDX-License-Identifier: GPL-2.0
//! The IVF reader every client reads VP9 / AV1 files with: any bytes give frames or an error,
//! never a panic, and the streaming reader agrees with the in-memory one.
#![no_main]

use daedalus_codecs::ivf::{self, IvfReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let whole = ivf::frames(data);
    let Ok(mut reader) = IvfReader::new(data) else {
        assert!(
            whole.is_err(),
            "frames() accepted what IvfReader::new refused"
        );
        return;
    };
    let mut buf = Vec::new();
    let mut streamed = Vec::new();
    let complete = loop {
        match reader.next_frame(&mut buf) {
            Ok(Some(f)) => streamed.push((f.pts, buf.clone())),
            Ok(None) => break true,
            Err(_) => break false,
        }
    };
    if let (true, Ok((_, frames))) = (complete, whole) {
        assert_eq!(frames.len(), streamed.len());
        for ((pts_a, a), (pts_b, b)) in frames.iter().zip(&streamed) {
            assert_eq!((pts_a, *a), (pts_b, b.as_slice()));
        }
    }
});
