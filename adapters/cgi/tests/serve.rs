//! `serve` on in-memory stdin and stdout: what the web server would read,
//! byte for byte, for the cases where CGI's framing differs from HTTP's.

use futures::future::BoxFuture;
use serverbridge::{HttpContext, Result};
use tokio::io::AsyncReadExt;

type App = for<'a> fn(&'a mut HttpContext) -> BoxFuture<'a, Result<()>>;

/// Runs `app` as one CGI request; returns what it wrote to stdout.
async fn run(env: &[(&str, &str)], stdin: &'static [u8], app: App) -> String {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let (mut reader, stdout) = tokio::io::duplex(64 * 1024);
    let app = serverbridge::application::from_fn(app);
    // The app's own error is answered (or not) on stdout; what matters is
    // the bytes.
    let _ = serverbridge_cgi::serve(env, stdin, stdout, &app).await;
    let mut output = String::new();
    reader.read_to_string(&mut output).await.unwrap();
    output
}

#[tokio::test]
async fn a_reason_phrase_with_a_line_break_gives_way_to_the_standard_one() {
    // Written as it is, it would end the Status line and add header lines
    // of the app's choosing to the web server's response.
    let output = run(
        &[("REQUEST_METHOD", "GET"), ("SERVER_PROTOCOL", "HTTP/1.1")],
        b"",
        |ctx| {
            Box::pin(async move {
                ctx.response_mut().reason = Some("Fine\nSet-Cookie: session=evil".into());
                ctx.write("body").await
            })
        },
    )
    .await;
    assert_eq!(
        output, "Status: 200 OK\ncontent-length: 4\n\nbody",
        "{output:?}"
    );
}

#[tokio::test]
async fn a_custom_reason_phrase_goes_out() {
    let output = run(
        &[("REQUEST_METHOD", "GET"), ("SERVER_PROTOCOL", "HTTP/1.1")],
        b"",
        |ctx| {
            Box::pin(async move {
                ctx.response_mut().reason = Some("Very Fine".into());
                ctx.write("body").await
            })
        },
    )
    .await;
    assert!(output.starts_with("Status: 200 Very Fine\n"), "{output:?}");
}

#[tokio::test]
async fn stdin_ending_before_content_length_is_400() {
    // As a body cut short on the built-in server: the client's doing.
    let output = run(
        &[
            ("REQUEST_METHOD", "POST"),
            ("CONTENT_LENGTH", "10"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
        ],
        b"01234",
        |ctx| {
            Box::pin(async move {
                while ctx.request_body().chunk().await?.is_some() {}
                ctx.write("read").await
            })
        },
    )
    .await;
    assert!(
        output.starts_with("Status: 400 Bad Request\n"),
        "{output:?}"
    );
}
