// SPDX-License-Identifier: GPL-2.0
//! The seeded schedule of `daedalus stress`: each client draws its runs from its own ChaCha8
//! stream of the seed (stream number = client number), so a seed gives the same runs, seeks,
//! corruptions and disturbances (at the same frame of each run) every time. What the device
//! does in between (which request completes when, which picture a daemon kill hits) is timing,
//! not schedule.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::engine::{Action, MAX_IN_FLIGHT};

/// What the schedule knows of a stream.
#[derive(Clone, Debug)]
pub struct StreamChoice {
    /// Packets (H.264: pictures).
    pub packets: u64,
    /// Packets decoding may start at.
    pub keys: Vec<u64>,
    /// Whether corrupted copies of it can be made.
    pub corruptible: bool,
    /// Its first picture size (to switch resolution between runs).
    pub size: (u32, u32),
}

/// A damaged copy of a stream, decoded instead of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Damage {
    /// [`crate::stress::corrupt::corrupt`]'s copy of this seed (stress).
    Corrupt(u64),
    /// [`crate::stress::corrupt::mutate`]'s copy of this seed (`--mutate`).
    Mutate(u64),
}

/// One run of a client: a stream decoded in one context (one open of the video node).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunPlan {
    /// Index of the stream.
    pub stream: usize,
    /// The damaged copy decoded instead of the stream.
    pub corrupt: Option<Damage>,
    /// Packet to start at (a key frame; 0: the start).
    pub start: u64,
    /// Requests in flight.
    pub in_flight: usize,
    /// Disturbances, at the given frame of the run (counted by the engine's ticks), in order.
    pub events: Vec<(u64, Action)>,
}

/// A client's schedule.
pub struct Schedule {
    rng: ChaCha8Rng,
    last: Option<usize>,
}

impl Schedule {
    /// The schedule of client `client` for `seed`.
    pub fn new(seed: u64, client: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(client);
        Schedule { rng, last: None }
    }

    /// The next run over `streams` (not empty).
    pub fn next_run(&mut self, streams: &[StreamChoice]) -> RunPlan {
        let rng = &mut self.rng;
        // Half the time, switch to a stream of another resolution than the last run's.
        let other: Vec<usize> = match self.last {
            Some(l) if rng.gen_bool(0.5) => (0..streams.len())
                .filter(|&i| streams[i].size != streams[l].size)
                .collect(),
            _ => Vec::new(),
        };
        let stream = if other.is_empty() {
            rng.gen_range(0..streams.len())
        } else {
            other[rng.gen_range(0..other.len())]
        };
        self.last = Some(stream);
        let s = &streams[stream];
        let corrupt = (s.corruptible && rng.gen_bool(0.25)).then(|| Damage::Corrupt(rng.gen()));
        let start = if rng.gen_bool(0.3) {
            s.keys.choose(rng).copied().unwrap_or(0)
        } else {
            0
        };
        let in_flight = rng.gen_range(1..=MAX_IN_FLIGHT.min(6));
        let mut events = Vec::new();
        let n_events = match rng.gen_range(0..10) {
            0..=3 => 0,
            4..=7 => 1,
            _ => 2,
        };
        let span = s.packets.saturating_sub(start).max(1);
        for _ in 0..n_events {
            let at = rng.gen_range(0..span);
            let action = match rng.gen_range(0..3) {
                0 => Action::Close,
                1 => Action::Restart,
                _ => Action::DropQueued,
            };
            events.push((at, action));
        }
        events.sort_by_key(|&(at, _)| at);
        // Nothing after a close.
        if let Some(i) = events.iter().position(|&(_, a)| a == Action::Close) {
            events.truncate(i + 1);
        }
        RunPlan {
            stream,
            corrupt,
            start,
            in_flight,
            events,
        }
    }
}

impl Schedule {
    /// A soak run of stream `stream`: the whole stream from its start, clean, undisturbed, with
    /// 1 to 6 requests in flight.
    pub fn soak_run(&mut self, stream: usize) -> RunPlan {
        RunPlan {
            stream,
            corrupt: None,
            start: 0,
            in_flight: self.rng.gen_range(1..=MAX_IN_FLIGHT.min(6)),
            events: Vec::new(),
        }
    }
}

