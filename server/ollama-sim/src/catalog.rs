//! The models the simulator knows: what they are, which are installed, which are loaded.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::clock::{self, KeepAlive};
use crate::names::ModelName;
use crate::text::{hash, hex_digest};

/// Media types of manifest layers, as Ollama names them.
pub(crate) const MEDIA_MODEL: &str = "application/vnd.ollama.image.model";
pub(crate) const MEDIA_TEMPLATE: &str = "application/vnd.ollama.image.template";
pub(crate) const MEDIA_SYSTEM: &str = "application/vnd.ollama.image.system";
pub(crate) const MEDIA_PARAMS: &str = "application/vnd.ollama.image.params";
pub(crate) const MEDIA_LICENSE: &str = "application/vnd.ollama.image.license";
pub(crate) const MEDIA_MESSAGES: &str = "application/vnd.ollama.image.messages";
pub(crate) const MEDIA_ADAPTER: &str = "application/vnd.ollama.image.adapter";

/// Where Ollama keeps blobs on Linux; shown in generated Modelfiles.
const BLOBS_DIR: &str = "/root/.ollama/models/blobs";

/// What a model can do, as `/api/show` lists it.
pub(crate) const CAP_COMPLETION: &str = "completion";
pub(crate) const CAP_EMBEDDING: &str = "embedding";
pub(crate) const CAP_TOOLS: &str = "tools";
pub(crate) const CAP_INSERT: &str = "insert";
pub(crate) const CAP_THINKING: &str = "thinking";

/// One blob of a model's manifest.
#[derive(Clone, Debug)]
pub(crate) struct Layer {
    pub(crate) media_type: &'static str,
    /// `sha256:<64 hex>`.
    pub(crate) digest: String,
    pub(crate) size: u64,
}

impl Layer {
    fn of_text(media_type: &'static str, text: &str) -> Self {
        Self {
            media_type,
            digest: format!("sha256:{}", hex_digest(hash(&[media_type, text]))),
            size: text.len() as u64,
        }
    }
}

/// A message baked into a model by `/api/create`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct BakedMessage {
    pub(crate) role: String,
    pub(crate) content: String,
}

/// An installed model.
#[derive(Clone, Debug)]
pub(crate) struct Model {
    pub(crate) name: ModelName,
    pub(crate) modified_at: OffsetDateTime,
    pub(crate) family: String,
    pub(crate) parameter_size: String,
    pub(crate) parameter_count: u64,
    pub(crate) quantization_level: String,
    pub(crate) parent_model: String,
    pub(crate) context_length: u32,
    pub(crate) embedding_length: u32,
    pub(crate) block_count: u32,
    pub(crate) head_count: u32,
    pub(crate) capabilities: Vec<&'static str>,
    pub(crate) template: String,
    pub(crate) system: String,
    pub(crate) parameters: Vec<(String, Value)>,
    pub(crate) license: Vec<String>,
    pub(crate) messages: Vec<BakedMessage>,
    /// The weights layer first, then the small ones.
    pub(crate) layers: Vec<Layer>,
}

impl Model {
    /// A model as `ollama pull` would fetch it from the library.
    pub(crate) fn from_library(name: ModelName) -> Self {
        let spec = Spec::for_name(&name);
        let template = spec.template.to_owned();
        let mut model = Self {
            modified_at: clock::now(),
            family: spec.family.to_owned(),
            parameter_size: spec.parameter_size.clone(),
            parameter_count: spec.parameter_count,
            quantization_level: spec.quantization.to_owned(),
            parent_model: String::new(),
            context_length: spec.context_length,
            embedding_length: spec.embedding_length,
            block_count: spec.block_count,
            head_count: spec.head_count,
            capabilities: spec.capabilities.to_vec(),
            template,
            system: String::new(),
            parameters: spec.parameters,
            license: spec.license.iter().map(|l| (*l).to_owned()).collect(),
            messages: Vec::new(),
            layers: vec![Layer {
                media_type: MEDIA_MODEL,
                digest: format!("sha256:{}", hex_digest(hash(&["weights", &name.key()]))),
                size: spec.weights_size,
            }],
            name,
        };
        model.rebuild_layers();
        model
    }

