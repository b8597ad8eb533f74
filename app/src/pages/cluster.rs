//! The cluster page: each workload's replicas and autoscaler, each pod and
//! the models on it (flagging models some pods lack), and the forms that
//! start pulls, deletes and scales (admins; owners pull for their teams).

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{ClusterView, DeployedModelfile, StartOperation, get_cluster_view};
use crate::components::error::ErrorPanel;
use crate::components::form::Outcome;
use crate::components::progress::{OperationStateBadge, bytes};
use crate::model::capacity::{CapacityAdvice, gib};
use crate::model::{Operation, PodReport, WorkloadReport};

#[component]
pub fn ClusterPage() -> impl IntoView {
    let start = ServerAction::<StartOperation>::new();
    let scale = ServerAction::<StartOperation>::new();
    let data = Resource::new(
        move || (start.version().get(), scale.version().get()),
        |_| get_cluster_view(),
    );
    view! {
        <Title text="Cluster"/>
        <h1 class="text-2xl font-semibold tracking-tight">"Cluster"</h1>
        <p class="mt-1 text-sm text-slate-600">"Where Ollama runs, what each pod holds, and the work Corral does on it. "
            <a href="/operations" class="text-indigo-600 hover:text-indigo-500">"All operations"</a></p>
        <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors/> }>
            <Transition fallback=|| view! { <p class="mt-6 text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    data.await.map(|v: ClusterView| {
                        let can_pull = v.admin || !v.owned_teams.is_empty();
                        let scalable = v
                            .report
                            .workloads
                            .first()
                            .filter(|w| v.admin && w.can_scale)
                            .map(|w| (w.min_replicas, w.max_replicas, w.autoscaler.as_ref().map(|a| a.name.clone())));
                        view! {
                            <div class="mt-6 grid gap-8 lg:grid-cols-3">
                                <div class="space-y-8 lg:col-span-2">
                                    {v.report.workloads.into_iter().map(|w| view! { <Workload w/> }).collect_view()}
                                </div>
                                <div class="space-y-6">
                                    {can_pull.then(|| view! { <PullForm start admin=v.admin teams=v.owned_teams.clone()/> })}
                                    {scalable.map(|(min, max, hpa)| view! { <ScaleForm scale min max hpa/> })}
                                    <Modelfiles items=v.modelfiles.clone()/>
                                    <Recent ops=v.recent/>
                                </div>
                            </div>
                        }
                    })
                })}
            </Transition>
        </ErrorBoundary>
    }
}

#[component]
fn Workload(w: WorkloadReport) -> impl IntoView {
    let replicas = format!(
        "{} desired · {} ready · {} available",
        w.desired.map_or("?".into(), |n| n.to_string()),
        w.ready.map_or("?".into(), |n| n.to_string()),
        w.available.map_or("?".into(), |n| n.to_string()),
    );
    view! {
        <section class="rounded-xl bg-white p-6 shadow-sm ring-1 ring-slate-200" data-testid=format!("workload-{}", w.name)>
            <div class="flex items-start justify-between gap-4">
                <div>
                    <h2 class="text-lg font-semibold">{w.name.clone()}</h2>
                    <p class="text-xs text-slate-500">{format!("{} driver · {}", w.driver, w.location)}</p>
                </div>
                <p class="text-sm text-slate-700" data-testid="replicas">{replicas}</p>
            </div>
            {w.error.clone().map(|e| view! { <p class="mt-3 rounded-md bg-rose-50 p-3 text-sm text-rose-800" role="alert">{format!("The cluster did not answer: {e}")}</p> })}
            {w.autoscaler.clone().map(|a| view! {
                <p class="mt-3 text-sm text-slate-700" data-testid="autoscaler">
                    {format!("HorizontalPodAutoscaler {}: {}–{} replicas", a.name, a.min_replicas, a.max_replicas)}
                    {a.metric.clone().map(|m| format!(" on {m}"))}
                    {match (a.current_value, a.target_value) { (Some(c), Some(t)) => format!(" (now {c}, target {t})"), _ => String::new() }}
                    ". Scaling changes its bounds."
                </p>
            })}
            {(!w.can_scale).then(|| view! { <p class="mt-2 text-xs text-slate-500">"This driver cannot scale: the pods are a fixed list of Ollama URLs."</p> })}
            {(!w.uneven_models.is_empty()).then(|| view! {
                <p class="mt-3 rounded-md bg-amber-50 p-3 text-sm text-amber-900" data-testid="uneven" role="status">
                    {format!("On some pods only: {}. Requests for them fail on the other pods; pull them again to put them everywhere.", w.uneven_models.join(", "))}
                </p>
            })}
            <Capacity c=w.capacity.clone()/>
            <div class="mt-4 space-y-4">
                {w.pods.into_iter().map(|p| view! { <Pod p/> }).collect_view()}
            </div>
        </section>
    }
}

