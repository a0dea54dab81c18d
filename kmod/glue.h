/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Thin C glue for what bindgen cannot express: static inline functions and function-like macros
 * of the media / V4L2 / videobuf2 / locking headers, and THIS_MODULE. No logic lives here: each
 * function forwards to exactly one kernel API. Declared here so the Rust bindings are generated
 * from the same prototypes the C compiler checks.
 */
#ifndef DAEDALUS_GLUE_H
#define DAEDALUS_GLUE_H

#include <linux/mutex.h>
#include <media/media-device.h>
#include <media/v4l2-ctrls.h>
#include <media/v4l2-dev.h>
#include <media/v4l2-mem2mem.h>
#include <media/videobuf2-core.h>

struct module *daedalus_this_module(void);
void daedalus_mutex_init(struct mutex *lock);
void daedalus_mutex_lock(struct mutex *lock);
int daedalus_mutex_lock_interruptible(struct mutex *lock);
int daedalus_ctrl_handler_init(struct v4l2_ctrl_handler *hdl, unsigned int nr_of_controls_hint);
void daedalus_ctrl_request_hdl_put(struct v4l2_ctrl_handler *hdl);
int daedalus_media_device_register(struct media_device *mdev);
int daedalus_video_register_device(struct video_device *vdev);
bool daedalus_vb2_is_busy(struct vb2_queue *q);
bool daedalus_vb2_is_streaming(struct vb2_queue *q);
struct vb2_v4l2_buffer *daedalus_m2m_next_src_buf(struct v4l2_m2m_ctx *m2m_ctx);
struct vb2_v4l2_buffer *daedalus_m2m_next_dst_buf(struct v4l2_m2m_ctx *m2m_ctx);
struct vb2_v4l2_buffer *daedalus_m2m_src_buf_remove(struct v4l2_m2m_ctx *m2m_ctx);
struct vb2_v4l2_buffer *daedalus_m2m_dst_buf_remove(struct v4l2_m2m_ctx *m2m_ctx);

#endif
