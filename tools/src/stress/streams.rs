// SPDX-License-Identifier: GPL-2.0
//! What `daedalus stress` knows of each stream before decoding it: where decoding may start (key
//! frames), which displayed picture each packet gives (the mapping to the reference after a
//! seek), and the reference itself (FFmpeg framemd5: one line per displayed picture).
//!
//! The mapping is worked out from the packets, per codec:
//! * VP9: a packet (superframe) displays one picture per frame with `show_frame` or
//!   `show_existing_frame`; hidden frames (alt-refs) display nothing. A packet may start a
//!   decode when its first frame is a key frame.
//! * AV1: a temporal unit displays one picture per frame header with `show_frame` or
//!   `show_existing_frame`. It may start a decode when it carries a sequence header and its
//!   first frame is a shown key frame.
//! * H.264 (frame-based, progressive): every picture is displayed once, in POC order; an IDR
//!   picture outputs every picture before it first, so the display index of the first
//!   picture displayed from IDR picture K onwards is the number of pictures before K.
//!
//! The reference's line `n` is the `n`-th displayed picture of the whole stream; a display of
//! a run that started at packet K is line `shown_before(K) + n` (H.264), or, for VP9 and AV1,
//! whose pictures carry their packet's timestamp, the line of the packet with that timestamp
//! (which stays right through restarts inside a run).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};

use crate::codec::Codec;
use crate::decode::{open_container, Input};
use crate::demux::Probe;

/// One packet of a stream (VP9 / AV1: a container packet or temporal unit; H.264: a picture).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketInfo {
    /// Its timestamp (H.264: its number).
    pub pts: i64,
    /// Pictures it displays.
    pub shows: u32,
    /// Whether decoding may start at it.
    pub key: bool,
}

/// The packets of a stream, for seeks and the mapping to the reference.
#[derive(Clone, Debug, Default)]
pub struct StreamMap {
    /// Every packet, in decode order.
    pub packets: Vec<PacketInfo>,
    /// VP9 / AV1: the display index of the picture a packet with this timestamp displays
    /// (packets displaying several pictures, or sharing a timestamp, are left out).
    by_pts: HashMap<i64, usize>,
}

impl StreamMap {
    /// A map of `packets`.
    pub fn new(packets: Vec<PacketInfo>) -> Self {
        let mut by_pts = HashMap::new();
        let mut seen = HashMap::new();
        let mut shown = 0usize;
        for p in &packets {
            *seen.entry(p.pts).or_insert(0u32) += 1;
            if p.shows == 1 {
                by_pts.insert(p.pts, shown);
            }
            shown += p.shows as usize;
        }
        by_pts.retain(|pts, _| seen.get(pts) == Some(&1));
        StreamMap { packets, by_pts }
    }

    /// Pictures the whole stream displays.
    pub fn total_shown(&self) -> usize {
        self.packets.iter().map(|p| p.shows as usize).sum()
    }

    /// Pictures displayed by the packets before packet `k`.
    pub fn shown_before(&self, k: u64) -> usize {
        self.packets
            .iter()
            .take(usize::try_from(k).unwrap_or(usize::MAX))
            .map(|p| p.shows as usize)
            .sum()
    }

    /// The packets decoding may start at.
    pub fn keys(&self) -> Vec<u64> {
        (0..self.packets.len() as u64)
            .filter(|&i| self.packets[i as usize].key)
            .collect()
    }

    /// The reference line of the picture displayed with `pts` (VP9 / AV1), if it is known.
    pub fn index_of_pts(&self, pts: i64) -> Option<usize> {
        self.by_pts.get(&pts).copied()
    }
}

/// Reads the packets of `input`.
pub fn map_stream(input: &Input, codec: Codec) -> Result<StreamMap> {
    let packets = match codec {
        Codec::Vp9 => vp9_packets(input)?,
        Codec::Av1 => av1_packets(input)?,
        Codec::H264 => h264_packets(input)?,
    };
    Ok(StreamMap::new(packets))
}

