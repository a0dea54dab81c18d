// SPDX-License-Identifier: GPL-2.0
//! Images: the formats of `vaQueryImageFormats` (the two the decoder outputs, NV12 and P010)
//! and the layout of an image of one of them.

use daedalus_proto::formats::{BitDepth, CaptureLayout};

use crate::config::{depth_of_fourcc, fourcc};
use crate::status::{Error, Result};
use crate::va;

/// An image.
pub struct Image {
    /// What `vaCreateImage` / `vaDeriveImage` returned (its buffer holds the bytes).
    pub image: va::VAImage,
    /// The surface a derived image shows (its buffer maps the surface's memory).
    pub derived_from: Option<u32>,
}

/// The image formats: NV12 then P010.
pub fn formats() -> [va::VAImageFormat; 2] {
    [format(BitDepth::Eight), format(BitDepth::Ten)]
}

/// The image format of a bit depth.
pub fn format(depth: BitDepth) -> va::VAImageFormat {
    va::VAImageFormat {
        fourcc: fourcc(depth),
        byte_order: va::VA_LSB_FIRST,
        bits_per_pixel: match depth {
            BitDepth::Eight => 12,
            BitDepth::Ten => 24,
        },
        ..Default::default()
    }
}

/// Where the planes of a picture are in memory: the luma rows, then the interleaved chroma
/// rows, with the same pitch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Bits per sample (NV12 or P010).
    pub depth: BitDepth,
    /// Bytes per row of both planes.
    pub pitch: u32,
    /// Offset of the chroma plane.
    pub chroma_offset: u32,
    /// Bytes of the whole picture.
    pub size: u32,
}

impl Layout {
    /// The layout of a `width` x `height` picture in memory the driver allocates: daedalus'
    /// CAPTURE layout (`CaptureLayout`: even sizes, rows padded to 64 bytes; callers enlarge
    /// pictures below the decoder's smallest buffer, 16x16 for daedalus). A surface's
    /// image derived before its first decode must have the layout its decoded pictures will
    /// have: GStreamer derives an image of a fresh test surface once and maps every surface of
    /// that size with its offsets and pitches.
    pub fn packed(depth: BitDepth, width: u32, height: u32) -> Result<Layout> {
        // CaptureLayout's arithmetic holds for the sizes decoders have (a few thousand).
        const MAX: u32 = 1 << 15;
        if width > MAX || height > MAX {
            return Err(Error::RESOLUTION_NOT_SUPPORTED);
        }
        let c = CaptureLayout::new(depth, width, height);
        Ok(Layout {
            depth,
            pitch: c.bytesperline,
            chroma_offset: c.chroma_offset(),
            size: c.sizeimage,
        })
    }

    /// The `VAImage` of a `width` x `height` picture in this layout, held by buffer `buf`.
    pub fn image(&self, id: u32, buf: u32, width: u32, height: u32) -> va::VAImage {
        va::VAImage {
            image_id: id,
            format: format(self.depth),
            buf,
            // Sizes of a VA image are 16-bit; callers check them against the config's limits.
            width: width.min(u32::from(u16::MAX)) as u16,
            height: height.min(u32::from(u16::MAX)) as u16,
            data_size: self.size,
            num_planes: 2,
            pitches: [self.pitch, self.pitch, 0],
            offsets: [0, self.chroma_offset, 0],
            ..Default::default()
        }
    }
}

/// A rectangle of a picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// The byte ranges of `rect` in a picture of `layout`: (offset, length) of each row, luma rows
/// then chroma rows (chroma at half resolution, rounded outwards). `None` if a row is outside
/// `len` bytes.
fn rows(layout: &Layout, rect: Rect, len: usize) -> Option<Vec<(usize, usize)>> {
    let bps = layout.depth.bytes_per_sample() as usize;
    let (x, y, w, h) = (
        rect.x as usize,
        rect.y as usize,
        rect.width as usize,
        rect.height as usize,
    );
    let pitch = layout.pitch as usize;
    let mut out = Vec::with_capacity(h + h.div_ceil(2) + 1);
    for row in y..y + h {
        out.push((row * pitch + x * bps, w * bps));
    }
    let (cx, cx_end) = (x / 2, (x + w).div_ceil(2));
    for row in y / 2..(y + h).div_ceil(2) {
        out.push((
            layout.chroma_offset as usize + row * pitch + cx * 2 * bps,
            (cx_end - cx) * 2 * bps,
        ));
    }
    out.iter()
        .all(|&(o, l)| o.checked_add(l).is_some_and(|e| e <= len) && l <= pitch)
        .then_some(out)
}

