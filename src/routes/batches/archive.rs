//! `GET /batches/{id}.zip`: every code the batch made as a PNG and an SVG, named by label
//! and scene with Chinese kept (UTF-8 names, flagged as such in the archive), and
//! `index.csv` listing them for a print shop or a spreadsheet.

use std::collections::HashSet;
use std::io::Write;

use actix_web::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use actix_web::{HttpResponse, web};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::summary;
use crate::codes::{Presentation, safe_file_name};
use crate::error::AppError;
use crate::routes::AppState;
use crate::routes::download::content_disposition;
use crate::store::batches::{BatchItem, RowOutcome};

/// The archive of batch `id`'s codes made so far.
pub async fn zip(state: &AppState, id: &str) -> Result<HttpResponse, AppError> {
    let summary = summary(state, id).await?;
    let items = state.batches.items(&summary.id).await?;
    let created_at = OffsetDateTime::from_unix_timestamp(summary.created_at)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(state.utc_offset);
    // Thousands of images take seconds to draw: off the worker that serves pages.
    let presentation = state.codes.presentation().clone();
    let archive = web::block(move || archive(&presentation, &items, created_at))
        .await
        .map_err(|e| AppError::Internal(e.into()))?
        .map_err(AppError::Internal)?;
    let name = format!("scene-qr-batch-{}.zip", &summary.id[..8]);
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/zip"))
        .insert_header((
            CONTENT_DISPOSITION,
            content_disposition("attachment", &name),
        ))
        .body(archive))
}

/// The archive's bytes.
fn archive(
    presentation: &Presentation,
    items: &[BatchItem],
    created_at: OffsetDateTime,
) -> Result<Vec<u8>, crate::error::Cause> {
    let modified = zip::DateTime::from_date_and_time(
        u16::try_from(created_at.year()).unwrap_or(1980),
        created_at.month().into(),
        created_at.day(),
        created_at.hour(),
        created_at.minute(),
        created_at.second(),
    )
    .unwrap_or_default();
    // PNGs are compressed already; SVG and CSV text shrink a lot.
    let stored = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .last_modified_time(modified);
    let deflated = stored.compression_method(CompressionMethod::Deflated);
    let mut zip = ZipWriter::new(std::io::Cursor::new(Vec::new()));
    // A byte order mark, so that Excel on Chinese Windows reads the labels as UTF-8.
    let mut index = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    index.write_record([
        "scene",
        "label",
        "group",
        "kind",
        "expires_at",
        "url",
        "png",
        "svg",
    ])?;
    let mut taken = HashSet::new();
    for item in items {
        let Some(RowOutcome::Made {
            url, expires_at, ..
        }) = &item.outcome
        else {
            continue;
        };
        // Two rows may come to one name once unsafe characters are replaced ("a b" and
        // "a_b"): the later one takes its row number too, as an archive holds one file a
        // name.
        let mut stem = file_stem(item);
        if !taken.insert(stem.clone()) {
            stem = format!("{stem}-{}", item.position + 1);
            taken.insert(stem.clone());
        }
        let (png, svg) = (format!("{stem}.png"), format!("{stem}.svg"));
        zip.start_file(png.as_str(), stored)?;
        zip.write_all(&presentation.png(url)?)?;
        zip.start_file(svg.as_str(), deflated)?;
        zip.write_all(presentation.svg(url)?.as_bytes())?;
        let expires = expires_at
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default();
        let scene = item.code.scene.to_string();
        index.write_record([
            scene.as_str(),
            item.label.as_deref().unwrap_or(""),
            item.group.as_deref().unwrap_or(""),
            item.code.kind.name(),
            expires.as_str(),
            url.as_str(),
            png.as_str(),
            svg.as_str(),
        ])?;
    }
    zip.start_file("index.csv", deflated)?;
    zip.write_all(&index.into_inner().map_err(|e| e.into_error())?)?;
    Ok(zip.finish()?.into_inner())
}

/// A file's name without its extension: the label and the scene (the scene alone without a
/// label), Chinese and other letters kept. Scenes are distinct within a batch, so names are
/// too.
fn file_stem(item: &BatchItem) -> String {
    let scene = item.code.scene.to_string();
    let name = safe_file_name(&match item.label.as_deref() {
        Some(label) if !label.is_empty() => format!("{label}-{scene}"),
        _ => format!("scene-{scene}"),
    });
    // File systems take 255 bytes a name: cut at a character, leaving room for a row
    // number and the extension.
    let mut end = name.len().min(MAX_STEM_BYTES);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

/// The longest file name an archive entry gets, before its row number and extension.
const MAX_STEM_BYTES: usize = 200;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CodeRequest, Kind, Scene, SceneStr};

    fn item(scene: &str, label: Option<&str>) -> BatchItem {
        BatchItem {
            position: 0,
            code: CodeRequest {
                scene: Scene::Str(SceneStr::parse(scene).unwrap()),
                kind: Kind::Permanent,
            },
            label: label.map(str::to_string),
            group: None,
            outcome: None,
        }
    }

    #[test]
    fn names_keep_chinese_and_lose_what_file_systems_refuse() {
        assert_eq!(
            file_stem(&item("shop-1", Some("上海店 海报"))),
            "上海店_海报-shop-1"
        );
        assert_eq!(file_stem(&item("a/b", Some("x:y*"))), "x_y_-a_b");
        assert_eq!(file_stem(&item("..x", None)), "scene-..x");
        assert_eq!(file_stem(&item("s", Some("..hidden"))), "hidden-s");
        let long = file_stem(&item(&"店".repeat(64), Some(&"海".repeat(100))));
        assert!(long.len() <= MAX_STEM_BYTES, "{} bytes", long.len());
        assert!(long.starts_with("海海"));
    }
}
