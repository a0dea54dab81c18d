# daedalus — top-level entry points. `make test` is what CI runs (.ci/run).
#
#   make kernel          build (once, cached outside the repo) the Rust-enabled VM kernel
#
#   The long builds (kernel, module, release, demo) print a few progress lines (step, elapsed
#   time, where the full log is) and the log's tail on failure (scripts/quiet); V=1 shows
#   everything, e.g. `make kernel V=1`.
#
#   make module          build daedalus.ko against KDIR (default: that kernel)
#   make clients-rootfs  build (once) the Debian 13 chroot with v4l-utils 1.30 + GStreamer 1.26
#   make demo            boot the VM with module + daemon, decode a VP9 stream, check it
#   make test            everything: style, lints, unit tests, module, VM tests (with LINUX=7.3:
#                        the VM suite's core against that lane's kernel, LANE_TESTS)
#   make test-vectors    the whole conformance vector sets through the VM (hours; make test
#                        runs feature-covering subsets)
#   make test-debug      the VM tests on the memory-debug kernel (KASAN, KFENCE, kmemleak, UBSAN,
#                        debugobjects, lockdep; clang-built; DEBUG_TESTS narrows them)
#   make bench           1080p VP9, H.264 and AV1 through the device vs plain FFmpeg, and through
#                        the VA-API driver (ffmpeg -hwaccel vaapi) vs the device, in the VM
#                        (BENCH_CODECS: default "vp9 h264 av1", each CODEC[:10bit][:4k][:1slice]
#                        as scripts/gen-bench-stream --variant takes it, BENCH_CODECS=all for the
#                        full set (8/10-bit each, 4K VP9 / AV1, one-slice H.264); BENCH_ARGS go to
#                        scripts/bench-vm, default "--runs 5 --streams 2", e.g.
#                        BENCH_ARGS="--threads 1"; BENCH_KERNEL: the
#                        kernel flavour booted, default "bench" = without lock debugging, "test"
#                        = the VM tests' kernel; see docs/bench.md)
#   make soak            the soak (docs/stress.md): SOAK_FRAMES (default 10000) 1080p pictures of
#                        VP9, H.264 and AV1, 8- and 10-bit (SOAK_CODECS, made by
#                        scripts/gen-bench-stream), SOAK_CLIENTS (3) contexts at once, each checked
#                        against FFmpeg's framemd5; the daemon's memory / files and the module's
#                        counters checked after every round, the module unloaded (kmemleak when the
#                        kernel has it). 30-50 min under TCG for 10000; logs in SOAK_LOGS
#   make mutate          MUTATE_STREAMS (default 1000) mutated streams per codec through the device
#                        (docs/stress.md): no hang / oops / leak, daemon restarts counted; failing
#                        streams saved in MUTATE_LOGS/saved. ~5 min under TCG
#                        Both boot VM_KERNEL, the kernel flavour (default test; another flavour,
#                        e.g. a memory-debug one, gets its module built as make bench's)
#   make install         install module, daemon, CLI, VA-API driver, unit, udev rule... (docs/install.md;
#                        DESTDIR, PREFIX=/usr/local; install-module / install-user for one half)
#   make uninstall       remove what `make install` installed (same DESTDIR / PREFIX)
#   make deb             Debian packages into target/deb/ (DEB_ARCH=arm64 cross-builds; docs/install.md)
#   make fuzz            the fuzz targets (fuzz/, docs/fuzzing.md), FUZZ_SECONDS (default 60) each;
#                        FUZZ_TARGETS narrows them. make test runs each for FUZZ_SMOKE_SECONDS (5)
#   make test-dkms       DKMS builds the module from the package's source tree against KDIR (a
#                        private DKMS tree) and refuses a kernel without Rust (part of make test,
#                        whose VM install test then installs that module)
#   make clean
#
#   Lanes (scripts/lane, issue 12): LINUX=6.12 (default) or LINUX=7.3 picks the kernel that
#   kernel, module, test-vm and test build and boot, e.g. `make kernel module LINUX=7.3`; each
#   lane has its own cached tree, and a non-default lane's module is built in
#   target/module-linux-$(LINUX)/ (the default lane's stays ./daedalus.ko). ARCH=arm64 cross-builds
#   the kernel (16 KiB pages), the module (target/module-arm64-linux-6.12/), an arm64 Debian 13
#   root with the clients, and the programs (scripts/lane-cargo) for a qemu-system-aarch64 VM:
#   `make kernel module clients-rootfs test ARCH=arm64`.

