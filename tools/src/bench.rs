// SPDX-License-Identifier: GPL-2.0
//! `daedalus bench`: how fast a VP9, H.264 or AV1 stream decodes through the device, compared
//! with plain FFmpeg decoding the same file on the same machine in the same run.
//!
//! * Device: the stream is decoded by [`decode::run_observed`] (the `daedalus decode` clients,
//!   writing no pictures), which reports when each request is queued and completed. The decoding
//!   is done by `daedalusd` with its own thread count (its `--threads`, default: the number of
//!   CPUs).
//! * FFmpeg baseline: the system `ffmpeg` binary, `ffmpeg -benchmark -threads N -thread_type
//!   slice -i INPUT -f null -`: the same thread count, and slice threading, because the device
//!   path decodes one picture per request, so daedalusd's FFmpeg can only use slice (tile)
//!   threads; for AV1 (libdav1d, which has no FFmpeg thread types) `-flags low_delay`, which
//!   is what daedalusd opens libdav1d with (one frame in flight, tile and post-filter threads).
//!   FFmpeg's default (frame) threading is run too, as an informative figure. Its wall
//!   time is the `rtime` of the `bench:` line `-benchmark` prints (the transcoding loop: input
//!   probing excluded), its frame count that of the last `frame=` statistics line.
//! * VA-API (`--vaapi NODE`): the same stream through the daedalus VA-API driver as players
//!   decode it, `ffmpeg -benchmark -hwaccel vaapi -hwaccel_device NODE -hwaccel_output_format
//!   vaapi -i INPUT -vf hwmap=mode=read+direct,format=nv12 -f null -` (`p010le` for a 10-bit
//!   stream, whose depth the check tells, or a one-frame device run with `--no-verify`). Not
//!   run for H.264 10-bit (High 10): FFmpeg's H.264 decoder offers VA-API only for 8-bit
//!   pictures and decodes High 10 in software, so there is nothing of the driver to time
//!   ([`vaapi_refusal`]); the report says so. The pictures stay
//!   in VA surfaces (a fallback to software decoding fails) and each is mapped (vaDeriveImage:
//!   waited for, not copied), so every picture is decoded inside the timed loop. Timed in every
//!   round next to the device run (right after it, or right before it in the rounds where FFmpeg
//!   goes first), so that a change of the machine's load between rounds hits both: its ratio to
//!   the device is what the VA layer costs.
//! * Warm-up: the first `warmup` frames are decoded but not timed. On the device, the timed
//!   window starts when the last warm-up request completes; for FFmpeg, whose run cannot be
//!   split, a second run decodes only the warm-up frames and its time is subtracted.
//! * Latency of a device frame: from just before its request is queued to the end of the wait
//!   for its completion; with several requests in flight it includes the time spent queued
//!   behind the others. The *service time* excludes that: from the later of its queueing and the
//!   previous completion to its completion (one context's jobs are decoded in order).
//! * Streams (`--streams N`, N > 1): in every round, after the single-stream device run, N
//!   clients decode the stream at once (each its own context, threads of this process). Their
//!   aggregate rate is every client's timed frames over the window from the first client's start
//!   of timing to the last client's last completion; `scaling` is that rate over the
//!   single-stream one (N means the contexts decode in parallel without slowing each other).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::codec::Codec;
use crate::decode::{self, Input};
use crate::engine::{Observer, Outputs, Shown, Summary};
use crate::progress::Progress;
use crate::stress::streams::RefFrame;
use daedalus_proto::formats::BitDepth;

/// The value below which a fraction `q` (0..=1) of `sorted` (ascending) lies, by the
/// nearest-rank method: the `ceil(q * n)`-th smallest value (the smallest one for `q = 0`).
/// `None` for an empty slice.
pub fn percentile<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * n as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, n) - 1])
}

/// What `ffmpeg -benchmark` reports about one run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FfmpegRun {
    /// Frames output (the last `frame=` statistics line).
    pub frames: u64,
    /// Wall time of the transcoding loop (`rtime`), in seconds.
    pub rtime: f64,
    /// User CPU time (`utime`), in seconds.
    pub utime: f64,
    /// System CPU time (`stime`), in seconds.
    pub stime: f64,
}

/// Why FFmpeg's output cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FfmpegOutputError {
    /// No `bench: utime=... stime=... rtime=...` line.
    #[error("no 'bench: utime=... rtime=...' line (was -benchmark given?)")]
    NoBenchLine,
    /// The `bench:` line lacks a field or has an unreadable one.
    #[error("unreadable {0} in the 'bench:' line")]
    BadField(&'static str),
    /// No `frame=` statistics line.
    #[error("no 'frame=' statistics line (was -nostats given?)")]
    NoFrameCount,
}

/// Reads the figures of one run from the standard error of `ffmpeg -benchmark` (statistics
/// lines end with `\r` while running, the last one with `\n`).
pub fn parse_ffmpeg_benchmark(stderr: &str) -> Result<FfmpegRun, FfmpegOutputError> {
    let segments = || stderr.split(['\r', '\n']).map(str::trim);
    let bench = segments()
        .filter_map(|s| s.strip_prefix("bench:"))
        .find(|s| s.contains("rtime="))
        .ok_or(FfmpegOutputError::NoBenchLine)?;
    let seconds = |key: &'static str| -> Result<f64, FfmpegOutputError> {
        bench
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.strip_suffix('s').unwrap_or(v))
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or(FfmpegOutputError::BadField(key))
    };
    let (utime, stime, rtime) = (seconds("utime")?, seconds("stime")?, seconds("rtime")?);
    // "frame=  120 fps=..." (the count may be padded after the '=').
    let frames = segments()
        .rev()
        .filter_map(|s| s.strip_prefix("frame="))
        .find_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .ok_or(FfmpegOutputError::NoFrameCount)?;
    Ok(FfmpegRun {
        frames,
        rtime,
        utime,
        stime,
    })
}

/// FFmpeg's threading for a baseline run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threading {
    /// `-thread_type slice`: what the device path can use.
    Slice,
    /// FFmpeg's default (`slice+frame`, i.e. frame threading for VP9).
    Default,
}

impl fmt::Display for Threading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Threading::Slice => "slice threading",
            Threading::Default => "default (frame) threading",
        })
    }
}

/// The arguments of one FFmpeg baseline run: decode `frames` (all if `None`) of `input` with
/// `threads` threads, to the null muxer.
pub fn ffmpeg_args(
    input: &Path,
    codec: Codec,
    threads: usize,
    threading: Threading,
    frames: Option<u64>,
) -> Vec<String> {
    let mut args: Vec<String> = ["-nostdin", "-hide_banner", "-benchmark", "-threads"]
        .map(String::from)
        .into();
    args.push(threads.to_string());
    if codec == Codec::Av1 {
        // The decoder daedalusd uses (FFmpeg 5.1 prefers it anyway; explicit all the same).
        args.extend(["-c:v".into(), "libdav1d".into()]);
    }
    if threading == Threading::Slice {
        if codec == Codec::Av1 {
            args.extend(["-flags".into(), "low_delay".into()]);
        } else {
            args.extend(["-thread_type".into(), "slice".into()]);
        }
    }
    args.extend(["-i".into(), input.to_string_lossy().into_owned()]);
    if let Some(n) = frames {
        args.extend(["-frames:v".into(), n.to_string()]);
    }
    args.extend(["-an", "-f", "null", "-"].map(String::from));
    args
}

/// The arguments of one VA-API run: decode `frames` (all if `None`) of `input` through the VA
/// driver of the DRM render node `device`, mapping each picture (module doc).
pub fn vaapi_args(
    input: &Path,
    device: &Path,
    frames: Option<u64>,
    depth: BitDepth,
) -> Vec<String> {
    let mut args: Vec<String> = [
        "-nostdin",
        "-hide_banner",
        "-benchmark",
        "-hwaccel",
        "vaapi",
        "-hwaccel_device",
    ]
    .map(String::from)
    .into();
    args.push(device.to_string_lossy().into_owned());
    args.extend(["-hwaccel_output_format", "vaapi", "-i"].map(String::from));
    args.push(input.to_string_lossy().into_owned());
    if let Some(n) = frames {
        args.extend(["-frames:v".into(), n.to_string()]);
    }
    // A direct map gives the surface's own format: naming both would let the filter graph pick
    // NV12 for a P010 surface, which FFmpeg's VA-API mapping refuses (EINVAL).
    let map = match depth {
        BitDepth::Eight => "hwmap=mode=read+direct,format=nv12",
        BitDepth::Ten => "hwmap=mode=read+direct,format=p010le",
    };
    args.extend(["-an", "-vf", map, "-f", "null", "-"].map(String::from));
    args
}

/// Runs `ffmpeg` with `args` and reads its figures.
pub fn run_ffmpeg(ffmpeg: &Path, args: &[String]) -> Result<FfmpegRun> {
    let output = Command::new(ffmpeg)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                anyhow::anyhow!(
                    "{} not found (install FFmpeg, or pass --ffmpeg PATH)",
                    ffmpeg.display()
                )
            } else {
                anyhow::Error::new(e).context(format!("cannot run {}", ffmpeg.display()))
            }
        })?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "`{} {}` failed ({}):\n{}",
            ffmpeg.display(),
            args.join(" "),
            output.status,
            tail.join("\n")
        );
    }
    parse_ffmpeg_benchmark(&stderr).with_context(|| {
        format!(
            "cannot read the output of `{} {}`",
            ffmpeg.display(),
            args.join(" ")
        )
    })
}

/// An FFmpeg baseline: the timed frames and their rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FfmpegFigures {
    /// Frames output by the whole run.
    pub frames: u64,
    /// Frames timed (after the warm-up).
    pub timed_frames: u64,
    /// Wall time of the timed frames, in seconds.
    pub seconds: f64,
    /// CPU time (user + system) of the timed frames, in seconds.
    pub cpu_seconds: f64,
}

impl FfmpegFigures {
    /// The figures of a full run, minus those of a run of the warm-up frames only.
    pub fn new(full: &FfmpegRun, warmup: Option<&FfmpegRun>) -> FfmpegFigures {
        let (frames, rtime, cpu) =
            warmup.map_or((0, 0.0, 0.0), |w| (w.frames, w.rtime, w.utime + w.stime));
        FfmpegFigures {
            frames: full.frames,
            timed_frames: full.frames.saturating_sub(frames),
            seconds: full.rtime - rtime,
            cpu_seconds: full.utime + full.stime - cpu,
        }
    }

    /// Frames per second; `None` if the timed part took no measurable time.
    pub fn fps(&self) -> Option<f64> {
        (self.seconds > 0.0 && self.timed_frames > 0)
            .then(|| self.timed_frames as f64 / self.seconds)
    }
}

/// When one device request was queued and completed, relative to a common origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Just before `MEDIA_REQUEST_IOC_QUEUE`.
    pub queued: Duration,
    /// When waiting for its completion returned.
    pub completed: Duration,
}

