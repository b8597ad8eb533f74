//! Progress of an operation's step: a bar with bytes, rate and ETA, and
//! the state pills of operations and steps.

use leptos::prelude::*;

use crate::model::{OperationState, OperationStep, StepState};

/// `1.5 GB`, `320 MB`, `12 kB`: decimal units, as Ollama shows sizes.
pub fn bytes(n: i64) -> String {
    let n = n.max(0) as f64;
    for (unit, size) in [("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)] {
        if n >= size {
            return format!("{:.1} {unit}", n / size);
        }
    }
    format!("{n} B")
}

/// `1 h 02 min`, `4 min 05 s`, `12 s`.
pub fn duration(secs: u64) -> String {
    match secs {
        s if s >= 3600 => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
        s if s >= 60 => format!("{} min {:02} s", s / 60, s % 60),
        s => format!("{s} s"),
    }
}

#[component]
pub fn OperationStateBadge(state: OperationState) -> impl IntoView {
    let pill = match state {
        OperationState::Scheduled | OperationState::Queued => {
            "bg-slate-100 text-slate-700 ring-slate-500/20"
        }
        OperationState::Running => "bg-indigo-50 text-indigo-700 ring-indigo-600/20",
        OperationState::Succeeded => "bg-emerald-50 text-emerald-700 ring-emerald-600/20",
        OperationState::Failed => "bg-rose-50 text-rose-700 ring-rose-600/20",
        OperationState::Cancelled => "bg-amber-50 text-amber-800 ring-amber-600/20",
    };
    view! {
        <span class=format!("inline-flex rounded-full px-2.5 py-0.5 text-xs font-medium ring-1 ring-inset {pill}") data-testid="operation-state">
            {state.as_str()}
        </span>
    }
}

/// One pod's bar: percent, bytes done of total, rate, ETA, status line.
#[component]
pub fn StepProgress(step: OperationStep) -> impl IntoView {
    let percent = step.percent();
    let label = match percent {
        Some(p) => format!("{p:.0}%"),
        None => "size not known yet".to_owned(),
    };
    let detail = {
        let mut parts = Vec::new();
        if step.total > 0 {
            parts.push(format!(
                "{} of {}",
                bytes(step.completed),
                bytes(step.total)
            ));
        }
        if step.state == StepState::Running && step.rate > 0.0 {
            parts.push(format!("{}/s", bytes(step.rate as i64)));
        }
        if let Some(eta) = step.eta_secs() {
            parts.push(format!("about {} left", duration(eta)));
        }
        parts.join(" · ")
    };
    let colour = match step.state {
        StepState::Failed => "bg-rose-500",
        StepState::Cancelled => "bg-amber-500",
        StepState::Succeeded => "bg-emerald-500",
        _ => "bg-indigo-500",
    };
    let width = percent.unwrap_or(0.0);
    view! {
        <div class="py-2" data-testid=format!("step-{}", step.pod)>
            <div class="flex items-baseline justify-between gap-4 text-sm">
                <span class="font-mono text-xs">{step.pod.clone()}</span>
                <span class="text-xs text-slate-500" data-testid="step-state">{step.state.as_str()}</span>
            </div>
            <div class="mt-1 h-2 w-full overflow-hidden rounded bg-slate-200" role="progressbar"
                aria-label=format!("{} progress", step.pod) aria-valuemin="0" aria-valuemax="100"
                aria-valuenow=percent.map(|p| format!("{p:.0}")) aria-valuetext=label.clone()>
                <div class=format!("h-2 {colour}") style=format!("width: {width:.1}%")></div>
            </div>
            <div class="mt-1 flex justify-between gap-4 text-xs text-slate-600">
                <span data-testid="step-status">{step.status.clone()}</span>
                <span data-testid="step-bytes">{label} {(!detail.is_empty()).then(|| format!(" · {detail}"))}</span>
            </div>
            {step.error.clone().map(|e| view! { <p class="mt-1 text-xs text-rose-700" role="alert">{e}</p> })}
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_as_people_write_them() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(2_019_393_189), "2.0 GB");
        assert_eq!(bytes(1_500), "1.5 kB");
        assert_eq!(duration(42), "42 s");
        assert_eq!(duration(245), "4 min 05 s");
        assert_eq!(duration(3720), "1 h 02 min");
    }
}
