//! Turns a requested model name into the ordered list of deployments to try: the alias's
//! deployments in a weighted random order, then its fallback chain, each deployment once.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::config::{AliasConfig, AliasRoute};

/// Why a deployment is in a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteReason {
    /// Named directly by the request.
    Direct,
    /// One of the alias's own deployments, picked by weight.
    Weighted,
    /// Reached through the alias's fallback chain.
    Fallback,
}

impl RouteReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteReason::Direct => "direct",
            RouteReason::Weighted => "weighted",
            RouteReason::Fallback => "fallback",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub deployment: String,
    pub reason: RouteReason,
}

pub struct Router {
    routes: BTreeMap<String, AliasRoute>,
    deployments: BTreeSet<String>,
}

impl Router {
    pub fn new(
        aliases: &BTreeMap<String, AliasConfig>,
        deployments: impl IntoIterator<Item = String>,
    ) -> Self {
        Self {
            routes: aliases
                .iter()
                .map(|(name, alias)| (name.clone(), alias.route()))
                .collect(),
            deployments: deployments.into_iter().collect(),
        }
    }

    pub fn is_alias(&self, name: &str) -> bool {
        self.routes.contains_key(name)
    }

    pub fn aliases(&self) -> impl Iterator<Item = &str> {
        self.routes.keys().map(String::as_str)
    }

    /// The deployments to try for `model`, best first; `None` for an unknown name.
    pub fn plan(&self, model: &str, rng: &mut fastrand::Rng) -> Option<Vec<Candidate>> {
        if !self.routes.contains_key(model) {
            return self.deployments.contains(model).then(|| {
                vec![Candidate {
                    deployment: model.to_owned(),
                    reason: RouteReason::Direct,
                }]
            });
        }
        let mut plan = Vec::new();
        self.expand(model, RouteReason::Weighted, rng, &mut plan);
        Some(plan)
    }

    /// Appends `name` (alias or deployment) to the plan. Config validation rules out cycles.
    fn expand(
        &self,
        name: &str,
        reason: RouteReason,
        rng: &mut fastrand::Rng,
        plan: &mut Vec<Candidate>,
    ) {
        let push = |deployment: &str, plan: &mut Vec<Candidate>| {
            if !plan.iter().any(|c| c.deployment == deployment) {
                plan.push(Candidate {
                    deployment: deployment.to_owned(),
                    reason,
                });
            }
        };
        let Some(route) = self.routes.get(name) else {
            push(name, plan);
            return;
        };
        for deployment in weighted_order(&route.primaries, rng) {
            push(deployment, plan);
        }
        for next in &route.fallback {
            self.expand(next, RouteReason::Fallback, rng, plan);
        }
    }
}

/// A weighted random permutation (Efraimidis–Spirakis: sort by u^(1/w)): the first element is
/// drawn in proportion to its weight, and so is each next one among those left. Zero weights go
/// last, in their configured order: standbys that serve only when the others fail.
fn weighted_order<'a>(targets: &'a [(String, u32)], rng: &mut fastrand::Rng) -> Vec<&'a str> {
    let mut keyed: Vec<(f64, usize)> = targets
        .iter()
        .enumerate()
        .map(|(i, (_, weight))| {
            let key = if *weight == 0 {
                -(i as f64) - 1.0
            } else {
                rng.f64().powf(1.0 / f64::from(*weight))
            };
            (key, i)
        })
        .collect();
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
    keyed
        .into_iter()
        .map(|(_, i)| targets[i].0.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WeightedAlias;

    fn router() -> Router {
        let mut aliases = BTreeMap::new();
        aliases.insert(
            "chat".to_owned(),
            AliasConfig::Weighted(WeightedAlias {
                deployments: vec!["a".into(), "b".into(), "c".into()],
                weights: vec![6, 3, 1],
                fallback: vec!["backup".into(), "b".into()],
            }),
        );
        aliases.insert(
            "backup".to_owned(),
            AliasConfig::Ordered(vec!["d".into(), "e".into()]),
        );
        Router::new(&aliases, ["a", "b", "c", "d", "e"].map(String::from))
    }

    #[test]
    fn weights_hold_over_many_picks() {
        let router = router();
        let mut rng = fastrand::Rng::with_seed(7);
        let mut first = BTreeMap::<String, u32>::new();
        let picks = 1000;
        for _ in 0..picks {
            let plan = router.plan("chat", &mut rng).unwrap();
            *first.entry(plan[0].deployment.clone()).or_default() += 1;
        }
        // Expected 600/300/100; a binomial standard deviation is at most ~16 picks, so ±50
        // (> 3 sigma) fails only if the weights are wrong.
        for (deployment, expected) in [("a", 600), ("b", 300), ("c", 100)] {
            let got = first[deployment];
            assert!(
                got.abs_diff(expected) <= 50,
                "{deployment}: {got} of {picks} picks, expected ~{expected}"
            );
        }
    }

    #[test]
    fn fallback_follows_the_primaries_in_order_without_repeats() {
        let router = router();
        let mut rng = fastrand::Rng::with_seed(1);
        let plan = router.plan("chat", &mut rng).unwrap();
        let names: Vec<&str> = plan.iter().map(|c| c.deployment.as_str()).collect();
        assert_eq!(names.len(), 5, "{names:?}");
        assert_eq!(&names[3..], ["d", "e"], "backup alias after the primaries");
        assert!(plan[..3].iter().all(|c| c.reason == RouteReason::Weighted));
        assert!(plan[3..].iter().all(|c| c.reason == RouteReason::Fallback));
    }

    #[test]
    fn ordered_alias_tries_its_list_in_order_and_deployments_route_directly() {
        let router = router();
        let mut rng = fastrand::Rng::with_seed(1);
        let plan = router.plan("backup", &mut rng).unwrap();
        assert_eq!(plan[0].deployment, "d");
        assert_eq!(plan[1].deployment, "e");
        assert_eq!(plan[1].reason, RouteReason::Fallback);
        let direct = router.plan("c", &mut rng).unwrap();
        assert_eq!(direct[0].reason, RouteReason::Direct);
        assert!(router.plan("nope", &mut rng).is_none());
    }

    #[test]
    fn zero_weight_deployments_are_standbys() {
        let targets = vec![
            ("x".to_owned(), 0),
            ("y".to_owned(), 1),
            ("z".to_owned(), 0),
        ];
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..20 {
            assert_eq!(weighted_order(&targets, &mut rng), ["y", "x", "z"]);
        }
    }
}
