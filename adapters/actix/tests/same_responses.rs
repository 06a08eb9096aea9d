//! The same requests on the built-in server and on `ActixServer` get the
//! same status, headers (but `Date` and `Server`, which each server writes
//! its own way) and body.

mod support;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use serverbridge::server::HttpServer;
use serverbridge::{Error, HttpContext, Result, Server};
use serverbridge_actix::ActixServer;
use support::{connect, BOUND};

/// One app with a route per response shape.
async fn app(ctx: &mut HttpContext) -> Result<()> {
    let path = ctx.request().path.clone();
    match path.as_str() {
        "/hello" => {
            ctx.response_mut()
                .headers
                .insert("content-type", "text/plain".parse().unwrap());
            ctx.write("Hello, World!").await
        }
        "/echo" => {
            let mut body = Vec::new();
            while let Some(chunk) = ctx.request_body().chunk().await? {
                body.extend_from_slice(&chunk);
            }
            let request = ctx.request();
            let head = format!(
                "{} {} {} {}\n",
                request.method,
                request.path,
                request.query,
                request.headers.get_all("x-repeat").iter().count()
            );
            ctx.write(head).await?;
            ctx.write(body).await
        }
        "/stream" => {
            for i in 0..5 {
                ctx.write(format!("part {i}\n")).await?;
                ctx.flush().await?;
            }
            Ok(())
        }
        "/created" => {
            let response = ctx.response_mut();
            response.status = StatusCode::CREATED;
            for value in ["a=1", "b=2"] {
                response
                    .headers
                    .append("set-cookie", value.parse().unwrap());
            }
            response.headers.insert("x-empty", "".parse().unwrap());
            ctx.write("made").await
        }
        "/nothing" => {
            ctx.response_mut().status = StatusCode::NO_CONTENT;
            Ok(())
        }
        "/large" => {
            let chunk = Bytes::from(vec![b'z'; 100_000]);
            for _ in 0..10 {
                ctx.write(chunk.clone()).await?;
            }
            Ok(())
        }
        "/fail" => Err(Error::app_msg("fails before the head")),
        _ => {
            ctx.response_mut().status = StatusCode::NOT_FOUND;
            ctx.write("no such page").await
        }
    }
}

/// One request: method, target, extra headers, body.
type Sent = (
    Method,
    &'static str,
    Vec<(&'static str, &'static str)>,
    &'static str,
);

/// The request set.
fn requests() -> Vec<Sent> {
    vec![
        (Method::GET, "/hello", vec![], ""),
        (Method::HEAD, "/hello", vec![], ""),
        (
            Method::POST,
            "/echo?x=1&x=&y",
            vec![("x-repeat", "1"), ("x-repeat", "2")],
            "some body",
        ),
        (Method::PUT, "/echo/%2e%2e//a", vec![], ""),
        (
            Method::from_bytes(b"PROPFIND").unwrap(),
            "/echo",
            vec![],
            "{}",
        ),
        (Method::GET, "/stream", vec![], ""),
        (Method::GET, "/created", vec![], ""),
        (Method::DELETE, "/nothing", vec![], ""),
        (Method::GET, "/large", vec![], ""),
        (Method::GET, "/fail", vec![], ""),
        (Method::GET, "/missing", vec![], ""),
    ]
}

/// What a client sees of one response, minus what differs by design.
#[derive(Debug, PartialEq)]
struct Seen {
    status: StatusCode,
    headers: Vec<(String, String)>,
    body: Bytes,
}

fn comparable(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut list: Vec<_> = headers
        .iter()
        .filter(|(name, _)| *name != "date" && *name != "server")
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    // Order across names is each server's; the order of one name's values
    // is kept by the stable sort.
    list.sort_by(|a, b| a.0.cmp(&b.0));
    list
}

/// Sends every request (one connection each) and records what came back.
async fn run(mut server: Box<dyn Server>) -> Vec<Seen> {
    server.start(Arc::new(app)).await.expect("start");
    let addr = support::address(&*server);
    let mut seen = Vec::new();
    for (method, target, headers, body) in requests() {
        let mut client = connect(addr, None).await;
        let mut request = http::Request::builder()
            .method(method)
            .uri(target)
            .header("host", "test");
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let request = request
            .body(
                Full::new(Bytes::from(body))
                    .map_err(|never| match never {})
                    .boxed(),
            )
            .unwrap();
        let exchange = async {
            let response = client.send_request(request).await.expect("response");
            let (parts, body) = response.into_parts();
            let body = body.collect().await.expect("body").to_bytes();
            Seen {
                status: parts.status,
                headers: comparable(&parts.headers),
                body,
            }
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
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_answers_like_the_builtin_server() {
    let builtin = run(Box::new(
        HttpServer::new().bind("127.0.0.1:0".parse().unwrap()),
    ))
    .await;
    let actix = run(Box::new(
        ActixServer::new()
            .workers(1)
            .bind("127.0.0.1:0".parse().unwrap()),
    ))
    .await;
    assert_eq!(builtin.len(), requests().len());
    for ((request, builtin), actix) in requests().iter().zip(&builtin).zip(&actix) {
        assert_eq!(builtin, actix, "{} {}", request.0, request.1);
    }
    // The set covers both framings and an error.
    assert!(builtin
        .iter()
        .any(|s| s.headers.iter().any(|h| h.0 == "transfer-encoding")));
    assert!(builtin
        .iter()
        .any(|s| s.headers.iter().any(|h| h.0 == "content-length")));
    assert!(builtin
        .iter()
        .any(|s| s.status == StatusCode::INTERNAL_SERVER_ERROR));
}
