//! The Modelfiles list: every Modelfile the viewer may see with the version
//! each workload runs, a new Modelfile (with the live-checked editor), and
//! an import of a model already on the pods.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{CreateModelfile, ImportFromPods, ModelfilesView, list_modelfiles};
use crate::components::error::ErrorPanel;
use crate::components::form::{Field, Outcome, fmt_time};
use crate::components::modelfile_editor::ModelfileEditor;
use crate::model::{Modelfile, ModelfileDetail};

/// What a new Modelfile starts from.
const STARTER: &str = "FROM llama3.2\n\nSYSTEM \"\"\"You are a helpful assistant.\"\"\"\n\nPARAMETER temperature 0.7\n";

#[component]
pub fn ModelfilesPage() -> impl IntoView {
    let create = ServerAction::<CreateModelfile>::new();
    let import = ServerAction::<ImportFromPods>::new();
    // Loaded once: a created or imported Modelfile opens its own page, and
    // a refused one must leave the form (and its draft) as it is.
    let data = Resource::new(|| (), |_| list_modelfiles());
    // A created or imported Modelfile opens its page.
    let navigate = leptos_router::hooks::use_navigate();
    Effect::new(move |_| {
        let done = create.value().get().or_else(|| import.value().get());
        if let Some(Ok(d)) = done {
            navigate(
                &format!("/modelfiles/{}", d.modelfile.id),
                Default::default(),
            );
        }
    });
    view! {
        <Title text="Modelfiles"/>
        <h1 class="text-2xl font-semibold tracking-tight">"Modelfiles"</h1>
        <p class="mt-1 text-sm text-slate-600">"Custom models as versioned Modelfiles: checked as Ollama checks them, deployed to every pod, watched for drift."</p>
        <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors/> }>
            <Transition fallback=|| view! { <p class="mt-6 text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    data.await.map(|v: ModelfilesView| {
                        let can_create = v.admin || !v.teams.is_empty();
                        view! {
                            <List items=v.items.clone()/>
                            {can_create.then(|| view! {
                                <div class="mt-8 grid gap-8 lg:grid-cols-3">
                                    <div class="lg:col-span-2"><NewModelfile create teams=v.teams.clone() admin=v.admin/></div>
                                    <Import import teams=v.teams.clone() admin=v.admin/>
                                </div>
                            })}
                        }
                    })
                })}
            </Transition>
        </ErrorBoundary>
    }
}

