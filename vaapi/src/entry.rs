// SPDX-License-Identifier: GPL-2.0
//! The C side of the driver: `__vaDriverInit_1_17` and every entry of the vtable.
//!
//! Each entry does the same three things before the driver (`driver.rs`, safe Rust) sees the
//! call: it runs inside `catch_unwind`, so a Rust panic becomes `VA_STATUS_ERROR_OPERATION_FAILED`
//! and never unwinds into C; it checks the context (`pDriverData` set by our init); and it
//! turns every pointer it gets into a reference or slice only after checking it (NULL, negative
//! counts), with the lengths libva's API gives it. Ids are checked by the object heaps.
//! Entries the driver does not implement return `VA_STATUS_ERROR_UNIMPLEMENTED` (or, for
//! queries of things it has none of, an empty list): none is left NULL.

use std::ffi::CString;
use std::os::raw::{c_int, c_short, c_uchar, c_uint, c_ushort, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::config::ATTRIBUTES;
use crate::driver::Driver;
use crate::status::{to_status, Error, Result};
use crate::va::{self, VADriverContextP, VAStatus};

/// `max_profiles`: every profile the driver knows.
pub const MAX_PROFILES: usize = crate::caps::Profile::ALL.len();
/// `max_entrypoints`: VLD.
pub const MAX_ENTRYPOINTS: usize = 1;
/// `max_attributes`: the config attributes the driver answers.
pub const MAX_ATTRIBUTES: usize = ATTRIBUTES.len();
/// `max_image_formats`: NV12 and P010.
pub const MAX_IMAGE_FORMATS: usize = 2;
/// `max_subpic_formats`: libva requires at least 1; the driver lists none.
pub const MAX_SUBPIC_FORMATS: usize = 1;
/// `max_display_attributes`: libva requires at least 1; the driver lists none.
pub const MAX_DISPLAY_ATTRIBUTES: usize = 1;

/// Sends `message` to libva's error (or info) callback of `ctx` (which prints it as the
/// application configured libva to), or to standard error without one.
///
/// # Safety
///
/// `ctx` is NULL or the live driver context of the current call.
pub unsafe fn message(ctx: VADriverContextP, error: bool, message: &str) {
    let text =
        CString::new(format!("daedalus: {message}\n").replace('\0', " ")).unwrap_or_default();
    // SAFETY: the caller's contract.
    let callback = unsafe { ctx.as_ref() }.and_then(|c| {
        if error {
            c.error_callback
        } else {
            c.info_callback
        }
    });
    match callback {
        // SAFETY: libva's callback of this context, with the context and a C string that
        // outlives the call.
        Some(cb) => unsafe { cb(ctx, text.as_ptr()) },
        None if error => eprint!("{}", text.to_string_lossy()),
        None => {}
    }
}

/// The driver of `ctx`.
///
/// # Safety
///
/// `ctx` is NULL or a driver context libva passes to a vtable entry, so its `pDriverData` is
/// NULL or the `Driver` our init installed, which lives until `vaTerminate` (which libva does
/// not run concurrently with other calls on the display).
unsafe fn driver<'a>(ctx: VADriverContextP) -> Result<&'a Driver> {
    // SAFETY: the caller's contract.
    let c = unsafe { ctx.as_ref() }.ok_or(Error::INVALID_DISPLAY)?;
    // SAFETY: as above: NULL or our live `Driver`.
    unsafe { c.pDriverData.cast::<Driver>().as_ref() }.ok_or(Error::INVALID_DISPLAY)
}

/// Runs entry `name` of `ctx`: checks the context, runs `f` on its driver, turns a panic into
/// `OPERATION_FAILED`.
fn call(ctx: VADriverContextP, name: &str, f: impl FnOnce(&Driver) -> Result<()>) -> VAStatus {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: every vtable entry gets the context libva passes it.
        let driver = unsafe { driver(ctx) }?;
        f(driver)
    }));
    match outcome {
        Ok(result) => {
            if let Err(e) = result {
                log::debug!("{name}: {e}");
            }
            to_status(result)
        }
        Err(_) => {
            // SAFETY: as above.
            unsafe { message(ctx, true, &format!("{name}: internal error (panic)")) };
            Error::OPERATION_FAILED.status()
        }
    }
}

/// A count libva passes as a C int.
fn count(n: c_int) -> Result<usize> {
    usize::try_from(n).map_err(|_| Error::INVALID_PARAMETER)
}

/// An out-parameter.
///
/// # Safety
///
/// `p` is NULL or valid for writes of a `T` for `'a`, and no other reference to it exists.
unsafe fn out<'a, T>(p: *mut T) -> Result<&'a mut T> {
    // SAFETY: the caller's contract.
    unsafe { p.as_mut() }.ok_or(Error::INVALID_PARAMETER)
}

/// An input array of `n` elements (`n` 0: empty, whatever `p` is).
///
/// # Safety
///
/// `p` is NULL or valid for reads of `n` `T`s for `'a`, not written meanwhile.
unsafe fn slice<'a, T>(p: *const T, n: usize) -> Result<&'a [T]> {
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::INVALID_PARAMETER);
    }
    // SAFETY: the caller's contract, `p` non-NULL.
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

/// An in/out array of `n` elements.
///
/// # Safety
///
/// `p` is NULL or valid for reads and writes of `n` `T`s for `'a`, with no other reference.
unsafe fn slice_mut<'a, T>(p: *mut T, n: usize) -> Result<&'a mut [T]> {
    if n == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(Error::INVALID_PARAMETER);
    }
    // SAFETY: the caller's contract, `p` non-NULL.
    Ok(unsafe { std::slice::from_raw_parts_mut(p, n) })
}

/// Writes `items` to the array `list` of libva's `max` entries, and their number to `num`.
///
/// # Safety
///
/// As [`slice_mut`] for `list` with `max` elements and [`out`] for `num`.
unsafe fn write_list<T: Copy>(
    items: &[T],
    list: *mut T,
    max: usize,
    num: *mut c_int,
) -> Result<()> {
    // SAFETY: the caller's contract.
    let num = unsafe { out(num) }?;
    if items.len() > max {
        return Err(Error::MAX_NUM_EXCEEDED);
    }
    // SAFETY: the caller's contract.
    let list = unsafe { slice_mut(list, max) }?;
    list[..items.len()].copy_from_slice(items);
    *num = items.len() as c_int;
    Ok(())
}

/// Installs `driver` in `ctx`: the vtable, the limits and the vendor string.
///
/// # Safety
///
/// `ctx` is NULL or the driver context libva passes to the driver's init function, whose
/// `vtable` libva allocated (and frees).
pub unsafe fn install(ctx: VADriverContextP, driver: Driver) -> Result<()> {
    // SAFETY: the caller's contract.
    let c = unsafe { ctx.as_mut() }.ok_or(Error::INVALID_DISPLAY)?;
    // SAFETY: the caller's contract: libva's vtable of this context.
    let vtable = unsafe { c.vtable.as_mut() }.ok_or(Error::INVALID_PARAMETER)?;
    fill_vtable(vtable);
    c.version_major = va::DAEDALUS_VA_MAJOR as c_int;
    c.version_minor = va::DAEDALUS_VA_MINOR as c_int;
    c.max_profiles = MAX_PROFILES as c_int;
    c.max_entrypoints = MAX_ENTRYPOINTS as c_int;
    c.max_attributes = MAX_ATTRIBUTES as c_int;
    c.max_image_formats = MAX_IMAGE_FORMATS as c_int;
    c.max_subpic_formats = MAX_SUBPIC_FORMATS as c_int;
    c.max_display_attributes = MAX_DISPLAY_ATTRIBUTES as c_int;
    let driver = Box::new(driver);
    // Lives in the driver, which lives until vaTerminate.
    c.str_vendor = driver.vendor.as_ptr();
    c.pDriverData = Box::into_raw(driver).cast();
    Ok(())
}

