//! One Modelfile: the editor (checked as one types, saved as a new
//! version), deploy to a workload, drift of the pods against the deployed
//! version (with a redeploy), and the history with side-by-side diffs and
//! rollbacks.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::{
    DeployModelfile, ModelfileDiff, ModelfileDrift, ModelfilePage, RollbackModelfile,
    SaveModelfile, VersionDiff, get_modelfile,
};
use crate::components::error::ErrorPanel;
use crate::components::form::{Outcome, fmt_time};
use crate::components::modelfile_editor::ModelfileEditor;
use crate::model::{
    AppError, Change, DiffLine, DriftReport, DriftState, ModelfileVersion, Operation,
};

#[component]
pub fn ModelfilePage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let save = ServerAction::<SaveModelfile>::new();
    let rollback = ServerAction::<RollbackModelfile>::new();
    // Reloaded after a version is saved (or restored), never after a
    // refusal: the editor keeps the draft then.
    let saved = Memo::new(move |prev: Option<&(Option<i32>, Option<i32>)>| {
        let last = |v: Option<Result<ModelfileVersion, AppError>>, was: Option<i32>| match v {
            Some(Ok(v)) => Some(v.version),
            _ => was,
        };
        let (s, r) = prev.copied().unwrap_or_default();
        (last(save.value().get(), s), last(rollback.value().get(), r))
    });
    let data = Resource::new(move || (id(), saved.get()), |(id, _)| get_modelfile(id));
    view! {
        <Title text="Modelfile"/>
        <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors/> }>
            <Transition fallback=|| view! { <p class="text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    data.await.map(|p: ModelfilePage| {
                        let m = p.detail.modelfile.clone();
                        let deployed = if m.deployments.is_empty() {
                            "not deployed yet".to_owned()
                        } else {
                            m.deployments.iter().map(|d| format!("v{} on {} (by {}, {})", d.version, d.workload, d.deployed_by, fmt_time(d.deployed_at))).collect::<Vec<_>>().join("; ")
                        };
                        view! {
                            <p class="text-sm"><a href="/modelfiles" class="text-indigo-600 hover:text-indigo-500">"Modelfiles"</a></p>
                            <h1 class="mt-1 font-mono text-2xl font-semibold tracking-tight" data-testid="modelfile-name">{m.name.clone()}</h1>
                            <p class="mt-1 text-sm text-slate-600">
                                {format!("{} · newest v{} · ", m.team.clone().unwrap_or_else(|| "the platform".into()), m.latest)}
                                <span data-testid="deployed">{deployed}</span>
                            </p>
                            {(!m.description.is_empty()).then(|| view! { <p class="mt-1 text-sm text-slate-600">{m.description.clone()}</p> })}
                            <div class="mt-6 grid gap-8 lg:grid-cols-3">
                                <div class="lg:col-span-2">
                                    <Editor page=p.clone() save/>
                                </div>
                                <div class="space-y-6">
                                    {p.can_deploy.then(|| view! { <DeployForm page=p.clone()/> })}
                                    <Drift page=p.clone()/>
                                </div>
                            </div>
                            <History page=p rollback/>
                        }
                    })
                })}
            </Transition>
        </ErrorBoundary>
    }
}

