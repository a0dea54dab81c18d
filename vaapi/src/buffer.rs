// SPDX-License-Identifier: GPL-2.0
//! Buffers: what clients hand the driver (parameters, slice data) and image storage.

use std::sync::Arc;

use daedalus_client::v4l2::Mapping;

use crate::status::{Error, Result};
use crate::va;

/// Where a buffer's bytes are.
enum Storage {
    /// The driver's memory: `element_size * max_elements` bytes, allocated at creation and
    /// never reallocated, so a pointer `vaMapBuffer` returned stays valid until the buffer is
    /// destroyed.
    Own(Box<[u8]>),
    /// A CAPTURE buffer of a decoder (the image `vaDeriveImage` makes of a surface); the
    /// mapping lives as long as the buffer, even if the decoder goes away.
    Capture(Arc<Mapping>),
}

/// A buffer.
pub struct Buffer {
    /// The context it was created for (image buffers: none).
    pub context: Option<u32>,
    /// `VABufferType`.
    pub buf_type: va::VABufferType,
    /// Bytes of one element.
    pub element_size: u32,
    /// Elements in use (`vaBufferSetNumElements` may lower it).
    pub num_elements: u32,
    /// Elements allocated.
    max_elements: u32,
    data: Storage,
    /// Whether the client has it mapped.
    pub mapped: bool,
}

/// The most bytes one buffer may have (a 8K 10-bit picture is 107 MB; slice data are far
/// smaller).
pub const MAX_BYTES: u64 = 256 << 20;

impl Buffer {
    /// A buffer of `num_elements` elements of `element_size` bytes, filled from `data` when
    /// given (which must then have that many bytes), else zeroed.
    pub fn new(
        context: Option<u32>,
        buf_type: va::VABufferType,
        element_size: u32,
        num_elements: u32,
        data: Option<&[u8]>,
    ) -> Result<Buffer> {
        let len = u64::from(element_size) * u64::from(num_elements);
        if len > MAX_BYTES {
            return Err(Error::ALLOCATION_FAILED);
        }
        let len = len as usize;
        let data: Box<[u8]> = match data {
            Some(d) if d.len() == len => d.into(),
            Some(_) => return Err(Error::INVALID_PARAMETER),
            None => vec![0; len].into(),
        };
        Ok(Buffer {
            context,
            buf_type,
            element_size,
            num_elements,
            max_elements: num_elements,
            data: Storage::Own(data),
            mapped: false,
        })
    }

    /// The image buffer of an image in the driver's memory: `size` zeroed bytes.
    pub fn image(size: u32) -> Result<Buffer> {
        Buffer::new(None, va::VAImageBufferType, size, 1, None)
    }

    /// The image buffer of a derived image: the `size` first bytes of a CAPTURE buffer.
    pub fn capture(map: Arc<Mapping>, size: u32) -> Result<Buffer> {
        if (size as usize) > map.len() {
            return Err(Error::OPERATION_FAILED);
        }
        Ok(Buffer {
            context: None,
            buf_type: va::VAImageBufferType,
            element_size: size,
            num_elements: 1,
            max_elements: 1,
            data: Storage::Capture(map),
            mapped: false,
        })
    }

    /// `vaBufferSetNumElements`: at most as many as were allocated, not while mapped.
    pub fn set_num_elements(&mut self, n: u32) -> Result<()> {
        if self.mapped {
            return Err(Error::OPERATION_FAILED);
        }
        if n > self.max_elements {
            return Err(Error::INVALID_PARAMETER);
        }
        self.num_elements = n;
        Ok(())
    }

    /// Bytes in use.
    pub fn size(&self) -> usize {
        self.element_size as usize * self.num_elements as usize
    }

    /// The bytes in use.
    pub fn bytes(&self) -> &[u8] {
        let all: &[u8] = match &self.data {
            Storage::Own(b) => b,
            Storage::Capture(m) => m.as_slice(),
        };
        &all[..self.size()]
    }

    /// All the bytes, writable: `None` for the memory of a surface (written by the decoder
    /// only).
    pub fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        match &mut self.data {
            Storage::Own(b) => Some(b),
            Storage::Capture(_) => None,
        }
    }

    /// `vaMapBuffer`: the address of the bytes (stable: see [`Storage`]). The client may write
    /// through it; for a surface's memory the next decode overwrites what it wrote.
    pub fn map(&mut self) -> *mut u8 {
        self.mapped = true;
        match &mut self.data {
            Storage::Own(b) => b.as_mut_ptr(),
            Storage::Capture(m) => m.as_ptr().cast_mut(),
        }
    }

    /// `vaUnmapBuffer`.
    pub fn unmap(&mut self) -> Result<()> {
        if !self.mapped {
            return Err(Error::OPERATION_FAILED);
        }
        self.mapped = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_map_and_resize() {
        let mut b = Buffer::new(Some(7), va::VASliceDataBufferType, 1, 16, Some(&[5; 16])).unwrap();
        assert_eq!(b.size(), 16);
        assert_eq!(b.bytes(), &[5; 16]);
        let p = b.map();
        assert!(b.mapped);
        assert_eq!(b.set_num_elements(4), Err(Error::OPERATION_FAILED));
        b.unmap().unwrap();
        assert_eq!(b.unmap(), Err(Error::OPERATION_FAILED));
        b.set_num_elements(4).unwrap();
        assert_eq!(b.bytes(), &[5; 4]);
        assert_eq!(b.set_num_elements(17), Err(Error::INVALID_PARAMETER));
        b.set_num_elements(16).unwrap();
        assert_eq!(b.map(), p, "the bytes never move");
        assert!(matches!(
            Buffer::new(None, va::VAImageBufferType, 4, 2, Some(&[0; 7])),
            Err(Error::INVALID_PARAMETER)
        ));
        assert!(matches!(
            Buffer::new(None, va::VAImageBufferType, u32::MAX, u32::MAX, None),
            Err(Error::ALLOCATION_FAILED)
        ));
    }
}
