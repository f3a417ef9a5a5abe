//! Channel statistics for staff: which scenes brought scans and followers, as a page, a
//! scene's page, JSON and CSV. [`crate::stats`] gathers the numbers; each handler here
//! reads the request, asks for them and lays them out. Pages show counts only; openids
//! never leave the database.

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};
use serde::Serialize;

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use super::AppState;
use super::download::content_disposition;
use crate::chart;
use crate::domain::{GroupName, SceneKey, SceneType, SortKey, StatsQuery, View};
use crate::error::AppError;
use crate::pages::{
    CodeLine, GroupRow, Layout, Pager, SceneStatsPage, SortHeader, StatsPage, StatsRefusedPage,
    StatsRow, UnknownScenePage, human_duration, offset_label, percent, render, scene_stats_path,
};
use crate::stats::report::Counted;
use crate::stats::report::GroupStats;
use crate::stats::{Page, Report, SceneReport};
use crate::store::StoreError;
use crate::store::stats::{CohortRetention, SceneStats, Totals, retention};

pub async fn page(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let query = match stats_query(&req, state.utc_offset) {
        Ok(query) => query,
        Err(AppError::BadRequest { message, allowed }) => {
            return Ok(refused_range(&req, &state, message, allowed));
        }
        Err(other) => return Err(other),
    };
    let report = Report::gather(&state.store, query, Counted::Page).await?;
    let page = stats_page(state.layout, &report, state.utc_offset)?;
    Ok(render(StatusCode::OK, &page))
}

pub async fn scene_page(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let scene = SceneKey::parse(&path.into_inner()).map_err(|invalid| AppError::BadRequest {
        message: invalid.to_string(),
        allowed: "/stats/SCENE, where SCENE is a scene_id or a scene_str.",
    })?;
    let query = stats_query(&req, state.utc_offset)?;
    let report = SceneReport::gather(&state.store, scene, query).await?;
    let unknown = report.label.is_none()
        && report.group.is_none()
        && report.codes.is_empty()
        && !state.store.scene_is_counted(&report.scene).await?;
    if unknown {
        let page = UnknownScenePage {
            layout: state.layout,
            temporary_href: format!("/open?{}", open_query(&report.scene, "temporary")),
            permanent_href: format!("/open?{}", open_query(&report.scene, "permanent")),
            scene: report.scene.to_string(),
        };
        return Ok(render(StatusCode::NOT_FOUND, &page));
    }
    let page = scene_stats_page(state.layout, report, state.utc_offset);
    Ok(render(StatusCode::OK, &page))
}

/// The range form again with the dates as typed (cut short), and what was wrong: a bad
/// date is mended where it was typed, not by starting over.
fn refused_range(
    req: &HttpRequest,
    state: &AppState,
    problem: String,
    allowed: &'static str,
) -> HttpResponse {
    let mut page = StatsRefusedPage {
        layout: state.layout,
        problem,
        allowed,
        from: String::new(),
        to: String::new(),
    };
    for (name, value) in form_urlencoded::parse(req.query_string().as_bytes()) {
        let typed: String = value.chars().take(20).collect();
        match name.as_ref() {
            "from" => page.from = typed,
            "to" => page.to = typed,
            _ => {}
        }
    }
    render(StatusCode::BAD_REQUEST, &page)
}

/// The home form's query that opens `scene`'s code of `kind`: a scene of digits as a
/// number, any other as text.
fn open_query(scene: &str, kind: &str) -> String {
    let number = !scene.starts_with('0') && scene.parse::<u32>().is_ok_and(|n| n > 0);
    form_urlencoded::Serializer::new(String::new())
        .append_pair("scene", scene)
        .append_pair("scene_type", if number { "id" } else { "str" })
        .append_pair("kind", kind)
        .finish()
}

pub async fn json(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let query = stats_query(&req, state.utc_offset)?;
    let report = Report::gather(&state.store, query, Counted::Every).await?;
    Ok(HttpResponse::Ok().json(report_json(&report, state.utc_offset)))
}

