// SPDX-License-Identifier: GPL-2.0
//! The Request API conformance check behind `daedalus check-requests`.
//!
//! For every codec the device lists on its OUTPUT queue, on a fresh file handle (so a fresh m2m
//! context): set the OUTPUT format, allocate two MMAP buffers per queue, stream on both, and
//! run the checks below, bringing the request and the queues back to a clean state after each
//! one. The expected errors come from the 6.12 kernel sources:
//!
//! * **a** `VIDIOC_QBUF` on OUTPUT without a request: `EBADR` — `vb2_queue_or_prepare_buf()`
//!   (videobuf2-v4l2.c) for a queue with `requires_requests`.
//! * **b** `VIDIOC_QBUF` on CAPTURE with `V4L2_BUF_FLAG_REQUEST_FD`: `EBADR` from the same
//!   function for a queue without `supports_requests` (what `vidioc-qbuf.rst` documents), or
//!   `EPERM` from `v4l2_m2m_qbuf()` (v4l2-mem2mem.c), which rejects request fds on capture
//!   queues before vb2 sees them when the driver uses the m2m ioctl helpers. Both are accepted.
//! * **c** a request with the mandatory control and no buffer: `ENOENT` —
//!   `vb2_request_validate()` returns it when the request holds no buffer, and daedalus'
//!   `req_validate` as well.
//! * **d** a request with a buffer and no control: `ENOENT` (daedalus' `req_validate`, as
//!   cedrus/hantro/rkvdec do when `v4l2_ctrl_request_hdl_find()` finds nothing).
//! * **e** a request with a buffer and only a control that is not the mandatory one: `ENOENT`.
//! * **f** a valid request, twice on the same (re-initialised) request: `MEDIA_REQUEST_IOC_QUEUE`
//!   succeeds, the request completes (`poll(POLLPRI)`, media_request_poll() in mc-request.c),
//!   the CAPTURE buffer comes back with `V4L2_BUF_FLAG_ERROR` (no daemon attached), the OUTPUT
//!   buffer comes back, and `MEDIA_REQUEST_IOC_REINIT` of the completed request succeeds.
//! * **g** `VIDIOC_S_EXT_CTRLS` into a request with an invalid payload: `EINVAL` from
//!   `std_validate_compound()` (v4l2-ctrls-core.c) via `try_set_ext_ctrls_common()`.
//!
//! * **h** (H.264, whose OUTPUT queue offers `V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF`) a held
//!   picture: a valid request whose OUTPUT buffer has the flag completes, and its CAPTURE buffer
//!   stays queued (held for more slices: not dequeued within 300 ms); a second request with
//!   another timestamp and no flag starts a new picture, which releases the held buffer: both
//!   CAPTURE buffers come back, the held one first, each with `V4L2_BUF_FLAG_ERROR` (no
//!   daemon). As the m2m core's `v4l2_m2m_buf_done_and_job_finish` / `__v4l2_m2m_try_queue`
//!   define it (v4l2-mem2mem.c).
//!
//! Besides, the REQBUFS capabilities must say that OUTPUT supports requests and CAPTURE does
//! not (`V4L2_BUF_CAP_SUPPORTS_REQUESTS`).

use std::fmt;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use crate::codec::{Codec, Payloads};
use crate::errno::Errno;
use crate::media::{MediaDevice, Request, RequestWait};
use crate::names::{flag_names, fourcc_to_string, BUF_FLAGS};
use crate::sys::*;
use crate::v4l2::{QueueBuf, VideoDevice, Which};
use crate::{Error, Result};

const OUTPUT: u32 = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;
const CAPTURE: u32 = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;

/// Parameters of the check.
#[derive(Clone, Debug)]
pub struct Options {
    /// OUTPUT format width.
    pub width: u32,
    /// OUTPUT format height.
    pub height: u32,
    /// How long a request may take to complete, and a buffer to be dequeued.
    pub timeout: Duration,
    /// The codecs to check (those the device does not list are skipped).
    pub codecs: Vec<Codec>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            width: 320,
            height: 240,
            timeout: Duration::from_secs(2),
            codecs: Codec::ALL.to_vec(),
        }
    }
}

/// What a check expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The call succeeds.
    Success,
    /// The call fails with one of these errnos.
    Errno(&'static [Errno]),
}

