//! Health for load balancers and orchestrators: no upstream call. It reports whether the
//! database takes writes, since an instance that cannot store pushes answers every one of
//! them with an error.

use actix_web::HttpResponse;
use actix_web::web;

use super::AppState;

pub async fn check(state: web::Data<AppState>) -> HttpResponse {
    match state.store.write_outage() {
        None => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("ok"),
        Some(outage) => {
            let seconds = (time::OffsetDateTime::now_utc() - outage.since).whole_seconds();
            let mut text = format!(
                "store failing: database writes have failed for {seconds} s ({} refused): {}\n",
                outage.refused, outage.reason
            );
            if outage.latest != outage.reason {
                text.push_str(&format!("latest failure: {}\n", outage.latest));
            }
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain; charset=utf-8")
                .body(text)
        }
    }
}
