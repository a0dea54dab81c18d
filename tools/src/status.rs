// SPDX-License-Identifier: GPL-2.0
//! `daedalus status`: what the device is doing, from the module's counters in sysfs
//! (`/sys/class/misc/daedalus/`, readable by every user; kmod/stats.rs defines them) and, for
//! the attached daemon, from `/proc/PID` (its name, command line and thread count; the daemon
//! has no other channel to the CLI).
//!
//! Device-wide attributes hold one value each; `contexts` holds one line per open context,
//! `ctx=ID codec=C submitted=N completed=N failed=N timed_out=N in_flight=N fps=F
//! latency_p50_us=N latency_p95_us=N latency_p99_us=N` (unknown keys are ignored, missing ones
//! are zero, so the format can grow). `submitted = completed + failed + in_flight`; `failed`
//! counts every job whose buffers came back in error, `timed_out` the timeouts among them.
//! `output_buffers`, `capture_buffers` and `buffer_bytes` count the videobuf2 buffers of the open
//! contexts with memory behind them (what the clients' queues hold; CMA on a board).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use serde::Serialize;

/// The module's sysfs directory (the `/dev/daedalus` misc device's).
pub const SYSFS_DIR: &str = "/sys/class/misc/daedalus";

/// How many recent decoded jobs the module's latency percentiles come from (kmod/stats.rs).
pub const LATENCY_WINDOW: usize = 64;

/// Job counters, frame rate and latency percentiles, device-wide or of one context.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Counters {
    /// Jobs made (one per request: a frame, or a slice for slice-based H.264).
    pub submitted: u64,
    /// Jobs the daemon decoded.
    pub completed: u64,
    /// Jobs whose buffers came back in error (any reason, timeouts included).
    pub failed: u64,
    /// Jobs failed because the daemon did not answer in time.
    pub timed_out: u64,
    /// Jobs queued or with the daemon.
    pub in_flight: u64,
    /// Decoded jobs per second over the last 2 s.
    pub fps: f64,
    /// Latency (job made to job ended) percentiles of the last decoded jobs, microseconds.
    pub latency_us: Latency,
}

/// Latency percentiles in microseconds (0 before the first decoded job).
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
}

/// The videobuf2 buffers of the open contexts with memory behind them.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Buffers {
    /// OUTPUT (bitstream) buffers.
    pub output: u64,
    /// CAPTURE (picture) buffers.
    pub capture: u64,
    /// Bytes of memory behind them.
    pub bytes: u64,
}

impl std::fmt::Display for Buffers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} OUTPUT + {} CAPTURE, {}",
            self.output,
            self.capture,
            mib(self.bytes)
        )
    }
}

/// One open decoding context (one open file of the video node).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContextStatus {
    /// The module's context id (the daemon's logs use it too).
    pub id: u32,
    /// The codec of its last job (`-` before it).
    pub codec: String,
    /// Its counters.
    #[serde(flatten)]
    pub counters: Counters,
}

/// The attached decode daemon.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Daemon {
    /// Whether one is attached to /dev/daedalus.
    pub attached: bool,
    /// Its process id (`null` when none is attached).
    pub pid: Option<u32>,
    /// Its process name, from /proc/PID/status.
    pub name: Option<String>,
    /// Its command line, from /proc/PID/cmdline.
    pub command: Option<String>,
    /// Its thread count, from /proc/PID/status.
    pub threads: Option<u32>,
    /// Daemons attached since the module was loaded.
    pub attaches: u64,
    /// Daemons gone since the module was loaded.
    pub detaches: u64,
}

/// Everything `daedalus status` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    /// The video node (`/dev/videoN`), if found.
    pub video: Option<String>,
    /// The decode daemon.
    pub daemon: Daemon,
    /// Open contexts.
    pub contexts_open: u64,
    /// Device-wide counters.
    pub jobs: Counters,
    /// Device-wide buffers (`null` from a module older than this tool, which does not count them).
    pub buffers: Option<Buffers>,
    /// Per-context counters (the module tracks the first 32 open contexts).
    pub contexts: Vec<ContextStatus>,
}

