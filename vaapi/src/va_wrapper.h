/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Input of bindgen (see build.rs): libva's driver interface. va_backend.h includes va.h, which
 * includes the decoder parameter headers (va_dec_vp9.h, va_dec_av1.h...); va_drmcommon.h has the
 * DRM PRIME descriptor of vaExportSurfaceHandle and the drm_state libva hands DRM displays.
 */
#include <va/va_backend.h>
#include <va/va_drmcommon.h>

/* The VA-API version of the headers: the driver exports __vaDriverInit_1_17 and needs at least
 * that (lib.rs checks at compile time). */
const unsigned int DAEDALUS_VA_MAJOR = VA_MAJOR_VERSION;
const unsigned int DAEDALUS_VA_MINOR = VA_MINOR_VERSION;
