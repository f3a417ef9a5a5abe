//! Scans per day as a bar chart: SVG rendered on the server from an askama template (so
//! every label is escaped), styled by `static/style.css`, no script and no CDN.

use askama::Template;
use time::Date;

const WIDTH: u32 = 720;
const HEIGHT: u32 = 220;
const LEFT: u32 = 40;
const TOP: u32 = 10;
const BASELINE: u32 = 190;

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
    ticks: Vec<Tick>,
}

struct Bar {
    x: String,
    y: String,
    width: String,
    height: String,
    day: Date,
    scans: i64,
}

struct Tick {
    x: String,
    text: String,
}

/// Renders `days` (every day of the range, in order, with its scans) as an SVG element.
pub fn daily_scans(title: &str, days: &[(Date, i64)]) -> String {
    let max = days.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let slot = f64::from(WIDTH - LEFT) / days.len().max(1) as f64;
    let gap = (slot * 0.15).min(4.0);
    let plot_height = f64::from(BASELINE - TOP);
    let bars = days
        .iter()
        .enumerate()
        .filter(|(_, (_, scans))| *scans > 0)
        .map(|(i, (day, scans))| {
            let height = plot_height * *scans as f64 / max as f64;
            Bar {
                x: format!("{:.1}", f64::from(LEFT) + i as f64 * slot + gap / 2.0),
                y: format!("{:.1}", f64::from(BASELINE) - height),
                width: format!("{:.1}", (slot - gap).max(0.5)),
                height: format!("{height:.1}"),
                day: *day,
                scans: *scans,
            }
        })
        .collect();
    // About six date labels, whatever the range.
    let every = days.len().div_ceil(6).max(1);
    let ticks = days
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0)
        .map(|(i, (day, _))| Tick {
            x: format!("{:.1}", f64::from(LEFT) + (i as f64 + 0.5) * slot),
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

    #[test]
    fn each_day_with_scans_is_a_bar_with_its_count() {
        let svg = daily_scans(
            "Scans <per> day",
            &[
                (date!(2026 - 11 - 01), 3),
                (date!(2026 - 11 - 02), 0),
                (date!(2026 - 11 - 03), 6),
            ],
        );
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("2026-11-03: 6 scans"));
        assert!(svg.contains("Scans &#60;per&#62; day"), "{svg}");
    }
}
