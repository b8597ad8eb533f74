//! Server functions: thin adapters that authorize, call the domain and map
//! errors into [`AppError`](crate::model::AppError). Their URLs live under
//! `/rpc/` with fixed names so that middleware and logs can refer to them.

mod status;

pub use status::*;

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
