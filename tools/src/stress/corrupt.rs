// SPDX-License-Identifier: GPL-2.0
//! Corrupted copies of the streams for `daedalus stress`: bytes of the coded data mutated,
//! seeded, with what must stay readable kept: the IVF file and frame headers, the first bytes of
//! each VP9 frame (its uncompressed header) and its superframe index, the AV1 OBU headers and
//! sizes and the first bytes of each frame, the H.264 start codes, parameter sets and slice
//! header bytes. So the client still finds its frames and the daemon gets damaged data.
//!
//! [`mutate`] (`daedalus stress --mutate`) goes further, for the device's and the daemon's
//! handling of untrusted input: one to three [`Mutation`]s per copy, among them packets
//! truncated, duplicated, reordered or dropped and the headers themselves damaged (VP9
//! uncompressed headers and superframe indexes, AV1 OBU headers and sequence / frame headers,
//! H.264 parameter sets and slice headers), which reach the daemon as wrong controls. Only the
//! container's framing (IVF file and frame headers, Annex B start codes) stays intact, so that
//! the client still finds packets to submit.

use std::ops::Range;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::codec::Codec;

/// How much of the mutable bytes [`corrupt`] changes in `daedalus stress`'s corrupted copies
/// (per mille).
pub const CORRUPT_PER_MILLE: u32 = 4;
/// Bytes kept at the start of a VP9 frame / AV1 frame OBU / H.264 slice.
const KEEP_HEAD: usize = 12;
/// Bytes kept at the end of a VP9 packet (the largest superframe index).
const KEEP_TAIL_VP9: usize = 34;

/// Whether [`corrupt`] can damage a stream of `codec` in this layout (IVF for VP9 and AV1,
/// Annex B for H.264; other containers are not corrupted).
pub fn corruptible(codec: Codec, data: &[u8]) -> bool {
    match codec {
        Codec::Vp9 | Codec::Av1 => data.starts_with(b"DKIF") && data.len() >= 32,
        Codec::H264 => crate::h264::nal::looks_like_annex_b(data),
    }
}

/// The byte ranges of `data` that may be mutated.
pub fn mutable_ranges(codec: Codec, data: &[u8]) -> Vec<Range<usize>> {
    match codec {
        Codec::Vp9 | Codec::Av1 => ivf_frames(data)
            .into_iter()
            .flat_map(|f| match codec {
                Codec::Vp9 => {
                    let (s, e) = (f.start + KEEP_HEAD, f.end.saturating_sub(KEEP_TAIL_VP9));
                    (s < e).then_some(s..e).into_iter().collect::<Vec<_>>()
                }
                _ => av1_ranges(data, f),
            })
            .collect(),
        Codec::H264 => annex_b_slices(data)
            .into_iter()
            .filter_map(|r| {
                let s = r.start + KEEP_HEAD;
                (s < r.end).then_some(s..r.end)
            })
            .collect(),
    }
}

/// A copy of `data` with about `per_mille` of its mutable bytes (at least one) changed,
/// reproducibly from `seed`.
pub fn corrupt(codec: Codec, data: &[u8], seed: u64, per_mille: u32) -> Vec<u8> {
    let mut out = data.to_vec();
    let ranges = mutable_ranges(codec, data);
    let total: usize = ranges.iter().map(|r| r.len()).sum();
    if total == 0 {
        return out;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = (total * per_mille as usize / 1000).max(1);
    for _ in 0..n {
        let mut at = rng.gen_range(0..total);
        for r in &ranges {
            if at < r.len() {
                let i = r.start + at;
                out[i] ^= rng.gen_range(1..=255u8);
                break;
            }
            at -= r.len();
        }
    }
    out
}

/// One way [`mutate`] damages a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mutation {
    /// [`corrupt`]'s: 0.4 % of the coded bytes XORed (headers kept).
    Xor,
    /// 1 to 16 single bits of the coded data flipped (headers kept).
    BitFlips,
    /// A run of 1 to 256 bytes of a packet overwritten with one value (0x00, 0xff or random):
    /// what a lost or zero-filled network packet leaves.
    ByteRun,
    /// A packet cut short (to between 0 and all but one of its bytes).
    Truncate,
    /// A packet given twice in a row.
    Duplicate,
    /// Two neighbouring packets swapped.
    Reorder,
    /// A packet left out.
    Drop,
    /// 1 to 4 bytes of the headers [`corrupt`] keeps XORed: a VP9 uncompressed header or
    /// superframe index, AV1 OBU headers, sizes, sequence and frame headers, H.264 parameter
    /// sets and slice headers.
    Header,
}

