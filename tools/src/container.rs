// SPDX-License-Identifier: GPL-2.0
//! Recognition of the input container from the first bytes of a file.

use std::fmt;
use std::io::{Chain, Cursor, Read};

use crate::ivf::{IvfError, IvfReader};
use crate::webm::{WebmError, WebmReader};

/// How many leading bytes [`sniff`] looks at (fewer are fine, they just say less).
pub const SNIFF_LEN: usize = 4;

/// A container format of compressed video.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Container {
    /// IVF ([`crate::ivf`]): starts with `DKIF`.
    Ivf,
    /// WebM or Matroska ([`crate::webm`]): starts with the EBML header ID `1A 45 DF A3`.
    Webm,
    /// Anything else (or too few bytes to tell).
    Unknown,
}

/// The EBML header element ID, which starts every WebM / Matroska file.
const EBML_MAGIC: [u8; 4] = [0x1A, 0x45, 0xDF, 0xA3];

/// Recognises the container from the first bytes of a file (at least [`SNIFF_LEN`] of them to
/// be conclusive). To sniff a stream and still read it from the start, peek with
/// [`std::io::BufRead::fill_buf`], or chain the bytes read back in front of it.
pub fn sniff(first_bytes: &[u8]) -> Container {
    if first_bytes.starts_with(b"DKIF") {
        Container::Ivf
    } else if first_bytes.starts_with(&EBML_MAGIC) {
        Container::Webm
    } else {
        Container::Unknown
    }
}

impl fmt::Display for Container {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Container::Ivf => "IVF",
            Container::Webm => "WebM",
            Container::Unknown => "unknown",
        })
    }
}

/// Compressed packets of the VP9 or AV1 track of an IVF or WebM file, whichever `input` is.
pub enum PacketReader<R: Read> {
    /// An IVF file.
    Ivf(IvfReader<Chain<Cursor<Vec<u8>>, R>>),
    /// The VP9 track of a WebM / Matroska file.
    Webm(WebmReader<Chain<Cursor<Vec<u8>>, R>>),
}

/// Why packets cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The IVF file is broken.
    #[error(transparent)]
    Ivf(#[from] IvfError),
    /// The WebM file is broken (or has no VP9 track).
    #[error(transparent)]
    Webm(#[from] WebmError),
    /// Neither IVF nor WebM.
    #[error("not an IVF or WebM file")]
    Unknown,
    /// Reading the first bytes failed.
    #[error("cannot read the input: {0}")]
    Io(#[from] std::io::Error),
}

/// What the container says about the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamInfo {
    /// The container.
    pub container: Container,
    /// Whether the stream is VP9 (IVF fourcc `VP90`; a WebM reader only opens V_VP9 tracks).
    pub vp9: bool,
    /// Codec fourcc or id, for messages.
    pub codec: [u8; 4],
    /// Size the muxer saw.
    pub width: u32,
    /// Size the muxer saw.
    pub height: u32,
    /// Packet timestamps count `timebase_num / timebase_den` seconds.
    pub timebase_num: i64,
    /// See `timebase_num`.
    pub timebase_den: i64,
}

/// A packet's position and timestamp (the bytes go to the caller's buffer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Packet number (from 0).
    pub index: u64,
    /// Timestamp in [`StreamInfo`] time base units.
    pub pts: i64,
}

impl<R: Read> PacketReader<R> {
    /// Recognises the container of `input` and reads its headers.
    pub fn new(mut input: R) -> Result<Self, ContainerError> {
        let mut head = Vec::with_capacity(SNIFF_LEN);
        (&mut input).take(SNIFF_LEN as u64).read_to_end(&mut head)?;
        let kind = sniff(&head);
        let input = Cursor::new(head).chain(input);
        Ok(match kind {
            Container::Ivf => PacketReader::Ivf(IvfReader::new(input)?),
            Container::Webm => PacketReader::Webm(WebmReader::new(input)?),
            Container::Unknown => return Err(ContainerError::Unknown),
        })
    }

    /// What the container says about the stream.
    pub fn info(&self) -> StreamInfo {
        match self {
            PacketReader::Ivf(r) => {
                let h = r.header();
                StreamInfo {
                    container: Container::Ivf,
                    vp9: &h.fourcc == b"VP90",
                    codec: h.fourcc,
                    width: u32::from(h.width),
                    height: u32::from(h.height),
                    timebase_num: i64::from(h.timebase_num),
                    timebase_den: i64::from(h.timebase_den),
                }
            }
            PacketReader::Webm(r) => {
                let h = r.header();
                let tb = h.timebase();
                let av1 = h.codec_id == crate::webm::AV1_CODEC_ID;
                StreamInfo {
                    container: Container::Webm,
                    vp9: !av1,
                    codec: if av1 { *b"AV01" } else { *b"VP90" },
                    width: h.width,
                    height: h.height,
                    timebase_num: tb.num,
                    timebase_den: tb.den,
                }
            }
        }
    }

    /// The next packet into `buf`; `Ok(None)` at the end.
    pub fn next_packet(&mut self, buf: &mut Vec<u8>) -> Result<Option<Packet>, ContainerError> {
        Ok(match self {
            PacketReader::Ivf(r) => r.next_frame(buf)?.map(|f| Packet {
                index: f.index,
                pts: f.pts,
            }),
            PacketReader::Webm(r) => r.next_frame(buf)?.map(|f| Packet {
                index: f.index,
                pts: f.pts,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs() {
        assert_eq!(sniff(b"DKIF\0\0\x20\0VP90"), Container::Ivf);
        assert_eq!(sniff(&[0x1A, 0x45, 0xDF, 0xA3, 0x9F]), Container::Webm);
        assert_eq!(sniff(&EBML_MAGIC), Container::Webm);
        assert_eq!(sniff(b"DKI"), Container::Unknown);
        assert_eq!(sniff(&[0x1A, 0x45]), Container::Unknown);
        assert_eq!(sniff(b""), Container::Unknown);
        assert_eq!(sniff(b"\0\0\0\x01"), Container::Unknown);
        assert_eq!(Container::Webm.to_string(), "WebM");
    }
}
