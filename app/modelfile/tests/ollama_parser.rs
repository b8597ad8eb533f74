//! Ollama's own `parser/parser_test.go` cases (ollama/ollama), ported: the
//! same inputs, the same accept/refuse decision of `parser.ParseFile`, and the
//! same resulting commands (Go's `Command{Name, Args}` form). Each test names
//! the Go test it comes from.

use modelfile::{Keyword, Parsed, Stage, parse, parse_bytes};

/// Go's `Modelfile.Commands`: `model` for FROM, the parameter's name for
/// PARAMETER, `role: content` for MESSAGE, the lower-case keyword otherwise.
fn commands(parsed: &Parsed) -> Vec<(String, String)> {
    parsed
        .instructions
        .iter()
        .map(|i| {
            let name = match i.keyword {
                Keyword::From => "model".to_owned(),
                Keyword::Parameter => i.name.clone().unwrap_or_default(),
                k => k.as_str().to_ascii_lowercase(),
            };
            let args = match (i.keyword, &i.name) {
                (Keyword::Message, Some(role)) => format!("{role}: {}", i.value),
                _ => i.value.clone(),
            };
            (name, args)
        })
        .collect()
}

fn cmds(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, a)| ((*n).to_owned(), (*a).to_owned()))
        .collect()
}

/// `ParseFile` succeeds, with these commands.
#[track_caller]
fn accepts(input: &str, expected: &[(&str, &str)]) {
    let parsed = parse(input);
    assert!(
        parsed.syntax_ok(),
        "Ollama's parser accepts {input:?}, we refuse: {:#?}",
        parsed.diagnostics
    );
    assert_eq!(commands(&parsed), cmds(expected), "input: {input:?}");
}

/// `ParseFile` fails with this error text.
#[track_caller]
fn refuses(input: &str, ollama_message: &str) {
    let parsed = parse(input);
    let first = parsed
        .diagnostics
        .iter()
        .filter(|d| d.is_error() && d.stage == Stage::Syntax)
        .min_by_key(|d| d.span.start);
    assert_eq!(
        first.and_then(|d| d.ollama_message.as_deref()),
        Some(ollama_message),
        "input: {input:?}, diagnostics: {:#?}",
        parsed.diagnostics
    );
}

const LLAMA3_TEMPLATE: &str = "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}<|eot_id|>";

#[test]
fn test_parse_file_file() {
    // TestParseFileFile
    let input = format!(
        "\nFROM model1\nADAPTER adapter1\nLICENSE MIT\nPARAMETER param1 value1\nPARAMETER param2 value2\nTEMPLATE \"\"\"{LLAMA3_TEMPLATE}\"\"\"    \n"
    );
    accepts(
        &input,
        &[
            ("model", "model1"),
            ("adapter", "adapter1"),
            ("license", "MIT"),
            ("param1", "value1"),
            ("param2", "value2"),
            ("template", LLAMA3_TEMPLATE),
        ],
    );
}

#[test]
fn test_parse_file_draft() {
    // TestParseFileDraft
    accepts(
        "\nFROM base\nDRAFT ./assistant\n",
        &[("model", "base"), ("draft", "./assistant")],
    );
}

#[test]
fn test_parse_file_trim_space() {
    // TestParseFileTrimSpace
    let input = format!(
        "\nFROM \"     model 1\"\nADAPTER      adapter3\nLICENSE \"MIT       \"\nPARAMETER param1        value1\nPARAMETER param2    value2\nTEMPLATE \"\"\"   {LLAMA3_TEMPLATE}   \"\"\"    \n"
    );
    let padded = format!("   {LLAMA3_TEMPLATE}   ");
    accepts(
        &input,
        &[
            ("model", "     model 1"),
            ("adapter", "adapter3"),
            ("license", "MIT       "),
            ("param1", "value1"),
            ("param2", "value2"),
            ("template", &padded),
        ],
    );
}