/// Why there is no status: the module is not loaded, or too old to have counters.
#[derive(Debug)]
pub enum Unavailable {
    /// No [`SYSFS_DIR`].
    NotLoaded,
    /// The directory has `daemon_attached` but no counters.
    NoCounters,
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unavailable::NotLoaded => write!(
                f,
                "the daedalus module is not loaded (no {SYSFS_DIR}): run `sudo modprobe daedalus`"
            ),
            Unavailable::NoCounters => write!(
                f,
                "the loaded daedalus module has no counters ({SYSFS_DIR}/jobs_submitted is \
                 missing): it is older than this tool, reload the installed one"
            ),
        }
    }
}

impl std::error::Error for Unavailable {}

fn read_attr(dir: &Path, name: &str) -> Result<String> {
    let path = dir.join(name);
    std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
}

fn read_num(dir: &Path, name: &str) -> Result<u64> {
    let text = read_attr(dir, name)?;
    text.trim()
        .parse()
        .with_context(|| format!("{}/{name} reads {text:?}", dir.display()))
}

fn read_f64(dir: &Path, name: &str) -> Result<f64> {
    let text = read_attr(dir, name)?;
    text.trim()
        .parse()
        .with_context(|| format!("{}/{name} reads {text:?}", dir.display()))
}

/// Parses the `contexts` attribute.
pub fn parse_contexts(text: &str) -> Result<Vec<ContextStatus>> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut id = None;
        let mut codec = "-".to_owned();
        let mut c = Counters::default();
        for pair in line.split_whitespace() {
            let Some((key, value)) = pair.split_once('=') else {
                bail!("contexts: {pair:?} is not key=value in {line:?}");
            };
            let num = || -> Result<u64> {
                value
                    .parse()
                    .with_context(|| format!("contexts: {key}={value:?} in {line:?}"))
            };
            match key {
                "ctx" => id = Some(u32::try_from(num()?)?),
                "codec" => codec = value.to_owned(),
                "submitted" => c.submitted = num()?,
                "completed" => c.completed = num()?,
                "failed" => c.failed = num()?,
                "timed_out" => c.timed_out = num()?,
                "in_flight" => c.in_flight = num()?,
                "fps" => {
                    c.fps = value
                        .parse()
                        .with_context(|| format!("contexts: fps={value:?} in {line:?}"))?
                }
                "latency_p50_us" => c.latency_us.p50 = num()?,
                "latency_p95_us" => c.latency_us.p95 = num()?,
                "latency_p99_us" => c.latency_us.p99 = num()?,
                // A newer module's field.
                _ => {}
            }
        }
        let Some(id) = id else {
            bail!("contexts: no ctx= in {line:?}");
        };
        out.push(ContextStatus {
            id,
            codec,
            counters: c,
        });
    }
    Ok(out)
}

/// `Name:` and `Threads:` of a /proc/PID/status text.
pub fn parse_proc_status(text: &str) -> (Option<String>, Option<u32>) {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_owned())
    };
    (
        field("Name:"),
        field("Threads:").and_then(|t| t.parse().ok()),
    )
}

