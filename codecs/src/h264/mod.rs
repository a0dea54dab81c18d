// SPDX-License-Identifier: GPL-2.0
//! H.264 parameter sets ↔ V4L2 stateless controls.
//!
//! * [`controls`]: parsed SPS / PPS (cros-codecs parser) → `v4l2_ctrl_h264_sps`,
//!   `v4l2_ctrl_h264_pps`, `v4l2_ctrl_h264_scaling_matrix` — what a stateless client fills.
//! * [`rebuild`]: those three controls → SPS and PPS NAL units (Annex-B) — what the daemon feeds
//!   its software decoder in front of the slices, which carry no parameter sets of their own.
//! * [`roundtrip`]: the property tying both directions together (parse → controls → rebuild →
//!   parse gives the same controls), for the vector test and the fuzzer.
//!
//! The scan tables shared by both directions live here.

pub mod controls;
pub mod rebuild;
pub mod roundtrip;

/// Zig-zag scan of a 4x4 block (H.264 Table 8-13, frame scan): `ZIGZAG_4X4[k]` is the raster
/// index of the k-th coefficient / scaling list entry.
pub const ZIGZAG_4X4: [usize; 16] = [0, 1, 4, 8, 5, 2, 3, 6, 9, 12, 13, 10, 7, 11, 14, 15];

/// Zig-zag scan of an 8x8 block (H.264 Table 8-14, frame scan): `ZIGZAG_8X8[k]` is the raster
/// index of the k-th entry.
pub const ZIGZAG_8X8: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// profile_idc values whose SPS carries chroma_format_idc, bit depths and scaling lists
/// (H.264 7.3.2.1.1; `V4L2_H264_SPS_HAS_CHROMA_FORMAT` in the uAPI).
pub fn profile_has_chroma_format(profile_idc: u8) -> bool {
    matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_are_permutations() {
        let mut seen4 = [false; 16];
        for &i in &ZIGZAG_4X4 {
            seen4[i] = true;
        }
        assert!(seen4.iter().all(|&s| s));
        let mut seen8 = [false; 64];
        for &i in &ZIGZAG_8X8 {
            seen8[i] = true;
        }
        assert!(seen8.iter().all(|&s| s));
        // Consecutive zig-zag positions are neighbours (one step right/down/diagonal).
        for w in ZIGZAG_8X8.windows(2) {
            let (a, b) = (w[0] as i32, w[1] as i32);
            let (dx, dy) = ((a % 8 - b % 8).abs(), (a / 8 - b / 8).abs());
            assert!(dx <= 1 && dy <= 1, "{a} -> {b}");
        }
    }
}
