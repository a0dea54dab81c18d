// SPDX-License-Identifier: GPL-2.0
//! Decode throughput of the daemon's core (map cache hit, zero-copy packet, decode, NV12/P010
//! write into the CAPTURE mapping), to compare with `ffmpeg -benchmark -threads T -i X -f null -`
//! on the same stream. Ignored by default; run in release mode:
//!
//! ```sh
//! DAEDALUS_BENCH_IVF=clip.ivf DAEDALUS_BENCH_THREADS=2 \
//!   cargo test --release -p daedalus-daemon --test bench -- --ignored --nocapture
//! ```
//!
//! `DAEDALUS_BENCH_WINDOW=N` keeps N requests in flight, as a client would: jobs go through
//! [`Context::submit`] and, from `threads` in flight on, are pipelined (frame threads); the
//! figure is then the wall rate, which includes the emulated client's work (writing each
//! bitstream, reading each picture back for its MD5): compare windows with each other.

mod common;

use std::time::{Duration, Instant};

use common::*;
use daedalus_daemon::convert::{write_semiplanar, Planar, Plane, SemiPlanar};
use daedalus_daemon::stats::Stats;
use daedalus_daemon::{Context, DaemonConfig, DecoderConfig};
use daedalus_proto::formats::{BitDepth, CaptureLayout};
use daedalus_proto::wire::{self, Completion, ContextEvent, Message, Status};

#[test]
#[ignore = "benchmark: run in release mode"]
fn conversion() {
    let (w, h) = (1920usize, 1080usize);
    for depth in [BitDepth::Eight, BitDepth::Ten] {
        let bps = depth.bytes_per_sample() as usize;
        let y = vec![1u8; w * h * bps];
        let c = vec![2u8; w / 2 * h / 2 * bps];
        let src = Planar {
            width: w,
            height: h,
            depth,
            y: Plane {
                data: &y,
                stride: w * bps,
            },
            u: Plane {
                data: &c,
                stride: w / 2 * bps,
            },
            v: Plane {
                data: &c,
                stride: w / 2 * bps,
            },
        };
        let l = CaptureLayout::new(depth, w as u32, h as u32);
        let mut dst = vec![0u8; l.sizeimage as usize];
        let layout = SemiPlanar {
            bytesperline: l.bytesperline as usize,
            chroma_offset: l.chroma_offset() as usize,
        };
        let n = 200;
        let t = Instant::now();
        for _ in 0..n {
            write_semiplanar(&src, &mut dst, layout).unwrap();
            std::hint::black_box(&mut dst);
        }
        let per = t.elapsed() / n;
        eprintln!(
            "1080p {depth:?} to {}: {per:?} per frame ({:.1} GB/s written)",
            if bps == 1 { "NV12" } else { "P010" },
            l.sizeimage as f64 / per.as_secs_f64() / 1e9
        );
    }
}

