// SPDX-License-Identifier: GPL-2.0
//! The time base and timestamps that `ffmpeg -i FILE.ivf -fps_mode passthrough -f framemd5 -`
//! (FFmpeg 5.1) prints, so `daedalus decode --framemd5` can be compared with it line by line.
//!
//! FFmpeg does not print the container's timestamps: the encoder's time base is the inverse of
//! the frame rate that `avformat_find_stream_info()` guesses (`r_frame_rate`, see
//! `ff_rfps_add_frame()` / `ff_rfps_calculate()` in libavformat/demux.c, and
//! `av_guess_frame_rate()`), and each frame's timestamp is rescaled into it the way
//! `adjust_frame_pts_to_encoder_tb()` in fftools/ffmpeg.c does. This module reproduces those
//! computations for an IVF input (time base from the file header, one packet per IVF frame,
//! no packet durations unless the time base is coarser than 1 ms).

/// A rational number (`AVRational`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rational {
    /// Numerator.
    pub num: i64,
    /// Denominator.
    pub den: i64,
}

impl Rational {
    /// `num / den`.
    pub const fn new(num: i64, den: i64) -> Self {
        Rational { num, den }
    }

    fn to_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    fn is_valid(self) -> bool {
        self.num > 0 && self.den > 0
    }
}

const fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a.abs()
}

/// `av_reduce()`: `num / den` reduced, approximated if needed so both fit in `max`.
pub fn reduce(num: i64, den: i64, max: i64) -> Rational {
    let (mut a0n, mut a0d) = (0i64, 1i64);
    let (mut a1n, mut a1d) = (1i64, 0i64);
    let negative = (num < 0) ^ (den < 0);
    let g = gcd(num.abs(), den.abs());
    let (mut num, mut den) = if g != 0 {
        (num.abs() / g, den.abs() / g)
    } else {
        (num.abs(), den.abs())
    };
    if num <= max && den <= max {
        a1n = num;
        a1d = den;
        den = 0;
    }
    while den != 0 {
        let x = num / den;
        let next_den = num - den * x;
        let a2n = x * a1n + a0n;
        let a2d = x * a1d + a0d;
        if a2n > max || a2d > max {
            let mut x = x;
            if a1n != 0 {
                x = (max - a0n) / a1n;
            }
            if a1d != 0 {
                x = x.min((max - a0d) / a1d);
            }
            if i128::from(den) * i128::from(2 * x * a1d + a0d) > i128::from(num) * i128::from(a1d) {
                a1n = x * a1n + a0n;
                a1d = x * a1d + a0d;
            }
            break;
        }
        a0n = a1n;
        a0d = a1d;
        a1n = a2n;
        a1d = a2d;
        num = den;
        den = next_den;
    }
    Rational::new(if negative { -a1n } else { a1n }, a1d)
}

/// `av_rescale_q()`: `a * bq / cq`, rounded to nearest (halves away from zero).
pub fn rescale_q(a: i64, bq: Rational, cq: Rational) -> i64 {
    let b = i128::from(bq.num) * i128::from(cq.den);
    let c = i128::from(cq.num) * i128::from(bq.den);
    if c == 0 {
        return i64::MIN;
    }
    let (a, b, c) = (i128::from(a), b, c);
    // Signs folded into the numerator; c > 0.
    let (n, c) = if c < 0 { (-(a * b), -c) } else { (a * b, c) };
    let r = if n >= 0 {
        (n + c / 2) / c
    } else {
        -((-n + c / 2) / c)
    };
    i64::try_from(r).unwrap_or(if r < 0 { i64::MIN } else { i64::MAX })
}

/// `get_std_framerate(i)`: the candidate frame rates, times 12 * 1001.
fn std_framerate(i: usize) -> i64 {
    const MAX_30: usize = 30 * 12;
    if i < MAX_30 {
        return (i as i64 + 1) * 1001;
    }
    let i = i - MAX_30;
    if i < 30 {
        return (i as i64 + 31) * 1001 * 12;
    }
    let i = i - 30;
    if i < 3 {
        return [80, 120, 240][i] * 1001 * 12;
    }
    [24, 30, 60, 12, 15, 48][i - 3] * 1000 * 12
}

