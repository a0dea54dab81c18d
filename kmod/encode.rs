// SPDX-License-Identifier: GPL-2.0
//! The wire message of a decode job ([`crate::wire`]): its buffers, the formats and the full
//! control state of its context, copied when the job is made (the next job of the same context
//! applies its own request to the same handler).

use crate::ctrls;
use crate::device::Daedalus;
use crate::media::ctrls::Ctrl;
use crate::media::m2m::{ActiveJob, JobBuf};
use crate::media::prelude::*;
use crate::video::{CaptureFormat, CodedFormat};
use crate::wire::{self, BufferDesc, JobEncoder, JobHeader, PictureFormat};

/// Builds the message of job `id`.
pub(crate) fn encode(job: &ActiveJob<Daedalus>, id: u64) -> Result<KVec<u8>> {
    let file = job.file();
    let (coded, capture) = file.data().formats();
    let ids = ctrls::job_controls(coded.codec);
    // The controls' current values, under the handler's lock (against S_EXT_CTRLS and the
    // request setup of the context's next job).
    file.handler()
        .snapshot::<{ ctrls::MAX_JOB_CONTROLS }, _>(ids, |found| {
            encode_locked(job, id, &coded, &capture, found)
        })
}

/// As [`encode`], with `ctrls` a snapshot of the context's controls.
fn encode_locked(
    job: &ActiveJob<Daedalus>,
    id: u64,
    coded: &CodedFormat,
    capture: &CaptureFormat,
    ctrls: &[Option<Ctrl<'_>>],
) -> Result<KVec<u8>> {
    let mut size = wire::JOB_FIXED_SIZE;
    for c in ctrls.iter().flatten() {
        size += (wire::CONTROL_HEADER_SIZE + c.bytes().len() + 7) & !7;
    }
    if size > wire::MAX_MESSAGE_SIZE {
        return Err(code::E2BIG);
    }
    let (s, d) = (job.src(), job.dst());
    let (sp, dp) = (s.plane0(), d.plane0());
    // The CAPTURE format follows the controls: a stream whose bit depth changed without the
    // client reallocating no longer fits its buffers.
    if capture.layout.sizeimage > dp.length {
        pr_warn!(
            "job {}: a {}x{} picture does not fit CAPTURE buffer {}\n",
            id,
            capture.layout.width,
            capture.layout.height,
            d.index()
        );
        return Err(code::ENOSPC);
    }
    let generation = |which| job.data(which).map_or(0, |b| b.generation());
    let mut msg = KVec::from_elem(0u8, size, GFP_KERNEL)?;
    let l = &capture.layout;
    let header = JobHeader {
        job_id: id,
        ctx_id: job.file().data().id,
        codec: coded.codec,
        flags: if job.holds_capture() {
            wire::JOB_FLAG_HOLD_CAPTURE
        } else {
            0
        },
        timestamp_ns: s.timestamp(),
        coded_width: coded.width,
        coded_height: coded.height,
        output: BufferDesc {
            fd: -1,
            index: s.index(),
            generation: generation(JobBuf::Output),
            length: sp.length,
            bytesused: sp.bytesused,
            data_offset: sp.data_offset.min(sp.bytesused),
        },
        capture: BufferDesc {
            fd: -1,
            index: d.index(),
            generation: generation(JobBuf::Capture),
            length: dp.length,
            bytesused: 0,
            data_offset: 0,
        },
        picture: PictureFormat::of_layout(capture.depth, l),
    };
    let mut enc = JobEncoder::new(&mut msg, &header).map_err(|_| code::EINVAL)?;
    for c in ctrls.iter().flatten() {
        let bytes = c.bytes();
        let out = enc
            .control(c.id(), c.elems(), bytes.len())
            .map_err(|_| code::E2BIG)?;
        out.copy_from_slice(bytes);
    }
    let n = enc.finish().map_err(|_| code::EINVAL)?;
    if n != size {
        return Err(code::EINVAL);
    }
    Ok(msg)
}
