//! What the gateway's tests share: a gateway in-process or as a process,
//! ollama-sim upstreams, keys issued through the domain, raw-socket wire
//! helpers and the request-smuggling harness.
#![allow(dead_code, reason = "shared by several test crates, each using a part")]

pub mod gateway;
pub mod smuggling;
pub mod wire;

/// The key pepper every test gateway uses.
pub const TEST_PEPPER: &str = "corral-test-pepper-0123456789abcdef";
