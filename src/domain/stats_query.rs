//! What a statistics request asks for: a range of days, an order, and optionally a scene.

use time::{Date, Duration, UtcOffset};

use super::scene_key::{InvalidScene, SceneKey};

/// Longest range, in days: a year and a day, so any calendar year fits.
pub const MAX_DAYS: i64 = 366;
/// Days shown when no range is given.
pub const DEFAULT_DAYS: i64 = 30;

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
    Kind,
    Scans,
    Followers,
    Users,
    Last,
}

impl SortKey {
    pub const ALL: [SortKey; 7] = [
        SortKey::Scene,
        SortKey::Label,
        SortKey::Kind,
        SortKey::Scans,
        SortKey::Followers,
        SortKey::Users,
        SortKey::Last,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Scene => "scene",
            SortKey::Label => "label",
            SortKey::Kind => "kind",
            SortKey::Scans => "scans",
            SortKey::Followers => "followers",
            SortKey::Users => "users",
            SortKey::Last => "last",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
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
    /// The scene whose daily chart `/stats` shows (all scenes when `None`).
    pub scene: Option<SceneKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidStatsQuery {
    #[error("{name} {value:?} is not a date: use YYYY-MM-DD")]
    BadDate { name: &'static str, value: String },
    #[error("from ({from}) is after to ({to})")]
    Reversed { from: Date, to: Date },
    #[error("the range has {days} days: at most 366")]
    TooLong { days: i64 },
    #[error("sort {0:?} is not one of scene, label, kind, scans, followers, users, last")]
    BadSort(String),
    #[error("order {0:?} is not asc or desc")]
    BadOrder(String),
    #[error("{0}")]
    BadScene(InvalidScene),
    #[error("unknown parameter {0:?}")]
    Unknown(String),
}

impl InvalidStatsQuery {
    pub const ALLOWED: &'static str = "Optional from and to (YYYY-MM-DD, at most 366 days apart; \
        default: the last 30 days), sort (scene, label, kind, scans, followers, users, last), \
        order (asc or desc) and scene (the scene whose daily chart to show).";
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

    /// The query string of this request with another order, for sortable column headers.
    pub fn with_sort(&self, sort: SortKey, descending: bool) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("from", &self.from.to_string());
        query.append_pair("to", &self.to.to_string());
        query.append_pair("sort", sort.as_str());
        query.append_pair("order", if descending { "desc" } else { "asc" });
        if let Some(scene) = &self.scene {
            query.append_pair("scene", scene);
        }
        query.finish()
    }

    /// The range alone, for links to CSV, JSON and scene pages.
    pub fn range_query(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("from", &self.from.to_string())
            .append_pair("to", &self.to.to_string())
            .finish()
    }
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
}