/// The device's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceFigures {
    /// Requests completed.
    pub frames: u64,
    /// Requests timed (after the warm-up).
    pub timed_frames: u64,
    /// Wall time of the timed requests, in seconds.
    pub seconds: f64,
    /// Latency (queued to completed) of the timed requests, sorted.
    pub latency: Vec<Duration>,
    /// Service time of the timed requests, sorted.
    pub service: Vec<Duration>,
}

impl DeviceFigures {
    /// Figures of `samples` (in completion order, which is queueing order) without the first
    /// `warmup`; an error if nothing is left to time.
    pub fn new(samples: &[Sample], warmup: usize) -> Result<DeviceFigures> {
        if samples.len() <= warmup {
            bail!(
                "the device decoded {} frame(s): nothing left to time after {warmup} warm-up \
                 frame(s) (use a longer stream or a smaller --warmup)",
                samples.len()
            );
        }
        let (start, end) = timed_window(samples, warmup);
        let mut latency = Vec::with_capacity(samples.len() - warmup);
        let mut service = Vec::with_capacity(samples.len() - warmup);
        for (i, s) in samples.iter().enumerate().skip(warmup) {
            latency.push(s.completed.saturating_sub(s.queued));
            let begin = match i {
                0 => s.queued,
                _ => s.queued.max(samples[i - 1].completed),
            };
            service.push(s.completed.saturating_sub(begin));
        }
        latency.sort_unstable();
        service.sort_unstable();
        Ok(DeviceFigures {
            frames: samples.len() as u64,
            timed_frames: (samples.len() - warmup) as u64,
            seconds: end.saturating_sub(start).as_secs_f64(),
            latency,
            service,
        })
    }

    /// Frames per second; `None` if the timed part took no measurable time.
    pub fn fps(&self) -> Option<f64> {
        (self.seconds > 0.0).then(|| self.timed_frames as f64 / self.seconds)
    }
}

/// The timed window of a device run's `samples` (more than `warmup`): from the queueing of the
/// first request (no warm-up) or the completion of the last warm-up one, to the last completion.
fn timed_window(samples: &[Sample], warmup: usize) -> (Duration, Duration) {
    let start = match warmup {
        0 => samples.first().map_or(Duration::ZERO, |s| s.queued),
        w => samples.get(w - 1).map_or(Duration::ZERO, |s| s.completed),
    };
    let end = samples.iter().map(|s| s.completed).max().unwrap_or(start);
    (start, end.max(start))
}

/// The figures of several clients decoding at once (`--streams`), their samples on one clock.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamsFigures {
    /// How many clients decoded at once.
    pub streams: usize,
    /// Requests timed (after each client's warm-up), all clients together.
    pub timed_frames: u64,
    /// From the first client's start of timing to the last client's last completion, in
    /// seconds.
    pub seconds: f64,
}

impl StreamsFigures {
    /// Figures of the clients' `runs` (each one's samples, as for [`DeviceFigures::new`]), each
    /// without its first `warmup`; an error if a client has nothing left to time.
    pub fn new(runs: &[Vec<Sample>], warmup: usize) -> Result<StreamsFigures> {
        let mut window: Option<(Duration, Duration)> = None;
        let mut timed_frames = 0u64;
        for (i, samples) in runs.iter().enumerate() {
            if samples.len() <= warmup {
                bail!(
                    "stream {} of {} decoded {} frame(s): nothing left to time after {warmup} \
                     warm-up frame(s)",
                    i + 1,
                    runs.len(),
                    samples.len()
                );
            }
            let (start, end) = timed_window(samples, warmup);
            window = Some(window.map_or((start, end), |(s, e)| (s.min(start), e.max(end))));
            timed_frames += (samples.len() - warmup) as u64;
        }
        let (start, end) = window.context("no stream")?;
        Ok(StreamsFigures {
            streams: runs.len(),
            timed_frames,
            seconds: end.saturating_sub(start).as_secs_f64(),
        })
    }

    /// Frames per second of all the clients together; `None` if no measurable time passed.
    pub fn fps(&self) -> Option<f64> {
        (self.seconds > 0.0).then(|| self.timed_frames as f64 / self.seconds)
    }
}

/// Where the CPU time of a device run went, in seconds: the decode daemon's (all its threads,
/// `/proc/PID/stat`), this client's (`/proc/self/stat`: the engine, and with `--streams` every
/// client thread; FFmpeg baselines are other processes and not running then), the rest of the
/// machine's busy time (`/proc/stat`'s busy time less the two: the kernel's threads and
/// interrupts, any other process) and the CPUs' idle time. Together they are the timed window's
/// wall time times the CPUs: from the end of the warm-up (its last completion) to the end of
/// the run (the device closed), as the device's rate is timed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuUse {
    /// The decode daemon's user + system time (`None`: its pid is unknown, e.g. another driver).
    pub daemon: Option<f64>,
    /// This process's user + system time.
    pub client: f64,
    /// The rest of the machine's busy time (user, nice, system, irq, softirq, steal).
    pub other: f64,
    /// Idle time of all CPUs (idle + iowait).
    pub idle: f64,
    /// The daemon's minor page faults.
    pub daemon_faults: Option<u64>,
    /// Frames timed in that window (to give the figures per frame).
    pub frames: u64,
}

impl CpuUse {
    /// `total` (of the window) per timed frame.
    fn per_frame(&self, total: f64) -> Option<f64> {
        (self.frames > 0).then(|| total / self.frames as f64)
    }
}

/// Cumulative CPU times at one instant, in clock ticks (see [`CpuUse`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CpuSample {
    busy: u64,
    idle: u64,
    daemon: Option<ProcessTimes>,
    client: ProcessTimes,
}

impl CpuSample {
    /// Now, with the daemon `daemon_pid`'s times if it is given and readable; `None` if
    /// `/proc` cannot be read.
    fn take(daemon_pid: Option<u32>) -> Option<CpuSample> {
        let (busy, idle) = parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?)?;
        let times = |pid: &str| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|t| parse_pid_stat(&t))
        };
        Some(CpuSample {
            busy,
            idle,
            daemon: daemon_pid.and_then(|p| times(&p.to_string())),
            client: times("self")?,
        })
    }

    /// What was spent from `self` to `end` over `frames` frames.
    fn until(&self, end: &CpuSample, frames: u64) -> CpuUse {
        let hz = clock_ticks_per_second();
        let secs = |a: u64, b: u64| b.saturating_sub(a) as f64 / hz;
        let daemon = self.daemon.zip(end.daemon);
        let daemon_cpu = daemon.map(|(a, b)| secs(a.ticks, b.ticks));
        let client = secs(self.client.ticks, end.client.ticks);
        CpuUse {
            daemon: daemon_cpu,
            client,
            other: (secs(self.busy, end.busy) - client - daemon_cpu.unwrap_or(0.0)).max(0.0),
            idle: secs(self.idle, end.idle),
            daemon_faults: daemon.map(|(a, b)| b.minor_faults.saturating_sub(a.minor_faults)),
            frames,
        }
    }
}

/// The clock ticks per second of `/proc`'s CPU times (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
fn clock_ticks_per_second() -> f64 {
    use nix::unistd::{sysconf, SysconfVar};
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(hz)) if hz > 0 => hz as f64,
        _ => 100.0,
    }
}

/// The busy and idle ticks of all CPUs from `/proc/stat`'s `cpu` line (`user nice system idle
/// iowait irq softirq steal ...`; guest time is already in user).
fn parse_proc_stat(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    if v.len() < 4 {
        return None;
    }
    Some((at(0) + at(1) + at(2) + at(5) + at(6) + at(7), at(3) + at(4)))
}

/// utime + stime (fields 14 and 15) and the minor page faults (field 10) of a
/// `/proc/PID/stat` line; the command name (field 2, in parentheses) may hold spaces and
/// parentheses, so the fields are counted after its last `)`.
fn parse_pid_stat(text: &str) -> Option<ProcessTimes> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().take(13).collect();
    let field = |i: usize| -> Option<u64> { fields.get(i)?.parse().ok() };
    Some(ProcessTimes {
        ticks: field(11)? + field(12)?,
        minor_faults: field(7)?,
    })
}

/// What [`parse_pid_stat`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ProcessTimes {
    /// User + system time, in clock ticks.
    ticks: u64,
    /// Minor page faults (each a trap and a page's set-up; dear under TCG).
    minor_faults: u64,
}

/// The decode daemon's pid, if the daedalus module says it has one attached.
fn daemon_pid() -> Option<u32> {
    crate::status::read(Path::new(crate::status::SYSFS_DIR), Path::new("/proc"))
        .ok()?
        .daemon
        .pid
}

/// Records the requests of a device run (and shows progress); checks its pictures if given
/// a reference.
struct Recorder<'r> {
    origin: Instant,
    queued: Vec<(u64, Instant)>,
    completed: Vec<(u64, Instant)>,
    progress: Progress,
    check: Option<Checker<'r>>,
    cpu: Option<CpuWindow>,
    /// Read the first displayed picture for its bit depth ([`Recorder::depth`]).
    probe_depth: bool,
    /// The bit depth of the first picture read.
    depth: Option<BitDepth>,
}

/// The bit depth of a planar 4:2:0 picture, from its size: one byte a sample (`yuv420p`) or
/// two (`yuv420p10le`).
fn planar_depth(pic: &Shown<'_>) -> Option<BitDepth> {
    let (w, h) = (pic.width as usize, pic.height as usize);
    let samples = w * h + 2 * (w.div_ceil(2) * h.div_ceil(2));
    match pic.planar.len() {
        0 => None,
        n if n == samples => Some(BitDepth::Eight),
        n if n == 2 * samples => Some(BitDepth::Ten),
        _ => None,
    }
}

/// The CPU times of a device run's timed window: sampled when its warm-up ends (the
/// `warmup`-th completion, or before the run without a warm-up); the caller samples the end.
struct CpuWindow {
    /// The decode daemon's.
    pid: Option<u32>,
    warmup: usize,
    start: Option<CpuSample>,
}

/// Checks every displayed picture of a run against FFmpeg's, in display order (the bench's
/// streams are decoded from their start, without seeks: display order is FFmpeg's output
/// order).
struct Checker<'r> {
    /// FFmpeg's pictures (`ffmpeg -f framemd5`).
    reference: &'r [RefFrame],
    /// Pictures displayed so far.
    shown: usize,
    /// What was wrong, for the first few wrong pictures.
    failures: Vec<String>,
    /// Wrong pictures in all.
    wrong: u64,
}

