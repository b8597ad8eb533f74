//! The business rules and their Postgres access. Server-only: the whole module
//! is compiled with the `ssr` feature and never reaches the browser.

pub mod audit;
pub mod authz;
pub mod error;
pub mod health;
pub mod identity;
pub mod teams;

pub use authz::{Action, Actor, Via};
pub use error::{Error, Result};

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sqlx::PgPool;

use crate::model::Profile;

/// Everything a request handler, server function or worker needs, built once
/// by the server at start-up and cloned cheaply into each request.
#[derive(Clone)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: PgPool,
    pub runtime: Arc<Runtime>,
}

/// Facts about this running process that pages show.
#[derive(Debug)]
pub struct Runtime {
    pub profile: Profile,
    pub version: &'static str,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

impl FromRef<AppState> for PgPool {
    fn from_ref(state: &AppState) -> Self {
        state.db.clone()
    }
}