impl Expect {
    /// Whether `res` meets the expectation.
    pub fn matches<T>(self, res: &Result<T>) -> bool {
        match (self, res) {
            (Expect::Success, Ok(_)) => true,
            (Expect::Errno(errnos), Err(e)) => e.errno().is_some_and(|got| errnos.contains(&got)),
            _ => false,
        }
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Success => f.write_str("success"),
            Expect::Errno(errnos) => {
                for (i, errno) in errnos.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    // Debug is the bare name (`EBADR`), as the V4L2 documentation writes it.
                    write!(f, "{errno:?}")?;
                }
                Ok(())
            }
        }
    }
}

/// How a call turned out, in the words of the check output: `success`, an errno name, or the
/// error message of a failure that is not an errno.
pub fn outcome<T>(res: &Result<T>) -> String {
    match res {
        Ok(_) => "success".to_owned(),
        Err(e) => match e.errno() {
            Some(errno) => format!("{errno:?}"),
            None => e.to_string(),
        },
    }
}

/// The result of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    /// The codec (`None` for device-wide results).
    pub codec: Option<Codec>,
    /// Short ID (`"a"`, `"f2.queue"`).
    pub id: String,
    /// What was checked.
    pub what: String,
    /// What was expected.
    pub expected: String,
    /// What happened.
    pub actual: String,
    /// Whether it passed.
    pub pass: bool,
}

impl fmt::Display for CheckResult {
    /// One line: `PASS  [VP9]   a         QBUF OUTPUT without a request  (expected EBADR, got EBADR)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let codec = self
            .codec
            .map_or_else(|| "-".to_owned(), |c| c.name().to_owned());
        write!(
            f,
            "{}  {:<7} {:<11} {}  (expected {}, got {})",
            if self.pass { "PASS" } else { "FAIL" },
            format!("[{codec}]"),
            self.id,
            self.what,
            self.expected,
            self.actual
        )
    }
}

/// All results of a run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Every check, in order.
    pub results: Vec<CheckResult>,
    /// Codecs that were not checked, with the reason.
    pub skipped: Vec<(Codec, String)>,
}

impl Report {
    /// Number of passed checks.
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.pass).count()
    }

    /// Number of failed checks.
    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }

    /// True if at least one check ran and none failed.
    pub fn success(&self) -> bool {
        !self.results.is_empty() && self.failed() == 0
    }
}

/// Collects results and hands each one to a callback as it comes (for live output).
struct Recorder<'a> {
    report: Report,
    sink: &'a mut dyn FnMut(&CheckResult),
}

impl Recorder<'_> {
    fn push(&mut self, result: CheckResult) -> bool {
        (self.sink)(&result);
        let pass = result.pass;
        self.report.results.push(result);
        pass
    }

    fn record(
        &mut self,
        codec: Codec,
        id: &str,
        what: String,
        expected: &str,
        actual: String,
        pass: bool,
    ) -> bool {
        self.push(CheckResult {
            codec: Some(codec),
            id: id.to_owned(),
            what,
            expected: expected.to_owned(),
            actual,
            pass,
        })
    }

    fn expect<T>(
        &mut self,
        codec: Codec,
        id: &str,
        what: String,
        expect: Expect,
        res: &Result<T>,
    ) -> bool {
        self.record(
            codec,
            id,
            what,
            &expect.to_string(),
            outcome(res),
            expect.matches(res),
        )
    }

    /// A step the check depends on failed (not itself a check of the expected behaviour).
    fn precondition(&mut self, codec: Codec, id: &str, what: String, err: &Error) -> bool {
        self.push(CheckResult {
            codec: Some(codec),
            id: id.to_owned(),
            what,
            expected: "setup to succeed".to_owned(),
            actual: err.to_string(),
            pass: false,
        })
    }
}

/// Runs the check on the video device `video` with the media device `media`. `sink` sees
/// every result as soon as it is known. Errors are those that prevent any check (the device
/// nodes cannot be opened or queried).
pub fn run(
    video: &Path,
    media: &Path,
    opts: &Options,
    sink: &mut dyn FnMut(&CheckResult),
) -> Result<Report> {
    let media = MediaDevice::open(media)?;
    let formats = VideoDevice::open(video)?.enum_formats(OUTPUT)?;
    let mut rec = Recorder {
        report: Report::default(),
        sink,
    };
    for &codec in &opts.codecs {
        if !formats.iter().any(|f| f.pixelformat == codec.fourcc()) {
            rec.report.skipped.push((
                codec,
                format!(
                    "the OUTPUT queue does not list {}",
                    fourcc_to_string(codec.fourcc())
                ),
            ));
            continue;
        }
        match Session::start(video, &media, codec, opts, &mut rec) {
            Ok(mut session) => session.run(&mut rec),
            Err(e) => {
                rec.precondition(
                    codec,
                    "setup",
                    "open, S_FMT, REQBUFS, STREAMON, request".into(),
                    &e,
                );
            }
        }
    }
    Ok(rec.report)
}