impl Checker<'_> {
    fn picture(&mut self, pts: Option<i64>, picture: Option<Shown<'_>>, error: bool) {
        let n = self.shown;
        self.shown += 1;
        let failure = match (self.reference.get(n), picture) {
            _ if error => format!("displayed picture {n} (pts {pts:?}) is a decode error"),
            (None, _) => format!(
                "displayed picture {n} (pts {pts:?}) is past FFmpeg's {} pictures",
                self.reference.len()
            ),
            (Some(_), None) => format!("displayed picture {n} (pts {pts:?}) was not read"),
            (Some(want), Some(pic)) => {
                let got = crate::picture::md5_hex(pic.planar).to_string();
                if got == want.md5 && pic.planar.len() == want.size {
                    return;
                }
                format!(
                    "displayed picture {n} ({}x{}, pts {pts:?}): MD5 {got} ({} bytes), FFmpeg's \
                     {} ({} bytes)",
                    pic.width,
                    pic.height,
                    pic.planar.len(),
                    want.md5,
                    want.size
                )
            }
        };
        self.wrong += 1;
        if self.failures.len() < 3 {
            self.failures.push(failure);
        }
    }

    /// The pictures identical to FFmpeg's, or what was wrong; `whole`: the run decoded the
    /// whole stream, so it must have shown every one of FFmpeg's pictures.
    fn result(&self, whole: bool) -> Result<u64> {
        if self.wrong > 0 {
            bail!(
                "{} of {} displayed pictures differ from FFmpeg's: {}",
                self.wrong,
                self.shown,
                self.failures.join("; ")
            );
        }
        if self.shown == 0 || (whole && self.shown != self.reference.len()) {
            bail!(
                "the device displayed {} pictures, FFmpeg output {}",
                self.shown,
                self.reference.len()
            );
        }
        // Every picture shown was FFmpeg's.
        Ok(self.shown as u64)
    }
}

impl Observer for Recorder<'_> {
    fn progress(&mut self, s: &Summary) {
        self.progress.update(s.decoded + s.decode_errors, || {
            format!("{:.1} fps", s.fps())
        });
    }

    fn queued(&mut self, id: u64, at: Instant) {
        self.queued.push((id, at));
    }

    fn completed(&mut self, id: u64, at: Instant, _error: bool) {
        self.completed.push((id, at));
        if let Some(w) = &mut self.cpu {
            if self.completed.len() == w.warmup {
                w.start = CpuSample::take(w.pid);
            }
        }
    }

    fn wants_pictures(&self) -> bool {
        self.check.is_some() || self.probe_depth
    }

    fn displayed(&mut self, pts: Option<i64>, picture: Option<Shown<'_>>, error: bool) {
        if self.depth.is_none() {
            self.depth = picture.as_ref().and_then(planar_depth);
        }
        if let Some(check) = &mut self.check {
            check.picture(pts, picture, error);
        }
    }
}

impl<'r> Recorder<'r> {
    /// A recorder of a run with `opts`, timed from `origin` (a progress bar if `progress`),
    /// checking the pictures against `reference` if given.
    fn new(
        origin: Instant,
        progress: bool,
        opts: &Options,
        reference: Option<&'r [RefFrame]>,
    ) -> Recorder<'r> {
        Recorder {
            origin,
            queued: Vec::with_capacity(1024),
            completed: Vec::with_capacity(1024),
            progress: Progress::frames(progress, opts.decode.limit).with_prefix("device: "),
            check: reference.map(|reference| Checker {
                reference,
                shown: 0,
                failures: Vec::new(),
                wrong: 0,
            }),
            cpu: None,
            probe_depth: false,
            depth: None,
        }
    }

    /// Pairs the queue and completion times of each request.
    fn samples(&self) -> Result<Vec<Sample>> {
        let mut queued = self.queued.iter().peekable();
        let mut samples = Vec::with_capacity(self.completed.len());
        for &(id, done) in &self.completed {
            // Requests complete in the order they were queued.
            let Some(&(_, at)) = queued.find(|(q, _)| *q == id) else {
                bail!("internal error: request {id} completed but was never queued");
            };
            samples.push(Sample {
                queued: at.saturating_duration_since(self.origin),
                completed: done.saturating_duration_since(self.origin),
            });
        }
        Ok(samples)
    }
}

/// Parameters of a bench run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The device side: video and media device, time-out, requests in flight, frame limit.
    pub decode: crate::engine::Options,
    /// FFmpeg's thread count.
    pub threads: usize,
    /// Frames decoded but not timed, at the start.
    pub warmup: u64,
    /// Rounds (device and FFmpeg runs, interleaved).
    pub runs: usize,
    /// The ffmpeg binary.
    pub ffmpeg: PathBuf,
    /// Also time the stream through the VA-API driver, if given.
    pub vaapi: Option<VaapiBaseline>,
    /// A progress bar on standard error, if it is a terminal ([`crate::progress`]).
    pub progress: bool,
    /// Clients decoding the stream at once in each round's multi-stream run (1: none).
    pub streams: usize,
    /// Check the device's pictures against FFmpeg's before the rounds ([`verify`]).
    pub verify: bool,
    /// Where FFmpeg's reference MD5s of a stream are kept (made once with `--ffmpeg`; see
    /// [`crate::stress::streams::load_reference`]).
    pub reference_cache: PathBuf,
}

/// The VA-API run of a round: `ffmpeg -hwaccel vaapi` on a render node.
#[derive(Clone, Debug)]
pub struct VaapiBaseline {
    /// The DRM render node whose VA driver decodes (e.g. `/dev/dri/renderD128`).
    pub device: PathBuf,
    /// The ffmpeg binary for it (one built with VA-API; it may differ from the baseline's).
    pub ffmpeg: PathBuf,
}

/// The figures of one round: a device run, the two FFmpeg runs and the VA-API run, if any.
#[derive(Clone, Debug)]
pub struct Round {
    /// The device.
    pub device: DeviceFigures,
    /// FFmpeg, same threads, slice threading.
    pub ffmpeg_slice: FfmpegFigures,
    /// FFmpeg, same threads, default (frame) threading.
    pub ffmpeg_frame: FfmpegFigures,
    /// FFmpeg through the VA-API driver (`--vaapi`).
    pub vaapi: Option<FfmpegFigures>,
    /// Several clients on the device at once (`--streams`).
    pub streams: Option<StreamsFigures>,
    /// Where the CPU time of the device run went (`None`: `/proc` unreadable).
    pub device_cpu: Option<CpuUse>,
    /// With `--streams N`: N FFmpeg processes at once (default threading), their rates
    /// together ([`ffmpeg_streams_run`]): what the machine gives N decoders.
    pub ffmpeg_streams: Option<f64>,
}

impl Round {
    /// Device fps / FFmpeg (slice threading) fps of this round.
    pub fn ratio(&self) -> Option<f64> {
        Some(self.device.fps()? / self.ffmpeg_slice.fps()?)
    }

    /// Device fps / FFmpeg (default threading) fps of this round.
    pub fn ratio_best(&self) -> Option<f64> {
        Some(self.device.fps()? / self.ffmpeg_frame.fps()?)
    }

    /// Aggregate fps of the multi-stream run / single-stream device fps of this round.
    pub fn scaling(&self) -> Option<f64> {
        Some(self.streams.as_ref()?.fps()? / self.device.fps()?)
    }

    /// The same for FFmpeg: N processes at once / one (default threading) of this round.
    pub fn ffmpeg_scaling(&self) -> Option<f64> {
        Some(self.ffmpeg_streams? / self.ffmpeg_frame.fps()?)
    }

    /// VA-API fps / device fps of this round.
    pub fn vaapi_ratio(&self) -> Option<f64> {
        Some(self.vaapi.as_ref()?.fps()? / self.device.fps()?)
    }

    /// CPU milliseconds per frame of FFmpeg's default (frame) threading.
    pub fn ffmpeg_frame_cpu_ms(&self) -> Option<f64> {
        let f = &self.ffmpeg_frame;
        (f.timed_frames > 0).then(|| f.cpu_seconds * 1e3 / f.timed_frames as f64)
    }
}

/// The median of the values there are (`None` if there is none).
pub fn median(values: impl IntoIterator<Item = Option<f64>>) -> Option<f64> {
    let mut v: Vec<f64> = values.into_iter().flatten().collect();
    if v.is_empty() {
        return None;
    }
    v.sort_unstable_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// What the report says about the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamInfo {
    /// Its codec.
    pub codec: Codec,
    /// A description: the IVF header's size and fourcc, or the container kind.
    pub description: String,
}

impl StreamInfo {
    /// What `input` is: its codec (the FFmpeg baseline's options depend on it) and its container
    /// as libavformat names it (or the bare stream's kind).
    pub fn probe(input: &Path) -> Result<StreamInfo> {
        let file = Input::File(input.to_path_buf());
        let (codec, track) =
            crate::decode::identify_track(&file).with_context(|| input.display().to_string())?;
        let description = match track {
            Some(track) => {
                format!(
                    "{}x{} {} {}",
                    track.width,
                    track.height,
                    codec.name(),
                    track.container
                )
            }
            None => format!(
                "{} {}",
                codec.name(),
                if codec == Codec::H264 {
                    "Annex-B"
                } else {
                    "OBU"
                }
            ),
        };
        Ok(StreamInfo { codec, description })
    }
}

/// The result of a bench run.
#[derive(Clone, Debug)]
pub struct Report {
    /// The input.
    pub input: PathBuf,
    /// What it is.
    pub stream: StreamInfo,
    /// Frames decoded but not timed.
    pub warmup: u64,
    /// FFmpeg's thread count.
    pub threads: usize,
    /// Requests in flight on the device.
    pub in_flight: usize,
    /// The render node of the VA-API runs, if there were any.
    pub vaapi_device: Option<PathBuf>,
    /// Why there were no VA-API runs although `--vaapi` asked for them ([`vaapi_refusal`]).
    pub vaapi_skipped: Option<&'static str>,
    /// Clients of the multi-stream runs (1: there were none).
    pub streams: usize,
    /// The counts of the last device run.
    pub summary: Summary,
    /// Every round, in order (at least one).
    pub rounds: Vec<Round>,
    /// 1-minute load average at the start and the end (`/proc/loadavg`).
    pub load: (Option<f64>, Option<f64>),
    /// Pictures found identical to FFmpeg's by the check before the rounds, all its clients
    /// together (`None`: not checked, `--no-verify`).
    pub exact_frames: Option<u64>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.decimals$}"))
}

impl Report {
    /// The median over the rounds of one figure of each round.
    fn median_of(&self, figure: impl Fn(&Round) -> Option<f64>) -> Option<f64> {
        median(self.rounds.iter().map(figure))
    }

    /// Device fps (median of the rounds).
    pub fn device_fps(&self) -> Option<f64> {
        self.median_of(|r| r.device.fps())
    }

    /// FFmpeg fps, same threads, slice threading (median of the rounds).
    pub fn ffmpeg_fps(&self) -> Option<f64> {
        self.median_of(|r| r.ffmpeg_slice.fps())
    }

