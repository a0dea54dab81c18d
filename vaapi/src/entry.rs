// SPDX-License-Identifier: GPL-2.0
//! The C side of the driver: `__vaDriverInit_1_17` and every entry of the vtable.
//!
//! Each entry (defined by `vtable!`, which names it once, as its field of `VADriverVTable`)
//! does the same three things before the driver (`driver.rs`, safe Rust) sees the call: it
//! runs inside `catch_unwind`, so a Rust panic becomes `VA_STATUS_ERROR_OPERATION_FAILED` and
//! never unwinds into C; it checks the context (`pDriverData` set by our init); and it turns
//! every pointer it gets into a reference or slice only after checking it (NULL, negative
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

/// Defines the entries of the vtable, and `fill_vtable`, which installs them and
/// `vaTerminate`. `fn vaName(args) |d| { body }` is the entry of field `vaName` of
/// `VADriverVTable`: an `unsafe extern "C" fn` of libva's context and `args` that runs `body`
/// on the display's driver `d` through [`call`], under its VA name. So every entry checks its
/// context and keeps panics from C, and is named once.
macro_rules! vtable {
    ($(fn $name:ident($($arg:ident: $ty:ty),* $(,)?) |$d:tt| $body:block)*) => {
        $(
            #[allow(non_snake_case, clippy::too_many_arguments)]
            unsafe extern "C" fn $name(ctx: VADriverContextP, $($arg: $ty),*) -> VAStatus {
                call(ctx, stringify!($name), |$d| $body)
            }
        )*

        /// Every entry of the vtable.
        fn fill_vtable(v: &mut va::VADriverVTable) {
            v.vaTerminate = Some(terminate);
            $(v.$name = Some($name);)*
        }
    };
}

/// A count libva passes as a C int.
fn count(n: c_int) -> Result<usize> {
    usize::try_from(n).map_err(|_| Error::INVALID_PARAMETER)
}

/// A size or position libva passes as a C int.
fn unsigned(v: c_int) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::INVALID_PARAMETER)
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