SHELL := /bin/bash
# The lane: LINUX and ARCH reach the scripts through the environment (make exports command-line
# variables). LANE_ERROR is the lane's error for an unknown LINUX / ARCH (empty when it is fine);
# the targets that use the lane stop on it.
# $(shell) does not see make's exported variables (make 4.3): LANE_ENV passes them.
LINUX ?= 6.12
LANE_ENV := LINUX='$(LINUX)' ARCH='$(ARCH)'
LANE_ERROR := $(shell $(LANE_ENV) bash -c 'source scripts/lane && lane_load' 2>&1)
LANE_MODULE_DIR := $(shell $(LANE_ENV) bash -c 'source scripts/lane && lane_load && echo "$$lane_module_dir"' 2>/dev/null)
LANE_LIBCLANG := $(shell $(LANE_ENV) bash -c 'source scripts/lane && lane_load && echo "$$lane_libclang"' 2>/dev/null)
LANE_MAKE := $(shell $(LANE_ENV) bash -c 'source scripts/lane && lane_load && echo "$$lane_make"' 2>/dev/null)
LANE_CROSS_COMPILE := $(shell $(LANE_ENV) bash -c 'source scripts/lane && lane_load && echo "$${CROSS_COMPILE:-}"' 2>/dev/null)
MODULE_DIR := $(if $(LANE_MODULE_DIR),$(CURDIR)/$(LANE_MODULE_DIR),$(CURDIR))
# A lane whose bindgen needs another libclang (7.3: 19) gets it in every recipe (module, DKMS).
ifneq ($(LANE_LIBCLANG),)
export LIBCLANG_PATH := $(LANE_LIBCLANG)
endif
# A cross lane (ARCH=arm64) builds the kernel tree's module with the lane's cross compiler (ARCH
# itself reaches the kernel's make from the command line).
ifneq ($(LANE_CROSS_COMPILE),)
export CROSS_COMPILE := $(LANE_CROSS_COMPILE)
endif
KDIR ?= $(if $(LANE_ERROR),,$(shell $(LANE_ENV) scripts/build-kernel --print-kdir 2>/dev/null))
CARGO ?= cargo
# Five interleaved rounds, medians reported: one round is at the mercy of the machine's load.
BENCH_ARGS ?= --runs 5 --streams 2
BENCH_CODECS ?= vp9 h264 av1
BENCH_ALL := vp9 vp9:10bit vp9:4k h264 h264:1slice h264:10bit av1 av1:10bit av1:4k
# 4K streams: 40 frames (8 untimed), a 1080p stream's decoding time.
BENCH_4K_FRAMES := 40
BENCH_4K_ARGS := --warmup 8
BENCH_KERNEL ?= bench
BENCH_MODULE_DIR = $(CURDIR)/target/module-$(BENCH_KERNEL)
# make test-debug: the VM tests (default: all of them) on the memory-debug kernel flavour, each
# test's time limit times DEBUG_TIMEOUT_SCALE (KASAN under TCG), logs in DEBUG_LOGS.
DEBUG_TESTS ?=
DEBUG_TIMEOUT_SCALE ?= 3
DEBUG_LOGS ?= $(CURDIR)/target/test-debug-logs
DEBUG_MODULE_DIR = $(CURDIR)/target/module-debug

# A kernel flavour's module (bench, debug: scripts/build-kernel), built from a copy of its sources
# in $(2): building it in the tree would replace the test kernel's daedalus.ko. The debug
# flavour's tree is clang-built, so its modules are too (LLVM=-19, bindgen on libclang 19).
define flavour_module
	@set -eo pipefail; kdir=$$(DAEDALUS_KERNEL_FLAVOUR=$(1) scripts/build-kernel | tail -1); \
	mkdir -p "$(2)"; \
	git ls-files -z --cached --others --exclude-standard Kbuild kmod proto/src | \
	  xargs -0 cp -p --parents -t "$(2)"; \
	$(if $(filter debug,$(1)),LLVM=-19 LIBCLANG_PATH=/usr/lib/llvm-19/lib) \
	  $(MAKE) -C "$$kdir" M="$(2)" modules 2>&1 | tee "$(2)/build.log"; \
	! grep -iE "warning:" "$(2)/build.log" || { echo "module build printed warnings" >&2; exit 1; }
