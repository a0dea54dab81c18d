// SPDX-License-Identifier: GPL-2.0
//! A small MP4 (ISO base media file format) demuxer for the H.264 video track: `ftyp`, `moov` /
//! `trak` / `mdia` (`hdlr`, `mdhd`) / `minf` / `stbl` (`stsd` with `avc1`/`avc3` and `avcC`,
//! `stsz`/`stz2`, `stsc`, `stco`/`co64`, `stts`, `ctts`), samples read from the file in memory.
//!
//! Fragmented files (`moof`) and edit lists are not handled: the decoder only needs the samples
//! in decode order, and the output order comes from the bitstream (POC), not from the container.

use std::ops::Range;

use crate::h264::nal::{parse_avcc, AvcConfig, NalError};

/// Why an MP4 file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum Mp4Error {
    /// A box is malformed.
    #[error("malformed MP4 file: {0}")]
    Malformed(String),
    /// No H.264 video track.
    #[error("the MP4 file has no H.264 (avc1/avc3) video track; sample entries found: {0}")]
    NoH264Track(String),
    /// Fragmented MP4.
    #[error(
        "fragmented MP4 (moof boxes) is not supported: remux with `ffmpeg -i IN -c copy OUT.mp4`"
    )]
    Fragmented,
    /// The `avcC` box is malformed.
    #[error(transparent)]
    Avcc(#[from] NalError),
}

fn malformed(what: impl Into<String>) -> Mp4Error {
    Mp4Error::Malformed(what.into())
}

/// Whether `data` starts like an MP4 / QuickTime file (a `ftyp` box first).
pub fn sniff(data: &[u8]) -> bool {
    data.get(4..8) == Some(b"ftyp")
}

/// The H.264 track of an MP4 file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mp4Track {
    /// Time units per second of the sample times.
    pub timescale: u32,
    /// Picture size from the sample entry.
    pub width: u16,
    /// Picture size from the sample entry.
    pub height: u16,
    /// Parameter sets and NAL length size (`avcC`).
    pub config: AvcConfig,
    /// Where each sample is in the file, in decode order.
    pub samples: Vec<Range<usize>>,
    /// Presentation time of each sample (decode time + composition offset), in `timescale`
    /// units.
    pub pts: Vec<i64>,
}

struct Boxes<'a> {
    data: &'a [u8],
    pos: usize,
}

/// The boxes in `data`: (type, payload).
fn boxes(data: &[u8]) -> Boxes<'_> {
    Boxes { data, pos: 0 }
}

impl<'a> Iterator for Boxes<'a> {
    type Item = Result<([u8; 4], &'a [u8]), Mp4Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let d = &self.data[self.pos..];
        if d.is_empty() {
            return None;
        }
        let r = (|| {
            let head = d
                .get(..8)
                .ok_or_else(|| malformed("truncated box header"))?;
            let size32 = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            let kind = [head[4], head[5], head[6], head[7]];
            let (header, size) = match size32 {
                0 => (8, d.len()),
                1 => {
                    let s = d
                        .get(8..16)
                        .ok_or_else(|| malformed("truncated largesize"))?;
                    let mut b = [0; 8];
                    b.copy_from_slice(s);
                    let size = usize::try_from(u64::from_be_bytes(b))
                        .map_err(|_| malformed("box too large"))?;
                    (16, size)
                }
                n => (8, n as usize),
            };
            if size < header || size > d.len() {
                return Err(malformed(format!(
                    "box {} of {size} bytes at offset {} does not fit",
                    String::from_utf8_lossy(&kind),
                    self.pos
                )));
            }
            Ok((kind, header, size))
        })();
        Some(match r {
            Ok((kind, header, size)) => {
                let payload = &d[header..size];
                self.pos += size;
                Ok((kind, payload))
            }
            Err(e) => {
                self.pos = self.data.len();
                Err(e)
            }
        })
    }
}

fn find<'a>(data: &'a [u8], kind: &[u8; 4]) -> Result<Option<&'a [u8]>, Mp4Error> {
    for b in boxes(data) {
        let (k, payload) = b?;
        if &k == kind {
            return Ok(Some(payload));
        }
    }
    Ok(None)
}

