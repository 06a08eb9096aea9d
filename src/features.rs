//! A collection of features keyed by type: one per request, the analogue of
//! ASP.NET Core's `IFeatureCollection`.
//!
//! See [`Features`].

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

use crate::feature::{
    ConnectionClose, MaxRequestBodySize, RequestFeature, RequestId, RequestLifetime,
    RequestTrailers, ResponseBody, ResponseFeature, ResponseTrailers, Upgrade,
};

type AnyBox = Box<dyn Any + Send + Sync>;

/// "Not a standard feature" (see [`known_slot`]).
const NO_SLOT: u8 = u8::MAX;

/// The standard features' own fields, Kestrel's layout: its feature
/// collection keeps a field per well-known feature and a list for the rest.
/// Every server and the context reach these on every request; a field costs
/// no allocation of its own, no scan and no dynamic type check (see
/// [`Standard::slot`]).
///
/// The order of the fields is the slot order of [`known_slot`].
///
/// Connection- and server-level features (`ConnectionInfo`, `TlsInfo`,
/// `ServerAddresses`) are not here: they live in a connection's or server's
/// own small collection, the defaults layer of each request's, where a box
/// of every request field would cost each idle connection more than all
/// else it holds.
#[derive(Default)]
struct Standard {
    request: Option<RequestFeature>,
    response: Option<ResponseFeature>,
    body: Option<Box<dyn ResponseBody>>,
    lifetime: Option<RequestLifetime>,
    id: Option<RequestId>,
    max_body: Option<MaxRequestBodySize>,
    response_trailers: Option<ResponseTrailers>,
    request_trailers: Option<RequestTrailers>,
    close: Option<ConnectionClose>,
    upgrade: Option<Box<dyn Upgrade>>,
}

/// The slot of a standard feature (the index of its field in [`Standard`]),
/// or [`NO_SLOT`]. For a concrete `T` the comparisons below are between
/// constants and fold away at compile time.
#[inline(always)]
fn known_slot(id: TypeId) -> u8 {
    let known = [
        TypeId::of::<RequestFeature>(),
        TypeId::of::<ResponseFeature>(),
        TypeId::of::<dyn ResponseBody>(),
        TypeId::of::<RequestLifetime>(),
        TypeId::of::<RequestId>(),
        TypeId::of::<MaxRequestBodySize>(),
        TypeId::of::<ResponseTrailers>(),
        TypeId::of::<RequestTrailers>(),
        TypeId::of::<ConnectionClose>(),
        TypeId::of::<dyn Upgrade>(),
    ];
    let mut slot = 0;
    while slot < known.len() {
        if known[slot] == id {
            return slot as u8;
        }
        slot += 1;
    }
    NO_SLOT
}

/// Calls `$m!(field, Type)` for every field of [`Standard`], in slot order,
/// so the per-field code below is written once.
macro_rules! each_standard {
    ($m:ident) => {
        $m!(request, RequestFeature);
        $m!(response, ResponseFeature);
        $m!(body, dyn ResponseBody);
        $m!(lifetime, RequestLifetime);
        $m!(id, RequestId);
        $m!(max_body, MaxRequestBodySize);
        $m!(response_trailers, ResponseTrailers);
        $m!(request_trailers, RequestTrailers);
        $m!(close, ConnectionClose);
        $m!(upgrade, dyn Upgrade);
    };
}

impl Standard {
    /// The field of `slot` (an `Option` of the feature, a boxed trait object
    /// for the behaviour features) as `&dyn Any`. With a constant `slot` the
    /// match folds to one field, and the downcast that follows compares two
    /// constant type ids: no virtual call, no check left at run time.
    #[inline(always)]
    fn slot(&self, slot: u8) -> &dyn Any {
        match slot {
            0 => &self.request,
            1 => &self.response,
            2 => &self.body,
            3 => &self.lifetime,
            4 => &self.id,
            5 => &self.max_body,
            6 => &self.response_trailers,
            7 => &self.request_trailers,
            8 => &self.close,
            9 => &self.upgrade,
            _ => &(),
        }
    }

