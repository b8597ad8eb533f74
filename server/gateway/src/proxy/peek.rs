//! The request body's fields the gateway acts on ([`Peek`]), read as Go's
//! `encoding/json` would read them, and the body rewritten to ask for usage.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::errors::Refusal;

/// The fields of a request body the gateway acts on, borrowed as sent;
/// the rest of the body is checked to be JSON and passed through unread.
///
/// Ollama reads bodies with Go's `encoding/json`, which matches field names
/// ignoring case (and folds `ſ` to `s`, the Kelvin sign to `k`) and lets
/// the last of a repeated field win. So a body whose `"Model"` differs from
/// its `"model"` would be checked for one model and run another: a field
/// that folds to one of these names without being it, and any field given
/// twice, is refused.
#[derive(Debug, Default)]
pub(super) struct Peek<'a> {
    pub(super) model: Option<&'a RawValue>,
    name: Option<&'a RawValue>,
    pub(super) source: Option<&'a RawValue>,
    pub(super) destination: Option<&'a RawValue>,
    pub(super) stream: Option<&'a RawValue>,
    pub(super) format: Option<&'a RawValue>,
    pub(super) response_format: Option<&'a RawValue>,
    /// Present even when null, so that it is replaced, never repeated.
    pub(super) stream_options: Option<&'a RawValue>,
}

/// The names [`Peek`] reads.
const PEEKED: [&str; 8] = [
    "model",
    "name",
    "source",
    "destination",
    "stream",
    "format",
    "response_format",
    "stream_options",
];

/// Whether Go's `encoding/json` takes the field `name` for `field` (an
/// ASCII lowercase name): equal ignoring ASCII case, with `ſ` as `s` and
/// the Kelvin sign as `k`.
fn go_folds_to(name: &str, field: &str) -> bool {
    let mut want = field.bytes();
    for c in name.chars() {
        let c = match c {
            '\u{17F}' => 's',
            '\u{212A}' => 'k',
            c if c.is_ascii() => c.to_ascii_lowercase(),
            _ => return false,
        };
        if want.next() != Some(c as u8) {
            return false;
        }
    }
    want.next().is_none()
}

/// A field name, borrowed from the body unless it had escapes.
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Peek<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Peek<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Peek<'de>, A::Error> {
                use serde::de::Error as _;
                let mut p = Peek::default();
                while let Some(Key(key)) = map.next_key()? {
                    let value: &'de RawValue = map.next_value()?;
                    let slot = match key.as_ref() {
                        "model" => &mut p.model,
                        "name" => &mut p.name,
                        "source" => &mut p.source,
                        "destination" => &mut p.destination,
                        "stream" => &mut p.stream,
                        "format" => &mut p.format,
                        "response_format" => &mut p.response_format,
                        "stream_options" => &mut p.stream_options,
                        other => {
                            if let Some(meant) = PEEKED.iter().find(|f| go_folds_to(other, f)) {
                                return Err(A::Error::custom(format!(
                                    "has a field \"{other}\"; field names are case-sensitive here, write \"{meant}\""
                                )));
                            }
                            continue;
                        }
                    };
                    if slot.replace(value).is_some() {
                        return Err(A::Error::custom(format!("has the field \"{key}\" twice")));
                    }
                }
                // A null is an absent field, except for stream_options,
                // which is replaced when the gateway asks for usage.
                for f in [
                    &mut p.model,
                    &mut p.name,
                    &mut p.source,
                    &mut p.destination,
                    &mut p.stream,
                    &mut p.format,
                    &mut p.response_format,
                ] {
                    if f.is_some_and(|v| v.get() == "null") {
                        *f = None;
                    }
                }
                Ok(p)
            }
        }
        d.deserialize_map(V)
    }
}

impl<'a> Peek<'a> {
    pub(super) fn parse(body: &'a [u8]) -> Result<Self, Refusal> {
        serde_json::from_slice(body).map_err(|e| {
            Refusal::BadRequest(if e.classify() == serde_json::error::Category::Data {
                // Well-formed, but not an object, or a field to refuse.
                let m = e.to_string();
                match m.strip_prefix("invalid type") {
                    Some(_) => "the request body must be a JSON object".to_owned(),
                    None => format!("the request body {m}"),
                }
            } else {
                format!("the request body is not valid JSON: {e}")
            })
        })
    }

    /// A text field, `None` when absent or null.
    pub(super) fn text(raw: Option<&RawValue>, name: &str) -> Result<Option<String>, Refusal> {
        raw.map(|r| {
            serde_json::from_str::<String>(r.get())
                .map_err(|_| Refusal::BadRequest(format!("\"{name}\" must be a string")))
        })
        .transpose()
    }

    /// The model a request runs or reads: `model`, or the older `name`.
    pub(super) fn model(&self) -> Result<String, Refusal> {
        match Self::text(self.model, "model")? {
            Some(m) => Ok(m),
            None => Self::text(self.name, "name")?.ok_or(Refusal::MissingModel),
        }
    }

    /// `stream`, or the endpoint's default when absent.
    pub(super) fn stream(&self, default: bool) -> Result<bool, Refusal> {
        match self.stream {
            None => Ok(default),
            Some(r) => serde_json::from_str(r.get())
                .map_err(|_| Refusal::BadRequest("\"stream\" must be true or false".to_owned())),
        }
    }
}

/// The body with `stream_options.include_usage` set, so that Ollama sends
/// its usage chunk; `None` when the client asked for it already.
pub(super) fn with_usage_requested(body: &[u8], peek: &Peek<'_>) -> Result<Option<Bytes>, Refusal> {
    let Some(opts) = peek.stream_options else {
        // No stream_options: add the field in front of the others.
        let Some(open) = body
            .iter()
            .position(|&b| !b.is_ascii_whitespace())
            .filter(|&i| body[i] == b'{')
        else {
            return Err(Refusal::BadRequest(
                "the request body must be a JSON object".into(),
            ));
        };
        let mut out = Vec::with_capacity(body.len() + 40);
        out.extend_from_slice(&body[..=open]);
        out.extend_from_slice(br#""stream_options":{"include_usage":true},"#);
        out.extend_from_slice(&body[open + 1..]);
        return Ok(Some(Bytes::from(out)));
    };
    let opts: Value = serde_json::from_str(opts.get()).unwrap_or(Value::Null);
    if opts.get("include_usage").and_then(Value::as_bool) == Some(true) {
        return Ok(None);
    }
    let mut whole: Value = serde_json::from_slice(body)
        .map_err(|e| Refusal::BadRequest(format!("the request body is not valid JSON: {e}")))?;
    let Some(obj) = whole.as_object_mut() else {
        return Err(Refusal::BadRequest(
            "the request body must be a JSON object".into(),
        ));
    };
    let opts = obj
        .entry("stream_options")
        .or_insert_with(|| Value::Object(Default::default()));
    if !opts.is_object() {
        *opts = Value::Object(Default::default());
    }
    opts.as_object_mut()
        .expect("just made an object")
        .insert("include_usage".into(), Value::Bool(true));
    Ok(Some(Bytes::from(
        serde_json::to_vec(&whole).expect("a Value serialises"),
    )))
}
