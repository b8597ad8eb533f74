//! The structured output check: when a non-streamed request asks for a JSON
//! schema (`format` on `/api`, `response_format.json_schema.schema` on
//! `/v1`), the model's reply is validated against it.

use serde_json::Value;
use serde_json::value::RawValue;

/// The JSON schema a request asks the reply to follow, if any, from its
/// `format` (Ollama) or `response_format` (OpenAI) field as sent. Only a
/// request that asks is parsed further.
pub fn requested_schema(
    format: Option<&RawValue>,
    response_format: Option<&RawValue>,
) -> Option<Value> {
    if let Some(f) = format
        && f.get().starts_with('{')
    {
        return serde_json::from_str(f.get()).ok();
    }
    let mut rf: Value = serde_json::from_str(response_format?.get()).ok()?;
    if rf.get("type").and_then(Value::as_str) == Some("json_schema") {
        return rf.pointer_mut("/json_schema/schema").map(Value::take);
    }
    None
}

/// The model's text in a non-streamed reply of either API.
pub fn reply_text(reply: &Value) -> Option<&str> {
    reply
        .pointer("/message/content")
        .or_else(|| reply.get("response"))
        .or_else(|| reply.pointer("/choices/0/message/content"))
        .and_then(Value::as_str)
}

/// The problems with `text` against `schema`; empty when it conforms.
pub fn check(schema: &Value, text: &str) -> Vec<String> {
    let validator = match jsonschema::validator_for(schema) {
        Ok(v) => v,
        // The upstream accepted the schema; if we cannot compile it we say
        // so rather than guess.
        Err(e) => return vec![format!("the requested schema cannot be used: {e}")],
    };
    let instance: Value = match serde_json::from_str(text.trim()) {
        Ok(v) => v,
        Err(e) => return vec![format!("the reply is not JSON: {e}")],
    };
    validator
        .iter_errors(&instance)
        .take(20)
        .map(|e| e.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(v: &Value) -> Box<RawValue> {
        RawValue::from_string(v.to_string()).unwrap()
    }

    #[test]
    fn replies_are_checked_against_the_requested_schema() {
        let format = json!({
            "type": "object",
            "properties": { "age": { "type": "integer" }, "name": { "type": "string" } },
            "required": ["age", "name"]
        });
        let schema = requested_schema(Some(&raw(&format)), None).unwrap();
        assert_eq!(schema, format);
        assert!(check(&schema, r#"{"age": 3, "name": "x"}"#).is_empty());
        let errs = check(&schema, r#"{"age": "three"}"#);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(check(&schema, "not json")[0].contains("not JSON"));
        assert!(requested_schema(Some(&raw(&json!("json"))), None).is_none());
        assert!(requested_schema(None, None).is_none());
        let v1 = json!({ "type": "json_schema", "json_schema": { "name": "x", "schema": { "type": "object" } } });
        assert_eq!(
            requested_schema(None, Some(&raw(&v1))),
            Some(json!({ "type": "object" }))
        );
        let plain = json!({ "type": "json_object" });
        assert!(requested_schema(None, Some(&raw(&plain))).is_none());
        assert_eq!(
            reply_text(&json!({ "choices": [{ "message": { "content": "{}" } }] })),
            Some("{}")
        );
    }
}