fn vp9_packets(input: &Input) -> Result<Vec<PacketInfo>> {
    use crate::vp9::stream::{StreamError, Vp9Stream};
    let demuxer = open_container(input, Codec::Vp9, Probe::Headers)?
        .context("a VP9 stream must be in a container")?;
    let mut stream = Vp9Stream::new(demuxer);
    let mut hdr = Box::<crate::sys::v4l2_ctrl_vp9_compressed_hdr>::default();
    let mut packets: Vec<PacketInfo> = Vec::new();
    let mut last = None;
    loop {
        let frame = match stream.next_frame(&mut hdr) {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(StreamError::Frame { packet, .. }) => {
                bail!("packet {packet} cannot be parsed: not usable as a stress stream")
            }
            Err(e) => return Err(e.into()),
        };
        if last != Some(frame.packet) {
            if frame.packet != packets.len() as u64 {
                bail!("packet {} is out of sequence", frame.packet);
            }
            last = Some(frame.packet);
            packets.push(PacketInfo {
                pts: frame.pts,
                shows: 0,
                key: frame.index_in_packet == 0 && frame.parsed.header.key_frame,
            });
        }
        let h = &frame.parsed.header;
        if let Some(p) = packets.last_mut() {
            p.shows += u32::from(h.show_frame || h.show_existing_frame);
        }
    }
    Ok(packets)
}

/// AV1 OBU types.
const OBU_SEQUENCE_HEADER: u8 = 1;
const OBU_FRAME_HEADER: u8 = 3;
const OBU_FRAME: u8 = 6;

fn av1_packets(input: &Input) -> Result<Vec<PacketInfo>> {
    let stream = crate::av1::read_input(input)?;
    let mut packets = Vec::with_capacity(stream.units.len());
    for (i, (pts, unit)) in stream.units.iter().enumerate() {
        packets.push(av1_unit(*pts, unit).with_context(|| format!("temporal unit {i}"))?);
    }
    Ok(packets)
}

/// What one AV1 temporal unit (Section 5 OBUs) displays and whether it can start a decode.
/// Streams with a reduced still picture header are not stress streams (their frame headers
/// have no `show_existing_frame` bit to read).
pub(crate) fn av1_unit(pts: i64, unit: &[u8]) -> Result<PacketInfo> {
    let obus = daedalus_codecs::av1::obu::split_section5(unit)
        .map_err(|e| anyhow!("cannot split the OBUs: {e}"))?;
    let mut info = PacketInfo {
        pts,
        shows: 0,
        key: false,
    };
    let mut seq = false;
    let mut first_frame = true;
    for o in obus {
        let kind = (unit[o.start] >> 3) & 0xf;
        match kind {
            OBU_SEQUENCE_HEADER => seq = true,
            OBU_FRAME_HEADER | OBU_FRAME => {
                let b = *unit
                    .get(o.payload)
                    .ok_or_else(|| anyhow!("empty frame header"))?;
                let show_existing = b & 0x80 != 0;
                let frame_type = (b >> 5) & 3;
                let show_frame = b & 0x10 != 0;
                if show_existing || show_frame {
                    info.shows += 1;
                }
                if first_frame {
                    info.key = seq && !show_existing && frame_type == 0 && show_frame;
                    first_frame = false;
                }
            }
            _ => {}
        }
    }
    Ok(info)
}

fn h264_packets(input: &Input) -> Result<Vec<PacketInfo>> {
    use crate::h264::stream::{NalSource, Pictures};
    let src = match open_container(input, Codec::H264, Probe::Headers)? {
        Some(demuxer) => NalSource::from_container(demuxer)?,
        None => {
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut input.open()?, &mut data)
                .context("cannot read the input")?;
            NalSource::load(data)?
        }
    };
    let mut pictures = Pictures::new(&src);
    let mut packets = Vec::new();
    while let Some(pic) = pictures.next_picture()? {
        packets.push(PacketInfo {
            pts: packets.len() as i64,
            shows: 1,
            key: pic.first().idr,
        });
    }
    if pictures.bad_slices > 0 {
        bail!("{} slices cannot be parsed", pictures.bad_slices);
    }
    Ok(packets)
}

/// One line of a framemd5 reference: a displayed picture's size in bytes and MD5.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefFrame {
    /// Bytes of the planar picture.
    pub size: usize,
    /// Its MD5 (lower-case hex).
    pub md5: String,
}

