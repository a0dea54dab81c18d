// SPDX-License-Identifier: GPL-2.0
//! Why a job failed, and the completion status each failure is answered with.

use daedalus_codecs::vp9::ParseError;
use daedalus_proto::wire::Status;
use ffmpeg_next as ffmpeg;

use crate::convert::ConvertError;
use crate::mapping::MapError;

/// A failed job.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A buffer could not be mapped or found (`Status::InternalError`).
    #[error(transparent)]
    Buffer(#[from] MapError),
    /// The frame header is malformed (`Status::DecodeError`).
    #[error("bitstream: {0}")]
    Header(#[from] ParseError),
    /// FFmpeg failed to decode the frame (`Status::DecodeError`).
    #[error("decoding failed: {0}")]
    Decode(ffmpeg::Error),
    /// The bitstream is inconsistent in another way (`Status::DecodeError`).
    #[error("{0}")]
    Corrupt(&'static str),
    /// The decoded frame does not fit the CAPTURE format (`Status::DecodeError`).
    #[error("frame {width}x{height} is larger than the CAPTURE format {max_width}x{max_height}")]
    TooLarge {
        /// Frame width.
        width: u32,
        /// Frame height.
        height: u32,
        /// CAPTURE width.
        max_width: u32,
        /// CAPTURE height.
        max_height: u32,
    },
    /// The frame's bit depth is not the CAPTURE format's (`Status::DecodeError`).
    #[error("frame has {frame}-bit samples but the CAPTURE format has {capture}-bit ones")]
    DepthMismatch {
        /// Bits of the frame.
        frame: u32,
        /// Bits of the CAPTURE format.
        capture: u32,
    },
    /// Something daedalus does not decode (`Status::Unsupported`).
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// FFmpeg could not be set up (`Status::InternalError`).
    #[error("FFmpeg: {0}")]
    Ffmpeg(ffmpeg::Error),
    /// The picture could not be written (`Status::InternalError`).
    #[error("writing the picture: {0}")]
    Picture(#[from] ConvertError),
    /// Anything else that is the daemon's fault (`Status::InternalError`).
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl JobError {
    /// The completion status for this failure.
    pub fn status(&self) -> Status {
        match self {
            JobError::Header(_)
            | JobError::Decode(_)
            | JobError::Corrupt(_)
            | JobError::TooLarge { .. }
            | JobError::DepthMismatch { .. } => Status::DecodeError,
            JobError::Unsupported(_) => Status::Unsupported,
            JobError::Buffer(_)
            | JobError::Ffmpeg(_)
            | JobError::Picture(_)
            | JobError::Internal(_) => Status::InternalError,
        }
    }
}
