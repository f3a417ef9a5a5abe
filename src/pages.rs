//! The HTML pages: askama templates (compiled into the binary, so no per-request parsing)
//! and the one function that turns a template into a response.

use actix_web::HttpResponse;
use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use askama::Template;
use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::domain::{BatchPreview, RowError, SortKey};
use crate::store::batches::BatchSummary;
use crate::store::stats::Totals;
use crate::wechat::Quota;

/// What every page's frame needs to know.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Shows the "sandbox" badge: these codes come from the emulator and scan into nothing.
    pub sandbox: bool,
}

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage<'a> {
    pub layout: Layout,
    pub default_lifetime: u32,
    /// The form as last submitted, with what was wrong with it.
    pub form: &'a HomeForm,
    pub error: Option<String>,
    /// Permanent codes used of the account's 100,000, when the database could say.
    pub permanent_used: Option<u64>,
}

/// The home page form's fields, kept as typed so that a refused form comes back filled in.
#[derive(Debug, Default, Clone)]
pub struct HomeForm {
    pub scene: String,
    /// `id` or `str`.
    pub scene_type: String,
    /// `temporary` or `permanent`.
    pub kind: String,
    pub expire_seconds: String,
}

#[derive(Template)]
#[template(path = "qrcode.html")]
pub struct QrCodePage {
    pub layout: Layout,
    pub scene: String,
    pub is_string_scene: bool,
    pub kind: &'static str,
    pub action_name: &'static str,
    pub image_url: String,
    pub url: String,
    pub lifetime: Option<String>,
    pub expires_at: Option<String>,
    pub expires_at_rfc3339: Option<String>,
    pub query: String,
    pub file_stem: String,
    /// The scene's name among staff, editable on the page.
    pub label: String,
    /// This page's own address, where the label form comes back to.
    pub back: String,
    pub stats_href: String,
    /// For the sandbox's "simulate scan" buttons.
    pub ticket: String,
    /// A temporary code in its last week warns against printing it.
    pub last_week: Option<LastWeekWarning>,
}

/// The warning on the page of a temporary code in its last week: a poster outlives it.
pub struct LastWeekWarning {
    /// How long it has left, rounded up: "3 days", "1 day".
    pub within: String,
    /// The page of the same scene's permanent code, where one can be made.
    pub permanent_href: Option<String>,
    /// Why no permanent code is offered, when none is.
    pub no_permanent: &'static str,
}

