// SPDX-License-Identifier: GPL-2.0
//! `daedalusd`: the decode daemon of daedalus (see the library for how it works).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use daedalus_daemon::device::{block_signals, Device};
use daedalus_daemon::dump::DumpDir;
use daedalus_daemon::sandbox::{self, SeccompMode};
use daedalus_daemon::{DaemonConfig, DecoderConfig};
use daedalus_proto::wire::DEVICE_PATH;
use nix::sys::signal::Signal;

/// Log levels.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogLevel {
    Off,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl From<LogLevel> for log::LevelFilter {
    fn from(l: LogLevel) -> Self {
        match l {
            LogLevel::Off => log::LevelFilter::Off,
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        }
    }
}

/// The decode daemon of the daedalus V4L2 stateless decoder.
///
/// daedalusd attaches to the daedalus kernel module through /dev/daedalus and decodes the jobs
/// the module sends (one frame each, from applications using /dev/videoN) with FFmpeg, writing
/// the pictures straight into the applications' CAPTURE buffers: VP9 (profile 0 to NV12,
/// profile 2 to P010), H.264 (Baseline to High 10) and AV1 (main profile, 8/10-bit, with
/// libdav1d).
///
/// Before attaching it decodes a few small built-in frames of every codec and bit depth, so
/// that the first job of a boot does not pay for loading the decoders (--no-warm-up: attach at
/// once).
///
/// It runs in the foreground (for systemd: Type=simple, see daedalusd.service), needs no
/// privileges but read/write access to /dev/daedalus (the packaged udev rule gives the node to
/// group daedalus; the unit runs it as the daedalus system user, without capabilities), and
/// only one daemon can be attached at a time. Every decode
/// context (open file of /dev/videoN) gets its own thread and FFmpeg decoder, so streams decode
/// in parallel; each decoder uses --threads slice (tile) threads.
///
/// Sandbox: once attached, daedalusd drops to an unprivileged user when started as root
/// (--user; default the daedalus system user, else nobody; supplementary groups cleared; a
/// root daemon that cannot drop refuses to start), keeps no capabilities, sets no-new-privs
/// and installs a seccomp filter that allows only the system calls decoding makes (no open,
/// exec, socket...): a decoder exploited by a malicious stream gets an unprivileged, filtered
/// process. A forbidden system call kills the daemon (--seccomp log / off for debugging).
/// With --dump-dir it may also create files, in that directory only.
///
/// Signals: SIGUSR1 prints per-context statistics (frames, errors, job time p50/p99) to stderr;
/// SIGINT/SIGTERM finish the queued jobs and exit with status 0. Statistics are also logged
/// when a context closes. The exit status is 1 on errors (device missing, busy, protocol
/// mismatch, device failure).
#[derive(Parser, Debug)]
#[command(name = "daedalusd", version, verbatim_doc_comment)]
struct Cli {
    /// The daedalus chardev to attach to.
    #[arg(long, value_name = "PATH", default_value = DEVICE_PATH)]
    device: PathBuf,

    /// FFmpeg slice (tile) threads per decode context [default: the number of CPUs].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,

    /// How much to log (to stderr): error, warn, info (attach/detach, context closes, failed
    /// jobs), debug (every job), trace. FFmpeg's own messages follow: its errors from warn,
    /// its warnings from info.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    log_level: LogLevel,

    /// Write every packet each decoder is given to a file in DIR (IVF for VP9/AV1, Annex-B
    /// for H.264): for slices-only or tile-payload clients this is the bitstream rebuilt from
    /// the controls. For debugging (it writes every frame); see the README. DIR is opened at
    /// start and the files are created in it after the daemon dropped to its unprivileged user
    /// (the sandbox allows opening files relative to DIR only): DIR must be writable by that
    /// user.
    #[arg(long, value_name = "DIR")]
    dump_dir: Option<PathBuf>,

    /// The user to run as once attached, when started as root [default: daedalus if that
    /// user exists, else nobody]. Started as another user (systemd's User=daedalus), the
    /// daemon keeps its user.
    #[arg(long, value_name = "NAME")]
    user: Option<String>,

    /// What the seccomp filter does with a system call decoding does not need: kill the
    /// daemon (the service restarts it), log it to the kernel log and let it through (for
    /// developers: find what a new FFmpeg build needs), or install no filter.
    #[arg(long, value_name = "MODE", default_value = "kill")]
    seccomp: SeccompMode,

    /// Messages queued per context before the reader waits for that context.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    queue_depth: u16,

    /// Attach at once, without decoding the built-in warm-up frames first (the first job of
    /// each codec then pays for loading its decoder: up to a second on slow machines). A
    /// SIGINT / SIGTERM during the warm-up (about 2 s under emulation) stops the daemon right
    /// after it.
    #[arg(long)]
    no_warm_up: bool,