    /// Recomputes the small layers from the template, system, parameters, license and messages.
    pub(crate) fn rebuild_layers(&mut self) {
        self.layers
            .retain(|l| l.media_type == MEDIA_MODEL || l.media_type == MEDIA_ADAPTER);
        if !self.template.is_empty() {
            self.layers
                .push(Layer::of_text(MEDIA_TEMPLATE, &self.template));
        }
        if !self.system.is_empty() {
            self.layers.push(Layer::of_text(MEDIA_SYSTEM, &self.system));
        }
        for license in &self.license {
            self.layers.push(Layer::of_text(MEDIA_LICENSE, license));
        }
        if !self.parameters.is_empty() {
            self.layers.push(Layer::of_text(
                MEDIA_PARAMS,
                &self.parameters_json().to_string(),
            ));
        }
        if !self.messages.is_empty() {
            let messages = serde_json::to_string(&self.messages).unwrap_or_default();
            self.layers.push(Layer::of_text(MEDIA_MESSAGES, &messages));
        }
    }

    /// The manifest digest `/api/tags` shows (64 hex digits, no prefix).
    pub(crate) fn digest(&self) -> String {
        let digests: Vec<&str> = self.layers.iter().map(|l| l.digest.as_str()).collect();
        hex_digest(hash(&digests))
    }

