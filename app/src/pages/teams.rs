//! "My teams": the caller's teams with their members and roles.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::{get_team_detail, my_teams};
use crate::components::{error::ErrorPanel, role_badge::RoleBadge};
use crate::model::{MembershipSource, TeamDetail};

#[component]
pub fn TeamsPage() -> impl IntoView {
    let teams = Resource::new(|| (), |_| my_teams());
    view! {
        <Title text="My teams"/>
        <h1 class="text-2xl font-semibold tracking-tight">"My teams"</h1>
        <p class="mt-1 text-sm text-slate-600">"Teams come from your identity provider's groups and are refreshed every time you sign in."</p>
        <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors/> }>
            <Suspense fallback=|| view! { <p class="mt-6 text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    teams.await.map(|teams| {
                        if teams.is_empty() {
                            view! { <p class="mt-8 text-slate-600" data-testid="no-teams">"You are not in any team yet. Ask your identity provider's admin to add you to a group."</p> }.into_any()
                        } else {
                            view! {
                                <div class="mt-8 grid gap-6 md:grid-cols-2">
                                    {teams.into_iter().map(|(mine, detail)| view! {
                                        <TeamCard detail my_role=Some(mine.role)/>
                                    }).collect_view()}
                                </div>
                            }.into_any()
                        }
                    })
                })}
            </Suspense>
        </ErrorBoundary>
    }
}

#[component]
pub fn TeamPage() -> impl IntoView {
    let params = use_params_map();
    let team = Resource::new(
        move || params.with(|p| p.get("slug").unwrap_or_default()),
        get_team_detail,
    );
    view! {
        <Title text="Team"/>
        <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors/> }>
            <Suspense fallback=|| view! { <p class="text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move { team.await.map(|detail| view! { <TeamCard detail my_role=None/> }) })}
            </Suspense>
        </ErrorBoundary>
    }
}

#[component]
fn TeamCard(detail: TeamDetail, my_role: Option<crate::model::TeamRole>) -> impl IntoView {
    let t = detail.team;
    view! {
        <section class="rounded-xl bg-white p-6 shadow-sm ring-1 ring-slate-200" data-testid=format!("team-{}", t.slug)>
            <div class="flex items-start justify-between gap-4">
                <div>
                    <h2 class="text-lg font-semibold"><a href=format!("/teams/{}", t.slug) class="hover:text-indigo-600">{t.name.clone()}</a></h2>
                    <p class="text-xs text-slate-500 font-mono">{t.slug.clone()} {t.idp_group.clone().map(|g| format!(" · IdP group {g}"))}</p>
                </div>
                {my_role.map(|r| view! { <span class="text-xs text-slate-500">"You: " <RoleBadge role=r/></span> })}
            </div>
            <nav class="mt-2 flex gap-4 text-sm" aria-label=format!("{} pages", t.slug)>
                <a href=format!("/teams/{}/keys", t.slug) class="text-indigo-600 hover:text-indigo-500" data-testid="team-keys-link">"API keys"</a>
                <a href=format!("/teams/{}/usage", t.slug) class="text-indigo-600 hover:text-indigo-500">"Usage"</a>
            </nav>
            {(!t.description.is_empty()).then(|| view! { <p class="mt-3 text-sm text-slate-600">{t.description.clone()}</p> })}
            <table class="mt-4 w-full text-sm">
                <thead class="text-left text-xs uppercase tracking-wide text-slate-500">
                    <tr><th class="py-1">"Member"</th><th class="py-1">"Role"</th><th class="py-1">"Via"</th></tr>
                </thead>
                <tbody class="divide-y divide-slate-100">
                    {detail.members.into_iter().map(|m| view! {
                        <tr data-testid=format!("member-{}", m.username)>
                            <td class="py-1.5">{m.display_name} <span class="text-xs text-slate-500">" @" {m.username.clone()}</span></td>
                            <td class="py-1.5"><RoleBadge role=m.role/></td>
                            <td class="py-1.5 text-xs text-slate-500">{match m.source { MembershipSource::Idp => "identity provider", MembershipSource::Manual => "added in Corral" }}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}
