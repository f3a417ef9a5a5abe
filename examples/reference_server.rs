//! The reference limit for the page benchmark: the least an actix-web handler can do,
//! answering a static body of a given size, with the same worker count as scene-qr.
//!
//!     cargo run --release --example reference_server -- 127.0.0.1:18091 3500

use actix_web::{App, HttpResponse, HttpServer, web};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, size] = args.as_slice() else {
        eprintln!("usage: reference_server LISTEN BODY_BYTES");
        std::process::exit(2);
    };
    let body: &'static str = Box::leak("x".repeat(size.parse().unwrap_or(1024)).into_boxed_str());
    HttpServer::new(move || {
        App::new().default_service(web::to(move || async move {
            HttpResponse::Ok()
                .content_type("text/html; charset=utf-8")
                .body(body)
        }))
    })
    .bind(listen.as_str())?
    .run()
    .await
}
