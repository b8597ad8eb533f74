//! A team's usage dashboard: the range picker and model filter, this
//! month's tokens against the quota with the month-end projection, exact
//! totals from Postgres, charts from Prometheus (a banner when it cannot
//! answer), use per model and per key, exports, and the latest requests.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::get_usage_dashboard;
use crate::components::chart::ChartPanel;
use crate::components::error::ErrorPanel;
use crate::components::form::fmt_time;
use crate::components::team_header::TeamHeader;
use crate::model::{MetricsState, RangeChoice, UsageDashboard};

#[component]
pub fn TeamUsagePage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let slug = move || params.with(|p| p.get("slug").unwrap_or_default());
    let q = move |k: &str| query.with(|q| q.get(k).filter(|v| !v.is_empty()));
    let usage = Resource::new(
        move || (slug(), q("range"), q("from"), q("to"), q("model")),
        |(s, r, f, t, m)| get_usage_dashboard(s, r.unwrap_or_else(|| "24h".into()), f, t, m),
    );
    view! {
        <Title text="Usage"/>
        <TeamHeader slug=slug() current="usage"/>
        <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors/> }>
            <Transition fallback=|| view! { <p class="mt-6 text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    usage.await.map(|d| view! { <Dashboard slug=slug() d/> })
                })}
            </Transition>
        </ErrorBoundary>
    }
}

