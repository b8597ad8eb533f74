//! Capacity advice for a workload: from the models in use (their weights
//! from `/api/tags`, their measured memory from `/api/ps` when loaded) and
//! one pod's GPU memory, the largest safe `OLLAMA_MAX_LOADED_MODELS` and
//! `OLLAMA_NUM_PARALLEL`, with the arithmetic shown, and the models that
//! cannot fit at all.

use serde::{Deserialize, Serialize};

/// Each parallel slot of a model not measured yet is taken to need this
/// share of its weights (a KV cache at Ollama's default context).
pub const ESTIMATED_SLOT_SHARE: f64 = 0.10;
/// Advice never goes above this many parallel requests per model.
pub const MAX_PARALLEL_ADVICE: i64 = 32;

/// A model in use, as the pods report it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelUse {
    pub name: String,
    /// Bytes of weights (`/api/tags` size).
    pub weights: i64,
    /// Bytes it takes loaded (`/api/ps` size: weights, KV cache for every
    /// parallel slot, graph), if some pod has it loaded.
    pub loaded: Option<i64>,
}

/// One model's memory, per the arithmetic.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ModelFootprint {
    pub name: String,
    pub weights: i64,
    /// Bytes each parallel slot adds.
    pub per_slot: i64,
    /// Weights plus the slots at the current `OLLAMA_NUM_PARALLEL`.
    pub footprint: i64,
    /// `per_slot` is an estimate (the model was not seen loaded).
    pub estimated: bool,
}

/// What Corral advises for a workload.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CapacityAdvice {
    /// One pod's GPU memory in bytes (`cluster.gpu_memory_gib`); without
    /// it there is no advice.
    pub gpu_memory: Option<i64>,
    /// `OLLAMA_NUM_PARALLEL` as configured (`gateway.upstream_parallel`).
    pub parallel: i64,
    pub models: Vec<ModelFootprint>,
    /// Largest safe `OLLAMA_MAX_LOADED_MODELS`: the largest models in use,
    /// this many together, fit.
    pub max_loaded_models: Option<i64>,
    /// Largest safe `OLLAMA_NUM_PARALLEL`: every model in use fits alone
    /// with this many slots.
    pub num_parallel: Option<i64>,
    /// The arithmetic, line by line.
    pub steps: Vec<String>,
    /// Models that cannot fit on one pod's GPU at all, and the like.
    pub warnings: Vec<String>,
}

/// Bytes per parameter of a model at Ollama's usual 4-bit quantization
/// (Q4_K_M, about 4.8 bits each).
pub const BYTES_PER_PARAMETER_Q4: f64 = 0.6;

/// A model's weights told from its tag when the tag names its parameters
/// (`llama3.3:70b`, `qwen2.5:0.5b`, `mixtral:8x7b-instruct-q4_K_M`):
/// parameters × [`BYTES_PER_PARAMETER_Q4`]. `None` when the tag says
/// nothing (`llama3.2:latest`).
pub fn estimate_weights(model: &str) -> Option<(f64, i64)> {
    let tag = model.rsplit_once(':')?.1.to_ascii_lowercase();
    let head = tag.split(['-', '_']).next()?;
    let number = head.strip_suffix('b')?;
    let params = match number.split_once('x') {
        Some((experts, each)) => experts.parse::<f64>().ok()? * each.parse::<f64>().ok()?,
        None => number.parse::<f64>().ok()?,
    };
    if !(params.is_finite() && params > 0.0 && params < 100_000.0) {
        return None;
    }
    Some((params, (params * 1e9 * BYTES_PER_PARAMETER_Q4) as i64))
}

/// Why a pull of `model` would not fit on a pod of `gpu_memory` bytes, if
/// its tag says it would not.
pub fn pull_warning(model: &str, gpu_memory: i64) -> Option<String> {
    let (params, bytes) = estimate_weights(model)?;
    (bytes > gpu_memory).then(|| {
        format!(
            "{model} has {params} B parameters, about {} at 4-bit, more than one pod's GPU memory ({}): it would run mostly on the CPU, many times slower",
            gib(bytes),
            gib(gpu_memory)
        )
    })
}

pub(crate) fn gib(b: i64) -> String {
    format!("{:.1} GiB", b as f64 / (1024.0 * 1024.0 * 1024.0))
}

