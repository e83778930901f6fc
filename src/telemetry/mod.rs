//! Telemetry, below every other module: Prometheus metrics through the `metrics` facade
//! ([`metrics`]) and request traces exported over OTLP when configured ([`otlp`]). The series
//! and span attributes follow the OpenTelemetry GenAI semantic conventions where they exist
//! (docs/observability.md lists every one).

pub mod metrics;
pub mod otlp;
