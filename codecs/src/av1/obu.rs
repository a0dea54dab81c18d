// SPDX-License-Identifier: GPL-2.0
//! AV1 byte streams: OBUs in the low-overhead format (Section 5, every OBU with its size) and
//! in the length-delimited format of Annex B (`temporal_unit_size`, `frame_unit_size`,
//! `obu_length`), split into temporal units, each rewritten in the Section 5 format (what
//! IVF / WebM / MP4 carry and what the parser and the device take). One definition of AV1's
//! byte-level framing for the tools (reading streams) and the daemon (checking jobs' OBUs).

/// Why a byte stream cannot be split.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ObuError {
    /// A leb128 number runs past the end or past 8 bytes, or exceeds 32 bits.
    #[error("bad leb128 number at byte {0}")]
    Leb128(usize),
    /// A size runs past its container.
    #[error("{what} of {size} bytes at byte {at} runs past the end ({left} bytes left)")]
    Truncated {
        /// The unit.
        what: &'static str,
        /// Its size.
        size: u64,
        /// Where it starts.
        at: usize,
        /// What is left.
        left: usize,
    },
    /// An OBU header has the forbidden bit set.
    #[error("OBU header at byte {0} has obu_forbidden_bit set")]
    Forbidden(usize),
    /// A Section 5 OBU without `obu_has_size_field`.
    #[error("OBU at byte {0} has no size field (not a low-overhead stream)")]
    NoSize(usize),
    /// Neither format fits the data.
    #[error("neither a low-overhead (Section 5) nor an Annex B AV1 stream")]
    Unrecognised,
}

/// Reads a leb128 number at `data[*pos..]`.
pub fn read_leb128(data: &[u8], pos: &mut usize) -> Result<u64, ObuError> {
    let start = *pos;
    let mut value = 0u64;
    for i in 0..8 {
        let Some(&b) = data.get(*pos) else {
            return Err(ObuError::Leb128(start));
        };
        *pos += 1;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return if value > u64::from(u32::MAX) {
                Err(ObuError::Leb128(start))
            } else {
                Ok(value)
            };
        }
    }
    Err(ObuError::Leb128(start))
}

/// Reads a leb128 size at `data[*pos..]` and the `what` of that size after it (which starts at
/// byte `at`, for the error); moves `pos` past both.
fn read_sized<'d>(
    data: &'d [u8],
    pos: &mut usize,
    what: &'static str,
    at: usize,
) -> Result<&'d [u8], ObuError> {
    let size = read_leb128(data, pos)?;
    let left = data.len().saturating_sub(*pos);
    if size > left as u64 {
        return Err(ObuError::Truncated {
            what,
            size,
            at,
            left,
        });
    }
    let body = &data[*pos..*pos + size as usize];
    *pos += size as usize;
    Ok(body)
}

/// Appends `value` as `leb128()` (4.10.5).
pub fn write_leb128(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let b = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// One OBU of a Section 5 buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObuRef {
    /// `obu_type`.
    pub obu_type: u8,
    /// Where the OBU (its header) starts.
    pub start: usize,
    /// Where its payload starts.
    pub payload: usize,
    /// Where it ends.
    pub end: usize,
}

/// OBU types (5.3.1): sequence header.
pub const OBU_SEQUENCE_HEADER: u8 = 1;
/// Temporal delimiter OBU.
pub const OBU_TEMPORAL_DELIMITER: u8 = 2;
/// Frame header OBU.
pub const OBU_FRAME_HEADER: u8 = 3;
/// Tile group OBU.
pub const OBU_TILE_GROUP: u8 = 4;
/// Frame OBU (frame header + tile group).
pub const OBU_FRAME: u8 = 6;
/// Redundant frame header OBU.
pub const OBU_REDUNDANT_FRAME_HEADER: u8 = 7;

/// The OBUs of a Section 5 buffer.
pub fn split_section5(data: &[u8]) -> Result<Vec<ObuRef>, ObuError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let start = pos;
        let h = data[pos];
        if h & 0x80 != 0 {
            return Err(ObuError::Forbidden(start));
        }
        if h & 0x02 == 0 {
            return Err(ObuError::NoSize(start));
        }
        pos += 1 + usize::from(h & 0x04 != 0);
        let size = read_sized(data, &mut pos, "OBU", start)?.len();
        let (payload, end) = (pos - size, pos);
        out.push(ObuRef {
            obu_type: (h >> 3) & 0x0f,
            start,
            payload,
            end,
        });
        pos = end;
    }
    Ok(out)
}

