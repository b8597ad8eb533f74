//! One module per page.

pub mod admin;
pub mod home;
pub mod keys;
pub mod not_found;
pub mod signin;
pub mod status;
pub mod teams;
