//! The one integration-test binary: the app served over real HTTP against fake upstreams that
//! speak the OpenAI and Anthropic wire formats, and against the real local models.

mod access;
mod assistant;
mod cache;
mod harness;
mod local_models;
mod malformed;
mod reliability;
mod remote_providers;