/// `MAX_STD_TIMEBASES`.
const MAX_STD: usize = 30 * 12 + 30 + 3 + 6;

/// The r_frame_rate estimation state of one stream (`FFStreamInfo`).
struct RfpsState {
    last_dts: Option<i64>,
    duration_count: i64,
    rfps_duration_sum: i64,
    duration_gcd: i64,
    duration_error: Box<[[[f64; MAX_STD]; 2]; 2]>,
}

impl RfpsState {
    fn new() -> Self {
        RfpsState {
            last_dts: None,
            duration_count: 0,
            rfps_duration_sum: 0,
            duration_gcd: 0,
            duration_error: Box::new([[[0.0; MAX_STD]; 2]; 2]),
        }
    }

    /// `ff_rfps_add_frame()`.
    fn add_frame(&mut self, tb: Rational, ts: i64) {
        if let Some(last) = self.last_dts {
            if ts > last {
                let dts = ts as f64 * tb.to_f64();
                let duration = ts - last;
                for i in 0..MAX_STD {
                    if self.duration_error[0][1][i] < 1e10 {
                        let framerate = std_framerate(i) as f64;
                        let sdts = dts * framerate / (1001.0 * 12.0);
                        for j in 0..2 {
                            let ticks = (sdts + j as f64 * 0.5).round_ties_even();
                            let error = sdts - ticks + j as f64 * 0.5;
                            self.duration_error[j][0][i] += error;
                            self.duration_error[j][1][i] += error * error;
                        }
                    }
                }
                if self.rfps_duration_sum <= i64::MAX - duration {
                    self.duration_count += 1;
                    self.rfps_duration_sum += duration;
                }
                if self.duration_count % 10 == 0 {
                    let n = self.duration_count as f64;
                    for i in 0..MAX_STD {
                        if self.duration_error[0][1][i] != 0.0 {
                            let a0 = self.duration_error[0][0][i] / n;
                            let error0 = self.duration_error[0][1][i] / n - a0 * a0;
                            let a1 = self.duration_error[1][0][i] / n;
                            let error1 = self.duration_error[1][1][i] / n - a1 * a1;
                            if error0 > 0.04 && error1 > 0.04 {
                                self.duration_error[0][1][i] = 2e10;
                                self.duration_error[1][1][i] = 2e10;
                            }
                        }
                    }
                }
                // The first 4 durations may jitter.
                if self.duration_count > 3 {
                    self.duration_gcd = gcd(self.duration_gcd, duration);
                }
            }
        }
        self.last_dts = Some(ts);
    }
}

