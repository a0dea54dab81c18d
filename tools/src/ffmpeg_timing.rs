// SPDX-License-Identifier: GPL-2.0
//! The time base and timestamps that `ffmpeg -i FILE -f framemd5 -` prints, so
//! `daedalus decode --framemd5` can be compared with it line by line.
//!
//! FFmpeg does not print the container's timestamps: the encoder's time base is the inverse of
//! the frame rate libavformat guesses for the stream (`av_guess_frame_rate()` after
//! `avformat_find_stream_info()`; 25 fps when it has none), every timestamp is first moved by the
//! file's start time, then rescaled into that time base the way `adjust_frame_pts_to_encoder_tb()`
//! in fftools/ffmpeg.c does. The frame rate and start time come from libavformat itself
//! ([`crate::demux`]); what is left here is fftools' arithmetic, which no library exports.

use ffmpeg_next::{Rational, Rescale};

/// What FFmpeg's framemd5 output of a stream depends on besides the pictures: the stream's time
/// base, the frame rate libavformat guesses for it, the file's start time, and the sample aspect
/// ratio the container declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameMd5Params {
    /// Time base of the packets' timestamps.
    pub time_base: Rational,
    /// Frame rate (0/1 when libavformat has no guess).
    pub frame_rate: Rational,
    /// Start time of the file in microseconds (`AVFormatContext.start_time`), if known.
    pub start_time_us: Option<i64>,
    /// The container's sample aspect ratio (0/1 when it declares none). ffmpeg gives it to every
    /// frame; without it a frame keeps the decoder's, which is 0/1 for VP9 (H.264 VUI and
    /// libdav1d's render-size ratio are not reproduced: their tests compare MD5s only).
    pub sample_aspect_ratio: Rational,
}

impl FrameMd5Params {
    /// A stream of time base `time_base` at `frame_rate`, starting at `start_time_us`.
    pub fn new(time_base: Rational, frame_rate: Rational, start_time_us: Option<i64>) -> Self {
        FrameMd5Params {
            time_base,
            frame_rate,
            start_time_us,
            sample_aspect_ratio: Rational::new(0, 1),
        }
    }

    /// Pictures numbered 0, 1, 2... at `fps` (what FFmpeg's raw demuxers give a bare H.264 or
    /// AV1 OBU stream: no timestamps, a default frame rate).
    pub fn numbered(fps: i32) -> Self {
        FrameMd5Params::new(Rational::new(1, fps), Rational::new(fps, 1), Some(0))
    }
}

/// Whether a rational number is positive and finite.
fn is_valid(r: Rational) -> bool {
    r.numerator() > 0 && r.denominator() > 0
}

/// `av_log2()` of a positive value.
fn log2(v: i64) -> i64 {
    if v <= 1 {
        0
    } else {
        63 - i64::from(v.leading_zeros())
    }
}

/// Maps the timestamps of displayed frames to what the framemd5 muxer prints.
#[derive(Clone, Debug)]
pub struct FrameMd5Timing {
    in_tb: Rational,
    out_tb: Rational,
    start_offset: i64,
    last: Option<i64>,
}

impl FrameMd5Timing {
    /// For a stream of `params`.
    pub fn new(params: FrameMd5Params) -> Self {
        let fr = if is_valid(params.frame_rate) {
            params.frame_rate
        } else {
            Rational::new(25, 1)
        };
        // ffmpeg subtracts the file's start time (in microseconds) from every timestamp.
        let start_offset = params.start_time_us.map_or(0, |us| {
            us.rescale(Rational::new(1, 1_000_000), params.time_base)
        });
        FrameMd5Timing {
            in_tb: params.time_base,
            out_tb: fr.invert(),
            start_offset,
            last: None,
        }
    }

    /// The time base the muxer prints (`#tb 0: num/den`).
    pub fn time_base(&self) -> Rational {
        self.out_tb
    }

    /// The `dts`/`pts` printed for the next displayed frame, whose packet had timestamp `pts`.
    pub fn next(&mut self, pts: i64) -> i64 {
        let pts = pts.saturating_sub(self.start_offset);
        // adjust_frame_pts_to_encoder_tb(): a finer grid first, then llrint with a nudge away
        // from exact halves.
        let den = i64::from(self.out_tb.denominator());
        let extra_bits = (29 - log2(den)).clamp(0, 16);
        let fine = Rational::new(
            self.out_tb.numerator(),
            i32::try_from(den << extra_bits).unwrap_or(i32::MAX),
        );
        let mut f = pts.rescale(self.in_tb, fine) as f64 / (1u64 << extra_bits) as f64;
        f += if f > 0.0 { 1.0 } else { -1.0 } / f64::from(1 << 17);
        let mut out = f.round_ties_even() as i64;
        // The muxer makes dts non-decreasing (framemd5 is AVFMT_TS_NONSTRICT).
        if let Some(last) = self.last {
            out = out.max(last);
        }
        self.last = Some(out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `ffmpeg -f framemd5` printed (FFmpeg 5.1) for vp90-2-10-show-existing-frame.vp9.ivf:
    /// 13 packets, ms timestamps, frame rate 30.
    #[test]
    fn rescales_like_ffmpeg() {
        let ms = Rational::new(1, 1000);
        let mut t = FrameMd5Timing::new(FrameMd5Params::new(ms, Rational::new(30, 1), Some(0)));
        assert_eq!(t.time_base(), Rational::new(1, 30));
        let pts = [
            0, 100, 133, 200, 233, 266, 300, 366, 400, 433, 466, 500, 533,
        ];
        let out: Vec<i64> = pts.iter().map(|&p| t.next(p)).collect();
        assert_eq!(out, [0, 3, 4, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16]);
    }

    #[test]
    fn no_frame_rate_means_25_fps() {
        let t = FrameMd5Timing::new(FrameMd5Params::new(
            Rational::new(1, 90000),
            Rational::new(0, 1),
            None,
        ));
        assert_eq!(t.time_base(), Rational::new(1, 25));
    }

    #[test]
    fn start_time_and_monotonic() {
        let ms = Rational::new(1, 1000);
        let mut t = FrameMd5Timing::new(FrameMd5Params::new(
            ms,
            Rational::new(1000, 1),
            Some(2_000_000),
        ));
        assert_eq!(t.next(2005), 5);
        assert_eq!(t.next(2003), 5);
    }
}
