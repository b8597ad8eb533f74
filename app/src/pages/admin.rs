//! The admin console: teams, users and the audit log. Non-admins get 403
//! from the domain and never see links here.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::{
    AdminAddMember, AdminCreateTeam, AdminRemoveMember, AdminUpdateTeam, admin_audit, admin_teams,
    admin_users, get_team_detail,
};
use crate::components::admin_nav::AdminNav;
use crate::components::form::{Field, Outcome, fmt_time};
use crate::components::policy::PolicyEditor;
use crate::components::{error::ErrorPanel, role_badge::RoleBadge};
use crate::model::{AuditFilter, MembershipSource};

#[component]
pub fn AdminTeamsPage() -> impl IntoView {
    let create = ServerAction::<AdminCreateTeam>::new();
    let teams = Resource::new(move || create.version().get(), |_| admin_teams(None));
    view! {
        <Title text="Teams · Admin"/>
        <AdminNav/>
        <div class="mt-6 grid gap-8 lg:grid-cols-3">
            <div class="lg:col-span-2">
                <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors/> }>
                    <Transition fallback=|| view! { <p class="text-slate-500">"Loading…"</p> }>
                        {move || Suspend::new(async move {
                            teams.await.map(|page| view! {
                                <table class="w-full overflow-hidden rounded-lg bg-white text-sm shadow-sm ring-1 ring-slate-200" data-testid="admin-teams">
                                    <thead class="bg-slate-50 text-left text-xs uppercase tracking-wide text-slate-500">
                                        <tr><th class="px-4 py-2">"Team"</th><th class="px-4 py-2">"IdP group"</th><th class="px-4 py-2 text-right">"Members"</th><th></th></tr>
                                    </thead>
                                    <tbody class="divide-y divide-slate-100">
                                        {page.items.into_iter().map(|t| view! {
                                            <tr data-testid=format!("admin-team-{}", t.slug)>
                                                <td class="px-4 py-2"><span class="font-medium">{t.name}</span><span class="block font-mono text-xs text-slate-500">{t.slug.clone()}</span></td>
                                                <td class="px-4 py-2 font-mono text-xs">{t.idp_group.unwrap_or_else(|| "—".into())}</td>
                                                <td class="px-4 py-2 text-right tabular-nums">{t.member_count}</td>
                                                <td class="px-4 py-2 text-right"><A href=format!("/admin/teams/{}", t.slug) attr:class="text-indigo-600 hover:text-indigo-500">"Edit"</A></td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            })
                        })}
                    </Transition>
                </ErrorBoundary>
            </div>
            <section class="rounded-xl bg-white p-6 shadow-sm ring-1 ring-slate-200">
                <h2 class="font-semibold">"Create a team"</h2>
                <p class="mt-1 text-xs text-slate-500">"For teams your identity provider does not know. Teams from IdP groups appear by themselves at sign-in."</p>
                <ActionForm action=create attr:class="mt-4 space-y-3">
                    <Field label="Slug" name="team[slug]" hint="lowercase letters, digits, hyphens" required=true/>
                    <Field label="Name" name="team[name]" hint="" required=true/>
                    <Field label="Description" name="team[description]" hint="optional" required=false/>
                    <Field label="IdP group" name="team[idp_group]" hint="optional, e.g. /team-c" required=false/>
                    <button type="submit" data-testid="create-team" class="rounded-md bg-indigo-600 px-4 py-2 text-sm font-medium text-white hover:bg-indigo-500" disabled=move || create.pending().get()>
                        "Create team"
                    </button>
                    <Outcome value=create.value() ok=|t| format!("Created {}", t.slug)/>
                </ActionForm>
            </section>
        </div>
    }
}

#[component]
pub fn AdminTeamPage() -> impl IntoView {
    let params = use_params_map();
    let slug = move || params.with(|p| p.get("slug").unwrap_or_default());
    let update = ServerAction::<AdminUpdateTeam>::new();
    let add = ServerAction::<AdminAddMember>::new();
    let remove = ServerAction::<AdminRemoveMember>::new();
    let team = Resource::new(
        move || {
            (
                slug(),
                update.version().get(),
                add.version().get(),
                remove.version().get(),
            )
        },
        |(s, ..)| get_team_detail(s),
    );
    view! {
        <Title text="Edit team · Admin"/>
        <AdminNav/>
        <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors/> }>
            <Suspense fallback=|| view! { <p class="mt-6 text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    team.await.map(|d| {
                        let slug = d.team.slug.clone();
                        view! {
                        <section class="mt-6 max-w-xl rounded-xl bg-white p-6 shadow-sm ring-1 ring-slate-200">
                            <h1 class="text-lg font-semibold">"Edit " <span class="font-mono">{d.team.slug.clone()}</span></h1>
                            <ActionForm action=update attr:class="mt-4 space-y-3">
                                <input type="hidden" name="slug" value=d.team.slug.clone()/>
                                <Field label="Name" name="patch[name]" hint="" required=true value=d.team.name.clone()/>
                                <Field label="Description" name="patch[description]" hint="" required=false value=d.team.description.clone()/>
                                <button type="submit" data-testid="save-team" class="rounded-md bg-indigo-600 px-4 py-2 text-sm font-medium text-white hover:bg-indigo-500">"Save"</button>
                                <Outcome value=update.value() ok=|t| format!("Saved {}", t.name)/>
                            </ActionForm>
                        </section>
                        <MembersEditor slug=slug.clone() members=d.members add remove/>
                        <PolicyEditor slug/>
                    }})
                })}
            </Suspense>
        </ErrorBoundary>
    }
}

