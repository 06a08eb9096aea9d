//! The OWIN environment against SPEC.md §8: every key in both directions,
//! the read-only and value-type rules, streaming, cancellation, unknown keys,
//! OWIN middleware, and the bridges (`OwinApp`, `run_application`,
//! `FeatureAppFunc`).

#![cfg(feature = "test-util")]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use http::header::{CONTENT_LENGTH, HOST};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use serverbridge::application::from_fn;
use serverbridge::body::RequestBody;
use serverbridge::feature::{
    Address, ConnectionInfo, OnUpgrade, RequestLifetime, ResponseBody, ResponseHead,
    ResponseTrailers, ServerAddress, TlsInfo, Upgrade,
};
use serverbridge::owin::{
    self, app_func, compose, keys, AppFunc, BoxAppFunc, Environment, Extras, FeatureAppFunc,
    OwinApp, OwinMiddleware, Value, ValueRef,
};
use serverbridge::testing::{RecordingSink, SinkEvent, TestServer};
use serverbridge::{Builder, Error, HttpContext, Middleware, Next, Result};

// ---------------------------------------------------------------------------
// helpers

/// An owned copy of what a key read gave.
#[derive(Clone, Debug, PartialEq)]
enum Seen {
    Str(String),
    Int(i64),
    Bool(bool),
    Headers(HeaderMap),
    RequestBody,
    ResponseBody,
    Cancellation { cancelled: bool },
    OnSendingHeaders,
    Addresses(Vec<ServerAddress>),
    Map(BTreeMap<String, String>),
    Any,
}

fn seen(value: ValueRef<'_>) -> Seen {
    match value {
        ValueRef::Str(s) => Seen::Str(s.into_owned()),
        ValueRef::Int(i) => Seen::Int(i),
        ValueRef::Bool(b) => Seen::Bool(b),
        ValueRef::Headers(h) => Seen::Headers(h.clone()),
        ValueRef::RequestBody(_) => Seen::RequestBody,
        ValueRef::ResponseBody => Seen::ResponseBody,
        ValueRef::Cancellation(token) => Seen::Cancellation {
            cancelled: token.is_cancelled(),
        },
        ValueRef::OnSendingHeaders => Seen::OnSendingHeaders,
        ValueRef::Addresses(a) => Seen::Addresses(a),
        ValueRef::Map(m) => Seen::Map(m),
        ValueRef::Any(_) => Seen::Any,
    }
}

fn str(s: &str) -> Option<Seen> {
    Some(Seen::Str(s.to_owned()))
}

type KeyValues = BTreeMap<&'static str, Option<Seen>>;

/// Every standard key read through `env.get`.
fn read_all(env: &Environment) -> KeyValues {
    keys::ALL
        .iter()
        .map(|k| (*k, env.get(k).map(seen)))
        .collect()
}

type Shared<T> = Arc<Mutex<T>>;

fn shared<T: Default>() -> Shared<T> {
    Arc::new(Mutex::new(T::default()))
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_static(value));
    }
    map
}

fn ip(addr: &str) -> SocketAddr {
    addr.parse().unwrap()
}

/// A Builder middleware that runs `f` on the context after the rest of the
/// pipeline returned.
struct After<F>(F);

fn after<F>(f: F) -> After<F>
where
    F: for<'c> Fn(&'c mut HttpContext) -> BoxFuture<'c, ()> + Send + Sync + 'static,
{
    After(f)
}

impl<F> Middleware for After<F>
where
    F: for<'c> Fn(&'c mut HttpContext) -> BoxFuture<'c, ()> + Send + Sync + 'static,
{
    fn call<'a>(&'a self, ctx: &'a mut HttpContext, next: Next<'a>) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let result = next.run(ctx).await;
            (self.0)(ctx).await;
            result
        })
    }
}

/// A Builder middleware that runs `f` on the context before the rest.
struct Before<F>(F);

impl<F> Middleware for Before<F>
where
    F: Fn(&mut HttpContext) + Send + Sync + 'static,
{
    fn call<'a>(&'a self, ctx: &'a mut HttpContext, next: Next<'a>) -> BoxFuture<'a, Result<()>> {
        (self.0)(ctx);
        next.run(ctx)
    }
}

async fn not_found(ctx: &mut HttpContext) -> Result<()> {
    ctx.response_mut().status = StatusCode::NOT_FOUND;
    Ok(())
}

// ---------------------------------------------------------------------------
// features → environment

#[tokio::test]
async fn every_key_reads_the_features() {
    // (every key's value, the RequestId feature, env.keys())
    type Observed = (KeyValues, Option<String>, Vec<String>);
    let out: Shared<Option<Observed>> = shared();
    let observer = {
        let out = out.clone();
        app_func(move |env: &mut Environment| {
            let out = out.clone();
            Box::pin(async move {
                let values = read_all(env);
                let id = env.context().request_id().map(|id| id.0.clone());
                *out.lock().unwrap() = Some((values, id, env.keys()));
                env.write("seen").await
            })
        })
    };
    let app = Builder::new()
        .map("/api", move |branch| branch.run(OwinApp::new(observer)))
        .run(not_found);
    let server = TestServer::new(app);
    let connection = ConnectionInfo::tcp("conn-7", ip("10.1.2.3:8443"), ip("203.0.113.9:51234"));
    let addresses = serverbridge::Server::features(&server)
        .get::<serverbridge::feature::ServerAddresses>()
        .expect("TestServer lists its address")
        .get();
    let response = server
        .request(Method::PUT, "/api/items/7?x=1&y=%20z")
        .connection(connection)
        .header("x-one", "1")
        .header("x-two", "a")
        .header("x-two", "b")
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "seen");

    let (values, request_id, listed) = out.lock().unwrap().take().expect("the AppFunc ran");
    let request_id = request_id.expect("TestServer assigns a RequestId");
    // The request's connection id is the request id's prefix.
    assert_eq!(request_id, "conn-7:00000001");

    let mut request_headers = headers(&[("x-one", "1"), ("x-two", "a"), ("x-two", "b")]);
    request_headers.insert(HOST, HeaderValue::from_static("localhost"));
    // The body's length, as a client sends it.
    request_headers.insert(CONTENT_LENGTH, HeaderValue::from_static("7"));
    // TestServer can send trailers, so it says so.
    let capabilities: BTreeMap<String, String> = [
        ("owin.Version".to_owned(), "1.0.1".to_owned()),
        ("sendfile.Version".to_owned(), "1.0".to_owned()),
        ("serverbridge.ResponseTrailers".to_owned(), "1.0".to_owned()),
    ]
    .into();
    let expected: KeyValues = [
        (keys::REQUEST_BODY, Some(Seen::RequestBody)),
        (keys::REQUEST_HEADERS, Some(Seen::Headers(request_headers))),
        (keys::REQUEST_METHOD, str("PUT")),
        (keys::REQUEST_PATH, str("/items/7")),
        (keys::REQUEST_PATH_BASE, str("/api")),
        (keys::REQUEST_PROTOCOL, str("HTTP/1.1")),
        (keys::REQUEST_QUERY_STRING, str("x=1&y=%20z")),
        (keys::REQUEST_SCHEME, str("http")),
        (keys::REQUEST_ID, str(&request_id)),
        (keys::REQUEST_USER, None),
        (keys::RESPONSE_BODY, Some(Seen::ResponseBody)),
        (
            keys::RESPONSE_HEADERS,
            Some(Seen::Headers(HeaderMap::new())),
        ),
        (keys::RESPONSE_STATUS_CODE, Some(Seen::Int(200))),
        (keys::RESPONSE_REASON_PHRASE, str("OK")),
        (keys::RESPONSE_PROTOCOL, str("HTTP/1.1")),
        (
            keys::CALL_CANCELLED,
            Some(Seen::Cancellation { cancelled: false }),
        ),
        (keys::VERSION, str("1.0.1")),
        (keys::REMOTE_IP_ADDRESS, str("203.0.113.9")),
        (keys::REMOTE_PORT, str("51234")),
        (keys::LOCAL_IP_ADDRESS, str("10.1.2.3")),
        (keys::LOCAL_PORT, str("8443")),
        (keys::IS_LOCAL, Some(Seen::Bool(false))),
        (keys::CAPABILITIES, Some(Seen::Map(capabilities))),
        (keys::ON_SENDING_HEADERS, Some(Seen::OnSendingHeaders)),
        // TestServer's server layer lists its in-memory address.
        (keys::HOST_ADDRESSES, Some(Seen::Addresses(addresses))),
    ]
    .into();
    assert_eq!(
        expected.len(),
        keys::ALL.len(),
        "the expectation covers every key"
    );
    for key in keys::ALL {
        assert_eq!(values[key], expected[key], "key {key}");
    }
    let without_user: Vec<String> = keys::ALL
        .iter()
        .filter(|k| **k != keys::REQUEST_USER)
        .map(|k| (*k).to_owned())
        .collect();
    assert_eq!(listed, without_user, "env.keys() lists the present keys");
}