/// Every line of the table, streamed: the lines' unique users are counted a chunk at a time
/// as the body is sent, so the answer starts at once and never sits in memory whole.
pub async fn csv(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let query = stats_query(&req, state.utc_offset)?;
    let mut report = Report::gather(&state.store, query, Counted::Later).await?;
    let name = format!(
        "scene-qr-stats-{}-to-{}.csv",
        report.query.from, report.query.to
    );
    let body = csv_body(report.counted_chunks(&state.store), state.utc_offset);
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/csv; charset=utf-8"))
        .insert_header((
            CONTENT_DISPOSITION,
            content_disposition("attachment", &name),
        ))
        .streaming(body))
}

/// The query of any statistics request. A range with no end ends today, in the
/// statistics' offset.
fn stats_query(req: &HttpRequest, offset: UtcOffset) -> Result<StatsQuery, AppError> {
    let today = OffsetDateTime::now_utc().to_offset(offset).date();
    Ok(StatsQuery::from_query(req.query_string(), today)?)
}

/// Scenes of a group the groups view lists under it; the rest are a link away.
const GROUP_SCENES_LISTED: usize = 20;

fn stats_page(layout: Layout, report: &Report, offset: UtcOffset) -> Result<StatsPage, AppError> {
    let query = &report.query;
    let groups_view = query.view == View::Groups;
    let columns: &[(SortKey, &'static str)] = if groups_view {
        &SortHeader::GROUP_COLUMNS
    } else {
        &SortHeader::ALL_COLUMNS
    };
    let headers = columns
        .iter()
        .map(|(key, title)| {
            let active = query.sort == *key;
            // Clicking the active column flips its order; a new column starts descending
            // for numbers and ascending for text.
            let descending = if active {
                !query.descending
            } else {
                !key.is_text()
            };
            SortHeader {
                title,
                href: format!("/stats?{}", query.with_sort(*key, descending)),
                marker: match (active, query.descending) {
                    (false, _) => "",
                    (true, true) => " ▼",
                    (true, false) => " ▲",
                },
                numeric: !key.is_text(),
            }
        })
        .collect();
    let links = Links(query);
    let (rows, group_rows, pager) = match &report.groups {
        None => {
            let page = Page::of(report.scenes.len(), query.page)?;
            let rows = report.scenes[page.rows.clone()]
                .iter()
                .map(|s| scene_row(s, &links, offset))
                .collect();
            (rows, Vec::new(), pager(&page, report.scenes.len(), query))
        }
        Some(groups) => {
            let page = Page::of(groups.len(), query.page)?;
            let rows = groups[page.rows.clone()]
                .iter()
                .map(|g| group_row(g, &links, offset))
                .collect();
            (Vec::new(), rows, pager(&page, groups.len(), query))
        }
    };
    let chart_title = chart_title(query);
    let chart_scene = query.scene.as_deref().unwrap_or_default().to_string();
    let mut scenes: Vec<String> = report.scenes.iter().map(|s| s.scene.clone()).collect();
    // The chart's scene stays selectable when the table's filter leaves it out.
    if !chart_scene.is_empty() && !scenes.contains(&chart_scene) {
        scenes.insert(0, chart_scene.clone());
    }
    Ok(StatsPage {
        layout,
        from: query.from.to_string(),
        to: query.to.to_string(),
        offset: offset_label(offset),
        totals: report.totals,
        retention: percent(retention(report.totals.new_followers, report.totals.lost).1),
        cohorts: report.cohorts.map_or_else(Vec::new, |c| {
            vec![
                ("D1", percent(c.d1)),
                ("D7", percent(c.d7)),
                ("D30", percent(c.d30)),
            ]
        }),
        groups_view,
        headers,
        rows,
        group_rows,
        pager,
        chart: chart::daily(&chart_title, &report.daily),
        chart_title,
        chart_scene,
        scenes,
        group_names: report.group_names.clone(),
        group: query.group.as_deref().unwrap_or_default().to_string(),
        search: query.search.clone().unwrap_or_default(),
        view: query.view.as_str(),
        scenes_href: format!("/stats?{}", query.with_view(View::Scenes)),
        groups_href: format!("/stats?{}", query.with_view(View::Groups)),
        export_query: query.export_query(),
        sort: query.sort.as_str(),
        order: if query.descending { "desc" } else { "asc" },
    })
}

/// Links from a row of the statistics table, keeping the request's range.
struct Links<'a>(&'a StatsQuery);

