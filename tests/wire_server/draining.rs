//! Draining.

use super::*;

async fn ignore_body(ctx: &mut HttpContext) -> Result<()> {
    let path = ctx.request().path.clone();
    ctx.write(format!("ignored {path}")).await
}

fn drain_limits() -> Limits {
    Limits {
        max_drain_size: 1000,
        ..Limits::default()
    }
}

#[tokio::test(start_paused = true)]
async fn an_unread_body_within_the_drain_limit_is_drained_and_the_connection_kept() {
    let (mut client, _) = connect(ignore_body, drain_limits());
    let chunked = format!(
        "POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n{}\r\n0\r\n\r\n",
        body_of(1000)
    );
    client
        .send(format!(
            "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n{}{chunked}{}",
            body_of(1000),
            get_close("/c")
        ))
        .await;
    for path in ["/a", "/b", "/c"] {
        let response = client.response().await;
        assert_eq!(response.text(), format!("ignored {path}"));
    }
    client.expect_eof().await;
}

#[tokio::test(start_paused = true)]
async fn an_unread_body_past_the_drain_limit_closes_the_connection() {
    let (mut client, _) = connect(ignore_body, drain_limits());
    client
        .send(format!(
            "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1001\r\n\r\n{}{}",
            body_of(1001),
            get("/never")
        ))
        .await;
    let response = client.response().await;
    assert_eq!(response.text(), "ignored /a");
    client.expect_eof().await;
}

#[tokio::test(start_paused = true)]
async fn an_unread_body_that_never_comes_closes_after_the_drain_timeout() {
    let limits = Limits::default();
    let (mut client, _) = connect(ignore_body, limits.clone());
    client
        .send("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n12345")
        .await;
    let response = client.response().await;
    assert_eq!(response.text(), "ignored /a");
    let start = Instant::now();
    client.set_timeout(Duration::from_secs(60));
    client.expect_eof().await;
    assert_eq!(start.elapsed(), limits.drain_timeout);
}
