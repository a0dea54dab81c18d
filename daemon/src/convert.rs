// SPDX-License-Identifier: GPL-2.0
//! Planar 4:2:0 (FFmpeg's `yuv420p` / `yuv420p10le`) to the CAPTURE formats, NV12 and P010,
//! in one pass straight into the CAPTURE mapping.
//!
//! The destination is one memory plane: `height` luma rows of `bytesperline` bytes, then the
//! interleaved CbCr rows from `chroma_offset`. P010 holds each 10-bit sample in the high bits of
//! a little-endian u16 (`sample << 6`). Odd sizes have `ceil(w / 2)` x `ceil(h / 2)` chroma
//! samples. Rows are written front to back, which suits write-combined (uncached) mappings.

use daedalus_proto::formats::BitDepth;
use daedalus_proto::wire::PictureFormat;
use ffmpeg_next::{ffi, frame};

use crate::band_pool::BandPool;
use crate::error::JobError;
use crate::mapping::Mapping;

/// One plane of the source picture.
#[derive(Clone, Copy, Debug)]
pub struct Plane<'a> {
    /// The plane's bytes, from its first sample to at least the end of its last visible row.
    pub data: &'a [u8],
    /// Bytes from one row to the next.
    pub stride: usize,
}

/// A planar 4:2:0 picture (8-bit samples as bytes, 10-bit as little-endian u16).
#[derive(Clone, Copy, Debug)]
pub struct Planar<'a> {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Sample size.
    pub depth: BitDepth,
    /// Luma.
    pub y: Plane<'a>,
    /// Cb.
    pub u: Plane<'a>,
    /// Cr.
    pub v: Plane<'a>,
}

impl Planar<'_> {
    /// Bytes the picture takes as NV12 / P010, without row padding: what converting it writes.
    pub fn semiplanar_bytes(&self) -> usize {
        let samples =
            self.width * self.height + 2 * self.width.div_ceil(2) * self.height.div_ceil(2);
        self.depth.bytes_per_sample() as usize * samples
    }
}

/// Layout of the destination (see [`daedalus_proto::wire::PictureFormat`]).
#[derive(Clone, Copy, Debug)]
pub struct SemiPlanar {
    /// Bytes per row of both planes.
    pub bytesperline: usize,
    /// Offset of the chroma plane.
    pub chroma_offset: usize,
}

/// Why a picture cannot be converted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// Zero width or height.
    #[error("empty picture")]
    Empty,
    /// A source plane is shorter than its rows need (plane 0 = Y, 1 = Cb, 2 = Cr).
    #[error("source plane {0} too small for the picture")]
    Source(usize),
    /// The destination layout cannot hold the picture.
    #[error("destination too small for the picture")]
    Destination,
}

fn check_plane(
    p: &Plane<'_>,
    row_bytes: usize,
    rows: usize,
    index: usize,
) -> Result<(), ConvertError> {
    let need = p
        .stride
        .checked_mul(rows - 1)
        .and_then(|v| v.checked_add(row_bytes));
    match need {
        Some(need) if p.stride >= row_bytes && p.data.len() >= need => Ok(()),
        _ => Err(ConvertError::Source(index)),
    }
}

/// Writes `src` into `dst` as NV12 (8-bit) or P010 (10-bit), according to `src.depth`.
pub fn write_semiplanar(
    src: &Planar<'_>,
    dst: &mut [u8],
    layout: SemiPlanar,
) -> Result<(), ConvertError> {
    split_semiplanar(src, dst, layout, 1)?.convert_all();
    Ok(())
}

/// Most bands a conversion is split into.
pub const MAX_BANDS: usize = 16;

/// One horizontal band of a conversion: whole luma rows and the chroma rows under them. Each
/// band writes its own part of the destination, so bands may be converted on different threads.
pub struct Band<'a> {
    depth: BitDepth,
    /// Luma / chroma samples per row.
    width: usize,
    chroma_width: usize,
    luma_rows: usize,
    chroma_rows: usize,
    /// The source planes from the band's first row.
    y: Plane<'a>,
    u: Plane<'a>,
    v: Plane<'a>,
    /// The band's rows of the destination planes, `bytesperline` apart.
    luma: &'a mut [u8],
    chroma: &'a mut [u8],
    bytesperline: usize,
}

