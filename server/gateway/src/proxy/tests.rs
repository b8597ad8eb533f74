//! Unit tests of the proxy: routes, body fields, usage asked and cut, counts.

use super::metered::without_usage;
use super::*;

#[test]
fn paths_are_classified_by_what_they_do() {
    assert_eq!(
        classify(&Method::POST, "/api/chat"),
        Ok((Kind::Inference, "/api/chat"))
    );
    assert_eq!(
        classify(&Method::GET, "/v1/models/hf.co/org/model:q4"),
        Ok((Kind::ModelRead, "/v1/models/{model}"))
    );
    assert_eq!(
        classify(&Method::DELETE, "/api/delete"),
        Ok((Kind::Manage, "/api/delete"))
    );
    assert_eq!(
        classify(&Method::HEAD, "/api/tags"),
        Ok((Kind::List, "/api/tags"))
    );
    assert_eq!(classify(&Method::GET, "/admin"), Err(Refusal::NotFound));
}

#[test]
fn methods_ollama_does_not_take_are_refused_not_forwarded() {
    for (method, path, allow) in [
        (Method::GET, "/api/chat", "POST"),
        (Method::DELETE, "/api/tags", "GET, HEAD"),
        (Method::POST, "/api/tags", "GET, HEAD"),
        (Method::PUT, "/api/version", "GET, HEAD"),
        (Method::HEAD, "/api/ps", "GET"),
        (Method::POST, "/api/delete", "DELETE"),
        (Method::DELETE, "/v1/models/a", "GET"),
        (Method::DELETE, "/v1/models/a/../../api/delete", "GET"),
    ] {
        assert_eq!(
            classify(&method, path),
            Err(Refusal::MethodNotAllowed(allow)),
            "{method} {path}"
        );
    }
}

#[test]
fn a_model_path_cannot_walk_to_another_route() {
    for path in [
        "/v1/models/",
        "/v1/models/a/../../api/delete",
        "/v1/models/..",
        "/v1/models/.",
        "/v1/models/a//b",
        "/v1/models/a/",
        "/v1/models/%2e%2e/x",
    ] {
        assert!(
            matches!(classify(&Method::GET, path), Err(Refusal::BadRequest(_))),
            "{path}"
        );
    }
}

fn message(r: Result<impl std::fmt::Debug, Refusal>) -> String {
    match r {
        Err(Refusal::BadRequest(m)) => m,
        Err(Refusal::MissingModel) => "missing model".into(),
        other => panic!("expected a bad request, got {other:?}"),
    }
}

