// SPDX-License-Identifier: GPL-2.0
//! V4L2: the mem2mem device and its registrations ([`device`]), its open files ([`file`]), their
//! ioctls ([`ioctl`]) and formats ([`format`]).

pub(crate) mod device;
pub(crate) mod file;
pub(crate) mod format;
pub(crate) mod ioctl;
