// SPDX-License-Identifier: GPL-2.0
//! Finding the daedalus device nodes: the video node(s) by `VIDIOC_QUERYCAP` driver name, the
//! media node by `bus_info`, and the daemon's misc device.

use std::path::{Path, PathBuf};

use crate::media::{MediaDevice, MediaDeviceInfo};
use crate::v4l2::{Capability, VideoDevice};

/// The driver name daedalus reports in `VIDIOC_QUERYCAP` and `MEDIA_IOC_DEVICE_INFO`.
pub const DRIVER_NAME: &str = "daedalus";

/// The misc character device the decode daemon attaches to.
pub const DAEMON_NODE: &str = "/dev/daedalus";

/// The module's sysfs attribute saying whether a decode daemon is attached ("1" / "0").
pub const DAEMON_ATTACHED: &str = "/sys/class/misc/daedalus/daemon_attached";

/// Whether a decode daemon is attached to `/dev/daedalus`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DaemonState {
    /// The attribute reads "1".
    Attached,
    /// The attribute reads "0".
    Detached,
    /// The attribute cannot be read (absent: module not loaded or too old) or holds something
    /// else; the text says why.
    Unknown(String),
}

impl std::fmt::Display for DaemonState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DaemonState::Attached => f.write_str("attached"),
            DaemonState::Detached => f.write_str("not attached (decode jobs fail at once)"),
            DaemonState::Unknown(why) => write!(f, "unknown ({why})"),
        }
    }
}

/// Whether a decode daemon is attached, from [`DAEMON_ATTACHED`].
pub fn daemon_state() -> DaemonState {
    daemon_state_at(Path::new(DAEMON_ATTACHED))
}

/// Reads a `daemon_attached` attribute (normally [`DAEMON_ATTACHED`]).
pub fn daemon_state_at(path: &Path) -> DaemonState {
    match std::fs::read_to_string(path) {
        Ok(text) => match text.trim() {
            "1" => DaemonState::Attached,
            "0" => DaemonState::Detached,
            other => DaemonState::Unknown(format!("{} reads {other:?}", path.display())),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            DaemonState::Unknown(format!("no {}", path.display()))
        }
        Err(e) => DaemonState::Unknown(format!("cannot read {}: {e}", path.display())),
    }
}

/// The index of a device node name: `node_index("video12", "video") == Some(12)`.
pub fn node_index(file_name: &str, prefix: &str) -> Option<u32> {
    let digits = file_name.strip_prefix(prefix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The nodes `<dir>/<prefix>N`, in numeric order of N.
pub fn device_nodes(dir: &Path, prefix: &str) -> std::io::Result<Vec<PathBuf>> {
    let mut nodes: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let index = node_index(entry.file_name().to_str()?, prefix)?;
            Some((index, entry.path()))
        })
        .collect();
    nodes.sort();
    Ok(nodes.into_iter().map(|(_, path)| path).collect())
}

/// The `/dev` node of character device `major:minor`, from its `DEVNAME` in
/// `<sysfs>/dev/char/<major>:<minor>/uevent` (`sysfs` is normally `/sys`).
pub fn char_device_node(sysfs: &Path, major: u32, minor: u32) -> Option<PathBuf> {
    let uevent = sysfs.join(format!("dev/char/{major}:{minor}/uevent"));
    let text = std::fs::read_to_string(&uevent).ok()?;
    let name = text
        .lines()
        .find_map(|l| l.strip_prefix("DEVNAME="))?
        .trim();
    // A name from the kernel, but still: no way out of /dev.
    if name.is_empty() || name.split('/').any(|c| c == ".." || c.is_empty()) {
        return None;
    }
    Some(Path::new("/dev").join(name))
}

/// A video node with its capabilities.
#[derive(Clone, Debug)]
pub struct FoundVideo {
    /// The device node.
    pub path: PathBuf,
    /// Its `VIDIOC_QUERYCAP`.
    pub cap: Capability,
}

