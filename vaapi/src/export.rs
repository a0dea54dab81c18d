// SPDX-License-Identifier: GPL-2.0
//! `vaExportSurfaceHandle` as `VA_SURFACE_ATTRIB_MEM_TYPE_DRM_PRIME_2`: the descriptor of a
//! surface's CAPTURE buffer, one dma-buf (`VIDIOC_EXPBUF`) with the luma plane at offset 0 and
//! the interleaved chroma plane after it, linear.

use std::os::fd::{IntoRawFd, OwnedFd};

use daedalus_proto::formats::{fourcc, BitDepth};

use crate::image::Layout;
use crate::va;

/// `DRM_FORMAT_NV12`.
pub const DRM_FORMAT_NV12: u32 = fourcc(b"NV12");
/// `DRM_FORMAT_P010`.
pub const DRM_FORMAT_P010: u32 = fourcc(b"P010");
/// `DRM_FORMAT_R8`.
pub const DRM_FORMAT_R8: u32 = fourcc(b"R8  ");
/// `DRM_FORMAT_GR88`.
pub const DRM_FORMAT_GR88: u32 = fourcc(b"GR88");
/// `DRM_FORMAT_R16`.
pub const DRM_FORMAT_R16: u32 = fourcc(b"R16 ");
/// `DRM_FORMAT_GR1616`.
pub const DRM_FORMAT_GR1616: u32 = fourcc(b"GR32");
/// `DRM_FORMAT_MOD_LINEAR`.
pub const DRM_FORMAT_MOD_LINEAR: u64 = 0;

/// The descriptor of a `width` x `height` picture in `layout`, in the dma-buf `fd` of `size`
/// bytes (whose ownership passes to the client); `separate`: one layer per plane
/// (`VA_EXPORT_SURFACE_SEPARATE_LAYERS`), else one layer of two planes.
pub fn descriptor(
    layout: &Layout,
    width: u32,
    height: u32,
    fd: OwnedFd,
    size: u32,
    separate: bool,
) -> va::VADRMPRIMESurfaceDescriptor {
    let (composed, luma, chroma) = match layout.depth {
        BitDepth::Eight => (DRM_FORMAT_NV12, DRM_FORMAT_R8, DRM_FORMAT_GR88),
        BitDepth::Ten => (DRM_FORMAT_P010, DRM_FORMAT_R16, DRM_FORMAT_GR1616),
    };
    let mut d = va::VADRMPRIMESurfaceDescriptor {
        fourcc: composed,
        width,
        height,
        num_objects: 1,
        ..Default::default()
    };
    d.objects[0].fd = fd.into_raw_fd();
    d.objects[0].size = size;
    d.objects[0].drm_format_modifier = DRM_FORMAT_MOD_LINEAR;
    let planes = [(0, luma), (layout.chroma_offset, chroma)];
    if separate {
        d.num_layers = 2;
        for (layer, (offset, format)) in d.layers.iter_mut().zip(planes) {
            layer.drm_format = format;
            layer.num_planes = 1;
            layer.object_index[0] = 0;
            layer.offset[0] = offset;
            layer.pitch[0] = layout.pitch;
        }
    } else {
        d.num_layers = 1;
        let layer = &mut d.layers[0];
        layer.drm_format = composed;
        layer.num_planes = 2;
        for (i, (offset, _)) in planes.into_iter().enumerate() {
            layer.object_index[i] = 0;
            layer.offset[i] = offset;
            layer.pitch[i] = layout.pitch;
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use std::os::fd::FromRawFd;

    use super::*;

    fn fd() -> OwnedFd {
        OwnedFd::from(std::fs::File::open("/dev/null").unwrap())
    }

    #[test]
    fn composed_and_separate_layers() {
        let layout = Layout {
            depth: BitDepth::Ten,
            pitch: 3840,
            chroma_offset: 3840 * 1088,
            size: 3840 * 1088 * 3 / 2,
        };
        let d = descriptor(&layout, 1920, 1080, fd(), layout.size, false);
        assert_eq!(
            (d.fourcc, d.num_objects, d.num_layers),
            (DRM_FORMAT_P010, 1, 1)
        );
        assert_eq!(d.layers[0].num_planes, 2);
        assert_eq!(d.layers[0].offset[..2], [0, 3840 * 1088]);
        assert_eq!(d.layers[0].pitch[..2], [3840, 3840]);
        // SAFETY (test): the descriptor owns the fd.
        drop(unsafe { OwnedFd::from_raw_fd(d.objects[0].fd) });
        let d = descriptor(&layout, 1920, 1080, fd(), layout.size, true);
        assert_eq!(d.num_layers, 2);
        assert_eq!(
            (d.layers[0].drm_format, d.layers[1].drm_format),
            (DRM_FORMAT_R16, DRM_FORMAT_GR1616)
        );
        assert_eq!(d.layers[1].offset[0], 3840 * 1088);
        // SAFETY (test): as above.
        drop(unsafe { OwnedFd::from_raw_fd(d.objects[0].fd) });
        assert_eq!(DRM_FORMAT_NV12, va::VA_FOURCC_NV12);
        assert_eq!(DRM_FORMAT_GR1616, 0x3233_5247);
    }
}
