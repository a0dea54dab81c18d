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
use daedalus_daemon::{Context, DecoderConfig};
use daedalus_proto::formats::{BitDepth, CaptureLayout};
use daedalus_proto::wire::{self, Message, Status};

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

#[test]
#[ignore = "benchmark: needs DAEDALUS_BENCH_IVF, run in release mode"]
fn throughput() {
    let Some(path) = std::env::var_os("DAEDALUS_BENCH_IVF") else {
        eprintln!("set DAEDALUS_BENCH_IVF to an IVF file");
        return;
    };
    let threads = std::env::var("DAEDALUS_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let frames = ivf_frames(&std::fs::read(&path).unwrap());
    let rounds: usize = std::env::var("DAEDALUS_BENCH_ROUNDS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(3);
    let mut ctx = Context::new(
        1,
        DecoderConfig {
            threads,
            ..Default::default()
        },
    );
    let window: Option<usize> = std::env::var("DAEDALUS_BENCH_WINDOW")
        .ok()
        .and_then(|t| t.parse().ok());
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
