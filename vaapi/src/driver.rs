// SPDX-License-Identifier: GPL-2.0
//! The driver behind one VA display (`pDriverData`): the decoder it uses, the VA profiles it
//! offers, and the objects clients create, with every operation of the vtable in safe Rust
//! (`entry.rs` is the C side).
//!
//! Threading: libva does not serialize calls, and players call from several threads (FFmpeg's
//! decoding threads, mpv's render thread). Every object lives in [`Objects`] behind one mutex,
//! held only for the bookkeeping of a call.

use std::ffi::CString;
use std::sync::{Mutex, MutexGuard};

use daedalus_client::media::RequestWait;
use daedalus_proto::formats::{BitDepth, Codec};

use crate::av1::Av1;
use crate::buffer::Buffer;
use crate::caps::{self, Profile, ProfileCaps};
use crate::config::Config;
use crate::context::{CodecState, Context, Picture, Rendered};
use crate::decoder::{Decoder, Done, TIMEOUT};
use crate::device::Device;
use crate::h264::H264;
use crate::heap::{BufferKind, ConfigKind, ContextKind, Heap, ImageKind, SurfaceKind};
use crate::image::{self, Image, Layout};
use crate::mapped::payloads;
use crate::status::{Error, Result};
use crate::surface::{self, Binding, State, Surface};
use crate::va;
use crate::vp9::Vp9;

// libva calls from any thread: the driver behind `pDriverData` is shared between them.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<Driver>();
};

/// Every object of a display.
#[derive(Default)]
pub struct Objects {
    /// Configs.
    pub configs: Heap<ConfigKind, Config>,
    /// Contexts.
    pub contexts: Heap<ContextKind, Context>,
    /// Surfaces.
    pub surfaces: Heap<SurfaceKind, Surface>,
    /// Buffers.
    pub buffers: Heap<BufferKind, Buffer>,
    /// Images.
    pub images: Heap<ImageKind, Image>,
    /// The decoders of destroyed contexts, by the id the context had, while surfaces still
    /// hold their pictures: in VA a surface's picture outlives the context that decoded it
    /// (FFmpeg destroys its context at a size change while the last pictures of the old size
    /// wait to be displayed). Dropped when no surface is bound to them any more.
    pub retired: Vec<(u32, Decoder)>,
}

/// The decoder of `context` (the context's, or the one it left when it was destroyed).
fn decoder_mut<'a>(
    contexts: &'a mut Heap<ContextKind, Context>,
    retired: &'a mut [(u32, Decoder)],
    context: u32,
) -> Option<&'a mut Decoder> {
    match contexts.get_mut(context) {
        Ok(c) => c.decoder.as_mut(),
        Err(_) => retired
            .iter_mut()
            .find(|(id, _)| *id == context)
            .map(|(_, d)| d),
    }
}

/// Closes the decoder of `context` (after a failure): its surfaces lose their pictures.
fn close_decoder(
    contexts: &mut Heap<ContextKind, Context>,
    retired: &mut Vec<(u32, Decoder)>,
    surfaces: &mut Heap<SurfaceKind, Surface>,
    context: u32,
) {
    if let Ok(c) = contexts.get_mut(context) {
        c.decoder = None;
    }
    retired.retain(|(id, _)| *id != context);
    forget_decoder(surfaces, context);
}

impl Objects {
    /// The decoder of `context` (see [`decoder_mut`]).
    fn decoder(&self, context: u32) -> Option<&Decoder> {
        match self.contexts.get(context) {
            Ok(c) => c.decoder.as_ref(),
            Err(_) => self
                .retired
                .iter()
                .find(|(id, _)| *id == context)
                .map(|(_, d)| d),
        }
    }

    /// Drops the retired decoders no surface is bound to any more.
    fn prune_retired(&mut self) {
        let surfaces = &self.surfaces;
        self.retired.retain(|(id, _)| {
            surfaces
                .iter()
                .any(|(_, s)| s.binding.is_some_and(|b| b.context == *id))
        });
    }

    /// Inserts an image of `width` x `height` in `layout`, held by `buffer` (of that layout):
    /// the buffer and the image get their ids, the buffer goes again if the image cannot be
    /// inserted. The image as `vaCreateImage` / `vaDeriveImage` return it.
    fn insert_image(
        &mut self,
        buffer: Buffer,
        layout: Layout,
        width: u32,
        height: u32,
        derived_from: Option<u32>,
    ) -> Result<va::VAImage> {
        let buf = self.buffers.insert(buffer)?.raw();
        let image = Image {
            image: layout.image(0, buf, width, height),
            derived_from,
        };
        let id = match self.images.insert(image) {
            Ok(id) => id.raw(),
            Err(e) => {
                let _ = self.buffers.remove(buf);
                return Err(e);
            }
        };
        let image = &mut self.images.get_mut(id)?.image;
        image.image_id = id;
        Ok(*image)
    }
}

/// The driver of one display.
pub struct Driver {
    /// The decoder.
    pub device: Device,
    /// The VA profiles it decodes.
    pub profiles: Vec<ProfileCaps>,
    /// `vaQueryVendorString`.
    pub vendor: CString,
    objects: Mutex<Objects>,
}

impl Driver {
    /// The driver of `device`.
    pub fn new(device: Device) -> Driver {
        let profiles = caps::profiles(&device.codecs);
        let vendor = format!(
            "daedalus VA-API driver {} ({} on {}: {})",
            env!("CARGO_PKG_VERSION"),
            device.driver,
            device.video.display(),
            device.card
        );
        Driver {
            profiles,
            // No NUL in what the kernel and we wrote; if there were, an empty string.
            vendor: CString::new(vendor).unwrap_or_default(),
            device,
            objects: Mutex::new(Objects::default()),
        }
    }

    /// The objects, locked. A call that panicked with the lock held left them as they were
    /// (every operation checks before it changes anything), so a poisoned lock is taken over.
    pub fn objects(&self) -> MutexGuard<'_, Objects> {
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the device does with `profile`.
    fn profile(&self, profile: va::VAProfile) -> Result<&ProfileCaps> {
        let p = Profile::from_va(profile).ok_or(Error::UNSUPPORTED_PROFILE)?;
        self.profiles
            .iter()
            .find(|c| c.profile == p)
            .ok_or(Error::UNSUPPORTED_PROFILE)
    }

    /// The bit depths of the pictures of any profile.
    fn depths(&self) -> Vec<BitDepth> {
        [BitDepth::Eight, BitDepth::Ten]
            .into_iter()
            .filter(|&d| {
                self.profiles
                    .iter()
                    .any(|p| p.depth_of(crate::config::rt_format(d)).is_some())
            })
            .collect()
    }

    /// The largest picture of any profile.
    /// The smallest CAPTURE buffer of the decoders of `depth` pictures (the largest of their
    /// minimums): a smaller surface's pictures sit in a buffer of this size.
    fn min_buffer(&self, depth: BitDepth) -> (u32, u32) {
        self.profiles
            .iter()
            .filter(|p| p.depth_of(crate::config::rt_format(depth)).is_some())
            .fold((0, 0), |(w, h), p| {
                (
                    w.max(p.sizes.min_buffer_width),
                    h.max(p.sizes.min_buffer_height),
                )
            })
    }

