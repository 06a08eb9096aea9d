//! The same requests on the built-in server and on `HyperServer` give the
//! same status, headers (minus `Date`) and body.

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::BodyExt;
use serverbridge::feature::ResponseTrailers;
use serverbridge::server::HttpServer;
use serverbridge::{Error, HttpContext, Result, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

/// One app with a route per response shape.
async fn shapes(ctx: &mut HttpContext) -> Result<()> {
    let path = ctx.request().path.clone();
    let headers = &mut ctx.response_mut().headers;
    headers.insert("x-app", "shapes".parse().unwrap());
    match path.as_str() {
        "/" => ctx.write("hello").await,
        "/empty" => Ok(()),
        "/no-content" => {
            ctx.response_mut().status = StatusCode::NO_CONTENT;
            Ok(())
        }
        "/not-found" => {
            ctx.response_mut().status = StatusCode::NOT_FOUND;
            ctx.write("nothing here").await
        }
        "/fail" => Err(Error::app_msg("boom")),
        "/streamed" => {
            for part in ["one ", "two ", "three"] {
                ctx.write(part).await?;
                ctx.flush().await?;
            }
            Ok(())
        }
        "/large" => ctx.write(vec![b'z'; 200_000]).await,
        "/pulled" => {
            let body = http_body_util::Full::new(Bytes::from_static(b"pulled body"));
            ctx.send_body(body).await
        }
        "/declared" => {
            ctx.response_mut()
                .headers
                .insert("content-length", "4".parse().unwrap());
            ctx.write("ab").await?;
            ctx.flush().await?;
            ctx.write("cd").await
        }
        "/echo" => echo(ctx).await,
        _ => {
            ctx.response_mut().status = StatusCode::BAD_REQUEST;
            Ok(())
        }
    }
}

/// What is compared: status, sorted headers without `date`, body.
type Observed = (StatusCode, Vec<(String, String)>, Bytes);

async fn observe(addr: std::net::SocketAddr) -> Vec<Observed> {
    let mut requests = vec![
        request("GET", "/").body(full("")).unwrap(),
        request("HEAD", "/").body(full("")).unwrap(),
        request("GET", "/empty").body(full("")).unwrap(),
        request("GET", "/no-content").body(full("")).unwrap(),
        request("GET", "/not-found").body(full("")).unwrap(),
        request("GET", "/fail").body(full("")).unwrap(),
        request("GET", "/streamed").body(full("")).unwrap(),
        request("GET", "/large").body(full("")).unwrap(),
        request("GET", "/pulled").body(full("")).unwrap(),
        request("GET", "/declared").body(full("")).unwrap(),
        request("POST", "/echo?a=1&b=%2F")
            .header("x-echo-x", "y")
            .body(full("posted"))
            .unwrap(),
    ];
    // A chunked request body (no Content-Length).
    let stream = futures::stream::iter(vec![
        Ok::<_, std::convert::Infallible>(http_body::Frame::data(Bytes::from_static(
            b"chunk one, ",
        ))),
        Ok(http_body::Frame::data(Bytes::from_static(b"chunk two"))),
    ]);
    requests.push(
        request("PUT", "/echo")
            .body(http_body_util::StreamBody::new(stream).boxed())
            .unwrap(),
    );
    let mut observed = Vec::new();
    let mut client = h1(addr).await;
    for req in requests {
        if client.ready().await.is_err() {
            client = h1(addr).await;
        }
        let (parts, body) = collect(client.send_request(req).await.unwrap()).await;
        let mut headers: Vec<_> = parts
            .headers
            .iter()
            .filter(|(name, _)| *name != "date")
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        headers.sort();
        observed.push((parts.status, headers, body));
    }
    observed
}

#[tokio::test]
async fn built_in_and_hyper_answer_alike() {
    let mut builtin = HttpServer::new().bind("127.0.0.1:0".parse().unwrap());
    builtin.start(Arc::new(shapes)).await.unwrap();
    let (mut hyper, hyper_addr) = start(shapes).await;
    let expected = observe(first_tcp(&builtin)).await;
    let actual = observe(hyper_addr).await;
    assert_eq!(expected.len(), actual.len());
    for (want, got) in expected.iter().zip(&actual) {
        assert_eq!(want, got, "built-in (left) vs hyper (right)");
    }
    // The comparison is not vacuous.
    assert_eq!(actual[0].2, "hello");
    assert_eq!(actual[5].0, StatusCode::INTERNAL_SERVER_ERROR);
    builtin.stop(deadline(5)).await.unwrap();
    hyper.stop(deadline(5)).await.unwrap();
}

/// The first line of the response to one raw HTTP/1.1 request.
async fn status_line(addr: std::net::SocketAddr) -> String {
    let reply = raw_exchange(
        addr,
        b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    reply.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn the_apps_reason_phrase_goes_out_as_on_the_built_in_server() {
    async fn reason(ctx: &mut HttpContext) -> Result<()> {
        ctx.response_mut().reason = Some("Everything Fine".into());
        ctx.write("r").await
    }
    let mut builtin = HttpServer::new().bind("127.0.0.1:0".parse().unwrap());
    builtin.start(Arc::new(reason)).await.unwrap();
    let (mut hyper, addr) = start(reason).await;
    assert_eq!(
        status_line(first_tcp(&builtin)).await,
        "HTTP/1.1 200 Everything Fine"
    );
    assert_eq!(status_line(addr).await, "HTTP/1.1 200 Everything Fine");
    builtin.stop(deadline(5)).await.unwrap();
    hyper.stop(deadline(5)).await.unwrap();
}

/// Reads the whole body; reports what the read gave (bytes, or the error's
/// kind and status).
fn reads_the_body(
    events: tokio::sync::mpsc::UnboundedSender<String>,
) -> impl serverbridge::Application {
    serverbridge::application::from_fn(move |ctx| {
        let events = events.clone();
        Box::pin(async move {
            let read = ctx.read_body(1 << 20).await;
            let _ = events.send(match &read {
                Ok(body) => format!("read {}", body.len()),
                Err(err) => format!(
                    "closed={} app={} status={:?}",
                    err.is_closed(),
                    err.is_app(),
                    err.status()
                ),
            });
            read.map(drop)
        })
    })
}

/// Sends `request` raw; `hang_up` closes the socket after it. Returns
/// what the app saw, and the response's status line (if any).
async fn body_fault(
    addr: std::net::SocketAddr,
    request: &[u8],
    hang_up: bool,
    events: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
) -> (String, String) {
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket.write_all(request).await.unwrap();
    let mut reply = Vec::new();
    if hang_up {
        drop(socket);
    } else {
        tokio::time::timeout(PATIENCE, socket.read_to_end(&mut reply))
            .await
            .unwrap()
            .unwrap();
    }
    let seen = tokio::time::timeout(PATIENCE, events.recv())
        .await
        .unwrap()
        .unwrap();
    let reply = String::from_utf8_lossy(&reply);
    (seen, reply.lines().next().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn request_body_faults_reach_the_app_as_on_the_built_in_server() {
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let mut builtin = HttpServer::new().bind("127.0.0.1:0".parse().unwrap());
    builtin
        .start(Arc::new(reads_the_body(events_tx.clone())))
        .await
        .unwrap();
    let (mut hyper, addr) = start(reads_the_body(events_tx)).await;
    // The client leaves mid-body: the read fails as closed.
    let cut_short: &[u8] = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n0123";
    // A malformed chunk line: the client's fault, 400.
    let bad_chunk: &[u8] =
        b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n";
    for (server, addr) in [("built-in", first_tcp(&builtin)), ("hyper", addr)] {
        let (seen, _) = body_fault(addr, cut_short, true, &mut events).await;
        assert_eq!(
            seen, "closed=true app=false status=Some(400)",
            "{server}: cut short"
        );
        let (seen, status) = body_fault(addr, bad_chunk, false, &mut events).await;
        assert!(
            seen.starts_with("closed=false app=false status=Some(400)"),
            "{server}: {seen}"
        );
        assert_eq!(status, "HTTP/1.1 400 Bad Request", "{server}: bad chunk");
    }
    builtin.stop(deadline(5)).await.unwrap();
    hyper.stop(deadline(5)).await.unwrap();
}

#[tokio::test]
async fn response_trailers_are_offered_only_where_hyper_sends_them() {
    // hyper sends HTTP/1.1 trailers only to a request whose TE lists
    // `trailers`, and HTTP/1.0 has no chunked framing: elsewhere the feature
    // is absent rather than silently dropped.
    async fn trailers(ctx: &mut HttpContext) -> Result<()> {
        let offered = ctx.features().contains::<ResponseTrailers>();
        let headers = &mut ctx.response_mut().headers;
        headers.insert("x-offered", offered.to_string().parse().unwrap());
        headers.insert("trailer", "x-sum".parse().unwrap());
        if let Some(trailers) = ctx.features_mut().get_mut::<ResponseTrailers>() {
            trailers.headers.insert("x-sum", "42".parse().unwrap());
        }
        ctx.write("abc").await?;
        ctx.flush().await?;
        ctx.write("def").await
    }
    let (mut hyper, addr) = start(trailers).await;
    for (request, offered) in [
        (
            &b"GET / HTTP/1.1\r\nhost: x\r\nte: trailers\r\nconnection: close\r\n\r\n"[..],
            true,
        ),
        (
            b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
            false,
        ),
        (b"GET / HTTP/1.0\r\nhost: x\r\n\r\n", false),
    ] {
        let reply = raw_exchange(addr, request).await.to_ascii_lowercase();
        assert!(
            reply.contains(&format!("x-offered: {offered}\r\n")),
            "{reply}"
        );
        assert_eq!(reply.contains("x-sum: 42\r\n"), offered, "{reply}");
        assert!(reply.contains("abc") && reply.contains("def"), "{reply}");
    }
    hyper.stop(deadline(5)).await.unwrap();
}

#[tokio::test]
async fn an_http2_stream_reset_mid_body_reaches_the_app_as_closed() {
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let (mut hyper, addr) = start(reads_the_body(events_tx)).await;
    // A raw h2 client, which can reset a stream by hand.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    let connection = tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = http::Request::post("http://x/").body(()).unwrap();
    let (_response, mut stream) = client.send_request(request, false).unwrap();
    stream
        .send_data(Bytes::from_static(b"some"), false)
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    stream.send_reset(h2::Reason::CANCEL);
    let seen = tokio::time::timeout(PATIENCE, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, "closed=true app=false status=Some(400)");
    connection.abort();
    hyper.stop(deadline(5)).await.unwrap();
}
