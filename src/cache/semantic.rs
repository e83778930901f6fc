//! The semantic cache: a question close enough to one already answered (cosine similarity of
//! their MiniLM embeddings at least `cache.semantic_threshold`) in the same scope gets that
//! answer, unless the guard finds a meaningful difference between the two questions. Every
//! near match, served or refused, is recorded for review.
//!
//! Questions and embeddings live in SQLite; each scope's are loaded into memory on first use
//! and searched by brute force (a few thousand questions per scope take well under a
//! millisecond).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::guard::{Difference, Guard, Lexicon};
use crate::config::CacheConfig;
use crate::models::embedder::cosine;
use crate::store::{Database, SemanticEntry, SemanticHit, now_ms};

/// The outcome of a lookup.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// No cached question in the scope reaches the threshold.
    None,
    /// Close enough, and the guard found no difference: serve the answer under `answer_key`.
    Served {
        answer_key: String,
        matched_question: String,
        similarity: f32,
    },
    /// Close enough, but the guard found a difference.
    Refused {
        matched_question: String,
        similarity: f32,
        difference: Difference,
    },
}

/// A second opinion on a match the guard could not settle by words alone (a substituted word,
/// another question word; see `Difference::needs_judgement`): do the two questions ask for the
/// same information? `None` when it cannot tell, which counts as no. Handed in by the caller
/// for each lookup (the cache is below the gateway and cannot call a model itself).
#[async_trait::async_trait]
pub trait Verifier: Send + Sync {
    async fn same_question(&self, a: &str, b: &str) -> Option<bool>;
}

/// What `judge` decided about two questions.
#[derive(Debug, Clone)]
pub struct Judgement {
    /// Why they are different questions; `None`: the same, serve it.
    pub difference: Option<Difference>,
    /// How long the guard took.
    pub guard_time: Duration,
    /// How long the verifier took, when it was asked.
    pub verify_time: Option<Duration>,
}

/// The one decision on a candidate, for the cache and for `askacme eval pairs` alike: the
/// guard, then the verifier (when there is one) on what words alone cannot settle.
pub async fn judge(
    guard: &Guard,
    verifier: Option<&dyn Verifier>,
    question: &str,
    candidate: &str,
) -> Judgement {
    let started = Instant::now();
    let mut difference = guard.difference(question, candidate);
    let guard_time = started.elapsed();
    let mut verify_time = None;
    if let (Some(d), Some(verifier)) = (&difference, verifier)
        && d.needs_judgement()
    {
        let started = Instant::now();
        if verifier.same_question(question, candidate).await == Some(true) {
            tracing::debug!(question, candidate, guard = %d, "verifier: the same question");
            difference = None;
        }
        verify_time = Some(started.elapsed());
    }
    Judgement {
        difference,
        guard_time,
        verify_time,
    }
}

/// One question looked up.
#[derive(Debug, Clone, Copy)]
pub struct Probe<'a> {
    /// Hash of what an answer depends on besides the question.
    pub scope: &'a str,
    pub question: &'a str,
    pub vector: &'a [f32],
    pub request_id: &'a str,
    /// The conversation, so that a rephrase after a served match can flag it.
    pub session_id: Option<&'a str>,
}

/// Scopes kept in memory at most (collections × live prompt versions, with room to spare).
const MAX_SCOPES: usize = 64;

pub struct SemanticCache {
    db: Database,
    threshold: f32,
    guard: Arc<Guard>,
    scopes: Mutex<HashMap<String, Vec<SemanticEntry>>>,
}

impl SemanticCache {
    /// The semantic cache `config` asks for, or `None`: when it is off, or when the guard's
    /// lexicon cannot be read. Without WordNet the guard cannot tell a verb from a noun, so it
    /// cannot check roles or voice; uncertain means miss, so no semantic match is served at
    /// all (exact caching is unaffected).
    pub async fn from_config(db: &Database, config: &CacheConfig) -> Option<Self> {
        if !config.enabled || !config.semantic {
            return None;
        }
        let dir = config.semantic_lexicon.clone();
        let lexicon = match tokio::task::spawn_blocking(move || Lexicon::shared(&dir)).await {
            Ok(lexicon) => lexicon,
            Err(e) => {
                tracing::warn!(error = %e, "cannot load the lexicon: the semantic cache is off");
                return None;
            }
        };
        if lexicon.is_empty() {
            tracing::warn!(
                lexicon = %config.semantic_lexicon.display(),
                "no WordNet lexicon (install wordnet-base): the semantic cache is off"
            );
            return None;
        }
        Some(Self::new(
            db.clone(),
            config.semantic_threshold,
            Arc::new(Guard::new(lexicon)),
        ))
    }

    pub fn new(db: Database, threshold: f32, guard: Arc<Guard>) -> Self {
        Self {
            db,
            threshold,
            guard,
            scopes: Mutex::new(HashMap::new()),
        }
    }