    /// FFmpeg fps, same threads, default (frame) threading (median of the rounds).
    pub fn ffmpeg_frame_threads_fps(&self) -> Option<f64> {
        self.median_of(|r| r.ffmpeg_frame.fps())
    }

    /// [`Self::device_fps`] / [`Self::ffmpeg_fps`].
    pub fn ratio(&self) -> Option<f64> {
        Some(self.device_fps()? / self.ffmpeg_fps()?)
    }

    /// [`Self::device_fps`] / [`Self::ffmpeg_frame_threads_fps`]: the device against FFmpeg as
    /// it runs by default.
    pub fn ratio_best(&self) -> Option<f64> {
        Some(self.device_fps()? / self.ffmpeg_frame_threads_fps()?)
    }

    /// Aggregate fps of the multi-stream runs (median of the rounds).
    pub fn aggregate_fps(&self) -> Option<f64> {
        self.median_of(|r| r.streams.as_ref().and_then(StreamsFigures::fps))
    }

    /// [`Self::aggregate_fps`] / [`Self::device_fps`]: how the device's rate scales with the
    /// number of clients.
    pub fn scaling(&self) -> Option<f64> {
        Some(self.aggregate_fps()? / self.device_fps()?)
    }

    /// The rates of N FFmpeg processes at once, together (median of the rounds).
    pub fn ffmpeg_aggregate_fps(&self) -> Option<f64> {
        self.median_of(|r| r.ffmpeg_streams)
    }

    /// [`Self::ffmpeg_aggregate_fps`] / [`Self::ffmpeg_frame_threads_fps`]: how the machine
    /// scales N decoders, the yardstick of [`Self::scaling`].
    pub fn ffmpeg_scaling(&self) -> Option<f64> {
        Some(self.ffmpeg_aggregate_fps()? / self.ffmpeg_frame_threads_fps()?)
    }

    /// Fps through the VA-API driver (median of the rounds).
    pub fn vaapi_fps(&self) -> Option<f64> {
        self.median_of(|r| r.vaapi.as_ref().and_then(FfmpegFigures::fps))
    }

    /// [`Self::vaapi_fps`] / [`Self::device_fps`]: what is left of the device's rate through
    /// the VA layer.
    pub fn vaapi_ratio(&self) -> Option<f64> {
        Some(self.vaapi_fps()? / self.device_fps()?)
    }

    /// One figure of the device runs' timed windows ([`CpuUse`]) per timed frame, median of
    /// the rounds.
    fn device_per_frame(&self, part: impl Fn(&CpuUse) -> Option<f64>) -> Option<f64> {
        self.median_of(|r| {
            let cpu = r.device_cpu.as_ref()?;
            cpu.per_frame(part(cpu)?)
        })
    }

    /// One part of the device runs' CPU time ([`CpuUse`], seconds) in milliseconds per frame,
    /// median of the rounds.
    pub fn device_cpu_ms(&self, part: impl Fn(&CpuUse) -> Option<f64>) -> Option<f64> {
        self.device_per_frame(|c| part(c).map(|s| s * 1e3))
    }

    /// The daemon's minor page faults per frame, median of the rounds.
    pub fn daemon_faults(&self) -> Option<f64> {
        self.device_per_frame(|c| c.daemon_faults.map(|n| n as f64))
    }

    /// CPU milliseconds per frame of FFmpeg's default threading, median of the rounds.
    pub fn ffmpeg_frame_cpu_ms(&self) -> Option<f64> {
        self.median_of(Round::ffmpeg_frame_cpu_ms)
    }

    /// Frames decoded by each device run.
    pub fn frames(&self) -> u64 {
        self.rounds.first().map_or(0, |r| r.device.frames)
    }

    /// The latencies (`service = false`) or service times of the timed frames of every round,
    /// sorted.
    fn pooled(&self, service: bool) -> Vec<Duration> {
        let mut v: Vec<Duration> = self
            .rounds
            .iter()
            .flat_map(|r| {
                if service {
                    &r.device.service
                } else {
                    &r.device.latency
                }
            })
            .copied()
            .collect();
        v.sort_unstable();
        v
    }

    /// The machine-readable figures, in the order of the `bench:` line: one definition for
    /// the line ([`Self::bench_line`]) and the JSON object ([`Self::json`]); `vaapi_fps` and
    /// `vaapi_ratio` only with VA-API runs, `streams`, `aggregate_fps` and `scaling` only with
    /// multi-stream runs; then the check's `exact_frames` and where the CPU time went, per frame
    /// (`daemon_cpu_ms`, `client_cpu_ms`, `other_cpu_ms`, `idle_cpu_ms` of the device runs,
    /// `ffmpeg_cpu_ms` of FFmpeg's default threading).
    pub fn figures(&self) -> Vec<(&'static str, Figure)> {
        let (latency, service) = (self.pooled(false), self.pooled(true));
        let p = |v: &[Duration], q| Figure::Real(percentile(v, q).map(ms), 2);
        let mut figures = vec![
            ("frames", Figure::Int(self.frames())),
            ("warmup", Figure::Int(self.warmup)),
            ("runs", Figure::Int(self.rounds.len() as u64)),
            ("threads", Figure::Int(self.threads as u64)),
            ("device_fps", Figure::Real(self.device_fps(), 2)),
            ("ffmpeg_fps", Figure::Real(self.ffmpeg_fps(), 2)),
            ("ratio", Figure::Real(self.ratio(), 3)),
            ("p50_ms", p(&latency, 0.5)),
            ("p99_ms", p(&latency, 0.99)),
            ("service_p50_ms", p(&service, 0.5)),
            ("service_p99_ms", p(&service, 0.99)),
            (
                "ffmpeg_frame_threads_fps",
                Figure::Real(self.ffmpeg_frame_threads_fps(), 2),
            ),
            ("ratio_best", Figure::Real(self.ratio_best(), 3)),
            ("load", Figure::Real(self.load.1, 2)),
        ];
        if self.streams > 1 {
            figures.extend([
                ("streams", Figure::Int(self.streams as u64)),
                ("aggregate_fps", Figure::Real(self.aggregate_fps(), 2)),
                ("scaling", Figure::Real(self.scaling(), 3)),
                (
                    "ffmpeg_aggregate_fps",
                    Figure::Real(self.ffmpeg_aggregate_fps(), 2),
                ),
                ("ffmpeg_scaling", Figure::Real(self.ffmpeg_scaling(), 3)),
            ]);
        }
        if self.vaapi_device.is_some() {
            figures.extend([
                ("vaapi_fps", Figure::Real(self.vaapi_fps(), 2)),
                ("vaapi_ratio", Figure::Real(self.vaapi_ratio(), 3)),
            ]);
        }
        figures.extend([
            (
                "exact_frames",
                Figure::Real(self.exact_frames.map(|n| n as f64), 0),
            ),
            (
                "daemon_cpu_ms",
                Figure::Real(self.device_cpu_ms(|c| c.daemon), 1),
            ),
            (
                "client_cpu_ms",
                Figure::Real(self.device_cpu_ms(|c| Some(c.client)), 1),
            ),
            (
                "other_cpu_ms",
                Figure::Real(self.device_cpu_ms(|c| Some(c.other)), 1),
            ),
            (
                "idle_cpu_ms",
                Figure::Real(self.device_cpu_ms(|c| Some(c.idle)), 1),
            ),
            ("ffmpeg_cpu_ms", Figure::Real(self.ffmpeg_frame_cpu_ms(), 1)),
            ("daemon_faults", Figure::Real(self.daemon_faults(), 1)),
        ]);
        figures
    }

    /// The machine-readable last line: `bench: key=value ...` (scripts parse it: keep it).
    pub fn bench_line(&self) -> String {
        let pairs: Vec<String> = self
            .figures()
            .iter()
            .map(|(k, v)| format!("{k}={}", v.text()))
            .collect();
        format!("bench: {}", pairs.join(" "))
    }

    /// `bench --json`: the figures of the `bench:` line as one JSON object (`null` for `n/a`),
    /// with the same rounding.
    pub fn json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.figures()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.json()))
                .collect(),
        )
    }
}

/// One figure of the `bench:` line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Figure {
    /// A count.
    Int(u64),
    /// A measure with this many decimals, or none (`n/a`).
    Real(Option<f64>, usize),
}

impl Figure {
    /// As the `bench:` line writes it.
    pub fn text(&self) -> String {
        match *self {
            Figure::Int(n) => n.to_string(),
            Figure::Real(v, decimals) => opt(v, decimals),
        }
    }

