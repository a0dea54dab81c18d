// SPDX-License-Identifier: GPL-2.0
//! A VP9 stream (IVF, or one packet), as the clients read untrusted ones: superframes split,
//! each frame's uncompressed and compressed headers parsed with the reference state carried
//! from frame to frame, and the V4L2 controls built from them and checked by the validators the
//! clients and the VA-API driver apply, without a panic.
#![no_main]

use daedalus_codecs::ivf;
use daedalus_codecs::uapi::v4l2_ctrl_vp9_compressed_hdr;
use daedalus_codecs::vp9::{self, header::HeaderParser, superframe, v4l2};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let packets: Vec<&[u8]> = match ivf::frames(data) {
        Ok((_, frames)) => frames.into_iter().map(|(_, f)| f).collect(),
        Err(_) => vec![data],
    };
    let mut parser = HeaderParser::new();
    for packet in packets {
        let Ok(frames) = superframe::split(packet) else {
            continue;
        };
        for &(offset, size) in frames.ranges() {
            let Some(frame) = packet.get(offset..offset + size) else {
                panic!(
                    "superframe frame {offset}+{size} outside a {}-byte packet",
                    packet.len()
                );
            };
            let mut compressed = v4l2_ctrl_vp9_compressed_hdr::default();
            let Ok(parsed) = vp9::parse_frame(&mut parser, frame, &mut compressed) else {
                continue;
            };
            if parsed.header.show_existing_frame {
                continue;
            }
            let control =
                v4l2::frame_control(&parsed.header, &parsed.compressed, Default::default());
            let _ = v4l2::validate_frame(&control);
            let _ = v4l2::validate_compressed_hdr(&compressed);
        }
    }
});
