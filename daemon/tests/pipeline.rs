// SPDX-License-Identifier: GPL-2.0
//! Pipelined decoding through the daemon's core: a client keeping `window` requests in flight
//! against a context with `threads` decoding threads, for every window 1..=8 and thread count
//! 1..=4. Every displayed picture must equal FFmpeg's reference `framemd5` (so every request
//! got its own picture, in order), every job must end (a window the pipeline cannot fill must
//! not stall it), and with at least `threads` requests in flight the pipeline must be used.
//! VP9 (8- and 10-bit, hidden frames) against FFmpeg's `framemd5`; H.264 (one slice with a
//! B-pyramid, three CAVLC slices, 10-bit with cropping) request by request against the
//! low-delay decoder, whose pictures are FFmpeg's reference frames.

mod common;

use common::*;
use daedalus_daemon::{Context, DecoderConfig};
use daedalus_proto::formats::BitDepth;

/// A context with `threads` threads, and a client with buffers for 8 requests in flight.
fn context_and_client(threads: usize) -> (Context, Client) {
    let config = DecoderConfig {
        threads,
        ..Default::default()
    };
    let client = Client::new(ClientConfig {
        output_buffers: 10,
        capture_buffers: 10,
        ..ClientConfig::new(1)
    });
    (Context::new(1, config), client)
}

fn check(ivf: &str, md5: &str) {
    let frames = ivf_frames(&std::fs::read(data_dir().join(ivf)).unwrap());
    let want = read_framemd5(&data_dir().join(md5));
    for threads in 1..=4 {
        for window in 1..=8 {
            let (mut ctx, mut client) = context_and_client(threads);
            run_windowed(&mut ctx, &mut client, &frames, |_| window);
            let name = format!("{ivf} threads {threads} window {window}");
            let (ok, total) = compare(&name, &client.displayed, &want);
            let s = ctx.stats();
            eprintln!("{name}: {ok}/{total} byte-exact, {} pipelined", s.pipelined);
            assert_eq!((ok, client.displayed.len()), (total, total), "{name}");
            assert_eq!(s.ok, client.jobs, "{name}: every job succeeds");
            assert_eq!(s.hidden, client.hidden, "{name}: hidden frames");
            if threads >= 2 && window >= threads {
                assert!(s.pipelined > 0, "{name}: the pipeline was not used");
            }
            if threads < 2 || window < threads {
                assert_eq!(s.pipelined, 0, "{name}: pipelined without enough jobs");
            }
        }
    }
}

/// An H.264 stream: every request's picture (decode order) must be the one the low-delay
/// decoder gives (itself checked against FFmpeg's reference, in output order, as a multiset).
fn check_h264(stream: &str) {
    let aus = h264_access_units(&std::fs::read(data_dir().join(stream)).unwrap());
    let want = read_framemd5(&data_dir().join(format!("{stream}.framemd5")));
    let run_pattern = |threads: usize, window: &dyn Fn(usize) -> usize| {
        let config = DecoderConfig {
            threads,
            ..Default::default()
        };
        let mut ctx = Context::new(1, config);
        let mut client = H264Client::new(1, 10);
        run_windowed(&mut ctx, &mut client, &aus, window);
        let s = ctx.stats();
        assert_eq!(
            s.ok,
            client.jobs(),
            "{stream} threads {threads}: every job succeeds"
        );
        (client.pictures, s.pipelined)
    };
    let run = |threads: usize, window: usize| run_pattern(threads, &|_| window);
    let (low_delay, _) = run(1, 1);
    let mut unmatched = want.clone();
    for p in &low_delay {
        let i = unmatched.iter().position(|w| w == p);
        assert!(i.is_some(), "{stream}: a picture FFmpeg does not output");
        unmatched.swap_remove(i.unwrap_or_default());
    }
    assert!(unmatched.is_empty(), "{stream}: pictures missing");
    for threads in 1..=4 {
        for window in 1..=8 {
            let name = format!("{stream} threads {threads} window {window}");
            let (pictures, pipelined) = run(threads, window);
            let same = pictures
                .iter()
                .zip(&low_delay)
                .filter(|(a, b)| a == b)
                .count();
            eprintln!(
                "{name}: {same}/{} pictures as with low delay, {pipelined} pipelined",
                low_delay.len()
            );
            assert_eq!(
                (same, pictures.len()),
                (low_delay.len(), low_delay.len()),
                "{name}"
            );
            if threads >= 2 && window >= threads {
                assert!(pipelined > 0, "{name}: the pipeline was not used");
            } else {
                assert_eq!(pipelined, 0, "{name}: pipelined without enough jobs");
            }
        }
    }
    // Entered mid-stream (the references replayed), starved, left and entered again.
    let n = aus.len();
    for (name, pattern) in CHANGING_WINDOWS {
        let (pictures, pipelined) = run_pattern(2, &|i| {
            pattern[(i * pattern.len() / n).min(pattern.len() - 1)]
        });
        eprintln!("{stream} {name}: {pipelined} pipelined");
        assert_eq!(pictures, low_delay, "{stream} {name}");
        assert!(pipelined > 0, "{stream} {name}");
    }
}

