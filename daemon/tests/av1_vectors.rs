// SPDX-License-Identifier: GPL-2.0
//! In-process AV1 decode over the vectors (no kernel): every IVF temporal unit becomes one
//! request to `daedalus_daemon::av1::Av1Decoder` (full-OBU mode), with the FILM_GRAIN control
//! a client would set for the reference (grain only where the `.md5` line says
//! `--filmgrain 1`) and the SEQUENCE / FRAME / TILE_GROUP_ENTRY controls (so a grain override
//! can rebuild the frame). The shown pictures' MD5 (planar, dav1d layout) is compared with the
//! `.md5` reference. Prints byte-exact / refused / failing counts; fails on any mismatch.

use std::path::{Path, PathBuf};

use cros_codecs::codec::av1::parser::{ObuAction, ParsedObu, Parser};
use daedalus_codecs::av1::controls::{
    film_grain_control, frame_control, push_tile_group_entries, sequence_control,
};
use daedalus_daemon::av1::{Av1Controls, Av1Decoder};
use daedalus_daemon::{DecoderConfig, JobError};
use ffmpeg_next::format::Pixel;
use md5::{Digest, Md5};

fn vectors() -> Option<PathBuf> {
    let d = std::env::var_os("DAEDALUS_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"));
    let d = if d.join("MANIFEST.tsv").is_file() {
        d
    } else {
        PathBuf::from("/work/shared/vectors")
    };
    d.join("MANIFEST.tsv").is_file().then_some(d)
}

/// (md5, with grain) of the plain reference line, if the stream has one.
fn reference(path: &Path) -> Option<(String, bool)> {
    let text = std::fs::read_to_string(format!("{}.md5", path.display())).ok()?;
    text.lines().find_map(|l| {
        let skip = ["--oppoint", "--alllayers", "--decodeframetype", "--limit"];
        if skip.iter().any(|s| l.contains(s)) {
            return None;
        }
        let md5 = l.split_whitespace().next()?.to_string();
        Some((md5, l.contains("--filmgrain 1")))
    })
}

fn ivf_frames(data: &[u8]) -> Option<Vec<&[u8]>> {
    if data.len() < 32 || &data[..4] != b"DKIF" {
        return None;
    }
    let mut out = Vec::new();
    let mut pos = usize::from(u16::from_le_bytes([data[6], data[7]]));
    while pos + 12 <= data.len() {
        let len = u32::from_le_bytes(data[pos..pos + 4].try_into().ok()?) as usize;
        out.push(data.get(pos + 12..pos + 12 + len)?);
        pos += 12 + len;
    }
    Some(out)
}

/// Fills the controls of the last frame of a temporal unit (as a client would).
fn controls_for(parser: &mut Parser, tu: &[u8], grain: bool, c: &mut Av1Controls) {
    c.sequence = None;
    c.frame = None;
    c.film_grain = None;
    c.tiles.clear();
    let mut pos = 0;
    while pos < tu.len() {
        let Ok(action) = parser.read_obu(&tu[pos..]) else {
            return;
        };
        let obu = match action {
            ObuAction::Process(o) => o,
            ObuAction::Drop(n) => {
                pos += n as usize;
                continue;
            }
        };
        let start = (pos + obu.bytes_used - obu.as_ref().len()) as u32;
        pos += obu.bytes_used;
        let Ok(parsed) = parser.parse_obu(obu) else {
            return;
        };
        let fh = match parsed {
            ParsedObu::FrameHeader(fh) => fh,
            ParsedObu::TileGroup(tg) => {
                let _ = push_tile_group_entries(&tg, start, &mut c.tiles);
                continue;
            }
            ParsedObu::Frame(f) => {
                c.tiles.clear();
                let _ = push_tile_group_entries(
                    &f.tile_group,
                    start + f.header.header_bytes as u32,
                    &mut c.tiles,
                );
                f.header
            }
            _ => continue,
        };
        let _ = parser.ref_frame_update(&fh);
        if let Some(seq) = parser.sequence_header.clone() {
            c.sequence = sequence_control(&seq).ok();
            c.frame = frame_control(&seq, &fh, &[0; 8]).ok();
            c.film_grain = film_grain_control(&fh, grain).ok();
        }
    }
}

enum Outcome {
    Exact,
    Refused,
    Failed(String),
}

