//! How a failed page looks, and the HTTP status it answers with.

use leptos::prelude::*;

use crate::model::AppError;

/// Renders the errors an `ErrorBoundary` caught; on the server it also sets the
/// response status from the first error (500 for anything unexpected).
#[component]
pub fn ErrorPanel(errors: ArcRwSignal<Errors>) -> impl IntoView {
    let messages: Vec<(String, u16)> = errors
        .get_untracked()
        .into_iter()
        .map(|(_, e)| match e.downcast_ref::<AppError>() {
            Some(app) => (app.to_string(), app.status_code()),
            None => ("Something went wrong on our side".to_owned(), 500),
        })
        .collect();
    let status = messages.first().map(|(_, s)| *s).unwrap_or(500);

    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(
            axum::http::StatusCode::from_u16(status)
                .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR),
        );
    }

    let title = if status >= 500 {
        "Something went wrong"
    } else {
        "We could not show this page"
    };
    view! {
        <section class="mx-auto max-w-xl text-center py-16" data-testid="error-page">
            <p class="text-sm font-semibold text-rose-600">{status}</p>
            <h1 class="mt-2 text-3xl font-semibold tracking-tight">{title}</h1>
            <ul class="mt-4 text-slate-600 space-y-1">
                {messages.into_iter().map(|(m, _)| view! { <li>{m}</li> }).collect_view()}
            </ul>
            <a href="/" class="mt-8 inline-block rounded-md bg-slate-900 px-4 py-2 text-sm font-medium text-white hover:bg-slate-700">
                "Back to the home page"
            </a>
        </section>
    }
}
