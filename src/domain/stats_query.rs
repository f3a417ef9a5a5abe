//! What a statistics request asks for: a range of days, an order, optionally a scene or a
//! group, a search, which table (scenes or groups) and which page of it.

use time::{Date, Duration, UtcOffset};

use super::scene_key::{InvalidScene, SceneKey};
use super::scene_settings::{GroupName, InvalidSetting};

/// Longest range, in days: a year and a day, so any calendar year fits.
pub const MAX_DAYS: i64 = 366;
/// Days shown when no range is given.
pub const DEFAULT_DAYS: i64 = 30;
/// Rows of a page of the statistics table: a page stays small whatever the number of scenes.
pub const PAGE_ROWS: usize = 50;
/// Longest search, in characters: as long as the longest scene key.
pub const MAX_SEARCH_CHARS: usize = SceneKey::MAX_CHARS;

/// A half-open time range `[from, to)` in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub from: i64,
    pub to: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Scene,
    Label,
    Group,
    Kind,
    Scans,
    Followers,
    Users,
    Lost,
    Retention,
    Last,
}

impl SortKey {
    pub const ALL: [SortKey; 10] = [
        SortKey::Scene,
        SortKey::Label,
        SortKey::Group,
        SortKey::Kind,
        SortKey::Scans,
        SortKey::Followers,
        SortKey::Users,
        SortKey::Lost,
        SortKey::Retention,
        SortKey::Last,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Scene => "scene",
            SortKey::Label => "label",
            SortKey::Group => "group",
            SortKey::Kind => "kind",
            SortKey::Scans => "scans",
            SortKey::Followers => "followers",
            SortKey::Users => "users",
            SortKey::Lost => "lost",
            SortKey::Retention => "retention",
            SortKey::Last => "last",
        }
    }

    /// Whether the column holds text (which reads best ascending first) rather than numbers.
    pub fn is_text(self) -> bool {
        matches!(
            self,
            SortKey::Scene | SortKey::Label | SortKey::Group | SortKey::Kind
        )
    }

    fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

/// Which table `/stats` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// A row per scene.
    Scenes,
    /// A row per group, with the scenes of each.
    Groups,
}