#[tokio::test]
async fn protocol_scheme_and_is_local_follow_the_request() {
    let out: Shared<Vec<KeyValues>> = shared();
    let app = {
        let out = out.clone();
        OwinApp::new(app_func(move |env: &mut Environment| {
            let out = out.clone();
            Box::pin(async move {
                out.lock().unwrap().push(read_all(env));
                Ok(())
            })
        }))
    };
    let server = TestServer::new(app);
    server
        .get("/")
        .version(Version::HTTP_10)
        .send()
        .await
        .unwrap();
    server
        .get("/")
        .version(Version::HTTP_2)
        .send()
        .await
        .unwrap();
    server
        .get("/")
        .tls(TlsInfo::default())
        .send()
        .await
        .unwrap();
    // Same IP on both ends: local even though not loopback.
    let same_host = ConnectionInfo::tcp("c", ip("192.0.2.5:80"), ip("192.0.2.5:40000"));
    server.get("/").connection(same_host).send().await.unwrap();

    let seen = out.lock().unwrap().clone();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[0][keys::REQUEST_PROTOCOL], str("HTTP/1.0"));
    assert_eq!(seen[0][keys::RESPONSE_PROTOCOL], str("HTTP/1.0"));
    assert_eq!(seen[1][keys::REQUEST_PROTOCOL], str("HTTP/2"));
    assert_eq!(seen[1][keys::RESPONSE_PROTOCOL], str("HTTP/2"));
    assert_eq!(seen[0][keys::REQUEST_SCHEME], str("http"));
    assert_eq!(seen[2][keys::REQUEST_SCHEME], str("https"));
    // Default TestServer connection: peer 127.0.0.1:50000, local 127.0.0.1:80.
    assert_eq!(seen[0][keys::IS_LOCAL], Some(Seen::Bool(true)));
    assert_eq!(seen[0][keys::REMOTE_IP_ADDRESS], str("127.0.0.1"));
    assert_eq!(seen[0][keys::REMOTE_PORT], str("50000"));
    assert_eq!(seen[0][keys::LOCAL_PORT], str("80"));
    assert_eq!(seen[3][keys::IS_LOCAL], Some(Seen::Bool(true)));
}

#[test]
fn a_bare_environment_has_only_the_default_request_and_response() {
    let env = Environment::new();
    let present: Vec<String> = env.keys();
    let expected: Vec<String> = [
        keys::REQUEST_BODY,
        keys::REQUEST_HEADERS,
        keys::REQUEST_METHOD,
        keys::REQUEST_PATH,
        keys::REQUEST_PATH_BASE,
        keys::REQUEST_PROTOCOL,
        keys::REQUEST_QUERY_STRING,
        keys::REQUEST_SCHEME,
        keys::RESPONSE_HEADERS,
        keys::RESPONSE_STATUS_CODE,
        keys::RESPONSE_REASON_PHRASE,
        keys::RESPONSE_PROTOCOL,
        keys::VERSION,
        keys::CAPABILITIES,
        keys::ON_SENDING_HEADERS,
    ]
    .iter()
    .map(|k| (*k).to_owned())
    .collect();
    assert_eq!(present, expected);
    let values = read_all(&env);
    assert_eq!(values[keys::REQUEST_METHOD], str("GET"));
    assert_eq!(values[keys::REQUEST_PATH], str("/"));
    assert_eq!(values[keys::REQUEST_PATH_BASE], str(""));
    assert_eq!(values[keys::REQUEST_QUERY_STRING], str(""));
    assert_eq!(values[keys::RESPONSE_STATUS_CODE], Some(Seen::Int(200)));
    assert_eq!(values[keys::VERSION], str("1.0.1"));
    for absent in [
        keys::REQUEST_ID,
        keys::REQUEST_USER,
        keys::RESPONSE_BODY,
        keys::CALL_CANCELLED,
        keys::REMOTE_IP_ADDRESS,
        keys::REMOTE_PORT,
        keys::LOCAL_IP_ADDRESS,
        keys::LOCAL_PORT,
        keys::IS_LOCAL,
        keys::HOST_ADDRESSES,
    ] {
        assert_eq!(
            values[absent], None,
            "{absent} is absent without its feature"
        );
        assert!(!env.contains_key(absent));
    }
}

#[test]
fn host_addresses_round_trip() {
    let mut env = Environment::new();
    assert!(env.get(keys::HOST_ADDRESSES).is_none());
    let addresses = vec![
        ServerAddress::Tcp {
            scheme: "http".into(),
            addr: ip("127.0.0.1:5000"),
        },
        ServerAddress::Tcp {
            scheme: "https".into(),
            addr: ip("[::1]:5001"),
        },
        ServerAddress::Unix(PathBuf::from("/run/app.sock")),
    ];
    env.set(keys::HOST_ADDRESSES, Value::Addresses(addresses.clone()))
        .unwrap();
    assert_eq!(
        env.get(keys::HOST_ADDRESSES).map(seen),
        Some(Seen::Addresses(addresses.clone()))
    );
    let feature = env
        .context()
        .features()
        .get::<serverbridge::feature::ServerAddresses>()
        .expect("setting host.Addresses inserts the feature");
    assert_eq!(feature.get(), addresses);
    assert!(env.keys().iter().any(|k| k == keys::HOST_ADDRESSES));
}

