//! Serde types shared by the UI, the server functions and the REST API. No I/O.

mod error;
mod status;

pub use error::AppError;
pub use status::{DependencyState, DependencyStatus, StatusReport};
mod profile;

pub use profile::{About, Profile};