/// The video nodes under `/dev` whose driver is `driver` (any driver with `None`). Nodes that
/// cannot be opened or queried are skipped (and logged at debug level).
pub fn find_video_devices(driver: Option<&str>) -> std::io::Result<Vec<FoundVideo>> {
    let mut found = Vec::new();
    for path in device_nodes(Path::new("/dev"), "video")? {
        let cap = match VideoDevice::open(&path).and_then(|dev| dev.query_capability()) {
            Ok(cap) => cap,
            Err(e) => {
                log::debug!("skipping {}: {e}", path.display());
                continue;
            }
        };
        if driver.is_some_and(|d| d != cap.driver) {
            log::debug!("skipping {}: driver {:?}", path.display(), cap.driver);
            continue;
        }
        found.push(FoundVideo { path, cap });
    }
    Ok(found)
}

/// The media node under `/dev` whose `bus_info` is `bus_info`.
pub fn find_media_device(bus_info: &str) -> std::io::Result<Option<(PathBuf, MediaDeviceInfo)>> {
    for path in device_nodes(Path::new("/dev"), "media")? {
        match MediaDevice::open(&path).and_then(|dev| dev.device_info()) {
            Ok(info) if info.bus_info == bus_info => return Ok(Some((path, info))),
            Ok(info) => log::debug!("skipping {}: bus_info {:?}", path.display(), info.bus_info),
            Err(e) => log::debug!("skipping {}: {e}", path.display()),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_states() {
        let dir =
            std::env::temp_dir().join(format!("daedalus-discover-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("daemon_attached");
        for (text, state) in [
            ("1\n", DaemonState::Attached),
            ("0\n", DaemonState::Detached),
        ] {
            std::fs::write(&file, text).expect("write");
            assert_eq!(daemon_state_at(&file), state);
        }
        std::fs::write(&file, "maybe").expect("write");
        assert!(
            matches!(daemon_state_at(&file), DaemonState::Unknown(why) if why.contains("maybe"))
        );
        std::fs::remove_file(&file).expect("remove");
        let state = daemon_state_at(&file);
        assert!(matches!(&state, DaemonState::Unknown(why) if why.starts_with("no ")));
        assert!(state.to_string().starts_with("unknown (no "));
        assert_eq!(DaemonState::Attached.to_string(), "attached");
        let _ = std::fs::remove_dir(&dir);
    }

    #[test]
    fn char_device_nodes_from_uevent() {
        let sysfs =
            std::env::temp_dir().join(format!("daedalus-sysfs-test-{}", std::process::id()));
        let dir = sysfs.join("dev/char/81:3");
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("uevent"), "MAJOR=81\nMINOR=3\nDEVNAME=video3\n").expect("write");
        assert_eq!(
            char_device_node(&sysfs, 81, 3),
            Some(PathBuf::from("/dev/video3"))
        );
        assert_eq!(char_device_node(&sysfs, 81, 4), None);
        std::fs::write(dir.join("uevent"), "DEVNAME=../etc/passwd\n").expect("write");
        assert_eq!(char_device_node(&sysfs, 81, 3), None);
        std::fs::write(dir.join("uevent"), "MAJOR=81\n").expect("write");
        assert_eq!(char_device_node(&sysfs, 81, 3), None);
        std::fs::remove_dir_all(&sysfs).expect("remove temp dir");
    }

    #[test]
    fn node_indices() {
        assert_eq!(node_index("video0", "video"), Some(0));
        assert_eq!(node_index("video12", "video"), Some(12));
        assert_eq!(node_index("media3", "media"), Some(3));
        assert_eq!(node_index("video", "video"), None);
        assert_eq!(node_index("video-foo", "video"), None);
        assert_eq!(node_index("video1a", "video"), None);
        assert_eq!(node_index("video+1", "video"), None);
        assert_eq!(node_index("media0", "video"), None);
        assert_eq!(node_index("video99999999999", "video"), None);
    }

    #[test]
    fn nodes_sorted_numerically() {
        let dir = std::env::temp_dir().join(format!("daedalus-tools-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        for name in ["video10", "video2", "video1", "videoX", "media0", "video"] {
            std::fs::write(dir.join(name), b"").expect("create file");
        }
        let nodes = device_nodes(&dir, "video").expect("read dir");
        let names: Vec<_> = nodes
            .iter()
            .map(|p| p.file_name().and_then(|n| n.to_str()).unwrap_or("?"))
            .collect();
        assert_eq!(names, ["video1", "video2", "video10"]);
        std::fs::remove_dir_all(&dir).expect("remove temp dir");
    }
}
