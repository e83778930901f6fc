//! The semantic cache's labelled question pairs (`evals/semantic/{dev,test}.toml`): paraphrases
//! and retypes that should share an answer, and near-misses of every kind that must not. Scores
//! each pair the way the cache would (embedding similarity, then the guard) and reports how
//! many of each family would be served, and the threshold table.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{latency, percent};
use crate::cache::guard::{Difference, Guard};
use crate::cache::semantic::{Verifier, judge};
use crate::gateway::{GatewayError, RequestContext};
use crate::kb::embed::TextEmbedder;
use crate::models::embedder::cosine;

#[derive(Debug, Clone, Deserialize)]
pub struct PairSet {
    pub pairs: Vec<Pair>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pair {
    pub a: String,
    pub b: String,
    pub expect: Expect,
    pub family: Family,
    pub domain: String,
    /// Who wrote it, or the public data set (and row) it comes from.
    pub source: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// The cached answer should be served.
    Hit,
    /// Serving the cached answer would be wrong.
    Miss,
}

/// What kind of pair it is; the report breaks every rate down by family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Reworded, the same information asked.
    Paraphrase,
    /// Retyped: typos, punctuation, casing, filler words, word order.
    NearRepeat,
    /// A negation or an antonym.
    Negation,
    /// An entity swapped: a country, product, system, name.
    Entity,
    /// A number, amount, date or ID changed.
    Number,
    /// A qualifier added, removed or changed.
    Scope,
    /// Comparatives, bounds, order and direction.
    Comparative,
    /// Who or whose changed: "my" / "my manager's", who approves / who is approved.
    Possessor,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Paraphrase => "paraphrase",
            Family::NearRepeat => "near_repeat",
            Family::Negation => "negation",
            Family::Entity => "entity",
            Family::Number => "number",
            Family::Scope => "scope",
            Family::Comparative => "comparative",
            Family::Possessor => "possessor",
        }
    }
}

impl PairSet {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Every pair of the files, in order.
    pub fn load_all(paths: &[impl AsRef<Path>]) -> Result<Self, String> {
        let mut pairs = Vec::new();
        for path in paths {
            pairs.extend(Self::load(path.as_ref())?.pairs);
        }
        Ok(Self { pairs })
    }
}

/// A pair as the cache would judge it.
#[derive(Debug, Clone)]
pub struct Scored {
    pub pair: Pair,
    pub similarity: f32,
    /// Why the guard refuses it; `None` when it would serve it.
    pub difference: Option<Difference>,
    /// How long the guard took.
    pub guard_time: Duration,
    /// How long the verifier took, when it was asked.
    pub verify_time: Option<Duration>,
}

impl Scored {
    /// Whether the cache serves it at `threshold`, with or without the guard.
    pub fn served(&self, threshold: f32, guarded: bool) -> bool {
        self.similarity >= threshold && (!guarded || self.difference.is_none())
    }
}

/// Embeds both questions of every pair (in batches) and runs the guard on each, and the
/// verifier, when there is one, on those above `verify_from` similarity that the guard could not
/// settle by words alone (as the cache would).
pub async fn score(
    pairs: &[Pair],
    embedder: &dyn TextEmbedder,
    guard: &Guard,
    verifier: Option<(&dyn Verifier, f32)>,
    ctx: &RequestContext,
) -> Result<Vec<Scored>, GatewayError> {
    const BATCH: usize = 64;
    let mut scored = Vec::with_capacity(pairs.len());
    for (n, chunk) in pairs.chunks(BATCH / 2).enumerate() {
        let texts = chunk
            .iter()
            .flat_map(|p| [p.a.clone(), p.b.clone()])
            .collect();
        // Each batch is a logged request of its own.
        let batch = ctx.child(&format!("embed-{n}"), ctx.endpoint);
        let vectors = embedder.embed(texts, &batch).await?;
        for (pair, two) in chunk.iter().zip(vectors.chunks(2)) {
            let similarity = two
                .first()
                .zip(two.get(1))
                .map_or(0.0, |(a, b)| cosine(a, b));
            // As the cache would: the verifier is asked only about candidates it would see.
            let verifier = verifier
                .filter(|(_, from)| similarity >= *from)
                .map(|(v, _)| v);
            let judgement = judge(guard, verifier, &pair.a, &pair.b).await;
            scored.push(Scored {
                pair: pair.clone(),
                similarity,
                difference: judgement.difference,
                guard_time: judgement.guard_time,
                verify_time: judgement.verify_time,
            });
        }
    }
    Ok(scored)
}