/// Reads the module's counters from `dir` (normally [`SYSFS_DIR`]) and the daemon's
/// `/proc/PID` from `proc_dir` (normally `/proc`).
pub fn read(dir: &Path, proc_dir: &Path) -> Result<Status> {
    if !dir.exists() {
        return Err(Unavailable::NotLoaded.into());
    }
    if !dir.join("jobs_submitted").exists() {
        return Err(Unavailable::NoCounters.into());
    }
    let attached = read_num(dir, "daemon_attached")? == 1;
    let pid = u32::try_from(read_num(dir, "daemon_pid")?)?;
    let mut daemon = Daemon {
        attached,
        pid: (attached && pid != 0).then_some(pid),
        attaches: read_num(dir, "daemon_attaches")?,
        detaches: read_num(dir, "daemon_detaches")?,
        ..Daemon::default()
    };
    if let Some(pid) = daemon.pid {
        let proc_pid = proc_dir.join(pid.to_string());
        if let Ok(text) = std::fs::read_to_string(proc_pid.join("status")) {
            (daemon.name, daemon.threads) = parse_proc_status(&text);
        }
        if let Ok(raw) = std::fs::read(proc_pid.join("cmdline")) {
            let words: Vec<String> = raw
                .split(|&b| b == 0)
                .filter(|w| !w.is_empty())
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect();
            daemon.command = (!words.is_empty()).then(|| words.join(" "));
        }
    }
    let jobs = Counters {
        submitted: read_num(dir, "jobs_submitted")?,
        completed: read_num(dir, "jobs_completed")?,
        failed: read_num(dir, "jobs_failed")?,
        timed_out: read_num(dir, "jobs_timed_out")?,
        in_flight: read_num(dir, "jobs_in_flight")?,
        fps: read_f64(dir, "fps")?,
        latency_us: Latency {
            p50: read_num(dir, "latency_p50_us")?,
            p95: read_num(dir, "latency_p95_us")?,
            p99: read_num(dir, "latency_p99_us")?,
        },
    };
    let buffers = if dir.join("buffer_bytes").exists() {
        Some(Buffers {
            output: read_num(dir, "output_buffers")?,
            capture: read_num(dir, "capture_buffers")?,
            bytes: read_num(dir, "buffer_bytes")?,
        })
    } else {
        None
    };
    Ok(Status {
        video: None,
        daemon,
        contexts_open: read_num(dir, "contexts_open")?,
        jobs,
        buffers,
        contexts: parse_contexts(&read_attr(dir, "contexts")?)?,
    })
}

/// The video nodes whose sysfs name is `name` (`/sys/class/video4linux/videoN/name`), in order.
pub fn video_nodes_named(class_dir: &Path, name: &str) -> Vec<PathBuf> {
    let Ok(nodes) = daedalus_client::discover::device_nodes(class_dir, "video") else {
        return Vec::new();
    };
    nodes
        .into_iter()
        .filter(|d| std::fs::read_to_string(d.join("name")).is_ok_and(|n| n.trim() == name))
        .map(|d| Path::new("/dev").join(d.file_name().unwrap_or_default()))
        .collect()
}

fn ms(us: u64) -> String {
    format!("{:.1}", us as f64 / 1000.0)
}

/// Bytes as MiB with one decimal.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The text `daedalus status` prints.
pub fn text(s: &Status) -> String {
    let mut out = String::new();
    let d = &s.daemon;
    let _ = writeln!(
        out,
        "device: {}",
        s.video
            .as_deref()
            .unwrap_or("(no video node named daedalus)")
    );
    if d.attached {
        let mut what = String::new();
        if let Some(name) = &d.name {
            what.push_str(name);
        }
        if let Some(t) = d.threads {
            let _ = write!(
                what,
                "{}{}",
                if what.is_empty() { "" } else { ", " },
                plural(u64::from(t), "thread", "threads")
            );
        }
        let _ = write!(out, "daemon: attached, pid {}", d.pid.unwrap_or(0));
        if !what.is_empty() {
            let _ = write!(out, " ({what})");
        }
        out.push('\n');
        if let Some(cmd) = &d.command {
            let _ = writeln!(out, "  command: {cmd}");
        }
    } else {
        out.push_str("daemon: not attached (decode jobs fail at once): start daedalusd\n");
    }
    let _ = writeln!(
        out,
        "  {} attached, {} gone since the module was loaded",
        plural(d.attaches, "daemon", "daemons"),
        d.detaches
    );
    let j = &s.jobs;
    let _ = writeln!(
        out,
        "jobs: {} submitted, {} completed, {} failed ({} timed out), {} in flight",
        j.submitted, j.completed, j.failed, j.timed_out, j.in_flight
    );
    let _ = writeln!(
        out,
        "rate: {:.2} fps; latency p50 {} ms, p95 {} ms, p99 {} ms (last {} decoded jobs)",
        j.fps,
        ms(j.latency_us.p50),
        ms(j.latency_us.p95),
        ms(j.latency_us.p99),
        LATENCY_WINDOW
    );
    if let Some(b) = &s.buffers {
        let _ = writeln!(out, "buffers: {b}");
    }
    let _ = writeln!(out, "contexts: {} open", s.contexts_open);
    if !s.contexts.is_empty() {
        let _ = writeln!(
            out,
            "  {:>5}  {:<5} {:>9} {:>9} {:>6} {:>8} {:>9} {:>7}  latency p50/p95/p99 ms",
            "ctx", "codec", "submitted", "completed", "failed", "timedout", "in_flight", "fps",
        );
        for c in &s.contexts {
            let k = &c.counters;
            let _ = writeln!(
                out,
                "  {:>5}  {:<5} {:>9} {:>9} {:>6} {:>8} {:>9} {:>7.2}  {}/{}/{}",
                c.id,
                c.codec,
                k.submitted,
                k.completed,
                k.failed,
                k.timed_out,
                k.in_flight,
                k.fps,
                ms(k.latency_us.p50),
                ms(k.latency_us.p95),
                ms(k.latency_us.p99)
            );
        }
    }
    out
}

