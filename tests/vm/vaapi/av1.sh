#!/usr/bin/env bash
# Part of tests/vm/vaapi.sh (one VM for the VA-API parts; run as scripts/test-vm --env VAAPI_PARTS=PART vaapi).
#
# VM test (in the Debian 13 client chroot; daedalusd started outside it): AV1 through the VA-API
# driver (vaapi/, daedalus_drv_video.so) with libva 2.22 and FFmpeg 7.1, as a user runs it
# (scripts/vm-run --clients sets LIBVA_DRIVER_NAME and LIBVA_DRIVERS_PATH; the name in this
# file makes scripts/test-vm build the driver):
#   1. `vainfo --display drm --device /dev/dri/renderD128` still lists AV1 profile 0 (VLD).
#   2. `ffmpeg -hwaccel vaapi -hwaccel_device /dev/dri/renderD128 -hwaccel_output_format vaapi
#      -i IN -vf hwdownload,format=nv12|p010le,...` frame by frame against the references'
#      per-frame MD5s (FFmpeg's own decode, film grain applied), over a feature set of
#      $DAEDALUS_VECTORS/av1: 8 and 10 bit, film grain (8 and 10 bit: the display surface is not
#      the reference surface), a forward key frame (hidden key frame shown by
#      show_existing_frame), superres (1080p, first frames), an odd width, non-uniform tiles,
#      the cros-codecs clip (first frames).
#      A new, larger sequence within one VA context (av1-sizeup-fluster: 352x288 -> 1280x720 at
#      a key frame; FFmpeg keeps its context and 352x288 surface pool): the driver opens a new
#      decoder for it; read through hwmap=mode=read+direct, as hwdownload copies only the
#      pool's size (an FFmpeg limit, see vaapi/README.md).
#      The driver's log line per context (DAEDALUS_VA_LOG=info) gives how many frames were
#      queued before their refresh set was known and how many were replayed.
#   3. Replays: two streams with DAEDALUS_VA_AV1_EAGER=1 (every frame queued before its
#      refresh set is known, then replayed), byte-exact too.
#   4. A corrupted stream ends (no hang) with errors; a truncated one ends.
# VAAPI_AV1_ALL=1: every AV1 IVF vector with an FFmpeg framemd5 reference instead.
set -euo pipefail
repo=${DAEDALUS_REPO:-$(cd "$(dirname "$0")/../../.." && pwd)}
source "$repo/tests/vm/lib/vaapi"
export DAEDALUS_VA_LOG=${DAEDALUS_VA_LOG:-info}
early=0 replays=0 frames=0

# stats: the driver's per-context AV1 counts from the last ffmpeg run.
stats() {
  local f e r
  while read -r f e r; do
    frames=$((frames + f)) early=$((early + e)) replays=$((replays + r))
  done < <(sed -n 's/.*AV1 context [^:]*: \([0-9]*\) frames, \([0-9]*\) queued before.*, \([0-9]*\) replayed.*/\1 \2 \3/p' "$work/ffmpeg.log")
}

echo "== 1. vainfo"
vaapi_vainfo AV1Profile0

echo "== 2. $vectors/av1"
if [[ ! -d $vectors/av1 ]]; then
  echo "vaapi-av1: shared conformance streams $VECTORS_SKIPPED"
  exit 0
fi
v=$vectors/av1
d=$v/dav1d-test-data
if [[ -n ${VAAPI_AV1_ALL:-} ]]; then
  while IFS= read -r ref; do
    s=${ref%.ffmpeg-*.framemd5}
    vaapi_decode "${s#"$v"/}" "$s" "$ref"; stats
  done < <(find "$v" -name '*.ivf.ffmpeg-yuv420p*.framemd5' | sort)
else
  # name|stream|reference|frames
  while IFS='|' read -r name s ref n; do
    vaapi_decode "$name" "$s" "$ref" "$n"; stats
  done <<LIST
