#!/usr/bin/env bash
# vm-run:
#
# VM test (runs in the guest, outside the client chroot, with daedalus.ko loaded): the CLI's
# `daedalus check-requests` exercises the Request API and exits 0 when the driver rejects bad
# requests with the right errno. scripts/test-vm builds target/release/daedalus first.
set -euo pipefail
repo=${DAEDALUS_REPO:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${DAEDALUS_BIN:-$repo/target/release/daedalus}
[[ -x $bin ]] || { echo "requests: $bin not found: cargo build --release -p daedalus-tools"; exit 1; }
echo "\$ daedalus check-requests"
"$bin" check-requests
