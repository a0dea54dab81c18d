// SPDX-License-Identifier: GPL-2.0
//! The daemon's sandbox: once everything that needs privileges or the file system is done
//! (the open-file limit raised, the decoders warmed up, `/dev/daedalus` opened, the
//! `--dump-dir` directory opened), [`enter`]
//!
//! 1. drops to an unprivileged user when started as root: `--user NAME`, else the `daedalus`
//!    system user if it exists, else `nobody` (with its primary group, no supplementary
//!    groups); a daemon started unprivileged (systemd's `User=daedalus`) keeps its user;
//! 2. keeps no capabilities: the bounding set is dropped while that is still permitted, then
//!    the effective, permitted, inheritable and ambient sets are cleared;
//! 3. sets no-new-privs;
//! 4. installs a seccomp filter ([`filter`]) that allows only the system calls decoding makes
//!    (found by tracing the daemon through VP9, H.264 and AV1 decodes with FFmpeg's and
//!    libdav1d's threads; docs/architecture.md, "Sandbox"). Any other system call kills the
//!    whole process (`SECCOMP_RET_KILL_PROCESS`): a decoder that makes one has been exploited
//!    or has met a path nobody traced, and either way the safe answer is to stop, not to hand
//!    it an error code to work around. The module fails the jobs in flight at once (the daemon
//!    closed the device) and systemd restarts the daemon (`Restart=on-failure`).
//!    `--seccomp=log` logs forbidden calls to the kernel log instead (developers: find what a
//!    new FFmpeg needs), `--seccomp=off` installs no filter.
//!
//! `clone3` returns ENOSYS (glibc then uses `clone`, whose flags the filter checks: threads
//! only); `openat` returns EACCES (glibc's malloc tries one file once, see [`filter`]) except,
//! with `--dump-dir`, relative to the pre-opened directory's descriptor; `mmap` / `mprotect`
//! never get `PROT_EXEC`; `ioctl` takes only the device's completion ioctl and the dma-buf
//! sync ioctl. seccomp cannot read paths: with `--dump-dir`, an absolute path given to `openat`
//! with that descriptor would still open what the daemon's unprivileged user may open, which is
//! one reason the dump is a debugging mode.

use std::collections::BTreeMap;
use std::fmt;
use std::os::fd::RawFd;

use caps::CapSet;
use nix::unistd::{Gid, Uid, User};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};

/// What to do with a system call the filter does not allow (`daedalusd --seccomp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SeccompMode {
    /// Kill the daemon (systemd restarts it).
    Kill,
    /// Allow it and log it to the kernel log (dmesg, "audit: type=1326 ... syscall=N"): for
    /// finding what a new FFmpeg needs.
    Log,
    /// No filter (the user, capability and no-new-privs steps still apply).
    Off,
}

/// Settings of [`enter`].
#[derive(Clone, Debug)]
pub struct Config {
    /// The user to switch to when root (`--user`); None: `daedalus`, else `nobody`.
    pub user: Option<String>,
    /// The seccomp filter's action.
    pub seccomp: SeccompMode,
    /// The `--dump-dir` directory's descriptor: `openat` is allowed relative to it.
    pub dump_dir_fd: Option<RawFd>,
}

/// What [`enter`] did, for the log.
#[derive(Clone, Debug)]
pub struct Report {
    /// The user the daemon runs as now.
    pub user: String,
    /// Its uid.
    pub uid: u32,
    /// Its gid.
    pub gid: u32,
    /// Whether it switched user (it was root).
    pub switched: bool,
    /// Whether the bounding set could be dropped (false when not permitted, e.g. an
    /// unprivileged start: then the systemd unit's `CapabilityBoundingSet=` does it).
    pub bounding_dropped: bool,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "running as {} (uid {}, gid {}{}), no capabilities{}",
            self.user,
            self.uid,
            self.gid,
            if self.switched {
                ", dropped from root"
            } else {
                ""
            },
            if self.bounding_dropped {
                ", bounding set empty"
            } else {
                ""
            }
        )
    }
}

