#!/usr/bin/env bash
# vm-run: --clients --pre "\$DAEDALUS_REPO/tests/vm/lib/start-daemon" --timeout 600
#
# VM test (client chroot, GStreamer 1.26, daedalusd attached): v4l2slh264dec as the first pipeline
# of a fresh boot decodes a 1000x562 stream byte-exact (tests/vm/lib/first-client).
# Needs target/release/daedalus and daedalusd (scripts/test-vm builds them first).
exec "$(dirname "$0")/lib/first-client" gst h264