/// Client windows that change during a stream: (name, window over the stream's tenths).
const CHANGING_WINDOWS: [(&str, [usize; 10]); 3] = [
    ("1 then 4", [1, 1, 1, 1, 1, 4, 4, 4, 4, 4]),
    ("4 then 1", [4, 4, 4, 1, 1, 1, 1, 1, 1, 1]),
    ("alternating", [4, 1, 4, 1, 4, 1, 4, 1, 4, 1]),
];

/// An AV1 stream, a temporal unit or (`per_frame`) a frame a request: every shown request's
/// picture must be FFmpeg's (libdav1d's) frame, in order.
fn check_av1(stream: &str, depth: BitDepth, size: (u32, u32), per_frame: bool) {
    let data = std::fs::read(data_dir().join(stream)).unwrap();
    let (_, frames) = daedalus_codecs::ivf::frames(&data).unwrap();
    let tus: Vec<Vec<u8>> = match per_frame {
        false => frames.into_iter().map(|(_, f)| f.to_vec()).collect(),
        true => frames
            .into_iter()
            .flat_map(|(_, f)| av1_frames(f))
            .collect(),
    };
    let want = read_framemd5(&data_dir().join(format!("{stream}.framemd5")));
    let run = |threads: usize, window: &dyn Fn(usize) -> usize| {
        let config = DecoderConfig {
            threads,
            ..Default::default()
        };
        let mut ctx = Context::new(1, config);
        let mut client = Av1Client::new(1, 10, depth, size);
        run_windowed(&mut ctx, &mut client, &tus, window);
        let s = ctx.stats();
        assert_eq!(
            s.ok,
            client.jobs(),
            "{stream} threads {threads}: every job succeeds"
        );
        (client.pictures, s.pipelined, s.hidden)
    };
    for threads in 1..=4 {
        for window in 1..=8 {
            let name = format!("{stream} threads {threads} window {window}");
            let (pictures, pipelined, hidden) = run(threads, &|_| window);
            let (ok, total) = compare(&name, &pictures, &want);
            eprintln!("{name}: {ok}/{total} byte-exact, {pipelined} pipelined, {hidden} hidden");
            assert_eq!((ok, pictures.len()), (total, total), "{name}");
            if threads >= 2 && window >= threads {
                assert!(pipelined > 0, "{name}: the pipeline was not used");
            } else {
                assert_eq!(pipelined, 0, "{name}: pipelined without enough jobs");
            }
        }
    }
    let n = tus.len();
    for (name, pattern) in CHANGING_WINDOWS {
        let (pictures, pipelined, _) = run(2, &|i| {
            pattern[(i * pattern.len() / n).min(pattern.len() - 1)]
        });
        eprintln!("{stream} {name}: {pipelined} pipelined");
        assert_eq!(pictures, want, "{stream} {name}");
        assert!(pipelined > 0, "{stream} {name}");
    }
}

