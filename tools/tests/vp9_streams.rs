// SPDX-License-Identifier: GPL-2.0
//! Host tests of the `daedalus decode` pipeline without a device:
//!
//! * every VP9 IVF stream (the small ones in tests/data, and the shared test vectors in
//!   `../shared/vectors/vp9` when present, or `$DAEDALUS_VECTORS/vp9`) parses, displays as
//!   many frames as its reference has lines, has the size and bit depth of MANIFEST.tsv, and
//!   every frame's V4L2 controls pass the kernel's checks (`validate_vp9_frame()`);
//! * the picture path is byte-exact: decoded pictures in NV12 / P010 (committed for the small
//!   streams, decoded by the host's `ffmpeg` for the shared vectors), laid out as daedalus lays
//!   out CAPTURE buffers, converted and hashed, give exactly the reference MD5s and exactly what
//!   `ffmpeg -f framemd5` prints;
//! * the framemd5 time base and timestamps match the host's `ffmpeg` on IVF streams with assorted
//!   timestamps and on the WebM copies of the committed streams.
//!
//! Tests that need what is not there (the shared vectors, `ffmpeg`) say `SKIP` and pass.

use std::fs;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use daedalus_proto::formats::BitDepth;
use daedalus_tools::decode::Input;
use daedalus_tools::demux::{Demuxer, Probe, Track};
use daedalus_tools::ivf::{self, IvfReader};
use daedalus_tools::picture::{self, CaptureLayout, FrameMd5Writer};
use daedalus_tools::sys::v4l2_ctrl_vp9_compressed_hdr;
use daedalus_tools::vp9::stream::Vp9Stream;
use daedalus_tools::vp9::v4l2::{
    frame_control, validate_compressed_hdr, validate_frame, RefTimestamps,
};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// The shared vectors' vp9 directory, if present.
fn vectors_dir() -> Option<PathBuf> {
    daedalus_codecs::vectors::shared_dir()
        .map(|d| d.join("vp9"))
        .filter(|d| d.is_dir())
}

