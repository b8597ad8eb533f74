//! The simulator's knobs: timing, concurrency and the models installed at start.

use std::time::Duration;

/// How the simulated server behaves.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Time to first token, counted from the moment a generation gets its slot.
    pub ttft: Duration,
    /// Gap between two streamed tokens.
    pub token_gap: Duration,
    /// `OLLAMA_NUM_PARALLEL`: generations running at once; more requests queue.
    pub parallel: usize,
    /// `OLLAMA_MAX_QUEUE`: requests allowed to wait for a slot; beyond it, 503.
    pub max_queue: usize,
    /// Models installed when the simulator starts.
    pub models: Vec<String>,
    /// Completion tokens of an answer when the request does not cut it shorter.
    pub default_tokens: u32,
    /// Delay between two progress lines of `/api/pull` and `/api/push`.
    pub pull_step: Duration,
    /// `SIM_JOURNAL_LEN`: requests kept in the journal of what was received
    /// (`GET /sim/requests`); 0 keeps none.
    pub journal_len: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            ttft: Duration::from_millis(20),
            token_gap: Duration::from_millis(5),
            parallel: 4,
            max_queue: 512,
            models: vec![
                "llama3.2:latest".to_owned(),
                "qwen2.5:0.5b".to_owned(),
                "nomic-embed-text:latest".to_owned(),
            ],
            default_tokens: 24,
            pull_step: Duration::from_millis(30),
            journal_len: crate::journal::DEFAULT_JOURNAL_LEN,
        }
    }
}

impl SimConfig {
    /// Reads the configuration from the environment, starting from the defaults.
    ///
    /// Variables: `OLLAMA_NUM_PARALLEL`, `OLLAMA_MAX_QUEUE`, `SIM_TTFT_MS`,
    /// `SIM_TOKEN_MS`, `SIM_MODELS` (comma-separated), `SIM_DEFAULT_TOKENS`,
    /// `SIM_PULL_STEP_MS`, `SIM_JOURNAL_LEN`. A bad value is an error naming the variable.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Same as [`SimConfig::from_env`], with the variables read through `lookup`.
    pub(crate) fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut config = Self::default();
        if let Some(n) = number(&lookup, "OLLAMA_NUM_PARALLEL")? {
            if n == 0 {
                return Err("OLLAMA_NUM_PARALLEL must be at least 1".to_owned());
            }
            config.parallel = usize::try_from(n).map_err(|_| too_big("OLLAMA_NUM_PARALLEL"))?;
        }
        if let Some(n) = number(&lookup, "OLLAMA_MAX_QUEUE")? {
            config.max_queue = usize::try_from(n).map_err(|_| too_big("OLLAMA_MAX_QUEUE"))?;
        }
        if let Some(ms) = number(&lookup, "SIM_TTFT_MS")? {
            config.ttft = Duration::from_millis(ms);
        }
        if let Some(ms) = number(&lookup, "SIM_TOKEN_MS")? {
            config.token_gap = Duration::from_millis(ms);
        }
        if let Some(ms) = number(&lookup, "SIM_PULL_STEP_MS")? {
            config.pull_step = Duration::from_millis(ms);
        }
        if let Some(n) = number(&lookup, "SIM_DEFAULT_TOKENS")? {
            if n == 0 {
                return Err("SIM_DEFAULT_TOKENS must be at least 1".to_owned());
            }
            config.default_tokens = u32::try_from(n).map_err(|_| too_big("SIM_DEFAULT_TOKENS"))?;
        }
        if let Some(n) = number(&lookup, "SIM_JOURNAL_LEN")? {
            config.journal_len = usize::try_from(n).map_err(|_| too_big("SIM_JOURNAL_LEN"))?;
        }
        if let Some(list) = lookup("SIM_MODELS") {
            let models: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .collect();
            if let Some(bad) = models
                .iter()
                .find(|m| crate::names::ModelName::parse(m).is_err())
            {
                return Err(format!("SIM_MODELS: {bad:?} is not a valid model name"));
            }
            config.models = models;
        }
        Ok(config)
    }
}

fn number(lookup: &impl Fn(&str) -> Option<String>, name: &str) -> Result<Option<u64>, String> {
    match lookup(name) {
        None => Ok(None),
        Some(raw) if raw.trim().is_empty() => Ok(None),
        Some(raw) => raw
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("{name} must be a non-negative integer, got {raw:?}")),
    }
}

fn too_big(name: &str) -> String {
    format!("{name} is too large")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> Result<SimConfig, String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        SimConfig::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn no_variables_give_the_defaults() {
        let config = with(&[]).unwrap();
        assert_eq!(config.parallel, 4);
        assert_eq!(config.max_queue, 512);
        assert_eq!(config.ttft, Duration::from_millis(20));
        assert_eq!(config.models.len(), 3);
        assert_eq!(config.journal_len, 256);
    }

    #[test]
    fn variables_override_the_defaults() {
        let config = with(&[
            ("OLLAMA_NUM_PARALLEL", "2"),
            ("OLLAMA_MAX_QUEUE", "7"),
            ("SIM_TTFT_MS", "0"),
            ("SIM_TOKEN_MS", "1"),
            ("SIM_MODELS", "a:1, b/c:latest ,"),
            ("SIM_DEFAULT_TOKENS", "3"),
            ("SIM_PULL_STEP_MS", "9"),
            ("SIM_JOURNAL_LEN", "0"),
        ])
        .unwrap();
        assert_eq!(config.parallel, 2);
        assert_eq!(config.max_queue, 7);
        assert_eq!(config.ttft, Duration::ZERO);
        assert_eq!(config.token_gap, Duration::from_millis(1));
        assert_eq!(config.models, ["a:1", "b/c:latest"]);
        assert_eq!(config.default_tokens, 3);
        assert_eq!(config.pull_step, Duration::from_millis(9));
        assert_eq!(config.journal_len, 0);
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let err = with(&[("SIM_TTFT_MS", "soon")]).unwrap_err();
        assert!(err.starts_with("SIM_TTFT_MS"), "{err}");
        let err = with(&[("OLLAMA_NUM_PARALLEL", "0")]).unwrap_err();
        assert!(err.starts_with("OLLAMA_NUM_PARALLEL"), "{err}");
        let err = with(&[("SIM_MODELS", "ok,bad name")]).unwrap_err();
        assert!(err.starts_with("SIM_MODELS"), "{err}");
    }
}
