//! Who may do what to which team: the one place that decides.
//!
//! Every domain function that reads or changes team-scoped or admin data
//! takes an [`Actor`] and asks [`Actor::authorize`] first. A team the actor
//! does not belong to is reported as not found, so its existence is not
//! leaked; an admin-only action is reported as forbidden.

use std::collections::HashMap;

use uuid::Uuid;

use super::error::{Error, Result};
use crate::model::{TeamRole, User};

/// How the caller proved who they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// A browser session cookie.
    Session,
    /// A `manage`-scoped API key (bearer token).
    ApiKey,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::ApiKey => "api_key",
        }
    }
}

/// The person (or key) on whose behalf the domain acts.
#[derive(Clone, Debug)]
pub struct Actor {
    pub user: User,
    /// Team id → (slug, role) for every team the actor belongs to.
    pub teams: HashMap<Uuid, (String, TeamRole)>,
    pub via: Via,
    /// The HTTP request this action belongs to, for the audit log.
    pub request_id: Option<String>,
}

/// Everything that needs permission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// See a team, its members and its settings.
    ViewTeam(Uuid),
    /// Create a team.
    CreateTeam,
    /// Change a team's name or description.
    EditTeam(Uuid),
    /// Add or remove members by hand.
    ManageMembers(Uuid),
    /// List every team, not only one's own.
    ListAllTeams,
    /// List users.
    ListUsers,
    /// Read the whole audit log.
    ViewAudit,
    /// Ask for an API key for the team (any member).
    RequestKey(Uuid),
    /// Approve or deny the team's key requests, see and revoke all its keys
    /// (owners and admins).
    ManageTeamKeys(Uuid),
    /// Change the team's models, limits and key policy (admins).
    EditPolicy(Uuid),
    /// See the team's usage (any member).
    ViewUsage(Uuid),
    /// See every key and request of every team.
    ListAllKeys,
    /// See every team's usage and the cluster-wide charts (admins).
    ViewAllUsage,
    /// Pull, delete or copy models for the team, and cancel its operations
    /// (owners, on models the team's allow-list holds; admins).
    StartTeamOperation(Uuid),
    /// Save versions of the team's Modelfiles (any member).
    EditModelfiles(Uuid),
    /// Scale workloads, act for the platform, define maintenance windows
    /// (admins).
    ManageCluster,
}

impl Actor {
    pub fn is_admin(&self) -> bool {
        self.user.is_admin
    }

    /// The teams the actor acts in: all of a person's, only its own for an
    /// API key.
    pub fn team_ids(&self) -> Vec<Uuid> {
        self.teams.keys().copied().collect()
    }

    /// The actor's role in `team`, if any.
    pub fn role_in(&self, team: Uuid) -> Option<TeamRole> {
        self.teams.get(&team).map(|(_, r)| *r)
    }

    /// Ok when the actor may perform `action`.
    pub fn authorize(&self, action: Action) -> Result<()> {
        if self.is_admin() {
            return Ok(());
        }
        match action {
            Action::ViewTeam(team)
            | Action::RequestKey(team)
            | Action::ViewUsage(team)
            | Action::EditModelfiles(team) => self.role_in(team).map(|_| ()).ok_or(Error::NotFound),
            Action::ManageTeamKeys(team) | Action::StartTeamOperation(team) => {
                match self.role_in(team) {
                    Some(TeamRole::Owner) => Ok(()),
                    Some(TeamRole::Member) => Err(Error::Forbidden),
                    None => Err(Error::NotFound),
                }
            }
            Action::EditTeam(team) | Action::ManageMembers(team) | Action::EditPolicy(team) => {
                match self.role_in(team) {
                    Some(_) => Err(Error::Forbidden),
                    None => Err(Error::NotFound),
                }
            }
            Action::CreateTeam
            | Action::ListAllTeams
            | Action::ListUsers
            | Action::ViewAudit
            | Action::ListAllKeys
            | Action::ViewAllUsage
            | Action::ManageCluster => Err(Error::Forbidden),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(is_admin: bool, teams: &[(Uuid, TeamRole)]) -> Actor {
        Actor {
            user: User {
                id: Uuid::new_v4(),
                username: "u".into(),
                display_name: "U".into(),
                email: None,
                is_admin,
                last_sign_in_at: None,
            },
            teams: teams
                .iter()
                .map(|(id, r)| (*id, ("t".to_owned(), *r)))
                .collect(),
            via: Via::Session,
            request_id: None,
        }
    }

    #[test]
    fn a_member_of_team_a_cannot_see_team_b() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let member = actor(false, &[(a, TeamRole::Member)]);
        assert!(member.authorize(Action::ViewTeam(a)).is_ok());
        assert!(matches!(
            member.authorize(Action::ViewTeam(b)),
            Err(Error::NotFound)
        ));
        assert!(matches!(
            member.authorize(Action::ManageMembers(b)),
            Err(Error::NotFound)
        ));
        assert!(matches!(
            member.authorize(Action::ManageMembers(a)),
            Err(Error::Forbidden)
        ));
    }

    #[test]
    fn owners_manage_their_teams_keys_members_only_ask() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let owner = actor(false, &[(a, TeamRole::Owner)]);
        let member = actor(false, &[(a, TeamRole::Member)]);
        assert!(owner.authorize(Action::ManageTeamKeys(a)).is_ok());
        assert!(owner.authorize(Action::StartTeamOperation(a)).is_ok());
        assert!(matches!(
            owner.authorize(Action::StartTeamOperation(b)),
            Err(Error::NotFound)
        ));
        assert!(matches!(
            member.authorize(Action::StartTeamOperation(a)),
            Err(Error::Forbidden)
        ));
        assert!(matches!(
            owner.authorize(Action::ManageTeamKeys(b)),
            Err(Error::NotFound)
        ));
        assert!(matches!(
            owner.authorize(Action::EditPolicy(a)),
            Err(Error::Forbidden)
        ));
        assert!(member.authorize(Action::RequestKey(a)).is_ok());
        assert!(matches!(
            member.authorize(Action::ManageTeamKeys(a)),
            Err(Error::Forbidden)
        ));
        assert!(matches!(
            member.authorize(Action::ViewUsage(b)),
            Err(Error::NotFound)
        ));
    }

    #[test]
    fn only_admins_do_admin_things() {
        let owner = actor(false, &[(Uuid::new_v4(), TeamRole::Owner)]);
        let admin = actor(true, &[]);
        for action in [
            Action::CreateTeam,
            Action::ListAllTeams,
            Action::ListUsers,
            Action::ViewAudit,
            Action::ListAllKeys,
            Action::ViewAllUsage,
            Action::ManageCluster,
        ] {
            assert!(
                matches!(owner.authorize(action), Err(Error::Forbidden)),
                "{action:?}"
            );
            assert!(admin.authorize(action).is_ok(), "{action:?}");
        }
    }
}
