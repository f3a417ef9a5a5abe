//! Liveness for load balancers and orchestrators: no upstream call, no state.

use actix_web::HttpResponse;

pub async fn check() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok")
}
