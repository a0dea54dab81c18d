// SPDX-License-Identifier: GPL-2.0
//! mem2mem jobs: [`RunOps`] (the driver's `device_run`), [`DeviceRun`] (one call of it),
//! [`ActiveJob`] (two buffers taken for a decode job, completed exactly once), the
//! `v4l2_m2m_ops` table, and the `queue_init` that sets up a file's two vb2 queues.
//!
//! The m2m core calls `device_run` when a file has a buffer on both queues, from `QBUF` /
//! `STREAMON` (device lock held) or from its job work (without it): the driver gets no
//! [`LockedFile`](super::v4l2::file::LockedFile) there. The OUTPUT buffer always leaves the m2m
//! ready queue and the m2m job finishes when `device_run` returns, so other files' jobs, and the
//! next ones of the same file, start while the daemon decodes: the m2m core runs one
//! `device_run` at a time, not one decode.
//!
//! `V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF` (H.264 slices, one picture in several requests) is kept
//! here rather than by the m2m core, whose bookkeeping (`v4l2_m2m_buf_done_and_job_finish`)
//! needs the m2m job to run until the decode ends and so serializes every file's jobs: a held
//! CAPTURE buffer stays at the head of the ready queue, the jobs of its slices count in its
//! [`Picture`](super::vb2::Picture), and it goes back to userspace once the picture is complete
//! (an OUTPUT buffer without the flag, one of another timestamp, or `V4L2_DEC_CMD_FLUSH`) and its
//! last job ended.
//! The m2m core cannot even end a job of such a file early (`v4l2_m2m_job_finish` warns when the
//! OUTPUT queue offers the flag), so it never runs one: its `job_ready` (called whenever the
//! file has a buffer on both queues and both stream) schedules the file's own work instead,
//! which starts the file's jobs ([`run_work`]) beside other files' and the m2m core's.

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
    /// What this job made of the CAPTURE buffer's picture. A held picture goes back in error if
    /// any of its jobs failed, once the last one ended.
    pub(crate) capture: BufState,
    /// The CAPTURE buffer's payload, written if this job returns the buffer.
    pub(crate) capture_bytesused: u32,
    /// The OUTPUT buffer's state.
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
/// `src` is the file's next OUTPUT buffer (`v4l2_m2m_next_src_buf`), still in the m2m ready
/// queue until [`DeviceRun::start`] runs, and the file has a CAPTURE buffer queued; `file` is the
/// file whose job this is (the m2m core's `priv`), alive for `'a`, and nothing else starts a job
/// of it meanwhile (the m2m core, or the file's own work: never both). `started` records whether
/// `start` ran.
pub(crate) struct DeviceRun<'a, T: M2mDriver> {
    file: &'a V4l2File<T>,
    src: NonNull<bindings::vb2_v4l2_buffer>,
    started: bool,
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
        // SAFETY: the file's next OUTPUT buffer, queued (type invariant).
        let req = unsafe { (*self.src.as_ptr()).vb2_buf.req_obj.req };
        if req.is_null() {
            return Ok(());
        }
        // SAFETY: the request is live while its buffer is in it; the file's handler is its
        // parent.
        check(unsafe { bindings::v4l2_ctrl_request_setup(req, self.file.handler().as_raw()) })
    }

    /// Takes the OUTPUT buffer and the CAPTURE buffer its picture goes to for a job, once (`None`
    /// on a second call), and copies the OUTPUT buffer's timestamp and flags to the CAPTURE
    /// buffer (`v4l2_m2m_buf_copy_metadata`).
    ///
    /// The CAPTURE buffer is the head of the ready queue. If it holds a picture of another
    /// timestamp (the client set `HOLD_CAPTURE_BUF` on that picture's last slice), that picture
    /// is complete: it goes back (once its jobs ended) and the next CAPTURE buffer is used, or,
    /// if there is none, no job starts (`None`; the OUTPUT buffer stays queued until a CAPTURE
    /// buffer is). Unless the OUTPUT buffer has `HOLD_CAPTURE_BUF`, this job completes the
    /// picture and the CAPTURE buffer leaves the ready queue.
    ///
    /// A buffer that was never initialized (`buf_init`, which videobuf2 does not allow) fails the
    /// job at once (`None`, both buffers returned in error).
    pub(crate) fn start(&mut self) -> Option<ActiveJob<T>> {
        if self.started {
            return None;
        }
        self.started = true;
        let file = self.file;
        let m2m = file.m2m_ctx();
        let q = file.queue_raw(BufType::VideoOutputMplane);
        // `src` is the OUTPUT ready queue's head, which nothing else removes meanwhile (one job
        // of the file starts at a time: type invariant; a queue that stops waits for that
        // first); the hold flag and the held picture are decided under the file's hold lock
        // (V4l2File invariant 7), against `DECODER_CMD`.
        let guard = file.lock_hold();
        // `DECODER_CMD` may have released the CAPTURE buffer that was the head (if no OUTPUT
        // buffer was queued then, i.e. before this one was): look again.
        // SAFETY: the file's live m2m context.
        let dst = unsafe { bindings::daedalus_m2m_next_dst_buf(m2m) };
        // `Vb2Buffer` starts with the `vb2_v4l2_buffer` (its invariant 1).
        let src = self.src.cast::<Vb2Buffer<T::Buf>>();
        let mut dst = NonNull::new(dst)?.cast::<Vb2Buffer<T::Buf>>();
        // SAFETY: the OUTPUT queue of a live file. Its flags only change under the device lock
        // while it has no buffers and does not stream (`LockedFile::set_hold_capture`), so not
        // while a job of it starts; the buffer's flags change only under the hold lock
        // (`decoder_cmd`), held.
        let hold = unsafe {
            (*q).subsystem_flags & bindings::VB2_V4L2_FL_SUPPORTS_M2M_HOLD_CAPTURE_BUF != 0
                && (*self.src.as_ptr()).flags & bindings::V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF != 0
        };
        {
            // SAFETY: both are queued buffers of the file, which videobuf2 neither frees nor
            // changes while they are (Vb2Buffer invariant 3); `picture` is an atomic.
            let (s, d) = unsafe { (src.as_ref(), dst.as_ref()) };
            if d.picture.started() && d.timestamp() != s.timestamp() {
                // SAFETY: the head of the file's live CAPTURE ready queue is `dst`.
                unsafe { bindings::daedalus_m2m_dst_buf_remove(m2m) };
                release_picture(d);
                // SAFETY: the file's live m2m context.
                let next = unsafe { bindings::daedalus_m2m_next_dst_buf(m2m) };
                dst = NonNull::new(next)?.cast();
            }
        }
        // SAFETY: the heads of the file's live ready queues are `src` and (unless `hold`)
        // `dst`: they leave them here, owned by the job from now on. Both are the file's queued
        // buffers (as above).
        unsafe {
            bindings::daedalus_m2m_src_buf_remove(m2m);
            if !hold {
                bindings::daedalus_m2m_dst_buf_remove(m2m);
            }
            bindings::daedalus_m2m_buf_copy_metadata(
                src.as_ref().as_v4l2(),
                dst.as_ref().as_v4l2(),
            );
            dst.as_ref().picture.job_started(!hold);
        }
        drop(guard);
        // The job counts from here: the file and its queues stay until it completes.
        file.job_started();
        // INVARIANT: the buffers are the file's, out of the ready queues (`dst` unless held), in
        // videobuf2's active state (queued, not returned); the job counts in `inflight` (just
        // above) and in `dst`'s picture.
        let job = ActiveJob {
            file: NonNull::from(file),
            src,
            dst,
            hold,
            _p: PhantomData,
        };
        if !job.src().is_ready() || !job.dst().is_ready() {
            job.complete(Disposal::FAILED);
            return None;
        }
        Some(job)
    }
}