#[test]
fn test_parse_file_from() {
    // TestParseFileFrom
    accepts("FROM \"FOO  BAR  \"", &[("model", "FOO  BAR  ")]);
    accepts(
        "FROM \"FOO BAR\"\nPARAMETER param1 value1",
        &[("model", "FOO BAR"), ("param1", "value1")],
    );
    accepts("FROM     FOOO BAR    ", &[("model", "FOOO BAR")]);
    accepts("FROM /what/is/the path ", &[("model", "/what/is/the path")]);
    accepts("FROM foo", &[("model", "foo")]);
    accepts("FROM /path/to/model", &[("model", "/path/to/model")]);
    accepts(
        "FROM /path/to/model/fp16.bin",
        &[("model", "/path/to/model/fp16.bin")],
    );
    accepts("FROM llama3:latest", &[("model", "llama3:latest")]);
    accepts(
        "FROM llama3:7b-instruct-q4_K_M",
        &[("model", "llama3:7b-instruct-q4_K_M")],
    );
    refuses("", "no FROM line");
    refuses("PARAMETER param1 value1", "no FROM line");
    accepts(
        "PARAMETER param1 value1\nFROM foo",
        &[("param1", "value1"), ("model", "foo")],
    );
    accepts(
        "PARAMETER what the \nFROM lemons make lemonade ",
        &[("what", "the"), ("model", "lemons make lemonade")],
    );
}

#[test]
fn test_parse_file_parameters_missing_value() {
    // TestParseFileParametersMissingValue
    refuses("\nFROM foo\nPARAMETER param1\n", "unexpected EOF: param1");
}

#[test]
fn test_parse_file_bad_command() {
    // TestParseFileBadCommand: Ollama says line 3, and so do we.
    let input = "\nFROM foo\nBADCOMMAND param1 value1\n";
    refuses(input, &format!("(line 3): {}", INVALID_COMMAND));
    let parsed = parse(input);
    assert_eq!(parsed.errors().first().map(|d| d.line()), Some(3));
}

const INVALID_COMMAND: &str = "command must be one of \"from\", \"license\", \"template\", \"system\", \"adapter\", \"draft\", \"renderer\", \"parser\", \"parameter\", \"message\", or \"requires\"";

#[test]
fn test_parse_file_renderer_and_parser() {
    // TestParseFileRenderer, TestParseFileParser
    accepts(
        "\nFROM foo\nRENDERER renderer1\n",
        &[("model", "foo"), ("renderer", "renderer1")],
    );
    accepts(
        "\nFROM foo\nPARSER parser1\n",
        &[("model", "foo"), ("parser", "parser1")],
    );
}

#[test]
fn test_parse_file_messages() {
    // TestParseFileMessages
    accepts(
        "\nFROM foo\nMESSAGE system You are a file parser. Always parse things.\n",
        &[
            ("model", "foo"),
            (
                "message",
                "system: You are a file parser. Always parse things.",
            ),
        ],
    );
    accepts(
        "\nFROM foo\nMESSAGE system You are a file parser. Always parse things.",
        &[
            ("model", "foo"),
            (
                "message",
                "system: You are a file parser. Always parse things.",
            ),
        ],
    );
    accepts(
        "\nFROM foo\nMESSAGE system You are a file parser. Always parse things.\nMESSAGE user Hey there!\nMESSAGE assistant Hello, I want to parse all the things!\n",
        &[
            ("model", "foo"),
            (
                "message",
                "system: You are a file parser. Always parse things.",
            ),
            ("message", "user: Hey there!"),
            (
                "message",
                "assistant: Hello, I want to parse all the things!",
            ),
        ],
    );
    accepts(
        "\nFROM foo\nMESSAGE system \"\"\"\nYou are a multiline file parser. Always parse things.\n\"\"\"\n\t\t\t",
        &[
            ("model", "foo"),
            (
                "message",
                "system: \nYou are a multiline file parser. Always parse things.\n",
            ),
        ],
    );
    refuses(
        "\nFROM foo\nMESSAGE badguy I'm a bad guy!\n",
        "(line 3): message role must be one of \"system\", \"user\", or \"assistant\"",
    );
    refuses("\nFROM foo\nMESSAGE system\n", "unexpected EOF: system");
    refuses("\nFROM foo\nMESSAGE system", "unexpected EOF");
}

