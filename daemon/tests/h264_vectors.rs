// SPDX-License-Identifier: GPL-2.0
//! H.264 vectors through the daemon's decoder (no kernel): each stream split into access units,
//! parsed with cros-codecs, the controls filled by `daedalus_codecs::h264::controls`, decoded by
//! `daedalus_daemon::codec::h264` frame-based (Annex-B and no start codes) and slice-based (one slice
//! per request, HOLD_CAPTURE on all but the last), written as NV12 / P010 like a CAPTURE buffer,
//! converted back to planar and MD5-compared per picture with the `.framemd5` reference.
//!
//! FFmpeg's references are in output (POC) order and the daemon produces decode order, so each
//! decoded picture must equal a reference frame not matched before (multiset comparison), and
//! the picture count must equal the reference frame count.

mod common;

use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use cros_codecs::codec::h264::parser::{Nalu, NaluType, Parser, Pps};
use daedalus_codecs::h264::controls::{pps_control, scaling_matrix_control, sps_control};
use daedalus_codecs::uapi;
use daedalus_daemon::codec::h264::{H264Controls, H264Decoder};
use daedalus_daemon::convert::{self, SemiPlanar};
use daedalus_daemon::error::JobError;
use daedalus_daemon::DecoderConfig;
use daedalus_proto::wire::PictureFormat;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    FrameAnnexB,
    FrameNoStartCode,
    SliceNoStartCode,
}

struct Slice {
    nal: Vec<u8>,
    first_mb: u32,
    pps: Rc<Pps>,
    idr: bool,
}

/// Access units: the slices of each picture (a picture starts at first_mb_in_slice 0).
fn access_units(data: &[u8]) -> Result<Vec<Vec<Slice>>, String> {
    let mut parser = Parser::default();
    let mut cursor = Cursor::new(data);
    let mut aus: Vec<Vec<Slice>> = Vec::new();
    while let Ok(nalu) = Nalu::next(&mut cursor) {
        match nalu.header.type_ {
            NaluType::Sps => {
                parser.parse_sps(&nalu)?;
            }
            NaluType::Pps => {
                parser.parse_pps(&nalu)?;
            }
            NaluType::Slice | NaluType::SliceIdr => {
                let idr = matches!(nalu.header.type_, NaluType::SliceIdr);
                let nal = nalu.as_ref().to_vec();
                let s = parser.parse_slice_header(nalu)?;
                let pps = Rc::clone(
                    parser
                        .get_pps(s.header.pic_parameter_set_id)
                        .ok_or("slice without PPS")?,
                );
                let slice = Slice {
                    nal,
                    first_mb: s.header.first_mb_in_slice,
                    pps,
                    idr,
                };
                if slice.first_mb == 0 || aus.is_empty() {
                    aus.push(vec![slice]);
                } else if let Some(au) = aus.last_mut() {
                    au.push(slice);
                }
            }
            _ => {}
        }
    }
    Ok(aus)
}

fn controls(s: &Slice, mode: Mode) -> H264Controls {
    let mut decode_params: uapi::v4l2_ctrl_h264_decode_params =
        // SAFETY: an all-zero decode-params struct is valid (no DPB entry VALID).
        unsafe { std::mem::zeroed() };
    if s.idr {
        decode_params.flags |= uapi::V4L2_H264_DECODE_PARAM_FLAG_IDR_PIC;
    }
    H264Controls {
        sps: sps_control(&s.pps.sps),
        pps: pps_control(&s.pps),
        scaling_matrix: scaling_matrix_control(&s.pps),
        decode_params,
        first_mb_in_slice: Some(s.first_mb),
        slice_based: mode == Mode::SliceNoStartCode,
        annex_b: mode == Mode::FrameAnnexB,
    }
}

/// MD5 of the picture as written into an NV12/P010 buffer, cropped, back to planar.
fn written_md5(dec: &H264Decoder, pps: &Pps) -> Result<String, JobError> {
    let pic = dec.picture()?;
    let bps = pic.depth.bytes_per_sample() as usize;
    let bpl = pic.width.next_multiple_of(16) * bps;
    let chroma_offset = bpl * pic.height;
    let mut buf = vec![0u8; chroma_offset + bpl * pic.height.div_ceil(2)];
    convert::write_semiplanar(
        &pic,
        &mut buf,
        SemiPlanar {
            bytesperline: bpl,
            chroma_offset,
        },
    )?;
    let sps = &pps.sps;
    let (l, t) = if sps.frame_cropping_flag {
        (
            2 * sps.frame_crop_left_offset as usize,
            2 * sps.frame_crop_top_offset as usize,
        )
    } else {
        (0, 0)
    };
    let (w, h) = if sps.frame_cropping_flag {
        (
            sps.width() as usize
                - 2 * (sps.frame_crop_left_offset + sps.frame_crop_right_offset) as usize,
            sps.height() as usize
                - 2 * (sps.frame_crop_top_offset + sps.frame_crop_bottom_offset) as usize,
        )
    } else {
        (sps.width() as usize, sps.height() as usize)
    };
    let format = PictureFormat {
        fourcc: pic.depth.capture_fourcc(),
        width: pic.width as u32,
        height: pic.height as u32,
        bytesperline: bpl as u32,
        sizeimage: buf.len() as u32,
        chroma_offset: chroma_offset as u32,
    };
    Ok(common::window_md5(
        &buf,
        &format,
        (l as u32, t as u32),
        w as u32,
        h as u32,
    ))
}

