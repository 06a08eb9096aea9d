//! The OWIN environment dictionary as a live view over the features.
//!
//! [`Environment`] answers the standard OWIN 1.0.1 keys (and the common
//! `server.*` / `host.*` ones) by reading and writing the request's
//! [`Features`]: reading `owin.RequestPath` reads
//! [`RequestFeature::path`]; writing `owin.ResponseStatusCode` sets
//! [`ResponseFeature::status`]. Nothing is copied, so feature-based code and
//! OWIN code can alternate in one pipeline. Keys it does not know are kept in
//! the [`Extras`] feature, so they survive a trip through feature-based code.
//!
//! An [`AppFunc`] is an async function of `&mut Environment`; OWIN middleware
//! maps an `AppFunc` to an `AppFunc`. [`OwinApp`] runs an `AppFunc` as an
//! [`Application`](crate::Application) on any server, and [`run_application`]
//! runs a feature-based application where only an environment exists.
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use serverbridge::owin::{keys, Environment, OwinApp, Value};
//! use serverbridge::testing::TestServer;
//! use serverbridge::Result;
//!
//! async fn hello(env: &mut Environment) -> Result<()> {
//!     let path = env.get(keys::REQUEST_PATH).unwrap().as_str().unwrap().to_owned();
//!     env.set(keys::RESPONSE_STATUS_CODE, Value::Int(201))?;
//!     env.write(format!("hello from {path}")).await
//! }
//!
//! let server = TestServer::new(OwinApp::new(hello));
//! let response = server.get("/owin").send().await.unwrap();
//! assert_eq!(response.status(), 201);
//! assert_eq!(response.text().await.unwrap(), "hello from /owin");
//! # });
//! ```
//!
//! [`RequestFeature::path`]: crate::feature::RequestFeature::path
//! [`ResponseFeature::status`]: crate::feature::ResponseFeature::status

use std::any::Any;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http::uri::Scheme;
use http::{HeaderMap, Method, StatusCode, Version};

use crate::body::RequestBody;
use crate::context::HttpContext;
use crate::error::{Error, Result};
use crate::feature::{
    Address, Callback, ConnectionInfo, RequestFeature, RequestId, RequestLifetime, ResponseBody,
    ResponseFeature, ResponseTrailers, ServerAddress, ServerAddresses, Upgrade,
};
use crate::features::Features;

mod bridge;
pub mod keys;

pub use bridge::{
    app_func, compose, run_application, AppFunc, AppFuncFn, BoxAppFunc, FeatureAppFunc, OwinApp,
    OwinMiddleware,
};