    fn max_size(&self) -> (u32, u32) {
        self.profiles.iter().fold((0, 0), |(w, h), p| {
            (w.max(p.sizes.max_width), h.max(p.sizes.max_height))
        })
    }

    /// `vaQueryConfigProfiles`.
    pub fn query_config_profiles(&self) -> Vec<va::VAProfile> {
        self.profiles.iter().map(|p| p.profile.va()).collect()
    }

    /// `vaQueryConfigEntrypoints`: VLD for every profile.
    pub fn query_config_entrypoints(
        &self,
        profile: va::VAProfile,
    ) -> Result<Vec<va::VAEntrypoint>> {
        self.profile(profile)?;
        Ok(vec![va::VAEntrypointVLD])
    }

    /// `vaGetConfigAttributes`: fills in the value of each attribute.
    pub fn get_config_attributes(
        &self,
        profile: va::VAProfile,
        entrypoint: va::VAEntrypoint,
        attribs: &mut [va::VAConfigAttrib],
    ) -> Result<()> {
        let caps = self.profile(profile)?;
        if entrypoint != va::VAEntrypointVLD {
            return Err(Error::UNSUPPORTED_ENTRYPOINT);
        }
        for a in attribs {
            a.value = crate::config::attribute_value(caps, a.type_);
        }
        Ok(())
    }

    /// `vaCreateConfig`.
    pub fn create_config(
        &self,
        profile: va::VAProfile,
        entrypoint: va::VAEntrypoint,
        attribs: &[va::VAConfigAttrib],
    ) -> Result<u32> {
        let config = Config::new(*self.profile(profile)?, entrypoint, attribs)?;
        Ok(self.objects().configs.insert(config)?.raw())
    }

    /// `vaDestroyConfig`.
    pub fn destroy_config(&self, id: u32) -> Result<()> {
        self.objects().configs.remove(id).map(drop)
    }

    /// `vaQueryConfigAttributes`.
    pub fn query_config_attributes(
        &self,
        id: u32,
    ) -> Result<(va::VAProfile, va::VAEntrypoint, Vec<va::VAConfigAttrib>)> {
        let objects = self.objects();
        let config = objects.configs.get(id)?;
        Ok((
            config.caps.profile.va(),
            va::VAEntrypointVLD,
            config.attributes(),
        ))
    }

    /// `vaQuerySurfaceAttributes`.
    pub fn query_surface_attributes(&self, config: u32) -> Result<Vec<va::VASurfaceAttrib>> {
        Ok(self.objects().configs.get(config)?.surface_attributes())
    }

    /// `vaCreateSurfaces2` (and `vaCreateSurfaces`, without attributes).
    pub fn create_surfaces(
        &self,
        rt_format: u32,
        width: u32,
        height: u32,
        count: u32,
        attribs: &[va::VASurfaceAttrib],
    ) -> Result<Vec<u32>> {
        let request = surface::check_request(rt_format, attribs, &self.depths())?;
        let (max_w, max_h) = self.max_size();
        if width == 0 || height == 0 || width > max_w || height > max_h {
            return Err(Error::RESOLUTION_NOT_SUPPORTED);
        }
        if count == 0 || count > surface::MAX_PER_CALL {
            return Err(Error::INVALID_PARAMETER);
        }
        let mut objects = self.objects();
        let mut ids = Vec::with_capacity(count as usize);
        for _ in 0..count {
            match objects
                .surfaces
                .insert(Surface::new(width, height, request.depth))
            {
                Ok(id) => ids.push(id.raw()),
                Err(e) => {
                    for id in ids {
                        let _ = objects.surfaces.remove(id);
                    }
                    return Err(e);
                }
            }
        }
        Ok(ids)
    }

    /// `vaDestroySurfaces`: every id is checked before any surface is destroyed. A surface's
    /// CAPTURE buffer goes back to its decoder (reused once a picture in flight is back).
    pub fn destroy_surfaces(&self, ids: &[u32]) -> Result<()> {
        let mut objects = self.objects();
        for &id in ids {
            objects.surfaces.get(id)?;
        }
        for &id in ids {
            let Ok(surface) = objects.surfaces.remove(id) else {
                continue;
            };
            if let Some(b) = surface.binding {
                let Objects {
                    contexts, retired, ..
                } = &mut *objects;
                if let Some(dec) = decoder_mut(contexts, retired, b.context) {
                    dec.unbind(id);
                }
            }
        }
        objects.prune_retired();
        Ok(())
    }

    /// `vaCreateContext`: `width` x `height` is only checked against the config's limits; the
    /// decoder is sized by the first picture, when it is opened.
    pub fn create_context(
        &self,
        config: u32,
        width: u32,
        height: u32,
        flag: i32,
        render_targets: &[u32],
    ) -> Result<u32> {
        let mut objects = self.objects();
        let config = *objects.configs.get(config)?;
        let s = config.caps.sizes;
        if width < s.min_width
            || height < s.min_height
            || width > s.max_width
            || height > s.max_height
        {
            return Err(Error::RESOLUTION_NOT_SUPPORTED);
        }
        if flag & !(va::VA_PROGRESSIVE as i32) != 0 {
            return Err(Error::FLAG_NOT_SUPPORTED);
        }
        for &id in render_targets {
            objects.surfaces.get(id)?;
        }
        let codec = match config.caps.profile.codec() {
            Codec::Vp9 => CodecState::Vp9(Box::new(Vp9::new())),
            Codec::Av1 => CodecState::Av1(Box::new(Av1::new())),
            Codec::H264 => CodecState::H264(Box::new(H264::new(config.caps.profile))),
        };
        let context = Context {
            config,
            render_targets: render_targets.to_vec(),
            current: None,
            codec,
            decoder: None,
        };
        Ok(objects.contexts.insert(context)?.raw())
    }

    /// `vaDestroyContext`: its buffers go with it; its decoder too, unless surfaces hold its
    /// pictures: those stay readable (and exportable) until the surfaces are destroyed or
    /// decoded into again (see [`Objects::retired`]).
    pub fn destroy_context(&self, id: u32) -> Result<()> {
        let mut objects = self.objects();
        objects.contexts.get(id)?;
        // AV1 frames kept for their refresh sets: the stream ends here.
        if let Err(e) = self.flush_av1_context(&mut objects, id, None) {
            log::warn!("AV1: the last frames could not be queued: {}", e.name());
        }
        let context = objects.contexts.remove(id)?;
        if let CodecState::Av1(a) = &context.codec {
            log::info!(
                "AV1 context {id:#x}: {} frames, {} queued before their refresh set was known, \
                 {} replayed",
                a.frames,
                a.early,
                a.replays
            );
        }
        let bound = objects
            .surfaces
            .iter()
            .any(|(_, s)| s.binding.is_some_and(|b| b.context == id));
        match context.decoder {
            Some(dec) if bound => objects.retired.push((id, dec)),
            _ => forget_decoder(&mut objects.surfaces, id),
        }
        let orphans: Vec<u32> = objects
            .buffers
            .iter()
            .filter(|(_, b)| b.context == Some(id))
            .map(|(b, _)| b.raw())
            .collect();
        for b in orphans {
            let _ = objects.buffers.remove(b);
        }
        Ok(())
    }

