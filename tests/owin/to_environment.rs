//! Features → environment.

use super::*;

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
