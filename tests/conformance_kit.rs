//! The conformance kit's own tests: deliberately broken servers fail exactly
//! the checks they should, so the kit is shown able to fail.

use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use serverbridge::conformance::{self, Matrix, Options, Outcome, Profile, Report};
use serverbridge::feature::{RequestFeature, RequestLifetime, ServerAddress, ServerAddresses};
use serverbridge::testing::TestServer;
use serverbridge::{Application, BoxApplication, Error, Features, HttpContext, Result, Server};
use tokio::time::Instant;

/// A working server whose requests are tampered with before the app sees
/// them, or whose `stop` does nothing.
struct Broken {
    inner: TestServer,
    tamper: fn(&mut Features),
    ignores_stop: bool,
}

struct Tampered {
    app: BoxApplication,
    tamper: fn(&mut Features),
}

impl Application for Tampered {
    fn create_context(&self, mut features: Features) -> HttpContext {
        (self.tamper)(&mut features);
        self.app.create_context(features)
    }
    fn process_request<'a>(&'a self, ctx: &'a mut HttpContext) -> BoxFuture<'a, Result<()>> {
        self.app.process_request(ctx)
    }
    fn dispose_context(&self, ctx: &mut HttpContext, error: Option<&Error>) {
        self.app.dispose_context(ctx, error)
    }
}

#[async_trait]
impl Server for Broken {
    fn features(&self) -> &Features {
        self.inner.features()
    }
    async fn start(&mut self, app: BoxApplication) -> Result<()> {
        let tamper = self.tamper;
        self.inner.start(Arc::new(Tampered { app, tamper })).await
    }
    async fn stop(&mut self, deadline: Instant) -> Result<()> {
        if self.ignores_stop {
            return Ok(());
        }
        self.inner.stop(deadline).await
    }
}

fn intact(_: &mut Features) {}

