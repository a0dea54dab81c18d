// SPDX-License-Identifier: GPL-2.0
//! `daedalus`: command-line tools for the daedalus V4L2 stateless decoder.
//!
//! * `daedalus info` describes the device nodes (capabilities, media device, formats, frame
//!   sizes, controls, daemon node);
//! * `daedalus check-requests` checks the device's Request API behaviour and exits with 0 only
//!   if every check passes;
//! * `daedalus decode` decodes a VP9, H.264 or AV1 file through the device (a real stateless
//!   client) and writes the pictures or their MD5s; it exits with 0 only if every frame
//!   decoded (3 if the device refuses the stream);
//! * `daedalus bench` times a VP9, AV1 or H.264 stream through the device and
//!   through plain FFmpeg with the same thread count, and prints both rates, their ratio and the
//!   device's per-frame latency.

mod devices;
mod info;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{ArgAction, Args, CommandFactory, Parser, Subcommand};
use daedalus_tools::bench;
use daedalus_tools::codec::Codec;
use daedalus_tools::conformance::{self, Options};
use daedalus_tools::decode::{self, Input};
use daedalus_tools::discover::{self, FoundVideo, DRIVER_NAME};
use daedalus_tools::engine::{self, Outputs, Refused, Summary};
use daedalus_tools::h264;
use daedalus_tools::progress::Progress;
use daedalus_tools::status;
use daedalus_tools::v4l2::VideoDevice;

#[derive(Debug, Parser)]
#[command(
    name = "daedalus",
    version,
    about = "Tools for the daedalus V4L2 stateless decoder"
)]
struct Cli {
    /// More log output on stderr (-v: info, -vv: debug); RUST_LOG overrides it.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Describe the daedalus device nodes, their formats and controls
    ///
    /// For each video device: capabilities, the media device, OUTPUT and CAPTURE formats with
    /// their frame sizes, every control (with menu entries), and whether a decode daemon is
    /// attached to /dev/daedalus.
    Info(InfoArgs),
    /// List the V4L2 stateless decoders of any driver, with their formats
    ///
    /// Every /dev/video* that is a memory-to-memory device with a stateless coded OUTPUT format
    /// (VP9F, AV1F, S264, S265, VP8F, MG2S): its media node, driver, coded formats with their
    /// frame sizes and the picture formats each gives, and whether a daedalus decode daemon
    /// is attached.
    Devices(DevicesArgs),
    /// Show what the device is doing: daemon, jobs, frame rate, latency, per context
    ///
    /// Reads the module's counters in /sys/class/misc/daedalus/ (readable by every user):
    /// whether a decode daemon is attached (its pid, name, threads and command line from
    /// /proc), jobs submitted / completed / failed / timed out / in flight, decoded frames per
    /// second over the last 2 s, and job latency percentiles (request queued to request done)
    /// of the last 64 decoded jobs, device-wide and for each open context. Exits with 1 if the
    /// module is not loaded.
    Status(StatusArgs),
    /// Check the device's Request API behaviour, one line per check
    ///
    /// Drives the Request API for every codec the device lists: bad requests must be refused
    /// with the right errno, valid ones must complete. Exits with 0 only if every check passes.
    CheckRequests(CheckArgs),
    /// Decode a VP9, AV1 or H.264 stream through the device
    ///
    /// Reads VP9, AV1 or H.264 in any container FFmpeg's libavformat reads (IVF, WebM /
    /// Matroska, MP4, MPEG-TS...), AV1 as Section 5 (.obu) or Annex B OBUs, H.264 as Annex B
    /// (recognised by content). One request per frame (per
    /// slice with --h264-mode slice) with the codec's controls, references by timestamp, hidden
    /// frames, show_existing_frame and resolution changes. Writes the pictures or their MD5s and
    /// prints a summary. Exits with 0 only if every frame decoded without error, 3 if the device
    /// refuses the stream (profile, chroma format, bit depth, interlacing), 1 otherwise.
    Decode(DecodeArgs),
    /// Time a stream through the device against plain FFmpeg
    ///
    /// Decodes a VP9, AV1 or H.264 stream (any input `decode` reads) through the device and
    /// through plain FFmpeg in the same run: frames, the fps of both and their ratio (device /
    /// FFmpeg), and the per-frame latency p50/p99 through the device (request queued to request
    /// completed).
    /// FFmpeg baseline: same thread count, slice threading (`ffmpeg -threads N -thread_type
    /// slice`; AV1: libdav1d with `-flags low_delay`), because the device decodes one picture per
    /// request, which leaves daedalusd's FFmpeg slice (tile) threads only; FFmpeg's default
    /// (frame) threading is reported too, as an informative figure. The device's decoding
    /// threads are daedalusd's own setting (its --threads, default: the number of CPUs): keep
    /// them equal to --threads here. The last line is machine-readable: `bench: frames=...
    /// device_fps=... ffmpeg_fps=... ratio=... p50_ms=... p99_ms=...`. Exits with 0 only if
    /// every frame decoded without error.
    Bench(BenchArgs),
    /// Stress the device with concurrent clients, corrupt streams and daemon kills
    ///
    /// N clients (threads; each run is its own context on the video node) decode the STREAMs
    /// at random, seeded (the seed is printed; the same seed gives the same schedule), with
    /// 1 to 6 requests in flight, some runs starting at a later key frame (a seek), and at
    /// random frames: a close with requests queued, a STREAMOFF and restart from the next key
    /// frame, or requests dropped by a STREAMOFF. A quarter of the runs of IVF / Annex B
    /// streams decode a corrupted copy (coded bytes mutated, headers kept). With
    /// --kill-daemon-every the daemon (pid from sysfs daemon_pid) is SIGKILLed on schedule and
    /// restarted with `sh -c CMD`. Every picture a clean stream gets back without the error flag
    /// is checked against STREAM.framemd5 (else STREAM with its extension replaced by
    /// .framemd5, else STREAM.ffmpeg-*.framemd5, else one made once with `ffmpeg -f framemd5`
    /// in --cache); pictures of corrupted
    /// copies are not checked (FFmpeg decodes some damage without an error). Every request
    /// must complete within the module's job_timeout_ms plus --margin-ms. At the end the
    /// module's buffers, contexts and jobs, this process's files, the daemon's files and RSS
    /// and CmaFree must be back (see docs/stress.md). Prints a summary (and --json); exits with
    /// 0 only if nothing was wrong, hung or leaked, 1 otherwise.
    ///
    /// --soak FRAMES: the soak instead (`make soak`): clean streams decoded whole, in rounds of
    /// --clients contexts at once, until FRAMES pictures were checked; no error buffer allowed;
    /// after every round, all contexts closed, the module's buffers / contexts / jobs and the idle
    /// daemon's open files must be back at their start and its anonymous RSS (and this
    /// process's), after --soak-warmup-rounds, within --soak-max-rss-growth of the warm-up's.
    /// CmaFree is shown per round, not judged (make soak checks it after everything exited).
    ///
    /// --mutate N: N mutated copies per codec (`make mutate`): bit flips, byte runs, packets
    /// truncated / duplicated / reordered / dropped, damaged headers; each decoded whole. Error
    /// buffers and refused streams are expected; hung requests, leaks and a daemon that is not
    /// restarted (--restart-daemon) are failures; daemon restarts are counted per codec.
    Stress(StressArgs),
    /// Print a shell completion script
    ///
    /// For example `daedalus completions bash > /etc/bash_completion.d/daedalus`.
    Completions(CompletionArgs),
    /// Write the man pages and every shell's completion script into DIR (for packaging)
    #[command(hide = true)]
    GenerateDocs(GenerateDocsArgs),
}

