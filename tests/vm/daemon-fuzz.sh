#!/usr/bin/env bash
# vm-run: --timeout 900
#
# VM test (guest, outside the chroot, daedalus.ko loaded): the protocol fuzzer of issue 14, a
# hostile daemon (daedalus-fake-daemon hostile, daemon/src/bin/daedalus-fake-daemon/hostile.rs)
# attacking /dev/daedalus while clients decode:
#   1. for DAEMON_FUZZ_SECONDS (default 45) s, seed DAEMON_FUZZ_SEED (default 1), job timeout
#      500 ms: short reads, completions of unknown jobs / other contexts / too many bytes / bad
#      statuses, late, duplicate and racing completions, second handshakes, undefined ioctls,
#      second daemons, detach-attach storms with jobs in flight. The hostile daemon checks what
#      the module answers (a completion accepted at most once, never a stale or invalid one...)
#      and must exit 0. Meanwhile 3 clients decode the small VP9 / H.264 / AV1 streams in loops
#      with 1..6 requests in flight: every decode must end (error or not) within 60 s, and its
#      requests in the order they were queued, whatever order the daemon answers in (no
#      "dequeued OUTPUT buffer X while waiting for Y" / "decode order broken" from the client);
#   2. once both are done: no context, job or buffer left (tests/vm/lib/device-idle);
#   3. a real daemon attaches and decodes the three streams byte-exact.
# The kernel side (no WARN, BUG, lockdep report...) is scripts/test-vm's dmesg check.
set -euo pipefail
repo=${DAEDALUS_REPO:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${DAEDALUS_BIN:-$repo/target/release/daedalus}
fake=$repo/target/release/daedalus-fake-daemon
[[ -x $bin && -x $fake ]] || { echo "daemon-fuzz: $bin or $fake not found: cargo build --release -p daedalus-tools -p daedalus-daemon"; exit 1; }
# shellcheck source=lib/device-idle
. "$repo/tests/vm/lib/device-idle"
# shellcheck source=lib/small-streams
. "$repo/tests/vm/lib/small-streams"
seconds=${DAEMON_FUZZ_SECONDS:-45}
seed=${DAEMON_FUZZ_SEED:-1}
param=/sys/module/daedalus/parameters/job_timeout_ms
mapfile -t streams < <(small_streams)
work=$(mktemp -d)
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

old_timeout=$(<$param)
echo 500 >$param

echo "== 1. a hostile daemon for $seconds s (seed $seed), 3 clients decoding"
"$fake" hostile "$seed" "$seconds" >"$work/hostile.log" 2>&1 & hostile=$!
for _ in $(seq 100); do
  [[ $(<"$daedalus_sysfs/daemon_attached") == 1 ]] && break
  sleep 0.1
done
# client N: decodes its stream until the hostile daemon is gone; a decode that does not end
# within 60 s is a hung request (the module's job timeout is 500 ms).
client() {
  local n=$1 s=${streams[$1]} runs=0 errors=0 unordered=0 rc
  while kill -0 "$hostile" 2>/dev/null; do
    rc=0
    timeout 60 "$bin" decode -q --in-flight $((1 + RANDOM % 6)) --timeout-ms 5000 "$s" >/dev/null 2>"$work/client$n.err" || rc=$?
    runs=$((runs + 1))
    if ((rc == 124)); then echo "client $n: a decode of $(basename "$s") hung (60 s)"; return 1; fi
    ((rc == 0)) || errors=$((errors + 1))
    if grep -qE 'while waiting for|decode order broken' "$work/client$n.err"; then
      unordered=$((unordered + 1))
      grep -hE 'while waiting for|decode order broken' "$work/client$n.err" | head -n 1
    fi
  done
  echo "client $n: $(basename "$s"): $runs decodes, $errors ended with errors, $unordered out of order"
  ((unordered == 0)) || { echo "client $n: requests completed out of order"; return 2; }
}
pids=()
for n in 0 1 2; do client "$n" & pids+=($!); done
rc=0; wait "$hostile" || rc=$?
cat "$work/hostile.log"
((rc == 0)) || fail "the hostile daemon found the module misbehaving (exit $rc)"
for p in "${pids[@]}"; do
  rc=0; wait "$p" || rc=$?
  case $rc in
    0) ;;
    2) fail "a client's requests completed out of order" ;;
    *) fail "a client's decode hung" ;;
  esac
done
echo "$old_timeout" >$param

echo "== 2. nothing left behind"
device_idle "after the hostile daemon and its clients" || fail "contexts, jobs or buffers left"
dmesg | grep -E "daedalus: (invalid completion|.*timed out)" | tail -n 3 || true

echo "== 3. a real daemon decodes byte-exact"
"$repo/tests/vm/lib/start-daemon" >/dev/null
small_streams_byte_exact "$work"

rm -rf "$work"
[[ $failures -eq 0 ]] && echo "daemon-fuzz: all passed" || { echo "daemon-fuzz: $failures failed"; exit 1; }
