// SPDX-License-Identifier: GPL-2.0
//! What the daemon has mapped of each vb2 buffer ([`BufMap`], the driver's data of every buffer),
//! and the dma-buf fds a job carries for the buffers it has not ([`JobFds`]).
//!
//! The daemon maps a buffer's memory through a dma-buf fd the first time a job names the buffer,
//! then keeps the mapping: a job carries an fd only for a buffer whose current memory (its
//! generation, which changes with every `buf_init`) the attached daemon (its session) has not
//! mapped yet.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::device::Daedalus;
use crate::media::fd::{DmaBuf, FdReservation};
use crate::media::m2m::{ActiveJob, JobBuf};
use crate::media::prelude::*;

/// Source of buffer generations, shared by all buffers.
static NEXT_GENERATION: AtomicU32 = AtomicU32::new(1);

/// The driver's data of a vb2 buffer (`M2mDriver::Buf`). Changed in `buf_init` (the buffer is
/// not queued then) and by the job that owns the buffer, under the job queue's lock or while
/// completing it: relaxed atomics are enough.
#[derive(Default)]
pub(crate) struct BufMap {
    /// Changes whenever the memory behind this buffer changes (`buf_init`).
    generation: AtomicU32,
    /// The generation the attached daemon has mapped, valid if `mapped_by` is its session.
    mapped_generation: AtomicU32,
    mapped_by: AtomicU64,
}

impl BufMap {
    /// New memory behind the buffer (vb2 `buf_init`): a new generation, mapped by nobody.
    pub(crate) fn init(&self) {
        self.generation.store(
            NEXT_GENERATION.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        self.mapped_by.store(0, Ordering::Relaxed);
    }

    /// The generation of the buffer's memory (sent with every job naming it).
    pub(crate) fn generation(&self) -> u32 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Whether daemon session `session` has the buffer's current memory mapped.
    fn mapped(&self, session: u64) -> bool {
        self.mapped_by.load(Ordering::Relaxed) == session
            && self.mapped_generation.load(Ordering::Relaxed) == self.generation()
    }

    /// Session `session` got an fd of the buffer's current memory.
    fn mark_mapped(&self, session: u64) {
        self.mapped_by.store(session, Ordering::Relaxed);
        self.mapped_generation
            .store(self.generation(), Ordering::Relaxed);
    }
}

/// A dma-buf fd being handed to the daemon: reserved first, installed only once the message
/// carrying it reached userspace. Dropping it gives up the reservation, then the reference.
struct FdInstall {
    res: FdReservation,
    buf: DmaBuf,
}

impl FdInstall {
    /// Gets a dma-buf for the memory of the job's buffer `which` and reserves an fd for it.
    fn prepare(job: &ActiveJob<Daedalus>, which: JobBuf) -> Result<FdInstall> {
        let buf = job.export_dmabuf(which)?;
        let res = FdReservation::new()?;
        Ok(FdInstall { res, buf })
    }

    /// Installs the fd: the daemon's file table now owns our reference.
    fn commit(self) {
        self.res.install(self.buf);
    }
}

/// The dma-buf fds a job carries to daemon session `session`: one per buffer it has not mapped.
pub(crate) struct JobFds {
    /// OUTPUT, CAPTURE.
    fds: [Option<FdInstall>; 2],
}

const BUFS: [JobBuf; 2] = [JobBuf::Output, JobBuf::Capture];

impl JobFds {
    /// Prepares the fds `job` needs for `session` (none are installed yet: dropping the value
    /// gives them up).
    pub(crate) fn new(job: &ActiveJob<Daedalus>, session: u64) -> Result<JobFds> {
        let mut fds: [Option<FdInstall>; 2] = [None, None];
        for (slot, which) in fds.iter_mut().zip(BUFS) {
            let mapped = job.data(which).is_some_and(|b| b.mapped(session));
            if !mapped {
                *slot = Some(FdInstall::prepare(job, which)?);
            }
        }
        Ok(JobFds { fds })
    }

    /// The fd of buffer `which`, -1 if none is sent.
    pub(crate) fn fd(&self, which: JobBuf) -> i32 {
        let [out, cap] = &self.fds;
        let f = match which {
            JobBuf::Output => out,
            JobBuf::Capture => cap,
        };
        f.as_ref().map_or(-1, |f| f.res.fd())
    }

    /// Installs the fds (the message naming them reached the daemon) and records the buffers as
    /// mapped by `session`.
    pub(crate) fn commit(self, job: &ActiveJob<Daedalus>, session: u64) {
        for (f, which) in self.fds.into_iter().zip(BUFS) {
            if let Some(f) = f {
                if let Some(b) = job.data(which) {
                    b.mark_mapped(session);
                }
                f.commit();
            }
        }
    }
}