#[derive(Debug, Default)]
struct Outcome {
    pictures: usize,
    matched: usize,
    refused: Option<String>,
    error: Option<String>,
}

fn run(path: &Path, reference: &[String], mode: Mode) -> Outcome {
    let mut o = Outcome::default();
    let data = std::fs::read(path).expect("read vector");
    let aus = match access_units(&data) {
        Ok(a) => a,
        Err(e) => {
            o.error = Some(format!("parse: {e}"));
            return o;
        }
    };
    // H264_THREADS=N: FFmpeg slice threads of the decoder (default 2).
    let threads = std::env::var("H264_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(2);
    let mut dec = H264Decoder::new(&DecoderConfig {
        threads,
        ..Default::default()
    })
    .expect("decoder");
    let mut remaining: HashMap<&str, usize> = HashMap::new();
    for r in reference {
        *remaining.entry(r.as_str()).or_default() += 1;
    }
    for (i, au) in aus.iter().enumerate() {
        let ts = (i as u64 + 1) * 1000;
        let result = match mode {
            Mode::FrameAnnexB | Mode::FrameNoStartCode => {
                let mut bits = Vec::new();
                for s in au {
                    if mode == Mode::FrameAnnexB {
                        bits.extend_from_slice(&[0, 0, 0, 1]);
                    }
                    bits.extend_from_slice(&s.nal);
                }
                dec.decode(&controls(&au[0], mode), ts, false, &bits)
            }
            Mode::SliceNoStartCode => au.iter().enumerate().try_for_each(|(k, s)| {
                dec.decode(&controls(s, mode), ts, k + 1 < au.len(), &s.nal)?;
                // Written after every request, as the daemon does.
                written_md5(&dec, &s.pps).map(|_| ())
            }),
        };
        match result {
            Ok(()) => {}
            Err(e @ JobError::Unsupported(_)) => {
                o.refused = Some(e.to_string());
                return o;
            }
            Err(e) => {
                o.error = Some(format!("picture {i}: {e}"));
                return o;
            }
        }
        o.pictures += 1;
        match written_md5(&dec, &au[0].pps) {
            Ok(md5) => {
                if let Some(n) = remaining.get_mut(md5.as_str()).filter(|n| **n > 0) {
                    *n -= 1;
                    o.matched += 1;
                }
            }
            Err(e) => {
                o.error = Some(format!("picture {i}: {e}"));
                return o;
            }
        }
    }
    o
}

fn reference_for(dir: &Path, file: &str) -> Option<PathBuf> {
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).ok()?;
    for line in manifest.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() > 5 && cols[0] == "h264" && cols[1] == file {
            let base = Path::new(file).parent()?;
            let refs = cols[5]
                .split_whitespace()
                .find(|r| r.ends_with(".framemd5"))?;
            return Some(dir.join(base).join(refs));
        }
    }
    None
}

