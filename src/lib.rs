//! AskAcme: an internal knowledge assistant and LLM gateway in one program.
//!
//! Dependencies point one way: `server` → `gateway` → `providers`/`models`/`store`. Nothing
//! below `server` knows about HTTP frameworks; providers, models and store know no policy.

pub mod config;
pub mod error;
pub mod gateway;
pub mod kb;
pub mod models;
pub mod providers;
pub mod server;
pub mod store;