/// Parses FFmpeg's framemd5 format (`#` lines, then `stream, dts, pts, duration, size, hash`
/// per picture): the pictures of stream 0 in order.
pub fn parse_framemd5(text: &str) -> Result<Vec<RefFrame>> {
    let mut frames = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [stream, _dts, _pts, _duration, size, md5] = fields[..] else {
            bail!("line {}: not a framemd5 line: {line:?}", n + 1);
        };
        if stream != "0" {
            continue;
        }
        let size = size
            .parse()
            .with_context(|| format!("line {}: bad size {size:?}", n + 1))?;
        if md5.len() != 32 || !md5.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("line {}: bad MD5 {md5:?}", n + 1);
        }
        frames.push(RefFrame {
            size,
            md5: md5.to_ascii_lowercase(),
        });
    }
    Ok(frames)
}

/// Where the reference of `stream` is looked for, in order: `STREAM.framemd5`, the stream's
/// name with its extension replaced (`clip.ivf` -> `clip.framemd5`), then
/// `STREAM.ffmpeg-PIXFMT.framemd5` (the conformance vectors' layout), the first in name order.
pub fn reference_candidates(stream: &Path) -> Vec<PathBuf> {
    let mut with_suffix = stream.as_os_str().to_owned();
    with_suffix.push(".framemd5");
    let mut found = vec![with_suffix.into(), stream.with_extension("framemd5")];
    if let (Some(dir), Some(name)) = (stream.parent(), stream.file_name()) {
        let prefix = format!("{}.ffmpeg-", name.to_string_lossy());
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let mut vectors: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    n.starts_with(&prefix) && n.ends_with(".framemd5")
                })
            })
            .collect();
        vectors.sort();
        found.extend(vectors);
    }
    found
}