    /// As `--json` writes it: the line's rounded value as a number, `null` for `n/a`.
    pub fn json(&self) -> serde_json::Value {
        match *self {
            Figure::Int(n) => n.into(),
            Figure::Real(..) => self
                .text()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (latency, service) = (self.pooled(false), self.pooled(true));
        let p = |v: &[Duration], q| opt(percentile(v, q).map(ms), 1);
        writeln!(
            f,
            "input:   {} ({}, {} frames decoded per run, the first {} untimed)",
            self.input.display(),
            self.stream.description,
            self.frames(),
            self.warmup
        )?;
        let many = self.rounds.len() > 1;
        for (i, r) in self.rounds.iter().enumerate() {
            if many {
                writeln!(f, "run {}:", i + 1)?;
            }
            let d = &r.device;
            writeln!(
                f,
                "device:  {} frames in {:.2} s: {} fps (decoded by daedalusd, with its own \
                 --threads; default: the number of CPUs)",
                d.timed_frames,
                d.seconds,
                opt(d.fps(), 2)
            )?;
            if let Some(c) = &r.device_cpu {
                writeln!(
                    f,
                    "cpu:     over the {} timed frames: daemon {} s ({} page faults), client \
                     {:.2} s, rest of the machine {:.2} s, idle {:.2} s",
                    c.frames,
                    opt(c.daemon, 2),
                    c.daemon_faults
                        .map_or_else(|| "n/a".into(), |n| n.to_string()),
                    c.client,
                    c.other,
                    c.idle
                )?;
            }
            for (name, fig) in [
                (Threading::Slice, &r.ffmpeg_slice),
                (Threading::Default, &r.ffmpeg_frame),
            ] {
                writeln!(
                    f,
                    "ffmpeg:  {} frames in {:.2} s: {} fps ({} threads, {name}; {:.2} s CPU)",
                    fig.timed_frames,
                    fig.seconds,
                    opt(fig.fps(), 2),
                    self.threads,
                    fig.cpu_seconds
                )?;
            }
            if let (Some(fig), Some(node)) = (&r.vaapi, &self.vaapi_device) {
                writeln!(
                    f,
                    "vaapi:   {} frames in {:.2} s: {} fps (ffmpeg -hwaccel vaapi on {}; {:.2} s \
                     CPU)",
                    fig.timed_frames,
                    fig.seconds,
                    opt(fig.fps(), 2),
                    node.display(),
                    fig.cpu_seconds
                )?;
            }
            if let Some(m) = &r.streams {
                writeln!(
                    f,
                    "streams: {} clients at once: {} frames in {:.2} s: {} fps together; {} \
                     FFmpeg processes at once: {} fps together",
                    m.streams,
                    m.timed_frames,
                    m.seconds,
                    opt(m.fps(), 2),
                    m.streams,
                    opt(r.ffmpeg_streams, 2)
                )?;
            }
            if many {
                writeln!(f, "ratio:   {}", opt(r.ratio(), 3))?;
            }
        }
        if many {
            writeln!(
                f,
                "median of {} runs: device {} fps, FFmpeg {} fps (slice threading), {} fps \
                 (default threading){}",
                self.rounds.len(),
                opt(self.device_fps(), 2),
                opt(self.ffmpeg_fps(), 2),
                opt(self.ffmpeg_frame_threads_fps(), 2),
                match (&self.vaapi_device, self.vaapi_skipped) {
                    (Some(_), None) => format!(", VA-API {} fps", opt(self.vaapi_fps(), 2)),
                    _ => String::new(),
                }
            )?;
        }
        writeln!(
            f,
            "latency: queued -> completed ({} in flight) p50 {} ms, p99 {} ms; service time \
             p50 {} ms, p99 {} ms",
            self.in_flight,
            p(&latency, 0.5),
            p(&latency, 0.99),
            p(&service, 0.5),
            p(&service, 0.99)
        )?;
        writeln!(
            f,
            "cpu:     ms a frame (medians): device run: daemon {}, client {}, rest of the machine \
             {}, idle {}; FFmpeg default threading {}; daemon page faults a frame {}",
            opt(self.device_cpu_ms(|c| c.daemon), 1),
            opt(self.device_cpu_ms(|c| Some(c.client)), 1),
            opt(self.device_cpu_ms(|c| Some(c.other)), 1),
            opt(self.device_cpu_ms(|c| Some(c.idle)), 1),
            opt(self.ffmpeg_frame_cpu_ms(), 1),
            opt(self.daemon_faults(), 1)
        )?;
        match self.exact_frames {
            Some(n) => writeln!(
                f,
                "check:   {n} pictures identical to FFmpeg's, frame by frame (one client{}, \
                 before the rounds)",
                if self.streams > 1 {
                    format!(", then {} at once", self.streams)
                } else {
                    String::new()
                }
            )?,
            None => writeln!(f, "check:   not made (--no-verify)")?,
        }
        writeln!(
            f,
            "ratio:   device fps / FFmpeg fps = {} (FFmpeg baseline: same thread count, slice \
             threading; goal >= 0.9)",
            opt(self.ratio(), 3)
        )?;
        writeln!(
            f,
            "ratio:   device fps / FFmpeg default-threading fps = {} (ratio_best)",
            opt(self.ratio_best(), 3)
        )?;
        if self.streams > 1 {
            writeln!(
                f,
                "streams: {} clients at once: {} fps together, {} x one stream (scaling); {} \
                 FFmpeg processes at once: {} fps, {} x one (what the machine scales to)",
                self.streams,
                opt(self.aggregate_fps(), 2),
                opt(self.scaling(), 3),
                self.streams,
                opt(self.ffmpeg_aggregate_fps(), 2),
                opt(self.ffmpeg_scaling(), 3)
            )?;
        }
        if let Some(why) = self.vaapi_skipped {
            writeln!(f, "vaapi:   not run: {why}")?;
        } else if self.vaapi_device.is_some() {
            writeln!(
                f,
                "vaapi:   VA-API fps / device fps = {} (what the VA layer leaves of the device's \
                 rate; goal >= 0.9)",
                opt(self.vaapi_ratio(), 3)
            )?;
        }
        writeln!(
            f,
            "load:    1-minute load average {} at the start, {} at the end",
            opt(self.load.0, 2),
            opt(self.load.1, 2)
        )
    }
}

/// The 1-minute load average.
pub fn load_average() -> Option<f64> {
    parse_loadavg(&std::fs::read_to_string("/proc/loadavg").ok()?)
}

fn parse_loadavg(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// Checks that `ffmpeg -version` runs.
fn check_ffmpeg(ffmpeg: &Path) -> Result<()> {
    let version = Command::new(ffmpeg)
        .arg("-version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match version {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => bail!("`{} -version` failed ({status})", ffmpeg.display()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => bail!(
            "{} not found (install FFmpeg, or pass --ffmpeg PATH)",
            ffmpeg.display()
        ),
        Err(e) => bail!("cannot run {}: {e}", ffmpeg.display()),
    }
}

/// One device run: its counts, figures and where its CPU time went.
fn device_run(
    input: &Path,
    codec: Codec,
    opts: &Options,
) -> Result<(Summary, DeviceFigures, Option<CpuUse>)> {
    let warmup = usize::try_from(opts.warmup).unwrap_or(usize::MAX);
    let pid = daemon_pid();
    let mut recorder = Recorder::new(Instant::now(), opts.progress, opts, None);
    recorder.cpu = Some(CpuWindow {
        pid,
        warmup,
        start: (warmup == 0).then(|| CpuSample::take(pid)).flatten(),
    });
    let (summary, recorder) = device_decode_with(input, codec, opts, recorder)?;
    let end = CpuSample::take(pid);
    let samples = recorder.samples()?;
    let figures = DeviceFigures::new(&samples, warmup)?;
    let cpu = recorder
        .cpu
        .and_then(|w| w.start)
        .zip(end)
        .map(|(a, b)| a.until(&b, figures.timed_frames));
    Ok((summary, figures, cpu))
}

/// The untimed check before the rounds: one device run with the rounds' options (requests in
/// flight; daedalusd's threads are its own), every displayed picture against FFmpeg's
/// (`reference`), and with `--streams N` the same with N clients at once, each checked.
/// Returns the pictures found identical, all clients together, and the depth of the pictures;
/// an error if any differs.
pub fn verify(
    input: &Path,
    codec: Codec,
    opts: &Options,
    reference: &[RefFrame],
) -> Result<Checked> {
    let spinner = Progress::spinner(opts.progress, "device: checking the pictures...".into());
    let origin = Instant::now();
    let clients = if opts.streams > 1 {
        vec![1, opts.streams]
    } else {
        vec![1]
    };
    let mut checked = Checked {
        exact: 0,
        depth: None,
    };
    for n in clients {
        let runs: Vec<Result<DeviceRun>> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..n)
                .map(|_| {
                    scope
                        .spawn(|| device_decode(input, codec, opts, origin, false, Some(reference)))
                })
                .collect();
            threads
                .into_iter()
                .map(|t| {
                    t.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a checking client panicked")))
                })
                .collect()
        });
        for (i, run) in runs.into_iter().enumerate() {
            let run = run.with_context(|| {
                format!("checking the device's pictures (client {} of {n})", i + 1)
            })?;
            checked.exact += run.exact.unwrap_or(0);
            checked.depth = checked.depth.or(run.depth);
        }
    }
    spinner.finish();
    Ok(checked)
}

/// What [`verify`] found.
#[derive(Clone, Copy, Debug)]
pub struct Checked {
    /// Pictures identical to FFmpeg's, all clients together.
    pub exact: u64,
    /// The depth of the first picture (`None`: no picture was shown).
    pub depth: Option<BitDepth>,
}

/// `opts.streams` clients decoding the stream at once, each in a thread of its own.
fn streams_run(input: &Path, codec: Codec, opts: &Options) -> Result<StreamsFigures> {
    let spinner = Progress::spinner(
        opts.progress,
        format!("device: {} streams at once...", opts.streams),
    );
    let origin = Instant::now();
    let runs: Vec<Result<DeviceRun>> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..opts.streams)
            .map(|_| scope.spawn(|| device_decode(input, codec, opts, origin, false, None)))
            .collect();
        clients
            .into_iter()
            .map(|c| {
                c.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a stream's client panicked")))
            })
            .collect()
    });
    spinner.finish();
    let mut samples = Vec::with_capacity(runs.len());
    for (i, run) in runs.into_iter().enumerate() {
        let run = run.with_context(|| format!("stream {} of {}", i + 1, opts.streams))?;
        samples.push(run.samples);
    }
    let warmup = usize::try_from(opts.warmup).unwrap_or(usize::MAX);
    StreamsFigures::new(&samples, warmup)
}

/// The bit depth of the stream's pictures, from the first one the device decodes (a run of one
/// frame): the VA-API run maps its surfaces in their own format.
fn first_picture_depth(input: &Path, codec: Codec, opts: &Options) -> Result<BitDepth> {
    let mut one = opts.clone();
    one.decode.limit = Some(1);
    let mut recorder = Recorder::new(Instant::now(), false, &one, None);
    recorder.probe_depth = true;
    let (_, recorder) = device_decode_with(input, codec, &one, recorder)?;
    recorder
        .depth
        .context("the device's first picture is neither 8- nor 10-bit 4:2:0")
}

/// A device run of [`device_decode`].
struct DeviceRun {
    /// The samples of its requests.
    samples: Vec<Sample>,
    /// If it was checked, the pictures found identical to FFmpeg's.
    exact: Option<u64>,
    /// If it was checked, the depth of its first picture.
    depth: Option<BitDepth>,
}

/// Decodes `input` through the device once (a progress bar if `progress`): the counts and the
/// samples of its requests, timed from `origin`, and with a `reference` the pictures found
/// identical to FFmpeg's; an error unless every frame decoded and, with a `reference`, every
/// displayed picture is FFmpeg's.
fn device_decode(
    input: &Path,
    codec: Codec,
    opts: &Options,
    origin: Instant,
    progress: bool,
    reference: Option<&[RefFrame]>,
) -> Result<DeviceRun> {
    let (_, recorder) = device_decode_with(
        input,
        codec,
        opts,
        Recorder::new(origin, progress, opts, reference),
    )?;
    let exact = recorder
        .check
        .as_ref()
        .map(|c| c.result(opts.decode.limit.is_none()))
        .transpose()?;
    Ok(DeviceRun {
        samples: recorder.samples()?,
        exact,
        depth: recorder.depth,
    })
}

/// [`device_decode`] with a recorder of the caller's: the run's counts and the recorder.
fn device_decode_with<'r>(
    input: &Path,
    codec: Codec,
    opts: &Options,
    mut recorder: Recorder<'r>,
) -> Result<(Summary, Recorder<'r>)> {
    let file = Input::File(input.to_path_buf());
    // H.264 frame-based with start codes (opts.decode.h264's default): what GStreamer and
    // FFmpeg's hwaccel pick when offered.
    let result = decode::run_observed(
        &file,
        codec,
        &opts.decode,
        Outputs::default(),
        &mut recorder,
    );
    recorder.progress.finish();
    let summary = result.with_context(|| {
        format!(
            "decoding {} with {}",
            input.display(),
            opts.decode.video.display()
        )
    })?;
    if !summary.success() {
        let hint = match crate::discover::daemon_state() {
            crate::discover::DaemonState::Attached => String::new(),
            state => format!(" (decode daemon: {state})"),
        };
        bail!(
            "the device decode had errors: {} of {} frames decoded with an error, {} not \
             submitted, {} of {} displayed frames missing{hint}; no figures",
            summary.decode_errors,
            summary.submitted,
            summary.skipped,
            summary.shown_errors,
            summary.shown
        );
    }
    Ok((summary, recorder))
}