    /// Loads a scope's questions from the database the first time it is used.
    async fn load(&self, scope: &str) {
        if self.scopes.lock().is_ok_and(|s| s.contains_key(scope)) {
            return;
        }
        match self.db.semantic_entries(scope).await {
            Ok(entries) => {
                if let Ok(mut scopes) = self.scopes.lock() {
                    // Every ingest and prompt version starts new scopes; the old ones are
                    // never asked again, so a bound is enough to keep memory flat.
                    if scopes.len() >= MAX_SCOPES {
                        scopes.clear();
                    }
                    scopes.entry(scope.to_owned()).or_insert(entries);
                }
            }
            Err(e) => tracing::warn!(error = %e, "semantic cache read failed"),
        }
    }

    /// The cached question nearest to `vector` in `scope`, with its similarity.
    fn nearest(&self, scope: &str, vector: &[f32]) -> Option<(SemanticEntry, f32)> {
        let scopes = self.scopes.lock().ok()?;
        scopes
            .get(scope)?
            .iter()
            .map(|e| (e, cosine(&e.embedding, vector)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(e, s)| (e.clone(), s))
    }

    /// The best match for the probe's question in its scope, judged by the threshold and the
    /// guard, and recorded when it reached the threshold.
    pub async fn lookup(&self, probe: &Probe<'_>, verifier: Option<&dyn Verifier>) -> Lookup {
        let Probe {
            scope,
            question,
            vector,
            ..
        } = *probe;
        self.load(scope).await;
        let best = self.nearest(scope, vector);
        let Some((entry, similarity)) = best.filter(|(_, s)| *s >= self.threshold) else {
            return Lookup::None;
        };
        let difference = judge(&self.guard, verifier, question, &entry.question)
            .await
            .difference;
        // A match forgotten (`askacme cache forget`) by another process is gone from the
        // database before it is gone from this one's memory.
        if difference.is_none() && !self.still_cached(scope, &entry.question).await {
            return Lookup::None;
        }
        let lookup = match difference {
            None => Lookup::Served {
                answer_key: entry.answer_key.clone(),
                matched_question: entry.question.clone(),
                similarity,
            },
            Some(difference) => Lookup::Refused {
                matched_question: entry.question.clone(),
                similarity,
                difference,
            },
        };
        let decision = match &lookup {
            Lookup::Refused { difference, .. } => difference.to_string(),
            _ => "served".to_owned(),
        };
        tracing::info!(
            question,
            matched = entry.question,
            similarity,
            decision = decision.as_str(),
            "semantic cache"
        );
        let hit = SemanticHit {
            id: 0,
            request_id: probe.request_id.to_owned(),
            created_at_ms: now_ms(),
            scope: scope.to_owned(),
            session_id: probe.session_id.map(str::to_owned),
            question: question.to_owned(),
            matched_question: entry.question.clone(),
            similarity,
            decision,
            flag_reason: None,
        };
        if let Err(e) = self.db.record_semantic_hit(&hit).await {
            tracing::warn!(error = %e, "cannot record a semantic cache match");
        }
        lookup
    }

    /// Whether `question` is still an entry of `scope` in the database; dropped from memory
    /// when it is not.
    async fn still_cached(&self, scope: &str, question: &str) -> bool {
        match self.db.semantic_entry_exists(scope, question).await {
            Ok(true) => true,
            Ok(false) => {
                if let Ok(mut scopes) = self.scopes.lock()
                    && let Some(entries) = scopes.get_mut(scope)
                {
                    entries.retain(|e| e.question != question);
                }
                false
            }
            Err(e) => {
                // Uncertain means miss.
                tracing::warn!(error = %e, "semantic cache read failed");
                false
            }
        }
    }

    /// Remembers an answered question, unless it was forgotten in this scope.
    pub async fn add(&self, scope: &str, entry: SemanticEntry) {
        match self.db.add_semantic_entry(scope, &entry, now_ms()).await {
            Ok(true) => {}
            // Forgotten (`askacme cache forget`): memory must not serve it either.
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(error = %e, "semantic cache write failed");
                return;
            }
        }
        if let Ok(mut scopes) = self.scopes.lock()
            && let Some(entries) = scopes.get_mut(scope)
        {
            entries.retain(|e| e.question != entry.question);
            entries.push(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_its_lexicon_the_semantic_cache_is_off() {
        let dir = std::env::temp_dir().join(format!("askacme-semantic-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = Database::open(&format!("sqlite://{}", dir.join("db.sqlite").display()))
            .await
            .unwrap();
        let mut config = crate::config::Config::load(None).unwrap().cache;
        assert!(SemanticCache::from_config(&db, &config).await.is_some());
        config.semantic_lexicon = dir.join("no-wordnet-here");
        assert!(SemanticCache::from_config(&db, &config).await.is_none());
        config.semantic_lexicon = crate::config::DEFAULT_LEXICON.into();
        config.semantic = false;
        assert!(SemanticCache::from_config(&db, &config).await.is_none());
    }
}