/// Every entry of the vtable.
fn fill_vtable(v: &mut va::VADriverVTable) {
    v.vaTerminate = Some(terminate);
    v.vaQueryConfigProfiles = Some(query_config_profiles);
    v.vaQueryConfigEntrypoints = Some(query_config_entrypoints);
    v.vaGetConfigAttributes = Some(get_config_attributes);
    v.vaCreateConfig = Some(create_config);
    v.vaDestroyConfig = Some(destroy_config);
    v.vaQueryConfigAttributes = Some(query_config_attributes);
    v.vaCreateSurfaces = Some(create_surfaces);
    v.vaDestroySurfaces = Some(destroy_surfaces);
    v.vaCreateContext = Some(create_context);
    v.vaDestroyContext = Some(destroy_context);
    v.vaCreateBuffer = Some(create_buffer);
    v.vaBufferSetNumElements = Some(buffer_set_num_elements);
    v.vaMapBuffer = Some(map_buffer);
    v.vaUnmapBuffer = Some(unmap_buffer);
    v.vaDestroyBuffer = Some(destroy_buffer);
    v.vaBeginPicture = Some(begin_picture);
    v.vaRenderPicture = Some(render_picture);
    v.vaEndPicture = Some(end_picture);
    v.vaSyncSurface = Some(sync_surface);
    v.vaQuerySurfaceStatus = Some(query_surface_status);
    v.vaQuerySurfaceError = Some(query_surface_error);
    v.vaPutSurface = Some(put_surface);
    v.vaQueryImageFormats = Some(query_image_formats);
    v.vaCreateImage = Some(create_image);
    v.vaDeriveImage = Some(derive_image);
    v.vaDestroyImage = Some(destroy_image);
    v.vaSetImagePalette = Some(set_image_palette);
    v.vaGetImage = Some(get_image);
    v.vaPutImage = Some(put_image);
    v.vaQuerySubpictureFormats = Some(query_subpicture_formats);
    v.vaCreateSubpicture = Some(create_subpicture);
    v.vaDestroySubpicture = Some(destroy_subpicture);
    v.vaSetSubpictureImage = Some(set_subpicture_image);
    v.vaSetSubpictureChromakey = Some(set_subpicture_chromakey);
    v.vaSetSubpictureGlobalAlpha = Some(set_subpicture_global_alpha);
    v.vaAssociateSubpicture = Some(associate_subpicture);
    v.vaDeassociateSubpicture = Some(deassociate_subpicture);
    v.vaQueryDisplayAttributes = Some(query_display_attributes);
    v.vaGetDisplayAttributes = Some(get_display_attributes);
    v.vaSetDisplayAttributes = Some(set_display_attributes);
    v.vaBufferInfo = Some(buffer_info);
    v.vaLockSurface = Some(lock_surface);
    v.vaUnlockSurface = Some(unlock_surface);
    v.vaGetSurfaceAttributes = Some(get_surface_attributes);
    v.vaCreateSurfaces2 = Some(create_surfaces2);
    v.vaQuerySurfaceAttributes = Some(query_surface_attributes);
    v.vaAcquireBufferHandle = Some(acquire_buffer_handle);
    v.vaReleaseBufferHandle = Some(release_buffer_handle);
    v.vaCreateMFContext = Some(create_mf_context);
    v.vaMFAddContext = Some(mf_add_context);
    v.vaMFReleaseContext = Some(mf_release_context);
    v.vaMFSubmit = Some(mf_submit);
    v.vaCreateBuffer2 = Some(create_buffer2);
    v.vaQueryProcessingRate = Some(query_processing_rate);
    v.vaExportSurfaceHandle = Some(export_surface_handle);
    v.vaSyncSurface2 = Some(sync_surface2);
    v.vaSyncBuffer = Some(sync_buffer);
    v.vaCopy = Some(copy);
}

unsafe extern "C" fn terminate(ctx: VADriverContextP) -> VAStatus {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: libva's context of this call.
        let c = unsafe { ctx.as_mut() }.ok_or(Error::INVALID_DISPLAY)?;
        let p = c.pDriverData.cast::<Driver>();
        if p.is_null() {
            return Err(Error::INVALID_DISPLAY);
        }
        c.pDriverData = std::ptr::null_mut();
        c.str_vendor = std::ptr::null();
        // SAFETY: `p` is the box `install` leaked, taken out of the context so that it is
        // freed once; libva runs no other call of the display concurrently with this one.
        drop(unsafe { Box::from_raw(p) });
        Ok(())
    }));
    outcome
        .unwrap_or(Err(Error::OPERATION_FAILED))
        .map_or_else(|e| e.status(), |()| 0)
}

unsafe extern "C" fn query_config_profiles(
    ctx: VADriverContextP,
    profile_list: *mut va::VAProfile,
    num_profiles: *mut c_int,
) -> VAStatus {
    call(ctx, "vaQueryConfigProfiles", |d| {
        // SAFETY: libva's arrays hold max_profiles entries.
        unsafe {
            write_list(
                &d.query_config_profiles(),
                profile_list,
                MAX_PROFILES,
                num_profiles,
            )
        }
    })
}

unsafe extern "C" fn query_config_entrypoints(
    ctx: VADriverContextP,
    profile: va::VAProfile,
    entrypoint_list: *mut va::VAEntrypoint,
    num_entrypoints: *mut c_int,
) -> VAStatus {
    call(ctx, "vaQueryConfigEntrypoints", |d| {
        let list = d.query_config_entrypoints(profile)?;
        // SAFETY: libva's arrays hold max_entrypoints entries.
        unsafe { write_list(&list, entrypoint_list, MAX_ENTRYPOINTS, num_entrypoints) }
    })
}

unsafe extern "C" fn get_config_attributes(
    ctx: VADriverContextP,
    profile: va::VAProfile,
    entrypoint: va::VAEntrypoint,
    attrib_list: *mut va::VAConfigAttrib,
    num_attribs: c_int,
) -> VAStatus {
    call(ctx, "vaGetConfigAttributes", |d| {
        // SAFETY: the client's array of `num_attribs` attributes.
        let attribs = unsafe { slice_mut(attrib_list, count(num_attribs)?) }?;
        d.get_config_attributes(profile, entrypoint, attribs)
    })
}

unsafe extern "C" fn create_config(
    ctx: VADriverContextP,
    profile: va::VAProfile,
    entrypoint: va::VAEntrypoint,
    attrib_list: *mut va::VAConfigAttrib,
    num_attribs: c_int,
    config_id: *mut va::VAConfigID,
) -> VAStatus {
    call(ctx, "vaCreateConfig", |d| {
        // SAFETY: the client's array and out-parameter.
        let (attribs, out_id) =
            unsafe { (slice(attrib_list, count(num_attribs)?)?, out(config_id)?) };
        *out_id = d.create_config(profile, entrypoint, attribs)?;
        Ok(())
    })
}