/// The share of `expect` pairs served at `threshold`.
pub fn served_rate(scored: &[Scored], expect: Expect, threshold: f32, guarded: bool) -> f64 {
    let of_kind: Vec<&Scored> = scored.iter().filter(|s| s.pair.expect == expect).collect();
    let served = of_kind
        .iter()
        .filter(|s| s.served(threshold, guarded))
        .count();
    served as f64 / of_kind.len().max(1) as f64
}

/// Per family at `threshold`: pairs, served without the guard, served with it.
pub fn family_table(scored: &[Scored], threshold: f32) -> String {
    let mut families: BTreeMap<Family, (usize, usize, usize)> = BTreeMap::new();
    for s in scored {
        let row = families.entry(s.pair.family).or_default();
        row.0 += 1;
        row.1 += usize::from(s.served(threshold, false));
        row.2 += usize::from(s.served(threshold, true));
    }
    let mut table = String::from(
        "| family | should | pairs | served, no guard | served, with guard |\n|---|---|---|---|---|\n",
    );
    for (family, (pairs, unguarded, guarded)) in families {
        let should = if matches!(family, Family::Paraphrase | Family::NearRepeat) {
            "hit"
        } else {
            "miss"
        };
        let _ = writeln!(
            table,
            "| {} | {should} | {pairs} | {} | {} |",
            family.as_str(),
            percent(unguarded, pairs),
            percent(guarded, pairs)
        );
    }
    for (name, expect) in [
        ("all should-hit", Expect::Hit),
        ("all near-misses", Expect::Miss),
    ] {
        let pairs = scored.iter().filter(|s| s.pair.expect == expect).count();
        let served = |guarded| {
            scored
                .iter()
                .filter(|s| s.pair.expect == expect && s.served(threshold, guarded))
                .count()
        };
        let _ = writeln!(
            table,
            "| **{name}** | | {pairs} | {} | {} |",
            percent(served(false), pairs),
            percent(served(true), pairs)
        );
    }
    table
}

/// Should-hit and near-miss pairs served at each threshold from 0.75 to 0.95, with and without
/// the guard.
pub fn threshold_table(scored: &[Scored]) -> String {
    let mut table = String::from(
        "| threshold | should-hit served, no guard | should-hit served, with guard | near-misses served, no guard | near-misses served, with guard |\n|---|---|---|---|---|\n",
    );
    for threshold in [0.75, 0.78, 0.80, 0.82, 0.85, 0.88, 0.90, 0.92, 0.95] {
        let _ = writeln!(
            table,
            "| {threshold:.2} | {:.1}% | {:.1}% | {:.1}% | {:.1}% |",
            100.0 * served_rate(scored, Expect::Hit, threshold, false),
            100.0 * served_rate(scored, Expect::Hit, threshold, true),
            100.0 * served_rate(scored, Expect::Miss, threshold, false),
            100.0 * served_rate(scored, Expect::Miss, threshold, true),
        );
    }
    table
}

/// The guard's time per pair: (p50, p95, max).
pub fn guard_latency(scored: &[Scored]) -> (Duration, Duration, Duration) {
    latency(scored.iter().map(|s| s.guard_time).collect())
}

/// The verifier's time per call, over the pairs it was asked about: (p50, p95, max).
pub fn verify_latency(scored: &[Scored]) -> (Duration, Duration, Duration) {
    latency(scored.iter().filter_map(|s| s.verify_time).collect())
}
