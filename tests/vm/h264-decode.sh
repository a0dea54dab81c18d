#!/usr/bin/env bash
# vm-run: --timeout 1500
#
# VM test (guest, outside the chroot, daedalus.ko loaded): H.264 through the whole device —
# daedalusd attached to /dev/daedalus, `daedalus decode` as the stateless client:
#   1. H.264 streams under $DAEDALUS_VECTORS/h264 (progressive 4:2:0, 8/10-bit), frame-based
#      with Annex-B start codes: the per-frame MD5s (output order, cropped) equal to the
#      reference's (the first N lines for the VK-GL-CTS references, which cover N frames). By
#      default a set covering every feature of the vectors ($feature_set below: profiles
#      Baseline to High 10, CAVLC / CABAC, multi-slice, B-frames and pyramids, temporal / spatial
#      direct, long-term references / MMCO, multiple IDRs and parameter sets, non-reference
#      frames, I_PCM, mb_qp_delta, deblocking off, constrained intra, cropping, scaling
#      matrices, full range, 720p / 1080p / 4K, a resolution change, interlaced refusal): each
#      stream costs ~7 s under TCG, mostly fixed, and `make test` decodes every vector in process
#      through the daemon's decoders already. H264_ALL=1 (`make test-vectors`) decodes all;
#   2. a few multi-slice streams slice-based (SLICE_PARAMS, PRED_WEIGHTS, HOLD_CAPTURE_BUF), with
#      no start codes and with Annex-B start codes: the same MD5s;
#   3. Matroska and MP4 remuxes (tools/tests/data) of an Annex-B vector: the original's MD5s;
#   4. out-of-scope streams (interlaced: MBAFF / field pictures, per MANIFEST.tsv) end with the
#      "refused by the device" error and exit status 3, never as success.
# Streams larger than 1280x720 (the 4K and 1080p ones: most of the work under TCG) are decoded
# for their first $heavy_pictures pictures only, and their first $heavy_lines output frames
# compared with the reference's first ones (a truncated decode can only make the comparison fail,
# never pass wrongly); H264_FULL=1 decodes them whole:
#   scripts/vm-run --bind $VECTORS -- env DAEDALUS_VECTORS=$VECTORS H264_FULL=1 tests/vm/h264-decode.sh
# Each check prints its time.
# Prints the counts; exits non-zero on any failure.
set -euo pipefail
repo=${DAEDALUS_REPO:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$repo/tests/vm/lib/cli-test"
if [[ ! -d $vectors/h264 ]]; then
  echo "h264-decode: H.264 vectors $VECTORS_SKIPPED"
  exit 0
fi
heavy_pictures=12 heavy_lines=6
feature_set='cros-codecs/(64x64-I-P-B-P-high|test-25fps|test-25fps-interlaced)\.h264|openh264/(BA1_FT_C|BAMQ2_JVC_C|CI1_FT_B|CVFC1_Sony_C|CVPCMNL1_SVA_C|Cisco_Adobe_PDF_sample_a_1024x768_CAVLC_Bframe_9|Cisco_Men_whisper_640x320_CABAC_Bframe_9|MIDR_MW_D|MPS_MW_A|MR1_BT_A|MR2_TANDBERG_E|NL1_Sony_D|NRF_MW_E|QCIF_2P_I_allIPCM|VID_1920x1080_cabac_temporal_direct|VID_1920x1080_cavlc_temporal_direct|Zhling_1280x720|test_scalinglist_jm)\.(264|h264|jsv)|synthetic-x264/h264-synth-(high-352x288-cqm-jvt-scalingmatrix|high10-1920x1080|high10-202x210-cropping|high10-352x288-cabac-bpyramid-2slices|high10-352x288-cavlc-4slices|high10-352x288-mbaff-tff)\.264|vk-gl-cts/(4k_26_ibp_main|clip-a|clip-c)\.h264'
[[ -n ${H264_ALL:-} ]] && feature_set='.*'

failures=0 exact=0 total=0 refused=0 out_of_scope=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
daemon=$("$repo/tests/vm/lib/start-daemon")
work=$(mktemp -d)
trap 'kill $daemon 2>/dev/null || true; rm -rf "$work"' EXIT

# Streams the manifest marks interlaced are out of scope (the device decodes frames only).
# What MANIFEST.tsv says of each H.264 stream, read once: starting a process costs ~0.3 s in the
# VM, and one awk per question per stream added minutes to the test.
declare -A pix_fmt_of interlaced_of heavy_of
while IFS='|' read -r f fmt features res; do
  pix_fmt_of[$f]=$fmt
  [[ $features == *interlaced* ]] && interlaced_of[$f]=1
  ((${res%x*} * ${res#*x} > 1280 * 720)) && heavy_of[$f]=1
done < <(awk -F'\t' -v OFS='|' '$1 == "h264" && $4 ~ /^[0-9]+x[0-9]+$/ { print $2, $10, $11, $4 }' "$vectors/MANIFEST.tsv")
key() { echo "h264/${1#"$vectors"/h264/}"; }
interlaced() { [[ -n ${interlaced_of[$(key "$1")]:-} ]]; }
heavy() { [[ -n ${heavy_of[$(key "$1")]:-} ]]; }
pix_fmt() { echo "${pix_fmt_of[$(key "$1")]:-}"; }

# Full-range (yuvj420p) streams: their .ffmpeg-i420.framemd5 is FFmpeg's output after a
# yuvj420p -> yuv420p range conversion, not the decoded samples (DISPUTED in the manifest), so
# they are compared with the host FFmpeg's native decode instead, made here (per-frame MD5s of
# the decoder's own samples: no conversion since the output pix_fmt is the decoder's).
disputed_reference() {
  local s=$1 ref=$work/$(basename "$1").native.framemd5
  local frames=()
  [[ -n ${LINES_CHECKED:-} ]] && frames=(-frames:v "$LINES_CHECKED")
  [[ -f $ref ]] || ffmpeg -nostdin -v error -i "$s" -map 0:v:0 "${frames[@]}" -pix_fmt yuvj420p \
                      -f framemd5 "$ref" || return 1
  echo "$ref"
}

reference() {
  local s=$1 refs
  if [[ $(pix_fmt "$s") == yuvj420p ]]; then
    command -v ffmpeg >/dev/null || { echo "note: no ffmpeg for the native reference of $(basename "$s")" >&2; return 1; }
    disputed_reference "$s"; return
  fi
  refs=("$s".ffmpeg-*.framemd5 "$s.framemd5")
  for ref in "${refs[@]}"; do [[ -f $ref ]] && { echo "$ref"; return 0; }; done
  return 1
}

# check STREAM LABEL DECODE-OPTION...: per-frame MD5s against the reference; a stream passes when
# the decode succeeded and its first N MD5s equal the reference's N (or LINES_CHECKED) lines.
check() {
  local s=$1 label=$2; shift 2
  local ref out=$work/$(basename "$s").$label.md5 n i first=""
  # REF_STREAM: take the reference of another stream (a remux of it).
  if ! ref=$(reference "${REF_STREAM:-$s}"); then
    if [[ $(pix_fmt "$s") == yuvj420p ]]; then fail "$(basename "$s"): no native FFmpeg reference"
    else echo "note: no reference for $(basename "$s")"; fi
    return 0
  fi
  total=$((total + 1))
  local status=0 started=$SECONDS want=() got=()
  "$bin" decode --quiet --md5 "$out" "$@" "$s" >"$out.log" 2>&1 || status=$?
  mapfile -t want < <(awk '!/^#/ { print $NF }' "$ref")
  [[ -f $out ]] && mapfile -t got <"$out"
  n=${#want[@]}
  # LINES_CHECKED: compare only that many first frames (with a --limit decode).
  [[ -n ${LINES_CHECKED:-} ]] && ((n > LINES_CHECKED)) && n=$LINES_CHECKED
  for ((i = 0; i < n; i++)); do
    [[ ${got[i]:-} == "${want[i]}" ]] || { first=$((i + 1)); break; }
  done
  local took="$((SECONDS - started)) s"
  if [[ $status == 0 && -z $first ]]; then
    exact=$((exact + 1))
    if [[ $(pix_fmt "$s") == yuvj420p ]]; then
      echo "byte-exact vs FFmpeg (reference disputed) [$label]: $(basename "$s") ($n frames, $took)"
    else
      echo "byte-exact [$label]: $(basename "$s") ($n frames, $took)"
    fi
    return 0
  fi
  fail "[$label] $(basename "$s") (exit $status, ${#got[@]} of $n frames written; first difference at frame ${first:-none})"
  tail -n 2 "$out.log"
}

echo "== 1. frame-based, Annex-B"
while IFS= read -r s; do
  if interlaced "$s"; then
    out_of_scope=$((out_of_scope + 1))
    status=0
    "$bin" decode --quiet --md5 /dev/null "$s" >"$work/refused.log" 2>&1 || status=$?
    if [[ $status == 3 ]] && grep -q "refused by the device" "$work/refused.log"; then
      refused=$((refused + 1)); echo "refused (expected): $(basename "$s"): $(grep -o 'refused by the device.*' "$work/refused.log" | cut -c1-100)"
    else
      fail "$(basename "$s") is out of scope but ended with status $status"; tail -n 2 "$work/refused.log"
    fi
    continue
  fi
  if [[ -z ${H264_FULL:-} ]] && heavy "$s"; then
    LINES_CHECKED=$heavy_lines check "$s" frame --limit "$heavy_pictures" || true
  else
    check "$s" frame || true
  fi
done < <(find "$vectors/h264" -type f \( -name '*.264' -o -name '*.h264' -o -name '*.jsv' -o -name '*.avc' \) | sort |
           grep -E "^$vectors/h264/($feature_set)\$")
frame_exact=$exact frame_total=$total

echo "== 2. slice-based, no start codes / Annex-B"
for name in openh264/BA1_FT_C.264 openh264/CVFC1_Sony_C.jsv openh264/BASQP1_Sony_C.jsv \
            cros-codecs/test-25fps.h264 synthetic-x264/h264-synth-high10-352x288-cavlc-4slices.264; do
  [[ -f $vectors/h264/$name ]] || continue
  check "$vectors/h264/$name" slice-none --h264-mode slice --start-code none || true
  # With start codes and 4 requests in flight: the shorter streams.
  case $name in *BA1_FT_C*|*CVFC1*) continue ;; esac
  check "$vectors/h264/$name" slice-annexb --h264-mode slice --start-code annexb --in-flight 4 || true
done

echo "== 3. Matroska and MP4 (avcC, through libavformat): the remuxes decode like their Annex-B original"
orig=$vectors/h264/openh264/Cisco_Men_whisper_640x320_CABAC_Bframe_9.264
for ext in mkv mp4; do
  [[ -f $orig ]] && { REF_STREAM=$orig check "$repo/tools/tests/data/h264-cabac-bframes-640x320.$ext" $ext || true; }
done

echo "h264: frame-based $frame_exact of $frame_total in-scope streams byte-exact;" \
     "slice-based, Matroska and MP4 $((exact - frame_exact)) of $((total - frame_total));" \
     "$refused of $out_of_scope out-of-scope streams refused; $failures failure(s)"
kill -0 "$daemon" 2>/dev/null || fail "daedalusd died"
[[ $failures == 0 ]]
