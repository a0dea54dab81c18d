// SPDX-License-Identifier: GPL-2.0
//! `daedalus devices` (the stateless decoders of any driver, with their formats) and the
//! machine-readable (`--json`) form of `daedalus info`.

use std::fmt::Write as _;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use anyhow::Result;
use daedalus_tools::discover::{self, DaemonState, FoundVideo, DAEMON_NODE};
use daedalus_tools::names::{ctrl_type_name, flag_names, fourcc_to_string, CAPS, CTRL_FLAGS};
use daedalus_tools::sys::*;
use daedalus_tools::v4l2::{FrameSizes, VideoDevice};
use serde::Serialize;

const OUTPUT: u32 = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;
const CAPTURE: u32 = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;

/// The stateless (parsed, request-based) coded formats of the V4L2 uAPI and their codec.
const STATELESS: &[(&str, &str)] = &[
    ("VP9F", "vp9"),
    ("AV1F", "av1"),
    ("S264", "h264"),
    ("S265", "hevc"),
    ("VP8F", "vp8"),
    ("MG2S", "mpeg2"),
    ("SFWH", "fwht"),
];

/// The codec of a stateless coded format, if it is one.
pub fn stateless_codec(fourcc: &str) -> Option<&'static str> {
    STATELESS
        .iter()
        .find(|(f, _)| *f == fourcc)
        .map(|(_, c)| *c)
}

/// One coded (OUTPUT) format of a decoder.
#[derive(Debug, Serialize)]
pub struct CodedFormat {
    /// The fourcc, e.g. `VP9F`.
    pub fourcc: String,
    /// `vp9`, `av1`, `h264`... (`null` for a format that is not a stateless one).
    pub codec: Option<&'static str>,
    /// The driver's description.
    pub description: String,
    /// The frame sizes the driver enumerates, as text (`16x16 - 8192x4352, step 1x1`).
    pub frame_sizes: String,
    /// The CAPTURE (picture) formats with this OUTPUT format selected.
    pub capture: Vec<String>,
}

/// One decoder node.
#[derive(Debug, Serialize)]
pub struct Decoder {
    /// `/dev/videoN`.
    pub video: String,
    /// Its media controller node, if found.
    pub media: Option<String>,
    /// `VIDIOC_QUERYCAP` driver, card and bus_info.
    pub driver: String,
    /// The card name.
    pub card: String,
    /// The bus info.
    pub bus_info: String,
    /// The node's capability names.
    pub capabilities: Vec<String>,
    /// The OUTPUT formats.
    pub formats: Vec<CodedFormat>,
}

/// The text of a frame size enumeration.
pub fn frame_sizes(sizes: &FrameSizes) -> String {
    match sizes {
        FrameSizes::Unsupported => "no frame sizes enumerated".to_owned(),
        FrameSizes::Discrete(list) => list
            .iter()
            .map(|(w, h)| format!("{w}x{h}"))
            .collect::<Vec<_>>()
            .join(" "),
        FrameSizes::Stepwise(r) | FrameSizes::Continuous(r) => format!(
            "{}x{} - {}x{}, step {}x{}",
            r.min_width, r.min_height, r.max_width, r.max_height, r.step_width, r.step_height
        ),
    }
}

/// Describes one video node as a decoder (its formats on fresh file handles: nothing changes
/// for anyone else).
pub fn decoder(video: &FoundVideo) -> Result<Decoder> {
    let cap = &video.cap;
    let dev = VideoDevice::open(&video.path)?;
    let mut formats = Vec::new();
    for o in dev.enum_formats(OUTPUT)? {
        let ctx = VideoDevice::open(&video.path)?;
        let current = ctx.get_format(OUTPUT)?;
        let capture = match ctx.set_format(OUTPUT, o.pixelformat, current.width, current.height) {
            Ok(_) => ctx
                .enum_formats(CAPTURE)?
                .iter()
                .map(|f| fourcc_to_string(f.pixelformat))
                .collect(),
            Err(_) => Vec::new(),
        };
        let fourcc = fourcc_to_string(o.pixelformat);
        formats.push(CodedFormat {
            codec: stateless_codec(&fourcc),
            fourcc,
            description: o.description.clone(),
            frame_sizes: frame_sizes(&dev.enum_frame_sizes(o.pixelformat)?),
            capture,
        });
    }
    let media = discover::find_media_device(&cap.bus_info)
        .ok()
        .flatten()
        .map(|(p, _)| p.display().to_string());
    Ok(Decoder {
        video: video.path.display().to_string(),
        media,
        driver: cap.driver.clone(),
        card: cap.card.clone(),
        bus_info: cap.bus_info.clone(),
        capabilities: flag_names(cap.node_caps(), CAPS),
        formats,
    })
}

