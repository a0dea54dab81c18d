// SPDX-License-Identifier: GPL-2.0
//! mem2mem jobs: [`RunOps`] (the driver's `device_run`), [`DeviceRun`] (one call of it),
//! [`ActiveJob`] (two buffers taken for a decode job, completed exactly once), the
//! `v4l2_m2m_ops` table, and the `queue_init` that sets up a file's two vb2 queues.
//!
//! The m2m core calls `device_run` when a file has a buffer on both queues, from `QBUF` /
//! `STREAMON` (device lock held) or from its job work (without it): the driver gets no
//! [`LockedFile`](super::v4l2::file::LockedFile) there. The layer decides how the buffers relate
//! to the m2m core ([`JobMode`]): a file whose OUTPUT queue may hold CAPTURE buffers keeps the
//! m2m job running until its [`ActiveJob`] completes (the core's held-buffer bookkeeping needs
//! `v4l2_m2m_buf_done_and_job_finish`); any other file's buffers leave the m2m queues and the
//! m2m job finishes when `device_run` returns, so other files run meanwhile.

use core::marker::PhantomData;
use core::mem::{size_of, ManuallyDrop};
use core::ptr::NonNull;

use super::bindings;
use super::fd::DmaBuf;
use super::kernel::{c_int, c_uint, c_ulong, c_void, check, check_ptr, code, Result};
use super::v4l2::device::{Driver, M2mDriver};
use super::v4l2::file::V4l2File;
use super::v4l2::format::BufType;
use super::vb2::{BufState, Vb2Buffer, Vb2VTable};

/// The driver's `device_run`.
pub(crate) trait RunOps: M2mDriver {
    /// The next OUTPUT and CAPTURE buffers of `run`'s file may become a job
    /// ([`DeviceRun::start`]). Runs without the device lock; must not sleep for long (the m2m
    /// core may call it from `QBUF`).
    fn device_run(run: &mut DeviceRun<'_, Self>);
}

/// How a job's buffers relate to the m2m core.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobMode {
    /// The buffers left the m2m queues and the m2m job finished when `device_run` returned
    /// (frame codecs): other files run meanwhile.
    Detached,
    /// The m2m job runs until the job completes (files whose OUTPUT queue offers
    /// `V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF`). `hold`: the OUTPUT buffer has that flag, so the
    /// CAPTURE buffer stays queued for more slices.
    Running {
        /// The CAPTURE buffer is held.
        hold: bool,
    },
}

impl JobMode {
    /// Whether the CAPTURE buffer stays queued after the job (neither returned nor given a
    /// payload).
    pub(crate) fn hold(self) -> bool {
        match self {
            JobMode::Detached => false,
            JobMode::Running { hold } => hold,
        }
    }
}

/// One of the two buffers of a job.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobBuf {
    /// The OUTPUT (bitstream) buffer.
    Output,
    /// The CAPTURE (picture) buffer.
    Capture,
}

/// How a job's buffers return to userspace ([`ActiveJob::complete`]).
#[derive(Clone, Copy)]
pub(crate) struct Disposal {
    /// The CAPTURE buffer's state (if it is not held). In [`JobMode::Running`] the m2m core
    /// returns the OUTPUT buffer with this state too.
    pub(crate) capture: BufState,
    /// The CAPTURE buffer's payload (written only if it is not held).
    pub(crate) capture_bytesused: u32,
    /// The OUTPUT buffer's state ([`JobMode::Detached`] only).
    pub(crate) output: BufState,
}

impl Disposal {
    /// Both buffers in error, no picture.
    pub(crate) const FAILED: Disposal = Disposal {
        capture: BufState::Error,
        capture_bytesused: 0,
        output: BufState::Error,
    };
}

