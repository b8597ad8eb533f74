//! The rules of the texts and numbers people send: one place that says what
//! the code accepts, which the OpenAPI document is generated from.
//!
//! Every text bound for Postgres goes through [`storable`]: Postgres cannot
//! store U+0000 in `text` (nor in `jsonb`, where the audit log keeps copies),
//! so such a text is refused with a validation error naming its field
//! instead of failing inside the database. Field rules ([`TextRule`]) call
//! it first; values that are only looked up (a username, a slug in a path,
//! a filter) call it directly.

use super::AppError;

/// What a text holding U+0000 is told.
pub const NUL_MESSAGE: &str =
    "must not contain the character U+0000 (NUL), which Corral cannot store";

/// Ok unless `value` holds U+0000, which Postgres cannot store in `text`.
pub fn storable(field: &str, value: &str) -> Result<(), AppError> {
    if value.contains('\0') {
        Err(AppError::validation(field, NUL_MESSAGE))
    } else {
        Ok(())
    }
}

/// Unicode White_Space (what [`str::trim`] and [`char::is_whitespace`]
/// take), as the body of a regular expression class, for `concat!` in
/// patterns. Spelled out because `\s` means different things in ECMA-262,
/// Python and Rust.
macro_rules! white_space_class {
    () => {
        r"\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    };
}
pub(crate) use white_space_class;

/// [`white_space_class!`] as a constant.
pub const WHITE_SPACE_CLASS: &str = white_space_class!();

/// A shape a text must have beyond its length, as code and as the pattern
/// the document states (which must exclude U+0000 too).
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub matches: fn(&str) -> bool,
    /// ECMA-262, anchored.
    pub pattern: &'static str,
    pub message: &'static str,
}

/// A text field's rule.
#[derive(Clone, Copy, Debug)]
pub struct TextRule {
    /// In characters (Unicode scalar values, as JSON Schema counts).
    pub max_chars: Option<usize>,
    /// Must hold something other than white space.
    pub not_blank: bool,
    pub shape: Option<Shape>,
}

impl TextRule {
    /// A text that is only looked up or filtered by: anything storable.
    pub const LOOKUP: Self = Self {
        max_chars: None,
        not_blank: false,
        shape: None,
    };

    /// Free text of at most `max` characters, blank allowed.
    pub const fn up_to(max: usize) -> Self {
        Self {
            max_chars: Some(max),
            not_blank: false,
            shape: None,
        }
    }

    /// Text of 1 to `max` characters that is not only white space.
    pub const fn required(max: usize) -> Self {
        Self {
            max_chars: Some(max),
            not_blank: true,
            shape: None,
        }
    }

    /// Ok when `value` follows the rule; otherwise a validation error for
    /// `field`.
    pub fn check(&self, field: &str, value: &str) -> Result<(), AppError> {
        storable(field, value)?;
        if self.not_blank && value.trim().is_empty() {
            return Err(AppError::validation(field, "must not be empty"));
        }
        if let Some(max) = self.max_chars
            && value.chars().count() > max
        {
            return Err(AppError::validation(
                field,
                format!("must be at most {max} characters"),
            ));
        }
        match self.shape {
            Some(shape) if !(shape.matches)(value) => {
                Err(AppError::validation(field, shape.message))
            }
            _ => Ok(()),
        }
    }

    /// The rule as an ECMA-262 pattern.
    pub fn pattern(&self) -> String {
        match self.shape {
            Some(shape) => shape.pattern.to_owned(),
            None if self.not_blank => {
                format!(r"^[^\u0000]*[^\u0000{WHITE_SPACE_CLASS}][^\u0000]*$")
            }
            None => r"^[^\u0000]*$".to_owned(),
        }
    }
}

/// A whole-number field's range.
#[derive(Clone, Copy, Debug)]
pub struct IntRule {
    pub min: i64,
    pub max: i64,
}

impl IntRule {
    pub const fn contains(&self, value: i64) -> bool {
        self.min <= value && value <= self.max
    }

    pub fn check(&self, field: &str, value: i64) -> Result<(), AppError> {
        if self.contains(value) {
            Ok(())
        } else {
            Err(AppError::validation(
                field,
                format!("must be between {} and {}", self.min, self.max),
            ))
        }
    }
}

/// JSON Schema (and so OpenAPI 3.1) counts `5.0` as an integer: whole
/// numbers in bodies are read the same way, whether written `5` or `5.0`.
pub mod whole {
    use serde::de::{Deserializer, Error, Visitor};

    struct Whole<T>(std::marker::PhantomData<T>);

    impl<T: TryFrom<i64>> Visitor<'_> for Whole<T> {
        type Value = T;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a whole number")
        }

        fn visit_i64<E: Error>(self, v: i64) -> Result<T, E> {
            T::try_from(v).map_err(|_| E::custom(format!("{v} is out of range")))
        }

        fn visit_u64<E: Error>(self, v: u64) -> Result<T, E> {
            i64::try_from(v)
                .map_err(|_| E::custom(format!("{v} is out of range")))
                .and_then(|v| self.visit_i64(v))
        }

        fn visit_f64<E: Error>(self, v: f64) -> Result<T, E> {
            // Past 2^63 an f64 cannot be an i64; `as` would saturate.
            if v.fract() == 0.0
                && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&v)
            {
                self.visit_i64(v as i64)
            } else {
                Err(E::custom(format!("{v} is not a whole number in range")))
            }
        }
    }

    /// For `Option<T>` fields: absent or `null` is `None`.
    pub fn option<'de, D: Deserializer<'de>, T: TryFrom<i64>>(d: D) -> Result<Option<T>, D::Error> {
        struct Maybe<T>(std::marker::PhantomData<T>);
        impl<'de, T: TryFrom<i64>> Visitor<'de> for Maybe<T> {
            type Value = Option<T>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a whole number or null")
            }

            fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }

            fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }

            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(Whole(std::marker::PhantomData)).map(Some)
            }
        }
        d.deserialize_option(Maybe(std::marker::PhantomData))
    }

    /// For `Option<Option<T>>` fields that tell absent (outer `None`, with
    /// `#[serde(default)]`) from `null` (`Some(None)`).
    pub fn double_option<'de, D: Deserializer<'de>, T: TryFrom<i64>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        option(d).map(Some)
    }
}

