// SPDX-License-Identifier: GPL-2.0
//! Corrupted copies of the streams for `daedalus stress`: bytes of the coded data mutated,
//! seeded, with what must stay readable kept: the IVF file and frame headers, the first bytes of
//! each VP9 frame (its uncompressed header) and its superframe index, the AV1 OBU headers and
//! sizes and the first bytes of each frame, the H.264 start codes, parameter sets and slice
//! header bytes. So the client still finds its frames and the daemon gets damaged data.

use std::ops::Range;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::codec::Codec;

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

/// The slice NAL units (types 1 and 5) of an Annex B stream, start codes excluded.
fn annex_b_slices(data: &[u8]) -> Vec<Range<usize>> {
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
    let mut slices = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let mut e = starts.get(k + 1).map_or(data.len(), |&n| n - 3);
        // A 4-byte start code's leading zero belongs to the next start code.
        while e > s && data[e - 1] == 0 && k + 1 < starts.len() {
            e -= 1;
        }
        if s < e && matches!(data[s] & 0x1f, 1 | 5) {
            slices.push(s..e);
        }
    }
    slices
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
}
