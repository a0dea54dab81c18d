// SPDX-License-Identifier: GPL-2.0
//! Decoded pictures out of CAPTURE buffers: conversion of NV12 / P010 (one memory plane, luma
//! rows of `bytesperline`, interleaved CbCr at `bytesperline * height`) to planar
//! `yuv420p` / `yuv420p10le` cropped to the visible size, and the per-frame MD5 outputs:
//! FFmpeg's `framemd5` muxer format and a plain list of MD5s.

use std::io::{self, Write};

use daedalus_proto::formats::BitDepth;
use md5::{Digest, Md5};

use crate::ffmpeg_timing::{FrameMd5Params, FrameMd5Timing};

/// Where the planes of a CAPTURE buffer are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaptureLayout {
    /// Sample format.
    pub depth: BitDepth,
    /// Bytes per row of both planes.
    pub bytesperline: usize,
    /// Offset of the interleaved chroma plane.
    pub chroma_offset: usize,
}

impl CaptureLayout {
    /// The layout of a CAPTURE format with `bytesperline` and `height` (from `G_FMT`).
    pub fn new(depth: BitDepth, bytesperline: u32, height: u32) -> Self {
        CaptureLayout {
            depth,
            bytesperline: bytesperline as usize,
            chroma_offset: bytesperline as usize * height as usize,
        }
    }

    /// The layout daedalus uses for a picture of `width` x `height` (the shared format table).
    pub fn for_size(depth: BitDepth, width: u32, height: u32) -> Self {
        let l = daedalus_proto::formats::CaptureLayout::new(depth, width, height);
        CaptureLayout {
            depth,
            bytesperline: l.bytesperline as usize,
            chroma_offset: l.chroma_offset() as usize,
        }
    }

    /// Bytes a buffer needs to hold a `width` x `height` picture in this layout.
    pub fn required_len(&self, width: u32, height: u32) -> usize {
        let bps = self.depth.bytes_per_sample() as usize;
        let (cw, ch) = chroma_size(width, height);
        if ch == 0 {
            return self.chroma_offset;
        }
        self.chroma_offset + (ch - 1) * self.bytesperline + 2 * cw * bps
    }
}

/// Chroma plane size of a 4:2:0 picture: `((w + 1) / 2, (h + 1) / 2)`.
pub fn chroma_size(width: u32, height: u32) -> (usize, usize) {
    (width.div_ceil(2) as usize, height.div_ceil(2) as usize)
}

/// Size in bytes of a planar 4:2:0 picture.
pub fn planar_size(depth: BitDepth, width: u32, height: u32) -> usize {
    let (cw, ch) = chroma_size(width, height);
    (width as usize * height as usize + 2 * cw * ch) * depth.bytes_per_sample() as usize
}

/// Why a picture cannot be converted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// The buffer is too small for the picture in the given layout.
    #[error("a {width}x{height} picture needs {needed} bytes, the buffer has {len}")]
    BufferTooSmall {
        /// Picture width.
        width: u32,
        /// Picture height.
        height: u32,
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        len: usize,
    },
    /// The rows overlap (`bytesperline` smaller than a row, or chroma inside the luma plane).
    #[error(
        "bad layout: rows of {row} bytes in a stride of {bytesperline}, chroma at {chroma_offset}"
    )]
    BadLayout {
        /// Bytes of one luma row.
        row: usize,
        /// The stride.
        bytesperline: usize,
        /// The chroma offset.
        chroma_offset: usize,
    },
}