/// One `device_run` call for a file with a buffer on both queues.
///
/// # Invariants
///
/// `src` / `dst` are the file's next OUTPUT / CAPTURE buffers (`v4l2_m2m_next_*_buf`), still in
/// the m2m ready queues until [`DeviceRun::start`] runs; `file` is the file the m2m core runs the
/// job of (its `priv`), alive for `'a`. `started` records whether `start` ran, `running` whether
/// it made a [`JobMode::Running`] job (whose completion finishes the m2m job, so the trampoline
/// does not).
pub(crate) struct DeviceRun<'a, T: M2mDriver> {
    file: &'a V4l2File<T>,
    src: NonNull<bindings::vb2_v4l2_buffer>,
    dst: NonNull<bindings::vb2_v4l2_buffer>,
    started: bool,
    running: bool,
}

impl<'a, T: M2mDriver> DeviceRun<'a, T> {
    /// The file whose job this is.
    pub(crate) fn file(&self) -> &'a V4l2File<T> {
        self.file
    }

    /// Applies the controls of the OUTPUT buffer's request (if any) over the file's current ones
    /// (`v4l2_ctrl_request_setup`), so that the handler holds the full state of this frame.
    pub(crate) fn apply_request_controls(&self) -> Result {
        if self.started {
            return Err(code::EINVAL);
        }
        // SAFETY: the next OUTPUT buffer, owned by the m2m core's running job (type invariant).
        let req = unsafe { (*self.src.as_ptr()).vb2_buf.req_obj.req };
        if req.is_null() {
            return Ok(());
        }
        // SAFETY: the request is live while its buffer is in it; the file's handler is its
        // parent.
        check(unsafe { bindings::v4l2_ctrl_request_setup(req, self.file.handler().as_raw()) })
    }

    /// Copies the OUTPUT buffer's timestamp and flags to the CAPTURE buffer
    /// (`v4l2_m2m_buf_copy_metadata`).
    pub(crate) fn copy_metadata(&self) {
        if self.started {
            return;
        }
        // SAFETY: both buffers are the running job's (type invariant).
        unsafe { bindings::daedalus_m2m_buf_copy_metadata(self.src.as_ptr(), self.dst.as_ptr()) };
    }

    /// Takes the two buffers for a job ([`JobMode`] as the file's OUTPUT queue says), once: `None`
    /// on a second call, or if a buffer was never initialized (`buf_init`), which videobuf2 does
    /// not allow; the buffers are then returned in error at once.
    pub(crate) fn start(&mut self) -> Option<ActiveJob<T>> {
        if self.started {
            return None;
        }
        self.started = true;
        let file = self.file;
        let q = file.queue_raw(BufType::VideoOutputMplane);
        // SAFETY: the OUTPUT queue of a live file. Its flags only change under the device lock
        // while it has no buffers and does not stream (`LockedFile::set_hold_capture`), so not
        // while a job of it runs; the buffer is the running job's (type invariant).
        let (offers_hold, hold) = unsafe {
            (
                (*q).subsystem_flags & bindings::VB2_V4L2_FL_SUPPORTS_M2M_HOLD_CAPTURE_BUF != 0,
                (*self.src.as_ptr()).flags & bindings::V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF != 0,
            )
        };
        let mode = if offers_hold {
            self.running = true;
            JobMode::Running { hold }
        } else {
            let m2m = file.m2m_ctx();
            // SAFETY: the file's live m2m context; its next buffers are `src` and `dst` (type
            // invariant), which leave the ready queues here.
            unsafe {
                bindings::daedalus_m2m_src_buf_remove(m2m);
                bindings::daedalus_m2m_dst_buf_remove(m2m);
            }
            JobMode::Detached
        };
        // The job counts from here: the file and its queues stay until it completes.
        file.job_started();
        // INVARIANT: the buffers are the file's, taken as `mode` says, in videobuf2's active
        // state (queued, not returned); the job counts in `inflight` (just above).
        let job = ActiveJob {
            file: NonNull::from(file),
            // `Vb2Buffer` starts with the `vb2_v4l2_buffer` (its invariant 1).
            src: self.src.cast(),
            dst: self.dst.cast(),
            mode,
            _p: PhantomData,
        };
        if !job.src().is_ready() || !job.dst().is_ready() {
            job.complete(Disposal::FAILED);
            return None;
        }
        Some(job)
    }
}

