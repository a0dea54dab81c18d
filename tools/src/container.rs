// SPDX-License-Identifier: GPL-2.0
//! Recognition of the input container from the first bytes of a file.

use std::fmt;

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
