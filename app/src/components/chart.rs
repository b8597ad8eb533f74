//! A chart drawn on the server (see `domain::charts`): its title, a legend
//! in the lines' colours, the SVG, and the values as a table for anyone who
//! cannot see it. Used by the usage pages; the cluster and admin pages can
//! show any [`Chart`] the same way.

use leptos::prelude::*;

use crate::model::{Chart, PALETTE};

#[component]
pub fn ChartPanel(chart: Chart) -> impl IntoView {
    let testid = format!("chart-{}", chart.id);
    let legend = chart
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let color = PALETTE[i % PALETTE.len()];
            view! {
                <li class="flex items-center gap-1.5">
                    <span class="inline-block h-2 w-4 rounded-sm" style=format!("background: {color}")></span>
                    <span class="font-mono">{s.name.clone()}</span>
                </li>
            }
        })
        .collect_view();
    let empty = chart.series.iter().all(|s| s.points.is_empty());
    let unit = chart.unit.clone();
    let rows = chart
        .series
        .iter()
        .flat_map(|s| {
            let unit = unit.clone();
            s.points
                .iter()
                .filter(|p| p.1.is_finite())
                .map(move |(t, v)| {
                    view! {
                        <tr>
                            <td class="px-2 py-0.5 font-mono">{s.name.clone()}</td>
                            <td class="px-2 py-0.5">{fmt_unix(*t)}</td>
                            <td class="px-2 py-0.5 text-right">{format!("{v:.4} {unit}")}</td>
                        </tr>
                    }
                })
        })
        .collect_view();
    view! {
        <figure class="rounded-xl bg-white p-4 shadow-sm ring-1 ring-slate-200" data-testid=testid>
            <figcaption class="flex flex-wrap items-baseline justify-between gap-2">
                <h3 class="font-semibold">{chart.title.clone()}<span class="ml-2 text-xs font-normal text-slate-500">{format!("({})", chart.unit)}</span></h3>
                <ul class="flex flex-wrap gap-3 text-xs text-slate-600" aria-label="Legend" data-testid="chart-legend">{legend}</ul>
            </figcaption>
            {empty.then(|| view! { <p class="mt-2 text-xs text-slate-500">"No requests in this range."</p> })}
            <div class="mt-2" inner_html=chart.svg.clone()></div>
            <details class="mt-2 text-xs text-slate-600">
                <summary class="cursor-pointer">"Values as a table"</summary>
                <table class="mt-1 w-full tabular-nums">
                    <thead><tr class="text-left"><th class="px-2">"Series"</th><th class="px-2">"Time (UTC)"</th><th class="px-2 text-right">"Value"</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </details>
        </figure>
    }
}

fn fmt_unix(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .map(|t| {
            format!(
                "{}-{:02}-{:02} {:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        })
        .unwrap_or_default()
}