#[test]
fn test_parse_file_quoted() {
    // TestParseFileQuoted
    accepts(
        "\nFROM foo\nSYSTEM \"\"\"\nThis is a\nmultiline system.\n\"\"\"\n\t\t\t",
        &[
            ("model", "foo"),
            ("system", "\nThis is a\nmultiline system.\n"),
        ],
    );
    accepts(
        "\nFROM foo\nSYSTEM \"\"\"\nThis is a\nmultiline system.\"\"\"\n\t\t\t",
        &[
            ("model", "foo"),
            ("system", "\nThis is a\nmultiline system."),
        ],
    );
    accepts(
        "\nFROM foo\nSYSTEM \"\"\"This is a\nmultiline system.\"\"\"\n\t\t\t",
        &[("model", "foo"), ("system", "This is a\nmultiline system.")],
    );
    accepts(
        "\nFROM foo\nSYSTEM \"\"\"This is a multiline system.\"\"\"\n\t\t\t",
        &[("model", "foo"), ("system", "This is a multiline system.")],
    );
    refuses(
        "\nFROM foo\nSYSTEM \"\"\"This is a multiline system.\"\"\n\t\t\t",
        "unexpected EOF",
    );
    refuses("\nFROM foo\nSYSTEM \"\n\t\t\t", "unexpected EOF");
    accepts(
        "\nFROM foo\nSYSTEM \"\"\"\nThis is a multiline system with \"quotes\".\n\"\"\"\n",
        &[
            ("model", "foo"),
            ("system", "\nThis is a multiline system with \"quotes\".\n"),
        ],
    );
    accepts(
        "\nFROM foo\nSYSTEM \"\"\"\"\"\"\n",
        &[("model", "foo"), ("system", "")],
    );
    accepts(
        "\nFROM foo\nSYSTEM \"\"\n",
        &[("model", "foo"), ("system", "")],
    );
    accepts(
        "\nFROM foo\nSYSTEM \"'\"\n",
        &[("model", "foo"), ("system", "'")],
    );
    accepts(
        "\nFROM foo\nSYSTEM \"\"\"''\"'\"\"'\"\"'\"'''''\"\"'\"\"'\"\"\"\n",
        &[
            ("model", "foo"),
            ("system", "''\"'\"\"'\"\"'\"'''''\"\"'\"\"'"),
        ],
    );
    accepts(
        "\nFROM foo\nTEMPLATE \"\"\"\n{{ .Prompt }}\n\"\"\"",
        &[("model", "foo"), ("template", "\n{{ .Prompt }}\n")],
    );
}

#[test]
fn test_parse_file_parameters() {
    // TestParseFileParameters: "FROM foo\nPARAMETER <case>\n".
    let cases = [
        ("numa true", "numa", "true"),
        ("num_ctx 1", "num_ctx", "1"),
        ("num_batch 1", "num_batch", "1"),
        ("num_gqa 1", "num_gqa", "1"),
        ("num_gpu 1", "num_gpu", "1"),
        ("main_gpu 1", "main_gpu", "1"),
        ("use_mmap true", "use_mmap", "true"),
        ("num_thread 1", "num_thread", "1"),
        ("num_keep 1", "num_keep", "1"),
        ("seed 1", "seed", "1"),
        ("num_predict 1", "num_predict", "1"),
        ("top_k 1", "top_k", "1"),
        ("top_p 1.0", "top_p", "1.0"),
        ("min_p 0.05", "min_p", "0.05"),
        ("typical_p 1.0", "typical_p", "1.0"),
        ("repeat_last_n 1", "repeat_last_n", "1"),
        ("temperature 1.0", "temperature", "1.0"),
        ("repeat_penalty 1.0", "repeat_penalty", "1.0"),
        ("presence_penalty 1.0", "presence_penalty", "1.0"),
        ("frequency_penalty 1.0", "frequency_penalty", "1.0"),
        ("penalize_newline true", "penalize_newline", "true"),
        ("stop ### User:", "stop", "### User:"),
        ("stop ### User: ", "stop", "### User:"),
        ("stop \"### User:\"", "stop", "### User:"),
        ("stop \"### User: \"", "stop", "### User: "),
        ("stop \"\"\"### User:\"\"\"", "stop", "### User:"),
        ("stop \"\"\"### User:\n\"\"\"", "stop", "### User:\n"),
        ("stop <|endoftext|>", "stop", "<|endoftext|>"),
        ("stop <|eot_id|>", "stop", "<|eot_id|>"),
        ("stop </s>", "stop", "</s>"),
    ];
    for (case, name, value) in cases {
        accepts(
            &format!("FROM foo\nPARAMETER {case}\n"),
            &[("model", "foo"), (name, value)],
        );
    }
}

