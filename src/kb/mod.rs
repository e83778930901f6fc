//! The knowledge base: documents split into cited, retrievable chunks. So far the chunker and
//! incremental ingest; the lexical and vector indexes and hybrid retrieval follow (issue 3).

pub mod chunk;
pub mod ingest;
