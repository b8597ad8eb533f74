//! The development sign-in: pick one of the seeded people. Only under the
//! `local` profile (start-up refuses it in production), and clearly labelled.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::pages::failure_page;
use super::{safe_next, start_session};
use crate::REQUEST_ID;

#[derive(Deserialize)]
pub struct DevSignIn {
    username: String,
    next: Option<String>,
}

/// `POST /auth/dev`.
pub async fn sign_in(
    State(crate::ServerState {
        app: app_state,
        auth,
        ..
    }): State<crate::ServerState>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<DevSignIn>,
) -> Response {
    if !auth.dev_sign_in {
        return failure_page(
            StatusCode::NOT_FOUND,
            "The development sign-in is off",
            "It exists only under the local profile.",
        );
    }
    let Some(identity) = app::domain::identity::dev_identities()
        .into_iter()
        .find(|i| i.username == form.username)
    else {
        return failure_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "No such development user",
            "username: pick one of the people listed on the sign-in page.",
        );
    };
    let request_id = headers.get(REQUEST_ID).and_then(|v| v.to_str().ok());
    let result = async {
        let mut tx = app_state
            .db
            .begin()
            .await
            .map_err(app::domain::Error::from)?;
        let user = app::domain::identity::sign_in(&mut tx, &identity, request_id).await?;
        tx.commit().await.map_err(app::domain::Error::from)?;
        Ok::<_, app::domain::Error>(user)
    }
    .await;
    let user = match result {
        Ok(u) => u,
        Err(e) => {
            let e: app::model::AppError = e.into();
            return failure_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in failed",
                &e.to_string(),
            );
        }
    };
    if start_session(&session, user.id, None).await.is_err() {
        return failure_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in failed",
            "PostgreSQL is unavailable; try again shortly.",
        );
    }
    tracing::info!(user = %user.username, "signed in with the development sign-in");
    Redirect::to(&safe_next(form.next.as_deref())).into_response()
}
