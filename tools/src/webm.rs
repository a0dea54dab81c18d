// SPDX-License-Identifier: GPL-2.0
//! A reader of VP9 video in WebM (and Matroska) files, frame by frame, with the same shape as
//! the [IVF reader](crate::ivf): [`WebmReader::new`] reads the file headers and picks the first
//! VP9 video track, [`WebmReader::next_frame`] reads that track's frames in file order.
//!
//! Matroska is EBML: a tree of elements, each an ID, a size and a body, IDs and sizes being
//! variable-length integers ("vints"). The reader is a forward-only streaming parser (it needs
//! [`Read`] only, so it works on pipes), and only reads what a decoder needs:
//!
//! * the EBML header (DocType `webm` or `matroska`);
//! * the first Segment, and in it `Info` (`TimecodeScale`, 1 ms by default) and `Tracks`
//!   (`TrackNumber`, `TrackType`, `CodecID`, `PixelWidth` / `PixelHeight`), which must come
//!   before the first Cluster (as WebM requires);
//! * Clusters (`Timecode`, `SimpleBlock`, `BlockGroup` / `Block`): the blocks of the VP9 track
//!   become frames, the blocks of every other track are skipped without being buffered.
//!
//! Everything else (SeekHead, Cues, Tags, Chapters, Attachments, Void, CRC-32, unknown IDs) is
//! skipped. A Segment or a Cluster may have an unknown size, as live WebM (FFmpeg writing to a
//! pipe, browsers' MediaRecorder) has: an unknown-size Cluster ends where an element that cannot
//! be one of its children starts (the next Cluster, Cues, ...), an unknown-size Segment at the
//! end of the file. Only the first Segment is read.
//!
//! Lacing (several frames in one block) is rejected with [`WebmError::Laced`] on the VP9 track:
//! WebM does not lace video, and laced frames would have no timestamps of their own. Tracks with
//! `ContentEncodings` (compression, encryption) are rejected as well.
//!
//! Malformed input never panics: every size is checked against its parent's, a file that ends
//! inside an element gives [`WebmError::Truncated`] (a file that ends between two Clusters, or
//! between two blocks of an unknown-size Cluster, ends cleanly), headers are bounded by
//! [`MAX_HEADER_ELEMENT_SIZE`] and frames by [`MAX_FRAME_SIZE`], and no buffer is sized from a
//! size field before the data is there.

use std::io::{self, Read};

use crate::ffmpeg_timing::Rational;

/// Largest frame this reader accepts (a bound against corrupt size fields).
pub const MAX_FRAME_SIZE: usize = 64 << 20;

/// Largest header element (EBML header, Info, Tracks) this reader loads into memory.
pub const MAX_HEADER_ELEMENT_SIZE: u64 = 16 << 20;

/// The Matroska codec ID of VP9.
pub const VP9_CODEC_ID: &str = "V_VP9";
/// Matroska codec ID of AV1 (the first VP9 or AV1 video track is read).
pub const AV1_CODEC_ID: &str = "V_AV1";
/// Matroska codec ID of H.264 in MP4 form: length-prefixed NAL units in the blocks, the
/// `AVCDecoderConfigurationRecord` (`avcC`) as `CodecPrivate` (read with
/// [`WebmReader::with_codecs`]).
pub const H264_CODEC_ID: &str = "V_MPEG4/ISO/AVC";

/// Default `TimecodeScale`: timestamps in milliseconds.
pub const DEFAULT_TIMECODE_SCALE: u64 = 1_000_000;

/// Element IDs (with their length marker, as written in the file).
mod id {
    pub const EBML: u32 = 0x1A45_DFA3;
    pub const DOC_TYPE: u32 = 0x4282;
    pub const SEGMENT: u32 = 0x1853_8067;
    pub const SEEK_HEAD: u32 = 0x114D_9B74;
    pub const INFO: u32 = 0x1549_A966;
    pub const TIMECODE_SCALE: u32 = 0x2A_D7B1;
    pub const TRACKS: u32 = 0x1654_AE6B;
    pub const TRACK_ENTRY: u32 = 0xAE;
    pub const TRACK_NUMBER: u32 = 0xD7;
    pub const TRACK_TYPE: u32 = 0x83;
    pub const CODEC_ID: u32 = 0x86;
    pub const CODEC_PRIVATE: u32 = 0x63A2;
    pub const DEFAULT_DURATION: u32 = 0x23_E383;
    pub const CONTENT_ENCODINGS: u32 = 0x6D80;
    pub const VIDEO: u32 = 0xE0;
    pub const PIXEL_WIDTH: u32 = 0xB0;
    pub const PIXEL_HEIGHT: u32 = 0xBA;
    pub const CLUSTER: u32 = 0x1F43_B675;
    pub const TIMECODE: u32 = 0xE7;
    pub const SIMPLE_BLOCK: u32 = 0xA3;
    pub const BLOCK_GROUP: u32 = 0xA0;
    pub const BLOCK: u32 = 0xA1;
    pub const REFERENCE_BLOCK: u32 = 0xFB;
    pub const CUES: u32 = 0x1C53_BB6B;
    pub const TAGS: u32 = 0x1254_C367;
    pub const CHAPTERS: u32 = 0x1043_A770;
    pub const ATTACHMENTS: u32 = 0x1941_A469;
}

/// Matroska `TrackType` of video tracks.
const TRACK_TYPE_VIDEO: u64 = 1;

/// Errors of the WebM reader.
#[derive(Debug, thiserror::Error)]
pub enum WebmError {
    /// Reading failed.
    #[error("read error: {0}")]
    Io(#[from] io::Error),
    /// Not an EBML file.
    #[error("not a WebM/Matroska file (no EBML header)")]
    NotWebm,
    /// An EBML file of another kind.
    #[error("EBML document type {0:?} is neither \"webm\" nor \"matroska\"")]
    DocType(String),
    /// The file ends inside an element.
    #[error("the file ends inside {what} (at byte {offset})")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Offset of the element (or of the part of it) being read.
        offset: u64,
    },
    /// The structure is invalid.
    #[error("malformed file at byte {offset}: {reason}")]
    Malformed {
        /// Offset of the faulty element.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A header element is too large to be loaded.
    #[error("{name} element of {size} bytes is larger than {MAX_HEADER_ELEMENT_SIZE} bytes")]
    ElementTooLarge {
        /// The element name.
        name: &'static str,
        /// Its announced size.
        size: u64,
    },
    /// There is no Segment.
    #[error("the file has no Segment")]
    NoSegment,
    /// There is no Tracks element before the first Cluster.
    #[error("no Tracks element before the first Cluster")]
    NoTracks,
    /// No video track of the wanted codecs (VP9 or AV1 for [`WebmReader::new`]).
    #[error("no {} video track; tracks found: {}", .wanted.join(" or "), codec_list(.found))]
    NoVp9Track {
        /// The codec IDs looked for.
        wanted: Vec<String>,
        /// The codec IDs of the tracks of the file.
        found: Vec<String>,
    },
    /// The VP9 track is compressed or encrypted.
    #[error(
        "VP9 track {track} uses content encoding (compression or encryption), which is not supported"
    )]
    ContentEncoding {
        /// Track number.
        track: u64,
    },
    /// A block announces an absurd size.
    #[error("frame {index}: size {size} is larger than {MAX_FRAME_SIZE} bytes")]
    FrameTooLarge {
        /// Frame number (from 0).
        index: u64,
        /// The announced size.
        size: u64,
    },
    /// A block of the VP9 track holds several laced frames.
    #[error(
        "frame {index}: the block at byte {offset} is laced (several frames in one block), \
         which is not supported for video"
    )]
    Laced {
        /// Frame number (from 0).
        index: u64,
        /// Offset of the block element.
        offset: u64,
    },
    /// A block comes before the `Timecode` of its Cluster.
    #[error("frame {index}: the block at byte {offset} comes before its Cluster's Timecode")]
    MissingClusterTimecode {
        /// Frame number (from 0).
        index: u64,
        /// Offset of the block element.
        offset: u64,
    },
}

