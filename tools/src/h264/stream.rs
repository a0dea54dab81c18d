// SPDX-License-Identifier: GPL-2.0
//! H.264 input: the NAL units of an Annex-B stream or of the H.264 track of an MP4 or
//! Matroska / WebM file (`V_MPEG4/ISO/AVC`, `avcC` as CodecPrivate), parsed
//! with cros-codecs (`cros_codecs::codec::h264::parser`) and grouped into pictures (H.264
//! 7.4.1.2.4: a new picture starts with `first_mb_in_slice = 0` or when a slice header differs
//! from the previous one in the fields that identify a picture).

use std::borrow::Cow;
use std::ops::Range;
use std::rc::Rc;

use cros_codecs::codec::h264::parser::{Nalu, NaluHeader, NaluType, Parser, Pps, SliceHeader, Sps};
use log::warn;

use super::nal::{self, split_annex_b, split_length_prefixed};
use crate::mp4;
use crate::webm::{self, WebmReader};

/// Why the stream cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Not H.264 in a container this reads.
    #[error("not an H.264 stream (Annex-B with start codes, or MP4)")]
    NotH264,
    /// Broken NAL framing.
    #[error(transparent)]
    Nal(#[from] nal::NalError),
    /// Broken MP4.
    #[error(transparent)]
    Mp4(#[from] mp4::Mp4Error),
    /// Broken Matroska / WebM, or no H.264 track in it.
    #[error(transparent)]
    Webm(#[from] webm::WebmError),
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
    pub container: &'static str,
}

/// Whether the first bytes of a file look like H.264 this module reads (Annex-B or MP4;
/// Matroska needs its track list: [`webm_has_h264`]).
pub fn sniff(first_bytes: &[u8]) -> bool {
    nal::looks_like_annex_b(first_bytes) || mp4::sniff(first_bytes)
}

/// The EBML header ID that starts every Matroska / WebM file.
const EBML_MAGIC: [u8; 4] = [0x1A, 0x45, 0xDF, 0xA3];

/// Whether `input` is a Matroska / WebM file with an H.264 (`V_MPEG4/ISO/AVC`) video track
/// (reads its headers only).
pub fn webm_has_h264(input: impl std::io::Read) -> bool {
    WebmReader::with_codecs(input, &[webm::H264_CODEC_ID]).is_ok()
}

impl NalSource {
    /// Splits a whole file into NAL units: MP4 (`ftyp` first), Matroska / WebM (EBML header
    /// first) or Annex-B.
    pub fn load(data: Vec<u8>) -> Result<Self, StreamError> {
        if data.starts_with(&EBML_MAGIC) {
            return Self::load_matroska(&data);
        }
        if mp4::sniff(&data) {
            let track = mp4::read_track(&data)?;
            let mut out = Vec::with_capacity(data.len());
            let mut nals = Vec::new();
            for ps in &track.config.parameter_sets {
                nals.push(out.len()..out.len() + ps.len());
                out.extend_from_slice(ps);
            }
            for sample in &track.samples {
                let bytes = &data[sample.clone()];
                for r in split_length_prefixed(bytes, track.config.length_size)? {
                    nals.push(out.len()..out.len() + r.len());
                    out.extend_from_slice(&bytes[r]);
                }
            }
            return Ok(NalSource {
                data: out,
                nals,
                container: "MP4",
            });
        }
        if !nal::looks_like_annex_b(&data) {
            return Err(StreamError::NotH264);
        }
        let nals = split_annex_b(&data)?;
        Ok(NalSource {
            data,
            nals,
            container: "Annex-B",
        })
    }

    /// The parameter sets of the `avcC` CodecPrivate, then the length-prefixed NAL units of
    /// every block of the first H.264 track.
    fn load_matroska(data: &[u8]) -> Result<Self, StreamError> {
        let mut reader = WebmReader::with_codecs(data, &[webm::H264_CODEC_ID])?;
        let config = nal::parse_avcc(&reader.header().codec_private)?;
        let mut out = Vec::with_capacity(data.len());
        let mut nals = Vec::new();
        for ps in &config.parameter_sets {
            nals.push(out.len()..out.len() + ps.len());
            out.extend_from_slice(ps);
        }
        let mut block = Vec::new();
        while reader.next_frame(&mut block)?.is_some() {
            for r in split_length_prefixed(&block, config.length_size)? {
                nals.push(out.len()..out.len() + r.len());
                out.extend_from_slice(&block[r]);
            }
        }
        Ok(NalSource {
            data: out,
            nals,
            container: "Matroska",
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

    #[test]
    fn matroska() {
        let mkv = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/h264-cabac-bframes-640x320.mkv"),
        )
        .unwrap();
        assert!(!sniff(&mkv[..16]));
        assert!(webm_has_h264(&mkv[..]));
        let src = NalSource::load(mkv.clone()).unwrap();
        assert_eq!(src.container, "Matroska");
        let mut p = Pictures::new(&src);
        let mut n = 0;
        while let Some(pic) = p.next_picture().unwrap() {
            assert_eq!((pic.sps.width(), pic.sps.height()), (640, 320));
            assert!(n > 0 || pic.first().idr);
            n += 1;
        }
        assert_eq!((n, p.bad_slices), (9, 0));
        // A broken avcC (the CodecPrivate cut short) is an error, not a guess.
        let at = mkv
            .windows(2)
            .position(|w| w == [0x63, 0xA2])
            .expect("CodecPrivate");
        let mut broken = mkv.clone();
        broken[at + 3] = 0; // configurationVersion
        assert!(matches!(
            NalSource::load(broken),
            Err(StreamError::Nal(nal::NalError::BadAvcc(_)))
        ));
        // The same slices as the Annex-B original.
        let Some(dir) = vectors() else {
            return;
        };
        let annexb =
            std::fs::read(dir.join("h264/openh264/Cisco_Men_whisper_640x320_CABAC_Bframe_9.264"))
                .unwrap();
        assert_eq!(slices(&src), slices(&NalSource::load(annexb).unwrap()));
        // No H.264 track: a VP9 WebM is not H.264.
        let vp9 = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/vp9-8bit-35x19-arf.webm"),
        )
        .unwrap();
        assert!(!webm_has_h264(&vp9[..]));
        assert!(matches!(NalSource::load(vp9), Err(StreamError::Webm(_))));
    }

    #[test]
    fn mp4_gives_the_same_nals() {
        let Some(dir) = vectors() else {
            return;
        };
        let data = std::fs::read(dir.join("h264/cros-codecs/64x64-I-P-B-P-high.h264")).unwrap();
        let annexb = NalSource::load(data).unwrap();
        // Build an MP4: SPS/PPS into avcC, one sample per picture (length-prefixed NALs).
        let nal = |i: usize| &annexb.data[annexb.nals[i].clone()];
        // The stream starts with an access unit delimiter, then SPS and PPS.
        let first_ps = (0..annexb.nals.len())
            .find(|&i| nal(i)[0] & 0x1f == 7)
            .unwrap();
        let (sps, pps) = (nal(first_ps), nal(first_ps + 1));
        assert_eq!((sps[0] & 0x1f, pps[0] & 0x1f), (7, 8));
        let mut avcc = vec![1, sps[1], sps[2], sps[3], 0xff, 0xe1];
        avcc.extend((sps.len() as u16).to_be_bytes());
        avcc.extend(sps);
        avcc.push(1);
        avcc.extend((pps.len() as u16).to_be_bytes());
        avcc.extend(pps);
        let others = || (0..annexb.nals.len()).filter(|&i| i != first_ps && i != first_ps + 1);
        let samples: Vec<Vec<u8>> = others()
            .map(|i| {
                let mut s = (nal(i).len() as u32).to_be_bytes().to_vec();
                s.extend(nal(i));
                s
            })
            .collect();
        let file = mp4::tests::file(&avcc, &samples, None);
        let m = NalSource::load(file).unwrap();
        assert_eq!(m.container, "MP4");
        let all = |s: &NalSource| {
            s.nals
                .iter()
                .map(|r| s.data[r.clone()].to_vec())
                .collect::<Vec<_>>()
        };
        let expected: Vec<Vec<u8>> = [first_ps, first_ps + 1]
            .into_iter()
            .chain(others())
            .map(|i| nal(i).to_vec())
            .collect();
        assert_eq!(all(&m), expected);
    }
}
