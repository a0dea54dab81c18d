// SPDX-License-Identifier: GPL-2.0
//! VP9 for the `daedalus decode` client: the stream out of a container ([`stream`]) and the
//! client on the engine; the frame header parsing and the controls built from it are
//! `daedalus-client`'s (re-exported here), which the VA-API driver shares.

pub(crate) mod client;
pub mod stream;

pub use daedalus_client::vp9::*;