/// One codec's run: a file handle (m2m context) with both queues streaming and one request.
struct Session<'a> {
    codec: Codec,
    dev: VideoDevice,
    media: &'a MediaDevice,
    request: Request,
    payloads: Payloads,
    opts: &'a Options,
    out_count: u32,
    cap_count: u32,
    bytesused: u32,
}

impl<'a> Session<'a> {
    fn start(
        video: &Path,
        media: &'a MediaDevice,
        codec: Codec,
        opts: &'a Options,
        rec: &mut Recorder<'_>,
    ) -> Result<Self> {
        let dev = VideoDevice::open(video)?;
        let payloads = Payloads::load(codec, &dev, opts.width, opts.height)?;
        let out_fmt = dev.set_format(OUTPUT, codec.fourcc(), opts.width, opts.height)?;
        if out_fmt.pixelformat != codec.fourcc() {
            return Err(Error::Unexpected {
                path: dev.path().to_path_buf(),
                what: format!(
                    "S_FMT OUTPUT {} chose {}",
                    fourcc_to_string(codec.fourcc()),
                    fourcc_to_string(out_fmt.pixelformat)
                ),
            });
        }
        let cap_fmt = dev.get_format(CAPTURE)?;
        log::info!(
            "{codec}: OUTPUT {} {}x{}, CAPTURE {} {}x{} ({} plane(s))",
            fourcc_to_string(out_fmt.pixelformat),
            out_fmt.width,
            out_fmt.height,
            fourcc_to_string(cap_fmt.pixelformat),
            cap_fmt.width,
            cap_fmt.height,
            cap_fmt.planes.len()
        );

        let out = dev.request_buffers(OUTPUT, V4L2_MEMORY_MMAP, 2)?;
        rec.record(
            codec,
            "caps.out",
            "REQBUFS OUTPUT reports V4L2_BUF_CAP_SUPPORTS_REQUESTS".into(),
            "REQUESTS set",
            flag_names(out.capabilities, crate::names::BUF_CAPS).join("|"),
            out.capabilities & V4L2_BUF_CAP_SUPPORTS_REQUESTS != 0,
        );
        let cap = dev.request_buffers(CAPTURE, V4L2_MEMORY_MMAP, 2)?;
        rec.record(
            codec,
            "caps.cap",
            "REQBUFS CAPTURE does not report V4L2_BUF_CAP_SUPPORTS_REQUESTS".into(),
            "REQUESTS clear",
            flag_names(cap.capabilities, crate::names::BUF_CAPS).join("|"),
            cap.capabilities & V4L2_BUF_CAP_SUPPORTS_REQUESTS == 0,
        );
        if out.count == 0 || cap.count == 0 {
            return Err(Error::Unexpected {
                path: dev.path().to_path_buf(),
                what: format!(
                    "REQBUFS gave {} OUTPUT and {} CAPTURE buffers",
                    out.count, cap.count
                ),
            });
        }
        let out_len = dev
            .query_buffer(OUTPUT, 0)?
            .planes
            .first()
            .map_or(0, |&(_, len)| len);
        if out_len == 0 {
            return Err(Error::Unexpected {
                path: dev.path().to_path_buf(),
                what: "QUERYBUF OUTPUT 0: plane 0 has length 0".into(),
            });
        }
        dev.stream_on(OUTPUT)?;
        dev.stream_on(CAPTURE)?;
        let request = media.alloc_request()?;
        Ok(Session {
            codec,
            dev,
            media,
            request,
            payloads,
            opts,
            out_count: out.count,
            cap_count: cap.count,
            // A few bytes of (zero) bitstream: nobody decodes them yet.
            bytesused: out_len.min(64),
        })
    }

