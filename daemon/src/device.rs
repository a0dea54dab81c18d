// SPDX-License-Identifier: GPL-2.0
//! `/dev/daedalus`: attaching (open + version handshake), reading messages, sending
//! completions, and the signals the daemon waits for next to the device.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use daedalus_proto::wire::{
    Completion, Hello, WireError, IOC_COMPLETE, IOC_HELLO, MAX_MESSAGE_SIZE, VERSION,
};

use crate::transport::{Incoming, Transport};

/// Why attaching to the device failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// No such device.
    #[error("{path} does not exist: is the daedalus module loaded? (modprobe daedalus)")]
    NotFound {
        /// The device path.
        path: String,
    },
    /// Not root.
    #[error("{path}: permission denied: daedalusd must run as root (it needs CAP_SYS_ADMIN)")]
    Permission {
        /// The device path.
        path: String,
    },
    /// Another daemon is attached.
    #[error("{path} is busy: another daedalusd is already attached")]
    Busy {
        /// The device path.
        path: String,
    },
    /// The module speaks another protocol version.
    #[error(
        "protocol version mismatch: daemon speaks protocol v{daemon}, module v{module} \
         (install a daedalusd built from the same source as the module)"
    )]
    Version {
        /// Our version.
        daemon: u32,
        /// The module's version.
        module: u32,
    },
    /// The module's messages may be larger than the daemon's read buffer.
    #[error(
        "the module sends messages of up to {module} bytes, the daemon reads at most {daemon}"
    )]
    MessageSize {
        /// The module's limit.
        module: u32,
        /// Ours.
        daemon: usize,
    },
    /// The handshake answer is malformed.
    #[error("malformed handshake answer from the module: {0}")]
    Hello(WireError),
    /// Opening failed otherwise.
    #[error("cannot open {path}")]
    Open {
        /// The device path.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// The handshake ioctl failed otherwise.
    #[error("{path}: version handshake failed (is it the daedalus device?)")]
    Handshake {
        /// The device path.
        path: String,
        /// The error.
        source: io::Error,
    },
}

impl OpenError {
    fn from_errno(path: &Path, e: io::Error, handshake: bool) -> OpenError {
        let path = path.display().to_string();
        match e.raw_os_error() {
            Some(libc::ENOENT | libc::ENODEV | libc::ENXIO) => OpenError::NotFound { path },
            Some(libc::EACCES | libc::EPERM) => OpenError::Permission { path },
            Some(libc::EBUSY) => OpenError::Busy { path },
            _ if handshake => OpenError::Handshake { path, source: e },
            _ => OpenError::Open { path, source: e },
        }
    }
}

/// The attached device.
pub struct Device {
    fd: OwnedFd,
    signals: Option<OwnedFd>,
    hello: Hello,
}

impl Device {
    /// Opens the device and performs the version handshake.
    pub fn open(path: &Path) -> Result<Device, OpenError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| OpenError::from_errno(path, e, false))?;
        let fd = OwnedFd::from(file);
        let mut payload = Hello {
            version: VERSION,
            ..Hello::default()
        }
        .encode();
        let r = loop {
            // SAFETY: IOC_HELLO reads and writes one `struct daedalus_hello` of Hello::SIZE
            // bytes, which `payload` is.
            let r = unsafe { libc::ioctl(fd.as_raw_fd(), IOC_HELLO as _, payload.as_mut_ptr()) };
            let e = io::Error::last_os_error();
            if r < 0 && e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            break if r < 0 { Err(e) } else { Ok(()) };
        };
        if let Err(e) = r {
            if e.raw_os_error() == Some(libc::EPROTO) {
                // The module wrote its own version back.
                let module = Hello::decode(&payload).map_or_else(
                    |_| u32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]]),
                    |h| h.version,
                );
                return Err(OpenError::Version {
                    daemon: VERSION,
                    module,
                });
            }
            return Err(OpenError::from_errno(path, e, true));
        }
        let hello = Hello::decode(&payload).map_err(OpenError::Hello)?;
        if hello.version != VERSION {
            return Err(OpenError::Version {
                daemon: VERSION,
                module: hello.version,
            });
        }
        if hello.max_message_size as usize > MAX_MESSAGE_SIZE {
            return Err(OpenError::MessageSize {
                module: hello.max_message_size,
                daemon: MAX_MESSAGE_SIZE,
            });
        }
        Ok(Device {
            fd,
            signals: None,
            hello,
        })
    }

    /// Also waits for the signals of `signal_fd` (see [`block_signals`]) in
    /// [`Transport::receive`]: SIGUSR1 gives [`Incoming::Stats`], SIGINT/SIGTERM
    /// [`Incoming::Shutdown`].
    pub fn with_signals(mut self, signal_fd: OwnedFd) -> Device {
        self.signals = Some(signal_fd);
        self
    }

    /// The module's answer to the handshake.
    pub fn hello(&self) -> Hello {
        self.hello
    }
}

