//! The sign-in page: the identity provider, and under the `local` profile a
//! clearly labelled development sign-in.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::get_sign_in_options;
use crate::components::error::ErrorPanel;

#[component]
pub fn SignInPage() -> impl IntoView {
    let query = use_query_map();
    let next = move || {
        query
            .with(|q| q.get("next"))
            .unwrap_or_else(|| "/teams".into())
    };
    let signed_out = move || query.with(|q| q.get("signed_out").is_some());
    let options = Resource::new(|| (), |_| get_sign_in_options());

    view! {
        <Title text="Sign in"/>
        <div class="mx-auto max-w-md">
            <h1 class="text-2xl font-semibold tracking-tight">"Sign in to Corral"</h1>
            <Show when=signed_out>
                <p class="mt-4 rounded-md bg-emerald-50 px-4 py-3 text-sm text-emerald-800 ring-1 ring-emerald-600/20" data-testid="signed-out">
                    "You have been signed out."
                </p>
            </Show>
            <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors/> }>
                <Suspense fallback=|| view! { <p class="mt-6 text-slate-500">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        options.await.map(|o| {
                            let idp = o.oidc.then(|| view! {
                                <a
                                    rel="external"
                                    href=format!("/auth/login?next={}", urlencode(&next()))
                                    data-testid="idp-sign-in"
                                    class="mt-6 flex w-full justify-center rounded-md bg-indigo-600 px-4 py-2.5 text-sm font-semibold text-white shadow-sm hover:bg-indigo-500"
                                >
                                    "Sign in with your organisation (Keycloak)"
                                </a>
                            });
                            let none = (!o.oidc && o.dev_users.is_empty()).then(|| view! {
                                <p class="mt-6 text-sm text-rose-700">"No sign-in method is configured. Set oidc.issuer (CORRAL_OIDC__ISSUER)."</p>
                            });
                            let dev = (!o.dev_users.is_empty()).then(|| view! {
                                <section class="mt-8 rounded-lg border-2 border-dashed border-amber-400 bg-amber-50 p-5" data-testid="dev-sign-in">
                                    <h2 class="text-sm font-semibold text-amber-900">"Development sign-in"</h2>
                                    <p class="mt-1 text-xs text-amber-800">
                                        "Local profile only — refused in production. Pick a seeded person; no password is asked."
                                    </p>
                                    <ul class="mt-4 space-y-2">
                                        {o.dev_users.into_iter().map(|u| view! {
                                            <li>
                                                <form method="post" action="/auth/dev" class="flex items-center justify-between gap-4 rounded-md bg-white px-3 py-2 ring-1 ring-amber-200">
                                                    <input type="hidden" name="username" value=u.username.clone()/>
                                                    <input type="hidden" name="next" value=next()/>
                                                    <span class="text-sm">
                                                        <span class="font-medium">{u.display_name.clone()}</span>
                                                        <span class="block text-xs text-slate-500">{u.summary.clone()}</span>
                                                    </span>
                                                    <button type="submit" data-testid=format!("dev-{}", u.username)
                                                        class="rounded-md bg-amber-500 px-3 py-1.5 text-xs font-semibold text-white hover:bg-amber-400">
                                                        "Sign in as " {u.username.clone()}
                                                    </button>
                                                </form>
                                            </li>
                                        }).collect_view()}
                                    </ul>
                                </section>
                            });
                            view! { {idp} {none} {dev} }
                        })
                    })}
                </Suspense>
            </ErrorBoundary>
        </div>
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