#[component]
fn Editor(page: ModelfilePage, save: ServerAction<SaveModelfile>) -> impl IntoView {
    let text = RwSignal::new(page.detail.current.text.clone());
    let name = page.detail.modelfile.name.clone();
    let id = page.detail.modelfile.id.to_string();
    view! {
        <section class="rounded-xl bg-white p-6 shadow-sm ring-1 ring-slate-200" data-testid="editor">
            <h2 class="font-semibold">{format!("Version {}", page.detail.current.version)}</h2>
            <p class="text-xs text-slate-500">{format!("{} · {} · {}", page.detail.current.author, fmt_time(page.detail.current.created_at), page.detail.current.message)}</p>
            {if page.can_edit {
                view! {
                    <ActionForm action=save attr:class="mt-4 space-y-3">
                        <input type="hidden" name="id" value=id/>
                        <ModelfileEditor text name=Signal::stored(name)/>
                        <label class="block text-sm">
                            <span class="font-medium text-slate-700">"Message"</span>
                            <input name="message" required placeholder="What changed, and why"
                                class="mt-1 block w-full rounded-md border-0 px-3 py-1.5 ring-1 ring-inset ring-slate-300"/>
                        </label>
                        <button type="submit" data-testid="save" class="rounded-md bg-indigo-600 px-4 py-2 text-sm font-medium text-white hover:bg-indigo-500"
                            disabled=move || save.pending().get()>"Save as a new version"</button>
                        <Outcome value=save.value() ok=|v: &ModelfileVersion| format!("saved as version {}", v.version)/>
                    </ActionForm>
                }.into_any()
            } else {
                view! {
                    <div class="mt-4"><ModelfileEditor text name=Signal::stored(name) readonly=true/></div>
                    <p class="mt-2 text-xs text-slate-500">"Read only: the team's members edit it."</p>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn DeployForm(page: ModelfilePage) -> impl IntoView {
    let deploy = ServerAction::<DeployModelfile>::new();
    let id = page.detail.modelfile.id.to_string();
    let versions: Vec<i32> = page.detail.history.iter().map(|v| v.version).collect();
    view! {
        <section class="rounded-xl bg-white p-6 shadow-sm ring-1 ring-slate-200" data-testid="deploy">
            <h2 class="font-semibold">"Deploy"</h2>
            <p class="mt-1 text-sm text-slate-600">"On every pod: the base model is pulled if missing, then Ollama's /api/create runs. The deployed version moves when every pod succeeded."</p>
            <ActionForm action=deploy attr:class="mt-4 space-y-3">
                <input type="hidden" name="id" value=id/>
                <label class="block text-sm">"Version "
                    <select name="version" class="rounded-md border-0 px-2 py-1 ring-1 ring-inset ring-slate-300">
                        {versions.into_iter().map(|v| view! { <option value=v.to_string()>{format!("v{v}")}</option> }).collect_view()}
                    </select>
                </label>
                <label class="block text-sm">"Workload "
                    <select name="workload" class="rounded-md border-0 px-2 py-1 ring-1 ring-inset ring-slate-300">
                        {page.workloads.iter().map(|w| view! { <option value=w.clone()>{w.clone()}</option> }).collect_view()}
                    </select>
                </label>
                <label class="flex items-center gap-2 text-sm"><input type="checkbox" name="in_next_window" value="on"/>"In the next maintenance window"</label>
                <button type="submit" data-testid="deploy-button" class="rounded-md bg-indigo-600 px-4 py-2 text-sm font-medium text-white hover:bg-indigo-500">"Deploy"</button>
                {move || deploy.value().get().map(|r| match r {
                    Ok(o) => view! { <p class="text-sm text-emerald-700" role="status" data-testid="form-ok">"Deploying: "
                        <a href=format!("/operations/{}", o.id) class="text-indigo-600 underline" data-testid="deploy-operation">"follow it on every pod"</a></p> }.into_any(),
                    Err(e) => view! { <p class="text-sm text-rose-700" role="alert" data-testid="form-error">{e.to_string()}</p> }.into_any(),
                })}
            </ActionForm>
        </section>
    }
}

#[component]
fn Drift(page: ModelfilePage) -> impl IntoView {
    let check = ServerAction::<ModelfileDrift>::new();
    let redeploy = ServerAction::<DeployModelfile>::new();
    let id = page.detail.modelfile.id.to_string();
    let form_id = id.clone();
    let can_deploy = page.can_deploy;
    view! {
        <section class="rounded-xl bg-white p-6 shadow-sm ring-1 ring-slate-200" data-testid="drift">
            <h2 class="font-semibold">"Drift"</h2>
            <p class="mt-1 text-sm text-slate-600">"Whether each pod runs the deployed version (system, template, parameters, messages from its /api/show)."</p>
            <ActionForm action=check attr:class="mt-3">
                <input type="hidden" name="id" value=form_id/>
                <button type="submit" data-testid="check-drift" class="rounded-md bg-white px-3 py-1.5 text-sm font-medium ring-1 ring-slate-300 hover:bg-slate-50">"Check the pods"</button>
            </ActionForm>
            {move || check.value().get().map(|r| match r {
                Err(e) => view! { <p class="mt-3 text-sm text-rose-700" role="alert">{e.to_string()}</p> }.into_any(),
                Ok(report) => view! { <DriftTable report id=id.clone() redeploy can_deploy/> }.into_any(),
            })}
        </section>
    }
}

#[component]
fn DriftTable(
    report: DriftReport,
    id: String,
    redeploy: ServerAction<DeployModelfile>,
    can_deploy: bool,
) -> impl IntoView {
    let Some(version) = report.version else {
        return view! { <p class="mt-3 text-sm text-slate-600" data-testid="drift-state">{format!("Not deployed to {} yet: nothing to compare.", report.workload)}</p> }.into_any();
    };
    let drifted = report.drifted();
    let summary = if drifted {
        format!(
            "Drift: some pods of {} do not run v{version}.",
            report.workload
        )
    } else {
        format!("In sync: every pod of {} runs v{version}.", report.workload)
    };
    view! {
        <p class=if drifted { "mt-3 text-sm font-medium text-rose-700" } else { "mt-3 text-sm font-medium text-emerald-700" }
            data-testid="drift-state" data-drifted=drifted.to_string()>{summary}</p>
        <ul class="mt-2 space-y-1 text-sm">
            {report.pods.iter().map(|p| {
                let state = match p.state { DriftState::InSync => "in sync", DriftState::Drifted => "drifted", DriftState::Missing => "missing", DriftState::Unreachable => "unreachable" };
                view! { <li data-testid="pod-drift"><span class="font-mono">{p.pod.clone()}</span>{format!(": {state}")}
                    {(!p.differences.is_empty()).then(|| view! { <ul class="ml-4 list-disc text-xs text-slate-600">{p.differences.iter().map(|d| view! { <li>{d.clone()}</li> }).collect_view()}</ul> })}
                </li> }
            }).collect_view()}
        </ul>
        {(drifted && can_deploy).then(|| view! {
            <ActionForm action=redeploy attr:class="mt-3">
                <input type="hidden" name="id" value=id/>
                <input type="hidden" name="version" value=version.to_string()/>
                <input type="hidden" name="workload" value=report.workload.clone()/>
                <button type="submit" data-testid="redeploy" class="rounded-md bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-indigo-500">{format!("Redeploy v{version}")}</button>
                <Outcome value=redeploy.value() ok=|o: &Operation| format!("redeploying: operation {}", o.id)/>
            </ActionForm>
        })}
    }.into_any()
}

#[component]
fn History(page: ModelfilePage, rollback: ServerAction<RollbackModelfile>) -> impl IntoView {
    let diff = ServerAction::<ModelfileDiff>::new();
    let id = page.detail.modelfile.id.to_string();
    let latest = page.detail.modelfile.latest;
    let can_edit = page.can_edit;
    let history = page.detail.history.clone();
    let from_default = (latest - 1).max(1);
    view! {
        <section class="mt-8 rounded-xl bg-white p-6 shadow-sm ring-1 ring-slate-200" data-testid="history">
            <h2 class="font-semibold">"History"</h2>
            <ActionForm action=diff attr:class="mt-3">
                <input type="hidden" name="id" value=id.clone()/>
                <table class="w-full text-sm">
                    <thead class="text-left text-xs uppercase tracking-wide text-slate-500">
                        <tr><th class="py-1">"Old"</th><th class="py-1">"New"</th><th class="py-1">"Version"</th><th class="py-1">"Message"</th><th class="py-1">"By"</th><th class="py-1">"When"</th><th></th></tr>
                    </thead>
                    <tbody class="divide-y divide-slate-100">
                        {history.into_iter().map(|v| {
                            let n = v.version;
                            let id = id.clone();
                            view! {
                                <tr data-testid=format!("version-{n}")>
                                    <td class="py-1"><input type="radio" name="from" value=n.to_string() checked=n == from_default aria-label=format!("compare from v{n}")/></td>
                                    <td class="py-1"><input type="radio" name="to" value=n.to_string() checked=n == latest aria-label=format!("compare to v{n}")/></td>
                                    <td class="py-1">{format!("v{n}")}{v.restores.map(|r| format!(" (= v{r})"))}</td>
                                    <td class="py-1">{v.message.clone()}</td>
                                    <td class="py-1">{v.author.clone()}</td>
                                    <td class="py-1 text-xs text-slate-500">{fmt_time(v.created_at)}</td>
                                    <td class="py-1 text-right">{(can_edit && n != latest).then(|| view! {
                                        <button type="button" data-testid=format!("rollback-{n}")
                                            class="rounded bg-white px-2 py-0.5 text-xs ring-1 ring-slate-300 hover:bg-slate-50"
                                            on:click=move |_| { rollback.dispatch(RollbackModelfile { id: id.clone(), version: n }); }>
                                            {format!("Roll back to v{n}")}</button>
                                    })}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
                <button type="submit" data-testid="compare" class="mt-3 rounded-md bg-white px-3 py-1.5 text-sm font-medium ring-1 ring-slate-300 hover:bg-slate-50">"Compare"</button>
            </ActionForm>
            <Outcome value=rollback.value() ok=|v: &ModelfileVersion| format!("version {} restores version {}", v.version, v.restores.unwrap_or_default())/>
            {move || diff.value().get().map(|r| match r {
                Err(e) => view! { <p class="mt-3 text-sm text-rose-700" role="alert">{e.to_string()}</p> }.into_any(),
                Ok(d) => view! { <SideBySide diff=d/> }.into_any(),
            })}
        </section>
    }
}

/// Removed lines on the left, added on the right, unchanged on both.
#[component]
fn SideBySide(diff: VersionDiff) -> impl IntoView {
    let rows = pair(&diff.lines);
    let changed = diff
        .lines
        .iter()
        .filter(|l| l.change != Change::Same)
        .count();
    view! {
        <p class="mt-4 text-sm text-slate-600" data-testid="diff-summary">{format!("v{} → v{}: {changed} line(s) changed", diff.from, diff.to)}</p>
        <table class="mt-2 w-full table-fixed font-mono text-xs" data-testid="diff">
            <thead class="text-left text-slate-500"><tr><th class="w-10"></th><th>{format!("v{}", diff.from)}</th><th class="w-10"></th><th>{format!("v{}", diff.to)}</th></tr></thead>
            <tbody>
                {rows.into_iter().map(|(l, r)| {
                    let cell = |side: Option<DiffLine>, tone: &'static str| match side {
                        Some(x) => {
                            let n = x.old.or(x.new).map(|n| n.to_string()).unwrap_or_default();
                            let class = if x.change == Change::Same { "" } else { tone };
                            let mark = match x.change { Change::Removed => "removed", Change::Added => "added", Change::Same => "same" };
                            view! { <td class="pr-2 text-right text-slate-400">{n}</td><td class=format!("whitespace-pre-wrap break-all {class}") data-change=mark>{x.text}</td> }.into_any()
                        }
                        None => view! { <td></td><td class="bg-slate-50"></td> }.into_any(),
                    };
                    view! { <tr>{cell(l, "bg-rose-50 text-rose-900")}{cell(r, "bg-emerald-50 text-emerald-900")}</tr> }
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// Rows of a side-by-side view: unchanged lines on both sides, a run of
/// removed lines beside the run of added lines that follows it.
fn pair(lines: &[DiffLine]) -> Vec<(Option<DiffLine>, Option<DiffLine>)> {
    let mut rows = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].change == Change::Same {
            rows.push((Some(lines[i].clone()), Some(lines[i].clone())));
            i += 1;
            continue;
        }
        let removed: Vec<DiffLine> = lines[i..]
            .iter()
            .take_while(|l| l.change == Change::Removed)
            .cloned()
            .collect();
        i += removed.len();
        let added: Vec<DiffLine> = lines[i..]
            .iter()
            .take_while(|l| l.change == Change::Added)
            .cloned()
            .collect();
        i += added.len();
        for k in 0..removed.len().max(added.len()) {
            rows.push((removed.get(k).cloned(), added.get(k).cloned()));
        }
    }
    rows
}
