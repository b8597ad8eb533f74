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
    pub slug: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub idp_group: Option<String>,
}

/// What an admin sends to add someone to a team by hand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    /// Username of someone who has signed in to Corral.
    pub username: String,
    pub role: TeamRole,
}

/// What an admin sends to change a team; absent fields stay as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TeamPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// Rules for team fields, shared by the forms, the REST API and the domain.
pub mod rules {
    use crate::model::AppError;

    pub const SLUG_MAX: usize = 63;
    pub const NAME_MAX: usize = 100;
    pub const DESCRIPTION_MAX: usize = 500;

    /// `team-a`: lowercase letters, digits and inner hyphens, 1 to 63 long.
    pub fn slug(slug: &str) -> Result<(), AppError> {
        let ok = !slug.is_empty()
            && slug.len() <= SLUG_MAX
            && slug
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !slug.starts_with('-')
            && !slug.ends_with('-');
        if ok {
            Ok(())
        } else {
            Err(AppError::validation(
                "slug",
                "use 1 to 63 lowercase letters, digits and hyphens, not starting or ending with a hyphen",
            ))
        }
    }

    pub fn name(name: &str) -> Result<(), AppError> {
        let n = name.trim().chars().count();
        if n == 0 {
            Err(AppError::validation("name", "must not be empty"))
        } else if n > NAME_MAX {
            Err(AppError::validation(
                "name",
                format!("must be at most {NAME_MAX} characters"),
            ))
        } else {
            Ok(())
        }
    }

    pub fn description(d: &str) -> Result<(), AppError> {
        if d.chars().count() > DESCRIPTION_MAX {
            Err(AppError::validation(
                "description",
                format!("must be at most {DESCRIPTION_MAX} characters"),
            ))
        } else {
            Ok(())
        }
    }

    /// `/team-a`: a Keycloak group path.
    pub fn idp_group(g: &str) -> Result<(), AppError> {
        if g.starts_with('/')
            && g.len() > 1
            && g.len() <= 255
            && !g.chars().any(char::is_whitespace)
        {
            Ok(())
        } else {
            Err(AppError::validation(
                "idp_group",
                "must be a group path such as /team-a",
            ))
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
            for bad in ["", "-a", "a-", "Team", "a_b", "a b", &"a".repeat(64)] {
                assert!(slug(bad).is_err(), "{bad}");
            }
        }

        #[test]
        fn names_and_groups() {
            assert!(name("  ").is_err());
            assert!(name(&"n".repeat(101)).is_err());
            assert!(name("Platform").is_ok());
            assert!(idp_group("/team-a").is_ok());
            assert!(idp_group("team-a").is_err());
        }
    }
}
