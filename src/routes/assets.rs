//! Files of `static/`, compiled into the binary so it serves its full page from any
//! working directory.

use actix_web::http::header::{self, ETag, EntityTag, IfNoneMatch};
use actix_web::{HttpRequest, HttpResponse, web};
use rust_embed::RustEmbed;

use crate::error::AppError;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

pub async fn serve(req: HttpRequest, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    let file = Assets::get(&path).ok_or(AppError::NotFound("There is no such file."))?;
    let tag = EntityTag::new_strong(
        file.metadata
            .sha256_hash()
            .iter()
            .take(12)
            .map(|b| format!("{b:02x}"))
            .collect(),
    );
    if let Ok(IfNoneMatch::Items(seen)) = header::Header::parse(&req)
        && seen.iter().any(|t| t.strong_eq(&tag))
    {
        return Ok(HttpResponse::NotModified()
            .insert_header(ETag(tag))
            .finish());
    }
    Ok(HttpResponse::Ok()
        .content_type(file.metadata.mimetype())
        .insert_header(ETag(tag))
        // Short: assets change with releases and are not fingerprinted in their names.
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(file.data.into_owned()))
}