#[test]
fn av1_8bit_altref() {
    check_av1(
        "av1-96x64-8bit-altref.ivf",
        BitDepth::Eight,
        (96, 64),
        false,
    );
}

#[test]
fn av1_10bit_altref() {
    check_av1("av1-98x62-10bit-altref.ivf", BitDepth::Ten, (98, 62), false);
}

/// Hidden frames in requests of their own (shown through a `show_existing_frame` in the
/// pipeline too).
#[test]
fn av1_8bit_per_frame() {
    check_av1("av1-96x64-8bit-altref.ivf", BitDepth::Eight, (96, 64), true);
}

#[test]
fn h264_one_slice_b_pyramid() {
    check_h264("h264-96x64-bpyramid.264");
}

#[test]
fn h264_three_slices_cavlc() {
    check_h264("h264-96x64-3slices-cavlc.264");
}

#[test]
fn h264_10bit_cropped() {
    check_h264("h264-98x62-10bit-bframes.264");
}

#[test]
fn windows_against_threads_8bit() {
    check(
        "tiny-96x64-8bit-arf.ivf",
        "tiny-96x64-8bit-arf.ivf.ffmpeg-yuv420p.framemd5",
    );
}

#[test]
fn windows_against_threads_10bit() {
    check(
        "tiny-97x61-10bit-arf.ivf",
        "tiny-97x61-10bit-arf.ivf.ffmpeg-yuv420p10le.framemd5",
    );
}

/// A client whose window changes: the pipeline is entered in the middle of a group of pictures
/// (the references replayed), starved, left and entered again, and the pictures stay exact.
#[test]
fn changing_window() {
    let ivf = "tiny-96x64-8bit-arf.ivf";
    let frames = ivf_frames(&std::fs::read(data_dir().join(ivf)).unwrap());
    let want = read_framemd5(&data_dir().join("tiny-96x64-8bit-arf.ivf.ffmpeg-yuv420p.framemd5"));
    for (name, pattern) in CHANGING_WINDOWS {
        let (mut ctx, mut client) = context_and_client(2);
        let n = frames.len();
        run_windowed(&mut ctx, &mut client, &frames, |i| {
            pattern[(i * pattern.len() / n).min(pattern.len() - 1)]
        });
        let (ok, total) = compare(name, &client.displayed, &want);
        eprintln!(
            "{name}: {ok}/{total} byte-exact, {} pipelined",
            ctx.stats().pipelined
        );
        assert_eq!((ok, client.displayed.len()), (total, total), "{name}");
        assert_eq!(ctx.stats().ok, client.jobs, "{name}");
        assert!(ctx.stats().pipelined > 0, "{name}");
    }
}

/// Every frame-based H.264 vector of the shared set up to 1280x720 (`DAEDALUS_VECTORS`), 4
/// requests in flight on 2 threads (pipelined) against one in flight (low delay): the same
/// picture (or the same failure: streams the daemon refuses) for every request. Slow: run in
/// release (`cargo test --release -p daedalus-daemon --test pipeline -- --ignored`).
#[test]
#[ignore = "every vector: run in release"]
fn h264_vectors_pipelined() {
    let Some(dir) = vectors_dir() else {
        eprintln!("no vectors (set DAEDALUS_VECTORS); skipped");
        return;
    };
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("manifest");
    let (mut streams, mut same, mut pipelined_total) = (0, 0, 0);
    for line in manifest.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 4 || cols[0] != "h264" {
            continue;
        }
        let Some((w, h)) = cols[3].split_once('x') else {
            continue;
        };
        let pixels = w.parse::<u64>().unwrap_or(0) * h.parse::<u64>().unwrap_or(0);
        if pixels == 0 || pixels > 1280 * 720 {
            continue;
        }
        let aus = h264_access_units(&std::fs::read(dir.join(cols[1])).expect("vector"));
        let run = |threads: usize, window: usize| {
            let config = DecoderConfig {
                threads,
                ..Default::default()
            };
            let mut ctx = Context::new(1, config);
            let mut client = H264Client::new(1, 10);
            run_windowed(&mut ctx, &mut client, &aus, |_| window);
            (client.pictures, ctx.stats().pipelined)
        };
        let (low_delay, _) = run(2, 1);
        let (pipelined, n) = run(2, 4);
        streams += 1;
        pipelined_total += n;
        let equal = low_delay == pipelined;
        same += usize::from(equal);
        eprintln!(
            "{}: {} requests, {n} pipelined, {}",
            cols[1],
            low_delay.len(),
            if equal { "same pictures" } else { "DIFFERENT" }
        );
    }
    eprintln!("{same}/{streams} streams the same, {pipelined_total} requests pipelined");
    assert_eq!(same, streams);
}

