//! `/api/v1/operations`: start, list, read, cancel and watch (a
//! `text/event-stream` of the operation's state) cluster operations; and
//! `/api/v1/cluster`, the workloads' live state.

use std::convert::Infallible;
use std::time::Duration;

use app::domain::operations;
use app::model::{
    ClusterReport, NewOperation, Operation, OperationDetail, OperationFilter, OperationKind,
    OperationState, Page,
};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::{IntoParams, PartialSchema};
use uuid::Uuid;

use super::problem::Problem;
use super::{Body, Caller, Params, param};
use crate::ServerState;

fn db_err(e: sqlx::Error) -> Problem {
    app::domain::Error::from(e).into()
}

/// A path id that is not a UUID names nothing: 404, like an unknown one.
fn parse_id(id: &str) -> Result<Uuid, app::domain::Error> {
    Uuid::parse_str(id).map_err(|_| app::domain::Error::NotFound)
}

#[derive(Debug, Deserialize)]
pub struct OperationQuery {
    state: Option<String>,
    kind: Option<String>,
    team: Option<String>,
    model: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

impl IntoParams for OperationQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        use app::model::paging_schema::{filter, limit};
        let q = ParameterIn::Query;
        let uuid = ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
            .build();
        vec![
            param(
                "state",
                q.clone(),
                "Only operations in this state.",
                OperationState::schema(),
                None,
            ),
            param(
                "kind",
                q.clone(),
                "Only operations of this kind.",
                OperationKind::schema(),
                None,
            ),
            param(
                "team",
                q.clone(),
                "Team slug (a team you cannot see gives an empty list).",
                filter(),
                None,
            ),
            param(
                "model",
                q.clone(),
                "Model (`llama3.2` means `llama3.2:latest`), as source or destination.",
                filter(),
                None,
            ),
            param("limit", q.clone(), "Items per page.", limit(), None),
            param(
                "cursor",
                q,
                "`next_cursor` from the previous page.",
                utoipa::openapi::RefOr::T(uuid.into()),
                None,
            ),
        ]
    }
}

