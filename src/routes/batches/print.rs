//! `GET /batches/{id}/print`: the batch's codes laid out on A4 sheets, twelve a page, each
//! with its label, scene and (for a temporary code) its expiry in large type, so that a
//! sheet printed from the browser can be cut into labels. The images are drawn here, into
//! the page: a sheet of hundreds of codes costs no request per code.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::summary;
use crate::error::AppError;
use crate::pages::{self, BatchPrintPage, PrintCell, offset_label};
use crate::render;
use crate::routes::AppState;
use crate::routes::stats::local_time;
use crate::store::batches::RowOutcome;

pub async fn sheet(
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let summary = summary(&state, &id).await?;
    let items = state.batches.items(&summary.id).await?;
    let offset = state.utc_offset;
    let presentation = state.codes.presentation().clone();
    let cells = web::block(move || {
        items
            .iter()
            .filter_map(|item| match &item.outcome {
                Some(RowOutcome::Made {
                    url, expires_at, ..
                }) => Some((item, url, *expires_at)),
                _ => None,
            })
            .map(|(item, url, expires_at)| {
                let svg = presentation.svg(url)?;
                Ok(PrintCell {
                    label: item.label.clone().unwrap_or_default(),
                    scene: item.code.scene.to_string(),
                    expires: expires_at.map(|t| local_time(Some(t), offset)),
                    image: format!("data:image/svg+xml;base64,{}", STANDARD.encode(svg)),
                })
            })
            .collect::<Result<Vec<_>, render::RenderError>>()
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))?
    .map_err(|e| AppError::Internal(e.into()))?;
    let page = BatchPrintPage {
        layout: state.layout,
        id: summary.id.clone(),
        waiting: summary.total.saturating_sub(summary.done),
        offset: offset_label(offset),
        cells,
    };
    Ok(pages::render(StatusCode::OK, &page))
}