#[derive(Debug, Args)]
struct GenerateDocsArgs {
    /// Output directory: man/ (section 1 pages) and completions/{bash,zsh,fish}/ are made in it.
    #[arg(value_name = "DIR")]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct CompletionArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: daedalus_docgen::Shell,
}

#[derive(Debug, Args)]
struct InfoArgs {
    #[command(flatten)]
    device: DeviceArgs,

    /// Print one JSON object (devices with formats and controls, the daemon node) instead.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DevicesArgs {
    /// Print one JSON object instead ({"decoders": [...], "daedalus_daemon": {...}}).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// Print one JSON object instead ({"video", "daemon", "contexts_open", "jobs", "buffers",
    /// "contexts"}).
    #[arg(long)]
    json: bool,

    /// The daedalus video node to report: N, videoN or /dev/videoN (default: the first one).
    #[arg(short, long, value_name = "N")]
    device: Option<String>,
}

#[derive(Debug, Args)]
struct DeviceArgs {
    /// Video device node (default: every /dev/video* whose driver is "daedalus"; the first one
    /// for check-requests and decode).
    #[arg(short, long, value_name = "PATH")]
    device: Option<PathBuf>,

    /// Accept video devices of any driver, e.g. visl (the upstream virtual stateless decoder).
    #[arg(long)]
    any_driver: bool,
}

#[derive(Debug, Args)]
struct CheckArgs {
    #[command(flatten)]
    device: DeviceArgs,

    /// Media device node (default: the /dev/media* whose bus_info is the video device's).
    #[arg(short, long, value_name = "PATH")]
    media: Option<PathBuf>,

    /// Codecs to check, comma-separated (vp9, h264, av1; default: all the device lists).
    #[arg(long = "codec", value_name = "CODEC", value_delimiter = ',')]
    codecs: Vec<Codec>,

    /// Width of the OUTPUT format.
    #[arg(long, default_value_t = 320)]
    width: u32,

    /// Height of the OUTPUT format.
    #[arg(long, default_value_t = 240)]
    height: u32,

    /// How long a request may take to complete, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    timeout_ms: u64,
}

/// A switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum OnOff {
    On,
    Off,
}

/// Exit status of `daedalus decode` when the device refuses the stream (profile, bit depth or
/// chroma format it does not decode), as opposed to 1 for failures.
const EXIT_REFUSED: u8 = 3;

#[derive(Debug, Args)]
struct DecodeArgs {
    #[command(flatten)]
    device: DeviceArgs,

    /// Media device node (default: the /dev/media* whose bus_info is the video device's).
    #[arg(short, long, value_name = "PATH")]
    media: Option<PathBuf>,

    /// Write the displayed pictures, planar yuv420p (8-bit) or yuv420p10le (10-bit), cropped
    /// to the frame size, one after the other (`-`: standard output).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Write one MD5 per displayed picture (same conversion as --output) in the format of
    /// `ffmpeg -i INPUT -fps_mode passthrough -autoscale 0 -pix_fmt yuv420p -f framemd5 -`
    /// (FFmpeg 5.1; yuv420p10le for 10-bit streams), timestamps included (`-`: standard
    /// output).
    #[arg(long, value_name = "FILE")]
    framemd5: Option<PathBuf>,

    /// Write one MD5 per displayed picture, alone on its line: the layout of the shared test
    /// vectors' *.ffmpeg-*.framemd5 references once their `#` line is dropped (`-`: standard
    /// output).
    #[arg(long, value_name = "FILE")]
    md5: Option<PathBuf>,

    /// Write the MD5 of all displayed pictures, one after the other (same conversion as
    /// --output; 4:0:0 AV1: luma only): the layout of `dav1d --muxer md5` / `aomdec --md5`
    /// (`-`: standard output).
    #[arg(long, value_name = "FILE")]
    whole_md5: Option<PathBuf>,