/// Two buffers taken for a decode job, until they return to userspace.
///
/// # Invariants
///
/// 1. `src` / `dst` are the OUTPUT / CAPTURE [`Vb2Buffer`]s [`DeviceRun::start`] took from
///    `file`'s queues, in videobuf2's active state, owned by this value (out of the m2m ready
///    queues in [`JobMode::Detached`]; the m2m core's running job in [`JobMode::Running`]); both
///    are ready (their data is initialized).
/// 2. While it exists, the job counts in `file`'s `inflight`, so the file, its queues and its
///    m2m context are alive (V4l2File invariant 6).
/// 3. It is completed exactly once: by [`ActiveJob::complete`], or else by its drop, which warns
///    (once) and returns both buffers in error, so a driver bug shows in the kernel log instead
///    of hanging a client.
pub(crate) struct ActiveJob<T: M2mDriver> {
    file: NonNull<V4l2File<T>>,
    src: NonNull<Vb2Buffer<T::Buf>>,
    dst: NonNull<Vb2Buffer<T::Buf>>,
    mode: JobMode,
    _p: PhantomData<V4l2File<T>>,
}

// SAFETY: the job may be completed from any task (the daemon's ioctl, the watchdog, a file that
// stops streaming): the buffers and the file are owned or kept alive by it (invariants 1 and 2)
// and every C call it makes is independent of the calling task; the driver's data it reaches is
// `Sync` (`M2mDriver::Buf`, `M2mDriver::File`).
unsafe impl<T: M2mDriver> Send for ActiveJob<T> {}

impl<T: M2mDriver> ActiveJob<T> {
    /// The file whose job this is.
    pub(crate) fn file(&self) -> &V4l2File<T> {
        // SAFETY: alive while the job counts (invariant 2).
        unsafe { self.file.as_ref() }
    }

    /// The OUTPUT buffer.
    pub(crate) fn src(&self) -> &Vb2Buffer<T::Buf> {
        // SAFETY: owned by the job (invariant 1), so videobuf2 neither changes nor frees it
        // (Vb2Buffer invariant 3).
        unsafe { self.src.as_ref() }
    }

    /// The CAPTURE buffer.
    pub(crate) fn dst(&self) -> &Vb2Buffer<T::Buf> {
        // SAFETY: as in `src`.
        unsafe { self.dst.as_ref() }
    }

    /// The buffer `which`.
    pub(crate) fn buf(&self, which: JobBuf) -> &Vb2Buffer<T::Buf> {
        match which {
            JobBuf::Output => self.src(),
            JobBuf::Capture => self.dst(),
        }
    }

    /// The driver's data of buffer `which` (initialized: invariant 1).
    pub(crate) fn data(&self, which: JobBuf) -> Option<&T::Buf> {
        self.buf(which).data()
    }

    /// How the buffers relate to the m2m core.
    pub(crate) fn mode(&self) -> JobMode {
        self.mode
    }

    /// A new reference to a dma-buf of buffer `which`'s memory: the imported one (DMABUF
    /// queues), or one exported from its allocation (MMAP).
    pub(crate) fn export_dmabuf(&self, which: JobBuf) -> Result<DmaBuf> {
        let vb = self.buf(which).as_vb2();
        // SAFETY: the buffer and its queue are alive and owned by the job (invariants 1 and 2);
        // a DMABUF plane holds a reference to its dma-buf while the buffer is queued, and
        // `get_dmabuf` returns a new one (or an error pointer).
        unsafe {
            let q = (*vb).vb2_queue;
            if (*q).memory == bindings::VB2_MEMORY_DMABUF {
                let d = NonNull::new((*vb).planes[0].dbuf).ok_or(code::EINVAL)?;
                Ok(DmaBuf::get(d))
            } else {
                let get = (*(*q).mem_ops).get_dmabuf.ok_or(code::EINVAL)?;
                let d = check_ptr(get(
                    vb,
                    (*vb).planes[0].mem_priv,
                    bindings::O_RDWR as c_ulong,
                ))?;
                Ok(DmaBuf::from_owned(NonNull::new(d).ok_or(code::ENOMEM)?))
            }
        }
    }

