//! Audit log entries and their filters.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One recorded state change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Username of who did it, or `corral` for Corral itself.
    pub actor: String,
    /// Dotted verb, e.g. `team.created`, `membership.removed`, `user.signed_in`.
    pub action: String,
    pub target_kind: String,
    pub target_id: String,
    pub team: Option<String>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub request_id: Option<String>,
}

/// Which entries to list; every field narrows the result.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditFilter {
    /// Username of the actor.
    #[serde(default)]
    pub actor: Option<String>,
    /// Exact action, or a prefix ending in `.` (e.g. `team.`).
    #[serde(default)]
    pub action: Option<String>,
    /// Team slug.
    #[serde(default)]
    pub team: Option<String>,
}

/// `cursor` of the audit log: the id of the last entry seen, or empty for
/// the first page.
pub const AUDIT_CURSOR: crate::model::text::TextRule = crate::model::text::TextRule {
    max_chars: Some(18),
    not_blank: false,
    shape: Some(crate::model::text::Shape {
        matches: |c| c.bytes().all(|b| b.is_ascii_digit()),
        pattern: "^[0-9]*$",
        message: "not a cursor returned by this endpoint",
    }),
};

/// `limit` of list endpoints: items per page.
pub const PAGE_LIMIT: crate::model::text::IntRule =
    crate::model::text::IntRule { min: 1, max: 200 };
/// `limit` when none is given.
pub const PAGE_LIMIT_DEFAULT: i64 = 50;

/// The paging parameters as the document states them.
#[cfg(feature = "ssr")]
pub mod paging_schema {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;

    use crate::model::text::TextRule;
    use crate::model::text::schema::{inline, int, text};

    pub fn limit() -> RefOr<Schema> {
        let mut s = int(&super::PAGE_LIMIT, false);
        s.default = Some(super::PAGE_LIMIT_DEFAULT.into());
        inline(s)
    }
    /// A `next_cursor` of `GET /api/v1/teams`.
    pub fn cursor() -> RefOr<Schema> {
        inline(text(&TextRule::LOOKUP, false))
    }
    pub fn audit_cursor() -> RefOr<Schema> {
        inline(text(&super::AUDIT_CURSOR, false))
    }
    /// A username, slug or action filtered by.
    pub fn filter() -> RefOr<Schema> {
        inline(text(&TextRule::LOOKUP, false))
    }
}

/// A page of results; pass `next_cursor` back as `cursor` for the next page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page from a query that fetched up to `limit + 1` rows: the extra row
    /// only says that there is more, and the last kept row is the cursor.
    pub fn from_overfetch(mut items: Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> String) -> Self {
        let limit = usize::try_from(limit).unwrap_or(0);
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(cursor_of)
        } else {
            None
        };
        Self { items, next_cursor }
    }
}