fn codec_list(found: &[String]) -> String {
    if found.is_empty() {
        "none".to_owned()
    } else {
        found.join(", ")
    }
}

fn truncated_at(what: &'static str, offset: u64) -> WebmError {
    WebmError::Truncated { what, offset }
}

fn malformed(offset: u64, reason: impl Into<String>) -> WebmError {
    WebmError::Malformed {
        offset,
        reason: reason.into(),
    }
}

/// What the headers say about the file and its VP9 track.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebmHeader {
    /// EBML document type: `webm` or `matroska`.
    pub doc_type: String,
    /// `TimecodeScale`: nanoseconds per timestamp unit.
    pub timecode_scale: u64,
    /// Number of the VP9 track (in blocks).
    pub track_number: u64,
    /// Codec ID of the track (`V_VP9`).
    pub codec_id: String,
    /// `PixelWidth` of the track (0 if absent).
    pub width: u32,
    /// `PixelHeight` of the track (0 if absent).
    pub height: u32,
    /// `DefaultDuration` of the track's frames in nanoseconds, if given.
    pub default_duration_ns: Option<u64>,
    /// The track's `CodecPrivate` (empty if absent): the `avcC` record of H.264.
    pub codec_private: Vec<u8>,
}

impl WebmHeader {
    /// The time base of [`WebmFrame::pts`] (`TimecodeScale` nanoseconds), in seconds: 1/1000
    /// for the default scale.
    pub fn timebase(&self) -> Rational {
        const NS: u64 = 1_000_000_000;
        let g = gcd(self.timecode_scale, NS);
        // The scale is checked to be in 1..=i64::MAX when it is read.
        Rational::new(
            i64::try_from(self.timecode_scale / g).unwrap_or(i64::MAX),
            i64::try_from(NS / g).unwrap_or(1),
        )
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

/// One frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WebmFrame {
    /// Frame number in the track (from 0).
    pub index: u64,
    /// Presentation timestamp in `TimecodeScale` units (Cluster timecode + block timecode); see
    /// [`WebmHeader::timebase`].
    pub pts: i64,
    /// Presentation timestamp in nanoseconds.
    pub pts_ns: i64,
    /// The block says it is a key frame (SimpleBlock flag, or a BlockGroup without
    /// ReferenceBlock).
    pub keyframe: bool,
}

/// An element header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Element {
    /// The ID, with its length marker.
    id: u32,
    /// The body size; `None` when unknown (all ones).
    size: Option<u64>,
    /// Offset of the ID.
    offset: u64,
    /// Offset of the body.
    body: u64,
}

impl Element {
    /// Offset of the end of the body, when the size is known.
    fn end(&self) -> Option<u64> {
        self.size.map(|s| self.body.saturating_add(s))
    }

    /// The size, or an error when it is unknown (only Segments and Clusters may have one).
    fn known_size(&self) -> Result<u64, WebmError> {
        self.size.ok_or_else(|| {
            malformed(
                self.offset,
                format!("element {:#X} has an unknown size", self.id),
            )
        })
    }
}

/// Length in bytes (1..=8) of a vint from its first byte; `None` for 0x00 (invalid).
fn vint_len(first: u8) -> Option<usize> {
    (first != 0).then(|| first.leading_zeros() as usize + 1)
}

/// Value of a complete vint (`bytes.len()` being its length), length marker removed. `None`
/// when all its value bits are ones: the reserved "unknown size".
fn vint_value(bytes: &[u8]) -> Option<u64> {
    let len = bytes.len();
    let (&first, rest) = bytes.split_first()?;
    if len > 8 {
        return None;
    }
    let mut v = u64::from(first) & ((1u64 << (8 - len)) - 1);
    for &b in rest {
        v = (v << 8) | u64::from(b);
    }
    (v != (1u64 << (7 * len)) - 1).then_some(v)
}

/// Value of a complete vint with its length marker removed, all-ones values included (block
/// track numbers).
fn vint_raw(bytes: &[u8]) -> u64 {
    let len = bytes.len().clamp(1, 8);
    let mut v = 0u64;
    for &b in bytes.iter().take(8) {
        v = (v << 8) | u64::from(b);
    }
    v & ((1u64 << (7 * len)) - 1)
}

/// Unsigned integer element body (0 to 8 bytes, big-endian).
fn parse_uint(body: &[u8], offset: u64) -> Result<u64, WebmError> {
    if body.len() > 8 {
        return Err(malformed(
            offset,
            format!("integer of {} bytes (at most 8)", body.len()),
        ));
    }
    Ok(body.iter().fold(0, |v, &b| (v << 8) | u64::from(b)))
}

/// String element body (ASCII / UTF-8, possibly NUL-padded).
fn parse_string(body: &[u8]) -> String {
    let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
    String::from_utf8_lossy(&body[..end]).into_owned()
}

/// Iterates over the child elements of a body held in memory.
struct Children<'a> {
    data: &'a [u8],
    pos: usize,
    /// File offset of `data[0]`.
    base: u64,
}

impl<'a> Children<'a> {
    fn new(data: &'a [u8], base: u64) -> Self {
        Children { data, pos: 0, base }
    }

    fn vint(&mut self, what: &str, max_len: usize) -> Result<&'a [u8], WebmError> {
        let offset = self.base + self.pos as u64;
        let first = *self
            .data
            .get(self.pos)
            .ok_or_else(|| malformed(offset, format!("{what} overflows its parent element")))?;
        let len = vint_len(first)
            .filter(|&l| l <= max_len)
            .ok_or_else(|| malformed(offset, format!("invalid {what}")))?;
        let bytes = self
            .data
            .get(self.pos..self.pos + len)
            .ok_or_else(|| malformed(offset, format!("{what} overflows its parent element")))?;
        self.pos += len;
        Ok(bytes)
    }

    /// The next child: ID, body, offset of the body.
    fn next_child(&mut self) -> Result<(u32, &'a [u8], u64), WebmError> {
        let offset = self.base + self.pos as u64;
        let id = id_value(self.vint("element ID", 4)?);
        let size = vint_value(self.vint("element size", 8)?)
            .ok_or_else(|| malformed(offset, format!("element {id:#X} has an unknown size")))?;
        let body_offset = self.base + self.pos as u64;
        let body = usize::try_from(size)
            .ok()
            .and_then(|s| self.data.get(self.pos..self.pos.checked_add(s)?))
            .ok_or_else(|| {
                malformed(
                    offset,
                    format!("element {id:#X} of {size} bytes overflows its parent element"),
                )
            })?;
        self.pos += body.len();
        Ok((id, body, body_offset))
    }
}