/// The deployed Modelfiles, and whether every pod still runs its deployed
/// version.
#[component]
fn Modelfiles(items: Vec<DeployedModelfile>) -> impl IntoView {
    (!items.is_empty()).then(|| view! {
        <section class="rounded-xl bg-white p-6 shadow-sm ring-1 ring-slate-200" data-testid="cluster-modelfiles">
            <h2 class="font-semibold">"Modelfiles"</h2>
            <ul class="mt-2 space-y-1 text-sm">
                {items.into_iter().map(|m| {
                    let (text, tone) = match (&m.drift, &m.error) {
                        (Some(d), _) if d.drifted() => {
                            let off: Vec<String> = d.pods.iter().filter(|p| p.state != crate::model::DriftState::InSync).map(|p| p.pod.clone()).collect();
                            (format!("v{} on {}: drift on {}", d.version.unwrap_or_default(), d.workload, off.join(", ")), "text-rose-700")
                        }
                        (Some(d), _) => (format!("v{} on {}: in sync", d.version.unwrap_or_default(), d.workload), "text-emerald-700"),
                        (None, Some(e)) => (format!("not checked: {e}"), "text-slate-500"),
                        (None, None) => (String::new(), ""),
                    };
                    view! {
                        <li data-testid="cluster-modelfile">
                            <a href=format!("/modelfiles/{}", m.id) class="font-mono text-indigo-600 hover:text-indigo-500">{m.name.clone()}</a>
                            " " <span class=tone>{text}</span>
                        </li>
                    }
                }).collect_view()}
            </ul>
        </section>
    })
}

/// The capacity advice: the figures, the arithmetic behind them, and what
/// cannot fit.
#[component]
fn Capacity(c: CapacityAdvice) -> impl IntoView {
    let summary = match (c.gpu_memory, c.max_loaded_models, c.num_parallel) {
        (Some(g), Some(m), Some(p)) => format!(
            "Capacity of one pod ({} of GPU memory): OLLAMA_MAX_LOADED_MODELS at most {m}, OLLAMA_NUM_PARALLEL at most {p} (now {})",
            gib(g), c.parallel
        ),
        (Some(g), _, _) => format!("Capacity of one pod ({} of GPU memory): no models yet", gib(g)),
        _ => "Capacity: set cluster.gpu_memory_gib (one pod's GPU memory) for advice on OLLAMA_MAX_LOADED_MODELS and OLLAMA_NUM_PARALLEL".into(),
    };
    view! {
        <details class="mt-4 rounded-md bg-slate-50 p-3 text-sm" data-testid="capacity">
            <summary class="cursor-pointer font-medium text-slate-700">{summary}</summary>
            <ul class="mt-2 space-y-1 font-mono text-xs text-slate-600">
                {c.steps.into_iter().map(|s| view! { <li>{s}</li> }).collect_view()}
            </ul>
        </details>
        {c.warnings.into_iter().map(|w| view! {
            <p class="mt-2 rounded-md bg-amber-50 p-3 text-sm text-amber-900" role="status" data-testid="capacity-warning">{w}</p>
        }).collect_view()}
    }
}

