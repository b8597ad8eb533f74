//! Shared UI pieces: the page frame, badges, error panels.

pub mod error;
pub mod layout;
pub mod progress;
pub mod role_badge;
pub mod state_badge;