/// Writes what `f` gives to the out-parameter `p`, which is checked first: NULL is
/// `INVALID_PARAMETER`, and `f` does not run.
///
/// # Safety
///
/// As [`out`] for `p`.
unsafe fn give<T>(p: *mut T, f: impl FnOnce() -> Result<T>) -> Result<()> {
    // SAFETY: the caller's contract.
    let p = unsafe { out(p) }?;
    *p = f()?;
    Ok(())
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

/// `vaTerminate`: frees the driver (not through [`call`], which borrows it).
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

// Every other entry. The pointers are libva's arrays and the client's arrays and
// out-parameters, of the lengths the VA-API gives them: each is checked (NULL, negative
// counts) by `out`, `slice`, `slice_mut`, `write_list` or `give` before the driver sees it.
vtable! {
    // Configs.
    fn vaQueryConfigProfiles(profile_list: *mut va::VAProfile, num_profiles: *mut c_int) |d| {
        let profiles = d.query_config_profiles();
        // SAFETY: libva's arrays hold max_profiles entries.
        unsafe { write_list(&profiles, profile_list, MAX_PROFILES, num_profiles) }
    }

    fn vaQueryConfigEntrypoints(
        profile: va::VAProfile,
        entrypoint_list: *mut va::VAEntrypoint,
        num_entrypoints: *mut c_int,
    ) |d| {
        let list = d.query_config_entrypoints(profile)?;
        // SAFETY: libva's arrays hold max_entrypoints entries.
        unsafe { write_list(&list, entrypoint_list, MAX_ENTRYPOINTS, num_entrypoints) }
    }

    fn vaGetConfigAttributes(
        profile: va::VAProfile,
        entrypoint: va::VAEntrypoint,
        attrib_list: *mut va::VAConfigAttrib,
        num_attribs: c_int,
    ) |d| {
        // SAFETY: the client's array of `num_attribs` attributes.
        let attribs = unsafe { slice_mut(attrib_list, count(num_attribs)?) }?;
        d.get_config_attributes(profile, entrypoint, attribs)
    }

    fn vaCreateConfig(
        profile: va::VAProfile,
        entrypoint: va::VAEntrypoint,
        attrib_list: *mut va::VAConfigAttrib,
        num_attribs: c_int,
        config_id: *mut va::VAConfigID,
    ) |d| {
        // SAFETY: the client's array of `num_attribs` attributes.
        let attribs = unsafe { slice(attrib_list, count(num_attribs)?) }?;
        // SAFETY: the client's out-parameter.
        unsafe { give(config_id, || d.create_config(profile, entrypoint, attribs)) }
    }

    fn vaDestroyConfig(config_id: va::VAConfigID) |d| {
        d.destroy_config(config_id)
    }

    fn vaQueryConfigAttributes(
        config_id: va::VAConfigID,
        profile: *mut va::VAProfile,
        entrypoint: *mut va::VAEntrypoint,
        attrib_list: *mut va::VAConfigAttrib,
        num_attribs: *mut c_int,
    ) |d| {
        let (p, e, attribs) = d.query_config_attributes(config_id)?;
        // SAFETY: the client's out-parameters; the array holds max_attributes entries.
        unsafe {
            *out(profile)? = p;
            *out(entrypoint)? = e;
            write_list(&attribs, attrib_list, MAX_ATTRIBUTES, num_attribs)
        }
    }

    // Surfaces.
    fn vaCreateSurfaces(
        width: c_int,
        height: c_int,
        format: c_int,
        num_surfaces: c_int,
        surfaces: *mut va::VASurfaceID,
    ) |d| {
        let n = count(num_surfaces)?;
        // SAFETY: the client's array of `num_surfaces` ids.
        let out_ids = unsafe { slice_mut(surfaces, n) }?;
        let (width, height) = (unsigned(width)?, unsigned(height)?);
        // The render-target format: the bits of the C int.
        let ids = d.create_surfaces(format as u32, width, height, n as u32, &[])?;
        out_ids.copy_from_slice(&ids);
        Ok(())
    }

    fn vaCreateSurfaces2(
        format: c_uint,
        width: c_uint,
        height: c_uint,
        surfaces: *mut va::VASurfaceID,
        num_surfaces: c_uint,
        attrib_list: *mut va::VASurfaceAttrib,
        num_attribs: c_uint,
    ) |d| {
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
    }

    fn vaDestroySurfaces(surface_list: *mut va::VASurfaceID, num_surfaces: c_int) |d| {
        // SAFETY: the client's array of `num_surfaces` ids.
        d.destroy_surfaces(unsafe { slice(surface_list, count(num_surfaces)?) }?)
    }

    fn vaQuerySurfaceAttributes(
        config: va::VAConfigID,
        attrib_list: *mut va::VASurfaceAttrib,
        num_attribs: *mut c_uint,
    ) |d| {
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
    }

    // Deprecated by vaQuerySurfaceAttributes.
    fn vaGetSurfaceAttributes(
        _config: va::VAConfigID,
        _attrib_list: *mut va::VASurfaceAttrib,
        _num_attribs: c_uint,
    ) |_| {
        Err(Error::UNIMPLEMENTED)
    }

    // Contexts.
    fn vaCreateContext(
        config_id: va::VAConfigID,
        picture_width: c_int,
        picture_height: c_int,
        flag: c_int,
        render_targets: *mut va::VASurfaceID,
        num_render_targets: c_int,
        context: *mut va::VAContextID,
    ) |d| {
        // SAFETY: the client's array of `num_render_targets` ids.
        let targets = unsafe { slice(render_targets, count(num_render_targets)?) }?;
        // SAFETY: the client's out-parameter.
        unsafe {
            give(context, || {
                let (width, height) = (unsigned(picture_width)?, unsigned(picture_height)?);
                d.create_context(config_id, width, height, flag, targets)
            })
        }
    }

    fn vaDestroyContext(context: va::VAContextID) |d| {
        d.destroy_context(context)
    }

    // Buffers.
    fn vaCreateBuffer(
        context: va::VAContextID,
        type_: va::VABufferType,
        size: c_uint,
        num_elements: c_uint,
        data: *mut c_void,
        buf_id: *mut va::VABufferID,
    ) |d| {
        let len = u64::from(size) * u64::from(num_elements);
        if len > crate::buffer::MAX_BYTES {
            return Err(Error::ALLOCATION_FAILED);
        }
        let bytes = if data.is_null() {
            None
        } else {
            // SAFETY: the client's `size * num_elements` bytes.
            Some(unsafe { slice(data.cast::<u8>().cast_const(), len as usize) }?)
        };
        // SAFETY: the client's out-parameter.
        unsafe { give(buf_id, || d.create_buffer(context, type_, size, num_elements, bytes)) }
    }

    fn vaBufferSetNumElements(buf_id: va::VABufferID, num_elements: c_uint) |d| {
        d.buffer_set_num_elements(buf_id, num_elements)
    }

    fn vaMapBuffer(buf_id: va::VABufferID, pbuf: *mut *mut c_void) |d| {
        // SAFETY: the client's out-parameter.
        unsafe { give(pbuf, || Ok(d.map_buffer(buf_id)?.cast())) }
    }

    fn vaUnmapBuffer(buf_id: va::VABufferID) |d| {
        d.unmap_buffer(buf_id)
    }

    fn vaDestroyBuffer(buffer_id: va::VABufferID) |d| {
        d.destroy_buffer(buffer_id)
    }

    fn vaBufferInfo(
        buf_id: va::VABufferID,
        type_: *mut va::VABufferType,
        size: *mut c_uint,
        num_elements: *mut c_uint,
    ) |d| {
        let (t, s, n) = d.buffer_info(buf_id)?;
        // SAFETY: the client's out-parameters.
        unsafe {
            *out(type_)? = t;
            *out(size)? = s;
            *out(num_elements)? = n;
        }
        Ok(())
    }

    // Decoding.
    fn vaBeginPicture(context: va::VAContextID, render_target: va::VASurfaceID) |d| {
        d.begin_picture(context, render_target)
    }

    fn vaRenderPicture(
        context: va::VAContextID,
        buffers: *mut va::VABufferID,
        num_buffers: c_int,
    ) |d| {
        // SAFETY: the client's array of `num_buffers` ids.
        d.render_picture(context, unsafe { slice(buffers, count(num_buffers)?) }?)
    }

    fn vaEndPicture(context: va::VAContextID) |d| {
        d.end_picture(context)
    }

    fn vaSyncSurface(render_target: va::VASurfaceID) |d| {
        d.sync_surface(render_target, None)
    }

    fn vaSyncSurface2(surface: va::VASurfaceID, timeout_ns: u64) |d| {
        // VA_TIMEOUT_INFINITE is 0xFFFFFFFFFFFFFFFF (bindgen makes the macro an i32 -1).
        let timeout = (timeout_ns != u64::MAX).then(|| std::time::Duration::from_nanos(timeout_ns));
        d.sync_surface(surface, timeout)
    }

    fn vaQuerySurfaceStatus(
        render_target: va::VASurfaceID,
        status: *mut va::VASurfaceStatus,
    ) |d| {
        // SAFETY: the client's out-parameter.
        unsafe { give(status, || d.query_surface_status(render_target)) }
    }

    fn vaQuerySurfaceError(
        render_target: va::VASurfaceID,
        _error_status: VAStatus,
        _error_info: *mut *mut c_void,
    ) |d| {
        d.query_surface_status(render_target)?;
        // The driver reports no macroblock-level error information.
        Err(Error::UNIMPLEMENTED)
    }

    fn vaExportSurfaceHandle(
        surface_id: va::VASurfaceID,
        mem_type: u32,
        flags: u32,
        descriptor: *mut c_void,
    ) |d| {
        if mem_type != va::VA_SURFACE_ATTRIB_MEM_TYPE_DRM_PRIME_2 {
            return Err(Error::UNSUPPORTED_MEMORY_TYPE);
        }
        // SAFETY: for DRM_PRIME_2 the descriptor is a VADRMPRIMESurfaceDescriptor.
        let desc = unsafe { out(descriptor.cast::<va::VADRMPRIMESurfaceDescriptor>()) }?;
        *desc = d.export_surface(surface_id, flags)?;
        Ok(())
    }

    // No window system output: players export surfaces or read them back.
    fn vaPutSurface(
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
    ) |_| {
        Err(Error::UNIMPLEMENTED)
    }

    // Deprecated: vaDeriveImage / vaExportSurfaceHandle.
    fn vaLockSurface(
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
    ) |_| {
        Err(Error::UNIMPLEMENTED)
    }

    fn vaUnlockSurface(_surface: va::VASurfaceID) |_| {
        Err(Error::UNIMPLEMENTED)
    }

    // Images.
    fn vaQueryImageFormats(format_list: *mut va::VAImageFormat, num_formats: *mut c_int) |d| {
        let formats = d.query_image_formats();
        // SAFETY: libva's array holds max_image_formats entries.
        unsafe { write_list(&formats, format_list, MAX_IMAGE_FORMATS, num_formats) }
    }

    fn vaCreateImage(
        format: *mut va::VAImageFormat,
        width: c_int,
        height: c_int,
        image: *mut va::VAImage,
    ) |d| {
        // SAFETY: the client's format.
        let format = unsafe { out(format) }?;
        // SAFETY: the client's out-parameter.
        unsafe { give(image, || d.create_image(format, unsigned(width)?, unsigned(height)?)) }
    }

    fn vaDeriveImage(surface: va::VASurfaceID, image: *mut va::VAImage) |d| {
        // SAFETY: the client's out-parameter.
        unsafe { give(image, || d.derive_image(surface)) }
    }

    fn vaDestroyImage(image: va::VAImageID) |d| {
        d.destroy_image(image)
    }

    // NV12 and P010 have no palette.
    fn vaSetImagePalette(_image: va::VAImageID, _palette: *mut c_uchar) |_| {
        Err(Error::UNIMPLEMENTED)
    }

    fn vaGetImage(
        surface: va::VASurfaceID,
        x: c_int,
        y: c_int,
        width: c_uint,
        height: c_uint,
        image: va::VAImageID,
    ) |d| {
        d.get_image(surface, unsigned(x)?, unsigned(y)?, width, height, image)
    }

    // A decoder's surfaces are written by the decoder only.
    fn vaPutImage(
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
    ) |_| {
        Err(Error::UNIMPLEMENTED)
    }

    // Subpictures: none; none can be created, so no id names one.
    fn vaQuerySubpictureFormats(
        _format_list: *mut va::VAImageFormat,
        _flags: *mut c_uint,
        num_formats: *mut c_uint,
    ) |_| {
        // SAFETY: the client's out-parameter.
        *unsafe { out(num_formats) }? = 0;
        Ok(())
    }

    fn vaCreateSubpicture(_image: va::VAImageID, _subpicture: *mut va::VASubpictureID) |_| {
        Err(Error::UNIMPLEMENTED)
    }

    fn vaDestroySubpicture(_subpicture: va::VASubpictureID) |_| {
        Err(Error::INVALID_SUBPICTURE)
    }

    fn vaSetSubpictureImage(_subpicture: va::VASubpictureID, _image: va::VAImageID) |_| {
        Err(Error::INVALID_SUBPICTURE)
    }

    fn vaSetSubpictureChromakey(
        _subpicture: va::VASubpictureID,
        _chromakey_min: c_uint,
        _chromakey_max: c_uint,
        _chromakey_mask: c_uint,
    ) |_| {
        Err(Error::INVALID_SUBPICTURE)
    }

    fn vaSetSubpictureGlobalAlpha(_subpicture: va::VASubpictureID, _global_alpha: f32) |_| {
        Err(Error::INVALID_SUBPICTURE)
    }

    fn vaAssociateSubpicture(
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
    ) |_| {
        Err(Error::INVALID_SUBPICTURE)
    }

    fn vaDeassociateSubpicture(
        _subpicture: va::VASubpictureID,
        _target_surfaces: *mut va::VASurfaceID,
        _num_surfaces: c_int,
    ) |_| {
        Err(Error::INVALID_SUBPICTURE)
    }

    // Display attributes: none.
    fn vaQueryDisplayAttributes(
        _attr_list: *mut va::VADisplayAttribute,
        num_attributes: *mut c_int,
    ) |_| {
        // SAFETY: the client's out-parameter.
        *unsafe { out(num_attributes) }? = 0;
        Ok(())
    }

    fn vaGetDisplayAttributes(attr_list: *mut va::VADisplayAttribute, num_attributes: c_int) |_| {
        // SAFETY: the client's array of `num_attributes` entries.
        let attrs = unsafe { slice_mut(attr_list, count(num_attributes)?) }?;
        // The driver has no display attribute: each is marked unsupported.
        for a in attrs {
            a.flags = va::VA_DISPLAY_ATTRIB_NOT_SUPPORTED;
        }
        Ok(())
    }

    fn vaSetDisplayAttributes(
        _attr_list: *mut va::VADisplayAttribute,
        num_attributes: c_int,
    ) |_| {
        if count(num_attributes)? == 0 {
            Ok(())
        } else {
            Err(Error::ATTR_NOT_SUPPORTED)
        }
    }

    // Neither buffer handles nor multi-frame contexts (an encoding feature), nor the buffers
    // of vaCreateBuffer2, processing rates (video processing), vaCopy.
    fn vaAcquireBufferHandle(_buf_id: va::VABufferID, _buf_info: *mut va::VABufferInfo) |_| {
        Err(Error::UNIMPLEMENTED)
    }

    fn vaReleaseBufferHandle(_buf_id: va::VABufferID) |_| {
        Err(Error::UNIMPLEMENTED)
    }

    fn vaCreateMFContext(_mfe_context: *mut va::VAMFContextID) |_| {
        Err(Error::UNIMPLEMENTED)
    }

    fn vaMFAddContext(_mf_context: va::VAMFContextID, _context: va::VAContextID) |_| {
        Err(Error::UNIMPLEMENTED)
    }

    fn vaMFReleaseContext(_mf_context: va::VAMFContextID, _context: va::VAContextID) |_| {
        Err(Error::UNIMPLEMENTED)
    }

    fn vaMFSubmit(
        _mf_context: va::VAMFContextID,
        _contexts: *mut va::VAContextID,
        _num_contexts: c_int,
    ) |_| {
        Err(Error::UNIMPLEMENTED)
    }

    fn vaCreateBuffer2(
        _context: va::VAContextID,
        _type_: va::VABufferType,
        _width: c_uint,
        _height: c_uint,
        _unit_size: *mut c_uint,
        _pitch: *mut c_uint,
        _buf_id: *mut va::VABufferID,
    ) |_| {
        Err(Error::UNIMPLEMENTED)
    }

    fn vaQueryProcessingRate(
        _config_id: va::VAConfigID,
        _proc_buf: *mut va::VAProcessingRateParameter,
        _processing_rate: *mut c_uint,
    ) |_| {
        Err(Error::UNIMPLEMENTED)
    }

    // Buffers are only ever written by the client: there is nothing to wait for (and libva
    // uses it for coded buffers of encoders).
    fn vaSyncBuffer(_buf_id: va::VABufferID, _timeout_ns: u64) |_| {
        Err(Error::UNIMPLEMENTED)
    }

    fn vaCopy(
        _dst: *mut va::VACopyObject,
        _src: *mut va::VACopyObject,
        _option: va::VACopyOption,
    ) |_| {
        Err(Error::UNIMPLEMENTED)
    }
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
    use std::ptr::null_mut;

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

    /// Calls entry `$entry` of vtable `$v` with `$arg`s and asserts that it returns `$want`;
    /// a failure names the call (and `$what`, formatted, when given).
    macro_rules! assert_status {
        ($want:expr, $v:ident.$entry:ident($($arg:expr),* $(,)?)) => {
            assert_status!($want, $v.$entry($($arg),*), "")
        };
        ($want:expr, $v:ident.$entry:ident($($arg:expr),* $(,)?), $($what:tt)+) => {{
            let entry = $v.$entry.expect(concat!(stringify!($entry), " is NULL"));
            let status = entry($($arg),*);
            assert_eq!(
                status,
                $want,
                "{}({}) {}",
                stringify!($entry),
                stringify!($($arg),*),
                format_args!($($what)+)
            );
        }};
    }

    /// The names of the NULL `entries` of vtable `v`.
    macro_rules! null_entries {
        ($v:ident, $($entry:ident),* $(,)?) => {{
            let mut null: Vec<&str> = Vec::new();
            $(if $v.$entry.is_none() {
                null.push(stringify!($entry));
            })*
            null
        }};
    }

    #[test]
    fn vtable_has_every_entry() {
        let l = FakeLibva::installed();
        let v = l.vt();
        // Every entry point of VA-API 1.17 (the ones va_openDriver requires and the rest).
        let missing = null_entries!(
            v,
            vaTerminate,
            vaQueryConfigProfiles,
            vaQueryConfigEntrypoints,
            vaGetConfigAttributes,
            vaCreateConfig,
            vaDestroyConfig,
            vaQueryConfigAttributes,
            vaCreateSurfaces,
            vaDestroySurfaces,
            vaCreateContext,
            vaDestroyContext,
            vaCreateBuffer,
            vaBufferSetNumElements,
            vaMapBuffer,
            vaUnmapBuffer,
            vaDestroyBuffer,
            vaBeginPicture,
            vaRenderPicture,
            vaEndPicture,
            vaSyncSurface,
            vaQuerySurfaceStatus,
            vaQuerySurfaceError,
            vaPutSurface,
            vaQueryImageFormats,
            vaCreateImage,
            vaDeriveImage,
            vaDestroyImage,
            vaSetImagePalette,
            vaGetImage,
            vaPutImage,
            vaQuerySubpictureFormats,
            vaCreateSubpicture,
            vaDestroySubpicture,
            vaSetSubpictureImage,
            vaSetSubpictureChromakey,
            vaSetSubpictureGlobalAlpha,
            vaAssociateSubpicture,
            vaDeassociateSubpicture,
            vaQueryDisplayAttributes,
            vaGetDisplayAttributes,
            vaSetDisplayAttributes,
            vaBufferInfo,
            vaLockSurface,
            vaUnlockSurface,
            vaGetSurfaceAttributes,
            vaCreateSurfaces2,
            vaQuerySurfaceAttributes,
            vaAcquireBufferHandle,
            vaReleaseBufferHandle,
            vaCreateMFContext,
            vaMFAddContext,
            vaMFReleaseContext,
            vaMFSubmit,
            vaCreateBuffer2,
            vaQueryProcessingRate,
            vaExportSurfaceHandle,
            vaSyncSurface2,
            vaSyncBuffer,
            vaCopy,
        );
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
            assert_status!(
                OK,
                v.vaQueryConfigProfiles(ctx, profiles.as_mut_ptr(), &mut n)
            );
            assert_eq!(n, 6);
            assert!(profiles.contains(&va::VAProfileVP9Profile2));
            let mut eps = [0; MAX_ENTRYPOINTS];
            let (vp9_2, vld) = (va::VAProfileVP9Profile2, va::VAEntrypointVLD);
            assert_status!(
                OK,
                v.vaQueryConfigEntrypoints(ctx, va::VAProfileH264High, eps.as_mut_ptr(), &mut n)
            );
            assert_eq!((n, eps[0]), (1, vld));
            let mut attr = va::VAConfigAttrib {
                type_: va::VAConfigAttribRTFormat,
                value: 0,
            };
            assert_status!(OK, v.vaGetConfigAttributes(ctx, vp9_2, vld, &mut attr, 1));
            assert_eq!(attr.value, va::VA_RT_FORMAT_YUV420_10);

            let mut config = 0;
            assert_status!(
                OK,
                v.vaCreateConfig(ctx, vp9_2, vld, &mut attr, 1, &mut config)
            );
            let (mut p, mut e) = (0, 0);
            let mut attrs = [va::VAConfigAttrib::default(); MAX_ATTRIBUTES];
            assert_status!(
                OK,
                v.vaQueryConfigAttributes(ctx, config, &mut p, &mut e, attrs.as_mut_ptr(), &mut n)
            );
            assert_eq!((p, e, n as usize), (vp9_2, vld, MAX_ATTRIBUTES));

            // vaQuerySurfaceAttributes: count first, then fill; too small a list says so.
            let mut count = 0;
            assert_status!(
                OK,
                v.vaQuerySurfaceAttributes(ctx, config, null_mut(), &mut count)
            );
            assert!(count > 0);
            let mut list: Vec<va::VASurfaceAttrib> =
                (0..count).map(|_| std::mem::zeroed()).collect();
            let mut small = count - 1;
            assert_status!(
                Error::MAX_NUM_EXCEEDED.status(),
                v.vaQuerySurfaceAttributes(ctx, config, list.as_mut_ptr(), &mut small)
            );
            assert_eq!(small, count);
            assert_status!(
                OK,
                v.vaQuerySurfaceAttributes(ctx, config, list.as_mut_ptr(), &mut count)
            );
            assert_eq!(list[0].type_, va::VASurfaceAttribPixelFormat);

            let mut surfaces = [0; 4];
            let s = surfaces.as_mut_ptr();
            let rt_format = va::VA_RT_FORMAT_YUV420_10;
            assert_status!(
                OK,
                v.vaCreateSurfaces2(ctx, rt_format, 1920, 1080, s, 4, null_mut(), 0)
            );
            let mut context = 0;
            let progressive = va::VA_PROGRESSIVE as c_int;
            assert_status!(
                OK,
                v.vaCreateContext(ctx, config, 1920, 1080, progressive, s, 4, &mut context)
            );
            let mut status = 0;
            assert_status!(OK, v.vaQuerySurfaceStatus(ctx, surfaces[0], &mut status));
            assert_eq!(status, va::VASurfaceReady);

            let mut data = [7u8; 100];
            let (slice_data, mut buf) = (va::VASliceDataBufferType, 0);
            let d = data.as_mut_ptr().cast();
            assert_status!(
                OK,
                v.vaCreateBuffer(ctx, context, slice_data, 100, 1, d, &mut buf)
            );
            let mut mapped: *mut c_void = null_mut();
            assert_status!(OK, v.vaMapBuffer(ctx, buf, &mut mapped));
            assert_eq!(*mapped.cast::<u8>().add(99), 7);
            assert_status!(OK, v.vaUnmapBuffer(ctx, buf));
            let (mut t, mut size, mut num) = (0, 0, 0);
            assert_status!(OK, v.vaBufferInfo(ctx, buf, &mut t, &mut size, &mut num));
            assert_eq!((t, size, num), (slice_data, 100, 1));
            assert_status!(OK, v.vaDestroyBuffer(ctx, buf));

            let mut formats = [va::VAImageFormat::default(); MAX_IMAGE_FORMATS];
            assert_status!(OK, v.vaQueryImageFormats(ctx, formats.as_mut_ptr(), &mut n));
            assert_eq!(n, 2);
            let mut image: va::VAImage = std::mem::zeroed();
            assert_status!(
                OK,
                v.vaCreateImage(ctx, &mut formats[0], 64, 64, &mut image)
            );
            assert_status!(OK, v.vaDestroyImage(ctx, image.image_id));

            let mut un = 9;
            assert_status!(
                OK,
                v.vaQuerySubpictureFormats(ctx, null_mut(), null_mut(), &mut un)
            );
            assert_eq!(un, 0);
            assert_status!(OK, v.vaQueryDisplayAttributes(ctx, null_mut(), &mut n));
            assert_eq!(n, 0);

            assert_status!(OK, v.vaDestroyContext(ctx, context));
            assert_status!(OK, v.vaDestroySurfaces(ctx, s, 4));
            assert_status!(OK, v.vaDestroyConfig(ctx, config));
            assert_status!(OK, v.vaTerminate(ctx));
            assert!(l.ctx.pDriverData.is_null());
            // The display is gone.
            let invalid_display = Error::INVALID_DISPLAY.status();
            assert_status!(invalid_display, v.vaTerminate(ctx));
            assert_status!(invalid_display, v.vaDestroyConfig(ctx, config));
        }
    }

    #[test]
    fn bad_pointers_counts_and_ids_are_errors() {
        let mut l = FakeLibva::installed();
        let ctx = l.ptr();
        let v = *l.vt();
        let mut bare = FakeLibva::new();
        let (invalid_display, invalid_param) = (
            Error::INVALID_DISPLAY.status(),
            Error::INVALID_PARAMETER.status(),
        );
        let (vp9_0, vld) = (va::VAProfileVP9Profile0, va::VAEntrypointVLD);
        let (mut n, mut p, mut buf) = (0, null_mut::<c_void>(), 0);
        // SAFETY (test): pointers that are NULL or valid; the driver must check the NULL ones.
        unsafe {
            // No context, a context without the driver.
            assert_status!(
                invalid_display,
                v.vaQueryConfigProfiles(null_mut(), null_mut(), null_mut())
            );
            assert_status!(invalid_display, v.vaDestroyConfig(bare.ptr(), 1));
            // NULL out-parameters.
            assert_status!(
                invalid_param,
                v.vaQueryConfigProfiles(ctx, null_mut(), null_mut())
            );
            assert_status!(
                invalid_param,
                v.vaQueryConfigProfiles(ctx, null_mut(), &mut n)
            );
            assert_status!(
                invalid_param,
                v.vaCreateConfig(ctx, vp9_0, vld, null_mut(), 0, null_mut())
            );
            assert_status!(invalid_param, v.vaMapBuffer(ctx, 0x4000_0001, null_mut()));
            // A NULL list: an error with attributes to fill or a negative count, fine with none.
            for (count, want) in [(2, invalid_param), (-1, invalid_param), (0, OK)] {
                assert_status!(
                    want,
                    v.vaGetConfigAttributes(ctx, vp9_0, vld, null_mut(), count),
                    "with {count} attributes"
                );
            }
            assert_status!(invalid_param, v.vaDestroySurfaces(ctx, null_mut(), 3));
            // A negative size.
            let rt_format = va::VA_RT_FORMAT_YUV420 as c_int;
            let surfaces = &mut n as *mut c_int as *mut u32;
            assert_status!(
                invalid_param,
                v.vaCreateSurfaces(ctx, -5, 10, rt_format, 1, surfaces)
            );
            // Ids of no object (0x4...: a buffer's), of none at all, of the wrong kind (0x3...:
            // a surface's).
            assert_status!(
                Error::INVALID_BUFFER.status(),
                v.vaMapBuffer(ctx, 0x4000_0001, &mut p)
            );
            assert_status!(
                Error::INVALID_SURFACE.status(),
                v.vaSyncSurface(ctx, va::VA_INVALID_SURFACE)
            );
            assert_status!(Error::INVALID_IMAGE.status(), v.vaDestroyImage(ctx, 0));
            assert_status!(
                Error::INVALID_CONTEXT.status(),
                v.vaDestroyContext(ctx, 0x3000_0001)
            );
            // Too large, no such memory type, no such feature.
            let slice_data = va::VASliceDataBufferType;
            assert_status!(
                Error::ALLOCATION_FAILED.status(),
                v.vaCreateBuffer(ctx, 1, slice_data, u32::MAX, u32::MAX, null_mut(), &mut buf)
            );
            let prime = va::VA_SURFACE_ATTRIB_MEM_TYPE_DRM_PRIME;
            assert_status!(
                Error::UNSUPPORTED_MEMORY_TYPE.status(),
                v.vaExportSurfaceHandle(ctx, 0x3000_0001, prime, 0, null_mut())
            );
            let (draw, rects) = (null_mut(), null_mut());
            let unimplemented = Error::UNIMPLEMENTED.status();
            assert_status!(
                unimplemented,
                v.vaPutSurface(ctx, 0, draw, 0, 0, 0, 0, 0, 0, 0, 0, rects, 0, 0)
            );
            assert_status!(unimplemented, v.vaCreateSubpicture(ctx, 0, null_mut()));
        }
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
