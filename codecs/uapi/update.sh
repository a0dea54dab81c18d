#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Refreshes the vendored Linux UAPI headers in codecs/uapi/linux/ from a kernel source tree
# (default: the tree of the VM kernel, `scripts/build-kernel --print-kdir`).
#
# The headers are exported the way `make headers_install` does it (the kernel's own
# scripts/headers_install.sh: strips __user, compiler.h, #ifdef __KERNEL__ ...), so they are
# byte-identical to what a distribution's linux-libc-dev of that version ships. Only headers
# that the V4L2/media bindings include and that differ from an older host's /usr/include are
# vendored; everything else (asm/, asm-generic/, linux/ioctl.h ...) comes from the host.
#
# Usage: codecs/uapi/update.sh [KDIR]
set -eu

here=$(cd "$(dirname "$0")" && pwd)
kdir=${1:-$("$here/../../scripts/build-kernel" --print-kdir)}
headers="videodev2.h v4l2-controls.h v4l2-common.h media.h types.h const.h stddef.h"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/scripts"
# headers_install.sh runs scripts/unifdef relative to the current directory: build it in a
# scratch copy rather than in the (possibly read-only, possibly busy) kernel tree.
cc -O2 -o "$work/scripts/unifdef" "$kdir/scripts/unifdef.c"
cp "$kdir/scripts/headers_install.sh" "$work/scripts/"
for h in $headers; do
	(cd "$work" && sh scripts/headers_install.sh "$kdir/include/uapi/linux/$h" "$work/$h")
	cp "$work/$h" "$here/linux/$h"
done
printf '%s\n' "$(sed -n 's/^VERSION = //p' "$kdir/Makefile").$(sed -n 's/^PATCHLEVEL = //p' "$kdir/Makefile").$(sed -n 's/^SUBLEVEL = //p' "$kdir/Makefile")" >"$here/VERSION"
echo "updated $headers from $kdir"