struct NeverUpgrade;

impl Upgrade for NeverUpgrade {
    fn is_upgradable(&self) -> bool {
        false
    }
    fn on_upgrade(&mut self) -> Result<OnUpgrade> {
        Err(Error::unsupported("never"))
    }
}

#[test]
fn capabilities_are_computed_from_the_features() {
    let mut env = Environment::new();
    let map = |env: &Environment| match env.get(keys::CAPABILITIES).map(seen) {
        Some(Seen::Map(map)) => map,
        other => panic!("server.Capabilities is a map, got {other:?}"),
    };
    let base = map(&env);
    assert_eq!(
        base.keys().collect::<Vec<_>>(),
        vec!["owin.Version", "sendfile.Version"]
    );
    assert_eq!(base["owin.Version"], "1.0.1");
    let features = env.context_mut().features_mut();
    features.insert(ResponseTrailers::default());
    features.insert_dyn::<dyn Upgrade>(Box::new(NeverUpgrade));
    let full = map(&env);
    assert_eq!(
        full.keys().collect::<Vec<_>>(),
        vec![
            "opaque.Version",
            "owin.Version",
            "sendfile.Version",
            "serverbridge.ResponseTrailers"
        ]
    );
}

// ---------------------------------------------------------------------------
// environment → features

#[derive(Debug)]
struct User(&'static str);

/// What feature-based code saw after the AppFunc wrote every key.
#[derive(Debug, Default)]
struct AfterOwin {
    method: Option<Method>,
    path: String,
    path_base: String,
    version: Option<Version>,
    query: String,
    scheme: String,
    request_id: Option<String>,
    request_headers: HeaderMap,
    body: Bytes,
    status: Option<StatusCode>,
    reason: Option<String>,
    response_headers: HeaderMap,
    response_protocol: Option<String>,
    user: Option<&'static str>,
    connection: Option<ConnectionInfo>,
    aborted_before: bool,
    aborted_after_cancelling_the_replacement: bool,
    addresses: Vec<ServerAddress>,
    /// The environment read back right after the writes.
    reread: KeyValues,
    /// `env.keys()` right after the writes.
    keys_after: Vec<String>,
}

#[tokio::test]
async fn every_writable_key_writes_the_features() {
    let replacement = RequestLifetime::new();
    let out: Shared<AfterOwin> = shared();
    let sending_ran = Arc::new(AtomicBool::new(false));
    let listed = vec![ServerAddress::Tcp {
        scheme: "https".into(),
        addr: ip("0.0.0.0:8443"),
    }];

    let setter = {
        let replacement = replacement.clone();
        let out = out.clone();
        let sending_ran = sending_ran.clone();
        let listed = listed.clone();
        app_func(move |env: &mut Environment| {
            let replacement = replacement.clone();
            let out = out.clone();
            let sending_ran = sending_ran.clone();
            let listed = listed.clone();
            Box::pin(async move {
                env.set(keys::REQUEST_METHOD, "PATCH".into())?;
                env.set(keys::REQUEST_PATH, "/rewritten".into())?;
                env.set(keys::REQUEST_PATH_BASE, "/base".into())?;
                env.set(keys::REQUEST_PROTOCOL, "HTTP/1.0".into())?;
                env.set(keys::REQUEST_QUERY_STRING, "a=b".into())?;
                env.set(keys::REQUEST_SCHEME, "https".into())?;
                env.set(keys::REQUEST_ID, "corr-42".into())?;
                env.set(
                    keys::REQUEST_HEADERS,
                    Value::Headers(headers(&[("x-new", "1")])),
                )?;
                env.set(
                    keys::REQUEST_BODY,
                    Value::RequestBody(RequestBody::full("replaced")),
                )?;
                env.set(keys::REQUEST_USER, Value::Any(Box::new(User("alice"))))?;
                env.set(keys::RESPONSE_STATUS_CODE, Value::Int(201))?;
                env.set(keys::RESPONSE_REASON_PHRASE, "Made It".into())?;
                env.set(
                    keys::RESPONSE_HEADERS,
                    Value::Headers(headers(&[("x-out", "1")])),
                )?;
                env.set(keys::RESPONSE_PROTOCOL, "HTTP/1.0".into())?;
                env.set(keys::REMOTE_IP_ADDRESS, "192.0.2.7".into())?;
                env.set(keys::REMOTE_PORT, "4242".into())?;
                env.set(keys::LOCAL_IP_ADDRESS, "192.0.2.1".into())?;
                env.set(keys::LOCAL_PORT, "8443".into())?;
                env.set(keys::CALL_CANCELLED, Value::Cancellation(replacement))?;
                env.set(
                    keys::ON_SENDING_HEADERS,
                    Value::Callback(Box::new(move |ctx: &mut HttpContext| {
                        sending_ran.store(true, Ordering::SeqCst);
                        ctx.response_mut()
                            .headers
                            .insert("x-sending", HeaderValue::from_static("yes"));
                        Ok(())
                    })),
                )?;
                env.set(keys::HOST_ADDRESSES, Value::Addresses(listed))?;
                {
                    let mut out = out.lock().unwrap();
                    out.reread = read_all(env);
                    out.keys_after = env.keys();
                }
                env.write("done").await
            })
        })
    };

    let inspector = {
        let replacement = replacement.clone();
        let out = out.clone();
        after(move |ctx: &mut HttpContext| {
            let replacement = replacement.clone();
            let out = out.clone();
            Box::pin(async move {
                let body = ctx.read_body(1024).await.unwrap();
                let aborted_before = ctx.is_aborted();
                replacement.abort();
                let aborted_after = ctx.is_aborted();
                let features = ctx.features();
                let user = features
                    .get::<Extras>()
                    .and_then(|e| e.get(keys::REQUEST_USER))
                    .and_then(|u| u.downcast_ref::<User>())
                    .map(|u| u.0);
                let response_protocol = features
                    .get::<Extras>()
                    .and_then(|e| e.get(keys::RESPONSE_PROTOCOL))
                    .and_then(|p| p.downcast_ref::<String>())
                    .cloned();
                let addresses = features
                    .get::<serverbridge::feature::ServerAddresses>()
                    .map(|a| a.get())
                    .unwrap_or_default();
                let request = ctx.request();
                let response = ctx.response();
                let mut out = out.lock().unwrap();
                out.method = Some(request.method.clone());
                out.path = request.path.clone();
                out.path_base = request.path_base.clone();
                out.version = Some(request.version);
                out.query = request.query.clone();
                out.scheme = request.scheme.to_string();
                out.request_id = ctx.request_id().map(|id| id.0.clone());
                out.request_headers = request.headers.clone();
                out.body = body;
                out.status = Some(response.status);
                out.reason = response.reason.clone();
                out.response_headers = response.headers.clone();
                out.response_protocol = response_protocol;
                out.user = user;
                out.connection = ctx.connection().cloned();
                out.aborted_before = aborted_before;
                out.aborted_after_cancelling_the_replacement = aborted_after;
                out.addresses = addresses;
            })
        })
    };

    let app = Builder::new().use_fn(inspector).run(OwinApp::new(setter));
    let connection = ConnectionInfo::tcp("conn-9", ip("10.0.0.1:80"), ip("10.0.0.2:40000"));
    let server = TestServer::new(app).with_connection(connection.clone());
    let request = server
        .post("/orig?q=1")
        .header("x-in", "1")
        .body("original");
    let client_lifetime = request.lifetime();
    let response = request.send().await.unwrap();

    // What the client sees.
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.reason(), "Made It");
    assert_eq!(response.version(), Version::HTTP_10, "answered in kind");
    assert_eq!(response.headers()["x-out"], "1");
    assert_eq!(
        response.headers()["x-sending"],
        "yes",
        "server.OnSendingHeaders ran before the head"
    );
    assert_eq!(response.headers()[CONTENT_LENGTH], "4");
    assert_eq!(response.text().await.unwrap(), "done");
    assert!(sending_ran.load(Ordering::SeqCst));
    assert!(
        !client_lifetime.is_cancelled(),
        "cancelling the replaced owin.CallCancelled does not touch the server's"
    );

    // What feature-based code saw.
    let out = std::mem::take(&mut *out.lock().unwrap());
    assert_eq!(out.method, Some(Method::PATCH));
    assert_eq!(out.path, "/rewritten");
    assert_eq!(out.path_base, "/base");
    assert_eq!(out.version, Some(Version::HTTP_10));
    assert_eq!(out.query, "a=b");
    assert_eq!(out.scheme, "https");
    assert_eq!(out.request_id.as_deref(), Some("corr-42"));
    assert_eq!(out.request_headers, headers(&[("x-new", "1")]));
    assert_eq!(out.body, "replaced");
    assert_eq!(out.status, Some(StatusCode::CREATED));
    assert_eq!(out.reason.as_deref(), Some("Made It"));
    assert_eq!(
        out.response_headers,
        headers(&[("x-out", "1")]),
        "the head is not sent yet, so the OnSendingHeaders callback has not run"
    );
    assert_eq!(out.response_protocol.as_deref(), Some("HTTP/1.0"));
    assert_eq!(out.user, Some("alice"));
    let shadow = out.connection.expect("connection info");
    assert_eq!(
        shadow.id, "conn-9",
        "the shadow copy keeps the connection id"
    );
    assert_eq!(shadow.peer, Some(Address::Tcp(ip("192.0.2.7:4242"))));
    assert_eq!(shadow.local, Some(Address::Tcp(ip("192.0.2.1:8443"))));
    assert!(!out.aborted_before);
    assert!(
        out.aborted_after_cancelling_the_replacement,
        "RequestLifetime is the replacement token"
    );
    assert_eq!(out.addresses, listed);

    // The environment reads back what was written.
    let reread = &out.reread;
    assert_eq!(reread[keys::REQUEST_METHOD], str("PATCH"));
    assert_eq!(reread[keys::REQUEST_PATH], str("/rewritten"));
    assert_eq!(reread[keys::REQUEST_PATH_BASE], str("/base"));
    assert_eq!(reread[keys::REQUEST_PROTOCOL], str("HTTP/1.0"));
    assert_eq!(reread[keys::REQUEST_QUERY_STRING], str("a=b"));
    assert_eq!(reread[keys::REQUEST_SCHEME], str("https"));
    assert_eq!(reread[keys::REQUEST_ID], str("corr-42"));
    assert_eq!(reread[keys::REQUEST_USER], Some(Seen::Any));
    assert_eq!(reread[keys::RESPONSE_STATUS_CODE], Some(Seen::Int(201)));
    assert_eq!(reread[keys::RESPONSE_REASON_PHRASE], str("Made It"));
    assert_eq!(reread[keys::RESPONSE_PROTOCOL], str("HTTP/1.0"));
    assert_eq!(reread[keys::REMOTE_IP_ADDRESS], str("192.0.2.7"));
    assert_eq!(reread[keys::REMOTE_PORT], str("4242"));
    assert_eq!(reread[keys::LOCAL_IP_ADDRESS], str("192.0.2.1"));
    assert_eq!(reread[keys::LOCAL_PORT], str("8443"));
    assert_eq!(
        reread[keys::IS_LOCAL],
        Some(Seen::Bool(false)),
        "server.IsLocal follows the shadowed addresses"
    );
    assert_eq!(reread[keys::HOST_ADDRESSES], Some(Seen::Addresses(listed)));
    assert_eq!(
        out.keys_after,
        keys::ALL,
        "every key is present once, the Extras-backed ones not repeated"
    );
}

