//! Evaluation over labelled data. So far: the labelled handbook questions and retrieval recall,
//! and the semantic cache's labelled question pairs;
//! suites, judges and human agreement come with the evaluation issue.

pub mod retrieval;
pub mod semantic;
