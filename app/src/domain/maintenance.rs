//! Maintenance windows: weekly time ranges, each in its own time zone, in
//! which scheduled operations run (the seed's "run the update during a
//! maintenance window"). Admins define them; anyone may read them.

use serde_json::json;
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use time::macros::format_description;
use uuid::Uuid;

use super::audit::{self, By, Record};
use super::authz::{Action, Actor};
use super::error::{Error, Result};
use crate::model::text::storable;
use crate::model::{MaintenanceSchedule, MaintenanceWindow, NewMaintenanceWindow};

const HH_MM: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[hour]:[minute]");

fn parse_time(field: &str, value: &str) -> Result<time::Time> {
    storable(field, value)?;
    time::Time::parse(value.trim(), HH_MM).map_err(|_| Error::Validation {
        field: field.into(),
        message: format!("{value:?} is not a time of day as HH:MM (00:00 to 23:59)"),
    })
}

fn show(t: time::Time) -> String {
    t.format(HH_MM).unwrap_or_default()
}

/// Every window, and when the next one opens (now, if one is open).
pub async fn schedule(conn: &mut PgConnection) -> Result<MaintenanceSchedule> {
    let windows = sqlx::query!(
        "SELECT id, weekday, starts, ends, time_zone FROM maintenance_windows ORDER BY weekday, starts"
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| MaintenanceWindow {
        id: r.id,
        weekday: r.weekday,
        starts: show(r.starts),
        ends: show(r.ends),
        time_zone: r.time_zone,
    })
    .collect();
    let next_opens_at = next_window_start(&mut *conn).await?;
    Ok(MaintenanceSchedule {
        windows,
        next_opens_at,
    })
}

/// When an operation asked `in_next_window` may start: the next window's
/// opening (refused, naming the field, when none is defined); none when not
/// asked.
pub async fn not_before(
    conn: impl PgExecutor<'_>,
    in_next_window: bool,
) -> Result<Option<OffsetDateTime>> {
    if !in_next_window {
        return Ok(None);
    }
    next_window_start(conn)
        .await?
        .ok_or_else(|| Error::Validation {
            field: "in_next_window".into(),
            message:
                "no maintenance window is defined; an admin defines them under /admin/maintenance"
                    .into(),
        })
        .map(Some)
}

/// When the next maintenance window opens (now, if one is open now);
/// none when no window is defined.
pub async fn next_window_start(conn: impl PgExecutor<'_>) -> Result<Option<OffsetDateTime>> {
    Ok(sqlx::query_scalar!(
        r#"SELECT min(greatest(x.s, now())) AS "next"
             FROM (SELECT ((d::date + w.starts) AT TIME ZONE w.time_zone) AS s,
                          ((d::date + w.ends) AT TIME ZONE w.time_zone) AS e
                     FROM maintenance_windows w,
                          generate_series((now() AT TIME ZONE w.time_zone)::date - 1,
                                          (now() AT TIME ZONE w.time_zone)::date + 7,
                                          interval '1 day') AS d
                    WHERE extract(isodow FROM d) = w.weekday) x
            WHERE x.e > now()"#
    )
    .fetch_one(conn)
    .await?)
}

/// Adds a window (admins). Run it in a transaction.
pub async fn add(
    tx: &mut PgConnection,
    actor: &Actor,
    new: &NewMaintenanceWindow,
) -> Result<MaintenanceWindow> {
    actor.authorize(Action::ManageCluster)?;
    if !(1..=7).contains(&new.weekday) {
        return Err(Error::Validation {
            field: "weekday".into(),
            message: "must be 1 (Monday) to 7 (Sunday)".into(),
        });
    }
    let starts = parse_time("starts", &new.starts)?;
    let ends = parse_time("ends", &new.ends)?;
    if ends <= starts {
        return Err(Error::Validation {
            field: "ends".into(),
            message: "must be after starts (a window that crosses midnight is two windows)".into(),
        });
    }
    storable("time_zone", &new.time_zone)?;
    let zone = new.time_zone.trim();
    let known = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1) AS "known!""#,
        zone
    )
    .fetch_one(&mut *tx)
    .await?;
    if !known || zone.is_empty() {
        return Err(Error::Validation {
            field: "time_zone".into(),
            message: format!("{zone:?} is not an IANA time zone such as Europe/Berlin or UTC"),
        });
    }
    let id = sqlx::query_scalar!(
        "INSERT INTO maintenance_windows (weekday, starts, ends, time_zone) VALUES ($1, $2, $3, $4) RETURNING id",
        new.weekday,
        starts,
        ends,
        zone,
    )
    .fetch_one(&mut *tx)
    .await?;
    let window = MaintenanceWindow {
        id,
        weekday: new.weekday,
        starts: show(starts),
        ends: show(ends),
        time_zone: zone.to_owned(),
    };
    audit::record(
        &mut *tx,
        By::Actor(actor),
        Record {
            action: "maintenance_window.add",
            target_kind: "maintenance_window",
            target_id: &id.to_string(),
            team_id: None,
            before: None,
            after: Some(json!(window)),
        },
    )
    .await?;
    Ok(window)
}

/// Removes a window (admins). Run it in a transaction.
pub async fn remove(tx: &mut PgConnection, actor: &Actor, id: Uuid) -> Result<()> {
    actor.authorize(Action::ManageCluster)?;
    let gone = sqlx::query!(
        "DELETE FROM maintenance_windows WHERE id = $1 RETURNING weekday, starts, ends, time_zone",
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    audit::record(
        &mut *tx,
        By::Actor(actor),
        Record {
            action: "maintenance_window.remove",
            target_kind: "maintenance_window",
            target_id: &id.to_string(),
            team_id: None,
            before: Some(json!({
                "weekday": gone.weekday, "starts": show(gone.starts), "ends": show(gone.ends),
                "time_zone": gone.time_zone,
            })),
            after: None,
        },
    )
    .await?;
    Ok(())
}
