//! AskAcme: an internal knowledge assistant and LLM gateway in one program.
//!
//! Dependencies point one way: `server` → `pipeline` → `gateway`/`cache`/`kb`/`prompts` →
//! `providers`/`models`/`store`. Nothing below `server` knows about HTTP frameworks; the
//! gateway never imports the pipeline; providers, models and store know no policy.

pub mod cache;
pub mod config;
pub mod eval;
pub mod gateway;
pub mod kb;
pub mod models;
pub mod pipeline;
pub mod prompts;
pub mod providers;
pub mod safety;
pub mod server;
pub mod store;
pub mod tasks;
pub mod telemetry;
