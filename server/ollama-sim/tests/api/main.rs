//! Integration tests: the simulator served on a loopback port, driven over HTTP.

mod behaviour;
mod common;
mod docs;
