//! Property tests: the parser never panics (arbitrary text, mutations of the
//! committed corpus), takes linear time (an operation counter, not the
//! clock), and `render` → `parse` gives back the request that built a model.
//!
//! Bounded: `MODELFILE_FUZZ_CASES` sets the number of cases (default 256).

use std::collections::BTreeMap;
use std::path::Path;

use modelfile::{
    CreateRequest, Message, ParamValue, ShowResponse, apply_fix, parse, parse_with_stats, render,
};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("MODELFILE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn corpus() -> &'static [String] {
    static CORPUS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    CORPUS.get_or_init(read_corpus)
}

fn read_corpus() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    let texts: Vec<String> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "Modelfile"))
        .filter_map(|p| std::fs::read(p).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect();
    assert!(texts.len() >= 10, "corpus missing in {}", dir.display());
    texts
}

/// Everything a caller may do with a result must not panic either.
fn exercise(text: &str) {
    let parsed = parse(text);
    let _ = parsed.create_request("corral/fuzz:1");
    let _ = modelfile::print(&parsed);
    for d in &parsed.diagnostics {
        if let Some(fix) = &d.fix {
            let _ = parse(&apply_fix(text, fix));
        }
    }
}

/// Pieces Modelfiles are made of, so random text reaches deep states.
fn modelfile_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("FROM ".to_owned()),
        Just("PARAMETER ".to_owned()),
        Just("MESSAGE user ".to_owned()),
        Just("SYSTEM ".to_owned()),
        Just("TEMPLATE ".to_owned()),
        Just("temperature ".to_owned()),
        Just("stop ".to_owned()),
        Just("\"".to_owned()),
        Just("\"\"\"".to_owned()),
        Just("#".to_owned()),
        Just(" ".to_owned()),
        Just("\t".to_owned()),
        Just("\n".to_owned()),
        Just("\r\n".to_owned()),
        Just("\r".to_owned()),
        Just("\u{200B}".to_owned()),
        Just("é👋".to_owned()),
        Just("0.1".to_owned()),
        Just("-".to_owned()),
        "[a-zA-Z_0-9:./~]{0,6}",
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn never_panics_on_arbitrary_strings(text in any::<String>()) {
        exercise(&text);
    }

    #[test]
    fn never_panics_on_modelfile_like_text(text in modelfile_text()) {
        exercise(&text);
    }

    #[test]
    fn never_panics_on_corpus_mutations(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, modelfile_text()), 1..6),
    ) {
        let corpus = corpus();
        let mut text = pick.get(corpus).clone();
        for (at, op, insert) in edits {
            let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
            let i = *at.get(&boundaries);
            let next = boundaries.iter().copied().find(|&b| b > i).unwrap_or(i);
            match op {
                0 => text.insert_str(i, &insert),
                1 => text.replace_range(i..next, ""),
                2 => { let dup = text[i..].chars().take(20).collect::<String>(); text.insert_str(i, &dup) }
                _ => text.replace_range(i..next, &insert),
            }
        }
        exercise(&text);
    }

    #[test]
    fn work_is_linear_in_the_length(text in modelfile_text()) {
        let (_, stats) = parse_with_stats(&text);
        prop_assert!(stats.steps <= 6 * text.len() as u64 + 10, "{} steps for {} bytes", stats.steps, text.len());
    }
}

#[test]
fn pathological_inputs_take_linear_work() {
    let patterns = [
        "SYSTEM \"\n",                                // unclosed quotes, one per line
        "SYSTEM \"\"\"\n  \t \n",                     // blank lines inside a quote
        "PARAMETR x\n",                               // an error on every line
        "PARAMETER temperature 0.1 # c\n",            // a comment trap on every line
        "PARAMETER zzzzzzzzzzzzzzzzzzzzzzzzzzzz 1\n", // suggestions on every line
        "PARAMETER top-k 5\n",
        "MESSAGE User hi\n",
        "\u{200B}",
        "FROM a\n",
        "#",
    ];
    for p in patterns {
        let small = p.repeat(200);
        let large = p.repeat(1600);
        let (_, s) = parse_with_stats(&small);
        let (_, l) = parse_with_stats(&large);
        assert!(
            l.steps <= 8 * s.steps + 8 * 64,
            "{p:?}: {} steps for n, {} for 8n",
            s.steps,
            l.steps
        );
        assert!(l.steps <= 6 * large.len() as u64 + 10, "{p:?}");
    }
}

/// Go's `%v` of a float64, as `/api/show` prints parameter values.
fn go_v(x: f64) -> String {
    let e = format!("{x:e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        format!("{x}")
    } else {
        format!(
            "{mantissa}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    }
}

/// Go's `%#v` of a string: double quotes, Go escapes.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn text_value() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just('a'),
            Just('Z'),
            Just(' '),
            Just('\t'),
            Just('\n'),
            Just('\r'),
            Just('#'),
            Just('"'),
            Just('{'),
            Just('.'),
            Just('é'),
            Just('👋'),
        ],
        0..24,
    )
    .prop_map(|v| v.into_iter().collect())
}

