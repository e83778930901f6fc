//! What the bench binaries share: percentiles, the repository path, and an in-process app on a
//! throwaway data directory with the shared models.

#![allow(dead_code)] // each bench uses its own subset

use std::path::PathBuf;

use askacme::config::Config;
use askacme::kb::chunk::ChunkOptions;
use askacme::kb::embed::GatewayEmbedder;
use askacme::kb::ingest::ingest;
use askacme::server::AppState;

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `[assistant.routes]` lines sending every question category to `model`.
pub fn routes_to(model: &str) -> String {
    askacme::config::Category::ALL
        .iter()
        .map(|c| format!("{} = \"{model}\"\n", c.as_str()))
        .collect()
}

/// The value at quantile `p` of sorted samples (nearest rank).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A data directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The app with `extra` config over the defaults, a fresh database and the shared models.
pub async fn app(extra: &str) -> (AppState, TempDir) {
    let dir = std::env::temp_dir().join(format!("askacme-bench-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let models = Config::load(None).unwrap().models_dir();
    let config = Config::from_toml_str(&format!(
        "[storage]\ndata_dir = {:?}\nmodels_dir = {:?}\n{extra}",
        dir.display().to_string(),
        models.display().to_string()
    ))
    .unwrap();
    (AppState::from_config(&config).await.unwrap(), TempDir(dir))
}

/// Ingests `roots`; returns the chunks written.
pub async fn ingest_roots(state: &AppState, roots: &[PathBuf]) -> usize {
    let embedder = GatewayEmbedder::new(state.gateway.clone(), "embed");
    let db = state.gateway.request_log().database().clone();
    let report = ingest(&db, roots, ChunkOptions::default(), &embedder, &|_| {})
        .await
        .unwrap();
    report.chunks_written
}