    /// Bytes on disk: the sum of the layers.
    pub(crate) fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }

    pub(crate) fn supports(&self, capability: &str) -> bool {
        self.capabilities.contains(&capability)
    }

    pub(crate) fn display_name(&self) -> String {
        self.name.display_shortest()
    }

    fn parameters_json(&self) -> Value {
        let mut map = Map::new();
        for (key, value) in &self.parameters {
            match map.get_mut(key) {
                Some(Value::Array(values)) => values.push(value.clone()),
                _ => {
                    let v = if key == "stop" {
                        json!([value])
                    } else {
                        value.clone()
                    };
                    map.insert(key.clone(), v);
                }
            }
        }
        Value::Object(map)
    }

    /// A parameter's value, the last one if repeated.
    pub(crate) fn parameter(&self, key: &str) -> Option<&Value> {
        self.parameters
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// `details` as `/api/tags` and `/api/ps` show it (no parent).
    pub(crate) fn details(&self, with_parent: bool) -> Value {
        json!({
            "parent_model": if with_parent { self.parent_model.as_str() } else { "" },
            "format": "gguf",
            "family": self.family,
            "families": [self.family],
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization_level,
        })
    }

    /// One entry of `/api/tags`.
    pub(crate) fn tags_entry(&self) -> Value {
        let name = self.display_name();
        json!({
            "name": name,
            "model": name,
            "modified_at": clock::rfc3339(self.modified_at),
            "size": self.size(),
            "digest": self.digest(),
            "details": self.details(false),
        })
    }

    /// `parameters` of `/api/show`: Go's `%-30s %#v`, one value a line.
    pub(crate) fn parameters_text(&self) -> String {
        self.parameters
            .iter()
            .map(|(k, v)| format!("{k:<30} {}", go_repr(v)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `modelfile` of `/api/show`.
    pub(crate) fn modelfile(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# Modelfile generated by \"ollama show\"");
        let _ = writeln!(
            out,
            "# To build a new Modelfile based on this, replace FROM with:"
        );
        let _ = writeln!(out, "# FROM {}\n", self.display_name());
        let weights = self.layers[0].digest.replacen(':', "-", 1);
        let _ = writeln!(out, "FROM {BLOBS_DIR}/{weights}");
        if !self.template.is_empty() {
            let _ = writeln!(out, "TEMPLATE \"\"\"{}\"\"\"", self.template);
        }
        if !self.system.is_empty() {
            let _ = writeln!(out, "SYSTEM \"\"\"{}\"\"\"", self.system);
        }
        for (k, v) in &self.parameters {
            let value = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            let _ = writeln!(out, "PARAMETER {k} {value}");
        }
        for license in &self.license {
            let _ = writeln!(out, "LICENSE \"\"\"{license}\"\"\"");
        }
        for m in &self.messages {
            let _ = writeln!(out, "MESSAGE {} \"\"\"{}\"\"\"", m.role, m.content);
        }
        out
    }

    /// `model_info` of `/api/show`: the GGUF key-values that matter.
    pub(crate) fn model_info(&self) -> Value {
        let arch = self.family.as_str();
        let file_type = match self.quantization_level.as_str() {
            "F32" => 0,
            "F16" => 1,
            "Q4_0" => 2,
            "Q8_0" => 7,
            "Q4_K_S" => 14,
            _ => 15,
        };
        let mut info = Map::new();
        info.insert("general.architecture".into(), json!(arch));
        info.insert("general.file_type".into(), json!(file_type));
        info.insert(
            "general.parameter_count".into(),
            json!(self.parameter_count),
        );
        info.insert("general.quantization_version".into(), json!(2));
        info.insert(
            format!("{arch}.attention.head_count"),
            json!(self.head_count),
        );
        info.insert(format!("{arch}.block_count"), json!(self.block_count));
        info.insert(format!("{arch}.context_length"), json!(self.context_length));
        info.insert(
            format!("{arch}.embedding_length"),
            json!(self.embedding_length),
        );
        info.insert("tokenizer.ggml.bos_token_id".into(), json!(1));
        info.insert("tokenizer.ggml.eos_token_id".into(), json!(2));
        info.insert("tokenizer.ggml.merges".into(), json!([]));
        info.insert("tokenizer.ggml.model".into(), json!("gpt2"));
        info.insert("tokenizer.ggml.token_type".into(), json!([]));
        info.insert("tokenizer.ggml.tokens".into(), json!([]));
        Value::Object(info)
    }
}

/// Go's `%#v` of a JSON value: strings quoted, numbers bare.
fn go_repr(v: &Value) -> String {
    match v {
        Value::String(s) => Value::String(s.clone()).to_string(),
        other => other.to_string(),
    }
}

/// What the library knows about a model family.
struct Spec {
    family: &'static str,
    parameter_size: String,
    parameter_count: u64,
    quantization: &'static str,
    weights_size: u64,
    context_length: u32,
    embedding_length: u32,
    block_count: u32,
    head_count: u32,
    capabilities: &'static [&'static str],
    template: &'static str,
    parameters: Vec<(String, Value)>,
    license: &'static [&'static str],
}

const LLAMA3_TEMPLATE: &str = "<|start_header_id|>system<|end_header_id|>\n\n{{ if .System }}{{ .System }}{{ end }}<|eot_id|>{{ range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n";
const CHATML_TEMPLATE: &str = "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n";
const GEMMA_TEMPLATE: &str = "{{- range .Messages }}<start_of_turn>{{ if eq .Role \"user\" }}user{{ else }}model{{ end }}\n{{ .Content }}<end_of_turn>\n{{ end }}<start_of_turn>model\n";
const PROMPT_TEMPLATE: &str = "{{ .Prompt }}";

const LLAMA_LICENSE: &[&str] = &[
    "LLAMA 3.2 COMMUNITY LICENSE AGREEMENT\nLlama 3.2 Version Release Date: September 25, 2024\n\n(Simulated: the full text is not reproduced.)",
];
const APACHE_LICENSE: &[&str] = &[
    "Apache License\nVersion 2.0, January 2004\nhttp://www.apache.org/licenses/\n\n(Simulated: the full text is not reproduced.)",
];

fn stops(stops: &[&str]) -> Vec<(String, Value)> {
    stops
        .iter()
        .map(|s| ("stop".to_owned(), json!(s)))
        .collect()
}

impl Spec {
    fn for_name(name: &ModelName) -> Self {
        let model = name.model.to_ascii_lowercase();
        let tag = name.tag.to_ascii_lowercase();
        match (model.as_str(), tag.as_str()) {
            ("llama3.2", "latest" | "3b") => Self {
                family: "llama",
                parameter_size: "3.2B".into(),
                parameter_count: 3_212_749_888,
                quantization: "Q4_K_M",
                weights_size: 2_019_377_376,
                context_length: 131_072,
                embedding_length: 3072,
                block_count: 28,
                head_count: 24,
                capabilities: &[CAP_COMPLETION, CAP_TOOLS],
                template: LLAMA3_TEMPLATE,
                parameters: stops(&["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]),
                license: LLAMA_LICENSE,
            },
            ("qwen2.5", "0.5b") => Self {
                family: "qwen2",
                parameter_size: "494.03M".into(),
                parameter_count: 494_032_768,
                quantization: "Q4_K_M",
                weights_size: 397_807_936,
                context_length: 32_768,
                embedding_length: 896,
                block_count: 24,
                head_count: 14,
                capabilities: &[CAP_COMPLETION, CAP_TOOLS, CAP_INSERT],
                template: CHATML_TEMPLATE,
                parameters: Vec::new(),
                license: APACHE_LICENSE,
            },
            ("nomic-embed-text", _) => Self {
                family: "nomic-bert",
                parameter_size: "137M".into(),
                parameter_count: 136_727_040,
                quantization: "F16",
                weights_size: 274_290_656,
                context_length: 2048,
                embedding_length: 768,
                block_count: 12,
                head_count: 12,
                capabilities: &[CAP_EMBEDDING],
                template: PROMPT_TEMPLATE,
                parameters: vec![("num_ctx".to_owned(), json!(8192))],
                license: APACHE_LICENSE,
            },
            _ => Self::guess(&model, &tag),
        }
    }

    /// A plausible spec for a model the simulator has no data on.
    fn guess(model: &str, tag: &str) -> Self {
        let embedding = ["embed", "minilm", "bge", "e5-"]
            .iter()
            .any(|m| model.contains(m));
        let billions = tag_size_billions(tag).unwrap_or(if embedding { 0.137 } else { 7.0 });
        let parameter_count = (billions * 1e9) as u64;
        let parameter_size = if billions < 1.0 {
            format!("{:.0}M", billions * 1000.0)
        } else {
            format!("{billions:.1}B")
        };
        let (family, template, context_length, caps): (&str, &str, u32, &'static [&'static str]) =
            if embedding {
                ("bert", PROMPT_TEMPLATE, 512, &[CAP_EMBEDDING])
            } else if model.starts_with("qwen3") {
                (
                    "qwen3",
                    CHATML_TEMPLATE,
                    40_960,
                    &[CAP_COMPLETION, CAP_TOOLS, CAP_THINKING],
                )
            } else if model.starts_with("deepseek-r1") {
                (
                    "qwen2",
                    CHATML_TEMPLATE,
                    131_072,
                    &[CAP_COMPLETION, CAP_THINKING],
                )
            } else if model.starts_with("gpt-oss") {
                (
                    "gptoss",
                    CHATML_TEMPLATE,
                    131_072,
                    &[CAP_COMPLETION, CAP_TOOLS, CAP_THINKING],
                )
            } else if model.starts_with("qwen") {
                (
                    "qwen2",
                    CHATML_TEMPLATE,
                    32_768,
                    &[CAP_COMPLETION, CAP_TOOLS],
                )
            } else if model.starts_with("gemma") {
                ("gemma3", GEMMA_TEMPLATE, 131_072, &[CAP_COMPLETION])
            } else if model.starts_with("phi") {
                ("phi3", CHATML_TEMPLATE, 16_384, &[CAP_COMPLETION])
            } else {
                (
                    "llama",
                    LLAMA3_TEMPLATE,
                    131_072,
                    &[CAP_COMPLETION, CAP_TOOLS],
                )
            };
        let (quantization, bytes_per_param) = if embedding {
            ("F16", 2.0)
        } else {
            ("Q4_K_M", 0.6)
        };
        let weights_size = (billions * 1e9 * bytes_per_param) as u64;
        let embedding_length = match parameter_count {
            _ if embedding => 768,
            0..1_000_000_000 => 1024,
            1_000_000_000..4_000_000_000 => 3072,
            4_000_000_000..20_000_000_000 => 4096,
            _ => 8192,
        };
        Self {
            family,
            parameter_size,
            parameter_count,
            quantization,
            weights_size,
            context_length,
            embedding_length,
            block_count: 32,
            head_count: 32,
            capabilities: caps,
            template,
            parameters: Vec::new(),
            license: APACHE_LICENSE,
        }
    }
}

/// `8b`, `0.5b`, `70b-instruct-q4_K_M`, `137m` → billions of parameters.
fn tag_size_billions(tag: &str) -> Option<f64> {
    let digits = tag
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter(|&i| i > 0)?;
    let n: f64 = tag[..digits].parse().ok()?;
    match tag[digits..].chars().next()? {
        'b' => Some(n),
        'm' => Some(n / 1000.0),
        _ => None,
    }
}

/// A model loaded into (simulated) memory.
#[derive(Clone, Debug)]
pub(crate) struct Loaded {
    pub(crate) model: Arc<Model>,
    pub(crate) expires_at: OffsetDateTime,
    pub(crate) context_length: u32,
}

/// Installed and loaded models, and uploaded blobs.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    installed: HashMap<String, Arc<Model>>,
    loaded: HashMap<String, Loaded>,
    blobs: HashSet<String>,
}

impl Registry {
    pub(crate) fn new(models: &[String]) -> Self {
        let mut registry = Self::default();
        for name in models {
            if let Ok(name) = ModelName::parse(name) {
                registry.install(Model::from_library(name));
            }
        }
        registry
    }

    /// The installed model by that name (matched case-insensitively).
    pub(crate) fn get(&self, name: &ModelName) -> Option<Arc<Model>> {
        self.installed.get(&name.key()).cloned()
    }

    pub(crate) fn install(&mut self, model: Model) {
        self.installed.insert(model.name.key(), Arc::new(model));
    }

    /// Removes a model; true if it was installed.
    pub(crate) fn remove(&mut self, name: &ModelName) -> bool {
        self.loaded.remove(&name.key());
        self.installed.remove(&name.key()).is_some()
    }

    /// Installed models, most recently modified first.
    pub(crate) fn list(&self) -> Vec<Arc<Model>> {
        let mut models: Vec<Arc<Model>> = self.installed.values().cloned().collect();
        models.sort_by(|a, b| {
            b.modified_at
                .cmp(&a.modified_at)
                .then_with(|| a.name.key().cmp(&b.name.key()))
        });
        models
    }

    /// Marks a model loaded until its keep-alive runs out.
    pub(crate) fn load(&mut self, model: &Arc<Model>, keep_alive: KeepAlive, context_length: u32) {
        let expires_at = keep_alive.expiry(clock::now());
        self.loaded.insert(
            model.name.key(),
            Loaded {
                model: Arc::clone(model),
                expires_at,
                context_length,
            },
        );
    }

    pub(crate) fn unload(&mut self, name: &ModelName) {
        self.loaded.remove(&name.key());
    }

    /// Loaded models whose keep-alive has not run out, longest remaining first.
    pub(crate) fn running(&mut self) -> Vec<Loaded> {
        let now = clock::now();
        self.loaded.retain(|_, l| l.expires_at > now);
        let mut running: Vec<Loaded> = self.loaded.values().cloned().collect();
        running.sort_by_key(|l| std::cmp::Reverse(l.expires_at));
        running
    }

    /// Whether a blob with this digest exists (uploaded, or a layer of an installed model).
    pub(crate) fn has_blob(&self, digest: &str) -> bool {
        self.blobs.contains(digest)
            || self
                .installed
                .values()
                .any(|m| m.layers.iter().any(|l| l.digest == digest))
    }

    pub(crate) fn add_blob(&mut self, digest: String) {
        self.blobs.insert(digest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_models_have_their_real_shape() {
        let m = Model::from_library(ModelName::parse("llama3.2").unwrap());
        assert_eq!(m.family, "llama");
        assert_eq!(m.parameter_size, "3.2B");
        assert_eq!(m.digest().len(), 64);
        assert!(m.size() > 2_000_000_000);
        assert!(
            m.parameters_text()
                .starts_with("stop                           \"<|start_header_id|>\"")
        );
        let e = Model::from_library(ModelName::parse("nomic-embed-text").unwrap());
        assert!(e.supports(CAP_EMBEDDING) && !e.supports(CAP_COMPLETION));
    }

    #[test]
    fn unknown_models_get_sizes_from_their_tag() {
        let m = Model::from_library(ModelName::parse("mistral:7b").unwrap());
        assert_eq!(m.parameter_size, "7.0B");
        let m = Model::from_library(ModelName::parse("qwen3:0.6b").unwrap());
        assert_eq!(m.parameter_size, "600M");
        assert!(m.supports(CAP_THINKING));
    }

    #[test]
    fn names_match_case_insensitively_and_lists_sort_newest_first() {
        let mut r = Registry::new(&["llama3.2:latest".to_owned()]);
        assert!(r.get(&ModelName::parse("LLAMA3.2").unwrap()).is_some());
        let mut newer = Model::from_library(ModelName::parse("b:1").unwrap());
        newer.modified_at += time::Duration::seconds(5);
        r.install(newer);
        assert_eq!(r.list()[0].display_name(), "b:1");
        assert!(r.remove(&ModelName::parse("b:1").unwrap()));
        assert!(!r.remove(&ModelName::parse("b:1").unwrap()));
    }
}
