// SPDX-License-Identifier: GPL-2.0
//! `/dev/daedalus`: attaching (open + version handshake), reading messages, sending
//! completions, and the signals the daemon waits for next to the device.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use daedalus_proto::wire::{Completion, Hello, WireError, MAX_MESSAGE_SIZE, VERSION};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::transport::{Incoming, Transport};

/// The two ioctls of `/dev/daedalus` (`daedalus_proto::wire::IOC_*`), as nix wrappers: the
/// daemon's and the test daemon's (`daedalus-fake-daemon`) way to the device.
pub mod ioctl {
    use daedalus_proto::wire::{Completion, Hello, IOC_COMPLETE, IOC_HELLO};

    nix::ioctl_readwrite_bad!(
        /// `IOC_HELLO`: the version handshake; the module writes its answer into the payload.
        hello,
        IOC_HELLO,
        [u8; Hello::SIZE]
    );
    nix::ioctl_write_ptr_bad!(
        /// `IOC_COMPLETE`: a job's completion.
        complete,
        IOC_COMPLETE,
        [u8; Completion::SIZE]
    );
}

/// Why attaching to the device failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// No such device.
    #[error("{path} does not exist: is the daedalus module loaded? (modprobe daedalus)")]
    NotFound {
        /// The device path.
        path: String,
    },
    /// No read/write permission on the node.
    #[error(
        "{path}: permission denied: run daedalusd as a user who may open it (the daedalus \
         system user: the packaged udev rule gives the node to group daedalus, mode 0660), or \
         as root"
    )]
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
        match e.raw_os_error().map(Errno::from_raw) {
            Some(Errno::ENOENT | Errno::ENODEV | Errno::ENXIO) => OpenError::NotFound { path },
            Some(Errno::EACCES | Errno::EPERM) => OpenError::Permission { path },
            Some(Errno::EBUSY) => OpenError::Busy { path },
            _ if handshake => OpenError::Handshake { path, source: e },
            _ => OpenError::Open { path, source: e },
        }
    }
}

/// The attached device.
pub struct Device {
    file: File,
    signals: Option<SignalFd>,
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
        let mut payload = Hello {
            version: VERSION,
            ..Hello::default()
        }
        .encode();
        let r = loop {
            // SAFETY: IOC_HELLO reads and writes one `struct daedalus_hello` of Hello::SIZE
            // bytes, which `payload` is.
            match unsafe { ioctl::hello(file.as_raw_fd(), &mut payload) } {
                Err(Errno::EINTR) => continue,
                r => break r,
            }
        };
        if let Err(e) = r {
            if e == Errno::EPROTO {
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
            return Err(OpenError::from_errno(path, e.into(), true));
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
            file,
            signals: None,
            hello,
        })
    }

    /// Also waits for the signals of `signal_fd` (see [`block_signals`]) in
    /// [`Transport::receive`]: SIGUSR1 gives [`Incoming::Stats`], SIGINT/SIGTERM
    /// [`Incoming::Shutdown`].
    pub fn with_signals(mut self, signal_fd: SignalFd) -> Device {
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
        loop {
            let mut fds = vec![PollFd::new(self.file.as_fd(), PollFlags::POLLIN)];
            if let Some(s) = &self.signals {
                fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let device = fds[0].revents().unwrap_or(PollFlags::empty());
            let signalled = fds
                .get(1)
                .and_then(|f| f.revents())
                .is_some_and(|r| r.contains(PollFlags::POLLIN));
            if let (true, Some(signals)) = (signalled, &self.signals) {
                match signals.read_signal() {
                    Ok(Some(info)) => match Signal::try_from(info.ssi_signo as i32) {
                        Ok(Signal::SIGUSR1) => return Ok(Incoming::Stats),
                        Ok(Signal::SIGINT | Signal::SIGTERM) => return Ok(Incoming::Shutdown),
                        _ => {}
                    },
                    Ok(None) | Err(Errno::EAGAIN | Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if device.contains(PollFlags::POLLIN) {
                match (&self.file).read(buf) {
                    Ok(0) => {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the device closed the connection",
                        ))
                    }
                    Ok(n) => return Ok(Incoming::Message(n)),
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                        ) =>
                    {
                        continue
                    }
                    Err(e) => return Err(e),
                }
            }
            if device.intersects(PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL) {
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    format!("the device reported an error (poll revents {device:?})"),
                ));
            }
        }
    }

    fn complete(&self, completion: &Completion) -> io::Result<()> {
        let payload = completion.encode();
        loop {
            // SAFETY: IOC_COMPLETE reads one `struct daedalus_completion` of
            // Completion::SIZE bytes, which `payload` is.
            match unsafe { ioctl::complete(self.file.as_raw_fd(), &payload) } {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Blocks `signals` in the calling thread (and so in every thread it creates afterwards) and
/// returns a signalfd that reads them. Call it before starting any thread.
pub fn block_signals(signals: &[Signal]) -> io::Result<SignalFd> {
    let mut set = SigSet::empty();
    for &s in signals {
        set.add(s);
    }
    set.thread_block()?;
    Ok(SignalFd::with_flags(
        &set,
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::OwnedFd;

    /// A device over one end of a SOCK_SEQPACKET pair, which keeps message boundaries as the
    /// chardev's read() does.
    fn fake() -> (Device, OwnedFd) {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        )
        .unwrap();
        let dev = Device {
            file: File::from(a),
            signals: None,
            hello: Hello::default(),
        };
        (dev, b)
    }

    #[test]
    fn receive_messages_signals_and_eof() {
        let (dev, peer) = fake();
        let sig = block_signals(&[Signal::SIGUSR1]).unwrap();
        let dev = dev.with_signals(sig);
        let send = |m: &[u8]| {
            assert_eq!(nix::unistd::write(&peer, m).unwrap(), m.len());
        };
        send(&[1, 2, 3]);
        send(&[4; 100]);
        let mut buf = vec![0u8; MAX_MESSAGE_SIZE];
        assert_eq!(dev.receive(&mut buf).unwrap(), Incoming::Message(3));
        assert_eq!(&buf[..3], &[1, 2, 3]);
        assert_eq!(dev.receive(&mut buf).unwrap(), Incoming::Message(100));
        // SIGUSR1 to this thread, where it is blocked and so stays pending for the signalfd.
        nix::sys::pthread::pthread_kill(nix::sys::pthread::pthread_self(), Signal::SIGUSR1)
            .unwrap();
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