impl Mutation {
    /// Every mutation, in the order [`mutate`] draws from.
    pub const ALL: [Mutation; 8] = [
        Mutation::Xor,
        Mutation::BitFlips,
        Mutation::ByteRun,
        Mutation::Truncate,
        Mutation::Duplicate,
        Mutation::Reorder,
        Mutation::Drop,
        Mutation::Header,
    ];
}

/// A copy of `data` with one to three [`Mutation`]s applied in turn, reproducibly from `seed`,
/// and the mutations applied. Streams [`corruptible`] does not accept come back unchanged.
pub fn mutate(codec: Codec, data: &[u8], seed: u64) -> (Vec<u8>, Vec<Mutation>) {
    let mut out = data.to_vec();
    if !corruptible(codec, data) {
        return (out, Vec::new());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = rng.gen_range(1..=3);
    let mut applied = Vec::with_capacity(n);
    for _ in 0..n {
        let m = *Mutation::ALL.choose(&mut rng).unwrap_or(&Mutation::Xor);
        out = apply(codec, &out, m, &mut rng);
        applied.push(m);
    }
    (out, applied)
}

/// `data` with mutation `m` applied.
fn apply(codec: Codec, data: &[u8], m: Mutation, rng: &mut ChaCha8Rng) -> Vec<u8> {
    match m {
        Mutation::Xor => corrupt(codec, data, rng.gen(), CORRUPT_PER_MILLE),
        Mutation::BitFlips => {
            let mut out = data.to_vec();
            let ranges = mutable_ranges(codec, data);
            for _ in 0..rng.gen_range(1..=16) {
                if let Some(i) = pick_byte(&ranges, rng) {
                    out[i] ^= 1 << rng.gen_range(0..8);
                }
            }
            out
        }
        Mutation::ByteRun => {
            let mut out = data.to_vec();
            let packets = packets(codec, data);
            if let Some(p) = packets.choose(rng).filter(|p| !p.payload.is_empty()) {
                let r = &p.payload;
                let start = rng.gen_range(r.clone());
                let end = (start + rng.gen_range(1..=256)).min(r.end);
                let value = match rng.gen_range(0..3) {
                    0 => 0x00,
                    1 => 0xff,
                    _ => rng.gen(),
                };
                out[start..end].fill(value);
            }
            out
        }
        Mutation::Header => {
            let mut out = data.to_vec();
            let ranges = header_ranges(codec, data);
            for _ in 0..rng.gen_range(1..=4) {
                if let Some(i) = pick_byte(&ranges, rng) {
                    out[i] ^= rng.gen_range(1..=255u8);
                }
            }
            out
        }
        Mutation::Truncate | Mutation::Duplicate | Mutation::Reorder | Mutation::Drop => {
            let mut list = packets(codec, data);
            if list.is_empty() {
                return data.to_vec();
            }
            let i = rng.gen_range(0..list.len());
            match m {
                Mutation::Truncate => {
                    let r = &mut list[i].payload;
                    r.end = r.start + rng.gen_range(0..r.len().max(1));
                }
                Mutation::Duplicate => list.insert(i, list[i].clone()),
                Mutation::Reorder if list.len() > 1 => {
                    let j = if i + 1 < list.len() { i + 1 } else { i - 1 };
                    list.swap(i, j);
                }
                Mutation::Drop if list.len() > 1 => {
                    list.remove(i);
                }
                _ => {}
            }
            reassemble(codec, data, &list)
        }
    }
}

/// A byte of `ranges`, uniformly; None when they are empty.
fn pick_byte(ranges: &[Range<usize>], rng: &mut ChaCha8Rng) -> Option<usize> {
    let total: usize = ranges.iter().map(|r| r.len()).sum();
    if total == 0 {
        return None;
    }
    let mut at = rng.gen_range(0..total);
    for r in ranges {
        if at < r.len() {
            return Some(r.start + at);
        }
        at -= r.len();
    }
    None
}

/// A packet of a stream as [`mutate`] moves it: IVF frames for VP9 and AV1, NAL units for
/// H.264 (Annex B).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Packet {
    /// Its framing: the 12-byte IVF frame header, or the start code.
    head: Range<usize>,
    /// Its bytes.
    payload: Range<usize>,
}

