//! Evaluation over labelled data and production signals. So far: the labelled handbook
//! questions and retrieval recall, the semantic cache's labelled question pairs, the input
//! guard's red-team cases, and people's ratings of answers; suites, judges and human agreement
//! come with the evaluation issue.

pub mod feedback;
pub mod redteam;
pub mod retrieval;
pub mod semantic;

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