/// The picture of `buf`, a CAPTURE buffer just taken off the ready queue, is complete: it goes
/// back to userspace now if no job decodes into it, else when the last one ends.
fn release_picture<B>(buf: &Vb2Buffer<B>) {
    if let Some(state) = buf.picture.release() {
        return_capture(buf, state, None);
    }
}

/// Returns CAPTURE buffer `buf` (taken off the ready queue, no job left on it) to userspace in
/// `state`, with `bytesused` as its payload if given (else what `buf_prepare` set), none in error.
fn return_capture<B>(buf: &Vb2Buffer<B>, state: BufState, bytesused: Option<u32>) {
    let vb = buf.as_vb2();
    // SAFETY: the caller owns the buffer (out of the ready queue, no job on it), so only this code
    // refers to it until videobuf2 has it back.
    unsafe {
        if state == BufState::Error {
            (*vb).planes[0].bytesused = 0;
        } else if let Some(n) = bytesused {
            (*vb).planes[0].bytesused = n;
        }
        bindings::vb2_buffer_done(vb, state.raw());
    }
}

/// `VIDIOC_DECODER_CMD` of a stateless decoder (`V4L2_DEC_CMD_FLUSH`): the picture being held
/// is complete. If an OUTPUT buffer is queued, the last one loses `HOLD_CAPTURE_BUF` (its job
/// completes the picture); if none is, the held CAPTURE buffer goes back (once its jobs ended).
/// As the m2m core's `v4l2_m2m_ioctl_stateless_decoder_cmd`, on the layer's held picture.
///
/// # Safety
///
/// Only called by the V4L2 core for a file opened by `open::<T>`, with the device lock held and a
/// valid `dc`.
pub(super) unsafe extern "C" fn decoder_cmd<T: M2mDriver>(
    file: *mut bindings::file,
    priv_: *mut c_void,
    dc: *mut bindings::v4l2_decoder_cmd,
) -> c_int {
    // SAFETY: per the contract.
    let r = unsafe { bindings::v4l2_m2m_ioctl_stateless_try_decoder_cmd(file, priv_, dc) };
    if r < 0 {
        return r;
    }
    // SAFETY: per the contract (V4l2File invariant 1).
    let f = unsafe { V4l2File::<T>::from_file(file) };
    let m2m = f.m2m_ctx();
    let _guard = f.lock_hold();
    // SAFETY: the file's live m2m context; the buffers' hold flags and the held picture are ours
    // under the hold lock (V4l2File invariant 7), and a queued buffer is neither freed nor
    // changed by videobuf2 meanwhile (the device lock is held).
    unsafe {
        let out = bindings::daedalus_m2m_last_src_buf(m2m);
        if !out.is_null() {
            (*out).flags &= !bindings::V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF;
            return 0;
        }
        let cap = bindings::daedalus_m2m_next_dst_buf(m2m);
        if let Some(cap) = NonNull::new(cap) {
            let buf = cap.cast::<Vb2Buffer<T::Buf>>().as_ref();
            if buf.picture.started() {
                bindings::daedalus_m2m_dst_buf_remove(m2m);
                release_picture(buf);
            }
        }
    }
    0
}

