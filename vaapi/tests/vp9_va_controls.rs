// SPDX-License-Identifier: GPL-2.0
//! VP9 through the VA interface makes the same V4L2 controls as the `daedalus decode` client.
//!
//! For each stream (the committed ones in tools/tests/data and the shared VP9 vectors when
//! present), two sides run frame by frame:
//!
//! * the client: frames out of the container with FFmpeg's demuxer (`Vp9Stream`), its header
//!   parse, and references named by the timestamps of the eight reference slots, as
//!   `daedalus decode` does (`frame_control` with the slot timestamps, pictures numbered from 1
//!   in submission order);
//! * VA: an IVF reader and superframe split of our own, and the VA buffers filled the way
//!   FFmpeg's `vaapi_vp9.c` fills them (picture parameters from the frame header, reference
//!   slots as surface ids from a pool of 20 surfaces, one slice parameter, the whole frame as
//!   slice data), handed to the driver's VP9 mapping as `vaRenderPicture` hands them over, with
//!   the surfaces' timestamps as the driver keeps them (request number of the picture decoded
//!   into each).
//!
//! Every request's `VP9_FRAME`, `VP9_COMPRESSED_HDR` and bitstream must be identical. VA's
//! parameters lack what the controls need most (`base_q_idx`, loop filter deltas, the
//! compressed header), so the driver parses the frame as the client does; what this checks is
//! everything around the parse: buffers, offsets, the VA slot/surface bookkeeping, the
//! cross-checks of the VA values.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use daedalus_codecs::ivf::{self, IvfReader};
use daedalus_codecs::pod;
use daedalus_drv_video::context::{Picture, Rendered};
use daedalus_drv_video::va;

mod common;
use common::rendered;
use daedalus_drv_video::vp9::Vp9;
use daedalus_tools::decode::Input;
use daedalus_tools::demux::{Demuxer, Probe};
use daedalus_tools::engine::RefSlots;
use daedalus_tools::sys::{v4l2_ctrl_vp9_compressed_hdr, v4l2_ctrl_vp9_frame};
use daedalus_tools::vp9::stream::Vp9Stream;
use daedalus_tools::vp9::v4l2::{frame_control, RefTimestamps};
use daedalus_tools::vp9::{parse_frame, superframe, FrameHeader, HeaderParser};

/// What one request carries.
#[derive(Clone)]
struct Request {
    frame: v4l2_ctrl_vp9_frame,
    compressed: v4l2_ctrl_vp9_compressed_hdr,
    data: Vec<u8>,
}

/// The `daedalus decode` side.
fn client_requests(path: &Path) -> Vec<Request> {
    let demuxer = Demuxer::open(&Input::File(path.to_path_buf()), Probe::Headers)
        .expect("container")
        .expect("a container");
    let mut stream = Vp9Stream::new(demuxer);
    let mut compressed = v4l2_ctrl_vp9_compressed_hdr::default();
    let mut slots = RefSlots::default();
    let mut next_id = 1;
    let mut out = Vec::new();
    while let Some(f) = stream.next_frame(&mut compressed).expect("parsable stream") {
        let h = &f.parsed.header;
        if h.show_existing_frame {
            continue;
        }
        let refs = if h.is_intra() {
            RefTimestamps::default()
        } else {
            let ts = slots.timestamps();
            let slot = |i: usize| ts[usize::from(h.ref_frame_idx[i])];
            RefTimestamps {
                last: slot(0),
                golden: slot(1),
                alt: slot(2),
            }
        };
        out.push(Request {
            frame: frame_control(h, &f.parsed.compressed, refs),
            compressed,
            data: f.data.to_vec(),
        });
        slots.refresh(h.refresh_frame_flags, Some(next_id));
        next_id += 1;
    }
    out
}