/// A low-overhead stream (an `.obu` file) split into temporal units at its temporal
/// delimiters.
pub fn temporal_units_section5(data: &[u8]) -> Result<Vec<Vec<u8>>, ObuError> {
    let obus = split_section5(data)?;
    let mut units: Vec<Vec<u8>> = Vec::new();
    for o in obus {
        if o.obu_type == OBU_TEMPORAL_DELIMITER || units.is_empty() {
            units.push(Vec::new());
        }
        if let Some(u) = units.last_mut() {
            u.extend_from_slice(&data[o.start..o.end]);
        }
    }
    Ok(units)
}

/// An Annex B stream split into temporal units, each rewritten in the Section 5 format (every
/// OBU gets `obu_has_size_field` and its size).
pub fn temporal_units_annexb(data: &[u8]) -> Result<Vec<Vec<u8>>, ObuError> {
    fn sized<'d>(
        data: &'d [u8],
        pos: &mut usize,
        what: &'static str,
    ) -> Result<&'d [u8], ObuError> {
        let at = *pos;
        read_sized(data, pos, what, at)
    }
    let mut units = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let tu = sized(data, &mut pos, "temporal unit")?;
        let mut out = Vec::with_capacity(tu.len() + 16);
        let mut tpos = 0;
        while tpos < tu.len() {
            let fu = sized(tu, &mut tpos, "frame unit")?;
            let mut fpos = 0;
            while fpos < fu.len() {
                let obu_at = fpos;
                let obu = sized(fu, &mut fpos, "OBU")?;
                let Some(&h) = obu.first() else {
                    return Err(ObuError::Truncated {
                        what: "OBU header",
                        size: 1,
                        at: obu_at,
                        left: 0,
                    });
                };
                if h & 0x80 != 0 {
                    return Err(ObuError::Forbidden(obu_at));
                }
                let header_len = 1 + usize::from(h & 0x04 != 0);
                if obu.len() < header_len {
                    return Err(ObuError::Truncated {
                        what: "OBU header",
                        size: header_len as u64,
                        at: obu_at,
                        left: obu.len(),
                    });
                }
                let payload = if h & 0x02 != 0 {
                    // Already sized: keep the payload it declares (trailing bytes of the
                    // obu_length are dropped, as decoders do).
                    let mut p = header_len;
                    read_sized(obu, &mut p, "OBU", obu_at)?
                } else {
                    &obu[header_len..]
                };
                out.push(h | 0x02);
                out.extend_from_slice(&obu[1..header_len]);
                write_leb128(&mut out, payload.len() as u64);
                out.extend_from_slice(payload);
            }
        }
        units.push(out);
    }
    Ok(units)
}

/// The layout of a bare `.obu` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObuFormat {
    /// Low-overhead: OBUs with sizes, one after the other.
    Section5,
    /// Annex B: length-delimited temporal units / frame units / OBUs.
    AnnexB,
}

/// Whether a Section 5 split of `data` looks like AV1: every OBU well formed, of a defined
/// type, the first a temporal delimiter or sequence header.
fn plausible_section5(data: &[u8]) -> bool {
    match split_section5(data) {
        Ok(obus) => {
            obus.first().is_some_and(|o| {
                o.obu_type == OBU_TEMPORAL_DELIMITER || o.obu_type == OBU_SEQUENCE_HEADER
            }) && obus
                .iter()
                .all(|o| matches!(o.obu_type, 1..=8 | 15) && data[o.start] & 1 == 0)
        }
        Err(_) => false,
    }
}

/// Whether an Annex B split of `data` looks like AV1: all sizes nest exactly, every OBU
/// header is valid and every temporal unit starts with a temporal delimiter.
fn plausible_annexb(data: &[u8]) -> bool {
    match temporal_units_annexb(data) {
        Ok(units) => {
            !units.is_empty()
                && units.iter().all(|u| match split_section5(u) {
                    Ok(obus) => {
                        obus.first()
                            .is_some_and(|o| o.obu_type == OBU_TEMPORAL_DELIMITER)
                            && obus
                                .iter()
                                .all(|o| matches!(o.obu_type, 1..=8 | 15) && u[o.start] & 1 == 0)
                    }
                    Err(_) => false,
                })
        }
        Err(_) => false,
    }
}