/// Two buffers taken for a decode job, until they return to userspace.
///
/// # Invariants
///
/// 1. `src` / `dst` are the OUTPUT / CAPTURE [`Vb2Buffer`]s [`DeviceRun::start`] took from
///    `file`'s queues, in videobuf2's active state. `src` is owned by this value (out of the m2m
///    ready queue); `dst` is shared with the other jobs decoding into its picture, which it
///    counts this job in ([`Picture`](super::vb2::Picture)): it stays at the head of the ready queue while the
///    picture is held (`hold`), and goes back to userspace when the picture is complete and its
///    last job ended. Both are ready (their data is initialized).
/// 2. While it exists, the job counts in `file`'s `inflight`, so the file, its queues and its
///    m2m context are alive (V4l2File invariant 6).
/// 3. It is completed exactly once: by [`ActiveJob::complete`], or else by its drop, which warns
///    (once) and returns both buffers in error, so a driver bug shows in the kernel log instead
///    of hanging a client.
pub(crate) struct ActiveJob<T: M2mDriver> {
    file: NonNull<V4l2File<T>>,
    src: NonNull<Vb2Buffer<T::Buf>>,
    dst: NonNull<Vb2Buffer<T::Buf>>,
    hold: bool,
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
        // SAFETY: not returned while the job counts in its picture (invariant 1), so videobuf2
        // neither changes the fields read through it nor frees it (Vb2Buffer invariant 3).
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

    /// Whether the CAPTURE buffer stays held for more of its picture after this job (the OUTPUT
    /// buffer has `V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF`, which the queue offers).
    pub(crate) fn holds_capture(&self) -> bool {
        self.hold
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
        // SAFETY: the request (if any) is live while its buffer is in it, with the file's handler
        // as parent; the file is alive (invariant 2).
        unsafe {
            let req = src.request();
            if !req.is_null() {
                bindings::v4l2_ctrl_request_complete(req, file.handler().as_raw());
            }
        }
        // The CAPTURE buffer goes back if this was the last job of its complete picture.
        if let Some(state) = dst.picture.job_ended(how.capture == BufState::Error) {
            return_capture(dst, state, Some(how.capture_bytesused));
        }
        // SAFETY: the OUTPUT buffer is the job's (invariant 1), returned once, here.
        unsafe { bindings::vb2_buffer_done(src.as_vb2(), how.output.raw()) };
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
        job_ready: Some(job_ready::<T>),
        job_abort: None,
    }
}