#[tokio::test]
async fn shadowed_addresses_do_not_leak_into_the_next_request_on_the_same_server() {
    let seen_remote: Shared<Vec<(Option<Seen>, Option<Seen>)>> = shared();
    let app = {
        let seen_remote = seen_remote.clone();
        OwinApp::new(app_func(move |env: &mut Environment| {
            let seen_remote = seen_remote.clone();
            Box::pin(async move {
                let shadow = env.get(keys::REQUEST_PATH).unwrap().as_str() == Some("/shadow");
                if shadow {
                    env.set(keys::REMOTE_IP_ADDRESS, "198.51.100.1".into())?;
                    env.set(keys::REMOTE_PORT, "1".into())?;
                }
                seen_remote.lock().unwrap().push((
                    env.get(keys::REMOTE_IP_ADDRESS).map(seen),
                    env.get(keys::REMOTE_PORT).map(seen),
                ));
                Ok(())
            })
        }))
    };
    let server = TestServer::new(app);
    server.get("/shadow").send().await.unwrap();
    server.get("/after").send().await.unwrap();
    assert_eq!(
        *seen_remote.lock().unwrap(),
        vec![
            (str("198.51.100.1"), str("1")),
            (str("127.0.0.1"), str("50000"))
        ]
    );
}

#[test]
fn read_only_keys_and_wrong_value_types_are_refused() {
    let mut env = Environment::new();
    for key in keys::READ_ONLY {
        for value in [
            Value::Str("x".into()),
            Value::Bool(true),
            Value::Any(Box::new(1u8)),
        ] {
            let err = env.set(key, value).expect_err(key);
            assert!(err.is_contract(), "{key}: {err:?}");
            assert_eq!(err.rule(), Some("owin.read-only-key"), "{key}");
        }
    }
    // No writable standard key takes a Bool.
    for key in keys::ALL.iter().filter(|k| !keys::READ_ONLY.contains(k)) {
        let err = env.set(key, Value::Bool(true)).expect_err(key);
        assert_eq!(err.rule(), Some("owin.value-type"), "{key}: {err:?}");
    }
    // The right variant with a value the feature cannot hold.
    let bad: Vec<(&str, Value)> = vec![
        (keys::REQUEST_PATH, Value::Int(1)),
        (keys::RESPONSE_STATUS_CODE, Value::Int(42)),
        (keys::RESPONSE_STATUS_CODE, Value::Int(-200)),
        (keys::RESPONSE_STATUS_CODE, Value::Int(1000)),
        (keys::RESPONSE_STATUS_CODE, Value::Str("200".into())),
        (keys::REQUEST_METHOD, Value::Str("BAD METHOD".into())),
        (keys::REQUEST_PROTOCOL, Value::Str("HTTP/4".into())),
        (keys::RESPONSE_PROTOCOL, Value::Str("SPDY".into())),
        (keys::REQUEST_SCHEME, Value::Str("not a scheme".into())),
        (keys::REMOTE_IP_ADDRESS, Value::Str("not-an-ip".into())),
        (keys::LOCAL_PORT, Value::Str("70000".into())),
        (keys::REQUEST_USER, Value::Str("alice".into())),
    ];
    for (key, value) in bad {
        let shown = format!("{key} = {value:?}");
        let err = env.set(key, value).expect_err(&shown);
        assert_eq!(err.rule(), Some("owin.value-type"), "{shown}: {err:?}");
    }
    // Nothing changed.
    let values = read_all(&env);
    assert_eq!(values[keys::REQUEST_PATH], str("/"));
    assert_eq!(values[keys::RESPONSE_STATUS_CODE], Some(Seen::Int(200)));
    assert_eq!(values[keys::REQUEST_METHOD], str("GET"));
    assert_eq!(values[keys::VERSION], str("1.0.1"));
    assert_eq!(values[keys::REQUEST_USER], None);
    assert_eq!(values[keys::REMOTE_IP_ADDRESS], None);
}

