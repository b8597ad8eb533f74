//! A team's usage through the gateway: totals, this month's tokens against
//! the quota, per model, and the latest requests.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::team_usage;
use crate::components::error::ErrorPanel;
use crate::components::form::fmt_time;
use crate::components::team_header::TeamHeader;

#[component]
pub fn TeamUsagePage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let slug = move || params.with(|p| p.get("slug").unwrap_or_default());
    let days = move || {
        query
            .with(|q| q.get("days").and_then(|d| d.parse::<i64>().ok()))
            .unwrap_or(7)
    };
    let usage = Resource::new(move || (slug(), days()), |(s, d)| team_usage(s, d));
    view! {
        <Title text="Usage"/>
        <TeamHeader slug=slug() current="usage"/>
        <nav class="mt-4 flex gap-3 text-sm" aria-label="Period">
            {[1i64, 7, 30, 90].into_iter().map(|d| view! {
                <A href=move || format!("/teams/{}/usage?days={d}", slug()) attr:class=move || if days() == d { "rounded-md bg-indigo-600 px-3 py-1 text-white" } else { "rounded-md px-3 py-1 text-slate-600 ring-1 ring-slate-300" }>{format!("{d} d")}</A>
            }).collect_view()}
        </nav>
        <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors/> }>
            <Transition fallback=|| view! { <p class="mt-6 text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    usage.await.map(|u| {
                        let quota = u.monthly_token_quota.map(|q| {
                            let pct = (u.month_tokens as f64 / q as f64 * 100.0).min(100.0);
                            view! {
                                <div class="mt-2 h-2 w-full rounded bg-slate-200"><div class="h-2 rounded bg-indigo-600" style=format!("width: {pct:.1}%")></div></div>
                                <p class="mt-1 text-xs text-slate-500">{format!("{pct:.1}% of the monthly quota of {q} tokens")}</p>
                            }
                        });
                        view! {
                            <div class="mt-6 grid gap-4 sm:grid-cols-4" data-testid="usage-totals">
                                <Stat label="Requests" value=u.requests.to_string() testid="usage-requests"/>
                                <Stat label="Prompt tokens" value=u.prompt_tokens.to_string() testid="usage-prompt"/>
                                <Stat label="Completion tokens" value=u.completion_tokens.to_string() testid="usage-completion"/>
                                <div class="rounded-xl bg-white p-4 shadow-sm ring-1 ring-slate-200">
                                    <p class="text-xs uppercase tracking-wide text-slate-500">"Tokens this month"</p>
                                    <p class="mt-1 text-2xl font-semibold tabular-nums">{u.month_tokens}</p>
                                    {quota}
                                </div>
                            </div>
                            <h2 class="mt-8 font-semibold">"By model"</h2>
                            <table class="mt-2 w-full overflow-hidden rounded-lg bg-white text-sm shadow-sm ring-1 ring-slate-200" data-testid="usage-by-model">
                                <thead class="bg-slate-50 text-left text-xs uppercase tracking-wide text-slate-500">
                                    <tr><th class="px-3 py-2">"Model"</th><th class="px-3 py-2 text-right">"Requests"</th><th class="px-3 py-2 text-right">"Errors"</th><th class="px-3 py-2 text-right">"Prompt"</th><th class="px-3 py-2 text-right">"Completion"</th><th class="px-3 py-2 text-right">"Avg latency"</th><th class="px-3 py-2 text-right">"Avg TTFT"</th></tr>
                                </thead>
                                <tbody class="divide-y divide-slate-100 tabular-nums">
                                    {u.by_model.into_iter().map(|m| { let testid = format!("usage-model-{}", m.model); view! {
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
                            <h2 class="mt-8 font-semibold">"Latest requests"</h2>
                            <table class="mt-2 w-full overflow-hidden rounded-lg bg-white text-xs shadow-sm ring-1 ring-slate-200" data-testid="usage-recent">
                                <thead class="bg-slate-50 text-left uppercase tracking-wide text-slate-500">
                                    <tr><th class="px-3 py-2">"When"</th><th class="px-3 py-2">"Key"</th><th class="px-3 py-2">"Endpoint"</th><th class="px-3 py-2">"Model"</th><th class="px-3 py-2 text-right">"Status"</th><th class="px-3 py-2 text-right">"Tokens"</th><th class="px-3 py-2 text-right">"Latency"</th></tr>
                                </thead>
                                <tbody class="divide-y divide-slate-100 tabular-nums">
                                    {u.recent.into_iter().map(|e| view! {
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
                    })
                })}
            </Transition>
        </ErrorBoundary>
    }
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
