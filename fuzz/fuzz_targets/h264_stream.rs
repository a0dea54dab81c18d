// SPDX-License-Identifier: GPL-2.0
//! An H.264 Annex B stream, as `daedalus decode`, `daedalus stress` and the VA-API driver read
//! untrusted ones with cros-codecs' parser: every NAL unit's SPS / PPS / slice header parsed
//! without a panic; and every parameter set that parses survives the round trip through the
//! V4L2 controls and the daemon's rebuilder (`daedalus_codecs::h264::roundtrip`): a parse error
//! or a refusal is fine, a mismatch is a bug.
#![no_main]

use daedalus_codecs::h264::roundtrip::{parse_every_unit, round_trip_stream, RoundTripError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    parse_every_unit(data);
    if let Err(e @ RoundTripError::Mismatch(_)) = round_trip_stream(data) {
        panic!("{e}");
    }
});
