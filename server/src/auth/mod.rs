//! Who is calling: sessions, the OpenID Connect sign-in, the development
//! sign-in, CSRF protection, and the middleware that turns a session (or a
//! `manage`-scoped API key) into the domain's [`Actor`].

pub mod dev;
pub mod oidc;
pub mod pages;

use std::sync::Arc;
use std::time::Duration;

use app::domain::{Actor, Via};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::REQUEST_ID;

/// Session key of the signed-in person.
pub const SESSION_AUTH: &str = "corral.auth";
/// Session cookie name.
pub const SESSION_COOKIE: &str = "corral_session";

/// What a session remembers about its signed-in person.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionAuth {
    pub user_id: uuid::Uuid,
    /// Unix seconds; the absolute timeout counts from here.
    pub signed_in_at: i64,
    /// The ID token, kept as the hint for RP-initiated logout.
    pub id_token: Option<String>,
}

/// How people sign in, built from the settings at start-up.
pub struct Auth {
    pub oidc: Option<oidc::Oidc>,
    pub dev_sign_in: bool,
    /// `https://corral.example.com`, no trailing slash.
    pub public_url: String,
    pub absolute_timeout: Duration,
}

/// Loads the caller's [`Actor`] into the request extensions, if the session
/// holds a signed-in person whose session has not expired.
pub async fn resolve_actor(
    State(crate::ServerState {
        app: app_state,
        auth,
        ..
    }): State<crate::ServerState>,
    session: Session,
    mut req: Request,
    next: Next,
) -> Response {
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(token) = bearer_token(req.headers()) {
        // An API key is a credential of its own: a bad one is refused, never
        // ignored in favour of a session cookie.
        use crate::rest::problem::Problem;
        use app::domain::keys::{BearerRefusal, authenticate_bearer};
        let token = token.to_owned();
        return match authenticate_bearer(&app_state.db, &token, &app_state.runtime.pepper, request_id)
            .await
        {
            Ok(Ok(actor)) => {
                req.extensions_mut().insert(actor);
                next.run(req).await
            }
            Ok(Err(BearerRefusal::Invalid(why))) => Problem::unauthorized(why).into_response(),
            Ok(Err(BearerRefusal::NoManageScope)) => Problem::new(
                StatusCode::FORBIDDEN,
                "Key lacks the manage scope",
                "this API key may call models through the gateway but not Corral's REST API; use a key with the manage scope",
            )
            .into_response(),
            Err(e) => Problem::from(e).into_response(),
        };
    }
    match session.get::<SessionAuth>(SESSION_AUTH).await {
        Ok(Some(s)) => {
            let age = time::OffsetDateTime::now_utc().unix_timestamp() - s.signed_in_at;
            if age > auth.absolute_timeout.as_secs() as i64 {
                tracing::info!(user_id = %s.user_id, "session reached its absolute timeout");
                let _ = session.flush().await;
            } else {
                match app::domain::identity::load_actor(
                    &app_state.db,
                    s.user_id,
                    Via::Session,
                    request_id,
                )
                .await
                {
                    Ok(Some(actor)) => {
                        req.extensions_mut().insert(actor);
                    }
                    Ok(None) => {
                        let _ = session.flush().await;
                    }
                    Err(e) => {
                        let e: app::model::AppError = e.into();
                        return (
                            StatusCode::from_u16(e.status_code())
                                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                            e.to_string(),
                        )
                            .into_response();
                    }
                }
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %e, "session store unavailable");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "PostgreSQL is unavailable; try again shortly",
            )
                .into_response();
        }
    }
    next.run(req).await
}

/// The `Authorization: Bearer …` token, if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(app::domain::keys::token::bearer)
}

/// CSRF protection for every state-changing browser request: the request
/// must come from Corral's own pages, as the browser's `Origin` (or
/// `Sec-Fetch-Site`) header proves. SameSite=Lax cookies are the second line.
pub async fn csrf_guard(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    // A bearer key is not ambient authority a browser attaches by itself;
    // `resolve_actor` has already verified (or refused) it.
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || bearer_token(req.headers()).is_some()
    {
        return next.run(req).await;
    }
    if let Err(reason) = same_origin(req.headers(), &auth.public_url) {
        tracing::warn!(method = %req.method(), path = req.uri().path(), reason, "cross-site request refused");
        return crate::rest::problem::Problem::new(
            StatusCode::FORBIDDEN,
            "Cross-site request refused",
            format!("{reason}; state-changing requests must come from Corral's own pages"),
        )
        .into_response();
    }
    next.run(req).await
}

fn same_origin(headers: &HeaderMap, public_url: &str) -> Result<(), &'static str> {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if let Some(origin) = origin {
        if origin == public_url {
            return Ok(());
        }
        // Same host as the request was sent to (e.g. reached via another name).
        let origin_host = origin.split_once("://").map(|(_, h)| h);
        if origin_host.is_some() && origin_host == host {
            return Ok(());
        }
        return Err("the Origin header names another site");
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some("same-origin") => Ok(()),
        Some(_) => Err("the browser says the request came from another site"),
        None => Err("the request has neither an Origin nor a Sec-Fetch-Site header"),
    }
}

/// Pages that need a signed-in person: without one, a full page load is
/// redirected to the sign-in page and back afterwards.
pub async fn require_sign_in(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let protected = ["/teams", "/admin", "/cluster", "/operations", "/modelfiles"]
        .iter()
        .any(|p| {
            path == *p
                || path
                    .strip_prefix(p)
                    .is_some_and(|rest| rest.starts_with('/'))
        });
    if protected && req.method() == Method::GET && req.extensions().get::<Actor>().is_none() {
        let next_url = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        return Redirect::to(&format!("/signin?next={}", urlencode(next_url))).into_response();
    }
    next.run(req).await
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Only local paths are followed after sign-in, never another site.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/teams".to_owned(),
    }
}

/// Starts a signed-in session for `user_id`: a new session id (so a
/// session fixed before sign-in is worthless), then the person.
pub async fn start_session(
    session: &Session,
    user_id: uuid::Uuid,
    id_token: Option<String>,
) -> Result<(), tower_sessions::session::Error> {
    session.cycle_id().await?;
    session
        .insert(
            SESSION_AUTH,
            SessionAuth {
                user_id,
                signed_in_at: time::OffsetDateTime::now_utc().unix_timestamp(),
                id_token,
            },
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_urls_stay_on_this_site() {
        assert_eq!(safe_next(Some("/admin/teams?x=1")), "/admin/teams?x=1");
        assert_eq!(safe_next(Some("//evil.example")), "/teams");
        assert_eq!(safe_next(Some("https://evil.example")), "/teams");
        assert_eq!(safe_next(Some("/\\evil.example")), "/teams");
        assert_eq!(safe_next(None), "/teams");
    }

    #[test]
    fn origin_checks() {
        let mut h = HeaderMap::new();
        assert!(same_origin(&h, "http://127.0.0.1:3000").is_err());
        h.insert(header::ORIGIN, "http://127.0.0.1:3000".parse().unwrap());
        assert!(same_origin(&h, "http://127.0.0.1:3000").is_ok());
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(same_origin(&h, "http://127.0.0.1:3000").is_err());
        let mut h = HeaderMap::new();
        h.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(same_origin(&h, "http://127.0.0.1:3000").is_err());
        h.insert("sec-fetch-site", "same-origin".parse().unwrap());
        assert!(same_origin(&h, "http://127.0.0.1:3000").is_ok());
    }
}