/// `v4l2_m2m_ops.device_run`: the file's next buffers go to the driver, as a [`DeviceRun`]; the
/// m2m job finishes when the driver returns.
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
    if let (Some(src), false) = (NonNull::new(src), dst.is_null()) {
        // INVARIANT: the next OUTPUT buffer of the file the m2m core runs (its one running
        // job), which has a CAPTURE buffer; the file's own work never runs for it (`job_ready`).
        let mut run = DeviceRun {
            file,
            src,
            started: false,
        };
        T::device_run(&mut run);
    }
    // SAFETY: the m2m job of this context runs (we are its `device_run`) and is finished once.
    unsafe { bindings::v4l2_m2m_job_finish(file.device().m2m_raw(), m2m) };
}

/// Whether `file`'s OUTPUT queue offers `V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF`, i.e. whether its jobs
/// run from its own work ([`run_work`]) rather than from the m2m core.
fn runs_itself<T: M2mDriver>(file: &V4l2File<T>) -> bool {
    let q = file.queue_raw(BufType::VideoOutputMplane);
    // SAFETY: the OUTPUT queue of a live file. Its flags only change while it has no buffers
    // (`LockedFile::set_hold_capture`), and the callers run because it has one.
    unsafe { (*q).subsystem_flags & bindings::VB2_V4L2_FL_SUPPORTS_M2M_HOLD_CAPTURE_BUF != 0 }
}

/// `v4l2_m2m_ops.job_ready`: the m2m core would run a job of the file (it has a buffer on both
/// queues, both stream, the context is not being stopped). A file whose OUTPUT queue offers
/// `HOLD_CAPTURE_BUF` runs its jobs itself: its work is scheduled, and the m2m core told no.
///
/// # Safety
///
/// Only called by the m2m core (with its job spinlock held: nothing here sleeps), with `priv_` =
/// the `V4l2File<T>` of an m2m context made by `open::<T>`, alive.
unsafe extern "C" fn job_ready<T: Driver>(priv_: *mut c_void) -> c_int {
    // SAFETY: per the contract.
    let file = unsafe { &*priv_.cast::<V4l2File<T>>() };
    if !runs_itself(file) {
        return 1;
    }
    file.schedule_run();
    0
}

/// The work of a file whose OUTPUT queue offers `HOLD_CAPTURE_BUF` (scheduled by [`job_ready`]):
/// while both queues stream and each has a buffer, the next OUTPUT buffer goes to the driver's
/// `device_run`, as the m2m core would do it, but without making it the device's one running
/// m2m job.
///
/// # Safety
///
/// Only called by the workqueue for the `run` work of a live `V4l2File<T>` (V4l2File invariant
/// 8: cancelled before the file goes, and before a queue that stops streaming returns its
/// buffers).
pub(super) unsafe extern "C" fn run_work<T: Driver>(work: *mut bindings::work_struct) {
    // `DelayedWork` is `repr(transparent)` over `delayed_work`.
    let off = V4l2File::<T>::run_offset() + core::mem::offset_of!(bindings::delayed_work, work);
    // SAFETY: `work` is the `work` of the `run` of a live `V4l2File<T>` (contract).
    let file = unsafe { &*work.cast::<u8>().sub(off).cast::<V4l2File<T>>() };
    let m2m = file.m2m_ctx();
    let streaming = |ty| {
        // SAFETY: a queue of the file's live m2m context (released only after this work is
        // cancelled); `streaming` is read without the lock, as the m2m core does.
        unsafe { bindings::daedalus_vb2_is_streaming(file.queue_raw(ty)) }
    };
    loop {
        if !streaming(BufType::VideoOutputMplane) || !streaming(BufType::VideoCaptureMplane) {
            return;
        }
        // SAFETY: the file's live m2m context.
        let (src, dst) = unsafe {
            (
                bindings::daedalus_m2m_next_src_buf(m2m),
                bindings::daedalus_m2m_next_dst_buf(m2m),
            )
        };
        let Some(src) = NonNull::new(src) else {
            return;
        };
        if dst.is_null() {
            return;
        }
        // INVARIANT: the next OUTPUT buffer of the file, which has a CAPTURE buffer; nothing else
        // starts a job of it meanwhile (the m2m core does not for this file, and a work item
        // does not run twice at once).
        let mut run = DeviceRun {
            file,
            src,
            started: false,
        };
        T::device_run(&mut run);
        // SAFETY: as above.
        if unsafe { bindings::daedalus_m2m_next_src_buf(m2m) } == src.as_ptr() {
            // The OUTPUT buffer stays (no CAPTURE buffer for its picture yet): a CAPTURE buffer
            // queued later calls `job_ready` again.
            return;
        }
    }
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