impl Transport for Device {
    fn receive(&self, buf: &mut [u8]) -> io::Result<Incoming> {
        let sig_fd = self.signals.as_ref().map_or(-1, AsRawFd::as_raw_fd);
        loop {
            let mut fds = [
                libc::pollfd {
                    fd: self.fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: sig_fd, // poll ignores negative fds
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: `fds` is an array of 2 pollfds that outlives the call.
            let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(e);
            }
            if fds[1].revents & libc::POLLIN != 0 {
                match read_signal(sig_fd)? {
                    Some(libc::SIGUSR1) => return Ok(Incoming::Stats),
                    Some(libc::SIGINT | libc::SIGTERM) => return Ok(Incoming::Shutdown),
                    _ => {}
                }
            }
            let rev = fds[0].revents;
            if rev & libc::POLLIN != 0 {
                // SAFETY: reads at most `buf.len()` bytes into `buf`.
                let n =
                    unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if n > 0 {
                    return Ok(Incoming::Message(n as usize));
                }
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the device closed the connection",
                    ));
                }
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN | libc::EINTR) => continue,
                    _ => return Err(e),
                }
            }
            if rev & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    format!("the device reported an error (poll revents {rev:#x})"),
                ));
            }
        }
    }

    fn complete(&self, completion: &Completion) -> io::Result<()> {
        let payload = completion.encode();
        loop {
            // SAFETY: IOC_COMPLETE reads one `struct daedalus_completion` of
            // Completion::SIZE bytes, which `payload` is.
            let r =
                unsafe { libc::ioctl(self.fd.as_raw_fd(), IOC_COMPLETE as _, payload.as_ptr()) };
            if r >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(e);
            }
        }
    }
}

/// Blocks `signals` in the calling thread (and so in every thread it creates afterwards) and
/// returns a signalfd that reads them. Call it before starting any thread.
pub fn block_signals(signals: &[libc::c_int]) -> io::Result<OwnedFd> {
    // SAFETY: sigset_t is a plain bit set; zeroed then initialised by sigemptyset.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t for these libc calls.
    unsafe {
        libc::sigemptyset(&mut set);
        for &s in signals {
            if libc::sigaddset(&mut set, s) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    // SAFETY: changes this thread's signal mask only; `set` is initialised.
    let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    // SAFETY: creates a new fd; the result is checked before it is owned.
    let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads one pending signal from a signalfd (`None` if there is none).
fn read_signal(fd: RawFd) -> io::Result<Option<libc::c_int>> {
    // SAFETY: signalfd_siginfo is plain data.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: reads at most `size` bytes into `info`.
    let n = unsafe { libc::read(fd, (&mut info as *mut libc::signalfd_siginfo).cast(), size) };
    if n == size as isize {
        return Ok(Some(info.ssi_signo as libc::c_int));
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN | libc::EINTR) => Ok(None),
        _ if n >= 0 => Ok(None),
        _ => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device over one end of a SOCK_SEQPACKET pair, which keeps message boundaries as the
    /// chardev's read() does.
    fn fake() -> (Device, OwnedFd) {
        let mut sv = [0; 2];
        // SAFETY: creates two new fds into `sv`.
        let r = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
                sv.as_mut_ptr(),
            )
        };
        assert_eq!(r, 0);
        // SAFETY: both fds are new and owned once each.
        let (a, b) = unsafe { (OwnedFd::from_raw_fd(sv[0]), OwnedFd::from_raw_fd(sv[1])) };
        let dev = Device {
            fd: a,
            signals: None,
            hello: Hello::default(),
        };
        (dev, b)
    }

    #[test]
    fn receive_messages_signals_and_eof() {
        let (dev, peer) = fake();
        let sig = block_signals(&[libc::SIGUSR1]).unwrap();
        let dev = dev.with_signals(sig);
        let send = |m: &[u8]| {
            // SAFETY: writes `m` to our socket.
            let n = unsafe { libc::write(peer.as_raw_fd(), m.as_ptr().cast(), m.len()) };
            assert_eq!(n, m.len() as isize);
        };
        send(&[1, 2, 3]);
        send(&[4; 100]);
        let mut buf = vec![0u8; MAX_MESSAGE_SIZE];
        assert_eq!(dev.receive(&mut buf).unwrap(), Incoming::Message(3));
        assert_eq!(&buf[..3], &[1, 2, 3]);
        assert_eq!(dev.receive(&mut buf).unwrap(), Incoming::Message(100));
        // SAFETY: sends SIGUSR1 to this thread, where it is blocked and so stays pending for
        // the signalfd.
        unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGUSR1) };
        assert_eq!(dev.receive(&mut buf).unwrap(), Incoming::Stats);
        // A socket is no daedalus device: the completion ioctl fails cleanly.
        assert!(dev.complete(&Completion::default()).is_err());
        drop(peer);
        assert!(dev.receive(&mut buf).is_err());
    }

    #[test]
    fn open_errors_are_explained() {
        let e = Device::open(Path::new("/nonexistent/daedalus"))
            .err()
            .unwrap();
        assert!(matches!(e, OpenError::NotFound { .. }), "{e}");
        assert!(e.to_string().contains("modprobe daedalus"));
        // A regular file: open works, the handshake ioctl does not (ENOTTY).
        let e = Device::open(Path::new("/proc/self/status")).err();
        assert!(
            matches!(
                e,
                Some(OpenError::Handshake { .. } | OpenError::Permission { .. })
            ),
            "{e:?}"
        );
        let v = OpenError::Version {
            daemon: 1,
            module: 2,
        };
        assert!(v
            .to_string()
            .contains("daemon speaks protocol v1, module v2"));
    }
}