#[test]
fn test_parse_file_comments() {
    // TestParseFileComments
    accepts("\n# comment\nFROM foo\n\t", &[("model", "foo")]);
}

#[test]
fn test_parse_file_format_parse_file() {
    // TestParseFileFormatParseFile: parse, print with Ollama's quoting, parse
    // again, same commands. Ours prints with `render`'s quoting rules.
    let cases = [
        "\nFROM foo\nADAPTER adapter1\nLICENSE MIT\nPARAMETER param1 value1\nPARAMETER param2 value2\nTEMPLATE template1\nMESSAGE system You are a file parser. Always parse things.\nMESSAGE user Hey there!\nMESSAGE assistant Hello, I want to parse all the things!\n",
        "\nFROM foo\nADAPTER adapter1\nLICENSE MIT\nPARAMETER param1 value1\nPARAMETER param2 value2\nTEMPLATE template1\nMESSAGE system \"\"\"\nYou are a store greeter. Always respond with \"Hello!\".\n\"\"\"\nMESSAGE user Hey there!\nMESSAGE assistant Hello, I want to parse all the things!\n",
        "\nFROM foo\nADAPTER adapter1\nLICENSE \"\"\"\nVery long and boring legal text.\nBlah blah blah.\n\"Oh look, a quote!\"\n\"\"\"\n\nPARAMETER param1 value1\nPARAMETER param2 value2\nTEMPLATE template1\nMESSAGE system \"\"\"\nYou are a store greeter. Always respond with \"Hello!\".\n\"\"\"\nMESSAGE user Hey there!\nMESSAGE assistant Hello, I want to parse all the things!\n",
        "\nFROM foo\nSYSTEM \"\"\n",
    ];
    for case in cases {
        let first = parse(case);
        assert!(first.syntax_ok(), "{case:?}");
        let printed = modelfile::print(&first);
        let second = parse(&printed);
        assert!(second.syntax_ok(), "{printed:?}");
        assert_eq!(commands(&first), commands(&second), "{printed}");
    }
}

#[test]
fn test_parse_file_utf16() {
    // TestParseFileUTF16ParseFile
    let data =
        "FROM bob\nPARAMETER param1 1\nPARAMETER param2 4096\nSYSTEM You are a utf16 file.\n";
    let expected = cmds(&[
        ("model", "bob"),
        ("param1", "1"),
        ("param2", "4096"),
        ("system", "You are a utf16 file."),
    ]);
    let le: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(data.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let be: Vec<u8> = [0xFE, 0xFF]
        .into_iter()
        .chain(data.encode_utf16().flat_map(u16::to_be_bytes))
        .collect();
    assert_eq!(commands(&parse_bytes(&le)), expected);
    assert_eq!(commands(&parse_bytes(&be)), expected);
}

#[test]
fn test_parse_multi_byte() {
    // TestParseMultiByte
    let input = "FROM test\n\tSYSTEM 你好👋";
    let expected = cmds(&[("model", "test"), ("system", "你好👋")]);
    assert_eq!(commands(&parse(input)), expected);
    assert_eq!(commands(&parse_bytes(input.as_bytes())), expected);
    let le: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(input.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    assert_eq!(commands(&parse_bytes(&le)), expected);
}