    /// `vaCreateBuffer`.
    pub fn create_buffer(
        &self,
        context: u32,
        buf_type: va::VABufferType,
        size: u32,
        num_elements: u32,
        data: Option<&[u8]>,
    ) -> Result<u32> {
        let mut objects = self.objects();
        objects.contexts.get(context)?;
        if !matches!(
            buf_type,
            va::VAPictureParameterBufferType
                | va::VAIQMatrixBufferType
                | va::VASliceParameterBufferType
                | va::VASliceDataBufferType
                | va::VAProbabilityBufferType
        ) {
            return Err(Error::UNSUPPORTED_BUFFERTYPE);
        }
        let buffer = Buffer::new(Some(context), buf_type, size, num_elements, data)?;
        Ok(objects.buffers.insert(buffer)?.raw())
    }

    /// `vaBufferSetNumElements`.
    pub fn buffer_set_num_elements(&self, id: u32, n: u32) -> Result<()> {
        self.objects().buffers.get_mut(id)?.set_num_elements(n)
    }

    /// `vaMapBuffer`: the address stays valid until the buffer is destroyed.
    pub fn map_buffer(&self, id: u32) -> Result<*mut u8> {
        Ok(self.objects().buffers.get_mut(id)?.map())
    }

    /// `vaUnmapBuffer`.
    pub fn unmap_buffer(&self, id: u32) -> Result<()> {
        self.objects().buffers.get_mut(id)?.unmap()
    }

    /// `vaDestroyBuffer`: not the buffer of a live image.
    pub fn destroy_buffer(&self, id: u32) -> Result<()> {
        let mut objects = self.objects();
        objects.buffers.get(id)?;
        if objects.images.iter().any(|(_, i)| i.image.buf == id) {
            return Err(Error::INVALID_BUFFER);
        }
        objects.buffers.remove(id).map(drop)
    }

    /// `vaBufferInfo`: type, element size and number of elements.
    pub fn buffer_info(&self, id: u32) -> Result<(va::VABufferType, u32, u32)> {
        let objects = self.objects();
        let b = objects.buffers.get(id)?;
        Ok((b.buf_type, b.element_size, b.num_elements))
    }

    /// `vaQueryImageFormats`: the formats of the depths the device outputs.
    pub fn query_image_formats(&self) -> Vec<va::VAImageFormat> {
        let depths = self.depths();
        image::formats()
            .into_iter()
            .filter(|f| image::depth_of_format(f).is_ok_and(|d| depths.contains(&d)))
            .collect()
    }

    /// `vaCreateImage`: an image of the driver's own memory (its buffer).
    pub fn create_image(
        &self,
        format: &va::VAImageFormat,
        width: u32,
        height: u32,
    ) -> Result<va::VAImage> {
        let depth = image::depth_of_format(format)?;
        let (max_w, max_h) = self.max_size();
        if width == 0 || height == 0 || width > max_w || height > max_h {
            return Err(Error::RESOLUTION_NOT_SUPPORTED);
        }
        let layout = Layout::packed(depth, width, height)?;
        let buffer = Buffer::image(layout.size)?;
        self.objects()
            .insert_image(buffer, layout, width, height, None)
    }

    /// `vaDestroyImage`: the image and its buffer.
    pub fn destroy_image(&self, id: u32) -> Result<()> {
        let mut objects = self.objects();
        let image = objects.images.remove(id)?;
        let _ = objects.buffers.remove(image.image.buf);
        Ok(())
    }
}

impl Driver {
    /// `vaBeginPicture`: `surface` is the target of the context's next picture.
    pub fn begin_picture(&self, context: u32, surface: u32) -> Result<()> {
        let mut objects = self.objects();
        let depth = objects.surfaces.get(surface)?.depth;
        let ctx = objects.contexts.get_mut(context)?;
        if !ctx.config.depths().any(|d| d == depth) {
            log::warn!(
                "vaBeginPicture: a {}-bit surface for a {} context",
                depth.bits(),
                ctx.config.caps.profile.name()
            );
            return Err(Error::INVALID_SURFACE);
        }
        if ctx.current.is_some() {
            log::warn!("vaBeginPicture without vaEndPicture: the unfinished picture is dropped");
        }
        ctx.current = Some(Picture {
            surface,
            buffers: Vec::new(),
        });
        Ok(())
    }

    /// `vaRenderPicture`: copies the buffers into the current picture.
    pub fn render_picture(&self, context: u32, buffers: &[u32]) -> Result<()> {
        let mut objects = self.objects();
        let Objects {
            contexts,
            buffers: heap,
            ..
        } = &mut *objects;
        let ctx = contexts.get_mut(context)?;
        let picture = ctx.current.as_mut().ok_or(Error::OPERATION_FAILED)?;
        for &id in buffers {
            let b = heap.get(id)?;
            if b.context != Some(context) {
                return Err(Error::INVALID_BUFFER);
            }
            picture.buffers.push(Rendered {
                buf_type: b.buf_type,
                element_size: b.element_size,
                num_elements: b.num_elements,
                bytes: b.bytes().to_vec(),
            });
        }
        Ok(())
    }

    /// `vaEndPicture`: turns the picture into its controls and queues its request; returns
    /// without waiting for the decode (`vaSyncSurface` does). A picture that cannot be queued
    /// leaves its surface `Lost`: clients that show it anyway (FFmpeg outputs a frame whose
    /// `vaEndPicture` failed) get a decoding error from `vaSyncSurface`, not an old picture.
    pub fn end_picture(&self, context: u32) -> Result<()> {
        let mut guard = self.objects();
        let objects = &mut *guard;
        let picture = objects
            .contexts
            .get_mut(context)?
            .current
            .take()
            .ok_or(Error::OPERATION_FAILED)?;
        let result = self.decode(objects, context, &picture);
        if result.is_err() && result != Err(Error::SURFACE_BUSY) {
            // The target holds no picture of this one: whatever it held before must not be
            // shown or referenced in its place (syncing it is a decoding error).
            if let Ok(s) = objects.surfaces.get_mut(picture.surface) {
                if !matches!(s.state, State::Pending { .. }) {
                    s.state = State::Lost;
                }
            }
        }
        if result == Err(Error::OPERATION_FAILED) {
            // The device broke the contract (or is gone): start over with a new decoder at the
            // next picture rather than keep a queue in an unknown state.
            if let Ok(ctx) = objects.contexts.get_mut(context) {
                ctx.decoder = None;
            }
            forget_decoder(&mut objects.surfaces, context);
        }
        result
    }

