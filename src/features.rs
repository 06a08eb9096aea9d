//! A collection of features keyed by type: one per request, the analogue of
//! ASP.NET Core's `IFeatureCollection`.
//!
//! See [`Features`].

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

type AnyBox = Box<dyn Any + Send + Sync>;

struct Entry {
    id: TypeId,
    name: &'static str,
    /// A `T` for sized features, a `Box<T>` for trait-object features.
    value: AnyBox,
}

/// A typed collection of features.
///
/// A *feature* is any `'static` value a server or middleware offers for the
/// current request. Plain data features (a struct such as
/// [`RequestFeature`](crate::feature::RequestFeature)) are stored by their own
/// type; behaviour features are stored as trait objects and looked up by the
/// trait object type (`dyn ResponseBody`), so a middleware can replace the
/// server's implementation with its own wrapper.
///
/// # Layering
///
/// A collection may sit on a read-only *defaults* layer (an `Arc<Features>`):
/// lookups that miss locally fall through to it. Servers put connection-level
/// features (connection info, TLS info) in one defaults layer per connection,
/// which itself may sit on the server-level layer, so each request sees them
/// without copying. A local insert shadows a default; removing the local entry
/// shows the default again. Defaults are never mutated through the layer
/// above: [`Features::get_mut`] answers only for local entries.
///
/// # Revision
///
/// Every insert or removal bumps [`Features::revision`]. Readers that cache
/// lookups (as [`HttpContext`](crate::HttpContext) does) compare revisions to
/// know when their cache is stale.
///
/// # Limitations
///
/// Entries live in a small vector searched linearly: a request carries a dozen
/// features, where a vector beats a hash map. A collection with thousands of
/// entries would be slow.
///
/// # Example
///
/// ```
/// use serverbridge::Features;
///
/// #[derive(Debug, PartialEq)]
/// struct Tenant(&'static str);
///
/// let mut features = Features::new();
/// assert_eq!(features.revision(), 0);
/// features.insert(Tenant("acme"));
/// assert_eq!(features.get::<Tenant>(), Some(&Tenant("acme")));
/// assert_eq!(features.revision(), 1);
/// ```
#[derive(Default)]
pub struct Features {
    entries: Vec<Entry>,
    defaults: Option<Arc<Features>>,
    /// Local changes plus the defaults' revision when they were attached:
    /// defaults sit behind an `Arc` and cannot change, so this stays exact
    /// without walking the layers on every read.
    revision: u64,
}

impl Features {
    /// An empty collection. Allocates nothing until the first insert.
    pub const fn new() -> Self {
        Features {
            entries: Vec::new(),
            defaults: None,
            revision: 0,
        }
    }

    /// An empty collection whose lookups fall through to `defaults`.
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::Arc;
    /// use serverbridge::Features;
    ///
    /// let mut connection = Features::new();
    /// connection.insert(42u32);
    /// let connection = Arc::new(connection);
    ///
    /// let mut request = Features::with_defaults(connection.clone());
    /// assert_eq!(request.get::<u32>(), Some(&42));
    /// request.insert(7u32); // shadows the default
    /// assert_eq!(request.get::<u32>(), Some(&7));
    /// request.remove::<u32>();
    /// assert_eq!(request.get::<u32>(), Some(&42));
    /// ```
    pub fn with_defaults(defaults: Arc<Features>) -> Self {
        Features {
            entries: Vec::new(),
            revision: defaults.revision(),
            defaults: Some(defaults),
        }
    }

    /// An empty collection over `defaults` with room for `capacity` local
    /// entries (servers know how many features they put in).
    pub fn with_capacity(capacity: usize, defaults: Option<Arc<Features>>) -> Self {
        Features {
            entries: Vec::with_capacity(capacity),
            revision: defaults.as_ref().map_or(0, |d| d.revision()),
            defaults,
        }
    }

    /// The defaults layer, if any.
    pub fn defaults(&self) -> Option<&Arc<Features>> {
        self.defaults.as_ref()
    }

    /// Replaces the defaults layer. Bumps the revision.
    pub fn set_defaults(&mut self, defaults: Option<Arc<Features>>) {
        let old = self.defaults.as_ref().map_or(0, |d| d.revision());
        let new = defaults.as_ref().map_or(0, |d| d.revision());
        self.defaults = defaults;
        // Always moves forward, so a cache keyed by the old value is stale.
        self.revision = self.revision - old + new + 1;
    }

