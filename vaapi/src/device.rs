// SPDX-License-Identifier: GPL-2.0
//! Finding the V4L2 stateless decoder the driver uses, and what it decodes.
//!
//! The VA display's DRM device plays no part in decoding (any render node will do: v3d's on a
//! Raspberry Pi 5, vgem's in a VM): the driver opens the decoder's video and media nodes
//! itself. Without overrides it walks `/dev/media*` in numeric order and, for each media graph,
//! the video interfaces of the graph (`MEDIA_IOC_G_TOPOLOGY`); the first video node that is a
//! multi-planar memory-to-memory device with a `VP9_FRAME`, `H264_SLICE` or `AV1_FRAME` OUTPUT
//! format is used, whatever its driver. `DAEDALUS_VA_VIDEO` and `DAEDALUS_VA_MEDIA` name the
//! nodes instead (either one: the other is looked up).
//!
//! What it decodes (`caps.rs` turns that into VA profiles): its OUTPUT formats, the frame
//! sizes of each, the items of each codec's profile menu control, and the bit depths it
//! outputs, probed by setting 8-bit and 10-bit stream parameters on a scratch context and
//! reading the CAPTURE format the driver picks (NV12 / P010).

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use daedalus_client::discover::{self, DaemonState};
use daedalus_client::media::MediaDevice;
use daedalus_client::names::fourcc_to_string;
use daedalus_client::sys::*;
use daedalus_client::v4l2::{CtrlPayload, FrameSizes, MenuItem, VideoDevice, Which};
use daedalus_proto::formats::{BitDepth, Codec};

use crate::caps::{CodecCaps, Sizes};

/// The environment variable naming the video node to use.
pub const ENV_VIDEO: &str = "DAEDALUS_VA_VIDEO";
/// The environment variable naming the media node to use.
pub const ENV_MEDIA: &str = "DAEDALUS_VA_MEDIA";

const OUTPUT: u32 = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;
const CAPTURE: u32 = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;

/// Nodes the user chose.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `DAEDALUS_VA_VIDEO`.
    pub video: Option<PathBuf>,
    /// `DAEDALUS_VA_MEDIA`.
    pub media: Option<PathBuf>,
}

impl Overrides {
    /// The overrides `var` (normally the environment) sets; empty values are unset.
    pub fn from_vars(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Overrides {
        let path = |name| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        Overrides {
            video: path(ENV_VIDEO),
            media: path(ENV_MEDIA),
        }
    }

    /// The overrides of the process environment.
    pub fn from_env() -> Overrides {
        Overrides::from_vars(|name| std::env::var_os(name))
    }
}

/// Where the host's device nodes are (`/dev`, `/sys`; elsewhere in tests).
#[derive(Clone, Debug)]
pub struct Roots {
    /// Device nodes.
    pub dev: PathBuf,
    /// sysfs.
    pub sys: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Roots {
            dev: PathBuf::from("/dev"),
            sys: PathBuf::from("/sys"),
        }
    }
}

/// The decoder the driver uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// Its video node.
    pub video: PathBuf,
    /// Its media node (requests are allocated there).
    pub media: PathBuf,
    /// `VIDIOC_QUERYCAP` driver name.
    pub driver: String,
    /// `VIDIOC_QUERYCAP` card name.
    pub card: String,
    /// What it decodes.
    pub codecs: Vec<CodecCaps>,
}

