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

# The streams of tests/vm/stress.sh: small (fast under TCG), a key frame every 8 frames (seeks),
# each codec at another size (resolution switches between runs); VP9 with alt-ref (hidden)
# frames in superframes, AV1 with hidden frames shown later (show_existing_frame), H.264 with
# B-frames (reordering) and an IDR picture every 8.
stress=(-f lavfi -i "testsrc2=size=SIZE:rate=30,format=yuv420p" -frames:v 24)
ffmpeg -loglevel error -y "${stress[@]/SIZE/160x90}" -c:v libvpx-vp9 -deadline good -cpu-used 4 \
  -b:v 300k -g 8 -auto-alt-ref 1 -lag-in-frames 8 stress-vp9-160x90.ivf
ffmpeg -loglevel error -y "${stress[@]/SIZE/128x72}" -c:v libaom-av1 -cpu-used 8 -b:v 300k \
  -g 8 stress-av1-128x72.ivf
ffmpeg -loglevel error -y "${stress[@]/SIZE/192x108}" -c:v libx264 -preset veryfast -profile:v high \
  -bf 2 -b:v 300k -x264-params keyint=8:min-keyint=8:scenecut=0 -f h264 stress-h264-192x108.264
for f in stress-vp9-160x90.ivf stress-av1-128x72.ivf stress-h264-192x108.264; do
  ffmpeg -loglevel error -y -i "$f" -fps_mode passthrough -pix_fmt yuv420p -f framemd5 "$f.framemd5"
done

# 10-bit streams for `make mutate` (tests/vm/mutate.sh), which the stress streams above lack for
# AV1 and H.264: as small, a key frame every 8 frames, High 10 with B-frames for H.264.
mutate=(-f lavfi -i "testsrc2=size=SIZE:rate=30,format=yuv420p10le" -frames:v 24)
ffmpeg -loglevel error -y "${mutate[@]/SIZE/96x54}" -c:v libaom-av1 -cpu-used 8 -b:v 300k \
  -g 8 mutate-av1-10bit-96x54.ivf
ffmpeg -loglevel error -y "${mutate[@]/SIZE/112x64}" -c:v libx264 -preset veryfast -profile:v high10 \
  -bf 2 -b:v 300k -x264-params keyint=8:min-keyint=8:scenecut=0 -f h264 mutate-h264-10bit-112x64.264
for f in mutate-av1-10bit-96x54.ivf mutate-h264-10bit-112x64.264; do
  ffmpeg -loglevel error -y -i "$f" -fps_mode passthrough -pix_fmt yuv420p10le -f framemd5 "$f.framemd5"
done