    /// AV1: what each OUTPUT buffer holds: the frame's OBUs as in the stream, or only its tile
    /// group payloads (GStreamer's v4l2slav1dec; the device rebuilds the headers from the
    /// controls).
    #[arg(long, value_enum, default_value_t = daedalus_tools::av1::Payload::Obu)]
    av1_payload: daedalus_tools::av1::Payload,

    /// AV1: whether the device applies film grain (the FILM_GRAIN control's APPLY_GRAIN flag).
    #[arg(long, value_enum, default_value_t = OnOff::On)]
    film_grain: OnOff,

    /// How long one request may take to complete, in milliseconds (generous: a decode in an
    /// emulated VM can take seconds; a hung device is still noticed).
    #[arg(long, value_name = "MS", default_value_t = 30000)]
    timeout_ms: u64,

    /// Requests in flight.
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u8).range(1..=engine::MAX_IN_FLIGHT as i64))]
    in_flight: u8,

    /// CAPTURE buffers to allocate (at least 9: the 8 VP9 reference slots and one to decode
    /// into; more lets more requests run in flight).
    #[arg(long, value_name = "N", default_value_t = 12,
          value_parser = clap::value_parser!(u32).range(9..=64))]
    capture_buffers: u32,

    /// Decode only the first N packets of the file (H.264: pictures).
    #[arg(long, value_name = "N")]
    limit: Option<u64>,

    /// H.264: one request per picture (frame) or one per slice (slice, with
    /// HOLD_CAPTURE_BUF and the SLICE_PARAMS / PRED_WEIGHTS controls).
    #[arg(long, value_name = "MODE", value_enum, default_value = "frame")]
    h264_mode: h264::client::DecodeMode,

    /// H.264: slices with Annex-B start codes (annexb) or without (none; slice mode only).
    #[arg(long, value_name = "KIND", value_enum, default_value = "annexb")]
    start_code: h264::client::StartCode,

    /// No progress line on standard error.
    #[arg(short, long)]
    quiet: bool,

    /// The stream, recognised by content: VP9, AV1 or H.264 in a container (IVF, WebM /
    /// Matroska, MP4, MPEG-TS...), AV1 OBUs (Section 5 or Annex B), H.264 as Annex B (`-`:
    /// standard input).
    #[arg(value_name = "INPUT")]
    input: PathBuf,
}

#[derive(Debug, Args)]
struct StressArgs {
    #[command(flatten)]
    device: DeviceArgs,

    /// Media device node (default: the /dev/media* whose bus_info is the video device's).
    #[arg(short, long, value_name = "PATH")]
    media: Option<PathBuf>,