/// A line (before a line break) ending in `"""`: no Modelfile can hold such a
/// value (Ollama's reader would end the quote there).
fn writable(v: &str) -> bool {
    let lines: Vec<&str> = v.split(['\r', '\n']).collect();
    lines.len() < 2
        || !lines[..lines.len() - 1]
            .iter()
            .any(|l| l.trim_end_matches([' ', '\t']).ends_with("\"\"\""))
}

#[derive(Debug, Clone)]
struct Model {
    system: String,
    template: String,
    ints: Vec<(&'static str, i64)>,
    floats: Vec<(&'static str, f32)>,
    stops: Vec<String>,
    use_mmap: Option<bool>,
    messages: Vec<(&'static str, String)>,
    license: String,
    requires: Option<(u8, u8, u8)>,
}

fn model() -> impl Strategy<Value = Model> {
    let limit = 1i64 << 53; // /api/show keeps numbers as float64
    (
        (text_value(), text_value()),
        prop::collection::vec(
            (
                prop::sample::select(vec!["num_ctx", "num_predict", "seed", "top_k", "num_batch"]),
                -limit..limit,
            ),
            0..4,
        ),
        prop::collection::vec(
            (
                prop::sample::select(vec!["temperature", "top_p", "min_p", "repeat_penalty"]),
                any::<f32>().prop_filter("finite", |f| f.is_finite()),
            ),
            0..4,
        ),
        prop::collection::vec(text_value(), 0..3),
        any::<Option<bool>>(),
        prop::collection::vec(
            (
                prop::sample::select(vec!["system", "user", "assistant"]),
                text_value(),
            ),
            0..3,
        ),
        text_value(),
        any::<Option<(u8, u8, u8)>>(),
    )
        .prop_map(
            |((system, template), ints, floats, stops, use_mmap, messages, license, requires)| {
                Model {
                    system,
                    template,
                    ints,
                    floats,
                    stops,
                    use_mmap,
                    messages,
                    license,
                    requires,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn render_then_parse_gives_back_the_request(m in model()) {
        let texts = std::iter::once(&m.system).chain([&m.template, &m.license]).chain(&m.stops).chain(m.messages.iter().map(|(_, c)| c));
        prop_assume!(texts.clone().all(|t| writable(t)));

        let mut params: BTreeMap<String, ParamValue> = BTreeMap::new();
        let mut lines: Vec<String> = Vec::new();
        for (name, v) in &m.ints {
            params.insert((*name).to_owned(), ParamValue::Int(*v));
        }
        for (name, f) in &m.floats {
            params.insert((*name).to_owned(), ParamValue::Float(format!("{f}").parse().unwrap_or(0.0)));
        }
        if let Some(b) = m.use_mmap {
            params.insert("use_mmap".to_owned(), ParamValue::Bool(b));
        }
        if !m.stops.is_empty() {
            params.insert("stop".to_owned(), ParamValue::List(m.stops.clone()));
        }
        for (name, v) in &params {
            match v {
                ParamValue::Int(i) => lines.push(format!("{name:<30} {}", go_v(*i as f64))),
                ParamValue::Float(f) => lines.push(format!("{name:<30} {}", go_v(*f))),
                ParamValue::Bool(b) => lines.push(format!("{name:<30} {b}")),
                ParamValue::List(l) => lines.extend(l.iter().map(|s| format!("{name:<30} {}", go_quote(s)))),
            }
        }
        let requires = m.requires.map(|(a, b, c)| format!("{a}.{b}.{c}")).unwrap_or_default();
        let show = ShowResponse {
            modelfile: "# Modelfile generated by \"ollama show\"\n# To build a new Modelfile based on this, replace FROM with:\n# FROM corral/base:1\n\nFROM /root/.ollama/models/blobs/sha256-0000\n".to_owned(),
            parameters: lines.join("\n"),
            template: m.template.clone(),
            system: m.system.clone(),
            license: m.license.clone(),
            messages: m.messages.iter().map(|(r, c)| Message { role: (*r).to_owned(), content: c.clone() }).collect(),
            requires: requires.clone(),
            ..ShowResponse::default()
        };
        let text = render(&show);
        let parsed = parse(&text);
        prop_assert!(parsed.is_ok(), "{text}\n{:#?}", parsed.diagnostics);
        let got = parsed.create_request("corral/copy:1").map_err(|e| TestCaseError::fail(e.to_string()))?;
        let expected = CreateRequest {
            model: "corral/copy:1".to_owned(),
            from: "corral/base:1".to_owned(),
            template: m.template.clone(),
            system: m.system.clone(),
            license: if m.license.is_empty() { vec![] } else { vec![m.license.clone()] },
            parameters: params,
            messages: show.messages.clone(),
            requires,
            ..CreateRequest::default()
        };
        prop_assert_eq!(serde_json::to_value(&got).ok(), serde_json::to_value(&expected).ok(), "{}", text);
        // Rendering is deterministic.
        prop_assert_eq!(render(&show), text);
    }
}