fn have_ffmpeg() -> bool {
    Command::new("ffmpeg")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Every IVF file under `dir`.
fn ivf_files(dir: &Path) -> Vec<PathBuf> {
    ivf::files_under(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// One displayed picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shown {
    pts: i64,
    width: u32,
    height: u32,
    depth: u8,
}

/// What parsing a stream gives.
struct Parsed {
    track: Track,
    packets: usize,
    shown: Vec<Shown>,
    decoded: usize,
}

/// Parses a stream the way `daedalus decode` does and checks every frame's controls against
/// the kernel's validation (and the compressed header against the specification's padding
/// rule).
fn parse(path: &Path) -> Parsed {
    let name = path.display();
    let open = |probe| {
        Demuxer::open(&Input::File(path.to_path_buf()), probe)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .unwrap_or_else(|| panic!("{name}: not a container"))
    };
    let mut demuxer = open(Probe::StreamInfo);
    let track = demuxer.track().clone();
    let mut packets = 0;
    let mut buf = Vec::new();
    while demuxer.next_packet(&mut buf).unwrap().is_some() {
        packets += 1;
    }

    let mut stream = Vp9Stream::new(open(Probe::Headers));
    let mut compressed = v4l2_ctrl_vp9_compressed_hdr::default();
    let mut shown = Vec::new();
    let mut decoded = 0;
    while let Some(f) = stream
        .next_frame(&mut compressed)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
    {
        let h = &f.parsed.header;
        let s = Shown {
            pts: f.pts,
            width: h.width,
            height: h.height,
            depth: h.bit_depth,
        };
        if h.show_existing_frame {
            shown.push(s);
            continue;
        }
        decoded += 1;
        assert!(
            f.parsed.compressed.padding_zero,
            "{name}: packet {}: compressed header padding is not zero (parse out of sync)",
            f.packet
        );
        let refs = RefTimestamps {
            last: 1000,
            golden: 2000,
            alt: 3000,
        };
        let control = frame_control(h, &f.parsed.compressed, refs);
        validate_frame(&control).unwrap_or_else(|e| panic!("{name}: packet {}: {e}", f.packet));
        validate_compressed_hdr(&compressed)
            .unwrap_or_else(|e| panic!("{name}: packet {}: {e}", f.packet));
        assert_eq!(usize::from(control.compressed_header_size), {
            usize::from(h.compressed_header_size)
        });
        assert!(
            usize::from(h.uncompressed_header_size) + usize::from(h.compressed_header_size)
                < f.data.len()
        );
        if h.show_frame {
            shown.push(s);
        }
    }
    Parsed {
        track,
        packets,
        shown,
        decoded,
    }
}

/// The MD5 lines of a reference (`#` lines dropped; the hash is the last field).
fn reference_md5s(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.rsplit(", ").next().unwrap_or(l).trim().to_owned())
        .collect()
}

/// The reference framemd5 of a shared vector, and its pixel format.
fn shared_reference(vector: &Path) -> Option<(PathBuf, &'static str)> {
    ["yuv420p", "yuv420p10le"].into_iter().find_map(|fmt| {
        let mut p = vector.as_os_str().to_owned();
        p.push(format!(".ffmpeg-{fmt}.framemd5"));
        let p = PathBuf::from(p);
        p.exists().then_some((p, fmt))
    })
}

/// MANIFEST.tsv rows: file -> (bit depth, first frame size).
fn manifest(vp9: &Path) -> Vec<(String, u8, (u32, u32))> {
    let Ok(text) = fs::read_to_string(vp9.join("../MANIFEST.tsv")) else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            if f.first() != Some(&"vp9") || f.len() < 4 {
                return None;
            }
            let (w, h) = f[3].split_once('x')?;
            Some((
                f[1].to_owned(),
                f[2].parse().ok()?,
                (w.parse().ok()?, h.parse().ok()?),
            ))
        })
        .collect()
}

#[test]
fn committed_streams_parse() {
    for (name, decoded, shown) in [
        ("vp9-8bit-35x19-arf.ivf", 18, 16),
        ("vp9-10bit-18x10-lossless.ivf", 4, 4),
        ("vp9-8bit-resize.ivf", 7, 7),
    ] {
        let p = parse(&data_dir().join(name));
        assert_eq!((p.decoded, p.shown.len()), (decoded, shown), "{name}");
        let reference = data_dir().join(name.replace(".ivf", ".framemd5"));
        assert_eq!(reference_md5s(&reference).len(), shown, "{name}");
    }
    let resize = parse(&data_dir().join("vp9-8bit-resize.ivf"));
    let sizes: Vec<(u32, u32)> = resize.shown.iter().map(|s| (s.width, s.height)).collect();
    assert_eq!(sizes[..4], [(16, 16); 4]);
    assert_eq!(sizes[4..], [(24, 20); 3]);
}

#[test]
fn shared_vectors_parse() {
    let Some(vp9) = vectors_dir() else {
        eprintln!("SKIP: no shared test vectors (set DAEDALUS_VECTORS)");
        return;
    };
    let manifest = manifest(&vp9);
    let files = ivf_files(&vp9);
    assert!(!files.is_empty(), "no IVF file under {}", vp9.display());
    for path in files {
        let name = path.display().to_string();
        let p = parse(&path);
        let (reference, fmt) =
            shared_reference(&path).unwrap_or_else(|| panic!("{name}: no reference"));
        assert_eq!(
            p.shown.len(),
            reference_md5s(&reference).len(),
            "{name}: displayed frames"
        );
        let depth = if fmt == "yuv420p" { 8 } else { 10 };
        assert!(
            p.shown.iter().all(|s| s.depth == depth),
            "{name}: bit depth"
        );
        if let Some((_, bits, size)) = manifest.iter().find(|(f, ..)| name.ends_with(f.as_str())) {
            assert_eq!(*bits, depth, "{name}: MANIFEST bit depth");
            let first = p.shown[0];
            assert_eq!((first.width, first.height), *size, "{name}: MANIFEST size");
        }
        eprintln!(
            "{name}: {} packets, {} decoded, {} shown",
            p.packets,
            p.decoded,
            p.shown.len()
        );
    }
}

