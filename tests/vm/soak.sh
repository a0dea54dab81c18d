#!/usr/bin/env bash
# vm-run: --memory 3G --timeout 9000
# vm-test: opt-in the soak, `make soak` (10,000 1080p pictures: 30-50 minutes under TCG)
#
# VM test (guest, outside the chroot, daedalus.ko loaded): the soak of issue 14, part 2.
# `daedalus stress --soak SOAK_FRAMES` (default 10000) over SOAK_STREAMS (space-separated paths:
# `make soak` makes the 1080p streams with scripts/gen-bench-stream and their references with
# `daedalus stress --prepare` into SOAK_CACHE on the host, whose file system the guest reads),
# SOAK_CLIENTS (default 3) contexts at once, seed SOAK_SEED (default 14), SOAK_WARMUP_ROUNDS
# (default: stress's, every stream decoded twice) and SOAK_MAX_RSS_GROWTH (KiB, default stress's).
# It must pass: every picture good and byte-exact (per frame, against FFmpeg's framemd5), and
# after every round, all contexts closed, the module's buffers / contexts / jobs and the idle
# daemon's open files back at their start, the idle daemon's anonymous RSS flat after the
# warm-up (docs/stress.md, "The soak"). Then the daemon is stopped, the device must be idle,
# the module must unload, when the kernel has kmemleak the scan after the unload must show
# nothing of the module's (tests/vm/lib/kmemleak), and with every process of the soak gone and
# the page cache dropped, CmaFree must be within SOAK_CMA_TOLERANCE KiB (default 8192) of its
# value before the soak, taken the same way.
# scripts/test-vm checks the guest's dmesg after the test.
set -euo pipefail
repo=${DAEDALUS_REPO:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$repo/tests/vm/lib/cli-test"
source "$repo/tests/vm/lib/device-idle"
source "$repo/tests/vm/lib/kmemleak"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
frames=${SOAK_FRAMES:-10000}
clients=${SOAK_CLIENTS:-3}
seed=${SOAK_SEED:-14}
read -ra streams <<<"${SOAK_STREAMS:?SOAK_STREAMS: the streams (make soak sets it)}"
cache=${SOAK_CACHE:?SOAK_CACHE: where the references are (make soak sets it)}
extra=()
[[ -n ${SOAK_WARMUP_ROUNDS:-} ]] && extra+=(--soak-warmup-rounds "$SOAK_WARMUP_ROUNDS")
[[ -n ${SOAK_MAX_RSS_GROWTH:-} ]] && extra+=(--soak-max-rss-growth "$SOAK_MAX_RSS_GROWTH")
cma_tolerance=${SOAK_CMA_TOLERANCE:-8192}
work=$(mktemp -d)

# CmaFree with nothing of the soak running and the page cache dropped: CMA pageblocks also hold
# movable pages (page cache, any process's anonymous memory), which only this state leaves out.
# What stays: tmpfs files (the guest's /tmp: the daemon's log, this test's reports), a few
# hundred KiB at the default log level.
cma_free_settled() {
  sync
  echo 3 >/proc/sys/vm/drop_caches || { echo "soak: cannot drop the page cache" >&2; return 1; }
  awk '/^CmaFree:/ { print $2 }' /proc/meminfo
}
cma_start=$(cma_free_settled) || exit 1

kmemleak_begin
"$repo/tests/vm/lib/start-daemon" >/dev/null
fds=$(daemon_fds)
echo "== soak: $frames pictures, $clients contexts at once, seed $seed, ${#streams[@]} streams:"
printf '  %s\n' "${streams[@]}"
start=$(date +%s)
rc=0
"$bin" stress --quiet --soak "$frames" --clients "$clients" --seed "$seed" --cache "$cache" \
  "${extra[@]}" --json "$work/soak.json" "${streams[@]}" >"$work/soak.log" 2>&1 || rc=$?
secs=$(($(date +%s) - start))
echo "soak took $secs s, status $rc"
grep -E '^(stress|soak): ' "$work/soak.log" | tail -n 40
if [[ ! -s $work/soak.json ]]; then
  fail "soak: no JSON report"; tail -n 40 "$work/soak.log"
else
  echo "round seconds frames_checked daemon_rss_kib daemon_rss_anon_kib daemon_fds daemon_threads cma_free_kib client_rss_anon_kib buffers contexts jobs_in_flight"
  jq -r '.soak.rounds[] | "CHECKPOINT \(.round) \(.seconds | floor) \(.frames_checked) \(.daemon_rss_kib) \(.daemon_rss_anon_kib) \(.daemon_fds) \(.daemon_threads) \(.cma_free_kib) \(.client_rss_anon_kib) \(.buffers) \(.contexts) \(.jobs_in_flight)"' "$work/soak.json"
  jq 'del(.soak.rounds)' "$work/soak.json"
  checked=$(jq -r .frames_checked "$work/soak.json")
  echo "soak: $checked pictures checked in $secs s ($(awk -v n="$checked" -v s="$secs" 'BEGIN { printf "%.2f", n / s }') fps)"
  [[ $rc == 0 ]] || fail "stress --soak exited with $rc"
  [[ $(jq -r .passed "$work/soak.json") == true ]] || fail "soak: not passed"
  ((checked >= frames)) || fail "soak: $checked pictures checked, fewer than $frames"
  for key in errors wrong_pictures hung_requests frames_unchecked; do
    (($(jq -r ".$key" "$work/soak.json") == 0)) || fail "soak: $key = $(jq -r ".$key" "$work/soak.json")"
  done
fi

# The end: no daemon, nothing left in the module, and the module unloads (and leaks nothing).
daemon_pid=$(cat "$daedalus_sysfs/daemon_pid")
unload_at_end "after the soak" "$fds" || failures=$((failures + $?))
# The daemon detaches before its process is gone: its memory is only free once it has exited
# (a zombie, which nobody may reap here, holds none).
daemon_running() { [[ -r /proc/$daemon_pid/status ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$daemon_pid/status" 2>/dev/null; }
for _ in $(seq 100); do daemon_running || break; sleep 0.1; done
! daemon_running || fail "the daemon (pid $daemon_pid) still runs 10 s after SIGTERM"
if [[ -z $cma_start ]]; then
  echo "CMA: none in this kernel (no CmaFree in /proc/meminfo): not checked"
else
  cma_end=$(cma_free_settled) || exit 1
  echo "CMA: CmaFree $cma_start KiB before the soak, $cma_end KiB after it (every process gone, module unloaded, page cache dropped): $((cma_end - cma_start)) KiB"
  ((cma_end - cma_start >= -cma_tolerance)) ||
    fail "CMA: $((cma_start - cma_end)) KiB of CMA not given back after the soak (tolerance $cma_tolerance KiB)"
fi

echo "daemon log: $(grep -c '' /tmp/daedalusd.log) lines; not INFO (last 30):"
grep -v '^\[INFO ' /tmp/daedalusd.log | tail -n 30 || true
if ((failures)); then
  echo "soak: $failures failures"; exit 1
fi
echo "soak: passed"
