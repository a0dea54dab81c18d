// SPDX-License-Identifier: GPL-2.0
//! H.264 input: the NAL units of an Annex-B stream or of the H.264 track of a container
//! libavformat reads ([`crate::demux`]: MP4 and Matroska with an `avcC` record and length-prefixed
//! samples, MPEG-TS with Annex B packets), parsed with cros-codecs (`cros_codecs::codec::h264::parser`) and grouped into pictures (H.264
//! 7.4.1.2.4: a new picture starts with `first_mb_in_slice = 0` or when a slice header differs
//! from the previous one in the fields that identify a picture).

use std::borrow::Cow;
use std::ops::Range;
use std::rc::Rc;

use cros_codecs::codec::h264::parser::{Nalu, NaluHeader, NaluType, Parser, Pps, SliceHeader, Sps};
use log::warn;

use super::nal::{self, split_annex_b, split_length_prefixed};
use crate::demux::{DemuxError, Demuxer};

/// Why the stream cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Not an Annex-B byte stream.
    #[error("not an H.264 Annex-B byte stream (no start code at the start)")]
    NotH264,
    /// Broken NAL framing.
    #[error(transparent)]
    Nal(#[from] nal::NalError),
    /// Broken container.
    #[error(transparent)]
    Container(#[from] DemuxError),
    /// A parameter set the parser rejects.
    #[error("NAL unit {index}: cannot parse the {what}: {reason}")]
    ParameterSet {
        /// NAL unit number.
        index: usize,
        /// SPS or PPS.
        what: &'static str,
        /// The parser's message.
        reason: String,
    },
}

/// The NAL units of a stream, in decode order.
#[derive(Clone, Debug, Default)]
pub struct NalSource {
    /// The bytes the ranges point into.
    pub data: Vec<u8>,
    /// The NAL units (without start code or length prefix).
    pub nals: Vec<Range<usize>>,
    /// The container, for messages.
    pub container: Cow<'static, str>,
}

impl NalSource {
    /// Splits an Annex-B byte stream into NAL units.
    pub fn load(data: Vec<u8>) -> Result<Self, StreamError> {
        if !nal::looks_like_annex_b(&data) {
            return Err(StreamError::NotH264);
        }
        let nals = split_annex_b(&data)?;
        Ok(NalSource {
            data,
            nals,
            container: "Annex-B".into(),
        })
    }

    /// The NAL units of the H.264 track of a container: the parameter sets of its `avcC` record
    /// then the length-prefixed NAL units of every packet (MP4, Matroska), or the NAL units of
    /// Annex-B packets (MPEG-TS, or a track without `avcC`).
    pub fn from_container(mut demuxer: Demuxer) -> Result<Self, StreamError> {
        let track = demuxer.track();
        let container = track.container.clone();
        // A codec record that is not Annex-B parameter sets is `avcC` (ISO/IEC 14496-15).
        let annex_b = track.extradata.is_empty() || nal::looks_like_annex_b(&track.extradata);
        let avcc = if annex_b {
            None
        } else {
            Some(nal::parse_avcc(&track.extradata)?)
        };
        let mut out = Vec::new();
        let mut nals = Vec::new();
        let mut push = |out: &mut Vec<u8>, nal: &[u8]| {
            nals.push(out.len()..out.len() + nal.len());
            out.extend_from_slice(nal);
        };
        if let Some(config) = &avcc {
            for ps in &config.parameter_sets {
                push(&mut out, ps);
            }
        } else if !track.extradata.is_empty() {
            for r in split_annex_b(&track.extradata)? {
                push(&mut out, &track.extradata[r]);
            }
        }
        let mut packet = Vec::new();
        while demuxer.next_packet(&mut packet)?.is_some() {
            let ranges = match &avcc {
                Some(config) => split_length_prefixed(&packet, config.length_size)?,
                None => split_annex_b(&packet)?,
            };
            for r in ranges {
                push(&mut out, &packet[r]);
            }
        }
        Ok(NalSource {
            data: out,
            nals,
            container: container.into(),
        })
    }

    /// An upper bound of the bytes of one picture's slices with a 3-byte start code each
    /// (OUTPUT buffer size), from the NAL sizes alone: slices are summed from one with
    /// `first_mb_in_slice = 0` to the next.
    pub fn max_picture_bytes(&self) -> usize {
        let mut max = 0;
        let mut run = 0;
        for r in &self.nals {
            let nal = &self.data[r.clone()];
            let Some(&head) = nal.first() else { continue };
            if matches!(head & 0x1f, 1 | 5) {
                // first_mb_in_slice = 0 is the one-bit ue(v) "1".
                if nal.get(1).is_some_and(|b| b & 0x80 != 0) {
                    run = 0;
                }
                run += nal.len() + 3;
                max = max.max(run);
            }
        }
        max
    }
}

/// One slice NAL unit of a picture.
#[derive(Clone, Debug)]
pub struct SliceUnit {
    /// Where the NAL unit is in [`NalSource::data`].
    pub range: Range<usize>,
    /// `nal_ref_idc`.
    pub nal_ref_idc: u8,
    /// An IDR slice (NAL type 5).
    pub idr: bool,
    /// The parsed header.
    pub header: SliceHeader,
}

/// The slices of one picture with its parameter sets.
#[derive(Clone, Debug)]
pub struct Picture {
    /// The active SPS.
    pub sps: Rc<Sps>,
    /// The PPS of the slices.
    pub pps: Rc<Pps>,
    /// Its slices in decode order.
    pub slices: Vec<SliceUnit>,
}

impl Picture {
    /// The first slice (every picture has one).
    pub fn first(&self) -> &SliceUnit {
        &self.slices[0]
    }
}

/// Pictures out of a [`NalSource`].
pub struct Pictures<'a> {
    src: &'a NalSource,
    next_nal: usize,
    parser: Parser,
    pending: Option<Picture>,
    /// Slices skipped because their header did not parse (or named a missing PPS).
    pub bad_slices: u64,
}

