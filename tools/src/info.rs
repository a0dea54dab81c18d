// SPDX-License-Identifier: GPL-2.0
//! `daedalus info`: a description of the device nodes.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use daedalus_tools::discover::daemon_state;
use daedalus_tools::discover::{self, FoundVideo, DAEMON_NODE};
use daedalus_tools::names::{
    buf_type_name, ctrl_type_name, flag_names, fourcc_to_string, kernel_version, CAPS, CTRL_FLAGS,
    FMT_FLAGS,
};
use daedalus_tools::sys::*;
use daedalus_tools::v4l2::{ControlInfo, MenuItem, VideoDevice};

use crate::devices::{daemon_node, frame_sizes};

const OUTPUT: u32 = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;
const CAPTURE: u32 = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;

/// Prints the description of every device in `found`, then the daemon node's state and whether
/// a decode daemon is attached (the module's `daemon_attached` sysfs attribute).
pub fn run(found: &[FoundVideo]) -> Result<()> {
    for (i, video) in found.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print!("{}", describe(video)?);
    }
    println!();
    println!("{DAEMON_NODE}: {}", daemon_node(Path::new(DAEMON_NODE)));
    println!("decode daemon: {}", daemon_state());
    Ok(())
}

fn caps_line(caps: u32) -> String {
    format!("{caps:#010x} {}", flag_names(caps, CAPS).join(" "))
}

fn describe(video: &FoundVideo) -> Result<String> {
    let mut out = String::new();
    let cap = &video.cap;
    writeln!(out, "{}", video.path.display())?;
    writeln!(out, "  driver        {}", cap.driver)?;
    writeln!(out, "  card          {}", cap.card)?;
    writeln!(out, "  bus_info      {}", cap.bus_info)?;
    writeln!(out, "  version       {}", kernel_version(cap.version))?;
    writeln!(out, "  capabilities  {}", caps_line(cap.capabilities))?;
    if cap.capabilities & V4L2_CAP_DEVICE_CAPS != 0 {
        writeln!(out, "  device_caps   {}", caps_line(cap.device_caps))?;
    }
    match discover::find_media_device(&cap.bus_info) {
        Ok(Some((path, m))) => writeln!(
            out,
            "  media device  {} (driver {}, model {}, bus_info {}, media API {}, driver version {}, hw revision {:#x})",
            path.display(),
            m.driver,
            m.model,
            m.bus_info,
            kernel_version(m.media_version),
            kernel_version(m.driver_version),
            m.hw_revision
        )?,
        Ok(None) => writeln!(out, "  media device  none with bus_info {:?}", cap.bus_info)?,
        Err(e) => writeln!(out, "  media device  cannot list /dev: {e}")?,
    }

    let dev = VideoDevice::open(&video.path)?;
    let outputs = dev.enum_formats(OUTPUT)?;
    writeln!(out, "\n  OUTPUT formats ({}):", buf_type_name(OUTPUT))?;
    if outputs.is_empty() {
        writeln!(out, "    none")?;
    }
    for f in &outputs {
        let flags = flag_names(f.flags, FMT_FLAGS).join(",");
        writeln!(
            out,
            "    {}  {:<28} {:<12} {}",
            fourcc_to_string(f.pixelformat),
            f.description,
            if flags.is_empty() {
                "-".to_owned()
            } else {
                flags
            },
            frame_sizes(&dev.enum_frame_sizes(f.pixelformat)?)
        )?;
    }

    // The CAPTURE formats depend on the OUTPUT format (and the codec controls): list them for
    // each OUTPUT format, on a separate file handle (m2m context) each, so nothing is changed
    // for anyone else.
    writeln!(out, "\n  CAPTURE formats ({}):", buf_type_name(CAPTURE))?;
    if outputs.is_empty() {
        for f in dev.enum_formats(CAPTURE)? {
            writeln!(
                out,
                "    {}  {}",
                fourcc_to_string(f.pixelformat),
                f.description
            )?;
        }
    }
    for o in &outputs {
        let ctx = VideoDevice::open(&video.path)?;
        let current = ctx.get_format(OUTPUT)?;
        let list = match ctx.set_format(OUTPUT, o.pixelformat, current.width, current.height) {
            Ok(_) => ctx
                .enum_formats(CAPTURE)?
                .iter()
                .map(|f| format!("{} ({})", fourcc_to_string(f.pixelformat), f.description))
                .collect::<Vec<_>>()
                .join(", "),
            Err(e) => format!("cannot select the OUTPUT format: {e}"),
        };
        writeln!(
            out,
            "    with {}: {}",
            fourcc_to_string(o.pixelformat),
            list
        )?;
    }

    writeln!(out, "\n  Controls:")?;
    let controls = dev.query_controls()?;
    if controls.is_empty() {
        writeln!(out, "    none")?;
    }
    for ctrl in &controls {
        write_control(&mut out, &dev, ctrl)?;
    }
    Ok(out)
}