    /// How long to run, in seconds [default: 60; with --soak or --mutate: no limit, and a run
    /// that reaches the limit before its target fails].
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(u64).range(1..))]
    duration: Option<u64>,

    /// Concurrent clients.
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    clients: u16,

    /// Seed of the schedule [default: from the clock; printed either way].
    #[arg(long, value_name = "N")]
    seed: Option<u64>,

    /// SIGKILL the decode daemon every S seconds (needs --restart-daemon).
    #[arg(long, value_name = "S", requires = "restart_daemon",
          conflicts_with_all = ["soak", "mutate"],
          value_parser = clap::value_parser!(u64).range(1..))]
    kill_daemon_every: Option<u64>,

    /// Command (run with `sh -c`) that starts the daemon again after a kill (or, with
    /// --mutate, after it died); stress then waits until daemon_attached is 1.
    #[arg(long, value_name = "CMD")]
    restart_daemon: Option<String>,

    /// The soak: clean streams decoded whole in rounds until FRAMES pictures were checked
    /// (see the command's description and docs/stress.md).
    #[arg(long, value_name = "FRAMES", conflicts_with = "mutate",
          value_parser = clap::value_parser!(u64).range(1..))]
    soak: Option<u64>,

    /// Soak rounds of warm-up: the idle daemon's anonymous RSS after the last of them is the
    /// baseline [default: the rounds in which every stream is decoded twice].
    #[arg(long, value_name = "N", requires = "soak",
          value_parser = clap::value_parser!(u64).range(1..))]
    soak_warmup_rounds: Option<u64>,

    /// Largest growth (KiB) of the idle daemon's (and the clients') anonymous RSS after the
    /// soak's warm-up.
    #[arg(long, value_name = "KIB", default_value_t = 8192, requires = "soak")]
    soak_max_rss_growth: i64,

    /// N mutated copies per codec of the IVF / Annex B streams, each decoded whole (see the
    /// command's description and docs/stress.md).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    mutate: Option<u64>,

    /// With --mutate: save the mutated streams that hung a request or were being decoded when
    /// the daemon died into DIR (they decode with `daedalus decode`).
    #[arg(long, value_name = "DIR", requires = "mutate")]
    save_dir: Option<PathBuf>,

    /// Only make the streams' missing references (with --ffmpeg, into --cache) and exit: no
    /// device needed (e.g. on the host before a VM run, whose file system is read-only).
    #[arg(long)]
    prepare: bool,

    /// Write the report as JSON to FILE (`-`: standard output).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,

    /// Where references made with FFmpeg are kept [default: $XDG_CACHE_HOME/daedalus/stress
    /// or ~/.cache/daedalus/stress].
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,

    /// The FFmpeg program that makes missing references.
    #[arg(long, value_name = "PATH", default_value = "ffmpeg")]
    ffmpeg: PathBuf,

    /// Added to the module's job timeout (job_timeout_ms): a request that takes longer is hung.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    margin_ms: u64,

    /// Seconds after a daemon attached before its RSS baseline is taken.
    #[arg(long, value_name = "S", default_value_t = 10)]
    warmup: u64,

    /// Largest daemon RSS growth (KiB) after its warm-up that is not a leak.
    #[arg(long, value_name = "KIB", default_value_t = 32768)]
    max_rss_growth: i64,

    /// Largest drop of CmaFree (KiB) that is not a leak (CMA also serves movable pages); not
    /// with --soak, which shows CmaFree per round (its VM test checks it once all have exited).
    #[arg(long, value_name = "KIB", default_value_t = 8192)]
    cma_tolerance: i64,

    /// No progress line on standard error.
    #[arg(short, long)]
    quiet: bool,

    /// The streams (any input `decode` reads; corrupted copies are made of IVF and Annex B
    /// ones).
    #[arg(value_name = "STREAM", required = true)]
    streams: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct BenchArgs {
    #[command(flatten)]
    device: DeviceArgs,

    /// Media device node (default: the /dev/media* whose bus_info is the video device's).
    #[arg(short, long, value_name = "PATH")]
    media: Option<PathBuf>,

    /// FFmpeg's threads (-threads) [default: the number of CPUs]; daedalusd should run with
    /// as many (its --threads, whose default is also the number of CPUs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,

    /// Decode only the first N frames (container packets) on both sides [default: the whole
    /// file].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    frames: Option<u64>,

    /// Frames decoded at the start but not timed (device: the timing starts when the last of
    /// them completes; FFmpeg: the time of a run of these frames alone is subtracted).
    #[arg(long, value_name = "N", default_value_t = 10)]
    warmup: u64,

    /// Rounds of device and FFmpeg runs, interleaved (the device first in odd rounds, FFmpeg
    /// first in even ones); the rates reported are the medians of the rounds, the latency
    /// percentiles are over the timed frames of every round.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..))]
    runs: u16,

    /// Requests in flight on the device.
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u8).range(1..=engine::MAX_IN_FLIGHT as i64))]
    in_flight: u8,

    /// How long one request may take to complete, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 20000)]
    timeout_ms: u64,

    /// Also run N clients on the stream at once in every round (each its own context, right
    /// after the single-stream device run); the `bench:` line gains `streams=`,
    /// `aggregate_fps=` (all clients' frames per second together) and `scaling=` (that over
    /// the single-stream device fps).
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(1..=16))]
    streams: u8,

    /// The FFmpeg command-line program to compare with (it also makes the check's reference).
    #[arg(long, value_name = "PATH", default_value = "ffmpeg")]
    ffmpeg: PathBuf,

    /// Skip the check before the rounds (one untimed device run, and one with --streams
    /// clients at once, every displayed picture's MD5 against FFmpeg's `-f framemd5`; the
    /// bench fails on any difference, else the `bench:` line's exact_frames= counts them).
    #[arg(long)]
    no_verify: bool,

    /// Where the check's reference (FFmpeg's framemd5 of the stream) is kept, made once
    /// [default: as `daedalus stress --cache`: $XDG_CACHE_HOME/daedalus/stress or
    /// ~/.cache/daedalus/stress]; a `STREAM.framemd5` next to the stream is used first.
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,

    /// Also time the stream through the VA-API driver of this DRM render node (e.g.
    /// /dev/dri/renderD128, with LIBVA_DRIVER_NAME=daedalus) in every round, next to the device
    /// run: `ffmpeg -hwaccel vaapi`, each picture mapped; the `bench:` line gains `vaapi_fps=`
    /// and `vaapi_ratio=` (VA-API fps / device fps).
    #[arg(long, value_name = "NODE")]
    vaapi: Option<PathBuf>,

    /// The FFmpeg program for --vaapi [default: --ffmpeg's].
    #[arg(long, value_name = "PATH", requires = "vaapi")]
    vaapi_ffmpeg: Option<PathBuf>,

    /// No progress lines on standard error (they are only shown when it is a terminal).
    #[arg(short, long)]
    quiet: bool,

    /// Print only one JSON object on standard output: the figures of the `bench:` line
    /// (`n/a` as null).
    #[arg(long)]
    json: bool,

    /// The stream (any input `decode` reads).
    #[arg(value_name = "INPUT")]
    input: PathBuf,
}

impl DeviceArgs {
    /// The driver name to filter on.
    fn driver(&self) -> Option<&'static str> {
        (!self.any_driver).then_some(DRIVER_NAME)
    }

    /// The video devices selected by the arguments; an error if there is none.
    fn select(&self) -> Result<Vec<FoundVideo>> {
        if let Some(path) = &self.device {
            let cap = VideoDevice::open(path)?.query_capability()?;
            if let Some(driver) = self.driver() {
                if cap.driver != driver {
                    bail!(
                        "{} is driven by {:?}, not {driver:?} (pass --any-driver to use it anyway)",
                        path.display(),
                        cap.driver
                    );
                }
            }
            return Ok(vec![FoundVideo {
                path: path.clone(),
                cap,
            }]);
        }
        let found = discover::find_video_devices(self.driver()).context("cannot list /dev")?;
        if found.is_empty() {
            match self.driver() {
                Some(driver) => bail!(
                    "no video device with driver {driver:?} found in /dev (is daedalus.ko loaded? \
                     use --device and --any-driver for another driver)"
                ),
                None => bail!("no video device found in /dev"),
            }
        }
        Ok(found)
    }
}

/// The media device given, or the one whose bus_info is the video device's.
fn media_of(video: &FoundVideo, media: Option<&PathBuf>) -> Result<PathBuf> {
    Ok(match media {
        Some(path) => path.clone(),
        None => {
            discover::find_media_device(&video.cap.bus_info)
                .context("cannot list /dev")?
                .with_context(|| {
                    format!(
                        "no /dev/media* with bus_info {:?} (use --media)",
                        video.cap.bus_info
                    )
                })?
                .0
        }
    })
}

