// SPDX-License-Identifier: GPL-2.0
//! Configs: a VA profile with the VLD entrypoint and a render-target format, their attributes
//! (`vaGetConfigAttributes`, `vaCreateConfig`, `vaQueryConfigAttributes`) and the surface
//! attributes of a config (`vaQuerySurfaceAttributes`).

use daedalus_proto::formats::BitDepth;

use crate::caps::ProfileCaps;
use crate::status::{Error, Result};
use crate::va;

/// The config attribute types the driver answers, in the order `vaQueryConfigAttributes` lists
/// them.
pub const ATTRIBUTES: [va::VAConfigAttribType; 5] = [
    va::VAConfigAttribRTFormat,
    va::VAConfigAttribDecSliceMode,
    va::VAConfigAttribDecProcessing,
    va::VAConfigAttribMaxPictureWidth,
    va::VAConfigAttribMaxPictureHeight,
];

/// The VA fourcc of the pictures of a bit depth: NV12 or P010 (one plane of interleaved
/// chroma after the luma, as the V4L2 CAPTURE formats of the same names).
pub fn fourcc(depth: BitDepth) -> u32 {
    match depth {
        BitDepth::Eight => va::VA_FOURCC_NV12,
        BitDepth::Ten => va::VA_FOURCC_P010,
    }
}

/// The bit depth of a VA picture fourcc the driver has.
pub fn depth_of_fourcc(fourcc: u32) -> Option<BitDepth> {
    match fourcc {
        va::VA_FOURCC_NV12 => Some(BitDepth::Eight),
        va::VA_FOURCC_P010 => Some(BitDepth::Ten),
        _ => None,
    }
}

/// The render-target format (one `VA_RT_FORMAT_*` bit) of pictures of a bit depth.
pub fn rt_format(depth: BitDepth) -> u32 {
    match depth {
        BitDepth::Eight => va::VA_RT_FORMAT_YUV420,
        BitDepth::Ten => va::VA_RT_FORMAT_YUV420_10,
    }
}

/// The bit depth of a render-target format with one bit set the driver has.
pub fn depth_of_rt_format(rt_format: u32) -> Option<BitDepth> {
    match rt_format {
        va::VA_RT_FORMAT_YUV420 => Some(BitDepth::Eight),
        va::VA_RT_FORMAT_YUV420_10 => Some(BitDepth::Ten),
        _ => None,
    }
}

/// The value of attribute `ty` for `caps` (`VA_ATTRIB_NOT_SUPPORTED` for one the driver does
/// not know).
pub fn attribute_value(caps: &ProfileCaps, ty: va::VAConfigAttribType) -> u32 {
    match ty {
        va::VAConfigAttribRTFormat => caps.rt_formats,
        va::VAConfigAttribDecSliceMode => va::VA_DEC_SLICE_MODE_NORMAL,
        va::VAConfigAttribDecProcessing => va::VA_DEC_PROCESSING_NONE,
        va::VAConfigAttribMaxPictureWidth => caps.sizes.max_width,
        va::VAConfigAttribMaxPictureHeight => caps.sizes.max_height,
        _ => va::VA_ATTRIB_NOT_SUPPORTED,
    }
}

/// A config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The profile and what the device does with it.
    pub caps: ProfileCaps,
    /// The render-target formats of the config: the ones the client asked for with
    /// `VAConfigAttribRTFormat`, else every one of the profile.
    pub rt_formats: u32,
}

impl Config {
    /// `vaCreateConfig`: the VLD entrypoint of `caps`, with the client's attributes: a
    /// render-target format must be the profile's, the other attributes the driver knows must
    /// have its values; attributes it does not know are refused.
    pub fn new(
        caps: ProfileCaps,
        entrypoint: va::VAEntrypoint,
        attribs: &[va::VAConfigAttrib],
    ) -> Result<Config> {
        if entrypoint != va::VAEntrypointVLD {
            return Err(Error::UNSUPPORTED_ENTRYPOINT);
        }
        let mut rt_formats = caps.rt_formats;
        for a in attribs {
            match a.type_ {
                va::VAConfigAttribRTFormat => {
                    if a.value == 0 || a.value & !caps.rt_formats != 0 {
                        return Err(Error::UNSUPPORTED_RT_FORMAT);
                    }
                    rt_formats = a.value;
                }
                // Read-only limits: any value is fine.
                va::VAConfigAttribMaxPictureWidth | va::VAConfigAttribMaxPictureHeight => {}
                ty if ATTRIBUTES.contains(&ty) => {
                    if a.value != attribute_value(&caps, ty) {
                        return Err(Error::INVALID_VALUE);
                    }
                }
                _ => return Err(Error::ATTR_NOT_SUPPORTED),
            }
        }
        Ok(Config { caps, rt_formats })
    }