    fn decode(&self, objects: &mut Objects, context: u32, picture: &Picture) -> Result<()> {
        Self::adopt(objects, context, picture.surface)?;
        let Objects {
            contexts, surfaces, ..
        } = objects;
        let ctx = contexts.get_mut(context)?;
        let reference = |id: u32| surfaces.get(id).ok().and_then(|s| s.reference_in(context));
        let mut mapped = match &mut ctx.codec {
            CodecState::Vp9(vp9) => vp9.map(picture, reference)?,
            CodecState::H264(h264) => h264.map(picture, reference)?,
            CodecState::Av1(_) => return self.decode_av1(objects, context, picture),
            CodecState::Unmapped => {
                log::warn!(
                    "{}: the VA parameters of this codec are not mapped yet",
                    ctx.config.caps.profile.name()
                );
                return Err(Error::UNIMPLEMENTED);
            }
        };
        if matches!(ctx.codec, CodecState::Vp9(_)) {
            // VP9 changes size at key frames within one VA context (GStreamer's va plugin
            // keeps its context and allocates surfaces of the new size).
            fit_to_target(objects, picture.surface, &mut mapped);
            Self::restart_at(objects, context, picture.surface, &mapped)?;
        }
        self.submit(objects, context, picture.surface, mapped, None)
            .map(drop)
    }

    /// Before `m`, a picture for `surface` sized by [`fit_to_target`]: when the stream starts
    /// over at it and the context's decoder was opened for another size or bit depth, that
    /// decoder is retired and `m` opens a new one. A surface's memory layout is its own size's
    /// (`Layout::packed`; clients such as GStreamer's va plugin read it once, with
    /// `vaDeriveImage` on a fresh surface, and keep it), so a picture must be decoded by a
    /// decoder of its surface's size: in the larger decoder of an earlier sequence, a smaller
    /// picture lands at that decoder's pitch, not at the one the client reads.
    pub(crate) fn restart_at(
        objects: &mut Objects,
        context: u32,
        surface: u32,
        m: &crate::mapped::Mapped,
    ) -> Result<()> {
        let other = objects
            .contexts
            .get(context)?
            .decoder
            .as_ref()
            .is_some_and(|d| (m.width, m.height, m.depth) != (d.width, d.height, d.depth));
        if other && m.starts_stream {
            log::info!(
                "a {}x{} {}-bit picture starts the stream over: a new decoder for it",
                m.width,
                m.height,
                m.depth.bits()
            );
            Self::retire_decoder(objects, context);
            Self::adopt(objects, context, surface)?;
        }
        Ok(())
    }

