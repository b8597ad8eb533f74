//! Translation to `/api/create` (Ollama's `TestCreateRequest` ported), the
//! seed's code-review Modelfile, and the traps the editor explains.

use modelfile::examples::{CODE_REVIEW, CODE_REVIEW_FIXED};
use modelfile::{Severity, Stage, apply_fix, parse};
use serde_json::{Value, json};

fn request(text: &str) -> Value {
    let parsed = parse(text);
    let req = parsed
        .create_request("corral/test:1")
        .unwrap_or_else(|e| panic!("{text:?} is refused: {e}"));
    serde_json::to_value(req).unwrap_or(Value::Null)
}

#[test]
fn create_requests_match_ollamas_test_create_request() {
    // TestCreateRequest (parser_test.go); `model` and the always-sent empty
    // `name` are what `ollama create corral/test:1` adds in cmd.CreateHandler.
    assert_eq!(
        request("FROM test"),
        json!({"model": "corral/test:1", "from": "test", "name": ""})
    );
    assert_eq!(
        request("FROM test\nTEMPLATE some template\n"),
        json!({"model": "corral/test:1", "from": "test", "template": "some template", "name": ""})
    );
    assert_eq!(
        request(
            "FROM test\nLICENSE single license\nPARAMETER temperature 0.5\nMESSAGE user Hello\n"
        ),
        json!({
            "model": "corral/test:1", "from": "test", "license": ["single license"],
            "parameters": {"temperature": 0.5},
            "messages": [{"role": "user", "content": "Hello"}], "name": ""
        })
    );
    assert_eq!(
        request(
            "FROM test\nPARAMETER temperature 0.5\nPARAMETER top_k 1\nSYSTEM You are a bot.\nLICENSE license1\nLICENSE license2\nMESSAGE user Hello there!\nMESSAGE assistant Hi! How are you?\n"
        ),
        json!({
            "model": "corral/test:1", "from": "test", "license": ["license1", "license2"],
            "system": "You are a bot.",
            "parameters": {"temperature": 0.5, "top_k": 1},
            "messages": [
                {"role": "user", "content": "Hello there!"},
                {"role": "assistant", "content": "Hi! How are you?"}
            ],
            "name": ""
        })
    );
}

#[test]
fn seed_code_review_modelfile_is_refused_at_line_4_as_ollama_refuses_it() {
    let parsed = parse(CODE_REVIEW);
    let errors = parsed.errors();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let error = errors[0];
    assert_eq!((error.line(), error.column()), (4, 23));
    assert_eq!(error.code, "comment-in-value");
    assert_eq!(
        error.ollama_message.as_deref(),
        Some("invalid float value [0.1 # low temperature for consistent reviews]")
    );
    assert!(error.message.contains("own line"), "{}", error.message);
    let fix = error.fix.as_ref().expect("a fix is offered");
    assert_eq!(apply_fix(CODE_REVIEW, fix), CODE_REVIEW_FIXED);
}

#[test]
fn fixed_code_review_modelfile_gives_the_request_ollamas_client_sends() {
    let parsed = parse(CODE_REVIEW_FIXED);
    assert!(parsed.is_ok(), "{:#?}", parsed.diagnostics);
    assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
    // What `ollama create code-reviewer -f Modelfile` posts: Go's
    // api.CreateRequest with omitempty fields left out, float32 0.1 as 0.1.
    let expected = json!({
        "model": "code-reviewer",
        "from": "codellama:13b",
        "system": "You are a senior code reviewer. Review the code you are given for bugs,\nsecurity issues and readability. Be concise and specific.",
        "parameters": {"temperature": 0.1, "num_ctx": 8192, "num_predict": 2048},
        "name": ""
    });
    let req = parsed.create_request("code-reviewer").expect("accepted");
    assert_eq!(serde_json::to_value(&req).unwrap_or(Value::Null), expected);
    assert_eq!(
        serde_json::to_string(&req.parameters).unwrap_or_default(),
        r#"{"num_ctx":8192,"num_predict":2048,"temperature":0.1}"#
    );
}

