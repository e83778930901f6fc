//! A family-labelled set of regular expressions matched over the views of a text: what the
//! injection rules and the content rules both are.

use regex::RegexSet;

use super::normalize::{Encoding, Views};
use super::{Reason, SafetyError};

pub struct RuleSet {
    set: RegexSet,
    reasons: Vec<Reason>,
}

/// A matched family and the view it was found in.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub reason: Reason,
    /// `None` for the plain (folded) text.
    pub encoding: Option<Encoding>,
}

impl RuleSet {
    pub fn new(patterns: Vec<(Reason, String)>) -> Result<Self, SafetyError> {
        let (reasons, sources): (Vec<Reason>, Vec<String>) = patterns.into_iter().unzip();
        let set = RegexSet::new(&sources).map_err(|e| SafetyError::Pattern(e.to_string()))?;
        Ok(Self { set, reasons })
    }

    /// The first family found, in the plain text first, then in the decoded views (in the
    /// order of the patterns within a view).
    pub fn find(&self, views: &Views) -> Option<Finding> {
        views.all().find_map(|(encoding, text)| {
            self.set.matches(text).iter().next().map(|index| Finding {
                reason: self.reasons[index],
                encoding,
            })
        })
    }
}