/// Puts a tightly packed NV12 / P010 picture into a buffer laid out as daedalus' CAPTURE
/// buffers are (rows aligned to 64 bytes, chroma after the luma of the even height), with
/// garbage in the padding.
fn to_capture_buffer(tight: &[u8], depth: BitDepth, w: u32, h: u32) -> (Vec<u8>, CaptureLayout) {
    let layout = CaptureLayout::for_size(depth, w, h);
    let bps = depth.bytes_per_sample() as usize;
    let (cw, ch) = picture::chroma_size(w, h);
    let (w, h) = (w as usize, h as usize);
    let mut buf = vec![0x5au8; layout.chroma_offset + ch * layout.bytesperline];
    let (luma, chroma) = tight.split_at(w * h * bps);
    for (y, row) in luma.chunks(w * bps).enumerate() {
        buf[y * layout.bytesperline..][..row.len()].copy_from_slice(row);
    }
    for (y, row) in chroma.chunks(2 * cw * bps).take(ch).enumerate() {
        buf[layout.chroma_offset + y * layout.bytesperline..][..row.len()].copy_from_slice(row);
    }
    (buf, layout)
}

/// Runs the pictures of `raw` (tightly packed, one per displayed frame) through the CAPTURE
/// layout, the conversion and both MD5 writers; returns (framemd5 text, MD5 lines).
fn hash_pictures(p: &Parsed, raw: &mut dyn Read) -> (String, Vec<String>) {
    let mut text = Vec::new();
    let mut md5s = Vec::new();
    let mut writer = FrameMd5Writer::new(&mut text, p.track.framemd5);
    let mut tight = Vec::new();
    let mut planar = Vec::new();
    for s in &p.shown {
        let depth = BitDepth::from_bits(u32::from(s.depth)).expect("8 or 10 bits");
        let (cw, ch) = picture::chroma_size(s.width, s.height);
        let bps = depth.bytes_per_sample() as usize;
        tight.resize((s.width * s.height) as usize * bps + 2 * cw * ch * bps, 0);
        raw.read_exact(&mut tight)
            .expect("one picture per displayed frame");
        let (buf, layout) = to_capture_buffer(&tight, depth, s.width, s.height);
        picture::to_planar(&buf, &layout, s.width, s.height, &mut planar).unwrap();
        assert_eq!(planar.len(), picture::planar_size(depth, s.width, s.height));
        writer.frame(s.pts, s.width, s.height, &planar).unwrap();
        md5s.push(picture::md5_hex(&planar).to_string());
    }
    assert_eq!(
        raw.read(&mut [0u8; 1]).unwrap(),
        0,
        "more pictures than frames"
    );
    writer.flush().unwrap();
    (String::from_utf8(text).unwrap(), md5s)
}

#[test]
fn committed_pictures_hash_like_ffmpeg() {
    for (name, raw_ext) in [
        ("vp9-8bit-35x19-arf", "nv12"),
        ("vp9-10bit-18x10-lossless", "p010"),
        ("vp9-8bit-resize", "nv12"),
    ] {
        let p = parse(&data_dir().join(format!("{name}.ivf")));
        let raw = fs::read(data_dir().join(format!("{name}.{raw_ext}"))).unwrap();
        let (text, md5s) = hash_pictures(&p, &mut &raw[..]);
        let reference = data_dir().join(format!("{name}.framemd5"));
        assert_eq!(md5s, reference_md5s(&reference), "{name}: MD5s");
        assert_eq!(
            text,
            fs::read_to_string(&reference).unwrap(),
            "{name}: framemd5 output differs from FFmpeg's"
        );
    }
}

