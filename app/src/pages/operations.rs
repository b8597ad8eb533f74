//! Operations: the list (filtered by state and kind) and one operation's
//! page, whose per-pod progress bars move live: the browser listens to
//! `/api/v1/operations/{id}/events`, which any Corral replica serves from
//! Postgres, so a reload shows the same bars still moving.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::{
    CancelOperation, OperationPageData, StartOperation, get_operation_detail, list_operations,
};
use crate::components::error::ErrorPanel;
use crate::components::form::Outcome;
use crate::components::progress::{OperationStateBadge, StepProgress};
use crate::model::{Operation, OperationDetail, OperationKind, OperationState};

fn what(o: &Operation) -> String {
    match o.kind {
        OperationKind::Scale => {
            format!("scale {} to {}", o.workload, o.replicas.unwrap_or_default())
        }
        OperationKind::Copy => format!(
            "copy {} to {}",
            o.model.clone().unwrap_or_default(),
            o.destination.clone().unwrap_or_default()
        ),
        k => format!("{} {}", k.as_str(), o.model.clone().unwrap_or_default()),
    }
}

fn when(t: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

#[component]
pub fn OperationsPage() -> impl IntoView {
    let query = use_query_map();
    let q = move |k: &str| query.with(|m| m.get(k).unwrap_or_default());
    let ops = Resource::new(
        move || (q("state"), q("kind")),
        |(state, kind)| list_operations(state, kind, String::new(), String::new()),
    );
    view! {
        <Title text="Operations"/>
        <h1 class="text-2xl font-semibold tracking-tight">"Operations"</h1>
        <p class="mt-1 text-sm text-slate-600">"Pulls, deletes, copies and scaling on the cluster, newest first. "
            <a href="/cluster" class="text-indigo-600 hover:text-indigo-500">"Cluster"</a></p>
        <form method="get" class="mt-4 flex flex-wrap items-end gap-3 text-sm" aria-label="Filter operations">
            <label>"State "
                <select name="state" class="rounded-md border-0 px-2 py-1 ring-1 ring-inset ring-slate-300">
                    <option value="">"any"</option>
                    {OperationState::ALL.into_iter().map(|s| view! { <option value=s.as_str() selected=move || q("state") == s.as_str()>{s.as_str()}</option> }).collect_view()}
                </select>
            </label>
            <label>"Kind "
                <select name="kind" class="rounded-md border-0 px-2 py-1 ring-1 ring-inset ring-slate-300">
                    <option value="">"any"</option>
                    {OperationKind::ALL.into_iter().map(|k| view! { <option value=k.as_str() selected=move || q("kind") == k.as_str()>{k.as_str()}</option> }).collect_view()}
                </select>
            </label>
            <button type="submit" class="rounded-md bg-white px-3 py-1 ring-1 ring-slate-300 hover:bg-slate-50">"Filter"</button>
        </form>
        <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors/> }>
            <Transition fallback=|| view! { <p class="mt-6 text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    ops.await.map(|ops| view! {
                        <table class="mt-6 w-full overflow-hidden rounded-lg bg-white text-sm shadow-sm ring-1 ring-slate-200" data-testid="operations">
                            <thead class="bg-slate-50 text-left text-xs uppercase tracking-wide text-slate-500">
                                <tr><th class="px-4 py-2">"What"</th><th class="px-4 py-2">"State"</th><th class="px-4 py-2">"For"</th><th class="px-4 py-2">"By"</th><th class="px-4 py-2">"Asked"</th></tr>
                            </thead>
                            <tbody class="divide-y divide-slate-100">
                                {ops.is_empty().then(|| view! { <tr><td colspan="5" class="px-4 py-3 text-slate-500">"No operations."</td></tr> })}
                                {ops.into_iter().map(|o| view! {
                                    <tr>
                                        <td class="px-4 py-2"><a href=format!("/operations/{}", o.id) class="text-indigo-600 hover:text-indigo-500">{what(&o)}</a></td>
                                        <td class="px-4 py-2"><OperationStateBadge state=o.state/></td>
                                        <td class="px-4 py-2">{o.team.clone().unwrap_or_else(|| "the platform".into())}</td>
                                        <td class="px-4 py-2">{o.requested_by.clone()}</td>
                                        <td class="px-4 py-2 text-xs text-slate-500">{when(o.created_at)}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    })
                })}
            </Transition>
        </ErrorBoundary>
    }
}

#[component]
pub fn OperationPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let cancel = ServerAction::<CancelOperation>::new();
    let detail = Resource::new(
        move || (id(), cancel.version().get()),
        |(id, _)| get_operation_detail(id),
    );
    // The latest state pushed by the server, once the page is live.
    let live: RwSignal<Option<Operation>> = RwSignal::new(None);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| live::watch(id(), live));
    view! {
        <Title text="Operation"/>
        <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors/> }>
            <Transition fallback=|| view! { <p class="text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    detail.await.map(|page: OperationPageData| {
                        let d = page.detail;
                        let first = d.operation.clone();
                        let landed = (!page.landed_on.is_empty()).then(|| view! { <Landed op=first.clone() pods=page.landed_on.clone()/> });
                        let op = Memo::new(move |_| live.get().filter(|o| o.id == first.id).unwrap_or_else(|| first.clone()));
                        view! {
                            <OperationView op cancel/>
                            {landed}
                            <Log detail=d/>
                        }
                    })
                })}
            </Transition>
        </ErrorBoundary>
    }
}