/// The frame rate FFmpeg 5.1 guesses for an IVF stream with time base `tb` whose packets have
/// the timestamps `pts` (in file order; only the first ~40 are looked at, as FFmpeg does).
pub fn guess_frame_rate(tb: Rational, pts: &[i64]) -> Rational {
    if !tb.is_valid() {
        return Rational::new(0, 1);
    }
    // The IVF demuxer gives packets no duration; compute_pkt_fields() derives one tick from the
    // time base when it is coarser than 1 ms (r_frame_rate is not known yet while probing).
    let pkt_duration = i64::from(tb.num * 1000 > tb.den);
    // tb_unreliable() (the decoder context has the stream's time base while probing): a time
    // base between 1/100 and 1/5 s is taken as the frame duration.
    if tb.den < 101 * tb.num && tb.den >= 5 * tb.num {
        return reduce(tb.den, tb.num, i64::from(i32::MAX));
    }
    let mut fps_analyze_framecount = 20;
    if tb.to_f64() > 0.0005 {
        fps_analyze_framecount *= 2;
    }

    let mut st = RfpsState::new();
    let mut codec_info_duration = 0i64;
    let mut codec_info_duration_fields = 0i64;
    let mut fps_first: Option<(i64, i64)> = None;
    let mut fps_last: Option<(i64, i64)> = None;
    let limit_us = 5_000_000i64;
    for (codec_info_nb_frames, &dts) in (0i64..).zip(pts) {
        // The stream still needs frames while it has fewer durations than the count.
        if codec_info_nb_frames > 0 && st.duration_count >= fps_analyze_framecount {
            break;
        }
        if codec_info_nb_frames > 1 {
            // Non-increasing timestamps and discontinuities (a step 1000 times the average)
            // restart the measured span.
            let mut restart = matches!(fps_last, Some((last, _)) if last >= dts);
            if let (Some((first, first_idx)), Some((last, last_idx))) = (fps_first, fps_last) {
                if last_idx > first_idx
                    && (dts.wrapping_sub(last) as u64) / 1000
                        > (last.wrapping_sub(first) as u64) / ((last_idx - first_idx) as u64)
                {
                    restart = true;
                }
            }
            if restart || fps_first.is_none() {
                fps_first = Some((dts, codec_info_nb_frames));
            }
            fps_last = Some((dts, codec_info_nb_frames));

            let us = Rational::new(1, 1_000_000);
            let mut t = rescale_q(codec_info_duration, tb, us);
            if t == 0 && codec_info_nb_frames > 30 {
                if let (Some((first, _)), Some((last, _))) = (fps_first, fps_last) {
                    t = t.max(rescale_q(last.saturating_sub(first), tb, us));
                }
            }
            if t >= limit_us {
                break;
            }
            if pkt_duration > 0 {
                codec_info_duration += pkt_duration;
                codec_info_duration_fields += 2;
            }
        }
        st.add_frame(tb, dts);
    }

    // ff_rfps_calculate()
    let mut r = Rational::new(0, 1);
    if st.duration_count > 15
        && st.duration_gcd > (tb.den / (500 * tb.num)).max(1)
        && st.duration_gcd < i64::MAX / tb.num
    {
        r = reduce(tb.den, tb.num * st.duration_gcd, i64::from(i32::MAX));
    }
    if st.duration_count > 1 && r.num == 0 {
        let mut num = 0i64;
        let mut best_error = 0.01;
        let ref_rate = Rational::new(tb.den, tb.num);
        let n = st.duration_count as f64;
        for j in 0..MAX_STD {
            let std = std_framerate(j) as f64;
            if codec_info_duration != 0
                && (codec_info_duration as f64) * tb.to_f64() < (1001.0 * 12.0 - 1.0) / std
            {
                continue;
            }
            if codec_info_duration == 0 && std < 1001.0 * 12.0 {
                continue;
            }
            if tb.to_f64() * st.rfps_duration_sum as f64 / n < (1001.0 * 12.0 * 0.8) / std {
                continue;
            }
            for k in 0..2 {
                let a = st.duration_error[k][0][j] / n;
                let error = st.duration_error[k][1][j] / n - a * a;
                if error < best_error && best_error > 0.000_000_001 {
                    best_error = error;
                    num = std_framerate(j);
                }
            }
        }
        if num != 0 && (num as f64) / (12.0 * 1001.0) < 1.01 * ref_rate.to_f64() {
            r = reduce(num, 12 * 1001, i64::from(i32::MAX));
        }
    }
    let mut avg = Rational::new(0, 1);
    if r.num != 0
        && st.rfps_duration_sum != 0
        && codec_info_duration <= 0
        && st.duration_count > 2
        && (1.0 / (r.to_f64() * tb.to_f64())
            - st.rfps_duration_sum as f64 / st.duration_count as f64)
            .abs()
            <= 1.0
    {
        avg = r;
    }

    // The average frame rate from the packet durations, rounded to a standard rate.
    if codec_info_duration_fields != 0 && avg.num == 0 && codec_info_duration != 0 {
        avg = reduce(
            codec_info_duration_fields * tb.den,
            codec_info_duration * 2 * tb.num,
            60000,
        );
        let mut best_fps = 0;
        let mut best_error = 0.01;
        for j in 0..MAX_STD {
            let error = (avg.to_f64() / (std_framerate(j) as f64 / (12.0 * 1001.0)) - 1.0).abs();
            if error < best_error {
                best_error = error;
                best_fps = std_framerate(j);
            }
        }
        if best_fps != 0 {
            avg = reduce(best_fps, 12 * 1001, i64::from(i32::MAX));
        }
    }
    if r.num == 0 {
        r = Rational::new(tb.den, tb.num);
    }

    // av_guess_frame_rate()
    if avg.is_valid() && r.is_valid() && avg.to_f64() < 70.0 && r.to_f64() > 210.0 {
        avg
    } else {
        r
    }
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
    /// For an IVF stream of time base `tb` (`num`/`den` of the file header) and packet
    /// timestamps `pts` (at least the first 41, in file order).
    pub fn new(tb: Rational, pts: &[i64]) -> Self {
        let fr = guess_frame_rate(tb, pts);
        let out_tb = if fr.is_valid() {
            Rational::new(fr.den, fr.num)
        } else {
            tb
        };
        // ffmpeg subtracts the file's start time (in microseconds) from every timestamp.
        let us = Rational::new(1, 1_000_000);
        let start_offset = pts
            .first()
            .map_or(0, |&p| rescale_q(rescale_q(p, tb, us), us, tb));
        FrameMd5Timing {
            in_tb: tb,
            out_tb,
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
        let extra_bits = (29 - log2(self.out_tb.den)).clamp(0, 16);
        let fine = Rational::new(self.out_tb.num, self.out_tb.den << extra_bits);
        let mut f = rescale_q(pts, self.in_tb, fine) as f64 / (1u64 << extra_bits) as f64;
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

    #[test]
    fn reduce_and_rescale() {
        assert_eq!(reduce(1000, 40, i64::from(i32::MAX)), Rational::new(25, 1));
        assert_eq!(reduce(30000, 1001, 60000), Rational::new(30000, 1001));
        assert_eq!(reduce(-6, 4, 100), Rational::new(-3, 2));
        // Approximated when the terms do not fit.
        assert_eq!(reduce(314_159, 100_000, 1000), Rational::new(355, 113));
        let ms = Rational::new(1, 1000);
        let fps30 = Rational::new(1, 30);
        assert_eq!(rescale_q(133, ms, fps30), 4);
        assert_eq!(rescale_q(50, ms, Rational::new(1, 10)), 1);
        assert_eq!(rescale_q(-50, ms, Rational::new(1, 10)), -1);
    }

    #[test]
    fn std_framerates() {
        assert_eq!(std_framerate(0), 1001);
        assert_eq!(std_framerate(359), 360 * 1001);
        assert_eq!(std_framerate(360), 31 * 1001 * 12);
        assert_eq!(std_framerate(MAX_STD - 1), 48 * 1000 * 12);
    }

    /// What `ffmpeg -f framemd5` printed (FFmpeg 5.1) for the shared test vectors.
    #[test]
    fn matches_ffmpeg_on_known_streams() {
        let ms = Rational::new(1, 1000);
        // vp90-2-10-show-existing-frame.vp9.ivf: 13 packets, ms timestamps, #tb 1/30.
        let pts = [
            0, 100, 133, 200, 233, 266, 300, 366, 400, 433, 466, 500, 533,
        ];
        let mut t = FrameMd5Timing::new(ms, &pts);
        assert_eq!(t.time_base(), Rational::new(1, 30));
        let out: Vec<i64> = pts.iter().map(|&p| t.next(p)).collect();
        assert_eq!(out, [0, 3, 4, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16]);

        // test-25fps.vp9: 250 packets 40 ms apart, #tb 1/25.
        let pts: Vec<i64> = (0..250).map(|i| i * 40).collect();
        let mut t = FrameMd5Timing::new(ms, &pts);
        assert_eq!(t.time_base(), Rational::new(1, 25));
        assert_eq!(t.next(80), 2);

        // resolution_change_500frames-vp9.ivf: every timestamp 0, #tb 1/1000.
        let t = FrameMd5Timing::new(ms, &[0; 500]);
        assert_eq!(t.time_base(), ms);

        // libvpx output: time base 1/30, one tick per frame.
        let pts: Vec<i64> = (0..20).collect();
        let t = FrameMd5Timing::new(Rational::new(1, 30), &pts);
        assert_eq!(t.time_base(), Rational::new(1, 30));
    }

    #[test]
    fn timestamps_never_go_back() {
        let ms = Rational::new(1, 1000);
        let mut t = FrameMd5Timing::new(ms, &[0, 0, 0]);
        assert_eq!(t.next(5), 5);
        assert_eq!(t.next(3), 5);
    }
}
