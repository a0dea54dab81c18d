// SPDX-License-Identifier: GPL-2.0
//! IVF files (the container of the libvpx tools and of most VP9/AV1 test vectors): a 32-byte
//! file header, then per frame a 12-byte header (size, timestamp) and the data. The one reader
//! and writer of the workspace: the tools read streams with it, the daemon writes its packet
//! dumps with it, tests find vectors with [`files_under`] and split them with [`frames`].
//!
//! Not the `ivf` crate (0.1.4): its writer always writes the `AV01` fourcc and panics on I/O
//! errors, and its reader allocates whatever size a frame header announces — untrusted input
//! could ask for 4 GiB; this reader bounds frames by [`MAX_FRAME_SIZE`] and says where a file
//! is truncated.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The first four bytes of an IVF file.
pub const SIGNATURE: &[u8; 4] = b"DKIF";

/// Largest frame this reader accepts (a bound against corrupt size fields).
pub const MAX_FRAME_SIZE: usize = 256 << 20;

/// Errors of the IVF reader.
#[derive(Debug, thiserror::Error)]
pub enum IvfError {
    /// Reading failed.
    #[error("read error: {0}")]
    Io(#[from] io::Error),
    /// Not an IVF file.
    #[error("not an IVF file (no DKIF signature)")]
    NotIvf,
    /// The file header is shorter than 32 bytes.
    #[error("IVF header length {0} is below 32")]
    BadHeaderLength(u16),
    /// A frame header announces an absurd size.
    #[error("frame {index}: size {size} is larger than {MAX_FRAME_SIZE} bytes")]
    FrameTooLarge {
        /// Frame number (from 0).
        index: u64,
        /// The announced size.
        size: u64,
    },
    /// The file ends inside a frame.
    #[error("frame {index}: the file ends inside the frame")]
    Truncated {
        /// Frame number (from 0).
        index: u64,
    },
}

/// The IVF file header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IvfHeader {
    /// Codec fourcc (`VP90`, `AV01`, ...).
    pub fourcc: [u8; 4],
    /// Width of the stream as the muxer saw it.
    pub width: u16,
    /// Height of the stream as the muxer saw it.
    pub height: u16,
    /// Time base denominator (libvpx calls it the rate): timestamps count `num / den` seconds.
    pub timebase_den: u32,
    /// Time base numerator (the scale).
    pub timebase_num: u32,
    /// Number of frames the muxer wrote (often 0 or wrong; informational).
    pub frame_count: u32,
}

impl IvfHeader {
    /// The fourcc as text.
    pub fn fourcc_str(&self) -> String {
        String::from_utf8_lossy(&self.fourcc).into_owned()
    }
}

/// One frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IvfFrame {
    /// Frame number in the file (from 0).
    pub index: u64,
    /// Presentation timestamp, in time base units.
    pub pts: i64,
}

/// Reads an IVF stream frame by frame into a caller-provided buffer.
#[derive(Debug)]
pub struct IvfReader<R> {
    inner: R,
    header: IvfHeader,
    next_index: u64,
}