/// A value to store under a key.
pub enum Value {
    /// A string (method, path, scheme, protocol, ports …).
    Str(String),
    /// An integer (the status code).
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// Headers.
    Headers(HeaderMap),
    /// A request body (`owin.RequestBody`).
    RequestBody(RequestBody),
    /// A response sink (`owin.ResponseBody`): replaces the server's.
    ResponseBody(Box<dyn ResponseBody>),
    /// The request's cancellation signal (`owin.CallCancelled`): setting it
    /// replaces the request's [`RequestLifetime`].
    Cancellation(RequestLifetime),
    /// A callback for `server.OnSendingHeaders`: setting it registers it.
    Callback(Callback),
    /// Addresses (`host.Addresses`).
    Addresses(Vec<ServerAddress>),
    /// Anything else (`owin.RequestUser`, unknown keys).
    Any(Box<dyn Any + Send + Sync>),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.debug_tuple("Str").field(s).finish(),
            Value::Int(i) => f.debug_tuple("Int").field(i).finish(),
            Value::Bool(b) => f.debug_tuple("Bool").field(b).finish(),
            Value::Headers(h) => f.debug_tuple("Headers").field(h).finish(),
            Value::RequestBody(b) => f.debug_tuple("RequestBody").field(b).finish(),
            Value::ResponseBody(_) => f.write_str("ResponseBody"),
            Value::Cancellation(t) => f.debug_tuple("Cancellation").field(t).finish(),
            Value::Callback(_) => f.write_str("Callback"),
            Value::Addresses(a) => f.debug_tuple("Addresses").field(a).finish(),
            Value::Any(_) => f.write_str("Any"),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

/// A value read from a key: borrowed where the feature holds it, computed
/// where OWIN's type differs from the feature's.
pub enum ValueRef<'a> {
    /// A string.
    Str(Cow<'a, str>),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// Headers.
    Headers(&'a HeaderMap),
    /// The request body (read it with [`Environment::request_body_mut`]).
    RequestBody(&'a RequestBody),
    /// The response stream (write with [`Environment::write`]).
    ResponseBody,
    /// The request's cancellation signal (a clone of its
    /// [`RequestLifetime`]).
    Cancellation(RequestLifetime),
    /// The callback registrar (use [`Environment::on_sending_headers`]).
    OnSendingHeaders,
    /// Addresses.
    Addresses(Vec<ServerAddress>),
    /// A capability dictionary.
    Map(BTreeMap<String, String>),
    /// Anything else.
    Any(&'a (dyn Any + Send + Sync)),
}

impl fmt::Debug for ValueRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueRef::Str(s) => f.debug_tuple("Str").field(s).finish(),
            ValueRef::Int(i) => f.debug_tuple("Int").field(i).finish(),
            ValueRef::Bool(b) => f.debug_tuple("Bool").field(b).finish(),
            ValueRef::Headers(h) => f.debug_tuple("Headers").field(h).finish(),
            ValueRef::RequestBody(b) => f.debug_tuple("RequestBody").field(b).finish(),
            ValueRef::ResponseBody => f.write_str("ResponseBody"),
            ValueRef::Cancellation(t) => f.debug_tuple("Cancellation").field(t).finish(),
            ValueRef::OnSendingHeaders => f.write_str("OnSendingHeaders"),
            ValueRef::Addresses(a) => f.debug_tuple("Addresses").field(a).finish(),
            ValueRef::Map(m) => f.debug_tuple("Map").field(m).finish(),
            ValueRef::Any(_) => f.write_str("Any"),
        }
    }
}

impl<'a> ValueRef<'a> {
    /// The string, for string values (a `String` stored under an unknown
    /// key included).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ValueRef::Str(s) => Some(s),
            ValueRef::Any(any) => any.downcast_ref::<String>().map(String::as_str),
            _ => None,
        }
    }

    /// The integer, for integer values (an `i64` stored under an unknown key
    /// included).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            ValueRef::Int(i) => Some(*i),
            ValueRef::Any(any) => any.downcast_ref::<i64>().copied(),
            _ => None,
        }
    }

    /// The boolean, for boolean values (a `bool` stored under an unknown key
    /// included).
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            ValueRef::Bool(b) => Some(*b),
            ValueRef::Any(any) => any.downcast_ref::<bool>().copied(),
            _ => None,
        }
    }

    /// The headers, for header values (a `HeaderMap` stored under an unknown
    /// key included).
    pub fn as_headers(&self) -> Option<&'a HeaderMap> {
        match self {
            ValueRef::Headers(h) => Some(h),
            ValueRef::Any(any) => any.downcast_ref::<HeaderMap>(),
            _ => None,
        }
    }

    /// The value as a `T`, for [`ValueRef::Any`].
    pub fn downcast_ref<T: Any>(&self) -> Option<&'a T> {
        match self {
            ValueRef::Any(any) => any.downcast_ref(),
            _ => None,
        }
    }
}

/// Values stored under keys the environment does not map to a feature
/// (unknown keys, `owin.RequestUser`, `owin.ResponseProtocol`). A feature, so
/// they survive a trip through feature-based code.
#[derive(Default)]
pub struct Extras {
    values: HashMap<String, Box<dyn Any + Send + Sync>>,
}

impl fmt::Debug for Extras {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

impl Extras {
    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&(dyn Any + Send + Sync)> {
        self.values.get(key).map(|v| &**v)
    }