/// Why the sandbox could not be entered (the daemon does not start without it).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--user` names no user.
    #[error("unknown user {0:?} (--user): refusing to run as root")]
    UnknownUser(String),
    /// Root, no `--user`, and neither `daedalus` nor `nobody` exists.
    #[error(
        "no user to run as: neither the daedalus system user nor nobody exists (create the \
         daedalus user, see docs/install.md, or name one with --user); refusing to run as root"
    )]
    NoUser,
    /// `--user` names root.
    #[error("--user {0}: that is root; the daemon runs unprivileged")]
    RootUser(String),
    /// Started unprivileged with `--user` naming someone else.
    #[error("--user {wanted}: cannot switch user as uid {uid} (only root can)")]
    CannotSwitch {
        /// `--user`.
        wanted: String,
        /// The current uid.
        uid: u32,
    },
    /// A system call of the sandbox setup failed.
    #[error("{what}: {source}")]
    Sys {
        /// What was being done.
        what: &'static str,
        /// The error.
        source: nix::Error,
    },
    /// The capabilities could not be cleared.
    #[error("cannot clear the {0:?} capabilities: {1}")]
    Caps(CapSet, caps::errors::CapsError),
    /// Capabilities remain after clearing.
    #[error("capabilities remain after dropping them: {0}")]
    CapsLeft(String),
    /// The seccomp filter could not be built or installed.
    #[error("seccomp filter: {0}")]
    Seccomp(#[from] seccompiler::Error),
    /// The seccomp filter could not be built.
    #[error("seccomp filter: {0}")]
    SeccompBuild(#[from] seccompiler::BackendError),
}

fn sys<T>(what: &'static str, r: nix::Result<T>) -> Result<T, Error> {
    r.map_err(|source| Error::Sys { what, source })
}

/// Enters the sandbox (steps 1 to 4 of the module documentation) for the whole process: call
/// it after the last open. Threads that exist already get the filter too (`TSYNC`), but not the
/// new user: start no thread before.
pub fn enter(config: &Config) -> Result<Report, Error> {
    let mut report = drop_user(config.user.as_deref())?;
    report.bounding_dropped = report.bounding_dropped || drop_bounding_set();
    drop_capabilities()?;
    sys(
        "cannot set no-new-privs",
        nix::sys::prctl::set_no_new_privs(),
    )?;
    if config.seccomp != SeccompMode::Off {
        install_filter(config.seccomp, config.dump_dir_fd)?;
    }
    Ok(report)
}

/// Step 1 (and, when root, the bounding set before the switch loses the right to drop it).
fn drop_user(wanted: Option<&str>) -> Result<Report, Error> {
    let uid = Uid::current();
    let euid = Uid::effective();
    if !uid.is_root() && !euid.is_root() {
        let user = User::from_uid(uid).ok().flatten();
        let name = user
            .as_ref()
            .map_or_else(|| uid.to_string(), |u| u.name.clone());
        if let Some(w) = wanted {
            if w != name {
                return Err(Error::CannotSwitch {
                    wanted: w.to_string(),
                    uid: uid.as_raw(),
                });
            }
        }
        return Ok(Report {
            user: name,
            uid: uid.as_raw(),
            gid: Gid::current().as_raw(),
            switched: false,
            bounding_dropped: false,
        });
    }
    let user = match wanted {
        Some(name) => sys("cannot look up the user", User::from_name(name))?
            .ok_or_else(|| Error::UnknownUser(name.to_string()))?,
        None => match sys("cannot look up the user", User::from_name("daedalus"))? {
            Some(u) => u,
            None => {
                sys("cannot look up the user", User::from_name("nobody"))?.ok_or(Error::NoUser)?
            }
        },
    };
    if user.uid.is_root() {
        return Err(Error::RootUser(user.name));
    }
    // While still root: afterwards dropping from the bounding set is no longer permitted.
    let bounding_dropped = drop_bounding_set();
    sys(
        "cannot clear the supplementary groups",
        nix::unistd::setgroups(&[]),
    )?;
    sys(
        "cannot switch group",
        nix::unistd::setresgid(user.gid, user.gid, user.gid),
    )?;
    sys(
        "cannot switch user",
        nix::unistd::setresuid(user.uid, user.uid, user.uid),
    )?;
    Ok(Report {
        user: user.name,
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        switched: true,
        bounding_dropped,
    })
}

/// Empties the bounding set if this process may (CAP_SETPCAP); true if it is empty after.
fn drop_bounding_set() -> bool {
    if caps::has_cap(None, CapSet::Effective, caps::Capability::CAP_SETPCAP).unwrap_or(false) {
        let _ = caps::clear(None, CapSet::Bounding);
    }
    caps::read(None, CapSet::Bounding).is_ok_and(|s| s.is_empty())
}

/// Step 2: clears the ambient, inheritable, effective and permitted sets and checks them. A set
/// that is empty already is left alone: under the systemd unit (`SystemCallFilter=~@privileged`)
/// `capset` fails with EPERM, and there every set is empty.
fn drop_capabilities() -> Result<(), Error> {
    for set in [
        CapSet::Ambient,
        CapSet::Inheritable,
        CapSet::Effective,
        CapSet::Permitted,
    ] {
        if caps::read(None, set).is_ok_and(|s| s.is_empty()) {
            continue;
        }
        caps::clear(None, set).map_err(|e| Error::Caps(set, e))?;
    }
    let mut left = Vec::new();
    for set in [
        CapSet::Ambient,
        CapSet::Inheritable,
        CapSet::Effective,
        CapSet::Permitted,
    ] {
        match caps::read(None, set) {
            Ok(s) if s.is_empty() => {}
            Ok(s) => left.push(format!("{set:?} {s:?}")),
            Err(e) => left.push(format!("{set:?}: {e}")),
        }
    }
    if left.is_empty() {
        Ok(())
    } else {
        Err(Error::CapsLeft(left.join(", ")))
    }
}

/// Step 4: the filters ([`filter`]), on every thread.
fn install_filter(mode: SeccompMode, dump_dir_fd: Option<RawFd>) -> Result<(), Error> {
    for f in filter(mode, dump_dir_fd)? {
        seccompiler::apply_filter_all_threads(&f)?;
    }
    Ok(())
}

fn cond(arg: u8, op: SeccompCmpOp, value: u64) -> SeccompCondition {
    // Only built from the constants below: cannot fail (argument index < 6).
    SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value).expect("valid seccomp condition")
}

