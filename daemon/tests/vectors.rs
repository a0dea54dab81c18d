// SPDX-License-Identifier: GPL-2.0
//! Byte-exact decoding of real VP9 streams through the daemon's core: every displayed frame's
//! MD5 (planar, cropped) must equal FFmpeg's reference `framemd5`.
//!
//! The committed tiny vectors always run; the shared vectors (`$DAEDALUS_VECTORS`, else
//! `shared/vectors` beside the repository) run when present and are skipped with a message
//! otherwise.

mod common;

use std::path::Path;

use common::*;
use daedalus_daemon::{Context, DecoderConfig};

const THREADS: DecoderConfig = DecoderConfig {
    threads: 2,
    dump_dir: None,
};

/// Decodes `ivf` with each client configuration and checks every displayed frame against
/// `framemd5`.
fn check(ivf: &Path, framemd5: &Path, configs: &[ClientConfig]) {
    let name = ivf.file_name().unwrap().to_string_lossy().to_string();
    let data = std::fs::read(ivf).unwrap_or_else(|e| panic!("{}: {e}", ivf.display()));
    let frames = ivf_frames(&data);
    let want = read_framemd5(framemd5);
    for cfg in configs {
        let mut ctx = Context::new(cfg.ctx_id, THREADS);
        let mut client = Client::new(*cfg);
        run_sync(&mut ctx, &mut client, &frames);
        let (ok, total) = compare(&name, &client.displayed, &want);
        let s = ctx.stats();
        eprintln!(
            "{name} [{}]: {ok}/{total} displayed frames byte-exact ({} displayed, {} jobs, \
             {} hidden, {} zero-copy, {} copied)",
            describe(cfg),
            client.displayed.len(),
            client.jobs,
            s.hidden,
            s.zero_copy,
            s.copied
        );
        assert_eq!(
            client.displayed.len(),
            total,
            "{name}: displayed frame count"
        );
        assert_eq!(ok, total, "{name}: mismatching frames");
        assert_eq!(s.ok, client.jobs, "{name}: every job succeeds");
        if !cfg.show_existing_as_jobs {
            assert_eq!(s.hidden, client.hidden, "{name}: hidden frames");
        }
        if cfg.tight_output {
            assert_eq!(s.zero_copy, 0);
        } else {
            assert_eq!(s.copied, 0);
        }
    }
}

fn describe(c: &ClientConfig) -> String {
    let mut s = match c.capture {
        CaptureSizing::PerFrame => "capture per frame".to_string(),
        CaptureSizing::Fixed(w, h) => format!("capture {w}x{h}"),
    };
    if c.tight_output {
        s += ", tight output (copy)";
    }
    if c.data_offset != 0 {
        s += &format!(", data_offset {}", c.data_offset);
    }
    if c.show_existing_as_jobs {
        s += ", show_existing as jobs";
    }
    s
}

/// The configurations every stream runs with: zero-copy and per-frame CAPTURE buffers; copy
/// path with a data offset and CAPTURE buffers of the largest size.
fn configs(frames_of: &Path) -> Vec<ClientConfig> {
    let data = std::fs::read(frames_of).unwrap();
    let (w, h) = max_size(&ivf_frames(&data));
    vec![
        ClientConfig::new(1),
        ClientConfig {
            tight_output: true,
            data_offset: 13,
            capture: CaptureSizing::Fixed(w, h),
            ..ClientConfig::new(2)
        },
    ]
}

fn shared(rel: &str) -> Option<std::path::PathBuf> {
    match vectors_dir() {
        Some(d) => Some(d.join(rel)),
        None => {
            eprintln!("{rel}: {}", daedalus_codecs::vectors::SKIPPED);
            None
        }
    }
}

#[test]
fn tiny_8bit_with_hidden_arfs() {
    let ivf = data_dir().join("tiny-96x64-8bit-arf.ivf");
    let md5 = data_dir().join("tiny-96x64-8bit-arf.ivf.ffmpeg-yuv420p.framemd5");
    let mut cfgs = configs(&ivf);
    // A CAPTURE format larger than the frames.
    cfgs.push(ClientConfig {
        capture: CaptureSizing::Fixed(160, 90),
        capture_buffers: 2,
        output_buffers: 1,
        ..ClientConfig::new(3)
    });
    check(&ivf, &md5, &cfgs);
}

#[test]
fn tiny_10bit_odd_size_with_hidden_arfs() {
    let ivf = data_dir().join("tiny-97x61-10bit-arf.ivf");
    let md5 = data_dir().join("tiny-97x61-10bit-arf.ivf.ffmpeg-yuv420p10le.framemd5");
    check(&ivf, &md5, &configs(&ivf));
}

#[test]
fn show_existing_frame_vectors() {
    for name in [
        "vp90-2-10-show-existing-frame.vp9.ivf",
        "vp90-2-10-show-existing-frame2.vp9.ivf",
    ] {
        let Some(ivf) = shared(&format!("vp9/cros-codecs/{name}")) else {
            return;
        };
        let md5 = ivf.with_file_name(format!("{name}.ffmpeg-yuv420p.framemd5"));
        let mut cfgs = configs(&ivf);
        // Clients that send show_existing_frame frames as jobs get the picture from FFmpeg.
        cfgs.push(ClientConfig {
            show_existing_as_jobs: true,
            ..ClientConfig::new(3)
        });
        check(&ivf, &md5, &cfgs);
    }
}

/// Checks the 8-bit shared vector `vp9/cros-codecs/NAME` in every client configuration.
fn check_shared_8bit(name: &str) {
    let Some(ivf) = shared(&format!("vp9/cros-codecs/{name}")) else {
        return;
    };
    let md5 = ivf.with_file_name(format!("{name}.ffmpeg-yuv420p.framemd5"));
    check(&ivf, &md5, &configs(&ivf));
}

#[test]
fn hidden_arf_superframes() {
    check_shared_8bit("test-25fps.vp9");
}

#[test]
fn resolution_changes() {
    check_shared_8bit("resolution_change_500frames-vp9.ivf");
}

#[test]
fn ten_bit_synthetic_vectors() {
    let Some(dir) = shared("vp9/synthetic-libvpx") else {
        return;
    };
    let mut ivfs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ivf"))
        .collect();
    ivfs.sort();
    assert!(!ivfs.is_empty());
    for ivf in ivfs {
        let name = ivf.file_name().unwrap().to_string_lossy().to_string();
        let md5 = ivf.with_file_name(format!("{name}.ffmpeg-yuv420p10le.framemd5"));
        check(&ivf, &md5, &configs(&ivf));
    }
}
