#!/usr/bin/env python3
"""A scripted stand-in for daedalusd that exercises the kernel side of /dev/daedalus.

It speaks the wire format of proto/src/wire.rs (kept in sync by hand: the offsets below are
that file's) and checks everything the module sends: message framing, job fields, dma-buf fds
(each new fd must be a mappable dma-buf of the announced length, sent once per buffer
generation), and the control state (the codec's per-frame control must be there).

Modes:
  protocol        handshake and error-path checks, then exit (no client needed)
  serve MODE      attach and answer every job: MODE = error (STATUS_DECODE_ERROR),
                  invalid (a completion with a wrong context: the module must refuse it with
                  EINVAL and fail the job), hang (read jobs, never answer)
                  Runs until SIGTERM/SIGKILL; prints a summary on SIGTERM.
"""
import errno
import fcntl
import mmap
import os
import select
import signal
import stat
import struct
import sys

DEVICE = "/dev/daedalus"
VERSION = 1
MAGIC = struct.unpack("<I", b"DDLS")[0]
MAX_MESSAGE_SIZE = 64 * 1024
IOC_HELLO = 0xC020DA01
IOC_COMPLETE = 0x4020DA02
KIND_JOB, KIND_OPEN, KIND_FLUSH, KIND_CLOSE = 1, 2, 3, 4
STATUS_OK, STATUS_DECODE_ERROR = 0, 1
JOB_FIXED_SIZE = 152
# V4L2_CID_STATELESS_*: VP9_FRAME = base+300, AV1_FRAME = base+502, H264_DECODE_PARAMS = base+7
CID_BASE = 0x00A40000 | 0x900
CODECS = {b"VP9F": CID_BASE + 300, b"AV1F": CID_BASE + 502, b"S264": CID_BASE + 7}


def fail(msg):
    print(f"fake_daemon: FAIL: {msg}", flush=True)
    sys.exit(1)


def hello(fd, version):
    buf = bytearray(struct.pack("<III20x", version, 0, 0))
    try:
        fcntl.ioctl(fd, IOC_HELLO, buf, True)
        err = 0
    except OSError as e:
        err = e.errno
    return err, struct.unpack_from("<III", buf)


def complete(fd, job_id, ctx_id, status, bytesused):
    buf = struct.pack("<QIII12x", job_id, ctx_id, status, bytesused)
    try:
        fcntl.ioctl(fd, IOC_COMPLETE, buf)
        return 0
    except OSError as e:
        return e.errno


def expect(what, got, want):
    if got != want:
        fail(f"{what}: expected {errno.errorcode.get(want, want)}, got {errno.errorcode.get(got, got)}")
    print(f"fake_daemon: ok: {what}", flush=True)


def protocol_checks():
    fd = os.open(DEVICE, os.O_RDWR | os.O_NONBLOCK)
    try:
        os.open(DEVICE, os.O_RDWR)
        fail("a second open succeeded")
    except OSError as e:
        expect("second daemon is refused", e.errno, errno.EBUSY)
    try:
        os.read(fd, MAX_MESSAGE_SIZE)
        fail("read before IOC_HELLO succeeded")
    except OSError as e:
        expect("read before the handshake", e.errno, errno.EPROTO)
    err, (ver, _, _) = hello(fd, VERSION + 41)
    expect("another protocol version is refused", err, errno.EPROTO)
    if ver != VERSION:
        fail(f"the module did not report its version (got {ver})")
    err, (ver, max_msg, timeout) = hello(fd, VERSION)
    expect("handshake", err, 0)
    if max_msg != MAX_MESSAGE_SIZE or timeout == 0:
        fail(f"handshake answer: max_message_size {max_msg}, timeout {timeout}")
    try:
        os.read(fd, MAX_MESSAGE_SIZE)
        fail("read with nothing queued succeeded")
    except OSError as e:
        expect("non-blocking read of an empty queue", e.errno, errno.EAGAIN)
    expect("completion of an unknown job", complete(fd, 12345, 1, STATUS_OK, 1), errno.ENOENT)
    expect("completion with a bad status", complete(fd, 1, 1, 77, 1), errno.EINVAL)
    try:
        fcntl.ioctl(fd, 0xC020DA09, bytearray(32), True)
        fail("unknown ioctl succeeded")
    except OSError as e:
        expect("unknown ioctl", e.errno, errno.ENOTTY)
    os.close(fd)
    # Closing detaches: a new daemon can attach again.
    fd = os.open(DEVICE, os.O_RDWR)
    expect("attach again after detach", hello(fd, VERSION)[0], 0)
    os.close(fd)


