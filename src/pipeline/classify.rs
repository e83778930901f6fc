//! Classify: what kind of question this is (routes pick a model by it) and which department's
//! collection holds the answer (retrieval searches it first).
//!
//! Keyword rules decide when they match: they are predictable and an operator can fix a
//! misroute with one line of config. Otherwise the question goes to the nearest centroid of the
//! labelled examples' embeddings, if it is at least `min_similarity` close; otherwise the
//! category is `policy_lookup` (what most handbook questions are) and the department unknown.

use serde::Serialize;

use crate::config::{Category, ClassifierConfig, ClassifierRule};
use crate::gateway::GatewayError;
use crate::gateway::RequestContext;
use crate::kb::embed::TextEmbedder;
use crate::models::embedder::centroids;
use crate::models::embedder::cosine;

/// How a label was decided, reported with the answer so misroutes can be traced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Rule,
    Centroid,
    Default,
}

#[derive(Debug, Clone, Serialize)]
pub struct Classification {
    pub category: Category,
    pub category_by: Decision,
    pub department: Option<String>,
    pub department_by: Decision,
}

impl Default for Classification {
    /// What an unclassified question gets: the default category, no department.
    fn default() -> Self {
        Self {
            category: Category::PolicyLookup,
            category_by: Decision::Default,
            department: None,
            department_by: Decision::Default,
        }
    }
}

pub struct Classifier {
    rules: Vec<ClassifierRule>,
    categories: Vec<(Category, Vec<f32>)>,
    departments: Vec<(String, Vec<f32>)>,
    min_similarity: f32,
}

impl Classifier {
    /// Embeds the labelled examples once and keeps one centroid per label.
    pub async fn new(
        config: &ClassifierConfig,
        embedder: &dyn TextEmbedder,
        ctx: &RequestContext,
    ) -> Result<Self, GatewayError> {
        let rules = config
            .rules
            .iter()
            .map(|r| ClassifierRule {
                keywords: r.keywords.iter().map(|k| k.to_lowercase()).collect(),
                ..r.clone()
            })
            .collect();
        let texts: Vec<String> = config.examples.iter().map(|e| e.text.clone()).collect();
        let vectors = if texts.is_empty() {
            Vec::new()
        } else {
            embedder.embed(texts, ctx).await?
        };
        let labelled = config.examples.iter().zip(&vectors);
        Ok(Self {
            rules,
            categories: centroids(labelled.clone().map(|(e, v)| (e.category, v))),
            departments: centroids(labelled.map(|(e, v)| (e.department.clone(), v))),
            min_similarity: config.min_similarity,
        })
    }

    pub fn classify(&self, question: &str, question_vector: &[f32]) -> Classification {
        // Padding with spaces lets keywords like " vs " match at either end of the question.
        let text = format!(" {} ", question.to_lowercase());
        let matching = |rule: &&ClassifierRule| rule.keywords.iter().any(|k| text.contains(k));
        let rule_category = self.rules.iter().filter(matching).find_map(|r| r.category);
        let rule_department = self
            .rules
            .iter()
            .filter(matching)
            .find_map(|r| r.department.clone());
        let (category, category_by) = match rule_category {
            Some(c) => (c, Decision::Rule),
            None => match nearest(&self.categories, question_vector, self.min_similarity) {
                Some(c) => (*c, Decision::Centroid),
                None => (Category::PolicyLookup, Decision::Default),
            },
        };
        let (department, department_by) = match rule_department {
            Some(d) => (Some(d), Decision::Rule),
            None => match nearest(&self.departments, question_vector, self.min_similarity) {
                Some(d) => (Some(d.clone()), Decision::Centroid),
                None => (None, Decision::Default),
            },
        };
        Classification {
            category,
            category_by,
            department,
            department_by,
        }
    }
}

fn nearest<'a, L>(centroids: &'a [(L, Vec<f32>)], query: &[f32], min: f32) -> Option<&'a L> {
    centroids
        .iter()
        .map(|(label, c)| (label, cosine(c, query)))
        .filter(|(_, similarity)| *similarity >= min)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(label, _)| label)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ClassifierExample;
    use crate::kb::embed::testing::HashEmbedder;

    async fn classifier() -> Classifier {
        let example = |text: &str, category, department: &str| ClassifierExample {
            text: text.into(),
            category,
            department: department.into(),
        };
        let config = ClassifierConfig {
            min_similarity: 0.3,
            rules: vec![
                ClassifierRule {
                    keywords: vec![" VS ".into(), "compare".into()],
                    category: Some(Category::Comparison),
                    department: None,
                },
                ClassifierRule {
                    keywords: vec!["laptop".into()],
                    category: None,
                    department: Some("it".into()),
                },
            ],
            examples: vec![
                example("holiday calendar dates this year", Category::Schedule, "hr"),
                example(
                    "holiday calendar office closed dates",
                    Category::Schedule,
                    "hr",
                ),
                example("install software printer drivers", Category::Faq, "it"),
            ],
        };
        let ctx = RequestContext::new("test", "test");
        Classifier::new(&config, &HashEmbedder, &ctx).await.unwrap()
    }

    async fn classify(c: &Classifier, question: &str) -> Classification {
        let ctx = RequestContext::new("test", "test");
        let vector = HashEmbedder
            .embed(vec![question.into()], &ctx)
            .await
            .unwrap()
            .remove(0);
        c.classify(question, &vector)
    }

    #[tokio::test]
    async fn rules_win_then_centroids_then_the_default() {
        let c = classifier().await;
        let by_rule = classify(&c, "Laptop vs desktop").await;
        assert_eq!(by_rule.category, Category::Comparison);
        assert_eq!(by_rule.category_by, Decision::Rule);
        assert_eq!(
            (by_rule.department.as_deref(), by_rule.department_by),
            (Some("it"), Decision::Rule)
        );

        let by_centroid = classify(
            &c,
            "Which dates is the office closed on the holiday calendar?",
        )
        .await;
        assert_eq!(
            (by_centroid.category, by_centroid.category_by),
            (Category::Schedule, Decision::Centroid)
        );
        assert_eq!(by_centroid.department.as_deref(), Some("hr"));

        let unknown = classify(&c, "Quantum chromodynamics").await;
        assert_eq!(
            (unknown.category, unknown.category_by, unknown.department),
            (Category::PolicyLookup, Decision::Default, None)
        );
    }
}