endef

.PHONY: lane all deps kernel module clients-rootfs release demo test test-host test-vm test-vectors fluster bench bench-module soak mutate flavour-module clean \
	test-debug debug-module \
	install install-module install-user uninstall uninstall-module uninstall-user generated-docs deb \
	generated-docs-only install-files \
	test-dkms dkms-source fuzz fuzz-smoke

all: module

lane:
	@$(if $(LANE_ERROR),echo '$(LANE_ERROR)' >&2; exit 2,:)

deps: lane
	scripts/install-deps

kernel: lane
	scripts/build-kernel >/dev/null

# `unsafe` belongs in the module's safe media layer (kmod/media/): the driver files at the top of
# kmod/ may use at most KMOD_UNSAFE_BUDGET occurrences of the word. The budget goes down as the
# layer grows (docs/kmod-safe-layer.md, Progress; target: 15), so that no change adds any back.
KMOD_UNSAFE_BUDGET := 0

# The module is built by Kbuild (top-level Kbuild file), through clippy (CLIPPY=1: the kernel's
# lint set, e.g. undocumented unsafe blocks). The kernel runs with CONFIG_WERROR, so Rust and C
# warnings already fail the build; the grep also catches modpost warnings.
# A non-default lane builds from a copy of the module's sources in $(MODULE_DIR).
module: lane
	@test -n "$(KDIR)" -a -d "$(KDIR)" || { echo "KDIR '$(KDIR)' missing: run 'make kernel$(LANE_MAKE)' or pass KDIR=" >&2; exit 1; }
	@scripts/check-kernel "$(KDIR)"
	@n=$$(grep -ow unsafe $$(ls kmod/*.rs | grep -v '^kmod/bindings') | wc -l); \
	  [ $$n -le $(KMOD_UNSAFE_BUDGET) ] || { echo "kmod: $$n uses of unsafe in the driver files, over the budget of $(KMOD_UNSAFE_BUDGET): move them into kmod/media/ (docs/kmod-safe-layer.md)" >&2; exit 1; }
ifneq ($(LANE_MODULE_DIR),)
	@mkdir -p "$(MODULE_DIR)"
	@git ls-files -z --cached --others --exclude-standard Kbuild kmod proto/src | \
	  xargs -0 cp -p --parents -t "$(MODULE_DIR)"
endif
	@: > "$(MODULE_DIR)/.module-build.log"
	@scripts/quiet --tag module --log "$(MODULE_DIR)/.module-build.log" \
	  "building $(if $(LANE_MODULE_DIR),$(LANE_MODULE_DIR)/)daedalus.ko against $(KDIR)" -- \
	  $(MAKE) -C "$(KDIR)" M="$(MODULE_DIR)" CLIPPY=1 modules
	@! grep -iE "warning:" "$(MODULE_DIR)/.module-build.log" || { echo "module build printed warnings" >&2; exit 1; }

clients-rootfs: lane
	scripts/build-clients-rootfs >/dev/null

release:
	@scripts/quiet --tag release --log target/release-build.log "cargo build --release" -- \
	  $(CARGO) build --release --locked -p daedalus-tools -p daedalus-daemon -p daedalus-vaapi

demo: kernel module release
	scripts/demo

test-host:
	$(CARGO) fmt --all --check
	rustfmt --edition 2021 --check kmod/daedalus_main.rs
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) test --workspace --locked
	tests/host/check-kernel.sh
	tests/host/packaging.sh
	# The daemon decoding every vector in process (ignored above: far too slow unoptimized).
	# h264_heavy_vectors_byte_exact (4K / 1080p, and the two full-range streams whose reference
	# is range-converted, see docs/h264.md) stays opt-in: h264-decode.sh checks those in the VM.
	$(CARGO) test --release --locked -p daedalus-daemon --test av1_vectors --test h264_vectors \
	  -- --include-ignored --skip h264_heavy_vectors_byte_exact
	# Every H.264 mode again with `daedalusd --threads 1` (docs/h264.md: slice-based decoding
	# needs two slice threads, which the decoder keeps).
	H264_THREADS=1 $(CARGO) test --release --locked -p daedalus-daemon --test h264_vectors \
	  h264_vectors_byte_exact -- --include-ignored

test-vm: lane kernel module clients-rootfs
	scripts/test-vm

FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 5
fuzz:
	scripts/fuzz --seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Every fuzz target from its seeds for a few seconds: the properties on known input (docs/fuzzing.md).
fuzz-smoke:
	scripts/fuzz --seconds $(FUZZ_SMOKE_SECONDS)

# The VM's install test installs the module DKMS built (test-dkms) rather than the harness's.
# Another lane (`make test LINUX=7.3`, issue 12) runs the VM suite's core against its kernel:
# LANE_TESTS (the host tests do not depend on the kernel; the default lane runs them).
LANE_TESTS ?= load-unload compliance topology requests daemon-protocol vp9-decode h264-decode \
	av1-decode vp9-gstreamer h264-gstreamer av1-gstreamer
ifeq ($(LANE_MODULE_DIR),)
test: deps kernel test-host fuzz-smoke module clients-rootfs test-dkms
	scripts/test-vm --env DAEDALUS_INSTALL_KO=$(CURDIR)/target/dkms-test/daedalus.ko
else
test: lane deps kernel module clients-rootfs
	scripts/test-vm $(LANE_TESTS)
endif

# The whole vector sets through the VM, where `make test` runs feature-covering subsets (each
# test's header says which): every H.264 vector with `daedalus decode` and with GStreamer (whole
# streams), a sample of every AV1 directory with both, every VP9, H.264 and AV1 vector through the
# VA-API driver. Hours under TCG; run it before closing work that changes what a codec's client,
# the VA-API driver or the daemon does with streams.
test-vectors: kernel module clients-rootfs
	scripts/test-vm --timeout 21600 --env H264_ALL=1 --env H264_GST_ALL=1 --env AV1_SAMPLE=1 \
	  --env AV1_GST_ALL=1 --env VAAPI_VP9_ALL=1 --env VAAPI_H264_ALL=1 --env VAAPI_AV1_ALL=1 \
	  --env VAAPI_PARTS=vp9,h264,av1 h264-decode h264-gstreamer av1-decode av1-gstreamer vaapi

# fluster's whole suites (built from the vector store: tests/fluster/suites.py) against the
# GStreamer V4L2SL, FFmpeg VAAPI and GStreamer VA decoders, in one VM (hours under TCG). The scores
# per decoder and suite, and every failure, are in FLUSTER_LOGS/vaapi.log (default
# target/fluster-logs); docs/conformance.md has them. FLUSTER_SUITES="..." narrows the run.
FLUSTER_LOGS ?= $(CURDIR)/target/fluster-logs
fluster: kernel module clients-rootfs
	scripts/test-vm --logs $(FLUSTER_LOGS) --timeout 21600 --env VAAPI_PARTS=fluster --env FLUSTER_ALL=1 \
	  $(if $(FLUSTER_SUITES),--env "FLUSTER_SUITES=$(FLUSTER_SUITES)") vaapi

# The streams are made once (scripts/gen-bench-stream, cached). The host's load average is printed
# around each VM run: the figures depend on what else the machine is doing.
bench-module:
	$(call flavour_module,$(BENCH_KERNEL),$(BENCH_MODULE_DIR))

bench: bench-module release clients-rootfs
	@rc=0; for codec in $(if $(filter all,$(BENCH_CODECS)),$(BENCH_ALL),$(BENCH_CODECS)); do \
	  frames=""; extra=""; \
	  case $$codec in *:4k*) frames="--frames $(BENCH_4K_FRAMES)"; extra="$(BENCH_4K_ARGS)";; esac; \
	  stream=$$(scripts/gen-bench-stream --variant $$codec $$frames) || exit 1; \
	  target/release/daedalus stress --prepare --cache "$(STRESS_REFS)" "$$stream" >/dev/null || exit 1; \
	  echo "== $$codec: host: $$(nproc) CPUs, load average $$(cut -d' ' -f1-3 /proc/loadavg) before the VM"; \
	  echo "== $$codec: $(BENCH_KERNEL) kernel $$(DAEDALUS_KERNEL_FLAVOUR=$(BENCH_KERNEL) scripts/build-kernel --print-kdir)"; \
	  DAEDALUS_KERNEL_FLAVOUR=$(BENCH_KERNEL) DAEDALUS_KO="$(BENCH_MODULE_DIR)/daedalus.ko" \
	    scripts/vm-run --clients --outside-chroot --timeout 2400 -- "$(CURDIR)/scripts/bench-vm" $(BENCH_ARGS) $$extra --cache "$(STRESS_REFS)" "$$stream" || rc=$$?; \
	  echo "== $$codec: host: load average $$(cut -d' ' -f1-3 /proc/loadavg) after the VM"; \
	done; exit $$rc

# The memory-debug flavour (issue 14; docs/stress.md, "Memory-debug kernel"): KASAN, KFENCE,
# kmemleak (a scan after each test, module unloaded: scripts/vm-run), UBSAN, debugobjects and the
# test flavour's lockdep; any report fails the test (tests/vm/lib/check-dmesg). The kernel is
# built once with clang 19 (49 minutes on 2 cores shared with a VM run).
debug-module:
	$(call flavour_module,debug,$(DEBUG_MODULE_DIR))

test-debug: debug-module clients-rootfs
	DAEDALUS_KERNEL_FLAVOUR=debug DAEDALUS_KO="$(DEBUG_MODULE_DIR)/daedalus.ko" \
	  scripts/test-vm --logs "$(DEBUG_LOGS)" --timeout-scale $(DEBUG_TIMEOUT_SCALE) $(DEBUG_TESTS)

# The soak and the mutated streams (issue 14; docs/stress.md), each one VM test of its own
# (tests/vm/soak.sh, tests/vm/mutate.sh: opt-in, not in make test). They boot VM_KERNEL, a kernel
# flavour of scripts/build-kernel; another flavour than the tests' gets its module built from a
# copy of the sources, as make bench's (flavour_module). With kmemleak in the kernel the tests
# check its report themselves, for the module's allocations (tests/vm/lib/kmemleak says why only
# those), as scripts/vm-run does after every other test.
VM_KERNEL ?= test
ifeq ($(VM_KERNEL),test)
FLAVOUR_MODULE := module
FLAVOUR_ENV :=
else
FLAVOUR_MODULE := flavour-module
FLAVOUR_ENV := DAEDALUS_KERNEL_FLAVOUR=$(VM_KERNEL) DAEDALUS_KO=$(CURDIR)/target/module-$(VM_KERNEL)/daedalus.ko
endif
flavour-module:
	$(call flavour_module,$(VM_KERNEL),$(CURDIR)/target/module-$(VM_KERNEL))

SOAK_FRAMES ?= 10000
SOAK_CLIENTS ?= 3
SOAK_SEED ?= 14
SOAK_CODECS ?= vp9 vp9:10bit h264 h264:10bit av1 av1:10bit
SOAK_LOGS ?= $(CURDIR)/target/soak-logs
SOAK_TIMEOUT ?= 10800
# More test-vm options, e.g. SOAK_ARGS="--env SOAK_WARMUP_ROUNDS=1" for a short run.
SOAK_ARGS ?=
# The references of the soak's streams, made on the host (the guest's file system is read-only).
STRESS_REFS = $(or $(DAEDALUS_CACHE),$(HOME)/.cache/daedalus)/stress
soak: kernel $(FLAVOUR_MODULE) release
	@set -eo pipefail; \
	streams=$$(for v in $(SOAK_CODECS); do scripts/gen-bench-stream --variant $$v; done); \
	target/release/daedalus stress --prepare --cache "$(STRESS_REFS)" $$streams; \
	$(FLAVOUR_ENV) scripts/test-vm --logs "$(SOAK_LOGS)" \
	  --timeout $(SOAK_TIMEOUT) --env SOAK_FRAMES=$(SOAK_FRAMES) --env SOAK_CLIENTS=$(SOAK_CLIENTS) \
	  --env SOAK_SEED=$(SOAK_SEED) --env "SOAK_STREAMS=$$(echo $$streams)" \
	  --env "SOAK_CACHE=$(STRESS_REFS)" $(SOAK_ARGS) soak

MUTATE_STREAMS ?= 1000
MUTATE_CLIENTS ?= 3
MUTATE_SEED ?= 14
MUTATE_LOGS ?= $(CURDIR)/target/mutate-logs
MUTATE_TIMEOUT ?= 1800
mutate: kernel $(FLAVOUR_MODULE)
	@rc=0; $(FLAVOUR_ENV) scripts/test-vm --logs "$(MUTATE_LOGS)" \
	  --timeout $(MUTATE_TIMEOUT) --env MUTATE_STREAMS=$(MUTATE_STREAMS) \
	  --env MUTATE_CLIENTS=$(MUTATE_CLIENTS) --env MUTATE_SEED=$(MUTATE_SEED) mutate || rc=$$?; \
	if grep -q '^SAVED-STREAMS begin' "$(MUTATE_LOGS)/mutate.log" 2>/dev/null; then \
	  mkdir -p "$(MUTATE_LOGS)/saved"; \
	  sed -n '/^SAVED-STREAMS begin/,/^SAVED-STREAMS end/{/^SAVED-STREAMS/d;p}' "$(MUTATE_LOGS)/mutate.log" | \
	    base64 -d | tar -xz -C "$(MUTATE_LOGS)/saved" && echo "saved streams: $(MUTATE_LOGS)/saved"; \
	fi; exit $$rc

clean:
	-$(MAKE) -C "$(KDIR)" M="$(MODULE_DIR)" clean
	rm -f .module-build.log
	$(CARGO) clean

# ---------------------------------------------------------------------------------------------
# Installing (docs/install.md). DESTDIR stages into a root; PREFIX is where the programs go. The
# systemd, udev, modules-load.d and sysusers.d files go under $(PREFIX)/lib, which systemd and
# udev search for both /usr and /usr/local; the VA-API driver goes where libva looks for drivers
# on the target (its multiarch dri directory), and the module under /lib/modules/RELEASE/updates.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share
LIBDIR ?= $(PREFIX)/lib
MULTIARCH ?= $(shell dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || $(CC) -print-multiarch)
VA_DRIVERS_DIR ?= $(PREFIX)/lib/$(MULTIARCH)/dri
UNITDIR ?= $(LIBDIR)/systemd/system
UDEVRULESDIR ?= $(LIBDIR)/udev/rules.d
MODULESLOADDIR ?= $(LIBDIR)/modules-load.d
SYSUSERSDIR ?= $(LIBDIR)/sysusers.d
KRELEASE ?= $(shell cat "$(KDIR)/include/config/kernel.release" 2>/dev/null)
MODULEDIR ?= /lib/modules/$(KRELEASE)/updates
# Where the release binaries are (a cross build: target/<triple>/release).
RELEASE_DIR ?= target/release
GENERATED_DOCS = target/generated-docs
INSTALL ?= install

# Man pages and shell completions, generated by the binaries themselves from their clap command
# lines (hidden `daedalus generate-docs` / `daedalusd --generate-docs`): always those of the
# native build, as the pages do not depend on the target architecture.
generated-docs: release generated-docs-only

generated-docs-only:
	rm -rf $(GENERATED_DOCS)
	target/release/daedalus generate-docs $(GENERATED_DOCS)
	target/release/daedalusd --generate-docs $(GENERATED_DOCS)

install: install-module install-user

install-module: module
	@test -n "$(KRELEASE)" || { echo "cannot read the kernel release from $(KDIR)/include/config/kernel.release" >&2; exit 1; }
	$(INSTALL) -D -m 0644 daedalus.ko "$(DESTDIR)$(MODULEDIR)/daedalus.ko"
	@if [ -n "$(DESTDIR)" ]; then \
	  echo "note: DESTDIR is set: depmod skipped (run 'depmod -a $(KRELEASE)' on the target)"; \
	else \
	  echo "depmod -a $(KRELEASE)"; depmod -a "$(KRELEASE)"; \
	fi

install-user: generated-docs
	$(MAKE) install-files

# install-user without building (what debian/rules uses after its own, possibly cross, build).
install-files:
	$(INSTALL) -D -m 0755 $(RELEASE_DIR)/daedalusd "$(DESTDIR)$(BINDIR)/daedalusd"
	$(INSTALL) -D -m 0755 $(RELEASE_DIR)/daedalus "$(DESTDIR)$(BINDIR)/daedalus"
	$(INSTALL) -D -m 0644 $(RELEASE_DIR)/libdaedalus_drv_video.so "$(DESTDIR)$(VA_DRIVERS_DIR)/daedalus_drv_video.so"
	$(INSTALL) -d "$(DESTDIR)$(UNITDIR)"
	sed 's|/usr/bin/daedalusd|$(BINDIR)/daedalusd|' data/daedalusd.service >"$(DESTDIR)$(UNITDIR)/daedalusd.service"
	$(INSTALL) -D -m 0644 data/60-daedalus.rules "$(DESTDIR)$(UDEVRULESDIR)/60-daedalus.rules"
	$(INSTALL) -D -m 0644 data/daedalus-modules-load.conf "$(DESTDIR)$(MODULESLOADDIR)/daedalus.conf"
	$(INSTALL) -D -m 0644 data/daedalus-sysusers.conf "$(DESTDIR)$(SYSUSERSDIR)/daedalus.conf"
	$(INSTALL) -d "$(DESTDIR)$(MANDIR)/man1" "$(DESTDIR)$(MANDIR)/man8"
	$(INSTALL) -m 0644 $(GENERATED_DOCS)/man/*.1 "$(DESTDIR)$(MANDIR)/man1/"
	$(INSTALL) -m 0644 $(GENERATED_DOCS)/man/daedalusd.8 "$(DESTDIR)$(MANDIR)/man8/"
	$(INSTALL) -D -m 0644 -t "$(DESTDIR)$(DATADIR)/bash-completion/completions" $(GENERATED_DOCS)/completions/bash/*
	$(INSTALL) -D -m 0644 -t "$(DESTDIR)$(DATADIR)/zsh/vendor-completions" $(GENERATED_DOCS)/completions/zsh/*
	$(INSTALL) -D -m 0644 -t "$(DESTDIR)$(DATADIR)/fish/vendor_completions.d" $(GENERATED_DOCS)/completions/fish/*
	@if [ -z "$(DESTDIR)" ]; then \
	  if command -v systemd-sysusers >/dev/null; then systemd-sysusers "$(SYSUSERSDIR)/daedalus.conf"; \
	  else getent group daedalus >/dev/null || groupadd --system daedalus; \
	    getent passwd daedalus >/dev/null || useradd --system --gid daedalus --home-dir / --shell /usr/sbin/nologin --comment "daedalus decode daemon" daedalus; fi; \
	  if command -v udevadm >/dev/null && [ -d /run/udev ]; then udevadm control --reload && udevadm trigger --subsystem-match=misc --sysname-match=daedalus || true; fi; \
	  if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi; \
	  echo "installed: 'systemctl enable --now daedalusd' starts the daemon (docs/install.md)"; \
	else \
	  echo "note: DESTDIR is set: the daedalus user, udev reload and systemd reload are left to the target (docs/install.md)"; \
	fi

# The module's DKMS source tree (what daedalus-dkms installs as /usr/src/daedalus-VERSION): the
# Kbuild sources, dkms.conf with its version, and scripts/check-kernel as dkms-check.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
DKMS_SRC ?= target/dkms/daedalus-$(VERSION)
KMOD_SOURCES = Kbuild $(wildcard kmod/*.rs kmod/media/*.rs kmod/media/v4l2/*.rs kmod/media/*.c \
	kmod/media/*.h kmod/media/*.mk) kmod/bindgen_parameters kmod/bindings_helper.h \
	proto/src/formats.rs proto/src/wire.rs

dkms-source:
	rm -rf "$(DKMS_SRC)"
	$(INSTALL) -d "$(DKMS_SRC)"
	cp --parents -t "$(DKMS_SRC)" $(filter-out kmod/bindings_generated.rs,$(KMOD_SOURCES))
	$(INSTALL) -m 0755 scripts/check-kernel "$(DKMS_SRC)/dkms-check"
	sed 's/#MODULE_VERSION#/$(VERSION)/' data/dkms.conf >"$(DKMS_SRC)/dkms.conf"

# DKMS itself, on the host, in a private DKMS tree under target/ (the system's /var/lib/dkms is
# not touched): `dkms build` of the source tree against KDIR must give a module identical in
# function to `make module` (`make test` has the VM install test install and modprobe that one),
# and
# against a kernel tree without Rust it must stop with check-kernel's sentence.
test-dkms:
	tests/host/dkms.sh "$(KDIR)"

# Debian packages (debian/, docs/install.md) into target/deb, checked with lintian (no errors).
# DEB_ARCH=arm64 cross-builds (dpkg-buildpackage -a arm64) for Debian 13 / Raspberry Pi OS: the
# programs as the arm64 lane builds them (scripts/lane-cargo, against its Debian 13 root, which
# is built first when missing), the shlibs dependencies from that root's packages
# (scripts/lane-shlibdeps), versions 0.1.0~deb13; ARCH=arm64 scripts/install-deps installs the
# cross tools. nocheck: debian/rules runs no tests (dh warns about tests in cross builds).
DEB_ARCH ?=
DEB_DIR = target/deb
DEB_HOST = $(or $(DEB_ARCH),$(shell dpkg --print-architecture))
deb:
	mkdir -p $(DEB_DIR)
	rm -f $(DEB_DIR)/*_$(DEB_HOST).deb $(DEB_DIR)/*_all.deb $(DEB_DIR)/*_$(DEB_HOST).{buildinfo,changes}
	$(if $(DEB_ARCH),DEB_BUILD_OPTIONS="nocheck $(DEB_BUILD_OPTIONS)") \
	  dpkg-buildpackage -b -uc -us $(if $(DEB_ARCH),-a $(DEB_ARCH)) \
	  --buildinfo-option=-u$(DEB_DIR) --buildinfo-file=$(DEB_DIR)/daedalus_$(VERSION)_$(DEB_HOST).buildinfo \
	  --changes-option=-u$(DEB_DIR) --changes-file=$(DEB_DIR)/daedalus_$(VERSION)_$(DEB_HOST).changes
	ls -l $(DEB_DIR)/*.deb
	lintian --fail-on error --suppress-tags-from-file debian/lintian-suppressed $(DEB_DIR)/daedalus_$(VERSION)_$(DEB_HOST).changes

uninstall: uninstall-user uninstall-module

uninstall-module:
	rm -f "$(DESTDIR)$(MODULEDIR)/daedalus.ko"
	@if [ -n "$(DESTDIR)" ]; then echo "note: DESTDIR is set: depmod skipped"; \
	elif [ -n "$(KRELEASE)" ] && [ -d "/lib/modules/$(KRELEASE)" ]; then depmod -a "$(KRELEASE)"; fi

uninstall-user:
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl disable --now daedalusd.service 2>/dev/null || true; fi
	rm -f "$(DESTDIR)$(BINDIR)/daedalusd" "$(DESTDIR)$(BINDIR)/daedalus" \
	  "$(DESTDIR)$(VA_DRIVERS_DIR)/daedalus_drv_video.so" \
	  "$(DESTDIR)$(UNITDIR)/daedalusd.service" "$(DESTDIR)$(UDEVRULESDIR)/60-daedalus.rules" \
	  "$(DESTDIR)$(MODULESLOADDIR)/daedalus.conf" "$(DESTDIR)$(SYSUSERSDIR)/daedalus.conf" \
	  "$(DESTDIR)$(MANDIR)"/man1/daedalus.1 "$(DESTDIR)$(MANDIR)"/man1/daedalus-*.1 \
	  "$(DESTDIR)$(MANDIR)/man8/daedalusd.8" \
	  "$(DESTDIR)$(DATADIR)"/bash-completion/completions/daedalus{,d} \
	  "$(DESTDIR)$(DATADIR)"/zsh/vendor-completions/_daedalus{,d} \
	  "$(DESTDIR)$(DATADIR)"/fish/vendor_completions.d/daedalus{,d}.fish
	@echo "note: the daedalus system user is kept (remove it with 'userdel daedalus' if you want)"
