// SPDX-License-Identifier: GPL-2.0
//! What the device decodes, in VA terms: the VA profiles, their render-target formats and
//! picture sizes, derived from what the V4L2 device reports (its OUTPUT formats, frame sizes,
//! profile menus and whether it outputs 10-bit pictures, see `device.rs`). Nothing here is
//! assumed about the device beyond that: a decoder whose VP9 profile menu stops at profile 0
//! gets no VP9 Profile 2, one without an AV1 OUTPUT format no AV1.

use daedalus_client::sys::*;
use daedalus_proto::formats::{BitDepth, Codec};

use crate::config::{depth_of_rt_format, rt_format};
use crate::va;

/// The VA profiles the driver can offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Profile {
    /// `VAProfileVP9Profile0`: 8-bit 4:2:0.
    Vp9Profile0,
    /// `VAProfileVP9Profile2`: 10/12-bit 4:2:0 (10-bit only here).
    Vp9Profile2,
    /// `VAProfileH264ConstrainedBaseline`.
    H264ConstrainedBaseline,
    /// `VAProfileH264Main`.
    H264Main,
    /// `VAProfileH264High`.
    H264High,
    /// `VAProfileAV1Profile0`: main profile, 8 and 10-bit 4:2:0 (and monochrome).
    Av1Profile0,
}

impl Profile {
    /// Every profile, in the order `vaQueryConfigProfiles` lists them.
    pub const ALL: [Profile; 6] = [
        Profile::H264ConstrainedBaseline,
        Profile::H264Main,
        Profile::H264High,
        Profile::Vp9Profile0,
        Profile::Vp9Profile2,
        Profile::Av1Profile0,
    ];

    /// The `VAProfile` value.
    pub fn va(self) -> va::VAProfile {
        match self {
            Profile::Vp9Profile0 => va::VAProfileVP9Profile0,
            Profile::Vp9Profile2 => va::VAProfileVP9Profile2,
            Profile::H264ConstrainedBaseline => va::VAProfileH264ConstrainedBaseline,
            Profile::H264Main => va::VAProfileH264Main,
            Profile::H264High => va::VAProfileH264High,
            Profile::Av1Profile0 => va::VAProfileAV1Profile0,
        }
    }

    /// The profile of a `VAProfile` value, if the driver knows it.
    pub fn from_va(profile: va::VAProfile) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.va() == profile)
    }

    /// The codec it decodes.
    pub fn codec(self) -> Codec {
        match self {
            Profile::Vp9Profile0 | Profile::Vp9Profile2 => Codec::Vp9,
            Profile::H264ConstrainedBaseline | Profile::H264Main | Profile::H264High => Codec::H264,
            Profile::Av1Profile0 => Codec::Av1,
        }
    }

    /// The name libva gives it (`vaProfileStr()` minus the `VAProfile` prefix).
    pub fn name(self) -> &'static str {
        match self {
            Profile::Vp9Profile0 => "VP9Profile0",
            Profile::Vp9Profile2 => "VP9Profile2",
            Profile::H264ConstrainedBaseline => "H264ConstrainedBaseline",
            Profile::H264Main => "H264Main",
            Profile::H264High => "H264High",
            Profile::Av1Profile0 => "AV1Profile0",
        }
    }
}

/// The smallest and largest coded picture sizes of a codec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    /// Smallest width.
    pub min_width: u32,
    /// Smallest height.
    pub min_height: u32,
    /// Largest width.
    pub max_width: u32,
    /// Largest height.
    pub max_height: u32,
    /// Width of the smallest CAPTURE buffer: a narrower picture is decoded into one this wide.
    pub min_buffer_width: u32,
    /// See `min_buffer_width`.
    pub min_buffer_height: u32,
}

/// What the device reports for one codec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodecCaps {
    /// The codec (the device has its OUTPUT format).
    pub codec: Codec,
    /// Its picture sizes (`VIDIOC_ENUM_FRAMESIZES`).
    pub sizes: Sizes,
    /// The items of its profile menu control (`V4L2_CID_MPEG_VIDEO_{VP9,H264,AV1}_PROFILE`),
    /// `None` when the device has no such control.
    pub profile_menu: Option<Vec<u32>>,
    /// The bit depths it outputs pictures of (8: NV12, 10: P010).
    pub depths: Vec<BitDepth>,
}