    /// [`Standard::slot`], mutably.
    #[inline(always)]
    fn slot_mut(&mut self, slot: u8) -> Option<&mut dyn Any> {
        Some(match slot {
            0 => &mut self.request,
            1 => &mut self.response,
            2 => &mut self.body,
            3 => &mut self.lifetime,
            4 => &mut self.id,
            5 => &mut self.max_body,
            6 => &mut self.response_trailers,
            7 => &mut self.request_trailers,
            8 => &mut self.close,
            9 => &mut self.upgrade,
            _ => return None,
        })
    }

    /// The type of the field of `slot` (what [`Standard::slot`] downcasts
    /// to), without a `Standard` at hand.
    #[inline(always)]
    fn stored_id(slot: u8) -> Option<TypeId> {
        Some(match slot {
            0 => TypeId::of::<Option<RequestFeature>>(),
            1 => TypeId::of::<Option<ResponseFeature>>(),
            2 => TypeId::of::<Option<Box<dyn ResponseBody>>>(),
            3 => TypeId::of::<Option<RequestLifetime>>(),
            4 => TypeId::of::<Option<RequestId>>(),
            5 => TypeId::of::<Option<MaxRequestBodySize>>(),
            6 => TypeId::of::<Option<ResponseTrailers>>(),
            7 => TypeId::of::<Option<RequestTrailers>>(),
            8 => TypeId::of::<Option<ConnectionClose>>(),
            9 => TypeId::of::<Option<Box<dyn Upgrade>>>(),
            _ => return None,
        })
    }

    /// The type names of the present fields, in slot order.
    fn names(&self, out: &mut Vec<&'static str>) {
        macro_rules! name {
            ($field:ident, $type:ty) => {
                if self.$field.is_some() {
                    out.push(std::any::type_name::<$type>());
                }
            };
        }
        each_standard!(name);
    }

    /// How many fields are present.
    fn count(&self) -> usize {
        let mut n = 0;
        macro_rules! count {
            ($field:ident, $type:ty) => {
                n += usize::from(self.$field.is_some());
            };
        }
        each_standard!(count);
        n
    }

    /// Empties every field; returns how many were present.
    fn clear(&mut self) -> usize {
        let mut n = 0;
        macro_rules! clear {
            ($field:ident, $type:ty) => {
                n += usize::from(self.$field.take().is_some());
            };
        }
        each_standard!(clear);
        n
    }

