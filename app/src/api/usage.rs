//! The usage pages' server functions.

use leptos::prelude::*;

use crate::model::{AppError, UsageDashboard};

/// The range the page asked for, and a database connection.
#[cfg(feature = "ssr")]
async fn range_and_conn(
    range: &str,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<
    (
        crate::model::UsageRange,
        sqlx::pool::PoolConnection<sqlx::Postgres>,
    ),
    AppError,
> {
    let range = crate::model::UsageRange::new(range, from, to, time::OffsetDateTime::now_utc())?;
    let conn = super::app_state()?
        .db
        .acquire()
        .await
        .map_err(|e| AppError::from(crate::domain::Error::from(e)))?;
    Ok((range, conn))
}

/// A team's usage dashboard over a range (`1h`, `24h`, `7d`, `30d`, or
/// `custom` with `from` and `to`), its charts limited to `model` if given.
#[server(prefix = "/rpc", endpoint = "usage_dashboard")]
pub async fn get_usage_dashboard(
    slug: String,
    range: String,
    from: Option<String>,
    to: Option<String>,
    model: Option<String>,
) -> Result<UsageDashboard, AppError> {
    let state = super::app_state()?;
    let actor = super::actor()?;
    let (range, mut conn) = range_and_conn(&range, from.as_deref(), to.as_deref()).await?;
    Ok(crate::domain::usage::dashboard(
        &mut conn,
        &actor,
        state.metrics.as_deref(),
        &slug,
        range,
        model,
    )
    .await?)
}

/// Every team's usage and the cluster-wide charts over a range (admins).
#[server(prefix = "/rpc", endpoint = "admin_usage")]
pub async fn get_admin_usage(
    range: String,
    from: Option<String>,
    to: Option<String>,
) -> Result<crate::model::AdminUsage, AppError> {
    let state = super::app_state()?;
    let actor = super::actor()?;
    let (range, mut conn) = range_and_conn(&range, from.as_deref(), to.as_deref()).await?;
    Ok(
        crate::domain::usage::admin_dashboard(&mut conn, &actor, state.metrics.as_deref(), range)
            .await?,
    )
}