fn u16_le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl<R: Read> IvfReader<R> {
    /// Reads the file header.
    pub fn new(mut inner: R) -> Result<Self, IvfError> {
        let mut h = [0u8; 32];
        match inner.read_exact(&mut h) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(IvfError::NotIvf),
            Err(e) => return Err(e.into()),
        }
        if &h[0..4] != SIGNATURE {
            return Err(IvfError::NotIvf);
        }
        let header_len = u16_le(&h, 6);
        if header_len < 32 {
            return Err(IvfError::BadHeaderLength(header_len));
        }
        // Skip any extension of the header.
        io::copy(
            &mut (&mut inner).take(u64::from(header_len - 32)),
            &mut io::sink(),
        )?;
        let header = IvfHeader {
            fourcc: [h[8], h[9], h[10], h[11]],
            width: u16_le(&h, 12),
            height: u16_le(&h, 14),
            timebase_den: u32_le(&h, 16),
            timebase_num: u32_le(&h, 20),
            frame_count: u32_le(&h, 24),
        };
        Ok(IvfReader {
            inner,
            header,
            next_index: 0,
        })
    }

    /// The file header.
    pub fn header(&self) -> &IvfHeader {
        &self.header
    }

    /// Reads the next frame into `buf` (replacing its contents, reusing its allocation).
    /// `None` at the end of the file.
    pub fn next_frame(&mut self, buf: &mut Vec<u8>) -> Result<Option<IvfFrame>, IvfError> {
        let index = self.next_index;
        let mut fh = [0u8; 12];
        // A clean end of file is only allowed between frames.
        let mut got = 0;
        while got < fh.len() {
            match self.inner.read(&mut fh[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err(IvfError::Truncated { index }),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        let size = u64::from(u32_le(&fh, 0));
        let pts = i64::from_le_bytes([fh[4], fh[5], fh[6], fh[7], fh[8], fh[9], fh[10], fh[11]]);
        let size_usize = usize::try_from(size)
            .ok()
            .filter(|&s| s <= MAX_FRAME_SIZE)
            .ok_or(IvfError::FrameTooLarge { index, size })?;
        buf.clear();
        let read = (&mut self.inner).take(size).read_to_end(buf)?;
        if read != size_usize {
            return Err(IvfError::Truncated { index });
        }
        self.next_index += 1;
        Ok(Some(IvfFrame { index, pts }))
    }
}

/// The frames of an IVF file in memory: (timestamp, data) each, borrowed from the file.
pub type Frames<'a> = Vec<(i64, &'a [u8])>;

/// Splits a whole IVF file held in memory into its header and frames.
pub fn frames(data: &[u8]) -> Result<(IvfHeader, Frames<'_>), IvfError> {
    let mut reader = IvfReader::new(data)?;
    let header = reader.header;
    let header_len = usize::from(u16_le(data, 6));
    let mut at = header_len;
    let mut out = Vec::new();
    let mut scratch = Vec::new();
    while let Some(frame) = reader.next_frame(&mut scratch)? {
        at += 12;
        out.push((frame.pts, &data[at..at + scratch.len()]));
        at += scratch.len();
    }
    Ok((header, out))
}

/// Writes an IVF file header (for tests and tools that produce IVF).
pub fn write_header(out: &mut impl io::Write, h: &IvfHeader) -> io::Result<()> {
    out.write_all(SIGNATURE)?;
    out.write_all(&0u16.to_le_bytes())?;
    out.write_all(&32u16.to_le_bytes())?;
    out.write_all(&h.fourcc)?;
    out.write_all(&h.width.to_le_bytes())?;
    out.write_all(&h.height.to_le_bytes())?;
    out.write_all(&h.timebase_den.to_le_bytes())?;
    out.write_all(&h.timebase_num.to_le_bytes())?;
    out.write_all(&h.frame_count.to_le_bytes())?;
    out.write_all(&0u32.to_le_bytes())
}

/// Writes one IVF frame.
pub fn write_frame(out: &mut impl io::Write, pts: i64, data: &[u8]) -> io::Result<()> {
    let size = u32::try_from(data.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large for IVF"))?;
    out.write_all(&size.to_le_bytes())?;
    out.write_all(&pts.to_le_bytes())?;
    out.write_all(data)
}

/// The IVF files in `dir` and its subdirectories, sorted. Files are recognised by their
/// signature, not their name (`test-25fps.vp9` is IVF too).
pub fn files_under(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if is_ivf(&path)? {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Whether the file at `path` starts with the IVF [`SIGNATURE`].
fn is_ivf(path: &Path) -> io::Result<bool> {
    let mut start = [0u8; 4];
    match fs::File::open(path)?.read_exact(&mut start) {
        Ok(()) => Ok(&start == SIGNATURE),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut v = Vec::new();
        let h = IvfHeader {
            fourcc: *b"VP90",
            width: 352,
            height: 288,
            timebase_den: 30,
            timebase_num: 1,
            frame_count: 2,
        };
        write_header(&mut v, &h).unwrap();
        write_frame(&mut v, 0, &[1, 2, 3]).unwrap();
        write_frame(&mut v, 7, &[4]).unwrap();
        v
    }

    #[test]
    fn round_trip() {
        let data = sample();
        let mut r = IvfReader::new(&data[..]).unwrap();
        assert_eq!(r.header().fourcc_str(), "VP90");
        assert_eq!((r.header().width, r.header().height), (352, 288));
        assert_eq!((r.header().timebase_num, r.header().timebase_den), (1, 30));
        let mut buf = Vec::new();
        assert_eq!(
            r.next_frame(&mut buf).unwrap(),
            Some(IvfFrame { index: 0, pts: 0 })
        );
        assert_eq!(buf, [1, 2, 3]);
        assert_eq!(
            r.next_frame(&mut buf).unwrap(),
            Some(IvfFrame { index: 1, pts: 7 })
        );
        assert_eq!(buf, [4]);
        assert_eq!(r.next_frame(&mut buf).unwrap(), None);
    }

    #[test]
    fn frames_in_memory() {
        let data = sample();
        let (header, frames) = frames(&data).unwrap();
        assert_eq!(&header.fourcc, b"VP90");
        assert_eq!(frames, [(0, &[1u8, 2, 3][..]), (7, &[4u8][..])]);
        assert!(matches!(
            super::frames(&data[..data.len() - 1]),
            Err(IvfError::Truncated { index: 1 })
        ));
    }

    #[test]
    fn files_by_signature_in_subdirectories() {
        let dir = std::env::temp_dir().join(format!("daedalus-ivf-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("sub/deeper")).unwrap();
        for (name, bytes) in [
            ("b.ivf", sample()),
            ("sub/deeper/a.vp9", sample()),
            ("sub/short.ivf", b"DK".to_vec()),
            ("sub/other.ivf", b"RIFF....".to_vec()),
        ] {
            fs::write(dir.join(name), bytes).unwrap();
        }
        let found = files_under(&dir);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            found.unwrap(),
            [dir.join("b.ivf"), dir.join("sub/deeper/a.vp9")]
        );
        assert!(files_under(&dir).is_err());
    }

    #[test]
    fn errors() {
        assert!(matches!(
            IvfReader::new(&b"RIFF"[..]),
            Err(IvfError::NotIvf)
        ));
        let mut bad = sample();
        bad[0] = b'X';
        assert!(matches!(IvfReader::new(&bad[..]), Err(IvfError::NotIvf)));
        let data = sample();
        // Cut inside the second frame's header, then inside its data.
        for cut in [data.len() - 5, data.len() - 1] {
            let mut r = IvfReader::new(&data[..cut]).unwrap();
            let mut buf = Vec::new();
            r.next_frame(&mut buf).unwrap();
            assert!(matches!(
                r.next_frame(&mut buf),
                Err(IvfError::Truncated { index: 1 })
            ));
        }
        let mut huge = sample();
        huge.truncate(32);
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&0i64.to_le_bytes());
        let mut r = IvfReader::new(&huge[..]).unwrap();
        assert!(matches!(
            r.next_frame(&mut Vec::new()),
            Err(IvfError::FrameTooLarge { .. })
        ));
    }
}
