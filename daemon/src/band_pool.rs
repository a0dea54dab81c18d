// SPDX-License-Identifier: GPL-2.0
//! Helper threads that convert a picture's bands in parallel.
//!
//! With one picture per request the decoder's threads wait while daedalusd converts the picture
//! into the CAPTURE buffer, and that pass over the whole picture delays the job's completion.
//! A context therefore splits the conversion into bands
//! ([`crate::convert::split_semiplanar`]), one per decoding thread, and converts them on its own
//! thread plus `threads - 1` helpers of this pool, which sleep between pictures. Nothing is
//! allocated per picture: the bands live on the caller's stack and are handed over by pointer.
//! A pipelined decoder's pictures are converted on the context's thread alone (see
//! `Context`'s completion of pipelined jobs): there FFmpeg's frame threads keep every CPU busy.
//!
//! FFmpeg's own slice threads (`AVCodecContext.execute`) are not used for this: FFmpeg 5.1 keeps
//! the last `execute_with_mainfunc` callback of a decoder (VP9's loop filter) and would run it
//! again on the calling thread instead of our bands.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use crate::convert::{Band, MAX_BANDS};

/// The least a band converts (bytes written): below it, waking a helper costs about as much as
/// the band itself (a QCIF or CIF picture is converted on one thread).
pub const MIN_BAND_BYTES: usize = 128 * 1024;

/// The bands of the picture being converted, shared with the helpers.
#[derive(Clone, Copy)]
struct Work {
    bands: *mut Option<Band<'static>>,
    len: usize,
}

// SAFETY: the pointer is only dereferenced while `BandPool::run` waits for the bands it points
// to (see there); `Band` itself is `Send` (slices of bytes).
unsafe impl Send for Work {}

#[derive(Default)]
struct State {
    work: Option<Work>,
    /// Index of the next band nobody took yet.
    next: usize,
    /// Bands taken or not yet taken that are not converted yet.
    pending: usize,
    shutdown: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// A picture arrived (or shutdown).
    work_ready: Condvar,
    /// The last band of a picture is done.
    all_done: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A band never panics; if something did, the state is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the next band of the current picture, if any is left.
    fn take(state: &mut State) -> Option<(Work, usize)> {
        let work = state.work?;
        (state.next < work.len).then(|| {
            state.next += 1;
            (work, state.next - 1)
        })
    }

    /// Converts band `i` of `work`, then counts it done.
    fn convert(&self, work: Work, i: usize) {
        // SAFETY: `i < work.len` and band `i` was handed out once (`take`), so this is the only
        // reference to it; `BandPool::run` keeps the bands alive until `pending` reaches 0,
        // which happens only below, after the last use.
        if let Some(band) = unsafe { &mut *work.bands.add(i) } {
            band.convert();
        }
        let mut state = self.lock();
        state.pending -= 1;
        if state.pending == 0 {
            self.all_done.notify_one();
        }
    }
}

/// A context's conversion helpers.
pub struct BandPool {
    shared: Arc<Shared>,
    helpers: Vec<JoinHandle<()>>,
}

impl BandPool {
    /// A pool converting pictures in `threads` bands: the caller's thread and `threads - 1`
    /// helpers (0: one band per CPU). A helper that cannot be started leaves fewer bands.
    pub fn new(threads: usize) -> BandPool {
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
        .min(MAX_BANDS);
        let shared = Arc::new(Shared::default());
        let mut helpers = Vec::with_capacity(threads.saturating_sub(1));
        for i in 1..threads {
            let s = Arc::clone(&shared);
            match std::thread::Builder::new()
                .name(format!("bands{i}"))
                .spawn(move || helper(&s))
            {
                Ok(h) => helpers.push(h),
                Err(e) => {
                    log::warn!("conversion helper thread not started: {e}");
                    break;
                }
            }
        }
        BandPool { shared, helpers }
    }

    /// How many bands keep every thread busy.
    pub fn bands(&self) -> usize {
        self.helpers.len() + 1
    }

    /// How many bands to split a picture of `bytes` (written) into: one per thread, each of at
    /// least [`MIN_BAND_BYTES`].
    pub fn bands_for(&self, bytes: usize) -> usize {
        self.bands().min(bytes / MIN_BAND_BYTES).max(1)
    }

