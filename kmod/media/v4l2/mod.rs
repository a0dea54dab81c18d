// SPDX-License-Identifier: GPL-2.0
//! V4L2: the mem2mem device and its registrations ([`device`]).

pub(crate) mod device;
