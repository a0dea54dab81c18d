// SPDX-License-Identifier: GPL-2.0
//! Plain-old-data uAPI structs read from raw bytes: the control payloads the kernel forwards to
//! the daemon, and those the tools read back from the device. One trait for every crate.

use crate::uapi::*;

/// A `#[repr(C)]` uAPI struct (or integer) made only of integers and arrays or structs of
/// integers, without padding: any bytes form a valid value, so it can be read from untrusted
/// payloads, and every byte of a value is initialised, so it can be viewed as bytes.
///
/// # Safety
///
/// Implement only for types whose every bit pattern is a valid value: no references, pointers,
/// `bool`s, `char`s or Rust enums (bindgen's enums are generated as integer constants here,
/// `EnumVariation::Consts`); and without implicit padding (the V4L2 stateless control structs
/// spell every hole out as a `reserved` field, a rule of the uAPI).
pub unsafe trait Pod: Copy + Default + 'static {}

macro_rules! pod {
    ($($ty:ty),* $(,)?) => {$(
        // SAFETY: a bindgen `#[repr(C)]` struct of the uAPI whose fields are all `__u8`..`__s64`
        // integers or arrays / structs of them, or a plain integer: any bits are valid; the
        // uAPI leaves no implicit padding in these structs.
        unsafe impl Pod for $ty {}
    )*};
}

pod! {
    i32,
    u32,
    v4l2_ctrl_vp9_frame,
    v4l2_ctrl_vp9_compressed_hdr,
    v4l2_ctrl_h264_sps,
    v4l2_ctrl_h264_pps,
    v4l2_ctrl_h264_decode_params,
    v4l2_ctrl_h264_scaling_matrix,
    v4l2_ctrl_h264_slice_params,
    v4l2_ctrl_h264_pred_weights,
    v4l2_ctrl_av1_sequence,
    v4l2_ctrl_av1_frame,
    v4l2_ctrl_av1_film_grain,
    v4l2_ctrl_av1_tile_group_entry,
    v4l2_av1_tile_info,
    v4l2_av1_quantization,
    v4l2_av1_segmentation,
    v4l2_av1_loop_filter,
    v4l2_av1_cdef,
    v4l2_av1_loop_restoration,
    v4l2_av1_global_motion,
}

/// Reads a `T` from the start of `bytes` (`None` if too short; extra bytes are ignored).
pub fn read<T: Pod>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < std::mem::size_of::<T>() {
        return None;
    }
    // SAFETY: `bytes` holds at least size_of::<T>() readable bytes; read_unaligned needs no
    // alignment; `T: Pod` makes every bit pattern a valid `T`.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// The bytes of a value (to compare two controls, or to send one).
pub fn bytes<T: Pod>(value: &T) -> &[u8] {
    // SAFETY: `value` is a live `T` of size_of::<T>() bytes, all initialised (`T: Pod` has no
    // padding); the slice borrows it, so it cannot outlive or alias a mutation of it.
    unsafe {
        std::slice::from_raw_parts((value as *const T).cast::<u8>(), std::mem::size_of::<T>())
    }
}

/// Reads as many whole `T`s as `bytes` holds into `out` (cleared first; its allocation is
/// reused).
pub fn read_array<T: Pod>(bytes: &[u8], out: &mut Vec<T>) {
    out.clear();
    out.extend(
        bytes
            .chunks_exact(std::mem::size_of::<T>())
            .filter_map(read::<T>),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_unaligned_and_refuses_short_payloads() {
        let mut bytes = [0u8; 1 + 8];
        bytes[1..5].copy_from_slice(&7i32.to_ne_bytes());
        bytes[5..9].copy_from_slice(&(-2i32).to_ne_bytes());
        assert_eq!(read::<i32>(&bytes[1..]), Some(7));
        assert_eq!(read::<i32>(&bytes[1..4]), None);
        let mut out = vec![99];
        read_array::<i32>(&bytes[1..8], &mut out);
        assert_eq!(out, [7]);
        read_array::<i32>(&bytes[1..], &mut out);
        assert_eq!(out, [7, -2]);
        let sps: v4l2_ctrl_h264_sps =
            read(&vec![0xff; std::mem::size_of::<v4l2_ctrl_h264_sps>()]).expect("whole struct");
        assert_eq!(sps.profile_idc, 0xff);
        assert_eq!(
            super::bytes(&sps),
            vec![0xff; std::mem::size_of::<v4l2_ctrl_h264_sps>()]
        );
    }
}
