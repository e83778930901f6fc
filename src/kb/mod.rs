//! The knowledge base: documents split into cited, retrievable chunks, searched lexically
//! (BM25 over tantivy) and densely (embeddings behind the [`vector::VectorIndex`] trait), the two
//! fused by reciprocal rank in [`search`], optionally re-ranked in [`rerank`].

pub mod chunk;
pub mod embed;
pub mod ingest;
pub mod lexical;
pub mod rerank;
pub mod search;
pub mod vector;
pub mod view;

#[cfg(test)]
pub(crate) mod testing {
    //! One knowledge-base fixture for the unit tests of ingest and search: a throwaway folder of
    //! documents under `docs/`, its own database, and an ingest with the hash embedder.

    use std::path::PathBuf;

    use super::chunk::ChunkOptions;
    use super::embed::testing::HashEmbedder;
    use super::ingest::{IngestReport, ingest};
    use crate::store::Database;

    pub struct KbFixture {
        pub dir: PathBuf,
        pub db: Database,
    }

    impl KbFixture {
        /// A fresh fixture with the collections' folders (`docs/hr`, …) created.
        pub async fn new(label: &str, collections: &[&str]) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "askacme-kb-{label}-{}",
                uuid::Uuid::now_v7().simple()
            ));
            for collection in collections {
                std::fs::create_dir_all(dir.join("docs").join(collection)).unwrap();
            }
            let db = Database::open(&format!("sqlite://{}", dir.join("kb.db").display()))
                .await
                .unwrap();
            Self { dir, db }
        }

        /// Writes a document at `path` below `docs/`.
        pub fn write(&self, path: &str, contents: &[u8]) {
            std::fs::write(self.docs().join(path), contents).unwrap();
        }

        pub fn docs(&self) -> PathBuf {
            self.dir.join("docs")
        }

        pub async fn ingest(&self) -> IngestReport {
            ingest(
                &self.db,
                &[self.docs()],
                ChunkOptions::default(),
                &HashEmbedder,
                &|_| {},
            )
            .await
            .unwrap()
        }
    }

    impl Drop for KbFixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
