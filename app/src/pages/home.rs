//! The home page: what Corral is and how this installation is doing.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::check_status;
use crate::components::state_badge::StateBadge;

#[component]
pub fn HomePage() -> impl IntoView {
    let report = Resource::new(|| (), |_| check_status());

    view! {
        <Title text=""/>
        <section class="grid gap-10 lg:grid-cols-5 items-start">
            <div class="lg:col-span-3">
                <p class="text-sm font-semibold text-indigo-600">"Self-hosted LLM control plane"</p>
                <h1 class="mt-2 text-4xl font-semibold tracking-tight">"Ollama, run as team infrastructure"</h1>
                <p class="mt-4 text-lg text-slate-600 leading-relaxed">
                    "Corral puts an authenticating gateway in front of Ollama on Kubernetes. "
                    "Teams sign in with your identity provider, get API keys that are approved, "
                    "limited and revocable, manage versioned Modelfiles, and see their own usage "
                    "and latency. The platform team runs it all from one console and one REST API."
                </p>
                <ul class="mt-8 grid gap-4 sm:grid-cols-2 text-sm">
                    <Feature title="Keys that mean something" text="Per-team keys, stored as HMACs, metered and revocable within a second."/>
                    <Feature title="Models as code" text="Versioned, validated Modelfiles deployed to every Ollama pod with drift checks."/>
                    <Feature title="Cluster control" text="Pull models and scale GPU nodes with live progress and a full audit trail."/>
                    <Feature title="Usage you can trust" text="Token counts from Ollama itself, charted from Prometheus per team."/>
                </ul>
            </div>
            <aside class="lg:col-span-2 rounded-xl bg-white p-6 shadow-sm ring-1 ring-slate-200">
                <h2 class="text-sm font-semibold text-slate-900">"This installation"</h2>
                <Transition fallback=|| view! { <p class="mt-4 text-sm text-slate-500">"Checking…"</p> }>
                    {move || Suspend::new(async move {
                        match report.await {
                            Ok(r) => view! {
                                <ul class="mt-4 space-y-3 text-sm">
                                    {r.dependencies.into_iter().map(|d| view! {
                                        <li class="flex items-center justify-between gap-4">
                                            <span>{d.name}</span>
                                            <StateBadge state=d.state/>
                                        </li>
                                    }).collect_view()}
                                </ul>
                            }.into_any(),
                            Err(e) => view! { <p class="mt-4 text-sm text-rose-700">{e.to_string()}</p> }.into_any(),
                        }
                    })}
                </Transition>
                <a href="/status" class="mt-6 inline-flex text-sm font-medium text-indigo-600 hover:text-indigo-500">
                    "Open the status page →"
                </a>
            </aside>
        </section>
    }
}

#[component]
fn Feature(title: &'static str, text: &'static str) -> impl IntoView {
    view! {
        <li class="rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200">
            <p class="font-medium text-slate-900">{title}</p>
            <p class="mt-1 text-slate-600">{text}</p>
        </li>
    }
}
