// SPDX-License-Identifier: GPL-2.0
//! VP9 bitstream parsing for a V4L2 stateless client: superframe splitting, the uncompressed
//! and compressed frame headers, and the V4L2 controls built from them
//! (`V4L2_CID_STATELESS_VP9_FRAME`, `V4L2_CID_STATELESS_VP9_COMPRESSED_HDR`).
//!
//! Written from the VP9 bitstream specification (v0.6). The `cros-codecs` crate has a VP9
//! parser, but it does not decode the compressed header (which the V4L2 control needs) and
//! panics on some truncated superframe indexes, so this module does both itself.

mod bits;
pub mod compressed;
pub mod header;
pub mod superframe;
pub mod v4l2;

pub use compressed::CompressedInfo;
pub use header::{FrameHeader, HeaderParser};

use crate::uapi::v4l2_ctrl_vp9_compressed_hdr;

/// Why a frame could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The data ends inside a header.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// A value the specification forbids.
    #[error("invalid bitstream: {0}")]
    Invalid(&'static str),
    /// Valid, but not something this parser handles.
    #[error("unsupported bitstream: {0}")]
    Unsupported(&'static str),
}

/// One frame: its headers and where its data is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedFrame {
    /// The uncompressed header.
    pub header: FrameHeader,
    /// What the compressed header decided (default for `show_existing_frame`).
    pub compressed: CompressedInfo,
}

/// Parses one frame (superframes already split): the uncompressed header, then, unless the
/// frame only shows an existing one, the compressed header into `compressed_hdr`.
pub fn parse_frame(
    parser: &mut HeaderParser,
    data: &[u8],
    compressed_hdr: &mut v4l2_ctrl_vp9_compressed_hdr,
) -> Result<ParsedFrame, ParseError> {
    let header = parser.parse(data)?;
    if header.show_existing_frame {
        return Ok(ParsedFrame {
            header,
            compressed: CompressedInfo::default(),
        });
    }
    let start = usize::from(header.uncompressed_header_size);
    let end = start + usize::from(header.compressed_header_size);
    let bytes = data
        .get(start..end)
        .ok_or(ParseError::Truncated("compressed header"))?;
    if end >= data.len() {
        return Err(ParseError::Truncated("frame: no tile data"));
    }
    let compressed = compressed::parse(&header, bytes, compressed_hdr)?;
    Ok(ParsedFrame { header, compressed })
}