fn nalu(bytes: &[u8]) -> Option<Nalu<'_>> {
    let &head = bytes.first()?;
    let type_ = NaluType::try_from(head & 0x1f).ok()?;
    Some(Nalu {
        header: NaluHeader {
            ref_idc: (head >> 5) & 3,
            type_,
            idr_pic_flag: matches!(type_, NaluType::SliceIdr),
        },
        data: Cow::Borrowed(bytes),
        size: bytes.len(),
        offset: 0,
    })
}

/// Whether slice `b` starts a new picture after slice `a` (7.4.1.2.4, frames).
fn new_picture(a: &SliceUnit, b: &SliceUnit) -> bool {
    let (x, y) = (&a.header, &b.header);
    y.first_mb_in_slice == 0
        || x.frame_num != y.frame_num
        || x.pic_parameter_set_id != y.pic_parameter_set_id
        || x.field_pic_flag != y.field_pic_flag
        || x.bottom_field_flag != y.bottom_field_flag
        || (a.nal_ref_idc == 0) != (b.nal_ref_idc == 0)
        || x.pic_order_cnt_lsb != y.pic_order_cnt_lsb
        || x.delta_pic_order_cnt_bottom != y.delta_pic_order_cnt_bottom
        || x.delta_pic_order_cnt != y.delta_pic_order_cnt
        || a.idr != b.idr
        || (a.idr && x.idr_pic_id != y.idr_pic_id)
}

impl<'a> Pictures<'a> {
    /// Pictures of `src` from its start.
    pub fn new(src: &'a NalSource) -> Self {
        Pictures {
            src,
            next_nal: 0,
            parser: Parser::default(),
            pending: None,
            bad_slices: 0,
        }
    }

    /// The next picture; `Ok(None)` at the end.
    pub fn next_picture(&mut self) -> Result<Option<Picture>, StreamError> {
        while let Some(range) = self.src.nals.get(self.next_nal).cloned() {
            let index = self.next_nal;
            self.next_nal += 1;
            let bytes = &self.src.data[range.clone()];
            let Some(n) = nalu(bytes) else { continue };
            match n.header.type_ {
                NaluType::Sps => {
                    self.parser
                        .parse_sps(&n)
                        .map_err(|reason| StreamError::ParameterSet {
                            index,
                            what: "SPS",
                            reason,
                        })?;
                }
                NaluType::Pps => {
                    if let Err(reason) = self.parser.parse_pps(&n) {
                        return Err(StreamError::ParameterSet {
                            index,
                            what: "PPS",
                            reason,
                        });
                    }
                }
                NaluType::Slice | NaluType::SliceIdr => {
                    let (ref_idc, idr) = (n.header.ref_idc, n.header.idr_pic_flag);
                    let slice = match self.parser.parse_slice_header(n) {
                        Ok(s) => s,
                        Err(e) => {
                            warn!("NAL unit {index}: slice header: {e}: skipped");
                            self.bad_slices += 1;
                            continue;
                        }
                    };
                    if slice.header.redundant_pic_cnt > 0 {
                        // Redundant pictures are for error concealment: FFmpeg skips them too.
                        continue;
                    }
                    let Some(pps) = self
                        .parser
                        .get_pps(slice.header.pic_parameter_set_id)
                        .cloned()
                    else {
                        self.bad_slices += 1;
                        continue;
                    };
                    let unit = SliceUnit {
                        range,
                        nal_ref_idc: ref_idc,
                        idr,
                        header: slice.header,
                    };
                    match &mut self.pending {
                        Some(p) if !new_picture(&p.slices[p.slices.len() - 1], &unit) => {
                            p.slices.push(unit);
                        }
                        _ => {
                            let done = self.pending.replace(Picture {
                                sps: pps.sps.clone(),
                                pps,
                                slices: vec![unit],
                            });
                            if done.is_some() {
                                return Ok(done);
                            }
                        }
                    }
                }
                NaluType::AuDelimiter | NaluType::SeqEnd | NaluType::StreamEnd => {
                    // An access unit ends here.
                    if let Some(done) = self.pending.take() {
                        return Ok(Some(done));
                    }
                }
                _ => {}
            }
        }
        Ok(self.pending.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors() -> Option<std::path::PathBuf> {
        let dir = std::env::var_os("DAEDALUS_VECTORS")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors")
            });
        dir.join("h264").is_dir().then_some(dir)
    }

