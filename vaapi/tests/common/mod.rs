// SPDX-License-Identifier: GPL-2.0
//! What the VA → control tests share: VA parameter structs as the buffers `vaRenderPicture`
//! hands over.

use daedalus_drv_video::context::Rendered;
use daedalus_drv_video::va;

/// The bytes of a VA parameter struct (made from `Default`, i.e. zeroed, then filled in
/// place: its padding bytes are zero).
pub fn bytes_of<T>(v: &T) -> Vec<u8> {
    // SAFETY: a live `T`, read as bytes; the structs are zero-initialised (padding included).
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
        .to_vec()
}

pub fn rendered<T>(buf_type: va::VABufferType, v: &T) -> Rendered {
    Rendered {
        buf_type,
        element_size: std::mem::size_of::<T>() as u32,
        num_elements: 1,
        bytes: bytes_of(v),
    }
}