/// FFmpeg's `vaapi_vp9_start_frame()`: the picture parameters of a frame.
fn picture_parameters(
    h: &FrameHeader,
    refs: &[Option<u32>; 8],
) -> va::VADecPictureParameterBufferVP9 {
    let mut reference_frames = [va::VA_INVALID_ID; 8];
    for (surface, slot) in reference_frames.iter_mut().zip(refs) {
        *surface = slot.unwrap_or(va::VA_INVALID_ID);
    }
    let mut p = va::VADecPictureParameterBufferVP9 {
        frame_width: h.width as u16,
        frame_height: h.height as u16,
        reference_frames,
        filter_level: h.lf.level,
        sharpness_level: h.lf.sharpness,
        log2_tile_rows: h.tile_rows_log2,
        log2_tile_columns: h.tile_cols_log2,
        frame_header_length_in_bytes: h.uncompressed_header_size as u8,
        first_partition_size: h.compressed_header_size,
        mb_segment_tree_probs: h.seg.tree_probs,
        segment_pred_probs: if h.seg.temporal_update {
            h.seg.pred_probs
        } else {
            [255; 3]
        },
        profile: h.profile,
        bit_depth: h.bit_depth,
        ..Default::default()
    };
    // SAFETY: writing the bit fields of a zeroed union.
    let f = unsafe { &mut p.pic_fields.bits };
    f.set_subsampling_x(u32::from(h.subsampling_x));
    f.set_subsampling_y(u32::from(h.subsampling_y));
    f.set_frame_type(u32::from(!h.key_frame));
    f.set_show_frame(u32::from(h.show_frame));
    f.set_error_resilient_mode(u32::from(h.error_resilient_mode));
    f.set_intra_only(u32::from(h.intra_only));
    f.set_allow_high_precision_mv(u32::from(!h.key_frame && h.allow_high_precision_mv));
    f.set_mcomp_filter_type(u32::from(h.interpolation_filter));
    f.set_frame_parallel_decoding_mode(u32::from(h.frame_parallel_decoding_mode));
    f.set_reset_frame_context(u32::from(h.reset_frame_context));
    f.set_refresh_frame_context(u32::from(h.refresh_frame_context));
    f.set_frame_context_idx(u32::from(h.frame_context_idx));
    f.set_segmentation_enabled(u32::from(h.seg.enabled));
    f.set_segmentation_temporal_update(u32::from(h.seg.temporal_update));
    f.set_segmentation_update_map(u32::from(h.seg.update_map));
    f.set_last_ref_frame(u32::from(h.ref_frame_idx[0]));
    f.set_last_ref_frame_sign_bias(u32::from(h.ref_frame_sign_bias[0]));
    f.set_golden_ref_frame(u32::from(h.ref_frame_idx[1]));
    f.set_golden_ref_frame_sign_bias(u32::from(h.ref_frame_sign_bias[1]));
    f.set_alt_ref_frame(u32::from(h.ref_frame_idx[2]));
    f.set_alt_ref_frame_sign_bias(u32::from(h.ref_frame_sign_bias[2]));
    f.set_lossless_flag(u32::from(h.quant.lossless()));
    p
}

/// The VA side: `(requests, pictures)`.
fn va_requests(path: &Path) -> Vec<Request> {
    let mut reader = IvfReader::new(fs::File::open(path).expect("stream")).expect("IVF");
    let surfaces: Vec<u32> = (1..=20).map(|i| 0x3000_0000 | i).collect();
    // FFmpeg's side: its own parse, its reference slots (surfaces).
    let mut ffmpeg = HeaderParser::new();
    let mut refs: [Option<u32>; 8] = [None; 8];
    // The driver's side: its VP9 state, the request number of the picture in each surface.
    let mut driver = Vp9::new();
    let mut seq_of: HashMap<u32, u64> = HashMap::new();
    let mut next_seq = 1;
    let mut out = Vec::new();
    let mut packet = Vec::new();
    while reader.next_frame(&mut packet).expect("IVF frame").is_some() {
        let frames = superframe::split(&packet).expect("superframe index");
        for &(offset, size) in frames.ranges() {
            let data = &packet[offset..offset + size];
            let mut scratch = v4l2_ctrl_vp9_compressed_hdr::default();
            let h = parse_frame(&mut ffmpeg, data, &mut scratch)
                .expect("frame")
                .header;
            if h.show_existing_frame {
                // FFmpeg shows the reference itself: no VA call.
                continue;
            }
            let surface = *surfaces
                .iter()
                .find(|s| !refs.contains(&Some(**s)))
                .expect("a free surface");
            let pic = picture_parameters(&h, &refs);
            let slice = va::VASliceParameterBufferVP9 {
                slice_data_size: data.len() as u32,
                slice_data_offset: 0,
                slice_data_flag: va::VA_SLICE_DATA_FLAG_ALL,
                ..Default::default()
            };
            let picture = Picture {
                surface,
                buffers: vec![
                    rendered(va::VAPictureParameterBufferType, &pic),
                    rendered(va::VASliceParameterBufferType, &slice),
                    Rendered {
                        buf_type: va::VASliceDataBufferType,
                        element_size: data.len() as u32,
                        num_elements: 1,
                        bytes: data.to_vec(),
                    },
                ],
            };
            // What the driver's end_picture does with it.
            let pic: va::VADecPictureParameterBufferVP9 =
                picture.param(va::VAPictureParameterBufferType).unwrap();
            let slice: va::VASliceParameterBufferVP9 =
                picture.param(va::VASliceParameterBufferType).unwrap();
            let slice_data = &picture
                .of_type(va::VASliceDataBufferType)
                .next()
                .unwrap()
                .bytes;
            let f = driver
                .frame(&pic, &slice, slice_data, |s| {
                    seq_of.get(&s).map(|seq| seq * 1000)
                })
                .unwrap_or_else(|e| panic!("{}: request {next_seq}: {e}", path.display()));
            out.push(Request {
                frame: f.frame,
                compressed: *f.compressed,
                data: slice_data[f.data].to_vec(),
            });
            seq_of.insert(surface, next_seq);
            next_seq += 1;
            for (i, slot) in refs.iter_mut().enumerate() {
                if h.refresh_frame_flags & (1 << i) != 0 {
                    *slot = Some(surface);
                }
            }
        }
    }
    out
}

