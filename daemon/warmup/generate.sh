#!/usr/bin/env bash
# Remakes the streams daedalusd decodes at start (src/warmup.rs): for each codec and bit depth it
# decodes, a key frame and two inter frames of FFmpeg's testsrc2 (varied content, so that most of
# the decoders' code paths run), 320x180.
set -euo pipefail
cd "$(dirname "$0")"
for depth in 8 10; do
  pf=yuv420p; [[ $depth == 10 ]] && pf=yuv420p10le
  src=(-f lavfi -i "testsrc2=size=320x180:rate=30,format=$pf" -frames:v 3 -g 3)
  ffmpeg -loglevel error -y "${src[@]}" -c:v libvpx-vp9 -deadline good -cpu-used 4 -b:v 400k \
    "vp9-${depth}bit.ivf"
  ffmpeg -loglevel error -y "${src[@]}" -c:v libaom-av1 -cpu-used 6 -b:v 400k "av1-${depth}bit.ivf"
  ffmpeg -loglevel error -y "${src[@]}" -c:v libx264 -preset medium -bf 1 -b:v 400k -f h264 \
    "h264-${depth}bit.264"
done
