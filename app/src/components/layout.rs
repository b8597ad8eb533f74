//! The frame around every page: header, navigation, profile banner, footer.

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_location;

use crate::api::{get_about, whoami};
use crate::model::{Profile, User};

/// Navigation entries for who is looking: only pages that exist and that
/// this person may open.
fn nav_for(user: Option<&User>) -> Vec<(&'static str, &'static str)> {
    let mut nav = vec![("/", "Home")];
    if let Some(u) = user {
        nav.push(("/teams", "My teams"));
        nav.push(("/modelfiles", "Modelfiles"));
        nav.push(("/cluster", "Cluster"));
        if u.is_admin {
            nav.push(("/admin/teams", "Admin"));
        }
    }
    nav.push(("/status", "Status"));
    nav
}

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    let about = Resource::new(|| (), |_| get_about());
    let user = Resource::new(|| (), |_| whoami());

    view! {
        <div class="min-h-full flex flex-col">
            <header class="bg-slate-900 text-white">
                <div class="mx-auto max-w-6xl px-6 h-16 flex items-center gap-8">
                    <a href="/" class="flex items-center gap-2 font-semibold tracking-tight text-lg">
                        <img src="/favicon.svg" alt="" class="h-7 w-7"/>
                        "Corral"
                    </a>
                    <Transition fallback=|| ()>
                        {move || Suspend::new(async move {
                            let me = user.await.ok().flatten();
                            let nav = nav_for(me.as_ref());
                            view! {
                                <nav aria-label="Main" class="flex items-center gap-1 text-sm">
                                    {nav.into_iter().map(|(href, label)| view! { <NavLink href=href label=label/> }).collect_view()}
                                    <a href="/api/docs" rel="external" class="rounded-md px-3 py-2 text-slate-300 hover:bg-slate-800 hover:text-white">"API"</a>
                                </nav>
                                <div class="ml-auto flex items-center gap-4 text-xs">
                                    {move || Suspend::new(async move {
                                        about.await.ok().map(|a| view! { <ProfileBadge profile=a.profile version=a.version/> })
                                    })}
                                    {match me {
                                        Some(u) => view! {
                                            <span class="text-slate-300" data-testid="signed-in-as">{u.display_name}</span>
                                            <form method="post" action="/auth/logout">
                                                <button type="submit" data-testid="sign-out" class="rounded-md px-3 py-1.5 text-slate-300 ring-1 ring-slate-700 hover:bg-slate-800 hover:text-white">"Sign out"</button>
                                            </form>
                                        }.into_any(),
                                        None => view! {
                                            <a href="/signin" data-testid="sign-in" class="rounded-md bg-white/10 px-3 py-1.5 font-medium text-white hover:bg-white/20">"Sign in"</a>
                                        }.into_any(),
                                    }}
                                </div>
                            }
                        })}
                    </Transition>
                </div>
            </header>
            <main class="flex-1">
                <div class="mx-auto max-w-6xl px-6 py-10">{children()}</div>
            </main>
            <footer class="border-t border-slate-200 text-xs text-slate-500">
                <div class="mx-auto max-w-6xl px-6 py-4 flex justify-between">
                    <span>"Corral — Ollama as team infrastructure"</span>
                    <a class="hover:text-slate-700" href="/status">"System status"</a>
                </div>
            </footer>
        </div>
    }
}

#[component]
fn NavLink(href: &'static str, label: &'static str) -> impl IntoView {
    let location = use_location();
    let active = move || {
        let path = location.pathname.get();
        if href == "/" {
            path == "/"
        } else {
            path.starts_with(href)
        }
    };
    view! {
        <A
            href=href
            attr:class=move || {
                if active() {
                    "rounded-md px-3 py-2 bg-slate-800 text-white font-medium"
                } else {
                    "rounded-md px-3 py-2 text-slate-300 hover:bg-slate-800 hover:text-white"
                }
            }
        >
            {label}
        </A>
    }
}

#[component]
fn ProfileBadge(profile: Profile, version: String) -> impl IntoView {
    let (class, text) = match profile {
        Profile::Local => (
            "rounded-full bg-amber-400/15 text-amber-300 ring-1 ring-amber-400/40 px-3 py-1 font-medium",
            "Local development",
        ),
        Profile::Production => (
            "rounded-full bg-emerald-400/10 text-emerald-300 ring-1 ring-emerald-400/30 px-3 py-1 font-medium",
            "Production",
        ),
    };
    view! {
        <span class="flex items-center gap-3">
            <span class=class data-testid="profile-badge">{text}</span>
            <span class="text-slate-400">"v" {version}</span>
        </span>
    }
}