impl Band<'_> {
    /// Converts the band. Never panics: [`split_semiplanar`] checked every row it touches.
    pub fn convert(&mut self) {
        let (w, cw, bpl) = (self.width, self.chroma_width, self.bytesperline);
        let y_rows = self.y.data.chunks(self.y.stride);
        let luma = self.luma.chunks_mut(bpl).zip(y_rows).take(self.luma_rows);
        let c_rows = self
            .u
            .data
            .chunks(self.u.stride)
            .zip(self.v.data.chunks(self.v.stride));
        let chroma = self
            .chroma
            .chunks_mut(bpl)
            .zip(c_rows)
            .take(self.chroma_rows);
        let bps = self.depth.bytes_per_sample() as usize;
        for (d, s) in luma {
            if let (Some(d), Some(s)) = (d.get_mut(..w * bps), s.get(..w * bps)) {
                match self.depth {
                    BitDepth::Eight => d.copy_from_slice(s),
                    BitDepth::Ten => shift10(d, s),
                }
            }
        }
        for (d, (u, v)) in chroma {
            let (d, u, v) = (
                d.get_mut(..2 * cw * bps),
                u.get(..cw * bps),
                v.get(..cw * bps),
            );
            if let (Some(d), Some(u), Some(v)) = (d, u, v) {
                match self.depth {
                    BitDepth::Eight => interleave8(d, u, v),
                    BitDepth::Ten => interleave10(d, u, v),
                }
            }
        }
    }
}

/// The bands of one conversion ([`split_semiplanar`]).
pub struct Bands<'a> {
    bands: [Option<Band<'a>>; MAX_BANDS],
    len: usize,
}

impl<'a> Bands<'a> {
    /// The bands, each `Some`: one element per unit of parallel work.
    pub fn as_mut_slice(&mut self) -> &mut [Option<Band<'a>>] {
        &mut self.bands[..self.len]
    }

    /// Converts every band on the calling thread.
    pub fn convert_all(&mut self) {
        for b in self.as_mut_slice().iter_mut().flatten() {
            b.convert();
        }
    }
}

/// Checks that `src` fits `dst` as `layout` says and splits the conversion into at most
/// `max_bands` (and [`MAX_BANDS`]) bands of about the same height, at least two luma rows each.
pub fn split_semiplanar<'a>(
    src: &Planar<'a>,
    dst: &'a mut [u8],
    layout: SemiPlanar,
    max_bands: usize,
) -> Result<Bands<'a>, ConvertError> {
    let (w, h) = (src.width, src.height);
    if w == 0 || h == 0 {
        return Err(ConvertError::Empty);
    }
    let bps = src.depth.bytes_per_sample() as usize;
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let (luma_row, chroma_src_row, chroma_row) = (w * bps, cw * bps, 2 * cw * bps);
    check_plane(&src.y, luma_row, h, 0)?;
    check_plane(&src.u, chroma_src_row, ch, 1)?;
    check_plane(&src.v, chroma_src_row, ch, 2)?;

    let bpl = layout.bytesperline;
    let luma_end = bpl.checked_mul(h - 1).and_then(|v| v.checked_add(luma_row));
    let chroma_end = bpl
        .checked_mul(ch - 1)
        .and_then(|v| v.checked_add(chroma_row))
        .and_then(|v| v.checked_add(layout.chroma_offset));
    let fits = chroma_row <= bpl
        && luma_end.is_some_and(|e| e <= layout.chroma_offset)
        && chroma_end.is_some_and(|e| e <= dst.len());
    if !fits {
        return Err(ConvertError::Destination);
    }
    let (mut luma, mut chroma) = dst.split_at_mut(layout.chroma_offset);

    let n = max_bands.clamp(1, MAX_BANDS).min(ch);
    let mut bands = Bands {
        bands: std::array::from_fn(|_| None),
        len: n,
    };
    for (k, slot) in bands.bands[..n].iter_mut().enumerate() {
        // Chroma rows c0..c1 and the luma rows over them; the checks above cover every row.
        let (c0, c1) = (k * ch / n, (k + 1) * ch / n);
        let (y0, y1) = (2 * c0, (2 * c1).min(h));
        let (luma_len, chroma_len) = (
            ((y1 - y0) * bpl).min(luma.len()),
            ((c1 - c0) * bpl).min(chroma.len()),
        );
        let (band_luma, rest) = std::mem::take(&mut luma).split_at_mut(luma_len);
        luma = rest;
        let (band_chroma, rest) = std::mem::take(&mut chroma).split_at_mut(chroma_len);
        chroma = rest;
        let from = |p: &Plane<'a>, row: usize| Plane {
            data: p.data.get(row * p.stride..).unwrap_or_default(),
            stride: p.stride,
        };
        *slot = Some(Band {
            depth: src.depth,
            width: w,
            chroma_width: cw,
            luma_rows: y1 - y0,
            chroma_rows: c1 - c0,
            y: from(&src.y, y0),
            u: from(&src.u, c0),
            v: from(&src.v, c0),
            luma: band_luma,
            chroma: band_chroma,
            bytesperline: bpl,
        });
    }
    Ok(bands)
}