/// Converts the `width` x `height` picture in `src` (NV12 or P010 in `layout`) to planar
/// Y, U, V (8-bit samples, or 16-bit little-endian samples holding 10 bits), replacing the
/// contents of `dst` and reusing its allocation.
pub fn to_planar(
    src: &[u8],
    layout: &CaptureLayout,
    width: u32,
    height: u32,
    dst: &mut Vec<u8>,
) -> Result<(), ConvertError> {
    let bps = layout.depth.bytes_per_sample() as usize;
    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = chroma_size(width, height);
    let bpl = layout.bytesperline;
    if w * bps > bpl || 2 * cw * bps > bpl || h * bpl > layout.chroma_offset {
        return Err(ConvertError::BadLayout {
            row: w * bps,
            bytesperline: bpl,
            chroma_offset: layout.chroma_offset,
        });
    }
    let needed = layout.required_len(width, height);
    if src.len() < needed {
        return Err(ConvertError::BufferTooSmall {
            width,
            height,
            needed,
            len: src.len(),
        });
    }

    dst.clear();
    dst.reserve(planar_size(layout.depth, width, height));
    let luma_rows = src.chunks(bpl).take(h);
    let chroma = &src[layout.chroma_offset..];
    match layout.depth {
        BitDepth::Eight => {
            for row in luma_rows {
                dst.extend_from_slice(&row[..w]);
            }
            for plane in 0..2 {
                for row in chroma.chunks(bpl).take(ch) {
                    dst.extend(row[..2 * cw].iter().skip(plane).step_by(2));
                }
            }
        }
        BitDepth::Ten => {
            // P010 keeps 10 bits in the high bits of each 16-bit sample.
            let put = |dst: &mut Vec<u8>, s: &[u8]| {
                let v = u16::from_le_bytes([s[0], s[1]]) >> 6;
                dst.extend_from_slice(&v.to_le_bytes());
            };
            for row in luma_rows {
                for s in row[..2 * w].chunks_exact(2) {
                    put(dst, s);
                }
            }
            for plane in 0..2 {
                for row in chroma.chunks(bpl).take(ch) {
                    for s in row[..4 * cw].chunks_exact(4) {
                        put(dst, &s[2 * plane..2 * plane + 2]);
                    }
                }
            }
        }
    }
    Ok(())
}

/// An MD5 as 32 lowercase hex digits, without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Md5Hex([u8; 32]);

impl Md5Hex {
    /// The digits.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Display for Md5Hex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The MD5 of `data` in lowercase hex.
pub fn md5_hex(data: &[u8]) -> Md5Hex {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = [0u8; 32];
    for (pair, b) in hex.chunks_exact_mut(2).zip(Md5::digest(data)) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0xf)];
    }
    Md5Hex(hex)
}

/// The `LIBAVFORMAT_IDENT` of the libavformat this runs with (e.g. `Lavf59.27.100` for FFmpeg
/// 5.1), printed by `-f framemd5` unless `-fflags +bitexact`.
pub fn lavf_ident() -> String {
    let v = ffmpeg_next::format::version();
    format!("Lavf{}.{}.{}", v >> 16, (v >> 8) & 0xff, v & 0xff)
}

/// Writes what `ffmpeg -i INPUT -fps_mode passthrough -autoscale 0 -pix_fmt yuv420p
/// -f framemd5 -` (FFmpeg 5.1) writes: a header, then one line per displayed frame with the
/// timestamps ffmpeg computes ([`FrameMd5Timing`]), the planar picture size and its MD5.
pub struct FrameMd5Writer<W: Write> {
    out: W,
    timing: FrameMd5Timing,
    sar: ffmpeg_next::Rational,
    header_written: bool,
}

impl<W: Write> FrameMd5Writer<W> {
    /// A writer for a stream of `params`.
    pub fn new(out: W, params: FrameMd5Params) -> Self {
        FrameMd5Writer {
            out,
            timing: FrameMd5Timing::new(params),
            sar: params.sample_aspect_ratio,
            header_written: false,
        }
    }

    /// Writes the line of one displayed frame (and, before the first, the header, whose
    /// dimensions are those of the first frame). `pts` is the container timestamp of the
    /// packet that displayed it, `planar` the converted picture.
    pub fn frame(&mut self, pts: i64, width: u32, height: u32, planar: &[u8]) -> io::Result<()> {
        if !self.header_written {
            let tb = self.timing.time_base();
            write!(
                self.out,
                "#format: frame checksums\n#version: 2\n#hash: MD5\n#software: {}\n\
                 #tb 0: {}/{}\n#media_type 0: video\n#codec_id 0: rawvideo\n\
                 #dimensions 0: {width}x{height}\n#sar 0: {}/{}\n\
                 #stream#, dts,        pts, duration,     size, hash\n",
                lavf_ident(),
                tb.numerator(),
                tb.denominator(),
                self.sar.numerator(),
                self.sar.denominator()
            )?;
            self.header_written = true;
        }
        let ts = self.timing.next(pts);
        // The frame rate guess makes the time base one frame long: the duration is 1.
        writeln!(
            self.out,
            "0, {ts:>10}, {ts:>10}, {:>8}, {:>8}, {}",
            1,
            planar.len(),
            md5_hex(planar)
        )
    }

