#!/usr/bin/env bash
# vm-run:
#
# VM test (guest, outside the chroot, daedalus.ko loaded): the kernel side of /dev/daedalus,
# driven by daedalus-fake-daemon (daemon/src/bin/: a scripted stand-in for daedalusd, on the
# daemon's own wire definitions, that checks every message the module sends) and a real Request API client (`daedalus check-requests`, which expects
# every decode to end with an error buffer in time):
#   1. handshake and error paths: a second daemon gets EBUSY, reads before the handshake and a
#      wrong protocol version get EPROTO, unknown jobs ENOENT, bad statuses EINVAL;
#   2. a daemon answering every job with a decode error: jobs carry valid fds and controls;
#   3. a daemon sending invalid completions (wrong context): refused with EINVAL, job failed;
#   4. a daemon that never answers, killed with SIGKILL: pending requests end within 1 s;
#   5. a daemon that never answers, with job_timeout_ms=300: jobs time out with errors;
#   6. no daemon again: jobs fail at once.
set -euo pipefail
repo=${DAEDALUS_REPO:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${DAEDALUS_BIN:-$repo/target/release/daedalus}
fake=$repo/target/release/daedalus-fake-daemon
[[ -x $bin && -x $fake ]] || { echo "daemon-protocol: $bin or $fake not found: cargo build --release -p daedalus-tools -p daedalus-daemon"; exit 1; }
param=/sys/module/daedalus/parameters/job_timeout_ms
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

echo "== 1. handshake and error paths"
"$fake" protocol || fail "protocol checks"

serve() { # MODE: start a fake daemon, wait until it has attached
  "$fake" serve "$1" > /tmp/fake.log 2>&1 & daemon=$!
  for _ in $(seq 300); do
    grep -q "serving" /tmp/fake.log && return 0
    kill -0 $daemon 2>/dev/null || break
    sleep 0.1
  done
  cat /tmp/fake.log
  fail "fake daemon ($1) did not attach"
}
stop() { # stop the fake daemon with SIGTERM and show what it saw
  kill -TERM $daemon; wait $daemon || fail "fake daemon reported a problem"
  cat /tmp/fake.log
}

for mode in error invalid; do
  echo "== $([[ $mode == error ]] && echo 2 || echo 3). fake daemon answering '$mode'"
  serve $mode
  "$bin" check-requests --codec vp9,h264,av1 > /tmp/check.log 2>&1 || { cat /tmp/check.log; fail "check-requests with a '$mode' daemon"; }
  tail -1 /tmp/check.log
  stop
done

echo "== 4. daemon killed with jobs pending"
serve hang
# Kill the daemon as soon as it holds a job: the client's request (1 s timeout) must end anyway.
( for _ in $(seq 600); do grep -q "holding job" /tmp/fake.log && break; sleep 0.05; done
  kill -KILL $daemon ) & killer=$!
"$bin" check-requests --codec vp9 --timeout-ms 1000 > /tmp/check.log 2>&1 || { cat /tmp/check.log; fail "requests did not end within 1 s of the daemon's death"; }
wait $killer; wait $daemon 2>/dev/null || true
grep -q "holding job" /tmp/fake.log || fail "the daemon never got a job"
tail -1 /tmp/check.log

echo "== 5. job timeout"
old=$(cat $param)
echo 300 > $param
serve hang
"$bin" check-requests --codec vp9 --timeout-ms 1500 > /tmp/check.log 2>&1 || { cat /tmp/check.log; fail "jobs did not time out"; }
tail -1 /tmp/check.log
dmesg | grep -q "jobs timed out" || fail "no timeout reported in dmesg"
kill -KILL $daemon; wait $daemon 2>/dev/null || true
echo "$old" > $param

echo "== 6. no daemon"
"$bin" check-requests --codec vp9 > /tmp/check.log 2>&1 || { cat /tmp/check.log; fail "check-requests without a daemon"; }
tail -1 /tmp/check.log


[[ $failures -eq 0 ]] && echo "daemon-protocol: all passed" || { echo "daemon-protocol: $failures failed"; exit 1; }