/// A team's members, with removal for hand-added ones and a form to add more.
#[component]
fn MembersEditor(
    slug: String,
    members: Vec<crate::model::Member>,
    add: ServerAction<AdminAddMember>,
    remove: ServerAction<AdminRemoveMember>,
) -> impl IntoView {
    view! {
                        <section class="mt-6 max-w-xl rounded-xl bg-white p-6 shadow-sm ring-1 ring-slate-200">
                            <h2 class="font-semibold">"Members"</h2>
                            <p class="mt-1 text-xs text-slate-500">
                                "Members from the identity provider are managed there and refreshed at each sign-in; people added here stay until removed here."
                            </p>
                            <table class="mt-3 w-full text-sm" data-testid="admin-members">
                                <tbody class="divide-y divide-slate-100">
                                    {members.into_iter().map(|m| {
                                        let slug = slug.clone();
                                        let username = m.username.clone();
                                        view! {
                                            <tr data-testid=format!("admin-member-{}", m.username)>
                                                <td class="py-1.5">{m.display_name.clone()} <span class="text-xs text-slate-500">"@" {m.username.clone()}</span></td>
                                                <td class="py-1.5"><RoleBadge role=m.role/></td>
                                                <td class="py-1.5 text-right">
                                                    {match m.source {
                                                        MembershipSource::Idp => view! { <span class="text-xs text-slate-500">"from the IdP"</span> }.into_any(),
                                                        MembershipSource::Manual => view! {
                                                            <ActionForm action=remove>
                                                                <input type="hidden" name="slug" value=slug/>
                                                                <input type="hidden" name="username" value=username/>
                                                                <button type="submit" class="text-xs text-rose-600 hover:text-rose-500" data-testid="remove-member">"Remove"</button>
                                                            </ActionForm>
                                                        }.into_any(),
                                                    }}
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                            <ActionForm action=add attr:class="mt-4 flex flex-wrap items-end gap-3">
                                <input type="hidden" name="slug" value=slug.clone()/>
                                <label class="text-sm">"Username"
                                    <input name="member[username]" required class="ml-1 rounded-md px-2 py-1 ring-1 ring-slate-300"/>
                                </label>
                                <label class="text-sm">"Role"
                                    <select name="member[role]" class="ml-1 rounded-md px-2 py-1 ring-1 ring-slate-300">
                                        <option value="member">"member"</option>
                                        <option value="owner">"owner"</option>
                                    </select>
                                </label>
                                <button type="submit" data-testid="add-member" class="rounded-md bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-indigo-500">"Add"</button>
                            </ActionForm>
                            <Outcome value=add.value() ok=|m| format!("Added {}", m.username)/>
                            <Outcome value=remove.value() ok=|_| "Removed".to_owned()/>
                        </section>
    }
}

#[component]
pub fn AdminUsersPage() -> impl IntoView {
    let users = Resource::new(|| (), |_| admin_users());
    view! {
        <Title text="Users · Admin"/>
        <AdminNav/>
        <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors/> }>
            <Suspense fallback=|| view! { <p class="mt-6 text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    users.await.map(|users| view! {
                        <table class="mt-6 w-full overflow-hidden rounded-lg bg-white text-sm shadow-sm ring-1 ring-slate-200" data-testid="admin-users">
                            <thead class="bg-slate-50 text-left text-xs uppercase tracking-wide text-slate-500">
                                <tr><th class="px-4 py-2">"User"</th><th class="px-4 py-2">"Email"</th><th class="px-4 py-2">"Admin"</th><th class="px-4 py-2 text-right">"Teams"</th><th class="px-4 py-2">"Last sign-in"</th></tr>
                            </thead>
                            <tbody class="divide-y divide-slate-100">
                                {users.into_iter().map(|(u, teams)| view! {
                                    <tr data-testid=format!("user-{}", u.username)>
                                        <td class="px-4 py-2"><span class="font-medium">{u.display_name}</span><span class="block text-xs text-slate-500">{u.username.clone()}</span></td>
                                        <td class="px-4 py-2">{u.email.unwrap_or_default()}</td>
                                        <td class="px-4 py-2">{if u.is_admin { "yes" } else { "" }}</td>
                                        <td class="px-4 py-2 text-right tabular-nums">{teams}</td>
                                        <td class="px-4 py-2 text-xs text-slate-500">{u.last_sign_in_at.map(fmt_time).unwrap_or_default()}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    })
                })}
            </Suspense>
        </ErrorBoundary>
    }
}

#[component]
pub fn AdminAuditPage() -> impl IntoView {
    let query = use_query_map();
    let args = move || {
        query.with(|q| {
            (
                AuditFilter {
                    actor: q.get("actor").filter(|s| !s.is_empty()),
                    action: q.get("action").filter(|s| !s.is_empty()),
                    team: q.get("team").filter(|s| !s.is_empty()),
                },
                q.get("cursor").filter(|s| !s.is_empty()),
            )
        })
    };
    let entries = Resource::new(args, |(f, c)| admin_audit(f, c));
    let value = move |k: &str| query.with(|q| q.get(k).unwrap_or_default());
    view! {
        <Title text="Audit log · Admin"/>
        <AdminNav/>
        <form method="get" action="/admin/audit" class="mt-6 flex flex-wrap items-end gap-3 text-sm" data-testid="audit-filter">
            <label>"Actor" <input name="actor" value=move || value("actor") placeholder="username" class="ml-1 rounded-md px-2 py-1 ring-1 ring-slate-300"/></label>
            <label>"Action" <input name="action" value=move || value("action") placeholder="e.g. membership." class="ml-1 rounded-md px-2 py-1 ring-1 ring-slate-300"/></label>
            <label>"Team" <input name="team" value=move || value("team") placeholder="slug" class="ml-1 rounded-md px-2 py-1 ring-1 ring-slate-300"/></label>
            <button type="submit" class="rounded-md bg-slate-900 px-3 py-1.5 text-white">"Filter"</button>
        </form>
        <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors/> }>
            <Transition fallback=|| view! { <p class="mt-6 text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    entries.await.map(|page| {
                        let next = page.next_cursor.clone().map(|c| {
                            let (f, _) = args();
                            format!(
                                "/admin/audit?actor={}&action={}&team={}&cursor={c}",
                                f.actor.unwrap_or_default(), f.action.unwrap_or_default(), f.team.unwrap_or_default()
                            )
                        });
                        view! {
                            <table class="mt-4 w-full overflow-hidden rounded-lg bg-white text-sm shadow-sm ring-1 ring-slate-200" data-testid="audit-log">
                                <thead class="bg-slate-50 text-left text-xs uppercase tracking-wide text-slate-500">
                                    <tr><th class="px-3 py-2">"When"</th><th class="px-3 py-2">"Who"</th><th class="px-3 py-2">"Action"</th><th class="px-3 py-2">"Target"</th><th class="px-3 py-2">"Change"</th></tr>
                                </thead>
                                <tbody class="divide-y divide-slate-100">
                                    {page.items.into_iter().map(|e| view! {
                                        <tr data-testid="audit-entry">
                                            <td class="px-3 py-2 whitespace-nowrap text-xs text-slate-500">{fmt_time(e.at)}</td>
                                            <td class="px-3 py-2">{e.actor}</td>
                                            <td class="px-3 py-2 font-mono text-xs">{e.action}</td>
                                            <td class="px-3 py-2 font-mono text-xs">{e.target_kind} ":" {e.target_id}</td>
                                            <td class="px-3 py-2 font-mono text-xs text-slate-600">
                                                {e.before.map(|b| view! { <div>"before " {b.to_string()}</div> })}
                                                {e.after.map(|a| view! { <div>"after " {a.to_string()}</div> })}
                                            </td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                            {next.map(|href| view! { <a href=href class="mt-3 inline-block text-sm text-indigo-600" data-testid="audit-older">"Older entries →"</a> })}
                        }
                    })
                })}
            </Transition>
        </ErrorBoundary>
    }
}
