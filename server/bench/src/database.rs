//! The gateway's database: created afresh, migrated from `migrations/`, and
//! seeded with one team, its owner and one inference key.

use std::path::Path;
use std::str::FromStr;

use anyhow::Context as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection as _, Row as _};

use crate::key::ApiKey;

/// Drops and recreates database `name` on the server of `admin_url`, migrates
/// it, inserts a key for `pepper`, and returns the new database's URL and the key.
pub async fn prepare(
    admin_url: &str,
    name: &str,
    migrations: &Path,
    pepper: &str,
) -> anyhow::Result<(String, ApiKey)> {
    let mut admin = PgConnection::connect(admin_url)
        .await
        .with_context(|| format!("cannot connect to Postgres at {admin_url}"))?;
    // One statement each: together they would form one transaction, which
    // DROP DATABASE refuses.
    for statement in [
        format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        format!("CREATE DATABASE \"{name}\""),
    ] {
        sqlx::raw_sql(&statement)
            .execute(&mut admin)
            .await
            .with_context(|| format!("cannot recreate database {name}"))?;
    }
    admin.close().await.ok();

    let url = database_url(admin_url, name);
    let options = PgConnectOptions::from_str(admin_url)?.database(name);
    let mut db = PgConnection::connect_with(&options)
        .await
        .with_context(|| format!("cannot connect to database {name}"))?;
    sqlx::migrate::Migrator::new(migrations)
        .await
        .with_context(|| format!("cannot read migrations in {}", migrations.display()))?
        .run(&mut db)
        .await
        .context("migrations failed")?;

    let key = ApiKey::generate(pepper);
    let user: sqlx::types::Uuid = sqlx::query(
        "INSERT INTO users (issuer, subject, username, display_name)
         VALUES ('bench', 'bench', 'bench', 'Bench') RETURNING id",
    )
    .fetch_one(&mut db)
    .await?
    .get(0);
    let team: sqlx::types::Uuid =
        sqlx::query("INSERT INTO teams (slug, name) VALUES ('bench', 'Bench') RETURNING id")
            .fetch_one(&mut db)
            .await?
            .get(0);
    sqlx::query(
        "INSERT INTO memberships (team_id, user_id, role, source) VALUES ($1, $2, 'owner', 'manual')",
    )
    .bind(team)
    .bind(user)
    .execute(&mut db)
    .await?;
    sqlx::query(
        "INSERT INTO api_keys (public_id, secret_hmac, team_id, owner_id, name, scopes, expires_at)
         VALUES ($1, $2, $3, $4, 'bench', ARRAY['inference'], now() + interval '1 day')",
    )
    .bind(&key.public_id)
    .bind(&key.secret_hmac)
    .bind(team)
    .bind(user)
    .execute(&mut db)
    .await
    .context("cannot insert the bench key")?;
    db.close().await.ok();
    Ok((url, key))
}

/// `admin_url` with its database replaced by `name`.
fn database_url(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin_url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let server = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_name_replaces_the_admin_one() {
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/postgres", "b"),
            "postgres://postgres@127.0.0.1:5432/b"
        );
        assert_eq!(
            database_url("postgres://u:p@h/postgres?sslmode=disable", "b"),
            "postgres://u:p@h/b?sslmode=disable"
        );
        assert_eq!(
            database_url("postgres://h:5432", "b"),
            "postgres://h:5432/b"
        );
    }
}
