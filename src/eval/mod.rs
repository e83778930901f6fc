//! Evaluation over labelled data and production signals. So far: the labelled handbook
//! questions and retrieval recall, the semantic cache's labelled question pairs, and people's
//! ratings of answers; suites, judges and human agreement come with the evaluation issue.

pub mod feedback;
pub mod retrieval;
pub mod semantic;