fn check_requests(args: &CheckArgs) -> Result<ExitCode> {
    let video = args.device.select()?.remove(0);
    let media = media_of(&video, args.media.as_ref())?;
    let opts = Options {
        width: args.width,
        height: args.height,
        timeout: Duration::from_millis(args.timeout_ms),
        codecs: if args.codecs.is_empty() {
            Codec::ALL.to_vec()
        } else {
            args.codecs.clone()
        },
    };
    println!(
        "Request API check: {} (driver {}, {}) with {}, OUTPUT {}x{}",
        video.path.display(),
        video.cap.driver,
        video.cap.bus_info,
        media.display(),
        opts.width,
        opts.height
    );
    let report = conformance::run(&video.path, &media, &opts, &mut |result| {
        println!("{result}")
    })
    .with_context(|| format!("cannot check {}", video.path.display()))?;
    for (codec, why) in &report.skipped {
        println!("SKIP  [{codec}] {why}");
    }
    if report.results.is_empty() {
        println!("no codec checked");
        return Ok(ExitCode::FAILURE);
    }
    println!();
    println!("{} passed, {} failed", report.passed(), report.failed());
    Ok(if report.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Where references made with FFmpeg are kept by default (`stress` and `bench`):
/// $XDG_CACHE_HOME/daedalus/stress or ~/.cache/daedalus/stress.
fn reference_cache() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("daedalus/stress")
}

fn stress(args: &StressArgs) -> Result<ExitCode> {
    use daedalus_tools::stress;
    let cache = args.cache.clone().unwrap_or_else(reference_cache);
    if args.prepare {
        for (stream, reference) in stress::prepare(&args.streams, &cache, &args.ffmpeg)? {
            println!("{}: {}", stream.display(), reference.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let video = args.device.select()?.remove(0);
    let media = media_of(&video, args.media.as_ref())?;
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs() ^ u64::from(d.subsec_nanos()))
    });
    let clients = usize::from(args.clients);
    let mode = match (args.soak, args.mutate) {
        (Some(frames), _) => stress::Mode::Soak(stress::SoakConfig {
            frames,
            // Every stream decoded twice: each codec's decoder and its frame pools, and the
            // allocator's arenas, have been through their largest sizes.
            warmup_rounds: args
                .soak_warmup_rounds
                .unwrap_or_else(|| (2 * args.streams.len()).div_ceil(clients) as u64),
            max_rss_growth_kib: args.soak_max_rss_growth,
        }),
        (None, Some(per_codec)) => stress::Mode::Mutate { per_codec },
        (None, None) => stress::Mode::Stress,
    };
    if args.kill_daemon_every.is_none()
        && args.restart_daemon.is_some()
        && !matches!(mode, stress::Mode::Mutate { .. })
    {
        bail!("--restart-daemon is for --kill-daemon-every or --mutate");
    }
    // Soak and mutate runs end at their target; a duration only bounds them.
    let duration = args.duration.unwrap_or(match mode {
        stress::Mode::Stress => 60,
        _ => 365 * 24 * 3600,
    });
    let cfg = stress::Config {
        video: video.path.clone(),
        media,
        duration: Duration::from_secs(duration),
        clients,
        seed,
        kill_every: args.kill_daemon_every.map(Duration::from_secs),
        restart_daemon: args.restart_daemon.clone(),
        streams: args.streams.clone(),
        cache,
        ffmpeg: args.ffmpeg.clone(),
        margin: Duration::from_millis(args.margin_ms),
        warmup: Duration::from_secs(args.warmup),
        max_rss_growth_kib: args.max_rss_growth,
        cma_tolerance_kib: args.cma_tolerance,
        progress: !args.quiet,
        mode,
        save_dir: args.save_dir.clone(),
    };
    let what = match &cfg.mode {
        stress::Mode::Stress => format!("{duration} s"),
        stress::Mode::Soak(s) => format!(
            "soak of {} pictures, {} rounds of warm-up",
            s.frames, s.warmup_rounds
        ),
        stress::Mode::Mutate { per_codec } => format!("{per_codec} mutated streams per codec"),
    };
    eprintln!(
        "stress: seed {seed}, {} clients, {what}, {} streams{}",
        cfg.clients,
        cfg.streams.len(),
        args.kill_daemon_every
            .map_or(String::new(), |s| format!(", daemon killed every {s} s"))
    );
    let bar = match &cfg.mode {
        stress::Mode::Stress => Progress::seconds(cfg.progress, duration),
        stress::Mode::Soak(s) => Progress::frames(cfg.progress, Some(s.frames)),
        stress::Mode::Mutate { .. } => Progress::frames(cfg.progress, None),
    };
    let report = stress::run(&cfg, &mut |r, elapsed| {
        let done = match &cfg.mode {
            stress::Mode::Stress => elapsed.as_secs().min(duration),
            stress::Mode::Soak(_) => r.frames_checked,
            stress::Mode::Mutate { .. } => r.runs,
        };
        bar.update(done, || {
            format!(
                "{} runs, {} checked, {} wrong, {} hung, {} errors, {} kills",
                r.runs,
                r.frames_checked,
                r.wrong_pictures,
                r.hung_requests,
                r.errors,
                r.daemon_kills
            )
        })
    })?;
    bar.finish();
    for f in &report.failures {
        eprintln!("stress: FAIL {f}");
    }
    let opt = |v: Option<i64>| v.map_or("n/a".to_string(), |v| v.to_string());
    // The per-codec figures of --mutate, one line each.
    for t in &report.mutate {
        eprintln!(
            "mutate: {}: {} streams, {} packets, {} error buffers, {} good pictures, {} refused, \
             {} hung, {} daemon restarts",
            t.codec,
            t.streams,
            t.packets,
            t.error_buffers,
            t.good_pictures,
            t.refused,
            t.hung,
            t.daemon_restarts
        );
    }
    if let Some(s) = &report.soak {
        let last = s.rounds.last();
        eprintln!(
            "soak: {} rounds, {} of {} pictures checked; idle daemon: anonymous RSS {} KiB at the \
             start, {} KiB after {} rounds of warm-up, growth since {} KiB (VmRSS {} KiB); open \
             files {} at the start, {} at the end; clients' anonymous RSS growth since the \
             warm-up {} KiB",
            s.rounds.len(),
            report.frames_checked,
            s.frames_target,
            opt(s.daemon_rss_anon_start_kib),
            opt(s.rss_anon_baseline_kib),
            s.warmup_rounds,
            opt(s.rss_anon_growth_kib),
            opt(s.rss_growth_kib),
            opt(s.daemon_fds_start),
            opt(last.and_then(|c| c.daemon_fds)),
            opt(s.client_rss_anon_growth_kib)
        );
        for note in &s.idle_memory_notes {
            eprintln!("soak: {note}");
        }
    }
    eprintln!(
        "stress: seed {} {:.0} s: {} runs ({} corrupted, {} seeks, {} closes, {} restarts, {} drops), \
         {} pictures submitted, {} checked, {} unchecked, {} wrong, {} hung, {} errors, \
         {} daemon kills, {} daemon deaths; leaks: buffers {} ({} bytes), contexts {}, jobs in flight {}, \
         fds {} (daemon {}), daemon RSS {} KiB, CmaFree {} KiB{}: {}",
        report.seed,
        report.duration_s,
        report.runs,
        report.corrupted_runs,
        report.seeks,
        report.closes,
        report.restarts,
        report.drops,
        report.submitted,
        report.frames_checked,
        report.frames_unchecked,
        report.wrong_pictures,
        report.hung_requests,
        report.errors,
        report.daemon_kills,
        report.daemon_deaths,
        report.buffers_leaked,
        report.buffer_bytes_delta,
        report.contexts_leaked,
        report.jobs_in_flight,
        report.client_fd_delta,
        opt(report.fd_delta),
        opt(report.rss_delta_kib),
        opt(report.cma_delta_kib),
        if report.soak.is_some() {
            " (not judged in a soak)"
        } else {
            ""
        },
        if report.passed { "passed" } else { "FAILED" }
    );
    if let Some(path) = &args.json {
        let mut out = engine::open_output(path)?;
        serde_json::to_writer_pretty(&mut out, &report).context("cannot write the JSON report")?;
        writeln!(out)
            .and_then(|_| out.flush())
            .context("cannot write the JSON report")?;
    }
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn decode(args: &DecodeArgs) -> Result<ExitCode> {
    let outputs_to_stdout = [&args.output, &args.framemd5, &args.md5]
        .into_iter()
        .flatten()
        .filter(|p| p.as_os_str() == "-")
        .count();
    if outputs_to_stdout > 1 {
        bail!("only one of --output, --framemd5 and --md5 can be standard output");
    }
    let input = if args.input.as_os_str() == "-" {
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut data)
            .context("cannot read standard input")?;
        Input::Memory(data.into())
    } else {
        Input::File(args.input.clone())
    };
    // What the input is comes first: an unreadable or unknown file says so whatever the device.
    let codec = decode::identify(&input).with_context(|| args.input.display().to_string())?;
    let video = args.device.select()?.remove(0);
    let media = media_of(&video, args.media.as_ref())?;
    if video.cap.driver == DRIVER_NAME {
        require_daemon()?;
    }
    let open = |p: &Option<PathBuf>| p.as_deref().map(engine::open_output).transpose();
    let outputs = Outputs {
        raw: open(&args.output)?,
        framemd5: open(&args.framemd5)?,
        md5: open(&args.md5)?,
        whole_md5: open(&args.whole_md5)?,
    };
    let opts = engine::Options {
        video: video.path.clone(),
        media: media.clone(),
        timeout: Duration::from_millis(args.timeout_ms),
        in_flight: usize::from(args.in_flight),
        capture_buffers: args.capture_buffers,
        limit: args.limit,
        start: 0,
        av1: daedalus_tools::av1::Av1Options {
            payload: args.av1_payload,
            film_grain: args.film_grain == OnOff::On,
        },
        h264: h264::client::H264Options {
            mode: args.h264_mode,
            start_code: args.start_code,
        },
    };
    let bar = Progress::frames(!args.quiet, args.limit);
    let mut progress = |s: &Summary| {
        bar.update(s.decoded + s.decode_errors, || {
            format!(
                "{} errors, {} shown, {:.1} fps",
                s.decode_errors,
                s.shown,
                s.fps()
            )
        })
    };
    let result = decode::run(&input, codec, &opts, outputs, &mut progress);
    bar.finish();
    if let Err(e) = &result {
        if let Some(r) = e.downcast_ref::<Refused>() {
            eprintln!("daedalus: {}: {r}", args.input.display());
            return Ok(ExitCode::from(EXIT_REFUSED));
        }
    }
    let summary = result.with_context(|| {
        format!(
            "decoding {} with {} ({})",
            args.input.display(),
            video.path.display(),
            video.cap.driver
        )
    });
    let daemon_gone = || {
        video.cap.driver == DRIVER_NAME
            && discover::daemon_state() == discover::DaemonState::Detached
    };
    // The usual reason for a failed decode: the daemon went away during it; say that first.
    let summary = match summary {
        Err(e) if daemon_gone() => return Err(e.context(NoDaemon)),
        other => other?,
    };
    let text = format!(
        "{}: {} packets, {} frames submitted: {} decoded, {} decode errors, {} skipped; \
         {} shown ({} of them errors); {} configuration(s); {:.2} s, {:.1} fps",
        args.input.display(),
        summary.packets,
        summary.submitted,
        summary.decoded,
        summary.decode_errors,
        summary.skipped,
        summary.shown,
        summary.shown_errors,
        summary.configurations,
        summary.elapsed.as_secs_f64(),
        summary.fps()
    );
    // Keep standard output clean when it carries pictures or MD5s.
    if outputs_to_stdout > 0 {
        eprintln!("{text}");
    } else {
        println!("{text}");
    }
    Ok(if summary.success() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "daedalus: {} frame(s) did not decode",
            summary.decode_errors + summary.skipped
        );
        if daemon_gone() {
            eprintln!("daedalus: {NoDaemon}");
        }
        ExitCode::FAILURE
    })
}