#[test]
fn errors_on_lines_2_and_5_are_both_reported() {
    let text =
        "FROM llama3.2\nPARAMETER temperature hot\nSYSTEM fine\n# a comment\nPARAMETR top_k 5\n";
    let parsed = parse(text);
    let lines: Vec<u32> = parsed.errors().iter().map(|d| d.line()).collect();
    assert_eq!(lines, vec![2, 5]);
    // The later one is a syntax error Ollama's parser stops at; the first is
    // refused when Ollama's client types the value.
    let second = parsed.errors()[1];
    assert_eq!(second.stage, Stage::Syntax);
    assert!(
        second.message.contains("did you mean PARAMETER"),
        "{}",
        second.message
    );
    assert_eq!(
        second.ollama_message.as_deref(),
        Some(
            "(line 5): command must be one of \"from\", \"license\", \"template\", \"system\", \"adapter\", \"draft\", \"renderer\", \"parser\", \"parameter\", \"message\", or \"requires\""
        )
    );
}

#[test]
fn errors_after_an_unclosed_quote_are_still_reported() {
    let text = "FROM llama3.2\nSYSTEM \"You are\nhelpful\nPARAMETER top_k many\n";
    let parsed = parse(text);
    let codes: Vec<(&str, u32)> = parsed
        .errors()
        .iter()
        .map(|d| (d.code.as_str(), d.line()))
        .collect();
    assert_eq!(codes, vec![("unclosed-quote", 2), ("invalid-value", 4)]);
}

#[test]
fn ollama_counts_crlf_as_two_lines_but_the_editor_as_one() {
    let parsed = parse("FROM foo\r\nSYSTEM ok\r\nBAD x\r\n");
    let error = parsed.errors()[0];
    assert_eq!(error.line(), 3);
    assert!(
        error
            .ollama_message
            .as_deref()
            .is_some_and(|m| m.starts_with("(line 5): ")),
        "{error:?}"
    );
}

#[test]
fn keywords_are_case_insensitive_but_parameter_names_and_roles_are_not() {
    let parsed = parse("from llama3\nparameter Temperature 0.2\nMessage User hi\n");
    let codes: Vec<&str> = parsed.errors().iter().map(|d| d.code.as_str()).collect();
    assert_eq!(codes, vec!["unknown-parameter", "invalid-role"]);
    let temp = parsed.errors()[0];
    assert_eq!(
        temp.ollama_message.as_deref(),
        Some("unknown parameter 'Temperature'")
    );
    let fixed = apply_fix(
        "from llama3\nparameter Temperature 0.2\n",
        temp.fix.as_ref().expect("fix"),
    );
    assert_eq!(fixed, "from llama3\nparameter temperature 0.2\n");
    let role = parsed.errors()[1];
    assert_eq!(
        role.fix.as_ref().map(|f| f.edits[0].replacement.as_str()),
        Some("user")
    );
}

#[test]
fn two_blanks_after_parameter_read_an_empty_name() {
    let text = "FROM llama3\nPARAMETER  temperature 0.2\n";
    let parsed = parse(text);
    let error = parsed.errors()[0];
    assert_eq!(
        error.ollama_message.as_deref(),
        Some("unknown parameter ''")
    );
    let fixed = apply_fix(text, error.fix.as_ref().expect("fix"));
    assert_eq!(fixed, "FROM llama3\nPARAMETER temperature 0.2\n");
    assert!(parse(&fixed).is_ok());
}

#[test]
fn unknown_parameters_get_a_close_match() {
    let text = "FROM llama3\nPARAMETER num_ctxx 4096\n";
    let parsed = parse(text);
    let error = parsed.errors()[0];
    assert!(
        error.message.contains("did you mean num_ctx?"),
        "{}",
        error.message
    );
    assert!(parse(&apply_fix(text, error.fix.as_ref().expect("fix"))).is_ok());
}

#[test]
fn a_comment_kept_in_a_stop_or_system_value_is_a_warning_with_a_fix() {
    let text = "FROM llama3\nPARAMETER stop </s> # end token\nSYSTEM Be brief. # keep it short\n";
    let parsed = parse(text);
    assert!(parsed.is_ok());
    let warnings = parsed.warnings();
    assert_eq!(warnings.len(), 2);
    assert!(
        warnings
            .iter()
            .all(|w| w.code == "comment-in-value" && w.severity == Severity::Warning)
    );
    let req = parsed.create_request("m").expect("accepted");
    assert_eq!(req.system, "Be brief. # keep it short");
    let fixed = apply_fix(text, warnings[1].fix.as_ref().expect("fix"));
    assert_eq!(
        fixed,
        "FROM llama3\nPARAMETER stop </s> # end token\n# keep it short\nSYSTEM Be brief.\n"
    );
}