    /// Ends the job: completes the OUTPUT buffer's request with the file's handler, sets the
    /// CAPTURE payload and returns the buffers as `how` says (CAPTURE before OUTPUT: completing
    /// the OUTPUT buffer may complete the request, which wakes the client, and the picture must
    /// be there by then, as the m2m core does), then stops counting in the file's jobs.
    pub(crate) fn complete(self, how: Disposal) {
        let mut this = ManuallyDrop::new(self);
        this.end(how);
    }

    /// Invariant 3: called once, by `complete` or the drop.
    fn end(&mut self, how: Disposal) {
        let file = self.file();
        let (src, dst) = (self.src(), self.dst());
        let hold = self.mode.hold();
        // SAFETY: the buffers are the job's and the file is alive (invariants 1, 2); the request
        // (if any) is live while its buffer is in it, with the file's handler as parent. Each
        // buffer is returned once, here: in Running mode by the m2m core's
        // `v4l2_m2m_buf_done_and_job_finish`, which also finishes the m2m job this one kept.
        unsafe {
            let req = src.request();
            if !req.is_null() {
                bindings::v4l2_ctrl_request_complete(req, file.handler().as_raw());
            }
            if !hold {
                (*dst.as_vb2()).planes[0].bytesused = how.capture_bytesused;
            }
            match self.mode {
                JobMode::Running { .. } => bindings::v4l2_m2m_buf_done_and_job_finish(
                    file.device().m2m_raw(),
                    file.m2m_ctx(),
                    how.capture.raw(),
                ),
                JobMode::Detached => {
                    bindings::vb2_buffer_done(dst.as_vb2(), how.capture.raw());
                    bindings::vb2_buffer_done(src.as_vb2(), how.output.raw());
                }
            }
        }
        // Last: the file may go as soon as it no longer counts the job.
        file.job_ended();
    }
}

impl<T: M2mDriver> Drop for ActiveJob<T> {
    fn drop(&mut self) {
        // SAFETY: no precondition.
        unsafe { bindings::daedalus_warn_job_dropped() };
        self.end(Disposal::FAILED);
    }
}

vtable! {
    /// The `v4l2_m2m_ops` of driver `T`.
    pub(super) struct M2mOpsVTable<T: Driver>: bindings::v4l2_m2m_ops {
        device_run: Some(device_run::<T>),
        job_ready: None,
        job_abort: None,
    }
}

/// `v4l2_m2m_ops.device_run`: the file's next buffers go to the driver, as a [`DeviceRun`]; the
/// m2m job finishes when the driver returns, unless it started a [`JobMode::Running`] job.
///
/// # Safety
///
/// Only called by the m2m core, with `priv_` = the `V4l2File<T>` of an m2m context made by
/// `open::<T>` (alive: its release cancels the context's jobs first).
unsafe extern "C" fn device_run<T: Driver>(priv_: *mut c_void) {
    // SAFETY: per the contract.
    let file = unsafe { &*priv_.cast::<V4l2File<T>>() };
    let m2m = file.m2m_ctx();
    // SAFETY: the file's live m2m context.
    let (src, dst) = unsafe {
        (
            bindings::daedalus_m2m_next_src_buf(m2m),
            bindings::daedalus_m2m_next_dst_buf(m2m),
        )
    };
    if let (Some(src), Some(dst)) = (NonNull::new(src), NonNull::new(dst)) {
        // INVARIANT: the next buffers of the file the m2m core runs.
        let mut run = DeviceRun {
            file,
            src,
            dst,
            started: false,
            running: false,
        };
        T::device_run(&mut run);
        if run.running {
            // The job's completion finishes the m2m job.
            return;
        }
    }
    // SAFETY: the m2m job of this context runs (we are its `device_run`) and is finished once.
    unsafe { bindings::v4l2_m2m_job_finish(file.device().m2m_raw(), m2m) };
}