    /// Write the man page (man/daedalusd.8) and the shell completion scripts
    /// (completions/{bash,zsh,fish}/) into DIR and exit (for packaging).
    #[arg(long, value_name = "DIR", hide = true)]
    generate_docs: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(dir) = &cli.generate_docs {
        return match generate_docs(dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("daedalusd: error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let level = log::LevelFilter::from(cli.log_level);
    let mut logger = env_logger::Builder::new();
    logger.filter_level(level);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        // Under systemd the journal timestamps every line already.
        logger.format_timestamp(None);
    }
    logger.init();
    match run(&cli, level) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("daedalusd: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli, level: log::LevelFilter) -> anyhow::Result<()> {
    // Before any thread exists (FFmpeg's included).
    daedalus_malloc::configure();
    let threads = match cli.threads {
        Some(n) => usize::from(n),
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    daedalus_daemon::init_ffmpeg(level);
    raise_fd_limit();
    // Before any thread starts, so that every thread (FFmpeg's included) inherits the mask and
    // the signals only ever arrive through the signalfd the dispatcher polls.
    let signals = block_signals(&[Signal::SIGINT, Signal::SIGTERM, Signal::SIGUSR1])
        .context("cannot set up signal handling")?;
    // Opened now: the sandbox allows creating files relative to this descriptor only.
    let dump_dir = match &cli.dump_dir {
        Some(d) => Some(&*Box::leak(Box::new(DumpDir::open(d).with_context(
            || format!("--dump-dir {}: cannot open the directory", d.display()),
        )?))),
        None => None,
    };
    let decoder = DecoderConfig {
        threads,
        // Leaked once: every decoder of the process refers to it.
        dump_dir,
    };
    // Not when the device is missing: opening it says why at once.
    if !cli.no_warm_up && cli.device.exists() {
        warm_up(&decoder);
    }
    let device = Device::open(&cli.device)?.with_signals(signals);
    // The last open is done: from here on, no privileges and no new files.
    let report = sandbox::enter(&sandbox::Config {
        user: cli.user.clone(),
        seccomp: cli.seccomp,
        dump_dir_fd: dump_dir.map(DumpDir::raw_fd),
    })
    .context("cannot sandbox the daemon")?;
    let filter = match cli.seccomp {
        SeccompMode::Kill => "seccomp filter on",
        SeccompMode::Log => "seccomp filter logging only (--seccomp log)",
        SeccompMode::Off => "NO seccomp filter (--seccomp off)",
    };
    log::info!("sandboxed: {report}, no new privileges, {filter}");
    if cli.seccomp != SeccompMode::Kill {
        log::warn!("--seccomp {:?}: for debugging only", cli.seccomp);
    }
    if let Some(d) = dump_dir {
        log::warn!(
            "--dump-dir: the sandbox lets the daemon create files (as {}) in {}",
            report.user,
            d.path().display()
        );
    }
    let hello = device.hello();
    log::info!(
        "attached to {}: protocol v{}, messages up to {} bytes, job timeout {} ms; \
         {threads} slice threads per context",
        cli.device.display(),
        hello.version,
        hello.max_message_size,
        hello.job_timeout_ms,
    );
    let config = DaemonConfig {
        decoder,
        queue_depth: usize::from(cli.queue_depth),
        ..DaemonConfig::default()
    };
    let summary = daedalus_daemon::run(Arc::new(device), &config)
        .with_context(|| format!("{} failed", cli.device.display()))?;
    log::info!(
        "stopping: {} messages ({} malformed), {} contexts served",
        summary.messages,
        summary.malformed,
        summary.contexts
    );
    Ok(())
}

/// Writes `man/daedalusd.8` and the bash, zsh and fish completions under `out`, with the
/// generator `daedalus` uses too.
fn generate_docs(out: &std::path::Path) -> anyhow::Result<()> {
    use clap::CommandFactory;
    let program = daedalus_docgen::Program {
        name: "daedalusd",
        section: "8",
        subcommand_pages: false,
    };
    daedalus_docgen::write_docs(Cli::command(), &program, out)
}

/// Decodes the built-in warm-up frames (daedalus_daemon::warmup) and logs how it went.
fn warm_up(config: &DecoderConfig) {
    let start = std::time::Instant::now();
    let warm = DecoderConfig {
        // Never dumped: these are not a client's packets.
        dump_dir: None,
        ..*config
    };
    let mut done = Vec::new();
    for r in daedalus_daemon::warmup::warm_up(&warm) {
        match r {
            Ok(s) => done.push(format!("{} {} ms", s.name, s.took.as_millis())),
            Err((name, e)) => log::warn!("warm-up of the {name} decoder failed: {e}"),
        }
    }
    log::info!(
        "decoders ready in {} ms ({})",
        start.elapsed().as_millis(),
        done.join(", ")
    );
}

/// Every cached buffer keeps its dma-buf fd open (for `DMA_BUF_IOCTL_SYNC`): raise the soft
/// limit on open files to the hard one, as many clients with many buffers need more than the
/// usual 1024.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                log::debug!("cannot raise the open file limit: {e}");
            }
        }
        Ok(_) => {}
        Err(e) => log::debug!("cannot read the open file limit: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
        let c = Cli::parse_from(["daedalusd", "--threads", "3", "--log-level", "debug"]);
        assert_eq!(c.threads, Some(3));
        assert_eq!(c.device, PathBuf::from(DEVICE_PATH));
        assert!(Cli::try_parse_from(["daedalusd", "--threads", "0"]).is_err());
    }

    #[test]
    fn generate_docs_writes_page_and_completions() {
        let dir = std::env::temp_dir().join(format!("daedalusd-docs-{}", std::process::id()));
        generate_docs(&dir).expect("docs generated");
        let page = std::fs::read_to_string(dir.join("man/daedalusd.8")).expect("page");
        assert!(
            page.contains("queue\\-depth") || page.contains("queue-depth"),
            "{page}"
        );
        assert!(!page.contains("generate"), "hidden option in the page");
        assert!(dir.join("completions/bash/daedalusd").is_file());
        assert!(dir.join("completions/zsh/_daedalusd").is_file());
        assert!(dir.join("completions/fish/daedalusd.fish").is_file());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
