#!/usr/bin/env bash
# Regenerates the small VP9 test streams of tools/tests (run from anywhere; needs FFmpeg with
# libvpx and python3). The streams are synthetic (lavfi testsrc2); the references are FFmpeg's:
#   NAME.ivf            the stream
#   NAME.framemd5       ffmpeg -i NAME.ivf -fps_mode passthrough -autoscale 0 -pix_fmt P -f framemd5
#   NAME.nv12 / .p010   the displayed pictures as ffmpeg decodes them, tightly packed NV12 / P010LE
#                       (what a CAPTURE buffer holds, without the stride padding)
#   NAME*.webm          WebM remuxes of NAME.ivf (FFmpeg -c copy; live / with audio variants)
set -euo pipefail
cd "$(dirname "$0")"
ff() { ffmpeg -hide_banner -loglevel error -y "$@"; }

# 8-bit, odd size, hidden alt-ref frames in superframes, compound prediction (two passes:
# libvpx only places alt-ref frames with first-pass statistics here).
src=(-f lavfi -i smptebars=size=36x20:rate=30 -vf crop=35:19:0:0:exact=1,noise=alls=20:allf=t
     -frames:v 16 -c:v libvpx-vp9 -auto-alt-ref 1 -lag-in-frames 25 -g 100 -b:v 30k
     -passlogfile /tmp/daedalus-vp9-2pass)
ff "${src[@]}" -pass 1 -f null -
ff "${src[@]}" -pass 2 vp9-8bit-35x19-arf.ivf
rm -f /tmp/daedalus-vp9-2pass*
# 10-bit (profile 2), lossless (the compressed header has no tx_mode).
ff -f lavfi -i testsrc2=size=18x10:rate=25 -frames:v 4 -pix_fmt yuv420p10le -c:v libvpx-vp9 \
   -lossless 1 -deadline good -cpu-used 4 vp9-10bit-18x10-lossless.ivf
# A resolution change on a key frame: two streams, the second one's timestamps shifted.
ff -f lavfi -i testsrc2=size=16x16:rate=30 -frames:v 4 -c:v libvpx-vp9 -b:v 20k /tmp/part1.ivf
ff -f lavfi -i testsrc2=size=24x20:rate=30 -frames:v 3 -c:v libvpx-vp9 -b:v 20k /tmp/part2.ivf
# concat_ivf PART... OUT: the IVF streams one after the other, each one's timestamps shifted
# to follow the previous one's (the header is the first part's, with the total frame count).
concat_ivf() {
python3 - "$@" <<'PY'
import struct, sys
def frames(path):
    d = open(path, 'rb').read()
    hdr, pos = d[:32], 32
    while pos < len(d):
        size, pts = struct.unpack_from('<IQ', d, pos)
        yield pts, d[pos + 12:pos + 12 + size]
        pos += 12 + size
out = []
for path in sys.argv[1:-1]:
    base = out[-1][0] + 1 if out else 0
    out += [(pts + base, data) for pts, data in frames(path)]
hdr = bytearray(open(sys.argv[1], 'rb').read()[:32])
struct.pack_into('<I', hdr, 24, len(out))
with open(sys.argv[-1], 'wb') as f:
    f.write(hdr)
    for pts, data in out:
        f.write(struct.pack('<IQ', len(data), pts) + data)
PY
}
concat_ivf /tmp/part1.ivf /tmp/part2.ivf vp9-8bit-resize.ivf
# Larger then smaller again, each change on a key frame, across CAPTURE pitches (rows are padded
# to 64 bytes: 128, 192, 128): a VA client that keeps its context (GStreamer's vavp9dec)
# allocates surfaces of each new size.
# (Noise: every picture differs from the others.)
ff -f lavfi -i testsrc2=size=72x40:rate=30 -vf noise=alls=20:allf=t -frames:v 3 -c:v libvpx-vp9 -b:v 20k /tmp/part3.ivf
ff -f lavfi -i testsrc2=size=136x80:rate=30 -vf noise=alls=20:allf=t -frames:v 3 -c:v libvpx-vp9 -b:v 20k /tmp/part4.ivf
ff -f lavfi -i smptebars=size=72x40:rate=30 -vf noise=alls=20:allf=t -frames:v 3 -c:v libvpx-vp9 -b:v 20k /tmp/part5.ivf
concat_ivf /tmp/part3.ivf /tmp/part4.ivf /tmp/part5.ivf vp9-8bit-resize-up-down.ivf
rm -f /tmp/part[1-5].ivf

