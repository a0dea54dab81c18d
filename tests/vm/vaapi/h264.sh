#!/usr/bin/env bash
# Part of tests/vm/vaapi.sh (one VM for the VA-API parts; run as scripts/test-vm --env VAAPI_PARTS=PART vaapi).
#
# VM test (in the Debian 13 client chroot; daedalusd started outside it): H.264 through the
# VA-API driver (vaapi/src/h264.rs) with libva 2.22 and FFmpeg 7.1, as a user runs them
# (scripts/vm-run --clients sets LIBVA_DRIVER_NAME and LIBVA_DRIVERS_PATH; see tests/vm/lib/vaapi):
#   1. `vainfo` lists H.264 Constrained Baseline / Main / High (VLD);
#   2. `ffmpeg -hwaccel vaapi -hwaccel_output_format vaapi -i IN -vf hwdownload,...` frame by
#      frame against the references' per-frame MD5s, over a feature set of the shared vectors:
#      Baseline with several slices per picture (BA1_FT_C), I_PCM (CVPCMNL1_SVA_C), multiple
#      reference frames with reordering and long-term references (MR2_TANDBERG_E), several IDRs
#      (MIDR_MW_D), non-reference frames (NRF_MW_E), several parameter sets (MPS_MW_A), scaling
#      matrices in SPS and PPS (test_scalinglist_jm, the x264 JVT matrix stream), High with
#      B-frames (64x64-I-P-B-P-high), CABAC B-pyramid (Cisco_Men_whisper, also from its Matroska
#      remux in tools/tests/data);
#   3. streams the driver refuses end with errors, never with pictures passed off as decoded:
#      field coding (test-25fps-interlaced: PAFF) and POC type 1 (MR1_BT_A: its offset_for_*
#      values are in no VA buffer); and a corrupted stream ends with errors, no hang.
# VAAPI_H264_ALL=1 decodes every progressive 8-bit 4:2:0 H.264 vector instead of the set.
set -euo pipefail
source "${DAEDALUS_REPO:-$(cd "$(dirname "$0")/../../.." && pwd)}/tests/vm/lib/vaapi"

echo "== 1. vainfo"
vaapi_vainfo H264ConstrainedBaseline H264Main H264High

h=$vectors/h264
if [[ ! -d $h ]]; then
  echo "vaapi-h264: H.264 vectors $VECTORS_SKIPPED"
  exit 0
fi
# ref_of STREAM: its per-frame reference (FFmpeg's, or the generator's .framemd5), or nothing.
ref_of() {
  local r
  for r in "$1".ffmpeg-*.framemd5 "$1.framemd5"; do [[ -f $r ]] && { echo "$r"; return; }; done
  return 0
}

echo "== 2. byte-exact"
if [[ -n ${VAAPI_H264_ALL:-} ]]; then
  # Progressive 8-bit 4:2:0 (MANIFEST.tsv: pix_fmt yuv420p, not interlaced).
  mapfile -t set < <(awk -F'\t' '$1 == "h264" && $10 == "yuv420p" && $11 !~ /interlaced/ { print $2 }' "$vectors/MANIFEST.tsv" |
                     sed 's|^h264/||' | sort)
else
  set=(openh264/BA1_FT_C.264 openh264/CVPCMNL1_SVA_C.264 openh264/MR2_TANDBERG_E.264 openh264/MIDR_MW_D.264
       openh264/NRF_MW_E.264 openh264/MPS_MW_A.264 openh264/test_scalinglist_jm.264
       synthetic-x264/h264-synth-high-352x288-cqm-jvt-scalingmatrix.264 cros-codecs/64x64-I-P-B-P-high.h264
       openh264/Cisco_Men_whisper_640x320_CABAC_Bframe_9.264)
fi
# FFmpeg maps Baseline streams without constraint_set1_flag (which may use FMO, ASO or
# redundant slices) to no VA profile and falls back to software decoding unless told to try the
# nearest one (`-hwaccel_flags allow_profile_mismatch`; mpv: --vd-lavc-check-hw-profile=no):
# MR2_TANDBERG_E is such a stream (it uses none of them), and so are several in the whole set.
baseline_unconstrained='MR2_TANDBERG_E'
[[ -n ${VAAPI_H264_ALL:-} ]] && baseline_unconstrained='.'
for s in "${set[@]}"; do
  ref=$(ref_of "$h/$s")
  [[ -n $ref ]] || { echo "note: no reference for $s"; continue; }
  flags=
  grep -qE "$baseline_unconstrained" <<<"$s" && flags=allow_profile_mismatch
  VAAPI_HWACCEL_FLAGS=$flags vaapi_decode "$(basename "$s")" "$h/$s" "$ref"
done
mkv=$repo/tools/tests/data/h264-cabac-bframes-640x320.mkv
vaapi_decode "$(basename "$mkv")" "$mkv" "$(ref_of "$h/openh264/Cisco_Men_whisper_640x320_CABAC_Bframe_9.264")"

echo "== 3. refused and corrupted streams"
# (Their first 64 KiB: FFmpeg goes on through every picture of a stream whose pictures all fail.)
head -c 65536 "$h/cros-codecs/test-25fps-interlaced.h264" >"$work/paff.h264"
head -c 65536 "$h/openh264/MR1_BT_A.h264" >"$work/poc1.h264"
vaapi_expect_errors "test-25fps-interlaced.h264 (PAFF: refused)" "$work/paff.h264"
vaapi_expect_errors "MR1_BT_A.h264 (POC type 1: refused)" "$work/poc1.h264"
# Every 11th byte after the first 200 inverted (the parameter sets survive, the slices do not).
perl -e '
  local $/; open(my $in, "<:raw", $ARGV[0]) or die; my $d = <$in>;
  for (my $i = 200; $i < length $d; $i += 11) { substr($d, $i, 1) = chr(255 - ord(substr($d, $i, 1))) }
  open(my $o, ">:raw", $ARGV[1]) or die; print $o $d;' "$h/openh264/MR2_TANDBERG_E.264" "$work/corrupt.264"
vaapi_expect_errors "a corrupted stream" "$work/corrupt.264"
# The device still decodes after them.
s=cros-codecs/64x64-I-P-B-P-high.h264
vaapi_decode "$(basename "$s") (after the errors)" "$h/$s" "$(ref_of "$h/$s")"

echo "VA-API (ffmpeg -hwaccel vaapi) H.264: $exact of $total streams byte-exact"
[[ $failures -eq 0 ]] || exit 1
