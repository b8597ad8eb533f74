//! The status page: every dependency with its live state, re-checkable.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::check_status;
use crate::components::{error::ErrorPanel, state_badge::StateBadge};
use crate::model::StatusReport;

#[component]
pub fn StatusPage() -> impl IntoView {
    let checks = RwSignal::new(0u32);
    let report = Resource::new(move || checks.get(), |_| check_status());

    view! {
        <Title text="Status"/>
        <div class="flex flex-wrap items-end justify-between gap-4">
            <div>
                <h1 class="text-2xl font-semibold tracking-tight">"System status"</h1>
                <p class="mt-1 text-sm text-slate-600">
                    "Every service Corral depends on, checked live when this page loads."
                </p>
            </div>
            <button
                type="button"
                data-testid="recheck"
                class="inline-flex items-center gap-2 rounded-md bg-indigo-600 px-4 py-2 text-sm font-medium text-white shadow-sm hover:bg-indigo-500 disabled:opacity-60"
                on:click=move |_| checks.update(|n| *n += 1)
            >
                "Re-check now"
            </button>
        </div>
        <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors/> }>
            <Transition fallback=|| view! { <p class="mt-8 text-slate-500">"Checking…"</p> }>
                {move || Suspend::new(async move { report.await.map(|r| view! { <ReportTable report=r/> }) })}
            </Transition>
        </ErrorBoundary>
    }
}

#[component]
fn ReportTable(report: StatusReport) -> impl IntoView {
    let summary = if report.all_healthy() {
        (
            "All systems operational",
            "bg-emerald-50 text-emerald-800 ring-emerald-600/20",
        )
    } else {
        (
            "Some dependencies need attention",
            "bg-rose-50 text-rose-800 ring-rose-600/20",
        )
    };
    view! {
        <div class=format!("mt-8 rounded-lg px-4 py-3 text-sm font-medium ring-1 ring-inset {}", summary.1) data-testid="status-summary">
            {summary.0}
        </div>
        <div class="mt-6 overflow-hidden rounded-lg bg-white shadow-sm ring-1 ring-slate-200">
            <table class="min-w-full divide-y divide-slate-200 text-sm">
                <thead class="bg-slate-50 text-left text-xs font-semibold uppercase tracking-wide text-slate-500">
                    <tr>
                        <th scope="col" class="px-4 py-3">"Dependency"</th>
                        <th scope="col" class="px-4 py-3">"State"</th>
                        <th scope="col" class="px-4 py-3">"Detail"</th>
                        <th scope="col" class="px-4 py-3 text-right">"Check took"</th>
                    </tr>
                </thead>
                <tbody class="divide-y divide-slate-100">
                    {report.dependencies.into_iter().map(|d| view! {
                        <tr data-testid=format!("dependency-{}", d.id)>
                            <td class="px-4 py-3 font-medium">{d.name}</td>
                            <td class="px-4 py-3" data-testid="state"><StateBadge state=d.state/></td>
                            <td class="px-4 py-3 text-slate-600">{d.detail}</td>
                            <td class="px-4 py-3 text-right tabular-nums text-slate-500">{d.latency_ms} " ms"</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        <p class="mt-3 text-xs text-slate-500">
            "Last checked " <time data-testid="checked-at" datetime=report.checked_at.clone()>{report.checked_at.clone()}</time>
            " · Corral " {report.version} " · profile " {report.profile}
        </p>
    }
}