#[derive(Template)]
#[template(path = "stats.html")]
pub struct StatsPage {
    pub layout: Layout,
    pub from: String,
    pub to: String,
    /// "UTC+08:00": the offset days and times are in.
    pub offset: String,
    pub totals: Totals,
    /// Retained new followers' share, as shown ("87.5 %", or "–" with no new followers).
    pub retention: String,
    /// D1, D7 and D30 retention, as shown, when the totals are one scene's or one group's.
    pub cohorts: Vec<(&'static str, String)>,
    /// Whether the table has a row per group rather than per scene.
    pub groups_view: bool,
    /// The table's columns: a scene's, or a group's.
    pub headers: Vec<SortHeader>,
    /// The scenes of this page, in the scenes view.
    pub rows: Vec<StatsRow>,
    /// The groups of this page, in the groups view.
    pub group_rows: Vec<GroupRow>,
    pub pager: Pager,
    /// An inline SVG element, rendered (and escaped) by its own template.
    pub chart: String,
    pub chart_title: String,
    pub chart_scene: String,
    pub scenes: Vec<String>,
    /// Every group's name, for the group filter.
    pub group_names: Vec<String>,
    /// The group the table is narrowed to; empty for all.
    pub group: String,
    /// The search, as typed.
    pub search: String,
    /// `scenes` or `groups`.
    pub view: &'static str,
    /// The same request showing scenes, and groups.
    pub scenes_href: String,
    pub groups_href: String,
    pub export_query: String,
    pub sort: &'static str,
    pub order: &'static str,
}

/// A sortable column header of the statistics table.
pub struct SortHeader {
    pub title: &'static str,
    pub href: String,
    /// " ▼" or " ▲" on the column the table is sorted by.
    pub marker: &'static str,
    pub numeric: bool,
}

impl SortHeader {
    /// The scenes view's columns.
    pub const ALL_COLUMNS: [(SortKey, &'static str); 10] = [
        (SortKey::Scene, "Scene"),
        (SortKey::Label, "Label"),
        (SortKey::Group, "Group"),
        (SortKey::Kind, "Kind"),
        (SortKey::Scans, "Scans"),
        (SortKey::Followers, "New followers"),
        (SortKey::Users, "Unique users"),
        (SortKey::Lost, "Lost"),
        (SortKey::Retention, "Retention"),
        (SortKey::Last, "Last scan"),
    ];

    /// The groups view's sortable columns (its scenes follow, unsorted).
    pub const GROUP_COLUMNS: [(SortKey, &'static str); 7] = [
        (SortKey::Group, "Group"),
        (SortKey::Scans, "Scans"),
        (SortKey::Followers, "New followers"),
        (SortKey::Users, "Unique users"),
        (SortKey::Lost, "Lost"),
        (SortKey::Retention, "Retention"),
        (SortKey::Last, "Last scan"),
    ];
}

pub struct StatsRow {
    pub scene: String,
    pub href: String,
    pub label: String,
    pub group: String,
    /// `/stats` narrowed to the row's group; empty without one.
    pub group_href: String,
    pub kinds: String,
    pub scans: i64,
    pub new_followers: i64,
    /// Always counted for the rows a page shows.
    pub unique_users: Option<i64>,
    pub lost: i64,
    pub retention: String,
    pub last_scan: String,
}

/// A group's line in the groups view.
pub struct GroupRow {
    /// The group's name, or what the scenes in no group are called.
    pub name: String,
    /// `/stats` narrowed to the group; empty for the scenes in no group.
    pub href: String,
    pub scans: i64,
    pub new_followers: i64,
    pub unique_users: i64,
    pub lost: i64,
    pub retention: String,
    pub last_scan: String,
    /// How many scenes it has.
    pub scene_count: usize,
    /// The first of them, in the table's order, with their pages.
    pub scenes: Vec<(String, String)>,
    /// How many more it has than are listed.
    pub more: usize,
}

/// Where the table is: its page, the rows it shows, and links to the pages beside it.
pub struct Pager {
    pub number: u32,
    pub count: u32,
    /// 1-based, both included; 0 and 0 for an empty table.
    pub first_row: usize,
    pub last_row: usize,
    pub total_rows: usize,
    /// Empty on the first (last) page.
    pub previous: String,
    pub next: String,
}

#[derive(Template)]
#[template(path = "scene_stats.html")]
pub struct SceneStatsPage {
    pub layout: Layout,
    pub scene: String,
    pub label: String,
    /// The scene's group, editable beside the label; empty when it has none.
    pub group: String,
    /// `/stats` narrowed to the scene's group, over the same range.
    pub group_href: String,
    /// This page's own path, where the label form comes back to.
    pub back: String,
    pub from: String,
    pub to: String,
    pub offset: String,
    pub totals: Totals,
    /// As on [`StatsPage`].
    pub retention: String,
    /// D1, D7 and D30 retention of the range's new followers, as shown.
    pub cohorts: [(&'static str, String); 3],
    pub chart: String,
    pub chart_title: String,
    pub codes: Vec<CodeLine>,
}

/// A code in a scene's inventory.
pub struct CodeLine {
    pub kind: &'static str,
    pub action_name: String,
    pub lifetime: String,
    pub created_at: String,
    pub expires_at: String,
    pub href: String,
}

#[derive(Template)]
#[template(path = "status.html")]
pub struct StatusPage {
    pub layout: Layout,
    pub permanent_used: u64,
    pub permanent_limit: u64,
    pub permanent_left: u64,
    pub quota: Option<Quota>,
    pub quota_error: Option<String>,
    pub expiring_soon: u64,
    /// When the latest event arrived, in the pages' time zone; empty before the first.
    pub last_event: String,
    /// Access tokens WeChat rejected in the last 24 h, on this replica.
    pub token_errors: usize,
    pub forced_refreshes: u32,
    pub forced_refreshes_limit: u32,
    /// "UTC+08:00".
    pub offset: String,
}

/// The New batch form's fields, as typed: shown again with what was wrong, and carried
/// from the preview to the button that creates the batch.
#[derive(Debug, Clone, Default)]
pub struct BatchForm {
    pub csv: String,
    pub pattern: String,
    /// `permanent` or `temporary`.
    pub kind: String,
    pub expire_days: String,
}

#[derive(Template)]
#[template(path = "batch_new.html")]
pub struct BatchNewPage {
    pub layout: Layout,
    pub form: BatchForm,
    /// What is wrong with the form as a whole, or the headline of the invalid rows.
    pub problem: Option<String>,
    pub errors: Vec<RowError>,
    pub preview: Option<BatchPreview>,
    pub permanent_used: u64,
    pub permanent_limit: u64,
    pub permanent_allowed: bool,
    pub default_days: u32,
}

#[derive(Template)]
#[template(path = "batch.html")]
pub struct BatchPage {
    pub layout: Layout,
    pub summary: BatchSummary,
    /// "queued", "running", "done" or "stopped".
    pub state: &'static str,
    /// Whether the browser reloads the page (rows are still being made).
    pub refresh: bool,
    pub created_at: String,
    /// "UTC+08:00".
    pub offset: String,
    pub rows: Vec<BatchItemRow>,
    pub failed: usize,
}

/// One row of a batch's page.
pub struct BatchItemRow {
    pub scene: String,
    pub label: String,
    pub group: String,
    pub kind: &'static str,
    /// Whether its code exists (the link to its page works without a new code).
    pub made: bool,
    pub href: String,
    pub outcome: String,
    /// In the pages' time zone; empty for permanent codes and rows not made.
    pub expires: String,
}

#[derive(Template)]
#[template(path = "batch_print.html")]
pub struct BatchPrintPage {
    pub layout: Layout,
    pub id: String,
    /// Rows not made (yet), left off the sheet.
    pub waiting: u64,
    pub offset: String,
    pub cells: Vec<PrintCell>,
}

/// One code on a print sheet.
pub struct PrintCell {
    pub label: String,
    pub scene: String,
    /// Temporary codes only, in the pages' time zone.
    pub expires: Option<String>,
    /// The code as an SVG `data:` address.
    pub image: String,
}

/// A code alone, for a frame in another tool (`/embed/qrcode`): no navigation, no forms.
#[derive(Template)]
#[template(path = "embed.html")]
pub struct EmbedPage {
    pub scene: String,
    pub label: String,
    pub image_url: String,
    /// Temporary codes only, in the pages' time zone.
    pub expires_at: Option<String>,
}

/// The statistics page's range form again, as typed, with what was wrong with it.
#[derive(Template)]
#[template(path = "stats_refused.html")]
pub struct StatsRefusedPage {
    pub layout: Layout,
    pub problem: String,
    pub allowed: &'static str,
    pub from: String,
    pub to: String,
}

/// A scene with no code, name or scan: nothing to show but how to start.
#[derive(Template)]
#[template(path = "scene_unknown.html")]
pub struct UnknownScenePage {
    pub layout: Layout,
    pub scene: String,
    pub temporary_href: String,
    pub permanent_href: String,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub layout: Layout,
    pub status: u16,
    pub title: &'static str,
    pub message: String,
    pub hint: Option<&'static str>,
    pub errcode: Option<i64>,
    pub errmsg: String,
}

/// Renders `page` with `status`. A template that fails to render is a bug: logged, and
/// answered with a plain 500 rather than a half page.
pub fn render(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => html(status, Bytes::from(body)),
        Err(e) => {
            log::error!("template failed to render: {e}");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("scene-qr could not render this page; the error has been logged.")
        }
    }
}

/// An HTML answer from a body rendered earlier.
pub fn html(status: StatusCode, body: Bytes) -> HttpResponse {
    // Built directly rather than through `HttpResponse::build`, whose checked header
    // conversions showed in a cached page's profile (bench/README.md); the values are
    // static.
    let mut response = HttpResponse::with_body(status, BoxBody::new(body));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Characters a path segment may carry as they are (RFC 3986 "unreserved").
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The statistics page of `scene`; a `/` in a scene_str stays inside the one segment.
pub fn scene_stats_path(scene: &str) -> String {
    format!("/stats/{}", utf8_percent_encode(scene, PATH_SEGMENT))
}

/// A share as a percentage with one decimal ("87.5 %"); "–" when there is none.
pub fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "–".to_string(), |s| format!("{:.1} %", s * 100.0))
}

/// "7 days", "2 hours", "90 seconds": lifetimes as people say them.
pub fn human_duration(seconds: u32) -> String {
    let plural = |n: u32, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match seconds {
        s if s % 86_400 == 0 => plural(s / 86_400, "day"),
        s if s % 3_600 == 0 => plural(s / 3_600, "hour"),
        s if s % 60 == 0 => plural(s / 60, "minute"),
        s => plural(s, "second"),
    }
}

/// A UTC offset as pages name it: "UTC+08:00".
pub fn offset_label(offset: time::UtcOffset) -> String {
    let (h, m, _) = offset.as_hms();
    format!(
        "UTC{}{:02}:{:02}",
        if offset.is_negative() { '-' } else { '+' },
        h.abs(),
        m.abs()
    )
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn lifetimes_read_in_the_largest_whole_unit() {
        assert_eq!(human_duration(604_800), "7 days");
        assert_eq!(human_duration(86_400), "1 day");
        assert_eq!(human_duration(7_200), "2 hours");
        assert_eq!(human_duration(120), "2 minutes");
        assert_eq!(human_duration(61), "61 seconds");
    }
}
