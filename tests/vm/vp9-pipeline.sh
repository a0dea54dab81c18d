#!/usr/bin/env bash
# vm-run:
#
# VM test (guest, outside the chroot, daedalus.ko loaded): pipelined decoding through the whole
# device. For daedalusd --threads 1..4 and `daedalus decode --in-flight` 1..8, the committed
# VP9 streams with hidden frames, an H.264 one with a B-pyramid and an AV1 one with alt-refs
# decode byte-exact (`--framemd5` equal to FFmpeg's), within a time limit (a client window the pipeline cannot fill must never stall it:
# a timeout fails the test as a deadlock); with at least as many requests in flight as threads
# (2 or more) the daemon must report pipelined jobs, and with one in flight none.
set -euo pipefail
repo=${DAEDALUS_REPO:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$repo/tests/vm/lib/cli-test"
failures=0 runs=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
work=$(mktemp -d)
# Hidden frames, 8 and 10 bits (a size change is in the host test's streams and vp9-decode).
# H.264 with reordering, AV1 with hidden frames (multi-slice H.264 and 10-bit: in the host test).
streams=("$repo/daemon/tests/data/tiny-96x64-8bit-arf.ivf" "$repo/daemon/tests/data/tiny-97x61-10bit-arf.ivf"
  "$repo/daemon/tests/data/h264-96x64-bpyramid.264" "$repo/daemon/tests/data/av1-96x64-8bit-altref.ivf")
# VP9: NAME.ivf.ffmpeg-FORMAT.framemd5; H.264 and AV1: NAME.EXT.framemd5.
reference() { local r=$1.framemd5; [[ -f $r ]] || r=$(ls "$1".ffmpeg-*.framemd5 | head -n 1); echo "$r"; }

# same_frames A B: the same per-frame MD5s, in the same order (the H.264 and AV1 references are
# FFmpeg's plain framemd5, whose header and timestamps differ from the CLI's).
same_frames() { cmp -s <(awk '!/^#/ { print $NF }' "$1") <(awk '!/^#/ { print $NF }' "$2"); }

# Stops daedalusd: it detaches when it exits (its pid may linger as a zombie: no one reaps it).
stop_daemon() {
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 100); do [[ $(cat /sys/class/misc/daedalus/daemon_attached) == 0 ]] && return 0; sleep 0.1; done
  fail "daedalusd $1 did not detach"
}

for threads in 1 2 3 4; do
  : >/tmp/daedalusd.log
  daemon=$("$repo/tests/vm/lib/start-daemon" --threads "$threads")
  for window in 1 2 3 4 5 6 7 8; do
    for s in "${streams[@]}"; do
      runs=$((runs + 1))
      out=$work/$(basename "$s").t$threads.w$window
      if ! timeout 120 "$bin" decode --in-flight "$window" --framemd5 "$out" "$s" >"$out.log" 2>&1; then
        fail "threads $threads window $window $(basename "$s"): decode failed or timed out ($?)"
        tail -n 3 "$out.log"; continue
      fi
      same_frames "$(reference "$s")" "$out" || fail "threads $threads window $window $(basename "$s"): not byte-exact"
    done
  done
  stop_daemon "$daemon"
  # One "context N closed: ..." line per decode, in order: streams within windows (contexts
  # opened without decoding anything, e.g. for a probe, left out).
  mapfile -t closed < <(grep -o 'context [0-9]* closed: .*' /tmp/daedalusd.log | grep -v 'closed: 0 frames ok')
  if [[ ${#closed[@]} -ne $((8 * ${#streams[@]})) ]]; then
    fail "threads $threads: ${#closed[@]} contexts closed, $((8 * ${#streams[@]})) expected"; continue
  fi
  i=0 pipelined_runs=0
  for window in 1 2 3 4 5 6 7 8; do
    for s in "${streams[@]}"; do
      line=${closed[$i]}; i=$((i + 1))
      if [[ $line == *pipelined* ]]; then
        pipelined_runs=$((pipelined_runs + 1))
        ((threads >= 2 && window >= threads)) || fail "threads $threads window $window $(basename "$s"): pipelined ($line)"
      fi
    done
  done
  echo "threads $threads: $pipelined_runs of $((8 * ${#streams[@]})) decodes pipelined"
  ((threads < 2 || pipelined_runs > 0)) || fail "threads $threads: the pipeline was never used"
done
echo "-- daemon log (tail)"; tail -n 3 /tmp/daedalusd.log
[[ $failures -eq 0 ]] && echo "vp9-pipeline: all passed ($runs decodes byte-exact)" || { echo "vp9-pipeline: $failures failed"; exit 1; }