    fn run(&mut self, rec: &mut Recorder<'_>) {
        let steps: [fn(&mut Self, &mut Recorder<'_>) -> Result<()>; 8] = [
            Self::check_a,
            Self::check_b,
            Self::check_c,
            Self::check_d,
            Self::check_e,
            Self::check_f,
            Self::check_g,
            Self::check_h,
        ];
        for step in steps {
            // An error here means the clean-up failed: the state is unknown, stop this codec.
            if let Err(e) = step(self, rec) {
                rec.precondition(
                    self.codec,
                    "cleanup",
                    "reset queues and request between checks".into(),
                    &e,
                );
                break;
            }
        }
        for buf_type in [OUTPUT, CAPTURE] {
            if let Err(e) = self.dev.stream_off(buf_type) {
                log::warn!("{}: {e}", self.codec);
            }
        }
    }

    fn output_buf(&self, index: u32, timestamp_us: u64, with_request: bool) -> QueueBuf<'_> {
        QueueBuf {
            buf_type: OUTPUT,
            index,
            bytesused: self.bytesused,
            timestamp_us,
            request: with_request.then(|| self.request.as_fd()),
        }
    }

    fn set_in_request(&mut self, mandatory: bool) -> Result<()> {
        let payload = self.payloads.control(mandatory);
        self.dev
            .set_ext_ctrls(Which::Request(self.request.as_fd()), &mut [payload])
    }

    /// Back to a clean state after a check: re-initialise the request (releasing what is bound
    /// to it). After an unexpected success (`queued`), or if that fails, restart both queues
    /// (which returns every buffer and completes queued requests) and, if the request still
    /// cannot be re-initialised, replace it.
    fn clean(&mut self, queued: bool) -> Result<()> {
        if !queued {
            match self.request.reinit() {
                Ok(()) => return Ok(()),
                Err(e) => log::warn!("{}: {e}; restarting the queues", self.codec),
            }
        } else {
            // Give a queued request the chance to complete before tearing it down.
            let _ = self.request.wait(self.opts.timeout);
        }
        self.restart_queues()?;
        if let Err(e) = self.request.reinit() {
            log::warn!("{}: {e}; allocating a new request", self.codec);
            self.request = self.media.alloc_request()?;
        }
        Ok(())
    }

    fn restart_queues(&mut self) -> Result<()> {
        for buf_type in [OUTPUT, CAPTURE] {
            self.dev.stream_off(buf_type)?;
        }
        for buf_type in [OUTPUT, CAPTURE] {
            self.dev.stream_on(buf_type)?;
        }
        Ok(())
    }

    fn check_a(&mut self, rec: &mut Recorder<'_>) -> Result<()> {
        let res = self.dev.queue_buffer(&self.output_buf(0, 0, false));
        rec.expect(
            self.codec,
            "a",
            "QBUF OUTPUT without a request".into(),
            Expect::Errno(&[Errno::EBADR]),
            &res,
        );
        self.clean(res.is_ok())
    }

    fn check_b(&mut self, rec: &mut Recorder<'_>) -> Result<()> {
        let qb = QueueBuf {
            request: Some(self.request.as_fd()),
            ..QueueBuf::capture(0)
        };
        let res = self.dev.queue_buffer(&qb);
        rec.expect(
            self.codec,
            "b",
            "QBUF CAPTURE with a request fd".into(),
            Expect::Errno(&[Errno::EBADR, Errno::EPERM]),
            &res,
        );
        self.clean(res.is_ok())
    }

    fn check_c(&mut self, rec: &mut Recorder<'_>) -> Result<()> {
        let (mandatory, _) = self.codec.ctrl_names();
        let what = format!("request with {mandatory} and no buffer: MEDIA_REQUEST_IOC_QUEUE");
        self.queue_incomplete(rec, "c", what, Some(true), false)
    }

    fn check_d(&mut self, rec: &mut Recorder<'_>) -> Result<()> {
        let what = "request with a buffer and no control: MEDIA_REQUEST_IOC_QUEUE".to_owned();
        self.queue_incomplete(rec, "d", what, None, true)
    }

    fn check_e(&mut self, rec: &mut Recorder<'_>) -> Result<()> {
        let (_, optional) = self.codec.ctrl_names();
        let what = format!("request with a buffer and only {optional}: MEDIA_REQUEST_IOC_QUEUE");
        self.queue_incomplete(rec, "e", what, Some(false), true)
    }

