//! Line charts drawn on the server as SVG with plotters' SVG backend: axes
//! with units, a grid, one line per series in the shared palette, and for
//! screen readers and hover a `<title>`/`<desc>` and a titled point per
//! value (the browser shows it as a tooltip, with or without JavaScript).

use plotters::prelude::*;
use time::OffsetDateTime;

use crate::model::{ChartSeries, PALETTE};

const WIDTH: u32 = 720;
const HEIGHT: u32 = 240;

/// Points per series that get a hover target (more would only bloat the
/// page: a chart has about 120 points per series).
const HOVER_POINTS: usize = 400;

/// Draws `series` over `[from, to]` (Unix seconds, a point every `step`)
/// with `unit` on the y axis. `id` makes the element ids unique on the page.
pub fn line_chart(
    id: &str,
    title: &str,
    unit: &str,
    series: &[ChartSeries],
    (from, to, step): (i64, i64, i64),
) -> String {
    let mut svg = String::new();
    let max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let top = nice_ceiling(max);
    let mut hover = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        let drawn = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .margin(10)
                .x_label_area_size(28)
                .y_label_area_size(64)
                .build_cartesian_2d(from as f64..to.max(from + 1) as f64, 0.0..top)?;
            let span = to - from;
            let x_fmt = |x: &f64| time_label(*x as i64, span);
            let y_fmt = |y: &f64| format!("{} {unit}", compact(*y));
            chart
                .configure_mesh()
                .x_labels(6)
                .y_labels(5)
                .x_label_formatter(&x_fmt)
                .y_label_formatter(&y_fmt)
                .light_line_style(RGBColor(241, 245, 249))
                .bold_line_style(RGBColor(226, 232, 240))
                .axis_style(RGBColor(148, 163, 184))
                .label_style(("sans-serif", 12).into_font().color(&RGBColor(71, 85, 105)))
                .draw()?;
            for (i, s) in series.iter().enumerate() {
                let color = hex(PALETTE[i % PALETTE.len()]);
                // A gap (a step with no sample, or not a number) breaks
                // the line; a value alone between gaps is a dot.
                for run in runs(&s.points, step) {
                    if let [(t, v)] = run {
                        chart.draw_series(std::iter::once(Circle::new(
                            (*t as f64, *v),
                            3,
                            color.filled(),
                        )))?;
                        continue;
                    }
                    chart.draw_series(LineSeries::new(
                        run.iter().map(|(t, v)| (*t as f64, *v)),
                        color.stroke_width(2),
                    ))?;
                }
                for (t, v) in s
                    .points
                    .iter()
                    .filter(|p| p.1.is_finite())
                    .take(HOVER_POINTS)
                {
                    let (x, y) = chart.backend_coord(&(*t as f64, *v));
                    hover.push_str(&format!(
                        r#"<circle cx="{x}" cy="{y}" r="5" fill="transparent"><title>{}: {} {} at {}</title></circle>"#,
                        escape(&s.name),
                        compact(*v),
                        escape(unit),
                        time_label(*t, 0)
                    ));
                }
            }
            root.present()?;
            Ok(())
        })();
        if let Err(e) = drawn {
            tracing::warn!(chart = id, error = %e, "chart not drawn");
        }
    }
    let summary = describe(series, unit);
    let head =
        format!(r#"<svg role="img" aria-labelledby="{id}-title {id}-desc" class="h-auto w-full" "#);
    let svg = svg.replacen("<svg ", &head, 1);
    let inner = format!(
        r#"<title id="{id}-title">{}</title><desc id="{id}-desc">{}</desc>"#,
        escape(title),
        escape(&summary)
    );
    match (svg.find('>'), svg.rfind("</svg>")) {
        (Some(open), Some(close)) if open < close => format!(
            "{}{inner}{}{hover}</svg>",
            &svg[..=open],
            &svg[open + 1..close]
        ),
        _ => svg,
    }
}

/// The stretches of finite values `step` apart, in order.
fn runs(points: &[(i64, f64)], step: i64) -> Vec<&[(i64, f64)]> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, p) in points.iter().enumerate() {
        let joins = start.is_some() && i > 0 && p.0 - points[i - 1].0 <= step.max(1) * 3 / 2;
        match (p.1.is_finite(), start) {
            (true, Some(_)) if joins => {}
            (true, Some(s)) => {
                out.push(&points[s..i]);
                start = Some(i);
            }
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(&points[s..i]);
                start = None;
            }
            (false, None) => {}
        }
    }
    if let Some(s) = start {
        out.push(&points[s..]);
    }
    out
}

