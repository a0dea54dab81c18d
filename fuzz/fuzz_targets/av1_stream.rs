// SPDX-License-Identifier: GPL-2.0
//! An AV1 stream (IVF, or bare OBUs), as `daedalus decode` reads untrusted ones with
//! cros-codecs' parser: parsed, mapped to the V4L2 controls, rebuilt into OBUs the way the
//! daemon does, and parsed back (`daedalus_codecs::av1::roundtrip`), without a panic; a parse
//! error or a refusal is fine, a mismatch is a bug. Also the OBU framing helpers the clients
//! use to find temporal units.
#![no_main]

use daedalus_codecs::av1::obu;
use daedalus_codecs::av1::roundtrip::{round_trip_chunks, RoundTripError};
use daedalus_codecs::ivf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = obu::detect(data);
    let _ = obu::split_section5(data);
    let _ = obu::temporal_units_section5(data);
    let _ = obu::temporal_units_annexb(data);
    let chunks: Vec<&[u8]> = match ivf::frames(data) {
        Ok((_, frames)) => frames.into_iter().map(|(_, f)| f).collect(),
        Err(_) => vec![data],
    };
    if let Err(e @ RoundTripError::Mismatch { .. }) = round_trip_chunks(chunks) {
        panic!("{e}");
    }
});
