//! Who is signed in, how to sign in, and one's own teams.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::model::{AppError, MyTeam, TeamDetail, User};

/// A person the development sign-in offers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevUser {
    pub username: String,
    pub display_name: String,
    /// What signing in as this person shows, e.g. "admin" or "member of team-a, team-b".
    pub summary: String,
}

/// What the sign-in page offers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInOptions {
    pub oidc: bool,
    /// Empty unless the development sign-in is on.
    pub dev_users: Vec<DevUser>,
}

/// The signed-in person, or `None`.
#[server(prefix = "/rpc", endpoint = "whoami")]
pub async fn whoami() -> Result<Option<User>, AppError> {
    Ok(super::actor().ok().map(|a| a.user))
}

#[server(prefix = "/rpc", endpoint = "sign_in_options")]
pub async fn get_sign_in_options() -> Result<SignInOptions, AppError> {
    let state = super::app_state()?;
    let dev_users = if state.runtime.dev_sign_in {
        crate::domain::identity::dev_identities()
            .into_iter()
            .map(|i| {
                let teams: Vec<String> =
                    crate::domain::identity::memberships_from_groups(&i.groups)
                        .into_iter()
                        .map(|(t, r)| format!("{} of {t}", r.as_str()))
                        .collect();
                let mut summary = teams.join(", ");
                if i.is_admin {
                    summary = format!("platform admin; {summary}");
                }
                DevUser {
                    username: i.username,
                    display_name: i.display_name,
                    summary,
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(SignInOptions {
        oidc: state.runtime.oidc,
        dev_users,
    })
}

/// The caller's teams, each with its members.
#[server(prefix = "/rpc", endpoint = "my_teams")]
pub async fn my_teams() -> Result<Vec<(MyTeam, TeamDetail)>, AppError> {
    let state = super::app_state()?;
    let actor = super::actor()?;
    let mut conn = state
        .db
        .acquire()
        .await
        .map_err(crate::domain::Error::from)?;
    let mine = crate::domain::identity::my_teams(&mut *conn, &actor).await?;
    let mut out = Vec::with_capacity(mine.len());
    for t in mine {
        let detail = crate::domain::teams::get(&mut conn, &actor, &t.slug).await?;
        out.push((t, detail));
    }
    Ok(out)
}

/// One team the caller may see.
#[server(prefix = "/rpc", endpoint = "team_detail")]
pub async fn get_team_detail(slug: String) -> Result<TeamDetail, AppError> {
    let state = super::app_state()?;
    let actor = super::actor()?;
    let mut conn = state
        .db
        .acquire()
        .await
        .map_err(crate::domain::Error::from)?;
    Ok(crate::domain::teams::get(&mut conn, &actor, &slug).await?)
}
