//! A team's API keys (request, approve, collect, revoke, rotate) and the
//! admin's view of every key.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::{
    ClaimKey, DecideKeyRequest, RequestKey, RevokeKey, RotateKey, WithdrawKeyRequest, admin_keys,
    team_keys,
};
use crate::components::admin_nav::AdminNav;
use crate::components::error::ErrorPanel;
use crate::components::form::{Field, Outcome, fmt_time};
use crate::components::team_header::TeamHeader;
use crate::model::{
    ApiKey, AppError, IssuedKey, KeyRequest, KeyRequestState, KeyScope, KeyState, TeamPolicy,
};

fn scopes_text(s: &[KeyScope]) -> String {
    s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

fn models_text(m: &Option<Vec<String>>) -> String {
    match m {
        None => "team's models".into(),
        Some(m) if m.is_empty() => "none".into(),
        Some(m) => m.join(", "),
    }
}

fn fmt_day(t: time::OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day]");
    t.format(&f).unwrap_or_default()
}

#[component]
fn KeyStateBadge(state: KeyState) -> impl IntoView {
    let (label, class) = match state {
        KeyState::Active => (
            "active",
            "bg-emerald-50 text-emerald-700 ring-emerald-600/20",
        ),
        KeyState::Expiring => (
            "expires soon",
            "bg-amber-50 text-amber-800 ring-amber-600/20",
        ),
        KeyState::Expired => ("expired", "bg-slate-100 text-slate-600 ring-slate-500/20"),
        KeyState::Revoked => ("revoked", "bg-rose-50 text-rose-700 ring-rose-600/20"),
    };
    view! { <span class=format!("rounded-full px-2 py-0.5 text-xs font-medium ring-1 ring-inset {class}")>{label}</span> }
}

#[component]
fn RequestStateBadge(state: KeyRequestState) -> impl IntoView {
    let class = match state {
        KeyRequestState::Pending => "bg-amber-50 text-amber-800 ring-amber-600/20",
        KeyRequestState::Approved => "bg-indigo-50 text-indigo-700 ring-indigo-600/20",
        KeyRequestState::Issued => "bg-emerald-50 text-emerald-700 ring-emerald-600/20",
        KeyRequestState::Denied => "bg-rose-50 text-rose-700 ring-rose-600/20",
        KeyRequestState::Withdrawn => "bg-slate-100 text-slate-600 ring-slate-500/20",
    };
    view! { <span class=format!("rounded-full px-2 py-0.5 text-xs font-medium ring-1 ring-inset {class}") data-testid="request-state">{state.as_str()}</span> }
}

/// The secret of a key just made: shown once, with how to use it.
#[component]
fn SecretOnce(key: IssuedKey, gateway_url: Option<String>) -> impl IntoView {
    let url = gateway_url.unwrap_or_else(|| "http://<gateway>".into());
    let curl = format!(
        "curl {url}/api/chat -H 'Authorization: Bearer {}' -d '{{\"model\": \"llama3.2\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello\"}}]}}'",
        key.secret
    );
    view! {
        <section class="mt-6 rounded-xl border-2 border-emerald-500 bg-emerald-50 p-5" data-testid="secret-once" role="status">
            <h2 class="font-semibold text-emerald-900">"Your new key " <span class="font-mono">{key.key.name.clone()}</span></h2>
            <p class="mt-1 text-sm text-emerald-900">"Copy it now: this is the only time Corral shows it. Corral keeps only an HMAC of it, so it cannot be shown again; if you lose it, rotate the key."</p>
            <code class="mt-3 block select-all break-all rounded bg-white px-3 py-2 font-mono text-sm ring-1 ring-emerald-300" data-testid="new-key-secret">{key.secret.clone()}</code>
            <p class="mt-3 text-xs text-emerald-900">"Expires " {fmt_day(key.key.expires_at)} " · scopes " {scopes_text(&key.key.scopes)} " · models " {models_text(&key.key.models)}</p>
            <pre class="mt-3 overflow-x-auto rounded bg-slate-900 p-3 text-xs text-slate-100">{curl}</pre>
        </section>
    }
}

