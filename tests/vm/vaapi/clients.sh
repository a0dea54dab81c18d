#!/usr/bin/env bash
# Part of tests/vm/vaapi.sh (one VM for the VA-API parts; run as scripts/test-vm --env VAAPI_PARTS=PART vaapi).
#
# VM test (in the Debian 13 client chroot; daedalusd started outside it): the VA-API driver
# under the players and frameworks other than the ffmpeg CLI (tests/vm/vaapi-vp9.sh and
# vaapi-h264.sh drive that one), as users run them (scripts/vm-run --clients sets
# LIBVA_DRIVER_NAME and LIBVA_DRIVERS_PATH; see tests/vm/lib/vaapi):
#   1. mpv 0.40 (VP9 8/10-bit, AV1 10-bit with a hidden key frame shown later, H.264
#      B-frames): `mpv --hwdec=vaapi-copy --vaapi-device=/dev/dri/renderD128
#      --vd-lavc-software-fallback=no` says it uses hardware decoding and decodes to the end;
#      its pictures (encoding mode: `--o=- --of=framemd5 --ovc=rawvideo`, converted to planar
#      by its own filter) equal the reference frame by frame. (In the VM the device is named:
#      FFmpeg's VA device creation skips vgem nodes, as vainfo does.)
#   2. GStreamer 1.26's va plugin (`vavp9dec`, `vah264dec`; GST_VA_ALL_DRIVERS=1 lets it use a
#      driver that is not Intel's or Mesa's): per-frame MD5s of the visible pixels
#      (videocodectestsink) equal the reference's, and the v4l2sl*dec elements' on the same
#      streams: VP9 8-bit odd size (35x19: GStreamer learns every surface's layout from an
#      image derived from a fresh surface), VP9 growing and shrinking at key frames in one VA
#      context, H.264 with B-frames from Matroska. (vaav1dec and
#      10-bit: vaapi/fluster.sh.)
#      (Multi-slice H.264 through VA: vaapi/h264.sh; through v4l2slh264dec: h264-gstreamer.sh.)
#   3. A client killed mid-stream (SIGKILL to `ffmpeg -hwaccel vaapi` looping a 1000x562 stream,
#      once the device has decoded 20 of its frames and has jobs of it in flight, polled with
#      shell builtins) leaves the device usable:
#      its context and jobs gone within seconds (tests/vm/lib/device-idle), the same daemon
#      attached, and the next decode byte-exact.
set -euo pipefail
source "${DAEDALUS_REPO:-$(cd "$(dirname "$0")/../../.." && pwd)}/tests/vm/lib/vaapi"
source "$repo/tests/vm/lib/frame-md5s"
data=$repo/tools/tests/data
h=$vectors/h264/openh264

# want REFERENCE: the reference's per-frame MD5s (last field of each non-comment line).
want() { awk '!/^#/ { print $NF }' "$1"; }
# same NAME WANT-FILE GOT-FILE: counts a byte-exact stream or fails.
same() {
  if [[ ! -s $2 ]]; then
    fail "$1: no reference frames"
  elif cmp -s "$2" "$3"; then
    exact=$((exact + 1)); echo "byte-exact: $1 ($(wc -l <"$3") frames)"
  else
    fail "$1: $(wc -l <"$3") frames, $(diff "$2" "$3" | grep -c '^>' || true) differ from the reference's $(wc -l <"$2")"
  fi
}

echo "== 1. mpv --hwdec=vaapi-copy"
# mpv_check NAME STREAM REFERENCE PLANAR-FORMAT
mpv_check() {
  local name=$1 stream=$2 ref=$3 planar=$4 rc=0
  total=$((total + 1))
  timeout 300 mpv --no-config --hwdec=vaapi-copy --vaapi-device="$dri" --vd-lavc-software-fallback=no \
    --o="$work/mpv.md5" --of=framemd5 --ovc=rawvideo --vf=format="$planar" "$stream" >"$work/mpv.log" 2>&1 || rc=$?
  if ((rc != 0)); then
    fail "$name: mpv exited with status $rc"; tail -n 5 "$work/mpv.log"; return 0
  fi
  grep -q 'Using hardware decoding (vaapi-copy)' "$work/mpv.log" ||
    { fail "$name: mpv did not use hardware decoding"; tail -n 5 "$work/mpv.log"; return 0; }
  want "$ref" >"$work/want"
  want "$work/mpv.md5" >"$work/got"
  same "mpv: $name" "$work/want" "$work/got"
}
mpv_check vp9-8bit-35x19-arf.ivf "$data/vp9-8bit-35x19-arf.ivf" "$data/vp9-8bit-35x19-arf.framemd5" yuv420p
mpv_check vp9-10bit-18x10-lossless.ivf "$data/vp9-10bit-18x10-lossless.ivf" "$data/vp9-10bit-18x10-lossless.framemd5" yuv420p10le
if [[ -d $vectors/av1 ]]; then
  mpv_check av1-176x144-main-forward-key-frame-10.ivf "$vectors/av1/vk-gl-cts/av1-176x144-main-forward-key-frame-10.ivf" \
    "$vectors/av1/vk-gl-cts/av1-176x144-main-forward-key-frame-10.ivf.ffmpeg-yuv420p10le.framemd5" yuv420p10le
