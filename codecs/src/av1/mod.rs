// SPDX-License-Identifier: GPL-2.0
//! AV1: the V4L2 stateless controls and the OBUs they stand for.
//!
//! * [`controls`]: parsed sequence / frame headers and tile groups → `v4l2_ctrl_av1_sequence`,
//!   `v4l2_ctrl_av1_frame`, `v4l2_ctrl_av1_film_grain` and `v4l2_ctrl_av1_tile_group_entry`
//!   (what a stateless client such as `daedalus decode` sends).
//! * [`rebuild`]: controls → sequence header / frame header / tile group OBUs (what the daemon
//!   feeds libdav1d when the client queued only tile-group payloads).
//! * [`payload`]: reading a control struct from a control payload (raw bytes).

pub mod controls;
pub mod rebuild;

/// Reading the bindgen control structs from the raw payload bytes the kernel forwards.
pub mod payload {
    use crate::uapi::{
        v4l2_ctrl_av1_film_grain, v4l2_ctrl_av1_frame, v4l2_ctrl_av1_sequence,
        v4l2_ctrl_av1_tile_group_entry,
    };

    /// A control struct made only of integers (and arrays of them): every bit pattern is a
    /// valid value.
    ///
    /// # Safety
    /// Implement only for `#[repr(C)]` plain-old-data types without padding-sensitive
    /// invariants, references, bools or Rust enums.
    pub unsafe trait Pod: Copy + Default {}

    // SAFETY: bindgen structs of u8/u16/u32/i8/i16/i32/u64 fields and arrays of them; its enums
    // are generated as `c_uint` constants (EnumVariation::Consts), so any bits are valid.
    unsafe impl Pod for v4l2_ctrl_av1_sequence {}
    // SAFETY: as above.
    unsafe impl Pod for v4l2_ctrl_av1_frame {}
    // SAFETY: as above.
    unsafe impl Pod for v4l2_ctrl_av1_film_grain {}
    // SAFETY: as above.
    unsafe impl Pod for v4l2_ctrl_av1_tile_group_entry {}

    /// Reads a `T` from the start of `bytes` (`None` if too short).
    pub fn read<T: Pod>(bytes: &[u8]) -> Option<T> {
        if bytes.len() < std::mem::size_of::<T>() {
            return None;
        }
        // SAFETY: `bytes` holds at least size_of::<T>() readable bytes; read_unaligned needs no
        // alignment; `T: Pod` makes every bit pattern a valid `T`.
        Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
    }

    /// Reads as many whole `T`s as `bytes` holds, into `out` (cleared first).
    pub fn read_array<T: Pod>(bytes: &[u8], out: &mut Vec<T>) {
        out.clear();
        out.extend(
            bytes
                .chunks_exact(std::mem::size_of::<T>())
                .filter_map(read::<T>),
        );
    }
}
