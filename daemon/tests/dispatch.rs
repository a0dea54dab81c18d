// SPDX-License-Identifier: GPL-2.0
//! The whole daemon (dispatcher + one thread per context) over an in-memory transport: several
//! clients stream at once, with context events, pipelined jobs and malformed messages.

mod common;

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::thread;

use common::*;
use daedalus_daemon::{DaemonConfig, DecoderConfig};
use daedalus_proto::wire::{Completion, ContextEvent, MAGIC};

struct Stream {
    frames: Vec<Vec<u8>>,
    md5: Vec<String>,
}

fn stream(name: &str, md5: &str) -> Stream {
    let frames = ivf_frames(&std::fs::read(data_dir().join(name)).unwrap());
    Stream {
        frames,
        md5: read_framemd5(&data_dir().join(md5)),
    }
}

/// Streams `s` through the daemon `repeat` times (flushing in between), keeping up to
/// `in_flight` jobs queued; checks that completions come in order and the frames match.
fn play(
    tx: &Sender<Vec<u8>>,
    done: &Receiver<Completion>,
    cfg: ClientConfig,
    s: &Stream,
    in_flight: usize,
    repeat: usize,
    open: bool,
) {
    let ctx_id = cfg.ctx_id;
    if open {
        tx.send(event(ContextEvent::Open, ctx_id)).unwrap();
    }
    let mut client = Client::new(cfg);
    let mut last_job = 0;
    for round in 0..repeat {
        if round > 0 {
            tx.send(event(ContextEvent::Flush, ctx_id)).unwrap();
        }
        let mut pending = VecDeque::new();
        let mut finish_one = |pending: &mut VecDeque<_>, client: &mut Client| {
            let job = pending.pop_front().unwrap();
            let c = done.recv().expect("completion");
            assert_eq!(c.ctx_id, ctx_id);
            assert!(c.job_id > last_job, "completions out of order");
            last_job = c.job_id;
            client.finish(job, &c);
        };
        for f in &s.frames {
            if let Some(job) = client.prepare(f) {
                tx.send(job.message.clone()).unwrap();
                pending.push_back(job);
                if pending.len() >= in_flight {
                    finish_one(&mut pending, &mut client);
                }
            }
        }
        while !pending.is_empty() {
            finish_one(&mut pending, &mut client);
        }
    }
    tx.send(event(ContextEvent::Close, ctx_id)).unwrap();
    let want: Vec<String> = (0..repeat).flat_map(|_| s.md5.iter().cloned()).collect();
    assert_eq!(client.displayed, want, "context {ctx_id}");
}

#[test]
fn parallel_contexts_through_the_dispatcher() {
    let eight = Arc::new(stream(
        "tiny-96x64-8bit-arf.ivf",
        "tiny-96x64-8bit-arf.ivf.ffmpeg-yuv420p.framemd5",
    ));
    let ten = Arc::new(stream(
        "tiny-97x61-10bit-arf.ivf",
        "tiny-97x61-10bit-arf.ivf.ffmpeg-yuv420p10le.framemd5",
    ));
    let (transport, tx) = MemTransport::new();
    let transport = Arc::new(transport);
    let config = DaemonConfig {
        decoder: DecoderConfig {
            threads: 2,
            ..Default::default()
        },
        queue_depth: 4,
        max_buffers: 6,
    };
    let daemon = {
        let t = Arc::clone(&transport);
        thread::spawn(move || daedalus_daemon::run(t, &config))
    };

    // Garbage and events for unknown contexts first: skipped.
    tx.send(vec![1, 2, 3]).unwrap();
    let mut bad = event(ContextEvent::Open, 9);
    bad[4] = 77;
    tx.send(bad).unwrap();
    let mut short = vec![0u8; 40];
    short[..4].copy_from_slice(&MAGIC.to_ne_bytes());
    tx.send(short).unwrap();
    tx.send(event(ContextEvent::Flush, 42)).unwrap();
    tx.send(event(ContextEvent::Close, 42)).unwrap();

    let clients: Vec<(ClientConfig, Arc<Stream>, usize, bool)> = vec![
        (ClientConfig::new(1), Arc::clone(&eight), 2, true),
        (ClientConfig::new(2), Arc::clone(&ten), 1, true),
        (
            ClientConfig {
                tight_output: true,
                data_offset: 7,
                ..ClientConfig::new(3)
            },
            Arc::clone(&eight),
            2,
            true,
        ),
        // Never announced with ContextOpen (e.g. the daemon restarted mid-stream).
        (ClientConfig::new(4), Arc::clone(&ten), 2, false),
    ];
    let handles: Vec<_> = clients
        .into_iter()
        .map(|(cfg, s, in_flight, open)| {
            let done = transport.register(cfg.ctx_id);
            let tx = tx.clone();
            thread::spawn(move || play(&tx, &done, cfg, &s, in_flight, 3, open))
        })
        .collect();
    for h in handles {
        h.join().expect("client");
    }
    // A statistics request, then the end of input shuts the daemon down.
    tx.send(Vec::new()).unwrap();
    drop(tx);
    let summary = daemon.join().unwrap().expect("daemon run");
    assert_eq!(summary.malformed, 3);
    assert_eq!(summary.contexts, 4);
    let mut stats = summary.stats.clone();
    stats.sort_by_key(|(id, _)| *id);
    let ids: Vec<u32> = stats.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [1, 2, 3, 4]);
    for (id, s) in &stats {
        assert_eq!(s.jobs(), 3 * 14, "context {id}");
        assert_eq!(s.ok, s.jobs(), "context {id}");
        assert_eq!(s.hidden, 3 * 2, "context {id}");
        eprintln!("context {id}: {s}");
    }
}
