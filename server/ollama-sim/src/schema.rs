//! Structured outputs: JSON that satisfies a request's `format`, or breaks it on demand.
//!
//! Covers what realistic schemas use: objects with `properties`/`required`,
//! strings (with `enum`, `const`, common `format`s and length bounds), numbers
//! and integers (with bounds), booleans, arrays (with item counts), `null`,
//! type lists, `anyOf`/`oneOf`/`allOf` and local `$ref`s into `$defs` or
//! `definitions` (as Pydantic and zod emit them).

use serde_json::{Map, Number, Value, json};

use crate::text::Rng;

const MAX_DEPTH: usize = 12;

/// A value that satisfies `schema`, chosen deterministically from `rng`.
pub(crate) fn generate(schema: &Value, rng: &mut Rng) -> Value {
    Generator { root: schema }.value(schema, rng, 0)
}

/// A value for `format: "json"`: any JSON object will do.
pub(crate) fn free_form(rng: &mut Rng) -> Value {
    json!({ "response": sentence(rng, 3, 8) })
}

/// Valid JSON that breaks `schema` (a wrong type, a missing required property).
pub(crate) fn violate(schema: Option<&Value>, rng: &mut Rng) -> Value {
    let Some(schema) = schema else {
        // `format: "json"` promises an object.
        return json!([sentence(rng, 1, 3)]);
    };
    let generator = Generator { root: schema };
    let resolved = generator.resolve(schema, 0);
    let mut value = generator.value(resolved, rng, 0);
    match &mut value {
        Value::Object(object) => {
            let required: Vec<String> = resolved
                .get("required")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            let first = object.keys().next().cloned();
            if let Some(key) = first {
                let wrong = wrong_type(&object[&key]);
                object.insert(key, wrong);
            } else {
                object.insert("unexpected".to_owned(), Value::Bool(true));
            }
            if let Some(last) = required.last().filter(|_| required.len() > 1) {
                object.remove(last);
            }
            value
        }
        other => wrong_type(other),
    }
}

/// A value of another JSON type than `v`.
fn wrong_type(v: &Value) -> Value {
    match v {
        Value::String(_) => json!(12345),
        Value::Number(_) => json!("not a number"),
        Value::Bool(_) => json!("maybe"),
        Value::Array(_) => json!("not a list"),
        Value::Object(_) => json!(42),
        Value::Null => json!(false),
    }
}

struct Generator<'a> {
    root: &'a Value,
}

impl<'a> Generator<'a> {
    /// Follows `$ref`s and picks the first branch of `anyOf`/`oneOf`/`allOf`.
    fn resolve(&self, schema: &'a Value, depth: usize) -> &'a Value {
        if depth > MAX_DEPTH {
            return schema;
        }
        if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
            let found = target
                .strip_prefix("#/")
                .map(|path| {
                    path.split('/')
                        .try_fold(self.root, |node, key| node.get(unescape(key).as_ref()))
                })
                .or_else(|| (target == "#").then_some(Some(self.root)))
                .flatten();
            if let Some(found) = found {
                return self.resolve(found, depth + 1);
            }
        }
        for key in ["anyOf", "oneOf", "allOf"] {
            if let Some(branches) = schema.get(key).and_then(Value::as_array) {
                let pick = branches
                    .iter()
                    .find(|b| b.get("type").and_then(Value::as_str) != Some("null"))
                    .or_else(|| branches.first());
                if let Some(branch) = pick {
                    return self.resolve(branch, depth + 1);
                }
            }
        }
        schema
    }

    fn value(&self, schema: &'a Value, rng: &mut Rng, depth: usize) -> Value {
        let schema = self.resolve(schema, depth);
        if let Some(c) = schema.get("const") {
            return c.clone();
        }
        if let Some(options) = schema.get("enum").and_then(Value::as_array)
            && !options.is_empty()
        {
            let i = usize::try_from(rng.below(options.len() as u64)).unwrap_or(0);
            return options[i].clone();
        }
        let kind = match schema.get("type") {
            Some(Value::String(t)) => t.as_str(),
            Some(Value::Array(types)) => types
                .iter()
                .filter_map(Value::as_str)
                .find(|t| *t != "null")
                .unwrap_or("null"),
            _ if schema.get("properties").is_some() => "object",
            _ if schema.get("items").is_some() => "array",
            _ => "string",
        };
        if depth > MAX_DEPTH {
            return Value::Null;
        }
        match kind {
            "object" => self.object(schema, rng, depth),
            "array" => self.array(schema, rng, depth),
            "integer" => integer(schema, rng),
            "number" => number(schema, rng),
            "boolean" => Value::Bool(rng.below(2) == 0),
            "null" => Value::Null,
            _ => string(schema, rng),
        }
    }

