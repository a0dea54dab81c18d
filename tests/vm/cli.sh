#!/usr/bin/env bash
# vm-run:
#
# VM test (guest, outside the chroot, daedalus.ko loaded, no daemon at first): the CLI as a
# newcomer meets it.
#   1. no daemon attached: `daedalus decode` and `daedalus bench` say so first, with what to run,
#      and exit 1 without decoding anything;
#   2. a closed pipe: `daedalus info | head -n 3` (and the other printing subcommands) ends
#      quietly, no panic on standard error;
#   3. an unrecognised input is named as such, with the list of what decode reads;
#   4. with the daemon started, the same decode succeeds, and one writing its MD5s into a closed
#      pipe ends quietly.
set -euo pipefail
repo=${DAEDALUS_REPO:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$repo/tests/vm/lib/cli-test"
clip=$repo/tools/tests/data/vp9-8bit-35x19-arf.ivf
work=$(mktemp -d)
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

echo "== 1. no daemon attached"
[[ $(cat /sys/class/misc/daedalus/daemon_attached) == 0 ]] || fail "a daemon is attached already"
for cmd in "decode $clip" "bench --frames 20 --warmup 2 $clip"; do
  rc=0
  # shellcheck disable=SC2086 # the words of $cmd are separate arguments
  "$bin" $cmd >"$work/out" 2>"$work/err" || rc=$?
  echo "\$ daedalus $cmd  -> exit $rc"
  sed 's/^/  | /' "$work/err"
  [[ $rc == 1 ]] || fail "daedalus $cmd: exit $rc, not 1"
  grep -q "no decode daemon is attached to /dev/daedalus" "$work/err" ||
    fail "daedalus $cmd: does not say that no daemon is attached"
  grep -q "start daedalusd" "$work/err" || fail "daedalus $cmd: does not say what to run"
  # Said first: nothing was decoded, so no per-frame error count.
  ! grep -q "decode errors" "$work/err" "$work/out" || fail "daedalus $cmd: decoded before saying it"
done

echo "== 2. closed pipes"
pipe_check() {
  local what=$1; shift
  local rc
  set +o pipefail
  "$@" 2>"$work/err" | head -n 3 >/dev/null
  rc=${PIPESTATUS[0]}
  set -o pipefail
  echo "$what | head -n 3: exit $rc, $(wc -c <"$work/err") bytes on stderr"
  ! grep -q "panicked" "$work/err" || fail "$what | head: panicked: $(cat "$work/err")"
  # 0 when everything fit before head closed, 141 (SIGPIPE) otherwise.
  [[ $rc == 0 || $rc == 141 ]] || fail "$what | head: exit $rc"
}
pipe_check "daedalus info" "$bin" info
pipe_check "daedalus check-requests" "$bin" check-requests
pipe_check "daedalus completions bash" "$bin" completions bash

echo "== 3. unrecognised input"
head -c 4096 /dev/urandom >"$work/random.bin"
rc=0; "$bin" decode "$work/random.bin" 2>"$work/err" || rc=$?
sed 's/^/  | /' "$work/err"
[[ $rc == 1 ]] || fail "random input: exit $rc"
grep -q "random.bin: not a recognised stream" "$work/err" || fail "random input not named as such"
! grep -qi "annex b AV1 stream$\|Section 5) nor" "$work/err" || fail "random input taken for AV1"

echo "== 4. with the daemon"
"$repo/tests/vm/lib/start-daemon" >/dev/null
rc=0; "$bin" decode -q "$clip" >"$work/out" 2>"$work/err" || rc=$?
cat "$work/out" "$work/err"
[[ $rc == 0 ]] || fail "decode with the daemon: exit $rc"
# 8 MB of pictures: far more than a pipe holds, so writes surely fail once head is gone.
pipe_check "daedalus decode -o -" "$bin" decode -q -o - "$repo/tests/vm/data/first-vp9-1000x562.ivf"

echo "cli: $failures failure(s)"
((failures == 0))