/// What a screen reader hears: each series' latest and highest value.
fn describe(series: &[ChartSeries], unit: &str) -> String {
    if series.iter().all(|s| s.points.is_empty()) {
        return "No data in this range.".into();
    }
    series
        .iter()
        .map(|s| {
            let values = s.points.iter().map(|p| p.1).filter(|v| v.is_finite());
            let last = values.clone().next_back().unwrap_or(0.0);
            let peak = values.fold(0.0_f64, f64::max);
            format!(
                "{}: latest {} {unit}, highest {} {unit}.",
                s.name,
                compact(last),
                compact(peak)
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A round number at or above `v` (an empty chart gets 1).
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * mag)
}

/// `1234` → `1.2k`, `0.25` → `0.25`, `3000000` → `3M`.
pub fn compact(v: f64) -> String {
    let a = v.abs();
    let (n, suffix) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let s = if n == n.trunc() || n.abs() >= 10.0 {
        format!("{n:.0}")
    } else if n.abs() >= 0.1 {
        format!("{n:.2}")
    } else {
        format!("{n:.3}")
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{suffix}")
}

/// A time on the x axis (UTC): the hour within two days, else the date;
/// `span` 0 gives both.
fn time_label(t: i64, span: i64) -> String {
    let Ok(t) = OffsetDateTime::from_unix_timestamp(t) else {
        return String::new();
    };
    let (m, d, h, min) = (u8::from(t.month()), t.day(), t.hour(), t.minute());
    match span {
        0 => format!("{}-{m:02}-{d:02} {h:02}:{min:02} UTC", t.year()),
        s if s <= 2 * 86400 => format!("{h:02}:{min:02}"),
        _ => format!("{m:02}-{d:02}"),
    }
}

fn hex(c: &str) -> RGBColor {
    let v = u32::from_str_radix(c.trim_start_matches('#'), 16).unwrap_or(0);
    RGBColor((v >> 16) as u8, (v >> 8) as u8, v as u8)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, points: Vec<(i64, f64)>) -> ChartSeries {
        ChartSeries {
            name: name.into(),
            points,
        }
    }

    #[test]
    fn a_chart_has_axes_a_title_a_description_and_hover_values() {
        let svg = line_chart(
            "rps",
            "Requests <per> second",
            "req/s",
            &[
                series(
                    "all models",
                    vec![(1000, 1.0), (1060, f64::NAN), (1120, 3.5)],
                ),
                series("m\"x", vec![(1000, 0.5)]),
            ],
            (1000, 1120, 60),
        );
        assert!(svg.starts_with("<svg role=\"img\" aria-labelledby=\"rps-title rps-desc\""));
        assert!(svg.contains("<title id=\"rps-title\">Requests &lt;per&gt; second</title>"));
        assert!(svg.contains("all models: latest 3.5 req/s, highest 3.5 req/s."));
        assert!(svg.contains("<title>m&quot;x: 0.5 req/s at 1970-01-01 00:16 UTC</title>"));
        // y labels carry the unit; lines in the palette's colours.
        assert!(
            svg.contains("req/s\n</text>") || svg.contains("req/s</text>"),
            "{svg}"
        );
        assert!(svg.contains("#4E79A7") || svg.contains("#4e79a7") || svg.contains("78,121,167"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn an_empty_chart_says_so() {
        let svg = line_chart("e", "Empty", "s", &[], (0, 3600, 30));
        assert!(svg.contains("No data in this range."));
    }

    #[test]
    fn lines_break_at_gaps_and_lone_values_stand_alone() {
        let p = [
            (0, 1.0),
            (30, 2.0),
            (60, f64::NAN),
            (90, 3.0),
            (180, 4.0),
            (210, 5.0),
        ];
        let r = runs(&p, 30);
        assert_eq!(r, vec![&p[0..2], &p[3..4], &p[4..6]]);
        let svg = line_chart("g", "Gaps", "s", &[series("a", p.to_vec())], (0, 210, 30));
        assert_eq!(
            svg.matches("r=\"3\"").count(),
            1,
            "the lone 3.0 is a dot: {svg}"
        );
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(compact(1234.0), "1.23k");
        assert_eq!(compact(3_000_000.0), "3M");
        assert_eq!(compact(0.25), "0.25");
        assert_eq!(compact(0.0), "0");
        assert_eq!(compact(42.0), "42");
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(110.0), 200.0);
    }
}
