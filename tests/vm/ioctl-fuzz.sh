#!/usr/bin/env bash
# vm-run: --pre "\$DAEDALUS_REPO/tests/vm/lib/start-daemon" --timeout 900
#
# VM test (guest, daedalusd attached): the device-side fuzzer of issue 14,
# daedalus-ioctl-fuzz (tools/src/bin/): seeded random V4L2 / media request sequences over up to
# four contexts for IOCTL_FUZZ_SECONDS (default 45) s, seed IOCTL_FUZZ_SEED (default 1) —
# formats and sizes out of range, every memory type and buffer count, controls of random bytes
# and wrong sizes, requests of random bitstreams queued twice / re-initialised / closed while
# queued, HOLD_CAPTURE_BUF, STREAMON / STREAMOFF at any time, contexts closed mid-flight. Then:
#   1. the fuzzer returned from every call (its watchdog: no step over 30 s) and exited 0;
#   2. no context, job or buffer is left, and the daemon holds no more files than before;
#   3. the same daemon decodes the small VP9 / H.264 / AV1 streams byte-exact.
# The kernel side (no WARN, BUG, lockdep report...) is scripts/test-vm's dmesg check.
set -euo pipefail
repo=${DAEDALUS_REPO:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${DAEDALUS_BIN:-$repo/target/release/daedalus}
fuzz=$repo/target/release/daedalus-ioctl-fuzz
[[ -x $bin && -x $fuzz ]] || { echo "ioctl-fuzz: $bin or $fuzz not found: cargo build --release -p daedalus-tools"; exit 1; }
# shellcheck source=lib/device-idle
. "$repo/tests/vm/lib/device-idle"
# shellcheck source=lib/small-streams
. "$repo/tests/vm/lib/small-streams"
work=$(mktemp -d)
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

fds=$(daemon_fds)
echo "== 1. daedalus-ioctl-fuzz for ${IOCTL_FUZZ_SECONDS:-45} s (seed ${IOCTL_FUZZ_SEED:-1})"
timeout $((${IOCTL_FUZZ_SECONDS:-45} + 120)) "$fuzz" "${IOCTL_FUZZ_SEED:-1}" "${IOCTL_FUZZ_SECONDS:-45}" || fail "the fuzzer failed or got stuck"

echo "== 2. nothing left behind"
device_idle "after the fuzzer" "$fds" || fail "contexts, jobs, buffers or daemon files left"
[[ $(<"$daedalus_sysfs/daemon_attached") == 1 ]] || fail "the daemon is no longer attached"

echo "== 3. the same daemon decodes byte-exact"
small_streams_byte_exact "$work"

rm -rf "$work"
[[ $failures -eq 0 ]] && echo "ioctl-fuzz: all passed" || { echo "ioctl-fuzz: $failures failed"; exit 1; }
