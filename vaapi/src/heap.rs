// SPDX-License-Identifier: GPL-2.0
//! Object heaps with typed ids: every VA object (config, context, surface, buffer, image) lives
//! in the heap of its kind and is named by an id that carries the kind in its top four bits.
//!
//! An id of another kind, of a destroyed object, or made up, is refused with the kind's
//! `VA_STATUS_ERROR_INVALID_*` instead of reaching another object: ids are not reused until the
//! 28-bit counter of the kind wraps around (and then skip the live ones), so a stale id of a
//! destroyed surface does not silently name a newer one. No id is 0 or `VA_INVALID_ID`.

use std::collections::HashMap;
use std::marker::PhantomData;

use crate::status::{Error, Result};

/// A kind of VA object.
pub trait Kind {
    /// The top four bits of its ids (1..=14).
    const TAG: u32;
    /// What an id that names no object of this kind is.
    const INVALID: Error;
    /// Its name, for messages.
    const NAME: &'static str;
}

macro_rules! kinds {
    ($($kind:ident = $tag:literal, $invalid:ident, $name:literal;)*) => {$(
        #[doc = concat!("The kind of ", $name, " objects.")]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $kind {}

        impl Kind for $kind {
            const TAG: u32 = $tag;
            const INVALID: Error = Error::$invalid;
            const NAME: &'static str = $name;
        }
    )*};
}

kinds! {
    ConfigKind = 1, INVALID_CONFIG, "config";
    ContextKind = 2, INVALID_CONTEXT, "context";
    SurfaceKind = 3, INVALID_SURFACE, "surface";
    BufferKind = 4, INVALID_BUFFER, "buffer";
    ImageKind = 5, INVALID_IMAGE, "image";
}

const INDEX_BITS: u32 = 28;
const INDEX_MASK: u32 = (1 << INDEX_BITS) - 1;

/// The id of a live (when made) object of kind `K`.
pub struct Id<K> {
    raw: u32,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Id<K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K> Copy for Id<K> {}

impl<K> PartialEq for Id<K> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl<K> Eq for Id<K> {}

impl<K> std::hash::Hash for Id<K> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.raw.hash(state)
    }
}

impl<K: Kind> std::fmt::Debug for Id<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:#x}", K::NAME, self.raw)
    }
}

impl<K> Id<K> {
    /// The id as libva passes it around.
    pub fn raw(self) -> u32 {
        self.raw
    }
}

/// The objects of kind `K`.
pub struct Heap<K, T> {
    objects: HashMap<u32, T>,
    /// The index part of the next id to try.
    next: u32,
    kind: PhantomData<fn() -> K>,
}

impl<K: Kind, T> Default for Heap<K, T> {
    fn default() -> Self {
        Heap {
            objects: HashMap::new(),
            next: 1,
            kind: PhantomData,
        }
    }
}

impl<K: Kind, T> Heap<K, T> {
    /// Adds `object`; its new id.
    pub fn insert(&mut self, object: T) -> Result<Id<K>> {
        if self.objects.len() >= INDEX_MASK as usize - 1 {
            return Err(Error::ALLOCATION_FAILED);
        }
        loop {
            let index = self.next;
            self.next = if index >= INDEX_MASK { 1 } else { index + 1 };
            let raw = (K::TAG << INDEX_BITS) | index;
            if let std::collections::hash_map::Entry::Vacant(e) = self.objects.entry(raw) {
                e.insert(object);
                return Ok(Id {
                    raw,
                    kind: PhantomData,
                });
            }
        }
    }

    /// The id of the live object `raw` names.
    pub fn id(&self, raw: u32) -> Result<Id<K>> {
        if self.objects.contains_key(&raw) {
            Ok(Id {
                raw,
                kind: PhantomData,
            })
        } else {
            Err(K::INVALID)
        }
    }

    /// The object `raw` names.
    pub fn get(&self, raw: u32) -> Result<&T> {
        self.objects.get(&raw).ok_or(K::INVALID)
    }

    /// The object `raw` names, writable.
    pub fn get_mut(&mut self, raw: u32) -> Result<&mut T> {
        self.objects.get_mut(&raw).ok_or(K::INVALID)
    }

    /// Removes the object `raw` names.
    pub fn remove(&mut self, raw: u32) -> Result<T> {
        self.objects.remove(&raw).ok_or(K::INVALID)
    }

    /// How many objects there are.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Every object with its id.
    pub fn iter(&self) -> impl Iterator<Item = (Id<K>, &T)> {
        self.objects.iter().map(|(&raw, t)| {
            (
                Id {
                    raw,
                    kind: PhantomData,
                },
                t,
            )
        })
    }

    /// Every object with its id, writable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (Id<K>, &mut T)> {
        self.objects.iter_mut().map(|(&raw, t)| {
            (
                Id {
                    raw,
                    kind: PhantomData,
                },
                t,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::va::VA_INVALID_ID;

    #[test]
    fn ids_name_objects_of_their_kind_only() {
        let mut surfaces: Heap<SurfaceKind, &str> = Heap::default();
        let mut buffers: Heap<BufferKind, &str> = Heap::default();
        let s = surfaces.insert("s").unwrap();
        let b = buffers.insert("b").unwrap();
        assert_ne!(s.raw(), b.raw());
        assert_eq!(surfaces.get(s.raw()), Ok(&"s"));
        assert_eq!(buffers.get(b.raw()), Ok(&"b"));
        // A buffer id is no surface.
        assert_eq!(surfaces.get(b.raw()), Err(Error::INVALID_SURFACE));
        assert_eq!(buffers.get(s.raw()), Err(Error::INVALID_BUFFER));
        for made_up in [0, VA_INVALID_ID, 1, s.raw() + 1] {
            assert_eq!(surfaces.get(made_up), Err(Error::INVALID_SURFACE));
        }
        assert_eq!(surfaces.id(s.raw()), Ok(s));
        assert_eq!(format!("{s:?}"), "surface 0x30000001");
    }

    #[test]
    fn destroyed_ids_stay_invalid() {
        let mut heap: Heap<ConfigKind, u32> = Heap::default();
        let a = heap.insert(1).unwrap();
        assert_eq!(heap.remove(a.raw()), Ok(1));
        assert_eq!(heap.remove(a.raw()), Err(Error::INVALID_CONFIG));
        let b = heap.insert(2).unwrap();
        assert_ne!(a, b, "a new object does not take a destroyed one's id");
        assert_eq!(heap.get(a.raw()), Err(Error::INVALID_CONFIG));
        *heap.get_mut(b.raw()).unwrap() = 3;
        assert_eq!(
            heap.iter().map(|(id, &v)| (id, v)).collect::<Vec<_>>(),
            [(b, 3)]
        );
        assert_eq!(heap.len(), 1);
    }

    #[test]
    fn wrapping_skips_live_ids() {
        let mut heap: Heap<ImageKind, u32> = Heap::default();
        let first = heap.insert(1).unwrap();
        heap.next = INDEX_MASK;
        let last = heap.insert(2).unwrap();
        assert_eq!(last.raw(), (5 << 28) | INDEX_MASK);
        // Wrapped: index 1 is taken, so 2.
        let wrapped = heap.insert(3).unwrap();
        assert_eq!(wrapped.raw(), (5 << 28) | 2);
        assert_eq!(heap.get(first.raw()), Ok(&1));
        assert!(heap
            .iter()
            .all(|(id, _)| id.raw() != 0 && id.raw() != VA_INVALID_ID));
    }
}
