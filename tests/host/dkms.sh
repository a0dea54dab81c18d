#!/usr/bin/env bash
# `make test-dkms` (part of `make test`: about 15 s): DKMS itself, on the host, in a private
# DKMS tree under target/dkms-test (the system's /var/lib/dkms is not touched), with the source
# tree daedalus-dkms installs (`make dkms-source`):
#   1. `dkms build` against a fake kernel build tree without Rust must fail before any compiler
#      runs, with check-kernel's one sentence on the terminal;
#   2. `dkms build` against KDIR (default: the VM kernel) must build daedalus.ko, whose modinfo
#      documents every parameter; it is left at target/dkms-test/daedalus.ko, which `make test`'s
#      VM install test installs (scripts/test-vm --env DAEDALUS_INSTALL_KO=...).
# Prints "N passed, N failed".
#   tests/host/dkms.sh [KDIR]
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
kdir=${1:-$("$repo/scripts/build-kernel" --print-kdir)}
command -v dkms >/dev/null || { echo "dkms is not installed: run scripts/install-deps" >&2; exit 1; }
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n 1)
t=$repo/target/dkms-test
rm -rf "$t"; mkdir -p "$t/src" "$t/tree" "$t/install"
make -s -C "$repo" dkms-source DKMS_SRC="$t/src/daedalus-$version" >/dev/null || exit 1
dk=(--dkmstree "$t/tree" --sourcetree "$t/src" --installtree "$t/install")
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
ko() { fail=$((fail + 1)); echo "FAIL $*"; }

dkms add -m daedalus -v "$version" "${dk[@]}" >"$t/add.log" 2>&1 || { cat "$t/add.log"; ko "dkms add"; }

# 1. A kernel without Rust.
fake=$t/kernel-norust
mkdir -p "$fake/include/config"
echo "6.1.0-norust" >"$fake/include/config/kernel.release"
printf '%s\n' '# CONFIG_RUST is not set' CONFIG_VIDEO_DEV=y CONFIG_MEDIA_CONTROLLER=y \
  CONFIG_V4L2_MEM2MEM_DEV=m CONFIG_VIDEOBUF2_DMA_CONTIG=m >"$fake/.config"
printf 'all:\n\t@echo "the kernel Makefile ran: the check did not stop the build"; exit 2\n' >"$fake/Makefile"
start=$(date +%s)
dkms build -m daedalus -v "$version" -k 6.1.0-norust --kernelsourcedir "$fake" "${dk[@]}" \
  >"$t/norust.out" 2>"$t/norust.err"
rc=$?
sentence="daedalus: kernel 6.1.0-norust cannot host the module: it was built without Rust support"
if ((rc != 0)) && grep -q "^$sentence" "$t/norust.err" && ! grep -rq "the kernel Makefile ran" "$t/tree"; then
  ok "kernel without Rust refused in $(($(date +%s) - start)) s: $(grep "^$sentence" "$t/norust.err")"
else
  ko "kernel without Rust: dkms exit $rc; stdout: $(cat "$t/norust.out"); stderr: $(cat "$t/norust.err")"
fi

# 2. The real kernel.
if [[ ! -f $kdir/.config ]]; then
  ko "no kernel tree at $kdir (make kernel)"
else
  release=$(<"$kdir/include/config/kernel.release")
  start=$(date +%s)
  if dkms build -m daedalus -v "$version" -k "$release" --kernelsourcedir "$kdir" "${dk[@]}" >"$t/build.out" 2>&1; then
    built=$(find "$t/tree/daedalus/$version/$release" -name 'daedalus.ko*' | head -n 1)
    if [[ -n $built ]]; then
      cp "$built" "$t/daedalus.ko"
      ok "dkms build against $release in $(($(date +%s) - start)) s: $t/daedalus.ko"
      params=$(modinfo -F parm "$t/daedalus.ko")
      if [[ -n $params ]] && ! grep -qv ':.\{10,\}' <<<"$params"; then
        ok "modinfo documents every parameter: $(tr '\n' ' ' <<<"$params")"
      else
        ko "modinfo parameters: '$params'"
      fi
    else
      ko "dkms build succeeded but left no daedalus.ko"
    fi
  else
    ko "dkms build against $release: $(tail -n 20 "$t/build.out"; find "$t/tree" -name make.log -exec tail -n 30 {} \;)"
  fi
fi
echo "$pass passed, $fail failed"
((fail == 0))