/// The committed VP9 streams and the shared VP9 vectors (when present).
fn streams() -> Vec<PathBuf> {
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/tests/data")];
    dirs.extend(daedalus_codecs::vectors::shared_subdir_or_skip("vp9"));
    dirs.iter()
        .flat_map(|d| ivf::files_under(d).unwrap_or_else(|e| panic!("{}: {e}", d.display())))
        .collect()
}

#[test]
fn va_parameters_make_the_clients_controls() {
    let streams = streams();
    assert!(streams.len() >= 3, "the committed streams are there");
    for path in streams {
        let name = path.display();
        let client = client_requests(&path);
        let va = va_requests(&path);
        assert_eq!(client.len(), va.len(), "{name}: requests");
        assert!(!client.is_empty(), "{name}: no frame");
        for (i, (c, v)) in client.iter().zip(&va).enumerate() {
            assert!(
                pod::bytes(&c.frame) == pod::bytes(&v.frame),
                "{name}: request {}: VP9_FRAME differs",
                i + 1
            );
            assert!(
                pod::bytes(&c.compressed) == pod::bytes(&v.compressed),
                "{name}: request {}: VP9_COMPRESSED_HDR differs",
                i + 1
            );
            assert!(
                c.data == v.data,
                "{name}: request {}: bitstream differs",
                i + 1
            );
        }
        eprintln!("{name}: {} requests identical", client.len());
    }
}

#[test]
fn va_parameters_that_disagree_with_the_stream_are_refused() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/tests/data/vp9-8bit-35x19-arf.ivf");
    let mut reader = IvfReader::new(fs::File::open(&path).unwrap()).unwrap();
    let mut packet = Vec::new();
    reader.next_frame(&mut packet).unwrap().unwrap();
    let (offset, size) = superframe::split(&packet).unwrap().ranges()[0];
    let data = &packet[offset..offset + size];
    let h = parse_frame(&mut HeaderParser::new(), data, &mut Default::default())
        .unwrap()
        .header;
    let slice = va::VASliceParameterBufferVP9 {
        slice_data_size: size as u32,
        ..Default::default()
    };
    let good = picture_parameters(&h, &[None; 8]);
    assert!(Vp9::new().frame(&good, &slice, data, |_| None).is_ok());
    let mut wrong_size = good;
    wrong_size.frame_width += 2;
    let mut wrong_header = good;
    wrong_header.first_partition_size += 1;
    for bad in [wrong_size, wrong_header] {
        assert_eq!(
            Vp9::new().frame(&bad, &slice, data, |_| None).err(),
            Some(daedalus_drv_video::status::Error::DECODING_ERROR)
        );
    }
    // Slice data outside the buffer, partial slices.
    let beyond = va::VASliceParameterBufferVP9 {
        slice_data_offset: 1,
        ..slice
    };
    assert!(Vp9::new().frame(&good, &beyond, data, |_| None).is_err());
    let partial = va::VASliceParameterBufferVP9 {
        slice_data_flag: va::VA_SLICE_DATA_FLAG_BEGIN,
        ..slice
    };
    assert!(Vp9::new().frame(&good, &partial, data, |_| None).is_err());
}
