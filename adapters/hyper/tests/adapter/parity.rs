//! The same requests on the built-in server and on `HyperServer` give the
//! same status, headers (minus `Date`) and body.

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::BodyExt;
use serverbridge::server::HttpServer;
use serverbridge::{Error, HttpContext, Result, Server};

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
