//! HTTP routes. Each module is one feature; [`configure`] mounts them all.

mod assets;
mod batches;
mod body;
pub mod callback;
mod download;
mod health;
mod home;
mod labels;
mod metrics;
mod qrcode;
mod sandbox;
mod scenes;
pub mod stats;
mod status;

use std::sync::Arc;

use actix_web::http::Method;
use actix_web::http::header::{HOST, ORIGIN};
use actix_web::{FromRequest, Handler, HttpRequest, HttpResponse, Resource, Responder, guard, web};
use time::UtcOffset;

use crate::batches::Batches;
use crate::codes::CodeService;
use crate::domain::Lifetime;
use crate::error::AppError;
use crate::pages::Layout;
use crate::store::Store;

/// State of the service, one copy per worker (the per-worker WeChat client is registered
/// beside it). The caches inside are shared; the copies are not, because a `web::Data` is
/// an `Arc` that every request clones: one `Data` for both workers would move its counter
/// between the two cores' caches twice per request.
#[derive(Clone)]
pub struct AppState {
    pub codes: Arc<CodeService>,
    pub batches: Batches,
    pub store: Store,
    /// Lifetime of temporary codes that do not ask for one.
    pub default_lifetime: Lifetime,
    /// Offset of the days statistics count in.
    pub utc_offset: UtcOffset,
    pub layout: Layout,
    /// SCENE_QR_PERMANENT, resolved.
    pub permanent_allowed: bool,
}

/// Forms are accepted from scene-qr's own pages only. A browser names the page a form came
/// from in `Origin`, so a form posted from another site (cross-site request forgery) is
/// refused; clients that send no `Origin` are not browsers submitting a cross-site form.
fn refuse_cross_site_form(req: &HttpRequest) -> Result<(), AppError> {
    let Some(origin) = req.headers().get(ORIGIN).and_then(|o| o.to_str().ok()) else {
        return Ok(());
    };
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or_default();
    if !host.is_empty() && origin_host == host {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "forms are accepted from scene-qr's own pages only",
        ))
    }
}

/// Any address no route takes.
pub async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound(
        "Codes live at /qrcode?scene_id=… or /qrcode?scene_str=…",
    ))
}

pub fn configure(cfg: &mut web::ServiceConfig, sandbox: bool) {
    // The code page and its JSON twin first: actix tries the routes in this order, and
    // each route tried before the matching one is paid by every cached page (see
    // bench/README.md).
    cfg.service(get_only("/qrcode", qrcode::page))
        .service(get_only("/api/qrcode", qrcode::json))
        .service(get_only("/", home::page))
        .service(get_only("/open", home::open))
        .service(get_only("/qrcode.png", qrcode::png))
        .service(get_only("/qrcode.svg", qrcode::svg))
        .service(get_only("/embed/qrcode", qrcode::embed))
        .route("/labels", web::post().to(labels::save))
        .service(get_only("/stats", stats::page))
        .service(get_only("/stats.csv", stats::csv))
        .service(get_only("/stats/{scene}", stats::scene_page))
        .service(get_only("/api/stats", stats::json))
        .service(
            web::resource("/api/scenes/{scene}")
                .route(web::get().to(scenes::get))
                .route(web::put().to(scenes::put))
                .default_service(web::to(|| async {
                    Err::<HttpResponse, _>(AppError::MethodNotAllowed {
                        allowed: "GET, PUT",
                    })
                })),
        )
        .service(
            web::resource("/wechat/callback")
                .route(web::get().to(callback::handshake))
                .route(web::post().to(callback::receive)),
        )
        .route("/api/batches", web::post().to(batches::create_json))
        .service(get_only("/api/batches/{id}", batches::status_json))
        .service(get_only("/batches/new", batches::new_page))
        .route("/batches/preview", web::post().to(batches::preview))
        .route("/batches", web::post().to(batches::create))
        .service(get_only("/batches/{id}/print", batches::sheet))
        // `{id}` for the batch's page, `{id}.zip` for its archive.
        .service(get_only("/batches/{file}", batches::page_or_archive))
        .service(get_only("/status", status::page))
        .service(get_only("/api/status", status::json))
        .service(get_only("/healthz", health::check))
        .service(get_only("/metrics", metrics::render))
        .service(get_only("/static/{path:.*}", assets::serve));
    if sandbox {
        cfg.route("/sandbox/scan", web::post().to(sandbox::scan))
            .service(get_only("/cgi-bin/showqrcode", sandbox::image));
    }
}

/// A resource answering GET at `path`, and 405 with `Allow: GET` to any other method.
///
/// Not `web::get()`: its guard records the allowed methods in the request's extensions each
/// time it is checked, three allocations on every request (a tenth of what serving a cached
/// page cost), and `cfg.route` turns it into a guard on the whole resource, so that other
/// methods fall through to the 404 page instead of being told what is allowed.
fn get_only<F, Args>(path: &str, handler: F) -> Resource
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    web::resource(path)
        .route(
            web::route()
                .guard(guard::fn_guard(|ctx| ctx.head().method == Method::GET))
                .to(handler),
        )
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(AppError::MethodNotAllowed { allowed: "GET" })
        }))
}