    /// Retires `context`'s decoder as if the context had been destroyed (its pictures stay
    /// readable until their surfaces are decoded into again or destroyed), so that the next
    /// picture opens a new one: for a stream that restarts at a key frame with larger pictures
    /// or another bit depth in the same VA context. The retired decoder gets an id of its own
    /// (top nibble 0xE, no object's), which its surfaces' bindings and pictures take.
    pub(crate) fn retire_decoder(objects: &mut Objects, context: u32) {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let Some(dec) = objects
            .contexts
            .get_mut(context)
            .ok()
            .and_then(|c| c.decoder.take())
        else {
            return;
        };
        let id =
            0xE000_0000 | (NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) & 0x0FFF_FFFF);
        for (_, s) in objects.surfaces.iter_mut() {
            if let Some(b) = s.binding.as_mut().filter(|b| b.context == context) {
                b.context = id;
            }
            if let State::Pending { context: c, .. } | State::Decoded { context: c, .. } =
                &mut s.state
            {
                if *c == context {
                    *c = id;
                }
            }
        }
        objects.retired.push((id, dec));
        objects.prune_retired();
    }

    /// Makes `surface` one `context` can decode into: a surface last decoded by another context
    /// leaves that context's decoder (once its picture is back).
    pub(crate) fn adopt(objects: &mut Objects, context: u32, surface: u32) -> Result<()> {
        let picture = Picture {
            surface,
            buffers: Vec::new(),
        };
        if let Some(b) = objects
            .surfaces
            .get(picture.surface)?
            .binding
            .filter(|b| b.context != context)
        {
            let pending = |o: &mut Objects| {
                let Objects {
                    contexts,
                    retired,
                    surfaces,
                    ..
                } = o;
                if let Some(d) = decoder_mut(contexts, retired, b.context) {
                    match d.reap() {
                        Ok(done) => apply(surfaces, b.context, &done),
                        Err(e) => {
                            close_decoder(contexts, retired, surfaces, b.context);
                            return Err(e);
                        }
                    }
                }
                Ok(matches!(
                    surfaces.get(picture.surface)?.state,
                    State::Pending { .. }
                ))
            };
            if pending(objects).map_err(|_| Error::SURFACE_BUSY)? {
                return Err(Error::SURFACE_BUSY);
            }
            let Objects {
                contexts, retired, ..
            } = &mut *objects;
            if let Some(d) = decoder_mut(contexts, retired, b.context) {
                d.unbind(picture.surface);
            }
            let s = objects.surfaces.get_mut(picture.surface)?;
            s.binding = None;
            s.state = State::Empty;
            objects.prune_retired();
        }
        Ok(())
    }

    /// Queues the request `mapped` of `context` into `surface`'s CAPTURE buffer (opening the
    /// decoder at the first one); `replay_of`: a replay of the picture queued under that
    /// timestamp (µs), into a scratch CAPTURE buffer ([`SCRATCH`]) under the same timestamp.
    /// Returns the request's sequence number.
    pub(crate) fn submit(
        &self,
        objects: &mut Objects,
        context: u32,
        surface: u32,
        mut mapped: crate::mapped::Mapped,
        replay_of: Option<u64>,
    ) -> Result<u64> {
        let Objects {
            contexts, surfaces, ..
        } = objects;
        let ctx = contexts.get_mut(context)?;
        let (width, height, depth) = (mapped.width, mapped.height, mapped.depth);
        if replay_of.is_none() {
            let target = surfaces.get(surface)?;
            if depth != target.depth {
                log::warn!(
                    "a {}-bit picture for a {}-bit surface",
                    depth.bits(),
                    target.depth.bits()
                );
                return Err(Error::INVALID_SURFACE);
            }
        }
        if ctx.decoder.is_none() {
            let targets: Vec<u32> = ctx
                .render_targets
                .iter()
                .copied()
                .filter(|&id| {
                    surfaces
                        .get(id)
                        .is_ok_and(|s| s.depth == depth && s.binding.is_none())
                })
                .collect();
            let mut dec = Decoder::open(
                &self.device,
                ctx.config.caps.profile.codec(),
                &mut mapped,
                targets.len() as u32,
            )?;
            for id in targets {
                let capture = dec.bind(id)?;
                if let Ok(s) = surfaces.get_mut(id) {
                    s.binding = Some(Binding { context, capture });
                }
            }
            ctx.decoder = Some(dec);
        }
        let dec = ctx.decoder.as_mut().ok_or(Error::OPERATION_FAILED)?;
        if width > dec.width || height > dec.height || depth != dec.depth {
            log::warn!(
                "a {width}x{height} {}-bit picture in a context decoding {}x{} {}-bit: not \
                 supported without a new context",
                depth.bits(),
                dec.width,
                dec.height,
                dec.depth.bits()
            );
            return Err(Error::RESOLUTION_NOT_SUPPORTED);
        }
        // The target's memory: its CAPTURE buffer in this decoder.
        let capture = match surfaces.get(surface).ok().and_then(|s| s.binding) {
            Some(b) if replay_of.is_none() => b.capture,
            _ => dec.bind(surface)?,
        };
        // Its previous picture must be back before the buffer is queued again, and a request
        // must be free.
        loop {
            let target_pending = dec.capture_queued(capture)
                || surfaces.get(surface).is_ok_and(
                    |s| matches!(s.state, State::Pending { context: c, .. } if c == context),
                );
            if !target_pending && dec.has_free_slot() {
                break;
            }
            wait_oldest(dec)?;
            apply(surfaces, context, &dec.reap()?);
        }
        let parts: Vec<&[u8]> = mapped.data.iter().map(Vec::as_slice).collect();
        let seq = dec.queue_as(
            surface,
            capture,
            &parts,
            &mut payloads(mapped.controls.iter_mut()),
            replay_of,
        )?;
        if replay_of.is_none() {
            let s = surfaces.get_mut(surface)?;
            s.binding = Some(Binding { context, capture });
            s.state = State::Pending { context, seq };
        }
        Ok(seq)
    }

    /// Completes what can be completed in `surface`'s decoder; `Ok(Some(request))` while its
    /// picture is still in flight (the request to wait for).
    fn poll_surface(
        objects: &mut Objects,
        surface: u32,
    ) -> Result<Option<std::sync::Arc<daedalus_client::media::Request>>> {
        let State::Pending { context, .. } = objects.surfaces.get(surface)?.state else {
            return Ok(None);
        };
        let Objects {
            contexts,
            retired,
            surfaces,
            ..
        } = objects;
        let done = match decoder_mut(contexts, retired, context).map(Decoder::reap) {
            None => {
                forget_decoder(surfaces, context);
                return Ok(None);
            }
            Some(Ok(done)) => done,
            Some(Err(e)) => {
                close_decoder(contexts, retired, surfaces, context);
                return Err(e);
            }
        };
        apply(surfaces, context, &done);
        if matches!(surfaces.get(surface)?.state, State::Pending { .. }) {
            Ok(decoder_mut(contexts, retired, context).and_then(|d| d.oldest_request()))
        } else {
            Ok(None)
        }
    }

    /// `vaSyncSurface` / `vaSyncSurface2` (`None`: no time limit): waits until the surface's
    /// picture is decoded, without holding the driver's lock while waiting (other threads go
    /// on decoding and displaying). A picture the decoder failed on is `DECODING_ERROR`.
    pub fn sync_surface(&self, surface: u32, timeout: Option<std::time::Duration>) -> Result<()> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        self.flush_av1(&mut self.objects(), surface)?;
        loop {
            let request = {
                let mut objects = self.objects();
                match Self::poll_surface(&mut objects, surface)? {
                    Some(request) => request,
                    None => {
                        return match objects.surfaces.get(surface)?.state {
                            State::Decoded { error: true, .. } | State::Lost => {
                                Err(Error::DECODING_ERROR)
                            }
                            _ => Ok(()),
                        }
                    }
                }
            };
            let wait = match deadline {
                Some(d) => d
                    .saturating_duration_since(std::time::Instant::now())
                    .min(TIMEOUT),
                None => TIMEOUT,
            };
            let outcome = request.wait(wait).map_err(|e| {
                log::warn!("waiting for a request: {e}");
                Error::OPERATION_FAILED
            })?;
            if outcome == RequestWait::TimedOut {
                if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                    return Err(Error::TIMEDOUT);
                }
                if deadline.is_none() {
                    log::warn!(
                        "a request took more than {} s: the decoder does not answer",
                        TIMEOUT.as_secs()
                    );
                    return Err(Error::TIMEDOUT);
                }
            }
        }
    }

    /// `vaQuerySurfaceStatus`.
    pub fn query_surface_status(&self, surface: u32) -> Result<va::VASurfaceStatus> {
        let mut objects = self.objects();
        self.flush_av1(&mut objects, surface)?;
        Ok(match Self::poll_surface(&mut objects, surface)? {
            Some(_) => va::VASurfaceRendering,
            None => va::VASurfaceReady,
        })
    }

    /// Waits (with the lock held: derive / get image need the picture now) for `surface`.
    fn settle(objects: &mut Objects, surface: u32) -> Result<()> {
        while let Some(request) = Self::poll_surface(objects, surface)? {
            if request.wait(TIMEOUT).map_err(|_| Error::OPERATION_FAILED)? == RequestWait::TimedOut
            {
                return Err(Error::TIMEDOUT);
            }
        }
        Ok(())
    }

    /// The memory of a surface: its decoder's CAPTURE buffer and layout, if it has one.
    fn surface_memory(
        objects: &Objects,
        surface: &Surface,
    ) -> Option<(std::sync::Arc<daedalus_client::v4l2::Mapping>, Layout)> {
        let b = surface.binding?;
        let dec = objects.decoder(b.context)?;
        Some((dec.capture_map(b.capture)?, dec.layout))
    }

    /// `vaDeriveImage`: an image whose buffer is the surface's memory (its CAPTURE buffer);
    /// a surface that has none yet gets an image of driver memory.
    pub fn derive_image(&self, surface: u32) -> Result<va::VAImage> {
        let mut guard = self.objects();
        let objects = &mut *guard;
        self.flush_av1(objects, surface)?;
        Self::settle(objects, surface)?;
        let s = objects.surfaces.get(surface)?.clone();
        let (buffer, layout) = match Self::surface_memory(objects, &s) {
            Some((map, layout)) => (Buffer::capture(map, layout.size)?, layout),
            None => {
                // The layout its decoded pictures will have (see `Layout::packed`).
                let (min_w, min_h) = self.min_buffer(s.depth);
                let layout = Layout::packed(s.depth, s.width.max(min_w), s.height.max(min_h))?;
                (Buffer::image(layout.size)?, layout)
            }
        };
        objects.insert_image(buffer, layout, s.width, s.height, Some(surface))
    }

    /// `vaGetImage`: copies a rectangle of the surface's picture into an image of the same
    /// format (a surface with no picture reads as zeros).
    pub fn get_image(
        &self,
        surface: u32,
        x: u32,
        y: u32,
        width: u32,
        height: u32,
        image: u32,
    ) -> Result<()> {
        let mut guard = self.objects();
        let objects = &mut *guard;
        self.flush_av1(objects, surface)?;
        Self::settle(objects, surface)?;
        let s = objects.surfaces.get(surface)?.clone();
        let img = objects.images.get(image)?.image;
        if image::depth_of_format(&img.format)? != s.depth {
            return Err(Error::INVALID_IMAGE_FORMAT);
        }
        let fits = |a: u32, b: u32, max: u32| a.checked_add(b).is_some_and(|e| e <= max);
        if !fits(x, width, s.width)
            || !fits(y, height, s.height)
            || width > u32::from(img.width)
            || height > u32::from(img.height)
        {
            return Err(Error::INVALID_PARAMETER);
        }
        let src = Self::surface_memory(objects, &s);
        let dst = objects
            .buffers
            .get_mut(img.buf)?
            .bytes_mut()
            .ok_or(Error::INVALID_IMAGE)?;
        let dst_layout = Layout {
            depth: s.depth,
            pitch: img.pitches[0],
            chroma_offset: img.offsets[1],
            size: img.data_size,
        };
        let rect = image::Rect {
            x,
            y,
            width,
            height,
        };
        match &src {
            Some((map, layout)) => image::copy(map.as_slice(), layout, dst, &dst_layout, rect),
            None => image::fill_zero(dst, &dst_layout, rect),
        }
    }

    /// `vaExportSurfaceHandle` (DRM PRIME 2): the surface's CAPTURE buffer as a dma-buf. A
    /// surface not decoded into yet has no buffer to export.
    pub fn export_surface(
        &self,
        surface: u32,
        flags: u32,
    ) -> Result<va::VADRMPRIMESurfaceDescriptor> {
        let mut objects = self.objects();
        self.flush_av1(&mut objects, surface)?;
        let s = objects.surfaces.get(surface)?;
        let Some(b) = s.binding else {
            log::warn!(
                "vaExportSurfaceHandle: surface {surface:#x} has no memory before its first \
                 decode (surfaces are the decoder's CAPTURE buffers)"
            );
            return Err(Error::OPERATION_FAILED);
        };
        let dec = objects.decoder(b.context).ok_or(Error::OPERATION_FAILED)?;
        let fd = dec.export(b.capture, flags & va::VA_EXPORT_SURFACE_WRITE_ONLY != 0)?;
        let size = u32::try_from(dec.capture_len(b.capture)).unwrap_or(u32::MAX);
        Ok(crate::export::descriptor(
            &dec.layout,
            s.width,
            s.height,
            fd,
            size,
            flags & va::VA_EXPORT_SURFACE_SEPARATE_LAYERS != 0,
        ))
    }
}

