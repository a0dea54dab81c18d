/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Input of bindgen (see build.rs): the VP9 stateless control from the vendored Linux 6.12 UAPI
 * (tools/uapi) and the dma-buf CPU access ioctl. Function-like macros (the ioctl number) and
 * struct sizes are evaluated by clang into DAEDALUS_C_* constants.
 */
#include <linux/v4l2-controls.h>
#include <linux/dma-buf.h>

const unsigned long DAEDALUS_C_DMA_BUF_IOCTL_SYNC = DMA_BUF_IOCTL_SYNC;
const unsigned long DAEDALUS_C_SIZEOF_v4l2_ctrl_vp9_frame = sizeof(struct v4l2_ctrl_vp9_frame);