fn write_control(out: &mut String, dev: &VideoDevice, ctrl: &ControlInfo) -> Result<()> {
    if ctrl.ctrl_type == V4L2_CTRL_TYPE_CTRL_CLASS {
        writeln!(out, "    {} ({:#010x})", ctrl.name, ctrl.id)?;
        return Ok(());
    }
    let mut line = format!(
        "      {:#010x}  {:<36} {:<20}",
        ctrl.id,
        ctrl.name,
        ctrl_type_name(ctrl.ctrl_type)
    );
    let compound = ctrl.flags & V4L2_CTRL_FLAG_HAS_PAYLOAD != 0 || !ctrl.dims.is_empty();
    if compound {
        write!(line, " elem_size {} elems {}", ctrl.elem_size, ctrl.elems)?;
        if !ctrl.dims.is_empty() {
            let dims: Vec<String> = ctrl.dims.iter().map(u32::to_string).collect();
            write!(line, " dims [{}]", dims.join("x"))?;
        }
    } else {
        write!(
            line,
            " min {} max {} step {} default {}",
            ctrl.minimum, ctrl.maximum, ctrl.step, ctrl.default_value
        )?;
    }
    let flags = flag_names(ctrl.flags, CTRL_FLAGS);
    if !flags.is_empty() {
        write!(line, " flags {}", flags.join(","))?;
    }
    writeln!(out, "{}", line.trim_end())?;
    for item in dev.query_menu(ctrl)? {
        match item {
            MenuItem::Name { index, name } => writeln!(out, "          {index}: {name}")?,
            MenuItem::Value { index, value } => writeln!(out, "          {index}: {value}")?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use daedalus_proto::formats;
    use daedalus_tools::v4l2::FrameSizes;

    #[test]
    fn frame_size_text() {
        let r = formats::FrameSizes {
            min_width: 16,
            max_width: 8192,
            step_width: 1,
            min_height: 16,
            max_height: 4352,
            step_height: 1,
        };
        assert_eq!(
            frame_sizes(&FrameSizes::Stepwise(r)),
            "16x16 - 8192x4352, step 1x1"
        );
        assert_eq!(
            frame_sizes(&FrameSizes::Discrete(vec![(320, 240), (640, 480)])),
            "320x240 640x480"
        );
        assert_eq!(
            frame_sizes(&FrameSizes::Unsupported),
            "no frame sizes enumerated"
        );
    }

    #[test]
    fn daemon_node_states() {
        assert_eq!(daemon_node(Path::new("/nonexistent/daedalus")), "absent");
        assert_eq!(
            daemon_node(Path::new("/")),
            "present but not a character device"
        );
        assert!(daemon_node(Path::new("/dev/null")).starts_with("present (character device, mode"));
    }

    #[test]
    fn caps_text() {
        assert_eq!(
            caps_line(V4L2_CAP_VIDEO_M2M_MPLANE | V4L2_CAP_STREAMING),
            "0x04004000 VIDEO_M2M_MPLANE STREAMING"
        );
    }
}