    /// Stores a value under `key`.
    pub fn insert(&mut self, key: impl Into<String>, value: Box<dyn Any + Send + Sync>) {
        self.values.insert(key.into(), value);
    }

    /// Removes the value under `key`.
    pub fn remove(&mut self, key: &str) -> Option<Box<dyn Any + Send + Sync>> {
        self.values.remove(key)
    }

    /// The keys.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }
}

fn type_error(key: &str, expected: &str) -> Error {
    Error::contract("owin.value-type", format!("{key} takes {expected}"))
}

fn version_text(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

fn parse_version(text: &str) -> Option<Version> {
    Some(match text {
        "HTTP/0.9" => Version::HTTP_09,
        "HTTP/1.0" => Version::HTTP_10,
        "HTTP/1.1" => Version::HTTP_11,
        "HTTP/2" | "HTTP/2.0" => Version::HTTP_2,
        "HTTP/3" | "HTTP/3.0" => Version::HTTP_3,
        _ => return None,
    })
}

/// The OWIN environment of one request; see the [module docs](self).
pub struct Environment {
    ctx: HttpContext,
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.keys()).finish()
    }
}

impl Default for Environment {
    fn default() -> Self {
        Environment::new()
    }
}

impl Environment {
    /// An environment for a host that speaks only OWIN: a default request
    /// (`GET /`, HTTP/1.1) and response (`200`), no sink. The host sets the
    /// request keys and `owin.ResponseBody`, then runs an application with
    /// [`run_application`].
    pub fn new() -> Self {
        let mut features = Features::new();
        features.insert(RequestFeature::default());
        features.insert(ResponseFeature::default());
        Environment {
            ctx: HttpContext::new(features),
        }
    }

    /// A view over a request's context.
    pub fn from_context(ctx: HttpContext) -> Self {
        Environment { ctx }
    }

    /// The context underneath.
    pub fn context(&self) -> &HttpContext {
        &self.ctx
    }

    /// The context underneath, mutably.
    pub fn context_mut(&mut self) -> &mut HttpContext {
        &mut self.ctx
    }

    /// Gives the context back.
    pub fn into_context(self) -> HttpContext {
        self.ctx
    }

    fn features(&self) -> &Features {
        self.ctx.features()
    }

    fn extras_mut(&mut self) -> &mut Extras {
        let features = self.ctx.features_mut();
        if !features.contains::<Extras>() {
            features.insert(Extras::default());
        }
        features.get_mut::<Extras>().expect("inserted above")
    }

    /// A local, writable copy of the connection info (shadowing the shared
    /// per-connection one).
    fn connection_mut(&mut self) -> &mut ConnectionInfo {
        let features = self.ctx.features_mut();
        if features.get_mut::<ConnectionInfo>().is_none() {
            let copy = features
                .get::<ConnectionInfo>()
                .cloned()
                .unwrap_or_default();
            features.insert(copy);
        }
        features
            .get_mut::<ConnectionInfo>()
            .expect("inserted above")
    }