/// Finds the decoder (see the module doc). The error says what was tried and why each
/// candidate was not used, for libva's error callback.
pub fn find(overrides: &Overrides, roots: &Roots) -> Result<Device, String> {
    let hint = format!("set {ENV_VIDEO} and {ENV_MEDIA} to choose the decoder's nodes");
    match (&overrides.video, &overrides.media) {
        (Some(video), Some(media)) => {
            probe(video, media).map_err(|e| format!("{ENV_VIDEO}/{ENV_MEDIA}: {e}"))
        }
        (Some(video), None) => {
            let media = media_of_video(video, roots).map_err(|e| format!("{ENV_VIDEO}: {e}"))?;
            probe(video, &media).map_err(|e| format!("{ENV_VIDEO}: {e}"))
        }
        (None, Some(media)) => {
            let mut tried = Vec::new();
            scan_media(media, roots, &mut tried)
                .ok_or_else(|| format!("{ENV_MEDIA}: {}", tried.join("; ")))
        }
        (None, None) => {
            let medias = discover::device_nodes(&roots.dev, "media")
                .map_err(|e| format!("cannot list {}: {e}", roots.dev.display()))?;
            if medias.is_empty() {
                return Err(format!(
                    "no V4L2 stateless decoder: there is no media device ({}/media*); is the \
                     decoder's module (daedalus.ko) loaded? Or {hint}",
                    roots.dev.display()
                ));
            }
            let mut tried = Vec::new();
            for media in &medias {
                if let Some(device) = scan_media(media, roots, &mut tried) {
                    return Ok(device);
                }
            }
            Err(format!(
                "no V4L2 stateless decoder of VP9, H.264 or AV1 found ({}); {hint}",
                tried.join("; ")
            ))
        }
    }
}

/// The first video node of media graph `media` that is a decoder, or `None` with the reasons
/// in `tried`.
fn scan_media(media: &Path, roots: &Roots, tried: &mut Vec<String>) -> Option<Device> {
    let nodes = match video_nodes(media, roots) {
        Ok(nodes) => nodes,
        Err(e) => {
            tried.push(format!("{}: {e}", media.display()));
            return None;
        }
    };
    if nodes.is_empty() {
        tried.push(format!("{}: no video interface", media.display()));
    }
    for video in nodes {
        match probe(&video, media) {
            Ok(device) => return Some(device),
            Err(e) => tried.push(format!("{}: {e}", video.display())),
        }
    }
    None
}

/// The video nodes of the video interfaces of media graph `media`.
fn video_nodes(media: &Path, roots: &Roots) -> Result<Vec<PathBuf>, String> {
    let dev = MediaDevice::open(media).map_err(|e| e.to_string())?;
    let interfaces = dev.video_interfaces().map_err(|e| e.to_string())?;
    Ok(interfaces
        .into_iter()
        .filter_map(|(major, minor)| discover::char_device_node(&roots.sys, major, minor))
        .map(|node| match node.strip_prefix("/dev") {
            Ok(rel) => roots.dev.join(rel),
            Err(_) => node,
        })
        .collect())
}

/// The media node whose graph has video node `video`.
fn media_of_video(video: &Path, roots: &Roots) -> Result<PathBuf, String> {
    let meta = std::fs::metadata(video).map_err(|e| format!("{}: {e}", video.display()))?;
    if !meta.file_type().is_char_device() {
        return Err(format!("{} is not a device node", video.display()));
    }
    let rdev = std::os::unix::fs::MetadataExt::rdev(&meta);
    let (major, minor) = (libc::major(rdev), libc::minor(rdev));
    let medias = discover::device_nodes(&roots.dev, "media")
        .map_err(|e| format!("cannot list {}: {e}", roots.dev.display()))?;
    for media in medias {
        let Ok(dev) = MediaDevice::open(&media) else {
            continue;
        };
        if dev
            .video_interfaces()
            .is_ok_and(|i| i.contains(&(major, minor)))
        {
            return Ok(media);
        }
    }
    Err(format!(
        "no media device has {} in its graph (set {ENV_MEDIA})",
        video.display()
    ))
}

