// SPDX-License-Identifier: GPL-2.0
//! Jobs that must fail cleanly (right status, no crash, no leaked fd) and a context that keeps
//! decoding correctly afterwards.

mod common;

use std::os::fd::OwnedFd;

use common::*;
use daedalus_daemon::codec::vp9::FrameControl;
use daedalus_daemon::{Context, DecoderConfig};
use daedalus_proto::formats::{BitDepth, CaptureLayout, Codec};
use daedalus_proto::wire::{
    self, BufferDesc, Completion, JobEncoder, JobHeader, Message, PictureFormat, Status,
    MAX_MESSAGE_SIZE,
};

const OUT_LEN: u32 = 64 * 1024;

fn picture(depth: BitDepth, w: u32, h: u32) -> PictureFormat {
    PictureFormat::of_layout(depth, &CaptureLayout::new(depth, w, h))
}

/// One context with one OUTPUT and one CAPTURE buffer, fed hand-made jobs.
struct Rig {
    ctx: Context,
    out: OwnedFd,
    cap: OwnedFd,
    cap_len: u32,
    out_mapped: bool,
    cap_mapped: bool,
    job_id: u64,
    msg: Vec<u8>,
}

impl Rig {
    fn new() -> Rig {
        let cap_len = picture(BitDepth::Ten, 160, 90).sizeimage;
        Rig {
            ctx: Context::new(
                5,
                DecoderConfig {
                    threads: 1,
                    ..Default::default()
                },
            ),
            out: memfd(OUT_LEN as usize),
            cap: memfd(cap_len as usize),
            cap_len,
            out_mapped: false,
            cap_mapped: false,
            job_id: 0,
            msg: vec![0; MAX_MESSAGE_SIZE],
        }
    }

    fn header(&mut self, bitstream: &[u8], pic: PictureFormat) -> JobHeader {
        pwrite(&self.out, bitstream, 0);
        pwrite(&self.out, &[0xff; 64], bitstream.len());
        let out_fd = if self.out_mapped { -1 } else { dup(&self.out) };
        let cap_fd = if self.cap_mapped { -1 } else { dup(&self.cap) };
        self.job_id += 1;
        JobHeader {
            job_id: self.job_id,
            ctx_id: 5,
            codec: Codec::Vp9,
            flags: 0,
            timestamp_ns: 0,
            coded_width: pic.width,
            coded_height: pic.height,
            output: BufferDesc {
                fd: out_fd,
                index: 0,
                generation: 1,
                length: OUT_LEN,
                bytesused: bitstream.len() as u32,
                data_offset: 0,
            },
            capture: BufferDesc {
                fd: cap_fd,
                index: 0,
                generation: 1,
                length: self.cap_len,
                bytesused: 0,
                data_offset: 0,
            },
            picture: pic,
        }
    }

    /// Sends a job; `tweak` may change the header before it is encoded.
    fn send(&mut self, h: JobHeader, control: bool) -> Completion {
        let mut e = JobEncoder::new(&mut self.msg, &h).unwrap();
        if control {
            let ctrl = FrameControl {
                flags: FLAG_SHOW_FRAME,
                profile: 0,
                bit_depth: 8,
                width: h.coded_width,
                height: h.coded_height,
            };
            let p = e
                .control(
                    daedalus_daemon::codec::vp9::CID_FRAME,
                    1,
                    FrameControl::SIZE,
                )
                .unwrap();
            p.fill(0);
            ctrl.write(p);
        }
        let n = e.finish().unwrap();
        let Ok(Message::Job(job)) = wire::decode(&self.msg[..n]) else {
            panic!("invalid job")
        };
        let c = self.ctx.handle_job(&job);
        if h.output.fd >= 0 {
            self.out_mapped = true;
        }
        if h.capture.fd >= 0 {
            self.cap_mapped = true;
        }
        assert_eq!((c.job_id, c.ctx_id), (h.job_id, 5));
        assert_eq!(c.capture_bytesused, h.picture.sizeimage);
        c
    }

    fn job(&mut self, bitstream: &[u8], pic: PictureFormat) -> Completion {
        let h = self.header(bitstream, pic);
        self.send(h, true)
    }

    fn capture_md5(&self, pic: &PictureFormat, w: u32, h: u32) -> String {
        planar_md5(&pread(&self.cap, pic.sizeimage as usize), pic, w, h)
    }
}

fn tiny() -> (Vec<Vec<u8>>, Vec<String>) {
    let frames = ivf_frames(&std::fs::read(data_dir().join("tiny-96x64-8bit-arf.ivf")).unwrap());
    let md5 = read_framemd5(&data_dir().join("tiny-96x64-8bit-arf.ivf.ffmpeg-yuv420p.framemd5"));
    (frames, md5)
}

fn fd_is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only queries the fd table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