// ---------------------------------------------------------------------------
// streaming

#[tokio::test]
async fn streamed_request_body_and_flushed_response_body() {
    let chunks_seen: Shared<Vec<Bytes>> = shared();
    let app = {
        let chunks_seen = chunks_seen.clone();
        OwinApp::new(app_func(move |env: &mut Environment| {
            let chunks_seen = chunks_seen.clone();
            Box::pin(async move {
                while let Some(chunk) = env.request_body_mut().chunk().await? {
                    chunks_seen.lock().unwrap().push(chunk);
                }
                env.write("alpha,").await?;
                env.flush().await?;
                let late = env.set(
                    keys::ON_SENDING_HEADERS,
                    Value::Callback(Box::new(|_| Ok(()))),
                );
                assert_eq!(
                    late.expect_err("registered after the head").rule(),
                    Some("response.callback-after-start")
                );
                env.write("beta,").await?;
                env.write("gamma").await?;
                env.flush().await?;
                env.write("!").await
            })
        }))
    };
    let server = TestServer::new(app);
    let parts = ["one,", "two,", "three"].map(|s| Ok::<_, std::io::Error>(Bytes::from(s)));
    let mut response = server
        .post("/upload")
        .body_stream(futures::stream::iter(parts))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get(CONTENT_LENGTH).is_none(),
        "no Content-Length once flushed: {:?}",
        response.headers()
    );
    assert_eq!(response.chunk().await.unwrap().unwrap(), "alpha,");
    assert_eq!(response.read_to_end().await.unwrap(), "beta,gamma!");
    let chunks = chunks_seen.lock().unwrap().clone();
    assert_eq!(chunks, vec!["one,", "two,", "three"]);
}

#[tokio::test]
async fn unflushed_writes_are_sent_with_content_length() {
    let app = OwinApp::new(app_func(|env: &mut Environment| {
        Box::pin(async move {
            env.write("ab").await?;
            env.write("cd").await
        })
    }));
    let server = TestServer::new(app);
    let response = server.get("/").send().await.unwrap();
    assert_eq!(response.headers()[CONTENT_LENGTH], "4");
    assert_eq!(response.text().await.unwrap(), "abcd");
}

// ---------------------------------------------------------------------------
// owin.ResponseBody replaced

/// A sink that forwards to the server's and records a copy.
struct Tee {
    inner: Box<dyn ResponseBody>,
    copy: RecordingSink,
}

#[async_trait]
impl ResponseBody for Tee {
    async fn start(&mut self, head: ResponseHead<'_>) -> Result<()> {
        self.copy.start(head).await?;
        self.inner.start(head).await
    }
    async fn write(&mut self, data: Bytes) -> Result<()> {
        self.copy.write(data.clone()).await?;
        self.inner.write(data).await
    }
    async fn flush(&mut self) -> Result<()> {
        self.copy.flush().await?;
        self.inner.flush().await
    }
    async fn complete(&mut self, trailers: Option<HeaderMap>) -> Result<()> {
        self.copy.complete(trailers.clone()).await?;
        self.inner.complete(trailers).await
    }
    fn abort(&mut self, reason: &Error) {
        self.copy.abort(reason);
        self.inner.abort(reason);
    }
}

#[tokio::test]
async fn response_body_can_be_wrapped_and_replaced() {
    let copy = RecordingSink::default();
    let app = {
        let copy = copy.clone();
        OwinApp::new(app_func(move |env: &mut Environment| {
            let copy = copy.clone();
            Box::pin(async move {
                let inner = env
                    .context_mut()
                    .features_mut()
                    .remove_dyn::<dyn ResponseBody>()
                    .expect("the server's sink");
                assert!(!env.contains_key(keys::RESPONSE_BODY));
                env.set(
                    keys::RESPONSE_BODY,
                    Value::ResponseBody(Box::new(Tee { inner, copy })),
                )?;
                env.write("one ").await?;
                env.flush().await?;
                env.write("two").await
            })
        }))
    };
    let server = TestServer::new(app);
    let response = server.get("/").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "one two");
    assert_eq!(copy.status(), Some(StatusCode::OK));
    assert_eq!(copy.body(), "one two");
    assert_eq!(
        copy.events(),
        vec![
            SinkEvent::Start(StatusCode::OK),
            SinkEvent::Write(4),
            SinkEvent::Flush,
            SinkEvent::Write(3),
            SinkEvent::Complete { trailers: false },
        ]
    );
}

