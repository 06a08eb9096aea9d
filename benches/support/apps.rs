//! The hello app both benchmarks run: on the feature path and through the
//! OWIN bridge.

use http::header::CONTENT_TYPE;
use http::HeaderValue;
use serverbridge::owin::{keys, Environment};
use serverbridge::{HttpContext, Result};

/// `200`, `content-type: text/plain`, `Hello, World!`.
pub(crate) async fn hello(ctx: &mut HttpContext) -> Result<()> {
    ctx.response_mut()
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    ctx.write("Hello, World!").await
}

/// The same through the OWIN environment.
pub(crate) async fn hello_owin(env: &mut Environment) -> Result<()> {
    env.headers_mut(keys::RESPONSE_HEADERS)
        .expect("response headers")
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    env.write("Hello, World!").await
}
