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

/// One run of a client: a stream decoded in one context (one open of the video node).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunPlan {
    /// Index of the stream.
    pub stream: usize,
    /// Seed of the corrupted copy decoded instead of the stream.
    pub corrupt: Option<u64>,
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
        let corrupt = (s.corruptible && rng.gen_bool(0.25)).then(|| rng.gen());
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
        // Resolution switches: consecutive runs on streams of different sizes.
        assert!(
            runs.windows(2)
                .filter(|w| w[0].stream != w[1].stream)
                .count()
                > 100
        );
    }
}
