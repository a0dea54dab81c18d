#!/usr/bin/env bash
# vm-run: --pre "\$DAEDALUS_REPO/tests/vm/lib/start-daemon" --timeout 600
#
# VM test (guest, daedalusd attached): `daedalus decode` as the first client of a fresh boot
# decodes 1000x562 AV1, VP9 and H.264 streams byte-exact, each the first of its codec
# (tests/vm/lib/first-client).
# Needs target/release/daedalus and daedalusd (scripts/test-vm builds them first).
exec "$(dirname "$0")/lib/first-client" decode av1 vp9 h264
