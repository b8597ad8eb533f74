//! `/api/v1/openapi.json` and a readable docs page rendered from it on the
//! server (no CDN scripts: Corral works offline).

use std::fmt::Write;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::Html;
use utoipa::openapi::OpenApi;

use crate::auth::pages::html_escape;

/// `GET /api/v1/openapi.json`.
pub async fn openapi_json(State(doc): State<Arc<OpenApi>>) -> Json<OpenApi> {
    Json((*doc).clone())
}

/// `GET /api/docs`: every operation with its parameters, body and responses.
pub async fn docs_page(State(doc): State<Arc<OpenApi>>) -> Html<String> {
    let mut ops = String::new();
    for (path, item) in &doc.paths.paths {
        let methods = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ];
        for (method, op) in methods {
            let Some(op) = op else { continue };
            let tags = op.tags.clone().unwrap_or_default().join(", ");
            let _ = write!(
                ops,
                r#"<section class="rounded-lg bg-white p-5 shadow-sm ring-1 ring-slate-200" data-testid="operation">
<h2 class="font-mono text-sm"><span class="rounded bg-indigo-600 px-2 py-0.5 text-white">{method}</span> {path}</h2>
<p class="mt-2 text-slate-700">{summary}</p><p class="mt-1 text-xs text-slate-500">tags: {tags}</p>"#,
                path = html_escape(path),
                summary = html_escape(
                    op.summary
                        .as_deref()
                        .or(op.description.as_deref())
                        .unwrap_or("")
                ),
                tags = html_escape(&tags),
            );
            if let Some(params) = &op.parameters {
                ops.push_str(r#"<ul class="mt-2 text-sm list-disc pl-5">"#);
                for p in params {
                    let _ = write!(
                        ops,
                        "<li><code>{}</code> ({}){}</li>",
                        html_escape(&p.name),
                        match p.parameter_in {
                            utoipa::openapi::path::ParameterIn::Query => "query",
                            utoipa::openapi::path::ParameterIn::Path => "path",
                            utoipa::openapi::path::ParameterIn::Header => "header",
                            utoipa::openapi::path::ParameterIn::Cookie => "cookie",
                        },
                        p.description
                            .as_deref()
                            .map(|d| format!(" — {}", html_escape(d)))
                            .unwrap_or_default()
                    );
                }
                ops.push_str("</ul>");
            }
            let codes: Vec<String> = op.responses.responses.keys().cloned().collect();
            let _ = write!(
                ops,
                r#"<p class="mt-2 text-xs text-slate-500">responses: {}</p></section>"#,
                html_escape(&codes.join(" "))
            );
        }
    }
    let description = doc.info.description.as_deref().unwrap_or("");
    Html(format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>API · Corral</title><link rel="stylesheet" href="/pkg/corral.css"></head>
<body class="bg-slate-50 text-slate-900"><main class="mx-auto max-w-4xl px-6 py-10 space-y-4">
<p><a class="text-sm text-indigo-600" href="/">← Corral</a></p>
<h1 class="text-2xl font-semibold">{title} <span class="text-sm text-slate-500">v{version}</span></h1>
<div class="whitespace-pre-line text-sm text-slate-700">{description}</div>
<p class="text-sm"><a class="text-indigo-600" href="/api/v1/openapi.json">openapi.json</a> (OpenAPI {oas})</p>
{ops}</main></body></html>"#,
        title = html_escape(&doc.info.title),
        version = html_escape(&doc.info.version),
        description = html_escape(description),
        oas = "3.1",
    ))
}