    /// A counter that changes whenever the collection (or its defaults) changes.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    fn position(&self, id: TypeId) -> Option<usize> {
        self.entries.iter().position(|e| e.id == id)
    }

    fn put(&mut self, id: TypeId, name: &'static str, value: AnyBox) -> Option<AnyBox> {
        self.revision += 1;
        match self.position(id) {
            Some(index) => Some(std::mem::replace(&mut self.entries[index].value, value)),
            None => {
                self.entries.push(Entry { id, name, value });
                None
            }
        }
    }

    fn take(&mut self, id: TypeId) -> Option<AnyBox> {
        let index = self.position(id)?;
        self.revision += 1;
        Some(self.entries.swap_remove(index).value)
    }

    fn lookup(&self, id: TypeId) -> Option<&AnyBox> {
        match self.position(id) {
            Some(index) => Some(&self.entries[index].value),
            None => self.defaults.as_ref()?.lookup(id),
        }
    }

    fn lookup_mut(&mut self, id: TypeId) -> Option<&mut AnyBox> {
        let index = self.position(id)?;
        Some(&mut self.entries[index].value)
    }

    /// Inserts a plain feature, returning the previous local one of that type.
    ///
    /// # Example
    ///
    /// ```
    /// let mut features = serverbridge::Features::new();
    /// assert_eq!(features.insert(1u8), None);
    /// assert_eq!(features.insert(2u8), Some(1));
    /// ```
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) -> Option<T> {
        // Replacing a local entry writes into its box: no allocation (servers
        // that reuse a collection replace the same features every request).
        if let Some(slot) = self.get_mut::<T>() {
            let old = std::mem::replace(slot, value);
            self.revision += 1;
            return Some(old);
        }
        self.put(
            TypeId::of::<T>(),
            std::any::type_name::<T>(),
            Box::new(value),
        )
        .and_then(|old| old.downcast::<T>().ok().map(|b| *b))
    }

    /// The feature of type `T`, from this layer or the defaults.
    ///
    /// # Example
    ///
    /// ```
    /// let mut features = serverbridge::Features::new();
    /// features.insert(String::from("x"));
    /// assert_eq!(features.get::<String>().map(String::as_str), Some("x"));
    /// assert_eq!(features.get::<u8>(), None);
    /// ```
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.lookup(TypeId::of::<T>())?.downcast_ref::<T>()
    }

    /// The local feature of type `T`, mutably. Defaults are read-only and never
    /// returned here.
    ///
    /// # Example
    ///
    /// ```
    /// let mut features = serverbridge::Features::new();
    /// features.insert(1u32);
    /// *features.get_mut::<u32>().unwrap() += 1;
    /// assert_eq!(features.get::<u32>(), Some(&2));
    /// ```
    pub fn get_mut<T: Send + Sync + 'static>(&mut self) -> Option<&mut T> {
        self.lookup_mut(TypeId::of::<T>())?.downcast_mut::<T>()
    }

    /// Removes the local feature of type `T`. A default of the same type shows
    /// through again.
    ///
    /// # Example
    ///
    /// ```
    /// let mut features = serverbridge::Features::new();
    /// features.insert(1u32);
    /// assert_eq!(features.remove::<u32>(), Some(1));
    /// assert!(!features.contains::<u32>());
    /// ```
    pub fn remove<T: Send + Sync + 'static>(&mut self) -> Option<T> {
        self.take(TypeId::of::<T>())
            .and_then(|old| old.downcast::<T>().ok().map(|b| *b))
    }

    /// Whether a feature of type `T` is visible (locally or in the defaults).
    pub fn contains<T: Send + Sync + 'static>(&self) -> bool {
        self.lookup(TypeId::of::<T>()).is_some()
    }

    /// Inserts a behaviour feature stored as the trait object `T`
    /// (`T = dyn SomeTrait`), returning the previous local one.
    ///
    /// # Example
    ///
    /// ```
    /// use serverbridge::Features;
    ///
    /// trait Greeter: Send + Sync { fn greet(&self) -> String; }
    /// struct English;
    /// impl Greeter for English { fn greet(&self) -> String { "hello".into() } }
    ///
    /// let mut features = Features::new();
    /// features.insert_dyn::<dyn Greeter>(Box::new(English));
    /// assert_eq!(features.get_dyn::<dyn Greeter>().unwrap().greet(), "hello");
    /// ```
    pub fn insert_dyn<T: ?Sized + Send + Sync + 'static>(
        &mut self,
        value: Box<T>,
    ) -> Option<Box<T>> {
        if let Some(index) = self.position(TypeId::of::<T>()) {
            if let Some(slot) = self.entries[index].value.downcast_mut::<Box<T>>() {
                let old = std::mem::replace(slot, value);
                self.revision += 1;
                return Some(old);
            }
        }
        self.put(
            TypeId::of::<T>(),
            std::any::type_name::<T>(),
            Box::new(value),
        )
        .and_then(|old| old.downcast::<Box<T>>().ok().map(|b| *b))
    }

    /// The behaviour feature stored as the trait object `T`.
    pub fn get_dyn<T: ?Sized + Send + Sync + 'static>(&self) -> Option<&T> {
        self.lookup(TypeId::of::<T>())?
            .downcast_ref::<Box<T>>()
            .map(|b| &**b)
    }

    /// The local behaviour feature stored as the trait object `T`, mutably.
    pub fn get_dyn_mut<T: ?Sized + Send + Sync + 'static>(&mut self) -> Option<&mut T> {
        self.lookup_mut(TypeId::of::<T>())?
            .downcast_mut::<Box<T>>()
            .map(|b| &mut **b)
    }

    /// Removes the local behaviour feature stored as the trait object `T`.
    pub fn remove_dyn<T: ?Sized + Send + Sync + 'static>(&mut self) -> Option<Box<T>> {
        self.take(TypeId::of::<T>())
            .and_then(|old| old.downcast::<Box<T>>().ok().map(|b| *b))
    }

    /// Whether a behaviour feature stored as `T` is visible.
    pub fn contains_dyn<T: ?Sized + Send + Sync + 'static>(&self) -> bool {
        self.lookup(TypeId::of::<T>()).is_some()
    }

    /// The index of the local entry of type `id` (for [`HttpContext`]'s
    /// revision-checked cache).
    ///
    /// [`HttpContext`]: crate::HttpContext
    pub(crate) fn local_index(&self, id: TypeId) -> Option<usize> {
        self.position(id)
    }

    /// The local entry at `index`, if it is a `T`.
    pub(crate) fn local_at<T: Send + Sync + 'static>(&self, index: usize) -> Option<&T> {
        self.entries.get(index)?.value.downcast_ref::<T>()
    }

    /// The local entry at `index`, mutably, if it is a `T`.
    pub(crate) fn local_at_mut<T: Send + Sync + 'static>(
        &mut self,
        index: usize,
    ) -> Option<&mut T> {
        self.entries.get_mut(index)?.value.downcast_mut::<T>()
    }

    /// Borrows a local behaviour feature mutably and a local plain feature
    /// immutably at the same time (they are distinct entries).
    pub(crate) fn dyn_mut_and_get<D, T>(&mut self) -> (Option<&mut D>, Option<&T>)
    where
        D: ?Sized + Send + Sync + 'static,
        T: Send + Sync + 'static,
    {
        let (d_id, t_id) = (TypeId::of::<D>(), TypeId::of::<T>());
        let (mut d, mut t) = (None, None);
        for entry in self.entries.iter_mut() {
            if entry.id == d_id {
                d = entry.value.downcast_mut::<Box<D>>().map(|b| &mut **b);
            } else if entry.id == t_id {
                t = entry.value.downcast_ref::<T>();
            }
        }
        (d, t)
    }

    /// Number of local entries (defaults not counted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no local entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes every local entry, keeping the allocation and the defaults.
    pub fn clear(&mut self) {
        if !self.entries.is_empty() {
            self.entries.clear();
            self.revision += 1;
        }
    }

    /// Moves every local entry of `other` into `self`, replacing entries of the
    /// same type.
    pub fn extend(&mut self, other: Features) {
        for entry in other.entries {
            self.put(entry.id, entry.name, entry.value);
        }
    }

    /// The type names of the visible features, local ones first, then the
    /// defaults not shadowed by a local entry.
    pub fn type_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.entries.iter().map(|e| e.name).collect();
        if let Some(defaults) = &self.defaults {
            for name in defaults.type_names() {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        names
    }
}