#[tokio::test]
async fn response_body_replaced_by_a_recording_sink_gets_everything() {
    let recording = RecordingSink::default();
    let app = {
        let recording = recording.clone();
        OwinApp::new(app_func(move |env: &mut Environment| {
            let recording = recording.clone();
            Box::pin(async move {
                env.set(
                    keys::RESPONSE_BODY,
                    Value::ResponseBody(Box::new(recording)),
                )?;
                env.set(keys::RESPONSE_STATUS_CODE, Value::Int(202))?;
                env.write("a").await?;
                env.flush().await?;
                env.write("b").await
            })
        }))
    };
    let server = TestServer::new(app);
    // The server's own sink was replaced, so the client gets no head.
    let err = server
        .get("/")
        .send()
        .await
        .expect_err("no head reached the client");
    assert!(err.is_aborted(), "{err:?}");
    assert_eq!(recording.status(), Some(StatusCode::ACCEPTED));
    assert_eq!(recording.body(), "ab");
    assert_eq!(
        recording.events(),
        vec![
            SinkEvent::Start(StatusCode::ACCEPTED),
            SinkEvent::Write(1),
            SinkEvent::Flush,
            SinkEvent::Write(1),
            SinkEvent::Complete { trailers: false },
        ]
    );
}

// ---------------------------------------------------------------------------
// owin.CallCancelled

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn waits_for_cancellation(log: Shared<Vec<String>>, flush_first: bool) -> impl AppFunc {
    app_func(move |env: &mut Environment| {
        let log = log.clone();
        Box::pin(async move {
            if flush_first {
                env.flush().await?;
            }
            let Some(ValueRef::Cancellation(token)) = env.get(keys::CALL_CANCELLED) else {
                panic!("owin.CallCancelled is a Cancellation");
            };
            log.lock()
                .unwrap()
                .push(format!("waiting cancelled={}", token.is_cancelled()));
            token.cancelled().await;
            log.lock().unwrap().push("cancelled".to_owned());
            Err(Error::aborted("the client went away"))
        })
    })
}

#[tokio::test]
async fn call_cancelled_fires_when_the_client_aborts() {
    let log: Shared<Vec<String>> = shared();
    let server = TestServer::new(OwinApp::new(waits_for_cancellation(log.clone(), false)));
    let request = server.get("/wait");
    let client = request.lifetime();
    let abort = {
        let log = log.clone();
        async move {
            wait_until("the AppFunc to wait", || !log.lock().unwrap().is_empty()).await;
            client.abort();
        }
    };
    let (result, ()) = tokio::time::timeout(Duration::from_secs(5), async {
        tokio::join!(request.send(), abort)
    })
    .await
    .expect("the AppFunc saw the cancellation");
    // The app failed before the head: whatever the client gets, it is not a 200.
    if let Ok(response) = result {
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
    // The client is gone at once; the AppFunc sees the cancellation as it
    // runs on.
    wait_until("the AppFunc to see the cancellation", || {
        log.lock().unwrap().len() >= 2
    })
    .await;
    assert_eq!(
        *log.lock().unwrap(),
        vec!["waiting cancelled=false", "cancelled"]
    );
}

#[tokio::test]
async fn call_cancelled_fires_when_the_client_drops_the_response() {
    let log: Shared<Vec<String>> = shared();
    let server = TestServer::new(OwinApp::new(waits_for_cancellation(log.clone(), true)));
    let response = server.get("/stream").send().await.unwrap();
    assert_eq!(response.status(), 200);
    drop(response);
    wait_until("owin.CallCancelled", || log.lock().unwrap().len() == 2).await;
    assert_eq!(
        *log.lock().unwrap(),
        vec!["waiting cancelled=false", "cancelled"]
    );
}

// ---------------------------------------------------------------------------
// unknown keys

#[derive(Debug, PartialEq)]
struct Tag(u32);

#[tokio::test]
async fn unknown_keys_survive_into_feature_based_code() {
    // (my.key, my.int, my.flag, my.tag is Tag(7), the Extras keys)
    type Extracted = (Option<String>, Option<i64>, Option<bool>, bool, Vec<String>);
    let seen: Shared<Option<Extracted>> = shared();
    let later = {
        let seen = seen.clone();
        after(move |ctx: &mut HttpContext| {
            let seen = seen.clone();
            Box::pin(async move {
                let extras = ctx.features().get::<Extras>().expect("Extras feature");
                let mut names: Vec<String> = extras.keys().map(str::to_owned).collect();
                names.sort();
                *seen.lock().unwrap() = Some((
                    extras
                        .get("my.key")
                        .and_then(|v| v.downcast_ref::<String>())
                        .cloned(),
                    extras
                        .get("my.int")
                        .and_then(|v| v.downcast_ref::<i64>())
                        .copied(),
                    extras
                        .get("my.flag")
                        .and_then(|v| v.downcast_ref::<bool>())
                        .copied(),
                    extras
                        .get("my.tag")
                        .and_then(|v| v.downcast_ref::<Tag>())
                        .is_some_and(|t| *t == Tag(7)),
                    names,
                ));
            })
        })
    };
    let setter = OwinApp::new(app_func(|env: &mut Environment| {
        Box::pin(async move {
            env.set("my.key", "v".into())?;
            env.set("my.int", Value::Int(5))?;
            env.set("my.flag", Value::Bool(true))?;
            env.set("my.tag", Value::Any(Box::new(Tag(7))))?;
            env.set("my.removed", "gone".into())?;
            assert!(env.remove("my.removed").is_some());
            assert!(
                env.remove(keys::REQUEST_PATH).is_none(),
                "standard keys are views"
            );
            assert_eq!(
                env.get("my.key").and_then(|v| v.downcast_ref::<String>()),
                Some(&"v".to_owned())
            );
            Ok(())
        })
    }));
    let server = TestServer::new(Builder::new().use_fn(later).run(setter));
    assert_eq!(server.get("/").send().await.unwrap().status(), 200);
    let (key, int, flag, tag, names) = seen.lock().unwrap().take().unwrap();
    assert_eq!(key.as_deref(), Some("v"));
    assert_eq!(int, Some(5));
    assert_eq!(flag, Some(true));
    assert!(tag);
    assert_eq!(names, vec!["my.flag", "my.int", "my.key", "my.tag"]);
}

#[tokio::test]
async fn unknown_keys_from_feature_based_code_reach_the_app_func() {
    let seen: Shared<Option<(Option<String>, Vec<String>)>> = shared();
    let earlier = Before(|ctx: &mut HttpContext| {
        let mut extras = Extras::default();
        extras.insert("my.key", Box::new("from features".to_owned()));
        ctx.features_mut().insert(extras);
    });
    let reader = {
        let seen = seen.clone();
        OwinApp::new(app_func(move |env: &mut Environment| {
            let seen = seen.clone();
            Box::pin(async move {
                let value = env
                    .get("my.key")
                    .and_then(|v| v.downcast_ref::<String>())
                    .cloned();
                *seen.lock().unwrap() = Some((value, env.keys()));
                Ok(())
            })
        }))
    };
    let server = TestServer::new(Builder::new().use_fn(earlier).run(reader));
    server.get("/").send().await.unwrap();
    let (value, listed) = seen.lock().unwrap().take().unwrap();
    assert_eq!(value.as_deref(), Some("from features"));
    assert_eq!(listed.last().map(String::as_str), Some("my.key"));
    assert_eq!(
        listed.iter().filter(|k| *k == "my.key").count(),
        1,
        "{listed:?}"
    );
}

// ---------------------------------------------------------------------------
// OWIN middleware

fn logging(name: &'static str, log: Shared<Vec<String>>) -> OwinMiddleware {
    Box::new(move |next: BoxAppFunc| -> BoxAppFunc {
        Arc::new(app_func(move |env: &mut Environment| {
            let next = next.clone();
            let log = log.clone();
            Box::pin(async move {
                log.lock().unwrap().push(format!("{name} in"));
                env.headers_mut(keys::RESPONSE_HEADERS)
                    .unwrap()
                    .append("x-order", HeaderValue::from_static(name));
                let result = next.call(env).await;
                log.lock().unwrap().push(format!("{name} out"));
                result
            })
        }))
    })
}

#[tokio::test]
async fn compose_runs_the_first_middleware_outermost() {
    let log: Shared<Vec<String>> = shared();
    let end: BoxAppFunc = {
        let log = log.clone();
        Arc::new(app_func(move |env: &mut Environment| {
            let log = log.clone();
            Box::pin(async move {
                log.lock().unwrap().push("app".to_owned());
                env.write("end").await
            })
        }))
    };
    let pipeline = compose(
        vec![
            logging("first", log.clone()),
            logging("second", log.clone()),
        ],
        end,
    );
    let server = TestServer::new(OwinApp::new(pipeline));
    let response = server.get("/").send().await.unwrap();
    let order: Vec<_> = response.headers().get_all("x-order").iter().collect();
    assert_eq!(order, vec!["first", "second"]);
    assert_eq!(response.text().await.unwrap(), "end");
    assert_eq!(
        *log.lock().unwrap(),
        vec!["first in", "second in", "app", "second out", "first out"]
    );
}

#[tokio::test]
async fn compose_without_middleware_is_the_app() {
    let end: BoxAppFunc = Arc::new(app_func(|env: &mut Environment| {
        Box::pin(async move { env.write("bare").await })
    }));
    let server = TestServer::new(OwinApp::new(compose(Vec::new(), end)));
    let response = server.get("/").send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "bare");
}

