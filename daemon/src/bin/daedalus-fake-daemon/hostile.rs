// SPDX-License-Identifier: GPL-2.0
//! `daedalus-fake-daemon hostile SEED SECONDS`: a daemon that attacks the module's side of
//! `/dev/daedalus` (issue 14's protocol fuzzer; tests/vm/daemon-fuzz.sh runs it while clients
//! decode). For SECONDS it reads jobs and context events and, with a seeded RNG (the same SEED
//! replays the same choices against the same message sequence), answers them the ways a buggy
//! or malicious daemon could:
//!
//! * reads with buffers too short for the message, of any size, non-blocking on an empty queue;
//! * completions naming unknown jobs, other contexts, more bytes than the CAPTURE buffer holds,
//!   status words no `Status` has; answers late (after the module's job timeout), out of order,
//!   twice, and from two threads at once;
//! * a second `IOC_HELLO`, ioctl numbers of the module's type it does not define, a second
//!   daemon opening the node; detaching with jobs in flight and attaching again (storms of it).
//!
//! What the module must hold to, checked here (`FAIL:` and exit 1 otherwise): a completion is
//! accepted at most once per job, never for a job of an earlier attach, never for an unknown job
//! or with a wrong context, a bad status or too many bytes; a second daemon is refused (`EBUSY`);
//! every read returns exactly one whole message or an error. What it must hold to and only the
//! VM test can see: no oops / WARN / lockdep report, every client request ends (an error or a
//! picture) within the job timeout, nothing leaked once the clients are gone, and a real daemon
//! decoding byte-exact afterwards. The summary line counts what was done.

use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use daedalus_proto::wire::{self, Completion, Job, Message, Status, MAX_MESSAGE_SIZE, VERSION};
use nix::errno::Errno;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{
    complete, fail, hello, ioc_unknown, message_size, open_device, read_message, send_completion,
    Check,
};

/// A job read and not answered yet.
struct Held {
    job_id: u64,
    ctx_id: u32,
    capture_length: u32,
    sizeimage: u32,
    /// The attach it was read in.
    attach: u32,
    read_at: Instant,
}

/// What was done, for the summary line.
#[derive(Default, Debug)]
struct Counts {
    messages: u64,
    jobs: u64,
    short_reads: u64,
    answered: u64,
    accepted: u64,
    refused_as_expected: u64,
    late: u64,
    duplicates: u64,
    races: u64,
    reattaches: u64,
    bogus_ioctls: u64,
}

struct Hostile {
    rng: StdRng,
    dev: File,
    attach: u32,
    held: Vec<Held>,
    counts: Counts,
    /// The module's job timeout, from the handshake.
    timeout: Duration,
}