class Server:
    def __init__(self, mode):
        self.mode = mode
        self.fd = os.open(DEVICE, os.O_RDWR)
        err, _ = hello(self.fd, VERSION)
        if err:
            fail(f"handshake: {errno.errorcode.get(err)}")
        self.mapped = {}  # (ctx, queue, index) -> generation
        self.jobs = 0
        self.events = {KIND_OPEN: 0, KIND_FLUSH: 0, KIND_CLOSE: 0}

    def check_fd(self, key, fd, generation, length):
        if fd >= 0:
            if self.mapped.get(key) == generation:
                fail(f"buffer {key} generation {generation} sent twice")
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
                fail(f"fd {fd} is not a dma-buf")
            m = mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            m.close()
            os.close(fd)
            self.mapped[key] = generation
        elif self.mapped.get(key) != generation:
            fail(f"buffer {key} generation {generation} never sent, fd -1")

    def job(self, msg):
        (job_id, ctx, codec, flags, nctrl, ts, cw, ch) = struct.unpack_from("<QI4sIIQII", msg, 16)
        out = struct.unpack_from("<iIIIII", msg, 56)
        cap = struct.unpack_from("<iIIIII", msg, 88)
        pic = struct.unpack_from("<4sIIIII", msg, 120)
        if codec not in CODECS:
            fail(f"job codec {codec}")
        if out[4] > out[3] or cap[4] != 0 or pic[4] > cap[3]:
            fail(f"job buffers out of bounds: {out} {cap} {pic}")
        if pic[0] not in (b"NV12", b"P010") or pic[1] == 0 or pic[3] < pic[1]:
            fail(f"job picture format {pic}")
        self.check_fd((ctx, "out", out[1]), out[0], out[2], out[3])
        self.check_fd((ctx, "cap", cap[1]), cap[0], cap[2], cap[3])
        ids = []
        off = JOB_FIXED_SIZE
        for _ in range(nctrl):
            cid, size, elems, _ = struct.unpack_from("<IIII", msg, off)
            ids.append(cid)
            off += (16 + size + 7) & ~7
        if off != len(msg):
            fail(f"controls end at {off}, message is {len(msg)} bytes")
        if CODECS[codec] not in ids:
            fail(f"{codec} job without its per-frame control: {[hex(i) for i in ids]}")
        self.jobs += 1
        if self.mode == "hang":
            print(f"fake_daemon: holding job {job_id}", flush=True)
        if self.mode == "error":
            err = complete(self.fd, job_id, ctx, STATUS_DECODE_ERROR, 0)
            if err:
                fail(f"completion refused: {errno.errorcode.get(err)}")
        elif self.mode == "invalid":
            err = complete(self.fd, job_id, ctx + 1000, STATUS_OK, pic[4])
            if err != errno.EINVAL:
                fail(f"completion with a wrong context: {errno.errorcode.get(err, err)}")
            # The job is gone: a second answer is unknown.
            if complete(self.fd, job_id, ctx, STATUS_OK, pic[4]) != errno.ENOENT:
                fail("a failed job could be completed again")

    def run(self):
        poll = select.poll()
        poll.register(self.fd, select.POLLIN)
        print(f"fake_daemon: serving ({self.mode})", flush=True)
        while True:
            # 'invalid' uses blocking reads, the others poll() first: both paths get exercised.
            if self.mode != "invalid":
                poll.poll()
            msg = os.read(self.fd, MAX_MESSAGE_SIZE)
            magic, kind, size, _ = struct.unpack_from("<IIII", msg)
            if magic != MAGIC or size != len(msg):
                fail(f"bad message header {magic:#x} {kind} {size} ({len(msg)} bytes)")
            if kind == KIND_JOB:
                self.job(msg)
            elif kind in self.events:
                self.events[kind] += 1
            else:
                fail(f"unknown message kind {kind}")

    def summary(self, *_):
        print(f"fake_daemon: {self.jobs} jobs, events {self.events}", flush=True)
        sys.exit(0)


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "protocol":
        protocol_checks()
        return
    if len(sys.argv) == 3 and sys.argv[1] == "serve" and sys.argv[2] in ("error", "invalid", "hang"):
        s = Server(sys.argv[2])
        signal.signal(signal.SIGTERM, s.summary)
        s.run()
        return
    print(__doc__)
    sys.exit(2)


if __name__ == "__main__":
    main()