impl Links<'_> {
    fn scene(&self, scene: &str) -> String {
        format!("{}?{}", scene_stats_path(scene), self.0.range_query())
    }

    /// `/stats` narrowed to `group`; empty for no group. Names come from the store, checked
    /// when saved; one that would not pass today's rule gets no link rather than a 400.
    fn group(&self, group: Option<&str>) -> String {
        group
            .and_then(|name| GroupName::parse(name).ok().flatten())
            .map(|name| format!("/stats?{}", self.0.with_group(&name)))
            .unwrap_or_default()
    }
}

fn scene_row(s: &SceneStats, links: &Links, offset: UtcOffset) -> StatsRow {
    StatsRow {
        scene: s.scene.clone(),
        href: links.scene(&s.scene),
        label: s.label.clone().unwrap_or_default(),
        group: s.group.clone().unwrap_or_default(),
        group_href: links.group(s.group.as_deref()),
        kinds: s.kinds.join(", "),
        scans: s.scans,
        new_followers: s.new_followers,
        unique_users: s.unique_users,
        lost: s.lost,
        retention: percent(retention(s.new_followers, s.lost).1),
        last_scan: local_time(s.last_scan, offset),
    }
}

fn group_row(g: &GroupStats, links: &Links, offset: UtcOffset) -> GroupRow {
    GroupRow {
        name: g
            .group
            .clone()
            .unwrap_or_else(|| "Scenes in no group".to_string()),
        href: links.group(g.group.as_deref()),
        scans: g.scans,
        new_followers: g.new_followers,
        unique_users: g.unique_users,
        lost: g.lost,
        retention: percent(retention(g.new_followers, g.lost).1),
        last_scan: local_time(g.last_scan, offset),
        scene_count: g.scenes.len(),
        scenes: g
            .scenes
            .iter()
            .take(GROUP_SCENES_LISTED)
            .map(|scene| (scene.clone(), links.scene(scene)))
            .collect(),
        more: g.scenes.len().saturating_sub(GROUP_SCENES_LISTED),
    }
}

fn pager(page: &Page, total_rows: usize, query: &StatsQuery) -> Pager {
    let link = |number: u32| format!("/stats?{}", query.with_page(number));
    Pager {
        number: page.number,
        count: page.count,
        first_row: if total_rows == 0 {
            0
        } else {
            page.rows.start + 1
        },
        last_row: page.rows.end,
        total_rows,
        previous: if page.number > 1 {
            link(page.number - 1)
        } else {
            String::new()
        },
        next: if page.number < page.count {
            link(page.number + 1)
        } else {
            String::new()
        },
    }
}

/// What the chart counts: the query's scene, else its group, else every scene.
fn chart_title(query: &StatsQuery) -> String {
    match (&query.scene, &query.group) {
        (Some(scene), _) => format!("Per day, scene {scene}"),
        (None, Some(group)) => format!("Per day, group {}", group.as_str()),
        (None, None) => "Per day, all scenes".to_string(),
    }
}

fn scene_stats_page(layout: Layout, report: SceneReport, offset: UtcOffset) -> SceneStatsPage {
    let scene = report.scene;
    let codes = report
        .codes
        .into_iter()
        .map(|c| {
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.append_pair(
                match c.scene_type {
                    SceneType::Id => "scene_id",
                    SceneType::Str => "scene_str",
                },
                &scene,
            );
            match c.expire_seconds {
                Some(lifetime) => query.append_pair("expire_seconds", &lifetime.to_string()),
                None => query.append_pair("permanent", "true"),
            };
            CodeLine {
                kind: c.kind.as_str(),
                action_name: c.action_name,
                lifetime: c
                    .expire_seconds
                    .and_then(|s| u32::try_from(s).ok())
                    .map(human_duration)
                    .unwrap_or_else(|| "never expires".into()),
                created_at: local_time(Some(c.created_at), offset),
                expires_at: local_time(c.expires_at, offset),
                href: format!("/qrcode?{}", query.finish()),
            }
        })
        .collect();
    let chart_title = format!("Per day, scene {scene}");
    SceneStatsPage {
        layout,
        back: scene_stats_path(&scene),
        scene: scene.to_string(),
        label: report.label.unwrap_or_default(),
        group_href: group_href(report.group.as_deref(), &report.query),
        group: report.group.unwrap_or_default(),
        from: report.query.from.to_string(),
        to: report.query.to.to_string(),
        offset: offset_label(offset),
        totals: report.totals,
        retention: percent(retention(report.totals.new_followers, report.totals.lost).1),
        cohorts: [
            ("D1", percent(report.cohorts.d1)),
            ("D7", percent(report.cohorts.d7)),
            ("D30", percent(report.cohorts.d30)),
        ],
        chart: chart::daily(&chart_title, &report.daily),
        chart_title,
        codes,
    }
}