fn secret_view<T: Clone + Send + Sync + 'static>(
    value: impl Into<Signal<Option<Result<T, AppError>>>>,
    take: fn(&T) -> Option<IssuedKey>,
    gateway_url: Option<String>,
) -> impl IntoView {
    let value: Signal<Option<Result<T, AppError>>> = value.into();
    move || {
        value.get().and_then(|r| match r {
            Ok(v) => take(&v).map(|k| view! { <SecretOnce key=k gateway_url=gateway_url.clone()/> }.into_any()),
            Err(e) => Some(view! { <p class="mt-4 text-sm text-rose-700" role="alert" data-testid="form-error">{e.to_string()}</p> }.into_any()),
        })
    }
}

#[component]
pub fn TeamKeysPage() -> impl IntoView {
    let params = use_params_map();
    let slug = move || params.with(|p| p.get("slug").unwrap_or_default());
    let request = ServerAction::<RequestKey>::new();
    let decide = ServerAction::<DecideKeyRequest>::new();
    let withdraw = ServerAction::<WithdrawKeyRequest>::new();
    let claim = ServerAction::<ClaimKey>::new();
    let revoke = ServerAction::<RevokeKey>::new();
    let rotate = ServerAction::<RotateKey>::new();
    let data = Resource::new(
        move || {
            (
                slug(),
                request.version().get(),
                decide.version().get(),
                withdraw.version().get(),
                claim.version().get(),
                revoke.version().get(),
                rotate.version().get(),
            )
        },
        |(s, ..)| team_keys(s),
    );
    view! {
        <Title text="API keys"/>
        <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors/> }>
            <Transition fallback=|| view! { <p class="text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    data.await.map(|d| {
                        let gw = d.gateway_url.clone();
                        let expiring: Vec<ApiKey> = d.keys.iter().filter(|k| k.state == KeyState::Expiring && (k.owner == d.me || d.can_manage)).cloned().collect();
                        view! {
                            <TeamHeader slug=d.team.clone() current="keys"/>
                            {(!expiring.is_empty()).then(|| view! {
                                <div class="mt-4 rounded-lg bg-amber-50 p-4 text-sm text-amber-900 ring-1 ring-amber-300" role="alert" data-testid="expiry-warning">
                                    <p class="font-medium">{format!("{} key(s) expire within 7 days", expiring.len())}</p>
                                    <ul class="mt-1 list-disc pl-5">
                                        {expiring.into_iter().map(|k| view! { <li>{k.name} " (" <span class="font-mono">{k.prefix}</span> ") expires " {fmt_day(k.expires_at)} ": rotate it to keep working."</li> }).collect_view()}
                                    </ul>
                                </div>
                            })}
                            {secret_view(request.value(), |o: &crate::model::KeyRequestOutcome| o.issued.clone(), gw.clone())}
                            {secret_view(claim.value(), |k: &IssuedKey| Some(k.clone()), gw.clone())}
                            {secret_view(rotate.value(), |k: &IssuedKey| Some(k.clone()), gw.clone())}
                            <div class="mt-6 grid gap-8 lg:grid-cols-3">
                                <div class="space-y-8 lg:col-span-2">
                                    <RequestsTable requests=d.requests.clone() me=d.me.clone() can_manage=d.can_manage decide withdraw claim/>
                                    <KeysTable keys=d.keys.clone() me=d.me.clone() can_manage=d.can_manage revoke rotate/>
                                </div>
                                <RequestForm slug=d.team.clone() policy=d.policy.clone() request/>
                            </div>
                            <GatewayHelp url=gw/>
                        }
                    })
                })}
            </Transition>
        </ErrorBoundary>
    }
}

