// SPDX-License-Identifier: GPL-2.0
//! Containers through libavformat (`ffmpeg-next`): the VP9, AV1 or H.264 video track of any file
//! libavformat demuxes — IVF, Matroska / WebM, MP4 / MOV, MPEG-TS, ... — packet by packet, with
//! the time base and frame rate FFmpeg itself would use for it.
//!
//! The framemd5 output of `daedalus decode` is compared line by line with `ffmpeg -f framemd5`,
//! whose timestamps depend on libavformat's frame rate guess (`avformat_find_stream_info()` +
//! `av_guess_frame_rate()`) and the file's start time: demuxing with the same library gives the
//! same numbers by construction, for every container and every FFmpeg version installed.
//!
//! Bare elementary streams are not containers: an Annex B H.264 byte stream and AV1 OBU streams
//! (libavformat's `h264`, `obu` and `av1` demuxers) are left to the bitstream readers of their
//! codec ([`crate::h264`], [`crate::av1::obu`]), which split them into access units themselves.

use std::ffi::CString;
use std::io::Cursor;
use std::os::unix::ffi::OsStrExt;
use std::ptr;
use std::sync::Arc;

use ffmpeg::ffi;
use ffmpeg::format::context;
use ffmpeg::media;
use ffmpeg_next as ffmpeg;

use crate::codec::Codec;
use crate::decode::Input;
use crate::ffmpeg_timing::FrameMd5Params;

/// libavformat demuxers of bare elementary streams, which the codec readers handle.
const BARE_STREAM_DEMUXERS: [&str; 3] = ["h264", "obu", "av1"];

/// Why a container cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum DemuxError {
    /// The container holds no video track.
    #[error("the {container} file has no video track")]
    NoVideo {
        /// libavformat's name of the container.
        container: String,
    },
    /// The video track is in a codec the device does not decode.
    #[error(
        "the {container} file holds {codec} video, not a codec daedalus decodes (VP9, AV1, H.264)"
    )]
    OtherCodec {
        /// libavformat's name of the container.
        container: String,
        /// libavcodec's name of the codec.
        codec: String,
    },
    /// libavformat failed (I/O error, broken file).
    #[error("cannot read the {container} file: {source}")]
    Read {
        /// libavformat's name of the container (or "input" before it is known).
        container: String,
        /// libavformat's error.
        source: ffmpeg::Error,
    },
}

/// What the container says about the video track.
#[derive(Clone, Debug)]
pub struct Track {
    /// The codec.
    pub codec: Codec,
    /// libavformat's long name of the container (for messages), e.g. "Matroska / WebM".
    pub container: String,
    /// The picture size the container declares (0 when it declares none).
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// The codec configuration record (H.264 `avcC`, AV1 `av1C`, ...); may be empty.
    pub extradata: Vec<u8>,
    /// Time base, frame rate and start time of the packets' timestamps.
    pub framemd5: FrameMd5Params,
}

/// One packet of the video track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Packet number in the track (from 0).
    pub index: u64,
    /// Presentation timestamp in the track's time base (the packet number when the container
    /// has none).
    pub pts: i64,
}

/// How much [`Demuxer::open`] finds out before the first packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// The container's headers only: enough for the codec and the packets.
    Headers,
    /// Also `avformat_find_stream_info()`, which reads (and decodes) the first packets to guess
    /// the frame rate as FFmpeg does: needed for FFmpeg's framemd5 timestamps.
    StreamInfo,
}

/// The video track of a container, packet by packet.
pub struct Demuxer {
    ctx: context::Input,
    stream: usize,
    track: Track,
    next_index: u64,
}

impl std::fmt::Debug for Demuxer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demuxer")
            .field("track", &self.track)
            .finish()
    }
}

/// libavformat's messages go to stderr at this level and above.
fn init() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        // Only errors: FFmpeg's warnings (e.g. "estimating duration from bitrate") are noise for
        // a decode run; problems that matter come back as errors.
        ffmpeg::util::log::set_level(if log::log_enabled!(log::Level::Debug) {
            ffmpeg::util::log::Level::Warning
        } else {
            ffmpeg::util::log::Level::Error
        });
    });
}

