//! HTTP routes. Each module is one feature; [`configure`] mounts them all.

mod assets;
pub mod callback;
mod health;
mod home;
mod labels;
mod metrics;
mod qrcode;
mod sandbox;
pub mod stats;

use actix_web::http::header::{HOST, ORIGIN};
use actix_web::{HttpRequest, web};
use time::UtcOffset;

use crate::codes::CodeService;
use crate::domain::Lifetime;
use crate::error::AppError;
use crate::pages::Layout;
use crate::store::Store;

/// State shared by every worker (the per-worker WeChat client is registered beside it).
pub struct AppState {
    pub codes: CodeService,
    pub store: Store,
    /// Lifetime of temporary codes that do not ask for one.
    pub default_lifetime: Lifetime,
    /// Base of the `showqrcode` image URL, without a trailing slash.
    pub mp_base: String,
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

pub fn configure(cfg: &mut web::ServiceConfig, sandbox: bool) {
    cfg.route("/", web::get().to(home::page))
        .route("/open", web::get().to(home::open))
        .route("/qrcode", web::get().to(qrcode::page))
        .route("/api/qrcode", web::get().to(qrcode::json))
        .route("/qrcode.png", web::get().to(qrcode::png))
        .route("/qrcode.svg", web::get().to(qrcode::svg))
        .route("/labels", web::post().to(labels::save))
        .route("/stats", web::get().to(stats::page))
        .route("/stats.csv", web::get().to(stats::csv))
        .route("/stats/{scene}", web::get().to(stats::scene_page))
        .route("/api/stats", web::get().to(stats::json))
        .service(
            web::resource("/wechat/callback")
                .app_data(web::PayloadConfig::new(callback::MAX_PUSH_BYTES))
                .route(web::get().to(callback::handshake))
                .route(web::post().to(callback::receive)),
        )
        .route("/healthz", web::get().to(health::check))
        .route("/metrics", web::get().to(metrics::render))
        .route("/static/{path:.*}", web::get().to(assets::serve));
    if sandbox {
        cfg.route("/sandbox/scan", web::post().to(sandbox::scan));
    }
}