/// `queue_init` of `v4l2_m2m_ctx_init`: sets up the OUTPUT and CAPTURE queues of a file.
///
/// The queues share the device lock with the ioctls (as cedrus does): the V4L2 core holds it
/// around every ioctl of an m2m node without `q_lock`, so videobuf2, which drops `q->lock` while
/// blocking in DQBUF, must be given that very lock.
///
/// # Safety
///
/// Called by the m2m core from the `v4l2_m2m_ctx_init` of `open::<T>`, with `priv_` = the file
/// being opened (pinned, fully initialized) and two zeroed queues.
pub(super) unsafe extern "C" fn queue_init<T: Driver>(
    priv_: *mut c_void,
    src_vq: *mut bindings::vb2_queue,
    dst_vq: *mut bindings::vb2_queue,
) -> c_int {
    // SAFETY: per the contract: pinned and fully initialized (its `m2m_ctx` is not set yet, which
    // nothing here reads).
    let file = unsafe { &*priv_.cast::<V4l2File<T>>() };
    let dev = file.device();
    let Ok(buf_struct_size) = c_uint::try_from(size_of::<Vb2Buffer<T::Buf>>()) else {
        return code::EINVAL.to_errno();
    };
    let (lock, dma_dev) = (dev.lock().as_raw(), dev.dma_dev());
    for (q, ty) in [
        (src_vq, BufType::VideoOutputMplane),
        (dst_vq, BufType::VideoCaptureMplane),
    ] {
        // SAFETY: the m2m core hands us both queues to fill before `vb2_queue_init`; the lock
        // and the DMA device outlive the file (M2mDevice invariant 5); the tables are `'static`.
        // INVARIANT: `drv_priv` is the file, `lock` the device lock, `ops` `Vb2VTable::<T>`, and
        // the buffers are `Vb2Buffer<T::Buf>` (V4l2File invariant 2, Vb2Buffer invariant 1).
        let r = unsafe {
            let q = &mut *q;
            q.type_ = ty.raw();
            q.io_modes = bindings::VB2_MMAP | bindings::VB2_DMABUF;
            q.drv_priv = priv_;
            q.buf_struct_size = buf_struct_size;
            q.ops = Vb2VTable::<T>::build();
            q.mem_ops = &bindings::vb2_dma_contig_memops;
            q.timestamp_flags = bindings::V4L2_BUF_FLAG_TIMESTAMP_COPY;
            // A client may ask for more contiguous memory than there is (64 MiB bitstream
            // buffers, 8K P010 pictures): the allocation then fails with ENOMEM, without the
            // page allocator's WARN for orders beyond MAX_PAGE_ORDER that any user of the
            // device could trigger (found by daedalus-ioctl-fuzz).
            q.gfp_flags = bindings::__GFP_NOWARN;
            q.lock = lock;
            q.dev = dma_dev;
            if ty == BufType::VideoOutputMplane {
                q.set_supports_requests(1);
                q.set_requires_requests(1);
                if T::output_holds_capture(file.data()) {
                    q.subsystem_flags |= bindings::VB2_V4L2_FL_SUPPORTS_M2M_HOLD_CAPTURE_BUF;
                }
            }
            check(bindings::vb2_queue_init(q))
        };
        if let Err(e) = r {
            return e.to_errno();
        }
    }
    0
}