/// The packets of `data` ([`corruptible`]).
fn packets(codec: Codec, data: &[u8]) -> Vec<Packet> {
    match codec {
        Codec::Vp9 | Codec::Av1 => ivf_frames(data)
            .into_iter()
            .map(|f| Packet {
                head: f.start - 12..f.start,
                payload: f,
            })
            .collect(),
        Codec::H264 => annex_b_nal_units(data)
            .into_iter()
            .map(|(code, nal)| Packet {
                head: code,
                payload: nal,
            })
            .collect(),
    }
}

/// `list`'s packets of `data`, framed again: the IVF file header, then each frame with its
/// header's size field rewritten; for Annex B each NAL unit behind its start code.
fn reassemble(codec: Codec, data: &[u8], list: &[Packet]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    match codec {
        Codec::Vp9 | Codec::Av1 => {
            let file_header = list.first().map_or(data.len(), |p| p.head.start);
            out.extend_from_slice(&data[..file_header]);
            for p in list {
                out.extend_from_slice(&(p.payload.len() as u32).to_le_bytes());
                out.extend_from_slice(&data[p.head.start + 4..p.head.end]);
                out.extend_from_slice(&data[p.payload.clone()]);
            }
        }
        Codec::H264 => {
            for p in list {
                out.extend_from_slice(&data[p.head.clone()]);
                out.extend_from_slice(&data[p.payload.clone()]);
            }
        }
    }
    out
}

/// The header bytes [`corrupt`] keeps: every packet's bytes (framing excluded) that
/// [`mutable_ranges`] leaves out.
fn header_ranges(codec: Codec, data: &[u8]) -> Vec<Range<usize>> {
    let mutable = mutable_ranges(codec, data);
    let mut out = Vec::new();
    for p in packets(codec, data) {
        let mut at = p.payload.start;
        for m in mutable
            .iter()
            .filter(|m| m.start >= p.payload.start && m.end <= p.payload.end)
        {
            if at < m.start {
                out.push(at..m.start);
            }
            at = m.end;
        }
        if at < p.payload.end {
            out.push(at..p.payload.end);
        }
    }
    out
}

/// The payload of each IVF frame.
fn ivf_frames(data: &[u8]) -> Vec<Range<usize>> {
    let mut frames = Vec::new();
    let Some(hdr) = data.get(6..8) else {
        return frames;
    };
    let mut at = usize::from(u16::from_le_bytes([hdr[0], hdr[1]])).max(32);
    while let Some(h) = data.get(at..at + 12) {
        let size = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let start = at + 12;
        let end = start.saturating_add(size).min(data.len());
        frames.push(start..end);
        at = start.saturating_add(size);
    }
    frames
}

/// The mutable bytes of one AV1 temporal unit: frame and tile group OBU payloads past their
/// first bytes.
fn av1_ranges(data: &[u8], unit: Range<usize>) -> Vec<Range<usize>> {
    let base = unit.start;
    let Ok(obus) = daedalus_codecs::av1::obu::split_section5(&data[unit]) else {
        return Vec::new();
    };
    obus.into_iter()
        .filter(|o| matches!((data[base + o.start] >> 3) & 0xf, 4 | 6))
        .filter_map(|o| {
            let s = base + o.payload + KEEP_HEAD;
            let e = base + o.end;
            (s < e).then_some(s..e)
        })
        .collect()
}

/// The NAL units of an Annex B stream: each one's start code (with the leading zero of a
/// 4-byte one) and its bytes.
fn annex_b_nal_units(data: &[u8]) -> Vec<(Range<usize>, Range<usize>)> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut units = Vec::new();
    let mut code_start = starts.first().map_or(0, |&s| s - 3);
    // A leading zero before the first start code belongs to it (a 4-byte start code).
    if code_start > 0 && data[code_start - 1] == 0 {
        code_start -= 1;
    }
    for (k, &s) in starts.iter().enumerate() {
        let mut e = starts.get(k + 1).map_or(data.len(), |&n| n - 3);
        // A 4-byte start code's leading zero belongs to the next start code.
        while e > s && data[e - 1] == 0 && k + 1 < starts.len() {
            e -= 1;
        }
        units.push((code_start..s, s..e));
        code_start = e;
    }
    units
}

