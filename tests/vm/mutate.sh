#!/usr/bin/env bash
# vm-run: --timeout 7200
# vm-test: opt-in 1,000 mutated streams per codec, `make mutate` (~20 minutes under TCG)
#
# VM test (guest, outside the chroot, daedalus.ko loaded): mutated streams through the device
# (issue 14, part 4). `daedalus stress --mutate MUTATE_STREAMS` (default 1000 per codec) over the
# small committed VP9 (8/10-bit, alt-refs, size changes), AV1 (8/10-bit, hidden frames) and H.264
# (High / High 10, B-frames) streams, MUTATE_CLIENTS (default 3) contexts at once, seed
# MUTATE_SEED (default 14; the seed prints first, and a seed gives the same mutated streams):
# each stream a copy with one to three mutations (bits flipped, byte runs, packets truncated /
# duplicated / reordered / dropped, damaged headers: tools/src/stress/corrupt.rs), decoded whole.
# Pass: no hung request (each ends within the module's job timeout plus 5 s), a daemon that dies
# is restarted (tests/vm/lib/start-daemon) and counted, nothing leaked (module buffers /
# contexts / jobs, the client's and the idle daemon's files, daemon RSS, CmaFree), some pictures
# decoded, the device idle and the module unloading at the end (with kmemleak when the kernel has
# it), and scripts/test-vm's dmesg check (no oops / WARN / lockdep...). Prints per codec: streams,
# packets, error buffers, good pictures, refused streams, hung requests, daemon restarts. Streams
# that hung a request or were being decoded when the daemon died are saved and printed as a
# base64 tar between "SAVED-STREAMS begin" / "end" lines (`make mutate` unpacks them into its logs).
set -euo pipefail
repo=${DAEDALUS_REPO:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$repo/tests/vm/lib/cli-test"
source "$repo/tests/vm/lib/device-idle"
source "$repo/tests/vm/lib/kmemleak"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
per_codec=${MUTATE_STREAMS:-1000}
clients=${MUTATE_CLIENTS:-3}
seed=${MUTATE_SEED:-14}
echo "mutate: seed $seed, $per_codec streams per codec, $clients clients"
streams=(
  "$repo"/tests/vm/data/stress-vp9-160x90.ivf
  "$repo"/tools/tests/data/vp9-8bit-resize.ivf
  "$repo"/daemon/tests/data/tiny-97x61-10bit-arf.ivf
  "$repo"/tests/vm/data/stress-av1-128x72.ivf
  "$repo"/tests/vm/data/mutate-av1-10bit-96x54.ivf
  "$repo"/tests/vm/data/stress-h264-192x108.264
  "$repo"/tests/vm/data/mutate-h264-10bit-112x64.264
)
work=$(mktemp -d)

kmemleak_begin
"$repo/tests/vm/lib/start-daemon" >/dev/null
fds=$(daemon_fds)
start=$(date +%s)
rc=0
"$bin" stress --quiet --mutate "$per_codec" --clients "$clients" --seed "$seed" --cache "$work/cache" \
  --restart-daemon "$repo/tests/vm/lib/start-daemon" --save-dir "$work/saved" \
  --json "$work/mutate.json" "${streams[@]}" >"$work/mutate.log" 2>&1 || rc=$?
secs=$(($(date +%s) - start))
echo "mutate took $secs s, status $rc"
grep -E '^(stress|mutate): ' "$work/mutate.log" | tail -n 60
if [[ ! -s $work/mutate.json ]]; then
  fail "mutate: no JSON report"; tail -n 40 "$work/mutate.log"
else
  jq 'del(.streams)' "$work/mutate.json"
  [[ $rc == 0 ]] || fail "stress --mutate exited with $rc"
  [[ $(jq -r .passed "$work/mutate.json") == true ]] || fail "mutate: not passed"
  for codec in VP9 H.264 AV1; do
    n=$(jq -r --arg c "$codec" '[.mutate[] | select(.codec == $c) | .streams] | add // 0' "$work/mutate.json")
    ((n == per_codec)) || fail "mutate: $n $codec streams decoded, not $per_codec"
  done
  (($(jq -r .hung_requests "$work/mutate.json") == 0)) || fail "mutate: hung requests"
fi
if [[ -d $work/saved ]] && [[ -n $(ls -A "$work/saved") ]]; then
  echo "saved streams: $(ls "$work/saved" | tr '\n' ' ')"
  echo "SAVED-STREAMS begin"
  tar -C "$work/saved" -cz . | base64 -w 76
  echo "SAVED-STREAMS end"
fi

# The end: the device idle, the daemon's files back, the module unloading (and leaking nothing).
unload_at_end "after the mutated streams" "$fds" || failures=$((failures + $?))

echo "daemon log: $(grep -c '' /tmp/daedalusd.log) lines; not INFO (last 30):"
grep -v '^\[INFO ' /tmp/daedalusd.log | tail -n 30 || true
if ((failures)); then
  echo "mutate: $failures failures"; exit 1
fi
echo "mutate: passed"
