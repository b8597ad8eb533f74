//! The admin usage page: the range picker, every team ranked by tokens and
//! requests with its month against its quota, the most used models, and the
//! cluster-wide charts (a banner when Prometheus cannot answer).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

use crate::api::get_admin_usage;
use crate::components::admin_nav::AdminNav;
use crate::components::chart::ChartPanel;
use crate::components::error::ErrorPanel;
use crate::components::form::fmt_time;
use crate::model::{AdminUsage, MetricsState, RangeChoice};

#[component]
pub fn AdminUsagePage() -> impl IntoView {
    let query = use_query_map();
    let q = move |k: &str| query.with(|q| q.get(k).filter(|v| !v.is_empty()));
    let usage = Resource::new(
        move || (q("range"), q("from"), q("to")),
        |(r, f, t)| get_admin_usage(r.unwrap_or_else(|| "24h".into()), f, t),
    );
    view! {
        <Title text="Usage · Admin"/>
        <AdminNav/>
        <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors/> }>
            <Transition fallback=|| view! { <p class="mt-6 text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move { usage.await.map(|u| view! { <Board u/> }) })}
            </Transition>
        </ErrorBoundary>
    }
}

#[component]
fn Board(u: AdminUsage) -> impl IntoView {
    let range = u.range;
    let picker = RangeChoice::ALL
        .into_iter()
        .map(|c| {
            let class = if range.choice == c {
                "rounded-md bg-indigo-600 px-3 py-1 text-white"
            } else {
                "rounded-md px-3 py-1 text-slate-600 ring-1 ring-slate-300"
            };
            view! { <A href=format!("/admin/usage?range={}", c.as_str()) attr:class=class>{c.as_str()}</A> }
        })
        .collect_view();
    let banner = match &u.metrics {
        MetricsState::Ok => None,
        MetricsState::NotConfigured => Some("Charts need Prometheus, and none is configured (prometheus.url). The tables are exact, from Corral's own records.".to_string()),
        MetricsState::Unavailable { reason } => Some(format!("Prometheus is not answering ({reason}), so there are no charts for now. The tables are exact, from Corral's own records.")),
    };
    view! {
        <nav class="mt-4 flex gap-2 text-sm" aria-label="Range" data-testid="range-picker">{picker}</nav>
        <p class="mt-2 text-xs text-slate-500">{format!("{} to {}", fmt_time(range.from), fmt_time(range.to))}</p>
        {banner.map(|b| view! { <p class="mt-4 rounded-lg bg-amber-50 px-4 py-3 text-sm text-amber-900 ring-1 ring-amber-200" role="status" data-testid="metrics-banner">{b}</p> })}
        <h2 class="mt-6 font-semibold">"Teams, by tokens"</h2>
        <table class="mt-2 w-full overflow-hidden rounded-lg bg-white text-sm shadow-sm ring-1 ring-slate-200" data-testid="admin-usage-teams">
            <thead class="bg-slate-50 text-left text-xs uppercase tracking-wide text-slate-500">
                <tr><th class="px-3 py-2">"Team"</th><th class="px-3 py-2 text-right">"Tokens"</th><th class="px-3 py-2 text-right">"Requests"</th><th class="px-3 py-2 text-right">"Errors"</th><th class="px-3 py-2 text-right">"This month"</th><th class="px-3 py-2 text-right">"Quota"</th></tr>
            </thead>
            <tbody class="divide-y divide-slate-100 tabular-nums">
                {u.teams.into_iter().map(|t| {
                    let quota = t.monthly_token_quota.map(|q| format!("{:.0}% of {q}", t.month_tokens as f64 / q.max(1) as f64 * 100.0)).unwrap_or_else(|| "none".into());
                    view! {
                        <tr>
                            <td class="px-3 py-2"><A href=format!("/teams/{}/usage", t.team) attr:class="font-mono text-indigo-700 underline">{t.team.clone()}</A></td>
                            <td class="px-3 py-2 text-right">{t.tokens}</td>
                            <td class="px-3 py-2 text-right">{t.requests}</td>
                            <td class="px-3 py-2 text-right">{t.errors}</td>
                            <td class="px-3 py-2 text-right">{t.month_tokens}</td>
                            <td class="px-3 py-2 text-right">{quota}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        <div class="mt-6 grid gap-4 lg:grid-cols-2" data-testid="usage-charts">
            {u.charts.into_iter().map(|chart| view! { <ChartPanel chart/> }).collect_view()}
        </div>
        <h2 class="mt-8 font-semibold">"Top models"</h2>
        <table class="mt-2 w-full overflow-hidden rounded-lg bg-white text-sm shadow-sm ring-1 ring-slate-200" data-testid="admin-usage-models">
            <thead class="bg-slate-50 text-left text-xs uppercase tracking-wide text-slate-500">
                <tr><th class="px-3 py-2">"Model"</th><th class="px-3 py-2 text-right">"Requests"</th><th class="px-3 py-2 text-right">"Errors"</th><th class="px-3 py-2 text-right">"Tokens"</th><th class="px-3 py-2 text-right">"Avg latency"</th></tr>
            </thead>
            <tbody class="divide-y divide-slate-100 tabular-nums">
                {u.models.into_iter().map(|m| view! {
                    <tr>
                        <td class="px-3 py-2 font-mono text-xs">{m.model}</td>
                        <td class="px-3 py-2 text-right">{m.requests}</td>
                        <td class="px-3 py-2 text-right">{m.errors}</td>
                        <td class="px-3 py-2 text-right">{m.prompt_tokens + m.completion_tokens}</td>
                        <td class="px-3 py-2 text-right">{format!("{:.0} ms", m.avg_latency_ms)}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}