#[test]
fn deprecated_parameters_are_dropped_with_a_warning_and_removed_ones_refused() {
    let parsed = parse("FROM llama3\nPARAMETER mirostat 2\nPARAMETER numa true\n");
    assert_eq!(parsed.warnings()[0].code, "deprecated-parameter");
    assert_eq!(
        parsed.errors()[0].ollama_message.as_deref(),
        Some("unknown parameter 'numa'")
    );
    let ok = parse("FROM llama3\nPARAMETER mirostat 2\n")
        .create_request("m")
        .expect("accepted");
    assert!(ok.parameters.is_empty());
}

#[test]
fn stop_repeats_into_a_list_and_other_parameters_keep_the_last() {
    let parsed = parse(
        "FROM llama3\nPARAMETER stop a\nPARAMETER temperature 1\nPARAMETER stop \"b \"\nPARAMETER temperature 0.5\n",
    );
    let req =
        serde_json::to_value(parsed.create_request("m").expect("accepted")).unwrap_or(Value::Null);
    assert_eq!(
        req["parameters"],
        json!({"stop": ["a", "b "], "temperature": 0.5})
    );
    assert_eq!(
        parsed.warnings().len(),
        1,
        "the second temperature overrides the first"
    );
}

#[test]
fn local_files_are_refused_but_server_blobs_are_accepted() {
    for from in [
        "./model.gguf",
        "/abs/model.gguf",
        "~/models/llama",
        ".",
        "../weights",
    ] {
        let parsed = parse(&format!("FROM {from}\n"));
        assert_eq!(parsed.errors()[0].code, "local-file", "{from}");
        assert_eq!(parsed.errors()[0].stage, Stage::Corral);
    }
    let digest = "0123456789abcdef".repeat(4);
    let text = format!(
        "FROM /root/.ollama/models/blobs/sha256-{digest}\nADAPTER /blobs/sha256-{digest}\n"
    );
    let req = serde_json::to_value(parse(&text).create_request("m").expect("accepted"))
        .unwrap_or(Value::Null);
    let file = format!("sha256-{digest}");
    assert_eq!(
        req["files"],
        json!({file.clone(): format!("sha256:{digest}")})
    );
    assert_eq!(req["adapters"], json!({file: format!("sha256:{digest}")}));
    assert_eq!(
        parse("FROM llama3\nADAPTER ./lora.gguf\n").errors()[0].code,
        "local-file"
    );
}

#[test]
fn requires_takes_a_semver_and_sends_it_without_v() {
    let req = parse("FROM llama3\nREQUIRES v0.14.0\n")
        .create_request("m")
        .expect("accepted");
    assert_eq!(req.requires, "0.14.0");
    let parsed = parse("FROM llama3\nREQUIRES latest\n");
    assert_eq!(
        parsed.errors()[0].ollama_message.as_deref(),
        Some("requires must be a valid semver (e.g. 0.14.0)")
    );
}

#[test]
fn invalid_model_names_are_refused_as_the_server_would() {
    let parsed = parse("FROM     FOOO BAR    ");
    assert!(parsed.syntax_ok());
    assert_eq!(
        parsed.errors()[0].ollama_message.as_deref(),
        Some("invalid model name")
    );
    assert!(parse("FROM llama3").create_request("not a name").is_err());
}

#[test]
fn invisible_characters_are_dropped_like_ollama_with_a_warning() {
    let parsed = parse("FROM llama3\nSYSTEM a\u{200B}b\n");
    let req = parsed.create_request("m").expect("accepted");
    assert_eq!(req.system, "ab");
    assert_eq!(parsed.warnings()[0].code, "invisible-character");
}

#[test]
fn diagnostics_serialise_for_the_editor() {
    let parsed = parse(CODE_REVIEW);
    let json = serde_json::to_value(&parsed.diagnostics[0]).unwrap_or(Value::Null);
    assert_eq!(json["severity"], "error");
    assert_eq!(json["span"]["start"], json!({"line": 4, "column": 23}));
    assert_eq!(
        json["fix"]["edits"][0]["replacement"],
        "# low temperature for consistent reviews\n"
    );
    let back: modelfile::Parsed =
        serde_json::from_value(serde_json::to_value(&parsed).unwrap_or(Value::Null))
            .expect("round trip");
    assert_eq!(back, parsed);
}
