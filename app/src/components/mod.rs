//! Shared UI pieces: the page frame, badges, error panels.

pub mod admin_nav;
pub mod chart;
pub mod error;
pub mod form;
pub mod layout;
pub mod modelfile_editor;
pub mod policy;
pub mod progress;
pub mod role_badge;
pub mod state_badge;
pub mod team_header;
