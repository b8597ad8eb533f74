//! The admin console's navigation.

use leptos::prelude::*;
use leptos_router::components::A;

/// The admin console's heading and tabs.
#[component]
pub fn AdminNav() -> impl IntoView {
    view! {
        <div class="flex items-center gap-6 border-b border-slate-200 pb-3">
            <h1 class="text-2xl font-semibold tracking-tight">"Admin"</h1>
            <nav aria-label="Admin" class="flex gap-4 text-sm">
                <A href="/admin/teams" attr:class="text-slate-600 hover:text-slate-900">"Teams"</A>
                <A href="/admin/keys" attr:class="text-slate-600 hover:text-slate-900">"Keys"</A>
                <A href="/admin/users" attr:class="text-slate-600 hover:text-slate-900">"Users"</A>
                <A href="/admin/usage" attr:class="text-slate-600 hover:text-slate-900">"Usage"</A>
                <A href="/admin/audit" attr:class="text-slate-600 hover:text-slate-900">"Audit log"</A>
            </nav>
        </div>
    }
}
