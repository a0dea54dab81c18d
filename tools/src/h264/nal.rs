// SPDX-License-Identifier: GPL-2.0
//! NAL units out of the three ways H.264 is stored: an Annex-B byte stream (start codes), the
//! length-prefixed samples of MP4 / Matroska, and the `AVCDecoderConfigurationRecord` (`avcC`)
//! that carries the parameter sets of the latter two.

use std::ops::Range;

/// Why NAL units cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NalError {
    /// The data does not start with a start code.
    #[error("not an H.264 Annex-B stream (no 00 00 01 start code at the start)")]
    NoStartCode,
    /// A length prefix runs past the end of its sample.
    #[error(
        "NAL unit of {len} bytes at offset {offset} runs past the end of its {sample}-byte sample"
    )]
    Truncated {
        /// Offset of the length prefix in the sample.
        offset: usize,
        /// The length it gives.
        len: usize,
        /// Size of the sample.
        sample: usize,
    },
    /// The `avcC` record is malformed.
    #[error("malformed avcC record: {0}")]
    BadAvcc(&'static str),
}

/// Whether `data` starts like an Annex-B stream: any number of zero bytes (at least two), then
/// `01` (a start code).
pub fn looks_like_annex_b(data: &[u8]) -> bool {
    let zeros = data.iter().take_while(|&&b| b == 0).count();
    zeros >= 2 && data.get(zeros) == Some(&1)
}

/// The NAL units of an Annex-B byte stream, as ranges of `data` without the start codes and
/// without the trailing zero bytes before the next start code (H.264 B.1). Empty NAL units are
/// left out.
pub fn split_annex_b(data: &[u8]) -> Result<Vec<Range<usize>>, NalError> {
    if !looks_like_annex_b(data) {
        return Err(NalError::NoStartCode);
    }
    let mut nals = Vec::new();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i + 2 < data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            if let Some(s) = start {
                push_trimmed(&mut nals, data, s, i);
            }
            i += 3;
            start = Some(i);
        } else if data[i + 2] > 1 {
            // No start code can begin at i, i + 1 or i + 2.
            i += 3;
        } else {
            i += 1;
        }
    }
    if let Some(s) = start {
        push_trimmed(&mut nals, data, s, data.len());
    }
    Ok(nals)
}

fn push_trimmed(nals: &mut Vec<Range<usize>>, data: &[u8], start: usize, mut end: usize) {
    while end > start && data[end - 1] == 0 {
        end -= 1;
    }
    if end > start {
        nals.push(start..end);
    }
}

/// The NAL units of one MP4 / Matroska sample whose NAL units are each preceded by a
/// big-endian length of `length_size` bytes (1, 2 or 4), as ranges of `sample`.
pub fn split_length_prefixed(
    sample: &[u8],
    length_size: usize,
) -> Result<Vec<Range<usize>>, NalError> {
    let mut nals = Vec::new();
    let mut pos = 0;
    while pos < sample.len() {
        let Some(prefix) = sample.get(pos..pos + length_size) else {
            return Err(NalError::Truncated {
                offset: pos,
                len: length_size,
                sample: sample.len(),
            });
        };
        let len = prefix
            .iter()
            .fold(0usize, |n, &b| (n << 8) | usize::from(b));
        let start = pos + length_size;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= sample.len())
            .ok_or(NalError::Truncated {
                offset: pos,
                len,
                sample: sample.len(),
            })?;
        if len > 0 {
            nals.push(start..end);
        }
        pos = end;
    }
    Ok(nals)
}

/// What an `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 5.3.3.1) holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AvcConfig {
    /// Size of the NAL unit length prefixes of the samples (1, 2 or 4).
    pub length_size: usize,
    /// The SPS and PPS NAL units (SPS first), without prefix.
    pub parameter_sets: Vec<Vec<u8>>,
}

/// Parses an `avcC` record.
pub fn parse_avcc(data: &[u8]) -> Result<AvcConfig, NalError> {
    let byte = |i: usize| data.get(i).copied().ok_or(NalError::BadAvcc("too short"));
    if byte(0)? != 1 {
        return Err(NalError::BadAvcc("configurationVersion is not 1"));
    }
    let length_size = usize::from(byte(4)? & 3) + 1;
    if length_size == 3 {
        return Err(NalError::BadAvcc("lengthSizeMinusOne is 2"));
    }
    let mut pos = 5;
    let mut parameter_sets = Vec::new();
    for count_mask in [0x1f, 0xff] {
        let count = byte(pos)? & count_mask;
        pos += 1;
        for _ in 0..count {
            let len = usize::from(u16::from_be_bytes([byte(pos)?, byte(pos + 1)?]));
            pos += 2;
            let nal = data
                .get(pos..pos + len)
                .ok_or(NalError::BadAvcc("parameter set runs past the end"))?;
            parameter_sets.push(nal.to_vec());
            pos += len;
        }
    }
    Ok(AvcConfig {
        length_size,
        parameter_sets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nals<'a>(data: &'a [u8], ranges: &[Range<usize>]) -> Vec<&'a [u8]> {
        ranges.iter().map(|r| &data[r.clone()]).collect()
    }

    #[test]
    fn annex_b() {
        let data = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 0, 0, 3, 1, 0, 0, 1, 0,
            0, 1, 0x41, 9, 0,
        ];
        let r = split_annex_b(&data).unwrap();
        assert_eq!(
            nals(&data, &r),
            [
                &[0x67, 1, 2][..],
                &[0x68, 3],
                &[0x65, 0, 0, 3, 1],
                &[0x41, 9]
            ]
        );
        assert!(looks_like_annex_b(&[0, 0, 1, 0x67]));
        assert!(looks_like_annex_b(&[0, 0, 0, 0, 1]));
        assert!(!looks_like_annex_b(&[0, 1, 0x67]));
        assert!(!looks_like_annex_b(b"\0\0\0\x18ftypisom"));
        assert_eq!(split_annex_b(&[1, 2, 3]), Err(NalError::NoStartCode));
        assert_eq!(
            split_annex_b(&[0, 0, 1]).unwrap(),
            Vec::<Range<usize>>::new()
        );
    }

    #[test]
    fn length_prefixed() {
        let s = [0, 0, 0, 2, 0x65, 7, 0, 0, 0, 1, 0x41];
        let r = split_length_prefixed(&s, 4).unwrap();
        assert_eq!(nals(&s, &r), [&[0x65, 7][..], &[0x41]]);
        let s2 = [0, 2, 0x65, 7, 0, 1, 0x41];
        assert_eq!(nals(&s2, &split_length_prefixed(&s2, 2).unwrap()).len(), 2);
        assert!(matches!(
            split_length_prefixed(&[0, 0, 0, 9, 1], 4),
            Err(NalError::Truncated { len: 9, .. })
        ));
        assert!(split_length_prefixed(&[0, 0], 4).is_err());
    }

    #[test]
    fn avcc() {
        let rec = [
            1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 3, 0x67, 0x64, 0x1f, 1, 0, 2, 0x68, 0xee,
        ];
        let c = parse_avcc(&rec).unwrap();
        assert_eq!(c.length_size, 4);
        assert_eq!(
            c.parameter_sets,
            vec![vec![0x67, 0x64, 0x1f], vec![0x68, 0xee]]
        );
        assert!(parse_avcc(&rec[..10]).is_err());
        assert!(parse_avcc(&[0, 0, 0, 0, 0xff, 0xe0, 0]).is_err());
    }
}
