//! The Modelfile editor: a textarea with line numbers, Ollama's rules
//! checked as one types (the same parser as the server, compiled to wasm),
//! errors and warnings marked at their lines with one-click fixes, the
//! parameters' help, and the `/api/create` request it becomes.

use leptos::prelude::*;

use crate::model::modelfiles::{Diagnostic, Severity, check};

/// The editor. `text` is the draft (kept when a save is refused); `name`
/// the model it creates, for the request preview. The textarea is named
/// `text`, so a surrounding form sends it.
#[component]
pub fn ModelfileEditor(
    text: RwSignal<String>,
    #[prop(into)] name: Signal<String>,
    #[prop(default = false)] readonly: bool,
) -> impl IntoView {
    let checked = Memo::new(move |_| {
        let n = name.get();
        let n = if n.trim().is_empty() {
            "corral-validate".to_owned()
        } else {
            n
        };
        text.with(|t| check(t, &n))
    });
    let lines = move || text.with(|t| t.split('\n').count().max(1));
    let marks = move |line: usize| {
        checked.with(|c| {
            let mut worst: Option<Severity> = None;
            let mut why = Vec::new();
            for d in c.diagnostics.iter().filter(|d| d.line() as usize == line) {
                why.push(d.message.clone());
                if worst != Some(Severity::Error) {
                    worst = Some(d.severity);
                }
            }
            (worst, why.join("\n"))
        })
    };
    let apply = move |d: &Diagnostic| {
        if let Some(fix) = &d.fix {
            let fixed = text.with(|t| modelfile::apply_fix(t, fix));
            text.set(fixed);
        }
    };
    view! {
        <div class="overflow-auto rounded-md ring-1 ring-inset ring-slate-300 focus-within:ring-2 focus-within:ring-indigo-600" style="max-height: 36rem">
            <div class="flex font-mono text-sm leading-6">
                <div class="select-none bg-slate-50 px-2 py-2 text-right text-slate-400" aria-hidden="true" data-testid="gutter">
                    {move || (1..=lines()).map(|n| {
                        let (worst, why) = marks(n);
                        let class = match worst {
                            Some(Severity::Error) => "bg-rose-100 text-rose-700 font-semibold",
                            Some(Severity::Warning) => "bg-amber-100 text-amber-800",
                            None => "",
                        };
                        let state = match worst {
                            Some(Severity::Error) => "error",
                            Some(Severity::Warning) => "warning",
                            None => "ok",
                        };
                        view! { <div class=class data-line=n data-state=state title=why>{n}</div> }
                    }).collect_view()}
                </div>
                <textarea name="text" id="modelfile-text" aria-label="Modelfile" aria-describedby="modelfile-diagnostics"
                    spellcheck="false" autocomplete="off" readonly=readonly wrap="off"
                    rows=move || lines() + 1
                    class="block w-full resize-none border-0 bg-white px-3 py-2 font-mono text-sm leading-6 focus:ring-0"
                    prop:value=move || text.get()
                    on:input=move |ev| text.set(event_target_value(&ev))>
                    {text.get_untracked()}
                </textarea>
            </div>
        </div>
        <div id="modelfile-diagnostics" class="mt-2" aria-live="polite">
            {move || checked.with(|c| {
                let errors = c.diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
                let warnings = c.diagnostics.len() - errors;
                let summary = match (errors, warnings) {
                    (0, 0) => "Ollama would accept this Modelfile.".to_owned(),
                    (0, w) => format!("Ollama would accept it, with {w} warning{}.", if w == 1 { "" } else { "s" }),
                    (e, _) => format!("{e} error{}: Ollama would refuse it, so it cannot be saved until fixed.", if e == 1 { "" } else { "s" }),
                };
                let tone = if errors > 0 { "text-rose-700" } else if warnings > 0 { "text-amber-800" } else { "text-emerald-700" };
                view! { <p class=format!("text-sm {tone}") data-testid="check-summary">{summary}</p> }
            })}
            <ul class="mt-1 space-y-1 text-sm" data-testid="diagnostics">
                {move || checked.get().diagnostics.into_iter().map(|d| {
                    let error = d.severity == Severity::Error;
                    let badge = if error { "bg-rose-100 text-rose-800" } else { "bg-amber-100 text-amber-800" };
                    let fix_label = d.fix.as_ref().map(|f| f.label.clone());
                    let d2 = d.clone();
                    view! {
                        <li class="flex flex-wrap items-baseline gap-2" data-line=d.line() data-severity=if error { "error" } else { "warning" }>
                            <span class=format!("rounded px-1.5 text-xs font-medium {badge}")>{if error { "error" } else { "warning" }}</span>
                            <span class="text-slate-500">{format!("line {}, column {}", d.line(), d.column())}</span>
                            <span>{d.message.clone()}</span>
                            {d.ollama_message.clone().map(|m| view! { <span class="text-xs text-slate-500">{format!("(Ollama: {m})")}</span> })}
                            {fix_label.filter(|_| !readonly).map(|l| view! {
                                <button type="button" data-testid="apply-fix" on:click=move |_| apply(&d2)
                                    class="rounded bg-white px-2 py-0.5 text-xs font-medium text-indigo-700 ring-1 ring-indigo-300 hover:bg-indigo-50">{l}</button>
                            })}
                        </li>
                    }
                }).collect_view()}
            </ul>
        </div>
        <details class="mt-3 text-sm">
            <summary class="cursor-pointer text-slate-700">"The /api/create request it becomes"</summary>
            <pre class="mt-2 overflow-auto rounded-md bg-slate-900 p-3 text-xs text-slate-100" data-testid="request-preview">{move || checked.with(|c| match &c.request {
                Some(r) => serde_json::to_string_pretty(r).unwrap_or_default(),
                None => "(none until the errors are fixed)".to_owned(),
            })}</pre>
        </details>
        <details class="mt-2 text-sm">
            <summary class="cursor-pointer text-slate-700">"Parameters Ollama knows"</summary>
            <table class="mt-2 w-full text-left text-xs">
                <thead class="text-slate-500"><tr><th class="py-1 pr-3">"Name"</th><th class="py-1 pr-3">"Type"</th><th class="py-1">"What it does"</th></tr></thead>
                <tbody class="divide-y divide-slate-100">
                    {modelfile::PARAMETERS.iter().filter(|p| !p.deprecated).map(|p| view! {
                        <tr><td class="py-1 pr-3 font-mono">{p.name}</td><td class="py-1 pr-3">{match p.ty {
                            modelfile::ParamType::Int => "integer",
                            modelfile::ParamType::Float => "number",
                            modelfile::ParamType::Bool => "true/false",
                            modelfile::ParamType::StringList => "text (repeatable)",
                        }}</td><td class="py-1">{p.help}</td></tr>
                    }).collect_view()}
                </tbody>
            </table>
        </details>
    }
}