/// One VA profile the device decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProfileCaps {
    /// The profile.
    pub profile: Profile,
    /// `VA_RT_FORMAT_*` bits of its pictures.
    pub rt_formats: u32,
    /// Its picture sizes.
    pub sizes: Sizes,
}

impl ProfileCaps {
    /// The bit depth of pictures of render-target format `rt_format` (one `VA_RT_FORMAT_*`
    /// bit), if the profile has it.
    pub fn depth_of(&self, rt_format: u32) -> Option<BitDepth> {
        depth_of_rt_format(rt_format).filter(|_| rt_format & self.rt_formats != 0)
    }
}

/// The profile menu item(s) of the V4L2 profile control that stand for a VA profile, and the
/// bit depths the VA profile covers.
fn v4l2_profile(profile: Profile) -> (&'static [u32], &'static [BitDepth]) {
    const EIGHT: &[BitDepth] = &[BitDepth::Eight];
    match profile {
        Profile::Vp9Profile0 => (&[V4L2_MPEG_VIDEO_VP9_PROFILE_0], EIGHT),
        Profile::Vp9Profile2 => (&[V4L2_MPEG_VIDEO_VP9_PROFILE_2], &[BitDepth::Ten]),
        // A baseline decoder decodes constrained baseline streams.
        Profile::H264ConstrainedBaseline => (
            &[
                V4L2_MPEG_VIDEO_H264_PROFILE_BASELINE,
                V4L2_MPEG_VIDEO_H264_PROFILE_CONSTRAINED_BASELINE,
            ],
            EIGHT,
        ),
        Profile::H264Main => (&[V4L2_MPEG_VIDEO_H264_PROFILE_MAIN], EIGHT),
        Profile::H264High => (&[V4L2_MPEG_VIDEO_H264_PROFILE_HIGH], EIGHT),
        Profile::Av1Profile0 => (
            &[V4L2_MPEG_VIDEO_AV1_PROFILE_MAIN],
            &[BitDepth::Eight, BitDepth::Ten],
        ),
    }
}

/// The V4L2 profile menu items assumed for a device without the codec's profile control: the
/// base profile every stateless decoder of the codec handles.
fn default_menu(codec: Codec) -> &'static [u32] {
    match codec {
        Codec::Vp9 => &[V4L2_MPEG_VIDEO_VP9_PROFILE_0],
        Codec::H264 => &[
            V4L2_MPEG_VIDEO_H264_PROFILE_CONSTRAINED_BASELINE,
            V4L2_MPEG_VIDEO_H264_PROFILE_MAIN,
        ],
        Codec::Av1 => &[V4L2_MPEG_VIDEO_AV1_PROFILE_MAIN],
    }
}

/// The VA profiles of a device whose codecs are `codecs`, in [`Profile::ALL`] order: a profile
/// is offered when the device has its codec, its profile menu has the profile, and it outputs
/// at least one bit depth of the profile.
pub fn profiles(codecs: &[CodecCaps]) -> Vec<ProfileCaps> {
    Profile::ALL
        .into_iter()
        .filter_map(|profile| {
            let caps = codecs.iter().find(|c| c.codec == profile.codec())?;
            let (items, depths) = v4l2_profile(profile);
            let menu = caps
                .profile_menu
                .as_deref()
                .unwrap_or(default_menu(caps.codec));
            if !items.iter().any(|i| menu.contains(i)) {
                return None;
            }
            let rt_formats = depths
                .iter()
                .filter(|d| caps.depths.contains(d))
                .fold(0, |acc, &d| acc | rt_format(d));
            (rt_formats != 0).then_some(ProfileCaps {
                profile,
                rt_formats,
                sizes: caps.sizes,
            })
        })
        .collect()
}

/// Test data shared by the unit tests of the crate.
#[cfg(test)]
pub(crate) mod test_caps {
    use super::*;

    const SIZES: Sizes = Sizes {
        min_width: 16,
        min_height: 16,
        max_width: 8192,
        max_height: 4352,
        min_buffer_width: 16,
        min_buffer_height: 16,
    };