/// Tells a Section 5 `.obu` file from an Annex B one by splitting the whole file both ways:
/// only the right one nests every size exactly and yields valid OBU headers throughout.
pub fn detect(data: &[u8]) -> Result<ObuFormat, ObuError> {
    match (plausible_section5(data), plausible_annexb(data)) {
        (true, false) => Ok(ObuFormat::Section5),
        (false, true) => Ok(ObuFormat::AnnexB),
        // Both parse (tiny, contrived data): Section 5 starts with a 0x12 0x00 delimiter.
        (true, true) if data.starts_with(&[0x12, 0x00]) => Ok(ObuFormat::Section5),
        (true, true) => Ok(ObuFormat::AnnexB),
        (false, false) => Err(ObuError::Unrecognised),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A temporal delimiter, a 3-byte "sequence header" and a 2-byte "frame" OBU.
    const TD: [u8; 2] = [0x12, 0x00];
    const SEQ: [u8; 5] = [0x0a, 0x03, 1, 2, 3];
    const FRAME: [u8; 4] = [0x32, 0x02, 9, 8];

    fn section5() -> Vec<u8> {
        [&TD[..], &SEQ, &FRAME, &TD, &FRAME].concat()
    }

    /// The same stream in Annex B, OBUs without size fields.
    fn annexb() -> Vec<u8> {
        let obu = |h: u8, payload: &[u8]| {
            let mut v = vec![(payload.len() + 1) as u8, h & !0x02];
            v.extend_from_slice(payload);
            v
        };
        let unit = |parts: &[Vec<u8>]| {
            let body = parts.concat();
            let mut v = vec![body.len() as u8];
            v.extend(body);
            v
        };
        let fu1 = unit(&[obu(0x12, &[]), obu(0x0a, &[1, 2, 3]), obu(0x32, &[9, 8])]);
        let fu2 = unit(&[obu(0x12, &[]), obu(0x32, &[9, 8])]);
        [unit(&[fu1]), unit(&[fu2])].concat()
    }

    #[test]
    fn leb128_round_trips() {
        for v in [0u64, 1, 127, 128, 300, 1 << 20, u64::from(u32::MAX)] {
            let mut buf = Vec::new();
            write_leb128(&mut buf, v);
            let mut pos = 0;
            assert_eq!(read_leb128(&buf, &mut pos), Ok(v));
            assert_eq!(pos, buf.len());
        }
        let mut pos = 0;
        assert_eq!(
            read_leb128(&[0x80, 0x80], &mut pos),
            Err(ObuError::Leb128(0))
        );
    }

    #[test]
    fn section5_splits_into_temporal_units() {
        let data = section5();
        assert_eq!(detect(&data), Ok(ObuFormat::Section5));
        let units = temporal_units_section5(&data).unwrap();
        assert_eq!(
            units,
            vec![[&TD[..], &SEQ, &FRAME].concat(), [&TD[..], &FRAME].concat()]
        );
        let obus = split_section5(&units[0]).unwrap();
        assert_eq!(
            obus.iter().map(|o| o.obu_type).collect::<Vec<_>>(),
            [2, 1, 6]
        );
        assert_eq!(
            obus[1],
            ObuRef {
                obu_type: 1,
                start: 2,
                payload: 4,
                end: 7
            }
        );
    }

    #[test]
    fn annexb_is_detected_and_rewritten_as_section5() {
        let data = annexb();
        assert_eq!(detect(&data), Ok(ObuFormat::AnnexB));
        assert_eq!(
            temporal_units_annexb(&data).unwrap(),
            temporal_units_section5(&section5()).unwrap()
        );
    }

    #[test]
    fn broken_streams_are_errors() {
        let mut data = section5();
        data.truncate(data.len() - 1);
        assert!(matches!(
            split_section5(&data),
            Err(ObuError::Truncated { .. })
        ));
        assert_eq!(split_section5(&[0x92, 0x00]), Err(ObuError::Forbidden(0)));
        assert_eq!(split_section5(&[0x10]), Err(ObuError::NoSize(0)));
        let mut ab = annexb();
        ab[0] += 1;
        assert!(temporal_units_annexb(&ab).is_err());
        assert_eq!(detect(&[0xff, 0xff, 0xff]), Err(ObuError::Unrecognised));
    }

    #[test]
    fn real_annexb_and_section5_files_are_told_apart() {
        let Some(dir) = crate::vectors::shared_subdir_or_skip("av1/dav1d-test-data/8-bit/features")
        else {
            return;
        };
        let (Ok(a), Ok(s)) = (
            std::fs::read(dir.join("annexb.obu")),
            std::fs::read(dir.join("section5.obu")),
        ) else {
            eprintln!(
                "skipped: no annexb.obu / section5.obu under {}",
                dir.display()
            );
            return;
        };
        assert_eq!(detect(&a), Ok(ObuFormat::AnnexB));
        assert_eq!(detect(&s), Ok(ObuFormat::Section5));
        let ua = temporal_units_annexb(&a).unwrap();
        let us = temporal_units_section5(&s).unwrap();
        assert_eq!(ua.len(), us.len());
    }
}
