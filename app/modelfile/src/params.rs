//! The parameters Ollama accepts (the JSON names of its `api.Options` and
//! `api.Runner` fields), their types, and typing a value as Go's `strconv`
//! does in `api.FormatParams`, with Ollama's error texts.

use serde::{Deserialize, Serialize};

/// The JSON type Ollama gives a parameter's value.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    /// Go `int` (parsed as a 64-bit decimal integer).
    Int,
    /// Go `float32`.
    Float,
    /// Go `bool` (`1 t T TRUE true True 0 f F FALSE false False`).
    Bool,
    /// Go `[]string`: the parameter may be repeated, each line adds one.
    StringList,
}

/// One row of the parameter table.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParameterInfo {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub ty: ParamType,
    /// One line for the editor's parameter help.
    pub help: &'static str,
    /// Ollama drops the line with a warning ("parameter … is deprecated").
    pub deprecated: bool,
}

const fn p(name: &'static str, ty: ParamType, help: &'static str) -> ParameterInfo {
    ParameterInfo {
        name,
        ty,
        help,
        deprecated: false,
    }
}

const fn old(name: &'static str, ty: ParamType) -> ParameterInfo {
    ParameterInfo {
        name,
        ty,
        help: "Deprecated: Ollama ignores it and prints a warning.",
        deprecated: true,
    }
}

use ParamType::{Bool, Float, Int, StringList};

/// Every parameter name Ollama knows, in the order Corral renders them.
/// Names are case-sensitive. Deprecated ones are accepted and dropped.
pub const PARAMETERS: &[ParameterInfo] = &[
    p("num_ctx", Int, "Context window size in tokens."),
    p(
        "num_predict",
        Int,
        "Maximum tokens to generate (-1 = no limit).",
    ),
    p(
        "temperature",
        Float,
        "Sampling temperature; higher is more creative.",
    ),
    p("top_k", Int, "Sample only from the k most likely tokens."),
    p(
        "top_p",
        Float,
        "Sample from the smallest token set with this total probability.",
    ),
    p(
        "min_p",
        Float,
        "Drop tokens less likely than this fraction of the most likely one.",
    ),
    p(
        "typical_p",
        Float,
        "Locally typical sampling threshold (1.0 = off).",
    ),
    p(
        "repeat_last_n",
        Int,
        "How many recent tokens the repetition penalty looks at (-1 = num_ctx).",
    ),
    p(
        "repeat_penalty",
        Float,
        "Penalty for repeated tokens (1.0 = off).",
    ),
    p(
        "presence_penalty",
        Float,
        "Penalty for tokens already present in the text.",
    ),
    p(
        "frequency_penalty",
        Float,
        "Penalty growing with how often a token appeared.",
    ),
    p(
        "seed",
        Int,
        "Random seed; the same seed and prompt give the same answer.",
    ),
    p(
        "stop",
        StringList,
        "A stop sequence; repeat the line for several.",
    ),
    p(
        "num_keep",
        Int,
        "Tokens of the prompt kept when the context is shifted.",
    ),
    p("num_batch", Int, "Prompt processing batch size."),
    p("num_gpu", Int, "Number of layers offloaded to the GPU."),
    p(
        "main_gpu",
        Int,
        "GPU used for small tensors when several are present.",
    ),
    p("use_mmap", Bool, "Memory-map the model file."),
    p("num_thread", Int, "CPU threads used for generation."),
    p(
        "draft_num_predict",
        Int,
        "Speculative draft tokens per step (0 = off).",
    ),
    old("penalize_newline", Bool),
    old("low_vram", Bool),
    old("f16_kv", Bool),
    old("logits_all", Bool),
    old("vocab_only", Bool),
    old("use_mlock", Bool),
    old("mirostat", Int),
    old("mirostat_tau", Float),
    old("mirostat_eta", Float),
];

/// Names Ollama once accepted and now refuses as unknown.
pub(crate) const REMOVED: &[&str] = &[
    "numa",
    "num_gqa",
    "tfs_z",
    "rope_frequency_base",
    "rope_frequency_scale",
];

