// SPDX-License-Identifier: GPL-2.0
//! Superframes (VP9 specification, Annex B): several frames in one container packet, with an
//! index of their sizes at the end. V4L2 takes one frame per OUTPUT buffer
//! (`V4L2_PIX_FMT_VP9_FRAME`), so the client splits them.

use super::ParseError;

/// Most frames a superframe index can describe.
pub const MAX_FRAMES: usize = 8;

/// The frames of one packet, as byte ranges into it, without allocating.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Frames {
    ranges: [(usize, usize); MAX_FRAMES],
    count: usize,
}

impl Frames {
    /// Number of frames.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there is no frame (an empty packet).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The frames as `(offset, size)` ranges of the packet.
    pub fn ranges(&self) -> &[(usize, usize)] {
        &self.ranges[..self.count]
    }

    fn push(&mut self, offset: usize, size: usize) {
        // Callers push at most MAX_FRAMES ranges.
        self.ranges[self.count] = (offset, size);
        self.count += 1;
    }
}

/// Splits a packet into its frames: the frames of the superframe index if the packet ends with
/// a valid one, else the whole packet. Frames of size 0 are skipped (libvpx does the same).
pub fn split(packet: &[u8]) -> Result<Frames, ParseError> {
    let mut frames = Frames::default();
    let Some(&marker) = packet.last() else {
        return Ok(frames);
    };
    if marker & 0xe0 != 0xc0 {
        frames.push(0, packet.len());
        return Ok(frames);
    }
    let count = usize::from(marker & 0x7) + 1;
    let mag = usize::from((marker >> 3) & 0x3) + 1;
    let index_size = 2 + mag * count;
    // Both ends of the index must hold the marker byte; otherwise this is a frame that happens
    // to end with a byte that looks like a marker.
    if packet.len() < index_size || packet[packet.len() - index_size] != marker {
        frames.push(0, packet.len());
        return Ok(frames);
    }
    let data_end = packet.len() - index_size;
    let index = &packet[data_end + 1..packet.len() - 1];
    let mut offset = 0usize;
    for entry in index.chunks_exact(mag) {
        let size = entry
            .iter()
            .rev()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let end = offset
            .checked_add(size)
            .filter(|&end| end <= data_end)
            .ok_or(ParseError::Invalid(
                "superframe index describes more data than the packet holds",
            ))?;
        if size > 0 {
            frames.push(offset, size);
        }
        offset = end;
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_frame() {
        let f = split(&[0x82, 0x49, 0x83, 0x42, 0x00]).unwrap();
        assert_eq!(f.ranges(), &[(0, 5)]);
        assert!(split(&[]).unwrap().is_empty());
    }

    #[test]
    fn two_frames() {
        // Frames of 3 and 2 bytes, 1-byte sizes: marker 0b110_00_001.
        let marker = 0xc1;
        let packet = [1, 2, 3, 4, 5, marker, 3, 2, marker];
        let f = split(&packet).unwrap();
        assert_eq!(f.ranges(), &[(0, 3), (3, 2)]);
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn two_byte_sizes_and_empty_frames() {
        // mag 2 (0b01), 3 frames (0b010): marker 0b110_01_010.
        let marker = 0xca;
        let mut packet = vec![7u8; 300];
        packet.extend_from_slice(&[marker, 0x2c, 0x01, 0, 0, 0, 0, marker]);
        let f = split(&packet).unwrap();
        assert_eq!(f.ranges(), &[(0, 300)]);
    }

    #[test]
    fn marker_lookalike_is_a_frame() {
        let f = split(&[9, 9, 9, 0xc1]).unwrap();
        assert_eq!(f.ranges(), &[(0, 4)]);
        let f = split(&[0xc1]).unwrap();
        assert_eq!(f.ranges(), &[(0, 1)]);
    }

    #[test]
    fn oversized_index_is_an_error() {
        let marker = 0xc1;
        assert!(split(&[1, 2, marker, 3, 2, marker]).is_err());
        // Sizes summing past usize do not panic either.
        let marker = 0xdf; // mag 4, 8 frames
        let mut packet = vec![marker];
        packet.extend(std::iter::repeat(0xff).take(32));
        packet.push(marker);
        assert!(split(&packet).is_err());
    }
}