/// One FFmpeg baseline (with its warm-up run).
fn ffmpeg_run(
    input: &Path,
    codec: Codec,
    opts: &Options,
    threading: Threading,
) -> Result<FfmpegFigures> {
    timed_ffmpeg(
        opts,
        &opts.ffmpeg,
        format!("ffmpeg: {} threads, {threading}...", opts.threads),
        |n| ffmpeg_args(input, codec, opts.threads, threading, n),
    )
}

/// The machine's own scaling, to read the device's against: `opts.streams` FFmpeg processes
/// decoding the stream at once with its default threading (as [`ffmpeg_run`]), then as many
/// at once decoding the warm-up frames only; the sum of their rates, each process's timed
/// frames over its own time less its warm-up run's (they run side by side, so the rates add).
fn ffmpeg_streams_run(input: &Path, codec: Codec, opts: &Options) -> Result<f64> {
    let spinner = Progress::spinner(
        opts.progress,
        format!("ffmpeg: {} processes at once...", opts.streams),
    );
    let at_once = |frames: Option<u64>| -> Result<Vec<FfmpegRun>> {
        let args = ffmpeg_args(input, codec, opts.threads, Threading::Default, frames);
        std::thread::scope(|scope| {
            let runs: Vec<_> = (0..opts.streams)
                .map(|_| scope.spawn(|| run_ffmpeg(&opts.ffmpeg, &args)))
                .collect();
            runs.into_iter()
                .map(|r| {
                    r.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("an FFmpeg runner panicked")))
                })
                .collect()
        })
    };
    let full = at_once(opts.decode.limit)?;
    let warm = if opts.warmup > 0 {
        at_once(Some(opts.warmup))?.into_iter().map(Some).collect()
    } else {
        vec![None; full.len()]
    };
    spinner.finish();
    full.iter()
        .zip(&warm)
        .map(|(f, w)| FfmpegFigures::new(f, w.as_ref()).fps())
        .sum::<Option<f64>>()
        .context("an FFmpeg process of the multi-stream run timed nothing")
}

/// Why FFmpeg's VA-API hwaccel cannot decode a `codec` stream of `depth` pictures, if it
/// cannot: its H.264 decoder offers the hwaccel pixel formats for 8-bit 4:2:0 only (FFmpeg 5.1
/// to 7.1, `get_pixel_format` in libavcodec/h264_slice.c) and decodes High 10 in software, whose
/// frames `hwmap` then refuses (EINVAL).
pub fn vaapi_refusal(codec: Codec, depth: BitDepth) -> Option<&'static str> {
    (codec == Codec::H264 && depth == BitDepth::Ten).then_some(
        "FFmpeg's H.264 decoder offers VA-API for 8-bit pictures only (High 10 is decoded in \
         software), so the driver cannot be timed on this stream",
    )
}

/// One VA-API run (with its warm-up run).
fn vaapi_run(
    input: &Path,
    opts: &Options,
    vaapi: &VaapiBaseline,
    depth: BitDepth,
) -> Result<FfmpegFigures> {
    timed_ffmpeg(
        opts,
        &vaapi.ffmpeg,
        format!(
            "vaapi: ffmpeg -hwaccel vaapi on {}...",
            vaapi.device.display()
        ),
        |n| vaapi_args(input, &vaapi.device, n, depth),
    )
}

/// Runs `ffmpeg` with `args(frames)` on the run's frames, then on the warm-up frames alone, and
/// subtracts the second from the first.
fn timed_ffmpeg(
    opts: &Options,
    ffmpeg: &Path,
    what: String,
    args: impl Fn(Option<u64>) -> Vec<String>,
) -> Result<FfmpegFigures> {
    let spinner = Progress::spinner(opts.progress, what);
    let run = |n| run_ffmpeg(ffmpeg, &args(n));
    let full = run(opts.decode.limit);
    let warm = match (&full, opts.warmup) {
        (Ok(_), w) if w > 0 => Some(run(Some(w))),
        _ => None,
    };
    spinner.finish();
    let warm = warm.transpose()?;
    Ok(FfmpegFigures::new(&full?, warm.as_ref()))
}