fn rule(conditions: Vec<SeccompCondition>) -> SeccompRule {
    SeccompRule::new(conditions).expect("non-empty seccomp rule")
}

/// The filters, compiled, in the order to install them. The kernel runs every filter and the
/// strictest answer wins, so the first two refine the allow-list (the last):
/// - `clone3` → ENOSYS: glibc then creates its threads with `clone`, whose flags the allow-list
///   can check (seccomp cannot read `clone3`'s argument structure);
/// - `openat` → EACCES (but relative to the `--dump-dir` descriptor): refused, not killed, as
///   glibc's malloc opens `/proc/sys/vm/overcommit_memory` once, the first time a thread's heap
///   shrinks (seen after attaching), and takes a failure as "heuristic overcommit";
/// - the allow-list ([`allowed`]), with `mode`'s action for anything else.
pub fn filter(mode: SeccompMode, dump_dir_fd: Option<RawFd>) -> Result<Vec<BpfProgram>, Error> {
    let arch = arch::TARGET;
    let errno = |nr: i64, rules: Vec<SeccompRule>, errno: i32| {
        SeccompFilter::new(
            BTreeMap::from([(nr, rules)]),
            SeccompAction::Allow,
            SeccompAction::Errno(errno as u32),
            arch,
        )
    };
    let clone3 = errno(libc::SYS_clone3, Vec::new(), libc::ENOSYS)?;
    let openat_refused = match dump_dir_fd {
        // Every openat but those relative to the dump directory.
        Some(fd) => vec![rule(vec![dword(0, SeccompCmpOp::Ne, fd as u64)])],
        None => Vec::new(),
    };
    let openat = errno(libc::SYS_openat, openat_refused, libc::EACCES)?;
    let mismatch = match mode {
        SeccompMode::Log => SeccompAction::Log,
        _ => SeccompAction::KillProcess,
    };
    let allow = SeccompFilter::new(allowed(), mismatch, SeccompAction::Allow, arch)?;
    Ok(vec![
        clone3.try_into()?,
        openat.try_into()?,
        allow.try_into()?,
    ])
}

fn dword(arg: u8, op: SeccompCmpOp, value: u64) -> SeccompCondition {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value).expect("valid seccomp condition")
}

