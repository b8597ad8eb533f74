//! Server functions: thin adapters that authorize, call the domain and map
//! errors into [`AppError`](crate::model::AppError). Their URLs live under
//! `/rpc/` with fixed names so that middleware and logs can refer to them.

mod admin;
mod cluster;
mod identity;
mod keys;
mod modelfiles;
mod status;
mod usage;

pub use admin::*;
pub use cluster::*;
pub use identity::*;
pub use keys::*;
pub use modelfiles::*;
pub use status::*;
pub use usage::*;

/// The application state that the server provided to this request.
#[cfg(feature = "ssr")]
pub(crate) fn app_state() -> Result<crate::domain::AppState, crate::model::AppError> {
    leptos::prelude::use_context::<crate::domain::AppState>().ok_or_else(|| {
        tracing::error!("server function called without AppState in context");
        crate::model::AppError::Internal {
            reference: "missing-state".into(),
        }
    })
}

/// The signed-in caller of this request, or `Unauthorized`.
#[cfg(feature = "ssr")]
pub(crate) fn actor() -> Result<crate::domain::Actor, crate::model::AppError> {
    use leptos::prelude::use_context;
    use_context::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<crate::domain::Actor>().cloned())
        .ok_or(crate::model::AppError::Unauthorized)
}