/// Runs the bench: `input` through the device and through FFmpeg, `opts.runs` times (the
/// device first in odd rounds, FFmpeg first in even ones, so that a trend in the machine's load
/// does not always favour the same side; the VA-API run next to the device's: after it in odd
/// rounds, before it in even ones; the multi-stream run right after the device's).
pub fn run(input: &Path, opts: &Options) -> Result<Report> {
    let stream = StreamInfo::probe(input)?;
    // Fail early (before a long device run) without a usable ffmpeg.
    check_ffmpeg(&opts.ffmpeg)?;
    if let Some(vaapi) = &opts.vaapi {
        check_ffmpeg(&vaapi.ffmpeg)?;
    }
    let load_start = load_average();
    let checked = if opts.verify {
        let data =
            std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
        let (reference, _) = crate::stress::streams::load_reference(
            input,
            &data,
            &opts.reference_cache,
            &opts.ffmpeg,
        )
        .context("FFmpeg's pictures for the check")?;
        Some(verify(input, stream.codec, opts, &reference)?)
    } else {
        None
    };
    let depth = match (opts.vaapi.is_some(), checked.and_then(|c| c.depth)) {
        (_, Some(depth)) => depth,
        (true, None) => first_picture_depth(input, stream.codec, opts)?,
        (false, None) => BitDepth::Eight,
    };
    let vaapi_skipped = opts
        .vaapi
        .as_ref()
        .and_then(|_| vaapi_refusal(stream.codec, depth));
    let vaapi_opts = opts.vaapi.as_ref().filter(|_| vaapi_skipped.is_none());
    let mut rounds = Vec::with_capacity(opts.runs);
    let mut summary = Summary::default();
    for i in 0..opts.runs.max(1) {
        if opts.progress && opts.runs > 1 {
            eprintln!("run {} of {}", i + 1, opts.runs);
        }
        let ffmpeg = |threading| ffmpeg_run(input, stream.codec, opts, threading);
        let vaapi = || {
            vaapi_opts
                .map(|v| vaapi_run(input, opts, v, depth))
                .transpose()
        };
        let device = || -> Result<_> {
            let (s, device, cpu) = device_run(input, stream.codec, opts)?;
            let streams = (opts.streams > 1)
                .then(|| streams_run(input, stream.codec, opts))
                .transpose()?;
            Ok((s, device, cpu, streams))
        };
        let ffmpeg_streams = || {
            (opts.streams > 1)
                .then(|| ffmpeg_streams_run(input, stream.codec, opts))
                .transpose()
        };
        let (s, device, device_cpu, streams, ffmpeg_slice, ffmpeg_frame, vaapi, ffmpeg_streams) =
            if i % 2 == 0 {
                let (s, device, cpu, streams) = device()?;
                let vaapi = vaapi()?;
                let (slice, frame) = (ffmpeg(Threading::Slice)?, ffmpeg(Threading::Default)?);
                (
                    s,
                    device,
                    cpu,
                    streams,
                    slice,
                    frame,
                    vaapi,
                    ffmpeg_streams()?,
                )
            } else {
                let multi = ffmpeg_streams()?;
                let (slice, frame) = (ffmpeg(Threading::Slice)?, ffmpeg(Threading::Default)?);
                let vaapi = vaapi()?;
                let (s, device, cpu, streams) = device()?;
                (s, device, cpu, streams, slice, frame, vaapi, multi)
            };
        summary = s;
        rounds.push(Round {
            device,
            ffmpeg_slice,
            ffmpeg_frame,
            vaapi,
            streams,
            device_cpu,
            ffmpeg_streams,
        });
    }
    Ok(Report {
        input: input.to_path_buf(),
        stream,
        warmup: opts.warmup,
        threads: opts.threads,
        in_flight: opts.decode.in_flight,
        vaapi_device: opts.vaapi.as_ref().map(|v| v.device.clone()),
        vaapi_skipped,
        streams: opts.streams,
        summary,
        rounds,
        load: (load_start, load_average()),
        exact_frames: checked.map(|c| c.exact),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The standard error of `ffmpeg -hide_banner -benchmark ... -f null -` (FFmpeg 5.1).
    const FFMPEG_51: &str = "Input #0, ivf, from 'bench.ivf':\n  Duration: 00:00:04.00, \
        start: 0.000000, bitrate: 8695 kb/s\n  Stream #0:0: Video: vp9 (Profile 0) (VP90 / \
        0x30395056), yuv420p(tv), 1920x1080, 30 tbr, 30 tbn\nStream mapping:\n  Stream #0:0 \
        -> #0:0 (vp9 (native) -> wrapped_avframe (native))\nPress [q] to stop, [?] for help\n\
        Output #0, null, to 'pipe:':\nframe=   45 fps=0.0 q=-0.0 size=N/A time=00:00:01.46 \
        bitrate=N/A speed=2.91x    \rframe=  120 fps=0.0 q=-0.0 Lsize=N/A time=00:00:04.00 \
        bitrate=N/A speed=4.35x    \nvideo:63kB audio:0kB subtitle:0kB other streams:0kB \
        global headers:0kB muxing overhead: unknown\nbench: utime=0.886s stime=0.033s \
        rtime=0.920s\nbench: maxrss=65812kB\n";

    #[test]
    fn parses_ffmpeg_benchmark() {
        let run = parse_ffmpeg_benchmark(FFMPEG_51).expect("valid output");
        assert_eq!(
            run,
            FfmpegRun {
                frames: 120,
                rtime: 0.920,
                utime: 0.886,
                stime: 0.033
            }
        );
        // CRLF and a count right after '='.
        let text = "frame=7 fps=1\r\nbench: utime=1s stime=0.5s rtime=2.25s\r\n";
        let run = parse_ffmpeg_benchmark(text).expect("valid output");
        assert_eq!((run.frames, run.rtime, run.stime), (7, 2.25, 0.5));
    }

    #[test]
    fn ffmpeg_output_errors() {
        assert_eq!(
            parse_ffmpeg_benchmark("frame=  1 fps=0\n"),
            Err(FfmpegOutputError::NoBenchLine)
        );
        // `bench: maxrss` alone is not the timing line.
        assert_eq!(
            parse_ffmpeg_benchmark("frame= 1\nbench: maxrss=1kB\n"),
            Err(FfmpegOutputError::NoBenchLine)
        );
        assert_eq!(
            parse_ffmpeg_benchmark("frame= 1\nbench: utime=1s stime=xs rtime=1s\n"),
            Err(FfmpegOutputError::BadField("stime"))
        );
        assert_eq!(
            parse_ffmpeg_benchmark("frame= 1\nbench: utime=1s rtime=1s\n"),
            Err(FfmpegOutputError::BadField("stime"))
        );
        assert_eq!(
            parse_ffmpeg_benchmark("bench: utime=1s stime=0s rtime=-1s\nframe=1\n"),
            Err(FfmpegOutputError::BadField("rtime"))
        );
        assert_eq!(
            parse_ffmpeg_benchmark("bench: utime=1s stime=0s rtime=1s\n"),
            Err(FfmpegOutputError::NoFrameCount)
        );
    }

    #[test]
    fn percentiles() {
        assert_eq!(percentile::<u32>(&[], 0.5), None);
        assert_eq!(percentile(&[7], 0.0), Some(7));
        assert_eq!(percentile(&[7], 0.99), Some(7));
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), Some(50));
        assert_eq!(percentile(&v, 0.99), Some(99));
        assert_eq!(percentile(&v, 1.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&v, 2.0), Some(100));
        let v: Vec<u32> = (1..=120).collect();
        assert_eq!(percentile(&v, 0.5), Some(60));
        // ceil(0.99 * 120) = 119.
        assert_eq!(percentile(&v, 0.99), Some(119));
        assert_eq!(percentile(&[1, 2, 3, 4], 0.5), Some(2));
        assert_eq!(percentile(&[1, 2, 3, 4, 5], 0.5), Some(3));
    }

    fn ms_(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn device_figures() {
        // Two in flight: 0 and 1 queued at once, each takes 100 ms; 2 is queued when 0
        // completes, 3 when 1 completes.
        let s = |q, c| Sample {
            queued: ms_(q),
            completed: ms_(c),
        };
        let samples = [s(0, 100), s(0, 200), s(100, 300), s(200, 400)];
        let all = DeviceFigures::new(&samples, 0).expect("figures");
        assert_eq!((all.frames, all.timed_frames), (4, 4));
        assert!((all.seconds - 0.4).abs() < 1e-9);
        assert_eq!(all.fps(), Some(10.0));
        assert_eq!(all.latency, [ms_(100), ms_(200), ms_(200), ms_(200)]);
        assert_eq!(all.service, [ms_(100); 4]);

        // One warm-up frame: timed from the completion of frame 0.
        let warm = DeviceFigures::new(&samples, 1).expect("figures");
        assert_eq!((warm.frames, warm.timed_frames), (4, 3));
        assert!((warm.seconds - 0.3).abs() < 1e-9);
        assert_eq!(warm.latency.len(), 3);

        // An idle client: service time starts at the queueing.
        let idle = DeviceFigures::new(&[s(0, 10), s(50, 70)], 0).expect("figures");
        assert_eq!(idle.service, [ms_(10), ms_(20)]);

        assert!(DeviceFigures::new(&samples, 4).is_err());
        assert!(DeviceFigures::new(&[], 0).is_err());
        assert_eq!(
            DeviceFigures::new(&[s(5, 5)], 0).expect("figures").fps(),
            None
        );
    }

    /// An FFmpeg run of `frames` frames in `rtime` s (`utime` + `stime` of CPU).
    fn ffmpeg_run(frames: u64, rtime: f64, utime: f64, stime: f64) -> FfmpegRun {
        FfmpegRun {
            frames,
            rtime,
            utime,
            stime,
        }
    }

    #[test]
    fn ffmpeg_figures() {
        let full = ffmpeg_run(120, 10.0, 15.0, 1.0);
        let warm = ffmpeg_run(20, 2.0, 3.0, 0.5);
        let f = FfmpegFigures::new(&full, Some(&warm));
        assert_eq!((f.frames, f.timed_frames), (120, 100));
        assert_eq!(f.fps(), Some(12.5));
        assert!((f.cpu_seconds - 12.5).abs() < 1e-9);
        let f = FfmpegFigures::new(&full, None);
        assert_eq!(f.fps(), Some(12.0));
        // A warm-up run as slow as the whole one gives no figure.
        let f = FfmpegFigures::new(&full, Some(&full));
        assert_eq!(f.fps(), None);
    }

    #[test]
    fn ffmpeg_command_line() {
        let vp9 = Codec::Vp9;
        let args = ffmpeg_args(Path::new("/s/in.ivf"), vp9, 2, Threading::Slice, Some(10));
        assert_eq!(
            args.join(" "),
            "-nostdin -hide_banner -benchmark -threads 2 -thread_type slice -i /s/in.ivf \
             -frames:v 10 -an -f null -"
        );
        let args = ffmpeg_args(Path::new("in.ivf"), vp9, 4, Threading::Default, None);
        assert_eq!(
            args.join(" "),
            "-nostdin -hide_banner -benchmark -threads 4 -i in.ivf -an -f null -"
        );
        // AV1: libdav1d, one frame in flight like daedalusd's.
        let args = ffmpeg_args(Path::new("a.ivf"), Codec::Av1, 2, Threading::Slice, None);
        assert_eq!(
            args.join(" "),
            "-nostdin -hide_banner -benchmark -threads 2 -c:v libdav1d -flags low_delay -i a.ivf \
             -an -f null -"
        );
        let args = ffmpeg_args(Path::new("a.h264"), Codec::H264, 2, Threading::Slice, None);
        assert_eq!(
            args.join(" "),
            "-nostdin -hide_banner -benchmark -threads 2 -thread_type slice -i a.h264 -an -f \
             null -"
        );
    }

    #[test]
    fn loadavg() {
        assert_eq!(parse_loadavg("2.50 1.93 2.01 3/321 4567\n"), Some(2.5));
        assert_eq!(parse_loadavg(""), None);
    }

    #[test]
    fn medians() {
        assert_eq!(median([]), None);
        assert_eq!(median([None, None]), None);
        assert_eq!(median([Some(3.0), None, Some(1.0), Some(2.0)]), Some(2.0));
        assert_eq!(
            median([Some(4.0), Some(1.0), Some(2.0), Some(3.0)]),
            Some(2.5)
        );
    }

    #[test]
    fn report_line() {
        let s = |q, c| Sample {
            queued: ms_(q),
            completed: ms_(c),
        };
        let fast = DeviceFigures::new(&[s(0, 100), s(0, 200), s(100, 300), s(200, 400)], 0)
            .expect("figures");
        let slow = DeviceFigures::new(&[s(0, 200), s(0, 400), s(200, 600), s(400, 800)], 0)
            .expect("figures");
        let run = ffmpeg_run(4, 0.5, 0.9, 0.1);
        let round = Round {
            device: fast,
            ffmpeg_slice: FfmpegFigures::new(&run, None),
            ffmpeg_frame: FfmpegFigures::new(&FfmpegRun { rtime: 0.25, ..run }, None),
            vaapi: None,
            streams: None,
            device_cpu: Some(CpuUse {
                daemon: Some(0.4),
                client: 0.02,
                other: 0.01,
                idle: 0.1,
                daemon_faults: Some(40),
                frames: 4,
            }),
            ffmpeg_streams: None,
        };
        let mut report = Report {
            input: PathBuf::from("in.ivf"),
            stream: StreamInfo {
                codec: Codec::Vp9,
                description: "1920x1080 VP90 IVF".into(),
            },
            warmup: 0,
            threads: 2,
            in_flight: 2,
            vaapi_device: None,
            vaapi_skipped: None,
            streams: 1,
            summary: Summary::default(),
            rounds: vec![round.clone()],
            load: (Some(1.0), None),
            exact_frames: Some(4),
        };
        assert_eq!(
            report.bench_line(),
            "bench: frames=4 warmup=0 runs=1 threads=2 device_fps=10.00 ffmpeg_fps=8.00 \
             ratio=1.250 p50_ms=200.00 p99_ms=200.00 service_p50_ms=100.00 \
             service_p99_ms=100.00 ffmpeg_frame_threads_fps=16.00 ratio_best=0.625 load=n/a \
             exact_frames=4 daemon_cpu_ms=100.0 client_cpu_ms=5.0 other_cpu_ms=2.5 \
             idle_cpu_ms=25.0 ffmpeg_cpu_ms=250.0 daemon_faults=10.0"
        );
        let json = report.json();
        assert_eq!(json["frames"], 4);
        assert_eq!(json["device_fps"], 10.0);
        assert_eq!(json["ratio"], 1.25);
        assert_eq!(json["p99_ms"], 200.0);
        assert!(json["load"].is_null());
        // The same keys as the line.
        let line = report.bench_line();
        let mut keys: Vec<&str> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|kv| kv.split_once('=').map(|(k, _)| k))
            .collect();
        keys.sort_unstable();
        let json_keys: Vec<&str> = json
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(json_keys, keys);
        let text = report.to_string();
        assert!(text.contains("slice threading"), "{text}");
        assert!(text.contains("= 1.250"), "{text}");
        assert!(text.contains("4 pictures identical to FFmpeg's"), "{text}");
        assert!(
            text.contains("daemon 0.40 s (40 page faults), client 0.02 s"),
            "{text}"
        );

        // Three rounds: medians of the rates, percentiles over every timed frame.
        report.rounds.push(Round {
            device: slow,
            ..round.clone()
        });
        report.rounds.push(round);
        let line = report.bench_line();
        assert!(line.contains(" runs=3 "), "{line}");
        assert!(
            line.contains(" device_fps=10.00 ffmpeg_fps=8.00 ratio=1.250 "),
            "{line}"
        );
        // Latencies: fast 100 200 200 200 (x2), slow 200 400 400 400: the 6th of 12 is 200.
        assert!(line.contains(" p50_ms=200.00 p99_ms=400.00 "), "{line}");
        assert!(report.to_string().contains("median of 3 runs"));
        assert!(!report.to_string().contains("vaapi"));
    }

    #[test]
    fn vaapi_round() {
        let args = |depth| {
            vaapi_args(
                Path::new("/t/in.ivf"),
                Path::new("/dev/dri/renderD128"),
                Some(20),
                depth,
            )
            .join(" ")
        };
        assert_eq!(
            args(BitDepth::Eight),
            "-nostdin -hide_banner -benchmark -hwaccel vaapi -hwaccel_device \
             /dev/dri/renderD128 -hwaccel_output_format vaapi -i /t/in.ivf -frames:v 20 -an -vf \
             hwmap=mode=read+direct,format=nv12 -f null -"
        );
        assert!(args(BitDepth::Ten).contains(" hwmap=mode=read+direct,format=p010le "));
        let pic = |w, h, len| {
            let planar = vec![0u8; len];
            planar_depth(&Shown {
                width: w,
                height: h,
                planar: &planar,
            })
        };
        // 5x3: 15 luma and 2 x 3x2 chroma samples.
        assert_eq!(pic(5, 3, 27), Some(BitDepth::Eight));
        assert_eq!(pic(5, 3, 54), Some(BitDepth::Ten));
        assert_eq!(pic(5, 3, 30), None);
        assert_eq!(pic(5, 3, 0), None);
        let s = |q, c| Sample {
            queued: ms_(q),
            completed: ms_(c),
        };
        let device = DeviceFigures::new(&[s(0, 100), s(0, 200), s(100, 300), s(200, 400)], 0)
            .expect("figures");
        let run = ffmpeg_run(4, 0.5, 0.9, 0.1);
        let round = |vaapi_rtime| Round {
            device: device.clone(),
            ffmpeg_slice: FfmpegFigures::new(&run, None),
            ffmpeg_frame: FfmpegFigures::new(&run, None),
            vaapi: Some(FfmpegFigures::new(
                &FfmpegRun {
                    rtime: vaapi_rtime,
                    ..run
                },
                None,
            )),
            streams: None,
            device_cpu: None,
            ffmpeg_streams: None,
        };
        let report = Report {
            input: PathBuf::from("in.ivf"),
            stream: StreamInfo {
                codec: Codec::Vp9,
                description: "1920x1080 VP90 IVF".into(),
            },
            warmup: 0,
            threads: 2,
            in_flight: 2,
            vaapi_device: Some(PathBuf::from("/dev/dri/renderD128")),
            vaapi_skipped: None,
            streams: 1,
            summary: Summary::default(),
            // Device 10 fps; VA-API 8, 5 and 9.5 fps: median 8.
            rounds: vec![round(0.5), round(0.8), round(4.0 / 9.5)],
            load: (None, None),
            exact_frames: None,
        };
        assert_eq!(report.rounds[0].vaapi_ratio(), Some(0.8));
        let line = report.bench_line();
        assert!(
            line.contains(" load=n/a vaapi_fps=8.00 vaapi_ratio=0.800 exact_frames=n/a "),
            "{line}"
        );
        assert_eq!(report.json()["vaapi_ratio"], 0.8);
        let text = report.to_string();
        assert!(text.contains("VA-API fps / device fps = 0.800"), "{text}");
        assert!(text.contains("VA-API 8.00 fps"), "{text}");

        // H.264 High 10: FFmpeg cannot use the driver; the report says why, no figure.
        assert!(vaapi_refusal(Codec::H264, BitDepth::Ten).is_some());
        assert!(vaapi_refusal(Codec::H264, BitDepth::Eight).is_none());
        assert!(vaapi_refusal(Codec::Vp9, BitDepth::Ten).is_none());
        assert!(vaapi_refusal(Codec::Av1, BitDepth::Ten).is_none());
        let skipped = Report {
            vaapi_skipped: vaapi_refusal(Codec::H264, BitDepth::Ten),
            rounds: vec![Round {
                vaapi: None,
                ..round(0.5)
            }],
            ..report
        };
        let line = skipped.bench_line();
        assert!(line.contains(" vaapi_fps=n/a vaapi_ratio=n/a "), "{line}");
        let text = skipped.to_string();
        assert!(
            text.contains("vaapi:   not run: FFmpeg's H.264 decoder"),
            "{text}"
        );
        assert!(!text.contains("VA-API fps / device fps"), "{text}");
    }

    #[test]
    fn streams_figures() {
        let s = |q, c| Sample {
            queued: ms_(q),
            completed: ms_(c),
        };
        // Two clients, one warm-up frame each: timed from 100 ms (the first warm-up end) to
        // 500 ms (the last completion): 3 + 2 frames in 0.4 s.
        let a = vec![s(0, 100), s(0, 200), s(100, 300), s(200, 400)];
        let b = vec![s(0, 150), s(0, 350), s(150, 500)];
        let m = StreamsFigures::new(&[a.clone(), b.clone()], 1).expect("figures");
        assert_eq!((m.streams, m.timed_frames), (2, 5));
        assert!((m.seconds - 0.4).abs() < 1e-9, "{m:?}");
        assert_eq!(m.fps(), Some(12.5));
        // A client with nothing to time is an error, as for one stream.
        assert!(StreamsFigures::new(&[a.clone(), vec![s(0, 10)]], 1).is_err());
        assert!(StreamsFigures::new(&[], 1).is_err());

        let device = DeviceFigures::new(&a, 0).expect("figures");
        let run = ffmpeg_run(4, 0.5, 0.9, 0.1);
        let round = Round {
            device,
            ffmpeg_slice: FfmpegFigures::new(&run, None),
            ffmpeg_frame: FfmpegFigures::new(&run, None),
            vaapi: None,
            streams: Some(StreamsFigures::new(&[a.clone(), a], 0).expect("figures")),
            device_cpu: None,
            ffmpeg_streams: Some(12.0),
        };
        // One stream 10 fps; two at once: 8 frames in 0.4 s = 20 fps.
        assert_eq!(round.scaling(), Some(2.0));
        let report = Report {
            input: PathBuf::from("in.ivf"),
            stream: StreamInfo {
                codec: Codec::Vp9,
                description: "1920x1080 VP90 IVF".into(),
            },
            warmup: 0,
            threads: 2,
            in_flight: 2,
            vaapi_device: None,
            vaapi_skipped: None,
            streams: 2,
            summary: Summary::default(),
            rounds: vec![round],
            load: (None, None),
            exact_frames: None,
        };
        let line = report.bench_line();
        assert!(
            line.contains(
                " ratio_best=1.250 load=n/a streams=2 aggregate_fps=20.00 scaling=2.000 \
                 ffmpeg_aggregate_fps=12.00 ffmpeg_scaling=1.500 exact_frames=n/a "
            ),
            "{line}"
        );
        assert_eq!(report.json()["scaling"], 2.0);
        assert_eq!(report.json()["streams"], 2);
        let text = report.to_string();
        assert!(
            text.contains("2 clients at once: 20.00 fps together"),
            "{text}"
        );
    }

    #[test]
    fn cpu_times() {
        let stat = "cpu  100 5 50 1000 20 3 2 1 7 0\ncpu0 50 2 25 500 10 1 1 0 3 0\nintr 1\n";
        // Busy: user + nice + system + irq + softirq + steal; idle: idle + iowait.
        assert_eq!(parse_proc_stat(stat), Some((161, 1020)));
        assert_eq!(parse_proc_stat("cpu  1 2\n"), None);
        assert_eq!(parse_proc_stat("intr 1\n"), None);
        // A command name with spaces and parentheses; minflt 700, utime 40 and stime 2 are
        // fields 10, 14 and 15.
        let pid = "1234 (daedalusd (x) y) S 1 1234 1234 0 -1 4194560 700 0 0 0 40 2 0 0 20 0 3 0";
        let t = |ticks, minor_faults| ProcessTimes {
            ticks,
            minor_faults,
        };
        assert_eq!(parse_pid_stat(pid), Some(t(42, 700)));
        assert_eq!(parse_pid_stat("1234 (short) S 1 2"), None);
        assert_eq!(parse_pid_stat("no parenthesis"), None);

        let a = CpuSample {
            busy: 1000,
            idle: 500,
            daemon: Some(t(100, 5000)),
            client: t(10, 7),
        };
        let b = CpuSample {
            busy: 1200,
            idle: 540,
            daemon: Some(t(250, 5120)),
            client: t(30, 9),
        };
        let hz = clock_ticks_per_second();
        let cpu = a.until(&b, 10);
        assert_eq!(cpu.daemon, Some(150.0 / hz));
        assert_eq!(cpu.client, 20.0 / hz);
        assert!((cpu.other - 30.0 / hz).abs() < 1e-9, "{cpu:?}");
        assert_eq!(cpu.idle, 40.0 / hz);
        assert_eq!(cpu.per_frame(cpu.client), Some(2.0 / hz));
        assert_eq!(cpu.daemon_faults, Some(120));
        // Without the daemon's times the rest of the busy time is "other".
        let cpu = CpuSample { daemon: None, ..a }.until(&b, 0);
        assert_eq!((cpu.daemon, cpu.daemon_faults), (None, None));
        assert!((cpu.other - 180.0 / hz).abs() < 1e-9, "{cpu:?}");
        assert_eq!(cpu.per_frame(1.0), None);
        // This process can sample itself.
        let now = CpuSample::take(None).expect("/proc readable");
        assert!(now.busy + now.idle > 0);
    }

    #[test]
    fn pictures_checked_against_ffmpeg() {
        let planar = [vec![1u8; 6], vec![2u8; 6], vec![3u8; 6]];
        let reference: Vec<RefFrame> = planar
            .iter()
            .map(|p| RefFrame {
                size: p.len(),
                md5: crate::picture::md5_hex(p).to_string(),
            })
            .collect();
        fn shown(planar: &[u8]) -> Option<Shown<'_>> {
            Some(Shown {
                width: 2,
                height: 2,
                planar,
            })
        }
        let check = |pictures: &[(&[u8], bool)]| {
            let mut c = Checker {
                reference: &reference,
                shown: 0,
                failures: Vec::new(),
                wrong: 0,
            };
            for (i, &(p, error)) in pictures.iter().enumerate() {
                c.picture(Some(i as i64), shown(p), error);
            }
            (c.result(true), c.result(false))
        };
        let (whole, part) = check(&[
            (&planar[0], false),
            (&planar[1], false),
            (&planar[2], false),
        ]);
        assert_eq!((whole.ok(), part.ok()), (Some(3), Some(3)));
        // Fewer pictures: only a run limited by --frames may show fewer.
        let (whole, part) = check(&[(&planar[0], false), (&planar[1], false)]);
        assert!(whole
            .unwrap_err()
            .to_string()
            .contains("displayed 2 pictures, FFmpeg output 3"));
        assert_eq!(part.ok(), Some(2));
        // A wrong picture, a decode error, one too many.
        let (whole, _) = check(&[
            (&planar[0], false),
            (&planar[2], false),
            (&planar[2], false),
        ]);
        let e = whole.unwrap_err().to_string();
        assert!(e.contains("1 of 3 displayed pictures differ"), "{e}");
        assert!(e.contains("displayed picture 1 (2x2, pts Some(1))"), "{e}");
        let (whole, _) = check(&[(&planar[0], true)]);
        assert!(whole.unwrap_err().to_string().contains("is a decode error"));
        let four = [
            (&planar[0][..], false),
            (&planar[1], false),
            (&planar[2], false),
            (&planar[2], false),
        ];
        let (whole, _) = check(&four);
        assert!(whole
            .unwrap_err()
            .to_string()
            .contains("past FFmpeg's 3 pictures"));
        let (whole, _) = check(&[]);
        assert!(whole.is_err());
    }
}