#[inline]
fn interleave8(d: &mut [u8], u: &[u8], v: &[u8]) {
    for ((d, u), v) in d.chunks_exact_mut(2).zip(u).zip(v) {
        d[0] = *u;
        d[1] = *v;
    }
}

#[inline]
fn p010(s: &[u8]) -> [u8; 2] {
    (u16::from_le_bytes([s[0], s[1]]) << 6).to_le_bytes()
}

#[inline]
fn shift10(d: &mut [u8], s: &[u8]) {
    for (d, s) in d.chunks_exact_mut(2).zip(s.chunks_exact(2)) {
        d.copy_from_slice(&p010(s));
    }
}

#[inline]
fn interleave10(d: &mut [u8], u: &[u8], v: &[u8]) {
    for ((d, u), v) in d
        .chunks_exact_mut(4)
        .zip(u.chunks_exact(2))
        .zip(v.chunks_exact(2))
    {
        d[..2].copy_from_slice(&p010(u));
        d[2..].copy_from_slice(&p010(v));
    }
}

/// Writes a decoded frame into the CAPTURE mapping in the job's NV12 / P010 layout, in
/// parallel bands on `bands` (or on the calling thread alone with `None`). A frame larger than
/// the CAPTURE format is clipped to it when `clip` is set (AV1 superres, whose upscaled width
/// may exceed a stale format; H.264's coded size beyond its cropping), an error otherwise.
pub fn write_picture(
    frame: &frame::Video,
    cap: &mut Mapping,
    pic: &PictureFormat,
    clip: bool,
    bands: Option<&BandPool>,
) -> Result<(), JobError> {
    // SAFETY: `frame` wraps a valid AVFrame for as long as it is borrowed.
    write_planar(
        &frame_planes(unsafe { &*frame.as_ptr() })?,
        cap,
        pic,
        clip,
        bands,
    )
}

/// Writes `src` into the CAPTURE mapping as the job's NV12 / P010 layout, in parallel bands on
/// `bands` (or on the calling thread alone with `None`). A picture larger than the CAPTURE
/// format is clipped to it when `clip` is set (AV1 superres, H.264 coded size with cropping),
/// an error otherwise.
pub(crate) fn write_planar(
    src: &Planar<'_>,
    cap: &mut Mapping,
    pic: &PictureFormat,
    clip: bool,
    bands: Option<&BandPool>,
) -> Result<(), JobError> {
    let want = BitDepth::of_capture_fourcc(pic.fourcc).ok_or(JobError::Internal(
        "CAPTURE format is neither NV12 nor P010",
    ))?;
    if src.depth != want {
        let bits = |d: BitDepth| if d == BitDepth::Eight { 8 } else { 10 };
        return Err(JobError::DepthMismatch {
            frame: bits(src.depth),
            capture: bits(want),
        });
    }
    let (width, height) = (src.width, src.height);
    if !clip && (width > pic.width as usize || height > pic.height as usize) {
        return Err(JobError::TooLarge {
            width: width as u32,
            height: height as u32,
            max_width: pic.width,
            max_height: pic.height,
        });
    }
    let clipped = Planar {
        width: width.min(pic.width as usize),
        height: height.min(pic.height as usize),
        ..*src
    };
    let layout = SemiPlanar {
        bytesperline: pic.bytesperline as usize,
        chroma_offset: pic.chroma_offset as usize,
    };
    cap.write_with(|dst| {
        let n = bands.map_or(1, |b| b.bands_for(clipped.semiplanar_bytes()));
        let mut split = split_semiplanar(&clipped, dst, layout, n)?;
        match bands {
            Some(b) => b.run(split.as_mut_slice()),
            None => split.convert_all(),
        }
        Ok::<(), ConvertError>(())
    })?;
    Ok(())
}

