//! A pill for a team role.

use leptos::prelude::*;

use crate::model::TeamRole;

#[component]
pub fn RoleBadge(role: TeamRole) -> impl IntoView {
    let class = match role {
        TeamRole::Owner => "bg-indigo-50 text-indigo-700 ring-indigo-600/20",
        TeamRole::Member => "bg-slate-100 text-slate-700 ring-slate-500/20",
    };
    view! {
        <span class=format!("inline-flex rounded-full px-2 py-0.5 text-xs font-medium ring-1 ring-inset {class}") data-testid="role">
            {role.as_str()}
        </span>
    }
}
