#!/usr/bin/env bash
# vm-run: --timeout 1200 --clients --pre "\$DAEDALUS_REPO/tests/vm/lib/start-daemon" --bind "$DAEDALUS_VECTORS"
#
# VM test (in the Debian 13 client chroot; daedalusd started outside it): GStreamer 1.26's
# v4l2slvp9dec decoding through daedalus, checked against FFmpeg / libvpx references:
#   filesrc ! ivfparse ! vp9parse ! v4l2slvp9dec ! videoconvert dither=none ! I420 | I420_10LE
#     ! videocodectestsink location=OUT   (the visible pixels of every frame, no padding)
# Committed streams (with ffmpeg framemd5 references, which give each frame's size) are compared
# frame by frame; the streams under $DAEDALUS_VECTORS/vp9 by the MD5 of the whole output
# (their .whole.md5), which any wrong byte in any frame changes.
set -euo pipefail
repo=${DAEDALUS_REPO:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$repo/tests/vm/lib/vectors"
vectors=$DAEDALUS_VECTORS
work=$(mktemp -d)
failures=0 exact=0 total=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

gst-inspect-1.0 v4l2slvp9dec >/dev/null || { echo "FAIL: v4l2slvp9dec is not registered"; exit 1; }

# decode STREAM FORMAT: decodes into $work/out.yuv; prints the MD5 GStreamer reports.
decode() {
  rm -f "$work/out.yuv"
  gst-launch-1.0 -m filesrc location="$1" ! ivfparse ! vp9parse ! v4l2slvp9dec ! videoconvert dither=none \
    ! "video/x-raw,format=$2" ! videocodectestsink location="$work/out.yuv" >"$work/gst.log" 2>&1 ||
    { tail -n 5 "$work/gst.log" >&2; return 1; }
  sed -n 's/.*conformance\/checksum.*checksum=(string)\([0-9a-f]\{32\}\).*/\1/p' "$work/gst.log" | tail -n 1
}

# Per-frame MD5s of $work/out.yuv, cut at the sizes of an ffmpeg framemd5's size column.
# shellcheck source=lib/frame-md5s
source "$repo/tests/vm/lib/frame-md5s"
ref_md5s() { frame_md5s "$work/out.yuv" $(grep -v '^#' "$1" | awk -F', *' '{print $5}'); }

format_of() { grep -qE '10le|10bit' <<<"$1" && echo I420_10LE || echo I420; }

echo "== committed streams, frame by frame"
for s in "$repo"/tools/tests/data/*.ivf "$repo"/daemon/tests/data/*.ivf; do
  # VP9 streams only: these directories hold AV1 IVF streams too (the IVF header's fourcc).
  [[ $(head -c 12 "$s" | tail -c 4) == VP90 ]] || continue
  ref=${s%.ivf}.framemd5; [[ -f $ref ]] || ref=$(ls "$s".ffmpeg-*.framemd5 2>/dev/null | head -n 1)
  [[ -n $ref && -f $ref ]] || continue
  total=$((total + 1)); name=$(basename "$s")
  decode "$s" "$(format_of "$s$ref")" >/dev/null || { fail "$name: gst-launch failed"; continue; }
  if diff <(grep -v '^#' "$ref" | awk '{print $NF}') <(ref_md5s "$ref") >"$work/diff"; then
    exact=$((exact + 1)); echo "byte-exact: $name ($(grep -vc '^#' "$ref") frames)"
  else
    fail "$name differs from $(basename "$ref")"; head -n 6 "$work/diff"
  fi
done

echo "== $vectors/vp9, whole output"
if [[ -d $vectors/vp9 ]]; then
  while IFS= read -r whole; do
    s=${whole%.whole.md5}; name=$(basename "$s")
    total=$((total + 1))
    want=$(cut -d' ' -f1 "$whole")
    got=$(decode "$s" "$(format_of "$s$(cat "$whole")")") || { fail "$name: gst-launch failed"; continue; }
    file=$(md5sum "$work/out.yuv" | cut -d' ' -f1)
    if [[ $got == "$want" && $file == "$want" ]]; then
      exact=$((exact + 1)); echo "byte-exact: $name (whole output $want)"
    else
      fail "$name: whole-output MD5 $got (file $file), reference $want"
    fi
  done < <(find "$vectors/vp9" -name '*.whole.md5' | sort)
else
  echo "vp9-gstreamer: shared conformance streams $VECTORS_SKIPPED"
fi
echo "GStreamer v4l2slvp9dec: $exact of $total streams byte-exact"
[[ $failures -eq 0 ]] || exit 1
