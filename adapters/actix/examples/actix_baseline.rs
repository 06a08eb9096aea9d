//! Run with: cargo run --release -p serverbridge-actix --example actix_baseline -- --port 18083
//!
//! The benchmark baseline: a plain actix-web 4 hello handler (one worker)
//! serving the same plaintext response as `actix_plaintext.rs`, with no
//! serverbridge in the way. `scripts/bench --mode actix` runs both side by side.

use actix_web::http::header::{CONTENT_TYPE, SERVER};
use actix_web::{web, App, HttpResponse, HttpServer};

async fn plaintext() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((SERVER, "actix"))
        .insert_header((CONTENT_TYPE, "text/plain"))
        .body("Hello, World!")
}

fn main() -> std::io::Result<()> {
    let mut port = 18083u16;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().and_then(|v| v.parse().ok())) {
            ("--port", Some(v)) => port = v,
            _ => {
                eprintln!("usage: actix_baseline [--port N]");
                std::process::exit(2);
            }
        }
    }
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(|| App::new().route("/", web::get().to(plaintext)))
            .workers(1)
            .bind(("127.0.0.1", port))?;
        println!("listening on http://127.0.0.1:{port}");
        server.run().await
    })
}
