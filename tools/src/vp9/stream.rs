// SPDX-License-Identifier: GPL-2.0
//! A VP9 elementary stream out of an IVF or WebM file, frame by frame: packets are split into
//! frames (superframes) and each frame's headers are parsed.

use std::io::Read;

use super::superframe::{self, Frames};
use super::{parse_frame, HeaderParser, ParseError, ParsedFrame};
use crate::container::{ContainerError, PacketReader, StreamInfo};
use crate::sys::v4l2_ctrl_vp9_compressed_hdr;

/// Errors of [`Vp9Stream`].
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The container is broken: the stream cannot go on.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// One frame cannot be parsed; the stream goes on with the next one.
    #[error("packet {packet}, frame {frame}: {error}")]
    Frame {
        /// IVF frame number.
        packet: u64,
        /// Frame number within the packet (superframes).
        frame: usize,
        /// Why.
        error: ParseError,
    },
}

/// One VP9 frame of the stream.
#[derive(Debug)]
pub struct StreamFrame<'a> {
    /// IVF frame number of the packet that carried it.
    pub packet: u64,
    /// Timestamp of that packet (IVF time base).
    pub pts: i64,
    /// Position in the packet (0 unless in a superframe).
    pub index_in_packet: usize,
    /// Whether it is the last frame of its packet.
    pub last_in_packet: bool,
    /// The frame's bytes (what goes into an OUTPUT buffer).
    pub data: &'a [u8],
    /// Its headers.
    pub parsed: ParsedFrame,
}

/// Reads VP9 frames from an IVF or WebM file.
pub struct Vp9Stream<R: Read> {
    packets: PacketReader<R>,
    parser: HeaderParser,
    packet: Vec<u8>,
    frames: Frames,
    next: usize,
    packet_index: u64,
    pts: i64,
}

impl<R: Read> Vp9Stream<R> {
    /// Reads the container headers of `input`.
    pub fn new(input: R) -> Result<Self, StreamError> {
        Ok(Vp9Stream {
            packets: PacketReader::new(input)?,
            parser: HeaderParser::new(),
            packet: Vec::new(),
            frames: Frames::default(),
            next: 0,
            packet_index: 0,
            pts: 0,
        })
    }

    /// What the container says about the stream.
    pub fn info(&self) -> StreamInfo {
        self.packets.info()
    }

    /// The next frame, its compressed header parsed into `compressed_hdr` (zeroed for frames
    /// that show an existing one). `Ok(None)` at the end of the file. After a
    /// [`StreamError::Frame`] the stream continues with the next frame.
    pub fn next_frame(
        &mut self,
        compressed_hdr: &mut v4l2_ctrl_vp9_compressed_hdr,
    ) -> Result<Option<StreamFrame<'_>>, StreamError> {
        while self.next >= self.frames.len() {
            let Some(frame) = self.packets.next_packet(&mut self.packet)? else {
                return Ok(None);
            };
            self.packet_index = frame.index;
            self.pts = frame.pts;
            self.next = 0;
            match superframe::split(&self.packet) {
                Ok(frames) => self.frames = frames,
                Err(error) => {
                    // Skip the whole packet.
                    self.frames = Frames::default();
                    return Err(StreamError::Frame {
                        packet: frame.index,
                        frame: 0,
                        error,
                    });
                }
            }
        }
        let index = self.next;
        self.next += 1;
        let (offset, size) = self.frames.ranges()[index];
        let data = &self.packet[offset..offset + size];
        *compressed_hdr = v4l2_ctrl_vp9_compressed_hdr::default();
        let parsed = parse_frame(&mut self.parser, data, compressed_hdr).map_err(|error| {
            StreamError::Frame {
                packet: self.packet_index,
                frame: index,
                error,
            }
        })?;
        Ok(Some(StreamFrame {
            packet: self.packet_index,
            pts: self.pts,
            index_in_packet: index,
            last_in_packet: self.next == self.frames.len(),
            data,
            parsed,
        }))
    }
}