fn run_all(heavy: bool) {
    let Some(dir) = common::vectors_dir() else {
        eprintln!("no vectors (set DAEDALUS_VECTORS); skipped");
        return;
    };
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("manifest");
    let mut totals: HashMap<&str, (usize, usize, usize)> = HashMap::new();
    let mut failures = Vec::new();
    for line in manifest.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 6 || cols[0] != "h264" {
            continue;
        }
        let big = cols[3]
            .split_once('x')
            .and_then(|(w, h)| Some(w.parse::<u64>().ok()? * h.parse::<u64>().ok()?))
            .is_some_and(|px| px > 1280 * 720);
        if big != heavy {
            continue;
        }
        let Some(refpath) = reference_for(&dir, cols[1]) else {
            continue;
        };
        let reference = common::read_framemd5(&refpath);
        let path = dir.join(cols[1]);
        for (mode, name) in [
            (Mode::FrameAnnexB, "frame/annexb"),
            (Mode::FrameNoStartCode, "frame/none"),
            (Mode::SliceNoStartCode, "slice/none"),
        ] {
            let o = run(&path, &reference, mode);
            let t = totals.entry(name).or_default();
            if mode == Mode::FrameNoStartCode && o.refused.is_none() {
                failures.push(format!("{} {name}: not refused", cols[1]));
            }
            let verdict = if let Some(r) = &o.refused {
                t.1 += 1;
                format!("refused ({r})")
            } else if o.error.is_none()
                && o.matched == reference.len()
                && o.pictures == reference.len()
            {
                t.0 += 1;
                "byte-exact".to_string()
            } else {
                t.2 += 1;
                let msg = format!(
                    "{} {name}: {}/{} pictures match ({} decoded){}",
                    cols[1],
                    o.matched,
                    reference.len(),
                    o.pictures,
                    o.error
                        .as_deref()
                        .map(|e| format!(", {e}"))
                        .unwrap_or_default()
                );
                failures.push(msg.clone());
                msg
            };
            eprintln!("{:<70} {name:<13} {verdict}", cols[1]);
        }
    }
    for (name, (exact, refused, failing)) in &totals {
        eprintln!("{name}: {exact} byte-exact, {refused} refused, {failing} failing");
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
#[ignore = "every vector, slow unoptimized: `make test-host` runs it in release"]
fn h264_vectors_byte_exact() {
    run_all(false);
}

/// The 1080p / 4K vectors: slow in a debug build; the VM tests run them through the device.
#[test]
#[ignore]
fn h264_heavy_vectors_byte_exact() {
    run_all(true);
}

/// A VALID DPB entry naming a timestamp never decoded is a decode error, not a picture.
#[test]
fn missing_reference_is_a_decode_error() {
    let Some(dir) = common::vectors_dir() else {
        return;
    };
    let data = std::fs::read(dir.join("h264/cros-codecs/64x64-I-P.h264")).expect("vector");
    let aus = access_units(&data).expect("parse");
    let mut dec = H264Decoder::new(&DecoderConfig {
        threads: 1,
        ..Default::default()
    })
    .expect("decoder");
    let mut idr = Vec::new();
    for s in &aus[0] {
        idr.extend_from_slice(&[0, 0, 0, 1]);
        idr.extend_from_slice(&s.nal);
    }
    dec.decode(&controls(&aus[0][0], Mode::FrameAnnexB), 1000, false, &idr)
        .expect("IDR");
    let mut c = controls(&aus[1][0], Mode::FrameAnnexB);
    c.decode_params.dpb[0].reference_ts = 999;
    c.decode_params.dpb[0].flags = uapi::V4L2_H264_DPB_ENTRY_FLAG_VALID;
    let mut p = vec![0, 0, 0, 1];
    p.extend_from_slice(&aus[1][0].nal);
    let e = dec
        .decode(&c, 2000, false, &p)
        .expect_err("missing reference accepted");
    assert_eq!(e.status(), daedalus_proto::wire::Status::DecodeError);
    // Referencing the decoded IDR works.
    c.decode_params.dpb[0].reference_ts = 1000;
    dec.decode(&c, 2000, false, &p).expect("P picture");
}

/// Slice-based without start codes: trailing zero bytes after a slice (an Annex-B stream's
/// trailing_zero_8bits, left by a client cutting at the next start code) are not a second NAL
/// unit and the pictures stay byte-exact; a buffer that really holds two slice NAL units is an
/// error, never a picture decoded from the first one alone.
#[test]
fn slice_trailing_zeros_tolerated_two_nal_units_refused() {
    let Some(dir) = common::vectors_dir() else {
        return;
    };
    let file = "h264/openh264/BASQP1_Sony_C.jsv";
    let Some(refpath) = reference_for(&dir, file) else {
        return;
    };
    let reference = common::read_framemd5(&refpath);
    let aus = access_units(&std::fs::read(dir.join(file)).expect("vector")).expect("parse");
    assert!(aus[0].len() > 1, "{file} has one slice per picture");
    // Two slice threads, as daedalusd on a 2-CPU machine (slice-based decoding with a single
    // thread is a known issue: FFmpeg flags the first picture DECODE_SLICES, an error).
    let mut dec = H264Decoder::new(&DecoderConfig {
        threads: 2,
        ..Default::default()
    })
    .expect("decoder");
    let mut md5s = Vec::new();
    for (i, au) in aus.iter().enumerate() {
        let ts = (i as u64 + 1) * 1000;
        for (k, s) in au.iter().enumerate() {
            let mut nal = s.nal.clone();
            nal.extend_from_slice(&[0, 0, 0][..1 + k % 3]);
            dec.decode(
                &controls(s, Mode::SliceNoStartCode),
                ts,
                k + 1 < au.len(),
                &nal,
            )
            .unwrap_or_else(|e| panic!("picture {i} slice {k}: {e}"));
        }
        md5s.push(written_md5(&dec, &au[0].pps).expect("picture"));
    }
    let mut sorted = reference.clone();
    sorted.sort();
    md5s.sort();
    assert_eq!(md5s, sorted);

    // Two slices in one buffer, separated by a start code.
    let mut dec = H264Decoder::new(&DecoderConfig {
        threads: 1,
        ..Default::default()
    })
    .expect("decoder");
    let mut two = aus[0][0].nal.clone();
    two.extend_from_slice(&[0, 0, 1]);
    two.extend_from_slice(&aus[0][1].nal);
    let e = dec
        .decode(
            &controls(&aus[0][0], Mode::SliceNoStartCode),
            1000,
            true,
            &two,
        )
        .expect_err("two NAL units accepted as one");
    assert_eq!(e.status(), daedalus_proto::wire::Status::DecodeError);
}