/// `/stats` narrowed to `group` over the range of `query`; empty without a group.
fn group_href(group: Option<&str>, query: &StatsQuery) -> String {
    group.map_or_else(String::new, |group| {
        let mut link = form_urlencoded::Serializer::new(String::new());
        link.append_pair("from", &query.from.to_string());
        link.append_pair("to", &query.to.to_string());
        link.append_pair("group", group);
        format!("/stats?{}", link.finish())
    })
}

/// `/api/stats`: the shape tools rely on; new fields are only ever added.
#[derive(Serialize)]
struct ReportJson<'a> {
    from: String,
    to: String,
    utc_offset: String,
    scene: Option<&'a SceneKey>,
    group: Option<&'a str>,
    /// Whether `unique_users` of the totals is an estimate (over all scenes it may be; a
    /// scene's and a group's are exact).
    unique_users_estimated: bool,
    totals: TotalsJson,
    scenes: Vec<SceneJson<'a>>,
    /// Only with `view=groups`: a line per group, the scenes in no group last (`group`
    /// null).
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<Vec<GroupJson<'a>>>,
    daily: Vec<DayJson>,
}

#[derive(Serialize)]
struct TotalsJson {
    #[serde(flatten)]
    counts: Totals,
    retained: i64,
    /// retained / new followers; `null` when there are none.
    retention: Option<f64>,
    /// Only for one scene or group: `retention_d1`, `retention_d7`, `retention_d30`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    cohorts: Option<CohortsJson>,
}

#[derive(Serialize)]
struct CohortsJson {
    retention_d1: Option<f64>,
    retention_d7: Option<f64>,
    retention_d30: Option<f64>,
}

impl From<CohortRetention> for CohortsJson {
    fn from(c: CohortRetention) -> Self {
        Self {
            retention_d1: c.d1,
            retention_d7: c.d7,
            retention_d30: c.d30,
        }
    }
}

#[derive(Serialize)]
struct SceneJson<'a> {
    scene: &'a str,
    label: Option<&'a str>,
    group: Option<&'a str>,
    kinds: &'a [String],
    scans: i64,
    new_followers: i64,
    /// Always counted in the JSON.
    unique_users: Option<i64>,
    lost: i64,
    retained: i64,
    retention: Option<f64>,
    last_scan: Option<String>,
}

#[derive(Serialize)]
struct GroupJson<'a> {
    group: Option<&'a str>,
    scenes: &'a [String],
    scans: i64,
    new_followers: i64,
    /// Distinct users over the group's scenes.
    unique_users: i64,
    lost: i64,
    retained: i64,
    retention: Option<f64>,
    last_scan: Option<String>,
}

#[derive(Serialize)]
struct DayJson {
    date: String,
    scans: i64,
    new_followers: i64,
    /// Of the day's new followers, those lost since.
    lost: i64,
}