#[tokio::test]
async fn feature_app_func_runs_a_feature_based_app_inside_an_owin_pipeline() {
    let log: Shared<Vec<String>> = shared();
    let feature_app = {
        let log = log.clone();
        from_fn(move |ctx: &mut HttpContext| {
            let log = log.clone();
            Box::pin(async move {
                log.lock().unwrap().push(format!(
                    "feature app sees {} and x-order {:?}",
                    ctx.request().path,
                    ctx.response().headers.get("x-order")
                ));
                ctx.response_mut().status = StatusCode::ACCEPTED;
                ctx.write("from the feature app").await
            })
        })
    };
    let pipeline = compose(
        vec![logging("owin", log.clone())],
        Arc::new(FeatureAppFunc::new(feature_app)),
    );
    let server = TestServer::new(OwinApp::new(pipeline));
    let response = server.get("/mixed").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.headers()["x-order"], "owin");
    assert_eq!(response.text().await.unwrap(), "from the feature app");
    assert_eq!(
        *log.lock().unwrap(),
        vec![
            "owin in",
            "feature app sees /mixed and x-order Some(\"owin\")",
            "owin out"
        ]
    );
}

// ---------------------------------------------------------------------------
// run_application: a host that speaks only OWIN

fn owin_host_request(recording: &RecordingSink) -> Environment {
    let mut env = Environment::new();
    env.set(keys::REQUEST_METHOD, "POST".into()).unwrap();
    env.set(keys::REQUEST_PATH_BASE, "/app".into()).unwrap();
    env.set(keys::REQUEST_PATH, "/submit".into()).unwrap();
    env.set(keys::REQUEST_QUERY_STRING, "draft=1".into())
        .unwrap();
    env.set(
        keys::REQUEST_HEADERS,
        Value::Headers(headers(&[
            ("host", "owin.example"),
            ("content-type", "text/plain"),
        ])),
    )
    .unwrap();
    env.set(
        keys::REQUEST_BODY,
        Value::RequestBody(RequestBody::full("payload")),
    )
    .unwrap();
    env.set(
        keys::RESPONSE_BODY,
        Value::ResponseBody(Box::new(recording.clone())),
    )
    .unwrap();
    env.set("host.Custom", "kept".into()).unwrap();
    env
}

#[tokio::test]
async fn run_application_runs_a_feature_based_app_for_an_owin_host() {
    let observed: Shared<Option<String>> = shared();
    let app = {
        let observed = observed.clone();
        from_fn(move |ctx: &mut HttpContext| {
            let observed = observed.clone();
            Box::pin(async move {
                let body = ctx.read_body(1024).await?;
                let request = ctx.request();
                *observed.lock().unwrap() = Some(format!(
                    "{} {}|{}?{} {:?} {}",
                    request.method,
                    request.path_base,
                    request.path,
                    request.query,
                    request.headers.get("content-type"),
                    String::from_utf8_lossy(&body),
                ));
                ctx.response_mut().status = StatusCode::ACCEPTED;
                ctx.response_mut()
                    .headers
                    .insert("x-app", HeaderValue::from_static("1"));
                ctx.write("echo: ").await?;
                ctx.write(body).await
            })
        })
    };
    let recording = RecordingSink::default();
    let mut env = owin_host_request(&recording);
    owin::run_application(&app, &mut env).await.unwrap();

    assert_eq!(
        observed.lock().unwrap().as_deref(),
        Some("POST /app|/submit?draft=1 Some(\"text/plain\") payload")
    );
    // The response keys hold what was sent.
    assert_eq!(
        env.get(keys::RESPONSE_STATUS_CODE).map(seen),
        Some(Seen::Int(202))
    );
    assert_eq!(
        env.get(keys::RESPONSE_REASON_PHRASE).map(seen),
        str("Accepted")
    );
    let sent = env
        .get(keys::RESPONSE_HEADERS)
        .and_then(|v| v.as_headers().cloned())
        .unwrap();
    assert_eq!(sent["x-app"], "1");
    assert_eq!(sent[CONTENT_LENGTH], "13");
    assert_eq!(recording.status(), Some(StatusCode::ACCEPTED));
    assert_eq!(recording.headers().unwrap(), sent);
    assert_eq!(recording.body(), "echo: payload");
    assert_eq!(
        recording.events().last(),
        Some(&SinkEvent::Complete { trailers: false })
    );
    // Keys the host set survive the trip.
    assert_eq!(
        env.get("host.Custom")
            .and_then(|v| v.downcast_ref::<String>())
            .map(String::as_str),
        Some("kept")
    );
    assert!(env.contains_key(keys::RESPONSE_BODY));
    // The lifecycle completed the response: the host cannot write more.
    let events = recording.events().len();
    let err = env
        .write("late")
        .await
        .expect_err("written after completion");
    assert_eq!(err.rule(), Some("response.write-after-complete"), "{err:?}");
    env.flush().await.unwrap();
    assert_eq!(recording.events().len(), events, "{:?}", recording.events());
    assert_eq!(recording.body(), "echo: payload");
}