#[component]
fn Pod(p: PodReport) -> impl IntoView {
    let health = if p.ready && p.ollama_error.is_none() {
        (
            "ready",
            "bg-emerald-50 text-emerald-700 ring-emerald-600/20",
        )
    } else if p.phase == "Pending" {
        ("pending", "bg-amber-50 text-amber-800 ring-amber-600/20")
    } else {
        ("not answering", "bg-rose-50 text-rose-700 ring-rose-600/20")
    };
    let facts: Vec<String> = [
        Some(p.phase.clone()),
        p.node.clone().map(|n| format!("node {n}")),
        p.gpus.clone().map(|g| format!("{g} GPU")),
        (p.restarts > 0).then(|| format!("{} restarts", p.restarts)),
        p.ollama_version.clone().map(|v| format!("Ollama {v}")),
        p.endpoint.clone(),
    ]
    .into_iter()
    .flatten()
    .collect();
    view! {
        <div class="rounded-lg ring-1 ring-slate-200 p-4" data-testid=format!("pod-{}", p.name)>
            <div class="flex items-center justify-between gap-4">
                <span class="font-mono text-sm">{p.name.clone()}</span>
                <span class=format!("rounded-full px-2.5 py-0.5 text-xs font-medium ring-1 ring-inset {}", health.1)>{health.0}</span>
            </div>
            <p class="mt-1 text-xs text-slate-500">{facts.join(" · ")}</p>
            {p.reason.clone().map(|r| view! { <p class="mt-2 text-sm text-amber-900">{format!("Not running: {r}")}</p> })}
            {p.ollama_error.clone().map(|e| view! { <p class="mt-2 text-sm text-rose-700">{e}</p> })}
            {(!p.models.is_empty()).then(|| view! {
                <table class="mt-3 w-full text-sm">
                    <thead class="text-left text-xs uppercase tracking-wide text-slate-500">
                        <tr><th class="py-1">"Model"</th><th class="py-1">"Size"</th><th class="py-1">"Digest"</th><th class="py-1">"Loaded"</th></tr>
                    </thead>
                    <tbody class="divide-y divide-slate-100">
                        {p.models.iter().map(|m| {
                            let loaded = p.loaded.iter().find(|l| l.name == m.name).map(|l| format!("{} in GPU memory", bytes(l.size_vram)));
                            view! {
                                <tr data-testid=format!("model-{}", m.name)>
                                    <td class="py-1 font-mono text-xs">{m.name.clone()}</td>
                                    <td class="py-1 text-xs">{bytes(m.size)} {(!m.parameter_size.is_empty()).then(|| format!(" · {}", m.parameter_size))}</td>
                                    <td class="py-1 font-mono text-xs text-slate-500">{m.digest.chars().take(12).collect::<String>()}</td>
                                    <td class="py-1 text-xs">{loaded.unwrap_or_default()}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            })}
        </div>
    }
}

#[component]
fn PullForm(start: ServerAction<StartOperation>, admin: bool, teams: Vec<String>) -> impl IntoView {
    view! {
        <section class="rounded-xl bg-white p-6 shadow-sm ring-1 ring-slate-200">
            <h2 class="font-semibold">"Pull or delete a model"</h2>
            <p class="mt-1 text-xs text-slate-500">"On every pod of the workload. Team owners may pull the models on their team's allow-list."</p>
            <ActionForm action=start attr:class="mt-4 space-y-3">
                <label class="block text-sm">
                    <span class="font-medium text-slate-700">"Model"</span>
                    <input name="model" required=true placeholder="llama3.2" data-testid="pull-model"
                        class="mt-1 block w-full rounded-md border-0 px-3 py-1.5 ring-1 ring-inset ring-slate-300"/>
                </label>
                <label class="block text-sm">
                    <span class="font-medium text-slate-700">"For"</span>
                    <select name="team" class="mt-1 block w-full rounded-md border-0 px-3 py-1.5 ring-1 ring-inset ring-slate-300">
                        {admin.then(|| view! { <option value="">"the platform"</option> })}
                        {teams.into_iter().map(|t| view! { <option value=t.clone()>{format!("team {t}")}</option> }).collect_view()}
                    </select>
                </label>
                <label class="block text-sm"><input type="checkbox" name="in_next_window"/> " in the next maintenance window"</label>
                <label class="block text-sm"><input type="checkbox" name="force" data-testid="pull-force"/> " even if it does not fit on a pod's GPU"</label>
                <label class="block text-sm">
                    <span class="font-medium text-slate-700">"Action"</span>
                    <select name="kind" data-testid="model-action" class="mt-1 block w-full rounded-md border-0 px-3 py-1.5 ring-1 ring-inset ring-slate-300">
                        <option value="pull" selected=true>"pull onto every pod"</option>
                        <option value="delete">"delete from every pod"</option>
                    </select>
                </label>
                <button type="submit" data-testid="start-pull" class="rounded-md bg-indigo-600 px-4 py-2 text-sm font-medium text-white hover:bg-indigo-500" disabled=move || start.pending().get()>"Start"</button>
                <StartedLink start/>
            </ActionForm>
        </section>
    }
}

#[component]
fn ScaleForm(
    scale: ServerAction<StartOperation>,
    min: i32,
    max: i32,
    hpa: Option<String>,
) -> impl IntoView {
    let rule = match hpa {
        Some(name) => format!(
            "Between {min} and {max}. HorizontalPodAutoscaler {name} owns the replicas: Corral moves its bounds instead (up raises its minimum, down lowers its maximum)."
        ),
        None => format!("Between {min} and {max}, through the Deployment's scale subresource."),
    };
    view! {
        <section class="rounded-xl bg-white p-6 shadow-sm ring-1 ring-slate-200">
            <h2 class="font-semibold">"Scale"</h2>
            <p class="mt-1 text-xs text-slate-500" data-testid="scale-rule">{rule}</p>
            <ActionForm action=scale attr:class="mt-4 space-y-3">
                <input type="hidden" name="kind" value="scale"/>
                <label class="block text-sm">
                    <span class="font-medium text-slate-700">"Replicas"</span>
                    <input name="replicas" type="number" required=true data-testid="scale-replicas"
                        class="mt-1 block w-full rounded-md border-0 px-3 py-1.5 ring-1 ring-inset ring-slate-300"/>
                </label>
                <button type="submit" data-testid="start-scale" class="rounded-md bg-indigo-600 px-4 py-2 text-sm font-medium text-white hover:bg-indigo-500" disabled=move || scale.pending().get()>"Scale"</button>
                <div data-testid="scale-outcome"><StartedLink start=scale/></div>
            </ActionForm>
        </section>
    }
}

/// What a start did: a link to the operation, or the error.
#[component]
fn StartedLink(start: ServerAction<StartOperation>) -> impl IntoView {
    view! {
        <Outcome value=start.value() ok=|o: &Operation| format!("{} {} is {}", o.kind.as_str(), o.model.clone().or(o.replicas.map(|r| format!("to {r}"))).unwrap_or_default(), o.state.as_str())/>
        {move || start.value().get().and_then(Result::ok).map(|o| view! {
            <a href=format!("/operations/{}", o.id) class="text-sm text-indigo-600 hover:text-indigo-500" data-testid="started-link">"Follow its progress"</a>
        })}
    }
}

#[component]
fn Recent(ops: Vec<Operation>) -> impl IntoView {
    view! {
        <section class="rounded-xl bg-white p-6 shadow-sm ring-1 ring-slate-200">
            <h2 class="font-semibold">"Latest operations"</h2>
            {ops.is_empty().then(|| view! { <p class="mt-2 text-sm text-slate-500">"None yet."</p> })}
            <ul class="mt-2 divide-y divide-slate-100 text-sm">
                {ops.into_iter().map(|o| view! {
                    <li class="flex items-center justify-between gap-2 py-1.5">
                        <a href=format!("/operations/{}", o.id) class="text-indigo-600 hover:text-indigo-500">
                            {format!("{} {}", o.kind.as_str(), o.model.clone().or(o.replicas.map(|r| format!("to {r}"))).unwrap_or_default())}
                        </a>
                        <OperationStateBadge state=o.state/>
                    </li>
                }).collect_view()}
            </ul>
        </section>
    }
}