    /// Flushes the output.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffmpeg_timing::FrameMd5Params;
    use ffmpeg_next::Rational;

    /// A 3x3 8-bit picture in a 64-byte-stride NV12 buffer of height 4.
    fn nv12_3x3() -> (Vec<u8>, CaptureLayout) {
        let layout = CaptureLayout::new(BitDepth::Eight, 64, 4);
        let mut buf = vec![0xeeu8; 64 * 6];
        for y in 0..3 {
            for x in 0..3 {
                buf[y * 64 + x] = (10 * y + x) as u8;
            }
        }
        for y in 0..2 {
            for x in 0..2 {
                buf[256 + y * 64 + 2 * x] = (100 + 10 * y + x) as u8;
                buf[256 + y * 64 + 2 * x + 1] = (200 + 10 * y + x) as u8;
            }
        }
        (buf, layout)
    }

    #[test]
    fn nv12_to_yuv420p_crops_and_deinterleaves() {
        let (buf, layout) = nv12_3x3();
        let mut out = Vec::new();
        to_planar(&buf, &layout, 3, 3, &mut out).unwrap();
        assert_eq!(
            out,
            [
                0, 1, 2, 10, 11, 12, 20, 21, 22, // Y
                100, 101, 110, 111, // U
                200, 201, 210, 211, // V
            ]
        );
        assert_eq!(out.len(), planar_size(BitDepth::Eight, 3, 3));
    }

    #[test]
    fn p010_to_yuv420p10le_shifts() {
        let layout = CaptureLayout::new(BitDepth::Ten, 64, 2);
        let mut buf = vec![0u8; 64 * 3];
        // Y (0,0) = 1023, (1,0) = 1; U = 512, V = 3.
        buf[0..2].copy_from_slice(&(1023u16 << 6).to_le_bytes());
        buf[2..4].copy_from_slice(&(1u16 << 6).to_le_bytes());
        buf[128..130].copy_from_slice(&(512u16 << 6).to_le_bytes());
        buf[130..132].copy_from_slice(&(3u16 << 6).to_le_bytes());
        let mut out = Vec::new();
        to_planar(&buf, &layout, 2, 1, &mut out).unwrap();
        assert_eq!(out, [0xff, 0x03, 0x01, 0x00, 0x00, 0x02, 0x03, 0x00]);
    }

    #[test]
    fn refuses_small_buffers_and_bad_layouts() {
        let (buf, layout) = nv12_3x3();
        let mut out = Vec::new();
        assert!(matches!(
            to_planar(&buf[..300], &layout, 3, 3, &mut out),
            Err(ConvertError::BufferTooSmall { .. })
        ));
        assert!(matches!(
            to_planar(&buf, &layout, 65, 3, &mut out),
            Err(ConvertError::BadLayout { .. })
        ));
        assert!(matches!(
            to_planar(&buf, &layout, 3, 5, &mut out),
            Err(ConvertError::BadLayout { .. })
        ));
    }

    #[test]
    fn md5() {
        assert_eq!(md5_hex(b"").as_str(), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            md5_hex(b"abc").to_string(),
            "900150983cd24fb0d6963f7d28e17f72"
        );
    }

    #[test]
    fn framemd5_format() {
        let params = FrameMd5Params::new(Rational::new(1, 30), Rational::new(30, 1), Some(0));
        let mut out = Vec::new();
        let mut w = FrameMd5Writer::new(&mut out, params);
        w.frame(0, 2, 2, &[0; 6]).unwrap();
        w.frame(1, 2, 2, &[1; 6]).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "#format: frame checksums");
        assert_eq!(lines[4], "#tb 0: 1/30");
        assert_eq!(lines[7], "#dimensions 0: 2x2");
        assert_eq!(
            lines[9],
            "#stream#, dts,        pts, duration,     size, hash"
        );
        assert_eq!(
            lines[10],
            format!(
                "0,          0,          0,        1,        6, {}",
                md5_hex(&[0; 6])
            )
        );
        assert!(lines[11].starts_with("0,          1,          1,        1,        6, "));
    }
}
