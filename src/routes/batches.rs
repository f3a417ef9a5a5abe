//! Batches of codes: the "New batch" page (a CSV pasted or uploaded, or a pattern) with
//! its preview, the batch's page with its progress, and the same for tools as JSON
//! (`POST /api/batches`, `GET /api/batches/{id}`). A finished batch downloads as a ZIP
//! archive ([`archive`]) and prints as A4 sheets ([`print`]).

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::body::{self, FORM_BODY_WITHIN};
use super::stats::local_time;
use super::{AppState, refuse_cross_site_form};
use crate::batches::is_batch_id;
use crate::domain::{BatchPreview, BatchRequest, Defaults, InvalidBatch, Kind, Lifetime, RowError};
use crate::error::AppError;
use crate::pages::{self, BatchForm, BatchItemRow, BatchNewPage, BatchPage, offset_label};
use crate::store::batches::{BatchItem, BatchSummary, RowOutcome};

mod archive;
mod print;

use archive::zip;
pub use print::sheet;

/// Largest batch body, JSON or form: 5,000 rows of CSV with labels and groups fit.
const MAX_BATCH_BYTES: usize = 2 * 1024 * 1024;

/// Permanent codes an account may ever hold.
const PERMANENT_CODES_LIMIT: u64 = 100_000;

/// `POST /api/batches`: the batch is stored and `202` answered with its id; the rows are
/// made in the background.
pub async fn create_json(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    // JSON only: a browser sends a JSON body to another site only after asking it (CORS
    // preflight), so another site's page cannot make codes here with a form whose field
    // name and value happen to add up to JSON.
    refuse_cross_site_form(&req)?;
    let json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !json {
        return Err(AppError::BadRequest {
            message: "the body must be sent as Content-Type: application/json".into(),
            allowed: InvalidBatch::ALLOWED,
        });
    }
    let body = body::read(&req, payload, MAX_BATCH_BYTES, FORM_BODY_WITHIN).await?;
    let request =
        BatchRequest::from_json(&body, state.default_lifetime).map_err(AppError::BadBatch)?;
    let id = submit(&state, &request).await?;
    Ok(HttpResponse::Accepted()
        .insert_header((LOCATION, format!("/api/batches/{id}")))
        .json(json!({ "id": id })))
}

/// `GET /api/batches/{id}`.
pub async fn status_json(
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let summary = summary(&state, &id).await?;
    Ok(HttpResponse::Ok().json(BatchJson::from(&summary)))
}

/// `GET /batches/new`: the empty form.
pub async fn new_page(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let page = new_batch_page(&state, BatchForm::default(), None, Vec::new(), None).await?;
    Ok(pages::render(StatusCode::OK, &page))
}

/// `POST /batches/preview`: what the batch would do, with a button to create it; or the
/// form again, as typed, with every invalid row named.
pub async fn preview(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    refuse_cross_site_form(&req)?;
    let form = read_form(&req, payload).await?;
    let page = match form.request(state.default_lifetime) {
        Ok(request) => {
            let preview = state.batches.preview(&request).await?;
            let page = new_batch_page(&state, form, None, Vec::new(), Some(preview)).await?;
            return Ok(pages::render(StatusCode::OK, &page));
        }
        Err(invalid) => refused_form(&state, form, invalid).await?,
    };
    Ok(pages::render(StatusCode::BAD_REQUEST, &page))
}

/// `POST /batches`: stores the batch and sends staff to its page.
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    refuse_cross_site_form(&req)?;
    let form = read_form(&req, payload).await?;
    match form.request(state.default_lifetime) {
        Ok(request) => {
            let id = submit(&state, &request).await?;
            Ok(HttpResponse::SeeOther()
                // The batch's page says it started when it is the fragment's target.
                .insert_header((LOCATION, format!("/batches/{id}#batch-started")))
                .finish())
        }
        Err(invalid) => {
            let page = refused_form(&state, form, invalid).await?;
            Ok(pages::render(StatusCode::BAD_REQUEST, &page))
        }
    }
}