#[component]
fn RequestForm(
    slug: String,
    policy: TeamPolicy,
    request: ServerAction<RequestKey>,
) -> impl IntoView {
    let models_hint = match &policy.allowed_models {
        None => "blank: any model the team may use (any)".to_owned(),
        Some(m) if m.is_empty() => "this team may not use any model yet".to_owned(),
        Some(m) => format!("blank: all of {}", m.join(", ")),
    };
    view! {
        <section class="h-fit rounded-xl bg-white p-6 shadow-sm ring-1 ring-slate-200">
            <h2 class="font-semibold">"Ask for a key"</h2>
            <p class="mt-1 text-xs text-slate-500">{if policy.self_service_keys { "This team issues keys at once (self-service)." } else { "A team owner or an admin approves it; then you collect it here." }}</p>
            <ActionForm action=request attr:class="mt-4 space-y-3">
                <input type="hidden" name="slug" value=slug/>
                <Field label="Name" name="name" hint="e.g. notebook, ci-summaries" required=true/>
                <Field label="Purpose" name="purpose" hint="what it is for" required=false/>
                <label class="block text-sm">
                    <span class="font-medium text-slate-700">"Models"</span>
                    <input name="models" class="mt-1 block w-full rounded-md border-0 px-3 py-1.5 ring-1 ring-inset ring-slate-300"/>
                    <span class="text-xs text-slate-500">{models_hint}</span>
                </label>
                <fieldset class="text-sm">
                    <legend class="font-medium text-slate-700">"Scopes"</legend>
                    <label class="mr-4"><input type="checkbox" name="inference" checked=true/> " inference (call models)"</label>
                    <label><input type="checkbox" name="manage"/> " manage (Corral's REST API)"</label>
                </fieldset>
                <label class="block text-sm">
                    <span class="font-medium text-slate-700">"Expires in (days)"</span>
                    <input name="expires_in_days" type="number" min="1" max=policy.max_key_days placeholder=policy.max_key_days.to_string()
                        class="mt-1 block w-full rounded-md border-0 px-3 py-1.5 ring-1 ring-inset ring-slate-300"/>
                    <span class="text-xs text-slate-500">{format!("at most {} (team maximum)", policy.max_key_days)}</span>
                </label>
                <button type="submit" data-testid="request-key" class="rounded-md bg-indigo-600 px-4 py-2 text-sm font-medium text-white hover:bg-indigo-500" disabled=move || request.pending().get()>"Ask for the key"</button>
                <Outcome value=request.value() ok=|o| if o.issued.is_some() { "Key issued: copy it from the green box".to_owned() } else { format!("Request sent: {} waits for approval", o.request.name) }/>
            </ActionForm>
        </section>
    }
}