    /// `vaQueryConfigAttributes`: every attribute of [`ATTRIBUTES`] with the config's value.
    pub fn attributes(&self) -> Vec<va::VAConfigAttrib> {
        ATTRIBUTES
            .iter()
            .map(|&type_| va::VAConfigAttrib {
                type_,
                value: if type_ == va::VAConfigAttribRTFormat {
                    self.rt_formats
                } else {
                    attribute_value(&self.caps, type_)
                },
            })
            .collect()
    }

    /// The bit depths of the config's pictures.
    pub fn depths(&self) -> impl Iterator<Item = BitDepth> + '_ {
        [BitDepth::Eight, BitDepth::Ten]
            .into_iter()
            .filter(|&d| self.rt_formats & rt_format(d) != 0)
    }

    /// `vaQuerySurfaceAttributes`: the pixel formats of the config's pictures (settable), the
    /// size range, and the memory types surfaces can have (`VA` memory, exported as DRM PRIME).
    pub fn surface_attributes(&self) -> Vec<va::VASurfaceAttrib> {
        let int = |type_, flags, value: u32| va::VASurfaceAttrib {
            type_,
            flags,
            value: va::VAGenericValue {
                type_: va::VAGenericValueTypeInteger,
                value: va::_VAGenericValue__bindgen_ty_1 {
                    // Fourccs and flag words are C ints holding the bits.
                    i: value as i32,
                },
            },
        };
        let rw = va::VA_SURFACE_ATTRIB_GETTABLE | va::VA_SURFACE_ATTRIB_SETTABLE;
        let ro = va::VA_SURFACE_ATTRIB_GETTABLE;
        let s = self.caps.sizes;
        let mut list: Vec<_> = self
            .depths()
            .map(|d| int(va::VASurfaceAttribPixelFormat, rw, fourcc(d)))
            .collect();
        list.extend([
            int(va::VASurfaceAttribMinWidth, ro, s.min_width),
            int(va::VASurfaceAttribMinHeight, ro, s.min_height),
            int(va::VASurfaceAttribMaxWidth, ro, s.max_width),
            int(va::VASurfaceAttribMaxHeight, ro, s.max_height),
            int(
                va::VASurfaceAttribMemoryType,
                rw,
                va::VA_SURFACE_ATTRIB_MEM_TYPE_VA,
            ),
        ]);
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::{profiles, test_caps::daedalus, Profile};

    fn caps(profile: Profile) -> ProfileCaps {
        profiles(&daedalus())
            .into_iter()
            .find(|p| p.profile == profile)
            .unwrap()
    }

    fn attrib(type_: va::VAConfigAttribType, value: u32) -> va::VAConfigAttrib {
        va::VAConfigAttrib { type_, value }
    }

    #[test]
    fn attribute_values() {
        let av1 = caps(Profile::Av1Profile0);
        assert_eq!(
            attribute_value(&av1, va::VAConfigAttribRTFormat),
            va::VA_RT_FORMAT_YUV420 | va::VA_RT_FORMAT_YUV420_10
        );
        assert_eq!(
            attribute_value(&av1, va::VAConfigAttribMaxPictureWidth),
            8192
        );
        assert_eq!(
            attribute_value(&caps(Profile::H264High), va::VAConfigAttribMaxPictureHeight),
            2304
        );
        assert_eq!(
            attribute_value(&av1, va::VAConfigAttribEncPackedHeaders),
            va::VA_ATTRIB_NOT_SUPPORTED
        );
    }

    #[test]
    fn create_checks_entrypoint_and_attributes() {
        let av1 = caps(Profile::Av1Profile0);
        let c = Config::new(av1, va::VAEntrypointVLD, &[]).unwrap();
        assert_eq!(c.rt_formats, av1.rt_formats);
        assert_eq!(
            c.depths().collect::<Vec<_>>(),
            [BitDepth::Eight, BitDepth::Ten]
        );
        let c = Config::new(
            av1,
            va::VAEntrypointVLD,
            &[attrib(
                va::VAConfigAttribRTFormat,
                va::VA_RT_FORMAT_YUV420_10,
            )],
        )
        .unwrap();
        assert_eq!(c.depths().collect::<Vec<_>>(), [BitDepth::Ten]);
        assert_eq!(
            Config::new(av1, va::VAEntrypointEncSlice, &[]),
            Err(Error::UNSUPPORTED_ENTRYPOINT)
        );
        for bad in [
            0,
            va::VA_RT_FORMAT_YUV444,
            va::VA_RT_FORMAT_YUV420 | va::VA_RT_FORMAT_RGB32,
        ] {
            assert_eq!(
                Config::new(
                    av1,
                    va::VAEntrypointVLD,
                    &[attrib(va::VAConfigAttribRTFormat, bad)]
                ),
                Err(Error::UNSUPPORTED_RT_FORMAT),
                "RT format {bad:#x}"
            );
        }
        let vp9 = caps(Profile::Vp9Profile0);
        assert_eq!(
            Config::new(
                vp9,
                va::VAEntrypointVLD,
                &[attrib(
                    va::VAConfigAttribRTFormat,
                    va::VA_RT_FORMAT_YUV420_10
                )]
            ),
            Err(Error::UNSUPPORTED_RT_FORMAT)
        );
        assert!(Config::new(
            vp9,
            va::VAEntrypointVLD,
            &[
                attrib(va::VAConfigAttribDecSliceMode, va::VA_DEC_SLICE_MODE_NORMAL),
                attrib(va::VAConfigAttribMaxPictureWidth, 1),
            ]
        )
        .is_ok());
        assert_eq!(
            Config::new(
                vp9,
                va::VAEntrypointVLD,
                &[attrib(
                    va::VAConfigAttribDecSliceMode,
                    va::VA_DEC_SLICE_MODE_BASE
                )]
            ),
            Err(Error::INVALID_VALUE)
        );
        assert_eq!(
            Config::new(
                vp9,
                va::VAEntrypointVLD,
                &[attrib(va::VAConfigAttribEncPackedHeaders, 1)]
            ),
            Err(Error::ATTR_NOT_SUPPORTED)
        );
    }

    #[test]
    fn query_lists_every_attribute() {
        let c = Config::new(caps(Profile::Vp9Profile2), va::VAEntrypointVLD, &[]).unwrap();
        let a = c.attributes();
        assert_eq!(a.len(), ATTRIBUTES.len());
        assert_eq!(a[0].type_, va::VAConfigAttribRTFormat);
        assert_eq!(a[0].value, va::VA_RT_FORMAT_YUV420_10);
        assert!(a.iter().all(|a| a.value != va::VA_ATTRIB_NOT_SUPPORTED));
    }

    #[test]
    fn surface_attributes_of_a_config() {
        let c = Config::new(caps(Profile::Av1Profile0), va::VAEntrypointVLD, &[]).unwrap();
        let attrs = c.surface_attributes();
        // SAFETY (test): every attribute is an integer.
        let value = |a: &va::VASurfaceAttrib| unsafe { a.value.value.i } as u32;
        let formats: Vec<u32> = attrs
            .iter()
            .filter(|a| a.type_ == va::VASurfaceAttribPixelFormat)
            .map(value)
            .collect();
        assert_eq!(formats, [va::VA_FOURCC_NV12, va::VA_FOURCC_P010]);
        let max_w = attrs
            .iter()
            .find(|a| a.type_ == va::VASurfaceAttribMaxWidth)
            .map(value);
        assert_eq!(max_w, Some(8192));
        assert!(attrs
            .iter()
            .all(|a| a.value.type_ == va::VAGenericValueTypeInteger));
    }

    #[test]
    fn fourccs() {
        assert_eq!(fourcc(BitDepth::Ten), va::VA_FOURCC_P010);
        assert_eq!(depth_of_fourcc(va::VA_FOURCC_NV12), Some(BitDepth::Eight));
        assert_eq!(depth_of_fourcc(va::VA_FOURCC_I420), None);
        assert_eq!(
            depth_of_rt_format(va::VA_RT_FORMAT_YUV420_10),
            Some(BitDepth::Ten)
        );
    }
}
