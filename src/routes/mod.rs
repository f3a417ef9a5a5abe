//! HTTP routes. Each module is one feature; [`configure`] mounts them all.

mod assets;
mod health;
mod home;
mod qrcode;

use actix_web::web;

use crate::domain::Lifetime;
use crate::pages::Layout;
use crate::wechat::CodeService;

/// State shared by every worker (the per-worker WeChat client is registered beside it).
pub struct AppState {
    pub codes: CodeService,
    /// Lifetime of temporary codes that do not ask for one.
    pub default_lifetime: Lifetime,
    /// Base of the `showqrcode` image URL, without a trailing slash.
    pub mp_base: String,
    pub layout: Layout,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home::page))
        .route("/open", web::get().to(home::open))
        .route("/qrcode", web::get().to(qrcode::page))
        .route("/api/qrcode", web::get().to(qrcode::json))
        .route("/qrcode.png", web::get().to(qrcode::png))
        .route("/qrcode.svg", web::get().to(qrcode::svg))
        .route("/healthz", web::get().to(health::check))
        .route("/static/{path:.*}", web::get().to(assets::serve));
}
