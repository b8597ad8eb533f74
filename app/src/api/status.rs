//! The status page's data.

use leptos::prelude::*;

use crate::model::{AppError, StatusReport};

/// Checks every dependency now and reports what was found.
#[server(prefix = "/rpc", endpoint = "check_status")]
pub async fn check_status() -> Result<StatusReport, AppError> {
    let state = super::app_state()?;
    Ok(crate::domain::health::report(
        &state.db,
        &state.probes,
        state.runtime.profile,
        state.runtime.version,
    )
    .await)
}

/// What every page header shows: how Corral is being run.
#[server(prefix = "/rpc", endpoint = "about")]
pub async fn get_about() -> Result<crate::model::About, AppError> {
    let state = super::app_state()?;
    Ok(crate::model::About {
        profile: state.runtime.profile,
        version: state.runtime.version.to_owned(),
    })
}