/// Every IVF AV1 vector of the shared set up to 1280x720 (`DAEDALUS_VECTORS`), a temporal unit
/// a request, 4 requests in flight on 2 threads (pipelined) against one in flight (low delay):
/// the same picture (or the same failure) for every request. Slow: run in release.
#[test]
#[ignore = "every vector: run in release"]
fn av1_vectors_pipelined() {
    let Some(dir) = vectors_dir() else {
        eprintln!("no vectors (set DAEDALUS_VECTORS); skipped");
        return;
    };
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("manifest");
    let (mut streams, mut same, mut pipelined_total) = (0, 0, 0);
    let mut different = Vec::new();
    for line in manifest.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 4 || cols[0] != "av1" || !cols[1].ends_with(".ivf") {
            continue;
        }
        // AV1_VECTOR=TEXT: only the vectors whose path contains TEXT.
        if std::env::var("AV1_VECTOR").is_ok_and(|v| !cols[1].contains(&v)) {
            continue;
        }
        let Some((w, h)) = cols[3].split_once('x') else {
            continue;
        };
        let (Ok(w), Ok(h)) = (w.parse::<u32>(), h.parse::<u32>()) else {
            continue;
        };
        let depth = if cols[2] == "10" {
            BitDepth::Ten
        } else {
            BitDepth::Eight
        };
        if u64::from(w) * u64::from(h) > 1280 * 720 {
            continue;
        }
        let data = std::fs::read(dir.join(cols[1])).expect("vector");
        let Ok((_, frames)) = daedalus_codecs::ivf::frames(&data) else {
            continue;
        };
        let tus: Vec<Vec<u8>> = frames.into_iter().map(|(_, f)| f.to_vec()).collect();
        let run = |window: usize| {
            let config = DecoderConfig {
                threads: 2,
                ..Default::default()
            };
            let mut ctx = Context::new(1, config);
            let mut client = Av1Client::new(1, 10, depth, (w, h));
            run_windowed(&mut ctx, &mut client, &tus, |_| window);
            let s = ctx.stats();
            (client.pictures, s.pipelined, s.ok)
        };
        let (low_delay, _, ok_low) = run(1);
        let (pipelined, n, ok_piped) = run(4);
        streams += 1;
        pipelined_total += n;
        let equal = low_delay == pipelined && ok_low == ok_piped;
        same += usize::from(equal);
        if !equal {
            let at: Vec<usize> = (0..low_delay.len().max(pipelined.len()))
                .filter(|&i| low_delay.get(i) != pipelined.get(i))
                .collect();
            eprintln!("{}: requests {at:?} differ", cols[1]);
            for &i in &at {
                eprintln!("  {i}: {:?} / {:?}", low_delay.get(i), pipelined.get(i));
            }
            different.push(cols[1].to_string());
        }
        eprintln!(
            "{}: {} requests ({ok_low} ok), {n} pipelined, {}",
            cols[1],
            tus.len(),
            if equal { "same pictures" } else { "DIFFERENT" }
        );
    }
    eprintln!("{same}/{streams} streams the same, {pipelined_total} requests pipelined");
    assert!(different.is_empty(), "{different:?}");
}
