//! `askacme ingest PATH…`: read Markdown, text and HTML files into the knowledge base.
//!
//! Incremental by content hash: an unchanged file costs one hash, a changed file replaces its
//! chunks in one transaction, and a file that disappeared from an ingested folder disappears
//! from the knowledge base. The first folder below the root names a document's collection
//! (`hr/leave.md` → `hr`); files directly in the root go to `general`. Files that cannot be read
//! (binary, not UTF-8, empty, unreadable) are reported and skipped; they never stop the run.
//!
//! Every chunk is embedded before its document is written, so a document is searchable
//! lexically and densely from the same transaction on. When the configured embedding model
//! changes, the stored chunks are re-embedded first: vectors of two models never mix.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::chunk::{ChunkOptions, ChunkedDocument, Format, chunk_document};
use super::embed::{INGEST_BATCH, TextEmbedder, passage};
use crate::gateway::GatewayError;
use crate::gateway::{RequestContext, new_request_id};
use crate::safety::injection::instructions_in_document;
use crate::store::{ChunkRecord, Database, DocumentRecord, StoreError};

/// `kb_meta` key naming the model the stored embeddings came from.
const EMBEDDING_MODEL_KEY: &str = "embedding_model";

/// The collection of files that sit directly in an ingested folder.
pub const DEFAULT_COLLECTION: &str = "general";

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{path}: {error}")]
    Root {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("embedding chunks: {0}")]
    Embed(#[from] GatewayError),
    #[error("ingest worker failed: {0}")]
    Worker(String),
}

/// What one ingest run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IngestReport {
    pub added: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: usize,
    pub deleted: Vec<String>,
    /// `(path, why)` for every file that was not ingested.
    pub skipped: Vec<(String, String)>,
    pub chunks_written: usize,
    /// Chunks already stored that were re-embedded because the embedding model changed.
    pub chunks_reembedded: usize,
}

/// Where a run stands, reported after every file.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub files_done: usize,
    pub files_total: usize,
}

struct Prepared {
    record: DocumentRecord,
    chunks: Vec<ChunkRecord>,
}

/// One root as scanned: the files read, those skipped, and whether deletions may be inferred.
struct Scan {
    root: String,
    files: Vec<Result<Prepared, (String, String)>>,
    /// Every supported path seen, ingested or not: a file that exists is never deleted.
    seen: BTreeSet<String>,
    whole_folder: bool,
}