for name in vp9-8bit-35x19-arf vp9-8bit-resize; do
  ff -i $name.ivf -fps_mode passthrough -autoscale 0 -pix_fmt yuv420p -f framemd5 $name.framemd5
  ff -i $name.ivf -fps_mode passthrough -autoscale 0 -pix_fmt nv12 -f rawvideo $name.nv12
done
ff -i vp9-8bit-resize-up-down.ivf -fps_mode passthrough -autoscale 0 -pix_fmt yuv420p -f framemd5 \
   vp9-8bit-resize-up-down.framemd5
name=vp9-10bit-18x10-lossless
ff -i $name.ivf -fps_mode passthrough -autoscale 0 -pix_fmt yuv420p10le -f framemd5 $name.framemd5
ff -i $name.ivf -fps_mode passthrough -autoscale 0 -pix_fmt p010le -f rawvideo $name.p010

# WebM copies of the IVF streams (tests/webm_streams.rs checks that the WebM reader gives the
# IVF frames, byte for byte, with the same timestamps). Bit-exact muxing: no random UIDs.
for name in vp9-8bit-35x19-arf vp9-10bit-18x10-lossless vp9-8bit-resize; do
  ff -i $name.ivf -c copy -fflags +bitexact -f webm $name.webm
done
# Live WebM as browsers' MediaRecorder writes it: a Segment and Clusters of unknown size, and
# several Clusters. FFmpeg writes an unknown-size Segment when it cannot seek (a pipe) but
# always sizes its Clusters: their sizes are overwritten in place with the unknown size of the
# same length (all value bits set), which keeps every other offset valid.
ff -i vp9-8bit-35x19-arf.ivf -c copy -fflags +bitexact -f webm -live 1 -cluster_time_limit 150 - \
  > vp9-8bit-35x19-arf-live.webm
python3 - vp9-8bit-35x19-arf-live.webm <<'PY'
import sys
path = sys.argv[1]
d = bytearray(open(path, 'rb').read())
def vint(pos):
    n = 1
    while not d[pos] & (0x80 >> (n - 1)):
        n += 1
    v = d[pos] & (0xFF >> n)
    for b in d[pos + 1:pos + n]:
        v = (v << 8) | b
    return v, n
def element(pos):
    _, id_len = vint(pos)
    size, size_len = vint(pos + id_len)
    unknown = size == (1 << (7 * size_len)) - 1
    return bytes(d[pos:pos + id_len]), pos + id_len, size_len, None if unknown else size
ident, size_at, n, size = element(0)                 # EBML header
ident, size_at, n, size = element(size_at + n + size)  # Segment
assert ident == b'\x18\x53\x80\x67' and size is None
at = size_at + n
clusters = 0
while at < len(d):
    ident, size_at, n, size = element(at)
    if ident == b'\x1f\x43\xb6\x75':
        d[size_at:size_at + n] = bytes([(0x100 >> (n - 1)) - 1] + [0xFF] * (n - 1))
        clusters += 1
    at = size_at + n + size
assert clusters > 1
open(path, 'wb').write(d)
PY
# An Opus audio track first (track 1), its blocks interleaved with the video's, its last one in
# a BlockGroup (DiscardPadding).
ff -f lavfi -i sine=frequency=440:sample_rate=48000:duration=0.53 -i vp9-8bit-35x19-arf.ivf \
   -map 0:a -map 1:v -c:v copy -c:a libopus -flags:a +bitexact -b:a 6k -ac 1 -fflags +bitexact -f webm \
   vp9-8bit-35x19-arf-opus.webm

# H.264 in Matroska (V_MPEG4/ISO/AVC, avcC CodecPrivate, length-prefixed NAL units): a remux of
# the openh264 vector Cisco_Men_whisper_640x320_CABAC_Bframe_9.264 (BSD-2-Clause; 9 pictures,
# CABAC, B-frames) from DAEDALUS_VECTORS. Raw H.264 has no timestamps for B-frames, so the
# blocks count decode order (setts); decoders order pictures by POC anyway.
vectors=${DAEDALUS_VECTORS:-$(pwd)/../../../../shared/vectors}
ff -i "$vectors/h264/openh264/Cisco_Men_whisper_640x320_CABAC_Bframe_9.264" -c copy \
   -bsf:v setts=ts=N -map_metadata -1 -fflags +bitexact -flags +bitexact h264-cabac-bframes-640x320.mkv
# The same stream in MP4 (avcC in the sample description, length-prefixed samples).
ff -i "$vectors/h264/openh264/Cisco_Men_whisper_640x320_CABAC_Bframe_9.264" -c copy \
   -bsf:v setts=ts=N -map_metadata -1 -fflags +bitexact -flags +bitexact h264-cabac-bframes-640x320.mp4
