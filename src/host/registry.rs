//! [`Registry`]: the servers a [`Host`](super::Host) can pick by name.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::feature::ServerAddress;
use crate::server::HttpServer;
use crate::server_trait::Server;

/// Builds a server that will listen on the given addresses.
type Factory = dyn Fn(&[ServerAddress]) -> Result<Box<dyn Server>> + Send + Sync;

/// The servers a [`Host`](super::Host) can run, by name: `builtin` (the
/// [`HttpServer`]) from the start, and whatever adapters add with
/// [`register`](Registry::register).
///
/// A factory receives the configured addresses (port 0 not yet resolved) and
/// returns the server, not yet started. A factory that cannot serve an
/// address (a unix path on a TCP-only server) returns a configuration error
/// ([`Error::config`]) saying so.
///
/// Cloning is cheap: the factories are shared.
///
/// # Example
///
/// ```
/// use serverbridge::host::Registry;
/// use serverbridge::server::HttpServer;
///
/// let mut registry = Registry::new();
/// // An adapter registers its server in one line; here, a second name for
/// // the built-in one.
/// registry.register("kestrel-like", |addresses| {
///     Ok(Box::new(HttpServer::new().bind_addresses(addresses)?))
/// });
/// assert_eq!(registry.names(), ["builtin", "kestrel-like"]);
///
/// let err = registry.build("nope", &[]).err().expect("unknown");
/// assert!(err.is_config());
/// assert!(err.to_string().contains("builtin, kestrel-like"));
/// ```
#[derive(Clone)]
pub struct Registry {
    entries: Vec<(&'static str, Arc<Factory>)>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("names", &self.names())
            .finish()
    }
}

impl Default for Registry {
    /// As [`Registry::new`].
    fn default() -> Self {
        Registry::new()
    }
}

impl Registry {
    /// A registry holding `builtin`: the [`HttpServer`] bound to the
    /// addresses.
    pub fn new() -> Self {
        let mut registry = Registry::empty();
        registry.register("builtin", |addresses| {
            Ok(Box::new(HttpServer::new().bind_addresses(addresses)?))
        });
        registry
    }

    /// A registry with no server at all (to offer only adapters).
    pub fn empty() -> Self {
        Registry {
            entries: Vec::new(),
        }
    }

    /// Adds a server under `name`; a name registered again is replaced (the
    /// last registration wins). Returns the registry for chaining.
    pub fn register<F>(&mut self, name: &'static str, factory: F) -> &mut Self
    where
        F: Fn(&[ServerAddress]) -> Result<Box<dyn Server>> + Send + Sync + 'static,
    {
        let factory: Arc<Factory> = Arc::new(factory);
        match self.entries.iter_mut().find(|(known, _)| *known == name) {
            Some(entry) => entry.1 = factory,
            None => self.entries.push((name, factory)),
        }
        self
    }

    /// The registered names, in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        self.entries.iter().map(|(name, _)| *name).collect()
    }

    /// Whether `name` is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.iter().any(|(known, _)| *known == name)
    }

    /// Builds the server registered as `name` for `addresses`.
    ///
    /// # Errors
    ///
    /// An unknown name is a configuration error ([`Error::is_config`]) that
    /// lists the registered names; the factory's own error otherwise.
    pub fn build(&self, name: &str, addresses: &[ServerAddress]) -> Result<Box<dyn Server>> {
        let Some((_, factory)) = self.entries.iter().find(|(known, _)| *known == name) else {
            return Err(Error::config(format!(
                "unknown server {name:?}; available: {}",
                self.names().join(", ")
            )));
        };
        factory(addresses)
    }
}