fn need<'a>(data: &'a [u8], kind: &[u8; 4]) -> Result<&'a [u8], Mp4Error> {
    find(data, kind)?.ok_or_else(|| malformed(format!("no {} box", String::from_utf8_lossy(kind))))
}

fn be32(d: &[u8], at: usize) -> Result<u32, Mp4Error> {
    d.get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| malformed("truncated table"))
}

fn be64(d: &[u8], at: usize) -> Result<u64, Mp4Error> {
    Ok((u64::from(be32(d, at)?) << 32) | u64::from(be32(d, at + 4)?))
}

/// A full box's entry count (after version/flags) and the entries that follow, checked to be
/// `count * entry` bytes long at least.
fn table(d: &[u8], skip: usize, entry: usize) -> Result<(usize, &[u8]), Mp4Error> {
    let count = be32(d, 4 + skip)? as usize;
    let body = &d[(8 + skip).min(d.len())..];
    if count.checked_mul(entry).map_or(true, |n| n > body.len()) {
        return Err(malformed(format!("table of {count} entries is truncated")));
    }
    Ok((count, body))
}

/// Reads the first H.264 video track of the MP4 file in `data`.
pub fn read_track(data: &[u8]) -> Result<Mp4Track, Mp4Error> {
    let mut moov = None;
    for b in boxes(data) {
        let (k, payload) = b?;
        match &k {
            b"moov" => moov = Some(payload),
            b"moof" => return Err(Mp4Error::Fragmented),
            _ => {}
        }
    }
    let moov = moov.ok_or_else(|| malformed("no moov box"))?;
    let mut entries = Vec::new();
    for b in boxes(moov) {
        let (k, trak) = b?;
        if &k != b"trak" {
            continue;
        }
        let mdia = need(trak, b"mdia")?;
        let hdlr = need(mdia, b"hdlr")?;
        if hdlr.get(8..12) != Some(b"vide") {
            continue;
        }
        let stbl = need(need(mdia, b"minf")?, b"stbl")?;
        let stsd = need(stbl, b"stsd")?;
        // version/flags, entry_count, then the sample entries.
        let entry_data = stsd.get(8..).ok_or_else(|| malformed("short stsd"))?;
        let Some(first) = boxes(entry_data).next() else {
            continue;
        };
        let (kind, entry) = first?;
        if &kind != b"avc1" && &kind != b"avc3" {
            entries.push(String::from_utf8_lossy(&kind).into_owned());
            continue;
        }
        // VisualSampleEntry: 6 reserved + 2 data_reference_index + 16 + width/height (at 24)
        // + ... 78 bytes, then boxes (avcC).
        let width = u16::from_be_bytes([
            entry.get(24).copied().unwrap_or(0),
            entry.get(25).copied().unwrap_or(0),
        ]);
        let height = u16::from_be_bytes([
            entry.get(26).copied().unwrap_or(0),
            entry.get(27).copied().unwrap_or(0),
        ]);
        let children = entry
            .get(78..)
            .ok_or_else(|| malformed("short avc1 entry"))?;
        let config = parse_avcc(need(children, b"avcC")?)?;
        let mdhd = need(mdia, b"mdhd")?;
        let timescale = if mdhd.first() == Some(&1) {
            be32(mdhd, 20)?
        } else {
            be32(mdhd, 12)?
        };
        let samples = sample_ranges(stbl, data.len())?;
        let pts = sample_times(stbl, samples.len())?;
        return Ok(Mp4Track {
            timescale,
            width,
            height,
            config,
            samples,
            pts,
        });
    }
    Err(Mp4Error::NoH264Track(if entries.is_empty() {
        "none".into()
    } else {
        entries.join(", ")
    }))
}

