//! Panics.

use super::*;

pub(crate) async fn panics_on_request(ctx: &mut HttpContext) -> Result<()> {
    if ctx.request().path == "/panic" {
        panic!("the app panicked on purpose");
    }
    echo(ctx).await
}

#[tokio::test(start_paused = true)]
async fn an_app_panic_is_a_500_and_other_connections_go_on() {
    let app: serverbridge::BoxApplication = Arc::new(panics_on_request);
    let (mut other, _) = connect_shared(app.clone(), Limits::default(), 1);
    let (mut client, _) = connect_shared(app, Limits::default(), 2);
    other.send(get("/before")).await;
    assert_echo(&other.response().await, "GET", "/before", 0);

    client.send(get("/panic")).await;
    let response = client.response().await;
    assert_eq!(
        escape(&normalise_date(&response.raw)),
        escape(
            format!(
                "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\ndate: {FIXED_DATE}\r\n\r\n"
            )
            .as_bytes()
        )
    );
    // The 500 was a complete response: this connection carries on too.
    client.send(get("/after")).await;
    assert_echo(&client.response().await, "GET", "/after", 0);
    other.send(get("/after")).await;
    assert_echo(&other.response().await, "GET", "/after", 0);
}

/// Panics in `create_context` for `/no-context`; otherwise echoes.
struct PanicsInCreate;

impl Application for PanicsInCreate {
    fn create_context(&self, features: serverbridge::Features) -> HttpContext {
        let ctx = HttpContext::new(features);
        if ctx.request().path == "/no-context" {
            panic!("no context today");
        }
        ctx
    }

    fn process_request<'a>(&'a self, ctx: &'a mut HttpContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(echo(ctx))
    }
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_create_context_closes_that_connection_only() {
    let app: serverbridge::BoxApplication = Arc::new(PanicsInCreate);
    let (mut other, other_task) = connect_shared(app.clone(), Limits::default(), 1);
    let (mut client, task) = connect_shared(app, Limits::default(), 2);
    // The sink went down with the features: no response, a close (as
    // Kestrel closes when CreateContext throws), and the panic stays inside
    // the request: the connection's task ends normally.
    client.send(get("/no-context")).await;
    client.expect_eof().await;
    task.await
        .expect("the connection task ends without a panic");
    other.send(get("/after")).await;
    assert_echo(&other.response().await, "GET", "/after", 0);
    drop(other);
    other_task.await.expect("the other connection ends cleanly");
}
