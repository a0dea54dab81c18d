#!/usr/bin/env bash
# Regenerates the tiny VP9 test vectors and their per-frame MD5s (FFmpeg 5.1 with libvpx, Debian 12).
# Two-pass libvpx with auto-alt-ref, so that each stream has hidden alt-ref frames in superframes
# (frames 1 and 6) and "show the ARF" frames (5 and 11). The 10-bit stream is profile 2 at an odd
# size (97x61). The MD5s are of planar yuv420p / yuv420p10le per displayed frame, as
# `ffmpeg -f framemd5` writes them (libvpx, `ffmpeg -c:v libvpx-vp9`, gives the same MD5s).
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

enc() { # enc OUT SIZE [extra ffmpeg output options...]
  local out=$1 size=$2
  shift 2
  for pass in 1 2; do
    local dst=("$tmp/null.ivf")
    [[ $pass == 2 ]] && dst=("$out")
    ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=$size:rate=10" -frames:v 12 "$@" \
      -c:v libvpx-vp9 -b:v 60k -g 12 -auto-alt-ref 1 -lag-in-frames 12 -deadline good -cpu-used 4 \
      -threads 1 -pass "$pass" -passlogfile "$tmp/pass" "${dst[@]}"
  done
}

enc tiny-96x64-8bit-arf.ivf 96x64
enc tiny-97x61-10bit-arf.ivf 98x62 -vf scale=97:61,format=yuv420p10le -profile:v 2

ffmpeg -hide_banner -loglevel error -y -i tiny-96x64-8bit-arf.ivf -fps_mode passthrough \
  -pix_fmt yuv420p -f framemd5 tiny-96x64-8bit-arf.ivf.ffmpeg-yuv420p.framemd5
ffmpeg -hide_banner -loglevel error -y -i tiny-97x61-10bit-arf.ivf -fps_mode passthrough \
  -pix_fmt yuv420p10le -f framemd5 tiny-97x61-10bit-arf.ivf.ffmpeg-yuv420p10le.framemd5

# H.264 (libx264, Annex-B) for tests/pipeline.rs: one slice with a B-pyramid (High), three CAVLC
# slices (Main), 10-bit with cropping (High 10, 98x62); IDRs every 12 / 10 / 15 frames. The MD5s
# are FFmpeg's, in output order.
x264() { # x264 OUT SIZE X264_PARAMS [extra ffmpeg output options...]
  local out=$1 size=$2 params=$3
  shift 3
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=$size:rate=10" -frames:v 30 "$@" \
    -c:v libx264 -preset medium -x264-params "$params" -threads 1 -f h264 "$out"
  ffmpeg -hide_banner -loglevel error -y -i "$out" -f framemd5 "$out.framemd5"
}
x264 h264-96x64-bpyramid.264 96x64 keyint=12:min-keyint=12:scenecut=0:bframes=3:b-pyramid=normal:ref=3:slices=1 \
  -profile:v high
x264 h264-96x64-3slices-cavlc.264 96x64 keyint=10:min-keyint=10:scenecut=0:bframes=2:b-pyramid=none:ref=2:slices=3 \
  -profile:v main -coder 0
x264 h264-98x62-10bit-bframes.264 98x62 keyint=15:min-keyint=15:scenecut=0:bframes=2:b-pyramid=normal:ref=3 \
  -vf format=yuv420p10le -profile:v high10

# AV1 (libaom, good quality, alt-refs: hidden frames and show_existing_frame) for tests/pipeline.rs,
# 8-bit 96x64 and 10-bit 98x62, a key frame every 12 frames. The MD5s are libdav1d's, in output
# order.
aom() { # aom OUT SIZE [extra ffmpeg output options...]
  local out=$1 size=$2
  shift 2
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=$size:rate=10" -frames:v 24 "$@" \
    -c:v libaom-av1 -cpu-used 6 -b:v 60k -g 12 -lag-in-frames 12 -auto-alt-ref 1 -threads 1 "$out"
  ffmpeg -hide_banner -loglevel error -y -c:v libdav1d -i "$out" -f framemd5 "$out.framemd5"
}
aom av1-96x64-8bit-altref.ivf 96x64
aom av1-98x62-10bit-altref.ivf 98x62 -vf format=yuv420p10le