    /// Moves every present field of `other` into `self`; returns how many.
    fn absorb(&mut self, other: Standard) -> usize {
        let mut n = 0;
        macro_rules! absorb {
            ($field:ident, $type:ty) => {
                if let Some(value) = other.$field {
                    self.$field = Some(value);
                    n += 1;
                }
            };
        }
        each_standard!(absorb);
        n
    }
}

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
/// what they derive from the collection compare revisions to know when
/// their cache is stale (a server that reuses a collection checks that the
/// app left its set of features as the server built it).
///
/// # Storage
///
/// The standard features of [`crate::feature`] that servers fill on every
/// request (request, response, response body, lifetime, request id, body
/// size limit, trailers both ways, connection info, connection close,
/// upgrade, TLS info) have a field each, as in Kestrel's feature collection:
/// reaching one is a field access, checked at compile time. They sit in one
/// box, made on the first insert of a standard feature, so an empty
/// collection allocates nothing and a server that reuses a collection
/// allocates nothing per request for them. Any other type is an entry in a
/// small vector, found by a linear search: a request carries a few such
/// features, where a vector beats a hash map. A collection with thousands
/// of them would be slow.
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
    /// The standard features (`None` until the first is inserted).
    standard: Option<Box<Standard>>,
    /// Every other feature.
    entries: Vec<Entry>,
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
            standard: None,
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
            standard: None,
            entries: Vec::new(),
            revision: defaults.revision(),
            defaults: Some(defaults),
        }
    }

    /// An empty collection over `defaults` with room for `capacity` local
    /// features other than the standard ones (those have their own fields).
    pub fn with_capacity(capacity: usize, defaults: Option<Arc<Features>>) -> Self {
        Features {
            standard: None,
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
        // Always moves forward, so a cache keyed by any earlier value is
        // stale: defaults with a lower revision than the old ones must not
        // take the count back to a value it had before.
        self.revision = (self.revision - old + new).max(self.revision) + 1;
    }

    /// A counter that changes whenever the collection (or its defaults) changes.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The local field of `S` (the stored form of a standard feature:
    /// `Option<T>` or `Option<Box<dyn Trait>>`) if `id` is a standard
    /// feature stored that way; `None` otherwise.
    #[inline(always)]
    fn field<S: 'static>(&self, id: TypeId) -> Option<&S> {
        match known_slot(id) {
            NO_SLOT => None,
            slot => match &self.standard {
                Some(standard) => standard.slot(slot).downcast_ref::<S>(),
                None => None,
            },
        }
    }

    /// Whether `id` is a standard feature stored as `S`.
    #[inline(always)]
    fn is_field<S: 'static>(id: TypeId) -> bool {
        Standard::stored_id(known_slot(id)) == Some(TypeId::of::<S>())
    }

    /// The local field of `S`, mutably, made if the collection has no
    /// standard box yet (see [`Features::field`]).
    #[inline(always)]
    fn field_mut<S: 'static>(&mut self, id: TypeId) -> Option<&mut S> {
        match known_slot(id) {
            NO_SLOT => None,
            slot => self.standard.as_mut()?.slot_mut(slot)?.downcast_mut::<S>(),
        }
    }

    /// The local field of `S`, mutably, making the standard box if needed.
    #[inline(always)]
    fn field_or_make<S: 'static>(&mut self, id: TypeId) -> Option<&mut S> {
        match known_slot(id) {
            NO_SLOT => None,
            slot => self
                .standard
                .get_or_insert_with(Box::default)
                .slot_mut(slot)?
                .downcast_mut::<S>(),
        }
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

    /// The entry of a non-standard type, here or in the defaults.
    fn lookup(&self, id: TypeId) -> Option<&AnyBox> {
        let mut layer = self;
        loop {
            if let Some(index) = layer.position(id) {
                return Some(&layer.entries[index].value);
            }
            layer = layer.defaults.as_deref()?;
        }
    }

    fn lookup_mut(&mut self, id: TypeId) -> Option<&mut AnyBox> {
        let index = self.position(id)?;
        Some(&mut self.entries[index].value)
    }

    /// The field `S` of standard feature `id`, here or in the defaults:
    /// `Some(None)` when no layer has it, `None` when `id` is not stored
    /// as `S`.
    #[inline(always)]
    fn layered_field<S: 'static, V: ?Sized>(
        &self,
        id: TypeId,
        present: impl Fn(&S) -> Option<&V>,
    ) -> Option<Option<&V>> {
        if !Self::is_field::<S>(id) {
            return None;
        }
        let mut layer = self;
        loop {
            if let Some(value) = layer.field::<S>(id).and_then(&present) {
                return Some(Some(value));
            }
            match layer.defaults.as_deref() {
                Some(next) => layer = next,
                None => return Some(None),
            }
        }
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
        let id = TypeId::of::<T>();
        if Self::is_field::<Option<T>>(id) {
            let field = self.field_or_make::<Option<T>>(id)?;
            let old = field.replace(value);
            self.revision += 1;
            return old;
        }
        // Replacing a local entry writes into its box: no allocation.
        if let Some(slot) = self.get_mut::<T>() {
            let old = std::mem::replace(slot, value);
            self.revision += 1;
            return Some(old);
        }
        self.put(id, std::any::type_name::<T>(), Box::new(value))
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
    #[inline]
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        let id = TypeId::of::<T>();
        if let Some(found) = self.layered_field::<Option<T>, T>(id, Option::as_ref) {
            return found;
        }
        self.lookup(id)?.downcast_ref::<T>()
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
    #[inline]
    pub fn get_mut<T: Send + Sync + 'static>(&mut self) -> Option<&mut T> {
        let id = TypeId::of::<T>();
        if Self::is_field::<Option<T>>(id) {
            return self.field_mut::<Option<T>>(id)?.as_mut();
        }
        self.lookup_mut(id)?.downcast_mut::<T>()
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
        let id = TypeId::of::<T>();
        if Self::is_field::<Option<T>>(id) {
            let old = self.field_mut::<Option<T>>(id)?.take()?;
            self.revision += 1;
            return Some(old);
        }
        self.take(id)
            .and_then(|old| old.downcast::<T>().ok().map(|b| *b))
    }

    /// Whether a feature of type `T` is visible (locally or in the defaults).
    #[inline]
    pub fn contains<T: Send + Sync + 'static>(&self) -> bool {
        self.get::<T>().is_some()
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
        let id = TypeId::of::<T>();
        if Self::is_field::<Option<Box<T>>>(id) {
            let field = self.field_or_make::<Option<Box<T>>>(id)?;
            let old = field.replace(value);
            self.revision += 1;
            return old;
        }
        if let Some(index) = self.position(id) {
            if let Some(slot) = self.entries[index].value.downcast_mut::<Box<T>>() {
                let old = std::mem::replace(slot, value);
                self.revision += 1;
                return Some(old);
            }
        }
        self.put(id, std::any::type_name::<T>(), Box::new(value))
            .and_then(|old| old.downcast::<Box<T>>().ok().map(|b| *b))
    }

    /// The behaviour feature stored as the trait object `T`.
    #[inline]
    pub fn get_dyn<T: ?Sized + Send + Sync + 'static>(&self) -> Option<&T> {
        let id = TypeId::of::<T>();
        if let Some(found) = self.layered_field::<Option<Box<T>>, T>(id, |f| f.as_deref()) {
            return found;
        }
        self.lookup(id)?.downcast_ref::<Box<T>>().map(|b| &**b)
    }

    /// The local behaviour feature stored as the trait object `T`, mutably.
    #[inline]
    pub fn get_dyn_mut<T: ?Sized + Send + Sync + 'static>(&mut self) -> Option<&mut T> {
        let id = TypeId::of::<T>();
        if Self::is_field::<Option<Box<T>>>(id) {
            return self.field_mut::<Option<Box<T>>>(id)?.as_deref_mut();
        }
        self.lookup_mut(id)?
            .downcast_mut::<Box<T>>()
            .map(|b| &mut **b)
    }

    /// Removes the local behaviour feature stored as the trait object `T`.
    pub fn remove_dyn<T: ?Sized + Send + Sync + 'static>(&mut self) -> Option<Box<T>> {
        let id = TypeId::of::<T>();
        if Self::is_field::<Option<Box<T>>>(id) {
            let old = self.field_mut::<Option<Box<T>>>(id)?.take()?;
            self.revision += 1;
            return Some(old);
        }
        self.take(id)
            .and_then(|old| old.downcast::<Box<T>>().ok().map(|b| *b))
    }

    /// Whether a behaviour feature stored as `T` is visible.
    #[inline]
    pub fn contains_dyn<T: ?Sized + Send + Sync + 'static>(&self) -> bool {
        self.get_dyn::<T>().is_some()
    }

    /// The local response sink, mutably, and the local response at the same
    /// time (they are distinct fields).
    pub(crate) fn sink_and_response(
        &mut self,
    ) -> (
        Option<&mut (dyn ResponseBody + 'static)>,
        Option<&mut ResponseFeature>,
    ) {
        match self.standard.as_deref_mut() {
            Some(standard) => (standard.body.as_deref_mut(), standard.response.as_mut()),
            None => (None, None),
        }
    }

    /// Number of local entries (defaults not counted).
    pub fn len(&self) -> usize {
        self.entries.len() + self.standard.as_ref().map_or(0, |s| s.count())
    }

    /// Whether there are no local entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every local entry, keeping the allocations and the defaults.
    pub fn clear(&mut self) {
        let standard = self.standard.as_mut().map_or(0, |s| s.clear());
        if standard > 0 || !self.entries.is_empty() {
            self.entries.clear();
            self.revision += 1;
        }
    }

    /// Moves every local entry of `other` into `self`, replacing entries of the
    /// same type.
    pub fn extend(&mut self, other: Features) {
        if let Some(standard) = other.standard {
            let moved = match self.standard.as_mut() {
                Some(own) => own.absorb(*standard),
                None => {
                    let moved = standard.count();
                    self.standard = Some(standard);
                    moved
                }
            };
            self.revision += moved as u64;
        }
        for entry in other.entries {
            self.put(entry.id, entry.name, entry.value);
        }
    }

    /// The type names of the visible features, local ones first, then the
    /// defaults not shadowed by a local entry.
    pub fn type_names(&self) -> Vec<&'static str> {
        let mut names = self.local_names();
        if let Some(defaults) = &self.defaults {
            for name in defaults.type_names() {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        names
    }

    /// The type names of the local features: the standard ones, then the rest.
    fn local_names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if let Some(standard) = &self.standard {
            standard.names(&mut names);
        }
        names.extend(self.entries.iter().map(|e| e.name));
        names
    }
}

