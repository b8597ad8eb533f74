//! The 404 page.

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn NotFoundPage() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    let path = leptos_router::hooks::use_location().pathname;

    view! {
        <Title text="Page not found"/>
        <section class="mx-auto max-w-xl text-center py-16" data-testid="not-found">
            <p class="text-sm font-semibold text-indigo-600">"404"</p>
            <h1 class="mt-2 text-3xl font-semibold tracking-tight">"Page not found"</h1>
            <p class="mt-4 text-slate-600">
                "There is no page at " <code class="rounded bg-slate-100 px-1.5 py-0.5 text-sm">{move || path.get()}</code> "."
            </p>
            <a href="/" class="mt-8 inline-block rounded-md bg-slate-900 px-4 py-2 text-sm font-medium text-white hover:bg-slate-700">
                "Back to the home page"
            </a>
        </section>
    }
}
