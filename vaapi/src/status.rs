// SPDX-License-Identifier: GPL-2.0
//! VA status codes as a Rust error: every driver operation returns [`Result`], and the entry
//! points (`entry.rs`) turn it into the `VAStatus` libva expects.

use std::fmt;

use crate::va;

/// A `VAStatus` other than `VA_STATUS_SUCCESS`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Error(va::VAStatus);

/// `Result` with a VA [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

macro_rules! statuses {
    ($($name:ident = $va:ident),* $(,)?) => {
        impl Error {
            $(
                #[doc = concat!("`", stringify!($va), "`.")]
                pub const $name: Error = Error($va as va::VAStatus);
            )*

            /// The name of the status (`VA_STATUS_ERROR_...`), or its number.
            pub fn name(self) -> std::borrow::Cow<'static, str> {
                $(if self == Error::$name {
                    return stringify!($va).into();
                })*
                format!("VAStatus {:#x}", self.0).into()
            }
        }
    };
}

use va::*;

statuses! {
    OPERATION_FAILED = VA_STATUS_ERROR_OPERATION_FAILED,
    ALLOCATION_FAILED = VA_STATUS_ERROR_ALLOCATION_FAILED,
    INVALID_DISPLAY = VA_STATUS_ERROR_INVALID_DISPLAY,
    INVALID_CONFIG = VA_STATUS_ERROR_INVALID_CONFIG,
    INVALID_CONTEXT = VA_STATUS_ERROR_INVALID_CONTEXT,
    INVALID_SURFACE = VA_STATUS_ERROR_INVALID_SURFACE,
    INVALID_BUFFER = VA_STATUS_ERROR_INVALID_BUFFER,
    INVALID_IMAGE = VA_STATUS_ERROR_INVALID_IMAGE,
    INVALID_SUBPICTURE = VA_STATUS_ERROR_INVALID_SUBPICTURE,
    ATTR_NOT_SUPPORTED = VA_STATUS_ERROR_ATTR_NOT_SUPPORTED,
    MAX_NUM_EXCEEDED = VA_STATUS_ERROR_MAX_NUM_EXCEEDED,
    UNSUPPORTED_PROFILE = VA_STATUS_ERROR_UNSUPPORTED_PROFILE,
    UNSUPPORTED_ENTRYPOINT = VA_STATUS_ERROR_UNSUPPORTED_ENTRYPOINT,
    UNSUPPORTED_RT_FORMAT = VA_STATUS_ERROR_UNSUPPORTED_RT_FORMAT,
    UNSUPPORTED_BUFFERTYPE = VA_STATUS_ERROR_UNSUPPORTED_BUFFERTYPE,
    SURFACE_BUSY = VA_STATUS_ERROR_SURFACE_BUSY,
    FLAG_NOT_SUPPORTED = VA_STATUS_ERROR_FLAG_NOT_SUPPORTED,
    INVALID_PARAMETER = VA_STATUS_ERROR_INVALID_PARAMETER,
    RESOLUTION_NOT_SUPPORTED = VA_STATUS_ERROR_RESOLUTION_NOT_SUPPORTED,
    UNIMPLEMENTED = VA_STATUS_ERROR_UNIMPLEMENTED,
    INVALID_IMAGE_FORMAT = VA_STATUS_ERROR_INVALID_IMAGE_FORMAT,
    DECODING_ERROR = VA_STATUS_ERROR_DECODING_ERROR,
    INVALID_VALUE = VA_STATUS_ERROR_INVALID_VALUE,
    UNSUPPORTED_MEMORY_TYPE = VA_STATUS_ERROR_UNSUPPORTED_MEMORY_TYPE,
    NOT_ENOUGH_BUFFER = VA_STATUS_ERROR_NOT_ENOUGH_BUFFER,
    TIMEDOUT = VA_STATUS_ERROR_TIMEDOUT,
    UNKNOWN = VA_STATUS_ERROR_UNKNOWN,
}

impl Error {
    /// The `VAStatus` to return.
    pub fn status(self) -> va::VAStatus {
        self.0
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// The `VAStatus` of a result.
pub fn to_status(r: Result<()>) -> va::VAStatus {
    match r {
        Ok(()) => VA_STATUS_SUCCESS as va::VAStatus,
        Err(e) => e.status(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_libvas() {
        assert_eq!(to_status(Ok(())), 0);
        assert_eq!(to_status(Err(Error::OPERATION_FAILED)), 1);
        assert_eq!(Error::INVALID_SURFACE.status(), 6);
        assert_eq!(Error::UNIMPLEMENTED.status(), 0x14);
        // 0xffffffff, a C int.
        assert_eq!(Error::UNKNOWN.status(), -1);
        assert_eq!(
            Error::INVALID_CONFIG.name(),
            "VA_STATUS_ERROR_INVALID_CONFIG"
        );
        assert_eq!(format!("{}", Error(0x1234)), "VAStatus 0x1234");
    }
}