    #[test]
    fn groups_slices_into_pictures() {
        let Some(dir) = vectors() else {
            eprintln!("note: no H.264 vectors (DAEDALUS_VECTORS): skipped");
            return;
        };
        // (stream, pictures, slices)
        for (name, pictures) in [
            ("h264/cros-codecs/test-25fps.h264", 250),
            ("h264/openh264/BA1_FT_C.264", 299),
            ("h264/openh264/BASQP1_Sony_C.jsv", 4),
            ("h264/openh264/MIDR_MW_D.264", 100),
        ] {
            let data = std::fs::read(dir.join(name)).unwrap();
            let src = NalSource::load(data).unwrap();
            assert!(src.max_picture_bytes() > 0);
            let mut p = Pictures::new(&src);
            let mut n = 0;
            let mut slices = 0;
            while let Some(pic) = p.next_picture().unwrap() {
                n += 1;
                slices += pic.slices.len();
                assert_eq!(pic.first().header.first_mb_in_slice, 0);
            }
            assert_eq!((name, n), (name, pictures));
            assert!(slices >= n);
            assert_eq!(p.bad_slices, 0);
        }
    }

    /// The slice NAL units of a stream (the parameter sets may move into `avcC`).
    fn slices(s: &NalSource) -> Vec<Vec<u8>> {
        s.nals
            .iter()
            .map(|r| s.data[r.clone()].to_vec())
            .filter(|n| matches!(n.first().map(|h| h & 0x1f), Some(1 | 5)))
            .collect()
    }

    fn from_file(name: &str) -> NalSource {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name);
        let input = crate::decode::Input::File(path);
        let demuxer = crate::demux::Demuxer::open(&input, crate::demux::Probe::Headers)
            .unwrap()
            .expect("a container");
        NalSource::from_container(demuxer).unwrap()
    }

    /// Matroska and MP4 remuxes (avcC + length-prefixed NAL units) of an Annex-B vector give its
    /// pictures and its slices.
    #[test]
    fn containers() {
        for (name, container) in [
            ("h264-cabac-bframes-640x320.mkv", "Matroska / WebM"),
            ("h264-cabac-bframes-640x320.mp4", "QuickTime / MOV"),
        ] {
            let src = from_file(name);
            assert_eq!(src.container, container);
            let mut p = Pictures::new(&src);
            let mut n = 0;
            while let Some(pic) = p.next_picture().unwrap() {
                assert_eq!((pic.sps.width(), pic.sps.height()), (640, 320));
                assert!(n > 0 || pic.first().idr);
                n += 1;
            }
            assert_eq!((name, n, p.bad_slices), (name, 9, 0));
            let Some(dir) = vectors() else {
                continue;
            };
            let annexb = std::fs::read(
                dir.join("h264/openh264/Cisco_Men_whisper_640x320_CABAC_Bframe_9.264"),
            )
            .unwrap();
            assert_eq!(slices(&src), slices(&NalSource::load(annexb).unwrap()));
        }
    }

    /// A broken `avcC` is an error, not a guess.
    #[test]
    fn broken_avcc() {
        let mkv = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/h264-cabac-bframes-640x320.mkv"),
        )
        .unwrap();
        let at = mkv
            .windows(2)
            .position(|w| w == [0x63, 0xA2])
            .expect("CodecPrivate");
        let mut broken = mkv.clone();
        broken[at + 3] = 0; // configurationVersion
        let input = crate::decode::Input::Memory(broken.into());
        let demuxer = crate::demux::Demuxer::open(&input, crate::demux::Probe::Headers)
            .unwrap()
            .expect("a container");
        assert!(matches!(
            NalSource::from_container(demuxer),
            Err(StreamError::Nal(_))
        ));
        assert!(matches!(NalSource::load(mkv), Err(StreamError::NotH264)));
    }
}
