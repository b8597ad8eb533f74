//! What the gateway's tests share: a gateway in-process or as a process,
//! ollama-sim upstreams, keys issued through the domain, raw-socket wire
//! helpers, the request-smuggling harness, the wire-defect tests' requests
//! and the two-team world of the HTTP tests.
#![allow(dead_code, reason = "shared by several test crates, each using a part")]

pub mod defects;
pub mod gateway;
pub mod smuggling;
pub mod wire;
pub mod world;

/// The key pepper every test gateway uses.
pub const TEST_PEPPER: &str = "corral-test-pepper-0123456789abcdef";