/// The planes of a decoded 4:2:0 8- or 10-bit AVFrame; other formats are unsupported.
pub(crate) fn frame_planes(f: &ffi::AVFrame) -> Result<Planar<'_>, JobError> {
    use ffi::AVPixelFormat as F;
    let depth = match f.format {
        x if x == F::AV_PIX_FMT_YUV420P as i32 || x == F::AV_PIX_FMT_YUVJ420P as i32 => {
            BitDepth::Eight
        }
        x if x == F::AV_PIX_FMT_YUV420P10LE as i32 => BitDepth::Ten,
        _ => {
            return Err(JobError::Unsupported(
                "decoded pixel format (not 4:2:0 8/10-bit)",
            ))
        }
    };
    if f.width <= 0 || f.height <= 0 {
        return Err(JobError::Internal("decoded frame has no size"));
    }
    let (w, h) = (f.width as usize, f.height as usize);
    let bps = depth.bytes_per_sample() as usize;
    let plane = |i: usize, pw: usize, ph: usize| -> Result<Plane<'_>, JobError> {
        let stride = usize::try_from(f.linesize[i])
            .ok()
            .filter(|&s| s >= pw * bps)
            .ok_or(JobError::Internal("unexpected frame stride"))?;
        if f.data[i].is_null() {
            return Err(JobError::Internal("decoded frame lacks a plane"));
        }
        let len = stride * (ph - 1) + pw * bps;
        // SAFETY: a decoded frame's plane `i` holds `ph` rows of `linesize[i]` bytes (FFmpeg
        // allocates its frame buffers at least that large, and H.264's get_buffer2 buffers are
        // sized by FFmpeg's own av_image_fill_arrays for the frame), so its first `len` bytes
        // are readable; the caller's borrow of `f` keeps the frame's reference to that memory.
        let data = unsafe { std::slice::from_raw_parts(f.data[i], len) };
        Ok(Plane { data, stride })
    };
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    Ok(Planar {
        width: w,
        height: h,
        depth,
        y: plane(0, w, h)?,
        u: plane(1, cw, ch)?,
        v: plane(2, cw, ch)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic planar picture with padded strides.
    struct Src {
        w: usize,
        h: usize,
        depth: BitDepth,
        planes: [Vec<u8>; 3],
        strides: [usize; 3],
    }

    impl Src {
        fn new(w: usize, h: usize, depth: BitDepth, pad: usize) -> Src {
            let bps = depth.bytes_per_sample() as usize;
            let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
            let strides = [w * bps + pad, cw * bps + pad + 3 * bps, cw * bps + pad];
            let mut seed = 0x1234_5678u32;
            let mut gen = |len: usize| -> Vec<u8> {
                (0..len)
                    .map(|_| {
                        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                        (seed >> 16) as u8
                    })
                    .collect()
            };
            let mut planes = [
                gen(strides[0] * h),
                gen(strides[1] * ch),
                gen(strides[2] * ch),
            ];
            if depth == BitDepth::Ten {
                // Keep samples within 10 bits, as FFmpeg's yuv420p10le does.
                for p in &mut planes {
                    for s in p.chunks_exact_mut(2) {
                        s[1] &= 3;
                    }
                }
            }
            Src {
                w,
                h,
                depth,
                planes,
                strides,
            }
        }

        fn view(&self) -> Planar<'_> {
            let p = |i: usize| Plane {
                data: &self.planes[i],
                stride: self.strides[i],
            };
            Planar {
                width: self.w,
                height: self.h,
                depth: self.depth,
                y: p(0),
                u: p(1),
                v: p(2),
            }
        }

        fn sample(&self, plane: usize, x: usize, y: usize) -> u16 {
            let s = &self.planes[plane][y * self.strides[plane]..];
            match self.depth {
                BitDepth::Eight => u16::from(s[x]),
                BitDepth::Ten => u16::from_le_bytes([s[2 * x], s[2 * x + 1]]),
            }
        }
    }

    fn dst_sample(d: &[u8], depth: BitDepth, off: usize) -> u16 {
        match depth {
            BitDepth::Eight => u16::from(d[off]),
            BitDepth::Ten => u16::from_le_bytes([d[off], d[off + 1]]) >> 6,
        }
    }

    /// Checks every sample against the source by index arithmetic, and that nothing outside
    /// the picture was written.
    fn check(src: &Src, bpl: usize, chroma_offset: usize, total: usize) {
        let mut dst = vec![0xeeu8; total];
        let layout = SemiPlanar {
            bytesperline: bpl,
            chroma_offset,
        };
        write_semiplanar(&src.view(), &mut dst, layout).unwrap();
        // Split into bands (converted in reverse order, as threads may): the same bytes.
        for n in [2, 3, 5, MAX_BANDS + 1] {
            let mut banded = vec![0xeeu8; total];
            let mut bands = split_semiplanar(&src.view(), &mut banded, layout, n).unwrap();
            let used = bands.as_mut_slice();
            assert_eq!(used.len(), n.min(MAX_BANDS).min(src.h.div_ceil(2)));
            for b in used.iter_mut().rev() {
                b.as_mut().unwrap().convert();
            }
            assert!(banded == dst, "{n} bands differ from one");
        }
        let bps = src.depth.bytes_per_sample() as usize;
        let mut written = vec![false; total];
        for y in 0..src.h {
            for x in 0..src.w {
                let off = y * bpl + x * bps;
                assert_eq!(
                    dst_sample(&dst, src.depth, off),
                    src.sample(0, x, y),
                    "Y {x},{y}"
                );
                written[off..off + bps].fill(true);
            }
        }
        for y in 0..src.h.div_ceil(2) {
            for x in 0..src.w.div_ceil(2) {
                let off = chroma_offset + y * bpl + 2 * x * bps;
                assert_eq!(
                    dst_sample(&dst, src.depth, off),
                    src.sample(1, x, y),
                    "U {x},{y}"
                );
                assert_eq!(dst_sample(&dst, src.depth, off + bps), src.sample(2, x, y));
                written[off..off + 2 * bps].fill(true);
            }
        }
        assert_eq!(
            written.iter().filter(|w| **w).count(),
            src.view().semiplanar_bytes()
        );
        for (i, w) in written.iter().enumerate() {
            if !w {
                assert_eq!(dst[i], 0xee, "byte {i} outside the picture was written");
            }
        }
        if src.depth == BitDepth::Ten {
            // The low 6 bits of every written P010 sample are zero.
            for (i, pair) in dst.chunks_exact(2).enumerate() {
                if written[2 * i] {
                    assert_eq!(pair[0] & 0x3f, 0);
                }
            }
        }
    }

    #[test]
    fn sizes_and_strides() {
        // Per depth: bytes per sample, then a larger layout than the picture needs (stride
        // added, rows before the chroma plane added, bytes after it), then (width, height,
        // FFmpeg's stride padding) cases. 16-bit strides stay even, as FFmpeg's are.
        type Sizes = (usize, usize, usize);
        #[rustfmt::skip]
        let depths: [(BitDepth, usize, Sizes, &[Sizes]); 2] = [
            (BitDepth::Eight, 1, (64, 3, 7), &[(2, 2, 0), (1, 1, 0), (97, 61, 5), (202, 210, 64), (201, 209, 1), (64, 3, 0)]),
            (BitDepth::Ten, 2, (128, 1, 0), &[(2, 2, 0), (1, 1, 2), (97, 61, 6), (202, 210, 64), (201, 209, 2)]),
        ];
        for (depth, bytes, (more_bpl, more_rows, tail), cases) in depths {
            for &(w, h, pad) in cases {
                let src = Src::new(w, h, depth, pad);
                let bpl = (w.div_ceil(2) * 2 * bytes).next_multiple_of(64);
                let ch = h.div_ceil(2);
                check(&src, bpl, bpl * h, bpl * (h + ch));
                let bpl = bpl + more_bpl;
                let chroma = bpl * (h + more_rows);
                check(&src, bpl, chroma, chroma + bpl * ch + tail);
            }
        }
    }

    #[test]
    fn p010_known_values() {
        // One 2x2 picture: Y = 0, 1, 1023, 512; U = 0x155; V = 0x2aa.
        let y = [0u8, 0, 1, 0, 0xff, 3, 0, 2];
        let (u, v) = ([0x55u8, 1], [0xaau8, 2]);
        let src = Planar {
            width: 2,
            height: 2,
            depth: BitDepth::Ten,
            y: Plane {
                data: &y,
                stride: 4,
            },
            u: Plane {
                data: &u,
                stride: 2,
            },
            v: Plane {
                data: &v,
                stride: 2,
            },
        };
        let mut d = [0u8; 12];
        let layout = SemiPlanar {
            bytesperline: 4,
            chroma_offset: 8,
        };
        write_semiplanar(&src, &mut d, layout).unwrap();
        let w = |i: usize| u16::from_le_bytes([d[2 * i], d[2 * i + 1]]);
        assert_eq!([w(0), w(1), w(2), w(3)], [0, 1 << 6, 1023 << 6, 512 << 6]);
        assert_eq!([w(4), w(5)], [0x155 << 6, 0x2aa << 6]);
    }

    #[test]
    fn rejects_what_does_not_fit() {
        let src = Src::new(97, 61, BitDepth::Eight, 0);
        let v = src.view();
        let ok = SemiPlanar {
            bytesperline: 128,
            chroma_offset: 128 * 61,
        };
        let total = 128 * (61 + 31);
        let mut dst = vec![0u8; total];
        assert_eq!(write_semiplanar(&v, &mut dst, ok), Ok(()));
        assert_eq!(write_semiplanar(&v, &mut dst[..128 * 91 + 98], ok), Ok(()));
        // Rows narrower than the picture (chroma rows need 98 bytes).
        let narrow = SemiPlanar {
            bytesperline: 97,
            ..ok
        };
        assert_eq!(
            write_semiplanar(&v, &mut dst, narrow),
            Err(ConvertError::Destination)
        );
        // Luma running into the chroma plane; chroma running past the buffer.
        let overlap = SemiPlanar {
            chroma_offset: 128 * 60,
            ..ok
        };
        assert_eq!(
            write_semiplanar(&v, &mut dst, overlap),
            Err(ConvertError::Destination)
        );
        assert_eq!(
            write_semiplanar(&v, &mut dst[..128 * 91 + 97], ok),
            Err(ConvertError::Destination)
        );
        // Short or mis-strided source planes, empty pictures.
        let short = Planar {
            u: Plane {
                data: &src.planes[1][..src.planes[1].len() - src.strides[1]],
                stride: src.strides[1],
            },
            ..v
        };
        assert_eq!(
            write_semiplanar(&short, &mut dst, ok),
            Err(ConvertError::Source(1))
        );
        let thin = Planar {
            y: Plane {
                data: &src.planes[0],
                stride: 96,
            },
            ..v
        };
        assert_eq!(
            write_semiplanar(&thin, &mut dst, ok),
            Err(ConvertError::Source(0))
        );
        let empty = Planar { width: 0, ..v };
        assert_eq!(
            write_semiplanar(&empty, &mut dst, ok),
            Err(ConvertError::Empty)
        );
        // Absurd layouts do not overflow.
        let huge = SemiPlanar {
            bytesperline: usize::MAX / 2,
            chroma_offset: usize::MAX,
        };
        assert_eq!(
            write_semiplanar(&v, &mut dst, huge),
            Err(ConvertError::Destination)
        );
    }
}