/// `avformat_open_input()` on a path or on memory, and whether `avformat_find_stream_info()` ran
/// too: ffmpeg-next's `input()` always runs both, so a path is opened here without it; memory
/// goes through ffmpeg-next's custom I/O, which runs it.
fn open_input(input: &Input) -> Result<(context::Input, bool), ffmpeg::Error> {
    match input {
        Input::File(path) => {
            let path =
                CString::new(path.as_os_str().as_bytes()).map_err(|_| ffmpeg::Error::Other {
                    errno: libc::EINVAL,
                })?;
            let mut ps = ptr::null_mut();
            // SAFETY: `ps` is a valid out pointer, `path` a NUL-terminated string that outlives
            // the call; no format or options are forced.
            let ret = unsafe {
                ffi::avformat_open_input(&mut ps, path.as_ptr(), ptr::null_mut(), ptr::null_mut())
            };
            if ret < 0 {
                return Err(ffmpeg::Error::from(ret));
            }
            // SAFETY: `avformat_open_input()` succeeded: `ps` is an open input context, owned
            // from here by the wrapper, which closes it on drop.
            Ok((unsafe { context::Input::wrap(ps) }, false))
        }
        Input::Memory(data) => {
            let io = context::StreamIo::from_read_seek(Cursor::new(SharedBytes(Arc::clone(data))))?;
            Ok((ffmpeg::format::input_from_stream(io, None, None)?, true))
        }
    }
}

/// Whether a failure of `avformat_open_input()` is about reaching the data (the file is missing,
/// unreadable...) rather than about what the data is.
fn is_io_error(e: &ffmpeg::Error) -> bool {
    matches!(
        e,
        ffmpeg::Error::Other { errno }
            if [libc::ENOENT, libc::EACCES, libc::EPERM, libc::EIO, libc::EISDIR, libc::ENXIO,
                libc::ENOMEM]
                .contains(errno)
    )
}