/// Waits for the oldest request of `dec` (the driver's lock held: only when nothing else can
/// go on, a full request queue).
/// Sizes `m` for its target `surface`: a picture smaller than its surface is decoded at the
/// surface's size (FFmpeg allocates its surfaces at the sequence's largest frame size, and
/// frames may be smaller), so the decoder's CAPTURE layout is the surface's.
pub(crate) fn fit_to_target(objects: &Objects, surface: u32, m: &mut crate::mapped::Mapped) {
    if let Ok(s) = objects.surfaces.get(surface) {
        m.width = m.width.max(s.width);
        m.height = m.height.max(s.height);
    }
}

fn wait_oldest(dec: &Decoder) -> Result<()> {
    let Some(request) = dec.oldest_request() else {
        return Ok(());
    };
    match request.wait(TIMEOUT) {
        Ok(RequestWait::Completed) => Ok(()),
        Ok(other) => {
            log::warn!(
                "the oldest request: {other:?} after {} s",
                TIMEOUT.as_secs()
            );
            Err(Error::OPERATION_FAILED)
        }
        Err(e) => {
            log::warn!("waiting for a request: {e}");
            Err(Error::OPERATION_FAILED)
        }
    }
}

/// Marks the pictures of `done` decoded.
fn apply(surfaces: &mut Heap<SurfaceKind, Surface>, context: u32, done: &[Done]) {
    for d in done {
        if let Ok(s) = surfaces.get_mut(d.surface) {
            if s.state
                == (State::Pending {
                    context,
                    seq: d.seq,
                })
            {
                s.state = State::Decoded {
                    context,
                    seq: d.seq,
                    error: d.error,
                };
            }
        }
    }
}

