// SPDX-License-Identifier: GPL-2.0
//! The `/dev/daedalus` wire format (`proto`), which the module and the daemon share. Two halves,
//! chosen by the first byte:
//! * raw bytes: decoded without a panic; a job that decodes has a picture format that fits its
//!   CAPTURE buffer (what decoding promises the daemon), and re-encodes to bytes that decode to
//!   the same job (header, every control); context events likewise. The completion and hello
//!   ioctl payloads the module decodes from the daemon: no panic, and a completion that decodes
//!   re-encodes to the same bytes.
//! * a job built from the input through `JobEncoder` (what the module writes): if it encodes and
//!   decodes, it decodes to what was encoded.
#![no_main]

use arbitrary::{Result, Unstructured};
use daedalus_proto::formats::{BitDepth, CaptureLayout, Codec};
use daedalus_proto::wire::{
    decode, encode_context_event, BufferDesc, Completion, ContextEvent, Hello, JobEncoder,
    JobHeader, Message, PictureFormat, MAX_MESSAGE_SIZE,
};
use libfuzzer_sys::fuzz_target;

fn buffer(u: &mut Unstructured<'_>) -> Result<BufferDesc> {
    Ok(BufferDesc {
        fd: u.arbitrary()?,
        index: u.arbitrary()?,
        generation: u.arbitrary()?,
        length: u.arbitrary()?,
        bytesused: u.arbitrary()?,
        data_offset: u.arbitrary()?,
    })
}

/// Encodes a job made from `u`; if it decodes, it must decode to the same job.
fn encoded_job(u: &mut Unstructured<'_>) -> Result<()> {
    let depth = *u.choose(&[BitDepth::Eight, BitDepth::Ten])?;
    let picture = if u.arbitrary()? {
        let layout =
            CaptureLayout::new(depth, u.int_in_range(1..=8192)?, u.int_in_range(1..=8192)?);
        PictureFormat::of_layout(depth, &layout)
    } else {
        PictureFormat {
            fourcc: u.arbitrary()?,
            width: u.arbitrary()?,
            height: u.arbitrary()?,
            bytesperline: u.arbitrary()?,
            sizeimage: u.arbitrary()?,
            chroma_offset: u.arbitrary()?,
        }
    };
    let header = JobHeader {
        job_id: u.arbitrary()?,
        ctx_id: u.arbitrary()?,
        codec: *u.choose(&[Codec::Vp9, Codec::Av1, Codec::H264])?,
        flags: u.arbitrary()?,
        timestamp_ns: u.arbitrary()?,
        coded_width: u.arbitrary()?,
        coded_height: u.arbitrary()?,
        output: buffer(u)?,
        capture: buffer(u)?,
        picture,
    };
    let mut out = vec![0u8; MAX_MESSAGE_SIZE];
    let Ok(mut enc) = JobEncoder::new(&mut out, &header) else {
        return Ok(());
    };
    let mut controls = Vec::new();
    for _ in 0..u.int_in_range(0..=20)? {
        let (id, elems): (u32, u32) = (u.arbitrary()?, u.arbitrary()?);
        let size = u.int_in_range(0..=256usize)?.min(u.len());
        let payload = u.bytes(size)?;
        let Ok(room) = enc.control(id, elems, payload.len()) else {
            break;
        };
        room.copy_from_slice(payload);
        controls.push((id, elems, payload));
    }
    let Ok(len) = enc.finish() else { return Ok(()) };
    if let Ok(Message::Job(job)) = decode(&out[..len]) {
        assert_eq!(format!("{:?}", job.header), format!("{header:?}"));
        let decoded: Vec<_> = job.controls.map(|c| (c.id, c.elems, c.payload)).collect();
        assert_eq!(decoded, controls);
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    if let Some((&1, rest)) = data.split_first() {
        let _ = encoded_job(&mut Unstructured::new(rest));
        return;
    }
    if let Some(b) = data.first_chunk::<{ Completion::SIZE }>() {
        if let Ok(c) = Completion::decode(b) {
            assert_eq!(Completion::decode(&c.encode()), Ok(c));
        }
    }
    if let Some(b) = data.first_chunk::<{ Hello::SIZE }>() {
        let _ = Hello::decode(b);
    }
    let Ok(message) = decode(data) else { return };
    let mut again = vec![0u8; MAX_MESSAGE_SIZE];
    let (event, ctx_id) = match message {
        Message::Job(job) => {
            job.header
                .picture
                .check(job.header.capture.length)
                .expect("a decoded job's picture fits its CAPTURE buffer");
            let mut enc = JobEncoder::new(&mut again, &job.header)
                .expect("a decoded job's header re-encodes");
            for c in job.controls {
                enc.control(c.id, c.elems, c.payload.len())
                    .expect("a decoded job's control re-encodes")
                    .copy_from_slice(c.payload);
            }
            let len = enc.finish().expect("a decoded job re-encodes");
            let Ok(Message::Job(job2)) = decode(&again[..len]) else {
                panic!("a re-encoded job does not decode");
            };
            assert_eq!(format!("{:?}", job.header), format!("{:?}", job2.header));
            assert!(
                job.controls.eq(job2.controls),
                "controls differ after re-encoding"
            );
            return;
        }
        Message::ContextOpen { ctx_id } => (ContextEvent::Open, ctx_id),
        Message::ContextFlush { ctx_id } => (ContextEvent::Flush, ctx_id),
        Message::ContextClose { ctx_id } => (ContextEvent::Close, ctx_id),
    };
    let len = encode_context_event(event, ctx_id, &mut again).expect("a context event re-encodes");
    let decoded = decode(&again[..len]).expect("a re-encoded context event decodes");
    assert_eq!(format!("{decoded:?}"), format!("{message:?}"));
});
