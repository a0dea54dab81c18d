// SPDX-License-Identifier: GPL-2.0
//! The WebM reader on real files: the WebM streams of tests/data are FFmpeg remuxes
//! (`-c copy`) of the IVF streams next to them (see generate.sh), so they must give exactly the
//! IVF frames, in the same order, byte for byte, at the same times. Plus container sniffing on
//! every test file.

use std::fs;
use std::path::{Path, PathBuf};

use daedalus_tools::container::{self, Container};
use daedalus_tools::ivf::IvfReader;
use daedalus_tools::webm::{WebmFrame, WebmHeader, WebmReader};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// (WebM file, its IVF source).
const PAIRS: &[(&str, &str)] = &[
    ("vp9-8bit-35x19-arf.webm", "vp9-8bit-35x19-arf.ivf"),
    (
        "vp9-10bit-18x10-lossless.webm",
        "vp9-10bit-18x10-lossless.ivf",
    ),
    ("vp9-8bit-resize.webm", "vp9-8bit-resize.ivf"),
    // Unknown-size Segment and Clusters, several Clusters.
    ("vp9-8bit-35x19-arf-live.webm", "vp9-8bit-35x19-arf.ivf"),
    // An Opus track first, interleaved, with a BlockGroup.
    ("vp9-8bit-35x19-arf-opus.webm", "vp9-8bit-35x19-arf.ivf"),
];

fn read_webm(path: &Path) -> (WebmHeader, Vec<(WebmFrame, Vec<u8>)>) {
    let data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader =
        WebmReader::new(&data[..]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut frames = Vec::new();
    let mut buf = Vec::new();
    while let Some(frame) = reader
        .next_frame(&mut buf)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    {
        frames.push((frame, buf.clone()));
    }
    (reader.header().clone(), frames)
}

#[test]
fn webm_frames_are_the_ivf_frames() {
    for &(webm, ivf) in PAIRS {
        let (header, frames) = read_webm(&data_dir().join(webm));
        let ivf_data = fs::read(data_dir().join(ivf)).expect("IVF file");
        let mut ivf_reader = IvfReader::new(&ivf_data[..]).expect("IVF header");
        let ivf_header = *ivf_reader.header();

        assert_eq!(header.codec_id, "V_VP9", "{webm}");
        assert_eq!(header.timecode_scale, 1_000_000, "{webm}");
        assert_eq!(
            (header.width, header.height),
            (u32::from(ivf_header.width), u32::from(ivf_header.height)),
            "{webm}"
        );
        let audio_first = webm.contains("opus");
        assert_eq!(header.track_number, if audio_first { 2 } else { 1 });

        let mut count = 0;
        let mut buf = Vec::new();
        while let Some(ivf_frame) = ivf_reader.next_frame(&mut buf).expect("IVF frame") {
            let i = count;
            count += 1;
            let Some((frame, data)) = frames.get(i) else {
                panic!("{webm}: only {} frames, the IVF has more", frames.len());
            };
            assert_eq!(frame.index, i as u64, "{webm}");
            assert_eq!(*data, buf, "{webm}: frame {i} differs from the IVF's");
            // Key frames: the first, and the first of the second part of the resize stream.
            let keyframe = i == 0 || (webm.contains("resize") && i == 4);
            assert_eq!(frame.keyframe, keyframe, "{webm}: frame {i} key frame flag");
            // The WebM timestamps are the IVF's, rounded to the millisecond: they map back.
            assert_eq!(frame.pts_ns, frame.pts * 1_000_000, "{webm}");
            let (num, den) = (
                i128::from(ivf_header.timebase_num),
                i128::from(ivf_header.timebase_den),
            );
            let ns = i128::from(frame.pts_ns);
            let back = (ns * den + num * 500_000_000) / (num * 1_000_000_000);
            assert_eq!(back, i128::from(ivf_frame.pts), "{webm}: frame {i} pts");
        }
        assert_eq!(frames.len(), count, "{webm}: frame count");
        assert!(count > 1, "{webm}");
    }
}

/// The WebM reader streams: it does not need `Seek`, and works from a reader that returns one
/// byte at a time.
#[test]
fn reads_from_a_byte_by_byte_stream() {
    struct Trickle<'a>(&'a [u8]);
    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((&b, rest)), Some(out)) => {
                    *out = b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }
    for &(webm, _) in PAIRS {
        let path = data_dir().join(webm);
        let (_, expected) = read_webm(&path);
        let data = fs::read(&path).expect("WebM file");
        let mut reader = WebmReader::new(Trickle(&data)).expect("WebM header");
        let mut buf = Vec::new();
        for (frame, bytes) in &expected {
            assert_eq!(reader.next_frame(&mut buf).expect("frame"), Some(*frame));
            assert_eq!(&buf, bytes);
        }
        assert_eq!(reader.next_frame(&mut buf).expect("end"), None);
    }
}

#[test]
fn sniffs_the_test_files() {
    for entry in fs::read_dir(data_dir()).expect("tests/data") {
        let path = entry.expect("entry").path();
        let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
            continue;
        };
        let data = fs::read(&path).expect("readable file");
        let head = &data[..data.len().min(container::SNIFF_LEN)];
        let expected = match ext {
            "ivf" => Container::Ivf,
            "webm" => Container::Webm,
            "framemd5" | "sh" => Container::Unknown,
            _ => continue,
        };
        assert_eq!(container::sniff(head), expected, "{}", path.display());
    }
}