/// Copies `rect` of the picture in `src` (`src_layout`) to the origin of the image in `dst`
/// (`dst_layout`, same depth).
pub fn copy(
    src: &[u8],
    src_layout: &Layout,
    dst: &mut [u8],
    dst_layout: &Layout,
    rect: Rect,
) -> Result<()> {
    let at_origin = Rect { x: 0, y: 0, ..rect };
    let (Some(from), Some(to)) = (
        rows(src_layout, rect, src.len()),
        rows(dst_layout, at_origin, dst.len()),
    ) else {
        return Err(Error::INVALID_PARAMETER);
    };
    for ((s, len), (d, _)) in from.into_iter().zip(to) {
        dst[d..d + len].copy_from_slice(&src[s..s + len]);
    }
    Ok(())
}

/// Zeroes the `rect`-sized picture at the origin of the image in `dst`.
pub fn fill_zero(dst: &mut [u8], layout: &Layout, rect: Rect) -> Result<()> {
    let at_origin = Rect { x: 0, y: 0, ..rect };
    let to = rows(layout, at_origin, dst.len()).ok_or(Error::INVALID_PARAMETER)?;
    for (d, len) in to {
        dst[d..d + len].fill(0);
    }
    Ok(())
}

/// The bit depth of an image format the driver has (`INVALID_IMAGE_FORMAT` otherwise).
pub fn depth_of_format(format: &va::VAImageFormat) -> Result<BitDepth> {
    depth_of_fourcc(format.fourcc).ok_or(Error::INVALID_IMAGE_FORMAT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_layouts() {
        let l = Layout::packed(BitDepth::Eight, 35, 19).unwrap();
        assert_eq!(l.pitch, 64);
        // As daedalus' CAPTURE buffers: an even number of luma rows.
        assert_eq!(l.chroma_offset, 64 * 20);
        assert_eq!(l.size, 64 * 20 + 64 * 10);
        let l = Layout::packed(BitDepth::Ten, 1920, 1080).unwrap();
        assert_eq!(l.pitch, 3840);
        assert_eq!(l.size, 3840 * 1080 * 3 / 2);
        assert_eq!(
            Layout::packed(BitDepth::Ten, u32::MAX, 2),
            Err(Error::RESOLUTION_NOT_SUPPORTED)
        );
        let img = l.image(9, 10, 1920, 1080);
        assert_eq!((img.image_id, img.buf, img.num_planes), (9, 10, 2));
        assert_eq!(img.offsets[1], 3840 * 1080);
        assert_eq!(img.format.fourcc, va::VA_FOURCC_P010);
    }

    #[test]
    fn copies_rectangles() {
        // A 6x4 NV12 picture, pitch 8, chroma at 32: luma = 10 * row + col, chroma = 100 + ...
        let src_layout = Layout {
            depth: BitDepth::Eight,
            pitch: 8,
            chroma_offset: 32,
            size: 48,
        };
        let mut src = vec![0u8; 48];
        for r in 0..4 {
            for c in 0..6 {
                src[r * 8 + c] = (10 * r + c) as u8;
            }
        }
        for r in 0..2 {
            for c in 0..6 {
                src[32 + r * 8 + c] = (100 + 10 * r + c) as u8;
            }
        }
        let dst_layout = Layout::packed(BitDepth::Eight, 4, 2).unwrap();
        let mut dst = vec![0xaa; dst_layout.size as usize];
        let rect = Rect {
            x: 2,
            y: 2,
            width: 4,
            height: 2,
        };
        copy(&src, &src_layout, &mut dst, &dst_layout, rect).unwrap();
        assert_eq!(&dst[..4], &[22, 23, 24, 25]);
        assert_eq!(&dst[64..68], &[32, 33, 34, 35]);
        let chroma = dst_layout.chroma_offset as usize;
        assert_eq!(&dst[chroma..chroma + 4], &[112, 113, 114, 115]);
        // Outside the source: refused.
        let too_big = Rect { y: 3, ..rect };
        assert_eq!(
            copy(&src, &src_layout, &mut dst, &dst_layout, too_big),
            Err(Error::INVALID_PARAMETER)
        );
        fill_zero(&mut dst, &dst_layout, rect).unwrap();
        assert_eq!(&dst[..4], &[0; 4]);
        assert_eq!(dst[4], 0xaa);
    }

    #[test]
    fn image_formats() {
        let f = formats();
        assert_eq!(f[0].fourcc, va::VA_FOURCC_NV12);
        assert_eq!(depth_of_format(&f[1]), Ok(BitDepth::Ten));
        let rgb = va::VAImageFormat {
            fourcc: va::VA_FOURCC_RGBA,
            ..Default::default()
        };
        assert_eq!(depth_of_format(&rgb), Err(Error::INVALID_IMAGE_FORMAT));
    }
}
