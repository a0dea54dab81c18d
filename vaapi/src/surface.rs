// SPDX-License-Identifier: GPL-2.0
//! Surfaces: `vaCreateSurfaces2` with its attributes.

use daedalus_proto::formats::BitDepth;

use crate::config::{depth_of_fourcc, depth_of_rt_format};
use crate::status::{Error, Result};
use crate::va;

/// The most surfaces one `vaCreateSurfaces` call may create.
pub const MAX_PER_CALL: u32 = 128;

/// A surface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Surface {
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// NV12 or P010.
    pub depth: BitDepth,
    /// The CAPTURE buffer that is its memory, once it was decoded into.
    pub binding: Option<Binding>,
    /// What it holds.
    pub state: State,
}

/// The CAPTURE buffer of a surface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The context whose decoder has the buffer.
    pub context: u32,
    /// The buffer's index.
    pub capture: u32,
}

/// What a surface holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Nothing decoded yet.
    Empty,
    /// Its picture is gone with its decoder (the context was destroyed, or its decoder
    /// failed and was closed): syncing it is a decoding error, not an empty success.
    Lost,
    /// A picture being decoded: request `seq` of `context`'s decoder.
    Pending {
        /// The context.
        context: u32,
        /// The picture's sequence number.
        seq: u64,
    },
    /// A decoded picture (`error`: the decoder failed on it).
    Decoded {
        /// The context.
        context: u32,
        /// The picture's sequence number.
        seq: u64,
        /// Whether it came back with the error flag.
        error: bool,
    },
}

impl Surface {
    /// A new surface: nothing in it, no memory yet.
    pub fn new(width: u32, height: u32, depth: BitDepth) -> Surface {
        Surface {
            width,
            height,
            depth,
            binding: None,
            state: State::Empty,
        }
    }

    /// The timestamp (ns) references name its picture by, if it holds (or is getting) a
    /// picture of `context`.
    pub fn reference_in(&self, context: u32) -> Option<u64> {
        match self.state {
            State::Pending { context: c, seq }
            | State::Decoded {
                context: c, seq, ..
            } if c == context => Some(seq * 1000),
            _ => None,
        }
    }
}

/// What `vaCreateSurfaces2` asks for, once its attributes are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// The pictures' bit depth.
    pub depth: BitDepth,
}

/// Reads an integer attribute value.
fn int_value(a: &va::VASurfaceAttrib) -> Result<i32> {
    if a.value.type_ != va::VAGenericValueTypeInteger {
        return Err(Error::INVALID_PARAMETER);
    }
    // SAFETY: reading the integer member of the value union, which the type says it holds
    // (any bits are a valid i32 anyway).
    Ok(unsafe { a.value.value.i })
}

/// Checks the render-target format and attributes of `vaCreateSurfaces2`: a 4:2:0 format at
/// a depth the device outputs (`depths`), a pixel format that agrees with it, memory the
/// driver allocates itself (importing client memory is not supported).
pub fn check_request(
    rt_format: u32,
    attribs: &[va::VASurfaceAttrib],
    depths: &[BitDepth],
) -> Result<Request> {
    let depth = depth_of_rt_format(rt_format)
        .filter(|d| depths.contains(d))
        .ok_or(Error::UNSUPPORTED_RT_FORMAT)?;
    for a in attribs {
        if a.flags & va::VA_SURFACE_ATTRIB_SETTABLE == 0 {
            continue;
        }
        match a.type_ {
            va::VASurfaceAttribPixelFormat => {
                // A fourcc: the bits of the C int.
                let fourcc = int_value(a)? as u32;
                if depth_of_fourcc(fourcc) != Some(depth) {
                    return Err(Error::INVALID_IMAGE_FORMAT);
                }
            }
            va::VASurfaceAttribMemoryType => {
                let mem = int_value(a)? as u32;
                if mem != va::VA_SURFACE_ATTRIB_MEM_TYPE_VA {
                    return Err(Error::UNSUPPORTED_MEMORY_TYPE);
                }
            }
            va::VASurfaceAttribExternalBufferDescriptor => {
                return Err(Error::UNSUPPORTED_MEMORY_TYPE)
            }
            // Usage hints and the rest do not change what the driver allocates.
            _ => {}
        }
    }
    Ok(Request { depth })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_per_context() {
        let mut s = Surface::new(64, 64, BitDepth::Eight);
        assert_eq!(s.reference_in(1), None);
        s.state = State::Pending { context: 1, seq: 5 };
        assert_eq!(s.reference_in(1), Some(5000));
        assert_eq!(s.reference_in(2), None);
        s.state = State::Decoded {
            context: 1,
            seq: 5,
            error: true,
        };
        assert_eq!(s.reference_in(1), Some(5000));
    }

    fn int(type_: va::VASurfaceAttribType, value: u32) -> va::VASurfaceAttrib {
        va::VASurfaceAttrib {
            type_,
            flags: va::VA_SURFACE_ATTRIB_SETTABLE,
            value: va::VAGenericValue {
                type_: va::VAGenericValueTypeInteger,
                value: va::_VAGenericValue__bindgen_ty_1 { i: value as i32 },
            },
        }
    }

    const BOTH: &[BitDepth] = &[BitDepth::Eight, BitDepth::Ten];

    #[test]
    fn formats_and_attributes() {
        assert_eq!(
            check_request(va::VA_RT_FORMAT_YUV420, &[], BOTH),
            Ok(Request {
                depth: BitDepth::Eight
            })
        );
        let p010 = int(va::VASurfaceAttribPixelFormat, va::VA_FOURCC_P010);
        assert_eq!(
            check_request(va::VA_RT_FORMAT_YUV420_10, &[p010], BOTH).map(|r| r.depth),
            Ok(BitDepth::Ten)
        );
        assert_eq!(
            check_request(va::VA_RT_FORMAT_YUV420, &[p010], BOTH),
            Err(Error::INVALID_IMAGE_FORMAT)
        );
        assert_eq!(
            check_request(va::VA_RT_FORMAT_YUV420_10, &[], &[BitDepth::Eight]),
            Err(Error::UNSUPPORTED_RT_FORMAT)
        );
        assert_eq!(
            check_request(va::VA_RT_FORMAT_YUV444, &[], BOTH),
            Err(Error::UNSUPPORTED_RT_FORMAT)
        );
        let prime = int(
            va::VASurfaceAttribMemoryType,
            va::VA_SURFACE_ATTRIB_MEM_TYPE_DRM_PRIME_2,
        );
        assert_eq!(
            check_request(va::VA_RT_FORMAT_YUV420, &[prime], BOTH),
            Err(Error::UNSUPPORTED_MEMORY_TYPE)
        );
        let va_mem = int(
            va::VASurfaceAttribMemoryType,
            va::VA_SURFACE_ATTRIB_MEM_TYPE_VA,
        );
        let hint = int(va::VASurfaceAttribUsageHint, 4);
        assert!(check_request(va::VA_RT_FORMAT_YUV420, &[va_mem, hint], BOTH).is_ok());
        // Not settable: ignored.
        let mut ro = p010;
        ro.flags = va::VA_SURFACE_ATTRIB_GETTABLE;
        assert!(check_request(va::VA_RT_FORMAT_YUV420, &[ro], BOTH).is_ok());
        // A pointer where an integer belongs.
        let mut bad = p010;
        bad.value.type_ = va::VAGenericValueTypePointer;
        assert_eq!(
            check_request(va::VA_RT_FORMAT_YUV420_10, &[bad], BOTH),
            Err(Error::INVALID_PARAMETER)
        );
    }
}
