//! Local inference: the pinned model catalog and its fetcher, llama.cpp generation and candle
//! embeddings. Knows nothing about HTTP or policy.

pub mod catalog;
pub mod embedder;
pub mod fetch;
pub mod generator;
mod lookup;
mod pool;
mod stop;

use std::path::{Path, PathBuf};

use catalog::{ModelKind, find};

/// Where a deployment's `model` value points: a catalog name resolved under the models
/// directory, or a path the user gave.
pub fn resolve_model_path(
    model: &str,
    models_dir: &Path,
    kind: ModelKind,
) -> Result<PathBuf, String> {
    if let Some(entry) = find(model) {
        if entry.kind != kind {
            return Err(format!(
                "`{model}` is a {:?} model and cannot be used for {:?}",
                entry.kind, kind
            ));
        }
        let path = entry.load_path(models_dir);
        let complete = entry
            .files
            .iter()
            .all(|f| entry.dir(models_dir).join(f.name).is_file());
        if !complete {
            return Err(format!(
                "model `{model}` is not downloaded yet: run `askacme models fetch {model}` (looked in {})",
                entry.dir(models_dir).display()
            ));
        }
        return Ok(path);
    }
    let path = PathBuf::from(model);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "`{model}` is neither a catalog model (see `askacme models list`) nor an existing file"
        ))
    }
}