#[test]
fn buffer_errors_are_internal_errors() {
    let (frames, md5) = tiny();
    let pic = picture(BitDepth::Eight, 96, 64);
    let mut r = Rig::new();
    // fd -1 for buffers never mapped.
    r.out_mapped = true;
    r.cap_mapped = true;
    assert_eq!(r.job(&frames[0], pic).status, Status::InternalError);
    // A bogus fd number.
    let mut h = r.header(&frames[0], pic);
    h.output.fd = 1 << 20;
    assert_eq!(r.send(h, true).status, Status::InternalError);
    // Index out of range: the new fd is closed, not leaked.
    r.out_mapped = false;
    r.cap_mapped = false;
    let mut h = r.header(&frames[0], pic);
    h.capture.index = 64;
    let (out_fd, cap_fd) = (h.output.fd, h.capture.fd);
    assert_eq!(r.send(h, true).status, Status::InternalError);
    assert!(!fd_is_open(cap_fd), "fd of the refused buffer leaked");
    // The OUTPUT buffer of that job was mapped and cached nonetheless (and its fd kept for
    // DMA_BUF_IOCTL_SYNC).
    assert!(fd_is_open(out_fd));
    assert_eq!(r.ctx.buffer_counts(), (1, 0));
    r.cap_mapped = false;
    // A buffer larger than its dma-buf would fault when touched: refused.
    let mut h = r.header(&frames[0], pic);
    h.capture.length = r.cap_len + 4096;
    assert_eq!(r.send(h, true).status, Status::InternalError);
    r.cap_mapped = false;
    // Good job: decodes.
    let c = r.job(&frames[0], pic);
    assert_eq!(c.status, Status::Ok);
    assert_eq!(r.capture_md5(&pic, 96, 64), md5[0]);
    // Stale generation with fd -1.
    let mut h = r.header(&frames[1], pic);
    h.capture.generation = 2;
    assert_eq!(r.send(h, true).status, Status::InternalError);
    assert_eq!(r.ctx.stats().internal_errors, 5);
}

#[test]
fn corrupt_bitstreams_are_decode_errors_and_decoding_recovers() {
    let (frames, md5) = tiny();
    let pic = picture(BitDepth::Eight, 96, 64);
    let mut r = Rig::new();
    let key = &frames[0];
    // Empty, one garbage byte, a bad sync code, a key frame cut short.
    assert_eq!(r.job(&[], pic).status, Status::DecodeError);
    assert_eq!(r.job(&[0x00], pic).status, Status::DecodeError);
    let mut bad_sync = key.clone();
    bad_sync[2] ^= 0xff;
    assert_eq!(r.job(&bad_sync, pic).status, Status::DecodeError);
    // Cut inside the uncompressed or the compressed header. (A cut inside the last tile's
    // data goes unnoticed: FFmpeg's range decoder reads zeros past the end, and the tile data
    // has no length to check against; such a frame decodes to a damaged picture.)
    for cut in [4, 20, 30] {
        assert_eq!(
            r.job(&key[..cut], pic).status,
            Status::DecodeError,
            "cut {cut}"
        );
    }
    let s = r.job(&key[..key.len() / 2], pic).status;
    assert!(s == Status::Ok || s == Status::DecodeError);
    // An inter frame without references (the half key frame above may have decoded).
    r.ctx.flush(&mut Vec::new());
    assert_eq!(r.job(&frames[2], pic).status, Status::DecodeError);
    // Pseudo-random garbage of many sizes: never a crash.
    let mut seed = 0x9e37_79b9u32;
    for len in (1..3000).step_by(37) {
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                seed as u8
            })
            .collect();
        let s = r.job(&junk, pic).status;
        assert!(
            s == Status::DecodeError || s == Status::Ok || s == Status::Unsupported,
            "{s:?}"
        );
    }
    // A damaged key frame body (header intact).
    let mut damaged = key.clone();
    for b in damaged[40..].iter_mut().step_by(7) {
        *b ^= 0x5a;
    }
    let _ = r.job(&damaged, pic);
    // Then the whole stream decodes byte-exactly.
    r.ctx.flush(&mut Vec::new());
    let mut client = Client::new(ClientConfig::new(5));
    run_sync(&mut r.ctx, &mut client, &frames);
    assert_eq!(client.displayed, md5);
    assert!(r.ctx.stats().decode_errors >= 7);
}

#[test]
fn flush_drops_references() {
    let (frames, md5) = tiny();
    let pic = picture(BitDepth::Eight, 96, 64);
    let mut r = Rig::new();
    assert_eq!(r.job(&frames[0], pic).status, Status::Ok);
    r.ctx.flush(&mut Vec::new());
    // frames[1] is a hidden inter frame: its references are gone.
    assert_eq!(r.job(&frames[1], pic).status, Status::DecodeError);
    assert_eq!(r.job(&frames[0], pic).status, Status::Ok);
    assert_eq!(r.capture_md5(&pic, 96, 64), md5[0]);
}

#[test]
fn format_problems() {
    let (frames, _) = tiny();
    let mut r = Rig::new();
    // CAPTURE format smaller than the frame.
    assert_eq!(
        r.job(&frames[0], picture(BitDepth::Eight, 64, 64)).status,
        Status::DecodeError
    );
    // 10-bit CAPTURE format for an 8-bit stream.
    assert_eq!(
        r.job(&frames[0], picture(BitDepth::Ten, 96, 64)).status,
        Status::DecodeError
    );
    // The job says H.264 but carries VP9 bytes and no H.264 controls: refused as broken input
    // (a decode error), nothing decoded.
    let mut h = r.header(&frames[0], picture(BitDepth::Eight, 96, 64));
    h.codec = Codec::H264;
    assert_eq!(r.send(h, true).status, Status::DecodeError);
    // No VP9 frame control: the bitstream is enough.
    let h = r.header(&frames[0], picture(BitDepth::Eight, 96, 64));
    assert_eq!(r.send(h, false).status, Status::Ok);
    // Profile 1 (4:4:4) key frame header: unsupported.
    let mut p1 = frames[0].clone();
    p1[0] = 0xa2; // marker 10, profile_low 1, profile_high 0: profile 1
    assert_eq!(
        r.job(&p1, picture(BitDepth::Eight, 96, 64)).status,
        Status::Unsupported
    );
    let s = r.ctx.stats();
    assert_eq!((s.decode_errors, s.unsupported, s.ok), (3, 1, 1));
}