/// The allow-list: system call → the argument rules of which one must match (empty: any
/// arguments). What `strace -f` saw the daemon do after attaching, through VP9, H.264 and AV1
/// decodes (8 and 10-bit, two contexts at once, 4 threads each, SIGUSR1, SIGTERM), plus a few
/// calls marked "not seen" that glibc makes on paths the trace did not take.
fn allowed() -> BTreeMap<i64, Vec<SeccompRule>> {
    use SeccompCmpOp::{Eq, MaskedEq};
    let prot_exec = libc::PROT_EXEC as u64;
    // Never an executable mapping: FFmpeg and libdav1d map no code at run time.
    let no_exec = || vec![rule(vec![cond(2, MaskedEq(prot_exec), 0)])];
    let thread = libc::CLONE_THREAD as u64;
    // c_ulong is u64 on both targets (x86_64, aarch64).
    let ioctls: [u64; 2] = [
        // The completion of a job (IOC_HELLO happened before the filter).
        u64::from(daedalus_proto::wire::IOC_COMPLETE),
        // Start / end of CPU access to a CAPTURE dma-buf.
        crate::sys::DMA_BUF_IOCTL_SYNC,
    ];
    let mut m: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for nr in [
        // The chardev (read, poll), the signalfd (read), stderr (write), dma-buf fds (lseek
        // for their size, fcntl for their access mode, close).
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_close,
        libc::SYS_lseek,
        libc::SYS_fcntl,
        // Memory: mmap / mprotect below. brk and mremap not seen: glibc's main arena growing,
        // realloc of a large (mmapped) block.
        libc::SYS_munmap,
        libc::SYS_madvise,
        libc::SYS_brk,
        libc::SYS_mremap,
        // Threads: FFmpeg's slice threads, libdav1d's workers, the band converters.
        libc::SYS_futex,
        libc::SYS_set_robust_list,
        libc::SYS_rseq,
        libc::SYS_sched_getaffinity,
        libc::SYS_sigaltstack,
        libc::SYS_prctl,
        libc::SYS_gettid,
        libc::SYS_getrandom,
        // Signals: the mask (the signalfd reads them); glibc's first pthread_create installs
        // its SIGRT_1 handler (rt_sigaction: seen with --no-warm-up, where the first thread
        // starts after the filter; rt_sigreturn for that handler). Not seen: abort() on a
        // panic (getpid, tgkill), so that a panic still ends with SIGABRT, not SIGSYS.
        libc::SYS_rt_sigprocmask,
        libc::SYS_rt_sigaction,
        libc::SYS_rt_sigreturn,
        libc::SYS_getpid,
        libc::SYS_tgkill,
        // Time: through the vDSO; not seen: the system call when the clock source has no
        // vDSO access.
        libc::SYS_clock_gettime,
        // The end.
        libc::SYS_exit,
        libc::SYS_exit_group,
        // Refused by the openat filter (EACCES), unless relative to the --dump-dir fd.
        libc::SYS_openat,
        // Answered ENOSYS by the clone3 filter.
        libc::SYS_clone3,
    ]
    .into_iter()
    .chain(arch::ALLOWED.iter().copied())
    {
        m.insert(nr, Vec::new());
    }
    m.insert(libc::SYS_mmap, no_exec());
    m.insert(libc::SYS_mprotect, no_exec());
    // clone: threads only (glibc's pthread_create sets CLONE_THREAD); flags in argument 0 on
    // both targets.
    m.insert(
        libc::SYS_clone,
        vec![rule(vec![cond(0, MaskedEq(thread), thread)])],
    );
    // The request is an unsigned int in the kernel: compare the low 32 bits only.
    let mut ioctl_rules: Vec<SeccompRule> = ioctls
        .iter()
        .map(|&r| rule(vec![dword(1, Eq, r)]))
        .collect();
    // isatty(2) (TCGETS on stderr): FFmpeg's log callback asks once, at its first message (an
    // error about a corrupt stream); without this the daemon died of SIGSYS there, found by
    // `daedalus stress`.
    ioctl_rules.push(rule(vec![
        dword(0, Eq, 2),
        dword(1, Eq, u64::from(libc::TCGETS as u32)),
    ]));
    m.insert(libc::SYS_ioctl, ioctl_rules);
    m
}

/// What differs between the architectures the daemon is built for.
#[cfg(target_arch = "x86_64")]
mod arch {
    /// The filter's architecture.
    pub const TARGET: seccompiler::TargetArch = seccompiler::TargetArch::x86_64;
    /// poll (what glibc 2.36 calls here; aarch64 has only ppoll) and ppoll (other C libraries).
    pub const ALLOWED: &[i64] = &[libc::SYS_poll, libc::SYS_ppoll];
}

