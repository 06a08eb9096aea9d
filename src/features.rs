//! A collection of features keyed by type: one per request, the analogue of
//! ASP.NET Core's `IFeatureCollection`.
//!
//! See [`Features`].

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

type AnyBox = Box<dyn Any + Send + Sync>;

/// How many standard features have a fixed slot (see [`known_slot`]).
const KNOWN: usize = 12;
/// "Not here" in [`Features::known`] and "not a standard feature" in
/// [`Entry::slot`].
const NO_SLOT: u8 = u8::MAX;
/// In [`Features::known`]: present, at an index too large for a byte
/// (a collection of hundreds of entries); found by the scan.
const PAST_INDEX: u8 = u8::MAX - 1;

/// What [`Features::known`] holds for an entry at `index`.
fn index_byte(index: usize) -> u8 {
    u8::try_from(index).map_or(PAST_INDEX, |i| i.min(PAST_INDEX))
}

/// The fixed slot of a standard feature, or [`NO_SLOT`].
///
/// Kestrel's feature collection keeps a field per well-known feature and a
/// list for the rest; this is the same idea. Every server and the context
/// look these up on every request, so they must not cost a scan. For a
/// concrete `T` the comparisons below are between constants and fold away
/// at compile time: a lookup of a standard feature is an index, a lookup of
/// any other type goes straight to the scan.
#[inline(always)]
fn known_slot(id: TypeId) -> u8 {
    use crate::feature::{
        ConnectionClose, ConnectionInfo, MaxRequestBodySize, RequestFeature, RequestId,
        RequestLifetime, RequestTrailers, ResponseBody, ResponseFeature, ResponseTrailers, TlsInfo,
        Upgrade,
    };
    let known = [
        TypeId::of::<RequestFeature>(),
        TypeId::of::<ResponseFeature>(),
        TypeId::of::<dyn ResponseBody>(),
        TypeId::of::<RequestLifetime>(),
        TypeId::of::<RequestId>(),
        TypeId::of::<MaxRequestBodySize>(),
        TypeId::of::<ResponseTrailers>(),
        TypeId::of::<RequestTrailers>(),
        TypeId::of::<ConnectionInfo>(),
        TypeId::of::<ConnectionClose>(),
        TypeId::of::<dyn Upgrade>(),
        TypeId::of::<TlsInfo>(),
    ];
    let mut slot = 0;
    while slot < KNOWN {
        if known[slot] == id {
            return slot as u8;
        }
        slot += 1;
    }
    NO_SLOT
}

/// A type's id and its [`known_slot`], computed where the type is known so
/// the slot folds to a constant.
#[derive(Clone, Copy)]
pub(crate) struct Key {
    id: TypeId,
    slot: u8,
}

/// The [`Key`] of `T`.
#[inline(always)]
pub(crate) fn key<T: ?Sized + 'static>() -> Key {
    let id = TypeId::of::<T>();
    Key {
        id,
        slot: known_slot(id),
    }
}

struct Entry {
    id: TypeId,
    /// `known_slot(id)`, kept so a move inside `entries` can update the
    /// index.
    slot: u8,
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
/// Entries live in a small vector. The standard features of
/// [`crate::feature`] that servers fill on every request (request, response,
/// response body, lifetime, request id, body size limit, trailers,
/// connection info, connection close, upgrade, TLS info) are found through a
/// fixed index, as in Kestrel's feature collection; any other type is found
/// by a linear search: a request carries a dozen features, where a vector
/// beats a hash map. A collection with thousands of entries would be slow.
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
pub struct Features {
    entries: Vec<Entry>,
    /// Where each standard feature sits in `entries` ([`NO_SLOT`]: absent).
    known: [u8; KNOWN],
    defaults: Option<Arc<Features>>,
    /// Local changes plus the defaults' revision when they were attached:
    /// defaults sit behind an `Arc` and cannot change, so this stays exact
    /// without walking the layers on every read.
    revision: u64,
}

impl Default for Features {
    fn default() -> Self {
        Features::new()
    }
}

impl Features {
    /// An empty collection. Allocates nothing until the first insert.
    pub const fn new() -> Self {
        Features {
            entries: Vec::new(),
            known: [NO_SLOT; KNOWN],
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
            known: [NO_SLOT; KNOWN],
            revision: defaults.revision(),
            defaults: Some(defaults),
        }
    }

