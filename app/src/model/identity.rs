//! People, teams and memberships as the UI and the REST API see them.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// A person's role in one team.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ssr", derive(sqlx::Type))]
#[cfg_attr(
    feature = "ssr",
    sqlx(type_name = "team_role", rename_all = "lowercase")
)]
#[serde(rename_all = "lowercase")]
pub enum TeamRole {
    Member,
    Owner,
}

impl TeamRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Owner => "owner",
        }
    }
}

/// Where a membership comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum MembershipSource {
    /// Synced from the identity provider's groups at every sign-in.
    Idp,
    /// Added by an admin; the sync leaves it alone.
    Manual,
}

/// A signed-in person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub is_admin: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_sign_in_at: Option<OffsetDateTime>,
}

/// One of the caller's teams, with the caller's role in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MyTeam {
    pub slug: String,
    pub name: String,
    pub role: TeamRole,
    pub source: MembershipSource,
}

/// `GET /api/v1/me`: who the caller is and where they belong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Me {
    pub user: User,
    pub teams: Vec<MyTeam>,
    /// How the caller authenticated: `session` or `api_key`.
    pub via: String,
}

/// A team as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Team {
    pub slug: String,
    pub name: String,
    pub description: String,
    /// The IdP group that feeds this team, e.g. `/team-a`; none for teams
    /// created in Corral only.
    pub idp_group: Option<String>,
    pub member_count: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A member of a team.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Member {
    pub username: String,
    pub display_name: String,
    pub role: TeamRole,
    pub source: MembershipSource,
}

/// A team with its members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TeamDetail {
    #[serde(flatten)]
    pub team: Team,
    pub members: Vec<Member>,
}

/// What an admin sends to create a team.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewTeam {
    #[cfg_attr(feature = "ssr", schema(schema_with = rules::schema::slug))]
    pub slug: String,
    #[cfg_attr(feature = "ssr", schema(schema_with = rules::schema::name))]
    pub name: String,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(schema_with = rules::schema::description))]
    pub description: String,
    /// The IdP group that feeds the team, e.g. `/team-c`; empty or absent
    /// for none.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(schema_with = rules::schema::idp_group_or_null))]
    pub idp_group: Option<String>,
}

/// What an admin sends to add someone to a team by hand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    /// Username of someone who has signed in to Corral.
    #[cfg_attr(feature = "ssr", schema(schema_with = rules::schema::username))]
    pub username: String,
    pub role: TeamRole,
}

/// What an admin sends to change a team; absent fields stay as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TeamPatch {
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(schema_with = rules::schema::name_or_null))]
    pub name: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(schema_with = rules::schema::description_or_null))]
    pub description: Option<String>,
}

/// Rules for team fields, shared by the forms, the REST API, the domain and
/// the OpenAPI document.
pub mod rules {
    use crate::model::AppError;
    use crate::model::text::{Shape, TextRule, white_space_class};

    pub const SLUG_MAX: usize = 63;
    pub const NAME_MAX: usize = 100;
    pub const DESCRIPTION_MAX: usize = 500;
    pub const IDP_GROUP_MAX: usize = 255;

    /// `team-a`: lowercase letters, digits and inner hyphens, 1 to 63 long.
    pub const SLUG: TextRule = TextRule {
        max_chars: Some(SLUG_MAX),
        not_blank: true,
        shape: Some(Shape {
            matches: is_slug,
            pattern: "^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$",
            message: "use 1 to 63 lowercase letters, digits and hyphens, not starting or ending with a hyphen",
        }),
    };
    pub const NAME: TextRule = TextRule::required(NAME_MAX);
    pub const DESCRIPTION: TextRule = TextRule::up_to(DESCRIPTION_MAX);
    /// `/team-a`: a Keycloak group path; empty means none.
    pub const IDP_GROUP: TextRule = TextRule {
        max_chars: Some(IDP_GROUP_MAX),
        not_blank: false,
        shape: Some(Shape {
            matches: is_group_or_empty,
            pattern: concat!(r"^(?:/[^\u0000", white_space_class!(), "]+)?$"),
            message: "must be a group path such as /team-a",
        }),
    };

    fn is_slug(s: &str) -> bool {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    }

    fn is_group_or_empty(g: &str) -> bool {
        g.is_empty()
            || (g.len() > 1
                && g.starts_with('/')
                && !g.chars().any(|c| c.is_whitespace() || c == '\0'))
    }

    pub fn slug(slug: &str) -> Result<(), AppError> {
        SLUG.check("slug", slug)
    }

    pub fn name(name: &str) -> Result<(), AppError> {
        NAME.check("name", name)
    }

    pub fn description(d: &str) -> Result<(), AppError> {
        DESCRIPTION.check("description", d)
    }

    /// A group path, or empty for none.
    pub fn idp_group(g: &str) -> Result<(), AppError> {
        IDP_GROUP.check("idp_group", g)
    }

    /// The rules as the document states them (`schema_with` functions).
    #[cfg(feature = "ssr")]
    pub mod schema {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::Schema;

        use crate::model::text::TextRule;
        use crate::model::text::schema::{inline, text};

        pub fn slug() -> RefOr<Schema> {
            inline(text(&super::SLUG, false))
        }
        pub fn name() -> RefOr<Schema> {
            inline(text(&super::NAME, false))
        }
        pub fn name_or_null() -> RefOr<Schema> {
            inline(text(&super::NAME, true))
        }
        pub fn description() -> RefOr<Schema> {
            inline(text(&super::DESCRIPTION, false))
        }
        pub fn description_or_null() -> RefOr<Schema> {
            inline(text(&super::DESCRIPTION, true))
        }
        pub fn idp_group_or_null() -> RefOr<Schema> {
            inline(text(&super::IDP_GROUP, true))
        }
        pub fn username() -> RefOr<Schema> {
            let mut s = text(&TextRule::LOOKUP, false);
            s.description = Some("Username of someone who has signed in to Corral.".into());
            inline(s)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn slugs() {
            for ok in ["a", "team-a", "ml-42", "x1"] {
                assert!(slug(ok).is_ok(), "{ok}");
            }
            for bad in ["", "-a", "a-", "Team", "a_b", "a b", "a\0", &"a".repeat(64)] {
                assert!(slug(bad).is_err(), "{bad}");
            }
        }

        #[test]
        fn names_and_groups() {
            assert!(name("  ").is_err());
            assert!(name(&"n".repeat(101)).is_err());
            assert!(name("Platform").is_ok());
            assert!(idp_group("/team-a").is_ok());
            assert!(idp_group("").is_ok());
            for bad in [
                "team-a",
                "/",
                "/a b",
                "/a\0",
                &format!("/{}", "g".repeat(255)),
            ] {
                assert!(idp_group(bad).is_err(), "{bad}");
            }
        }
    }
}