/// What differs between the architectures the daemon is built for.
#[cfg(target_arch = "aarch64")]
mod arch {
    /// The filter's architecture.
    pub const TARGET: seccompiler::TargetArch = seccompiler::TargetArch::aarch64;
    /// System calls of this architecture only: ppoll (glibc's poll).
    pub const ALLOWED: &[i64] = &[libc::SYS_ppoll];
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Forks; the child enters the sandbox's filter and runs `f`; returns how it ended.
    fn in_child(mode: SeccompMode, dump_dir_fd: Option<RawFd>, f: fn() -> i32) -> WaitStatus {
        use nix::unistd::{fork, ForkResult};
        // Compiled before the fork: the child only installs it and makes the call.
        let filters = filter(mode, dump_dir_fd).expect("filter");
        // SAFETY: the child calls only async-signal-safe functions (prctl, seccomp, the
        // system call under test, _exit) before exiting.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                let code = match filters
                    .iter()
                    .try_for_each(|f| seccompiler::apply_filter(f))
                {
                    Ok(()) => f(),
                    Err(_) => 100,
                };
                // SAFETY: ends the child without running the parent's atexit handlers.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => nix::sys::wait::waitpid(child, None).expect("waitpid"),
        }
    }

    use nix::sys::wait::WaitStatus;

    /// 1: opened; 2: refused with EACCES; 3: refused otherwise.
    fn open_passwd() -> i32 {
        // SAFETY: a plain system call on a constant path.
        let fd = unsafe { libc::openat(libc::AT_FDCWD, c"/etc/passwd".as_ptr(), libc::O_RDONLY) };
        match fd {
            0.. => 1,
            // SAFETY: reads this thread's errno.
            _ if unsafe { *libc::__errno_location() } == libc::EACCES => 2,
            _ => 3,
        }
    }

    fn make_socket() -> i32 {
        // SAFETY: a plain system call.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
        i32::from(fd >= 0)
    }

    fn killed_by_sigsys(s: WaitStatus) -> bool {
        matches!(
            s,
            WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGSYS, _)
        )
    }

    #[test]
    fn openat_is_refused_and_other_calls_kill() {
        let status = in_child(SeccompMode::Kill, None, open_passwd);
        assert!(
            matches!(status, WaitStatus::Exited(_, 2)),
            "openat under the filter: {status:?}, want EACCES"
        );
        let status = in_child(SeccompMode::Kill, None, make_socket);
        assert!(killed_by_sigsys(status), "socket: {status:?}, want SIGSYS");
        // Log: the forbidden call goes through (and is logged); openat stays refused.
        let status = in_child(SeccompMode::Log, None, make_socket);
        assert!(matches!(status, WaitStatus::Exited(_, 1)), "{status:?}");
        let status = in_child(SeccompMode::Log, None, open_passwd);
        assert!(matches!(status, WaitStatus::Exited(_, 2)), "{status:?}");
    }

    /// FFmpeg's first log line asks whether stderr is a terminal (`isatty(2)`: ioctl TCGETS):
    /// that must not kill the daemon under the filter, which logs FFmpeg's messages about
    /// corrupt streams (found by `daedalus stress`: SIGSYS at the first one).
    #[test]
    fn ffmpeg_log_line_passes() {
        fn log_line() -> i32 {
            // SAFETY: av_log with a constant format and no arguments.
            unsafe {
                ffmpeg_next::ffi::av_log(
                    std::ptr::null_mut(),
                    ffmpeg_next::ffi::AV_LOG_ERROR,
                    c"sandbox test: an FFmpeg error line\n".as_ptr(),
                )
            };
            0
        }
        std::env::set_var("TERM", "xterm");
        let status = in_child(SeccompMode::Kill, None, log_line);
        assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
    }

    /// The dispatcher trims the allocator when the last context ends
    /// (`daedalus_malloc::release_free_memory`): freed heap pages in a thread's arena and in the
    /// main one go back through madvise / brk, which the filter must allow (without madvise
    /// this test dies of SIGSYS).
    #[test]
    fn allocator_trim_passes() {
        fn trim() -> i32 {
            let worker = std::thread::spawn(|| {
                let blocks: Vec<Vec<u8>> = (0..64).map(|i| vec![i as u8; 256 * 1024]).collect();
                blocks.iter().map(|b| usize::from(b[0])).sum::<usize>()
            });
            let big: Vec<Vec<u8>> = (0..64).map(|i| vec![i as u8; 200 * 1024]).collect();
            drop(big);
            if worker.join().is_err() {
                return 2;
            }
            daedalus_malloc::release_free_memory();
            0
        }
        let status = in_child(SeccompMode::Kill, None, trim);
        assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
    }

    #[test]
    fn decoding_calls_pass() {
        fn allowed_calls() -> i32 {
            // SAFETY: plain system calls on valid arguments.
            unsafe {
                let mut ts = std::mem::zeroed::<libc::timespec>();
                if libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) != 0 {
                    return 3;
                }
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                if p == libc::MAP_FAILED || libc::munmap(p, 4096) != 0 {
                    return 4;
                }
                // clone3 is answered ENOSYS, for glibc to fall back to clone.
                if libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0) != -1
                    || *libc::__errno_location() != libc::ENOSYS
                {
                    return 5;
                }
            }
            0
        }
        let status = in_child(SeccompMode::Kill, None, allowed_calls);
        assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
        // A thread: clone3 refused, glibc falls back to clone(CLONE_THREAD...).
        fn thread() -> i32 {
            extern "C" fn run(_: *mut libc::c_void) -> *mut libc::c_void {
                std::ptr::null_mut()
            }
            // SAFETY: pthread_create / join with a thread function that does nothing.
            unsafe {
                let mut t = std::mem::zeroed::<libc::pthread_t>();
                if libc::pthread_create(&mut t, std::ptr::null(), run, std::ptr::null_mut()) != 0 {
                    return 6;
                }
                if libc::pthread_join(t, std::ptr::null_mut()) != 0 {
                    return 7;
                }
            }
            0
        }
        let status = in_child(SeccompMode::Kill, None, thread);
        assert!(
            matches!(status, WaitStatus::Exited(_, 0)),
            "thread: {status:?}"
        );
    }

    #[test]
    fn exec_mappings_kill_the_process() {
        fn map_exec() -> i32 {
            // SAFETY: a plain system call; the mapping is never used.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ | libc::PROT_EXEC,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            i32::from(p != libc::MAP_FAILED)
        }
        assert!(killed_by_sigsys(in_child(
            SeccompMode::Kill,
            None,
            map_exec
        )));
    }

    #[test]
    fn dump_dir_allows_openat_relative_to_its_fd_only() {
        use std::os::fd::AsRawFd;
        let dir = std::env::temp_dir().join(format!("daedalus-sandbox-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let d = std::fs::File::open(&dir).expect("open dir");
        // The child finds the descriptor through this (fork copies it): fn pointers take no
        // captures.
        DIR_FD.store(d.as_raw_fd(), std::sync::atomic::Ordering::SeqCst);
        fn create_in_dir() -> i32 {
            let fd = DIR_FD.load(std::sync::atomic::Ordering::SeqCst);
            // SAFETY: a plain system call on a constant relative path.
            let r = unsafe {
                libc::openat(fd, c"dump".as_ptr(), libc::O_WRONLY | libc::O_CREAT, 0o600)
            };
            if r >= 0 {
                0
            } else {
                1
            }
        }
        let status = in_child(SeccompMode::Kill, Some(d.as_raw_fd()), create_in_dir);
        assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
        assert!(dir.join("dump").is_file());
        // Any other openat (AT_FDCWD) is still refused.
        let status = in_child(SeccompMode::Kill, Some(d.as_raw_fd()), open_passwd);
        assert!(matches!(status, WaitStatus::Exited(_, 2)), "{status:?}");
        std::fs::remove_dir_all(&dir).ok();
    }

    static DIR_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

    #[test]
    fn unknown_user_is_refused_before_any_change() {
        let uid = Uid::current();
        let e = drop_user(Some("no-such-user-daedalus")).expect_err("unknown user accepted");
        if uid.is_root() {
            assert!(matches!(e, Error::UnknownUser(_)), "{e}");
            assert!(e.to_string().contains("refusing to run as root"), "{e}");
            assert!(matches!(drop_user(Some("root")), Err(Error::RootUser(_))));
        } else {
            assert!(matches!(e, Error::CannotSwitch { .. }), "{e}");
        }
        assert_eq!(Uid::current(), uid);
    }
}
