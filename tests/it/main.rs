//! The one integration-test binary: the app served over real HTTP against fake upstreams that
//! speak the OpenAI and Anthropic wire formats, and against the real local models.

// The harness's helpers are test code too: a broken fixture should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod access;
mod assistant;
mod cache;
mod chat;
mod eval;
mod harness;
mod local_models;
mod malformed;
mod reliability;
mod remote_providers;
mod safety;
mod telemetry;