#[component]
fn List(items: Vec<Modelfile>) -> impl IntoView {
    view! {
        <table class="mt-6 w-full overflow-hidden rounded-lg bg-white text-sm shadow-sm ring-1 ring-slate-200" data-testid="modelfiles">
            <thead class="bg-slate-50 text-left text-xs uppercase tracking-wide text-slate-500">
                <tr><th class="px-4 py-2">"Model"</th><th class="px-4 py-2">"Team"</th><th class="px-4 py-2">"Newest"</th><th class="px-4 py-2">"Deployed"</th><th class="px-4 py-2">"Changed"</th></tr>
            </thead>
            <tbody class="divide-y divide-slate-100">
                {items.is_empty().then(|| view! { <tr><td colspan="5" class="px-4 py-3 text-slate-500">"No Modelfiles yet."</td></tr> })}
                {items.into_iter().map(|m| {
                    let deployed = if m.deployments.is_empty() {
                        "not deployed".to_owned()
                    } else {
                        m.deployments.iter().map(|d| format!("v{} on {}", d.version, d.workload)).collect::<Vec<_>>().join(", ")
                    };
                    view! {
                        <tr>
                            <td class="px-4 py-2"><a href=format!("/modelfiles/{}", m.id) class="font-mono text-indigo-600 hover:text-indigo-500">{m.name.clone()}</a>
                                {(!m.description.is_empty()).then(|| view! { <p class="text-xs text-slate-500">{m.description.clone()}</p> })}</td>
                            <td class="px-4 py-2">{m.team.clone().unwrap_or_else(|| "the platform".into())}</td>
                            <td class="px-4 py-2">{format!("v{}", m.latest)}</td>
                            <td class="px-4 py-2">{deployed}</td>
                            <td class="px-4 py-2 text-xs text-slate-500">{fmt_time(m.updated_at)}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// The team select: the viewer's teams, and the platform for admins.
#[component]
fn TeamSelect(teams: Vec<String>, admin: bool, team: RwSignal<String>) -> impl IntoView {
    view! {
        <label class="block text-sm">
            <span class="font-medium text-slate-700">"Team"</span>
            <select name="team" class="mt-1 block w-full rounded-md border-0 px-2 py-1.5 ring-1 ring-inset ring-slate-300"
                on:change=move |ev| team.set(event_target_value(&ev))>
                {teams.into_iter().map(|t| view! { <option value=t.clone()>{t.clone()}</option> }).collect_view()}
                {admin.then(|| view! { <option value="">"the platform"</option> })}
            </select>
        </label>
    }
}

#[component]
fn NewModelfile(
    create: ServerAction<CreateModelfile>,
    teams: Vec<String>,
    admin: bool,
) -> impl IntoView {
    let team = RwSignal::new(teams.first().cloned().unwrap_or_default());
    let name = RwSignal::new(String::new());
    let text = RwSignal::new(STARTER.to_owned());
    let full_name = Signal::derive(move || {
        let (t, n) = (team.get(), name.get());
        match (t.is_empty(), n.trim().is_empty()) {
            (_, true) => String::new(),
            (true, false) => n.trim().to_owned(),
            (false, false) if n.trim().starts_with(&format!("{t}/")) => n.trim().to_owned(),
            (false, false) => format!("{t}/{}", n.trim()),
        }
    });
    view! {
        <section class="rounded-xl bg-white p-6 shadow-sm ring-1 ring-slate-200" data-testid="new-modelfile">
            <h2 class="font-semibold">"New Modelfile"</h2>
            <ActionForm action=create attr:class="mt-4 space-y-4">
                <div class="grid gap-4 sm:grid-cols-2">
                    <TeamSelect teams admin team/>
                    <label class="block text-sm">
                        <span class="font-medium text-slate-700">"Model name"</span>
                        <input name="name" required placeholder="reviewer" on:input=move |ev| name.set(event_target_value(&ev))
                            class="mt-1 block w-full rounded-md border-0 px-3 py-1.5 font-mono ring-1 ring-inset ring-slate-300"/>
                        <span class="text-xs text-slate-500">{move || {
                            let n = full_name.get();
                            if n.is_empty() { "A team's models are named team/name, so no team overwrites another's.".to_owned() } else { format!("Creates {n}") }
                        }}</span>
                    </label>
                </div>
                <Field label="Description" name="description" hint="optional" required=false/>
                <ModelfileEditor text name=full_name/>
                <Field label="Message" name="message" hint="what this version is for" required=true value="First version".to_owned()/>
                <button type="submit" class="rounded-md bg-indigo-600 px-4 py-2 text-sm font-medium text-white hover:bg-indigo-500">"Create"</button>
                <Outcome value=create.value() ok=|d: &ModelfileDetail| format!("{} created (v1)", d.modelfile.name)/>
            </ActionForm>
        </section>
    }
}

#[component]
fn Import(import: ServerAction<ImportFromPods>, teams: Vec<String>, admin: bool) -> impl IntoView {
    let team = RwSignal::new(teams.first().cloned().unwrap_or_default());
    view! {
        <section class="rounded-xl bg-white p-6 shadow-sm ring-1 ring-slate-200" data-testid="import-modelfile">
            <h2 class="font-semibold">"Import from the pods"</h2>
            <p class="mt-1 text-sm text-slate-600">"A model already on the pods becomes a Modelfile (version 1), read from its /api/show."</p>
            <ActionForm action=import attr:class="mt-4 space-y-4">
                <Field label="Model on the pods" name="model" hint="e.g. llama3.2" required=true/>
                <TeamSelect teams admin team/>
                <Field label="Name" name="name" hint="optional: defaults to team/model" required=false/>
                <button type="submit" class="rounded-md bg-white px-4 py-2 text-sm font-medium ring-1 ring-slate-300 hover:bg-slate-50">"Import"</button>
                <Outcome value=import.value() ok=|d: &ModelfileDetail| format!("{} imported", d.modelfile.name)/>
            </ActionForm>
        </section>
    }
}