    fn object(&self, schema: &'a Value, rng: &mut Rng, depth: usize) -> Value {
        let mut out = Map::new();
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (name, property) in properties {
                out.insert(name.clone(), self.value(property, rng, depth + 1));
            }
        }
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !out.contains_key(name) {
                    out.insert(name.to_owned(), Value::String(sentence(rng, 1, 3)));
                }
            }
        }
        Value::Object(out)
    }

    fn array(&self, schema: &'a Value, rng: &mut Rng, depth: usize) -> Value {
        let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(1);
        let max = schema
            .get("maxItems")
            .and_then(Value::as_u64)
            .unwrap_or(min.max(3))
            .max(min);
        let lo = min.max(1).min(max);
        let hi = max.min(lo.max(3)).max(lo);
        let n = lo + rng.below(hi - lo + 1);
        let items = schema.get("items").unwrap_or(&Value::Null);
        let prefix = schema.get("prefixItems").and_then(Value::as_array);
        let values = (0..n)
            .map(|i| {
                let item = prefix
                    .and_then(|p| p.get(usize::try_from(i).unwrap_or(usize::MAX)))
                    .unwrap_or(items);
                if item.is_null() {
                    Value::String(sentence(rng, 1, 2))
                } else {
                    self.value(item, rng, depth + 1)
                }
            })
            .collect();
        Value::Array(values)
    }
}

fn unescape(key: &str) -> std::borrow::Cow<'_, str> {
    if key.contains('~') {
        key.replace("~1", "/").replace("~0", "~").into()
    } else {
        key.into()
    }
}

fn bound(schema: &Value, inclusive: &str, exclusive: &str) -> Option<(f64, bool)> {
    schema
        .get(inclusive)
        .and_then(Value::as_f64)
        .map(|v| (v, false))
        .or_else(|| {
            schema
                .get(exclusive)
                .and_then(Value::as_f64)
                .map(|v| (v, true))
        })
}

fn range(schema: &Value, default: (f64, f64)) -> (f64, f64) {
    let (mut lo, mut hi) = default;
    let min = bound(schema, "minimum", "exclusiveMinimum");
    let max = bound(schema, "maximum", "exclusiveMaximum");
    if let Some((v, _)) = min {
        lo = v;
        if max.is_none() {
            hi = hi.max(lo + default.1 - default.0);
        }
    }
    if let Some((v, _)) = max {
        hi = v;
        if min.is_none() {
            lo = lo.min(hi - (default.1 - default.0));
        }
    }
    (lo, hi.max(lo))
}

fn integer(schema: &Value, rng: &mut Rng) -> Value {
    let (lo, hi) = range(schema, (1.0, 100.0));
    let lo = lo.ceil()
        + if matches!(
            bound(schema, "minimum", "exclusiveMinimum"),
            Some((_, true))
        ) {
            1.0
        } else {
            0.0
        };
    let hi = hi.floor()
        - if matches!(
            bound(schema, "maximum", "exclusiveMaximum"),
            Some((_, true))
        ) {
            1.0
        } else {
            0.0
        };
    let hi = hi.max(lo);
    let (lo, hi) = (lo.clamp(-1e15, 1e15) as i64, hi.clamp(-1e15, 1e15) as i64);
    let span = u64::try_from(hi - lo).unwrap_or(0) + 1;
    let v = lo + i64::try_from(rng.below(span)).unwrap_or(0);
    let v = match schema.get("multipleOf").and_then(Value::as_i64) {
        Some(m) if m > 0 => (v / m) * m,
        _ => v,
    };
    Value::Number(v.into())
}

