#!/usr/bin/env bash
# vm-run: --clients --pre "\$DAEDALUS_REPO/tests/vm/lib/start-daemon" --bind "$DAEDALUS_VECTORS" --timeout 2400
#
# VM test: the VA-API driver (vaapi/, daedalus_drv_video.so) as users run it, in the Debian 13
# client chroot (libva 2.22, FFmpeg 7.1, mpv 0.40, GStreamer 1.26) with daedalusd started
# outside it. scripts/vm-run --clients loads vgem (the VA display's render node) and sets
# LIBVA_DRIVER_NAME and LIBVA_DRIVERS_PATH (LIBVA_DRIVER_NAME in this file makes scripts/test-vm
# build the driver). One VM for the parts below (a boot costs about a minute under TCG), each a
# script of its own under tests/vm/vaapi/ that passes or fails on its own:
#   vp9      ffmpeg -hwaccel vaapi: VP9 8/10-bit, odd sizes, hidden / show-existing frames, a new
#            context at a size change; a corrupted stream (VAAPI_VP9_ALL=1: every VP9 vector)
#   h264     ffmpeg -hwaccel vaapi: Baseline to High, multi-slice, PCM, long-term references,
#            scaling matrices, B-pyramids; PAFF / POC type 1 refused (VAAPI_H264_ALL=1: all)
#   av1      ffmpeg -hwaccel vaapi: 8/10-bit, film grain, superres, odd sizes, tiles, replays
#   clients  mpv --hwdec=vaapi-copy, GStreamer vavp9dec / vah264dec (= v4l2sl*dec)
#   fluster  fluster's GStreamer V4L2SL / FFmpeg VAAPI / GStreamer VA decoders on a quick set of
#            its suites built from the vector store (FLUSTER_ALL=1: every vector, make fluster)
# VAAPI_PARTS=h264,av1 runs only those: scripts/test-vm --env VAAPI_PARTS=h264,av1 vaapi
# After each part, with its clients gone, the device must be idle again: no context open, no job
# in flight, the daemon holding no more files than before the first part (tests/vm/lib/device-idle:
# nothing leaked by the corrupted, truncated, refused and killed decodes of the parts).
set -uo pipefail
dir=${DAEDALUS_REPO:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/vm/vaapi
source "$dir/../lib/device-idle"
failed=()
device_idle "before the parts" || failed+=(start)
daemon_files=$(daemon_fds)
parts=${VAAPI_PARTS:-vp9,h264,av1,clients,fluster}
for part in ${parts//,/ }; do
  echo "===== vaapi/$part"
  start=$SECONDS
  if [[ ! -f $dir/$part.sh ]]; then
    echo "===== vaapi/$part: no such part (tests/vm/vaapi/)"
    failed+=("$part")
  elif bash "$dir/$part.sh" && device_idle "after vaapi/$part" "$daemon_files"; then
    echo "===== vaapi/$part: PASS ($((SECONDS - start)) s)"
  else
    echo "===== vaapi/$part: FAIL ($((SECONDS - start)) s)"
    failed+=("$part")
  fi
done
((${#failed[@]} == 0)) || { echo "VA-API parts failed: ${failed[*]}"; exit 1; }