/// Operations you may see, newest first: your teams' (admins: all, the
/// platform's included).
#[utoipa::path(get, path = "/api/v1/operations", tag = "cluster", params(OperationQuery),
    responses(
        (status = 200, body = Page<Operation>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_operations(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Params(q): Params<OperationQuery>,
) -> Result<Json<Page<Operation>>, Problem> {
    let filter = OperationFilter {
        state: q.state,
        kind: q.kind,
        team: q.team,
        model: q.model,
    };
    let mut conn = s.app.db.acquire().await.map_err(db_err)?;
    let page = match operations::list(
        &mut conn,
        &actor,
        &filter,
        q.cursor.as_deref(),
        q.limit.unwrap_or(app::model::PAGE_LIMIT_DEFAULT),
    )
    .await
    {
        // A team one cannot see has no operations one can see.
        Err(app::domain::Error::NotFound) if filter.team.is_some() => Page {
            items: Vec::new(),
            next_cursor: None,
        },
        other => other?,
    };
    Ok(Json(page))
}

/// Starts a pull, delete or copy on every pod of a workload, or a scale.
/// Team owners act for their team on models its allow-list holds; admins
/// for any team or the platform, on any model; scaling is for admins. A
/// pull of a model already under way is joined: `200` with that one.
#[utoipa::path(post, path = "/api/v1/operations", tag = "cluster",
    request_body = NewOperation,
    responses(
        (status = 201, description = "Queued (or scheduled for the next maintenance window)", body = Operation),
        (status = 200, description = "The same pull was under way: this is it", body = Operation),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn start_operation(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Body(new): Body<NewOperation>,
) -> Result<(StatusCode, Json<Operation>), Problem> {
    let mut tx = s.app.db.begin().await.map_err(db_err)?;
    let started = operations::start(&mut tx, &actor, s.app.cluster.workloads(), &new).await?;
    tx.commit().await.map_err(db_err)?;
    let status = if started.joined {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(started.operation)))
}

/// One operation with its per-pod progress and its log.
#[utoipa::path(get, path = "/api/v1/operations/{id}", tag = "cluster",
    params(("id" = Uuid, Path, description = "Operation id")),
    responses(
        (status = 200, body = OperationDetail),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_operation(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<OperationDetail>, Problem> {
    let id = parse_id(&id)?;
    let mut conn = s.app.db.acquire().await.map_err(db_err)?;
    Ok(Json(operations::detail(&mut conn, &actor, id).await?))
}

/// Cancels an operation: one still waiting ends at once; a running one
/// stops on every pod within about a second (its team's owners, admins).
#[utoipa::path(post, path = "/api/v1/operations/{id}/cancel", tag = "cluster",
    params(("id" = Uuid, Path, description = "Operation id")),
    responses(
        (status = 200, body = Operation),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn cancel_operation(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<Operation>, Problem> {
    let id = parse_id(&id)?;
    let mut tx = s.app.db.begin().await.map_err(db_err)?;
    let op = operations::cancel(&mut tx, &actor, id).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(Json(op))
}

/// The operation as it changes: an `operation` event with the whole
/// operation (as `GET /api/v1/operations/{id}` without the log) at once
/// and at each change (at most 5 a second), ending after its final state.
/// Any Corral replica serves it, whichever runs the operation.
#[utoipa::path(get, path = "/api/v1/operations/{id}/events", tag = "cluster",
    params(("id" = Uuid, Path, description = "Operation id")),
    responses(
        (status = 200, description = "Server-sent events, `event: operation`, `data:` an Operation as JSON", content_type = "text/event-stream", body = OperationEvent),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn operation_events(
    State(s): State<ServerState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    let id = parse_id(&id)?;
    let mut conn = s.app.db.acquire().await.map_err(db_err)?;
    let first = operations::visible(&mut conn, &actor, id).await?;
    drop(conn);
    let changes = s.operation_events.subscribe();
    let db = s.app.db.clone();
    let stream = watch(first, changes, db, actor);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// One server-sent event of `GET /api/v1/operations/{id}/events`, as the
/// document describes it (the stream is written by axum's `Event`).
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "a description of the wire format, never built")]
pub struct OperationEvent {
    /// Always `operation`.
    #[schema(pattern = "^operation$")]
    event: String,
    /// The operation as JSON: an `Operation`.
    data: String,
}

/// What a watch of one operation holds between events.
struct Watch {
    id: Uuid,
    changes: tokio::sync::broadcast::Receiver<Uuid>,
    db: sqlx::PgPool,
    actor: app::domain::Actor,
    /// The state to send next without looking (the first).
    first: Option<Operation>,
    /// What was sent last: the same state is not sent twice.
    last: Option<Operation>,
    done: bool,
}

impl Watch {
    /// Until a change to this operation is heard, or 2 s pass (a missed
    /// notification, or Postgres' LISTEN away).
    async fn changed(&mut self) {
        use tokio::sync::broadcast::error::RecvError;
        let id = self.id;
        let rx = &mut self.changes;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                match rx.recv().await {
                    Ok(changed) if changed == id => return,
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        })
        .await;
    }

    /// The next state to send; none when the watch is over.
    async fn next(&mut self) -> Option<Operation> {
        if self.done {
            return None;
        }
        if let Some(op) = self.first.take() {
            return Some(op);
        }
        loop {
            self.changed().await;
            // At most 5 events a second.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let Ok(mut conn) = self.db.acquire().await else {
                continue;
            };
            match operations::visible(&mut conn, &self.actor, self.id).await {
                Ok(op) if self.last.as_ref() != Some(&op) => return Some(op),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }
}

/// The events of one operation: the first state, then each change.
fn watch(
    first: Operation,
    changes: tokio::sync::broadcast::Receiver<Uuid>,
    db: sqlx::PgPool,
    actor: app::domain::Actor,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let w = Watch {
        id: first.id,
        changes,
        db,
        actor,
        first: Some(first),
        last: None,
        done: false,
    };
    futures_util::stream::unfold(w, |mut w| async move {
        let op = w.next().await?;
        w.done = op.state.is_final();
        let event = Event::default()
            .event("operation")
            .json_data(&op)
            .unwrap_or_else(|_| Event::default().comment("unserialisable"));
        w.last = Some(op);
        Some((Ok(event), w))
    })
}

/// Every workload's replicas, autoscaler and pods, and each pod's models
/// and what it has loaded. Members see it without the pods' addresses.
#[utoipa::path(get, path = "/api/v1/cluster", tag = "cluster",
    responses(
        (status = 200, body = ClusterReport),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_cluster(
    State(s): State<ServerState>,
    Caller(actor): Caller,
) -> Result<Json<ClusterReport>, Problem> {
    let mut report = s.app.cluster.report().await;
    if !actor.is_admin() {
        for w in &mut report.workloads {
            for p in &mut w.pods {
                p.endpoint = None;
            }
        }
    }
    Ok(Json(report))
}
