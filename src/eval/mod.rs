//! Evaluation over labelled data. So far: the labelled handbook questions and retrieval recall;
//! suites, judges and human agreement come with the evaluation issue.

pub mod retrieval;
