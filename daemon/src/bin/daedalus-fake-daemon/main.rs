// SPDX-License-Identifier: GPL-2.0
//! `daedalus-fake-daemon`: a scripted stand-in for daedalusd that exercises the kernel side of
//! `/dev/daedalus` (tests/vm/daemon-protocol.sh). It reads the module's messages with the same
//! wire definitions as the daemon (`daedalus_proto::wire`, the one definition of the format),
//! so a message the daemon could not decode fails here too, and checks what the decoder would
//! only trust: dma-buf fds (a mappable dma-buf of the announced length, sent once per buffer
//! generation), and that every job carries its codec's per-frame control.
//!
//! ```text
//! daedalus-fake-daemon protocol        handshake and error paths, then exit (no client needed)
//! daedalus-fake-daemon serve MODE      attach and answer every job until SIGTERM (summary,
//!                                      exit 0) or SIGKILL; MODE = error (`Status::DecodeError`),
//!                                      invalid (a completion naming the wrong context: the
//!                                      module must refuse it with EINVAL and fail the job),
//!                                      hang (read jobs, never answer: "holding job ID of
//!                                      context CTX (CODEC)")
//! daedalus-fake-daemon hostile SEED SECONDS
//!                                      attack the protocol for SECONDS with seeded random
//!                                      misbehaviour while clients decode (hostile.rs)
//! ```
//! Exit status 1 (with `FAIL: ...`) at the first thing the module got wrong.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use daedalus_daemon::device::ioctl;
use daedalus_proto::wire::{
    self, BufferDesc, Completion, Hello, Job, Message, Status, DEVICE_PATH, MAX_MESSAGE_SIZE,
    VERSION,
};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

mod hostile;

/// An ioctl number of our type the module does not define.
const IOC_UNKNOWN: u32 = 0xC020_DA09;
nix::ioctl_readwrite_bad!(ioc_unknown, IOC_UNKNOWN, [u8; 32]);

/// What went wrong, for the `FAIL:` line.
struct Failure(String);

type Check<T> = Result<T, Failure>;

fn fail<T>(what: impl Into<String>) -> Check<T> {
    Err(Failure(what.into()))
}

fn open_device(nonblocking: bool) -> Result<File, Errno> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(if nonblocking { libc::O_NONBLOCK } else { 0 })
        .open(DEVICE_PATH)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))
}

/// `IOC_HELLO` with `version`: the module's answer, or its errno.
fn hello(dev: &File, version: u32) -> (Result<(), Errno>, Hello) {
    let mut payload = Hello {
        version,
        ..Default::default()
    }
    .encode();
    // SAFETY: the payload is a Hello-sized buffer, as IOC_HELLO reads and writes.
    let r = unsafe { ioctl::hello(dev.as_raw_fd(), &mut payload) }.map(drop);
    (r, Hello::decode(&payload).unwrap_or_default())
}

/// `IOC_COMPLETE`: the module's errno, if it refused the completion.
fn complete(
    dev: &File,
    job_id: u64,
    ctx_id: u32,
    status: Status,
    bytesused: u32,
) -> Result<(), Errno> {
    let payload = Completion {
        job_id,
        ctx_id,
        status,
        capture_bytesused: bytesused,
    }
    .encode();
    send_completion(dev, &payload)
}

/// `IOC_COMPLETE` with an encoded payload (possibly one no [`Completion`] encodes to).
fn send_completion(dev: &File, payload: &[u8; Completion::SIZE]) -> Result<(), Errno> {
    // SAFETY: the payload is a Completion-sized buffer, as IOC_COMPLETE reads.
    unsafe { ioctl::complete(dev.as_raw_fd(), payload) }.map(drop)
}

fn read_message(mut dev: &File, buf: &mut [u8]) -> Result<usize, Errno> {
    dev.read(buf)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))
}

/// Checks that `got` is `want` (`Ok` or an errno) and says so.
fn expect<T>(what: &str, got: Result<T, Errno>, want: Result<(), Errno>) -> Check<()> {
    let got = got.map(drop);
    if got != want {
        return fail(format!("{what}: expected {want:?}, got {got:?}"));
    }
    println!("fake_daemon: ok: {what}");
    Ok(())
}

