// SPDX-License-Identifier: GPL-2.0
//! How daedalus's processes set glibc's allocator up: daedalusd, whose decoding contexts are
//! threads that come and go, and the `daedalus` CLI (for `stress`, whose clients are; every
//! subcommand applies it). Both free
//! frame-sized blocks (a 1080p picture is 3-6 MiB) by the hundred and must come back to the
//! same idle memory after every context (docs/stress.md, "The soak" and "What it found").
//!
//! Hand-written because it is two glibc calls (`mallopt`, `malloc_trim`, bound by `libc`) and the
//! reasons for them; no crate states this policy. Other C libraries (musl) do not keep
//! freed memory this way: there both functions do nothing. Never call [`configure`] from a
//! library loaded into someone else's process (the VA-API driver): the allocator is the
//! application's.

/// The size from which glibc gives an allocation its own mapping, returned to the kernel when it
/// is freed: fixed for the process's life by [`configure`], at the largest value glibc takes
/// (half its 64 MiB arena heaps), so that no block a decoder allocates and frees per picture
/// gets a mapping of its own.
pub const MMAP_THRESHOLD: usize = 32 << 20;

/// The free memory at the top of an arena above which `free` gives it back to the kernel:
/// fixed by [`configure`]. Above what a decoder allocates and frees per picture (the per-frame
/// blocks of libdav1d and FFmpeg's H.264 frame threads: 0.4-0.7 MiB at 1080p, 1.8 at 4K), far
/// below what a context's frame pool frees when the context ends (tens of MiB), and small
/// enough that what the arenas' tops keep when the daemon is idle stays a few MiB.
pub const TRIM_THRESHOLD: usize = 2 << 20;

/// Arenas at most ([`configure`]): a few, so that the decoding threads rarely wait for one
/// another's allocations while the tops they keep stay bounded (at most this many times
/// [`TRIM_THRESHOLD`]).
pub const ARENA_MAX: usize = 4;

/// The largest request served from a fastbin ([`configure`]): none. A freed fastbin chunk
/// stays marked in use until the next consolidation, so a large chunk freed below it cannot
/// reach the arena's top; `malloc_trim` consolidates first, which then merges them into the
/// top of a thread arena, and it trims the tops of the main arena only: the memory stayed
/// resident until that arena's next large free (measured: the idle daemon at 15-29 MiB
/// anonymous, in one arena heap, after 2 of 17 soak rounds; 5.3-6.5 MiB after the others;
/// glibc 2.36's `mtrim` calls `systrim` for the main arena only).
/// Without fastbins a free coalesces at once, and one that reaches a top trims it above
/// [`TRIM_THRESHOLD`]. Small blocks still come from each thread's cache (tcache) first.
pub const MXFAST: usize = 0;

/// Sets the allocator up for a process whose threads come and go with decoding contexts; call
/// it early in `main`, once the logger is set up (a refusal is logged as a warning) and before
/// any thread starts.
///
/// glibc starts with a 128 KiB mmap threshold and a 128 KiB trim threshold, and each time a
/// mapped block is freed it raises the mmap threshold to the block's size (up to 32 MiB) and the
/// trim threshold to twice that. After a context has freed one large block (a 1080p frame
/// buffer is 3-6 MiB; FFmpeg and libdav1d free bigger ones), every later frame comes from the
/// allocating thread's arena, and when the context ends its freed frames merge into the
/// arena's top chunk, which stays as long as it is below the raised trim threshold (up to 64
/// MiB): neither `free` nor `malloc_trim` (which releases the main arena's top and binned free
/// chunks only) gives it back. FFmpeg's and libdav1d's threads come with each context and use
/// up to 8 arenas per CPU. Measured in the soak (6 rounds of three 1080p contexts,
/// docs/stress.md): the idle daemon's anonymous RSS grew 20, 47, 73, 100, 142 MiB round after
/// round, in eight arena heaps of 9-25 MiB resident each.
///
/// So both thresholds are fixed (which turns the dynamic adjustment off) and the arenas are
/// few: the mmap threshold high, so that no block a decoder allocates and frees per picture
/// gets a mapping of its own; the trim threshold above that per-picture churn, so that a
/// context's frames freed at its end go back to the kernel from its arena's top while at most
/// [`ARENA_MAX`] × [`TRIM_THRESHOLD`] stays; [`release_free_memory`] then releases the free
/// chunks inside the arenas. Measured (2026-12-05, `make soak SOAK_FRAMES=2160` for the idle
/// memory, `make bench` for the rest):
/// - a 256 KiB mmap threshold alone (the first fix): idle 5.5-7.4 MiB, but every per-picture
///   block above it got a fresh mapping, a page fault per 4 KiB page on every picture
///   (`daedalus bench`'s `daemon_faults`: 108 a frame for 1080p AV1, 183 for pipelined H.264,
///   457 for 4K AV1, 11 for VP9, whose FFmpeg decoder pools everything; under TCG the daemon
///   spent 26 % more CPU than FFmpeg on 4K AV1);
/// - 32 MiB / 8 MiB with glibc's 8 arenas per CPU: 6-28 faults a frame, but the idle daemon
///   kept 12-47 MiB in the arenas' tops;
/// - 32 MiB / 8 MiB with one arena (`malloc_trim` releases the main arena's top): idle 4.7-5.6
///   MiB, but libdav1d's threads then queue for the one arena's lock (1080p AV1: the daemon's
///   CPU a frame 176 ms against FFmpeg's 142);
/// - 32 MiB / 2 MiB with 4 arenas: idle 5.0-5.6 MiB over a short soak (6 rounds), but the full
///   soak (28 rounds) failed: 17-29 MiB idle after 2-3 rounds, in one thread arena's heap
///   ([`MXFAST`]);
/// - the same without fastbins (this): the 6,000-picture soak that had failed with 15.8 and 29.2
///   MiB idle (same seed) passed, idle 4.9-8.3 MiB.
pub fn configure() {
    #[cfg(target_env = "gnu")]
    for (param, name, value) in [
        (libc::M_ARENA_MAX, "M_ARENA_MAX", ARENA_MAX),
        (libc::M_MMAP_THRESHOLD, "M_MMAP_THRESHOLD", MMAP_THRESHOLD),
        (libc::M_TRIM_THRESHOLD, "M_TRIM_THRESHOLD", TRIM_THRESHOLD),
        (libc::M_MXFAST, "M_MXFAST", MXFAST),
    ] {
        // SAFETY: mallopt has no memory-safety preconditions: it changes the allocator's
        // parameters under the main arena's lock (called before other threads exist only so
        // that every allocation sees one setting). The values fit in a c_int.
        let ok = unsafe { libc::mallopt(param, value as libc::c_int) };
        if ok != 1 {
            log::warn!("mallopt({name}, {value}) failed: idle memory may stay high");
        }
    }
}

/// Gives the memory the allocator keeps back to the kernel, e.g. when the last context thread
/// ends (the daemon is idle): the free pages of the main arena's top and of every arena's
/// binned free chunks (below [`MMAP_THRESHOLD`], blocks live there: packets, decoder state,
/// frames; with [`configure`] every thread's are in the main arena); the top is returned by
/// `free` itself above [`TRIM_THRESHOLD`]. What is live stays, so an idle process's RSS is what it really holds.
/// `malloc_trim` frees pages with madvise, munmap and brk (which daedalusd's seccomp filter
/// allows).
pub fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks the allocator's own free lists, under their locks; it
    // takes no pointer and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
