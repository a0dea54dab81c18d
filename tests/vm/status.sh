#!/usr/bin/env bash
# vm-run: --timeout 600
#
# VM test (guest, outside the chroot, daedalus.ko loaded, no daemon at first): the module's
# counters in /sys/class/misc/daedalus/ and `daedalus status [--json]` (issue 13). Each step
# takes `daedalus status --json` before and after and checks the counters moved by exactly what
# the step did (the decode's own summary line says how many frames it submitted, decoded and got
# back in error). Each `daedalus` run costs seconds under TCG (it loads FFmpeg's libraries from
# the 9p root), so the test takes few snapshots and polls sysfs with shell builtins:
#   1. no daemon: not attached, no pid; an ordinary user (uid 1500, no groups) reads the same
#      status (the attributes are 0444);
#   2. an open file of /dev/video0 is a context: contexts_open + 1 and a `contexts` line;
#   3. a fake daemon answering every job with an error (daedalus-fake-daemon serve error):
#      attached with its pid, attaches + 1; a decode: submitted and failed + the frames, nothing
#      completed; stopped: detaches + 1;
#   4. daedalusd: its pid, name and threads; its sandbox (/proc/PID/status: a non-zero Uid, no
#      groups, no capabilities, NoNewPrivs 1, Seccomp 2); a decode, seen while it runs (a vp9 context with
#      completed jobs and a frame rate in `contexts`), then submitted = completed + the frames,
#      no failure, nothing in flight, latency percentiles 0 < p50 <= p95 <= p99; the buffers
#      while it runs (OUTPUT and CAPTURE buffers with memory, at least one 1000x562 NV12
#      picture's bytes per CAPTURE buffer) and none once it ended;
#   5. a stream with corrupted tile data: failed + the decode's error count, completed + its
#      decoded count (FFmpeg decodes this corruption into damaged pictures without an error, so
#      the error count may be 0: steps 3 and 6 are the deterministic error and timeout checks);
#   6. daedalusd killed: not attached, detaches + 1; a fake daemon that never answers, with
#      job_timeout_ms=300: every job fails, some as timeouts, nothing left in flight, no buffer
#      left once the client is gone;
#   7. the module unloaded: `daedalus status` (and --json) exits 1 saying so.
set -euo pipefail
repo=${DAEDALUS_REPO:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$repo/tests/vm/lib/cli-test"
fake=$repo/target/release/daedalus-fake-daemon
[[ -x $fake ]] || { echo "status: $fake not found"; exit 1; }
param=/sys/module/daedalus/parameters/job_timeout_ms
clip=$repo/tests/vm/data/first-vp9-1000x562.ivf
work=$(mktemp -d)
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

snap() { # NAME: daedalus status --json into $work/NAME.json
  "$bin" status --json >"$work/$1.json" 2>"$work/$1.err" || fail "status --json ($1): $(cat "$work/$1.err")"
}
val() { jq -r "$2" "$work/$1.json"; }          # val NAME JQ-PATH
delta() { echo $(($(val "$2" "$3") - $(val "$1" "$3"))); } # delta BEFORE AFTER JQ-PATH
expect() { # WHAT GOT WANT
  if [[ $2 == "$3" ]]; then echo "  ok: $1 = $2"; else fail "$1 = $2, want $3"; fi
}
decode() { # NAME FILE: decode, leave "submitted decoded errors" in $work/NAME.counts
  local name=$1 file=$2
  local rc=0
  timeout 240 "$bin" decode "$file" >"$work/$name.log" 2>&1 || rc=$?
  [[ $rc != 124 ]] || fail "decode $name hung"
  counts "$name"
}
counts() { # NAME: the counts of decode's summary line in $work/NAME.log
  local name=$1
  tail -n 1 "$work/$name.log" | sed 's/^/  | /'
  sed -n 's/.* \([0-9]*\) frames submitted: \([0-9]*\) decoded, \([0-9]*\) decode errors.*/\1 \2 \3/p' \
    "$work/$name.log" | tail -n 1 >"$work/$name.counts"
  [[ -s $work/$name.counts ]] || { fail "decode $name: no summary line"; cat "$work/$name.log"; echo "0 0 0" >"$work/$name.counts"; }
}
serve() { # MODE: start a fake daemon, wait until it has attached
  "$fake" serve "$1" >"$work/fake.log" 2>&1 &
  daemon=$!
  for _ in $(seq 300); do
    grep -q "serving" "$work/fake.log" && return 0
    kill -0 $daemon 2>/dev/null || break
    sleep 0.1
  done
  cat "$work/fake.log"
  fail "fake daemon ($1) did not attach"
}
jobs_moved() { # BEFORE AFTER SUBMITTED COMPLETED FAILED: the device-wide counters' deltas
  expect "jobs.submitted delta" "$(delta "$1" "$2" .jobs.submitted)" "$3"
  expect "jobs.completed delta" "$(delta "$1" "$2" .jobs.completed)" "$4"
  expect "jobs.failed delta" "$(delta "$1" "$2" .jobs.failed)" "$5"
  expect "jobs.in_flight" "$(val "$2" .jobs.in_flight)" 0
}

echo "== 1. no daemon"
"$bin" status --json --device 0 >"$work/s0.json" || fail "status --json --device 0"
expect "daemon.attached" "$(val s0 .daemon.attached)" false
expect "daemon.pid" "$(val s0 .daemon.pid)" null
expect "video" "$(val s0 .video)" /dev/video0
# An ordinary user: the binary from a world-readable copy (the repo may be root-only).
install -m 0755 "$bin" "$work/daedalus"
chmod 0755 "$work"
if setpriv --reuid=1500 --regid=1500 --clear-groups -- "$work/daedalus" status --json >"$work/user.json" 2>"$work/user.err"; then
  expect "ordinary user's jobs.submitted" "$(val user .jobs.submitted)" "$(val s0 .jobs.submitted)"
else
  fail "an ordinary user cannot run daedalus status: $(cat "$work/user.err")"
fi
! "$bin" status --device 99 >/dev/null 2>&1 || fail "status --device 99 succeeded"

echo "== 2. an open context"
exec 3</dev/video0
snap s1
expect "contexts_open delta" "$(delta s0 s1 .contexts_open)" 1
expect "contexts listed" "$(val s1 '.contexts | length')" 1
expect "a new context's codec and jobs" "$(val s1 '.contexts[0] | "\(.codec) \(.submitted)"')" "- 0"
exec 3<&-
snap s2
expect "contexts_open after close" "$(val s2 .contexts_open)" "$(val s0 .contexts_open)"

echo "== 3. a fake daemon answering every job with an error"
serve error
snap s3
expect "daemon.attached" "$(val s3 .daemon.attached)" true
expect "daemon.pid" "$(val s3 .daemon.pid)" "$daemon"
expect "daemon.attaches delta" "$(delta s2 s3 .daemon.attaches)" 1
decode fake-error "$clip"
read -r sub dec err <"$work/fake-error.counts"
snap s4
[[ $sub -gt 0 && $err == "$sub" ]] || fail "decode with an erroring daemon: $sub submitted, $err errors"
jobs_moved s3 s4 "$sub" 0 "$sub"
kill -TERM $daemon
wait $daemon || fail "fake daemon reported a problem: $(cat "$work/fake.log")"
snap s5
expect "daemon.attached" "$(val s5 .daemon.attached)" false
expect "daemon.detaches delta" "$(delta s4 s5 .daemon.detaches)" 1

echo "== 4. daedalusd"
daemon=$("$repo/tests/vm/lib/start-daemon")
snap s6
expect "daemon.pid" "$(val s6 .daemon.pid)" "$daemon"
expect "daemon.name" "$(val s6 .daemon.name)" daedalusd
threads=$(val s6 .daemon.threads)
[[ $threads =~ ^[0-9]+$ && $threads -ge 1 ]] || fail "daemon.threads = $threads"
# The sandbox (issue 14): started as root, it dropped to an unprivileged user, keeps no
# capabilities, set no-new-privs and runs under its seccomp filter (mode 2); the decodes below
# and in steps 5 and 6 happen under it.
grep -E '^(Uid|Gid|Groups|CapEff|CapPrm|CapInh|CapAmb|CapBnd|NoNewPrivs|Seccomp|Seccomp_filters):' \
  "/proc/$daemon/status" | sed 's/^/  | /'
sbx() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$daemon/status"; }
[[ $(sbx Uid) =~ ^[0-9]+$ && $(sbx Uid) != 0 ]] || fail "the daemon runs as uid $(sbx Uid)"
[[ -z $(awk '$1 == "Groups:" {print $2}' "/proc/$daemon/status") ]] || fail "the daemon kept supplementary groups"
for c in CapEff CapPrm CapInh CapAmb CapBnd; do expect "$c" "$(sbx $c)" 0000000000000000; done
expect "NoNewPrivs" "$(sbx NoNewPrivs)" 1
expect "Seccomp" "$(sbx Seccomp)" 2
grep -m1 -o 'sandboxed: .*' /tmp/daedalusd.log | sed 's/^/  | /' || fail "no 'sandboxed' line in the daemon's log"
# The decode's context while it runs: its line in `contexts`, polled with builtins (a
# 10-frame 1000x562 stream takes about a second to decode under TCG).
"$bin" decode "$clip" >"$work/good.log" 2>&1 &
decoder=$!
seen=""
while [[ -z $seen ]] && kill -0 $decoder 2>/dev/null; do
  while read -r line; do
    if [[ $line =~ codec=vp9\ .*completed=([0-9]+).*\ fps=([0-9.]+) ]] && ((BASH_REMATCH[1] > 0)); then
      seen=$line
      # The buffers at the same moment (this context's: the only one open).
      seen_buffers="$(</sys/class/misc/daedalus/output_buffers) $(</sys/class/misc/daedalus/capture_buffers) $(</sys/class/misc/daedalus/buffer_bytes)"
    fi
  done </sys/class/misc/daedalus/contexts
done
wait $decoder || fail "decode failed: $(tail -n 2 "$work/good.log")"
if [[ -n $seen ]]; then
  echo "  ok: seen during the decode: $seen"
  ! [[ $seen =~ \ fps=0\.00\  ]] || fail "a context with decoded jobs has no frame rate: $seen"
  read -r out cap bytes <<<"$seen_buffers"
  echo "  buffers during the decode: $out OUTPUT, $cap CAPTURE, $bytes bytes"
  ((out > 0 && cap > 0)) || fail "a decoding context without OUTPUT and CAPTURE buffers: $seen_buffers"
  ((bytes >= cap * 1000 * 562 * 3 / 2)) || fail "$bytes bytes of buffers for $cap 1000x562 NV12 CAPTURE buffers"
else
  fail "no vp9 context with decoded jobs seen during the decode"
fi
counts good
read -r sub dec err <"$work/good.counts"
snap s8
[[ $sub == 10 && $dec == 10 && $err == 0 ]] || fail "decode: $sub submitted, $dec decoded, $err errors (want 10 10 0)"
jobs_moved s6 s8 "$sub" "$sub" 0
expect "jobs.timed_out delta" "$(delta s6 s8 .jobs.timed_out)" 0
read -r p50 p95 p99 < <(val s8 '.jobs.latency_us | "\(.p50) \(.p95) \(.p99)"')
echo "  latency p50 $p50 us, p95 $p95 us, p99 $p99 us; fps $(val s8 .jobs.fps)"
[[ $p50 -gt 0 && $p50 -le $p95 && $p95 -le $p99 ]] || fail "latency percentiles $p50 / $p95 / $p99"
expect "buffers after the decode" "$(val s8 '.buffers | "\(.output) \(.capture) \(.bytes)"')" "0 0 0"
"$bin" status | sed 's/^/  | /'

echo "== 5. a corrupted stream"
# Tile data corrupted, headers intact: the client submits every frame.
"$repo/tests/vm/lib/corrupt-ivf" "$clip" "$work/corrupt.ivf" 30% 3
decode corrupt "$work/corrupt.ivf"
read -r sub dec err <"$work/corrupt.counts"
snap s9
echo "  the corrupted stream: $sub submitted, $dec decoded, $err error buffers"
jobs_moved s8 s9 "$sub" "$dec" "$err"
kill -0 "$daemon" 2>/dev/null || fail "the daemon died on the corrupted stream"

echo "== 6. daemon killed, then a daemon that never answers"
kill -KILL "$daemon"
wait "$daemon" 2>/dev/null || true
snap s10
expect "daemon.attached" "$(val s10 .daemon.attached)" false
expect "daemon.detaches delta" "$(delta s9 s10 .daemon.detaches)" 1
old=$(cat $param)
echo 300 >$param
serve hang
decode hang "$clip"
read -r sub dec err <"$work/hang.counts"
snap s12
"$bin" status | sed 's/^/  | /'
kill -KILL $daemon
wait $daemon 2>/dev/null || true
echo "$old" >$param
jobs_moved s10 s12 "$sub" 0 "$sub"
timed_out=$(delta s10 s12 .jobs.timed_out)
echo "  $timed_out of $sub jobs timed out"
[[ $timed_out -ge 1 && $timed_out -le $sub ]] || fail "jobs.timed_out delta $timed_out (of $sub)"
expect "buffers after the timed-out decode" "$(val s12 '.buffers | "\(.output) \(.capture) \(.bytes)"')" "0 0 0"

echo "== 7. module not loaded"
rmmod daedalus || fail "rmmod daedalus"
for json in "" --json; do
  rc=0
  # shellcheck disable=SC2086 # no option or one
  "$bin" status $json >"$work/out" 2>"$work/err" || rc=$?
  sed 's/^/  | /' "$work/err"
  expect "status $json exit" "$rc" 1
  grep -q "daedalus module is not loaded" "$work/err" || fail "status $json does not say the module is not loaded"
done
insmod "$DAEDALUS_KO" || fail "insmod again"

[[ $failures -eq 0 ]] && echo "status: all passed" || { echo "status: $failures failed"; exit 1; }