/// The surfaces of `context`'s decoder lose their memory and pictures (the decoder is gone).
fn forget_decoder(surfaces: &mut Heap<SurfaceKind, Surface>, context: u32) {
    for (_, s) in surfaces.iter_mut() {
        if s.binding.is_some_and(|b| b.context == context) {
            s.binding = None;
        }
        if matches!(s.state, State::Pending { context: c, .. } | State::Decoded { context: c, .. } if c == context)
        {
            s.state = State::Lost;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::caps::test_caps::daedalus;

    /// A driver of a device reporting what daedalus does (no device is opened).
    pub(crate) fn driver() -> Driver {
        Driver::new(Device {
            video: "/nonexistent/video0".into(),
            media: "/nonexistent/media0".into(),
            driver: "daedalus".into(),
            card: "daedalus".into(),
            codecs: daedalus(),
        })
    }

    #[test]
    fn fresh_surfaces_derive_the_layout_of_their_decoded_pictures() {
        // GStreamer maps every surface with the layout of an image derived from a fresh one:
        // an 18x10 10-bit picture sits in a 16-row (smallest) CAPTURE buffer of daedalus,
        // a 35x19 one in 20 rows of 64 bytes.
        let d = driver();
        let ten = d
            .create_surfaces(va::VA_RT_FORMAT_YUV420_10, 18, 10, 1, &[])
            .unwrap();
        let img = d.derive_image(ten[0]).unwrap();
        assert_eq!((img.pitches[0], img.offsets[1]), (64, 64 * 16));
        assert_eq!((img.width, img.height), (18, 10));
        let eight = d
            .create_surfaces(va::VA_RT_FORMAT_YUV420, 35, 19, 1, &[])
            .unwrap();
        let img = d.derive_image(eight[0]).unwrap();
        assert_eq!((img.pitches[0], img.offsets[1]), (64, 64 * 20));
    }

    #[test]
    fn profiles_and_entrypoints() {
        let d = driver();
        assert_eq!(d.query_config_profiles().len(), 6);
        assert_eq!(
            d.query_config_entrypoints(va::VAProfileVP9Profile2),
            Ok(vec![va::VAEntrypointVLD])
        );
        assert_eq!(
            d.query_config_entrypoints(va::VAProfileHEVCMain),
            Err(Error::UNSUPPORTED_PROFILE)
        );
        let mut attribs = [
            va::VAConfigAttrib {
                type_: va::VAConfigAttribRTFormat,
                value: 0,
            },
            va::VAConfigAttrib {
                type_: va::VAConfigAttribEncMaxRefFrames,
                value: 0,
            },
        ];
        d.get_config_attributes(va::VAProfileAV1Profile0, va::VAEntrypointVLD, &mut attribs)
            .unwrap();
        assert_eq!(
            attribs[0].value,
            va::VA_RT_FORMAT_YUV420 | va::VA_RT_FORMAT_YUV420_10
        );
        assert_eq!(attribs[1].value, va::VA_ATTRIB_NOT_SUPPORTED);
        assert_eq!(
            d.get_config_attributes(
                va::VAProfileAV1Profile0,
                va::VAEntrypointEncSlice,
                &mut attribs
            ),
            Err(Error::UNSUPPORTED_ENTRYPOINT)
        );
        assert!(d
            .vendor
            .to_str()
            .unwrap()
            .starts_with("daedalus VA-API driver"));
    }

    #[test]
    fn configs_surfaces_contexts() {
        let d = driver();
        let config = d
            .create_config(va::VAProfileVP9Profile0, va::VAEntrypointVLD, &[])
            .unwrap();
        let (profile, entrypoint, attribs) = d.query_config_attributes(config).unwrap();
        assert_eq!(
            (profile, entrypoint),
            (va::VAProfileVP9Profile0, va::VAEntrypointVLD)
        );
        assert_eq!(attribs.len(), crate::config::ATTRIBUTES.len());
        assert!(!d.query_surface_attributes(config).unwrap().is_empty());

        // Surfaces before any context (as mpv makes them).
        let surfaces = d
            .create_surfaces(va::VA_RT_FORMAT_YUV420, 352, 288, 20, &[])
            .unwrap();
        assert_eq!(surfaces.len(), 20);
        assert_eq!(
            d.create_surfaces(va::VA_RT_FORMAT_YUV420, 9000, 288, 1, &[]),
            Err(Error::RESOLUTION_NOT_SUPPORTED)
        );
        assert_eq!(
            d.create_surfaces(va::VA_RT_FORMAT_YUV420, 352, 288, 0, &[]),
            Err(Error::INVALID_PARAMETER)
        );
        let ctx = d.create_context(config, 352, 288, 1, &surfaces).unwrap();
        assert_eq!(
            d.create_context(config, 352, 288, 1, &[config]),
            Err(Error::INVALID_SURFACE)
        );
        assert_eq!(
            d.create_context(ctx, 352, 288, 1, &[]),
            Err(Error::INVALID_CONFIG)
        );
        assert_eq!(
            d.create_context(config, 8, 8, 1, &[]),
            Err(Error::RESOLUTION_NOT_SUPPORTED)
        );

        // Buffers of a context go with it.
        let data = [1u8, 2, 3];
        let buf = d
            .create_buffer(ctx, va::VASliceDataBufferType, 3, 1, Some(&data))
            .unwrap();
        assert_eq!(d.buffer_info(buf), Ok((va::VASliceDataBufferType, 3, 1)));
        let p = d.map_buffer(buf).unwrap();
        // SAFETY (test): the buffer has 3 bytes and lives until destroyed.
        assert_eq!(unsafe { std::slice::from_raw_parts(p, 3) }, &data);
        d.unmap_buffer(buf).unwrap();
        assert_eq!(
            d.create_buffer(ctx, va::VAEncCodedBufferType, 3, 1, None),
            Err(Error::UNSUPPORTED_BUFFERTYPE)
        );
        assert_eq!(
            d.create_buffer(surfaces[0], va::VASliceDataBufferType, 3, 1, None),
            Err(Error::INVALID_CONTEXT)
        );
        d.destroy_context(ctx).unwrap();
        assert_eq!(d.buffer_info(buf), Err(Error::INVALID_BUFFER));
        assert_eq!(d.destroy_context(ctx), Err(Error::INVALID_CONTEXT));

        // One bad id: nothing destroyed.
        assert_eq!(
            d.destroy_surfaces(&[surfaces[0], config]),
            Err(Error::INVALID_SURFACE)
        );
        d.destroy_surfaces(&surfaces).unwrap();
        assert_eq!(
            d.destroy_surfaces(&surfaces[..1]),
            Err(Error::INVALID_SURFACE)
        );
        d.destroy_config(config).unwrap();
        assert_eq!(d.destroy_config(config), Err(Error::INVALID_CONFIG));
        assert!(d.objects().surfaces.is_empty());
    }

    /// A VP9 context with `n` 8-bit surfaces of 64x64.
    fn vp9_context(d: &Driver, n: u32) -> (u32, Vec<u32>) {
        let config = d
            .create_config(va::VAProfileVP9Profile0, va::VAEntrypointVLD, &[])
            .unwrap();
        let surfaces = d
            .create_surfaces(va::VA_RT_FORMAT_YUV420, 64, 64, n, &[])
            .unwrap();
        let ctx = d.create_context(config, 64, 64, 1, &surfaces).unwrap();
        (ctx, surfaces)
    }

    #[test]
    fn picture_calls_in_the_wrong_order_or_with_wrong_objects() {
        let d = driver();
        let (ctx, surfaces) = vp9_context(&d, 2);
        assert_eq!(d.end_picture(ctx), Err(Error::OPERATION_FAILED));
        assert_eq!(d.render_picture(ctx, &[]), Err(Error::OPERATION_FAILED));
        let ten = d
            .create_surfaces(va::VA_RT_FORMAT_YUV420_10, 64, 64, 1, &[])
            .unwrap();
        assert_eq!(d.begin_picture(ctx, ten[0]), Err(Error::INVALID_SURFACE));
        assert_eq!(
            d.begin_picture(surfaces[0], surfaces[0]),
            Err(Error::INVALID_CONTEXT)
        );
        d.begin_picture(ctx, surfaces[0]).unwrap();
        // A buffer of another context.
        let (other, _) = vp9_context(&d, 1);
        let foreign = d
            .create_buffer(other, va::VASliceDataBufferType, 4, 1, None)
            .unwrap();
        assert_eq!(
            d.render_picture(ctx, &[foreign]),
            Err(Error::INVALID_BUFFER)
        );
        // No parameters: refused, and the picture is over.
        assert_eq!(d.end_picture(ctx), Err(Error::INVALID_PARAMETER));
        assert_eq!(d.end_picture(ctx), Err(Error::OPERATION_FAILED));
        // H.264 without its parameters too.
        let h264 = d
            .create_config(va::VAProfileH264High, va::VAEntrypointVLD, &[])
            .unwrap();
        let hctx = d.create_context(h264, 64, 64, 1, &surfaces).unwrap();
        d.begin_picture(hctx, surfaces[1]).unwrap();
        assert_eq!(d.end_picture(hctx), Err(Error::INVALID_PARAMETER));
        assert_eq!(
            d.sync_surface(surfaces[1], None),
            Err(Error::DECODING_ERROR)
        );
        // AV1 too.
        let av1 = d
            .create_config(va::VAProfileAV1Profile0, va::VAEntrypointVLD, &[])
            .unwrap();
        let actx = d.create_context(av1, 64, 64, 1, &surfaces).unwrap();
        d.begin_picture(actx, surfaces[1]).unwrap();
        assert_eq!(d.end_picture(actx), Err(Error::INVALID_PARAMETER));
    }

    #[test]
    fn a_frame_without_a_device_fails_cleanly() {
        let d = driver();
        let (ctx, surfaces) = vp9_context(&d, 2);
        // The first frame of a committed stream, as FFmpeg hands it over.
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tools/tests/data/vp9-8bit-35x19-arf.ivf");
        let mut reader =
            daedalus_codecs::ivf::IvfReader::new(std::fs::File::open(path).unwrap()).unwrap();
        let mut packet = Vec::new();
        reader.next_frame(&mut packet).unwrap().unwrap();
        let (offset, size) = daedalus_client::vp9::superframe::split(&packet)
            .unwrap()
            .ranges()[0];
        let frame = &packet[offset..offset + size];
        let h = daedalus_client::vp9::HeaderParser::new()
            .parse(frame)
            .unwrap();
        let mut pic = va::VADecPictureParameterBufferVP9 {
            frame_width: h.width as u16,
            frame_height: h.height as u16,
            frame_header_length_in_bytes: h.uncompressed_header_size as u8,
            first_partition_size: h.compressed_header_size,
            bit_depth: 8,
            reference_frames: [va::VA_INVALID_SURFACE; 8],
            ..Default::default()
        };
        // SAFETY (test): the bit fields of a zeroed union.
        unsafe { pic.pic_fields.bits.set_show_frame(u32::from(h.show_frame)) };
        let slice = va::VASliceParameterBufferVP9 {
            slice_data_size: size as u32,
            ..Default::default()
        };
        fn bytes<T>(v: &T) -> Vec<u8> {
            // SAFETY (test): the bytes of a live, zero-initialised parameter struct.
            unsafe {
                std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>())
            }
            .to_vec()
        }
        let pic_bytes = bytes(&pic);
        let slice_bytes = bytes(&slice);
        let buffers = [
            d.create_buffer(
                ctx,
                va::VAPictureParameterBufferType,
                pic_bytes.len() as u32,
                1,
                Some(&pic_bytes),
            )
            .unwrap(),
            d.create_buffer(
                ctx,
                va::VASliceParameterBufferType,
                slice_bytes.len() as u32,
                1,
                Some(&slice_bytes),
            )
            .unwrap(),
            d.create_buffer(ctx, va::VASliceDataBufferType, size as u32, 1, Some(frame))
                .unwrap(),
        ];
        d.begin_picture(ctx, surfaces[0]).unwrap();
        d.render_picture(ctx, &buffers).unwrap();
        // The mapping accepts the frame; the device (absent here) cannot be opened.
        assert_eq!(d.end_picture(ctx), Err(Error::OPERATION_FAILED));
        assert_eq!(d.query_surface_status(surfaces[0]), Ok(va::VASurfaceReady));
        // Its surface holds no picture: showing it anyway is an error.
        assert_eq!(
            d.sync_surface(surfaces[0], None),
            Err(Error::DECODING_ERROR)
        );
        assert_eq!(
            d.export_surface(surfaces[0], va::VA_EXPORT_SURFACE_READ_ONLY)
                .err(),
            Some(Error::OPERATION_FAILED)
        );
    }

    #[test]
    fn surface_states() {
        let d = driver();
        let (ctx, surfaces) = vp9_context(&d, 3);
        {
            let mut o = d.objects();
            o.surfaces.get_mut(surfaces[0]).unwrap().state = State::Decoded {
                context: ctx,
                seq: 1,
                error: true,
            };
            o.surfaces.get_mut(surfaces[1]).unwrap().state = State::Decoded {
                context: ctx,
                seq: 2,
                error: false,
            };
        }
        assert_eq!(
            d.sync_surface(surfaces[0], None),
            Err(Error::DECODING_ERROR)
        );
        assert_eq!(d.sync_surface(surfaces[1], None), Ok(()));
        assert_eq!(d.sync_surface(surfaces[2], None), Ok(()));
        // Pending in a context without a decoder: the picture is lost, not silently empty.
        d.objects().surfaces.get_mut(surfaces[2]).unwrap().state = State::Pending {
            context: ctx,
            seq: 3,
        };
        assert_eq!(
            d.sync_surface(surfaces[2], None),
            Err(Error::DECODING_ERROR)
        );
        // The context goes: its pictures with it.
        d.destroy_context(ctx).unwrap();
        assert_eq!(
            d.sync_surface(surfaces[1], None),
            Err(Error::DECODING_ERROR)
        );
        assert_eq!(d.query_surface_status(surfaces[1]), Ok(va::VASurfaceReady));
    }

    #[test]
    fn images_of_surfaces_without_memory() {
        let d = driver();
        let (_, surfaces) = vp9_context(&d, 1);
        let derived = d.derive_image(surfaces[0]).unwrap();
        assert_eq!((derived.width, derived.height), (64, 64));
        assert_eq!(derived.format.fourcc, va::VA_FOURCC_NV12);
        d.destroy_image(derived.image_id).unwrap();
        let img = d
            .create_image(&image::format(BitDepth::Eight), 64, 64)
            .unwrap();
        let p = d.map_buffer(img.buf).unwrap();
        // SAFETY (test): the image buffer has data_size bytes.
        unsafe { std::ptr::write_bytes(p, 0x55, img.data_size as usize) };
        d.unmap_buffer(img.buf).unwrap();
        d.get_image(surfaces[0], 0, 0, 64, 64, img.image_id)
            .unwrap();
        // SAFETY (test): as above.
        let data = unsafe {
            std::slice::from_raw_parts(d.map_buffer(img.buf).unwrap(), img.data_size as usize)
        };
        assert!(data[..64].iter().all(|&b| b == 0));
        assert_eq!(
            d.get_image(surfaces[0], 32, 0, 64, 64, img.image_id),
            Err(Error::INVALID_PARAMETER)
        );
        let p010 = d
            .create_image(&image::format(BitDepth::Ten), 64, 64)
            .unwrap();
        assert_eq!(
            d.get_image(surfaces[0], 0, 0, 64, 64, p010.image_id),
            Err(Error::INVALID_IMAGE_FORMAT)
        );
    }

    #[test]
    fn images() {
        let d = driver();
        let formats = d.query_image_formats();
        assert_eq!(formats.len(), 2);
        let img = d.create_image(&formats[1], 64, 32).unwrap();
        assert_eq!(img.format.fourcc, va::VA_FOURCC_P010);
        assert_eq!(img.pitches[0], 128);
        assert_eq!(
            d.buffer_info(img.buf),
            Ok((va::VAImageBufferType, img.data_size, 1))
        );
        // The buffer of a live image is the image's.
        assert_eq!(d.destroy_buffer(img.buf), Err(Error::INVALID_BUFFER));
        d.destroy_image(img.image_id).unwrap();
        assert_eq!(d.buffer_info(img.buf), Err(Error::INVALID_BUFFER));
        assert_eq!(d.destroy_image(img.image_id), Err(Error::INVALID_IMAGE));
        let rgb = va::VAImageFormat {
            fourcc: va::VA_FOURCC_BGRA,
            ..Default::default()
        };
        assert_eq!(
            d.create_image(&rgb, 64, 32).err(),
            Some(Error::INVALID_IMAGE_FORMAT)
        );
    }
}