fn run(path: &Path, md5_ref: &str, grain: bool) -> Outcome {
    let Ok(data) = std::fs::read(path) else {
        return Outcome::Failed("unreadable".into());
    };
    let Some(tus) = ivf_frames(&data) else {
        return Outcome::Failed("not IVF".into());
    };
    let mut dec = match Av1Decoder::new(&DecoderConfig { threads: 1 }) {
        Ok(d) => d,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let mut parser = Parser::default();
    let mut controls = Av1Controls::default();
    let mut md5 = Md5::new();
    for (i, tu) in tus.iter().enumerate() {
        let mut p2 = parser.clone();
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            controls_for(&mut p2, tu, grain, &mut controls)
        }));
        if ok.is_err() {
            controls = Av1Controls::default();
            p2 = Parser::default();
        }
        parser = p2;
        match dec.decode(tu, &controls) {
            Ok(d) if d.picture && !d.hidden => hash(dec.picture(), &mut md5),
            Ok(_) => {}
            Err(JobError::Unsupported(_)) => return Outcome::Refused,
            Err(e) => return Outcome::Failed(format!("TU {i}: {e}")),
        }
    }
    let got = format!("{:x}", md5.finalize());
    if got == md5_ref {
        Outcome::Exact
    } else {
        Outcome::Failed(format!("md5 {got} != {md5_ref}"))
    }
}

fn hash(f: &ffmpeg_next::frame::Video, md5: &mut Md5) {
    let bps = if f.format() == Pixel::YUV420P10LE {
        2
    } else {
        1
    };
    let (w, h) = (f.width() as usize, f.height() as usize);
    for plane in 0..3 {
        let (pw, ph) = if plane == 0 {
            (w, h)
        } else {
            (w.div_ceil(2), h.div_ceil(2))
        };
        let stride = f.stride(plane);
        let data = f.data(plane);
        for row in 0..ph {
            md5.update(&data[row * stride..row * stride + pw * bps]);
        }
    }
}

#[test]
fn av1_vectors_decode_byte_exact() {
    let Some(dir) = vectors() else {
        eprintln!("skipped: no vectors (set DAEDALUS_VECTORS)");
        return;
    };
    daedalus_daemon::init_ffmpeg(log::LevelFilter::Off);
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let only = std::env::var("AV1_ONLY").ok();
    let (mut exact, mut refused, mut no_ref) = (0, 0, 0);
    let mut failed = Vec::new();
    for line in manifest.lines().skip(1) {
        let c: Vec<&str> = line.split('\t').collect();
        // Only dav1d-test-data's `.md5` files are whole-output MD5s.
        if c.len() < 10 || c[0] != "av1" || !c[1].ends_with(".ivf") || !c[1].contains("dav1d") {
            continue;
        }
        if only.as_ref().is_some_and(|o| !c[1].contains(o.as_str())) {
            continue;
        }
        let path = dir.join(c[1]);
        let Some((md5_ref, grain)) = reference(&path) else {
            no_ref += 1;
            continue;
        };
        match run(&path, &md5_ref, grain) {
            Outcome::Exact => exact += 1,
            Outcome::Refused => refused += 1,
            Outcome::Failed(e) => failed.push(format!("{}: {e}", c[1])),
        }
    }
    eprintln!(
        "AV1 in-process (full OBUs): {exact} byte-exact, {refused} refused (4:2:2/4:4:4/mono/\
         12-bit), {} failing, {no_ref} without a whole-output .md5",
        failed.len()
    );
    for f in &failed {
        eprintln!("FAIL {f}");
    }
    // Known open failures (see docs/av1.md): the film-grain override path rebuilds headers that
    // the rebuilder rejects or libdav1d refuses for these streams; 006 is a TU libdav1d
    // outputs nothing for. Anything else failing is a regression.
    const KNOWN: [&str; 6] = [
        "8-bit/data/00000019.ivf",
        "8-bit/data/00000502.ivf",
        "features/ccvb_film_grain.ivf",
        "issues/319_order_hint_bits_1.ivf",
        "issues/326_order_hint_bits_1.ivf",
        "432x240_006_vq_aom",
    ];
    let new: Vec<_> = failed
        .iter()
        .filter(|f| !KNOWN.iter().any(|k| f.contains(k)))
        .collect();
    assert!(new.is_empty(), "{} AV1 streams newly failed", new.len());
    if only.is_none() {
        assert!(exact >= 607, "only {exact} byte-exact");
    }
}
