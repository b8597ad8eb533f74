//! One module per page.

pub mod admin;
pub mod admin_usage;
pub mod cluster;
pub mod home;
pub mod keys;
pub mod modelfile;
pub mod modelfiles;
pub mod not_found;
pub mod operations;
pub mod signin;
pub mod status;
pub mod teams;
pub mod usage;
