//! The admin's form for a team's models, limits and key policy, shown on
//! the admin team page.

use leptos::prelude::*;

use crate::api::{AdminUpdatePolicy, team_keys};
use crate::components::form::{Field, Outcome};

/// The admin's form for a team's models, limits and key policy.
#[component]
pub fn PolicyEditor(slug: String) -> impl IntoView {
    let save = ServerAction::<AdminUpdatePolicy>::new();
    let s = slug.clone();
    let data = Resource::new(move || save.version().get(), move |_| team_keys(s.clone()));
    view! {
        <section class="mt-6 max-w-xl rounded-xl bg-white p-6 shadow-sm ring-1 ring-slate-200">
            <h2 class="font-semibold">"Models, limits and keys"</h2>
            <p class="mt-1 text-xs text-slate-500">"Enforced by every gateway within a second of saving. Blank limits mean no limit."</p>
            <Transition fallback=|| view! { <p class="text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    data.await.map(|d| {
                        let p = d.policy;
                        let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
                        view! {
                            <ActionForm action=save attr:class="mt-4 space-y-3">
                                <input type="hidden" name="slug" value=d.team.clone()/>
                                <Field label="Allowed models" name="allowed_models" hint="comma-separated; blank: any model" required=false value=p.allowed_models.clone().map(|m| m.join(", ")).unwrap_or_default()/>
                                <label class="block text-sm"><input type="checkbox" name="self_service_keys" checked=p.self_service_keys/> " Members get keys without approval (self-service)"</label>
                                <Field label="Longest key lifetime (days)" name="max_key_days" hint="1 to 3650" required=true value=p.max_key_days.to_string()/>
                                <Field label="Requests per minute (team)" name="rpm_limit" hint="" required=false value=opt(p.rpm_limit.map(i64::from))/>
                                <Field label="Tokens per minute (team)" name="tpm_limit" hint="" required=false value=opt(p.tpm_limit.map(i64::from))/>
                                <Field label="Tokens per month (team)" name="monthly_token_quota" hint="" required=false value=opt(p.monthly_token_quota)/>
                                <button type="submit" data-testid="save-policy" class="rounded-md bg-indigo-600 px-4 py-2 text-sm font-medium text-white hover:bg-indigo-500">"Save policy"</button>
                                <Outcome value=save.value() ok=|_| "Policy saved".to_owned()/>
                            </ActionForm>
                        }
                    })
                })}
            </Transition>
        </section>
    }
}