/// `GET /batches/{id}`: progress, refreshed by the browser while rows are being made;
/// `GET /batches/{id}.zip`: the archive.
pub async fn page_or_archive(
    file: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    if let Some(id) = file.strip_suffix(".zip") {
        return zip(&state, id).await;
    }
    let summary = summary(&state, &file).await?;
    let items = state.batches.items(&summary.id).await?;
    let offset = state.utc_offset;
    let page = BatchPage {
        layout: state.layout,
        refresh: summary.state.is_unfinished(),
        state: summary.state.as_str(),
        created_at: local_time(Some(summary.created_at), offset),
        offset: offset_label(offset),
        rows: items.iter().map(|item| item_row(item, offset)).collect(),
        failed: summary.failures.len(),
        summary,
    };
    Ok(pages::render(StatusCode::OK, &page))
}

/// Stores `request`, unless it asks for permanent codes where they are off.
async fn submit(state: &AppState, request: &BatchRequest) -> Result<String, AppError> {
    if request.permanent_rows() > 0 && !state.permanent_allowed {
        return Err(AppError::PermanentDenied);
    }
    Ok(state.batches.submit(request).await?)
}

/// Batch `id`'s progress, or 404.
async fn summary(state: &AppState, id: &str) -> Result<BatchSummary, AppError> {
    const UNKNOWN: &str = "There is no batch with this id: batches are listed at /batches/{id} \
        as POST /api/batches or the New batch page answered.";
    if !is_batch_id(id) {
        return Err(AppError::NotFound(UNKNOWN));
    }
    state
        .batches
        .summary(id)
        .await?
        .ok_or(AppError::NotFound(UNKNOWN))
}

async fn new_batch_page(
    state: &AppState,
    form: BatchForm,
    problem: Option<String>,
    errors: Vec<RowError>,
    preview: Option<BatchPreview>,
) -> Result<BatchNewPage, AppError> {
    let permanent_used = match &preview {
        Some(preview) => preview.permanent_used,
        None => state.store.permanent_codes_used().await?,
    };
    Ok(BatchNewPage {
        layout: state.layout,
        form,
        problem,
        errors,
        preview,
        permanent_used,
        permanent_limit: PERMANENT_CODES_LIMIT,
        permanent_allowed: state.permanent_allowed,
        default_days: (state.default_lifetime.seconds() / 86_400).max(1),
    })
}

/// The form again, as typed, with what is wrong.
async fn refused_form(
    state: &AppState,
    form: BatchForm,
    invalid: InvalidBatch,
) -> Result<BatchNewPage, AppError> {
    let problem = match &invalid {
        InvalidBatch::Whole(problem) => problem.clone(),
        InvalidBatch::Rows(_) => format!("{invalid}. Correct the rows below and preview again:"),
    };
    let errors = match invalid {
        InvalidBatch::Rows(errors) => errors,
        InvalidBatch::Whole(_) => Vec::new(),
    };
    new_batch_page(state, form, Some(problem), errors, None).await
}

/// The form's fields, from a multipart form (with a file) or a plain one.
async fn read_form(req: &HttpRequest, payload: web::Payload) -> Result<BatchForm, AppError> {
    let body = body::read(req, payload, MAX_BATCH_BYTES, FORM_BODY_WITHIN).await?;
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let mut form = BatchForm::default();
    let mut file = None;
    let mut set = |name: &str, value: String| match name {
        "csv" => form.csv = value,
        "pattern" => form.pattern = value,
        "kind" => form.kind = value,
        "expire_days" => form.expire_days = value,
        _ => {}
    };
    if content_type.starts_with("multipart/form-data") {
        let bad = |e: multer::Error| AppError::BadRequest {
            message: format!("the form could not be read: {e}"),
            allowed: "the New batch page's form",
        };
        let boundary = multer::parse_boundary(content_type).map_err(bad)?;
        let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
        let mut multipart = multer::Multipart::new(stream, boundary);
        while let Some(field) = multipart.next_field().await.map_err(bad)? {
            let name = field.name().unwrap_or_default().to_string();
            let bytes = field.bytes().await.map_err(bad)?;
            if name == "file" {
                file = Some(bytes);
            } else {
                set(&name, String::from_utf8_lossy(&bytes).into_owned());
            }
        }
    } else {
        for (name, value) in form_urlencoded::parse(&body) {
            set(&name, value.into_owned());
        }
    }
    // A file chosen replaces what was pasted, and is shown in its place.
    if let Some(file) = file.filter(|file| !file.is_empty()) {
        form.csv = String::from_utf8(file.to_vec()).map_err(|_| AppError::BadRequest {
            message: "the file is not UTF-8 text".into(),
            allowed: "a CSV file saved as UTF-8 (in Excel: Save as > CSV UTF-8)",
        })?;
    }
    Ok(form)
}