fn sample_ranges(stbl: &[u8], file_len: usize) -> Result<Vec<Range<usize>>, Mp4Error> {
    // Sample sizes.
    let sizes: Vec<u64> = if let Some(stsz) = find(stbl, b"stsz")? {
        let fixed = be32(stsz, 4)?;
        let (count, body) = table(stsz, 4, if fixed == 0 { 4 } else { 0 })?;
        if fixed != 0 {
            vec![u64::from(fixed); count]
        } else {
            (0..count)
                .map(|i| be32(body, 4 * i).map(u64::from))
                .collect::<Result<_, _>>()?
        }
    } else if let Some(stz2) = find(stbl, b"stz2")? {
        let field = stz2.get(7).copied().unwrap_or(0);
        let (count, body) = table(stz2, 4, 0)?;
        (0..count)
            .map(|i| {
                let v = match field {
                    4 => body
                        .get(i / 2)
                        .map(|b| if i % 2 == 0 { b >> 4 } else { b & 15 })
                        .map(u64::from),
                    8 => body.get(i).copied().map(u64::from),
                    16 => body
                        .get(2 * i..2 * i + 2)
                        .map(|b| u64::from(u16::from_be_bytes([b[0], b[1]]))),
                    _ => None,
                };
                v.ok_or_else(|| malformed("bad stz2"))
            })
            .collect::<Result<_, _>>()?
    } else {
        return Err(malformed("no stsz box"));
    };
    // Chunk offsets.
    let offsets: Vec<u64> = if let Some(stco) = find(stbl, b"stco")? {
        let (count, body) = table(stco, 0, 4)?;
        (0..count)
            .map(|i| be32(body, 4 * i).map(u64::from))
            .collect::<Result<_, _>>()?
    } else if let Some(co64) = find(stbl, b"co64")? {
        let (count, body) = table(co64, 0, 8)?;
        (0..count)
            .map(|i| be64(body, 8 * i))
            .collect::<Result<_, _>>()?
    } else {
        return Err(malformed("no stco/co64 box"));
    };
    // Samples per chunk runs.
    let stsc = need(stbl, b"stsc")?;
    let (runs, body) = table(stsc, 0, 12)?;
    let mut ranges = Vec::with_capacity(sizes.len());
    let mut sample = 0usize;
    for r in 0..runs {
        let first_chunk = be32(body, 12 * r)? as usize;
        let per_chunk = be32(body, 12 * r + 4)? as usize;
        let next_first = if r + 1 < runs {
            be32(body, 12 * (r + 1))? as usize
        } else {
            offsets.len() + 1
        };
        if first_chunk == 0 || next_first < first_chunk {
            return Err(malformed("bad stsc chunk numbers"));
        }
        for chunk in first_chunk..next_first {
            let mut off = *offsets
                .get(chunk - 1)
                .ok_or_else(|| malformed("stsc names a chunk stco lacks"))?;
            for _ in 0..per_chunk {
                let Some(&size) = sizes.get(sample) else {
                    break;
                };
                let end = off
                    .checked_add(size)
                    .filter(|&e| e <= file_len as u64)
                    .ok_or_else(|| {
                        malformed(format!("sample {sample} lies past the end of the file"))
                    })?;
                ranges.push(off as usize..end as usize);
                off = end;
                sample += 1;
            }
        }
    }
    if ranges.len() != sizes.len() {
        return Err(malformed(format!(
            "the chunks hold {} samples, stsz lists {}",
            ranges.len(),
            sizes.len()
        )));
    }
    Ok(ranges)
}

