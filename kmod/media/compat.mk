# SPDX-License-Identifier: GPL-2.0
# Feature probes of KDIR's sources for the API differences between the kernels daedalus.ko builds
# against (docs/kmod-safe-layer.md §3.16). Included by the top-level Kbuild. Each probe looks for
# the feature in a header (not at the version number: distribution and stable kernels backport API
# changes) and emits a Rust cfg (read by kmod/media/compat.rs and the op tables) or a C define
# (read by kmod/media/glue.c). A wrong probe is a build error, never a silent behaviour change:
# each selects between two spellings that only compile against the matching header.

daedalus_has = $(shell grep -qsE '$(2)' $(srctree)/$(1) && echo y)

# vb2_ops.wait_prepare / wait_finish: present up to 6.19, removed in 7.0 (vb2 then drops
# q->lock itself while DQBUF blocks).
ifeq ($(call daedalus_has,include/media/videobuf2-core.h,\(\*wait_prepare\)),y)
rustflags-y += --cfg daedalus_vb2_wait_ops
endif

# v4l2_fh_add(fh, file) / v4l2_fh_del(fh, file): 6.18+ (they set / clear file->private_data).
ifeq ($(call daedalus_has,include/media/v4l2-fh.h,v4l2_fh_add.struct v4l2_fh .fh$(comma) *struct file),y)
ccflags-y += -DDAEDALUS_FH_TAKES_FILE
endif

# v4l2_m2m_buf_copy_metadata() lost its copy_frame_flags argument in 6.19.
ifneq ($(call daedalus_has,include/media/v4l2-mem2mem.h,copy_frame_flags),y)
ccflags-y += -DDAEDALUS_COPY_METADATA_2ARGS
endif

# kernel::uaccess::UserPtr became a newtype after 6.12.
ifeq ($(call daedalus_has,rust/kernel/uaccess.rs,pub struct UserPtr),y)
rustflags-y += --cfg daedalus_userptr_newtype
endif
