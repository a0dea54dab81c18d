#!/usr/bin/env bash
# vm-run: --timeout 1200 --bind "$DAEDALUS_VECTORS"
#
# VM test (guest, daedalus.ko loaded): AV1 through the whole device — daedalusd attached,
# `daedalus decode` as the stateless client — over AV1 streams under $DAEDALUS_VECTORS/av1 (a
# quick set by default, see below), in each payload mode of $AV1_MODES (default "tiles obu": tile-group
# payloads as GStreamer sends them, so the daemon rebuilds every header, and full OBUs):
#   * dav1d-test-data `.md5` lines (MD5 of the whole output, film grain off unless the line says
#     `--filmgrain 1`): compared with `--whole-md5`; lines with other dav1d arguments
#     (--oppoint / --alllayers / --decodeframetype / --limit) select outputs dav1d's defaults do
#     not give and are out of scope (listed);
#   * VK-GL-CTS `.framemd5` (per frame, grain on) and cros-codecs `.ffmpeg-*.framemd5`: the first
#     N per-frame MD5s compared with `--md5`;
#   * 4:2:2 / 4:4:4 / 12-bit streams (MANIFEST.tsv): the device must refuse them (exit status 3,
#     "refused by the device"), never output a picture.
# Prints the counts per mode: byte-exact / refused as expected / failing / out of scope.
set -uo pipefail
repo=${DAEDALUS_REPO:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$repo/tests/vm/lib/cli-test"
modes=${AV1_MODES:-tiles obu}
# By default a quick set of small streams covering the features (8/10-bit, film grain, forward
# key frames, global motion, odd width, size changes, intra block copy, all-intra, and 12-bit /
# 4:4:4 streams that must be refused) that fits CI; `-- env AV1_SAMPLE=1` a sample of every
# feature directory (VK-GL-CTS, cros-codecs, dav1d-test-data features / intra / sframe /
# film grain / resize / cdfupdate / mv / mfmv, Argon, quantizer extremes; ~30 min under TCG);
# `-- env AV1_ALL=1` all ~790 (hours under TCG; `make test-host` decodes every one in process
# in all three modes).
sample='vk-gl-cts/av1-176x144-main-(basic-8|basic-10|forward-key-frame-10|globalmotion-8)\.ivf|vk-gl-cts/av1-352x288-main-filmgrain-8\.ivf|vk-gl-cts/av1-sizeup-fluster\.ivf|vk-gl-cts/av1-1920x1080-intrabc-extreme-dv-8\.ivf|cros-codecs/test-25fps\.av1\.ivf|8-bit/issues/(309_odd_width|323_tennis)\.ivf|8-bit/intra/av1-1-b8-02-allintra\.ivf|8-bit/features/rgb\.ivf|12-bit/data/00000686\.ivf|10-bit/film_grain/av1-1-b10-23-film_grain-50\.ivf'
[[ -n ${AV1_SAMPLE:-} ]] && sample='vk-gl-cts/|cros-codecs/|8-bit/(features|intra|sframe|film_grain|resize|cdfupdate|mv|mfmv)/|10-bit/(film_grain|features)/|argon/test(185_302|5606)|quantizer-(00|63)\.ivf|data/0000067[67]\.ivf|data/0000068[12]\.ivf|12-bit/data/0000000'
[[ -n ${AV1_ALL:-} ]] && sample=.
per_stream_timeout=${AV1_TIMEOUT:-120}
# Streams with per-frame references are checked on their first AV1_MAX_FRAMES frames (the
# 480-frame 1080p superres stream alone would take minutes under TCG); whole-output MD5s need
# whole streams.
max_frames=${AV1_MAX_FRAMES:-60}
[[ -n ${AV1_ALL:-} ]] && max_frames=${AV1_MAX_FRAMES:-100000}
if [[ ! -d $vectors/av1 ]]; then
  echo "av1-decode: $VECTORS_SKIPPED"
  exit 0
fi
"$repo/tests/vm/lib/start-daemon" >/dev/null
work=$(mktemp -d)
manifest=$vectors/MANIFEST.tsv
status=0

# The chroma format and bit depth of a vector, from the manifest.
props() { awk -F'\t' -v f="av1/${1#"$vectors"/av1/}" '$1 == "av1" && $2 == f { print $9 "|" $3 }' "$manifest"; }

for mode in $modes; do
  exact=0 refused=0 failing=0 skipped=0
  failed_list=() skipped_list=()
  while IFS= read -r s; do
    name=${s#"$vectors"/av1/}
    p=$(props "$s"); chroma=${p%%|*}; depth=${p##*|}
    out=$work/out
    if [[ $chroma != 4:2:0 && $chroma != 4:0:0 ]] || [[ $depth == 12 ]]; then
      timeout "$per_stream_timeout" "$bin" decode -q --av1-payload "$mode" --whole-md5 "$out" "$s" >"$out.log" 2>&1
      rc=$?
      if [[ $rc == 3 ]] && grep -q "refused by the device" "$out.log"; then
        refused=$((refused + 1))
      else
        failing=$((failing + 1)); failed_list+=("$name (expected a refusal, exit $rc)")
      fi
      continue
    fi
    # dav1d-test-data's .md5 files hold whole-output MD5 lines; elsewhere (cros-codecs) a .md5
    # file is a per-frame list, handled below with the .framemd5 files.
    if [[ -f $s.md5 && $s == */dav1d-test-data/* ]]; then
      checked=0
      while IFS= read -r line; do
        ref=${line%% *}
        args=$(sed -n 's/.*# dav1d args: *//p' <<<"$line")
        if grep -Eq -- '--(oppoint|alllayers|decodeframetype|limit)' <<<"$args"; then
          skipped=$((skipped + 1)); skipped_list+=("$name [$args]"); continue
        fi
        grain=off; grep -q -- '--filmgrain 1' <<<"$args" && grain=on
        checked=1
        timeout "$per_stream_timeout" "$bin" decode -q --av1-payload "$mode" --film-grain "$grain" \
          --whole-md5 "$out" "$s" >"$out.log" 2>&1
        if [[ -s $out && $(cat "$out") == "$ref" ]]; then
          exact=$((exact + 1))
        else
          failing=$((failing + 1)); failed_list+=("$name [grain $grain]: $(tail -n 1 "$out.log")")
        fi
        rm -f "$out"
      done <"$s.md5"
      continue
    fi
    ref=$(ls "$s".framemd5 "$s".ffmpeg-*.framemd5 2>/dev/null | head -n 1)
    if [[ -z $ref ]]; then
      skipped=$((skipped + 1)); skipped_list+=("$name [no reference]"); continue
    fi
    # Per-frame references: the first $max_frames frames (one temporal unit each).
    grep -v '^#' "$ref" | awk '{print $NF}' | head -n "$max_frames" >"$work/ref"
    n=$(wc -l <"$work/ref")
    timeout "$per_stream_timeout" "$bin" decode -q --av1-payload "$mode" --film-grain on \
      --limit "$n" --md5 "$out" "$s" >"$out.log" 2>&1
    if [[ $n -gt 0 ]] && cmp -s "$work/ref" <(head -n "$n" "$out"); then
      exact=$((exact + 1))
    else
      failing=$((failing + 1)); failed_list+=("$name: $(tail -n 1 "$out.log")")
    fi
  done < <(find "$vectors/av1" -type f \( -name '*.ivf' -o -name '*.obu' -o -name '*.webm' -o -name '*.mkv' \) | grep -E "$sample" | sort)
  echo "== av1 payload $mode: $exact byte-exact, $refused refused as expected, $failing failing, $skipped out of scope"
  for f in "${failed_list[@]}"; do echo "  FAIL $f"; done | head -n 60
  for f in "${skipped_list[@]}"; do echo "  out of scope: $f"; done
  [[ $failing == 0 ]] || status=1
done
rm -rf "$work"
exit $status