#[test]
fn request_bodies_are_read_for_their_fields_only_and_bad_ones_named() {
    let body = br#"{"messages":[{"role":"user","content":"hi \"there\""}],"model":"llama3.2","stream":false,"options":{"seed":1}}"#;
    let p = Peek::parse(body).unwrap();
    assert_eq!(p.model().unwrap(), "llama3.2");
    assert!(!p.stream(true).unwrap());
    let p = Peek::parse(br#"{"name":"qwen:0.5b"}"#).unwrap();
    assert_eq!(p.model().unwrap(), "qwen:0.5b");
    assert!(p.stream(true).unwrap(), "absent stream takes the default");
    assert_eq!(
        message(Peek::parse(br#"{}"#).unwrap().model()),
        "missing model"
    );
    assert_eq!(
        message(Peek::parse(br#"{"model":null}"#).unwrap().model()),
        "missing model"
    );
    assert_eq!(
        message(Peek::parse(br#"{"model":7}"#).unwrap().model()),
        "\"model\" must be a string"
    );
    assert_eq!(
        message(
            Peek::parse(br#"{"model":"m","stream":"yes"}"#)
                .unwrap()
                .stream(true)
        ),
        "\"stream\" must be true or false"
    );
    assert_eq!(
        message(Peek::parse(br#"[1,2]"#)),
        "the request body must be a JSON object"
    );
    assert!(
        message(Peek::parse(br#"{"model":"m","#)).starts_with("the request body is not valid JSON")
    );
    assert!(
        message(Peek::parse(br#"{"model":"a","model":"b"}"#))
            .starts_with("the request body has the field \"model\" twice at line 1")
    );
    // Go matches field names ignoring case: one model checked, another run.
    for body in [
        &br#"{"model":"llama3.2","Model":"forbidden"}"#[..],
        br#"{"MODEL":"forbidden"}"#,
        br#"{"model":"m","Stream":true}"#,
        "{\"model\":\"m\",\"\u{17F}tream\":true}".as_bytes(),
        br#"{"mod\u0065l":"a","model":"b"}"#,
    ] {
        let m = message(Peek::parse(body));
        assert!(m.starts_with("the request body has"), "{m}");
    }
    assert!(message(Peek::parse(br#"{"Model":"x"}"#)).contains("write \"model\""));
    // Names that only begin or end like a peeked one are other fields.
    let p =
        Peek::parse("{\"model\":\"m\",\"Models\":1,\"STREAMS\":2,\"ſtrea\":3,\"é\":4}".as_bytes())
            .unwrap();
    assert_eq!(p.model.map(|r| r.get()), Some("\"m\""));
    assert!(p.stream.is_none());
    assert_eq!(
        message(Peek::parse(
            br#"["llama3.2",null,null,null,true,null,null]"#
        )),
        "the request body must be a JSON object"
    );
    let p = Peek::parse(br#"{"model":"m","stream_options":null,"options":{"Model":1}}"#).unwrap();
    assert_eq!(p.stream_options.map(|r| r.get()), Some("null"));
}

#[test]
fn usage_is_requested_once_and_the_rest_of_the_body_kept() {
    let ask = |body: &[u8]| {
        let p = Peek::parse(body).unwrap();
        with_usage_requested(body, &p)
            .unwrap()
            .map(|b| serde_json::from_slice::<Value>(&b).unwrap())
    };
    let added = ask(br#" {"model":"m","stream":true}"#).unwrap();
    assert_eq!(
        added,
        serde_json::json!({"model":"m","stream":true,"stream_options":{"include_usage":true}})
    );
    let merged = ask(br#"{"model":"m","stream_options":{"include_usage":false,"x":1}}"#).unwrap();
    assert_eq!(
        merged["stream_options"],
        serde_json::json!({"include_usage":true,"x":1})
    );
    let replaced = ask(br#"{"model":"m","stream_options":null}"#).unwrap();
    assert_eq!(
        replaced["stream_options"],
        serde_json::json!({"include_usage":true})
    );
    assert_eq!(
        ask(br#"{"model":"m","stream_options":{"include_usage":true}}"#),
        None
    );
}

#[test]
fn an_unasked_usage_member_is_cut_from_a_chunk() {
    let cut = |s: &str| without_usage(s.as_bytes()).map(|v| String::from_utf8(v).unwrap());
    assert_eq!(
        cut(r#"{"id":"c","choices":[{"text":"Hi"}],"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}"#).as_deref(),
        Some(r#"{"id":"c","choices":[{"text":"Hi"}]}"#)
    );
    assert_eq!(
        cut(r#"{"usage":{"prompt_tokens":0},"id":"c"}"#).as_deref(),
        Some(r#"{"id":"c"}"#)
    );
    assert_eq!(cut(r#"{"id":"c","usage":null}"#), None);
    assert_eq!(
        cut(r#"{"choices":[{"text":"say \"usage\":{\"x\":1}"}]}"#),
        None,
        "text that looks like the member is left alone"
    );
    assert_eq!(cut(r#"{"id":"c"}"#), None);
}

#[test]
fn counts_are_read_from_either_api() {
    let native: Counts = serde_json::from_str(
        r#"{"model":"m","message":{"role":"assistant","content":"x"},"done":true,"prompt_eval_count":26,"eval_count":290,"total_duration":1}"#,
    )
    .unwrap();
    assert_eq!(
        (native.prompt_eval_count, native.eval_count),
        (Some(26), Some(290))
    );
    let usage_chunk: Counts = serde_json::from_str(
        r#"{"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#,
    )
    .unwrap();
    let u = usage_chunk.usage.as_ref().unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (3, 4));
    assert_eq!(usage_chunk.choices.map(|c| c.len()), Some(0));
}
