#!/usr/bin/env bash
# Host test of scripts/check-kernel (what DKMS and `make module` run first): fake kernel build
# trees (a .config, include/config/kernel.release, empty rust/ artifacts, stand-in rustc and
# bindgen) that each lack one thing must be refused with the one sentence naming it, on stderr,
# with exit status 1; a complete one must pass. No compiler runs. Prints "N passed, N failed".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
check=$here/../../scripts/check-kernel
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

# Stand-in toolchain: prints what FAKE_RUSTC / FAKE_BINDGEN say.
mkdir -p "$tmp/bin"
printf '#!/bin/sh\necho "${FAKE_RUSTC:-rustc 1.95.0 (59807616e 2026-04-14)}"\n' >"$tmp/bin/rustc"
printf '#!/bin/sh\necho "${FAKE_BINDGEN:-bindgen 0.71.1}"\n' >"$tmp/bin/bindgen"
chmod +x "$tmp/bin/rustc" "$tmp/bin/bindgen"
export RUSTC=$tmp/bin/rustc BINDGEN=$tmp/bin/bindgen

good_config='CONFIG_RUST=y
CONFIG_RUSTC_VERSION_TEXT="rustc 1.95.0 (59807616e 2026-04-14)"
CONFIG_BINDGEN_VERSION_TEXT="bindgen 0.71.1"
CONFIG_VIDEO_DEV=y
CONFIG_MEDIA_CONTROLLER=y
CONFIG_V4L2_MEM2MEM_DEV=m
CONFIG_VIDEOBUF2_DMA_CONTIG=m'

# tree NAME CONFIG [no-rust-artifacts]: a fake build tree, printed.
tree() {
  local d=$tmp/$1
  mkdir -p "$d/include/config" "$d/rust"
  echo "6.12.0-$1" >"$d/include/config/kernel.release"
  printf '%s\n' "$2" >"$d/.config"
  if [[ ${3:-} != no-rust-artifacts ]]; then
    touch "$d/rust/"{libkernel.rmeta,libmacros.so,libcore.rmeta,libffi.rmeta}
  fi
  echo "$d"
}

# expect NAME KDIR STATUS REGEX: runs the check, compares status and stderr.
expect() {
  local name=$1 kdir=$2 want=$3 re=$4 err rc
  err=$("$check" "$kdir" 2>&1 >/dev/null); rc=$?
  local lines
  lines=$(printf '%s' "$err" | grep -c '')
  if [[ $rc == "$want" && $err =~ $re ]] && { ((want == 0)) || ((lines == 1)); }; then
    pass=$((pass + 1)); echo "ok   $name${err:+: $err}"
  else
    fail=$((fail + 1)); echo "FAIL $name: status $rc (want $want), stderr: '$err' (want /$re/, one line)"
  fi
}

expect "complete tree" "$(tree good "$good_config")" 0 '^$'
expect "no build tree" "$tmp/missing" 1 'build tree .*/missing does not exist'
d=$(tree noconfig "$good_config"); rm "$d/.config"
expect "no .config" "$d" 1 'has no \.config'
expect "kernel without Rust" "$(tree norust "${good_config/CONFIG_RUST=y/# CONFIG_RUST is not set}" no-rust-artifacts)" 1 \
  '^daedalus: kernel 6\.12\.0-norust cannot host the module: it was built without Rust support \(CONFIG_RUST is not set'
expect "headers without rust/" "$(tree noartifacts "$good_config" no-rust-artifacts)" 1 'no Rust build artifacts \(.*rust/libkernel\.rmeta is missing'
FAKE_RUSTC="rustc 1.85.0 (4d91de4e4 2025-02-17)" \
  expect "other rustc" "$(tree rustc "$good_config")" 1 'built with rustc 1\.95\.0 .*, and .*rustc is rustc 1\.85\.0'
FAKE_BINDGEN="bindgen 0.69.4" \
  expect "other bindgen" "$(tree bindgen "$good_config")" 1 'built with bindgen 0\.71\.1, and .*bindgen is bindgen 0\.69\.4'
expect "no mem2mem" "$(tree m2m "${good_config/CONFIG_V4L2_MEM2MEM_DEV=m/# CONFIG_V4L2_MEM2MEM_DEV is not set}")" 1 \
  'CONFIG_V4L2_MEM2MEM_DEV is not enabled'
expect "no dma-contig" "$(tree contig "${good_config/CONFIG_VIDEOBUF2_DMA_CONTIG=m/}")" 1 'CONFIG_VIDEOBUF2_DMA_CONTIG is not enabled'
expect "no media controller" "$(tree mc "${good_config/CONFIG_MEDIA_CONTROLLER=y/}")" 1 'CONFIG_MEDIA_CONTROLLER is not enabled'
expect "Request API symbol off" "$(tree req "$good_config
# CONFIG_MEDIA_CONTROLLER_REQUEST_API is not set")" 1 'CONFIG_MEDIA_CONTROLLER_REQUEST_API is not enabled'
expect "Request API symbol on" "$(tree reqon "$good_config
CONFIG_MEDIA_CONTROLLER_REQUEST_API=y")" 0 '^$'

echo "$pass passed, $fail failed"
((fail == 0))
