//! Sentence embeddings with candle's BERT: MiniLM-L6 with mean pooling over real tokens and L2
//! normalisation, so the dot product of two vectors is their cosine similarity.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// MiniLM was trained on sequences of at most 256 word pieces; longer inputs are truncated.
const MAX_TOKENS: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("cannot load embedding model from {path}: {message}")]
    Load { path: String, message: String },
    #[error("embedding failed: {0}")]
    Inference(String),
}

pub trait Embedder: Send + Sync {
    /// One unit-length vector per input, plus the number of tokens read.
    fn embed(&self, texts: &[String]) -> Result<(Vec<Vec<f32>>, u64), EmbedError>;
}

pub struct BertEmbedder {
    model: BertModel,
    tokenizer: Tokenizer,
}

impl BertEmbedder {
    /// `dir` holds `model.safetensors`, `tokenizer.json` and `config.json`.
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        let load_err = |message: String| EmbedError::Load {
            path: dir.display().to_string(),
            message,
        };
        let config_text = std::fs::read_to_string(dir.join("config.json"))
            .map_err(|e| load_err(format!("config.json: {e}")))?;
        let config: BertConfig = serde_json::from_str(&config_text)
            .map_err(|e| load_err(format!("config.json: {e}")))?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| load_err(format!("tokenizer.json: {e}")))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| load_err(format!("tokenizer truncation: {e}")))?;
        let weights = std::fs::read(dir.join("model.safetensors"))
            .map_err(|e| load_err(format!("model.safetensors: {e}")))?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
            .map_err(|e| load_err(e.to_string()))?;
        let model = BertModel::load(vb, &config).map_err(|e| load_err(e.to_string()))?;
        Ok(Self { model, tokenizer })
    }

    fn embed_batch(&self, texts: &[String]) -> candle_core::Result<(Vec<Vec<f32>>, u64)> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let tokens_read: u64 = encodings
            .iter()
            .map(|e| e.get_attention_mask().iter().sum::<u32>() as u64)
            .sum();
        let rows = encodings.len();
        let width = encodings.first().map_or(0, |e| e.len());
        let flat = |get: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> {
            encodings
                .iter()
                .flat_map(|e| get(e).iter().copied())
                .collect()
        };
        let device = Device::Cpu;
        let ids = Tensor::from_vec(flat(&|e| e.get_ids()), (rows, width), &device)?;
        let type_ids = Tensor::from_vec(flat(&|e| e.get_type_ids()), (rows, width), &device)?;
        let mask = Tensor::from_vec(flat(&|e| e.get_attention_mask()), (rows, width), &device)?;

        let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?; // (rows, width, dim)
        // Mean over real tokens only: padding would otherwise pull short texts towards each other.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        let normalized = mean.broadcast_div(&norms)?;
        Ok((normalized.to_vec2::<f32>()?, tokens_read))
    }
}

impl Embedder for BertEmbedder {
    fn embed(&self, texts: &[String]) -> Result<(Vec<Vec<f32>>, u64), EmbedError> {
        if texts.is_empty() {
            return Ok((Vec::new(), 0));
        }
        // A batch is padded to its longest text, so texts are batched in order of length (and
        // the vectors put back in input order); 32 per batch keeps peak memory small.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut vectors = vec![Vec::new(); texts.len()];
        let mut tokens = 0;
        for batch in order.chunks(32) {
            let batch_texts: Vec<String> = batch.iter().map(|&i| texts[i].clone()).collect();
            let (batch_vectors, batch_tokens) = self
                .embed_batch(&batch_texts)
                .map_err(|e| EmbedError::Inference(e.to_string()))?;
            for (&i, vector) in batch.iter().zip(batch_vectors) {
                vectors[i] = vector;
            }
            tokens += batch_tokens;
        }
        Ok((vectors, tokens))
    }
}

/// Cosine similarity of two unit-length vectors, which is their dot product. Summed in eight
/// independent lanes: a single running sum cannot be vectorised (float addition is not
/// reassociated), eight can, which makes brute-force search over 100k vectors ~8x faster.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 8;
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    let mut lanes = [0.0f32; LANES];
    for (x, y) in a_chunks.zip(b_chunks) {
        for i in 0..LANES {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Unit length (a zero vector stays zero). Remote models do not all return unit vectors; the
/// indexes and centroids assume them.
pub fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// The normalised mean vector of each label's examples, in order of first appearance: the
/// nearest-centroid classifiers (question category, request difficulty) are trained with it.
pub fn centroids<'a, L: PartialEq>(
    labelled: impl Iterator<Item = (L, &'a Vec<f32>)>,
) -> Vec<(L, Vec<f32>)> {
    let mut sums: Vec<(L, Vec<f32>)> = Vec::new();
    for (label, vector) in labelled {
        match sums.iter_mut().find(|(l, _)| *l == label) {
            Some((_, sum)) => sum.iter_mut().zip(vector).for_each(|(s, x)| *s += x),
            None => sums.push((label, vector.clone())),
        }
    }
    sums.into_iter()
        .map(|(label, sum)| (label, normalized(sum)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_is_the_dot_product_at_any_length() {
        let mut rng = fastrand::Rng::with_seed(5);
        for len in [0, 3, 8, 13, 384] {
            let a: Vec<f32> = (0..len).map(|_| rng.f32() - 0.5).collect();
            let b: Vec<f32> = (0..len).map(|_| rng.f32() - 0.5).collect();
            let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((cosine(&a, &b) - naive).abs() < 1e-5, "length {len}");
        }
        let unit = normalized(vec![3.0, 4.0]);
        assert!((cosine(&unit, &unit) - 1.0).abs() < 1e-6);
        assert_eq!(cosine(&[1.0, 0.0], &[0.0, 1.0]), 0.0);
    }
}
