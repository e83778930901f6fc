//! Dense search. Exact (brute-force) cosine search is fast enough up to ~100k chunks (see
//! docs/benchmarks.md); the trait lets an approximate index replace it without touching callers.

use crate::models::embedder::cosine;

/// A set of unit-length vectors identified by position.
pub trait VectorIndex: Send + Sync {
    /// The best `k` positions by cosine similarity to `query` among those `allow` accepts,
    /// best first.
    fn search(&self, query: &[f32], k: usize, allow: &dyn Fn(usize) -> bool) -> Vec<(usize, f32)>;
}

/// Every vector in one contiguous row-major buffer: a scan is a stream of dot products.
pub struct BruteForce {
    dimensions: usize,
    positions: Vec<usize>,
    data: Vec<f32>,
}

impl BruteForce {
    /// Entries whose vector is empty or of another length than the first are left out: they
    /// stay findable lexically.
    pub fn build<'a>(entries: impl IntoIterator<Item = (usize, &'a [f32])>) -> Self {
        let mut index = Self {
            dimensions: 0,
            positions: Vec::new(),
            data: Vec::new(),
        };
        for (position, vector) in entries {
            if vector.is_empty() {
                continue;
            }
            if index.dimensions == 0 {
                index.dimensions = vector.len();
            }
            if vector.len() == index.dimensions {
                index.positions.push(position);
                index.data.extend_from_slice(vector);
            }
        }
        index
    }
}

impl VectorIndex for BruteForce {
    fn search(&self, query: &[f32], k: usize, allow: &dyn Fn(usize) -> bool) -> Vec<(usize, f32)> {
        if k == 0 || query.len() != self.dimensions {
            return Vec::new();
        }
        let mut scored: Vec<(usize, f32)> = self
            .positions
            .iter()
            .zip(self.data.chunks_exact(self.dimensions))
            .filter(|(position, _)| allow(**position))
            .map(|(&position, row)| (position, cosine(query, row)))
            .collect();
        let by_score = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if scored.len() > k {
            scored.select_nth_unstable_by(k - 1, by_score);
            scored.truncate(k);
        }
        scored.sort_unstable_by(by_score);
        scored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_nearest_allowed_vectors_in_order() {
        let vectors: Vec<Vec<f32>> = vec![
            vec![1.0, 0.0],
            vec![0.6, 0.8],
            vec![0.0, 1.0],
            vec![],
            vec![0.8, 0.6],
        ];
        let index = BruteForce::build(vectors.iter().enumerate().map(|(i, v)| (i, v.as_slice())));
        let hits = index.search(&[1.0, 0.0], 3, &|_| true);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![0, 4, 1]);
        assert!((hits[1].1 - 0.8).abs() < 1e-6);
        let odd_only = index.search(&[1.0, 0.0], 10, &|p| p % 2 == 1);
        assert_eq!(odd_only.iter().map(|h| h.0).collect::<Vec<_>>(), vec![1]);
        assert!(index.search(&[1.0, 0.0, 0.0], 3, &|_| true).is_empty());
    }
}