fn protocol_checks() -> Check<()> {
    let dev = open_device(true).or_else(|e| fail(format!("open {DEVICE_PATH}: {e}")))?;
    expect(
        "second daemon is refused",
        open_device(false),
        Err(Errno::EBUSY),
    )?;
    let mut buf = vec![0u8; MAX_MESSAGE_SIZE];
    expect(
        "read before the handshake",
        read_message(&dev, &mut buf),
        Err(Errno::EPROTO),
    )?;
    let (r, answer) = hello(&dev, VERSION + 41);
    expect("another protocol version is refused", r, Err(Errno::EPROTO))?;
    if answer.version != VERSION {
        return fail(format!(
            "the module did not report its version (got {})",
            answer.version
        ));
    }
    let (r, answer) = hello(&dev, VERSION);
    expect("handshake", r, Ok(()))?;
    if answer.max_message_size as usize != MAX_MESSAGE_SIZE || answer.job_timeout_ms == 0 {
        return fail(format!("handshake answer: {answer:?}"));
    }
    expect(
        "non-blocking read of an empty queue",
        read_message(&dev, &mut buf),
        Err(Errno::EAGAIN),
    )?;
    expect(
        "completion of an unknown job",
        complete(&dev, 12345, 1, Status::Ok, 1),
        Err(Errno::ENOENT),
    )?;
    // A status word no `Status` has (bytes 12..16 of the payload).
    let mut bad_status = Completion {
        job_id: 1,
        ctx_id: 1,
        status: Status::Ok,
        capture_bytesused: 1,
    }
    .encode();
    bad_status[12..16].copy_from_slice(&77u32.to_ne_bytes());
    expect(
        "completion with a bad status",
        send_completion(&dev, &bad_status),
        Err(Errno::EINVAL),
    )?;
    let mut junk = [0u8; 32];
    // SAFETY: a 32-byte buffer, as the (undefined) ioctl number says.
    let r = unsafe { ioc_unknown(dev.as_raw_fd(), &mut junk) };
    expect("unknown ioctl", r, Err(Errno::ENOTTY))?;
    drop(dev);
    // Closing detached: a new daemon can attach again.
    let dev = open_device(false).or_else(|e| fail(format!("open again: {e}")))?;
    expect("attach again after detach", hello(&dev, VERSION).0, Ok(()))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Error,
    Invalid,
    Hang,
}

/// What the server saw, in statics the SIGTERM handler can read: jobs, context opens,
/// flushes, closes.
static SEEN: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
const JOBS: usize = 0;
const OPENS: usize = 1;
const FLUSHES: usize = 2;
const CLOSES: usize = 3;

fn count(what: usize) {
    SEEN[what].fetch_add(1, Ordering::SeqCst);
}

/// SIGTERM: prints the summary and exits at once, whatever the main thread is blocked in (a
/// flag checked between reads could miss a signal that comes just before a blocking read).
/// Only async-signal-safe calls: atomics, formatting into a stack buffer, write(2), _exit(2).
extern "C" fn on_sigterm(_: libc::c_int) {
    let mut line = [0u8; 160];
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        let n = bytes.len().min(line.len() - at);
        line[at..at + n].copy_from_slice(&bytes[..n]);
        at += n;
    };
    put(b"fake_daemon: ");
    for (i, what) in [" jobs, ", " context opens, ", " flushes, ", " closes\n"]
        .iter()
        .enumerate()
    {
        let mut digits = [0u8; 20];
        let mut v = SEEN[i].load(Ordering::SeqCst);
        let mut n = digits.len();
        loop {
            n -= 1;
            digits[n] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        put(&digits[n..]);
        put(what.as_bytes());
    }
    // SAFETY: write(2) of a live stack buffer and _exit(2) are async-signal-safe.
    unsafe {
        libc::write(1, line.as_ptr().cast(), at);
        libc::_exit(0);
    }
}

struct Server {
    mode: Mode,
    dev: File,
    /// (context, queue, index) -> generation of the fd already received.
    mapped: HashMap<(u32, &'static str, u32), u32>,
}

impl Server {
    fn new(mode: Mode) -> Check<Server> {
        let dev = open_device(false).or_else(|e| fail(format!("open {DEVICE_PATH}: {e}")))?;
        if let (Err(e), _) = hello(&dev, VERSION) {
            return fail(format!("handshake: {e}"));
        }
        Ok(Server {
            mode,
            dev,
            mapped: HashMap::new(),
        })
    }

    /// A new fd must be a mappable dma-buf of the announced length, once per generation; no
    /// fd means the generation was sent before.
    fn check_buffer(&mut self, ctx: u32, queue: &'static str, b: &BufferDesc) -> Check<()> {
        let key = (ctx, queue, b.index);
        if b.fd < 0 {
            if self.mapped.get(&key) != Some(&b.generation) {
                return fail(format!(
                    "{queue} buffer {} generation {} of context {ctx} never sent, fd -1",
                    b.index, b.generation
                ));
            }
            return Ok(());
        }
        if self.mapped.get(&key) == Some(&b.generation) {
            return fail(format!(
                "{queue} buffer {} generation {} of context {ctx} sent twice",
                b.index, b.generation
            ));
        }
        // SAFETY: the module installed this fd in our table for us; nothing else owns it.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(b.fd) });
        let kind = file
            .metadata()
            .or_else(|e| fail(format!("fstat of fd {}: {e}", b.fd)))?
            .file_type();
        if kind.is_file() || kind.is_dir() || kind.is_block_device() {
            return fail(format!("fd {} is not a dma-buf", b.fd));
        }
        // SAFETY: a shared mapping of a dma-buf, dropped at once; nothing is read or written.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .len(b.length as usize)
                .map_mut(&file)
        };
        if let Err(e) = map {
            return fail(format!(
                "cannot map {queue} dma-buf of {} bytes: {e}",
                b.length
            ));
        }
        self.mapped.insert(key, b.generation);
        Ok(())
    }

