// SPDX-License-Identifier: GPL-2.0
//! H.264 for `daedalus decode`: a stateless client of `V4L2_PIX_FMT_H264_SLICE`.
//!
//! * [`nal`]: NAL units out of Annex-B streams, MP4 / Matroska samples and `avcC` records;
//! * [`dpb`]: the client's decoded picture buffer (POC, reference marking, reference lists,
//!   output order);
//! * [`stream`]: parameter sets and slice headers (cros-codecs parser) grouped into pictures;
//! * [`v4l2`]: the per-picture and per-slice controls (`DECODE_PARAMS`, `SLICE_PARAMS`,
//!   `PRED_WEIGHTS`); SPS / PPS / scaling matrix come from `daedalus_codecs::h264::controls`;
//! * [`client`]: the decode loop on the device.

pub mod client;
pub mod dpb;
pub mod nal;
pub mod stream;
pub mod v4l2;
