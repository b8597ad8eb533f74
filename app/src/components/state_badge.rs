//! A coloured pill for a dependency's state.

use leptos::prelude::*;

use crate::model::DependencyState;

#[component]
pub fn StateBadge(state: DependencyState) -> impl IntoView {
    let (pill, dot) = match state {
        DependencyState::Healthy => (
            "bg-emerald-50 text-emerald-700 ring-emerald-600/20",
            "bg-emerald-500",
        ),
        DependencyState::Degraded => (
            "bg-amber-50 text-amber-800 ring-amber-600/20",
            "bg-amber-500",
        ),
        DependencyState::Down => ("bg-rose-50 text-rose-700 ring-rose-600/20", "bg-rose-500"),
    };
    view! {
        <span class=format!("inline-flex items-center gap-1.5 rounded-full px-2.5 py-0.5 text-xs font-medium ring-1 ring-inset {pill}")>
            <span class=format!("h-1.5 w-1.5 rounded-full {dot}")></span>
            {state.label()}
        </span>
    }
}
