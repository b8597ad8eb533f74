//! Corral's Leptos application: the portal and admin console pages, the serde
//! model shared with the REST API, the server functions, and (behind `ssr`)
//! the domain that all three faces call.
#![recursion_limit = "256"]

pub mod api;
pub mod components;
pub mod model;
pub mod pages;
mod shell;

#[cfg(feature = "ssr")]
pub mod domain;

pub use shell::{App, shell};

/// The database migrations, embedded at compile time and applied at start-up.
#[cfg(feature = "ssr")]
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Entry point of the browser build: attaches to the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