/// Whether a node is a stateless decoder: a memory-to-memory device with a stateless coded
/// OUTPUT format.
pub fn is_stateless_decoder(d: &Decoder) -> bool {
    let m2m = d
        .capabilities
        .iter()
        .any(|c| c == "VIDEO_M2M_MPLANE" || c == "VIDEO_M2M");
    m2m && d.formats.iter().any(|f| f.codec.is_some())
}

/// The daemon side, for `info` and `devices`.
#[derive(Debug, Serialize)]
pub struct DaemonInfo {
    /// `/dev/daedalus`.
    pub node: &'static str,
    /// `absent`, `present (character device, mode 0660)`...
    pub node_state: String,
    /// `true` / `false`, `null` when unknown (module not loaded).
    pub attached: Option<bool>,
    /// Why it is unknown.
    pub attached_unknown: Option<String>,
}

/// The state of `/dev/daedalus` and of the daemon.
pub fn daemon_info() -> DaemonInfo {
    let (attached, attached_unknown) = match discover::daemon_state() {
        DaemonState::Attached => (Some(true), None),
        DaemonState::Detached => (Some(false), None),
        DaemonState::Unknown(why) => (None, Some(why)),
    };
    DaemonInfo {
        node: DAEMON_NODE,
        node_state: daemon_node(Path::new(DAEMON_NODE)),
        attached,
        attached_unknown,
    }
}

/// The state of a daemon node.
pub fn daemon_node(path: &Path) -> String {
    match std::fs::metadata(path) {
        Ok(meta) if meta.file_type().is_char_device() => {
            format!(
                "present (character device, mode {:04o})",
                meta.permissions().mode() & 0o7777
            )
        }
        Ok(_) => "present but not a character device".to_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "absent".to_owned(),
        Err(e) => format!("cannot stat: {e}"),
    }
}

