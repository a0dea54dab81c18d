// SPDX-License-Identifier: GPL-2.0
//! How daedalus's processes set glibc's allocator up: daedalusd, whose decoding contexts are
//! threads that come and go, and the `daedalus` CLI (for `stress`, whose clients are; every
//! subcommand applies it, which costs `decode` and `bench` an mmap per pooled frame buffer). Both free
//! frame-sized blocks (a 1080p picture is 3-6 MiB) by the hundred and must come back to the
//! same idle memory after every context (docs/stress.md, "The soak" and "What it found").
//!
//! Hand-written because it is two glibc calls (`mallopt`, `malloc_trim`, bound by `libc`) and the
//! reasons for them; no crate states this policy. Other C libraries (musl) do not keep
//! freed memory this way: there both functions do nothing. Never call [`configure`] from a
//! library loaded into someone else's process (the VA-API driver): the allocator is the
//! application's.

/// The size from which glibc gives an allocation its own mapping, returned to the kernel when it
/// is freed: fixed for the process's life by [`configure`].
pub const MMAP_THRESHOLD: usize = 256 * 1024;

/// Sets the allocator up for a process whose threads come and go with decoding contexts; call
/// it early in `main`, once the logger is set up (a refusal is logged as a warning) and before
/// any thread starts.
///
/// glibc starts with a 128 KiB mmap threshold, but each time a mapped block is freed it raises
/// that threshold to the block's size (up to 32 MiB) and its trim threshold to twice that. After
/// a context has freed one large block (a 1080p frame buffer is 3-6 MiB; FFmpeg and libdav1d
/// free bigger ones), every later frame comes from the allocating thread's arena, and when the
/// context ends its freed frames merge into the arena's top chunk, which stays as long as it is
/// below the raised trim threshold: neither `free` nor `malloc_trim` (which releases the main
/// arena's top and binned free chunks only) gives it back. FFmpeg's and libdav1d's threads come
/// with each context and use up to 8 arenas per CPU. Measured in the soak (6 rounds of three
/// 1080p contexts, docs/stress.md): the idle daemon's anonymous RSS grew 20, 47, 73, 100, 142
/// MiB round after round, in eight arena heaps of 9-25 MiB resident each; with the threshold
/// fixed at 256 KiB (which turns the dynamic adjustment off) it stayed at 5.5-6.6 MiB. The
/// frame-sized blocks are pooled per context (AVBufferPool, libdav1d's picture pool, the
/// client's planar picture), so the extra mmap / munmap happens per context, not per picture.
pub fn configure() {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: mallopt has no memory-safety preconditions: it changes the allocator's
        // parameters under the main arena's lock (called before other threads exist only so
        // that every allocation sees one setting). 256 KiB fits in a c_int.
        let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int) };
        if ok != 1 {
            log::warn!(
                "mallopt(M_MMAP_THRESHOLD, {MMAP_THRESHOLD}) failed: idle memory may stay high"
            );
        }
    }
}

/// Gives the memory the allocator keeps back to the kernel, e.g. when the last context thread
/// ends (the daemon is idle): the free pages of the main arena's top and of every arena's
/// binned free chunks (below [`MMAP_THRESHOLD`], blocks live in arenas: packets, decoder
/// state). What is live stays, so an idle process's RSS is what it really holds.
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
