//! Evaluation, in layers: suites of cases with assertions (`suite`, `assertion`, `runner`,
//! `report`, answered by a `backend`) that gate prompt changes (`gate`) and run on a schedule
//! as drift canaries (`schedule`); an LLM judge with its biases controlled (`judge`, and
//! `judging` for whole suites and calibration); human rating samples (`human`) with agreement
//! statistics (`agreement`); production signals (`feedback`, `stats`) and the fine-tuning
//! export (`export`); and the labelled sets of the retrieval, semantic-cache and red-team
//! measurements.

pub mod agreement;
pub mod assertion;
pub mod backend;
pub mod export;
pub mod feedback;
pub mod gate;
pub mod human;
pub mod judge;
pub mod judging;
pub mod redteam;
pub mod report;
pub mod retrieval;
pub mod runner;
pub mod schedule;
pub mod semantic;
pub mod stats;
pub mod suite;

use std::time::Duration;

/// `(p50, p95, max)` of measured times.
pub(crate) fn latency(mut times: Vec<Duration>) -> (Duration, Duration, Duration) {
    times.sort_unstable();
    let at = |q: f64| {
        times
            .get(((times.len() as f64 * q) as usize).min(times.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    (at(0.5), at(0.95), times.last().copied().unwrap_or_default())
}

/// `12.5% (3)`: a share and its count.
pub(crate) fn percent(count: usize, of: usize) -> String {
    format!("{:.1}% ({count})", 100.0 * count as f64 / of.max(1) as f64)
}