8-bit 176x144|$v/vk-gl-cts/av1-176x144-main-basic-8.ivf|$v/vk-gl-cts/av1-176x144-main-basic-8.ivf.ffmpeg-yuv420p.framemd5|
10-bit 176x144|$v/vk-gl-cts/av1-176x144-main-basic-10.ivf|$v/vk-gl-cts/av1-176x144-main-basic-10.ivf.ffmpeg-yuv420p10le.framemd5|
film grain 8-bit|$v/vk-gl-cts/av1-352x288-main-filmgrain-8.ivf|$v/vk-gl-cts/av1-352x288-main-filmgrain-8.ivf.ffmpeg-yuv420p.framemd5|
film grain 10-bit|$d/10-bit/film_grain/av1-1-b10-23-film_grain-50.ivf|$d/10-bit/film_grain/av1-1-b10-23-film_grain-50.ivf.ffmpeg-yuv420p10le.framemd5|
forward key frame 10-bit|$v/vk-gl-cts/av1-176x144-main-forward-key-frame-10.ivf|$v/vk-gl-cts/av1-176x144-main-forward-key-frame-10.ivf.ffmpeg-yuv420p10le.framemd5|
superres 1080p (4 frames)|$v/vk-gl-cts/av1-1920x1080-main-superres-8.ivf|$v/vk-gl-cts/av1-1920x1080-main-superres-8.ivf.ffmpeg-yuv420p.framemd5|4
odd width|$d/8-bit/issues/309_odd_width.ivf|$d/8-bit/issues/309_odd_width.ivf.ffmpeg-yuv420p.framemd5|
non-uniform tiles|$d/8-bit/features/non_uniform_tiling.ivf|$d/8-bit/features/non_uniform_tiling.ivf.ffmpeg-yuv420p.framemd5|
test-25fps (30 frames)|$v/cros-codecs/test-25fps.av1.ivf|$v/cros-codecs/test-25fps.av1.ivf.ffmpeg-yuv420p.framemd5|30
LIST
  VAAPI_READ=map vaapi_decode "size up within a context (hwmap)" "$v/vk-gl-cts/av1-sizeup-fluster.ivf" \
    "$v/vk-gl-cts/av1-sizeup-fluster.ivf.framemd5"
  stats
fi

echo "== 3. replays"
# DAEDALUS_VA_AV1_EAGER=1 makes the driver queue every frame at once with refresh 0 and replay
# it with its refresh set, as it does for a client that syncs each picture before it begins the
# next one (FFmpeg's CLI does not: it downloads in another thread).
for s in vk-gl-cts/av1-352x288-main-filmgrain-8.ivf vk-gl-cts/av1-176x144-main-forward-key-frame-10.ivf; do
  export DAEDALUS_VA_AV1_EAGER=1
  vaapi_decode "$(basename "$s") (eager)" "$v/$s" "$(ls "$v/$s".ffmpeg-*.framemd5)"; stats
  unset DAEDALUS_VA_AV1_EAGER
done

echo "== 4. bad streams"
good=$v/vk-gl-cts/av1-176x144-main-basic-8.ivf
vaapi_corrupt_ivf "$good" "$work/corrupt.ivf"
vaapi_expect_errors "corrupted stream" "$work/corrupt.ivf"
head -c $(($(stat -c %s "$good") * 2 / 3)) "$good" >"$work/truncated.ivf"
# (It may just end early, with or without errors: only a hang fails.)
rc=0
timeout 300 ffmpeg -nostdin -y -hide_banner -loglevel error -hwaccel vaapi -hwaccel_device "$dri" \
  -hwaccel_output_format vaapi -i "$work/truncated.ivf" -vf hwdownload,format=nv12 \
  -f framemd5 "$work/truncated.md5" >"$work/truncated.log" 2>&1 || rc=$?
echo "truncated stream: ffmpeg status $rc, $(awk '!/^#/' "$work/truncated.md5" 2>/dev/null | wc -l) frames"
((rc != 124)) || fail "the truncated stream hung"

echo "VA-API (ffmpeg -hwaccel vaapi) AV1: $exact of $total streams byte-exact; driver: $frames frames, $early queued before their refresh set was known, $replays replayed"
[[ $failures -eq 0 ]] || exit 1
