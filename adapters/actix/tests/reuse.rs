//! Requests on one connection share a refilled feature collection: nothing
//! of a request reaches the next one.

mod support;

use std::sync::Arc;

use http_body_util::BodyExt;
use serverbridge::feature::{ConnectionInfo, MaxRequestBodySize};
use serverbridge::{HttpContext, Result, Server};
use serverbridge_actix::ActixServer;
use support::{connect, empty, BOUND};

#[derive(Debug)]
struct Mark;

/// Reports what it finds, then changes what a careless reuse would leak.
async fn app(ctx: &mut HttpContext) -> Result<()> {
    let path = ctx.request().path.clone();
    let text = format!(
        "path={path} limit={:?} id={} connection={} marked={}",
        ctx.features()
            .get::<MaxRequestBodySize>()
            .and_then(|l| l.get()),
        ctx.request_id().map(|i| i.to_string()).unwrap_or_default(),
        ctx.features()
            .get::<ConnectionInfo>()
            .map(|c| c.id.clone())
            .unwrap_or_default(),
        ctx.features().contains::<Mark>(),
    );
    match path.as_str() {
        "/mark" => {
            ctx.features_mut().insert(Mark);
        }
        "/shrink" => {
            if let Some(limit) = ctx.features().get::<MaxRequestBodySize>() {
                limit.set(Some(5))?;
            }
        }
        _ => {}
    }
    ctx.write(text).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_collection_carries_nothing_of_the_request_before() {
    let mut server = ActixServer::new()
        .workers(1)
        .bind("127.0.0.1:0".parse().unwrap());
    server.start(Arc::new(app)).await.expect("start");
    let addr = support::address(&server);
    let mut client = connect(addr, None).await;
    let mut seen = Vec::new();
    for target in ["/shrink", "/b", "/mark", "/d"] {
        let request = http::Request::get(target)
            .header("host", "test")
            .body(empty())
            .unwrap();
        let exchange = async {
            // The connection is ready again only once hyper's client task
            // has seen the previous response end.
            client.ready().await.expect("ready");
            let response = client.send_request(request).await.expect("response");
            let body = response.into_body().collect().await.expect("body");
            String::from_utf8(body.to_bytes().to_vec()).expect("text")
        };
        seen.push(
            tokio::time::timeout(BOUND, exchange)
                .await
                .expect("in time"),
        );
    }
    server
        .stop(tokio::time::Instant::now() + BOUND)
        .await
        .expect("stop");
    let connection = seen[0]
        .split("connection=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    assert!(connection.starts_with("actix-"), "{}", seen[0]);
    assert_eq!(seen[0], format!("path=/shrink limit=Some(30000000) id={connection}:00000001 connection={connection} marked=false"));
    // The limit the request before lowered is the server's again.
    assert_eq!(
        seen[1],
        format!(
            "path=/b limit=Some(30000000) id={connection}:00000002 connection={connection} marked=false"
        )
    );
    // A feature the app added does not reach the next request.
    assert_eq!(
        seen[3],
        format!(
            "path=/d limit=Some(30000000) id={connection}:00000004 connection={connection} marked=false"
        )
    );
}

/// The raw target as sent, in every form, on a reused collection too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_targets_stay_as_sent() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    async fn target(ctx: &mut HttpContext) -> Result<()> {
        let text = format!(
            "raw={} path={}",
            ctx.request().raw_target,
            ctx.request().path
        );
        ctx.write(text).await
    }
    let mut server = ActixServer::new()
        .workers(1)
        .bind("127.0.0.1:0".parse().unwrap());
    server.start(Arc::new(target)).await.expect("start");
    let addr = support::address(&server);
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(
            b"GET /a%20b?c HTTP/1.1\r\nHost: test\r\n\r\n\
              GET http://test/x?y HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
        )
        .await
        .expect("write");
    let mut reply = String::new();
    tokio::time::timeout(BOUND, stream.read_to_string(&mut reply))
        .await
        .expect("in time")
        .expect("read");
    server
        .stop(tokio::time::Instant::now() + BOUND)
        .await
        .expect("stop");
    assert!(reply.contains("raw=/a%20b?c path=/a%20b"), "{reply}");
    assert!(reply.contains("raw=http://test/x?y path=/x"), "{reply}");
}