fn number(schema: &Value, rng: &mut Rng) -> Value {
    let (lo, hi) = range(schema, (0.0, 100.0));
    let v = lo + (hi - lo) * rng.unit();
    let v = (v * 100.0).round() / 100.0;
    let v = v.clamp(lo, hi);
    Number::from_f64(v).map_or(Value::Null, Value::Number)
}

fn string(schema: &Value, rng: &mut Rng) -> Value {
    let s = match schema.get("format").and_then(Value::as_str) {
        Some("date") => format!("2024-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28)),
        Some("date-time") => format!(
            "2024-{:02}-{:02}T{:02}:{:02}:00Z",
            1 + rng.below(12),
            1 + rng.below(28),
            rng.below(24),
            rng.below(60)
        ),
        Some("time") => format!("{:02}:{:02}:00", rng.below(24), rng.below(60)),
        Some("email") => format!("{}@example.com", rng.word()),
        Some("uri" | "url") => format!("https://example.com/{}", rng.word()),
        Some("uuid") => {
            let h = crate::text::hex_digest(rng.next_u64());
            format!(
                "{}-{}-4{}-a{}-{}",
                &h[0..8],
                &h[8..12],
                &h[13..16],
                &h[17..20],
                &h[20..32]
            )
        }
        Some("ipv4") => format!(
            "10.{}.{}.{}",
            rng.below(256),
            rng.below(256),
            rng.below(256)
        ),
        _ => sentence(rng, 1, 4),
    };
    let min = schema
        .get("minLength")
        .and_then(Value::as_u64)
        .map_or(0, |n| usize::try_from(n).unwrap_or(0));
    let max = schema
        .get("maxLength")
        .and_then(Value::as_u64)
        .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let mut s = s;
    while s.chars().count() < min {
        s.push_str(" lorem");
    }
    if s.chars().count() > max {
        s = s.chars().take(max).collect();
    }
    Value::String(s)
}

/// Between `min` and `max` lorem words.
fn sentence(rng: &mut Rng, min: u64, max: u64) -> String {
    let n = min + rng.below(max - min + 1);
    (0..n).map(|_| rng.word()).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng() -> Rng {
        Rng::new(7)
    }

    #[test]
    fn the_docs_structured_output_schema_is_satisfied() {
        let schema = json!({
            "type": "object",
            "properties": {"age": {"type": "integer"}, "available": {"type": "boolean"}},
            "required": ["age", "available"]
        });
        let v = generate(&schema, &mut rng());
        assert!(v["age"].is_i64(), "{v}");
        assert!(v["available"].is_boolean(), "{v}");
    }

    #[test]
    fn nested_arrays_enums_bounds_and_refs_are_honoured() {
        let schema = json!({
            "$defs": {"Country": {"type": "object", "properties": {
                "country": {"type": "string", "minLength": 3},
                "population": {"type": "integer", "minimum": 10, "maximum": 20},
                "kind": {"enum": ["a", "b"]},
                "share": {"type": "number", "maximum": 1, "minimum": 0},
                "note": {"anyOf": [{"type": "null"}, {"type": "string", "format": "date"}]}
            }, "required": ["country", "population"]}},
            "type": "object",
            "properties": {"countries": {"type": "array", "items": {"$ref": "#/$defs/Country"}, "minItems": 2}},
            "required": ["countries"]
        });
        let v = generate(&schema, &mut rng());
        let countries = v["countries"].as_array().unwrap();
        assert!(countries.len() >= 2, "{v}");
        for c in countries {
            assert!(c["country"].as_str().unwrap().len() >= 3, "{c}");
            let p = c["population"].as_i64().unwrap();
            assert!((10..=20).contains(&p), "{c}");
            assert!(["a", "b"].contains(&c["kind"].as_str().unwrap()), "{c}");
            let share = c["share"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&share), "{c}");
            assert_eq!(c["note"].as_str().unwrap().len(), 10, "{c}");
        }
    }

    #[test]
    fn violations_break_the_schema() {
        let schema = json!({
            "type": "object",
            "properties": {"age": {"type": "integer"}, "available": {"type": "boolean"}},
            "required": ["age", "available"]
        });
        let v = violate(Some(&schema), &mut rng());
        assert!(!v["age"].is_i64() || v.get("available").is_none(), "{v}");
        assert!(v.get("available").is_none(), "{v}");
        assert!(violate(None, &mut rng()).is_array());
    }
}
