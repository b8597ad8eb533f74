//! Saving Modelfiles: a new one, a new version, a rollback; each checked as
//! Ollama would read it, its name in the right namespace and its base one
//! the team may build on.

use serde_json::{Value, json};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::{Access, Owner, authorize, detail, fetch_version, owner};
use crate::domain::audit::{self, By, Record};
use crate::domain::authz::Actor;
use crate::domain::error::{Error, Result};
use crate::model::key_rules::{self, normalize_model};
use crate::model::modelfiles::rules;
use crate::model::text::storable;
use crate::model::{ModelfileDetail, ModelfileVersion, NewModelfile, NewVersion, Rollback};

/// Creates a Modelfile and its first version. Run it in a transaction.
pub async fn create(
    tx: &mut PgConnection,
    actor: &Actor,
    new: &NewModelfile,
) -> Result<ModelfileDetail> {
    for (field, value) in [
        ("team", new.team.as_deref().unwrap_or_default()),
        ("name", &new.name),
        ("description", &new.description),
        ("text", &new.text),
        ("message", &new.message),
    ] {
        storable(field, value)?;
    }
    let team = editable_team(&mut *tx, actor, new.team.as_deref()).await?;
    let name = model_name(&mut *tx, team.as_ref().map(|t| t.1.as_str()), &new.name).await?;
    rules::DESCRIPTION.check("description", &new.description)?;
    let id = sqlx::query_scalar!(
        r#"INSERT INTO modelfiles (team_id, name, description, created_by)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (name) DO NOTHING
           RETURNING id"#,
        team.as_ref().map(|t| t.0),
        name,
        new.description.trim(),
        actor.user.id,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::Conflict(format!("a Modelfile already creates the model {name}")))?;
    let owner = Owner {
        id,
        team_id: team.as_ref().map(|t| t.0),
        team: team.map(|t| t.1),
        name,
    };
    save(tx, actor, &owner, &new.text, &new.message, None).await?;
    detail(tx, id).await
}

/// The team (id, slug) a new Modelfile is for, when the actor may edit its
/// Modelfiles; none for the platform's (admins).
pub(crate) async fn editable_team(
    conn: impl PgExecutor<'_>,
    actor: &Actor,
    team: Option<&str>,
) -> Result<Option<(Uuid, String)>> {
    let team = match team.map(str::trim).filter(|t| !t.is_empty()) {
        Some(slug) => {
            let id = crate::domain::teams::visible_id(conn, actor, slug).await?;
            Some((id, slug.to_owned()))
        }
        None => None,
    };
    authorize(actor, team.as_ref().map(|t| t.0), Access::Edit)?;
    Ok(team)
}

/// The model name a Modelfile may create: valid, normalised, in the team's
/// namespace (`<slug>/…`) for a team's, in no team's namespace for the
/// platform's.
async fn model_name(conn: impl PgExecutor<'_>, team: Option<&str>, raw: &str) -> Result<String> {
    key_rules::model_name("name", raw.trim())?;
    let name = normalize_model(raw);
    let namespace = name.split_once('/').map(|(ns, _)| ns);
    match (team, namespace) {
        (Some(slug), Some(ns)) if ns == slug => Ok(name),
        (Some(slug), _) => Err(Error::Validation {
            field: "name".into(),
            message: format!(
                "a model of team {slug} is named {slug}/<name> (e.g. {slug}/{}), so that no team overwrites another's or the platform's models",
                name.rsplit('/').next().unwrap_or(&name)
            ),
        }),
        (None, Some(ns)) => {
            let taken = sqlx::query_scalar!(
                r#"SELECT EXISTS (SELECT 1 FROM teams WHERE slug = $1) AS "taken!""#,
                ns
            )
            .fetch_one(conn)
            .await?;
            if taken {
                Err(Error::Validation {
                    field: "name".into(),
                    message: format!(
                        "{ns}/ is team {ns}'s namespace; the platform's models are named outside every team's"
                    ),
                })
            } else {
                Ok(name)
            }
        }
        (None, None) => Ok(name),
    }
}

/// Saves a new version of the Modelfile `id`. Run it in a transaction.
pub async fn add_version(
    tx: &mut PgConnection,
    actor: &Actor,
    id: Uuid,
    new: &NewVersion,
) -> Result<ModelfileVersion> {
    let owner = owner(&mut *tx, actor, id, Access::Edit).await?;
    let v = save(tx, actor, &owner, &new.text, &new.message, None).await?;
    fetch_version(&mut *tx, id, v).await
}

/// A new version equal to `version`. Run it in a transaction.
pub async fn rollback(
    tx: &mut PgConnection,
    actor: &Actor,
    id: Uuid,
    r: &Rollback,
) -> Result<ModelfileVersion> {
    let owner = owner(&mut *tx, actor, id, Access::Edit).await?;
    let old = fetch_version(&mut *tx, id, r.version)
        .await
        .map_err(|e| match e {
            Error::NotFound => Error::Validation {
                field: "version".into(),
                message: format!("{} has no version {}", owner.name, r.version),
            },
            other => other,
        })?;
    let message = match r.message.as_deref().map(str::trim) {
        Some(m) if !m.is_empty() => m.to_owned(),
        _ => format!("Roll back to version {}", r.version),
    };
    let v = save(tx, actor, &owner, &old.text, &message, Some(r.version)).await?;
    fetch_version(&mut *tx, id, v).await
}

