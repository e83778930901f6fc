//! The one integration-test binary: the app served over real HTTP against fake upstreams that
//! speak the OpenAI and Anthropic wire formats, and against the real local models.

mod assistant;
mod harness;
mod local_models;
mod malformed;
mod remote_providers;
