// SPDX-License-Identifier: GPL-2.0
//! Running cros-codecs' AV1 parser over a buffer of OBUs, and gathering a frame's tiles.
//!
//! cros-codecs parses one OBU at a time (`Parser::read_obu` then `parse_obu`) and leaves the
//! walk to the caller: skipping the OBUs it drops (other operating points, padding), knowing
//! where each payload starts in the caller's buffer (tile offsets are relative to it), and
//! collecting a frame's tile groups until every tile is in. [`Obus`] and [`TileFrames`] are that
//! walk, written once for every client of the parser (the CLI's test clients, the control
//! mapping's tests, the rebuilder's round trip).

use cros_codecs::codec::av1::parser::{FrameHeaderObu, ObuAction, ParsedObu, Parser};

use super::controls::{push_tile_group_entries, ControlError};
use crate::uapi::v4l2_ctrl_av1_tile_group_entry;

/// One OBU the parser kept, with where it lies in the walked buffer.
pub struct ObuAt<'a> {
    /// Offset of the OBU (its header) in the buffer.
    pub start: usize,
    /// Offset of its payload (after the header and size field).
    pub payload: usize,
    /// Offset just past it.
    pub end: usize,
    /// What the parser made of it.
    pub parsed: ParsedObu<'a>,
}

/// The OBUs of `data` (low-overhead bitstream format), parsed in order. An iterator of
/// `Result<ObuAt, String>` (the parser's error text); after an error the walk ends.
///
/// The parser stays reachable between items through [`Obus::parser`], for what a caller does
/// per frame (`ref_frame_update`, `choose_operating_point`).
pub struct Obus<'p, 'a> {
    parser: &'p mut Parser,
    data: &'a [u8],
    pos: usize,
}

impl<'p, 'a> Obus<'p, 'a> {
    /// Walks `data` with `parser` (which keeps its sequence header and reference state).
    pub fn new(parser: &'p mut Parser, data: &'a [u8]) -> Self {
        Obus {
            parser,
            data,
            pos: 0,
        }
    }

    /// The parser, between two OBUs.
    pub fn parser(&mut self) -> &mut Parser {
        self.parser
    }

    fn fail(&mut self, e: String) -> Option<Result<ObuAt<'a>, String>> {
        self.pos = self.data.len();
        Some(Err(e))
    }
}

impl<'a> Iterator for Obus<'_, 'a> {
    type Item = Result<ObuAt<'a>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let rest = self.data.get(self.pos..).filter(|r| !r.is_empty())?;
            let obu = match self.parser.read_obu(rest) {
                Ok(ObuAction::Process(obu)) => obu,
                Ok(ObuAction::Drop(n)) => {
                    // A dropped OBU still has a size: a zero one would never end the walk.
                    if n == 0 {
                        return self.fail("cros-codecs dropped an empty OBU".into());
                    }
                    self.pos = self.pos.saturating_add(n as usize);
                    continue;
                }
                Err(e) => return self.fail(e),
            };
            let start = self.pos;
            let end = start + obu.bytes_used;
            let payload = end - obu.as_ref().len();
            self.pos = end;
            return Some(match self.parser.parse_obu(obu) {
                Ok(parsed) => Ok(ObuAt {
                    start,
                    payload,
                    end,
                    parsed,
                }),
                Err(e) => return self.fail(e),
            });
        }
    }
}

/// A frame whose header and tiles are all in.
pub struct TileFrame {
    /// Its frame header (a `show_existing_frame` header has no tiles).
    pub header: FrameHeaderObu,
    /// Its tile group entries, `tile_offset` relative to the walked buffer plus the base given
    /// to [`TileFrames::push`].
    pub tiles: Vec<v4l2_ctrl_av1_tile_group_entry>,
}

/// Gathers frame headers and tile groups into frames, as a stateless client does before it
/// sends a frame's controls: a frame is complete when its `show_existing_frame` header arrives
/// or when it has `tile_cols * tile_rows` tiles. Redundant frame headers are ignored.
#[derive(Default)]
pub struct TileFrames {
    header: Option<FrameHeaderObu>,
    tiles: Vec<v4l2_ctrl_av1_tile_group_entry>,
}

impl TileFrames {
    /// Takes one parsed OBU (`base` is added to its offsets: where the walked buffer starts in
    /// the OUTPUT buffer); returns the frame it completes, if any.
    pub fn push(&mut self, obu: ObuAt<'_>, base: u32) -> Result<Option<TileFrame>, ControlError> {
        let payload = base.saturating_add(u32::try_from(obu.payload).unwrap_or(u32::MAX));
        match obu.parsed {
            ParsedObu::FrameHeader(fh) if self.header.is_none() => self.header = Some(fh),
            ParsedObu::TileGroup(tg) => push_tile_group_entries(&tg, payload, &mut self.tiles)?,
            ParsedObu::Frame(f) => {
                let start = payload.saturating_add(f.header.header_bytes as u32);
                push_tile_group_entries(&f.tile_group, start, &mut self.tiles)?;
                self.header = Some(f.header);
            }
            _ => {}
        }
        let Some(fh) = &self.header else {
            return Ok(None);
        };
        let tile_count = fh.tile_info.tile_cols * fh.tile_info.tile_rows;
        if !fh.show_existing_frame && self.tiles.len() as u32 != tile_count {
            return Ok(None);
        }
        Ok(self.header.take().map(|header| TileFrame {
            header,
            tiles: std::mem::take(&mut self.tiles),
        }))
    }
}