#[component]
fn OperationView(op: Memo<Operation>, cancel: ServerAction<CancelOperation>) -> impl IntoView {
    let o = move || op.get();
    view! {
        <div class="flex items-start justify-between gap-4">
            <div>
                <h1 class="text-2xl font-semibold tracking-tight" data-testid="operation-title">{move || what(&o())}</h1>
                <p class="mt-1 text-sm text-slate-600">{move || {
                    let o = o();
                    format!("workload {} · for {} · asked by {} · {} · attempt {}", o.workload,
                        o.team.clone().unwrap_or_else(|| "the platform".into()), o.requested_by, when(o.created_at), o.attempts)
                }}</p>
            </div>
            {move || view! { <OperationStateBadge state=o().state/> }}
        </div>
        {move || o().not_before.filter(|_| o().state == OperationState::Scheduled).map(|t| view! {
            <p class="mt-3 text-sm text-slate-700">{format!("Waits for the next maintenance window: starts at {}.", when(t))}</p>
        })}
        {move || o().error.map(|e| view! { <p class="mt-3 rounded-md bg-rose-50 p-3 text-sm text-rose-800" role="alert" data-testid="operation-error">{e}</p> })}
        {move || o().outcome.map(|t| view! { <p class="mt-3 rounded-md bg-slate-50 p-3 text-sm text-slate-800" data-testid="operation-outcome">{t}</p> })}
        {move || (!o().state.is_final()).then(|| view! {
            <ActionForm action=cancel attr:class="mt-4">
                <input type="hidden" name="id" value=o().id.to_string()/>
                <button type="submit" data-testid="cancel" class="rounded-md bg-white px-4 py-2 text-sm font-medium text-rose-700 ring-1 ring-rose-300 hover:bg-rose-50"
                    disabled=move || cancel.pending().get() || o().cancel_requested>
                    {move || if o().cancel_requested { "Cancelling…" } else { "Cancel" }}
                </button>
                <Outcome value=cancel.value() ok=|o: &Operation| format!("cancel asked; the operation is {}", o.state.as_str())/>
            </ActionForm>
        })}
        <section class="mt-6 rounded-xl bg-white p-6 shadow-sm ring-1 ring-slate-200" aria-live="polite">
            <h2 class="font-semibold">"Pods"</h2>
            {move || o().steps.is_empty().then(|| view! { <p class="mt-2 text-sm text-slate-500">"Not started on any pod yet."</p> })}
            <div class="mt-2 divide-y divide-slate-100">
                {move || o().steps.into_iter().map(|s| view! { <StepProgress step=s/> }).collect_view()}
            </div>
        </section>
    }
}

/// A cancelled pull that Ollama finished anyway: where, and a delete.
#[component]
fn Landed(op: Operation, pods: Vec<String>) -> impl IntoView {
    let delete = ServerAction::<StartOperation>::new();
    let model = op.model.clone().unwrap_or_default();
    view! {
        <section class="mt-6 rounded-xl bg-amber-50 p-6 ring-1 ring-amber-200" data-testid="landed">
            <p class="text-sm text-amber-900">{format!(
                "The pull was cancelled, but {model} is on {} anyway: Ollama finished the download after the request was dropped.",
                pods.join(", ")
            )}</p>
            <ActionForm action=delete attr:class="mt-3">
                <input type="hidden" name="kind" value="delete"/>
                <input type="hidden" name="model" value=model.clone()/>
                <input type="hidden" name="team" value=op.team.clone().unwrap_or_default()/>
                <button type="submit" class="rounded-md bg-white px-4 py-2 text-sm font-medium text-rose-700 ring-1 ring-rose-300 hover:bg-rose-50">{format!("Delete {model} from every pod")}</button>
                <Outcome value=delete.value() ok=|o: &Operation| format!("delete {}", o.state.as_str())/>
            </ActionForm>
        </section>
    }
}

#[component]
fn Log(detail: OperationDetail) -> impl IntoView {
    view! {
        <section class="mt-6 rounded-xl bg-white p-6 shadow-sm ring-1 ring-slate-200">
            <h2 class="font-semibold">"Log"</h2>
            <p class="text-xs text-slate-500">"As of loading the page; reload for newer lines."</p>
            <ol class="mt-2 space-y-0.5 font-mono text-xs" data-testid="operation-log">
                {detail.log.into_iter().map(|l| view! {
                    <li><span class="text-slate-400">{when(l.at)}</span> " " {l.pod.map(|p| format!("[{p}] "))}{l.line}</li>
                }).collect_view()}
            </ol>
        </section>
    }
}

/// The browser side: an `EventSource` on the operation's event stream.
#[cfg(feature = "hydrate")]
mod live {
    use leptos::prelude::*;
    use send_wrapper::SendWrapper;
    use wasm_bindgen::JsCast as _;
    use wasm_bindgen::closure::Closure;

    use crate::model::Operation;

    /// Sets `live` at every event until the operation ends or the page goes.
    pub fn watch(id: String, live: RwSignal<Option<Operation>>) {
        if id.is_empty() {
            return;
        }
        let Ok(source) = web_sys::EventSource::new(&format!("/api/v1/operations/{id}/events"))
        else {
            return;
        };
        let closer = source.clone();
        let on_event =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
                let Some(text) = ev.data().as_string() else {
                    return;
                };
                if let Ok(op) = serde_json::from_str::<Operation>(&text) {
                    // The server ends the stream after the final state; closing
                    // keeps the browser from opening it again.
                    if op.state.is_final() {
                        closer.close();
                    }
                    live.set(Some(op));
                }
            });
        let _ =
            source.add_event_listener_with_callback("operation", on_event.as_ref().unchecked_ref());
        on_event.forget();
        let source = SendWrapper::new(source);
        on_cleanup(move || source.close());
    }
}