    /// Checks c, d and e: a request missing its buffer or its codec's mandatory control (`ctrl`:
    /// the mandatory control, the optional one, or none; `buffer`: an OUTPUT buffer) must be
    /// refused with ENOENT when queued.
    fn queue_incomplete(
        &mut self,
        rec: &mut Recorder<'_>,
        check: &str,
        what: String,
        ctrl: Option<bool>,
        buffer: bool,
    ) -> Result<()> {
        let (mandatory, optional) = self.codec.ctrl_names();
        let setup = match ctrl {
            Some(m) => self.set_in_request(m).map_err(|e| {
                (
                    format!("S_EXT_CTRLS {}", if m { mandatory } else { optional }),
                    e,
                )
            }),
            None => Ok(()),
        }
        .and_then(|()| match buffer {
            true => (self.dev.queue_buffer(&self.output_buf(0, 0, true)))
                .map_err(|e| ("QBUF OUTPUT into the request".to_owned(), e)),
            false => Ok(()),
        });
        if let Err((step, e)) = setup {
            rec.precondition(self.codec, check, format!("{what} ({step})"), &e);
            return self.clean(false);
        }
        let res = self.request.queue();
        rec.expect(
            self.codec,
            check,
            what,
            Expect::Errno(&[Errno::ENOENT]),
            &res,
        );
        self.clean(res.is_ok())
    }

    fn check_f(&mut self, rec: &mut Recorder<'_>) -> Result<()> {
        for round in 1..=2u32 {
            if !self.valid_round(rec, round) {
                // Leave no buffer or request behind for the next round / check.
                self.restart_queues()?;
                self.clean(false)?;
            }
        }
        Ok(())
    }

    /// One decode round of check f; returns whether everything passed (state is clean then).
    fn valid_round(&mut self, rec: &mut Recorder<'_>, round: u32) -> bool {
        let codec = self.codec;
        let (mandatory, _) = codec.ctrl_names();
        let out_index = (round - 1) % self.out_count;
        let cap_index = (round - 1) % self.cap_count;
        let id = |step: &str| format!("f{round}.{step}");
        let timeout = self.opts.timeout;

        if let Err(e) = self.set_in_request(true) {
            rec.precondition(
                codec,
                &id("setup"),
                format!("S_EXT_CTRLS {mandatory} into the request"),
                &e,
            );
            return false;
        }
        let timestamp_us = u64::from(round) * 1_000_000;
        if let Err(e) = self
            .dev
            .queue_buffer(&self.output_buf(out_index, timestamp_us, true))
        {
            rec.precondition(
                codec,
                &id("setup"),
                "QBUF OUTPUT into the request".into(),
                &e,
            );
            return false;
        }
        let cap = QueueBuf::capture(cap_index);
        if let Err(e) = self.dev.queue_buffer(&cap) {
            rec.precondition(codec, &id("setup"), "QBUF CAPTURE".into(), &e);
            return false;
        }

        let res = self.request.queue();
        let what = format!("valid request (buffer + {mandatory}): MEDIA_REQUEST_IOC_QUEUE");
        if !rec.expect(codec, &id("queue"), what, Expect::Success, &res) {
            return false;
        }

        let waited = self.request.wait(timeout);
        let actual = match &waited {
            Ok(RequestWait::Completed) => "completed".to_owned(),
            Ok(RequestWait::TimedOut) => format!("not completed after {} ms", timeout.as_millis()),
            Ok(RequestWait::NotQueued) => "POLLERR (request not queued)".to_owned(),
            Err(e) => e.to_string(),
        };
        let completed = matches!(waited, Ok(RequestWait::Completed));
        let what = format!(
            "request completes within {} ms (poll POLLPRI)",
            timeout.as_millis()
        );
        if !rec.record(codec, &id("complete"), what, "completed", actual, completed) {
            return false;
        }

        let res = self.dev.dequeue_buffer_timeout(CAPTURE, timeout);
        let (pass, actual) = match &res {
            Ok(buf) => (
                buf.index == cap_index && buf.flags & V4L2_BUF_FLAG_ERROR != 0,
                format!(
                    "buffer {} flags {}",
                    buf.index,
                    flag_names(buf.flags, BUF_FLAGS).join("|")
                ),
            ),
            Err(_) => (false, outcome(&res)),
        };
        if let Ok(buf) = &res {
            log::info!(
                "{codec} round {round}: CAPTURE timestamp {} us (OUTPUT had {timestamp_us} us)",
                buf.timestamp_us
            );
        }
        let cap_ok = rec.record(
            codec,
            &id("capture"),
            format!("DQBUF CAPTURE gives buffer {cap_index} with V4L2_BUF_FLAG_ERROR"),
            &format!("buffer {cap_index} with ERROR"),
            actual,
            pass,
        );

        let res = self.dev.dequeue_buffer_timeout(OUTPUT, timeout);
        let (pass, actual) = match &res {
            Ok(buf) => (
                buf.index == out_index,
                format!(
                    "buffer {} flags {}",
                    buf.index,
                    flag_names(buf.flags, BUF_FLAGS).join("|")
                ),
            ),
            Err(_) => (false, outcome(&res)),
        };
        let out_ok = rec.record(
            codec,
            &id("output"),
            format!("DQBUF OUTPUT gives back buffer {out_index}"),
            &format!("buffer {out_index}"),
            actual,
            pass,
        );

        let res = self.request.reinit();
        let reinit_ok = rec.expect(
            codec,
            &id("reinit"),
            "MEDIA_REQUEST_IOC_REINIT of the completed request".into(),
            Expect::Success,
            &res,
        );
        cap_ok && out_ok && reinit_ok
    }