/// Closes the dma-buf fds the module installed for a job (a hostile daemon still must not run
/// out of fds; whether the module gave real dma-bufs is the protocol test's business).
fn close_fds(job: &Job<'_>) {
    for fd in [job.header.output.fd, job.header.capture.fd] {
        if fd >= 0 {
            // SAFETY: the module installed this fd in our table for us; nothing else owns it.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
}

impl Hostile {
    fn attach(&mut self) -> Check<()> {
        let (r, answer) = hello(&self.dev, VERSION);
        r.or_else(|e| fail(format!("handshake: {e}")))?;
        self.timeout = Duration::from_millis(answer.job_timeout_ms.into());
        self.attach += 1;
        Ok(())
    }

    /// Keeps a job just read for a later answer (closing the fds it brought).
    fn hold(&mut self, job: &Job<'_>) {
        close_fds(job);
        self.counts.jobs += 1;
        self.held.push(Held {
            job_id: job.header.job_id,
            ctx_id: job.header.ctx_id,
            capture_length: job.header.capture.length,
            sizeimage: job.header.picture.sizeimage,
            attach: self.attach,
            read_at: Instant::now(),
        });
    }

    /// Expects a refused completion: `Ok` is a failure of the module.
    fn refused(&mut self, what: &str, r: Result<(), Errno>) -> Check<()> {
        self.counts.answered += 1;
        match r {
            Ok(()) => fail(format!("the module accepted {what}")),
            Err(_) => {
                self.counts.refused_as_expected += 1;
                Ok(())
            }
        }
    }

    /// One read (of a random buffer size now and then); a job is held for a later answer.
    fn read_one(&mut self) -> Check<()> {
        let mut buf = vec![0u8; MAX_MESSAGE_SIZE];
        let len = if self.rng.gen_ratio(1, 10) {
            self.counts.short_reads += 1;
            self.rng.gen_range(0..=200)
        } else {
            MAX_MESSAGE_SIZE
        };
        let n = match read_message(&self.dev, &mut buf[..len]) {
            Ok(n) => n,
            // Nothing queued (non-blocking), a message longer than the buffer, a signal.
            Err(_) => return Ok(()),
        };
        if message_size(&buf[..n]) != Some(n) {
            return fail(format!(
                "a read of {len} bytes returned {n}: not one whole message"
            ));
        }
        self.counts.messages += 1;
        match wire::decode(&buf[..n]) {
            Err(e) => fail(format!("undecodable message of {n} bytes: {e}")),
            Ok(Message::Job(job)) => {
                self.hold(&job);
                Ok(())
            }
            Ok(_) => Ok(()),
        }
    }

    /// Answers (or mis-answers) one held job, chosen at random.
    fn answer_one(&mut self) -> Check<()> {
        if self.held.is_empty() {
            return Ok(());
        }
        let i = self.rng.gen_range(0..self.held.len());
        let h = self.held.swap_remove(i);
        let stale = h.attach != self.attach;
        // The module may have timed the job out already (give it 100 ms of slack both ways).
        let maybe_late = h.read_at.elapsed() + Duration::from_millis(100) >= self.timeout;
        let ok = Completion {
            job_id: h.job_id,
            ctx_id: h.ctx_id,
            status: Status::Ok,
            capture_bytesused: h.sizeimage,
        };
        match self.rng.gen_range(0..8) {
            // Wrong answers: each must be refused, and each fails the job.
            0 => self.refused(
                "a completion naming another context",
                send_completion(
                    &self.dev,
                    &Completion {
                        ctx_id: h.ctx_id ^ 0x5a5a,
                        ..ok
                    }
                    .encode(),
                ),
            )?,
            1 => {
                let too_many = h
                    .capture_length
                    .saturating_add(self.rng.gen_range(1..=4096));
                let c = Completion {
                    capture_bytesused: too_many,
                    ..ok
                };
                self.refused(
                    "a completion of more bytes than the CAPTURE buffer holds",
                    send_completion(&self.dev, &c.encode()),
                )?
            }
            2 => {
                let mut bytes = ok.encode();
                let status: u32 = self.rng.gen_range(16..u32::MAX);
                bytes[12..16].copy_from_slice(&status.to_ne_bytes());
                self.refused(
                    "a completion with an unknown status",
                    send_completion(&self.dev, &bytes),
                )?;
                // The job was not touched by a payload that does not decode: answer it.
                self.answer(&h, stale, maybe_late, ok)?;
            }
            // Twice: the second must be refused.
            3 => {
                self.counts.duplicates += 1;
                let first = self.answer(&h, stale, maybe_late, ok)?;
                if first {
                    self.refused(
                        "a second completion of a job",
                        send_completion(&self.dev, &ok.encode()),
                    )?;
                }
            }
            // From two threads at once: at most one is accepted.
            4 => {
                self.counts.races += 1;
                let payload = ok.encode();
                let (a, b) = std::thread::scope(|s| {
                    let t = s.spawn(|| send_completion(&self.dev, &payload));
                    let b = send_completion(&self.dev, &payload);
                    (t.join().unwrap_or(Err(Errno::EIO)), b)
                });
                self.counts.answered += 2;
                if a.is_ok() && b.is_ok() {
                    return fail(format!(
                        "two racing completions of job {} were both accepted",
                        h.job_id
                    ));
                }
                if (a.is_ok() || b.is_ok()) && stale {
                    return fail(format!(
                        "job {} of an earlier attach was completed",
                        h.job_id
                    ));
                }
                self.counts.accepted += u64::from(a.is_ok() || b.is_ok());
            }
            // Hold it past the module's timeout, then answer: must be refused.
            5 if self.rng.gen_ratio(1, 4) => {
                self.counts.late += 1;
                std::thread::sleep(
                    self.timeout.saturating_sub(h.read_at.elapsed()) + Duration::from_millis(200),
                );
                self.refused(
                    "a completion after the job timed out",
                    send_completion(&self.dev, &ok.encode()),
                )?;
            }
            // A decode error, or a picture.
            6 => {
                self.answer(
                    &h,
                    stale,
                    maybe_late,
                    Completion {
                        status: Status::DecodeError,
                        capture_bytesused: 0,
                        ..ok
                    },
                )?;
            }
            _ => {
                self.answer(&h, stale, maybe_late, ok)?;
            }
        }
        Ok(())
    }

    /// A completion a correct daemon could send: accepted unless the job is stale or late.
    /// Returns whether it was accepted.
    fn answer(&mut self, h: &Held, stale: bool, maybe_late: bool, c: Completion) -> Check<bool> {
        self.counts.answered += 1;
        match complete(&self.dev, c.job_id, c.ctx_id, c.status, c.capture_bytesused) {
            Ok(()) if stale => fail(format!(
                "job {} of an earlier attach was completed",
                h.job_id
            )),
            Ok(()) => {
                self.counts.accepted += 1;
                Ok(true)
            }
            // A job of an earlier attach, timed out, or failed when its context went away
            // (a client closing mid-stream): refused.
            Err(Errno::ENOENT) => Ok(false),
            Err(_) if maybe_late || stale => Ok(false),
            Err(e) => fail(format!(
                "a valid completion of job {} was refused: {e}",
                h.job_id
            )),
        }
    }

    /// Something else the protocol allows or forbids, at random.
    fn misbehave(&mut self) -> Check<()> {
        match self.rng.gen_range(0..6) {
            0 => {
                // A completion of a job that does not exist.
                let id = self.rng.gen::<u64>() | (1 << 63);
                self.refused(
                    "a completion of an unknown job",
                    complete(&self.dev, id, 1, Status::Ok, 0),
                )?;
            }
            1 => {
                self.counts.bogus_ioctls += 1;
                let mut junk = [0u8; 32];
                self.rng.fill(&mut junk[..]);
                // SAFETY: a 32-byte buffer, as the (undefined) ioctl number says.
                let r =
                    unsafe { ioc_unknown(std::os::fd::AsRawFd::as_raw_fd(&self.dev), &mut junk) };
                if r != Err(Errno::ENOTTY) {
                    return fail(format!("an undefined ioctl: {r:?}, not ENOTTY"));
                }
            }
            2 => {
                // A second daemon while this one is attached.
                if open_device(true).is_ok() {
                    return fail("a second daemon could open /dev/daedalus");
                }
            }
            3 => {
                // A second handshake: allowed or refused, but the session goes on.
                let _ = hello(&self.dev, VERSION);
            }
            4 if self.rng.gen_ratio(1, 3) => {
                // Detach with jobs in flight (the module fails them), attach again at once;
                // storms of it.
                self.counts.reattaches += 1;
                for _ in 0..self.rng.gen_range(1..=5) {
                    if open_device(true).is_ok() {
                        return fail("a second daemon could open /dev/daedalus");
                    }
                    drop(std::mem::replace(&mut self.dev, File::from(open_null()?)));
                    self.dev = open_device(false).or_else(|e| fail(format!("reattach: {e}")))?;
                    self.attach()?;
                }
            }
            _ => {
                // A non-blocking read, whatever is queued.
                let mut buf = vec![0u8; MAX_MESSAGE_SIZE];
                if let Ok(n) = read_message_nonblocking(&self.dev, &mut buf) {
                    if message_size(&buf[..n]) != Some(n) {
                        return fail("a non-blocking read returned part of a message");
                    }
                    if let Ok(Message::Job(job)) = wire::decode(&buf[..n]) {
                        self.hold(&job);
                    }
                    self.counts.messages += 1;
                }
            }
        }
        Ok(())
    }
}

fn open_null() -> Check<OwnedFd> {
    File::open("/dev/null")
        .map(OwnedFd::from)
        .or_else(|e| fail(format!("/dev/null: {e}")))
}

/// A read that never blocks (poll with a zero timeout first).
fn read_message_nonblocking(dev: &File, buf: &mut [u8]) -> Result<usize, Errno> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(dev.as_fd(), PollFlags::POLLIN)];
    if poll(&mut fds, PollTimeout::ZERO)? == 0 {
        return Err(Errno::EAGAIN);
    }
    read_message(dev, buf)
}

/// Runs the hostile daemon for `seconds`.
pub fn run(seed: u64, seconds: u64) -> Check<()> {
    let dev = open_device(false).or_else(|e| fail(format!("open: {e}")))?;
    let mut h = Hostile {
        rng: StdRng::seed_from_u64(seed),
        dev,
        attach: 0,
        held: Vec::new(),
        counts: Counts::default(),
        timeout: Duration::ZERO,
    };
    h.attach()?;
    println!(
        "fake_daemon: hostile, seed {seed}, {seconds} s, job timeout {:?}",
        h.timeout
    );
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        // Never block for long: poll, then read what is there.
        match h.rng.gen_range(0..10) {
            0..=4 => {
                use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
                use std::os::fd::AsFd;
                let mut fds = [PollFd::new(h.dev.as_fd(), PollFlags::POLLIN)];
                if matches!(poll(&mut fds, PollTimeout::from(50u8)), Ok(n) if n > 0) {
                    h.read_one()?;
                }
            }
            5..=8 => h.answer_one()?,
            _ => h.misbehave()?,
        }
    }
    println!("fake_daemon: hostile summary: {:?}", h.counts);
    Ok(())
}