/// The rules as OpenAPI schemas.
#[cfg(feature = "ssr")]
pub mod schema {
    use utoipa::openapi::schema::{
        ArrayBuilder, KnownFormat, Object, ObjectBuilder, SchemaFormat, SchemaType, Type,
    };
    use utoipa::openapi::{RefOr, Schema};

    use super::{IntRule, TextRule};

    fn types(t: Type, nullable: bool) -> SchemaType {
        if nullable {
            SchemaType::from_iter([t, Type::Null])
        } else {
            SchemaType::new(t)
        }
    }

    /// A string following `rule`.
    pub fn text(rule: &TextRule, nullable: bool) -> Object {
        ObjectBuilder::new()
            .schema_type(types(Type::String, nullable))
            .min_length(rule.not_blank.then_some(1))
            .max_length(rule.max_chars)
            .pattern(Some(rule.pattern()))
            .build()
    }

    /// A list of at most `max_items` strings following `rule`.
    pub fn texts(rule: &TextRule, max_items: usize, nullable: bool) -> Schema {
        Schema::Array(
            ArrayBuilder::new()
                .schema_type(types(Type::Array, nullable))
                .items(text(rule, false))
                .max_items(Some(max_items))
                .build(),
        )
    }

    /// A whole number in `rule`'s range; `int32` unless it needs more.
    pub fn int(rule: &IntRule, nullable: bool) -> Object {
        let format = if i32::try_from(rule.max).is_ok() && i32::try_from(rule.min).is_ok() {
            KnownFormat::Int32
        } else {
            KnownFormat::Int64
        };
        ObjectBuilder::new()
            .schema_type(types(Type::Integer, nullable))
            .format(Some(SchemaFormat::KnownFormat(format)))
            .minimum(Some(rule.min as f64))
            .maximum(Some(rule.max as f64))
            .build()
    }

    /// `schema` as a `RefOr`, for `schema_with` functions.
    pub fn inline(schema: impl Into<Schema>) -> RefOr<Schema> {
        RefOr::T(schema.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_refuses_nul_by_name() {
        for rule in [
            TextRule::LOOKUP,
            TextRule::up_to(10),
            TextRule::required(10),
        ] {
            assert_eq!(
                rule.check("name", "a\0b"),
                Err(AppError::validation("name", NUL_MESSAGE))
            );
        }
        assert!(storable("x", "tab\tand é").is_ok());
    }

    #[test]
    fn the_white_space_class_is_what_trim_takes() {
        fn atom(s: &str) -> (char, &str) {
            match s.strip_prefix('\\') {
                Some(rest) if rest.starts_with('t') => ('\t', &rest[1..]),
                Some(rest) if rest.starts_with('r') => ('\r', &rest[1..]),
                Some(rest) => {
                    let hex = &rest[1..5];
                    let c = char::from_u32(u32::from_str_radix(hex, 16).unwrap()).unwrap();
                    (c, &rest[5..])
                }
                None => {
                    let c = s.chars().next().unwrap();
                    (c, &s[c.len_utf8()..])
                }
            }
        }
        let mut ranges = Vec::new();
        let mut rest = WHITE_SPACE_CLASS;
        while !rest.is_empty() {
            let (from, after) = atom(rest);
            rest = after;
            let to = match rest.strip_prefix('-') {
                Some(after) => {
                    let (to, after) = atom(after);
                    rest = after;
                    to
                }
                None => from,
            };
            ranges.push(from..=to);
        }
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            assert_eq!(
                ranges.iter().any(|r| r.contains(&c)),
                c.is_whitespace(),
                "U+{:04X}",
                c as u32
            );
        }
    }

    #[test]
    fn length_counts_characters_and_blank_is_white_space() {
        let r = TextRule::required(3);
        assert!(r.check("f", "éé\u{1f600}").is_ok());
        assert!(r.check("f", "abcd").is_err());
        assert!(r.check("f", " \u{3000}\t").is_err());
        // U+001F is not white space (Python's str.isspace says otherwise).
        assert!(r.check("f", "\u{1f}").is_ok());
        assert!(TextRule::up_to(3).check("f", "").is_ok());
    }

    #[test]
    fn whole_numbers_may_be_written_as_floats() {
        #[derive(serde::Deserialize)]
        struct T {
            #[serde(default, deserialize_with = "whole::option")]
            n: Option<i32>,
            #[serde(default, deserialize_with = "whole::double_option")]
            m: Option<Option<i64>>,
        }
        let t: T = serde_json::from_str(r#"{"n": 5.0, "m": null}"#).unwrap();
        assert_eq!((t.n, t.m), (Some(5), Some(None)));
        let t: T = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!((t.n, t.m), (None, None));
        for bad in [
            r#"{"n": 5.5}"#,
            r#"{"n": 3000000000}"#,
            r#"{"n": "5"}"#,
            r#"{"m": 1e300}"#,
        ] {
            assert!(serde_json::from_str::<T>(bad).is_err(), "{bad}");
        }
    }
}