    fn check_g(&mut self, rec: &mut Recorder<'_>) -> Result<()> {
        let mut bad = self.payloads.invalid();
        let res = self.dev.set_ext_ctrls(
            Which::Request(self.request.as_fd()),
            &mut [bad.control(true)],
        );
        let what = format!("S_EXT_CTRLS into a request: {}", self.codec.invalid_desc());
        rec.expect(self.codec, "g", what, Expect::Errno(&[Errno::EINVAL]), &res);
        self.clean(false)
    }

    fn check_h(&mut self, rec: &mut Recorder<'_>) -> Result<()> {
        if self.codec != Codec::H264 || self.out_count < 2 || self.cap_count < 2 {
            return Ok(());
        }
        if !self.held_picture(rec) {
            // Leave no buffer or request behind.
            self.restart_queues()?;
        }
        self.clean(false)
    }

    /// Check h; returns whether everything passed.
    fn held_picture(&mut self, rec: &mut Recorder<'_>) -> bool {
        let codec = self.codec;
        let timeout = self.opts.timeout;
        for index in 0..2 {
            let cap = QueueBuf::capture(index);
            if let Err(e) = self.dev.queue_buffer(&cap) {
                rec.precondition(codec, "h.setup", format!("QBUF CAPTURE {index}"), &e);
                return false;
            }
        }
        // Two pictures of one slice each: the first held, the second not.
        for (n, hold) in [(1u32, true), (2, false)] {
            let id = |step: &str| format!("h{n}.{step}");
            let index = n - 1;
            let flags = if hold {
                V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF
            } else {
                0
            };
            let queued = self.set_in_request(true).and_then(|()| {
                self.dev.queue_buffer_with_flags(
                    &self.output_buf(index, u64::from(n) * 1_000_000, true),
                    flags,
                )
            });
            if let Err(e) = queued {
                rec.precondition(
                    codec,
                    &id("setup"),
                    "a request with its OUTPUT buffer".into(),
                    &e,
                );
                return false;
            }
            let res = self.request.queue();
            let what = format!(
                "request of picture {n}{}: MEDIA_REQUEST_IOC_QUEUE",
                if hold { " (HOLD_CAPTURE_BUF)" } else { "" }
            );
            if !rec.expect(codec, &id("queue"), what, Expect::Success, &res) {
                return false;
            }
            let completed = matches!(self.request.wait(timeout), Ok(RequestWait::Completed));
            let what = format!("request of picture {n} completes");
            let actual = if completed {
                "completed"
            } else {
                "not completed"
            };
            if !rec.record(
                codec,
                &id("complete"),
                what,
                "completed",
                actual.into(),
                completed,
            ) {
                return false;
            }
            let res = self.dev.dequeue_buffer_timeout(OUTPUT, timeout);
            let pass = res.as_ref().is_ok_and(|b| b.index == index);
            rec.record(
                codec,
                &id("output"),
                format!("DQBUF OUTPUT gives back buffer {index}"),
                &format!("buffer {index}"),
                match &res {
                    Ok(b) => format!("buffer {}", b.index),
                    Err(_) => outcome(&res),
                },
                pass,
            );
            if let Err(e) = self.request.reinit() {
                rec.precondition(codec, &id("reinit"), "MEDIA_REQUEST_IOC_REINIT".into(), &e);
                return false;
            }
            if hold {
                let res = self
                    .dev
                    .dequeue_buffer_timeout(CAPTURE, Duration::from_millis(300));
                let held = res
                    .as_ref()
                    .is_err_and(|e| e.errno() == Some(Errno::EAGAIN));
                let actual = match &res {
                    Ok(b) => format!("buffer {} dequeued", b.index),
                    Err(_) => outcome(&res),
                };
                if !rec.record(
                    codec,
                    &id("held"),
                    "the CAPTURE buffer of a HOLD_CAPTURE_BUF request stays queued".into(),
                    "EAGAIN (held)",
                    actual,
                    held,
                ) {
                    return false;
                }
            }
        }
        // The held picture (buffer 0) is complete: it comes back first, then picture 2's.
        let mut all = true;
        for index in 0..2u32 {
            let res = self.dev.dequeue_buffer_timeout(CAPTURE, timeout);
            let pass = res
                .as_ref()
                .is_ok_and(|b| b.index == index && b.flags & V4L2_BUF_FLAG_ERROR != 0);
            let actual = match &res {
                Ok(b) => format!(
                    "buffer {} flags {}",
                    b.index,
                    flag_names(b.flags, BUF_FLAGS).join("|")
                ),
                Err(_) => outcome(&res),
            };
            all &= rec.record(
                codec,
                &format!("h.capture{index}"),
                format!(
                    "DQBUF CAPTURE gives buffer {index} with V4L2_BUF_FLAG_ERROR{}",
                    if index == 0 {
                        " (the held picture, released by the next picture's timestamp)"
                    } else {
                        ""
                    }
                ),
                &format!("buffer {index} with ERROR"),
                actual,
                pass,
            );
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn ioctl_err(errno: Errno) -> Result<()> {
        Err(Error::Ioctl {
            ioctl: "VIDIOC_QBUF",
            path: PathBuf::from("/dev/video0"),
            errno,
        })
    }

    #[test]
    fn expectations() {
        let ebadr = Expect::Errno(&[Errno::EBADR]);
        let either = Expect::Errno(&[Errno::EBADR, Errno::EPERM]);
        assert!(ebadr.matches(&ioctl_err(Errno::EBADR)));
        assert!(!ebadr.matches(&ioctl_err(Errno::EINVAL)));
        assert!(!ebadr.matches(&Ok(())));
        assert!(either.matches(&ioctl_err(Errno::EPERM)));
        assert!(Expect::Success.matches(&Ok(())));
        assert!(!Expect::Success.matches(&ioctl_err(Errno::ENOENT)));
        let not_errno: Result<()> = Err(Error::PayloadSize {
            id: 1,
            device: 2,
            ours: 3,
        });
        assert!(!ebadr.matches(&not_errno));
        assert_eq!(ebadr.to_string(), "EBADR");
        assert_eq!(either.to_string(), "EBADR or EPERM");
        assert_eq!(Expect::Success.to_string(), "success");
    }

    #[test]
    fn outcomes() {
        assert_eq!(outcome(&Ok(())), "success");
        assert_eq!(outcome(&ioctl_err(Errno::ENOENT)), "ENOENT");
        let not_errno: Result<()> = Err(Error::PayloadSize {
            id: 1,
            device: 2,
            ours: 3,
        });
        assert!(outcome(&not_errno).contains("payload"));
    }

    #[test]
    fn report_lines_and_summary() {
        let result = CheckResult {
            codec: Some(Codec::Vp9),
            id: "a".into(),
            what: "QBUF OUTPUT without a request".into(),
            expected: "EBADR".into(),
            actual: "EBADR".into(),
            pass: true,
        };
        let line = result.to_string();
        assert!(line.starts_with("PASS  [VP9]   a           QBUF"), "{line}");
        assert!(line.ends_with("(expected EBADR, got EBADR)"), "{line}");
        let mut report = Report::default();
        assert!(!report.success(), "an empty run is no success");
        report.results.push(result.clone());
        assert!(report.success());
        report.results.push(CheckResult {
            pass: false,
            ..result
        });
        assert_eq!((report.passed(), report.failed()), (1, 1));
        assert!(!report.success());
    }
}