    /// Converts every band, the caller's thread taking its share; returns when all are done.
    pub fn run(&self, bands: &mut [Option<Band<'_>>]) {
        if bands.len() <= 1 || self.helpers.is_empty() {
            bands.iter_mut().flatten().for_each(Band::convert);
            return;
        }
        let work = Work {
            // Lifetime erased: the helpers use the bands only until `pending` is 0, and this
            // function does not return before that.
            bands: bands.as_mut_ptr().cast(),
            len: bands.len(),
        };
        {
            let mut state = self.shared.lock();
            state.work = Some(work);
            state.next = 0;
            state.pending = work.len;
        }
        self.shared.work_ready.notify_all();
        loop {
            let taken = Shared::take(&mut self.shared.lock());
            match taken {
                Some((work, i)) => self.shared.convert(work, i),
                None => break,
            }
        }
        let mut state = self.shared.lock();
        while state.pending > 0 {
            state = (self.shared.all_done)
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.work = None;
    }
}

impl Drop for BandPool {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.work_ready.notify_all();
        for h in self.helpers.drain(..) {
            let _ = h.join();
        }
    }
}

fn helper(shared: &Shared) {
    let mut state = shared.lock();
    loop {
        if state.shutdown {
            return;
        }
        if let Some((work, i)) = Shared::take(&mut state) {
            drop(state);
            shared.convert(work, i);
            state = shared.lock();
            continue;
        }
        state = (shared.work_ready)
            .wait(state)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

/// A [`BandPool`] started on first use, so that a context whose jobs never yield a picture
/// starts no helper threads.
pub struct LazyBandPool {
    threads: usize,
    pool: std::cell::OnceCell<BandPool>,
}

impl LazyBandPool {
    /// A pool of `threads` threads (the caller's included), not started yet.
    pub fn new(threads: usize) -> LazyBandPool {
        LazyBandPool {
            threads,
            pool: std::cell::OnceCell::new(),
        }
    }

    /// The pool, started now if it was not.
    pub fn get(&self) -> &BandPool {
        self.pool.get_or_init(|| BandPool::new(self.threads))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::{split_semiplanar, write_semiplanar, Planar, Plane, SemiPlanar};
    use daedalus_proto::formats::BitDepth;

    #[test]
    fn bands_on_helpers_equal_one_pass() {
        let (w, h) = (203usize, 117usize);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let pattern = |n: usize, salt: usize| -> Vec<u8> {
            (0..n).map(|i| (i * 31 + salt * 7 + i / 13) as u8).collect()
        };
        let (y, u, v) = (pattern(w * h, 1), pattern(cw * ch, 2), pattern(cw * ch, 3));
        let src = Planar {
            width: w,
            height: h,
            depth: BitDepth::Eight,
            y: Plane {
                data: &y,
                stride: w,
            },
            u: Plane {
                data: &u,
                stride: cw,
            },
            v: Plane {
                data: &v,
                stride: cw,
            },
        };
        let layout = SemiPlanar {
            bytesperline: 256,
            chroma_offset: 256 * 120,
        };
        let size = 256 * (120 + ch);
        let mut one_pass = vec![0u8; size];
        write_semiplanar(&src, &mut one_pass, layout).unwrap();

        for threads in [1, 2, 3, 7] {
            let pool = BandPool::new(threads);
            assert_eq!(pool.bands(), threads);
            assert_eq!(pool.bands_for(size), 1, "a small picture is one band");
            assert_eq!(pool.bands_for(threads * MIN_BAND_BYTES), threads);
            assert_eq!(pool.bands_for(1920 * 1080 * 3 / 2), threads.min(23));
            // Several pictures through the same pool, with more and fewer bands than threads.
            for bands in [pool.bands(), 1, 2 * threads + 1, pool.bands()] {
                let mut banded = vec![0u8; size];
                let mut split = split_semiplanar(&src, &mut banded, layout, bands).unwrap();
                pool.run(split.as_mut_slice());
                assert!(banded == one_pass, "{threads} threads, {bands} bands");
            }
        }
    }
}