impl fmt::Debug for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Features");
        d.field("revision", &self.revision);
        d.field(
            "local",
            &self.entries.iter().map(|e| e.name).collect::<Vec<_>>(),
        );
        if let Some(defaults) = &self.defaults {
            d.field("defaults", defaults);
        }
        d.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    trait Shape: Send + Sync {
        fn sides(&self) -> u32;
        fn grow(&mut self);
    }
    struct Poly(u32);
    impl Shape for Poly {
        fn sides(&self) -> u32 {
            self.0
        }
        fn grow(&mut self) {
            self.0 += 1;
        }
    }

    #[test]
    fn empty_collection_does_not_allocate() {
        let features = Features::new();
        assert_eq!(features.entries.capacity(), 0);
        assert_eq!(
            std::mem::size_of::<Features>(),
            5 * std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn revision_bumps_on_every_change_and_only_then() {
        let mut f = Features::new();
        f.insert(1u8);
        f.insert(2u8); // replacing counts as a change
        assert_eq!(f.revision(), 2);
        let _ = f.get::<u8>();
        let _ = f.get_mut::<u8>();
        assert_eq!(f.revision(), 2, "reads do not bump");
        assert_eq!(f.remove::<u16>(), None);
        assert_eq!(f.revision(), 2, "removing nothing does not bump");
        f.remove::<u8>();
        assert_eq!(f.revision(), 3);
    }

    #[test]
    fn revision_includes_the_defaults() {
        let mut base = Features::new();
        base.insert(1u8);
        base.insert(2u16);
        let mut f = Features::with_defaults(Arc::new(base));
        assert_eq!(f.revision(), 2);
        f.insert(3u32);
        assert_eq!(f.revision(), 3);
    }

    #[test]
    fn defaults_show_through_can_be_shadowed_and_are_read_only() {
        let mut server = Features::new();
        server.insert("server");
        let mut connection = Features::with_defaults(Arc::new(server));
        connection.insert(5u64);
        let mut request = Features::with_defaults(Arc::new(connection));
        assert_eq!(request.get::<&str>(), Some(&"server"), "two layers down");
        assert_eq!(request.get::<u64>(), Some(&5));
        assert!(request.get_mut::<u64>().is_none(), "defaults are read-only");
        request.insert(6u64);
        assert_eq!(request.get::<u64>(), Some(&6));
        assert_eq!(request.remove::<u64>(), Some(6));
        assert_eq!(request.get::<u64>(), Some(&5));
        assert_eq!(request.remove::<u64>(), None, "a default cannot be removed");
    }

    #[test]
    fn trait_object_features_are_keyed_by_the_trait() {
        let mut f = Features::new();
        f.insert_dyn::<dyn Shape>(Box::new(Poly(3)));
        f.get_dyn_mut::<dyn Shape>().unwrap().grow();
        assert_eq!(f.get_dyn::<dyn Shape>().unwrap().sides(), 4);
        assert!(
            f.get::<Poly>().is_none(),
            "not visible under the concrete type"
        );
        let old = f.insert_dyn::<dyn Shape>(Box::new(Poly(8))).unwrap();
        assert_eq!(old.sides(), 4);
        assert!(f.contains_dyn::<dyn Shape>());
        assert_eq!(f.remove_dyn::<dyn Shape>().unwrap().sides(), 8);
        assert!(!f.contains_dyn::<dyn Shape>());
    }

    #[test]
    fn debug_prints_type_names() {
        let mut base = Features::new();
        base.insert(1u16);
        let mut f = Features::with_defaults(Arc::new(base));
        f.insert(String::new());
        f.insert_dyn::<dyn Shape>(Box::new(Poly(1)));
        let text = format!("{f:?}");
        assert!(text.contains("alloc::string::String"), "{text}");
        assert!(
            text.contains("dyn serverbridge::features::tests::Shape"),
            "{text}"
        );
        assert!(text.contains("u16"), "{text}");
        assert_eq!(f.type_names().len(), 3);
    }

    #[test]
    fn clear_and_extend() {
        let mut a = Features::new();
        a.insert(1u8);
        let mut b = Features::new();
        b.insert(2u8);
        b.insert(3u16);
        a.extend(b);
        assert_eq!(a.get::<u8>(), Some(&2));
        assert_eq!(a.len(), 2);
        a.clear();
        assert!(a.is_empty());
    }
}