    /// Reads a key. Standard keys read the features; others read [`Extras`].
    /// `None` when the key is absent (the server does not provide it).
    pub fn get(&self, key: &str) -> Option<ValueRef<'_>> {
        let features = self.features();
        let request = || self.ctx.try_request();
        let response = || self.ctx.try_response();
        let connection = || features.get::<ConnectionInfo>();
        let string = |s: &str| ValueRef::Str(Cow::Owned(s.to_owned()));
        Some(match key {
            keys::REQUEST_BODY => ValueRef::RequestBody(&request()?.body),
            keys::REQUEST_HEADERS => ValueRef::Headers(&request()?.headers),
            keys::REQUEST_METHOD => ValueRef::Str(Cow::Borrowed(request()?.method.as_str())),
            keys::REQUEST_PATH => ValueRef::Str(Cow::Borrowed(&request()?.path)),
            keys::REQUEST_PATH_BASE => ValueRef::Str(Cow::Borrowed(&request()?.path_base)),
            keys::REQUEST_PROTOCOL => {
                ValueRef::Str(Cow::Borrowed(version_text(request()?.version)))
            }
            keys::REQUEST_QUERY_STRING => ValueRef::Str(Cow::Borrowed(&request()?.query)),
            keys::REQUEST_SCHEME => ValueRef::Str(Cow::Borrowed(request()?.scheme.as_str())),
            keys::REQUEST_ID => ValueRef::Str(Cow::Borrowed(features.get::<RequestId>()?.as_str())),
            keys::RESPONSE_BODY => {
                features.get_dyn::<dyn ResponseBody>()?;
                ValueRef::ResponseBody
            }
            keys::RESPONSE_HEADERS => ValueRef::Headers(&response()?.headers),
            keys::RESPONSE_STATUS_CODE => ValueRef::Int(i64::from(response()?.status.as_u16())),
            keys::RESPONSE_REASON_PHRASE => {
                ValueRef::Str(Cow::Borrowed(response()?.reason_phrase()))
            }
            keys::RESPONSE_PROTOCOL => match features.get::<Extras>().and_then(|e| e.get(key)) {
                Some(value) => string(value.downcast_ref::<String>()?),
                None => ValueRef::Str(Cow::Borrowed(version_text(request()?.version))),
            },
            keys::CALL_CANCELLED => {
                ValueRef::Cancellation(features.get::<RequestLifetime>()?.clone())
            }
            keys::VERSION => ValueRef::Str(Cow::Borrowed(keys::OWIN_VERSION)),
            keys::REMOTE_IP_ADDRESS => string(&connection()?.peer.as_ref()?.ip()?.to_string()),
            keys::REMOTE_PORT => string(&connection()?.peer.as_ref()?.port()?.to_string()),
            keys::LOCAL_IP_ADDRESS => string(&connection()?.local.as_ref()?.ip()?.to_string()),
            keys::LOCAL_PORT => string(&connection()?.local.as_ref()?.port()?.to_string()),
            keys::IS_LOCAL => ValueRef::Bool(connection()?.is_local()),
            keys::CAPABILITIES => ValueRef::Map(self.capabilities()),
            keys::ON_SENDING_HEADERS => {
                response()?;
                ValueRef::OnSendingHeaders
            }
            keys::HOST_ADDRESSES => ValueRef::Addresses(features.get::<ServerAddresses>()?.get()),
            _ => ValueRef::Any(features.get::<Extras>()?.get(key)?),
        })
    }

    fn capabilities(&self) -> BTreeMap<String, String> {
        let features = self.features();
        let mut map = BTreeMap::new();
        map.insert("owin.Version".to_owned(), keys::OWIN_VERSION.to_owned());
        map.insert("sendfile.Version".to_owned(), "1.0".to_owned());
        if features.contains_dyn::<dyn Upgrade>() {
            map.insert("opaque.Version".to_owned(), "1.0".to_owned());
        }
        if features.contains::<ResponseTrailers>() {
            map.insert("serverbridge.ResponseTrailers".to_owned(), "1.0".to_owned());
        }
        map
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The keys that have a value: the standard ones present, then the extras.
    pub fn keys(&self) -> Vec<String> {
        let mut all: Vec<String> = keys::ALL
            .iter()
            .filter(|k| self.contains_key(k))
            .map(|k| (*k).to_owned())
            .collect();
        if let Some(extras) = self.features().get::<Extras>() {
            all.extend(
                extras
                    .keys()
                    .filter(|k| !keys::ALL.contains(k))
                    .map(str::to_owned),
            );
        }
        all
    }

    /// Writes a key. Standard keys write the features (with the value type
    /// OWIN gives them, checked: rule `owin.value-type`); read-only keys fail
    /// with rule `owin.read-only-key`; other keys go to [`Extras`].
    pub fn set(&mut self, key: &str, value: Value) -> Result<()> {
        if keys::READ_ONLY.contains(&key) {
            return Err(Error::contract(
                "owin.read-only-key",
                format!("{key} is read-only"),
            ));
        }
        let ctx = &mut self.ctx;
        match (key, value) {
            (keys::REQUEST_BODY, Value::RequestBody(body)) => ctx.request_mut().body = body,
            (keys::REQUEST_HEADERS, Value::Headers(h)) => ctx.request_mut().headers = h,
            (keys::REQUEST_METHOD, Value::Str(s)) => {
                ctx.request_mut().method = Method::from_bytes(s.as_bytes())
                    .map_err(|_| type_error(key, "an HTTP method"))?
            }
            (keys::REQUEST_PATH, Value::Str(s)) => ctx.request_mut().path = s,
            (keys::REQUEST_PATH_BASE, Value::Str(s)) => ctx.request_mut().path_base = s,
            (keys::REQUEST_PROTOCOL, Value::Str(s)) => {
                ctx.request_mut().version = parse_version(&s)
                    .ok_or_else(|| type_error(key, "HTTP/1.0, HTTP/1.1, HTTP/2"))?
            }
            (keys::REQUEST_QUERY_STRING, Value::Str(s)) => ctx.request_mut().query = s,
            (keys::REQUEST_SCHEME, Value::Str(s)) => {
                ctx.request_mut().scheme = s
                    .parse::<Scheme>()
                    .map_err(|_| type_error(key, "a URI scheme"))?
            }
            (keys::REQUEST_ID, Value::Str(s)) => {
                ctx.features_mut().insert(RequestId(s));
            }
            (keys::RESPONSE_BODY, Value::ResponseBody(sink)) => {
                ctx.features_mut().insert_dyn::<dyn ResponseBody>(sink);
            }
            (keys::RESPONSE_HEADERS, Value::Headers(h)) => ctx.response_mut().headers = h,
            (keys::RESPONSE_STATUS_CODE, Value::Int(code)) => {
                ctx.response_mut().status = u16::try_from(code)
                    .ok()
                    .and_then(|c| StatusCode::from_u16(c).ok())
                    .ok_or_else(|| type_error(key, "a status code from 100 to 999"))?
            }
            (keys::RESPONSE_REASON_PHRASE, Value::Str(s)) => ctx.response_mut().reason = Some(s),
            (keys::CALL_CANCELLED, Value::Cancellation(lifetime)) => {
                ctx.features_mut().insert(lifetime);
            }
            (keys::ON_SENDING_HEADERS, Value::Callback(callback)) => {
                ctx.response_mut().on_starting(callback)?
            }
            (keys::HOST_ADDRESSES, Value::Addresses(list)) => {
                let addresses = ServerAddresses::default();
                for address in list {
                    addresses.push(address);
                }
                ctx.features_mut().insert(addresses);
            }
            (keys::REMOTE_IP_ADDRESS | keys::LOCAL_IP_ADDRESS, Value::Str(s)) => {
                let ip: IpAddr = s.parse().map_err(|_| type_error(key, "an IP address"))?;
                let remote = key == keys::REMOTE_IP_ADDRESS;
                let info = self.connection_mut();
                let slot = if remote {
                    &mut info.peer
                } else {
                    &mut info.local
                };
                let port = slot.as_ref().and_then(Address::port).unwrap_or(0);
                *slot = Some(Address::Tcp(SocketAddr::new(ip, port)));
            }
            (keys::REMOTE_PORT | keys::LOCAL_PORT, Value::Str(s)) => {
                let port: u16 = s.parse().map_err(|_| type_error(key, "a port number"))?;
                let remote = key == keys::REMOTE_PORT;
                let info = self.connection_mut();
                let slot = if remote {
                    &mut info.peer
                } else {
                    &mut info.local
                };
                let ip = slot
                    .as_ref()
                    .and_then(Address::ip)
                    .unwrap_or([0, 0, 0, 0].into());
                *slot = Some(Address::Tcp(SocketAddr::new(ip, port)));
            }
            (keys::RESPONSE_PROTOCOL, Value::Str(s)) => {
                parse_version(&s).ok_or_else(|| type_error(key, "HTTP/1.0, HTTP/1.1, HTTP/2"))?;
                self.extras_mut().insert(key, Box::new(s));
            }
            (keys::REQUEST_USER, Value::Any(user)) => self.extras_mut().insert(key, user),
            (key, value) if keys::ALL.contains(&key) => {
                return Err(type_error(key, expected_type(key)).with_cause(format!("got {value:?}")))
            }
            (key, Value::Any(any)) => self.extras_mut().insert(key, any),
            (key, Value::Str(s)) => self.extras_mut().insert(key, Box::new(s)),
            (key, Value::Int(i)) => self.extras_mut().insert(key, Box::new(i)),
            (key, Value::Bool(b)) => self.extras_mut().insert(key, Box::new(b)),
            // Data comes back as its own type (`as_headers`,
            // `downcast_ref::<HeaderMap>()` …); behaviours stay opaque.
            (key, Value::Headers(h)) => self.extras_mut().insert(key, Box::new(h)),
            (key, Value::RequestBody(b)) => self.extras_mut().insert(key, Box::new(b)),
            (key, Value::Cancellation(c)) => self.extras_mut().insert(key, Box::new(c)),
            (key, Value::Addresses(a)) => self.extras_mut().insert(key, Box::new(a)),
            (key, other) => self.extras_mut().insert(key, Box::new(OpaqueValue(other))),
        }
        Ok(())
    }

    /// Removes an unknown key's value (standard keys cannot be removed: they
    /// are views over features).
    pub fn remove(&mut self, key: &str) -> Option<Box<dyn Any + Send + Sync>> {
        if keys::ALL.contains(&key) && key != keys::REQUEST_USER {
            return None;
        }
        self.ctx.features_mut().get_mut::<Extras>()?.remove(key)
    }

    /// The request or response headers, mutably (`owin.RequestHeaders`,
    /// `owin.ResponseHeaders`).
    pub fn headers_mut(&mut self, key: &str) -> Option<&mut HeaderMap> {
        match key {
            keys::REQUEST_HEADERS => Some(&mut self.ctx.request_mut().headers),
            keys::RESPONSE_HEADERS => Some(&mut self.ctx.response_mut().headers),
            _ => None,
        }
    }

    /// The request body (`owin.RequestBody`), for reading.
    pub fn request_body_mut(&mut self) -> &mut RequestBody {
        self.ctx.request_body()
    }

    /// Writes to the response stream (`owin.ResponseBody`); the first write
    /// that leaves the buffer sends the head.
    pub async fn write(&mut self, data: impl Into<Bytes>) -> Result<()> {
        self.ctx.write(data).await
    }

    /// Flushes the response stream (sends the head if not yet sent).
    pub async fn flush(&mut self) -> Result<()> {
        self.ctx.flush().await
    }

    /// Registers a callback to run before the head is sent
    /// (`server.OnSendingHeaders`).
    pub fn on_sending_headers(
        &mut self,
        callback: impl FnOnce(&mut HttpContext) -> Result<()> + Send + Sync + 'static,
    ) -> Result<()> {
        self.ctx.on_starting(callback)
    }
}

/// A value of a standard variant stored under an unknown key.
struct OpaqueValue(
    #[allow(dead_code, reason = "kept only so the value lives as long as the key")] Value,
);

fn expected_type(key: &str) -> &'static str {
    match key {
        keys::REQUEST_BODY => "Value::RequestBody",
        keys::REQUEST_HEADERS | keys::RESPONSE_HEADERS => "Value::Headers",
        keys::RESPONSE_BODY => "Value::ResponseBody",
        keys::RESPONSE_STATUS_CODE => "Value::Int",
        keys::CALL_CANCELLED => "Value::Cancellation",
        keys::ON_SENDING_HEADERS => "Value::Callback",
        keys::HOST_ADDRESSES => "Value::Addresses",
        keys::REQUEST_USER => "Value::Any",
        _ => "Value::Str",
    }
}