/// No decode daemon is attached: every job of the device would end in an error buffer.
#[derive(Debug)]
struct NoDaemon;

impl std::fmt::Display for NoDaemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no decode daemon is attached to /dev/daedalus ({} reads 0), so the device cannot \
             decode anything: start daedalusd (`systemctl start daedalusd`, or run `daedalusd` \
             as root) and try again",
            discover::DAEMON_ATTACHED
        )
    }
}

impl std::error::Error for NoDaemon {}

/// Fails with [`NoDaemon`] when the module says no daemon is attached (an unknown state, such
/// as an older module without the attribute, lets the caller go on).
fn require_daemon() -> Result<()> {
    match discover::daemon_state() {
        discover::DaemonState::Detached => Err(NoDaemon.into()),
        _ => Ok(()),
    }
}

fn bench(args: &BenchArgs) -> Result<ExitCode> {
    if args.input.as_os_str() == "-" {
        bail!("bench needs a file (FFmpeg reads it too), not standard input");
    }
    if args.frames.is_some_and(|n| n <= args.warmup) {
        bail!("--frames must be larger than --warmup ({})", args.warmup);
    }
    let video = args.device.select()?.remove(0);
    if video.cap.driver == DRIVER_NAME {
        require_daemon()?;
    }
    let media = media_of(&video, args.media.as_ref())?;
    let threads = match args.threads {
        Some(n) => usize::from(n),
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let in_flight = usize::from(args.in_flight);
    let opts = bench::Options {
        decode: engine::Options {
            video: video.path.clone(),
            media,
            timeout: Duration::from_millis(args.timeout_ms),
            in_flight,
            // The 8 reference slots, the requests in flight and one more.
            capture_buffers: (9 + u32::from(args.in_flight)).max(12),
            limit: args.frames,
            start: 0,
            av1: Default::default(),
            h264: Default::default(),
        },
        threads,
        warmup: args.warmup,
        runs: usize::from(args.runs),
        ffmpeg: args.ffmpeg.clone(),
        vaapi: args.vaapi.clone().map(|device| bench::VaapiBaseline {
            device,
            ffmpeg: args
                .vaapi_ffmpeg
                .clone()
                .unwrap_or_else(|| args.ffmpeg.clone()),
        }),
        progress: !args.quiet,
        streams: usize::from(args.streams),
        verify: !args.no_verify,
        reference_cache: args.cache.clone().unwrap_or_else(reference_cache),
    };
    let report = bench::run(&args.input, &opts)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.json())?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{report}");
    let ffmpeg_frames = report.rounds.first().map_or(0, |r| r.ffmpeg_slice.frames);
    if report.frames() != ffmpeg_frames {
        println!(
            "note:    the device decoded {} frames ({} displayed), FFmpeg output {ffmpeg_frames}: \
             the stream has hidden or repeated (show-existing) frames, and the device's rate \
             counts decoded frames, FFmpeg's output frames",
            report.frames(),
            report.summary.shown
        );
    }
    println!("{}", report.bench_line());
    Ok(ExitCode::SUCCESS)
}