/// The number in environment variable `name`, if set and one.
fn env_number(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
#[ignore = "benchmark: needs DAEDALUS_BENCH_IVF, run in release mode"]
fn throughput() {
    let Some(path) = std::env::var_os("DAEDALUS_BENCH_IVF") else {
        eprintln!("set DAEDALUS_BENCH_IVF to an IVF file");
        return;
    };
    let threads = env_number("DAEDALUS_BENCH_THREADS")
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let frames = ivf_frames(&std::fs::read(&path).unwrap());
    let rounds = env_number("DAEDALUS_BENCH_ROUNDS").unwrap_or(3);
    let mut ctx = Context::new(
        1,
        DecoderConfig {
            threads,
            ..Default::default()
        },
    );
    let window = env_number("DAEDALUS_BENCH_WINDOW");
    if let Some(window) = window {
        let mut client = Client::new(ClientConfig {
            output_buffers: window + 2,
            capture_buffers: window + 2,
            ..ClientConfig::new(1)
        });
        let wall = Instant::now();
        for _ in 0..rounds {
            run_windowed(&mut ctx, &mut client, &frames, |_| window);
        }
        let wall = wall.elapsed();
        let s = ctx.stats();
        assert_eq!(s.ok, client.jobs);
        eprintln!(
            "{}: {} jobs ({} pipelined), {threads} threads, {window} in flight: {:.1} fps wall \
             (with the test client's work)",
            std::path::Path::new(&path).display(),
            client.jobs,
            s.pipelined,
            client.jobs as f64 / wall.as_secs_f64(),
        );
        return;
    }
    let mut client = Client::new(ClientConfig::new(1));
    let mut busy = Duration::ZERO;
    let mut jobs = 0u64;
    let wall = Instant::now();
    for _ in 0..rounds {
        for f in &frames {
            let Some(job) = client.prepare(f) else {
                continue;
            };
            let Ok(Message::Job(j)) = wire::decode(&job.message) else {
                panic!("bad job")
            };
            let t = Instant::now();
            let c = ctx.handle_job(&j);
            busy += t.elapsed();
            assert_eq!(c.status, Status::Ok);
            jobs += 1;
        }
    }
    let wall = wall.elapsed();
    eprintln!(
        "{}: {jobs} jobs, {threads} threads: {:.1} fps (job handling only), {:.1} fps wall \
         (with the test client's work); job time p50 {:?}, p99 {:?}",
        std::path::Path::new(&path).display(),
        jobs as f64 / busy.as_secs_f64(),
        jobs as f64 / wall.as_secs_f64(),
        ctx.stats().job_time.quantile(0.5),
        ctx.stats().job_time.quantile(0.99),
    );
}

/// A client that does not read its pictures back: the client's own work is then only writing
/// each bitstream, so the wall time is the engine's. Every answer must still be a success.
struct Unread<C> {
    inner: C,
    /// Also read the pictures (a VP9 client must, to show existing frames from its slots).
    read_back: bool,
}

impl<C: WindowedClient> WindowedClient for Unread<C> {
    type Job = C::Job;

    fn message(job: &C::Job) -> &[u8] {
        C::message(job)
    }

    fn needs_answers(&self, frame: &[u8]) -> bool {
        self.inner.needs_answers(frame)
    }

    fn prepare_job(&mut self, frame: &[u8]) -> Option<C::Job> {
        self.inner.prepare_job(frame)
    }

    fn finish_job(&mut self, job: C::Job, c: &Completion) {
        assert_eq!(c.status, Status::Ok, "job {} failed", c.job_id);
        if self.read_back {
            self.inner.finish_job(job, c);
        }
    }
}

/// The requests of a stream for the emulated clients, by codec.
enum Units {
    Vp9(Vec<Vec<u8>>),
    H264(Vec<Vec<u8>>),
    Av1 {
        units: Vec<Vec<u8>>,
        depth: BitDepth,
        size: (u32, u32),
    },
}

impl Units {
    /// The stream at `path`: IVF VP9 (superframes split) or AV1 (a temporal unit a request),
    /// else Annex-B H.264 (an access unit a request).
    fn read(path: &std::path::Path) -> (Units, daedalus_tools::codec::Codec) {
        use daedalus_tools::codec::Codec as C;
        let data = std::fs::read(path).unwrap();
        let Ok((header, frames)) = daedalus_codecs::ivf::frames(&data) else {
            return (Units::H264(h264_access_units(&data)), C::H264);
        };
        match header.fourcc_str().as_str() {
            "VP90" => (Units::Vp9(ivf_frames(&data)), C::Vp9),
            "AV01" => {
                let (depth, size) = probe_picture(path);
                let units = frames.into_iter().map(|(_, f)| f.to_vec()).collect();
                (Units::Av1 { units, depth, size }, C::Av1)
            }
            other => panic!("{}: IVF of {other}", path.display()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Units::Vp9(u) | Units::H264(u) | Units::Av1 { units: u, .. } => u.len(),
        }
    }

    /// Decodes the stream with `window` requests in flight, `how` says through what, on
    /// `threads` threads; returns the wall time and the context's statistics.
    fn run(&self, how: Engine, window: usize, threads: usize) -> (Duration, Stats) {
        let buffers = window + 2;
        match self {
            Units::Vp9(frames) => {
                let client = Unread {
                    inner: Client::new(ClientConfig {
                        output_buffers: buffers,
                        capture_buffers: buffers,
                        ..ClientConfig::new(1)
                    }),
                    // Shown existing frames come from the client's slots.
                    read_back: frames.iter().any(|f| {
                        daedalus_codecs::vp9::header::FrameStart::parse(f)
                            .is_ok_and(|h| h.show_existing_frame.is_some())
                    }),
                };
                how.run(client, frames, window, threads)
            }
            Units::H264(aus) => {
                let client = Unread {
                    inner: H264Client::new(1, buffers),
                    read_back: false,
                };
                how.run(client, aus, window, threads)
            }
            Units::Av1 { units, depth, size } => {
                let client = Unread {
                    inner: Av1Client::new(1, buffers, *depth, *size),
                    read_back: false,
                };
                how.run(client, units, window, threads)
            }
        }
    }
}

/// What decodes the requests in [`pipeline_vs_ffmpeg`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Engine {
    /// A [`Context`] driven by the client's thread ([`run_windowed`]): the engine alone, the
    /// client's work in series with it.
    Context,
    /// The whole daemon (dispatcher, context thread, its grace and fillers) over an in-memory
    /// transport, the client on another thread as a real client is in another process.
    Daemon,
}

impl Engine {
    fn run<C: WindowedClient>(
        self,
        mut client: C,
        units: &[Vec<u8>],
        window: usize,
        threads: usize,
    ) -> (Duration, Stats) {
        let decoder = DecoderConfig {
            threads,
            ..Default::default()
        };
        if self == Engine::Context {
            let mut ctx = Context::new(1, decoder);
            let t = Instant::now();
            run_windowed(&mut ctx, &mut client, units, |_| window);
            return (t.elapsed(), ctx.stats().clone());
        }
        let (transport, tx) = MemTransport::new();
        let transport = std::sync::Arc::new(transport);
        let done = transport.register(1);
        let config = DaemonConfig {
            decoder,
            ..Default::default()
        };
        let daemon = {
            let t = std::sync::Arc::clone(&transport);
            std::thread::spawn(move || daedalus_daemon::run(t, &config))
        };
        let t = Instant::now();
        tx.send(event(ContextEvent::Open, 1)).unwrap();
        let mut pending = std::collections::VecDeque::new();
        let finish_one = |pending: &mut std::collections::VecDeque<C::Job>, client: &mut C| {
            let job = pending.pop_front().expect("a job in flight");
            let c = done.recv().expect("completion");
            client.finish_job(job, &c);
        };
        for u in units {
            if client.needs_answers(u) {
                while !pending.is_empty() {
                    finish_one(&mut pending, &mut client);
                }
            }
            if let Some(job) = client.prepare_job(u) {
                tx.send(C::message(&job).to_vec()).unwrap();
                pending.push_back(job);
                if pending.len() >= window {
                    finish_one(&mut pending, &mut client);
                }
            }
        }
        while !pending.is_empty() {
            finish_one(&mut pending, &mut client);
        }
        let wall = t.elapsed();
        tx.send(event(ContextEvent::Close, 1)).unwrap();
        drop(tx);
        let summary = daemon.join().unwrap().expect("daemon");
        (wall, summary.stats[0].1.clone())
    }
}

/// Bit depth and size of the first video stream of `path`, as `ffprobe` reads them.
fn probe_picture(path: &std::path::Path) -> (BitDepth, (u32, u32)) {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["stream=width,height,pix_fmt", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe");
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = text.trim().split(',').collect();
    assert_eq!(f.len(), 3, "ffprobe: {text}");
    let depth = if f[2].contains("10") {
        BitDepth::Ten
    } else {
        BitDepth::Eight
    };
    (depth, (f[0].parse().unwrap(), f[1].parse().unwrap()))
}

/// CPU time (user + system) of this process so far: the engine's threads, FFmpeg's and the
/// band pool's.
fn process_cpu() -> Duration {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `struct rusage` into the memory given.
    let r = unsafe { libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr()) };
    assert_eq!(r, 0);
    // SAFETY: initialised by the successful call.
    let u = unsafe { u.assume_init() };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The pipelined engine against FFmpeg on this host (issue 17; docs/bench.md, "The engine
/// alone, on the host"): for each stream, rounds of the daemon decoding it with N requests in
/// flight on `threads` threads (the client emulated in-process, reading no picture back)
/// interleaved with `ffmpeg -threads N -i STREAM -f null -` (default, i.e. frame threading)
/// and with FFmpeg's low-delay threading (`-thread_type slice`; AV1: libdav1d with
/// `-flags low_delay`), as `daedalus bench` runs them. Prints the median and best rounds, the
/// ratios, the CPU time each side used, and how many jobs were pipelined and how often the
/// pipeline was pushed on without a job. No kernel, no VM: the ratios say what the engine can
/// reach, not what the device does.
///
/// `DAEDALUS_BENCH_WINDOWS` lists the engine's runs: `4` is a context driven by the client's
/// thread (the engine alone), `4d` the whole daemon (dispatcher and context thread, with its
/// grace and fillers) with the client on another thread; default `4 4d`.
///
/// ```sh
/// DAEDALUS_BENCH_STREAMS="a.ivf b.h264" DAEDALUS_BENCH_THREADS=2 DAEDALUS_BENCH_WINDOWS="4 4d 1d" \
///   DAEDALUS_BENCH_ROUNDS=7 cargo test --release -p daedalus-daemon --test bench -- \
///   --ignored --nocapture pipeline_vs_ffmpeg
/// ```
#[test]
#[ignore = "benchmark: needs DAEDALUS_BENCH_STREAMS, run in release mode"]
fn pipeline_vs_ffmpeg() {
    use daedalus_tools::bench::{ffmpeg_args, run_ffmpeg, Threading};
    let Ok(streams) = std::env::var("DAEDALUS_BENCH_STREAMS") else {
        eprintln!("set DAEDALUS_BENCH_STREAMS to the streams (IVF VP9 / AV1, Annex-B H.264)");
        return;
    };
    let threads = env_number("DAEDALUS_BENCH_THREADS").unwrap_or(2);
    let rounds = env_number("DAEDALUS_BENCH_ROUNDS").unwrap_or(5).max(1);
    // "4": a context driven by the client's thread; "4d": the whole daemon.
    let windows: Vec<(Engine, usize)> = std::env::var("DAEDALUS_BENCH_WINDOWS")
        .unwrap_or_else(|_| "4 4d".into())
        .split_whitespace()
        .map(|w| match w.strip_suffix('d') {
            Some(w) => (Engine::Daemon, w.parse().expect("DAEDALUS_BENCH_WINDOWS")),
            None => (Engine::Context, w.parse().expect("DAEDALUS_BENCH_WINDOWS")),
        })
        .collect();
    let ffmpeg = std::path::Path::new("ffmpeg");
    for path in streams.split_whitespace().map(std::path::Path::new) {
        let (units, codec) = Units::read(path);
        let n = units.len() as f64;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        // fps and CPU seconds per round: one column per engine window, then FFmpeg's two.
        let columns = windows.len() + 2;
        let mut fps = vec![Vec::new(); columns];
        let mut cpu = vec![Vec::new(); columns];
        let mut pipelined = vec![(0u64, 0u64); windows.len()];
        for round in 0..rounds {
            let mut order: Vec<usize> = (0..columns).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for col in order {
                if let Some(&(how, window)) = windows.get(col) {
                    let cpu0 = process_cpu();
                    let (wall, stats) = units.run(how, window, threads);
                    let used = process_cpu() - cpu0;
                    assert_eq!(stats.ok as usize, units.len(), "{name}: every job");
                    pipelined[col] = (stats.pipelined, stats.pushed);
                    fps[col].push(n / wall.as_secs_f64());
                    cpu[col].push(used.as_secs_f64());
                } else {
                    let threading = match col - windows.len() {
                        0 => Threading::Default,
                        _ => Threading::Slice,
                    };
                    let args = ffmpeg_args(path, codec, threads, threading, None);
                    let run = run_ffmpeg(ffmpeg, &args).expect("ffmpeg");
                    if run.frames != units.len() as u64 {
                        eprintln!(
                            "{name}: FFmpeg output {} frames for {} requests (hidden frames): \
                             fps count each side's own",
                            run.frames,
                            units.len()
                        );
                    }
                    fps[col].push(run.frames as f64 / run.rtime);
                    cpu[col].push(run.utime + run.stime);
                }
            }
        }
        // Medians, and the best round of each column: on a shared machine the best round is
        // the one least disturbed, the nearest to what each side does alone.
        let best_fps: Vec<f64> = fps
            .iter()
            .map(|v| v.iter().copied().fold(0.0, f64::max))
            .collect();
        let fps: Vec<f64> = fps.iter_mut().map(|v| median(v)).collect();
        let cpu: Vec<f64> = cpu.iter_mut().map(|v| median(v)).collect();
        let (dflt, low) = (windows.len(), windows.len() + 1);
        eprintln!(
            "{name}: {} requests, {threads} threads, {rounds} rounds, median (best) fps; FFmpeg \
             default threading {:.1} ({:.1}) fps, {:.2} s CPU; low-delay threading {:.1} ({:.1}) \
             fps, {:.2} s CPU",
            units.len(),
            fps[dflt],
            best_fps[dflt],
            cpu[dflt],
            fps[low],
            best_fps[low],
            cpu[low],
        );
        for (i, (how, w)) in windows.iter().enumerate() {
            eprintln!(
                "  {how:?}, {w} in flight: {:.1} ({:.1}) fps, {:.2} s CPU, {} pipelined, {} pushed; \
                 /default {:.3} ({:.3}), /low-delay {:.3} ({:.3})",
                fps[i],
                best_fps[i],
                cpu[i],
                pipelined[i].0,
                pipelined[i].1,
                fps[i] / fps[dflt],
                best_fps[i] / best_fps[dflt],
                fps[i] / fps[low],
                best_fps[i] / best_fps[low],
            );
        }
    }
}
