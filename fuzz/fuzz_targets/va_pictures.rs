// SPDX-License-Identifier: GPL-2.0
//! The VA-API driver's per-codec mapping of the buffers a client renders (`vaRenderPicture`:
//! picture / IQ matrix / slice parameters and slice data, all client memory) to V4L2 controls
//! and OUTPUT bytes: a sequence of pictures of one codec, each a list of buffers with any bytes,
//! any element sizes and counts, mapped by the context state the driver keeps between them,
//! without a panic (a panic in the driver aborts the player it is loaded into). AV1 frames run
//! through the reference-tracking queue (refresh sets learnt from later frames) as
//! `vaEndPicture` does.
#![no_main]

use arbitrary::{Result, Unstructured};
use daedalus_drv_video::av1::{va_picture, Av1};
use daedalus_drv_video::caps::Profile;
use daedalus_drv_video::context::{Picture, Rendered};
use daedalus_drv_video::h264::H264;
use daedalus_drv_video::va;
use daedalus_drv_video::vp9::Vp9;
use libfuzzer_sys::fuzz_target;

/// The element size of each buffer type the codec's mapping reads.
fn element_size(codec: u8, buf_type: va::VABufferType) -> usize {
    use std::mem::size_of;
    match (codec, buf_type) {
        (0, va::VAPictureParameterBufferType) => size_of::<va::VAPictureParameterBufferH264>(),
        (0, va::VAIQMatrixBufferType) => size_of::<va::VAIQMatrixBufferH264>(),
        (0, va::VASliceParameterBufferType) => size_of::<va::VASliceParameterBufferH264>(),
        (1, va::VAPictureParameterBufferType) => size_of::<va::VADecPictureParameterBufferVP9>(),
        (1, va::VASliceParameterBufferType) => size_of::<va::VASliceParameterBufferVP9>(),
        (2, va::VAPictureParameterBufferType) => size_of::<va::VADecPictureParameterBufferAV1>(),
        (2, va::VASliceParameterBufferType) => size_of::<va::VASliceParameterBufferAV1>(),
        _ => 1,
    }
}

fn picture(u: &mut Unstructured<'_>, codec: u8) -> Result<Picture> {
    let surface = u.int_in_range(0..=23)?;
    let mut buffers = Vec::new();
    for _ in 0..u.int_in_range(1..=6)? {
        let buf_type = *u.choose(&[
            va::VAPictureParameterBufferType,
            va::VAIQMatrixBufferType,
            va::VASliceParameterBufferType,
            va::VASliceDataBufferType,
        ])?;
        // Mostly the size the driver expects, sometimes another (a client's mistake).
        let mut size = element_size(codec, buf_type);
        if u.ratio(1, 16)? {
            size = u.int_in_range(0..=size + 8)?;
        }
        let num_elements: u32 = if buf_type == va::VASliceDataBufferType {
            u.int_in_range(0..=4096)?
        } else {
            u.int_in_range(1..=3)?
        };
        let element_size = if buf_type == va::VASliceDataBufferType {
            1
        } else {
            size
        };
        let len = element_size * num_elements as usize;
        let available = len.min(u.len());
        let mut bytes = u.bytes(available)?.to_vec();
        bytes.resize(len, 0);
        buffers.push(Rendered {
            buf_type,
            element_size: element_size as u32,
            num_elements,
            bytes,
        });
    }
    Ok(Picture { surface, buffers })
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let codec = u.int_in_range(0..=2)?;
    // Surfaces 0..15 hold pictures of this context, the others none.
    let reference = |s: va::VASurfaceID| (s < 16).then_some(u64::from(s) * 1000);
    let profile = *u.choose(&[
        Profile::H264ConstrainedBaseline,
        Profile::H264Main,
        Profile::H264High,
    ])?;
    let mut h264 = H264::new(profile);
    let mut vp9 = Vp9::new();
    let mut av1 = Av1::new();
    let mut timestamp = 0;
    while !u.is_empty() {
        let p = picture(u, codec)?;
        match codec {
            0 => {
                let _ = h264.map(&p, reference);
            }
            1 => {
                let _ = vp9.map(&p, reference);
            }
            _ => {
                // As the driver's vaEndPicture and vaSyncSurface do.
                let Ok(va) = va_picture(&p) else { continue };
                for submit in av1.resolve(&va) {
                    let _ = submit.frame.mapped(submit.refresh);
                    timestamp += 1000;
                    av1.queued(&submit.frame, timestamp);
                }
                if let Ok(Some(frame)) = av1.frame(va, p.surface, reference) {
                    let _ = frame.mapped(frame.known_refresh.unwrap_or(0));
                    timestamp += 1000;
                    av1.queued(&frame, timestamp);
                }
                if u.ratio(1, 4)? {
                    let synced = u.int_in_range(0..=23)?;
                    for (index, frame) in av1.flush_for(Some(synced)) {
                        let _ = frame.mapped(0);
                        timestamp += 1000;
                        av1.queued_early(index, timestamp);
                    }
                }
            }
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