fn sample_times(stbl: &[u8], count: usize) -> Result<Vec<i64>, Mp4Error> {
    let mut pts = Vec::with_capacity(count);
    if let Some(stts) = find(stbl, b"stts")? {
        let (runs, body) = table(stts, 0, 8)?;
        let mut t: i64 = 0;
        for r in 0..runs {
            let n = be32(body, 8 * r)?;
            let delta = i64::from(be32(body, 8 * r + 4)?);
            for _ in 0..n {
                if pts.len() == count {
                    break;
                }
                pts.push(t);
                t = t.saturating_add(delta);
            }
        }
    }
    while pts.len() < count {
        pts.push(pts.len() as i64);
    }
    if let Some(ctts) = find(stbl, b"ctts")? {
        let (runs, body) = table(ctts, 0, 8)?;
        let mut i = 0;
        for r in 0..runs {
            let n = be32(body, 8 * r)?;
            // Version 1 offsets are signed; version 0 ones are in practice too.
            let off = i64::from(be32(body, 8 * r + 4)? as i32);
            for _ in 0..n {
                if let Some(p) = pts.get_mut(i) {
                    *p = p.saturating_add(off);
                }
                i += 1;
            }
        }
    }
    Ok(pts)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut v = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(payload);
        v
    }

    fn full(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut p = vec![0, 0, 0, 0];
        p.extend_from_slice(body);
        bx(kind, &p)
    }

    fn words(w: &[u32]) -> Vec<u8> {
        w.iter().flat_map(|x| x.to_be_bytes()).collect()
    }

    /// An MP4 file with one avc1 track whose samples are `samples` (length-prefixed NALs),
    /// two samples per chunk, stored in one mdat after the moov.
    pub(crate) fn file(avcc: &[u8], samples: &[Vec<u8>], ctts: Option<&[u32]>) -> Vec<u8> {
        let ftyp = bx(b"ftyp", b"isom\0\0\x02\0isomavc1");
        let build = |mdat_start: u32| {
            let mut entry = vec![0u8; 78];
            entry[7] = 1;
            entry[24..26].copy_from_slice(&64u16.to_be_bytes());
            entry[26..28].copy_from_slice(&48u16.to_be_bytes());
            entry.extend(bx(b"avcC", avcc));
            let stsd = full(b"stsd", &[words(&[1]), bx(b"avc1", &entry)].concat());
            let mut sizes = vec![0u32, samples.len() as u32];
            sizes.extend(samples.iter().map(|s| s.len() as u32));
            let stsz = full(b"stsz", &words(&sizes));
            let chunks = samples.len().div_ceil(2);
            let mut offs = vec![chunks as u32];
            let mut off = mdat_start;
            for c in samples.chunks(2) {
                offs.push(off);
                off += c.iter().map(|s| s.len() as u32).sum::<u32>();
            }
            let stco = full(b"stco", &words(&offs));
            let stsc = full(b"stsc", &words(&[1, 1, 2, 1]));
            let stts = full(b"stts", &words(&[1, samples.len() as u32, 512]));
            let mut stbl_body = [stsd, stsz, stco, stsc, stts].concat();
            if let Some(c) = ctts {
                let mut t = vec![c.len() as u32];
                for &o in c {
                    t.extend([1, o]);
                }
                stbl_body.extend(full(b"ctts", &words(&t)));
            }
            let minf = bx(b"minf", &bx(b"stbl", &stbl_body));
            let hdlr = full(b"hdlr", b"\0\0\0\0vide\0\0\0\0\0\0\0\0\0\0\0\0\0");
            let mdhd = full(b"mdhd", &words(&[0, 0, 12800, 0, 0]));
            let trak = bx(b"trak", &bx(b"mdia", &[mdhd, hdlr, minf].concat()));
            bx(b"moov", &trak)
        };
        let moov_len = build(0).len();
        let mdat_start = (ftyp.len() + moov_len + 8) as u32;
        let mut f = ftyp;
        f.extend(build(mdat_start));
        f.extend(bx(b"mdat", &samples.concat()));
        f
    }

    #[test]
    fn reads_track() {
        let avcc = [
            1, 0x42, 0, 0x1e, 0xff, 0xe1, 0, 2, 0x67, 0x42, 1, 0, 1, 0x68,
        ];
        let samples = vec![
            vec![0, 0, 0, 2, 0x65, 1],
            vec![0, 0, 0, 1, 0x41, 0, 0, 0, 1, 0x41],
            vec![0, 0, 0, 3, 0x01, 2, 3],
        ];
        let data = file(&avcc, &samples, Some(&[1024, 0, 512]));
        assert!(sniff(&data));
        let t = read_track(&data).unwrap();
        assert_eq!((t.timescale, t.width, t.height), (12800, 64, 48));
        assert_eq!(t.config.length_size, 4);
        assert_eq!(t.config.parameter_sets, vec![vec![0x67, 0x42], vec![0x68]]);
        let got: Vec<&[u8]> = t.samples.iter().map(|r| &data[r.clone()]).collect();
        assert_eq!(got, samples.iter().map(|s| &s[..]).collect::<Vec<_>>());
        assert_eq!(t.pts, [1024, 512, 1536]);
        // Truncated file: the samples no longer fit.
        assert!(read_track(&data[..data.len() - 2]).is_err());
        // Not MP4.
        assert!(!sniff(b"\0\0\0\x01\x67"));
        assert!(matches!(
            read_track(&bx(b"moov", &[])),
            Err(Mp4Error::NoH264Track(_))
        ));
        assert!(matches!(
            read_track(&[bx(b"ftyp", b"isom"), bx(b"moof", &[])].concat()),
            Err(Mp4Error::Fragmented)
        ));
    }
}
