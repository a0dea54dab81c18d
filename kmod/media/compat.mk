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

# struct device's dma_coherent bit became a flag with accessors (dev_set_dma_coherent()) in 7.x.
ifeq ($(call daedalus_has,include/linux/device.h,__create_dev_flag_accessors.dma_coherent),y)
ccflags-y += -DDAEDALUS_DEV_FLAG_ACCESSORS
endif

# kernel::uaccess::UserPtr became a newtype after 6.12.
ifeq ($(call daedalus_has,rust/kernel/uaccess.rs,pub struct UserPtr),y)
rustflags-y += --cfg daedalus_userptr_newtype
endif

# struct device_attribute: 7.x puts `show` in an anonymous union (a struct with CONFIG_CFI) with a
# `show_const` variant (__SYSFS_FUNCTION_ALTERNATIVE); before, `show` is a plain member.
ifeq ($(call daedalus_has,include/linux/device.h,\(\*show_const\)),y)
rustflags-y += --cfg daedalus_sysfs_show_alternative
ifdef CONFIG_CFI
$(error daedalus: CONFIG_CFI makes device_attribute's show/show_const a struct, a layout media/compat.rs does not build yet)
endif
endif

# struct attribute_group: 7.x puts `attrs` in an anonymous union with `attrs_const`.
ifeq ($(call daedalus_has,include/linux/sysfs.h,\*const \*attrs_const;),y)
rustflags-y += --cfg daedalus_sysfs_attrs_union
endif

# module!: 7.x gives the module's `ThisModule` as ModuleMetadata::THIS_MODULE instead of a
# crate-level `static THIS_MODULE`.
ifeq ($(call daedalus_has,rust/macros/module.rs,const THIS_MODULE: ::kernel::ThisModule),y)
rustflags-y += --cfg daedalus_this_module_metadata
endif

# kernel::types::Opaque::raw_get() was renamed cast_into() (6.17+).
ifeq ($(call daedalus_has,rust/kernel/types.rs,pub const fn cast_into),y)
rustflags-y += --cfg daedalus_opaque_cast_into
endif

# Pin-init became a crate of its own (`pin_init`, 6.15+); kernel::init keeps InPlaceInit only.
ifeq ($(call daedalus_has,rust/pin-init/src/lib.rs,pub const unsafe fn pin_init_from_closure),y)
rustflags-y += --cfg daedalus_pin_init_crate
endif