/// `ffmpeg -i INPUT -fps_mode passthrough -autoscale 0 ARGS -` as bytes.
fn ffmpeg(input: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(input)
        .args(["-fps_mode", "passthrough", "-autoscale", "0"])
        .args(args)
        .arg("-")
        .stderr(Stdio::inherit())
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "ffmpeg failed on {}", input.display());
    out.stdout
}

#[test]
fn shared_vector_pictures_hash_like_the_references() {
    let Some(vp9) = vectors_dir() else {
        eprintln!("SKIP: no shared test vectors (set DAEDALUS_VECTORS)");
        return;
    };
    if !have_ffmpeg() {
        eprintln!("SKIP: no ffmpeg to decode the shared vectors");
        return;
    }
    for path in ivf_files(&vp9) {
        let name = path.display().to_string();
        let p = parse(&path);
        let (reference, fmt) =
            shared_reference(&path).unwrap_or_else(|| panic!("{name}: no reference"));
        let raw_fmt = if fmt == "yuv420p" { "nv12" } else { "p010le" };
        // Stream the raw pictures: some vectors decode to hundreds of megabytes.
        let mut child = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-i"])
            .arg(&path)
            .args(["-fps_mode", "passthrough", "-autoscale", "0"])
            .args(["-pix_fmt", raw_fmt, "-f", "rawvideo", "-"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("ffmpeg runs");
        let mut raw = BufReader::with_capacity(1 << 20, child.stdout.take().unwrap());
        let (text, md5s) = hash_pictures(&p, &mut raw);
        assert!(child.wait().unwrap().success());
        assert_eq!(md5s, reference_md5s(&reference), "{name}: MD5s");
        let ffmpeg_text = ffmpeg(&path, &["-pix_fmt", fmt, "-f", "framemd5"]);
        assert_eq!(
            text,
            String::from_utf8(ffmpeg_text).unwrap(),
            "{name}: framemd5 output differs from ffmpeg's"
        );
        eprintln!("{name}: {} pictures byte-exact", md5s.len());
    }
}

/// Rewrites the timestamps (and time base) of an IVF stream.
fn retime(src: &Path, dst: &Path, tb: (u32, u32), pts: &dyn Fn(usize) -> i64) {
    let mut r = IvfReader::new(BufReader::new(fs::File::open(src).unwrap())).unwrap();
    let mut h = *r.header();
    (h.timebase_num, h.timebase_den) = tb;
    let mut out = Vec::new();
    ivf::write_header(&mut out, &h).unwrap();
    let mut buf = Vec::new();
    let mut i = 0;
    while r.next_frame(&mut buf).unwrap().is_some() {
        ivf::write_frame(&mut out, pts(i), &buf).unwrap();
        i += 1;
    }
    fs::write(dst, out).unwrap();
}

#[test]
fn timestamps_match_ffmpeg() {
    if !have_ffmpeg() {
        eprintln!("SKIP: no ffmpeg");
        return;
    }
    type Pts = Box<dyn Fn(usize) -> i64>;
    let cases: Vec<(&str, (u32, u32), Pts)> = vec![
        (
            "ms, 30 fps",
            (1, 1000),
            Box::new(|i| (i as i64 * 1000) / 30),
        ),
        ("ms, 25 fps", (1, 1000), Box::new(|i| i as i64 * 40)),
        (
            "ms, jitter",
            (1, 1000),
            Box::new(|i| i as i64 * 33 + (i as i64 % 3)),
        ),
        (
            "90 kHz, 29.97 fps",
            (1, 90000),
            Box::new(|i| i as i64 * 3003),
        ),
        (
            "1/30, every other tick",
            (1, 30),
            Box::new(|i| 2 * i as i64),
        ),
        (
            "1001/30000, one tick",
            (1001, 30000),
            Box::new(|i| i as i64),
        ),
        (
            "ms, late start",
            (1, 1000),
            Box::new(|i| 5000 + i as i64 * 40),
        ),
        (
            "ms, variable",
            (1, 1000),
            Box::new(|i| [0, 50, 66, 150, 166, 300][i % 6] + 300 * (i / 6) as i64),
        ),
        ("ms, all zero", (1, 1000), Box::new(|_| 0)),
        ("1/60, one tick", (1, 60), Box::new(|i| i as i64)),
        ("1/120, four ticks", (1, 120), Box::new(|i| 4 * i as i64)),
        ("one second ticks", (1, 1), Box::new(|i| i as i64)),
        (
            "1/1000000, 24 fps",
            (1, 1_000_000),
            Box::new(|i| i as i64 * 41_667),
        ),
        (
            "ms, backwards",
            (1, 1000),
            Box::new(|i| [0, 80, 40][i % 3] + 120 * (i / 3) as i64),
        ),
    ];
    let src = data_dir().join("vp9-8bit-35x19-arf.ivf");
    let dir = std::env::temp_dir().join(format!("daedalus-timing-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    for (what, tb, pts) in cases {
        let file = dir.join("retimed.ivf");
        retime(&src, &file, tb, &*pts);
        let p = parse(&file);
        let raw = ffmpeg(&file, &["-pix_fmt", "nv12", "-f", "rawvideo"]);
        let (text, _) = hash_pictures(&p, &mut &raw[..]);
        let expected =
            String::from_utf8(ffmpeg(&file, &["-pix_fmt", "yuv420p", "-f", "framemd5"])).unwrap();
        assert_eq!(text, expected, "{what}: framemd5 differs from ffmpeg's");
    }
    fs::remove_dir_all(&dir).ok();
}

/// The WebM copies of the committed streams (plain, live with unknown sizes, with an Opus track
/// first): the same pictures as their IVF originals, and the framemd5 FFmpeg prints for the WebM
/// file itself (its own time base and frame rate guess).
#[test]
fn webm_copies_match_ffmpeg() {
    if !have_ffmpeg() {
        eprintln!("SKIP: no ffmpeg");
        return;
    }
    for (webm, ivf) in [
        ("vp9-8bit-35x19-arf.webm", "vp9-8bit-35x19-arf"),
        ("vp9-8bit-35x19-arf-live.webm", "vp9-8bit-35x19-arf"),
        ("vp9-8bit-35x19-arf-opus.webm", "vp9-8bit-35x19-arf"),
        ("vp9-10bit-18x10-lossless.webm", "vp9-10bit-18x10-lossless"),
        ("vp9-8bit-resize.webm", "vp9-8bit-resize"),
    ] {
        let path = data_dir().join(webm);
        let p = parse(&path);
        assert_eq!(p.track.container, "Matroska / WebM", "{webm}");
        let raw_ext = if ivf.contains("10bit") {
            "p010"
        } else {
            "nv12"
        };
        let raw = fs::read(data_dir().join(format!("{ivf}.{raw_ext}"))).unwrap();
        let (text, md5s) = hash_pictures(&p, &mut &raw[..]);
        assert_eq!(
            md5s,
            reference_md5s(&data_dir().join(format!("{ivf}.framemd5"))),
            "{webm}: MD5s"
        );
        let fmt = if ivf.contains("10bit") {
            "yuv420p10le"
        } else {
            "yuv420p"
        };
        let expected = String::from_utf8(ffmpeg(
            &path,
            &["-map", "0:v:0", "-pix_fmt", fmt, "-f", "framemd5"],
        ))
        .unwrap();
        assert_eq!(text, expected, "{webm}: framemd5 differs from ffmpeg's");
    }
}