#[tokio::test]
async fn run_application_reports_the_error_and_answers_500() {
    async fn fails(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut()
            .headers
            .insert("x-dropped", HeaderValue::from_static("1"));
        Err(Error::app_msg("boom"))
    }
    let recording = RecordingSink::default();
    let mut env = owin_host_request(&recording);
    let err = owin::run_application(&fails, &mut env)
        .await
        .expect_err("the app failed");
    assert!(err.is_app(), "{err:?}");
    assert_eq!(
        env.get(keys::RESPONSE_STATUS_CODE).map(seen),
        Some(Seen::Int(500))
    );
    assert_eq!(recording.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    let sent = recording.headers().unwrap();
    assert_eq!(sent[CONTENT_LENGTH], "0");
    assert!(sent.get("x-dropped").is_none());
}

#[tokio::test]
async fn run_application_without_a_response_body_is_a_contract_error() {
    let ran = Arc::new(AtomicBool::new(false));
    let app = {
        let ran = ran.clone();
        from_fn(move |_ctx: &mut HttpContext| {
            ran.store(true, Ordering::SeqCst);
            Box::pin(async { Ok(()) })
        })
    };
    let mut env = Environment::new();
    env.set("host.Custom", "kept".into()).unwrap();
    let err = owin::run_application(&app, &mut env)
        .await
        .expect_err("no owin.ResponseBody");
    assert!(err.is_contract(), "{err:?}");
    assert_eq!(err.rule(), Some("server.required-features"));
    assert!(!ran.load(Ordering::SeqCst), "the app did not run");
    assert!(
        env.get("host.Custom").is_some(),
        "the environment is left as it was"
    );
}

// ---------------------------------------------------------------------------
// a panicking AppFunc

#[tokio::test]
async fn a_panicking_app_func_gives_a_bare_500() {
    let callback_ran = Arc::new(AtomicBool::new(false));
    async fn panics(env: &mut Environment, callback_ran: Arc<AtomicBool>) -> Result<()> {
        env.set(keys::RESPONSE_STATUS_CODE, Value::Int(201))?;
        env.headers_mut(keys::RESPONSE_HEADERS)
            .unwrap()
            .insert("x-before-panic", HeaderValue::from_static("1"));
        env.on_sending_headers(move |_| {
            callback_ran.store(true, Ordering::SeqCst);
            Ok(())
        })?;
        env.write("partial").await?;
        panic!("the AppFunc panicked on purpose");
    }
    let app = {
        let callback_ran = callback_ran.clone();
        OwinApp::new(app_func(move |env: &mut Environment| {
            Box::pin(panics(env, callback_ran.clone()))
        }))
    };
    let server = TestServer::new(app);
    let response = server.get("/").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.headers()[CONTENT_LENGTH], "0");
    assert!(response.headers().get("x-before-panic").is_none());
    assert_eq!(response.bytes().await.unwrap(), "");
    assert!(
        !callback_ran.load(Ordering::SeqCst),
        "on_starting callbacks do not run for the error response"
    );
}

#[tokio::test]
async fn the_context_is_back_after_the_app_func_for_later_middleware() {
    // Feature-based middleware after an OwinApp sees the same context (the
    // environment borrowed it, it did not copy it).
    let seen: Shared<Option<(StatusCode, u64)>> = shared();
    let after = {
        let seen = seen.clone();
        after(move |ctx: &mut HttpContext| {
            let seen = seen.clone();
            Box::pin(async move {
                *seen.lock().unwrap() = Some((ctx.response().status, ctx.bytes_written()));
            })
        })
    };
    let app = OwinApp::new(app_func(|env: &mut Environment| {
        Box::pin(async move {
            env.set(keys::RESPONSE_STATUS_CODE, Value::Int(203))?;
            env.write("12345").await
        })
    }));
    let server = TestServer::new(Builder::new().use_fn(after).run(app));
    let response = server.get("/").send().await.unwrap();
    assert_eq!(response.status(), 203);
    assert_eq!(response.headers()[CONTENT_LENGTH], "5");
    assert_eq!(
        *seen.lock().unwrap(),
        Some((StatusCode::from_u16(203).unwrap(), 5))
    );
}

#[tokio::test(start_paused = true)]
async fn a_timeout_around_an_owin_app_finds_the_request_where_it_left_it() {
    async fn timeout_504(ctx: &mut HttpContext, next: Next<'_>) -> Result<()> {
        match tokio::time::timeout(Duration::from_millis(100), next.run(ctx)).await {
            Ok(result) => result,
            Err(_) => {
                ctx.response_mut().status = StatusCode::GATEWAY_TIMEOUT;
                ctx.write("timed out").await
            }
        }
    }
    let slow = OwinApp::new(app_func(|env: &mut Environment| {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            env.write("late").await
        })
    }));
    let server = TestServer::new(Builder::new().use_fn(timeout_504).run(slow));
    let response = server.get("/").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(response.text().await.unwrap(), "timed out");
}

#[test]
fn values_under_unknown_keys_come_back_as_what_they_were() {
    let mut env = Environment::new();
    let mut headers = HeaderMap::new();
    headers.insert("x-a", HeaderValue::from_static("1"));
    env.set("my.headers", Value::Headers(headers.clone()))
        .unwrap();
    env.set("my.key", Value::Str("v".into())).unwrap();
    env.set("my.int", Value::Int(3)).unwrap();
    env.set("my.flag", Value::Bool(true)).unwrap();
    let addresses = vec![ServerAddress::parse("http://127.0.0.1:1").unwrap()];
    env.set("my.addresses", Value::Addresses(addresses.clone()))
        .unwrap();
    assert_eq!(env.get("my.headers").unwrap().as_headers(), Some(&headers));
    assert_eq!(
        env.get("my.headers").unwrap().downcast_ref::<HeaderMap>(),
        Some(&headers)
    );
    assert_eq!(env.get("my.key").unwrap().as_str(), Some("v"));
    assert_eq!(
        env.get("my.key")
            .unwrap()
            .downcast_ref::<String>()
            .map(String::as_str),
        Some("v")
    );
    assert_eq!(env.get("my.int").unwrap().as_int(), Some(3));
    assert_eq!(env.get("my.flag").unwrap().as_bool(), Some(true));
    assert_eq!(
        env.get("my.addresses")
            .unwrap()
            .downcast_ref::<Vec<ServerAddress>>(),
        Some(&addresses)
    );
}