/// The slice NAL units (types 1 and 5) of an Annex B stream, start codes excluded.
fn annex_b_slices(data: &[u8]) -> Vec<Range<usize>> {
    annex_b_nal_units(data)
        .into_iter()
        .map(|(_, nal)| nal)
        .filter(|nal| !nal.is_empty() && matches!(data[nal.start] & 0x1f, 1 | 5))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ivf(frames: &[&[u8]]) -> Vec<u8> {
        let mut v = b"DKIF".to_vec();
        v.extend_from_slice(&[0, 0, 32, 0]);
        v.resize(32, 0);
        for (i, f) in frames.iter().enumerate() {
            v.extend_from_slice(&(f.len() as u32).to_le_bytes());
            v.extend_from_slice(&(i as u64).to_le_bytes());
            v.extend_from_slice(f);
        }
        v
    }

    #[test]
    fn vp9_keeps_the_headers() {
        let data = ivf(&[&[0xaa; 100], &[0xbb; 20]]);
        assert!(corruptible(Codec::Vp9, &data));
        let ranges = mutable_ranges(Codec::Vp9, &data);
        // 32 + 12 header bytes, then 12 kept; the tail keeps 34; the short frame keeps all.
        assert_eq!(ranges, vec![56..110]);
        let bad = corrupt(Codec::Vp9, &data, 7, 100);
        assert_ne!(bad, data);
        for (i, (a, b)) in data.iter().zip(&bad).enumerate() {
            if a != b {
                assert!((56..110).contains(&i), "byte {i} changed");
            }
        }
        // Reproducible from the seed, different with another.
        assert_eq!(bad, corrupt(Codec::Vp9, &data, 7, 100));
        assert_ne!(bad, corrupt(Codec::Vp9, &data, 8, 100));
    }

    #[test]
    fn av1_only_frame_payloads() {
        // Temporal delimiter, then a frame OBU (type 6) of 20 payload bytes.
        let mut tu = vec![0x12, 0x00, 0x32, 20];
        tu.extend_from_slice(&[0x10; 20]);
        let data = ivf(&[&tu]);
        let ranges = mutable_ranges(Codec::Av1, &data);
        assert_eq!(ranges, vec![(44 + 4 + 12)..(44 + 24)]);
    }

    #[test]
    fn h264_only_slices() {
        let mut data = vec![0, 0, 0, 1, 0x67];
        data.extend_from_slice(&[0x42; 20]); // SPS: kept
        data.extend_from_slice(&[0, 0, 1, 0x65]);
        data.extend_from_slice(&[0x88; 30]); // IDR slice
        assert!(corruptible(Codec::H264, &data));
        let ranges = mutable_ranges(Codec::H264, &data);
        let start = 4 + 1 + 20 + 3;
        assert_eq!(ranges, vec![(start + 12)..data.len()]);
        let bad = corrupt(Codec::H264, &data, 1, 500);
        assert_eq!(bad[..start + 12], data[..start + 12]);
        assert!(!corruptible(Codec::H264, b"not h264"));
    }

    /// `m` applied to `data` with the generator of `seed`.
    fn one(codec: Codec, data: &[u8], m: Mutation, seed: u64) -> Vec<u8> {
        apply(codec, data, m, &mut ChaCha8Rng::seed_from_u64(seed))
    }

    fn vp9_stream() -> Vec<u8> {
        let frames: Vec<Vec<u8>> = (0..6u8)
            .map(|i| vec![0x80 | i; 60 + usize::from(i)])
            .collect();
        let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
        ivf(&refs)
    }

    fn h264_stream() -> Vec<u8> {
        let mut data = vec![0, 0, 0, 1, 0x67];
        data.extend_from_slice(&[0x42; 10]); // SPS
        data.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xce, 0x38, 0x80]); // PPS
        for i in 0..4u8 {
            data.extend_from_slice(&[0, 0, 1, if i == 0 { 0x65 } else { 0x41 }]);
            data.extend_from_slice(&[0x90 + i; 40]);
        }
        data
    }

    #[test]
    fn mutate_is_reproducible_and_varied() {
        let data = vp9_stream();
        let (a, ma) = mutate(Codec::Vp9, &data, 5);
        assert_eq!((a.clone(), ma.clone()), mutate(Codec::Vp9, &data, 5));
        assert!((1..=3).contains(&ma.len()));
        let mut seen = std::collections::HashSet::new();
        let mut changed = 0;
        for seed in 0..300 {
            let (out, applied) = mutate(Codec::Vp9, &data, seed);
            changed += usize::from(out != data);
            seen.extend(applied);
            // The IVF framing stays readable: every frame header's size fits the file.
            let frames = ivf_frames(&out);
            assert!(frames.iter().all(|f| f.end <= out.len()));
            assert_eq!(out[..32], data[..32]);
        }
        assert_eq!(seen.len(), Mutation::ALL.len(), "{seen:?}");
        assert!(changed > 280, "{changed} of 300 copies changed");
        // Not a stream that can be damaged: unchanged.
        assert_eq!(
            mutate(Codec::Vp9, b"webm...", 1),
            (b"webm...".to_vec(), vec![])
        );
    }

    #[test]
    fn packet_mutations_move_whole_packets() {
        let data = vp9_stream();
        let before: Vec<Vec<u8>> = ivf_frames(&data)
            .into_iter()
            .map(|r| data[r].to_vec())
            .collect();
        let after = |m| -> Vec<Vec<u8>> {
            let out = one(Codec::Vp9, &data, m, 3);
            ivf_frames(&out)
                .into_iter()
                .map(|r| out[r].to_vec())
                .collect()
        };
        let dup = after(Mutation::Duplicate);
        assert_eq!(dup.len(), before.len() + 1);
        assert!(dup.windows(2).any(|w| w[0] == w[1]));
        let dropped = after(Mutation::Drop);
        assert_eq!(dropped.len(), before.len() - 1);
        assert!(dropped.iter().all(|f| before.contains(f)));
        let swapped = after(Mutation::Reorder);
        assert_eq!(swapped.len(), before.len());
        assert_ne!(swapped, before);
        let mut sorted = swapped.clone();
        sorted.sort();
        let mut want = before.clone();
        want.sort();
        assert_eq!(sorted, want);
        let cut = after(Mutation::Truncate);
        assert_eq!(cut.len(), before.len());
        let shorter: Vec<_> = cut.iter().zip(&before).filter(|(a, b)| a != b).collect();
        assert_eq!(shorter.len(), 1);
        assert!(shorter[0].1.starts_with(shorter[0].0) && shorter[0].0.len() < shorter[0].1.len());
    }

    #[test]
    fn header_mutation_hits_only_what_corrupt_keeps() {
        for (codec, data) in [(Codec::Vp9, vp9_stream()), (Codec::H264, h264_stream())] {
            let headers = header_ranges(codec, &data);
            let mutable = mutable_ranges(codec, &data);
            assert!(!headers.is_empty());
            for seed in 0..50 {
                let out = one(codec, &data, Mutation::Header, seed);
                assert_ne!(out, data, "{codec} seed {seed}");
                for (i, (a, b)) in data.iter().zip(&out).enumerate() {
                    if a != b {
                        assert!(headers.iter().any(|r| r.contains(&i)), "{codec}: byte {i}");
                        assert!(!mutable.iter().any(|r| r.contains(&i)));
                    }
                }
            }
        }
        // H.264: the parameter sets are headers; start codes are never touched.
        let data = h264_stream();
        let headers = header_ranges(Codec::H264, &data);
        assert!(headers.iter().any(|r| r.contains(&4)), "SPS");
        assert!(!headers.iter().any(|r| r.contains(&3)), "start code");
    }

    #[test]
    fn h264_packet_mutations_keep_start_codes() {
        let data = h264_stream();
        let units = annex_b_nal_units(&data);
        assert_eq!(units.len(), 6);
        assert_eq!(
            reassemble(Codec::H264, &data, &packets(Codec::H264, &data)),
            data
        );
        for m in [
            Mutation::Duplicate,
            Mutation::Drop,
            Mutation::Reorder,
            Mutation::Truncate,
        ] {
            for seed in 0..20 {
                let out = one(Codec::H264, &data, m, seed);
                let n = annex_b_nal_units(&out).len();
                let want = match m {
                    Mutation::Duplicate => 7,
                    Mutation::Drop => 5,
                    // A NAL unit cut to nothing leaves its start code.
                    _ => 6,
                };
                assert_eq!(n, want, "{m:?} seed {seed}");
            }
        }
        // Bit flips and byte runs stay inside the coded data of one packet.
        let out = one(Codec::H264, &data, Mutation::BitFlips, 1);
        let mutable = mutable_ranges(Codec::H264, &data);
        for (i, (a, b)) in data.iter().zip(&out).enumerate() {
            if a != b {
                assert!(mutable.iter().any(|r| r.contains(&i)), "byte {i}");
            }
        }
        let out = one(Codec::H264, &data, Mutation::ByteRun, 2);
        assert_eq!(out.len(), data.len());
        assert_ne!(out, data);
    }
}