/// `daedalus status [--json] [--device N]`.
pub fn run(json: bool, device: Option<&str>) -> Result<()> {
    let class_dir = Path::new("/sys/class/video4linux");
    let video = match device {
        Some(d) => {
            let name = d.strip_prefix("/dev/").unwrap_or(d);
            let name = if name.bytes().all(|b| b.is_ascii_digit()) {
                format!("video{name}")
            } else {
                name.to_owned()
            };
            let sys_name = read_attr(&class_dir.join(&name), "name")
                .with_context(|| format!("no video device {name}"))?;
            if sys_name.trim() != daedalus_client::discover::DRIVER_NAME {
                bail!(
                    "/dev/{name} is {:?}, not a daedalus device (see `daedalus devices`)",
                    sys_name.trim()
                );
            }
            Some(format!("/dev/{name}"))
        }
        None => video_nodes_named(class_dir, daedalus_client::discover::DRIVER_NAME)
            .first()
            .map(|p| p.display().to_string()),
    };
    let mut status = read(Path::new(SYSFS_DIR), Path::new("/proc"))?;
    status.video = video;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", text(&status));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_lines() {
        let text = "ctx=3 codec=vp9 submitted=30 completed=28 failed=2 timed_out=1 in_flight=0 \
                    fps=24.50 latency_p50_us=1200 latency_p95_us=3400 latency_p99_us=5600\n\
                    ctx=7 codec=- submitted=0 completed=0 failed=0 timed_out=0 in_flight=0 \
                    fps=0.00 latency_p50_us=0 latency_p95_us=0 latency_p99_us=0 new_key=5\n";
        let c = parse_contexts(text).expect("parses");
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].id, 3);
        assert_eq!(c[0].codec, "vp9");
        assert_eq!(c[0].counters.submitted, 30);
        assert_eq!(c[0].counters.completed, 28);
        assert_eq!(c[0].counters.failed, 2);
        assert_eq!(c[0].counters.timed_out, 1);
        assert_eq!(c[0].counters.fps, 24.5);
        assert_eq!(
            c[0].counters.latency_us,
            Latency {
                p50: 1200,
                p95: 3400,
                p99: 5600
            }
        );
        assert_eq!(c[1].id, 7);
        assert_eq!(c[1].codec, "-");
        assert!(parse_contexts("").expect("empty").is_empty());
        assert!(parse_contexts("codec=vp9 submitted=1").is_err());
        assert!(parse_contexts("ctx=1 submitted=x").is_err());
        assert!(parse_contexts("ctx=1 garbage").is_err());
    }

    #[test]
    fn proc_status() {
        let text = "Name:\tdaedalusd\nUmask:\t0022\nState:\tS (sleeping)\nThreads:\t5\n";
        assert_eq!(
            parse_proc_status(text),
            (Some("daedalusd".to_owned()), Some(5))
        );
        assert_eq!(parse_proc_status(""), (None, None));
    }

    fn fake_sysfs(dir: &Path, attached: bool) {
        let files = [
            ("daemon_attached", if attached { "1" } else { "0" }),
            ("daemon_pid", if attached { "1" } else { "0" }),
            ("daemon_attaches", "2"),
            ("daemon_detaches", "1"),
            ("contexts_open", "1"),
            ("jobs_submitted", "40"),
            ("jobs_completed", "35"),
            ("jobs_failed", "4"),
            ("jobs_timed_out", "1"),
            ("jobs_in_flight", "1"),
            ("fps", "12.34"),
            ("latency_p50_us", "1500"),
            ("latency_p95_us", "2500"),
            ("latency_p99_us", "9000"),
            ("output_buffers", "4"),
            ("capture_buffers", "12"),
            ("buffer_bytes", "37748736"),
            (
                "contexts",
                "ctx=1 codec=av1 submitted=40 completed=35 failed=4 timed_out=1 in_flight=1 \
                 fps=12.34 latency_p50_us=1500 latency_p95_us=2500 latency_p99_us=9000\n",
            ),
        ];
        for (name, value) in files {
            std::fs::write(dir.join(name), format!("{value}\n")).expect("write");
        }
    }

    #[test]
    fn read_sysfs_and_print() {
        let tmp = std::env::temp_dir().join(format!("daedalus-status-{}", std::process::id()));
        let sys = tmp.join("misc");
        let proc_dir = tmp.join("proc");
        std::fs::create_dir_all(&sys).expect("mkdir");
        std::fs::create_dir_all(proc_dir.join("1")).expect("mkdir");
        std::fs::write(proc_dir.join("1/status"), "Name:\tdaedalusd\nThreads:\t3\n")
            .expect("write");
        std::fs::write(proc_dir.join("1/cmdline"), b"daedalusd\0--threads\x002\0").expect("w");

        // Not loaded, then too old (only daemon_attached).
        let err = read(&tmp.join("absent"), &proc_dir).expect_err("absent");
        assert!(matches!(
            err.downcast_ref::<Unavailable>(),
            Some(Unavailable::NotLoaded)
        ));
        std::fs::write(sys.join("daemon_attached"), "0\n").expect("write");
        let err = read(&sys, &proc_dir).expect_err("old");
        assert!(err.to_string().contains("no counters"), "{err}");

        fake_sysfs(&sys, true);
        let s = read(&sys, &proc_dir).expect("reads");
        assert!(s.daemon.attached);
        assert_eq!(s.daemon.pid, Some(1));
        assert_eq!(s.daemon.name.as_deref(), Some("daedalusd"));
        assert_eq!(s.daemon.threads, Some(3));
        assert_eq!(s.daemon.command.as_deref(), Some("daedalusd --threads 2"));
        assert_eq!((s.daemon.attaches, s.daemon.detaches), (2, 1));
        assert_eq!(s.jobs.submitted, 40);
        assert_eq!(
            s.jobs.submitted,
            s.jobs.completed + s.jobs.failed + s.jobs.in_flight
        );
        assert_eq!(s.jobs.fps, 12.34);
        assert_eq!(s.contexts.len(), 1);
        assert_eq!(s.contexts[0].codec, "av1");
        let t = text(&s);
        assert!(
            t.contains("daemon: attached, pid 1 (daedalusd, 3 threads)"),
            "{t}"
        );
        assert!(
            t.contains("jobs: 40 submitted, 35 completed, 4 failed (1 timed out), 1 in flight"),
            "{t}"
        );
        assert!(t.contains("p50 1.5 ms, p95 2.5 ms, p99 9.0 ms"), "{t}");
        assert!(
            t.contains("buffers: 4 OUTPUT + 12 CAPTURE, 36.0 MiB"),
            "{t}"
        );
        let v = serde_json::to_value(&s).expect("json");
        assert_eq!(v["daemon"]["attached"], true);
        assert_eq!(v["jobs"]["completed"], 35);
        assert_eq!(v["jobs"]["latency_us"]["p99"], 9000);
        assert_eq!(v["contexts"][0]["id"], 1);
        assert_eq!(v["contexts"][0]["submitted"], 40);
        assert_eq!(v["buffers"]["capture"], 12);

        fake_sysfs(&sys, false);
        let s = read(&sys, &proc_dir).expect("reads");
        assert_eq!(s.daemon.pid, None);
        assert!(text(&s).contains("daemon: not attached"));
        std::fs::remove_dir_all(&tmp).expect("cleanup");
    }
}
