//! A team's heading and its tabs (members, API keys, usage).

use leptos::prelude::*;
use leptos_router::components::A;

/// The team's heading, `current` being the tab shown.
#[component]
pub fn TeamHeader(slug: String, current: &'static str) -> impl IntoView {
    let tab = move |name: &'static str, href: String, label: &'static str| {
        let class = if name == current {
            "border-b-2 border-indigo-600 pb-2 font-medium text-indigo-700"
        } else {
            "pb-2 text-slate-600 hover:text-slate-900"
        };
        view! { <A href=href attr:class=class>{label}</A> }
    };
    view! {
        <div class="border-b border-slate-200">
            <h1 class="text-2xl font-semibold tracking-tight">"Team " <span class="font-mono">{slug.clone()}</span></h1>
            <nav class="mt-3 flex gap-6 text-sm" aria-label="Team">
                {tab("members", format!("/teams/{slug}"), "Members")}
                {tab("keys", format!("/teams/{slug}/keys"), "API keys")}
                {tab("usage", format!("/teams/{slug}/usage"), "Usage")}
            </nav>
        </div>
    }
}
