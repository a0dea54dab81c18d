#!/usr/bin/env bash
# vm-run: --timeout 600
#
# VM test (guest, outside the chroot, daedalus.ko loaded): `daedalus stress` (issue 14, part 1).
#   1. negative check: a copy of a stream whose reference has one wrong MD5 must give
#      wrong_pictures > 0, passed false and a non-zero exit (else stress cannot see a wrong
#      picture and step 2 proves nothing);
#   2. a stress run of STRESS_SECONDS (default 120) s: 3 clients over the committed VP9 (8/10-bit,
#      hidden frames, size changes), H.264 (B-frames) and AV1 streams, daemon SIGKILLed every
#      STRESS_KILL_EVERY (default 40; 0: never) s and restarted with tests/vm/lib/start-daemon,
#      seed STRESS_SEED (default 14); it must
#      pass (no wrong or hung picture, nothing leaked), check pictures, kill the daemon at least
#      three times, and have exercised seeks, closes, restarts, dropped requests and corrupted
#      copies. Its JSON report is printed, and the daemon's memory every 30 s (RSS_TRACE: a leak
#      grows with time, an allocator's high-water mark levels off; see docs/stress.md).
# The kernel side is checked by scripts/test-vm's dmesg check after the test (WARN, BUG, lockdep...).
set -euo pipefail
repo=${DAEDALUS_REPO:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$repo/tests/vm/lib/cli-test"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
"$repo/tests/vm/lib/start-daemon" >/dev/null
work=$(mktemp -d)
seconds=${STRESS_SECONDS:-120}
seed=${STRESS_SEED:-14}
kill_every=${STRESS_KILL_EVERY:-40}
kill_args=()
((kill_every == 0)) || kill_args=(--kill-daemon-every "$kill_every" --restart-daemon "$repo/tests/vm/lib/start-daemon")
streams=(
  "$repo"/tests/vm/data/stress-vp9-160x90.ivf
  "$repo"/tests/vm/data/stress-av1-128x72.ivf
  "$repo"/tests/vm/data/stress-h264-192x108.264
  "$repo"/tools/tests/data/vp9-8bit-resize.ivf
  "$repo"/tools/tests/data/vp9-10bit-18x10-lossless.ivf
  "$repo"/daemon/tests/data/tiny-97x61-10bit-arf.ivf
)
jqv() { jq -r "$1" "$2"; }

echo "== 1. a wrong reference is detected"
mkdir "$work/wrong"
cp "$repo/tests/vm/data/stress-vp9-160x90.ivf" "$work/wrong/clip.ivf"
# The second picture's MD5 replaced.
awk 'BEGIN { FS = OFS = ", " } /^0,/ && ++n == 2 { $NF = "0123456789abcdef0123456789abcdef" } { print }' \
  "$repo/tests/vm/data/stress-vp9-160x90.ivf.framemd5" >"$work/wrong/clip.ivf.framemd5"
rc=0
"$bin" stress --quiet --duration 15 --clients 1 --seed "$seed" --cache "$work/cache" \
  --json "$work/wrong.json" "$work/wrong/clip.ivf" >"$work/wrong.log" 2>&1 || rc=$?
tail -n 3 "$work/wrong.log"
if [[ ! -s $work/wrong.json ]]; then
  fail "negative check: no JSON report (status $rc)"; cat "$work/wrong.log"
else
  wrong=$(jqv .wrong_pictures "$work/wrong.json")
  echo "negative check: status $rc, wrong_pictures $wrong, passed $(jqv .passed "$work/wrong.json")"
  [[ $rc != 0 ]] || fail "negative check: exit status 0 with a wrong reference"
  ((wrong > 0)) || fail "negative check: wrong_pictures = $wrong with a wrong reference"
  [[ $(jqv .passed "$work/wrong.json") == false ]] || fail "negative check: passed"
fi

echo "== 2. stress: $seconds s, 3 clients, daemon killed every $kill_every s (0: never), seed $seed"
[[ $(cat /sys/class/misc/daedalus/daemon_attached) == 1 ]] || fail "no daemon attached after step 1"
start=$(date +%s)
# The daemon's memory every 30 s: seconds, pid, VmRSS, RssAnon, RssFile, RssShmem (KiB), threads.
rss_trace() {
  local pid
  while sleep 30; do
    pid=$(cat /sys/class/misc/daedalus/daemon_pid 2>/dev/null) || continue
    ((pid > 0)) || continue
    awk -v t=$(($(date +%s) - start)) -v pid="$pid" '
      /^(VmRSS|RssAnon|RssFile|RssShmem|Threads):/ { v[$1] = $2 }
      END { print "RSS_TRACE", t, pid, v["VmRSS:"], v["RssAnon:"], v["RssFile:"], v["RssShmem:"], v["Threads:"] }
    ' "/proc/$pid/status" 2>/dev/null || true
  done
}
rss_trace >"$work/rss.trace" & tracer=$!
rc=0
"$bin" stress --quiet --duration "$seconds" --clients 3 --seed "$seed" --cache "$work/cache" \
  "${kill_args[@]}" --json "$work/stress.json" "${streams[@]}" >"$work/stress.log" 2>&1 || rc=$?
kill "$tracer" 2>/dev/null || true
wait "$tracer" 2>/dev/null || true
echo "stress took $(($(date +%s) - start)) s, status $rc"
echo "RSS_TRACE seconds pid VmRSS RssAnon RssFile RssShmem threads"
cat "$work/rss.trace"
grep -E '^stress: ' "$work/stress.log" | tail -n 40
if [[ ! -s $work/stress.json ]]; then
  fail "stress: no JSON report"; tail -n 40 "$work/stress.log"
else
  cat "$work/stress.json"
  [[ $rc == 0 ]] || fail "stress exited with $rc"
  [[ $(jqv .passed "$work/stress.json") == true ]] || fail "stress: not passed"
  for key in frames_checked seeks closes restarts drops corrupted_runs; do
    (($(jqv ".$key" "$work/stress.json") > 0)) || fail "stress: $key = 0"
  done
  if ((kill_every > 0)); then
    kills=$(jqv .daemon_kills "$work/stress.json")
    ((kills >= seconds / kill_every - 1)) || fail "stress: $kills daemon kills in $seconds s"
  fi
fi

echo "daemon log: $(grep -c '' /tmp/daedalusd.log) lines; not INFO (last 30):"
grep -v '^\[INFO ' /tmp/daedalusd.log | tail -n 30 || true
if ((failures)); then
  echo "stress: $failures failures"; exit 1
fi
echo "stress: passed"
