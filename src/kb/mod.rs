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