/// Looks a parameter up by its exact (case-sensitive) name.
pub fn parameter(name: &str) -> Option<&'static ParameterInfo> {
    PARAMETERS.iter().find(|p| p.name == name)
}

/// A typed parameter value, as it goes into `/api/create`'s `parameters`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(untagged)]
pub enum ParamValue {
    Bool(bool),
    Int(i64),
    /// A float32 value, held as the f64 whose shortest decimal form equals
    /// the float32's (so it serialises as Go does: `0.1`, not `0.100000001…`).
    Float(f64),
    List(Vec<String>),
}

/// Why a value does not type.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TypeError {
    /// Ollama's text, e.g. `invalid float value [abc]`.
    pub ollama: String,
    /// What was expected, in our words.
    pub expected: &'static str,
}

/// Types `value` as Ollama's `FormatParams` does for a parameter of type `ty`.
/// The list type yields a one-element list (lines are joined by the caller).
pub(crate) fn type_value(ty: ParamType, value: &str) -> Result<ParamValue, TypeError> {
    let fail = |kind: &str, expected| TypeError {
        ollama: format!("invalid {kind} value [{value}]"),
        expected,
    };
    match ty {
        Int => value
            .parse::<i64>()
            .map(ParamValue::Int)
            .map_err(|_| fail("int", "a whole number (like 4096)")),
        Bool => parse_go_bool(value)
            .map(ParamValue::Bool)
            .ok_or_else(|| fail("bool", "true or false")),
        StringList => Ok(ParamValue::List(vec![value.to_owned()])),
        Float => {
            let f = parse_go_float32(value).ok_or_else(|| fail("float", "a number (like 0.7)"))?;
            if !f.is_finite() {
                // Go's JSON encoder refuses these when the client sends the request.
                let shown = if f.is_nan() {
                    "NaN"
                } else if f > 0.0 {
                    "+Inf"
                } else {
                    "-Inf"
                };
                return Err(TypeError {
                    ollama: format!("json: unsupported value: {shown}"),
                    expected: "a finite number",
                });
            }
            Ok(ParamValue::Float(float32_as_json(f)))
        }
    }
}

/// The f64 that prints as the float32's shortest decimal form.
pub(crate) fn float32_as_json(f: f32) -> f64 {
    format!("{f}").parse::<f64>().unwrap_or(f64::from(f))
}

fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseFloat(s, 32)`: decimal or hexadecimal (`0x1p-2`)
/// literals, `_` between digits, `inf`/`infinity`/`nan` in any case.
/// `None` where Go returns an error (syntax, or out of float32 range).
pub(crate) fn parse_go_float32(s: &str) -> Option<f32> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'+') => (false, s.get(1..)?),
        Some(b'-') => (true, s.get(1..)?),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(if neg {
            f32::NEG_INFINITY
        } else {
            f32::INFINITY
        });
    }
    if lower == "nan" {
        return (s.len() == 3).then_some(f32::NAN);
    }
    if body.contains('_') && !underscores_ok(body) {
        return None;
    }
    let clean: String = body.chars().filter(|&c| c != '_').collect();
    let magnitude = if let Some(hex) = clean
        .strip_prefix("0x")
        .or_else(|| clean.strip_prefix("0X"))
    {
        parse_hex_float(hex)?
    } else {
        if !is_decimal_literal(&clean) {
            return None;
        }
        let v = clean.parse::<f32>().ok()?;
        if v.is_infinite() {
            return None; // Go: value out of range.
        }
        v
    };
    Some(if neg { -magnitude } else { magnitude })
}

/// digits [ "." digits ] [ ("e"|"E") [sign] digits ], with at least one digit
/// in the mantissa.
fn is_decimal_literal(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let mut digits = 0;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
        digits += 1;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == b.len()
}

/// Hex mantissa with optional point, then a mandatory binary exponent `p±n`.
fn parse_hex_float(s: &str) -> Option<f32> {
    let (mantissa, exp) = s.split_once(['p', 'P'])?;
    let exp: i64 = match exp.strip_prefix('+') {
        Some(e) if !e.starts_with('-') => e.parse().ok()?,
        _ => exp.parse().ok()?,
    };
    if exp.unsigned_abs() > 100_000 && !mantissa.chars().any(|c| c.is_ascii_hexdigit() && c != '0')
    {
        return Some(0.0);
    }
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut value: f64 = 0.0;
    let mut scale: i64 = 0;
    for c in int.chars() {
        value = value * 16.0 + f64::from(c.to_digit(16)?);
    }
    for c in frac.chars() {
        value = value * 16.0 + f64::from(c.to_digit(16)?);
        scale = scale.saturating_sub(4);
    }
    let e = exp.saturating_add(scale).clamp(-2000, 2000) as i32;
    let v = (value * 2f64.powi(e.clamp(-1000, 1000)) * 2f64.powi(e - e.clamp(-1000, 1000))) as f32;
    if v.is_infinite() {
        return None;
    }
    Some(v)
}

/// Go's rule: `_` only between digits (or after a base prefix).
fn underscores_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let (mut i, hex) = if b.len() >= 2
        && b.first() == Some(&b'0')
        && matches!(b.get(1), Some(b'x' | b'X' | b'b' | b'B' | b'o' | b'O'))
    {
        (2, matches!(b.get(1), Some(b'x' | b'X')))
    } else {
        (0, false)
    };
    // 'd' digit (or base prefix), '_' underscore, '!' other, '^' start.
    let mut saw = if i == 2 { 'd' } else { '^' };
    while let Some(&c) = b.get(i) {
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = 'd';
        } else if c == b'_' {
            if saw != 'd' {
                return false;
            }
            saw = '_';
        } else {
            if saw == '_' {
                return false;
            }
            saw = '!';
        }
        i += 1;
    }
    saw != '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_follow_go_parse_float() {
        for (s, want) in [
            ("0.1", Some(0.1f32)),
            ("1", Some(1.0)),
            (".5", Some(0.5)),
            ("5.", Some(5.0)),
            ("+1e3", Some(1000.0)),
            ("1_000.5", Some(1000.5)),
            ("0x1p-2", Some(0.25)),
            ("0x.8p1", Some(1.0)),
            ("1e-50", Some(0.0)),
        ] {
            assert_eq!(parse_go_float32(s), want, "{s}");
        }
        for s in [
            "",
            "abc",
            "1e",
            "0x1",
            "_1",
            "1__0",
            "1_",
            "1e39",
            "0.1 # low",
            " 1",
            "1,5",
            "+nan",
        ] {
            assert_eq!(parse_go_float32(s), None, "{s}");
        }
        assert!(parse_go_float32("-Infinity").is_some_and(|f| f.is_infinite()));
        assert!(parse_go_float32("NaN").is_some_and(f32::is_nan));
    }

    #[test]
    fn float_values_serialise_like_go_float32() {
        let Ok(ParamValue::Float(f)) = type_value(Float, "0.1") else {
            panic!("0.1 is a float");
        };
        assert_eq!(serde_json::to_string(&f).ok().as_deref(), Some("0.1"));
    }

    #[test]
    fn ints_and_bools_follow_go() {
        assert_eq!(type_value(Int, "+42"), Ok(ParamValue::Int(42)));
        assert!(type_value(Int, "1_000").is_err());
        assert!(type_value(Int, "9223372036854775808").is_err());
        assert_eq!(type_value(Bool, "T"), Ok(ParamValue::Bool(true)));
        assert_eq!(
            type_value(Bool, "yes").map_err(|e| e.ollama),
            Err("invalid bool value [yes]".to_owned())
        );
        assert_eq!(
            type_value(Float, "inf").map_err(|e| e.ollama),
            Err("json: unsupported value: +Inf".to_owned())
        );
    }
}