fi
if [[ -d $h ]]; then
  # (The raw stream, not its Matroska remux: mpv's encoding mode writes 2 of the remux's 9
  # frames with software decoding too, from its B-frame timestamps.)
  mpv_check Cisco_Men_whisper_640x320_CABAC_Bframe_9.264 "$h/Cisco_Men_whisper_640x320_CABAC_Bframe_9.264" \
    "$h/Cisco_Men_whisper_640x320_CABAC_Bframe_9.264.ffmpeg-i420.framemd5" yuv420p
fi

echo "== 2. GStreamer va*dec and v4l2sl*dec"
# gst_check NAME STREAM PARSE CODEC FORMAT FRAME-BYTES REFERENCE: both decoders, frame by frame
# (FRAME-BYTES: one size, or one per frame separated by spaces for a stream that changes size).
gst_check() {
  local name=$1 stream=$2 parse=$3 codec=$4 format=$5 bytes=$6 ref=$7 dec
  want "$ref" >"$work/want"
  for dec in "va${codec}dec" "v4l2sl${codec}dec"; do
    total=$((total + 1))
    rm -f "$work/out.yuv"
    if ! timeout 300 gst-launch-1.0 -q filesrc location="$stream" ! $parse ! "$dec" \
         ! videoconvert dither=none ! "video/x-raw,format=$format" \
         ! videocodectestsink location="$work/out.yuv" >"$work/gst.log" 2>&1; then
      fail "$dec: $name: gst-launch failed"; tail -n 5 "$work/gst.log"; continue
    fi
    # shellcheck disable=SC2086 # one size or several
    frame_md5s "$work/out.yuv" $bytes >"$work/got"
    same "$dec: $name" "$work/want" "$work/got"
  done
}
i420() { echo $(($1 * $2 + 2 * (($1 + 1) / 2) * (($2 + 1) / 2))); }
gst_check vp9-8bit-35x19-arf.ivf "$data/vp9-8bit-35x19-arf.ivf" "ivfparse ! vp9parse" vp9 I420 \
  "$(i420 35 19)" "$data/vp9-8bit-35x19-arf.framemd5"
# Larger, then smaller again, at key frames: vavp9dec keeps its VA context and allocates
# surfaces of each new size, each decoded by a decoder of its size (vaapi/README.md).
small=$(i420 72 40) large=$(i420 136 80)
gst_check vp9-8bit-resize-up-down.ivf "$data/vp9-8bit-resize-up-down.ivf" "ivfparse ! vp9parse" vp9 I420 \
  "$small $small $small $large $large $large $small $small $small" "$data/vp9-8bit-resize-up-down.framemd5"
# (10-bit through both elements: vaapi/fluster.sh, GStreamer-VP9-VA and -V4L2SL.)
if [[ -d $h ]]; then
  gst_check h264-cabac-bframes-640x320.mkv "$data/h264-cabac-bframes-640x320.mkv" "matroskademux ! h264parse" h264 I420 \
    "$(i420 640 320)" "$h/Cisco_Men_whisper_640x320_CABAC_Bframe_9.264.ffmpeg-i420.framemd5"
else
  echo "vaapi-clients: H.264 vectors $VECTORS_SKIPPED"
fi

echo "== 3. a client killed mid-stream"
source "$repo/tests/vm/lib/device-idle"
daemon_pid=$(cat $daedalus_sysfs/daemon_pid)
completed=$(<$daedalus_sysfs/jobs_completed)
ffmpeg -nostdin -hide_banner -loglevel error -stream_loop -1 -hwaccel vaapi -hwaccel_device "$dri" \
  -hwaccel_output_format vaapi -i "$repo/tests/vm/data/first-vp9-1000x562.ivf" \
  -vf hwdownload,format=nv12 -f null - >"$work/killed.log" 2>&1 &
victim=$!
# (Builtins only: a `cat` costs ~0.3 s under TCG, long enough to miss the jobs in flight.)
start=$SECONDS in_flight=0
while ((SECONDS - start < 120)); do
  read -r in_flight <$daedalus_sysfs/jobs_in_flight
  read -r now <$daedalus_sysfs/jobs_completed
  ((now - completed >= 20 && in_flight > 0)) && break
  kill -0 $victim 2>/dev/null || break
done
decoded=$(($(<$daedalus_sysfs/jobs_completed) - completed))
if kill -KILL $victim 2>/dev/null; then
  wait $victim 2>/dev/null || true
  echo "killed ffmpeg after $decoded decoded frames, with $in_flight job(s) in flight"
  ((in_flight > 0)) || fail "no job was in flight when ffmpeg was killed"
  ((decoded >= 20)) || fail "the looping ffmpeg decoded only $decoded frames in 120 s"
  device_idle "after the kill" || fail "the killed client's context or jobs stayed"
  [[ $(cat $daedalus_sysfs/daemon_attached) == 1 && $(cat $daedalus_sysfs/daemon_pid) == "$daemon_pid" ]] ||
    fail "daedalusd $daemon_pid is no longer the attached daemon after the kill"
  vaapi_decode "vp9-8bit-35x19-arf.ivf after the kill" "$data/vp9-8bit-35x19-arf.ivf" "$data/vp9-8bit-35x19-arf.framemd5"
else
  fail "the looping ffmpeg ended by itself after $decoded frames"; tail -n 5 "$work/killed.log"
fi

echo "VA-API clients (mpv, GStreamer va / v4l2sl): $exact of $total decodes byte-exact"
[[ $failures -eq 0 ]] || exit 1