/// The reference of `stream`: next to it (see [`reference_candidates`]), else made once with
/// `ffmpeg -f framemd5` into `cache` (named by the MD5 of the stream's bytes).
pub fn load_reference(
    stream: &Path,
    data: &[u8],
    cache: &Path,
    ffmpeg: &Path,
) -> Result<(Vec<RefFrame>, PathBuf)> {
    let path = match reference_candidates(stream)
        .into_iter()
        .find(|p| p.is_file())
    {
        Some(p) => p,
        None => {
            let name = format!("{}.framemd5", crate::picture::md5_hex(data));
            let path = cache.join(name);
            if !path.is_file() {
                std::fs::create_dir_all(cache)
                    .with_context(|| format!("cannot create {}", cache.display()))?;
                let tmp = path.with_extension("tmp");
                let out = Command::new(ffmpeg)
                    .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
                    .arg(stream)
                    .args([
                        "-fps_mode",
                        "passthrough",
                        "-autoscale",
                        "0",
                        "-f",
                        "framemd5",
                    ])
                    .arg(&tmp)
                    .output()
                    .with_context(|| format!("cannot run {}", ffmpeg.display()))?;
                if !out.status.success() {
                    bail!(
                        "{} cannot make the reference of {}: {}",
                        ffmpeg.display(),
                        stream.display(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
                std::fs::rename(&tmp, &path)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            path
        }
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let frames = parse_framemd5(&text).with_context(|| format!("{}", path.display()))?;
    Ok((frames, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pts: i64, shows: u32, key: bool) -> PacketInfo {
        PacketInfo { pts, shows, key }
    }

    #[test]
    fn mapping_after_a_seek() {
        // A VP9-like stream: key frame, a hidden alt-ref in a packet of its own (no display),
        // inter frames, show-existing of the alt-ref, a second key frame.
        let map = StreamMap::new(vec![
            p(0, 1, true),
            p(1, 0, false),
            p(2, 1, false),
            p(3, 1, false),
            p(4, 1, false),
            p(5, 1, true),
            p(6, 1, false),
        ]);
        assert_eq!(map.total_shown(), 6);
        assert_eq!(map.keys(), vec![0, 5]);
        // A seek to packet 5: its picture is the reference's 5th line (index 4).
        assert_eq!(map.shown_before(5), 4);
        assert_eq!(map.index_of_pts(6), Some(5));
        assert_eq!(map.index_of_pts(1), None);
        assert_eq!(map.index_of_pts(2), Some(1));
        // A packet showing two pictures, or a repeated timestamp, is not mapped by timestamp.
        let map = StreamMap::new(vec![p(0, 2, true), p(1, 1, false), p(1, 1, false)]);
        assert_eq!(map.index_of_pts(0), None);
        assert_eq!(map.index_of_pts(1), None);
        assert_eq!(map.shown_before(2), 3);
        assert_eq!(map.shown_before(99), 4);
    }

    #[test]
    fn av1_units() {
        // Temporal delimiter, sequence header, frame OBU of a shown key frame
        // (show_existing 0, frame_type 00, show_frame 1 -> 0x10).
        let tu = [0x12, 0x00, 0x0a, 0x01, 0xff, 0x32, 0x01, 0x10];
        assert_eq!(av1_unit(7, &tu).unwrap(), p(7, 1, true));
        // Without the sequence header: shown, not a start.
        let tu = [0x12, 0x00, 0x32, 0x01, 0x10];
        assert_eq!(av1_unit(1, &tu).unwrap(), p(1, 1, false));
        // A hidden inter frame (frame_type 01, show_frame 0) then a show-existing header.
        let tu = [0x12, 0x00, 0x32, 0x01, 0x20, 0x1a, 0x01, 0x80];
        assert_eq!(av1_unit(2, &tu).unwrap(), p(2, 1, false));
        assert!(av1_unit(0, &[0x32, 0x05, 0x10]).is_err());
    }

    #[test]
    fn framemd5_lines() {
        let text = "#format: frame checksums\n#version: 2\n#tb 0: 1/30\n\
                    #stream#, dts,        pts, duration,     size, hash\n\
                    0,          0,          0,        1,      384, 0DB2E7065279E992B06DCB9D576541A6\n\
                    1,          0,          0,        1,        4, 00000000000000000000000000000000\n\
                    0,          1,          1,        1,      720, 7f95d58fa9f5e5544ec4a0880b5818f6\n";
        let f = parse_framemd5(text).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].size, 384);
        assert_eq!(f[0].md5, "0db2e7065279e992b06dcb9d576541a6");
        assert_eq!(f[1].size, 720);
        assert!(parse_framemd5("0, 1, 2\n").is_err());
        assert!(parse_framemd5("0, 0, 0, 1, 384, xyz\n").is_err());
    }

    #[test]
    fn reference_names() {
        let c = reference_candidates(Path::new("/d/clip.ivf"));
        assert_eq!(
            c,
            vec![
                PathBuf::from("/d/clip.ivf.framemd5"),
                PathBuf::from("/d/clip.framemd5")
            ]
        );
    }

    /// The committed streams map to as many displayed pictures as their references have, and
    /// the stress streams have a key frame every 8 frames.
    #[test]
    fn committed_streams() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let cases: &[(&str, Codec, &[u64])] = &[
            (
                "tests/vm/data/stress-vp9-160x90.ivf",
                Codec::Vp9,
                &[0, 8, 16],
            ),
            (
                "tests/vm/data/stress-av1-128x72.ivf",
                Codec::Av1,
                &[0, 8, 16],
            ),
            (
                "tests/vm/data/stress-h264-192x108.264",
                Codec::H264,
                &[0, 8, 16],
            ),
            ("tests/vm/data/first-h264-1000x562.264", Codec::H264, &[0]),
            ("tests/vm/data/first-av1-1000x562.ivf", Codec::Av1, &[0]),
            ("tools/tests/data/vp9-8bit-35x19-arf.ivf", Codec::Vp9, &[0]),
            ("tools/tests/data/vp9-8bit-resize.ivf", Codec::Vp9, &[0, 4]),
            (
                "daemon/tests/data/tiny-97x61-10bit-arf.ivf",
                Codec::Vp9,
                &[0],
            ),
        ];
        for &(name, codec, keys) in cases {
            let path = root.join(name);
            let map = map_stream(&Input::File(path.clone()), codec).unwrap();
            let reference = reference_candidates(&path)
                .into_iter()
                .find(|p| p.is_file())
                .unwrap();
            let frames = parse_framemd5(&std::fs::read_to_string(reference).unwrap()).unwrap();
            assert_eq!(map.total_shown(), frames.len(), "{name}");
            assert_eq!(map.keys(), keys, "{name}");
            if codec != Codec::H264 {
                // Every displayed picture is found by its timestamp.
                let mut found: Vec<usize> = map
                    .packets
                    .iter()
                    .filter(|p| p.shows == 1)
                    .filter_map(|p| map.index_of_pts(p.pts))
                    .collect();
                found.sort_unstable();
                assert_eq!(found, (0..frames.len()).collect::<Vec<_>>(), "{name}");
            }
        }
    }
}