    /// An empty collection over `defaults` with room for `capacity` local
    /// entries (servers know how many features they put in).
    pub fn with_capacity(capacity: usize, defaults: Option<Arc<Features>>) -> Self {
        Features {
            entries: Vec::with_capacity(capacity),
            known: [NO_SLOT; KNOWN],
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
        // Always moves forward, so a cache keyed by any earlier value is
        // stale: defaults with a lower revision than the old ones must not
        // take the count back to a value it had before.
        self.revision = (self.revision - old + new).max(self.revision) + 1;
    }

    /// A counter that changes whenever the collection (or its defaults) changes.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    #[inline(always)]
    fn position(&self, key: Key) -> Option<usize> {
        let id = key.id;
        match key.slot {
            NO_SLOT => self.entries.iter().position(|e| e.id == id),
            slot => match self.known[usize::from(slot)] {
                NO_SLOT => None,
                PAST_INDEX => self.entries.iter().position(|e| e.id == id),
                index => Some(usize::from(index)),
            },
        }
    }

    fn put(&mut self, key: Key, name: &'static str, value: AnyBox) -> Option<AnyBox> {
        self.revision += 1;
        match self.position(key) {
            Some(index) => Some(std::mem::replace(&mut self.entries[index].value, value)),
            None => {
                let Key { id, slot } = key;
                if slot != NO_SLOT {
                    self.known[usize::from(slot)] = index_byte(self.entries.len());
                }
                self.entries.push(Entry {
                    id,
                    slot,
                    name,
                    value,
                });
                None
            }
        }
    }

    fn take(&mut self, key: Key) -> Option<AnyBox> {
        let index = self.position(key)?;
        self.revision += 1;
        let removed = self.entries.swap_remove(index);
        if removed.slot != NO_SLOT {
            self.known[usize::from(removed.slot)] = NO_SLOT;
        }
        // The last entry moved into `index`: its slot follows it.
        if let Some(moved) = self.entries.get(index) {
            if moved.slot != NO_SLOT {
                self.known[usize::from(moved.slot)] = index_byte(index);
            }
        }
        Some(removed.value)
    }

    fn lookup(&self, key: Key) -> Option<&AnyBox> {
        match self.position(key) {
            Some(index) => Some(&self.entries[index].value),
            None => self.defaults.as_ref()?.lookup(key),
        }
    }

    fn lookup_mut(&mut self, key: Key) -> Option<&mut AnyBox> {
        let index = self.position(key)?;
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
        self.put(key::<T>(), std::any::type_name::<T>(), Box::new(value))
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
        self.lookup(key::<T>())?.downcast_ref::<T>()
    }

    /// The local feature of type `T` made ready for the next request: reset
    /// in place by `reset` when the collection has it (a reused one), else
    /// made by `fresh` and inserted. Returns a clone: the handle a server
    /// keeps for itself (a body size limit, a lifetime).
    ///
    /// # Example
    ///
    /// ```
    /// use serverbridge::feature::RequestLifetime;
    ///
    /// let mut features = serverbridge::Features::new();
    /// let first = features.reset_or_insert(RequestLifetime::renew, RequestLifetime::new);
    /// first.abort();
    /// drop(first);
    /// let next = features.reset_or_insert(RequestLifetime::renew, RequestLifetime::new);
    /// assert!(!next.is_cancelled());
    /// ```
    #[inline]
    pub fn reset_or_insert<T: Clone + Send + Sync + 'static>(
        &mut self,
        reset: impl FnOnce(&mut T),
        fresh: impl FnOnce() -> T,
    ) -> T {
        if let Some(slot) = self.get_mut::<T>() {
            reset(slot);
            return slot.clone();
        }
        let value = fresh();
        self.insert(value.clone());
        value
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
        self.lookup_mut(key::<T>())?.downcast_mut::<T>()
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
        self.take(key::<T>())
            .and_then(|old| old.downcast::<T>().ok().map(|b| *b))
    }