impl View {
    pub fn as_str(self) -> &'static str {
        match self {
            View::Scenes => "scenes",
            View::Groups => "groups",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsQuery {
    /// First day, inclusive.
    pub from: Date,
    /// Last day, inclusive.
    pub to: Date,
    pub sort: SortKey,
    pub descending: bool,
    /// The scene whose totals and daily chart `/stats` shows (all scenes when `None`).
    pub scene: Option<SceneKey>,
    /// Only this group's rows in the table, and (unless a scene is named) its totals and
    /// chart.
    pub group: Option<GroupName>,
    /// Only rows whose names contain this, ignoring case: a scene's key or label, a group's
    /// name. Trimmed, never empty.
    pub search: Option<String>,
    pub view: View,
    /// The page of the table, from 1; the JSON and the CSV have every row.
    pub page: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidStatsQuery {
    #[error("{name} {value:?} is not a date: use YYYY-MM-DD")]
    BadDate { name: &'static str, value: String },
    #[error("from ({from}) is after to ({to})")]
    Reversed { from: Date, to: Date },
    #[error("the range has {days} days: at most 366")]
    TooLong { days: i64 },
    #[error(
        "sort {0:?} is not one of scene, label, group, kind, scans, followers, users, lost, \
         retention, last"
    )]
    BadSort(String),
    #[error("order {0:?} is not asc or desc")]
    BadOrder(String),
    #[error("{0}")]
    BadScene(InvalidScene),
    #[error("{0}")]
    BadGroup(InvalidSetting),
    #[error("the search q has {0} characters: at most 64")]
    LongSearch(usize),
    #[error("view {0:?} is not scenes or groups")]
    BadView(String),
    #[error("page {0:?} is not a page number: pages count from 1")]
    BadPage(String),
    #[error("unknown parameter {0:?}")]
    Unknown(String),
}

impl InvalidStatsQuery {
    pub const ALLOWED: &'static str = "Optional from and to (YYYY-MM-DD, at most 366 days apart; \
        default: the last 30 days), sort (scene, label, group, kind, scans, followers, users, \
        lost, retention, last), order (asc or desc), scene (the scene whose totals and daily \
        chart to show), group (a group name, 1 to 50 characters: only its scenes, with its \
        totals), q (up to 64 characters to find in a scene's key or label, or in a group's \
        name, ignoring case), view (scenes or groups) and page (from 1; 50 rows a page).";
}

impl StatsQuery {
    /// Parses the query of `/stats`, `/api/stats` and `/stats.csv`; `today` is in the
    /// statistics' offset.
    pub fn from_query(query: &str, today: Date) -> Result<Self, InvalidStatsQuery> {
        let mut from = None;
        let mut to = None;
        let mut sort = SortKey::Scans;
        let mut descending = true;
        let mut scene = None;
        let mut group = None;
        let mut search = None;
        let mut view = View::Scenes;
        let mut page = 1;
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                "from" if !value.is_empty() => from = Some(parse_date("from", &value)?),
                "to" if !value.is_empty() => to = Some(parse_date("to", &value)?),
                "from" | "to" => {}
                "sort" => {
                    sort = SortKey::parse(&value)
                        .ok_or_else(|| InvalidStatsQuery::BadSort(short(&value)))?
                }
                "order" => {
                    descending = match value.as_ref() {
                        "desc" => true,
                        "asc" => false,
                        other => return Err(InvalidStatsQuery::BadOrder(short(other))),
                    }
                }
                "scene" if value.is_empty() => scene = None,
                "scene" => {
                    scene = Some(SceneKey::parse(&value).map_err(InvalidStatsQuery::BadScene)?)
                }
                "group" => group = GroupName::parse(&value).map_err(InvalidStatsQuery::BadGroup)?,
                "q" => search = parse_search(&value)?,
                "view" => {
                    view = match value.as_ref() {
                        "scenes" | "" => View::Scenes,
                        "groups" => View::Groups,
                        other => return Err(InvalidStatsQuery::BadView(short(other))),
                    }
                }
                "page" => {
                    page = value
                        .parse::<u32>()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| InvalidStatsQuery::BadPage(short(&value)))?
                }
                other => return Err(InvalidStatsQuery::Unknown(short(other))),
            }
        }
        let to = to.unwrap_or(today);
        let from = from.unwrap_or(to - Duration::days(DEFAULT_DAYS - 1));
        if from > to {
            return Err(InvalidStatsQuery::Reversed { from, to });
        }
        let days = (to - from).whole_days() + 1;
        if days > MAX_DAYS {
            return Err(InvalidStatsQuery::TooLong { days });
        }
        Ok(Self {
            from,
            to,
            sort,
            descending,
            scene,
            group,
            search,
            view,
            page,
        })
    }

    /// The range in Unix seconds, days starting at midnight in `offset`.
    pub fn time_range(&self, offset: UtcOffset) -> TimeRange {
        let midnight = |date: Date| date.midnight().assume_offset(offset).unix_timestamp();
        TimeRange {
            from: midnight(self.from),
            to: midnight(self.to + Duration::days(1)),
        }
    }

    /// Every day of the range, in order.
    pub fn days(&self) -> impl Iterator<Item = Date> + '_ {
        (0..=(self.to - self.from).whole_days()).map(|n| self.from + Duration::days(n))
    }

    /// The query string of this request, every parameter that is not its default written
    /// out (the range always, so that a link keeps its days as the days go by).
    pub fn query_string(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("from", &self.from.to_string());
        query.append_pair("to", &self.to.to_string());
        query.append_pair("sort", self.sort.as_str());
        query.append_pair("order", if self.descending { "desc" } else { "asc" });
        if let Some(scene) = &self.scene {
            query.append_pair("scene", scene);
        }
        if let Some(group) = &self.group {
            query.append_pair("group", group);
        }
        if let Some(search) = &self.search {
            query.append_pair("q", search);
        }
        if self.view != View::Scenes {
            query.append_pair("view", self.view.as_str());
        }
        if self.page != 1 {
            query.append_pair("page", &self.page.to_string());
        }
        query.finish()
    }

    /// The query string of this request with another order, from the first page, for
    /// sortable column headers.
    pub fn with_sort(&self, sort: SortKey, descending: bool) -> String {
        Self {
            sort,
            descending,
            page: 1,
            ..self.clone()
        }
        .query_string()
    }

    /// The query string of another page of this request's table.
    pub fn with_page(&self, page: u32) -> String {
        Self {
            page,
            ..self.clone()
        }
        .query_string()
    }

    /// The query string of this request showing another table, from its first page.
    pub fn with_view(&self, view: View) -> String {
        Self {
            view,
            page: 1,
            ..self.clone()
        }
        .query_string()
    }

    /// The query string of this request narrowed to `group`'s scenes, from the first page.
    pub fn with_group(&self, group: &GroupName) -> String {
        Self {
            group: Some(group.clone()),
            view: View::Scenes,
            search: None,
            page: 1,
            ..self.clone()
        }
        .query_string()
    }

    /// The rows the JSON and the CSV give for this request: every page.
    pub fn export_query(&self) -> String {
        Self {
            page: 1,
            ..self.clone()
        }
        .query_string()
    }

    /// The range alone, for links to CSV, JSON and scene pages.
    pub fn range_query(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("from", &self.from.to_string())
            .append_pair("to", &self.to.to_string())
            .finish()
    }
}