fn report_json(report: &Report, offset: UtcOffset) -> ReportJson<'_> {
    let totals = &report.totals;
    let (retained, share) = retention(totals.new_followers, totals.lost);
    ReportJson {
        from: report.query.from.to_string(),
        to: report.query.to.to_string(),
        utc_offset: offset_label(offset),
        scene: report.query.scene.as_ref(),
        group: report.query.group.as_deref(),
        unique_users_estimated: totals.unique_users_estimated,
        totals: TotalsJson {
            counts: *totals,
            retained,
            retention: share,
            cohorts: report.cohorts.map(CohortsJson::from),
        },
        scenes: report
            .scenes
            .iter()
            .map(|s| {
                let (retained, share) = retention(s.new_followers, s.lost);
                SceneJson {
                    scene: &s.scene,
                    label: s.label.as_deref(),
                    group: s.group.as_deref(),
                    kinds: &s.kinds,
                    scans: s.scans,
                    new_followers: s.new_followers,
                    unique_users: s.unique_users,
                    lost: s.lost,
                    retained,
                    retention: share,
                    last_scan: rfc3339(s.last_scan, offset),
                }
            })
            .collect(),
        groups: report.groups.as_ref().map(|groups| {
            groups
                .iter()
                .map(|g| {
                    let (retained, share) = retention(g.new_followers, g.lost);
                    GroupJson {
                        group: g.group.as_deref(),
                        scenes: &g.scenes,
                        scans: g.scans,
                        new_followers: g.new_followers,
                        unique_users: g.unique_users,
                        lost: g.lost,
                        retained,
                        retention: share,
                        last_scan: rfc3339(g.last_scan, offset),
                    }
                })
                .collect()
        }),
        daily: report
            .daily
            .iter()
            .map(|(date, day)| DayJson {
                date: date.to_string(),
                scans: day.scans,
                new_followers: day.new_followers,
                lost: day.lost,
            })
            .collect(),
    }
}

/// UTF-8's byte order mark.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

const CSV_HEADER: [&str; 11] = [
    "scene",
    "label",
    "group",
    "kinds",
    "scans",
    "new_followers",
    "unique_users",
    "lost",
    "retained",
    "retention",
    "last_scan",
];

/// The CSV's bytes: the header, then each chunk of lines as it comes. A chunk that cannot be
/// read ends the body with an error, after the status went out: actix then closes the
/// connection without the body's last chunk, so the client sees a cut download rather than a
/// short file that looks whole.
fn csv_body(
    chunks: impl Stream<Item = Result<Vec<SceneStats>, StoreError>> + 'static,
    offset: UtcOffset,
) -> impl Stream<Item = Result<Bytes, AppError>> + 'static {
    let header = csv_chunk(&[], true, offset);
    stream::once(async move { header }).chain(chunks.map(move |chunk| {
        let chunk = chunk.map_err(|e| {
            log::error!("the statistics CSV stopped: {e}");
            AppError::from(e)
        })?;
        csv_chunk(&chunk, false, offset)
    }))
}

/// Lines of the CSV, with its header first when `header`.
fn csv_chunk(lines: &[SceneStats], header: bool, offset: UtcOffset) -> Result<Bytes, AppError> {
    let mut buffer = Vec::with_capacity(100 * lines.len() + UTF8_BOM.len());
    if header {
        // A byte order mark first: Excel on Chinese Windows reads a CSV without one in the
        // local code page, and garbles every label.
        buffer.extend_from_slice(UTF8_BOM);
    }
    let mut writer = csv::Writer::from_writer(buffer);
    let internal = |e: csv::Error| AppError::Internal(Box::new(e));
    if header {
        writer.write_record(CSV_HEADER).map_err(internal)?;
    }
    for s in lines {
        let (retained, share) = retention(s.new_followers, s.lost);
        writer
            .write_record([
                spreadsheet_safe(&s.scene),
                spreadsheet_safe(s.label.as_deref().unwrap_or_default()),
                spreadsheet_safe(s.group.as_deref().unwrap_or_default()),
                s.kinds.join(" "),
                s.scans.to_string(),
                s.new_followers.to_string(),
                s.unique_users.map(|n| n.to_string()).unwrap_or_default(),
                s.lost.to_string(),
                retained.to_string(),
                share.map(|r| format!("{r:.4}")).unwrap_or_default(),
                rfc3339(s.last_scan, offset).unwrap_or_default(),
            ])
            .map_err(internal)?;
    }
    writer
        .into_inner()
        .map(Bytes::from)
        .map_err(|e| AppError::Internal(Box::new(e.into_error())))
}

/// Staff open the CSV in spreadsheets, which run a cell starting with `=`, `+`, `-` or `@`
/// as a formula; a leading apostrophe keeps a label such as `=HYPERLINK(…)` plain text.
fn spreadsheet_safe(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

fn rfc3339(unix: Option<i64>, offset: UtcOffset) -> Option<String> {
    unix.and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| t.to_offset(offset).format(&Rfc3339).ok())
}

pub(super) fn local_time(unix: Option<i64>, offset: UtcOffset) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    unix.and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| t.to_offset(offset).format(&format).ok())
        .unwrap_or_default()
}