/// The advice for `models` on pods of `gpu_memory` bytes each, running
/// `parallel` requests per model.
pub fn advise(gpu_memory: Option<i64>, parallel: i64, models: &[ModelUse]) -> CapacityAdvice {
    let parallel = parallel.max(1);
    let mut advice = CapacityAdvice {
        gpu_memory,
        parallel,
        ..Default::default()
    };
    let mut footprints: Vec<ModelFootprint> = models
        .iter()
        .filter(|m| m.weights > 0)
        .map(|m| {
            let (per_slot, estimated) = match m.loaded {
                Some(total) if total > m.weights => ((total - m.weights) / parallel, false),
                Some(_) => (0, false),
                None => ((m.weights as f64 * ESTIMATED_SLOT_SHARE) as i64, true),
            };
            ModelFootprint {
                name: m.name.clone(),
                weights: m.weights,
                per_slot,
                footprint: m.weights + per_slot * parallel,
                estimated,
            }
        })
        .collect();
    footprints.sort_by(|a, b| b.footprint.cmp(&a.footprint).then(a.name.cmp(&b.name)));
    for f in &footprints {
        advice.steps.push(format!(
            "{}: {} weights + {parallel} × {} per slot{} = {}",
            f.name,
            gib(f.weights),
            gib(f.per_slot),
            if f.estimated {
                " (estimated: not seen loaded)"
            } else {
                " (measured by /api/ps)"
            },
            gib(f.footprint)
        ));
    }
    let Some(gpu) = gpu_memory.filter(|g| *g > 0) else {
        advice.models = footprints;
        return advice;
    };
    if footprints.is_empty() {
        advice.steps.push("No models on the pods yet.".into());
        return advice;
    }
    for f in footprints.iter().filter(|f| f.weights > gpu) {
        advice.warnings.push(format!(
            "{} ({} of weights) cannot fit in one pod's GPU memory ({}): Ollama will run it partly on the CPU, many times slower.",
            f.name,
            gib(f.weights),
            gib(gpu)
        ));
    }
    // The largest ones together must fit: Ollama may load any of them.
    let mut sum = 0;
    let mut loaded = 0;
    for f in &footprints {
        if sum + f.footprint > gpu {
            break;
        }
        sum += f.footprint;
        loaded += 1;
    }
    advice.steps.push(format!(
        "OLLAMA_MAX_LOADED_MODELS: the {loaded} largest together take {} of {}{}",
        gib(sum),
        gib(gpu),
        footprints
            .get(loaded)
            .map(|next| format!(
                "; adding {} ({}) would exceed it",
                next.name,
                gib(next.footprint)
            ))
            .unwrap_or_default()
    ));
    if loaded >= 2 || footprints.len() == 1 {
        advice.max_loaded_models = Some(loaded.max(1) as i64);
    } else {
        advice.max_loaded_models = Some(1);
        if footprints.len() > 1 {
            advice.warnings.push(format!(
                "Two of these models loaded together exhaust a pod's GPU memory ({} + {} > {}): keep OLLAMA_MAX_LOADED_MODELS at 1.",
                footprints[0].name, footprints[1].name, gib(gpu)
            ));
        }
    }
    // Every model alone must fit with its slots.
    let mut slots = MAX_PARALLEL_ADVICE;
    for f in &footprints {
        let fits = if f.per_slot > 0 {
            (gpu - f.weights).max(0) / f.per_slot
        } else {
            MAX_PARALLEL_ADVICE
        };
        if fits < slots {
            slots = fits;
            advice.steps.push(format!(
                "OLLAMA_NUM_PARALLEL: {} leaves {} after its weights, {} slots of {}",
                f.name,
                gib((gpu - f.weights).max(0)),
                fits,
                gib(f.per_slot)
            ));
        }
    }
    advice.num_parallel = Some(slots.max(1));
    if slots == 0 {
        advice
            .warnings
            .push("Not even one parallel request fits beside the largest model's weights.".into());
    }
    advice.models = footprints;
    advice
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: i64 = 1024 * 1024 * 1024;

    fn m(name: &str, weights: i64, loaded: Option<i64>) -> ModelUse {
        ModelUse {
            name: name.into(),
            weights,
            loaded,
        }
    }

    #[test]
    fn two_small_models_fit_together_and_the_slots_are_measured() {
        // 24 GiB GPU; 4 GiB + 1 GiB KV at parallel 2 (measured), 2 GiB not loaded.
        let a = advise(
            Some(24 * G),
            2,
            &[m("a", 4 * G, Some(5 * G)), m("b", 2 * G, None)],
        );
        assert_eq!(a.max_loaded_models, Some(2));
        // a: (24 - 4) / 0.5 = 40 -> capped; b: (24 - 2) / 0.2 = 110 -> capped.
        assert_eq!(a.num_parallel, Some(MAX_PARALLEL_ADVICE));
        assert!(a.warnings.is_empty(), "{:?}", a.warnings);
        assert!(a.steps[0].contains("measured"));
        assert!(a.steps[1].contains("estimated"));
    }

    #[test]
    fn two_70b_models_together_exhaust_vram() {
        let a = advise(
            Some(48 * G),
            1,
            &[
                m("llama3.3:70b", 40 * G, None),
                m("qwen2.5:72b", 41 * G, None),
            ],
        );
        assert_eq!(a.max_loaded_models, Some(1));
        assert!(
            a.warnings.iter().any(|w| w.contains("exhaust")),
            "{:?}",
            a.warnings
        );
        // 48 - 41 = 7 GiB left, 4.1 GiB per slot: 1.
        assert_eq!(a.num_parallel, Some(1));
    }

    #[test]
    fn a_model_larger_than_the_gpu_is_named() {
        let a = advise(Some(16 * G), 1, &[m("huge", 40 * G, None)]);
        assert!(
            a.warnings
                .iter()
                .any(|w| w.contains("huge") && w.contains("cannot fit"))
        );
    }

    #[test]
    fn the_size_of_a_model_is_told_from_its_tag_when_it_says() {
        assert_eq!(estimate_weights("llama3.3:70b").map(|e| e.0), Some(70.0));
        assert_eq!(estimate_weights("qwen2.5:0.5b").map(|e| e.0), Some(0.5));
        assert_eq!(
            estimate_weights("mixtral:8x7b-instruct-q4_K_M").map(|e| e.0),
            Some(56.0)
        );
        assert_eq!(estimate_weights("llama3.2:latest"), None);
        assert_eq!(estimate_weights("llama3.2"), None);
        assert!(
            pull_warning("llama3.3:70b", 24 * G).is_some_and(|w| w.contains("70 B parameters"))
        );
        assert_eq!(pull_warning("llama3.1:8b", 24 * G), None);
    }

    #[test]
    fn without_the_gpu_size_there_is_no_advice_but_the_footprints() {
        let a = advise(None, 4, &[m("a", 4 * G, None)]);
        assert_eq!(a.max_loaded_models, None);
        assert_eq!(a.num_parallel, None);
        assert_eq!(a.models.len(), 1);
    }
}