/// The search text, trimmed; `None` when empty.
fn parse_search(value: &str) -> Result<Option<String>, InvalidStatsQuery> {
    let text = value.trim();
    let chars = text.chars().count();
    if chars > MAX_SEARCH_CHARS {
        return Err(InvalidStatsQuery::LongSearch(chars));
    }
    Ok((chars > 0).then(|| text.to_string()))
}

fn parse_date(name: &'static str, value: &str) -> Result<Date, InvalidStatsQuery> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(value, &format).map_err(|_| InvalidStatsQuery::BadDate {
        name,
        value: short(value),
    })
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, offset};

    const TODAY: Date = date!(2026 - 11 - 21);

    #[test]
    fn the_default_is_the_last_thirty_days_by_scans_descending() {
        let q = StatsQuery::from_query("", TODAY).unwrap();
        assert_eq!((q.from, q.to), (date!(2026 - 10 - 23), TODAY));
        assert_eq!((q.sort, q.descending), (SortKey::Scans, true));
        assert_eq!(q.days().count(), 30);
    }

    #[test]
    fn days_start_at_midnight_in_the_offset() {
        let q = StatsQuery::from_query("from=2026-11-01&to=2026-11-01", TODAY).unwrap();
        let range = q.time_range(offset!(+8));
        // 2026-11-01T00:00+08:00 is 2026-10-31T16:00Z.
        assert_eq!(range.from, 1_793_462_400);
        assert_eq!(range.to - range.from, 86_400);
    }

    #[test]
    fn bad_ranges_are_refused() {
        assert!(matches!(
            StatsQuery::from_query("from=2026-13-01", TODAY),
            Err(InvalidStatsQuery::BadDate { .. })
        ));
        assert!(matches!(
            StatsQuery::from_query("from=2026-11-02&to=2026-11-01", TODAY),
            Err(InvalidStatsQuery::Reversed { .. })
        ));
        assert!(matches!(
            StatsQuery::from_query("from=2024-01-01&to=2026-01-01", TODAY),
            Err(InvalidStatsQuery::TooLong { .. })
        ));
        assert!(matches!(
            StatsQuery::from_query("sort=openid", TODAY),
            Err(InvalidStatsQuery::BadSort(_))
        ));
        assert!(matches!(
            StatsQuery::from_query("limit=5", TODAY),
            Err(InvalidStatsQuery::Unknown(_))
        ));
    }

    #[test]
    fn the_scene_is_a_scene_key_and_an_empty_one_means_all_scenes() {
        let named = StatsQuery::from_query("scene=shop%2012", TODAY).unwrap();
        let empty = StatsQuery::from_query("scene=", TODAY).unwrap();
        let long = format!("scene={}", "a".repeat(65));

        assert_eq!(named.scene.as_deref(), Some("shop 12"));
        assert_eq!(empty.scene, None);
        assert_eq!(
            StatsQuery::from_query(&long, TODAY),
            Err(InvalidStatsQuery::BadScene(InvalidScene::TooLong {
                chars: 65
            }))
        );
        assert_eq!(
            StatsQuery::from_query("scene=a%0Ab", TODAY),
            Err(InvalidStatsQuery::BadScene(InvalidScene::Control))
        );
    }

    #[test]
    fn the_table_s_parameters_default_to_the_first_page_of_every_scene() {
        let q = StatsQuery::from_query("", TODAY).unwrap();

        assert_eq!((q.view, q.page), (View::Scenes, 1));
        assert_eq!((q.group, q.search), (None, None));
    }

    #[test]
    fn group_search_view_and_page_are_read_and_an_empty_group_or_search_is_none() {
        let q =
            StatsQuery::from_query("group=+East+&q=%20Shop%20&view=groups&page=3", TODAY).unwrap();
        let empty = StatsQuery::from_query("group=&q=+", TODAY).unwrap();

        assert_eq!(q.group.as_deref(), Some("East"));
        assert_eq!(q.search.as_deref(), Some("Shop"));
        assert_eq!((q.view, q.page), (View::Groups, 3));
        assert_eq!((empty.group, empty.search), (None, None));
    }

    #[test]
    fn bad_table_parameters_are_refused() {
        let long_search = format!("q={}", "x".repeat(65));
        for (query, refused) in [
            ("page=0", InvalidStatsQuery::BadPage("0".into())),
            ("page=-1", InvalidStatsQuery::BadPage("-1".into())),
            ("page=two", InvalidStatsQuery::BadPage("two".into())),
            ("view=tiles", InvalidStatsQuery::BadView("tiles".into())),
            (&long_search, InvalidStatsQuery::LongSearch(65)),
        ] {
            assert_eq!(
                StatsQuery::from_query(query, TODAY),
                Err(refused),
                "{query}"
            );
        }
        assert!(matches!(
            StatsQuery::from_query(&format!("group={}", "g".repeat(51)), TODAY),
            Err(InvalidStatsQuery::BadGroup(_))
        ));
    }

    #[test]
    fn a_new_order_or_view_starts_from_the_first_page_and_keeps_the_rest() {
        let q = StatsQuery::from_query(
            "from=2026-11-01&to=2026-11-02&group=East&q=shop&page=2",
            TODAY,
        )
        .unwrap();

        assert_eq!(
            q.with_sort(SortKey::Lost, false),
            "from=2026-11-01&to=2026-11-02&sort=lost&order=asc&group=East&q=shop"
        );
        assert_eq!(
            q.with_page(3),
            "from=2026-11-01&to=2026-11-02&sort=scans&order=desc&group=East&q=shop&page=3"
        );
        assert_eq!(
            q.with_view(View::Groups),
            "from=2026-11-01&to=2026-11-02&sort=scans&order=desc&group=East&q=shop&view=groups"
        );
        assert_eq!(
            StatsQuery::from_query(&q.query_string(), TODAY).unwrap(),
            q,
            "a query reads back as itself"
        );
    }
}