    /// Whether a feature of type `T` is visible (locally or in the defaults).
    pub fn contains<T: Send + Sync + 'static>(&self) -> bool {
        self.lookup(key::<T>()).is_some()
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
        if let Some(index) = self.position(key::<T>()) {
            if let Some(slot) = self.entries[index].value.downcast_mut::<Box<T>>() {
                let old = std::mem::replace(slot, value);
                self.revision += 1;
                return Some(old);
            }
        }
        self.put(key::<T>(), std::any::type_name::<T>(), Box::new(value))
            .and_then(|old| old.downcast::<Box<T>>().ok().map(|b| *b))
    }

    /// The behaviour feature stored as the trait object `T`.
    pub fn get_dyn<T: ?Sized + Send + Sync + 'static>(&self) -> Option<&T> {
        self.lookup(key::<T>())?
            .downcast_ref::<Box<T>>()
            .map(|b| &**b)
    }

    /// The local behaviour feature stored as the trait object `T`, mutably.
    pub fn get_dyn_mut<T: ?Sized + Send + Sync + 'static>(&mut self) -> Option<&mut T> {
        self.lookup_mut(key::<T>())?
            .downcast_mut::<Box<T>>()
            .map(|b| &mut **b)
    }

    /// Removes the local behaviour feature stored as the trait object `T`.
    pub fn remove_dyn<T: ?Sized + Send + Sync + 'static>(&mut self) -> Option<Box<T>> {
        self.take(key::<T>())
            .and_then(|old| old.downcast::<Box<T>>().ok().map(|b| *b))
    }

    /// Whether a behaviour feature stored as `T` is visible.
    pub fn contains_dyn<T: ?Sized + Send + Sync + 'static>(&self) -> bool {
        self.lookup(key::<T>()).is_some()
    }

    /// The index of the local entry of type `id` (for [`HttpContext`]'s
    /// revision-checked cache).
    ///
    /// [`HttpContext`]: crate::HttpContext
    pub(crate) fn local_index(&self, key: Key) -> Option<usize> {
        self.position(key)
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
        let (d_at, t_at) = (self.position(key::<D>()), self.position(key::<T>()));
        fn as_d<D: ?Sized + 'static>(entry: &mut Entry) -> Option<&mut D> {
            entry.value.downcast_mut::<Box<D>>().map(|b| &mut **b)
        }
        fn as_t<T: 'static>(entry: &Entry) -> Option<&T> {
            entry.value.downcast_ref::<T>()
        }
        match (d_at, t_at) {
            (Some(d), Some(t)) if d < t => {
                let (low, high) = self.entries.split_at_mut(t);
                (as_d::<D>(&mut low[d]), as_t::<T>(&high[0]))
            }
            (Some(d), Some(t)) if t < d => {
                let (low, high) = self.entries.split_at_mut(d);
                (as_d::<D>(&mut high[0]), as_t::<T>(&low[t]))
            }
            (Some(d), _) => (as_d::<D>(&mut self.entries[d]), None),
            (None, Some(t)) => (None, as_t::<T>(&self.entries[t])),
            (None, None) => (None, None),
        }
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
            self.known = [NO_SLOT; KNOWN];
            self.revision += 1;
        }
    }

    /// Moves every local entry of `other` into `self`, replacing entries of the
    /// same type.
    pub fn extend(&mut self, other: Features) {
        for entry in other.entries {
            let key = Key {
                id: entry.id,
                slot: entry.slot,
            };
            self.put(key, entry.name, entry.value);
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
        // Vec, defaults, revision, and the standard features' index.
        assert!(std::mem::size_of::<Features>() <= 7 * std::mem::size_of::<usize>());
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
    fn replacing_the_defaults_never_takes_the_revision_back() {
        let mut busy = Features::new();
        for n in 0..10u32 {
            busy.insert(n);
        }
        let busy = Arc::new(busy);
        let mut f = Features::with_defaults(busy);
        let mut seen = vec![f.revision()];
        f.insert(1u8);
        seen.push(f.revision());
        // Quieter defaults: the revision still moves to a value never seen.
        f.set_defaults(Some(Arc::new(Features::new())));
        assert!(!seen.contains(&f.revision()), "{seen:?} {}", f.revision());
        assert!(f.revision() > *seen.iter().max().unwrap());
        seen.push(f.revision());
        f.set_defaults(None);
        assert!(f.revision() > *seen.iter().max().unwrap());
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
    fn standard_features_stay_found_as_entries_move() {
        use crate::feature::{RequestId, RequestLifetime, ResponseTrailers};
        let mut f = Features::new();
        f.insert(RequestId("a".into()));
        f.insert(1u8);
        f.insert(RequestLifetime::new());
        f.insert(ResponseTrailers::default());
        // Removing the first entry moves the last (a standard one) into its
        // place: its index must follow.
        assert!(f.remove::<RequestId>().is_some());
        assert!(f.get::<ResponseTrailers>().is_some());
        assert!(f.get::<RequestLifetime>().is_some());
        assert_eq!(f.get::<u8>(), Some(&1));
        assert!(f.get::<RequestId>().is_none());
        f.insert(RequestId("b".into()));
        assert_eq!(f.get::<RequestId>().map(|id| id.0.as_str()), Some("b"));
        f.clear();
        assert!(f.get::<ResponseTrailers>().is_none());
        assert!(f.remove::<RequestLifetime>().is_none());
    }

    #[test]
    fn standard_features_past_the_byte_index_are_still_found() {
        use crate::feature::{RequestId, ResponseTrailers};
        #[derive(Debug)]
        struct Filler<const N: usize>;
        // 256 entries of distinct types, then two standard ones beyond index 254.
        fn fill(f: &mut Features) {
            fn add<const N: usize>(f: &mut Features) {
                f.insert(Filler::<N>);
            }
            macro_rules! many {
                ($($n:literal)*) => { $( add::<$n>(f); )* };
            }
            many!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29
                30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56
                57 58 59 60 61 62 63 64 65 66 67 68 69 70 71 72 73 74 75 76 77 78 79 80 81 82 83
                84 85 86 87 88 89 90 91 92 93 94 95 96 97 98 99 100 101 102 103 104 105 106 107
                108 109 110 111 112 113 114 115 116 117 118 119 120 121 122 123 124 125 126 127
                128 129 130 131 132 133 134 135 136 137 138 139 140 141 142 143 144 145 146 147
                148 149 150 151 152 153 154 155 156 157 158 159 160 161 162 163 164 165 166 167
                168 169 170 171 172 173 174 175 176 177 178 179 180 181 182 183 184 185 186 187
                188 189 190 191 192 193 194 195 196 197 198 199 200 201 202 203 204 205 206 207
                208 209 210 211 212 213 214 215 216 217 218 219 220 221 222 223 224 225 226 227
                228 229 230 231 232 233 234 235 236 237 238 239 240 241 242 243 244 245 246 247
                248 249 250 251 252 253 254 255);
        }
        let mut f = Features::new();
        fill(&mut f);
        f.insert(RequestId("deep".into()));
        f.insert(ResponseTrailers::default());
        assert_eq!(f.len(), 258);
        assert_eq!(f.get::<RequestId>().map(|id| id.0.as_str()), Some("deep"));
        // Moving a deep entry to a low index re-indexes it.
        assert!(f.remove::<Filler<3>>().is_some());
        assert!(f.get::<ResponseTrailers>().is_some());
        assert!(f.remove::<ResponseTrailers>().is_some());
        assert!(f.get::<ResponseTrailers>().is_none());
        assert_eq!(f.get::<RequestId>().map(|id| id.0.as_str()), Some("deep"));
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
