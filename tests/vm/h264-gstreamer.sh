#!/usr/bin/env bash
# vm-run: --clients --pre "\$DAEDALUS_REPO/tests/vm/lib/start-daemon" --bind "$DAEDALUS_VECTORS" --timeout 1200
#
# VM test (in the Debian 13 client chroot; daedalusd started outside it): GStreamer 1.26's
# v4l2slh264dec (frame-based, Annex-B start codes: what it picks on daedalus) decoding H.264
# streams of $DAEDALUS_VECTORS/MANIFEST.tsv through daedalus (a set covering every feature of the
# vectors: CAVLC/CABAC, multi-slice, B-frames and pyramids, long-term references, I_PCM,
# cropping, scaling matrices, High 10, parameter-set changes, interlaced refusal), the first 15
# frames of each (GST_MAX_FRAMES; GStreamer's start and 1 s per frame under TCG make whole
# streams too long for CI). With scripts/vm-run `-- env H264_GST_ALL=1 bash
# tests/vm/h264-gstreamer.sh` runs every stream, whole; h264-decode.sh runs all with
# `daedalus decode`:
#   filesrc ! h264parse ! v4l2slh264dec ! videoconvert dither=none ! I420 | I420_10LE
#     ! videocodectestsink (the cropped visible pixels of every frame)
# compared frame by frame with the stream's per-frame reference (FFmpeg's for openh264 /
# cros-codecs / x264 streams, JM's for VK-GL-CTS). Interlaced (MBAFF / field) streams are outside
# the device's scope: they must fail, never produce pictures.
set -euo pipefail
repo=${DAEDALUS_REPO:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$repo/tests/vm/lib/vectors"
require_vectors h264-gstreamer

# h264_ref_kind FILE DEPTH CHROMA FEATURES REFS: how to check FILE (see lib/gst-conformance).
h264_ref_kind() {
  local file=$1 chroma=$3 features=$4 refs=$5 dir r
  dir=$(dirname "$1")
  [[ $chroma == 4:2:0 ]] || { echo "refused chroma $chroma"; return; }
  [[ $features == *interlaced* ]] && { echo "refused interlaced"; return; }
  [[ $file == *clip-c* ]] && { echo "skip resolution change inside the stream: checked by h264-decode.sh"; return; }
  # GStreamer 1.26's v4l2slh264dec outputs the top-left crop_rect_width x crop_rect_height of
  # the picture, ignoring the SPS crop offsets (gstv4l2codech264dec.c new_sequence).
  [[ $file == *CVFC1_Sony_C* ]] && { echo "skip left/top frame cropping offsets, which v4l2slh264dec ignores (h264-decode.sh crops them byte-exact)"; return; }
  for r in $refs; do [[ $r == *.ffmpeg-i420.framemd5 ]] && { echo "frames $dir/$r"; return; }; done
  for r in $refs; do [[ $r == *.framemd5 ]] && { echo "frames $dir/$r"; return; }; done
  echo "skip no per-frame reference"
}
export -f h264_ref_kind
select='$2 ~ /cros-codecs|synthetic-x264|clip-a|BA1_FT_C|MR2_TANDBERG_E|CVPCMNL1|test_cif_P_CABAC|Cisco_Men_whisper_640x320_CABAC|MIDR_MW_D|MPS_MW_A|NRF_MW_E|SVA_BA2_D|test_scalinglist/ && $2 !~ /1920x1080/'
if [[ -n ${H264_GST_ALL:-} ]]; then
  select=1
else
  export GST_MAX_FRAMES=${GST_MAX_FRAMES:-15}
fi
GST_REF_KIND=h264_ref_kind exec "$repo/tests/vm/lib/gst-conformance" h264 h264parse v4l2slh264dec "$select"
