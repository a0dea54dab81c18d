// SPDX-License-Identifier: GPL-2.0
//! `daedalus`: command-line tools for the daedalus V4L2 stateless decoder.
//!
//! * `daedalus info` describes the device nodes (capabilities, media device, formats, frame
//!   sizes, controls, daemon node);
//! * `daedalus check-requests` checks the device's Request API behaviour and exits with 0 only
//!   if every check passes.

mod info;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{ArgAction, Args, Parser, Subcommand};
use daedalus_tools::codec::Codec;
use daedalus_tools::conformance::{self, Options};
use daedalus_tools::discover::{self, FoundVideo, DRIVER_NAME};
use daedalus_tools::v4l2::VideoDevice;

#[derive(Debug, Parser)]
#[command(
    name = "daedalus",
    version,
    about = "Tools for the daedalus V4L2 stateless decoder"
)]
struct Cli {
    /// More log output on stderr (-v: info, -vv: debug); RUST_LOG overrides it.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Describe the daedalus device nodes: capabilities, media device, OUTPUT and CAPTURE
    /// formats with frame sizes, every control (with menu entries), and the daemon node.
    Info(DeviceArgs),
    /// Check the Request API behaviour of the device for every codec it lists (one line per
    /// check); exits with 0 only if every check passes.
    CheckRequests(CheckArgs),
}

#[derive(Debug, Args)]
struct DeviceArgs {
    /// Video device node (default: every /dev/video* whose driver is "daedalus"; the first one
    /// for check-requests).
    #[arg(short, long, value_name = "PATH")]
    device: Option<PathBuf>,

    /// Accept video devices of any driver, e.g. visl (the upstream virtual stateless decoder).
    #[arg(long)]
    any_driver: bool,
}

#[derive(Debug, Args)]
struct CheckArgs {
    #[command(flatten)]
    device: DeviceArgs,

    /// Media device node (default: the /dev/media* whose bus_info is the video device's).
    #[arg(short, long, value_name = "PATH")]
    media: Option<PathBuf>,

    /// Codecs to check, comma-separated (vp9, h264, av1; default: all the device lists).
    #[arg(long = "codec", value_name = "CODEC", value_delimiter = ',')]
    codecs: Vec<Codec>,

    /// Width of the OUTPUT format.
    #[arg(long, default_value_t = 320)]
    width: u32,

    /// Height of the OUTPUT format.
    #[arg(long, default_value_t = 240)]
    height: u32,

    /// How long a request may take to complete, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    timeout_ms: u64,
}

impl DeviceArgs {
    /// The driver name to filter on.
    fn driver(&self) -> Option<&'static str> {
        (!self.any_driver).then_some(DRIVER_NAME)
    }

    /// The video devices selected by the arguments; an error if there is none.
    fn select(&self) -> Result<Vec<FoundVideo>> {
        if let Some(path) = &self.device {
            let cap = VideoDevice::open(path)?.query_capability()?;
            if let Some(driver) = self.driver() {
                if cap.driver != driver {
                    bail!(
                        "{} is driven by {:?}, not {driver:?} (pass --any-driver to use it anyway)",
                        path.display(),
                        cap.driver
                    );
                }
            }
            return Ok(vec![FoundVideo {
                path: path.clone(),
                cap,
            }]);
        }
        let found = discover::find_video_devices(self.driver()).context("cannot list /dev")?;
        if found.is_empty() {
            match self.driver() {
                Some(driver) => bail!(
                    "no video device with driver {driver:?} found in /dev (is daedalus.ko loaded? \
                     use --device and --any-driver for another driver)"
                ),
                None => bail!("no video device found in /dev"),
            }
        }
        Ok(found)
    }
}

fn check_requests(args: &CheckArgs) -> Result<ExitCode> {
    let video = args.device.select()?.remove(0);
    let media = match &args.media {
        Some(path) => path.clone(),
        None => {
            discover::find_media_device(&video.cap.bus_info)
                .context("cannot list /dev")?
                .with_context(|| {
                    format!(
                        "no /dev/media* with bus_info {:?} (use --media)",
                        video.cap.bus_info
                    )
                })?
                .0
        }
    };
    let opts = Options {
        width: args.width,
        height: args.height,
        timeout: Duration::from_millis(args.timeout_ms),
        codecs: if args.codecs.is_empty() {
            Codec::ALL.to_vec()
        } else {
            args.codecs.clone()
        },
    };
    println!(
        "Request API check: {} (driver {}, {}) with {}, OUTPUT {}x{}",
        video.path.display(),
        video.cap.driver,
        video.cap.bus_info,
        media.display(),
        opts.width,
        opts.height
    );
    let report = conformance::run(&video.path, &media, &opts, &mut |result| {
        println!("{result}")
    })
    .with_context(|| format!("cannot check {}", video.path.display()))?;
    for (codec, why) in &report.skipped {
        println!("SKIP  [{codec}] {why}");
    }
    if report.results.is_empty() {
        println!("no codec checked");
        return Ok(ExitCode::FAILURE);
    }
    println!();
    println!("{} passed, {} failed", report.passed(), report.failed());
    Ok(if report.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp(None)
        .init();

    let result = match &cli.command {
        Command::Info(args) => args
            .select()
            .and_then(|found| info::run(&found))
            .map(|()| ExitCode::SUCCESS),
        Command::CheckRequests(args) => check_requests(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("daedalus: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parse_check_requests() {
        let cli = Cli::try_parse_from([
            "daedalus",
            "check-requests",
            "--device",
            "/dev/video3",
            "--any-driver",
            "--codec",
            "vp9,av1",
            "-vv",
        ])
        .expect("valid command line");
        assert_eq!(cli.verbose, 2);
        let Command::CheckRequests(args) = cli.command else {
            panic!("wrong subcommand")
        };
        assert_eq!(args.device.device, Some(PathBuf::from("/dev/video3")));
        assert!(args.device.any_driver);
        assert_eq!(args.device.driver(), None);
        assert_eq!(args.codecs, [Codec::Vp9, Codec::Av1]);
        assert_eq!((args.width, args.height, args.timeout_ms), (320, 240, 2000));
    }

    #[test]
    fn parse_errors() {
        assert!(Cli::try_parse_from(["daedalus", "check-requests", "--codec", "hevc"]).is_err());
        assert!(Cli::try_parse_from(["daedalus"]).is_err());
        let cli = Cli::try_parse_from(["daedalus", "info"]).expect("valid");
        let Command::Info(args) = cli.command else {
            panic!("wrong subcommand")
        };
        assert_eq!(args.driver(), Some(DRIVER_NAME));
    }
}
