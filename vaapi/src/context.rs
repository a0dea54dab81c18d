// SPDX-License-Identifier: GPL-2.0
//! Decode contexts: the picture being described between `vaBeginPicture` and `vaEndPicture`,
//! the codec's state between pictures, and the decoder (`decoder.rs`).

use crate::av1::Av1;
use crate::config::Config;
use crate::decoder::Decoder;
use crate::h264::H264;
use crate::status::{Error, Result};
use crate::va;
use crate::vp9::Vp9;

/// A buffer the client rendered into the current picture (copied: clients may destroy their
/// buffers before `vaEndPicture`).
pub struct Rendered {
    /// `VABufferType`.
    pub buf_type: va::VABufferType,
    /// Bytes of one element.
    pub element_size: u32,
    /// Its elements.
    pub num_elements: u32,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// The picture between `vaBeginPicture` and `vaEndPicture`.
pub struct Picture {
    /// Its render target.
    pub surface: u32,
    /// What the client rendered, in order.
    pub buffers: Vec<Rendered>,
}

impl Picture {
    /// The buffers of one type, in the order they were rendered.
    pub fn of_type(&self, buf_type: va::VABufferType) -> impl Iterator<Item = &Rendered> {
        self.buffers.iter().filter(move |b| b.buf_type == buf_type)
    }

    /// The slices of the picture: each element of the slice parameter buffers (`T`) with the
    /// bytes it names (`range` gives its offset, size and `slice_data_flag`) in the slice data
    /// buffer of the same rank (VA renders them in pairs: parameters, then data).
    pub fn slices<T: Copy + Default>(
        &self,
        range: impl Fn(&T) -> (u32, u32, u32),
    ) -> Result<Vec<(T, &[u8])>> {
        let params: Vec<&Rendered> = self.of_type(va::VASliceParameterBufferType).collect();
        let data: Vec<&Rendered> = self.of_type(va::VASliceDataBufferType).collect();
        if params.len() != data.len() {
            log::warn!(
                "{} slice parameter buffers for {} slice data buffers",
                params.len(),
                data.len()
            );
            return Err(Error::INVALID_PARAMETER);
        }
        let mut slices = Vec::new();
        for (p, d) in params.into_iter().zip(data) {
            for i in 0..p.num_elements as usize {
                let slice: T = element(p, i).ok_or_else(|| {
                    log::warn!(
                        "slice parameter buffer with {}-byte elements, the driver expects {}",
                        p.element_size,
                        std::mem::size_of::<T>()
                    );
                    Error::INVALID_PARAMETER
                })?;
                let (offset, size, flag) = range(&slice);
                if flag != va::VA_SLICE_DATA_FLAG_ALL {
                    log::warn!("partial slice data (slice_data_flag {flag:#x})");
                    return Err(Error::INVALID_PARAMETER);
                }
                let bytes = (offset as usize)
                    .checked_add(size as usize)
                    .and_then(|end| d.bytes.get(offset as usize..end))
                    .ok_or_else(|| {
                        log::warn!(
                            "slice data {offset}+{size} outside the {}-byte buffer",
                            d.bytes.len()
                        );
                        Error::INVALID_PARAMETER
                    })?;
                slices.push((slice, bytes));
            }
        }
        Ok(slices)
    }

    /// The first element of the first buffer of `buf_type` as a `T` (a VA parameter struct):
    /// `INVALID_PARAMETER` without one, or with elements of another size.
    pub fn param<T: Copy + Default>(&self, buf_type: va::VABufferType) -> Result<T> {
        let b = self.of_type(buf_type).next().ok_or_else(|| {
            log::warn!("the picture has no buffer of type {buf_type}");
            Error::INVALID_PARAMETER
        })?;
        element(b, 0).ok_or_else(|| {
            log::warn!(
                "buffer of type {buf_type} has {}-byte elements, the driver expects {}",
                b.element_size,
                std::mem::size_of::<T>()
            );
            Error::INVALID_PARAMETER
        })
    }
}

/// Element `i` of a rendered buffer as a `T`, if its elements have `T`'s size.
pub fn element<T: Copy + Default>(b: &Rendered, i: usize) -> Option<T> {
    let size = std::mem::size_of::<T>();
    if b.element_size as usize != size || i >= b.num_elements as usize {
        return None;
    }
    let bytes = b.bytes.get(i * size..(i + 1) * size)?;
    let mut value = T::default();
    // SAFETY: `T` is a bindgen VA parameter struct (integers, arrays and unions of them: every
    // bit pattern is a value) and `bytes` has exactly its size; copied byte by byte.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), (&mut value as *mut T).cast::<u8>(), size)
    };
    Some(value)
}

/// What a codec keeps between the pictures of a context.
pub enum CodecState {
    /// VP9.
    Vp9(Box<Vp9>),
    /// AV1.
    Av1(Box<Av1>),
    /// H.264.
    H264(Box<H264>),
    /// A codec whose VA parameters the driver does not map yet.
    Unmapped,
}

/// A decode context.
pub struct Context {
    /// Its config.
    pub config: Config,
    /// The surfaces the client named at creation (it may decode into others too).
    pub render_targets: Vec<u32>,
    /// The picture between `vaBeginPicture` and `vaEndPicture`.
    pub current: Option<Picture>,
    /// The codec's state.
    pub codec: CodecState,
    /// The device side, from the first picture on.
    pub decoder: Option<Decoder>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(buf_type: va::VABufferType, element_size: u32, num_elements: u32) -> Rendered {
        Rendered {
            buf_type,
            element_size,
            num_elements,
            bytes: vec![0; (element_size * num_elements) as usize],
        }
    }

    #[test]
    fn parameters_by_type_and_size() {
        let slice_size = std::mem::size_of::<va::VASliceParameterBufferVP9>() as u32;
        let mut slices = rendered(va::VASliceParameterBufferType, slice_size, 2);
        slices.bytes[slice_size as usize..][..4].copy_from_slice(&77u32.to_ne_bytes());
        let p = Picture {
            surface: 1,
            buffers: vec![
                rendered(va::VASliceDataBufferType, 10, 1),
                slices,
                rendered(va::VASliceDataBufferType, 20, 1),
            ],
        };
        let sizes: Vec<usize> = p
            .of_type(va::VASliceDataBufferType)
            .map(|b| b.bytes.len())
            .collect();
        assert_eq!(sizes, [10, 20]);
        let first: va::VASliceParameterBufferVP9 = p.param(va::VASliceParameterBufferType).unwrap();
        assert_eq!(first.slice_data_size, 0);
        let b = p.of_type(va::VASliceParameterBufferType).next().unwrap();
        assert_eq!(
            element::<va::VASliceParameterBufferVP9>(b, 1)
                .unwrap()
                .slice_data_size,
            77
        );
        assert!(element::<va::VASliceParameterBufferVP9>(b, 2).is_none());
        // Missing, or of another struct's size.
        assert_eq!(
            p.param::<va::VADecPictureParameterBufferVP9>(va::VAPictureParameterBufferType)
                .err(),
            Some(Error::INVALID_PARAMETER)
        );
        assert_eq!(
            p.param::<va::VADecPictureParameterBufferVP9>(va::VASliceParameterBufferType)
                .err(),
            Some(Error::INVALID_PARAMETER)
        );
    }
}
