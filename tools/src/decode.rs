// SPDX-License-Identifier: GPL-2.0
//! `daedalus decode`: what the input is ([`identify`]: a container libavformat reads, or a bare
//! H.264 / AV1 stream) and the run that hands it to its codec's client — VP9
//! (`vp9::client`), H.264 ([`crate::h264::client`]) or AV1 ([`crate::av1`]) — all of
//! them built on the client engine ([`crate::engine`]), which [`run_observed`] lets callers
//! watch (`daedalus bench` times the device with it).

use std::fs::File;
use std::io::{BufReader, Cursor, Read};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use crate::codec::Codec;
use crate::demux::{DemuxError, Demuxer, Probe, Track};
use crate::engine::{Observer, Options, Outputs, ProgressFn, Run, Summary};

/// Where the input comes from.
#[derive(Debug)]
pub enum Input {
    /// A file, read twice.
    File(PathBuf),
    /// Data already in memory (standard input), shared with libavformat's reader.
    Memory(Arc<[u8]>),
}

impl Input {
    pub(crate) fn open(&self) -> Result<Box<dyn Read + '_>> {
        Ok(match self {
            Input::File(path) => Box::new(BufReader::new(
                File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
            )),
            Input::Memory(data) => Box::new(Cursor::new(&data[..])),
        })
    }
}

/// The inputs `daedalus decode` reads, for the message about one it does not recognise.
pub const RECOGNISED_INPUTS: &str = "VP9, AV1 or H.264 in any container FFmpeg's \
     libavformat reads (IVF, WebM / Matroska, MP4, MPEG-TS...); AV1 as a low-overhead \
     (Section 5, .obu) or Annex B OBU stream; H.264 as an Annex B byte stream (.264, .h264, .jsv)";

/// An input that is none of the streams `daedalus decode` reads.
#[derive(Debug, thiserror::Error)]
#[error("not a recognised stream (daedalus decode reads {RECOGNISED_INPUTS})")]
pub struct Unrecognised;

/// The codec of `input`, from its container or, for bare streams, its bitstream: H.264 (Annex B,
/// or any container libavformat reads: MP4, Matroska, MPEG-TS...), VP9 or AV1 (IVF, WebM /
/// Matroska, MP4...) or AV1 OBUs. An input that is none of these is an [`Unrecognised`] error;
/// a container holding another codec says which one it holds.
pub fn identify(input: &Input) -> Result<Codec> {
    identify_track(input).map(|(codec, _)| codec)
}

/// [`identify`], with the container's track when `input` is in a container (`None` for a bare
/// stream).
pub fn identify_track(input: &Input) -> Result<(Codec, Option<Track>)> {
    let mut head = Vec::new();
    input
        .open()?
        .take(64 * 1024)
        .read_to_end(&mut head)
        .context("cannot read the input")?;
    if head.is_empty() {
        bail!("the input is empty");
    }
    if crate::h264::nal::looks_like_annex_b(&head) {
        return Ok((Codec::H264, None));
    }
    match Demuxer::open(input, Probe::Headers) {
        Ok(Some(demuxer)) => {
            let track = demuxer.track().clone();
            return Ok((track.codec, Some(track)));
        }
        Ok(None) => {}
        Err(DemuxError::NoVideo { .. }) => return Err(Unrecognised.into()),
        Err(e) => return Err(e.into()),
    }
    let mut data = Vec::new();
    input
        .open()?
        .read_to_end(&mut data)
        .context("cannot read the input")?;
    match daedalus_codecs::av1::obu::detect(&data) {
        Ok(_) => Ok((Codec::Av1, None)),
        Err(_) => Err(Unrecognised.into()),
    }
}

/// The container of `input` opened for decoding `codec`, or `None` for a bare stream.
pub(crate) fn open_container(input: &Input, codec: Codec, probe: Probe) -> Result<Option<Demuxer>> {
    let Some(demuxer) = Demuxer::open(input, probe)? else {
        return Ok(None);
    };
    let track = demuxer.track();
    if track.codec != codec {
        bail!(
            "the {} file holds {}, not {}",
            track.container,
            track.codec.name(),
            codec.name()
        );
    }
    Ok(Some(demuxer))
}

/// Decodes `input` (whose codec [`identify`] found) through the device of `opts`, writing the
/// pictures to `outputs` and calling `progress` now and then.
pub fn run(
    input: &Input,
    codec: Codec,
    opts: &Options,
    outputs: Outputs,
    progress: &mut dyn FnMut(&Summary),
) -> Result<Summary> {
    run_observed(input, codec, opts, outputs, &mut ProgressFn(progress))
}

/// [`run`], telling `observer` about progress and about every picture queued and completed.
pub fn run_observed(
    input: &Input,
    codec: Codec,
    opts: &Options,
    outputs: Outputs,
    observer: &mut dyn Observer,
) -> Result<Summary> {
    let run = Run {
        opts,
        outputs,
        observer,
    };
    match codec {
        Codec::Vp9 => crate::vp9::client::run(input, run),
        Codec::H264 => crate::h264::client::run(input, run),
        Codec::Av1 => crate::av1::run(input, run),
    }
}