unsafe extern "C" fn destroy_config(ctx: VADriverContextP, config_id: va::VAConfigID) -> VAStatus {
    call(ctx, "vaDestroyConfig", |d| d.destroy_config(config_id))
}

unsafe extern "C" fn query_config_attributes(
    ctx: VADriverContextP,
    config_id: va::VAConfigID,
    profile: *mut va::VAProfile,
    entrypoint: *mut va::VAEntrypoint,
    attrib_list: *mut va::VAConfigAttrib,
    num_attribs: *mut c_int,
) -> VAStatus {
    call(ctx, "vaQueryConfigAttributes", |d| {
        let (p, e, attribs) = d.query_config_attributes(config_id)?;
        // SAFETY: the client's out-parameters; the array holds max_attributes entries.
        unsafe {
            *out(profile)? = p;
            *out(entrypoint)? = e;
            write_list(&attribs, attrib_list, MAX_ATTRIBUTES, num_attribs)
        }
    })
}

unsafe extern "C" fn create_surfaces(
    ctx: VADriverContextP,
    width: c_int,
    height: c_int,
    format: c_int,
    num_surfaces: c_int,
    surfaces: *mut va::VASurfaceID,
) -> VAStatus {
    call(ctx, "vaCreateSurfaces", |d| {
        let n = count(num_surfaces)?;
        let dim = |v: c_int| u32::try_from(v).map_err(|_| Error::INVALID_PARAMETER);
        // SAFETY: the client's array of `num_surfaces` ids.
        let out_ids = unsafe { slice_mut(surfaces, n) }?;
        // The render-target format: the bits of the C int.
        let ids = d.create_surfaces(format as u32, dim(width)?, dim(height)?, n as u32, &[])?;
        out_ids.copy_from_slice(&ids);
        Ok(())
    })
}

unsafe extern "C" fn create_surfaces2(
    ctx: VADriverContextP,
    format: c_uint,
    width: c_uint,
    height: c_uint,
    surfaces: *mut va::VASurfaceID,
    num_surfaces: c_uint,
    attrib_list: *mut va::VASurfaceAttrib,
    num_attribs: c_uint,
) -> VAStatus {
    call(ctx, "vaCreateSurfaces2", |d| {
        // SAFETY: the client's arrays of the given lengths.
        let (out_ids, attribs) = unsafe {
            (
                slice_mut(surfaces, num_surfaces as usize)?,
                slice(attrib_list, num_attribs as usize)?,
            )
        };
        let ids = d.create_surfaces(format, width, height, num_surfaces, attribs)?;
        out_ids.copy_from_slice(&ids);
        Ok(())
    })
}

unsafe extern "C" fn destroy_surfaces(
    ctx: VADriverContextP,
    surface_list: *mut va::VASurfaceID,
    num_surfaces: c_int,
) -> VAStatus {
    call(ctx, "vaDestroySurfaces", |d| {
        // SAFETY: the client's array of `num_surfaces` ids.
        d.destroy_surfaces(unsafe { slice(surface_list, count(num_surfaces)?) }?)
    })
}

unsafe extern "C" fn query_surface_attributes(
    ctx: VADriverContextP,
    config: va::VAConfigID,
    attrib_list: *mut va::VASurfaceAttrib,
    num_attribs: *mut c_uint,
) -> VAStatus {
    call(ctx, "vaQuerySurfaceAttributes", |d| {
        let attribs = d.query_surface_attributes(config)?;
        // SAFETY: the client's out-parameter.
        let num = unsafe { out(num_attribs) }?;
        // NULL list: the client asks how many there are.
        if attrib_list.is_null() {
            *num = attribs.len() as c_uint;
            return Ok(());
        }
        if (*num as usize) < attribs.len() {
            *num = attribs.len() as c_uint;
            return Err(Error::MAX_NUM_EXCEEDED);
        }
        // SAFETY: the client's array of `*num` entries (checked non-NULL above).
        let list = unsafe { slice_mut(attrib_list, *num as usize) }?;
        list[..attribs.len()].copy_from_slice(&attribs);
        *num = attribs.len() as c_uint;
        Ok(())
    })
}

unsafe extern "C" fn get_surface_attributes(
    ctx: VADriverContextP,
    _config: va::VAConfigID,
    _attrib_list: *mut va::VASurfaceAttrib,
    _num_attribs: c_uint,
) -> VAStatus {
    // Deprecated by vaQuerySurfaceAttributes.
    call(ctx, "vaGetSurfaceAttributes", |_| Err(Error::UNIMPLEMENTED))
}

unsafe extern "C" fn create_context(
    ctx: VADriverContextP,
    config_id: va::VAConfigID,
    picture_width: c_int,
    picture_height: c_int,
    flag: c_int,
    render_targets: *mut va::VASurfaceID,
    num_render_targets: c_int,
    context: *mut va::VAContextID,
) -> VAStatus {
    call(ctx, "vaCreateContext", |d| {
        let dim = |v: c_int| u32::try_from(v).map_err(|_| Error::INVALID_PARAMETER);
        // SAFETY: the client's array and out-parameter.
        let (targets, out_id) = unsafe {
            (
                slice(render_targets, count(num_render_targets)?)?,
                out(context)?,
            )
        };
        *out_id = d.create_context(
            config_id,
            dim(picture_width)?,
            dim(picture_height)?,
            flag,
            targets,
        )?;
        Ok(())
    })
}

unsafe extern "C" fn destroy_context(ctx: VADriverContextP, context: va::VAContextID) -> VAStatus {
    call(ctx, "vaDestroyContext", |d| d.destroy_context(context))
}

unsafe extern "C" fn create_buffer(
    ctx: VADriverContextP,
    context: va::VAContextID,
    type_: va::VABufferType,
    size: c_uint,
    num_elements: c_uint,
    data: *mut c_void,
    buf_id: *mut va::VABufferID,
) -> VAStatus {
    call(ctx, "vaCreateBuffer", |d| {
        let len = u64::from(size) * u64::from(num_elements);
        if len > crate::buffer::MAX_BYTES {
            return Err(Error::ALLOCATION_FAILED);
        }
        // SAFETY: `data` is NULL or the client's `size * num_elements` bytes; the out-param.
        let (bytes, out_id) = unsafe {
            (
                if data.is_null() {
                    None
                } else {
                    Some(slice(data.cast::<u8>().cast_const(), len as usize)?)
                },
                out(buf_id)?,
            )
        };
        *out_id = d.create_buffer(context, type_, size, num_elements, bytes)?;
        Ok(())
    })
}

unsafe extern "C" fn buffer_set_num_elements(
    ctx: VADriverContextP,
    buf_id: va::VABufferID,
    num_elements: c_uint,
) -> VAStatus {
    call(ctx, "vaBufferSetNumElements", |d| {
        d.buffer_set_num_elements(buf_id, num_elements)
    })
}

unsafe extern "C" fn map_buffer(
    ctx: VADriverContextP,
    buf_id: va::VABufferID,
    pbuf: *mut *mut c_void,
) -> VAStatus {
    call(ctx, "vaMapBuffer", |d| {
        // SAFETY: the client's out-parameter.
        let out_ptr = unsafe { out(pbuf) }?;
        *out_ptr = d.map_buffer(buf_id)?.cast();
        Ok(())
    })
}

unsafe extern "C" fn unmap_buffer(ctx: VADriverContextP, buf_id: va::VABufferID) -> VAStatus {
    call(ctx, "vaUnmapBuffer", |d| d.unmap_buffer(buf_id))
}