    fn job(&mut self, job: &Job<'_>) -> Check<()> {
        let frame_control = job.header.codec.frame_control();
        if job.controls.get(frame_control).is_none() {
            let ids: Vec<String> = job.controls.map(|c| format!("{:#x}", c.id)).collect();
            return fail(format!(
                "{:?} job without its per-frame control {frame_control:#x}: {ids:?}",
                job.header.codec
            ));
        }
        self.check_buffer(job.header.ctx_id, "OUTPUT", &job.header.output)?;
        self.check_buffer(job.header.ctx_id, "CAPTURE", &job.header.capture)?;
        count(JOBS);
        let bytes = job.header.picture.sizeimage;
        match self.mode {
            Mode::Hang => println!(
                "fake_daemon: holding job {} of context {} ({:?})",
                job.header.job_id, job.header.ctx_id, job.header.codec
            ),
            Mode::Error => {
                if let Err(e) = complete(
                    &self.dev,
                    job.header.job_id,
                    job.header.ctx_id,
                    Status::DecodeError,
                    0,
                ) {
                    return fail(format!("completion refused: {e}"));
                }
            }
            Mode::Invalid => {
                let r = complete(
                    &self.dev,
                    job.header.job_id,
                    job.header.ctx_id + 1000,
                    Status::Ok,
                    bytes,
                );
                if r != Err(Errno::EINVAL) {
                    return fail(format!("completion with a wrong context: {r:?}"));
                }
                // The job is gone: a second answer names an unknown job.
                let r = complete(
                    &self.dev,
                    job.header.job_id,
                    job.header.ctx_id,
                    Status::Ok,
                    bytes,
                );
                if r != Err(Errno::ENOENT) {
                    return fail(format!("a failed job could be completed again: {r:?}"));
                }
            }
        }
        Ok(())
    }

    /// Serves until SIGTERM ([`on_sigterm`] exits) or a failure.
    fn run(&mut self) -> Check<()> {
        println!("fake_daemon: serving");
        let mut buf = vec![0u8; MAX_MESSAGE_SIZE];
        loop {
            // 'invalid' uses blocking reads, the others poll() first: both paths get exercised.
            if self.mode != Mode::Invalid {
                let mut fds = [PollFd::new(self.dev.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => return fail(format!("poll: {e}")),
                }
            }
            let n = match read_message(&self.dev, &mut buf) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(e) => return fail(format!("read: {e}")),
            };
            // One message per read, exactly as long as its header says.
            let announced = message_size(&buf[..n]);
            if announced != Some(n) {
                return fail(format!("read {n} bytes, the header says {announced:?}"));
            }
            match wire::decode(&buf[..n]) {
                Err(e) => return fail(format!("undecodable message of {n} bytes: {e}")),
                Ok(Message::Job(job)) => self.job(&job)?,
                Ok(Message::ContextOpen { .. }) => count(OPENS),
                Ok(Message::ContextFlush { .. }) => count(FLUSHES),
                Ok(Message::ContextClose { .. }) => count(CLOSES),
            }
        }
    }
}

/// The size a message's header announces (the third `u32`, in the module's byte order).
fn message_size(msg: &[u8]) -> Option<usize> {
    let b: [u8; 4] = msg.get(8..12)?.try_into().ok()?;
    Some(u32::from_ne_bytes(b) as usize)
}

fn serve(mode: Mode) -> Check<()> {
    // The handler prints the summary and exits (see on_sigterm).
    let action = SigAction::new(
        SigHandler::Handler(on_sigterm),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic.
    unsafe { sigaction(Signal::SIGTERM, &action) }.or_else(|e| fail(format!("sigaction: {e}")))?;
    Server::new(mode)?.run()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args[..] {
        ["protocol"] => protocol_checks(),
        ["serve", "error"] => serve(Mode::Error),
        ["serve", "invalid"] => serve(Mode::Invalid),
        ["serve", "hang"] => serve(Mode::Hang),
        ["hostile", seed, seconds] => match (seed.parse(), seconds.parse()) {
            (Ok(seed), Ok(seconds)) => hostile::run(seed, seconds),
            _ => fail(format!(
                "hostile: SEED and SECONDS are numbers, not {seed:?} {seconds:?}"
            )),
        },
        _ => {
            eprintln!(
                "usage: daedalus-fake-daemon protocol | serve error|invalid|hang | hostile SEED SECONDS"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(what)) => {
            println!("fake_daemon: FAIL: {what}");
            ExitCode::FAILURE
        }
    }
}