/// The runs of `daedalus stress --mutate`: `per_codec` mutated copies for each entry of
/// `by_codec` (the indices of one codec's streams; empty entries are skipped), the codecs
/// interleaved, each copy of a stream of its codec drawn from `seed` with its own mutation seed
/// and 1 to 6 requests in flight; whole streams, undisturbed.
pub fn mutants(seed: u64, by_codec: &[Vec<usize>], per_codec: u64) -> Vec<RunPlan> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Another stream of the seed than any client's schedule (streams 0..clients).
    rng.set_stream(u64::MAX);
    let mut runs = Vec::new();
    for _ in 0..per_codec {
        for streams in by_codec.iter().filter(|s| !s.is_empty()) {
            let stream = streams[rng.gen_range(0..streams.len())];
            runs.push(RunPlan {
                stream,
                corrupt: Some(Damage::Mutate(rng.gen())),
                start: 0,
                in_flight: rng.gen_range(1..=MAX_IN_FLIGHT.min(6)),
                events: Vec::new(),
            });
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streams() -> Vec<StreamChoice> {
        vec![
            StreamChoice {
                packets: 30,
                keys: vec![0, 10, 20],
                corruptible: true,
                size: (64, 48),
            },
            StreamChoice {
                packets: 10,
                keys: vec![0],
                corruptible: false,
                size: (352, 288),
            },
        ]
    }

    #[test]
    fn same_seed_same_schedule() {
        let s = streams();
        let runs = |seed, client| {
            let mut sch = Schedule::new(seed, client);
            (0..50).map(|_| sch.next_run(&s)).collect::<Vec<_>>()
        };
        assert_eq!(runs(42, 0), runs(42, 0));
        assert_ne!(runs(42, 0), runs(42, 1));
        assert_ne!(runs(42, 0), runs(43, 0));
    }

    #[test]
    fn mutants_per_codec_reproducible() {
        let by_codec = vec![vec![0, 2], vec![], vec![1]];
        let runs = mutants(9, &by_codec, 50);
        assert_eq!(runs.len(), 100);
        assert_eq!(runs, mutants(9, &by_codec, 50));
        assert_ne!(runs, mutants(10, &by_codec, 50));
        // Interleaved: even runs of the first codec, odd ones of the other.
        for (i, r) in runs.iter().enumerate() {
            assert_eq!(r.stream == 1, i % 2 == 1, "{i}: {r:?}");
            assert!(matches!(r.corrupt, Some(Damage::Mutate(_))));
            assert!(r.events.is_empty() && r.start == 0);
        }
        assert!(runs.iter().any(|r| r.stream == 0) && runs.iter().any(|r| r.stream == 2));
        let seeds: std::collections::HashSet<_> = runs.iter().map(|r| r.corrupt).collect();
        assert_eq!(seeds.len(), runs.len());
    }

    #[test]
    fn runs_are_valid_and_varied() {
        let s = streams();
        let mut sch = Schedule::new(1, 0);
        let runs: Vec<_> = (0..400).map(|_| sch.next_run(&s)).collect();
        for r in &runs {
            let st = &s[r.stream];
            assert!(st.keys.contains(&r.start), "{r:?}");
            assert!((1..=MAX_IN_FLIGHT).contains(&r.in_flight));
            assert!(r.corrupt.is_none() || st.corruptible);
            assert!(r.events.windows(2).all(|w| w[0].0 <= w[1].0));
            let closes = r.events.iter().filter(|e| e.1 == Action::Close).count();
            assert!(closes <= 1);
            if closes == 1 {
                assert_eq!(r.events.last().map(|e| e.1), Some(Action::Close));
            }
        }
        let any = |f: &dyn Fn(&RunPlan) -> bool| runs.iter().any(f);
        assert!(any(&|r| r.corrupt.is_some()));
        assert!(any(&|r| r.start > 0));
        assert!(any(&|r| r.events.iter().any(|e| e.1 == Action::DropQueued)));
        assert!(any(&|r| r.events.iter().any(|e| e.1 == Action::Restart)));
        assert!(any(&|r| r.events.iter().any(|e| e.1 == Action::Close)));
        assert!(any(&|r| r.stream == 1) && any(&|r| r.stream == 0));
        assert!(runs
            .iter()
            .all(|r| matches!(r.corrupt, None | Some(Damage::Corrupt(_)))));
        // Resolution switches: consecutive runs on streams of different sizes.
        assert!(
            runs.windows(2)
                .filter(|w| w[0].stream != w[1].stream)
                .count()
                > 100
        );
    }
}
