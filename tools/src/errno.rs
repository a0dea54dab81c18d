// SPDX-License-Identifier: GPL-2.0
//! `errno` values with their symbolic names, which is how the V4L2 and media controller
//! documentation (and the conformance check output) talks about them.

use std::fmt;

/// An `errno` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

macro_rules! errnos {
    ($($name:ident),* $(,)?) => {
        impl Errno {
            $(
                #[doc = concat!("`", stringify!($name), "`.")]
                pub const $name: Errno = Errno(libc::$name);
            )*

            /// The symbolic name (`"EBADR"`), if it is one this tool knows.
            pub fn name(self) -> Option<&'static str> {
                // Not a `match`: some names alias the same value (EAGAIN/EWOULDBLOCK).
                $(
                    if self.0 == libc::$name {
                        return Some(stringify!($name));
                    }
                )*
                None
            }

            /// The errno of a symbolic name (`"EBADR"`), if it is one this tool knows.
            pub fn from_name(name: &str) -> Option<Errno> {
                match name {
                    $(stringify!($name) => Some(Errno::$name),)*
                    _ => None,
                }
            }
        }
    };
}

errnos!(
    EPERM,
    ENOENT,
    ESRCH,
    EINTR,
    EIO,
    ENXIO,
    E2BIG,
    EBADF,
    EAGAIN,
    ENOMEM,
    EACCES,
    EFAULT,
    EBUSY,
    EEXIST,
    ENODEV,
    ENOTDIR,
    EINVAL,
    ENFILE,
    EMFILE,
    ENOTTY,
    EFBIG,
    ENOSPC,
    ESPIPE,
    EROFS,
    EPIPE,
    ERANGE,
    EDEADLK,
    ENOSYS,
    EBADR,
    EBADRQC,
    ENODATA,
    ETIME,
    ENOLINK,
    EPROTO,
    EBADMSG,
    EOVERFLOW,
    EOPNOTSUPP,
    ETIMEDOUT,
    EALREADY,
    EINPROGRESS,
    ECANCELED,
);

impl Errno {
    /// The calling thread's current `errno`.
    pub fn last() -> Errno {
        Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }

    /// The C library's description (`strerror`).
    pub fn description(self) -> String {
        let text = std::io::Error::from_raw_os_error(self.0).to_string();
        // std appends " (os error N)"; the name already identifies the value.
        match text.rfind(" (os error ") {
            Some(pos) => text[..pos].to_owned(),
            None => text,
        }
    }
}

impl fmt::Display for Errno {
    /// `EBADR`, or `errno 1234` for values without a known name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "errno {}", self.0),
        }
    }
}

impl From<Errno> for std::io::Error {
    fn from(errno: Errno) -> Self {
        std::io::Error::from_raw_os_error(errno.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in ["EBADR", "ENOENT", "EINVAL", "EPERM", "EBUSY", "EAGAIN"] {
            let errno = Errno::from_name(name).expect(name);
            assert_eq!(errno.name(), Some(name));
            assert_eq!(errno.to_string(), name);
        }
        assert_eq!(Errno::from_name("EWHATEVER"), None);
    }

    #[cfg(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64"
    ))]
    #[test]
    fn linux_values() {
        // The values the kernel returns (include/uapi/asm-generic/errno*.h).
        assert_eq!(Errno::ENOENT.0, 2);
        assert_eq!(Errno::EINVAL.0, 22);
        assert_eq!(Errno::EBADR.0, 53);
    }

    #[test]
    fn unknown_and_description() {
        assert_eq!(Errno(4000).to_string(), "errno 4000");
        assert_eq!(Errno(4000).name(), None);
        assert!(!Errno::EINVAL.description().contains("os error"));
        assert!(!Errno::EINVAL.description().is_empty());
    }
}