#[component]
fn Dashboard(slug: String, d: UsageDashboard) -> impl IntoView {
    let range = d.range;
    let model_q = d
        .model
        .as_ref()
        .map(|m| format!("&model={}", urlencode(m)))
        .unwrap_or_default();
    let picker = RangeChoice::ALL
        .into_iter()
        .map(|c| {
            let href = format!("/teams/{slug}/usage?range={}{model_q}", c.as_str());
            let class = if range.choice == c {
                "rounded-md bg-indigo-600 px-3 py-1 text-white"
            } else {
                "rounded-md px-3 py-1 text-slate-600 ring-1 ring-slate-300"
            };
            view! { <A href=href attr:class=class>{c.as_str()}</A> }
        })
        .collect_view();
    let local = |t: time::OffsetDateTime| {
        let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
        t.format(&f).unwrap_or_default()
    };
    let day = |t: time::OffsetDateTime| t.date().to_string();
    let export = |format: &str| {
        format!(
            "/api/v1/teams/{slug}/usage/export?from={}&to={}&format={format}",
            day(range.from),
            day(range.to + time::Duration::days(1)),
        )
    };
    let banner = match &d.metrics {
        MetricsState::Ok => None,
        MetricsState::NotConfigured => Some(
            "Charts need Prometheus, and none is configured (prometheus.url). The totals below are exact, from Corral's own records."
                .to_string(),
        ),
        MetricsState::Unavailable { reason } => Some(format!(
            "Prometheus is not answering ({reason}), so there are no charts for now. The totals below are exact, from Corral's own records."
        )),
    };
    let s = d.summary;
    let quota = s.monthly_token_quota.map(|q| {
        let pct = s.month_tokens as f64 / q.max(1) as f64 * 100.0;
        let projected = s.projected_month_tokens as f64 / q.max(1) as f64 * 100.0;
        let bar = if pct >= 100.0 { "bg-red-600" } else if projected > 100.0 { "bg-amber-500" } else { "bg-indigo-600" };
        view! {
            <div class="mt-2 h-2 w-full rounded bg-slate-200" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow=format!("{:.0}", pct.min(100.0)) aria-label="Monthly token quota used">
                <div class=format!("h-2 rounded {bar}") style=format!("width: {:.1}%", pct.min(100.0))></div>
            </div>
            <p class="mt-1 text-xs text-slate-500" data-testid="usage-quota">{format!("{pct:.1}% of the monthly quota of {q} tokens")}</p>
            <p class={if projected > 100.0 { "text-xs font-medium text-amber-700" } else { "text-xs text-slate-500" }} data-testid="usage-projection">
                {format!("Projected at month end: {} tokens ({projected:.0}% of the quota)", s.projected_month_tokens)}
            </p>
        }
    });
    let models = d.models.clone();
    let chosen = d.model.clone().unwrap_or_default();
    view! {
        <div class="mt-4 flex flex-wrap items-end gap-4">
            <nav class="flex gap-2 text-sm" aria-label="Range" data-testid="range-picker">{picker}</nav>
            <form method="get" class="flex flex-wrap items-end gap-2 text-xs" aria-label="Custom range">
                <input type="hidden" name="range" value="custom"/>
                <label class="flex flex-col">"From (UTC)"<input type="datetime-local" name="from" value=local(range.from) class="rounded border-slate-300 text-xs"/></label>
                <label class="flex flex-col">"To (UTC)"<input type="datetime-local" name="to" value=local(range.to) class="rounded border-slate-300 text-xs"/></label>
                {d.model.clone().map(|m| view! { <input type="hidden" name="model" value=m/> })}
                <button class="rounded-md px-3 py-1 ring-1 ring-slate-300">"Show"</button>
            </form>
            <form method="get" class="flex items-end gap-2 text-xs" aria-label="Model">
                <input type="hidden" name="range" value=range.choice.as_str()/>
                {(range.choice == RangeChoice::Custom).then(|| view! {
                    <input type="hidden" name="from" value=local(range.from)/>
                    <input type="hidden" name="to" value=local(range.to)/>
                })}
                <label class="flex flex-col">"Model"
                    <select name="model" class="rounded border-slate-300 text-xs" data-testid="model-filter">
                        <option value="" selected=chosen.is_empty()>"All models"</option>
                        {models.into_iter().map(|m| { let sel = m == chosen; let v = m.clone(); view! { <option value=v selected=sel>{m}</option> } }).collect_view()}
                    </select>
                </label>
                <button class="rounded-md px-3 py-1 ring-1 ring-slate-300">"Filter"</button>
            </form>
        </div>
        <p class="mt-2 text-xs text-slate-500" data-testid="usage-range">{format!("{} to {}, a point every {}", fmt_time(range.from), fmt_time(range.to), step_text(range.step_secs))}</p>
        {banner.map(|b| view! { <p class="mt-4 rounded-lg bg-amber-50 px-4 py-3 text-sm text-amber-900 ring-1 ring-amber-200" role="status" data-testid="metrics-banner">{b}</p> })}
        <div class="mt-6 grid gap-4 sm:grid-cols-4" data-testid="usage-totals">
            <Stat label="Requests" value=s.requests.to_string() testid="usage-requests"/>
            <Stat label="Prompt tokens" value=s.prompt_tokens.to_string() testid="usage-prompt"/>
            <Stat label="Completion tokens" value=s.completion_tokens.to_string() testid="usage-completion"/>
            <div class="rounded-xl bg-white p-4 shadow-sm ring-1 ring-slate-200">
                <p class="text-xs uppercase tracking-wide text-slate-500">"Tokens this month"</p>
                <p class="mt-1 text-2xl font-semibold tabular-nums" data-testid="usage-month">{s.month_tokens}</p>
                {quota}
            </div>
        </div>
        <div class="mt-6 grid gap-4 lg:grid-cols-2" data-testid="usage-charts">
            {d.charts.into_iter().map(|chart| view! { <ChartPanel chart/> }).collect_view()}
        </div>
        <h2 class="mt-8 font-semibold">"By model"</h2>
        <table class="mt-2 w-full overflow-hidden rounded-lg bg-white text-sm shadow-sm ring-1 ring-slate-200" data-testid="usage-by-model">
            <thead class="bg-slate-50 text-left text-xs uppercase tracking-wide text-slate-500">
                <tr><th class="px-3 py-2">"Model"</th><th class="px-3 py-2 text-right">"Requests"</th><th class="px-3 py-2 text-right">"Errors"</th><th class="px-3 py-2 text-right">"Prompt"</th><th class="px-3 py-2 text-right">"Completion"</th><th class="px-3 py-2 text-right">"Avg latency"</th><th class="px-3 py-2 text-right">"Avg TTFT (streamed)"</th></tr>
            </thead>
            <tbody class="divide-y divide-slate-100 tabular-nums">
                {s.by_model.into_iter().map(|m| { let testid = format!("usage-model-{}", m.model); view! {
                    <tr data-testid=testid>
                        <td class="px-3 py-2 font-mono text-xs">{m.model}</td>
                        <td class="px-3 py-2 text-right">{m.requests}</td>
                        <td class="px-3 py-2 text-right">{m.errors}</td>
                        <td class="px-3 py-2 text-right">{m.prompt_tokens}</td>
                        <td class="px-3 py-2 text-right">{m.completion_tokens}</td>
                        <td class="px-3 py-2 text-right">{format!("{:.0} ms", m.avg_latency_ms)}</td>
                        <td class="px-3 py-2 text-right">{m.avg_ttft_ms.map(|t| format!("{t:.0} ms")).unwrap_or_else(|| "—".into())}</td>
                    </tr>
                }}).collect_view()}
            </tbody>
        </table>
        <h2 class="mt-8 font-semibold">"By key"</h2>
        <p class="text-xs text-slate-500">"Every key in use or still valid: a key with no requests in the range may not be needed."</p>
        <table class="mt-2 w-full overflow-hidden rounded-lg bg-white text-sm shadow-sm ring-1 ring-slate-200" data-testid="usage-by-key">
            <thead class="bg-slate-50 text-left text-xs uppercase tracking-wide text-slate-500">
                <tr><th class="px-3 py-2">"Key"</th><th class="px-3 py-2">"Name"</th><th class="px-3 py-2 text-right">"Requests"</th><th class="px-3 py-2 text-right">"Errors"</th><th class="px-3 py-2 text-right">"Tokens"</th><th class="px-3 py-2">"Last use in range"</th></tr>
            </thead>
            <tbody class="divide-y divide-slate-100 tabular-nums">
                {s.by_key.into_iter().map(|k| view! {
                    <tr class=if k.requests == 0 { "text-slate-400" } else { "" }>
                        <td class="px-3 py-2 font-mono text-xs">{k.key}{k.revoked.then_some(" (revoked)")}</td>
                        <td class="px-3 py-2">{k.name}</td>
                        <td class="px-3 py-2 text-right">{k.requests}</td>
                        <td class="px-3 py-2 text-right">{k.errors}</td>
                        <td class="px-3 py-2 text-right">{k.tokens}</td>
                        <td class="px-3 py-2 text-xs">{k.last_used_at.map(fmt_time).unwrap_or_else(|| "unused".into())}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        <p class="mt-4 text-sm">"Export this range by day, key and model: "
            <a class="text-indigo-700 underline" href=export("csv") data-testid="export-csv">"CSV"</a>" · "
            <a class="text-indigo-700 underline" href=export("json")>"JSON"</a>
        </p>
        <h2 class="mt-8 font-semibold">"Latest requests"</h2>
        <table class="mt-2 w-full overflow-hidden rounded-lg bg-white text-xs shadow-sm ring-1 ring-slate-200" data-testid="usage-recent">
            <thead class="bg-slate-50 text-left uppercase tracking-wide text-slate-500">
                <tr><th class="px-3 py-2">"When"</th><th class="px-3 py-2">"Key"</th><th class="px-3 py-2">"Endpoint"</th><th class="px-3 py-2">"Model"</th><th class="px-3 py-2 text-right">"Status"</th><th class="px-3 py-2 text-right">"Tokens"</th><th class="px-3 py-2 text-right">"Latency"</th></tr>
            </thead>
            <tbody class="divide-y divide-slate-100 tabular-nums">
                {s.recent.into_iter().map(|e| view! {
                    <tr>
                        <td class="px-3 py-1.5">{fmt_time(e.at)}</td>
                        <td class="px-3 py-1.5 font-mono">{e.key.unwrap_or_default()}</td>
                        <td class="px-3 py-1.5 font-mono">{e.endpoint}</td>
                        <td class="px-3 py-1.5 font-mono">{e.model}</td>
                        <td class="px-3 py-1.5 text-right">{e.status}</td>
                        <td class="px-3 py-1.5 text-right">{format!("{} + {}", e.prompt_tokens, e.completion_tokens)}</td>
                        <td class="px-3 py-1.5 text-right">{format!("{:.0} ms", e.latency_ms)}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

fn step_text(secs: i64) -> String {
    match secs {
        s if s % 86400 == 0 => format!("{} d", s / 86400),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// A query-string value (model names may hold `:`, `/`, `&`).
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

#[component]
fn Stat(label: &'static str, value: String, testid: &'static str) -> impl IntoView {
    view! {
        <div class="rounded-xl bg-white p-4 shadow-sm ring-1 ring-slate-200">
            <p class="text-xs uppercase tracking-wide text-slate-500">{label}</p>
            <p class="mt-1 text-2xl font-semibold tabular-nums" data-testid=testid>{value}</p>
        </div>
    }
}
