# daedalus — top-level entry points. `make test` is what CI runs (.ci/run).
#
#   make kernel          build (once, cached outside the repo) the Rust-enabled VM kernel
#   make module          build daedalus.ko against KDIR (default: that kernel)
#   make clients-rootfs  build (once) the Debian 13 chroot with v4l-utils 1.30 + GStreamer 1.26
#   make demo            boot the VM with module + daemon, decode a VP9 stream, check it
#   make test            everything: style, lints, unit tests, module, VM tests
#   make test-vectors    the whole conformance vector sets through the VM (hours; make test
#                        runs feature-covering subsets)
#   make bench           1080p VP9, H.264 and AV1 through the device vs plain FFmpeg, in the VM
#                        (BENCH_CODECS: default "vp9 h264 av1"; BENCH_ARGS go to scripts/bench-vm;
#                        default "--runs 5", e.g. BENCH_ARGS="--threads 1"; BENCH_KERNEL: the
#                        kernel flavour booted, default "bench" = without lock debugging, "test"
#                        = the VM tests' kernel; see docs/bench.md)
#   make clean

SHELL := /bin/bash
KDIR ?= $(shell scripts/build-kernel --print-kdir 2>/dev/null)
CARGO ?= cargo
# Five interleaved rounds, medians reported: one round is at the mercy of the machine's load.
BENCH_ARGS ?= --runs 5
BENCH_CODECS ?= vp9 h264 av1
BENCH_KERNEL ?= bench
# The module for the bench kernel is built from a copy of its sources: building it in the tree
# would replace the daedalus.ko of the test kernel.
BENCH_MODULE_DIR = $(CURDIR)/target/module-$(BENCH_KERNEL)

.PHONY: all deps kernel module clients-rootfs release demo test test-host test-vm test-vectors bench bench-module clean

all: module

deps:
	scripts/install-deps

kernel:
	scripts/build-kernel >/dev/null

# `unsafe` belongs in the module's safe media layer (kmod/media/): the driver files at the top of
# kmod/ may use at most KMOD_UNSAFE_BUDGET occurrences of the word. The budget goes down as the
# layer grows (docs/kmod-safe-layer.md, Progress; target: 15), so that no change adds any back.
KMOD_UNSAFE_BUDGET := 0

# The module is built by Kbuild (top-level Kbuild file), through clippy (CLIPPY=1: the kernel's
# lint set, e.g. undocumented unsafe blocks). The kernel runs with CONFIG_WERROR, so Rust and C
# warnings already fail the build; the grep also catches modpost warnings.
module:
	@test -n "$(KDIR)" -a -d "$(KDIR)" || { echo "KDIR '$(KDIR)' missing: run 'make kernel' or pass KDIR=" >&2; exit 1; }
	@n=$$(grep -ow unsafe $$(ls kmod/*.rs | grep -v '^kmod/bindings') | wc -l); \
	  [ $$n -le $(KMOD_UNSAFE_BUDGET) ] || { echo "kmod: $$n uses of unsafe in the driver files, over the budget of $(KMOD_UNSAFE_BUDGET): move them into kmod/media/ (docs/kmod-safe-layer.md)" >&2; exit 1; }
	set -o pipefail; $(MAKE) -C "$(KDIR)" M="$(CURDIR)" CLIPPY=1 modules 2>&1 | tee .module-build.log
	@! grep -iE "warning:" .module-build.log || { echo "module build printed warnings" >&2; exit 1; }

clients-rootfs:
	scripts/build-clients-rootfs >/dev/null

release:
	$(CARGO) build --release --locked -p daedalus-tools -p daedalus-daemon

demo: kernel module release
	scripts/demo

test-host:
	$(CARGO) fmt --all --check
	rustfmt --edition 2021 --check kmod/daedalus_main.rs
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) test --workspace --locked
	# The daemon decoding every vector in process (ignored above: far too slow unoptimized).
	# h264_heavy_vectors_byte_exact (4K / 1080p, and the two full-range streams whose reference
	# is range-converted, see docs/h264.md) stays opt-in: h264-decode.sh checks those in the VM.
	$(CARGO) test --release --locked -p daedalus-daemon --test av1_vectors --test h264_vectors \
	  -- --include-ignored --skip h264_heavy_vectors_byte_exact
	# Every H.264 mode again with `daedalusd --threads 1` (docs/h264.md: slice-based decoding
	# needs two slice threads, which the decoder keeps).
	H264_THREADS=1 $(CARGO) test --release --locked -p daedalus-daemon --test h264_vectors \
	  h264_vectors_byte_exact -- --include-ignored

test-vm: kernel module clients-rootfs
	scripts/test-vm

test: deps kernel test-host module test-vm

# The whole vector sets through the VM, where `make test` runs feature-covering subsets (each
# test's header says which): every H.264 vector with `daedalus decode` and with GStreamer (whole
# streams), a sample of every AV1 directory with both, every VP9 vector through the VA-API driver. Hours under TCG; run it before closing work
# that changes what a codec's client or the daemon does with streams.
test-vectors: kernel module clients-rootfs
	scripts/test-vm --timeout 21600 --env H264_ALL=1 --env H264_GST_ALL=1 --env AV1_SAMPLE=1 \
	  --env AV1_GST_ALL=1 --env VAAPI_VP9_ALL=1 h264-decode h264-gstreamer av1-decode av1-gstreamer \
	  vaapi-vp9

# The streams are made once (scripts/gen-bench-stream, cached). The host's load average is printed
# around each VM run: the figures depend on what else the machine is doing.
bench-module:
	@set -eo pipefail; kdir=$$(DAEDALUS_KERNEL_FLAVOUR=$(BENCH_KERNEL) scripts/build-kernel | tail -1); \
	mkdir -p "$(BENCH_MODULE_DIR)"; \
	git ls-files -z --cached --others --exclude-standard Kbuild kmod proto/src | \
	  xargs -0 cp -p --parents -t "$(BENCH_MODULE_DIR)"; \
	$(MAKE) -C "$$kdir" M="$(BENCH_MODULE_DIR)" modules 2>&1 | tee "$(BENCH_MODULE_DIR)/build.log"; \
	! grep -iE "warning:" "$(BENCH_MODULE_DIR)/build.log" || { echo "module build printed warnings" >&2; exit 1; }

bench: bench-module release
	@rc=0; for codec in $(BENCH_CODECS); do \
	  stream=$$(scripts/gen-bench-stream --codec $$codec) || exit 1; \
	  echo "== $$codec: host: $$(nproc) CPUs, load average $$(cut -d' ' -f1-3 /proc/loadavg) before the VM"; \
	  echo "== $$codec: $(BENCH_KERNEL) kernel $$(DAEDALUS_KERNEL_FLAVOUR=$(BENCH_KERNEL) scripts/build-kernel --print-kdir)"; \
	  DAEDALUS_KERNEL_FLAVOUR=$(BENCH_KERNEL) DAEDALUS_KO="$(BENCH_MODULE_DIR)/daedalus.ko" \
	    scripts/vm-run --timeout 1800 -- "$(CURDIR)/scripts/bench-vm" $(BENCH_ARGS) "$$stream" || rc=$$?; \
	  echo "== $$codec: host: load average $$(cut -d' ' -f1-3 /proc/loadavg) after the VM"; \
	done; exit $$rc

clean:
	-$(MAKE) -C "$(KDIR)" M="$(CURDIR)" clean
	rm -f .module-build.log
	$(CARGO) clean