/// Checks `text` and stores it as the next version; its number.
async fn save(
    tx: &mut PgConnection,
    actor: &Actor,
    owner: &Owner,
    text: &str,
    message: &str,
    restores: Option<i32>,
) -> Result<i32> {
    storable("text", text)?;
    rules::TEXT.check("text", text)?;
    rules::MESSAGE.check("message", message)?;
    let checked = crate::model::modelfiles::check(text, &owner.name);
    let request = match (&checked.request, checked.ok) {
        (Some(r), true) => r.clone(),
        _ => {
            let first = checked
                .diagnostics
                .iter()
                .find(|d| d.severity == modelfile::Severity::Error)
                .map(|d| format!("line {}, column {}: {}", d.line(), d.column(), d.message))
                .unwrap_or_else(|| "it cannot be turned into an /api/create request".into());
            return Err(Error::Validation {
                field: "text".into(),
                message: format!("Ollama would refuse this Modelfile: {first}"),
            });
        }
    };
    let base = base_of(&request).ok_or_else(|| Error::Validation {
        field: "text".into(),
        message: "a Modelfile needs a FROM line naming the model it builds on".into(),
    })?;
    may_build_on(&mut *tx, actor, owner, &base).await?;
    let version = sqlx::query_scalar!(
        r#"UPDATE modelfiles SET latest = latest + 1, updated_at = now()
            WHERE id = $1 RETURNING latest"#,
        owner.id
    )
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query!(
        r#"INSERT INTO modelfile_versions
             (modelfile_id, version, text, request, base, message, author_id, author_name, restores)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"#,
        owner.id,
        version,
        text,
        request,
        base,
        message.trim(),
        actor.user.id,
        actor.user.username,
        restores,
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        By::Actor(actor),
        Record {
            action: if version == 1 {
                "modelfile.create"
            } else {
                "modelfile.version"
            },
            target_kind: "modelfile",
            target_id: &owner.id.to_string(),
            team_id: owner.team_id,
            before: None,
            after: Some(json!({
                "name": owner.name, "version": version, "message": message.trim(),
                "base": base, "restores": restores,
            })),
        },
    )
    .await?;
    Ok(version)
}

/// What a request builds on: the `from` model, normalised, or (a `FROM`
/// naming a blob already on the server) that blob's digest.
pub fn base_of(request: &Value) -> Option<String> {
    match request
        .get("from")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|f| !f.is_empty())
    {
        Some(from) => Some(normalize_model(from)),
        None => request
            .get("files")?
            .as_object()?
            .values()
            .find_map(Value::as_str)
            .map(str::to_owned),
    }
}

/// Ok when `base` is a model the Modelfile's team may build on: on its
/// allow-list (or any, without one), or one of its own Modelfiles' models;
/// never another team's.
pub(crate) async fn may_build_on(
    conn: &mut PgConnection,
    actor: &Actor,
    owner: &Owner,
    base: &str,
) -> Result<()> {
    if base.starts_with("sha256:") {
        // A blob already on the Ollama servers: no model name to allow.
        return Ok(());
    }
    if base == owner.name {
        return Err(Error::Validation {
            field: "text".into(),
            message: format!("{} cannot be built FROM itself", owner.name),
        });
    }
    let r = sqlx::query!(
        r#"SELECT (SELECT team_id FROM modelfiles WHERE name = $2) AS base_team,
                  EXISTS (SELECT 1 FROM modelfiles WHERE name = $2) AS "is_modelfile!",
                  (SELECT allowed_models FROM teams WHERE id = $1) AS allowed"#,
        owner.team_id,
        base
    )
    .fetch_one(&mut *conn)
    .await?;
    if r.is_modelfile {
        if r.base_team.is_some() && r.base_team != owner.team_id {
            return Err(Error::Validation {
                field: "text".into(),
                message: format!("FROM {base}: that model belongs to another team"),
            });
        }
        return Ok(());
    }
    let (Some(slug), false) = (&owner.team, actor.is_admin()) else {
        return Ok(());
    };
    match r.allowed {
        Some(list) if !list.iter().any(|m| m == base) => Err(Error::Validation {
            field: "text".into(),
            message: format!(
                "FROM {base}: not on team {slug}'s model allow-list ({}); ask an admin to add it",
                list.join(", ")
            ),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_is_the_from_model_or_the_blob() {
        assert_eq!(
            base_of(&json!({"from": "llama3.2"})).as_deref(),
            Some("llama3.2:latest")
        );
        assert_eq!(
            base_of(&json!({"files": {"sha256-ab": "sha256:ab"}})).as_deref(),
            Some("sha256:ab")
        );
        assert_eq!(base_of(&json!({"from": " "})), None);
    }
}
