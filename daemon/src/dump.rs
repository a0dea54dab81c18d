// SPDX-License-Identifier: GPL-2.0
//! `daedalusd --dump-dir DIR`: every packet a context's decoder is given, written to a file that
//! FFmpeg reads back (`ffmpeg -i FILE -c copy -bsf:v trace_headers -f null -`, or decode it).
//! For a client that sends only slices (H.264) or tile payloads (AV1, GStreamer), this is the
//! bitstream the daemon rebuilt from the request's controls, i.e. what to compare with the
//! original stream when a picture differs. A debugging aid: it allocates and writes per frame.
//!
//! VP9 and AV1 go to IVF files (one IVF frame per packet, the frame's pts as timestamp), H.264
//! to an Annex-B elementary stream (the packets already carry start codes). One file per
//! decoder: `<pid>-<n>.<codec>.{ivf,h264}`.
//!
//! The directory is opened once at start ([`DumpDir::open`]), before the daemon sandboxes
//! itself; the files are created relative to that descriptor (`openat(dirfd, NAME)`), the only
//! `openat` the seccomp filter lets through (see [`crate::sandbox`]).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;

use daedalus_codecs::ivf;
use daedalus_proto::formats::Codec;

/// Decoders created so far by this process (the file name's `<n>`).
static DECODERS: AtomicU32 = AtomicU32::new(0);

/// The directory of `--dump-dir`, opened before the sandbox is entered.
#[derive(Debug)]
pub struct DumpDir {
    path: PathBuf,
    fd: OwnedFd,
}

impl DumpDir {
    /// Opens `path` (a directory) for creating dump files in it later.
    pub fn open(path: &Path) -> io::Result<DumpDir> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_DIRECTORY | OFlag::O_PATH | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        // SAFETY: `open` returned a new descriptor that nothing else owns.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        Ok(DumpDir {
            path: path.to_path_buf(),
            fd,
        })
    }

    /// The directory's descriptor (what the seccomp filter allows `openat` on).
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }

    /// The directory's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates (or truncates) the file `name` in the directory.
    fn create(&self, name: &str) -> io::Result<File> {
        let fd = openat(
            Some(self.fd.as_raw_fd()),
            name,
            OFlag::O_WRONLY
                | OFlag::O_CREAT
                | OFlag::O_TRUNC
                | OFlag::O_CLOEXEC
                | OFlag::O_NOFOLLOW,
            Mode::from_bits_truncate(0o644),
        )?;
        // SAFETY: `openat` returned a new descriptor that nothing else owns.
        Ok(unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) })
    }
}

/// The packet dump of one decoder.
pub struct PacketDump {
    out: BufWriter<File>,
    ivf: bool,
    path: std::path::PathBuf,
}

impl PacketDump {
    /// Creates the dump file of a new `codec` decoder in `dir`; None (logged) if `dir` is None
    /// or the file cannot be created: a dump never fails decoding.
    pub fn create(dir: Option<&DumpDir>, codec: Codec) -> Option<PacketDump> {
        let dir = dir?;
        let n = DECODERS.fetch_add(1, Ordering::Relaxed);
        let (name, ext, fourcc) = match codec {
            Codec::Vp9 => ("vp9", "ivf", Some(*b"VP90")),
            Codec::Av1 => ("av1", "ivf", Some(*b"AV01")),
            Codec::H264 => ("h264", "h264", None),
        };
        let file = format!("{}-{n}.{name}.{ext}", std::process::id());
        let path = dir.path.join(&file);
        let mut out = match dir.create(&file) {
            Ok(f) => BufWriter::new(f),
            Err(e) => {
                log::warn!("cannot create the packet dump {}: {e}", path.display());
                return None;
            }
        };
        if let Some(fourcc) = fourcc {
            // Size and frame count unknown: readers take them from the bitstream and the file
            // length. Time base 1/1000.
            let header = ivf::IvfHeader {
                fourcc,
                width: 0,
                height: 0,
                timebase_den: 1000,
                timebase_num: 1,
                frame_count: 0,
            };
            if let Err(e) = ivf::write_header(&mut out, &header) {
                log::warn!("cannot write the packet dump {}: {e}", path.display());
                return None;
            }
        }
        log::info!(
            "dumping the packets of a {name} decoder to {}",
            path.display()
        );
        Some(PacketDump {
            out,
            ivf: fourcc.is_some(),
            path,
        })
    }

    /// Appends one packet (`pts`: the decoder's packet sequence number).
    pub fn packet(&mut self, data: &[u8], pts: i64) {
        let r = (|| {
            if self.ivf {
                ivf::write_frame(&mut self.out, pts, data)?;
            } else {
                self.out.write_all(data)?;
            }
            // Flushed per packet: the dump is read while (or after) the daemon dies.
            self.out.flush()
        })();
        if let Err(e) = r {
            log::warn!("cannot write the packet dump {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ivf_dump_has_header_and_frames() {
        let dir = std::env::temp_dir().join(format!("daedalus-dump-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let dump_dir = DumpDir::open(&dir).expect("dump dir");
        let mut d = PacketDump::create(Some(&dump_dir), Codec::Av1).expect("dump");
        d.packet(&[1, 2, 3], 7);
        d.packet(&[4], 8);
        let bytes = std::fs::read(&d.path).expect("read back");
        assert_eq!(&bytes[..4], b"DKIF");
        assert_eq!(&bytes[8..12], b"AV01");
        assert_eq!(&bytes[32..36], &3u32.to_le_bytes());
        assert_eq!(&bytes[36..44], &7i64.to_le_bytes());
        assert_eq!(&bytes[44..47], &[1, 2, 3]);
        assert_eq!(bytes.len(), 32 + 12 + 3 + 12 + 1);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn no_dir_no_dump() {
        assert!(PacketDump::create(None, Codec::H264).is_none());
    }
}
