/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Headers the daedalus Rust bindings are generated from (by bindgen, at build time, against
 * KDIR; see Kbuild). `DAEDALUS_CONST_X` constants expose values of function-like macros, which
 * bindgen cannot evaluate; the build renames them to `X`.
 */
#include <linux/capability.h>
#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/platform_device.h>
#include <linux/poll.h>
#include <media/media-device.h>
#include <media/media-request.h>
#include <media/v4l2-ctrls.h>
#include <media/v4l2-dev.h>
#include <media/v4l2-device.h>
#include <media/v4l2-event.h>
#include <media/v4l2-fh.h>
#include <media/v4l2-ioctl.h>
#include <media/v4l2-mem2mem.h>
#include <media/videobuf2-dma-contig.h>
#include <media/videobuf2-v4l2.h>
#include "media/glue.h"

const gfp_t DAEDALUS_CONST___GFP_NOWARN = __GFP_NOWARN;
const u32 DAEDALUS_CONST_V4L2_PIX_FMT_VP9_FRAME = V4L2_PIX_FMT_VP9_FRAME;
const u32 DAEDALUS_CONST_V4L2_PIX_FMT_AV1_FRAME = V4L2_PIX_FMT_AV1_FRAME;
const u32 DAEDALUS_CONST_V4L2_PIX_FMT_H264_SLICE = V4L2_PIX_FMT_H264_SLICE;
const u32 DAEDALUS_CONST_V4L2_PIX_FMT_NV12 = V4L2_PIX_FMT_NV12;
const u32 DAEDALUS_CONST_V4L2_PIX_FMT_P010 = V4L2_PIX_FMT_P010;
const unsigned int DAEDALUS_CONST_DAEDALUS_POLLIN = (__force unsigned int)(EPOLLIN | EPOLLRDNORM);
