// SPDX-License-Identifier: GPL-2.0
//! Readying the decoders before the daemon attaches, so that the first job of a boot is about
//! as fast as the ones after it.
//!
//! Why: the first job of a fresh boot pays for reading FFmpeg's and libdav1d's code from disk,
//! their one-time table set-up and the first touch of every code page it runs. Measured in the
//! test VM (TCG, a 1000x562 AV1 key frame): 994 ms for the first job of the boot, 219 ms for the
//! same job in the next pipeline; with the libraries' pages already cached, 366 ms. GStreamer's
//! v4l2codecs waits only one second for a request before it gives up on its bitstream buffer,
//! then fails with "Not enough memory to decode AV1 stream" (issue 15). So before attaching,
//! the daemon decodes a few small frames of every codec and bit depth it serves (key and inter
//! frames, `warmup/*`, made by `warmup/generate.sh`) with decoders opened as the contexts open
//! theirs (same libraries, same threading), and throws the pictures away.
//!
//! The streams are decoded with plain FFmpeg packets, not through [`crate::Context`]: a context
//! needs the clients' controls (H.264's parameter sets are rebuilt from them), and what is slow
//! the first time is FFmpeg's and libdav1d's code, which is the same either way.

use std::time::{Duration, Instant};

use cros_codecs::bitstream_utils::IvfIterator;
use cros_codecs::codec::h264::parser::{Nalu, NaluType};
use ffmpeg_next::{codec, frame};

use crate::codec::DecoderConfig;
use crate::error::JobError;

/// One stream decoded at start: its name, codec and bytes (IVF for VP9 and AV1, Annex B for
/// H.264).
struct Sample(&'static str, codec::Id, &'static [u8]);

#[rustfmt::skip]
const SAMPLES: &[Sample] = &[
    Sample("AV1 8-bit", codec::Id::AV1, include_bytes!("../warmup/av1-8bit.ivf")),
    Sample("AV1 10-bit", codec::Id::AV1, include_bytes!("../warmup/av1-10bit.ivf")),
    Sample("VP9 8-bit", codec::Id::VP9, include_bytes!("../warmup/vp9-8bit.ivf")),
    Sample("VP9 10-bit", codec::Id::VP9, include_bytes!("../warmup/vp9-10bit.ivf")),
    Sample("H.264 8-bit", codec::Id::H264, include_bytes!("../warmup/h264-8bit.264")),
    Sample("H.264 10-bit", codec::Id::H264, include_bytes!("../warmup/h264-10bit.264")),
];

/// What one sample's decode did.
#[derive(Clone, Debug)]
pub struct SampleResult {
    /// Which sample ("AV1 10-bit"...).
    pub name: &'static str,
    /// Pictures that came out.
    pub pictures: usize,
    /// How long it took.
    pub took: Duration,
}

/// Decodes every sample once with decoders configured as `config` says; returns what each
/// did. A sample that fails does not stop the others (the daemon serves anyway, only the
/// first job of that codec is slower).
pub fn warm_up(config: &DecoderConfig) -> Vec<Result<SampleResult, (&'static str, JobError)>> {
    SAMPLES
        .iter()
        .map(|s| {
            let start = Instant::now();
            decode_sample(s, config)
                .map(|pictures| SampleResult {
                    name: s.0,
                    pictures,
                    took: start.elapsed(),
                })
                .map_err(|e| (s.0, e))
        })
        .collect()
}

/// Decodes one sample; returns the number of pictures.
fn decode_sample(sample: &Sample, config: &DecoderConfig) -> Result<usize, JobError> {
    let Sample(_, id, data) = *sample;
    let mut dec = match id {
        codec::Id::AV1 => crate::codec::av1::open_libdav1d(config.threads)?,
        codec::Id::H264 => crate::codec::h264::open_context(config)?
            .decoder()
            .video()
            .map_err(JobError::Ffmpeg)?,
        id => crate::codec::slice_threaded_context(id, config.threads)?
            .decoder()
            .video()
            .map_err(JobError::Ffmpeg)?,
    };
    let packets: Vec<Vec<u8>> = match id {
        codec::Id::H264 => access_units(data),
        _ => IvfIterator::new(data).map(<[u8]>::to_vec).collect(),
    };
    let mut picture = frame::Video::empty();
    let mut pictures = 0;
    for data in packets {
        dec.send_packet(&ffmpeg_next::Packet::copy(&data))
            .map_err(JobError::Ffmpeg)?;
        while dec.receive_frame(&mut picture).is_ok() {
            pictures += 1;
        }
    }
    dec.send_eof().map_err(JobError::Ffmpeg)?;
    while dec.receive_frame(&mut picture).is_ok() {
        pictures += 1;
    }
    if pictures == 0 {
        return Err(JobError::Internal("the warm-up stream gave no picture"));
    }
    Ok(pictures)
}

/// The access units of an Annex B stream with one slice per picture: every NAL unit up to and
/// including each slice, start codes kept.
fn access_units(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut cursor = std::io::Cursor::new(stream);
    let mut units = Vec::new();
    let mut unit = Vec::new();
    while let Ok(nalu) = Nalu::next(&mut cursor) {
        unit.extend_from_slice(&nalu.data);
        if matches!(nalu.header.type_, NaluType::Slice | NaluType::SliceIdr) {
            units.push(std::mem::take(&mut unit));
        }
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_decodes() {
        crate::init_ffmpeg(log::LevelFilter::Error);
        let config = DecoderConfig {
            threads: 2,
            ..Default::default()
        };
        let results = warm_up(&config);
        assert_eq!(results.len(), SAMPLES.len());
        for r in results {
            let r = r.unwrap_or_else(|(name, e)| panic!("{name}: {e}"));
            // Three frames each (warmup/generate.sh).
            assert_eq!(r.pictures, 3, "{}", r.name);
        }
    }

    #[test]
    fn h264_samples_split_into_their_pictures() {
        for Sample(name, _, data) in SAMPLES.iter().filter(|s| s.1 == codec::Id::H264) {
            let units = access_units(data);
            assert_eq!(units.len(), 3, "{name}");
            assert!(units
                .iter()
                .all(|u| u.starts_with(&[0, 0, 1]) || u.starts_with(&[0, 0, 0, 1])));
            assert!(units.iter().map(Vec::len).sum::<usize>() <= data.len());
        }
    }
}