/// What `video` decodes, if it is a stateless decoder (the error says why not).
pub fn probe(video: &Path, media: &Path) -> Result<Device, String> {
    let dev = VideoDevice::open(video).map_err(|e| e.to_string())?;
    let cap = dev.query_capability().map_err(|e| e.to_string())?;
    let caps = cap.node_caps();
    if caps & V4L2_CAP_VIDEO_M2M_MPLANE == 0 || caps & V4L2_CAP_STREAMING == 0 {
        return Err(format!(
            "{} is not a multi-planar memory-to-memory streaming device",
            cap.driver
        ));
    }
    MediaDevice::open(media).map_err(|e| e.to_string())?;
    let formats = dev.enum_formats(OUTPUT).map_err(|e| e.to_string())?;
    let mut codecs = Vec::new();
    for codec in Codec::ALL {
        if !formats.iter().any(|f| f.pixelformat == codec.fourcc()) {
            continue;
        }
        let sizes = sizes(
            &dev.enum_frame_sizes(codec.fourcc())
                .map_err(|e| e.to_string())?,
        );
        let profile_menu = profile_menu(&dev, codec);
        let depths = probe_depths(video, codec);
        if depths.is_empty() {
            log::info!(
                "{}: {} decoding outputs neither NV12 nor P010: not used",
                video.display(),
                fourcc_to_string(codec.fourcc())
            );
            continue;
        }
        codecs.push(CodecCaps {
            codec,
            sizes,
            profile_menu,
            depths,
        });
    }
    if codecs.is_empty() {
        return Err(format!(
            "{} decodes none of VP9, H.264, AV1 into NV12 / P010 (OUTPUT formats: {})",
            cap.driver,
            formats
                .iter()
                .map(|f| fourcc_to_string(f.pixelformat))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    Ok(Device {
        video: video.to_path_buf(),
        media: media.to_path_buf(),
        driver: cap.driver,
        card: cap.card,
        codecs,
    })
}

/// The picture sizes of `VIDIOC_ENUM_FRAMESIZES`'s range; a driver that does not enumerate
/// sizes gets the range of a level 5.2 H.264 / level 6 VP9 decoder's pictures (4096x2304),
/// checked by `S_FMT` when a context starts. A range's minimum is the smallest *buffer*: a
/// smaller picture is decoded into one of that size (`S_FMT` rounds the coded size up, and
/// `Decoder::open` checks that the CAPTURE format holds the picture), so pictures go down to
/// 1x1 (FFmpeg refuses a stream smaller than the surface minimum, e.g. an 18x10 VP9 stream
/// with daedalus's 16x16).
pub fn sizes(frame_sizes: &FrameSizes) -> Sizes {
    match frame_sizes {
        FrameSizes::Stepwise(s) | FrameSizes::Continuous(s) => Sizes {
            min_width: 1,
            min_height: 1,
            max_width: s.max_width,
            max_height: s.max_height,
            min_buffer_width: s.min_width,
            min_buffer_height: s.min_height,
        },
        FrameSizes::Discrete(list) if !list.is_empty() => Sizes {
            min_width: list.iter().map(|s| s.0).min().unwrap_or(0),
            min_height: list.iter().map(|s| s.1).min().unwrap_or(0),
            max_width: list.iter().map(|s| s.0).max().unwrap_or(0),
            max_height: list.iter().map(|s| s.1).max().unwrap_or(0),
            min_buffer_width: list.iter().map(|s| s.0).min().unwrap_or(0),
            min_buffer_height: list.iter().map(|s| s.1).min().unwrap_or(0),
        },
        _ => Sizes {
            min_width: 16,
            min_height: 16,
            max_width: 4096,
            max_height: 2304,
            min_buffer_width: 16,
            min_buffer_height: 16,
        },
    }
}

/// The profile menu control of a codec.
pub fn profile_control(codec: Codec) -> u32 {
    match codec {
        Codec::Vp9 => V4L2_CID_MPEG_VIDEO_VP9_PROFILE,
        Codec::H264 => V4L2_CID_MPEG_VIDEO_H264_PROFILE,
        Codec::Av1 => V4L2_CID_MPEG_VIDEO_AV1_PROFILE,
    }
}

/// The items of a codec's profile menu, `None` without the control.
fn profile_menu(dev: &VideoDevice, codec: Codec) -> Option<Vec<u32>> {
    let ctrl = dev.query_control(profile_control(codec)).ok()?;
    let items = dev.query_menu(&ctrl).ok()?;
    Some(
        items
            .iter()
            .map(|item| match item {
                MenuItem::Name { index, .. } | MenuItem::Value { index, .. } => *index,
            })
            .collect(),
    )
}

/// The bit depths `video` outputs pictures of for `codec`: for each, on a context of its own,
/// the OUTPUT format is set and the codec's stream parameters of that depth, and the CAPTURE
/// format the driver then picks must be the depth's (NV12 / P010). H.264 is probed at 8 bits
/// only (VA-API 1.17 has no 10-bit H.264 profile).
fn probe_depths(video: &Path, codec: Codec) -> Vec<BitDepth> {
    let depths: &[BitDepth] = match codec {
        Codec::H264 => &[BitDepth::Eight],
        Codec::Vp9 | Codec::Av1 => &[BitDepth::Eight, BitDepth::Ten],
    };
    depths
        .iter()
        .copied()
        .filter(|&depth| match probe_depth(video, codec, depth) {
            Ok(ok) => ok,
            Err(e) => {
                log::debug!(
                    "{}: {} at {} bits: {e}",
                    video.display(),
                    fourcc_to_string(codec.fourcc()),
                    depth.bits()
                );
                false
            }
        })
        .collect()
}

fn probe_depth(video: &Path, codec: Codec, depth: BitDepth) -> daedalus_client::Result<bool> {
    let dev = VideoDevice::open(video)?;
    dev.set_format(OUTPUT, codec.fourcc(), 320, 240)?;
    let ten = depth == BitDepth::Ten;
    match codec {
        Codec::Vp9 => {
            let id = V4L2_CID_STATELESS_VP9_FRAME;
            let mut f: v4l2_ctrl_vp9_frame = dev.default_payload(id)?;
            f.bit_depth = depth.bits() as u8;
            f.profile = if ten { 2 } else { 0 };
            f.flags |= V4L2_VP9_FRAME_FLAG_X_SUBSAMPLING | V4L2_VP9_FRAME_FLAG_Y_SUBSAMPLING;
            dev.set_ext_ctrls(Which::Current, &mut [CtrlPayload::new(id, &mut f)])?;
        }
        Codec::Av1 => {
            let id = V4L2_CID_STATELESS_AV1_SEQUENCE;
            let mut s: v4l2_ctrl_av1_sequence = dev.default_payload(id)?;
            s.bit_depth = depth.bits() as u8;
            s.seq_profile = 0;
            s.flags |= V4L2_AV1_SEQUENCE_FLAG_SUBSAMPLING_X | V4L2_AV1_SEQUENCE_FLAG_SUBSAMPLING_Y;
            dev.set_ext_ctrls(Which::Current, &mut [CtrlPayload::new(id, &mut s)])?;
        }
        Codec::H264 => {
            let id = V4L2_CID_STATELESS_H264_SPS;
            let mut s: v4l2_ctrl_h264_sps = dev.default_payload(id)?;
            s.profile_idc = 100;
            s.chroma_format_idc = 1;
            s.bit_depth_luma_minus8 = (depth.bits() - 8) as u8;
            s.bit_depth_chroma_minus8 = (depth.bits() - 8) as u8;
            s.pic_width_in_mbs_minus1 = 320 / 16 - 1;
            s.pic_height_in_map_units_minus1 = 240 / 16 - 1;
            s.flags |= V4L2_H264_SPS_FLAG_FRAME_MBS_ONLY;
            s.max_num_ref_frames = 1;
            s.log2_max_frame_num_minus4 = 0;
            s.level_idc = 40;
            dev.set_ext_ctrls(Which::Current, &mut [CtrlPayload::new(id, &mut s)])?;
        }
    }
    Ok(dev.get_format(CAPTURE)?.pixelformat == depth.capture_fourcc())
}

/// Refuses daedalus when no decode daemon is attached (every decode would fail): players then
/// fall back to software decoding instead of showing errors. Other drivers pass.
pub fn check_daemon(device: &Device, state: impl FnOnce() -> DaemonState) -> Result<(), String> {
    if device.driver != discover::DRIVER_NAME {
        return Ok(());
    }
    match state() {
        DaemonState::Detached => Err(format!(
            "{} ({}) has no decode daemon attached to {}: start daedalusd",
            device.video.display(),
            device.driver,
            discover::DAEMON_NODE
        )),
        DaemonState::Attached => Ok(()),
        DaemonState::Unknown(why) => {
            log::info!("cannot tell whether a decode daemon is attached: {why}");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use daedalus_proto::formats;

    fn temp_roots(name: &str) -> Roots {
        let base = std::env::temp_dir().join(format!("daedalus-va-{name}-{}", std::process::id()));
        let roots = Roots {
            dev: base.join("dev"),
            sys: base.join("sys"),
        };
        std::fs::create_dir_all(&roots.dev).unwrap();
        std::fs::create_dir_all(&roots.sys).unwrap();
        roots
    }

    #[test]
    fn overrides_from_vars() {
        let o = Overrides::from_vars(|name| match name {
            ENV_VIDEO => Some("/dev/video3".into()),
            ENV_MEDIA => Some("".into()),
            _ => None,
        });
        assert_eq!(o.video, Some(PathBuf::from("/dev/video3")));
        assert_eq!(o.media, None);
        assert_eq!(Overrides::from_vars(|_| None), Overrides::default());
    }

    #[test]
    fn no_media_device_says_so() {
        let roots = temp_roots("nomedia");
        let e = find(&Overrides::default(), &roots).unwrap_err();
        assert!(e.contains("there is no media device"), "{e}");
        assert!(e.contains(ENV_VIDEO), "{e}");
        // Media nodes that are no devices: each named with its reason.
        std::fs::write(roots.dev.join("media0"), b"").unwrap();
        let e = find(&Overrides::default(), &roots).unwrap_err();
        assert!(e.contains("media0: "), "{e}");
        assert!(
            e.contains("no V4L2 stateless decoder of VP9, H.264 or AV1 found"),
            "{e}"
        );
        std::fs::remove_dir_all(roots.dev.parent().unwrap()).unwrap();
    }

    #[test]
    fn overrides_that_are_no_decoders() {
        let roots = temp_roots("overrides");
        let null = PathBuf::from("/dev/null");
        let e = find(
            &Overrides {
                video: Some(null.clone()),
                media: Some(null.clone()),
            },
            &roots,
        )
        .unwrap_err();
        assert!(
            e.starts_with("DAEDALUS_VA_VIDEO/DAEDALUS_VA_MEDIA: "),
            "{e}"
        );
        let e = find(
            &Overrides {
                video: Some(null.clone()),
                media: None,
            },
            &roots,
        )
        .unwrap_err();
        assert!(e.contains("no media device has /dev/null"), "{e}");
        let e = find(
            &Overrides {
                video: Some(roots.dev.join("video9")),
                media: None,
            },
            &roots,
        )
        .unwrap_err();
        assert!(e.contains("video9"), "{e}");
        std::fs::remove_dir_all(roots.dev.parent().unwrap()).unwrap();
    }

    #[test]
    fn size_ranges() {
        let range = formats::Codec::Vp9.frame_sizes();
        let s = sizes(&FrameSizes::Stepwise(range));
        // daedalus's smallest buffer is 16x16: an 18x10 picture is decoded into one.
        assert_eq!(
            (s.min_width, s.min_height, s.max_width, s.max_height),
            (1, 1, 8192, 4352)
        );
        let s = sizes(&FrameSizes::Discrete(vec![(640, 480), (1920, 1080)]));
        assert_eq!(
            (s.min_width, s.min_height, s.max_width, s.max_height),
            (640, 480, 1920, 1080)
        );
        assert_eq!(sizes(&FrameSizes::Unsupported).max_width, 4096);
    }

    #[test]
    fn daemon_check_only_for_daedalus() {
        let mut d = Device {
            video: "/dev/video0".into(),
            media: "/dev/media0".into(),
            driver: "daedalus".into(),
            card: "daedalus".into(),
            codecs: Vec::new(),
        };
        let e = check_daemon(&d, || DaemonState::Detached).unwrap_err();
        assert!(e.contains("start daedalusd"), "{e}");
        assert!(check_daemon(&d, || DaemonState::Attached).is_ok());
        assert!(check_daemon(&d, || DaemonState::Unknown("no file".into())).is_ok());
        d.driver = "hantro-vpu".into();
        assert!(check_daemon(&d, || DaemonState::Detached).is_ok());
    }
}