#[component]
fn RequestsTable(
    requests: Vec<KeyRequest>,
    me: String,
    can_manage: bool,
    decide: ServerAction<DecideKeyRequest>,
    withdraw: ServerAction<WithdrawKeyRequest>,
    claim: ServerAction<ClaimKey>,
) -> impl IntoView {
    view! {
        <section>
            <h2 class="font-semibold">"Requests"</h2>
            {move || decide.value().get().and_then(|r| r.err()).map(|e| view! { <p class="text-sm text-rose-700" role="alert" data-testid="form-error">{e.to_string()}</p> })}
            {if requests.is_empty() {
                view! { <p class="mt-2 text-sm text-slate-500" data-testid="no-requests">"No key requests yet."</p> }.into_any()
            } else {
                view! {
                    <table class="mt-2 w-full overflow-hidden rounded-lg bg-white text-sm shadow-sm ring-1 ring-slate-200" data-testid="requests">
                        <thead class="bg-slate-50 text-left text-xs uppercase tracking-wide text-slate-500">
                            <tr><th class="px-3 py-2">"Key"</th><th class="px-3 py-2">"By"</th><th class="px-3 py-2">"State"</th><th class="px-3 py-2"></th></tr>
                        </thead>
                        <tbody class="divide-y divide-slate-100">
                            {requests.into_iter().map(|r| {
                                let rid = r.id;
                                let mine = r.requester == me;
                                view! {
                                    <tr data-testid=format!("request-{}", r.name)>
                                        <td class="px-3 py-2">
                                            <span class="font-medium">{r.name.clone()}</span>
                                            <span class="block text-xs text-slate-500">{scopes_text(&r.scopes)} " · " {models_text(&r.models)} " · " {r.expires_in_days} " days"</span>
                                            {(!r.purpose.is_empty()).then(|| view! { <span class="block text-xs text-slate-500">{r.purpose.clone()}</span> })}
                                        </td>
                                        <td class="px-3 py-2 text-xs">{r.requester.clone()} <span class="block text-slate-500">{fmt_time(r.created_at)}</span></td>
                                        <td class="px-3 py-2">
                                            <RequestStateBadge state=r.state/>
                                            {r.reason.clone().filter(|_| r.state == KeyRequestState::Denied).map(|why| view! { <span class="block text-xs text-rose-700">{why}</span> })}
                                            {r.decided_by.clone().map(|by| view! { <span class="block text-xs text-slate-500">"by " {by}</span> })}
                                        </td>
                                        <td class="px-3 py-2 text-right">
                                            {(r.state == KeyRequestState::Pending && can_manage).then(|| { view! {
                                                <div class="flex flex-col items-end gap-1">
                                                    <ActionForm action=decide>
                                                        <input type="hidden" name="id" value=rid.to_string()/>
                                                        <input type="hidden" name="decision" value="approve"/>
                                                        <button type="submit" data-testid="approve" class="rounded-md bg-emerald-600 px-3 py-1 text-xs font-medium text-white hover:bg-emerald-500">"Approve"</button>
                                                    </ActionForm>
                                                    <ActionForm action=decide attr:class="flex gap-1">
                                                        <input type="hidden" name="id" value=rid.to_string()/>
                                                        <input type="hidden" name="decision" value="deny"/>
                                                        <input name="reason" placeholder="reason" aria-label="Reason for denying" class="w-28 rounded-md border-0 px-2 py-1 text-xs ring-1 ring-inset ring-slate-300"/>
                                                        <button type="submit" data-testid="deny" class="rounded-md bg-rose-600 px-3 py-1 text-xs font-medium text-white hover:bg-rose-500">"Deny"</button>
                                                    </ActionForm>
                                                </div>
                                            }})}
                                            {(r.state == KeyRequestState::Pending && mine).then(|| view! {
                                                <ActionForm action=withdraw>
                                                    <input type="hidden" name="id" value=rid.to_string()/>
                                                    <button type="submit" class="mt-1 text-xs text-slate-600 underline">"Withdraw"</button>
                                                </ActionForm>
                                            })}
                                            {(r.state == KeyRequestState::Approved && mine).then(|| view! {
                                                <ActionForm action=claim>
                                                    <input type="hidden" name="id" value=rid.to_string()/>
                                                    <button type="submit" data-testid="collect" class="rounded-md bg-indigo-600 px-3 py-1 text-xs font-medium text-white hover:bg-indigo-500">"Collect key"</button>
                                                </ActionForm>
                                            })}
                                            {(r.state == KeyRequestState::Approved && !mine).then(|| view! { <span class="text-xs text-slate-500">{format!("waiting for {} to collect it", r.requester)}</span> })}
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn KeysTable(
    keys: Vec<ApiKey>,
    me: String,
    can_manage: bool,
    revoke: ServerAction<RevokeKey>,
    rotate: ServerAction<RotateKey>,
) -> impl IntoView {
    view! {
        <section>
            <h2 class="font-semibold">"Keys"</h2>
            {move || revoke.value().get().map(|r| match r {
                Ok(k) => view! { <p class="text-sm text-emerald-700" role="status" data-testid="form-ok">{format!("Revoked {}: every gateway refuses it within a second", k.prefix)}</p> }.into_any(),
                Err(e) => view! { <p class="text-sm text-rose-700" role="alert" data-testid="form-error">{e.to_string()}</p> }.into_any(),
            })}
            {if keys.is_empty() {
                view! { <p class="mt-2 text-sm text-slate-500" data-testid="no-keys">"No keys yet."</p> }.into_any()
            } else {
                view! {
                    <table class="mt-2 w-full overflow-hidden rounded-lg bg-white text-sm shadow-sm ring-1 ring-slate-200" data-testid="keys">
                        <thead class="bg-slate-50 text-left text-xs uppercase tracking-wide text-slate-500">
                            <tr><th class="px-3 py-2">"Key"</th><th class="px-3 py-2">"Owner"</th><th class="px-3 py-2">"State"</th><th class="px-3 py-2">"Last used"</th><th class="px-3 py-2"></th></tr>
                        </thead>
                        <tbody class="divide-y divide-slate-100">
                            {keys.into_iter().map(|k| {
                                let rid = k.id;
                                let live = matches!(k.state, KeyState::Active | KeyState::Expiring);
                                let mine = k.owner == me;
                                view! {
                                    <tr data-testid=format!("key-{}", k.name)>
                                        <td class="px-3 py-2">
                                            <span class="font-medium">{k.name.clone()}</span>
                                            <span class="block font-mono text-xs text-slate-500">{k.prefix.clone()}</span>
                                            <span class="block text-xs text-slate-500">{scopes_text(&k.scopes)} " · " {models_text(&k.models)}</span>
                                        </td>
                                        <td class="px-3 py-2 text-xs">{k.owner.clone()}</td>
                                        <td class="px-3 py-2"><KeyStateBadge state=k.state/><span class="block text-xs text-slate-500">{if k.revoked_at.is_some() { "revoked".to_owned() } else { format!("until {}", fmt_day(k.expires_at)) }}</span></td>
                                        <td class="px-3 py-2 text-xs text-slate-500">{k.last_used_at.map(fmt_time).unwrap_or_else(|| "never".into())}</td>
                                        <td class="px-3 py-2 text-right">
                                            {(live && (mine || can_manage)).then(|| view! {
                                                <ActionForm action=revoke>
                                                    <input type="hidden" name="id" value=rid.to_string()/>
                                                    <button type="submit" data-testid="revoke" class="rounded-md bg-rose-600 px-3 py-1 text-xs font-medium text-white hover:bg-rose-500">"Revoke"</button>
                                                </ActionForm>
                                            })}
                                            {(live && mine).then(|| view! {
                                                <ActionForm action=rotate attr:class="mt-1 flex items-center justify-end gap-1">
                                                    <input type="hidden" name="id" value=rid.to_string()/>
                                                    <select name="grace_hours" aria-label="Old key stays valid for" class="rounded-md border-0 py-1 text-xs ring-1 ring-inset ring-slate-300">
                                                        <option value="0">"old key: stop now"</option>
                                                        <option value="1">"old key: 1 h more"</option>
                                                        <option value="24" selected=true>"old key: 24 h more"</option>
                                                        <option value="168">"old key: 7 days more"</option>
                                                    </select>
                                                    <button type="submit" data-testid="rotate" class="rounded-md bg-slate-700 px-3 py-1 text-xs font-medium text-white hover:bg-slate-600">"Rotate"</button>
                                                </ActionForm>
                                            })}
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn GatewayHelp(url: Option<String>) -> impl IntoView {
    let url = url.unwrap_or_else(|| "(no gateway configured)".into());
    view! {
        <section class="mt-10 rounded-xl bg-slate-50 p-5 text-sm ring-1 ring-slate-200">
            <h2 class="font-semibold">"Using a key"</h2>
            <p class="mt-1 text-slate-600">"Send requests to the gateway at " <code class="font-mono" data-testid="gateway-url">{url.clone()}</code> " exactly as you would to Ollama (" <code>"/api/…"</code> ") or to an OpenAI-compatible client (" <code>"/v1/…"</code> "), with the key as " <code>"Authorization: Bearer crl_…"</code> " or " <code>"X-API-Key: crl_…"</code> "."</p>
            <pre class="mt-3 overflow-x-auto rounded bg-slate-900 p-3 text-xs text-slate-100">{format!("export OPENAI_BASE_URL={url}/v1\nexport OPENAI_API_KEY=crl_…\ncurl {url}/api/tags -H \"Authorization: Bearer $OPENAI_API_KEY\"")}</pre>
        </section>
    }
}

#[component]
pub fn AdminKeysPage() -> impl IntoView {
    let decide = ServerAction::<DecideKeyRequest>::new();
    let withdraw = ServerAction::<WithdrawKeyRequest>::new();
    let claim = ServerAction::<ClaimKey>::new();
    let revoke = ServerAction::<RevokeKey>::new();
    let rotate = ServerAction::<RotateKey>::new();
    let data = Resource::new(
        move || (decide.version().get(), revoke.version().get()),
        |_| admin_keys(),
    );
    view! {
        <Title text="Keys · Admin"/>
        <AdminNav/>
        <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors/> }>
            <Transition fallback=|| view! { <p class="mt-6 text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    data.await.map(|d| view! {
                        <div class="mt-6 space-y-8" data-testid="admin-keys">
                            <p class="text-sm text-slate-600">"Pending requests of every team, and every key. Secrets are never shown here: only the requester collects a key."</p>
                            <RequestsTable requests=d.requests me=String::new() can_manage=true decide withdraw claim/>
                            <KeysTable keys=d.keys me=String::new() can_manage=true revoke rotate/>
                        </div>
                    })
                })}
            </Transition>
        </ErrorBoundary>
    }
}
