// SPDX-License-Identifier: GPL-2.0
//! An H.264 Annex B stream, as `daedalus decode`, `daedalus stress` and the VA-API driver read
//! untrusted ones with cros-codecs' parser: every NAL unit's SPS / PPS / slice header parsed
//! without a panic; and every parameter set that parses survives the round trip through the
//! V4L2 controls and the daemon's rebuilder (`daedalus_codecs::h264::roundtrip`): a parse error
//! or a refusal is fine, a mismatch is a bug.
#![no_main]

use std::io::Cursor;

use cros_codecs::codec::h264::parser::{Nalu, NaluType, Parser};
use daedalus_codecs::h264::roundtrip::{round_trip_stream, RoundTripError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parser = Parser::default();
    let mut cursor = Cursor::new(data);
    while let Ok(nalu) = Nalu::next(&mut cursor) {
        match nalu.header.type_ {
            NaluType::Sps => {
                let _ = parser.parse_sps(&nalu);
            }
            NaluType::Pps => {
                let _ = parser.parse_pps(&nalu);
            }
            NaluType::Slice | NaluType::SliceIdr => {
                let _ = parser.parse_slice_header(nalu);
            }
            _ => {}
        }
    }
    if let Err(e @ RoundTripError::Mismatch(_)) = round_trip_stream(data) {
        panic!("{e}");
    }
});