impl fmt::Debug for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Features");
        d.field("revision", &self.revision);
        d.field("local", &self.local_names());
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
    fn standard_features_stay_found_as_other_entries_move() {
        use crate::feature::{RequestId, RequestLifetime, ResponseTrailers};
        let mut f = Features::new();
        f.insert(RequestId("a".into()));
        f.insert(1u8);
        f.insert(2u16);
        f.insert(RequestLifetime::new());
        f.insert(ResponseTrailers::default());
        assert_eq!(f.len(), 5);
        // Removing the first plain entry moves the last one into its place.
        assert_eq!(f.remove::<u8>(), Some(1));
        assert_eq!(f.get::<u16>(), Some(&2));
        assert!(f.remove::<RequestId>().is_some());
        assert!(f.get::<ResponseTrailers>().is_some());
        assert!(f.get::<RequestLifetime>().is_some());
        assert!(f.get::<RequestId>().is_none());
        f.insert(RequestId("b".into()));
        assert_eq!(f.get::<RequestId>().map(|id| id.0.as_str()), Some("b"));
        let revision = f.revision();
        f.clear();
        assert!(f.revision() > revision);
        assert!(f.is_empty());
        assert!(f.get::<ResponseTrailers>().is_none());
        assert!(f.remove::<RequestLifetime>().is_none());
    }

    #[test]
    fn standard_features_layer_shadow_and_count_like_any_other() {
        use crate::feature::{ConnectionInfo, RequestFeature, ResponseBody, ResponseHead, TlsInfo};
        let mut connection = Features::new();
        connection.insert(ConnectionInfo {
            id: "outer".into(),
            ..ConnectionInfo::default()
        });
        let mut f = Features::with_defaults(Arc::new(connection));
        assert!(f.is_empty(), "defaults are not local");
        assert_eq!(
            f.get::<ConnectionInfo>().map(|c| c.id.as_str()),
            Some("outer")
        );
        assert!(
            f.get_mut::<ConnectionInfo>().is_none(),
            "defaults are read-only"
        );
        assert!(f.remove::<ConnectionInfo>().is_none());
        let before = f.revision();
        f.insert(ConnectionInfo {
            id: "inner".into(),
            ..ConnectionInfo::default()
        });
        assert_eq!(f.revision(), before + 1);
        assert_eq!(
            f.get::<ConnectionInfo>().map(|c| c.id.as_str()),
            Some("inner")
        );
        assert_eq!(f.len(), 1);
        assert!(f.remove::<ConnectionInfo>().is_some());
        assert_eq!(
            f.get::<ConnectionInfo>().map(|c| c.id.as_str()),
            Some("outer")
        );
        assert!(!f.contains::<TlsInfo>());
        // Behaviour features have fields too, keyed by the trait.
        struct Nothing;
        #[async_trait::async_trait]
        impl ResponseBody for Nothing {
            async fn start(&mut self, _: ResponseHead<'_>) -> crate::Result<()> {
                Ok(())
            }
            async fn write(&mut self, _: bytes::Bytes) -> crate::Result<()> {
                Ok(())
            }
            async fn flush(&mut self) -> crate::Result<()> {
                Ok(())
            }
            async fn complete(&mut self, _: Option<http::HeaderMap>) -> crate::Result<()> {
                Ok(())
            }
            fn abort(&mut self, _: &crate::Error) {}
        }
        assert!(f
            .insert_dyn::<dyn ResponseBody>(Box::new(Nothing))
            .is_none());
        assert!(f
            .insert_dyn::<dyn ResponseBody>(Box::new(Nothing))
            .is_some());
        assert!(f.contains_dyn::<dyn ResponseBody>());
        f.insert(RequestFeature::default());
        assert!(f.get_dyn_mut::<dyn ResponseBody>().is_some());
        assert!(f.get::<RequestFeature>().is_some());
        let names = f.type_names();
        assert!(
            names.iter().any(|n| n.ends_with("ResponseBody")),
            "{names:?}"
        );
        assert!(
            names.iter().any(|n| n.ends_with("RequestFeature")),
            "{names:?}"
        );
        assert!(
            names.iter().any(|n| n.ends_with("ConnectionInfo")),
            "{names:?}"
        );
        assert_eq!(names.len(), 3);
        assert!(f.remove_dyn::<dyn ResponseBody>().is_some());
        assert!(!f.contains_dyn::<dyn ResponseBody>());
        // A standard type stored the other way (boxed, by `insert_dyn`) is
        // an ordinary entry: it never fills the field.
        f.insert_dyn::<RequestId>(Box::new(RequestId::default()));
        assert!(f.get_dyn::<RequestId>().is_some());
        assert!(f.get::<RequestId>().is_none());
    }

    #[test]
    fn the_standard_fields_are_listed_and_typed_in_slot_order() {
        let mut written = Vec::new();
        Standard::default().names(&mut written);
        assert!(written.is_empty());
        // The list the per-field code is generated from, in its order.
        let mut listed = Vec::new();
        macro_rules! entry {
            ($field:ident, $type:ty) => {
                listed.push((std::any::type_name::<$type>(), TypeId::of::<$type>()));
            };
        }
        each_standard!(entry);
        assert_eq!(listed.len(), 10);
        for (slot, (name, id)) in listed.into_iter().enumerate() {
            let slot = u8::try_from(slot).unwrap();
            assert_eq!(known_slot(id), slot, "{name}");
            assert_eq!(
                Some(Standard::default().slot(slot).type_id()),
                Standard::stored_id(slot),
                "{name}"
            );
        }
        assert!(Standard::stored_id(10).is_none());
        assert_eq!(known_slot(TypeId::of::<u8>()), NO_SLOT);
    }

    #[test]
    fn clear_and_extend() {
        use crate::feature::{RequestId, TlsInfo};
        let mut a = Features::new();
        a.insert(1u8);
        a.insert(RequestId("a".into()));
        let mut b = Features::new();
        b.insert(2u8);
        b.insert(3u16);
        b.insert(RequestId("b".into()));
        b.insert(TlsInfo::default());
        let revision = a.revision();
        a.extend(b);
        assert!(a.revision() >= revision + 4);
        assert_eq!(a.get::<u8>(), Some(&2));
        assert_eq!(a.get::<RequestId>().map(RequestId::as_str), Some("b"));
        assert!(a.contains::<TlsInfo>());
        assert_eq!(a.len(), 4);
        let mut c = Features::new();
        c.extend(a);
        assert_eq!(
            c.len(),
            4,
            "a collection without standard fields takes the box"
        );
        c.clear();
        assert!(c.is_empty());
    }
}
