#!/usr/bin/env bash
# Remakes the streams of tests/vm/first-*.sh: 10 frames of FFmpeg's testsrc2 at 1000x562, a size
# no default format has (coded 1008x576 for H.264, odd chroma height), one per codec, with the
# per-frame MD5s of their pictures (yuv420p, visible area) as FFmpeg 5.1 decodes them.
set -euo pipefail
cd "$(dirname "$0")"
src=(-f lavfi -i "testsrc2=size=1000x562:rate=30,format=yuv420p" -frames:v 10)
ffmpeg -loglevel error -y "${src[@]}" -c:v libaom-av1 -cpu-used 8 -b:v 1M first-av1-1000x562.ivf
ffmpeg -loglevel error -y "${src[@]}" -c:v libvpx-vp9 -deadline realtime -cpu-used 8 -b:v 1M \
  first-vp9-1000x562.ivf
ffmpeg -loglevel error -y "${src[@]}" -c:v libx264 -preset veryfast -profile:v high -bf 2 \
  -b:v 1M -f h264 first-h264-1000x562.264
for f in first-av1-1000x562.ivf first-vp9-1000x562.ivf first-h264-1000x562.264; do
  ffmpeg -loglevel error -y -i "$f" -fps_mode passthrough -pix_fmt yuv420p -f framemd5 "$f.framemd5"
done