pub async fn ingest(
    db: &Database,
    roots: &[PathBuf],
    options: ChunkOptions,
    embedder: &dyn TextEmbedder,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<IngestReport, IngestError> {
    let mut report = IngestReport {
        chunks_reembedded: reembed_if_model_changed(db, embedder).await?,
        ..IngestReport::default()
    };
    let mut scans = Vec::new();
    for root in roots {
        let root = root.clone();
        let scan = tokio::task::spawn_blocking(move || scan(&root, options))
            .await
            .map_err(|e| IngestError::Worker(e.to_string()))??;
        scans.push(scan);
    }
    let files_total = scans.iter().map(|s| s.files.len()).sum();
    let mut files_done = 0;
    for scan in scans {
        let known = db.document_hashes(&scan.root).await?;
        let mut pending = Vec::new();
        for file in scan.files {
            files_done += 1;
            match file {
                Err(skipped) => report.skipped.push(skipped),
                Ok(prepared) => {
                    let path = prepared.record.path.clone();
                    match known.get(&path) {
                        Some(hash) if *hash == prepared.record.content_sha256 => {
                            report.unchanged += 1;
                        }
                        Some(_) => {
                            report.updated.push(path);
                            pending.push(prepared);
                        }
                        None => {
                            report.added.push(path);
                            pending.push(prepared);
                        }
                    }
                }
            }
            let pending_chunks: usize = pending.iter().map(|p| p.chunks.len()).sum();
            if pending_chunks >= INGEST_BATCH {
                report.chunks_written += write(db, embedder, std::mem::take(&mut pending)).await?;
            }
            progress(Progress {
                files_done,
                files_total,
            });
        }
        report.chunks_written += write(db, embedder, pending).await?;
        if scan.whole_folder {
            let gone: Vec<String> = known
                .into_keys()
                .filter(|p| !scan.seen.contains(p))
                .collect();
            db.delete_documents(&scan.root, &gone).await?;
            report.deleted.extend(gone);
        }
    }
    Ok(report)
}

/// Embeds the chunks of `documents` in one batch and writes each document in its own
/// transaction. Returns the number of chunks written.
async fn write(
    db: &Database,
    embedder: &dyn TextEmbedder,
    mut documents: Vec<Prepared>,
) -> Result<usize, IngestError> {
    let passages: Vec<String> = documents
        .iter()
        .flat_map(|d| {
            d.chunks
                .iter()
                .map(|c| passage(&d.record.title, &c.heading_path, &c.text))
        })
        .collect();
    if passages.is_empty() {
        return Ok(0);
    }
    let ctx = RequestContext::new(new_request_id(), "kb.ingest");
    let mut vectors = embedder.embed(passages, &ctx).await?.into_iter();
    let mut written = 0;
    for document in &mut documents {
        for (chunk, vector) in document.chunks.iter_mut().zip(vectors.by_ref()) {
            chunk.embedding = vector;
        }
        db.replace_document(&document.record, &document.chunks)
            .await?;
        written += document.chunks.len();
    }
    Ok(written)
}

/// Re-embeds every stored chunk when the knowledge base was embedded with another model.
async fn reembed_if_model_changed(
    db: &Database,
    embedder: &dyn TextEmbedder,
) -> Result<usize, IngestError> {
    let model = embedder.model_id();
    if db.kb_meta(EMBEDDING_MODEL_KEY).await?.as_deref() == Some(model) {
        return Ok(0);
    }
    let stored = db.all_chunks().await?;
    for batch in stored.chunks(INGEST_BATCH) {
        let passages = batch
            .iter()
            .map(|c| passage(&c.title, &c.chunk.heading_path, &c.chunk.text))
            .collect();
        let ctx = RequestContext::new(new_request_id(), "kb.ingest");
        let vectors = embedder.embed(passages, &ctx).await?;
        let updates: Vec<(i64, Vec<f32>)> = batch.iter().map(|c| c.id).zip(vectors).collect();
        db.set_embeddings(&updates).await?;
    }
    db.set_kb_meta(EMBEDDING_MODEL_KEY, model).await?;
    Ok(stored.len())
}

fn scan(root: &Path, options: ChunkOptions) -> Result<Scan, IngestError> {
    let root_err = |error| IngestError::Root {
        path: root.to_owned(),
        error,
    };
    let canonical = root.canonicalize().map_err(root_err)?;
    let (base, paths, whole_folder) = if canonical.is_file() {
        let base = canonical
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
        (base, vec![canonical.clone()], false)
    } else {
        let mut paths = Vec::new();
        walk(&canonical, &mut paths).map_err(root_err)?;
        paths.sort();
        (canonical.clone(), paths, true)
    };
    let root = base.to_string_lossy().into_owned();
    let mut files = Vec::new();
    let mut seen = BTreeSet::new();
    for path in paths {
        let Some(format) = Format::of_path(&path) else {
            continue;
        };
        let relative = path
            .strip_prefix(&base)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        seen.insert(relative.clone());
        files
            .push(prepare(&path, &root, &relative, format, options).map_err(|why| (relative, why)));
    }
    Ok(Scan {
        root,
        files,
        seen,
        whole_folder,
    })
}

/// Every non-hidden file below `dir`, recursively.
pub(crate) fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn prepare(
    path: &Path,
    root: &str,
    relative: &str,
    format: Format,
    options: ChunkOptions,
) -> Result<Prepared, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("unreadable: {e}"))?;
    if bytes.contains(&0) {
        return Err("binary file (contains NUL bytes)".into());
    }
    let text = String::from_utf8(bytes).map_err(|_| "not valid UTF-8 text".to_owned())?;
    if text.trim().is_empty() {
        return Err("empty file".into());
    }
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(relative);
    let ChunkedDocument { title, chunks, .. } = chunk_document(&text, format, stem, options);
    // HTML loses its comments, attributes and styles on the way to text, and with them the
    // marks of hidden instructions; the hidden text itself stays. Such a page is flagged whole.
    let hidden = match format {
        Format::Html => instructions_in_document(&text),
        _ => None,
    };
    if chunks.is_empty() {
        return Err("no text to index".into());
    }
    let collection = match relative.split_once('/') {
        Some((folder, _)) => folder.to_owned(),
        None => DEFAULT_COLLECTION.to_owned(),
    };
    Ok(Prepared {
        record: DocumentRecord {
            root: root.to_owned(),
            path: relative.to_owned(),
            collection,
            title,
            content_sha256: format!("{:x}", Sha256::digest(text.as_bytes())),
            bytes: text.len() as u64,
        },
        chunks: chunks
            .into_iter()
            .enumerate()
            .map(|(i, c)| ChunkRecord {
                ordinal: i as u32,
                heading_path: c.heading_path.join(" > "),
                flagged: instructions_in_document(&c.text)
                    .or(hidden)
                    .map(|reason| reason.as_str().to_owned()),
                text: c.text,
                span: c.span,
                embedding: Vec::new(),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kb::embed::testing::HashEmbedder;
    use crate::kb::testing::KbFixture;

    async fn fixture(label: &str) -> KbFixture {
        KbFixture::new(label, &["hr"]).await
    }

    #[tokio::test]
    async fn re_ingest_touches_only_what_changed_and_removes_what_vanished() {
        let f = fixture("incremental").await;
        f.write("hr/leave.md", b"# Leave\n\n## Annual\n\n25 days a year.\n");
        f.write(
            "hr/sick.md",
            b"# Sick leave\n\nTell your manager before 10:00.\n",
        );
        f.write("welcome.txt", b"WELCOME\n\nHello and welcome to Acme.\n");
        let first = f.ingest().await;
        assert_eq!(first.added.len(), 3, "{first:?}");
        let chunks = f.db.all_chunks().await.unwrap();
        let leave = chunks
            .iter()
            .find(|c| c.document_path == "hr/leave.md")
            .unwrap();
        assert_eq!(
            (leave.collection.as_str(), leave.title.as_str()),
            ("hr", "Leave")
        );
        assert_eq!(leave.chunk.heading_path, "Leave > Annual");
        assert_eq!(
            chunks
                .iter()
                .find(|c| c.document_path == "welcome.txt")
                .unwrap()
                .collection,
            DEFAULT_COLLECTION
        );

        let again = f.ingest().await;
        assert_eq!(
            (again.unchanged, again.chunks_written),
            (3, 0),
            "unchanged files cost nothing: {again:?}"
        );

        f.write("hr/leave.md", b"# Leave\n\n## Annual\n\n28 days a year.\n");
        std::fs::remove_file(f.dir.join("docs/hr/sick.md")).unwrap();
        let third = f.ingest().await;
        assert_eq!(third.updated, vec!["hr/leave.md".to_string()]);
        assert_eq!(third.deleted, vec!["hr/sick.md".to_string()]);
        assert_eq!(third.unchanged, 1);
        let texts: Vec<String> =
            f.db.all_chunks()
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.chunk.text)
                .collect();
        assert!(texts.iter().any(|t| t.contains("28 days")));
        assert!(
            !texts.iter().any(|t| t.contains("25 days")),
            "old chunks are replaced: {texts:?}"
        );
        assert!(
            !texts.iter().any(|t| t.contains("10:00")),
            "deleted files vanish: {texts:?}"
        );
    }

    /// The hash embedder under another model name, with its vectors negated so that a
    /// re-embedding is visible in the stored vectors.
    struct OtherModel;

    #[async_trait::async_trait]
    impl TextEmbedder for OtherModel {
        fn model_id(&self) -> &str {
            "other-model"
        }

        async fn embed(
            &self,
            texts: Vec<String>,
            ctx: &RequestContext,
        ) -> Result<Vec<Vec<f32>>, GatewayError> {
            let vectors = HashEmbedder.embed(texts, ctx).await?;
            Ok(vectors
                .into_iter()
                .map(|v| v.into_iter().map(|x| -x).collect())
                .collect())
        }
    }

    #[tokio::test]
    async fn chunks_are_embedded_and_re_embedded_when_the_model_changes() {
        let f = fixture("reembed").await;
        f.write("hr/leave.md", b"# Leave\n\n## Annual\n\n25 days a year.\n");
        let first = f.ingest().await;
        assert_eq!(first.chunks_reembedded, 0);
        let before = f.db.all_chunks().await.unwrap();
        assert!(before.iter().all(|c| !c.chunk.embedding.is_empty()));
        let generation = f.db.kb_generation().await.unwrap();

        let report = ingest(
            &f.db,
            &[f.docs()],
            ChunkOptions::default(),
            &OtherModel,
            &|_| {},
        )
        .await
        .unwrap();
        assert_eq!(report.chunks_reembedded, before.len());
        assert_eq!(report.unchanged, 1, "the file itself did not change");
        let after = f.db.all_chunks().await.unwrap();
        for (old, new) in before.iter().zip(&after) {
            assert!(
                old.chunk
                    .embedding
                    .iter()
                    .zip(&new.chunk.embedding)
                    .all(|(a, b)| *a == -*b),
                "stored vectors come from the new model"
            );
        }
        assert!(
            f.db.kb_generation().await.unwrap() > generation,
            "new vectors make built indexes stale"
        );
    }

    #[tokio::test]
    async fn bad_files_are_reported_and_skipped_without_stopping_the_run() {
        let f = fixture("bad").await;
        f.write("hr/good.md", b"# Good\n\nReal content.\n");
        f.write("hr/binary.md", b"\x89PNG\r\n\x1a\n\0\0\0IHDR");
        f.write("hr/latin1.txt", b"caf\xe9 au lait\n");
        f.write("hr/empty.md", b"  \n\n");
        f.write("hr/image.png", b"\x89PNG");
        let report = f.ingest().await;
        assert_eq!(report.added, vec!["hr/good.md".to_string()]);
        let reasons: std::collections::HashMap<_, _> = report.skipped.into_iter().collect();
        assert!(reasons["hr/binary.md"].contains("binary"), "{reasons:?}");
        assert!(reasons["hr/latin1.txt"].contains("UTF-8"), "{reasons:?}");
        assert!(reasons["hr/empty.md"].contains("empty"), "{reasons:?}");
        assert!(
            !reasons.contains_key("hr/image.png"),
            "unsupported extensions are ignored, not errors"
        );
    }

    #[tokio::test]
    async fn a_skipped_file_that_was_ingested_before_is_kept_not_deleted() {
        let f = fixture("keep").await;
        f.write("hr/policy.md", b"# Policy\n\nVersion one.\n");
        f.ingest().await;
        f.write("hr/policy.md", b"\0corrupted");
        let report = f.ingest().await;
        assert!(report.deleted.is_empty(), "{report:?}");
        assert_eq!(report.skipped.len(), 1);
        assert!(
            f.db.all_chunks()
                .await
                .unwrap()
                .iter()
                .any(|c| c.chunk.text.contains("Version one"))
        );
    }

    #[tokio::test]
    async fn the_sample_handbook_ingests_into_three_collections() {
        let f = fixture("handbook").await;
        let handbook = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/handbook");
        let report = ingest(
            &f.db,
            &[handbook],
            ChunkOptions::default(),
            &HashEmbedder,
            &|_| {},
        )
        .await
        .unwrap();
        assert!(report.skipped.is_empty(), "{:?}", report.skipped);
        assert!(report.added.len() >= 15);
        let collections: BTreeSet<String> =
            f.db.all_chunks()
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.collection)
                .collect();
        for expected in ["hr", "it", "legal"] {
            assert!(collections.contains(expected), "{collections:?}");
        }
    }
}
