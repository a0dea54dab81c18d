// SPDX-License-Identifier: GPL-2.0
/* See glue.h: one-line forwards of static inlines and macros to the Rust side. */

#include <linux/module.h>
#include "glue.h"

struct module *daedalus_this_module(void)
{
	return THIS_MODULE;
}

void daedalus_mutex_init(struct mutex *lock)
{
	mutex_init(lock);
}

void daedalus_mutex_lock(struct mutex *lock)
{
	mutex_lock(lock);
}

int daedalus_mutex_lock_interruptible(struct mutex *lock)
{
	return mutex_lock_interruptible(lock);
}

int daedalus_ctrl_handler_init(struct v4l2_ctrl_handler *hdl, unsigned int nr_of_controls_hint)
{
	return v4l2_ctrl_handler_init(hdl, nr_of_controls_hint);
}

void daedalus_ctrl_request_hdl_put(struct v4l2_ctrl_handler *hdl)
{
	v4l2_ctrl_request_hdl_put(hdl);
}

int daedalus_media_device_register(struct media_device *mdev)
{
	return media_device_register(mdev);
}

int daedalus_video_register_device(struct video_device *vdev)
{
	return video_register_device(vdev, VFL_TYPE_VIDEO, -1);
}

bool daedalus_vb2_is_busy(struct vb2_queue *q)
{
	return vb2_is_busy(q);
}

bool daedalus_vb2_is_streaming(struct vb2_queue *q)
{
	return vb2_is_streaming(q);
}

struct vb2_v4l2_buffer *daedalus_m2m_next_src_buf(struct v4l2_m2m_ctx *m2m_ctx)
{
	return v4l2_m2m_next_src_buf(m2m_ctx);
}

struct vb2_v4l2_buffer *daedalus_m2m_next_dst_buf(struct v4l2_m2m_ctx *m2m_ctx)
{
	return v4l2_m2m_next_dst_buf(m2m_ctx);
}

struct vb2_v4l2_buffer *daedalus_m2m_src_buf_remove(struct v4l2_m2m_ctx *m2m_ctx)
{
	return v4l2_m2m_src_buf_remove(m2m_ctx);
}

struct vb2_v4l2_buffer *daedalus_m2m_dst_buf_remove(struct v4l2_m2m_ctx *m2m_ctx)
{
	return v4l2_m2m_dst_buf_remove(m2m_ctx);
}