    /// What daedalus reports (kmod/ctrls.rs): VP9 0 and 2, AV1 main, H.264 baseline to high 10
    /// without extended; NV12 and P010.
    pub(crate) fn daedalus() -> Vec<CodecCaps> {
        let both = vec![BitDepth::Eight, BitDepth::Ten];
        vec![
            CodecCaps {
                codec: Codec::Vp9,
                sizes: SIZES,
                profile_menu: Some(vec![0, 2]),
                depths: both.clone(),
            },
            CodecCaps {
                codec: Codec::Av1,
                sizes: SIZES,
                profile_menu: Some(vec![0]),
                depths: both.clone(),
            },
            CodecCaps {
                codec: Codec::H264,
                sizes: Sizes {
                    max_width: 4096,
                    max_height: 2304,
                    ..SIZES
                },
                profile_menu: Some(vec![0, 1, 2, 4, 5]),
                depths: both,
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::test_caps::daedalus;
    use super::*;

    const SIZES: Sizes = Sizes {
        min_width: 16,
        min_height: 16,
        max_width: 8192,
        max_height: 4352,
        min_buffer_width: 16,
        min_buffer_height: 16,
    };

    fn names(p: &[ProfileCaps]) -> Vec<(&'static str, u32)> {
        p.iter().map(|p| (p.profile.name(), p.rt_formats)).collect()
    }

    const YUV420: u32 = va::VA_RT_FORMAT_YUV420;
    const YUV420_10: u32 = va::VA_RT_FORMAT_YUV420_10;

    #[test]
    fn daedalus_profiles() {
        let p = profiles(&daedalus());
        assert_eq!(
            names(&p),
            [
                ("H264ConstrainedBaseline", YUV420),
                ("H264Main", YUV420),
                ("H264High", YUV420),
                ("VP9Profile0", YUV420),
                ("VP9Profile2", YUV420_10),
                ("AV1Profile0", YUV420 | YUV420_10),
            ]
        );
        assert_eq!(p[0].sizes.max_width, 4096);
        assert_eq!(p[3].sizes.max_width, 8192);
    }

    #[test]
    fn only_what_the_device_reports() {
        let mut caps = daedalus();
        // An 8-bit-only decoder: no VP9 Profile 2, AV1 only 8-bit.
        for c in &mut caps {
            c.depths = vec![BitDepth::Eight];
        }
        // No AV1 OUTPUT format; VP9 menu without profile 2; H.264 menu up to main.
        caps.retain(|c| c.codec != Codec::Av1);
        caps[0].profile_menu = Some(vec![0]);
        caps[1].profile_menu = Some(vec![0, 2]);
        assert_eq!(
            names(&profiles(&caps)),
            [
                ("H264ConstrainedBaseline", YUV420),
                ("H264Main", YUV420),
                ("VP9Profile0", YUV420),
            ]
        );
        // Without profile controls: the base profiles; a constrained-baseline-only menu.
        caps[0].profile_menu = None;
        caps[1].profile_menu = Some(vec![1]);
        caps.push(CodecCaps {
            codec: Codec::Av1,
            sizes: SIZES,
            profile_menu: None,
            depths: vec![BitDepth::Ten],
        });
        assert_eq!(
            names(&profiles(&caps)),
            [
                ("H264ConstrainedBaseline", YUV420),
                ("VP9Profile0", YUV420),
                ("AV1Profile0", YUV420_10),
            ]
        );
        assert!(profiles(&[]).is_empty());
    }

    #[test]
    fn va_values_round_trip() {
        for p in Profile::ALL {
            assert_eq!(Profile::from_va(p.va()), Some(p));
        }
        assert_eq!(Profile::from_va(va::VAProfileHEVCMain), None);
        assert_eq!(Profile::from_va(va::VAProfileNone), None);
        assert_eq!(Profile::Vp9Profile2.codec(), Codec::Vp9);
    }

    #[test]
    fn depth_of_rt_formats() {
        let av1 = profiles(&daedalus())[5];
        assert_eq!(av1.depth_of(YUV420), Some(BitDepth::Eight));
        assert_eq!(av1.depth_of(YUV420_10), Some(BitDepth::Ten));
        assert_eq!(av1.depth_of(YUV420 | YUV420_10), None);
        assert_eq!(av1.depth_of(va::VA_RT_FORMAT_YUV444), None);
        let vp9_0 = profiles(&daedalus())[3];
        assert_eq!(vp9_0.depth_of(YUV420_10), None);
    }
}
