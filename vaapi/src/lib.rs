// SPDX-License-Identifier: GPL-2.0
//! skeleton
pub mod va;