async fn run_broken(tamper: fn(&mut Features), ignores_stop: bool) -> Report {
    conformance::run_with(Options::default().profile(Profile::Standard), move || {
        Box::new(Broken {
            inner: TestServer::unstarted(),
            tamper,
            ignores_stop,
        }) as Box<dyn Server>
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unbroken_wrapper_passes_everything_it_runs() {
    let report = run_broken(intact, false).await;
    assert!(report.meets(Profile::Standard), "{report}");
    assert_eq!(report.results().len(), 22, "only checks up to standard ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_drops_the_query_fails_only_the_query_check() {
    fn drop_query(features: &mut Features) {
        if let Some(request) = features.get_mut::<RequestFeature>() {
            request.query.clear();
        }
    }
    let report = run_broken(drop_query, false).await;
    assert_eq!(report.failures(), ["request.query"], "{report}");
    assert!(
        matches!(report.outcome("request.query"), Some(Outcome::Fail(reason)) if reason.contains("query"))
    );
    assert!(!report.meets(Profile::Minimum));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_fires_the_lifetime_fails_only_the_abort_check() {
    fn deaf_lifetime(features: &mut Features) {
        features.insert(RequestLifetime::new());
    }
    let report = run_broken(deaf_lifetime, false).await;
    assert_eq!(report.failures(), ["lifetime.client-abort"], "{report}");
    assert!(report.meets(Profile::Minimum));
    assert!(!report.meets(Profile::Standard));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_feature_is_unsupported_never_a_pass() {
    fn no_lifetime(features: &mut Features) {
        features.remove::<RequestLifetime>();
    }
    let report = run_broken(no_lifetime, false).await;
    assert!(report.failures().is_empty(), "{report}");
    assert!(matches!(
        report.outcome("lifetime.client-abort"),
        Some(Outcome::Unsupported(_))
    ));
    assert!(
        !report.meets(Profile::Standard),
        "an unsupported check does not meet its profile"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_ignores_stop_fails_the_graceful_stop_check() {
    let report = run_broken(intact, true).await;
    assert_eq!(report.failures(), ["server.graceful-stop"], "{report}");
    let Some(Outcome::Fail(reason)) = report.outcome("server.graceful-stop") else {
        panic!("{report}");
    };
    assert!(reason.contains("still answered"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_addresses_fails_every_check_with_the_reason() {
    struct Hidden(TestServer, Features);
    #[async_trait]
    impl Server for Hidden {
        fn features(&self) -> &Features {
            &self.1
        }
        async fn start(&mut self, app: BoxApplication) -> Result<()> {
            self.0.start(app).await
        }
        async fn stop(&mut self, deadline: Instant) -> Result<()> {
            self.0.stop(deadline).await
        }
    }
    let options = Options::default().profile(Profile::Minimum);
    let report = conformance::run_with(options, || {
        Box::new(Hidden(TestServer::unstarted(), Features::new())) as Box<dyn Server>
    })
    .await;
    assert_eq!(report.failures().len(), report.results().len());
    for result in report.results() {
        assert!(
            matches!(&result.outcome, Outcome::Fail(r) if r.contains("ServerAddresses")),
            "{report}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_that_hangs_fails_at_the_time_limit() {
    // A server whose app never answers: every request hangs.
    struct Hanging(TestServer);
    #[async_trait]
    impl Server for Hanging {
        fn features(&self) -> &Features {
            self.0.features()
        }
        async fn start(&mut self, _app: BoxApplication) -> Result<()> {
            async fn hang(_: &mut HttpContext) -> Result<()> {
                std::future::pending().await
            }
            self.0.start(Arc::new(hang)).await
        }
        async fn stop(&mut self, deadline: Instant) -> Result<()> {
            self.0.stop(deadline).await
        }
    }
    let options = Options::default()
        .profile(Profile::Minimum)
        .check_timeout(std::time::Duration::from_millis(200));
    let report = conformance::run_with(options, || {
        Box::new(Hanging(TestServer::unstarted())) as Box<dyn Server>
    })
    .await;
    let Some(Outcome::Fail(reason)) = report.outcome("request.method") else {
        panic!("{report}");
    };
    assert!(reason.contains("did not finish within"), "{reason}");
}

#[test]
fn the_report_prints_as_a_table_and_a_summary_feeds_the_matrix() {
    let summary = "# demo\nrequest.method pass\nrequest.path fail\n";
    let table = Matrix::new().column(summary).to_markdown();
    assert!(table.starts_with("| check | profile | demo |"), "{table}");
    assert!(
        table.contains("| `request.method` | minimum | ✅ |"),
        "{table}"
    );
    assert!(
        table.contains("| `request.path` | minimum | ❌ |"),
        "{table}"
    );
    assert!(
        table.contains("| `request.query` | minimum | · |"),
        "{table}"
    );
    assert!(table.contains("**none**"), "{table}");
}

#[test]
fn a_stale_kept_summary_fails_and_a_current_one_passes() {
    if std::env::var_os("BLESS").is_some() {
        return; // BLESS rewrites instead of comparing
    }
    let dir = std::env::temp_dir().join(format!("sb-summary-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("server.txt");
    std::fs::write(&path, "# server\nrequest.method pass\n").unwrap();
    let report = Report::default();
    let stale = std::panic::catch_unwind(|| report.keep_summary(&path, "server"));
    assert!(stale.is_err(), "a summary that differs must fail");
    std::fs::write(&path, report.summary("server")).unwrap();
    report.keep_summary(&path, "server");
    assert!(report.not_passed().is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A canned HTTP/1.1 server that answers every request, HEAD included, with
/// a 100-byte body: the bytes after a HEAD head that a client never reads.
struct BodyForHead {
    features: Features,
    task: Option<tokio::task::JoinHandle<()>>,
}

async fn answer_with_a_body(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..end + 4);
            let mut reply = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n".to_vec();
            reply.extend(std::iter::repeat_n(b'x', 100));
            if stream.write_all(&reply).await.is_err() {
                return;
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[async_trait]
impl Server for BodyForHead {
    fn features(&self) -> &Features {
        &self.features
    }
    async fn start(&mut self, _app: BoxApplication) -> Result<()> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        if let Some(addresses) = self.features.get::<ServerAddresses>() {
            addresses.push(ServerAddress::Tcp {
                scheme: "http".into(),
                addr,
            });
        }
        self.task = Some(tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer_with_a_body(stream));
            }
        }));
        Ok(())
    }
    async fn stop(&mut self, _deadline: Instant) -> Result<()> {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_sends_a_body_after_a_head_head_fails_the_head_check() {
    let report = conformance::run_with(
        Options::default()
            .only(["response.head"])
            .check_timeout(std::time::Duration::from_secs(10)),
        || {
            let mut features = Features::new();
            features.insert(ServerAddresses::default());
            Box::new(BodyForHead {
                features,
                task: None,
            }) as Box<dyn Server>
        },
    )
    .await;
    assert_eq!(report.results().len(), 1, "only the check asked for ran");
    let outcome = report.outcome("response.head").cloned();
    assert!(
        matches!(outcome, Some(Outcome::Fail(_))),
        "response.head: {outcome:?}"
    );
}

#[tokio::test]
async fn a_narrowed_run_meets_only_the_profiles_it_covered() {
    let minimum = conformance::run_with(Options::default().profile(Profile::Minimum), || {
        Box::new(TestServer::unstarted()) as Box<dyn Server>
    })
    .await;
    assert!(minimum.meets(Profile::Minimum), "{minimum}");
    assert!(!minimum.meets(Profile::Full), "no full check ran");
    assert_eq!(minimum.profile(), Some(Profile::Minimum));
    let nothing = conformance::run_with(Options::default().only(["no.such.check"]), || {
        Box::new(TestServer::unstarted()) as Box<dyn Server>
    })
    .await;
    assert!(nothing.results().is_empty());
    assert_eq!(nothing.profile(), None);
}

/// A sink that holds every byte until `complete`, ignoring `flush`.
struct HoldAll {
    inner: Box<dyn serverbridge::feature::ResponseBody>,
    head: Option<(http::StatusCode, String, http::HeaderMap, http::Version)>,
    body: Vec<bytes::Bytes>,
}

#[async_trait]
impl serverbridge::feature::ResponseBody for HoldAll {
    async fn start(&mut self, head: serverbridge::feature::ResponseHead<'_>) -> Result<()> {
        self.head = Some((
            head.status,
            head.reason.to_owned(),
            head.headers.clone(),
            head.version,
        ));
        Ok(())
    }
    async fn write(&mut self, data: bytes::Bytes) -> Result<()> {
        self.body.push(data);
        Ok(())
    }
    async fn flush(&mut self) -> Result<()> {
        Ok(()) // the broken part
    }
    async fn complete(&mut self, trailers: Option<http::HeaderMap>) -> Result<()> {
        let (status, reason, headers, version) = self.head.take().expect("started");
        let head = serverbridge::feature::ResponseHead {
            status,
            reason: &reason,
            headers: &headers,
            version,
        };
        self.inner.start(head).await?;
        for chunk in std::mem::take(&mut self.body) {
            self.inner.write(chunk).await?;
        }
        self.inner.complete(trailers).await
    }
    fn abort(&mut self, reason: &Error) {
        self.inner.abort(reason)
    }
    async fn send_file(
        &mut self,
        _: &std::path::Path,
        _: serverbridge::feature::FileRange,
    ) -> Result<()> {
        Err(Error::unsupported("not here"))
    }
}

/// An application wrapper that swaps the server's sink for [`HoldAll`].
struct Holding(BoxApplication);

impl Application for Holding {
    fn create_context(&self, mut features: Features) -> HttpContext {
        let inner = features
            .remove_dyn::<dyn serverbridge::feature::ResponseBody>()
            .expect("a sink");
        features.insert_dyn::<dyn serverbridge::feature::ResponseBody>(Box::new(HoldAll {
            inner,
            head: None,
            body: Vec::new(),
        }));
        self.0.create_context(features)
    }
    fn process_request<'a>(&'a self, ctx: &'a mut HttpContext) -> BoxFuture<'a, Result<()>> {
        self.0.process_request(ctx)
    }
    fn dispose_context(&self, ctx: &mut HttpContext, error: Option<&Error>) {
        self.0.dispose_context(ctx, error)
    }
}

/// A TestServer whose responses never stream.
struct NoStreaming(TestServer);

#[async_trait]
impl Server for NoStreaming {
    fn features(&self) -> &Features {
        self.0.features()
    }
    async fn start(&mut self, app: BoxApplication) -> Result<()> {
        self.0.start(Arc::new(Holding(app))).await
    }
    async fn stop(&mut self, deadline: Instant) -> Result<()> {
        self.0.stop(deadline).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_server_that_never_streams_fails_the_streaming_check() {
    let report = conformance::run_with(Options::default().only(["response.body.streamed"]), || {
        Box::new(NoStreaming(TestServer::unstarted())) as Box<dyn Server>
    })
    .await;
    let outcome = report.outcome("response.body.streamed").unwrap();
    assert!(!outcome.is_pass(), "{report}");
}

/// The built-in server, whose `stop` returns as soon as the listener is
/// closed, leaving the in-flight request to finish on its own.
struct EarlyStop(serverbridge::server::HttpServer);

#[async_trait]
impl Server for EarlyStop {
    fn features(&self) -> &Features {
        self.0.features()
    }
    async fn start(&mut self, app: BoxApplication) -> Result<()> {
        self.0.start(app).await
    }
    async fn stop(&mut self, deadline: Instant) -> Result<()> {
        let mut server = std::mem::replace(&mut self.0, serverbridge::server::HttpServer::new());
        let (began, began_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let stopping = server.stop(deadline);
            tokio::pin!(stopping);
            let _ = futures::poll!(stopping.as_mut()); // the listener closes
            let _ = began.send(());
            let _ = stopping.await;
        });
        let _ = began_rx.await;
        Ok(())
    }
}

#[tokio::test]
async fn a_stop_that_does_not_wait_for_in_flight_requests_fails_graceful_stop() {
    let report = conformance::run_with(Options::default().only(["server.graceful-stop"]), || {
        Box::new(EarlyStop(
            serverbridge::server::HttpServer::new().bind("127.0.0.1:0".parse().unwrap()),
        )) as Box<dyn Server>
    })
    .await;
    let outcome = report.outcome("server.graceful-stop").unwrap();
    assert!(!outcome.is_pass(), "{report}");
}