/// `daedalus devices`: every stateless decoder of any driver (`--json`: one JSON object).
pub fn run_devices(json: bool) -> Result<()> {
    let mut decoders = Vec::new();
    for video in discover::find_video_devices(None)? {
        match decoder(&video) {
            Ok(d) if is_stateless_decoder(&d) => decoders.push(d),
            Ok(_) => log::debug!("{}: not a stateless decoder", video.path.display()),
            Err(e) => log::debug!("{}: {e:#}", video.path.display()),
        }
    }
    let daemon = daemon_info();
    if json {
        let out = serde_json::json!({ "decoders": decoders, "daedalus_daemon": daemon });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    print!("{}", devices_text(&decoders, &daemon));
    Ok(())
}

/// The text of `daedalus devices`.
pub fn devices_text(decoders: &[Decoder], daemon: &DaemonInfo) -> String {
    let mut out = String::new();
    if decoders.is_empty() {
        out.push_str(
            "no V4L2 stateless decoder found (is the daedalus module loaded? modprobe daedalus)\n",
        );
    }
    for d in decoders {
        let _ = writeln!(
            out,
            "{}  {} ({}, {}){}",
            d.video,
            d.card,
            d.driver,
            d.bus_info,
            d.media
                .as_ref()
                .map_or(String::new(), |m| format!("  media {m}"))
        );
        for f in d.formats.iter().filter(|f| f.codec.is_some()) {
            let _ = writeln!(
                out,
                "  {:<5} {:<5} {:<28} {}  -> {}",
                f.codec.unwrap_or("-"),
                f.fourcc,
                f.frame_sizes,
                f.description,
                if f.capture.is_empty() {
                    "-".to_owned()
                } else {
                    f.capture.join(" ")
                }
            );
        }
    }
    if decoders.iter().any(|d| d.driver == discover::DRIVER_NAME) || daemon.attached.is_some() {
        let _ = writeln!(
            out,
            "{}: {}; decode daemon {}",
            daemon.node,
            daemon.node_state,
            match daemon.attached {
                Some(true) => "attached".to_owned(),
                Some(false) => "not attached".to_owned(),
                None => format!(
                    "unknown ({})",
                    daemon.attached_unknown.as_deref().unwrap_or("?")
                ),
            }
        );
    }
    out
}

/// One control, for `info --json`.
#[derive(Debug, Serialize)]
pub struct Control {
    /// The control ID.
    pub id: u32,
    /// Its name.
    pub name: String,
    /// `V4L2_CTRL_TYPE_*` name.
    pub r#type: String,
    /// Minimum, maximum, step and default (scalar controls).
    pub minimum: i64,
    /// Maximum.
    pub maximum: i64,
    /// Step.
    pub step: u64,
    /// Default.
    pub default: i64,
    /// Flag names.
    pub flags: Vec<String>,
}

/// `daedalus info --json`: the devices (as `devices` describes them, with their controls) and
/// the daemon node.
pub fn run_info_json(found: &[FoundVideo]) -> Result<()> {
    let mut devices = Vec::new();
    for video in found {
        let d = decoder(video)?;
        let dev = VideoDevice::open(&video.path)?;
        let controls: Vec<Control> = dev
            .query_controls()?
            .into_iter()
            .filter(|c| c.ctrl_type != V4L2_CTRL_TYPE_CTRL_CLASS)
            .map(|c| Control {
                id: c.id,
                name: c.name.clone(),
                r#type: ctrl_type_name(c.ctrl_type),
                minimum: c.minimum,
                maximum: c.maximum,
                step: c.step,
                default: c.default_value,
                flags: flag_names(c.flags, CTRL_FLAGS),
            })
            .collect();
        let mut v = serde_json::to_value(&d)?;
        v["controls"] = serde_json::to_value(controls)?;
        devices.push(v);
    }
    let out = serde_json::json!({ "devices": devices, "daedalus_daemon": daemon_info() });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(fourcc: &str) -> CodedFormat {
        CodedFormat {
            fourcc: fourcc.to_owned(),
            codec: stateless_codec(fourcc),
            description: String::new(),
            frame_sizes: "16x16 - 8192x4352, step 1x1".to_owned(),
            capture: vec!["NV12".to_owned()],
        }
    }

    fn dec(caps: &[&str], formats: &[&str]) -> Decoder {
        Decoder {
            video: "/dev/video0".to_owned(),
            media: Some("/dev/media0".to_owned()),
            driver: "visl".to_owned(),
            card: "visl".to_owned(),
            bus_info: "platform:visl".to_owned(),
            capabilities: caps.iter().map(|c| (*c).to_owned()).collect(),
            formats: formats.iter().map(|f| fmt(f)).collect(),
        }
    }

    #[test]
    fn stateless_decoders_only() {
        assert!(is_stateless_decoder(&dec(&["VIDEO_M2M_MPLANE"], &["VP9F"])));
        assert!(is_stateless_decoder(&dec(
            &["VIDEO_M2M"],
            &["MJPG", "S264"]
        )));
        // A stateful decoder (parsed bitstream formats) or a capture device is not one.
        assert!(!is_stateless_decoder(&dec(
            &["VIDEO_M2M_MPLANE"],
            &["VP90", "H264"]
        )));
        assert!(!is_stateless_decoder(&dec(&["VIDEO_CAPTURE"], &["VP9F"])));
    }

    #[test]
    fn text_and_json() {
        let daemon = DaemonInfo {
            node: DAEMON_NODE,
            node_state: "absent".to_owned(),
            attached: None,
            attached_unknown: Some("no /sys/class/misc/daedalus/daemon_attached".to_owned()),
        };
        let text = devices_text(&[dec(&["VIDEO_M2M_MPLANE"], &["VP9F", "AV1F"])], &daemon);
        assert!(text.starts_with("/dev/video0  visl (visl, platform:visl)  media /dev/media0\n"));
        assert!(
            text.contains("  vp9   VP9F  16x16 - 8192x4352, step 1x1"),
            "{text}"
        );
        assert!(text.contains("-> NV12"), "{text}");
        assert!(!text.contains("/dev/daedalus"), "{text}");
        assert!(devices_text(&[], &daemon).starts_with("no V4L2 stateless decoder found"));
        let v = serde_json::to_value(dec(&["VIDEO_M2M_MPLANE"], &["AV1F"])).expect("json");
        assert_eq!(v["formats"][0]["codec"], "av1");
        assert_eq!(v["formats"][0]["capture"][0], "NV12");
        assert_eq!(v["media"], "/dev/media0");
    }
}
