//! Scans, new followers and lost followers per day as one chart: SVG rendered on the server
//! from an askama template (so every label is escaped), styled by `static/style.css`, no
//! script and no CDN. Scans and new followers are bars side by side; lost followers, a
//! handful beside them, a line, so that the three read apart without colour alone.

use askama::Template;
use time::Date;

use crate::store::stats::DayCounts;

const WIDTH: u32 = 720;
const HEIGHT: u32 = 240;
const LEFT: u32 = 40;
/// Below the legend.
const TOP: u32 = 30;
const BASELINE: u32 = 210;

#[derive(Template)]
#[template(path = "chart.svg", escape = "html")]
struct ChartSvg {
    title: String,
    width: u32,
    height: u32,
    left: u32,
    top: u32,
    baseline: u32,
    max: i64,
    bars: Vec<Bar>,
    /// The lost followers' line through every day, as SVG points.
    lost_line: String,
    /// The days with lost followers, marked on the line; none leaves the line out.
    lost: Vec<LostPoint>,
    ticks: Vec<Tick>,
}

struct Bar {
    /// `scans` or `followers`, the class that colours it.
    series: &'static str,
    /// What its tooltip counts.
    what: &'static str,
    x: String,
    y: String,
    width: String,
    height: String,
    day: Date,
    count: i64,
}

struct LostPoint {
    x: String,
    y: String,
    day: Date,
    lost: i64,
}

struct Tick {
    x: String,
    text: String,
}

/// Renders `days` (every day of the range, in order, with its counts) as an SVG element.
pub fn daily(title: &str, days: &[(Date, DayCounts)]) -> String {
    let max = days
        .iter()
        .map(|(_, d)| d.scans.max(d.new_followers).max(d.lost))
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = f64::from(WIDTH - LEFT) / days.len().max(1) as f64;
    let gap = (slot * 0.15).min(4.0);
    let bar_width = ((slot - gap) / 2.0).max(0.5);
    let plot_height = f64::from(BASELINE - TOP);
    let height = |count: i64| plot_height * count as f64 / max as f64;
    let slot_start = |i: usize| f64::from(LEFT) + i as f64 * slot + gap / 2.0;
    let centre = |i: usize| f64::from(LEFT) + (i as f64 + 0.5) * slot;
    let mut bars = Vec::new();
    for (i, (day, counts)) in days.iter().enumerate() {
        let series = [
            ("scans", "scans", counts.scans),
            ("followers", "new followers", counts.new_followers),
        ];
        for (n, (series, what, count)) in series.into_iter().enumerate() {
            if count > 0 {
                bars.push(Bar {
                    series,
                    what,
                    x: format!("{:.1}", slot_start(i) + n as f64 * bar_width),
                    y: format!("{:.1}", f64::from(BASELINE) - height(count)),
                    width: format!("{bar_width:.1}"),
                    height: format!("{:.1}", height(count)),
                    day: *day,
                    count,
                });
            }
        }
    }
    let lost_y = |lost: i64| format!("{:.1}", f64::from(BASELINE) - height(lost));
    let lost = days
        .iter()
        .enumerate()
        .filter(|(_, (_, counts))| counts.lost > 0)
        .map(|(i, (day, counts))| LostPoint {
            x: format!("{:.1}", centre(i)),
            y: lost_y(counts.lost),
            day: *day,
            lost: counts.lost,
        })
        .collect();
    let lost_line = days
        .iter()
        .enumerate()
        .map(|(i, (_, counts))| format!("{:.1},{}", centre(i), lost_y(counts.lost)))
        .collect::<Vec<_>>()
        .join(" ");
    // About six date labels, whatever the range.
    let every = days.len().div_ceil(6).max(1);
    let ticks = days
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0)
        .map(|(i, (day, _))| Tick {
            x: format!("{:.1}", centre(i)),
            text: format!("{}-{:02}", u8::from(day.month()), day.day()),
        })
        .collect();
    let chart = ChartSvg {
        title: title.to_string(),
        width: WIDTH,
        height: HEIGHT,
        left: LEFT,
        top: TOP,
        baseline: BASELINE,
        max,
        bars,
        lost_line,
        lost,
        ticks,
    };
    chart.render().unwrap_or_else(|e| {
        log::error!("chart failed to render: {e}");
        String::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn day(scans: i64, new_followers: i64, lost: i64) -> DayCounts {
        DayCounts {
            scans,
            new_followers,
            lost,
        }
    }

    #[test]
    fn each_count_of_a_day_is_a_bar_with_its_count() {
        let svg = daily(
            "Scans <per> day",
            &[
                (date!(2026 - 11 - 01), day(3, 1, 0)),
                (date!(2026 - 11 - 02), day(0, 0, 0)),
                (date!(2026 - 11 - 03), day(6, 0, 0)),
            ],
        );

        assert_eq!(svg.matches("class=\"bar scans\"").count(), 2);
        assert_eq!(svg.matches("class=\"bar followers\"").count(), 1);
        assert!(svg.contains("2026-11-03: 6 scans"));
        assert!(svg.contains("2026-11-01: 1 new followers"));
        assert!(svg.contains("Scans &#60;per&#62; day"), "{svg}");
    }

    #[test]
    fn lost_followers_are_a_line_marked_on_the_days_that_have_any() {
        let with_lost = daily(
            "Lost",
            &[
                (date!(2026 - 11 - 01), day(4, 4, 2)),
                (date!(2026 - 11 - 02), day(1, 0, 0)),
            ],
        );
        let without = daily("None lost", &[(date!(2026 - 11 - 01), day(4, 4, 0))]);

        assert_eq!(with_lost.matches("<polyline class=\"lost\"").count(), 1);
        assert_eq!(with_lost.matches("<circle class=\"lost\"").count(), 1);
        assert!(with_lost.contains("2026-11-01: 2 lost since"));
        assert!(!without.contains("<polyline"));
    }
}