impl<'a> Iterator for Children<'a> {
    type Item = Result<(u32, &'a [u8], u64), WebmError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.data.len() {
            return None;
        }
        let child = self.next_child();
        if child.is_err() {
            self.pos = self.data.len();
        }
        Some(child)
    }
}

fn id_value(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0, |v, &b| (v << 8) | u32::from(b))
}

/// A track entry, as much of it as matters here.
#[derive(Debug, Default)]
struct Track {
    /// Offset of the TrackEntry body.
    offset: u64,
    number: Option<u64>,
    track_type: Option<u64>,
    codec_id: Option<String>,
    codec_private: Option<Vec<u8>>,
    width: Option<u64>,
    height: Option<u64>,
    default_duration: Option<u64>,
    content_encoded: bool,
}

fn parse_track(body: &[u8], base: u64) -> Result<Track, WebmError> {
    let mut t = Track {
        offset: base,
        ..Track::default()
    };
    for child in Children::new(body, base) {
        let (id, b, off) = child?;
        match id {
            id::TRACK_NUMBER => t.number = Some(parse_uint(b, off)?),
            id::TRACK_TYPE => t.track_type = Some(parse_uint(b, off)?),
            id::CODEC_ID => t.codec_id = Some(parse_string(b)),
            id::CODEC_PRIVATE => t.codec_private = Some(b.to_vec()),
            id::DEFAULT_DURATION => t.default_duration = Some(parse_uint(b, off)?),
            id::CONTENT_ENCODINGS => t.content_encoded = true,
            id::VIDEO => {
                for child in Children::new(b, off) {
                    let (id, b, off) = child?;
                    match id {
                        id::PIXEL_WIDTH => t.width = Some(parse_uint(b, off)?),
                        id::PIXEL_HEIGHT => t.height = Some(parse_uint(b, off)?),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(t)
}

fn parse_tracks(body: &[u8], base: u64) -> Result<Vec<Track>, WebmError> {
    let mut tracks = Vec::new();
    for child in Children::new(body, base) {
        let (id, b, off) = child?;
        if id == id::TRACK_ENTRY {
            tracks.push(parse_track(b, off)?);
        }
    }
    Ok(tracks)
}

fn parse_info(body: &[u8], base: u64) -> Result<u64, WebmError> {
    let mut scale = DEFAULT_TIMECODE_SCALE;
    for child in Children::new(body, base) {
        let (id, b, off) = child?;
        if id == id::TIMECODE_SCALE {
            scale = parse_uint(b, off)?;
            if scale == 0 || i64::try_from(scale).is_err() {
                return Err(malformed(off, format!("invalid TimecodeScale {scale}")));
            }
        }
    }
    Ok(scale)
}

/// Whether an element can end an unknown-size Cluster (it cannot be one of its children).
fn ends_cluster(id: u32) -> bool {
    matches!(
        id,
        id::CLUSTER
            | id::CUES
            | id::TAGS
            | id::CHAPTERS
            | id::ATTACHMENTS
            | id::SEEK_HEAD
            | id::INFO
            | id::TRACKS
            | id::EBML
            | id::SEGMENT
    )
}

/// The Cluster being read.
#[derive(Clone, Copy, Debug)]
struct Cluster {
    /// End offset; `None` for an unknown size.
    end: Option<u64>,
    /// Its `Timecode`, once read.
    timecode: Option<u64>,
}

/// Reads the VP9 frames of a WebM stream into a caller-provided buffer.
#[derive(Debug)]
pub struct WebmReader<R> {
    inner: R,
    /// Offset of the next byte of `inner`.
    pos: u64,
    header: WebmHeader,
    /// End of the Segment; `None` for an unknown size.
    segment_end: Option<u64>,
    /// The Cluster being read.
    cluster: Option<Cluster>,
    /// A Segment child whose header has been read already.
    pending: Option<Element>,
    next_index: u64,
    finished: bool,
}

impl<R: Read> WebmReader<R> {
    /// Reads the headers up to the first Cluster and picks the first VP9 or AV1 video track.
    pub fn new(inner: R) -> Result<Self, WebmError> {
        Self::with_codecs(inner, &[VP9_CODEC_ID, AV1_CODEC_ID])
    }

    /// Reads the headers up to the first Cluster and picks the first video track whose
    /// `CodecID` is one of `codec_ids`.
    pub fn with_codecs(inner: R, codec_ids: &[&str]) -> Result<Self, WebmError> {
        let mut r = WebmReader {
            inner,
            pos: 0,
            header: WebmHeader {
                doc_type: String::new(),
                timecode_scale: DEFAULT_TIMECODE_SCALE,
                track_number: 0,
                codec_id: String::new(),
                width: 0,
                height: 0,
                default_duration_ns: None,
                codec_private: Vec::new(),
            },
            segment_end: None,
            cluster: None,
            pending: None,
            next_index: 0,
            finished: false,
        };

        // The EBML header.
        let ebml = match r.read_element(false) {
            Ok(Some(e)) if e.id == id::EBML => e,
            Ok(_) | Err(WebmError::Truncated { .. } | WebmError::Malformed { .. }) => {
                return Err(WebmError::NotWebm)
            }
            Err(e) => return Err(e),
        };
        let body = r.read_body(&ebml, "EBML header")?;
        let mut doc_type = None;
        for child in Children::new(&body, ebml.body) {
            let (id, b, _) = child?;
            if id == id::DOC_TYPE {
                doc_type = Some(parse_string(b));
            }
        }
        let doc_type = doc_type.ok_or_else(|| malformed(ebml.offset, "no DocType"))?;
        if doc_type != "webm" && doc_type != "matroska" {
            return Err(WebmError::DocType(doc_type));
        }
        r.header.doc_type = doc_type;

        // The Segment (after optional Void elements and the like).
        loop {
            let e = r.read_element(true)?.ok_or(WebmError::NoSegment)?;
            if e.id == id::SEGMENT {
                r.segment_end = e.end();
                break;
            }
            r.skip(&e, "top-level element")?;
        }

        // Info and Tracks, up to the first Cluster.
        let mut tracks = None;
        while let Some(e) = r.next_segment_child()? {
            match e.id {
                id::CLUSTER | id::EBML | id::SEGMENT => {
                    r.pending = Some(e);
                    break;
                }
                id::INFO => {
                    let body = r.read_body(&e, "Info")?;
                    r.header.timecode_scale = parse_info(&body, e.body)?;
                }
                id::TRACKS if tracks.is_none() => {
                    let body = r.read_body(&e, "Tracks")?;
                    tracks = Some(parse_tracks(&body, e.body)?);
                }
                _ => r.skip(&e, "Segment child")?,
            }
        }
        let tracks = tracks.ok_or(WebmError::NoTracks)?;
        let track = tracks
            .iter()
            .find(|t| {
                t.codec_id
                    .as_deref()
                    .is_some_and(|c| codec_ids.contains(&c))
                    && t.track_type.map_or(true, |ty| ty == TRACK_TYPE_VIDEO)
            })
            .ok_or_else(|| WebmError::NoVp9Track {
                wanted: codec_ids.iter().map(|c| c.to_string()).collect(),
                found: tracks
                    .iter()
                    .map(|t| t.codec_id.clone().unwrap_or_else(|| "(no CodecID)".into()))
                    .collect(),
            })?;
        let number = track
            .number
            .filter(|&n| n != 0)
            .ok_or_else(|| malformed(track.offset, "the VP9 track has no TrackNumber"))?;
        if track.content_encoded {
            return Err(WebmError::ContentEncoding { track: number });
        }
        let dimension = |v: Option<u64>, name: &str| {
            let v = v.unwrap_or(0);
            u32::try_from(v)
                .map_err(|_| malformed(track.offset, format!("{name} {v} is out of range")))
        };
        r.header.width = dimension(track.width, "PixelWidth")?;
        r.header.height = dimension(track.height, "PixelHeight")?;
        r.header.track_number = number;
        r.header.codec_id = track.codec_id.clone().unwrap_or_default();
        r.header.default_duration_ns = track.default_duration;
        r.header.codec_private = track.codec_private.clone().unwrap_or_default();
        Ok(r)
    }

    /// The headers.
    pub fn header(&self) -> &WebmHeader {
        &self.header
    }

    /// Reads the next frame of the VP9 track into `buf` (replacing its contents, reusing its
    /// allocation), skipping the blocks of other tracks and the elements that are not blocks.
    /// `None` at the end of the Segment (or of the file). Errors are final: after one, the
    /// reader returns `None`.
    pub fn next_frame(&mut self, buf: &mut Vec<u8>) -> Result<Option<WebmFrame>, WebmError> {
        let frame = self.read_frame(buf);
        if frame.is_err() {
            self.finished = true;
        }
        frame
    }

    fn read_frame(&mut self, buf: &mut Vec<u8>) -> Result<Option<WebmFrame>, WebmError> {
        while !self.finished {
            if let Some(cluster) = self.cluster {
                if let Some(frame) = self.cluster_child(cluster, buf)? {
                    return Ok(Some(frame));
                }
                continue;
            }
            let Some(e) = self.next_segment_child()? else {
                self.finished = true;
                break;
            };
            match e.id {
                id::CLUSTER => {
                    self.cluster = Some(Cluster {
                        end: e.end(),
                        timecode: None,
                    })
                }
                // Another EBML document or Segment: the end of this one.
                id::EBML | id::SEGMENT => self.finished = true,
                _ => self.skip(&e, "Segment child")?,
            }
        }
        Ok(None)
    }

    /// Reads one element of the current Cluster; a frame when it is a block of the VP9 track.
    fn cluster_child(
        &mut self,
        cluster: Cluster,
        buf: &mut Vec<u8>,
    ) -> Result<Option<WebmFrame>, WebmError> {
        if cluster
            .end
            .or(self.segment_end)
            .is_some_and(|end| self.pos >= end)
        {
            self.cluster = None;
            return Ok(None);
        }
        // A live stream may stop anywhere between the blocks of an unknown-size Cluster.
        let Some(e) = self.read_element(cluster.end.is_none())? else {
            self.cluster = None;
            self.finished = true;
            return Ok(None);
        };
        if cluster.end.is_none() && ends_cluster(e.id) {
            self.cluster = None;
            self.pending = Some(e);
            return Ok(None);
        }
        self.check_fits(&e, cluster.end.or(self.segment_end))?;
        match e.id {
            id::TIMECODE => {
                let size = e.known_size()?;
                if size > 8 {
                    return Err(malformed(e.offset, "Cluster Timecode of more than 8 bytes"));
                }
                let mut b = [0u8; 8];
                let b = &mut b[..size as usize];
                self.fill(b, "Cluster Timecode", e.offset)?;
                let timecode = parse_uint(b, e.body)?;
                if let Some(c) = &mut self.cluster {
                    c.timecode = Some(timecode);
                }
                Ok(None)
            }
            id::SIMPLE_BLOCK => self.block(&e, true, buf),
            id::BLOCK_GROUP => self.block_group(&e, buf),
            _ => {
                self.skip(&e, "Cluster child")?;
                Ok(None)
            }
        }
    }

    /// Reads a BlockGroup: its Block is a frame when it belongs to the VP9 track.
    fn block_group(
        &mut self,
        group: &Element,
        buf: &mut Vec<u8>,
    ) -> Result<Option<WebmFrame>, WebmError> {
        let end = group.body.saturating_add(group.known_size()?);
        let mut frame = None;
        let mut referenced = false;
        let mut seen_block = false;
        while self.pos < end {
            let e = self
                .read_element(false)?
                .ok_or_else(|| truncated_at("BlockGroup", group.offset))?;
            self.check_fits(&e, Some(end))?;
            match e.id {
                id::BLOCK if seen_block => {
                    return Err(malformed(e.offset, "two Blocks in one BlockGroup"))
                }
                id::BLOCK => {
                    seen_block = true;
                    frame = self.block(&e, false, buf)?;
                }
                id::REFERENCE_BLOCK => {
                    referenced = true;
                    self.skip(&e, "ReferenceBlock")?;
                }
                _ => self.skip(&e, "BlockGroup child")?,
            }
        }
        Ok(frame.map(|f| WebmFrame {
            keyframe: !referenced,
            ..f
        }))
    }

    /// Reads a SimpleBlock or a Block: a frame when it belongs to the VP9 track, skipped
    /// otherwise.
    fn block(
        &mut self,
        e: &Element,
        simple: bool,
        buf: &mut Vec<u8>,
    ) -> Result<Option<WebmFrame>, WebmError> {
        let size = e.known_size()?;
        let index = self.next_index;
        // Track number (a vint), relative timecode (i16), flags.
        let mut head = [0u8; 11];
        let too_short = || malformed(e.offset, "block shorter than its header");
        if size == 0 {
            return Err(too_short());
        }
        self.fill(&mut head[..1], "block header", e.offset)?;
        let track_len = vint_len(head[0])
            .ok_or_else(|| malformed(e.offset, "invalid track number in block"))?;
        let head_len = track_len + 3;
        if size < head_len as u64 {
            return Err(too_short());
        }
        self.fill(&mut head[1..head_len], "block header", e.offset)?;
        let data_len = size - head_len as u64;
        if vint_raw(&head[..track_len]) != self.header.track_number {
            self.discard(data_len, "block", e.offset)?;
            return Ok(None);
        }
        let relative = i16::from_be_bytes([head[track_len], head[track_len + 1]]);
        let flags = head[track_len + 2];
        if flags & 0x06 != 0 {
            return Err(WebmError::Laced {
                index,
                offset: e.offset,
            });
        }
        let data_len_usize = usize::try_from(data_len)
            .ok()
            .filter(|&s| s <= MAX_FRAME_SIZE)
            .ok_or(WebmError::FrameTooLarge {
                index,
                size: data_len,
            })?;
        let cluster_timecode =
            self.cluster
                .and_then(|c| c.timecode)
                .ok_or(WebmError::MissingClusterTimecode {
                    index,
                    offset: e.offset,
                })?;
        let overflow = || malformed(e.offset, "timestamp overflow");
        let pts = i64::try_from(cluster_timecode)
            .ok()
            .and_then(|c| c.checked_add(i64::from(relative)))
            .ok_or_else(overflow)?;
        let pts_ns = i64::try_from(i128::from(pts) * i128::from(self.header.timecode_scale))
            .map_err(|_| overflow())?;
        buf.clear();
        let read = (&mut self.inner).take(data_len).read_to_end(buf)?;
        self.pos += read as u64;
        if read != data_len_usize {
            return Err(truncated_at("block", e.offset));
        }
        self.next_index += 1;
        Ok(Some(WebmFrame {
            index,
            pts,
            pts_ns,
            keyframe: simple && flags & 0x80 != 0,
        }))
    }

    /// The next child of the Segment, `None` at its end (or at the end of the file).
    fn next_segment_child(&mut self) -> Result<Option<Element>, WebmError> {
        let e = match self.pending.take() {
            Some(e) => e,
            None if self.segment_end.is_some_and(|end| self.pos >= end) => return Ok(None),
            None => match self.read_element(true)? {
                Some(e) => e,
                None => return Ok(None),
            },
        };
        self.check_fits(&e, self.segment_end)?;
        Ok(Some(e))
    }

    /// Checks that an element ends before `end` (when both are known).
    fn check_fits(&self, e: &Element, end: Option<u64>) -> Result<(), WebmError> {
        match (e.end(), end) {
            (Some(e_end), Some(end)) if e_end > end => Err(malformed(
                e.offset,
                format!(
                    "element {:#X} of {} bytes overflows its parent element",
                    e.id,
                    e.size.unwrap_or(0)
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Reads an element header; `None` at the end of the file when `eof_ok`.
    fn read_element(&mut self, eof_ok: bool) -> Result<Option<Element>, WebmError> {
        let offset = self.pos;
        let mut b = [0u8; 12];
        let mut first = [0u8; 1];
        loop {
            match self.inner.read(&mut first) {
                Ok(0) if eof_ok => return Ok(None),
                Ok(0) => return Err(truncated_at("element header", offset)),
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.pos += 1;
        b[0] = first[0];
        let id_len = vint_len(b[0])
            .filter(|&l| l <= 4)
            .ok_or_else(|| malformed(offset, format!("invalid element ID byte {:#04X}", b[0])))?;
        self.fill(&mut b[1..=id_len], "element header", offset)?;
        let size_len = vint_len(b[id_len])
            .ok_or_else(|| malformed(offset, "invalid element size (first byte 0)"))?;
        self.fill(
            &mut b[id_len + 1..id_len + size_len],
            "element header",
            offset,
        )?;
        Ok(Some(Element {
            id: id_value(&b[..id_len]),
            size: vint_value(&b[id_len..id_len + size_len]),
            offset,
            body: self.pos,
        }))
    }

    /// Reads the body of a (header) element into memory.
    fn read_body(&mut self, e: &Element, name: &'static str) -> Result<Vec<u8>, WebmError> {
        let size = e.known_size()?;
        if size > MAX_HEADER_ELEMENT_SIZE {
            return Err(WebmError::ElementTooLarge { name, size });
        }
        let mut body = Vec::new();
        let read = (&mut self.inner).take(size).read_to_end(&mut body)?;
        self.pos += read as u64;
        if read as u64 != size {
            return Err(truncated_at(name, e.offset));
        }
        Ok(body)
    }

    /// Skips the body of an element.
    fn skip(&mut self, e: &Element, what: &'static str) -> Result<(), WebmError> {
        let size = e.known_size()?;
        self.discard(size, what, e.offset)
    }

    /// Skips `size` bytes.
    fn discard(&mut self, size: u64, what: &'static str, offset: u64) -> Result<(), WebmError> {
        let skipped = io::copy(&mut (&mut self.inner).take(size), &mut io::sink())?;
        self.pos += skipped;
        if skipped != size {
            return Err(truncated_at(what, offset));
        }
        Ok(())
    }

    /// Fills `buf`; the end of the file is an error.
    fn fill(&mut self, buf: &mut [u8], what: &'static str, offset: u64) -> Result<(), WebmError> {
        match self.inner.read_exact(buf) {
            Ok(()) => {
                self.pos += buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(truncated_at(what, offset)),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A small EBML writer.

    fn id_bytes(id: u32) -> Vec<u8> {
        let b = id.to_be_bytes();
        let skip = b.iter().position(|&x| x != 0).unwrap_or(3);
        b[skip..].to_vec()
    }

    /// A size as an 8-byte vint (as FFmpeg writes some).
    fn size8(size: u64) -> Vec<u8> {
        let mut b = (size | 1 << 56).to_be_bytes().to_vec();
        b[0] = 0x01;
        b
    }

    /// A size as a minimal vint.
    fn size_min(size: u64) -> Vec<u8> {
        let len = (1..=8).find(|&l| size < (1u64 << (7 * l)) - 1).unwrap();
        let v = size | 1 << (7 * len);
        v.to_be_bytes()[8 - len..].to_vec()
    }

    fn el(id: u32, body: &[u8]) -> Vec<u8> {
        let mut v = id_bytes(id);
        v.extend(size_min(body.len() as u64));
        v.extend_from_slice(body);
        v
    }

    fn el_unknown(id: u32, body: &[u8]) -> Vec<u8> {
        let mut v = id_bytes(id);
        v.push(0xFF);
        v.extend_from_slice(body);
        v
    }

    fn uint(id: u32, value: u64) -> Vec<u8> {
        let b = value.to_be_bytes();
        let skip = b.iter().position(|&x| x != 0).unwrap_or(7);
        el(id, &b[skip..])
    }

    fn ebml_header(doc_type: &str) -> Vec<u8> {
        let mut body = uint(0x4286, 1);
        body.extend(el(id::DOC_TYPE, doc_type.as_bytes()));
        el(id::EBML, &body)
    }

    fn track(number: u64, codec: &str, video: Option<(u64, u64)>) -> Vec<u8> {
        let mut body = uint(id::TRACK_NUMBER, number);
        let video_type = codec.starts_with("V_");
        body.extend(uint(id::TRACK_TYPE, if video_type { 1 } else { 2 }));
        body.extend(el(id::CODEC_ID, codec.as_bytes()));
        if let Some((w, h)) = video {
            let mut v = uint(id::PIXEL_WIDTH, w);
            v.extend(uint(id::PIXEL_HEIGHT, h));
            body.extend(el(id::VIDEO, &v));
        }
        el(id::TRACK_ENTRY, &body)
    }

    fn simple_block(track: u8, relative: i16, flags: u8, data: &[u8]) -> Vec<u8> {
        let mut body = vec![0x80 | track];
        body.extend(relative.to_be_bytes());
        body.push(flags);
        body.extend_from_slice(data);
        el(id::SIMPLE_BLOCK, &body)
    }

    fn block_group(track: u8, relative: i16, data: &[u8], reference: bool) -> Vec<u8> {
        let mut block = vec![0x80 | track];
        block.extend(relative.to_be_bytes());
        block.push(0);
        block.extend_from_slice(data);
        let mut body = el(id::BLOCK, &block);
        body.extend(uint(0x9B, 33)); // BlockDuration
        if reference {
            body.extend(el(id::REFERENCE_BLOCK, &[0xDF]));
        }
        el(id::BLOCK_GROUP, &body)
    }

    fn cluster_body(timecode: u64, blocks: &[Vec<u8>]) -> Vec<u8> {
        let mut body = uint(id::TIMECODE, timecode);
        for b in blocks {
            body.extend_from_slice(b);
        }
        body
    }

    /// A file: EBML header, a Segment of the given children.
    fn file(segment: &[Vec<u8>], unknown_segment: bool) -> Vec<u8> {
        let body: Vec<u8> = segment.concat();
        let mut v = ebml_header("webm");
        v.extend(if unknown_segment {
            el_unknown(id::SEGMENT, &body)
        } else {
            el(id::SEGMENT, &body)
        });
        v
    }

    fn tracks(entries: &[Vec<u8>]) -> Vec<u8> {
        el(id::TRACKS, &entries.concat())
    }

    /// A typical file: audio track 1, VP9 track 2, two clusters, a BlockGroup, Cues and Tags.
    fn sample(unknown_sizes: bool) -> Vec<u8> {
        let info = el(id::INFO, &uint(id::TIMECODE_SCALE, 1_000_000));
        let tr = tracks(&[
            track(1, "A_OPUS", None),
            track(2, "V_VP9", Some((352, 288))),
        ]);
        let c1 = cluster_body(
            0,
            &[
                simple_block(2, 0, 0x80, &[1, 2, 3]),
                simple_block(1, 0, 0x80, &[9; 20]),
                simple_block(2, 33, 0, &[4]),
            ],
        );
        let c2 = cluster_body(
            1000,
            &[
                simple_block(1, -5, 0x80, &[9; 7]),
                block_group(2, -934, &[5, 6], true),
                block_group(1, 10, &[9], false),
                el(0xEC, &[0; 5]), // Void
                simple_block(2, 100, 0x80, &[7, 8, 9, 10]),
            ],
        );
        let cluster = |body: &[u8]| {
            if unknown_sizes {
                el_unknown(id::CLUSTER, body)
            } else {
                el(id::CLUSTER, body)
            }
        };
        file(
            &[
                el(id::SEEK_HEAD, &[0xEC, 0x81, 0]),
                el(0xEC, &[0; 10]),
                info,
                tr,
                cluster(&c1),
                el(id::TAGS, &el(0x7373, &[])),
                cluster(&c2),
                el(id::CUES, &el(0xBB, &uint(0xB3, 0))),
            ],
            unknown_sizes,
        )
    }

    fn frames(data: &[u8]) -> Result<Vec<(WebmFrame, Vec<u8>)>, WebmError> {
        let mut r = WebmReader::new(data)?;
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while let Some(f) = r.next_frame(&mut buf)? {
            out.push((f, buf.clone()));
        }
        // The end is sticky.
        assert!(r.next_frame(&mut buf)?.is_none());
        Ok(out)
    }

    fn frame(index: u64, pts: i64, keyframe: bool) -> WebmFrame {
        WebmFrame {
            index,
            pts,
            pts_ns: pts * 1_000_000,
            keyframe,
        }
    }

    fn expected() -> Vec<(WebmFrame, Vec<u8>)> {
        vec![
            (frame(0, 0, true), vec![1, 2, 3]),
            (frame(1, 33, false), vec![4]),
            (frame(2, 66, false), vec![5, 6]),
            (frame(3, 1100, true), vec![7, 8, 9, 10]),
        ]
    }

    #[test]
    fn vints() {
        assert_eq!(vint_len(0x80), Some(1));
        assert_eq!(vint_len(0x40), Some(2));
        assert_eq!(vint_len(0x1A), Some(4));
        assert_eq!(vint_len(0x01), Some(8));
        assert_eq!(vint_len(0x00), None);
        assert_eq!(vint_value(&[0x81]), Some(1));
        assert_eq!(vint_value(&[0x80]), Some(0));
        assert_eq!(vint_value(&[0xFE]), Some(126));
        assert_eq!(vint_value(&[0x40, 0x7F]), Some(127));
        assert_eq!(vint_value(&[0x7F, 0xFE]), Some(0x3FFE));
        assert_eq!(vint_value(&[0x01, 0, 0, 0, 0, 0, 0x04, 0x85]), Some(0x485));
        // Unknown sizes: all value bits set, whatever the length.
        assert_eq!(vint_value(&[0xFF]), None);
        assert_eq!(vint_value(&[0x7F, 0xFF]), None);
        assert_eq!(
            vint_value(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
            None
        );
        assert_eq!(vint_value(&[]), None);
        assert_eq!(vint_raw(&[0xFF]), 127);
        assert_eq!(vint_raw(&[0x82]), 2);
        assert_eq!(vint_raw(&[0x40, 0x02]), 2);
        assert_eq!(id_value(&[0x1A, 0x45, 0xDF, 0xA3]), id::EBML);
        for size in [0, 1, 126, 127, 128, 16382, 16383, 1 << 30, (1 << 56) - 2] {
            assert_eq!(vint_value(&size_min(size)), Some(size), "{size}");
            assert_eq!(vint_value(&size8(size)), Some(size), "{size}");
        }
        assert_eq!(gcd(1_000_000, 1_000_000_000), 1_000_000);
    }

    #[test]
    fn reads_frames_and_skips_the_rest() {
        let data = sample(false);
        let r = WebmReader::new(&data[..]).unwrap();
        let h = r.header();
        assert_eq!(h.doc_type, "webm");
        assert_eq!((h.width, h.height), (352, 288));
        assert_eq!(h.track_number, 2);
        assert_eq!(h.codec_id, "V_VP9");
        assert_eq!(h.timecode_scale, 1_000_000);
        assert_eq!(h.timebase(), Rational::new(1, 1000));
        assert_eq!(frames(&data).unwrap(), expected());
    }

    #[test]
    fn unknown_sizes() {
        assert_eq!(frames(&sample(true)).unwrap(), expected());
        // An unknown-size Cluster in a known-size Segment ends with the Segment, and what
        // follows the Segment is not read.
        let c = cluster_body(0, &[simple_block(1, 0, 0x80, &[1])]);
        let mut data = file(
            &[
                tracks(&[track(1, "V_VP9", Some((2, 2)))]),
                el_unknown(id::CLUSTER, &c),
            ],
            false,
        );
        data.extend(b"trailing garbage");
        assert_eq!(frames(&data).unwrap(), vec![(frame(0, 0, true), vec![1])]);
        // A second EBML document after an unknown-size Segment ends the first.
        let mut data = file(
            &[
                tracks(&[track(1, "V_VP9", Some((2, 2)))]),
                el_unknown(id::CLUSTER, &c),
            ],
            true,
        );
        data.extend(ebml_header("webm"));
        data.extend(el_unknown(id::SEGMENT, &el_unknown(id::CLUSTER, &c)));
        assert_eq!(frames(&data).unwrap().len(), 1);
    }

    #[test]
    fn timecode_scale_and_matroska() {
        let mut data = ebml_header("matroska");
        let c = cluster_body(10, &[simple_block(1, -1, 0x80, &[1])]);
        data.extend(el(
            id::SEGMENT,
            &[
                tracks(&[track(1, "V_VP9", None)]),
                el(id::INFO, &uint(id::TIMECODE_SCALE, 40_000_000)),
                el(id::CLUSTER, &c),
            ]
            .concat(),
        ));
        let r = WebmReader::new(&data[..]).unwrap();
        assert_eq!(r.header().doc_type, "matroska");
        assert_eq!(r.header().timebase(), Rational::new(1, 25));
        assert_eq!((r.header().width, r.header().height), (0, 0));
        let f = frames(&data).unwrap();
        assert_eq!(f[0].0.pts, 9);
        assert_eq!(f[0].0.pts_ns, 360_000_000);
    }

    #[test]
    fn no_vp9_track() {
        let data = file(
            &[tracks(&[
                track(1, "A_OPUS", None),
                track(2, "V_VP8", Some((2, 2))),
            ])],
            false,
        );
        let err = WebmReader::new(&data[..]).unwrap_err();
        assert!(
            matches!(&err, WebmError::NoVp9Track { found, .. } if found == &["A_OPUS", "V_VP8"]),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "no V_VP9 or V_AV1 video track; tracks found: A_OPUS, V_VP8"
        );
        let data = file(&[tracks(&[])], false);
        assert_eq!(
            WebmReader::new(&data[..]).unwrap_err().to_string(),
            "no V_VP9 or V_AV1 video track; tracks found: none"
        );
        // No Tracks before the first Cluster.
        let data = file(&[el(id::CLUSTER, &uint(id::TIMECODE, 0))], false);
        assert!(matches!(
            WebmReader::new(&data[..]),
            Err(WebmError::NoTracks)
        ));
        // A compressed / encrypted VP9 track.
        let mut entry = uint(id::TRACK_NUMBER, 1);
        entry.extend(el(id::CODEC_ID, b"V_VP9"));
        entry.extend(el(id::CONTENT_ENCODINGS, &el(0x6240, &[])));
        let data = file(&[tracks(&[el(id::TRACK_ENTRY, &entry)])], false);
        assert!(matches!(
            WebmReader::new(&data[..]),
            Err(WebmError::ContentEncoding { track: 1 })
        ));
    }

    #[test]
    fn not_webm() {
        for data in [
            &b""[..],
            b"\x1A\x45",
            b"DKIF\0\0 \0VP90",
            b"\0\0\0\0",
            b"\x1A\x45\xDF\xA3\x00",
        ] {
            assert!(
                matches!(WebmReader::new(data), Err(WebmError::NotWebm)),
                "{data:?}"
            );
        }
        let mut data = ebml_header("mkv3d");
        data.extend(el(id::SEGMENT, &[]));
        assert!(matches!(
            WebmReader::new(&data[..]),
            Err(WebmError::DocType(d)) if d == "mkv3d"
        ));
        assert!(matches!(
            WebmReader::new(&ebml_header("webm")[..]),
            Err(WebmError::NoSegment)
        ));
    }

    #[test]
    fn lacing_is_rejected_on_the_vp9_track_only() {
        let c = cluster_body(
            0,
            &[
                simple_block(1, 0, 0x80 | 0x02, &[1, 5, 5, 5, 5, 5, 5]), // Xiph-laced audio
                simple_block(2, 0, 0x80, &[1]),
                simple_block(2, 0, 0x06, &[0, 1, 2]), // EBML-laced video
            ],
        );
        let data = file(
            &[
                tracks(&[track(1, "A_VORBIS", None), track(2, "V_VP9", Some((2, 2)))]),
                el(id::CLUSTER, &c),
            ],
            false,
        );
        let mut r = WebmReader::new(&data[..]).unwrap();
        let mut buf = Vec::new();
        assert_eq!(r.next_frame(&mut buf).unwrap(), Some(frame(0, 0, true)));
        let err = r.next_frame(&mut buf).unwrap_err();
        assert!(matches!(err, WebmError::Laced { index: 1, .. }), "{err:?}");
        assert!(err.to_string().contains("laced"));
    }

    /// Every truncation of a valid file: no panic, frames are a prefix of the full list, and
    /// the end is an error unless the cut is between elements where a file may end.
    #[test]
    fn truncated() {
        for unknown in [false, true] {
            let data = sample(unknown);
            let all = expected();
            let mut clean_ends = 0;
            for cut in 0..data.len() {
                let Ok(mut r) = WebmReader::new(&data[..cut]) else {
                    continue;
                };
                let mut got = Vec::new();
                let mut buf = Vec::new();
                let end = loop {
                    match r.next_frame(&mut buf) {
                        Ok(Some(f)) => got.push((f, buf.clone())),
                        Ok(None) => break Ok(()),
                        Err(e) => break Err(e),
                    }
                };
                assert_eq!(got[..], all[..got.len()], "cut {cut}");
                match end {
                    Ok(()) => clean_ends += 1,
                    Err(WebmError::Truncated { .. }) => {}
                    Err(e) => panic!("cut {cut}: {e}"),
                }
            }
            // With known sizes, only between the Segment's children; with unknown sizes, between
            // blocks as well.
            assert!(clean_ends >= 3, "{clean_ends}");
        }
    }

    /// Known-size truncation of a Cluster: an error, not a clean end.
    #[test]
    fn truncated_cluster_is_an_error() {
        let data = sample(false);
        let mut r = WebmReader::new(&data[..data.len() - 40]).unwrap();
        let mut buf = Vec::new();
        let err = loop {
            match r.next_frame(&mut buf) {
                Ok(Some(_)) => {}
                Ok(None) => panic!("clean end"),
                Err(e) => break e,
            }
        };
        assert!(matches!(err, WebmError::Truncated { .. }), "{err:?}");
        assert!(err.to_string().starts_with("the file ends inside"));
    }

    #[test]
    fn malformed() {
        let tr = tracks(&[track(1, "V_VP9", Some((2, 2)))]);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "child larger than its cluster",
                file(
                    &[
                        tr.clone(),
                        el(
                            id::CLUSTER,
                            &[uint(id::TIMECODE, 0), vec![0xA3, 0x88, 0x81, 0, 0, 0x80]].concat(),
                        ),
                    ],
                    false,
                ),
            ),
            (
                "block before Timecode",
                file(
                    &[tr.clone(), el(id::CLUSTER, &simple_block(1, 0, 0x80, &[1]))],
                    false,
                ),
            ),
            (
                "block shorter than its header",
                file(
                    &[
                        tr.clone(),
                        el(
                            id::CLUSTER,
                            &[uint(id::TIMECODE, 0), el(0xA3, &[0x81, 0])].concat(),
                        ),
                    ],
                    false,
                ),
            ),
            (
                "empty block",
                file(
                    &[
                        tr.clone(),
                        el(
                            id::CLUSTER,
                            &[uint(id::TIMECODE, 0), el(0xA3, &[])].concat(),
                        ),
                    ],
                    false,
                ),
            ),
            (
                "invalid ID",
                file(
                    &[
                        tr.clone(),
                        el(
                            id::CLUSTER,
                            &[uint(id::TIMECODE, 0), vec![0x00, 0x80]].concat(),
                        ),
                    ],
                    false,
                ),
            ),
            (
                "5-byte ID",
                file(
                    &[
                        tr.clone(),
                        el(
                            id::CLUSTER,
                            &[uint(id::TIMECODE, 0), vec![0x08, 1, 2, 3, 4, 0x80]].concat(),
                        ),
                    ],
                    false,
                ),
            ),
            (
                "unknown-size child of a cluster",
                file(
                    &[
                        tr.clone(),
                        el(
                            id::CLUSTER,
                            &[
                                uint(id::TIMECODE, 0),
                                el_unknown(0xA3, &[0x81, 0, 0, 0x80, 1]),
                            ]
                            .concat(),
                        ),
                    ],
                    false,
                ),
            ),
            (
                "element after an unknown-size cluster overflows the segment",
                file(
                    &[
                        tr.clone(),
                        el_unknown(id::CLUSTER, &uint(id::TIMECODE, 0)),
                        vec![0x1C, 0x53, 0xBB, 0x6B, 0x90, 0, 0],
                    ],
                    false,
                ),
            ),
            (
                "unknown-size Cues",
                file(&[tr.clone(), el_unknown(id::CUES, &[])], false),
            ),
            (
                "9-byte timecode",
                file(
                    &[tr.clone(), el(id::CLUSTER, &el(id::TIMECODE, &[1; 9]))],
                    false,
                ),
            ),
            (
                "two Blocks in a group",
                file(
                    &[
                        tr.clone(),
                        el(
                            id::CLUSTER,
                            &[
                                uint(id::TIMECODE, 0),
                                el(
                                    id::BLOCK_GROUP,
                                    &[
                                        el(id::BLOCK, &[0x82, 0, 0, 0]),
                                        el(id::BLOCK, &[0x82, 0, 0, 0]),
                                    ]
                                    .concat(),
                                ),
                            ]
                            .concat(),
                        ),
                    ],
                    false,
                ),
            ),
            (
                "timestamp overflow",
                file(
                    &[
                        tr.clone(),
                        el(
                            id::CLUSTER,
                            &cluster_body(u64::MAX, &[simple_block(1, 0, 0, &[1])]),
                        ),
                    ],
                    false,
                ),
            ),
        ];
        for (name, data) in cases {
            // In the headers or at the first frame.
            let err = match WebmReader::new(&data[..]) {
                Ok(mut r) => {
                    let err = r.next_frame(&mut Vec::new()).unwrap_err();
                    // Errors are final.
                    assert_eq!(r.next_frame(&mut Vec::new()).unwrap(), None, "{name}");
                    err
                }
                Err(e) => e,
            };
            assert!(
                matches!(
                    err,
                    WebmError::Malformed { .. } | WebmError::MissingClusterTimecode { .. }
                ),
                "{name}: {err:?}"
            );
        }

        // Header-level problems.
        let bad_tracks = file(&[el(id::TRACKS, &[0xAE, 0x85, 0xD7, 0x81])], false);
        assert!(matches!(
            WebmReader::new(&bad_tracks[..]),
            Err(WebmError::Malformed { .. })
        ));
        let zero_scale = file(
            &[el(id::INFO, &uint(id::TIMECODE_SCALE, 0)), tr.clone()],
            false,
        );
        assert!(matches!(
            WebmReader::new(&zero_scale[..]),
            Err(WebmError::Malformed { .. })
        ));
        let wide = file(&[tracks(&[track(1, "V_VP9", Some((1 << 33, 2)))])], false);
        assert!(matches!(
            WebmReader::new(&wide[..]),
            Err(WebmError::Malformed { .. })
        ));
        let overflowing = file(
            &[tr.clone(), el(id::INFO, &[0x2A, 0xD7, 0xB1, 0x88, 0])],
            false,
        );
        assert!(matches!(
            WebmReader::new(&overflowing[..]),
            Err(WebmError::Malformed { .. })
        ));
    }

    /// Absurd sizes are rejected before anything is allocated for them.
    #[test]
    fn huge_sizes() {
        let tr = tracks(&[track(1, "V_VP9", Some((2, 2)))]);
        // A 2^50-byte Tracks element in an unknown-size Segment.
        let mut data = ebml_header("webm");
        data.extend(el_unknown(id::SEGMENT, &[]));
        data.extend([0x16, 0x54, 0xAE, 0x6B]);
        data.extend(size8(1 << 50));
        assert!(matches!(
            WebmReader::new(&data[..]),
            Err(WebmError::ElementTooLarge { name: "Tracks", size }) if size == 1 << 50
        ));
        // A 2^40-byte frame in unknown-size elements.
        let mut data = file(&[tr], true);
        data.extend(el_unknown(id::CLUSTER, &uint(id::TIMECODE, 0)));
        data.push(0xA3);
        data.extend(size8(1 << 40));
        data.extend([0x81, 0, 0, 0x80, 1, 2, 3]);
        let mut r = WebmReader::new(&data[..]).unwrap();
        let err = r.next_frame(&mut Vec::new()).unwrap_err();
        assert!(
            matches!(err, WebmError::FrameTooLarge { index: 0, size } if size == (1 << 40) - 4),
            "{err:?}"
        );
        // The same size on another track's block: skipped, then the file ends inside it.
        let mut data = file(&[tracks(&[track(2, "V_VP9", Some((2, 2)))])], true);
        data.extend(el_unknown(id::CLUSTER, &uint(id::TIMECODE, 0)));
        data.push(0xA3);
        data.extend(size8(1 << 40));
        data.extend([0x81, 0, 0, 0x80, 1, 2, 3]);
        let mut r = WebmReader::new(&data[..]).unwrap();
        assert!(matches!(
            r.next_frame(&mut Vec::new()),
            Err(WebmError::Truncated { what: "block", .. })
        ));
    }

    /// Random corruption of a valid file never panics.
    #[test]
    fn corrupted_bytes_do_not_panic() {
        let data = sample(false);
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut rand = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let mut d = data.clone();
            for _ in 0..1 + rand() % 4 {
                let at = (rand() % d.len() as u64) as usize;
                d[at] = rand() as u8;
            }
            if let Ok(mut r) = WebmReader::new(&d[..]) {
                let mut buf = Vec::new();
                for _ in 0..100 {
                    match r.next_frame(&mut buf) {
                        Ok(Some(_)) => assert!(buf.len() <= d.len()),
                        _ => break,
                    }
                }
            }
        }
    }
}