/// Writes `daedalus.1`, one `daedalus-SUBCOMMAND.1` per visible subcommand, and the bash, zsh
/// and fish completion scripts under `out` (what `make install` and the Debian packages install),
/// with the generator `daedalusd` uses too.
fn generate_docs(out: &std::path::Path) -> Result<()> {
    let program = daedalus_docgen::Program {
        name: "daedalus",
        section: "1",
        subcommand_pages: true,
    };
    daedalus_docgen::write_docs(Cli::command(), &program, out)
}

/// Lets a closed standard output end the process quietly, as it does for every other command
/// line tool (`daedalus info | head`): Rust starts programs with SIGPIPE ignored, which turns
/// the write into an `EPIPE` error that `println!` reports with a panic.
fn restore_sigpipe() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: called first in `main`, before any other thread exists; the default action
    // installs no handler code.
    if let Err(e) = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) } {
        log::debug!("cannot restore SIGPIPE: {e}");
    }
}

fn main() -> ExitCode {
    restore_sigpipe();
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp(None)
        .init();
    // Before any thread: decode, bench and stress free a planar picture per context, stress
    // contexts by the thousand (daedalus_malloc says why).
    daedalus_malloc::configure();

    let result = match &cli.command {
        Command::Info(args) => args
            .device
            .select()
            .and_then(|found| {
                if args.json {
                    devices::run_info_json(&found)
                } else {
                    info::run(&found)
                }
            })
            .map(|()| ExitCode::SUCCESS),
        Command::Devices(args) => devices::run_devices(args.json).map(|()| ExitCode::SUCCESS),
        Command::Status(args) => {
            status::run(args.json, args.device.as_deref()).map(|()| ExitCode::SUCCESS)
        }
        Command::CheckRequests(args) => check_requests(args),
        Command::Decode(args) => decode(args),
        Command::Bench(args) => bench(args),
        Command::Stress(args) => stress(args),
        Command::Completions(args) => {
            daedalus_docgen::write_completion(
                args.shell,
                &mut Cli::command(),
                "daedalus",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::GenerateDocs(args) => generate_docs(&args.out).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("daedalus: {e:#}");
            if e.chain().any(|c| c.is::<Refused>()) {
                ExitCode::from(EXIT_REFUSED)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parse_check_requests() {
        let cli = Cli::try_parse_from([
            "daedalus",
            "check-requests",
            "--device",
            "/dev/video3",
            "--any-driver",
            "--codec",
            "vp9,av1",
            "-vv",
        ])
        .expect("valid command line");
        assert_eq!(cli.verbose, 2);
        let Command::CheckRequests(args) = cli.command else {
            panic!("wrong subcommand")
        };
        assert_eq!(args.device.device, Some(PathBuf::from("/dev/video3")));
        assert!(args.device.any_driver);
        assert_eq!(args.device.driver(), None);
        assert_eq!(args.codecs, [Codec::Vp9, Codec::Av1]);
        assert_eq!((args.width, args.height, args.timeout_ms), (320, 240, 2000));
    }

    #[test]
    fn parse_decode() {
        let cli = Cli::try_parse_from([
            "daedalus",
            "decode",
            "--framemd5",
            "-",
            "--any-driver",
            "--in-flight",
            "2",
            "in.ivf",
        ])
        .expect("valid command line");
        let Command::Decode(args) = cli.command else {
            panic!("wrong subcommand")
        };
        assert_eq!(args.framemd5, Some(PathBuf::from("-")));
        assert_eq!(args.input, PathBuf::from("in.ivf"));
        assert_eq!((args.in_flight, args.capture_buffers), (2, 12));
        assert!(args.device.any_driver);
        assert!(Cli::try_parse_from(["daedalus", "decode"]).is_err());
        assert!(Cli::try_parse_from(["daedalus", "decode", "--in-flight", "9", "x"]).is_err());
        assert!(
            Cli::try_parse_from(["daedalus", "decode", "--capture-buffers", "8", "x"]).is_err()
        );
    }

    #[test]
    fn parse_bench() {
        let cli = Cli::try_parse_from([
            "daedalus",
            "bench",
            "--threads",
            "2",
            "--frames",
            "60",
            "--warmup",
            "5",
            "--device",
            "/dev/video1",
            "in.ivf",
        ])
        .expect("valid command line");
        let Command::Bench(args) = cli.command else {
            panic!("wrong subcommand")
        };
        assert_eq!(
            (args.threads, args.frames, args.warmup, args.in_flight),
            (Some(2), Some(60), 5, 4)
        );
        assert_eq!(args.device.device, Some(PathBuf::from("/dev/video1")));
        assert_eq!(args.ffmpeg, PathBuf::from("ffmpeg"));
        let cli = Cli::try_parse_from(["daedalus", "bench", "x.ivf"]).expect("valid");
        let Command::Bench(args) = cli.command else {
            panic!("wrong subcommand")
        };
        assert_eq!((args.threads, args.frames, args.warmup), (None, None, 10));
        assert!(Cli::try_parse_from(["daedalus", "bench"]).is_err());
        assert!(Cli::try_parse_from(["daedalus", "bench", "--threads", "0", "x"]).is_err());
        assert!(Cli::try_parse_from(["daedalus", "bench", "--frames", "0", "x"]).is_err());
        assert_eq!((args.vaapi, args.vaapi_ffmpeg), (None, None));
        let cli = Cli::try_parse_from([
            "daedalus",
            "bench",
            "--vaapi",
            "/dev/dri/renderD128",
            "--vaapi-ffmpeg",
            "/opt/ffmpeg",
            "x.ivf",
        ])
        .expect("valid");
        let Command::Bench(args) = cli.command else {
            panic!("wrong subcommand")
        };
        assert_eq!(args.vaapi, Some(PathBuf::from("/dev/dri/renderD128")));
        assert_eq!(args.vaapi_ffmpeg, Some(PathBuf::from("/opt/ffmpeg")));
        // --vaapi-ffmpeg without --vaapi is an error, not ignored.
        assert!(Cli::try_parse_from(["daedalus", "bench", "--vaapi-ffmpeg", "f", "x"]).is_err());
    }

    #[test]
    fn generate_docs_writes_pages_and_completions() {
        let dir = std::env::temp_dir().join(format!("daedalus-docs-{}", std::process::id()));
        generate_docs(&dir).expect("docs generated");
        let page = std::fs::read_to_string(dir.join("man/daedalus-decode.1")).expect("page");
        assert!(page.contains("framemd5"), "{page}");
        assert!(dir.join("man/daedalus.1").is_file());
        assert!(!dir.join("man/daedalus-generate-docs.1").exists());
        let bash = std::fs::read_to_string(dir.join("completions/bash/daedalus")).expect("bash");
        assert!(bash.contains("check-requests"));
        assert!(dir.join("completions/zsh/_daedalus").is_file());
        assert!(dir.join("completions/fish/daedalus.fish").is_file());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn parse_errors() {
        assert!(Cli::try_parse_from(["daedalus", "check-requests", "--codec", "hevc"]).is_err());
        assert!(Cli::try_parse_from(["daedalus"]).is_err());
        let cli = Cli::try_parse_from(["daedalus", "info"]).expect("valid");
        let Command::Info(args) = cli.command else {
            panic!("wrong subcommand")
        };
        assert_eq!(args.device.driver(), Some(DRIVER_NAME));
        assert!(!args.json);
        let cli = Cli::try_parse_from(["daedalus", "info", "--json"]).expect("valid");
        assert!(matches!(
            cli.command,
            Command::Info(InfoArgs { json: true, .. })
        ));
        let cli = Cli::try_parse_from(["daedalus", "devices", "--json"]).expect("valid");
        assert!(matches!(
            cli.command,
            Command::Devices(DevicesArgs { json: true })
        ));
    }
}
