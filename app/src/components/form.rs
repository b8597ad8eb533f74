//! Pieces every form and table uses: a labelled field, a form's outcome
//! (the message naming the field, or a success line), and a time as shown.

use leptos::prelude::*;

use crate::model::AppError;

/// A time as the tables show it, in UTC.
pub fn fmt_time(t: time::OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    t.format(&f).unwrap_or_default()
}

/// Shows the outcome of a form: the validation message naming the field, or a success line.
#[component]
pub fn Outcome<T: Clone + Send + Sync + 'static>(
    #[prop(into)] value: Signal<Option<Result<T, AppError>>>,
    ok: fn(&T) -> String,
) -> impl IntoView {
    move || {
        value.get().map(|r| match r {
            Ok(v) => view! { <p class="text-sm text-emerald-700" role="status" data-testid="form-ok">{ok(&v)}</p> }.into_any(),
            Err(e) => view! { <p class="text-sm text-rose-700" role="alert" data-testid="form-error">{e.to_string()}</p> }.into_any(),
        })
    }
}

/// A labelled text field with its hint.
#[component]
pub fn Field(
    label: &'static str,
    name: &'static str,
    hint: &'static str,
    required: bool,
    #[prop(optional, into)] value: String,
) -> impl IntoView {
    // The hint describes the field; it is not part of its name.
    let id = format!("field-{name}");
    let hint_id = format!("{id}-hint");
    let described_by = (!hint.is_empty()).then(|| hint_id.clone());
    view! {
        <div class="block text-sm">
            <label for=id.clone() class="font-medium text-slate-700">{label}</label>
            <input id=id name=name value=value required=required aria-describedby=described_by
                class="mt-1 block w-full rounded-md border-0 px-3 py-1.5 ring-1 ring-inset ring-slate-300 focus:ring-2 focus:ring-indigo-600"/>
            {(!hint.is_empty()).then(|| view! { <span id=hint_id class="text-xs text-slate-500">{hint}</span> })}
        </div>
    }
}
