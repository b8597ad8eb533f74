//! The PromQL the usage pages send, built from typed parameters only: a
//! team's slug and a model name enter a query solely as quoted, escaped
//! label values, so no parameter can widen a query to another team's
//! series. No page lets a non-admin write PromQL.

/// A PromQL double-quoted string holding exactly `s`: backslash, quote and
/// every control character escaped (Prometheus reads Go's escapes).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whose series a query reads: one team (always, outside the admin views),
/// optionally one model.
#[derive(Clone, Debug)]
pub struct Scope<'a> {
    pub team: Option<&'a str>,
    pub model: Option<&'a str>,
}

impl Scope<'_> {
    /// The label matchers, with `extra` (a fixed matcher of ours) after.
    fn matchers(&self, extra: &str) -> String {
        let mut m = Vec::new();
        if let Some(t) = self.team {
            m.push(format!("team={}", quote(t)));
        }
        if let Some(model) = self.model {
            m.push(format!("model={}", quote(model)));
        }
        if !extra.is_empty() {
            m.push(extra.to_owned());
        }
        format!("{{{}}}", m.join(","))
    }
}

const REQUESTS: &str = "corral_gateway_requests_total";
const TOKENS: &str = "corral_gateway_tokens_total";
pub const DURATION: &str = "corral_gateway_request_duration_seconds";
pub const TTFT: &str = "corral_gateway_time_to_first_token_seconds";

/// Requests per second, by `by` (a label name of ours: `model`, `team`).
pub fn request_rate(scope: &Scope, by: &str, window: i64) -> String {
    format!(
        "sum by ({by}) (rate({REQUESTS}{}[{window}s]))",
        scope.matchers("")
    )
}

/// Tokens per hour, by kind (prompt, completion).
pub fn tokens_per_hour(scope: &Scope, window: i64) -> String {
    format!(
        "sum by (kind) (rate({TOKENS}{}[{window}s])) * 3600",
        scope.matchers("")
    )
}

/// The share of requests (in %) that ended in each 4xx/5xx status.
pub fn error_percent(scope: &Scope, window: i64) -> String {
    format!(
        "100 * sum by (status) (rate({REQUESTS}{}[{window}s])) / scalar(sum(rate({REQUESTS}{}[{window}s])))",
        scope.matchers(r#"status=~"4..|5..""#),
        scope.matchers("")
    )
}

/// The `q` quantile (0–1) of a latency histogram, in seconds.
pub fn quantile(metric: &str, q: f64, scope: &Scope, window: i64) -> String {
    format!(
        "histogram_quantile({q}, sum by (le) (rate({metric}_bucket{}[{window}s])))",
        scope.matchers("")
    )
}

/// Requests waiting in each upstream's queue (admins).
pub fn queue_depth() -> String {
    "max by (upstream) (ollama_queue_depth)".into()
}

/// The share (in %) of each upstream's answers that were 5xx (admins).
pub fn upstream_error_percent(window: i64) -> String {
    format!(
        r#"100 * sum by (upstream) (rate({UPSTREAM}{{class="5xx"}}[{window}s])) / sum by (upstream) (rate({UPSTREAM}[{window}s]))"#
    )
}

const UPSTREAM: &str = "corral_gateway_upstream_responses_total";

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reads a quoted string back as Prometheus's lexer does (Go escapes).
    fn unquote(q: &str) -> Option<String> {
        let inner = q.strip_prefix('"')?.strip_suffix('"')?;
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' | '\n' => return None, // would end or break the string
                '\\' => match chars.next()? {
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'x' => {
                        let h: String = chars.by_ref().take(2).collect();
                        out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
                    }
                    _ => return None,
                },
                c if (c as u32) < 0x20 => return None,
                c => out.push(c),
            }
        }
        Some(out)
    }

    proptest! {
        #[test]
        fn any_label_value_stays_one_string(s in any::<String>()) {
            let q = quote(&s);
            prop_assert_eq!(unquote(&q), Some(s));
        }
    }

    #[test]
    fn a_hostile_model_name_is_only_a_label_value() {
        let scope = Scope {
            team: Some("team-a"),
            model: Some(r#"x"} or corral_gateway_requests_total{team="team-b"#),
        };
        let q = request_rate(&scope, "model", 60);
        assert_eq!(
            q,
            r#"sum by (model) (rate(corral_gateway_requests_total{team="team-a",model="x\"} or corral_gateway_requests_total{team=\"team-b"}[60s]))"#
        );
    }
}