unsafe extern "C" fn destroy_buffer(ctx: VADriverContextP, buffer_id: va::VABufferID) -> VAStatus {
    call(ctx, "vaDestroyBuffer", |d| d.destroy_buffer(buffer_id))
}

unsafe extern "C" fn buffer_info(
    ctx: VADriverContextP,
    buf_id: va::VABufferID,
    type_: *mut va::VABufferType,
    size: *mut c_uint,
    num_elements: *mut c_uint,
) -> VAStatus {
    call(ctx, "vaBufferInfo", |d| {
        let (t, s, n) = d.buffer_info(buf_id)?;
        // SAFETY: the client's out-parameters.
        unsafe {
            *out(type_)? = t;
            *out(size)? = s;
            *out(num_elements)? = n;
        }
        Ok(())
    })
}

unsafe extern "C" fn begin_picture(
    ctx: VADriverContextP,
    context: va::VAContextID,
    render_target: va::VASurfaceID,
) -> VAStatus {
    call(ctx, "vaBeginPicture", |d| {
        d.begin_picture(context, render_target)
    })
}

unsafe extern "C" fn render_picture(
    ctx: VADriverContextP,
    context: va::VAContextID,
    buffers: *mut va::VABufferID,
    num_buffers: c_int,
) -> VAStatus {
    call(ctx, "vaRenderPicture", |d| {
        // SAFETY: the client's array of `num_buffers` ids.
        d.render_picture(context, unsafe { slice(buffers, count(num_buffers)?) }?)
    })
}

unsafe extern "C" fn end_picture(ctx: VADriverContextP, context: va::VAContextID) -> VAStatus {
    call(ctx, "vaEndPicture", |d| d.end_picture(context))
}

unsafe extern "C" fn sync_surface(
    ctx: VADriverContextP,
    render_target: va::VASurfaceID,
) -> VAStatus {
    call(ctx, "vaSyncSurface", |d| {
        d.sync_surface(render_target, None)
    })
}

unsafe extern "C" fn sync_surface2(
    ctx: VADriverContextP,
    surface: va::VASurfaceID,
    timeout_ns: u64,
) -> VAStatus {
    call(ctx, "vaSyncSurface2", |d| {
        // VA_TIMEOUT_INFINITE is 0xFFFFFFFFFFFFFFFF (bindgen makes the macro an i32 -1).
        let timeout = (timeout_ns != u64::MAX).then(|| std::time::Duration::from_nanos(timeout_ns));
        d.sync_surface(surface, timeout)
    })
}

unsafe extern "C" fn query_surface_status(
    ctx: VADriverContextP,
    render_target: va::VASurfaceID,
    status: *mut va::VASurfaceStatus,
) -> VAStatus {
    call(ctx, "vaQuerySurfaceStatus", |d| {
        // SAFETY: the client's out-parameter.
        let out_status = unsafe { out(status) }?;
        *out_status = d.query_surface_status(render_target)?;
        Ok(())
    })
}

