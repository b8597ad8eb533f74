//! The plain page shown when a sign-in cannot complete.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A self-contained HTML page with the reason and a way back.
pub fn failure_page(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Corral</title><link rel="stylesheet" href="/pkg/corral.css"></head>
<body class="bg-slate-50 text-slate-900"><main class="mx-auto max-w-xl px-6 py-24 text-center" data-testid="auth-error">
<p class="text-sm font-semibold text-rose-600">{code}</p>
<h1 class="mt-2 text-3xl font-semibold tracking-tight">{title}</h1>
<p class="mt-4 text-slate-600">{detail}</p>
<a class="mt-8 inline-block rounded-md bg-slate-900 px-4 py-2 text-sm font-medium text-white" href="/signin">Back to sign-in</a>
</main></body></html>"#,
        code = status.as_u16(),
        title = html_escape(title),
        detail = html_escape(detail),
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
