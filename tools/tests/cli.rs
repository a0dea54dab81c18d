// SPDX-License-Identifier: GPL-2.0
//! The `daedalus` command line as a newcomer meets it, run as a program (no device needed):
//!
//! * `daedalus --help` lists each subcommand on one line; the details are in `<cmd> --help`;
//! * an input that is no stream `daedalus decode` reads is named as such, with the list of what
//!   it reads, before any device is looked for; an IVF file of another codec says which;
//! * a closed standard output ends the program quietly (no panic message);
//! * the VM suite on a clone without the shared vectors says it skips them, and how to point
//!   it at them, instead of guessing a machine's layout.
//!
//! The no-daemon message needs the module: tests/vm/cli.sh checks it in the VM.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn daedalus() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_daedalus"));
    // No log configuration from the caller's environment.
    cmd.env_remove("RUST_LOG");
    cmd
}

fn run(args: &[&str]) -> Output {
    daedalus()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run daedalus")
}

fn scratch(name: &str, data: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("daedalus-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let path = dir.join(name);
    std::fs::write(&path, data).expect("write scratch file");
    path
}

#[test]
fn top_level_help_is_one_line_per_subcommand() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).expect("UTF-8 help");
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    let names: Vec<&str> = commands
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        names,
        [
            "info",
            "devices",
            "status",
            "check-requests",
            "decode",
            "bench",
            "stress",
            "completions",
            "help"
        ],
        "{help}"
    );
    for line in &commands {
        // A line of its own: the name at the left margin, no continuation lines.
        assert!(
            line.starts_with("  ") && !line.starts_with("   "),
            "{line:?}"
        );
        assert!(line.len() <= 100, "too long for one line: {line:?}");
    }
    // The details are in the subcommand's own help.
    let out = run(&["decode", "--help"]);
    let help = String::from_utf8(out.stdout).expect("UTF-8 help");
    assert!(
        help.contains("Exits with 0 only if every frame decoded"),
        "{help}"
    );
}

#[test]
fn stress_usage_errors() {
    // No stream; a kill schedule without a restart command: usage errors (2), before any device.
    for args in [
        &["stress"][..],
        &["stress", "--kill-daemon-every", "10", "clip.ivf"][..],
        // The soak and the mutated streams are modes of their own.
        &["stress", "--soak", "100", "--mutate", "10", "clip.ivf"][..],
        &[
            "stress",
            "--soak",
            "100",
            "--kill-daemon-every",
            "10",
            "--restart-daemon",
            "x",
            "clip.ivf",
        ][..],
        &["stress", "--soak-warmup-rounds", "2", "clip.ivf"][..],
        &["stress", "--save-dir", "saved", "clip.ivf"][..],
        &["stress", "--soak", "0", "clip.ivf"][..],
    ] {
        let out = run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    }
    let out = run(&["stress", "--help"]);
    let help = String::from_utf8(out.stdout).expect("UTF-8 help");
    for text in [
        "--kill-daemon-every",
        "--restart-daemon",
        "--json",
        "--seed",
        "framemd5",
        "--soak",
        "--mutate",
        "--save-dir",
        "--prepare",
    ] {
        assert!(help.contains(text), "{text}: {help}");
    }
}

#[test]
fn stress_prepare_needs_no_device() {
    // A committed stream with its reference beside it: --prepare names it, without a device.
    let stream = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/vp9-8bit-resize.ivf"
    );
    let out = run(&["stress", "--prepare", "--cache", "/nonexistent", stream]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("vp9-8bit-resize.framemd5"), "{text}");
}

#[test]
fn unrecognised_input_is_named_before_any_device() {
    // Bytes that are neither a container nor an H.264 / AV1 bitstream.
    let noise: Vec<u8> = (0u32..4096)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let path = scratch("random.bin", &noise);
    let out = run(&["decode", path.to_str().expect("UTF-8 path")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("random.bin: not a recognised stream"), "{err}");
    for named in ["IVF", "WebM", "Annex B", "MP4", "H.264", "VP9", "AV1"] {
        assert!(err.contains(named), "{named} not listed: {err}");
    }
    assert!(!err.contains("Section 5) nor"), "AV1 guessed: {err}");
    assert!(
        !err.contains("video device"),
        "looked for a device first: {err}"
    );
}

#[test]
fn empty_input_and_other_codecs_say_so() {
    let path = scratch("empty.ivf", b"");
    let out = run(&["decode", path.to_str().expect("UTF-8 path")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the input is empty"), "{err}");

    // An IVF header for VP8.
    let mut ivf = Vec::new();
    ivf.extend_from_slice(b"DKIF");
    ivf.extend_from_slice(&0u16.to_le_bytes());
    ivf.extend_from_slice(&32u16.to_le_bytes());
    ivf.extend_from_slice(b"VP80");
    for field in [16u16, 16] {
        ivf.extend_from_slice(&field.to_le_bytes()); // width, height
    }
    for field in [30u32, 1, 0, 0] {
        ivf.extend_from_slice(&field.to_le_bytes()); // rate, scale, frames, unused
    }
    let path = scratch("vp8.ivf", &ivf);
    let out = run(&["decode", path.to_str().expect("UTF-8 path")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("holds vp8 video"), "{err}");
}

#[test]
fn closed_stdout_ends_quietly() {
    // A pipe whose reader is gone before daedalus writes: every write fails.
    let (reader, writer) = nix::unistd::pipe().expect("pipe");
    drop(reader);
    let out = daedalus()
        .args(["completions", "bash"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .expect("run daedalus");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.is_empty(), "printed on a closed pipe: {err}");
    // Ended by SIGPIPE, as `cat` or `ls` would be.
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?}", out.status);

    // With a reader, the script is there.
    let out = run(&["completions", "bash"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("_daedalus()"));
}

#[test]
fn vm_suite_without_vectors_says_how_to_get_them() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("bash")
        .arg(repo.join("scripts/test-vm"))
        .arg("--list")
        .env("DAEDALUS_VECTORS", repo.join("no-such-vectors"))
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/test-vm");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("skipped: no vectors (set DAEDALUS_VECTORS)"),
        "{err}"
    );
    assert!(!err.contains("/work/"), "a machine's path: {err}");
}