impl BatchForm {
    /// The batch the form asks for.
    fn request(&self, default_lifetime: Lifetime) -> Result<BatchRequest, InvalidBatch> {
        let kind = match self.kind.as_str() {
            "permanent" => Kind::Permanent,
            other if other != "temporary" => {
                return Err(InvalidBatch::Whole(
                    "choose what the codes are for: permanent (for printing) or temporary".into(),
                ));
            }
            _ => {
                let days = self.expire_days.trim();
                let lifetime = if days.is_empty() {
                    Some(default_lifetime)
                } else {
                    days.parse::<u32>()
                        .ok()
                        .filter(|d| (1..=30).contains(d))
                        .and_then(|d| Lifetime::new(d * 86_400))
                };
                Kind::Temporary(lifetime.ok_or_else(|| {
                    InvalidBatch::Whole(format!(
                        "{days:?} days is not a lifetime: a temporary code lives 1 to 30 days"
                    ))
                })?)
            }
        };
        let (csv, pattern) = (self.csv.trim(), self.pattern.trim());
        match (csv.is_empty(), pattern.is_empty()) {
            (false, false) => Err(InvalidBatch::Whole(
                "give a pattern or a CSV, not both: empty one of them".into(),
            )),
            (true, true) => Err(InvalidBatch::Whole(
                "give a pattern (such as shop-{001..200}) or a CSV with a header row".into(),
            )),
            (true, false) => BatchRequest::from_pattern(pattern, kind),
            (false, true) => {
                BatchRequest::from_csv(&self.csv, Defaults::of(kind, default_lifetime))
            }
        }
    }
}

/// A row as the batch's page lists it.
fn item_row(item: &BatchItem, offset: time::UtcOffset) -> BatchItemRow {
    let (outcome, expires) = match &item.outcome {
        None => ("waiting".to_string(), String::new()),
        Some(RowOutcome::Made {
            reused, expires_at, ..
        }) => (
            if *reused { "reused" } else { "created" }.to_string(),
            local_time(*expires_at, offset),
        ),
        Some(RowOutcome::Failed { errcode, .. }) => (
            match errcode {
                Some(code) => format!("failed (errcode {code})"),
                None => "failed".to_string(),
            },
            String::new(),
        ),
    };
    BatchItemRow {
        scene: item.code.scene.to_string(),
        label: item.label.clone().unwrap_or_default(),
        group: item.group.clone().unwrap_or_default(),
        kind: item.code.kind.name(),
        made: matches!(item.outcome, Some(RowOutcome::Made { .. })),
        href: format!("/qrcode?{}", item.code.query_string()),
        outcome,
        expires,
    }
}

/// `GET /api/batches/{id}`.
#[derive(Serialize)]
struct BatchJson<'a> {
    id: &'a str,
    state: &'static str,
    total: u64,
    done: u64,
    reused: u64,
    errors: Vec<ErrorJson<'a>>,
    stop_reason: Option<&'a str>,
    created_at: Option<String>,
    zip: String,
    print: String,
}

#[derive(Serialize)]
struct ErrorJson<'a> {
    scene: &'a str,
    errcode: Option<i64>,
    message: &'a str,
}

impl<'a> From<&'a BatchSummary> for BatchJson<'a> {
    fn from(summary: &'a BatchSummary) -> Self {
        Self {
            id: &summary.id,
            state: summary.state.as_str(),
            total: summary.total,
            done: summary.done,
            reused: summary.reused,
            errors: summary
                .failures
                .iter()
                .map(|f| ErrorJson {
                    scene: &f.scene,
                    errcode: f.errcode,
                    message: &f.message,
                })
                .collect(),
            stop_reason: summary.stop_reason.as_deref(),
            created_at: OffsetDateTime::from_unix_timestamp(summary.created_at)
                .ok()
                .and_then(|t| t.format(&Rfc3339).ok()),
            zip: format!("/batches/{}.zip", summary.id),
            print: format!("/batches/{}/print", summary.id),
        }
    }
}