unsafe extern "C" fn query_surface_error(
    ctx: VADriverContextP,
    render_target: va::VASurfaceID,
    _error_status: VAStatus,
    _error_info: *mut *mut c_void,
) -> VAStatus {
    call(ctx, "vaQuerySurfaceError", |d| {
        d.query_surface_status(render_target)?;
        // The driver reports no macroblock-level error information.
        Err(Error::UNIMPLEMENTED)
    })
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn put_surface(
    ctx: VADriverContextP,
    _surface: va::VASurfaceID,
    _draw: *mut c_void,
    _srcx: c_short,
    _srcy: c_short,
    _srcw: c_ushort,
    _srch: c_ushort,
    _destx: c_short,
    _desty: c_short,
    _destw: c_ushort,
    _desth: c_ushort,
    _cliprects: *mut va::VARectangle,
    _number_cliprects: c_uint,
    _flags: c_uint,
) -> VAStatus {
    // No window system output: players export surfaces or read them back.
    call(ctx, "vaPutSurface", |_| Err(Error::UNIMPLEMENTED))
}

unsafe extern "C" fn query_image_formats(
    ctx: VADriverContextP,
    format_list: *mut va::VAImageFormat,
    num_formats: *mut c_int,
) -> VAStatus {
    call(ctx, "vaQueryImageFormats", |d| {
        // SAFETY: libva's array holds max_image_formats entries.
        unsafe {
            write_list(
                &d.query_image_formats(),
                format_list,
                MAX_IMAGE_FORMATS,
                num_formats,
            )
        }
    })
}

unsafe extern "C" fn create_image(
    ctx: VADriverContextP,
    format: *mut va::VAImageFormat,
    width: c_int,
    height: c_int,
    image: *mut va::VAImage,
) -> VAStatus {
    call(ctx, "vaCreateImage", |d| {
        let dim = |v: c_int| u32::try_from(v).map_err(|_| Error::INVALID_PARAMETER);
        // SAFETY: the client's format and out-parameter.
        let (format, out_image) = unsafe { (out(format)?, out(image)?) };
        *out_image = d.create_image(format, dim(width)?, dim(height)?)?;
        Ok(())
    })
}

unsafe extern "C" fn derive_image(
    ctx: VADriverContextP,
    surface: va::VASurfaceID,
    image: *mut va::VAImage,
) -> VAStatus {
    call(ctx, "vaDeriveImage", |d| {
        // SAFETY: the client's out-parameter.
        let out_image = unsafe { out(image) }?;
        *out_image = d.derive_image(surface)?;
        Ok(())
    })
}

unsafe extern "C" fn destroy_image(ctx: VADriverContextP, image: va::VAImageID) -> VAStatus {
    call(ctx, "vaDestroyImage", |d| d.destroy_image(image))
}

unsafe extern "C" fn set_image_palette(
    ctx: VADriverContextP,
    _image: va::VAImageID,
    _palette: *mut c_uchar,
) -> VAStatus {
    // NV12 and P010 have no palette.
    call(ctx, "vaSetImagePalette", |_| Err(Error::UNIMPLEMENTED))
}

unsafe extern "C" fn get_image(
    ctx: VADriverContextP,
    surface: va::VASurfaceID,
    x: c_int,
    y: c_int,
    width: c_uint,
    height: c_uint,
    image: va::VAImageID,
) -> VAStatus {
    call(ctx, "vaGetImage", |d| {
        let pos = |v: c_int| u32::try_from(v).map_err(|_| Error::INVALID_PARAMETER);
        d.get_image(surface, pos(x)?, pos(y)?, width, height, image)
    })
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn put_image(
    ctx: VADriverContextP,
    _surface: va::VASurfaceID,
    _image: va::VAImageID,
    _src_x: c_int,
    _src_y: c_int,
    _src_width: c_uint,
    _src_height: c_uint,
    _dest_x: c_int,
    _dest_y: c_int,
    _dest_width: c_uint,
    _dest_height: c_uint,
) -> VAStatus {
    // A decoder's surfaces are written by the decoder only.
    call(ctx, "vaPutImage", |_| Err(Error::UNIMPLEMENTED))
}

unsafe extern "C" fn query_subpicture_formats(
    ctx: VADriverContextP,
    _format_list: *mut va::VAImageFormat,
    _flags: *mut c_uint,
    num_formats: *mut c_uint,
) -> VAStatus {
    call(ctx, "vaQuerySubpictureFormats", |_| {
        // SAFETY: the client's out-parameter.
        *unsafe { out(num_formats) }? = 0;
        Ok(())
    })
}

unsafe extern "C" fn create_subpicture(
    ctx: VADriverContextP,
    _image: va::VAImageID,
    _subpicture: *mut va::VASubpictureID,
) -> VAStatus {
    call(ctx, "vaCreateSubpicture", |_| Err(Error::UNIMPLEMENTED))
}

unsafe extern "C" fn destroy_subpicture(
    ctx: VADriverContextP,
    _subpicture: va::VASubpictureID,
) -> VAStatus {
    call(ctx, "vaDestroySubpicture", |_| {
        Err(Error::INVALID_SUBPICTURE)
    })
}

unsafe extern "C" fn set_subpicture_image(
    ctx: VADriverContextP,
    _subpicture: va::VASubpictureID,
    _image: va::VAImageID,
) -> VAStatus {
    call(ctx, "vaSetSubpictureImage", |_| {
        Err(Error::INVALID_SUBPICTURE)
    })
}

unsafe extern "C" fn set_subpicture_chromakey(
    ctx: VADriverContextP,
    _subpicture: va::VASubpictureID,
    _chromakey_min: c_uint,
    _chromakey_max: c_uint,
    _chromakey_mask: c_uint,
) -> VAStatus {
    call(ctx, "vaSetSubpictureChromakey", |_| {
        Err(Error::INVALID_SUBPICTURE)
    })
}

unsafe extern "C" fn set_subpicture_global_alpha(
    ctx: VADriverContextP,
    _subpicture: va::VASubpictureID,
    _global_alpha: f32,
) -> VAStatus {
    call(ctx, "vaSetSubpictureGlobalAlpha", |_| {
        Err(Error::INVALID_SUBPICTURE)
    })
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn associate_subpicture(
    ctx: VADriverContextP,
    _subpicture: va::VASubpictureID,
    _target_surfaces: *mut va::VASurfaceID,
    _num_surfaces: c_int,
    _src_x: c_short,
    _src_y: c_short,
    _src_width: c_ushort,
    _src_height: c_ushort,
    _dest_x: c_short,
    _dest_y: c_short,
    _dest_width: c_ushort,
    _dest_height: c_ushort,
    _flags: c_uint,
) -> VAStatus {
    call(ctx, "vaAssociateSubpicture", |_| {
        Err(Error::INVALID_SUBPICTURE)
    })
}

unsafe extern "C" fn deassociate_subpicture(
    ctx: VADriverContextP,
    _subpicture: va::VASubpictureID,
    _target_surfaces: *mut va::VASurfaceID,
    _num_surfaces: c_int,
) -> VAStatus {
    call(ctx, "vaDeassociateSubpicture", |_| {
        Err(Error::INVALID_SUBPICTURE)
    })
}

unsafe extern "C" fn query_display_attributes(
    ctx: VADriverContextP,
    _attr_list: *mut va::VADisplayAttribute,
    num_attributes: *mut c_int,
) -> VAStatus {
    call(ctx, "vaQueryDisplayAttributes", |_| {
        // SAFETY: the client's out-parameter.
        *unsafe { out(num_attributes) }? = 0;
        Ok(())
    })
}

unsafe extern "C" fn get_display_attributes(
    ctx: VADriverContextP,
    attr_list: *mut va::VADisplayAttribute,
    num_attributes: c_int,
) -> VAStatus {
    call(ctx, "vaGetDisplayAttributes", |_| {
        // SAFETY: the client's array of `num_attributes` entries.
        let attrs = unsafe { slice_mut(attr_list, count(num_attributes)?) }?;
        // The driver has no display attribute: each is marked unsupported.
        for a in attrs {
            a.flags = va::VA_DISPLAY_ATTRIB_NOT_SUPPORTED;
        }
        Ok(())
    })
}

unsafe extern "C" fn set_display_attributes(
    ctx: VADriverContextP,
    _attr_list: *mut va::VADisplayAttribute,
    num_attributes: c_int,
) -> VAStatus {
    call(ctx, "vaSetDisplayAttributes", |_| {
        if count(num_attributes)? == 0 {
            Ok(())
        } else {
            Err(Error::ATTR_NOT_SUPPORTED)
        }
    })
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn lock_surface(
    ctx: VADriverContextP,
    _surface: va::VASurfaceID,
    _fourcc: *mut c_uint,
    _luma_stride: *mut c_uint,
    _chroma_u_stride: *mut c_uint,
    _chroma_v_stride: *mut c_uint,
    _luma_offset: *mut c_uint,
    _chroma_u_offset: *mut c_uint,
    _chroma_v_offset: *mut c_uint,
    _buffer_name: *mut c_uint,
    _buffer: *mut *mut c_void,
) -> VAStatus {
    // Deprecated: vaDeriveImage / vaExportSurfaceHandle.
    call(ctx, "vaLockSurface", |_| Err(Error::UNIMPLEMENTED))
}

unsafe extern "C" fn unlock_surface(ctx: VADriverContextP, _surface: va::VASurfaceID) -> VAStatus {
    call(ctx, "vaUnlockSurface", |_| Err(Error::UNIMPLEMENTED))
}

unsafe extern "C" fn acquire_buffer_handle(
    ctx: VADriverContextP,
    _buf_id: va::VABufferID,
    _buf_info: *mut va::VABufferInfo,
) -> VAStatus {
    call(ctx, "vaAcquireBufferHandle", |_| Err(Error::UNIMPLEMENTED))
}

unsafe extern "C" fn release_buffer_handle(
    ctx: VADriverContextP,
    _buf_id: va::VABufferID,
) -> VAStatus {
    call(ctx, "vaReleaseBufferHandle", |_| Err(Error::UNIMPLEMENTED))
}

unsafe extern "C" fn create_mf_context(
    ctx: VADriverContextP,
    _mfe_context: *mut va::VAMFContextID,
) -> VAStatus {
    // Multi-frame contexts are an encoding feature.
    call(ctx, "vaCreateMFContext", |_| Err(Error::UNIMPLEMENTED))
}

unsafe extern "C" fn mf_add_context(
    ctx: VADriverContextP,
    _mf_context: va::VAMFContextID,
    _context: va::VAContextID,
) -> VAStatus {
    call(ctx, "vaMFAddContext", |_| Err(Error::UNIMPLEMENTED))
}

unsafe extern "C" fn mf_release_context(
    ctx: VADriverContextP,
    _mf_context: va::VAMFContextID,
    _context: va::VAContextID,
) -> VAStatus {
    call(ctx, "vaMFReleaseContext", |_| Err(Error::UNIMPLEMENTED))
}

unsafe extern "C" fn mf_submit(
    ctx: VADriverContextP,
    _mf_context: va::VAMFContextID,
    _contexts: *mut va::VAContextID,
    _num_contexts: c_int,
) -> VAStatus {
    call(ctx, "vaMFSubmit", |_| Err(Error::UNIMPLEMENTED))
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn create_buffer2(
    ctx: VADriverContextP,
    _context: va::VAContextID,
    _type_: va::VABufferType,
    _width: c_uint,
    _height: c_uint,
    _unit_size: *mut c_uint,
    _pitch: *mut c_uint,
    _buf_id: *mut va::VABufferID,
) -> VAStatus {
    call(ctx, "vaCreateBuffer2", |_| Err(Error::UNIMPLEMENTED))
}

unsafe extern "C" fn query_processing_rate(
    ctx: VADriverContextP,
    _config_id: va::VAConfigID,
    _proc_buf: *mut va::VAProcessingRateParameter,
    _processing_rate: *mut c_uint,
) -> VAStatus {
    call(ctx, "vaQueryProcessingRate", |_| Err(Error::UNIMPLEMENTED))
}

unsafe extern "C" fn export_surface_handle(
    ctx: VADriverContextP,
    surface_id: va::VASurfaceID,
    mem_type: u32,
    flags: u32,
    descriptor: *mut c_void,
) -> VAStatus {
    call(ctx, "vaExportSurfaceHandle", |d| {
        if mem_type != va::VA_SURFACE_ATTRIB_MEM_TYPE_DRM_PRIME_2 {
            return Err(Error::UNSUPPORTED_MEMORY_TYPE);
        }
        // SAFETY: for DRM_PRIME_2 the descriptor is a VADRMPRIMESurfaceDescriptor.
        let desc = unsafe { out(descriptor.cast::<va::VADRMPRIMESurfaceDescriptor>()) }?;
        *desc = d.export_surface(surface_id, flags)?;
        Ok(())
    })
}

unsafe extern "C" fn sync_buffer(
    ctx: VADriverContextP,
    _buf_id: va::VABufferID,
    _timeout_ns: u64,
) -> VAStatus {
    // Buffers are only ever written by the client: there is nothing to wait for (and libva
    // uses it for coded buffers of encoders).
    call(ctx, "vaSyncBuffer", |_| Err(Error::UNIMPLEMENTED))
}

unsafe extern "C" fn copy(
    ctx: VADriverContextP,
    _dst: *mut va::VACopyObject,
    _src: *mut va::VACopyObject,
    _option: va::VACopyOption,
) -> VAStatus {
    call(ctx, "vaCopy", |_| Err(Error::UNIMPLEMENTED))
}

/// A `c_char` pointer libva prints, for tests.
#[cfg(test)]
pub(crate) fn c_text(p: *const std::os::raw::c_char) -> String {
    // SAFETY (tests): `p` is a NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::ptr::{null, null_mut};

    use super::*;
    use crate::driver::tests::driver;

    thread_local! {
        static MESSAGES: RefCell<Vec<(bool, String)>> = const { RefCell::new(Vec::new()) };
    }

    unsafe extern "C" fn on_error(_ctx: VADriverContextP, text: *const std::os::raw::c_char) {
        MESSAGES.with(|m| m.borrow_mut().push((true, c_text(text))));
    }

    unsafe extern "C" fn on_info(_ctx: VADriverContextP, text: *const std::os::raw::c_char) {
        MESSAGES.with(|m| m.borrow_mut().push((false, c_text(text))));
    }

    /// A driver context as libva makes it: a zeroed vtable, the message callbacks.
    struct FakeLibva {
        ctx: Box<va::VADriverContext>,
        _vtable: Box<va::VADriverVTable>,
    }

    impl FakeLibva {
        fn new() -> FakeLibva {
            let mut vtable = Box::<va::VADriverVTable>::default();
            let mut ctx = Box::<va::VADriverContext>::default();
            ctx.vtable = &mut *vtable;
            ctx.error_callback = Some(on_error);
            ctx.info_callback = Some(on_info);
            FakeLibva {
                ctx,
                _vtable: vtable,
            }
        }

        /// With the test driver installed.
        fn installed() -> FakeLibva {
            let mut l = FakeLibva::new();
            // SAFETY (test): a context with its vtable, as libva's.
            unsafe { install(l.ptr(), driver()) }.unwrap();
            l
        }

        fn ptr(&mut self) -> VADriverContextP {
            &mut *self.ctx
        }

        fn vt(&self) -> &va::VADriverVTable {
            // SAFETY (test): the vtable box outlives self.
            unsafe { &*self.ctx.vtable }
        }
    }

    impl Drop for FakeLibva {
        fn drop(&mut self) {
            if !self.ctx.pDriverData.is_null() {
                let ctx = self.ptr();
                // SAFETY (test): the installed context.
                unsafe { self.vt().vaTerminate.unwrap()(ctx) };
            }
        }
    }

    const OK: VAStatus = 0;

    #[test]
    fn vtable_has_every_entry() {
        let l = FakeLibva::installed();
        let v = l.vt();
        // Every entry point of VA-API 1.17 (the ones va_openDriver requires and the rest).
        let entries: [(bool, &str); 59] = [
            (v.vaTerminate.is_some(), "Terminate"),
            (v.vaQueryConfigProfiles.is_some(), "QueryConfigProfiles"),
            (
                v.vaQueryConfigEntrypoints.is_some(),
                "QueryConfigEntrypoints",
            ),
            (v.vaGetConfigAttributes.is_some(), "GetConfigAttributes"),
            (v.vaCreateConfig.is_some(), "CreateConfig"),
            (v.vaDestroyConfig.is_some(), "DestroyConfig"),
            (v.vaQueryConfigAttributes.is_some(), "QueryConfigAttributes"),
            (v.vaCreateSurfaces.is_some(), "CreateSurfaces"),
            (v.vaDestroySurfaces.is_some(), "DestroySurfaces"),
            (v.vaCreateContext.is_some(), "CreateContext"),
            (v.vaDestroyContext.is_some(), "DestroyContext"),
            (v.vaCreateBuffer.is_some(), "CreateBuffer"),
            (v.vaBufferSetNumElements.is_some(), "BufferSetNumElements"),
            (v.vaMapBuffer.is_some(), "MapBuffer"),
            (v.vaUnmapBuffer.is_some(), "UnmapBuffer"),
            (v.vaDestroyBuffer.is_some(), "DestroyBuffer"),
            (v.vaBeginPicture.is_some(), "BeginPicture"),
            (v.vaRenderPicture.is_some(), "RenderPicture"),
            (v.vaEndPicture.is_some(), "EndPicture"),
            (v.vaSyncSurface.is_some(), "SyncSurface"),
            (v.vaQuerySurfaceStatus.is_some(), "QuerySurfaceStatus"),
            (v.vaQuerySurfaceError.is_some(), "QuerySurfaceError"),
            (v.vaPutSurface.is_some(), "PutSurface"),
            (v.vaQueryImageFormats.is_some(), "QueryImageFormats"),
            (v.vaCreateImage.is_some(), "CreateImage"),
            (v.vaDeriveImage.is_some(), "DeriveImage"),
            (v.vaDestroyImage.is_some(), "DestroyImage"),
            (v.vaSetImagePalette.is_some(), "SetImagePalette"),
            (v.vaGetImage.is_some(), "GetImage"),
            (v.vaPutImage.is_some(), "PutImage"),
            (
                v.vaQuerySubpictureFormats.is_some(),
                "QuerySubpictureFormats",
            ),
            (v.vaCreateSubpicture.is_some(), "CreateSubpicture"),
            (v.vaDestroySubpicture.is_some(), "DestroySubpicture"),
            (v.vaSetSubpictureImage.is_some(), "SetSubpictureImage"),
            (
                v.vaSetSubpictureChromakey.is_some(),
                "SetSubpictureChromakey",
            ),
            (
                v.vaSetSubpictureGlobalAlpha.is_some(),
                "SetSubpictureGlobalAlpha",
            ),
            (v.vaAssociateSubpicture.is_some(), "AssociateSubpicture"),
            (v.vaDeassociateSubpicture.is_some(), "DeassociateSubpicture"),
            (
                v.vaQueryDisplayAttributes.is_some(),
                "QueryDisplayAttributes",
            ),
            (v.vaGetDisplayAttributes.is_some(), "GetDisplayAttributes"),
            (v.vaSetDisplayAttributes.is_some(), "SetDisplayAttributes"),
            (v.vaBufferInfo.is_some(), "BufferInfo"),
            (v.vaLockSurface.is_some(), "LockSurface"),
            (v.vaUnlockSurface.is_some(), "UnlockSurface"),
            (v.vaGetSurfaceAttributes.is_some(), "GetSurfaceAttributes"),
            (v.vaCreateSurfaces2.is_some(), "CreateSurfaces2"),
            (
                v.vaQuerySurfaceAttributes.is_some(),
                "QuerySurfaceAttributes",
            ),
            (v.vaAcquireBufferHandle.is_some(), "AcquireBufferHandle"),
            (v.vaReleaseBufferHandle.is_some(), "ReleaseBufferHandle"),
            (v.vaCreateMFContext.is_some(), "CreateMFContext"),
            (v.vaMFAddContext.is_some(), "MFAddContext"),
            (v.vaMFReleaseContext.is_some(), "MFReleaseContext"),
            (v.vaMFSubmit.is_some(), "MFSubmit"),
            (v.vaCreateBuffer2.is_some(), "CreateBuffer2"),
            (v.vaQueryProcessingRate.is_some(), "QueryProcessingRate"),
            (v.vaExportSurfaceHandle.is_some(), "ExportSurfaceHandle"),
            (v.vaSyncSurface2.is_some(), "SyncSurface2"),
            (v.vaSyncBuffer.is_some(), "SyncBuffer"),
            (v.vaCopy.is_some(), "Copy"),
        ];
        let missing: Vec<&str> = entries.iter().filter(|e| !e.0).map(|e| e.1).collect();
        assert!(missing.is_empty(), "NULL entries: {missing:?}");
        let c = &l.ctx;
        // va_openDriver's CHECK_MAXIMUM: every maximum non-zero; CHECK_STRING: a vendor.
        for max in [
            c.max_profiles,
            c.max_entrypoints,
            c.max_attributes,
            c.max_image_formats,
            c.max_subpic_formats,
            c.max_display_attributes,
        ] {
            assert!(max > 0);
        }
        assert!(c_text(c.str_vendor)
            .starts_with("daedalus VA-API driver 0.1.0 (daedalus on /nonexistent/video0"));
        assert_eq!((c.version_major, c.version_minor), (1, 17));
    }

    #[test]
    fn queries_through_the_vtable() {
        let mut l = FakeLibva::installed();
        let ctx = l.ptr();
        let v = *l.vt();
        // SAFETY (test): the calls a client makes through libva, with valid arguments.
        unsafe {
            let mut profiles = [0; MAX_PROFILES];
            let mut n = 0;
            assert_eq!(
                v.vaQueryConfigProfiles.unwrap()(ctx, profiles.as_mut_ptr(), &mut n),
                OK
            );
            assert_eq!(n, 6);
            assert!(profiles.contains(&va::VAProfileVP9Profile2));
            let mut eps = [0; MAX_ENTRYPOINTS];
            assert_eq!(
                v.vaQueryConfigEntrypoints.unwrap()(
                    ctx,
                    va::VAProfileH264High,
                    eps.as_mut_ptr(),
                    &mut n
                ),
                OK
            );
            assert_eq!((n, eps[0]), (1, va::VAEntrypointVLD));
            let mut attr = va::VAConfigAttrib {
                type_: va::VAConfigAttribRTFormat,
                value: 0,
            };
            assert_eq!(
                v.vaGetConfigAttributes.unwrap()(
                    ctx,
                    va::VAProfileVP9Profile2,
                    va::VAEntrypointVLD,
                    &mut attr,
                    1
                ),
                OK
            );
            assert_eq!(attr.value, va::VA_RT_FORMAT_YUV420_10);

            let mut config = 0;
            assert_eq!(
                v.vaCreateConfig.unwrap()(
                    ctx,
                    va::VAProfileVP9Profile2,
                    va::VAEntrypointVLD,
                    &mut attr,
                    1,
                    &mut config
                ),
                OK
            );
            let (mut p, mut e) = (0, 0);
            let mut attrs = [va::VAConfigAttrib::default(); MAX_ATTRIBUTES];
            assert_eq!(
                v.vaQueryConfigAttributes.unwrap()(
                    ctx,
                    config,
                    &mut p,
                    &mut e,
                    attrs.as_mut_ptr(),
                    &mut n
                ),
                OK
            );
            assert_eq!(
                (p, e, n as usize),
                (
                    va::VAProfileVP9Profile2,
                    va::VAEntrypointVLD,
                    MAX_ATTRIBUTES
                )
            );

            // vaQuerySurfaceAttributes: count first, then fill; too small a list says so.
            let mut count = 0;
            assert_eq!(
                v.vaQuerySurfaceAttributes.unwrap()(ctx, config, null_mut(), &mut count),
                OK
            );
            assert!(count > 0);
            let mut list: Vec<va::VASurfaceAttrib> =
                (0..count).map(|_| std::mem::zeroed()).collect();
            let mut small = count - 1;
            assert_eq!(
                v.vaQuerySurfaceAttributes.unwrap()(ctx, config, list.as_mut_ptr(), &mut small),
                Error::MAX_NUM_EXCEEDED.status()
            );
            assert_eq!(small, count);
            assert_eq!(
                v.vaQuerySurfaceAttributes.unwrap()(ctx, config, list.as_mut_ptr(), &mut count),
                OK
            );
            assert_eq!(list[0].type_, va::VASurfaceAttribPixelFormat);

            let mut surfaces = [0; 4];
            assert_eq!(
                v.vaCreateSurfaces2.unwrap()(
                    ctx,
                    va::VA_RT_FORMAT_YUV420_10,
                    1920,
                    1080,
                    surfaces.as_mut_ptr(),
                    4,
                    null_mut(),
                    0
                ),
                OK
            );
            let mut context = 0;
            assert_eq!(
                v.vaCreateContext.unwrap()(
                    ctx,
                    config,
                    1920,
                    1080,
                    va::VA_PROGRESSIVE as c_int,
                    surfaces.as_mut_ptr(),
                    4,
                    &mut context
                ),
                OK
            );
            let mut status = 0;
            assert_eq!(
                v.vaQuerySurfaceStatus.unwrap()(ctx, surfaces[0], &mut status),
                OK
            );
            assert_eq!(status, va::VASurfaceReady);

            let mut data = [7u8; 100];
            let mut buf = 0;
            assert_eq!(
                v.vaCreateBuffer.unwrap()(
                    ctx,
                    context,
                    va::VASliceDataBufferType,
                    100,
                    1,
                    data.as_mut_ptr().cast(),
                    &mut buf
                ),
                OK
            );
            let mut mapped: *mut c_void = null_mut();
            assert_eq!(v.vaMapBuffer.unwrap()(ctx, buf, &mut mapped), OK);
            assert_eq!(*mapped.cast::<u8>().add(99), 7);
            assert_eq!(v.vaUnmapBuffer.unwrap()(ctx, buf), OK);
            let (mut t, mut size, mut num) = (0, 0, 0);
            assert_eq!(
                v.vaBufferInfo.unwrap()(ctx, buf, &mut t, &mut size, &mut num),
                OK
            );
            assert_eq!((t, size, num), (va::VASliceDataBufferType, 100, 1));
            assert_eq!(v.vaDestroyBuffer.unwrap()(ctx, buf), OK);

            let mut formats = [va::VAImageFormat::default(); MAX_IMAGE_FORMATS];
            assert_eq!(
                v.vaQueryImageFormats.unwrap()(ctx, formats.as_mut_ptr(), &mut n),
                OK
            );
            assert_eq!(n, 2);
            let mut image: va::VAImage = std::mem::zeroed();
            assert_eq!(
                v.vaCreateImage.unwrap()(ctx, &mut formats[0], 64, 64, &mut image),
                OK
            );
            assert_eq!(v.vaDestroyImage.unwrap()(ctx, image.image_id), OK);

            let mut un = 9;
            assert_eq!(
                v.vaQuerySubpictureFormats.unwrap()(ctx, null_mut(), null_mut(), &mut un),
                OK
            );
            assert_eq!(un, 0);
            assert_eq!(
                v.vaQueryDisplayAttributes.unwrap()(ctx, null_mut(), &mut n),
                OK
            );
            assert_eq!(n, 0);

            assert_eq!(v.vaDestroyContext.unwrap()(ctx, context), OK);
            assert_eq!(
                v.vaDestroySurfaces.unwrap()(ctx, surfaces.as_mut_ptr(), 4),
                OK
            );
            assert_eq!(v.vaDestroyConfig.unwrap()(ctx, config), OK);
            assert_eq!(v.vaTerminate.unwrap()(ctx), OK);
            assert!(l.ctx.pDriverData.is_null());
            assert_eq!(v.vaTerminate.unwrap()(ctx), Error::INVALID_DISPLAY.status());
            assert_eq!(
                v.vaDestroyConfig.unwrap()(ctx, config),
                Error::INVALID_DISPLAY.status()
            );
        }
    }

    #[test]
    fn bad_pointers_counts_and_ids_are_errors() {
        let mut l = FakeLibva::installed();
        let ctx = l.ptr();
        let v = *l.vt();
        let invalid_param = Error::INVALID_PARAMETER.status();
        // SAFETY (test): pointers that are NULL or valid; the driver must check the NULL ones.
        unsafe {
            assert_eq!(
                v.vaQueryConfigProfiles.unwrap()(null_mut(), null_mut(), null_mut()),
                Error::INVALID_DISPLAY.status()
            );
            let mut bare = FakeLibva::new();
            assert_eq!(
                v.vaDestroyConfig.unwrap()(bare.ptr(), 1),
                Error::INVALID_DISPLAY.status()
            );
            assert_eq!(
                v.vaQueryConfigProfiles.unwrap()(ctx, null_mut(), null_mut()),
                invalid_param
            );
            let mut n = 0;
            assert_eq!(
                v.vaQueryConfigProfiles.unwrap()(ctx, null_mut(), &mut n),
                invalid_param
            );
            assert_eq!(
                v.vaGetConfigAttributes.unwrap()(
                    ctx,
                    va::VAProfileVP9Profile0,
                    va::VAEntrypointVLD,
                    null_mut(),
                    2
                ),
                invalid_param
            );
            assert_eq!(
                v.vaGetConfigAttributes.unwrap()(
                    ctx,
                    va::VAProfileVP9Profile0,
                    va::VAEntrypointVLD,
                    null_mut(),
                    -1
                ),
                invalid_param
            );
            // No attributes with a NULL list is fine.
            assert_eq!(
                v.vaGetConfigAttributes.unwrap()(
                    ctx,
                    va::VAProfileVP9Profile0,
                    va::VAEntrypointVLD,
                    null_mut(),
                    0
                ),
                OK
            );
            assert_eq!(
                v.vaCreateConfig.unwrap()(
                    ctx,
                    va::VAProfileVP9Profile0,
                    va::VAEntrypointVLD,
                    null_mut(),
                    0,
                    null_mut()
                ),
                invalid_param
            );
            assert_eq!(
                v.vaCreateSurfaces.unwrap()(
                    ctx,
                    -5,
                    10,
                    va::VA_RT_FORMAT_YUV420 as c_int,
                    1,
                    &mut n as *mut c_int as *mut u32
                ),
                invalid_param
            );
            assert_eq!(
                v.vaMapBuffer.unwrap()(ctx, 0x4000_0001, null_mut()),
                invalid_param
            );
            let mut p: *mut c_void = null_mut();
            assert_eq!(
                v.vaMapBuffer.unwrap()(ctx, 0x4000_0001, &mut p),
                Error::INVALID_BUFFER.status()
            );
            assert_eq!(
                v.vaDestroySurfaces.unwrap()(ctx, null_mut(), 3),
                invalid_param
            );
            assert_eq!(
                v.vaSyncSurface.unwrap()(ctx, va::VA_INVALID_SURFACE),
                Error::INVALID_SURFACE.status()
            );
            assert_eq!(
                v.vaDestroyImage.unwrap()(ctx, 0),
                Error::INVALID_IMAGE.status()
            );
            assert_eq!(
                v.vaDestroyContext.unwrap()(ctx, 0x3000_0001),
                Error::INVALID_CONTEXT.status()
            );
            let mut buf = 0;
            assert_eq!(
                v.vaCreateBuffer.unwrap()(
                    ctx,
                    1,
                    va::VASliceDataBufferType,
                    u32::MAX,
                    u32::MAX,
                    null_mut(),
                    &mut buf
                ),
                Error::ALLOCATION_FAILED.status()
            );
            assert_eq!(
                v.vaExportSurfaceHandle.unwrap()(
                    ctx,
                    0x3000_0001,
                    va::VA_SURFACE_ATTRIB_MEM_TYPE_DRM_PRIME,
                    0,
                    null_mut()
                ),
                Error::UNSUPPORTED_MEMORY_TYPE.status()
            );
            assert_eq!(
                v.vaPutSurface.unwrap()(
                    ctx,
                    0,
                    null_mut(),
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    null_mut(),
                    0,
                    0
                ),
                Error::UNIMPLEMENTED.status()
            );
            assert_eq!(
                v.vaCreateSubpicture.unwrap()(ctx, 0, null_mut()),
                Error::UNIMPLEMENTED.status()
            );
        }
        let _ = null::<u8>();
    }

    #[test]
    fn panics_stay_in_rust() {
        let mut l = FakeLibva::installed();
        MESSAGES.with(|m| m.borrow_mut().clear());
        let status = call(l.ptr(), "vaTest", |_| panic!("boom"));
        assert_eq!(status, Error::OPERATION_FAILED.status());
        let messages = MESSAGES.with(|m| m.borrow().clone());
        assert_eq!(
            messages,
            [(
                true,
                "daedalus: vaTest: internal error (panic)\n".to_string()
            )]
        );
        // The driver still works.
        assert_eq!(
            call(l.ptr(), "vaTest", |d| d.objects().configs.get(1).map(drop)),
            Error::INVALID_CONFIG.status()
        );
    }

    #[test]
    fn messages_go_to_libva() {
        let mut l = FakeLibva::new();
        MESSAGES.with(|m| m.borrow_mut().clear());
        // SAFETY (test): a live context.
        unsafe {
            message(l.ptr(), false, "hello");
            message(l.ptr(), true, "bad\0news");
        }
        let messages = MESSAGES.with(|m| m.borrow().clone());
        assert_eq!(
            messages,
            [
                (false, "daedalus: hello\n".to_string()),
                (true, "daedalus: bad news\n".to_string())
            ]
        );
    }
}
