// SPDX-License-Identifier: GPL-2.0
//! A VP9 elementary stream out of a container (IVF, WebM, MP4...), frame by frame: packets are
//! split into frames (superframes) and each frame's headers are parsed.

use super::superframe::{self, Frames};
use super::{parse_frame, HeaderParser, ParseError, ParsedFrame};
use crate::demux::{DemuxError, Demuxer, Track};
use crate::sys::v4l2_ctrl_vp9_compressed_hdr;

/// Errors of [`Vp9Stream`].
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The container is broken: the stream cannot go on.
    #[error(transparent)]
    Container(#[from] DemuxError),
    /// One frame cannot be parsed; the stream goes on with the next one.
    #[error("packet {packet}, frame {frame}: {error}")]
    Frame {
        /// Container packet number.
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
    /// Number of the container packet that carried it.
    pub packet: u64,
    /// Timestamp of that packet (in the track's time base).
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

/// Reads VP9 frames from a container.
pub struct Vp9Stream {
    packets: Demuxer,
    parser: HeaderParser,
    packet: Vec<u8>,
    frames: Frames,
    next: usize,
    packet_index: u64,
    pts: i64,
}

impl Vp9Stream {
    /// Reads the VP9 frames of the video track of `packets`.
    pub fn new(packets: Demuxer) -> Self {
        Vp9Stream {
            packets,
            parser: HeaderParser::new(),
            packet: Vec::new(),
            frames: Frames::default(),
            next: 0,
            packet_index: 0,
            pts: 0,
        }
    }

    /// What the container says about the stream.
    pub fn track(&self) -> &Track {
        self.packets.track()
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