/// Standard input's bytes, shared with the custom I/O context that reads them.
struct SharedBytes(Arc<[u8]>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// The best video stream of `ctx` and what it says, or `None` for bare elementary streams.
fn find_track(ctx: &context::Input) -> Result<Option<(usize, Track)>, DemuxError> {
    let format = ctx.format();
    if BARE_STREAM_DEMUXERS.contains(&format.name()) {
        return Ok(None);
    }
    let container = format.description().to_string();
    let Some(stream) = ctx.streams().best(media::Type::Video) else {
        return Err(DemuxError::NoVideo { container });
    };
    let params = stream.parameters();
    let codec = match params.id() {
        ffmpeg::codec::Id::VP9 => Codec::Vp9,
        ffmpeg::codec::Id::AV1 => Codec::Av1,
        ffmpeg::codec::Id::H264 => Codec::H264,
        other => {
            return Err(DemuxError::OtherCodec {
                container,
                codec: other.name().to_string(),
            })
        }
    };
    // SAFETY: `params` borrows the stream's live `AVCodecParameters`; `extradata` points to
    // `extradata_size` readable bytes when it is not NULL (libavformat's invariant).
    let (width, height, extradata) = unsafe {
        let p = &*params.as_ptr();
        let extradata = match (p.extradata.is_null(), usize::try_from(p.extradata_size)) {
            (false, Ok(len)) if len > 0 => std::slice::from_raw_parts(p.extradata, len).to_vec(),
            _ => Vec::new(),
        };
        (
            u32::try_from(p.width).unwrap_or(0),
            u32::try_from(p.height).unwrap_or(0),
            extradata,
        )
    };
    // SAFETY: `ctx` is an open input context (its `start_time` is in AV_TIME_BASE units, or
    // AV_NOPTS_VALUE).
    let start_time = unsafe { (*ctx.as_ptr()).start_time };
    // SAFETY: both pointers are the live context and one of its streams; the frame argument may
    // be NULL. `av_guess_frame_rate()` only reads them.
    let frame_rate = unsafe {
        ffi::av_guess_frame_rate(
            ctx.as_ptr().cast_mut(),
            stream.as_ptr().cast_mut(),
            ptr::null_mut(),
        )
    };
    let framemd5 = FrameMd5Params {
        // SAFETY: as above, the live stream.
        sample_aspect_ratio: unsafe { (*stream.as_ptr()).sample_aspect_ratio }.into(),
        ..FrameMd5Params::new(
            stream.time_base(),
            frame_rate.into(),
            (start_time != ffi::AV_NOPTS_VALUE).then_some(start_time),
        )
    };
    Ok(Some((
        stream.index(),
        Track {
            codec,
            container,
            width,
            height,
            extradata,
            framemd5,
        },
    )))
}

impl Demuxer {
    /// Opens `input` if libavformat demuxes it as a container: `Ok(None)` when it does not
    /// recognise it or when it is a bare elementary stream (see the module doc).
    pub fn open(input: &Input, probe: Probe) -> Result<Option<Self>, DemuxError> {
        init();
        let (mut ctx, has_stream_info) = match open_input(input) {
            Ok(ctx) => ctx,
            Err(source) if is_io_error(&source) => {
                return Err(DemuxError::Read {
                    container: "input".into(),
                    source,
                })
            }
            // Any other failure comes from a demuxer that took the data for its format and
            // then could not read its header (random bytes probe as MP3 at times): not a
            // container after all, so the bare-stream readers get their turn.
            Err(e) => {
                log::debug!("libavformat cannot open the input as a container: {e}");
                return Ok(None);
            }
        };
        if probe == Probe::StreamInfo
            && !has_stream_info
            && !BARE_STREAM_DEMUXERS.contains(&ctx.format().name())
            && ctx.streams().best(media::Type::Video).is_some()
        {
            // SAFETY: `ctx` is an open input context; no per-stream options.
            let ret = unsafe { ffi::avformat_find_stream_info(ctx.as_mut_ptr(), ptr::null_mut()) };
            if ret < 0 {
                return Err(DemuxError::Read {
                    container: ctx.format().description().to_string(),
                    source: ffmpeg::Error::from(ret),
                });
            }
        }
        let Some((stream, track)) = find_track(&ctx)? else {
            return Ok(None);
        };
        Ok(Some(Demuxer {
            ctx,
            stream,
            track,
            next_index: 0,
        }))
    }

    /// What the container says about the video track.
    pub fn track(&self) -> &Track {
        &self.track
    }

    /// The next packet of the video track into `buf`; `Ok(None)` at the end of the file.
    pub fn next_packet(&mut self, buf: &mut Vec<u8>) -> Result<Option<Packet>, DemuxError> {
        loop {
            // A new packet each time, dropped (unreferenced) once its bytes are copied:
            // av_read_frame() does not unreference what a packet held, so reading into a kept
            // one leaked every packet's buffer, the whole stream per pass (4.3 MB a pass over
            // the 1080p VP9 bench stream; the soak's client grew by its streams' size each run).
            let mut packet = ffmpeg::Packet::empty();
            match packet.read(&mut self.ctx) {
                Ok(()) => {}
                Err(ffmpeg::Error::Eof) => return Ok(None),
                Err(source) => {
                    return Err(DemuxError::Read {
                        container: self.track.container.clone(),
                        source,
                    })
                }
            }
            if packet.stream() != self.stream {
                continue;
            }
            let index = self.next_index;
            self.next_index += 1;
            buf.clear();
            buf.extend_from_slice(packet.data().unwrap_or_default());
            let pts = packet.pts().or(packet.dts()).unwrap_or(index as i64);
            return Ok(Some(Packet { index, pts }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packets(input: &Input) -> (Track, Vec<(Packet, Vec<u8>)>) {
        let mut d = Demuxer::open(input, Probe::StreamInfo)
            .unwrap()
            .expect("a container");
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while let Some(p) = d.next_packet(&mut buf).unwrap() {
            out.push((p, buf.clone()));
        }
        (d.track().clone(), out)
    }

    /// Standard input (memory, through custom I/O) gives what the file gives; the WebM copy
    /// (with an Opus track first) gives the IVF's packets.
    #[test]
    fn memory_file_and_containers_agree() {
        let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        let ivf = Input::File(data.join("vp9-8bit-35x19-arf.ivf"));
        let (track, from_file) = packets(&ivf);
        assert_eq!(track.codec, Codec::Vp9);
        assert_eq!((track.width, track.height), (35, 19));
        let bytes = std::fs::read(data.join("vp9-8bit-35x19-arf.ivf")).unwrap();
        let (mem_track, from_memory) = packets(&Input::Memory(bytes.into()));
        assert_eq!(from_memory, from_file);
        assert_eq!(mem_track.framemd5, track.framemd5);
        let (webm, from_webm) = packets(&Input::File(data.join("vp9-8bit-35x19-arf-opus.webm")));
        assert_eq!(webm.container, "Matroska / WebM");
        let payloads =
            |v: &[(Packet, Vec<u8>)]| v.iter().map(|(_, b)| b.clone()).collect::<Vec<_>>();
        assert_eq!(payloads(&from_webm), payloads(&from_file));
        assert!(from_file.len() > 1);
    }

    #[test]
    fn other_codecs_are_named() {
        let mut ivf =
            b"DKIF\0\0\x20\0VP80\x10\0\x10\0\x1e\0\0\0\x01\0\0\0\0\0\0\0\0\0\0\0".to_vec();
        ivf.extend_from_slice(&[4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0]);
        let err = Demuxer::open(&Input::Memory(ivf.into()), Probe::Headers).unwrap_err();
        assert!(err.to_string().contains("holds vp8 video"), "{err}");
    }

    #[test]
    fn unknown_bytes_are_no_container() {
        let input = Input::Memory(Arc::from(
            &b"this is not a video file at all, just text\n"[..],
        ));
        assert!(Demuxer::open(&input, Probe::Headers).unwrap().is_none());
    }

    /// Every packet read is released when the next one is: four passes over a 12 MB IVF (120
    /// packets of 100 KB) in a child process (RSS is process-wide; the other tests run on other
    /// threads) leave its anonymous RSS less than one stream's size above where it started
    /// (reading into the previous packet leaked each pass whole: ~48 MB here).
    #[cfg(target_env = "gnu")]
    #[test]
    fn packets_are_released() {
        let mut ivf =
            b"DKIF\0\0\x20\0VP90\x40\0\x40\0\x1e\0\0\0\x01\0\0\0\x78\0\0\0\0\0\0\0".to_vec();
        for pts in 0..120u64 {
            ivf.extend_from_slice(&100_000u32.to_le_bytes());
            ivf.extend_from_slice(&pts.to_le_bytes());
            ivf.extend(std::iter::repeat(pts as u8).take(100_000));
        }
        let input = Input::Memory(ivf.into());
        // libavformat's one-time set-up happens here, not in the child: a lock another test
        // thread held at the fork would never be released there.
        init();
        let limit = std::time::Duration::from_secs(120);
        let growth = crate::stress::rss_anon_growth_in_child(limit, || {
            let mut packets = 0;
            for _ in 0..4 {
                let mut d = Demuxer::open(&input, Probe::Headers).ok().flatten();
                let mut buf = Vec::new();
                while let Some(Ok(Some(_))) = d.as_mut().map(|d| d.next_packet(&mut buf)) {
                    packets += 1;
                }
            }
            packets == 480
        });
        match growth {
            Ok(mib) => assert!(mib < 12, "anonymous RSS grew by {mib} MiB over 4 passes"),
            Err(e) => panic!("demuxer child (4 passes of 120 packets): {e}"),
        }
    }
}
