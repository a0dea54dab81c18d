#!/usr/bin/env bash
# vm-run:
#
# VM test (guest, outside the chroot, daedalus.ko loaded): VP9 through the whole device —
# daedalusd attached to /dev/daedalus, `daedalus decode` as the stateless client — checked frame
# by frame against FFmpeg:
#   1. every committed VP9 stream (tools/tests/data, daemon/tests/data): `--framemd5` output equal
#      to `ffmpeg -f framemd5` byte for byte but for the `#software:` line (the libavformat
#      version); their WebM copies (plain, live with unknown sizes,
#      with an Opus track): the same per-frame MD5s; every VP9 stream under
#      $DAEDALUS_VECTORS/vp9: per-frame MD5 equal to the reference's;
#   2. two clients at once, both byte-exact;
#   3. the daemon killed with SIGKILL mid-stream: the client ends (with errors) instead of
#      hanging; a restarted daemon serves the next stream byte-exact;
#   4. corrupted and truncated streams: error buffers, no hang, the daemon keeps serving.
set -euo pipefail
repo=${DAEDALUS_REPO:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$repo/tests/vm/lib/cli-test"
failures=0 exact=0 total=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
daemon=$("$repo/tests/vm/lib/start-daemon")
work=$(mktemp -d)

# check STREAM REFERENCE: decode and compare; framemd5 references are compared whole, others
# (one comment line, then one MD5 per frame) by their MD5 lines.
check() {
  local stream=$1 ref=$2 out=$work/$(basename "$1").out
  total=$((total + 1))
  if grep -q "^#format: frame checksums" "$ref"; then
    "$bin" decode --framemd5 "$out" "$stream" >"$out.log" 2>&1 || true
    same_framemd5 "$ref" "$out" && { exact=$((exact + 1)); echo "byte-exact: $(basename "$stream") ($(grep -vc '^#' "$ref") frames)"; return 0; }
  else
    "$bin" decode --md5 "$out" "$stream" >"$out.log" 2>&1 || true
    if diff -q <(grep -v '^#' "$ref" | awk '{print $NF}') "$out" >/dev/null; then
      exact=$((exact + 1)); echo "byte-exact: $(basename "$stream") ($(wc -l <"$out") frames)"; return 0
    fi
  fi
  fail "$(basename "$stream") differs from $(basename "$ref")"
  tail -n 3 "$out.log"
  return 1
}

echo "== 1. conformance"
for s in "$repo"/tools/tests/data/*.ivf "$repo"/daemon/tests/data/*.ivf; do
  # VP9 streams only: these directories hold AV1 IVF streams too (the IVF header's fourcc).
  [[ $(head -c 12 "$s" | tail -c 4) == VP90 ]] || continue
  ref=${s%.ivf}.framemd5; [[ -f $ref ]] || ref=$(ls "$s".ffmpeg-*.framemd5 2>/dev/null | head -n 1)
  [[ -f $ref ]] && check "$s" "$ref" || true
done
# WebM copies of the committed streams: the same pictures as their IVF originals.
for s in "$repo"/tools/tests/data/*.webm; do
  base=$(basename "$s" .webm); base=${base%-live}; base=${base%-opus}
  ref=$repo/tools/tests/data/$base.framemd5
  [[ -f $ref ]] || continue
  grep -v '^#' "$ref" | awk '{print $NF}' >"$work/$base.ref.md5"
  printf '# per-frame MD5 of %s\n' "$base.ivf" | cat - "$work/$base.ref.md5" >"$work/$base.webm.ref"
  check "$s" "$work/$base.webm.ref" || true
done
if [[ -d $vectors/vp9 ]]; then
  while IFS= read -r s; do
    ref=$(ls "$s".ffmpeg-*.framemd5 2>/dev/null | head -n 1)
    [[ -n $ref ]] && { check "$s" "$ref" || true; }
  done < <(find "$vectors/vp9" -type f \( -name '*.ivf' -o -name '*.vp9' \) | sort)
else
  echo "vp9-decode: shared conformance streams $VECTORS_SKIPPED"
fi
echo "conformance: $exact of $total streams byte-exact"
conformance="$exact/$total"

echo "== 2. two clients at once"
a=$repo/daemon/tests/data/tiny-96x64-8bit-arf.ivf
b=$repo/tools/tests/data/vp9-10bit-18x10-lossless.ivf
"$bin" decode --framemd5 "$work/a.md5" "$a" >"$work/a.log" 2>&1 & pa=$!
"$bin" decode --framemd5 "$work/b.md5" "$b" >"$work/b.log" 2>&1 & pb=$!
wait $pa || true; wait $pb || true
same_framemd5 "$work/a.md5" "$(ls "$a".ffmpeg-*.framemd5)" || fail "client A not byte-exact in parallel"
same_framemd5 "$work/b.md5" "${b%.ivf}.framemd5" || fail "client B not byte-exact in parallel"
echo "parallel clients done"

echo "== 3. daemon killed mid-stream"
# A long stream (a committed one, 200 times over: it starts with a key frame); the daemon is
# stopped (SIGSTOP) early so that the client surely has requests pending with it, then killed.
long=$work/long.ivf
python3 - "$a" "$long" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
frames, off = [], 32
while off + 12 <= len(data):
    size = int.from_bytes(data[off:off + 4], "little")
    frames.append(data[off + 12:off + 12 + size]); off += 12 + size
out = bytearray(data[:32]); pts = 0
for _ in range(200):
    for f in frames:
        out += len(f).to_bytes(4, "little") + pts.to_bytes(8, "little") + f; pts += 1
out[24:28] = pts.to_bytes(4, "little")
open(sys.argv[2], "wb").write(out)
PY
"$bin" decode --md5 "$work/long.md5" --timeout-ms 3000 "$long" >"$work/long.log" 2>&1 & pc=$!
sleep 0.3
kill -STOP "$daemon"
sleep 0.5
kill -KILL "$daemon"
start=$(date +%s)
rc=0; wait $pc || rc=$?
took=$(( $(date +%s) - start ))
[[ $rc -ne 0 ]] || fail "decode reported success although the daemon died"
[[ $took -le 10 ]] || fail "decode took ${took}s to end after the daemon died"
grep -q "no decode daemon is attached" "$work/long.log" || fail "decode did not say that the daemon went away"
echo "client ended ${took}s after the kill (status $rc): $(tail -n 1 "$work/long.log")"
daemon=$("$repo/tests/vm/lib/start-daemon")
check "$a" "$(ls "$a".ffmpeg-*.framemd5)" || fail "restarted daemon not byte-exact"

echo "== 4. corrupted and truncated streams"
# Every frame after the first corrupted from byte 8 (its headers break), and the first two thirds.
"$repo/tests/vm/lib/corrupt-ivf" "$a" "$work/corrupt.ivf" 8 7
head -c $(($(stat -c %s "$a") * 2 / 3)) "$a" >"$work/truncated.ivf"
for s in corrupt truncated; do
  rc=0; timeout 120 "$bin" decode --md5 "$work/$s.md5" "$work/$s.ivf" >"$work/$s.log" 2>&1 || rc=$?
  [[ $rc -ne 124 ]] || fail "$s stream: decode hung"
  echo "$s stream: status $rc: $(tail -n 1 "$work/$s.log")"
done
kill -0 "$daemon" 2>/dev/null || fail "the daemon died on bad streams"
check "$a" "$(ls "$a".ffmpeg-*.framemd5)" || fail "daemon not serving after bad streams"

kill -TERM "$daemon"; wait "$daemon" 2>/dev/null || true
echo "-- daemon log (tail)"; tail -n 5 /tmp/daedalusd.log
[[ $failures -eq 0 ]] && echo "vp9-decode: all passed ($conformance conformance streams byte-exact)" || { echo "vp9-decode: $failures failed"; exit 1; }
