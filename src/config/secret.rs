//! Secrets from the configuration: provider API keys, the master key, a Redis URL that may hold
//! a password. `Secret` prints as `***` in `Debug` and `Display`, so no config dump, error or log
//! line shows one by accident; the value is read only where it is used, with `expose`.

use std::fmt;

use serde::Deserialize;

#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it (a header, a connection).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `env::NAME` reads the variable NAME; anything else is the literal secret.
    pub fn resolve(&self) -> Result<Secret, String> {
        match self.0.strip_prefix("env::") {
            Some(var) => std::env::var(var)
                .map(Secret)
                .map_err(|_| format!("environment variable {var} is not set")),
            None => Ok(self.clone()),
        }
    }

    /// The secret read as a URL with its password masked, for messages about it:
    /// `redis://:***@host:6379/0` (anything that is not a URL prints as `***`).
    pub fn redacted_url(&self) -> String {
        match reqwest::Url::parse(&self.0) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("***"));
                url.to_string()
            }
            Ok(url) => url.to_string(),
            Err(_) => "***".to_owned(),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints() {
        let secret = Secret::new("sk-live-1234567890");
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(secret.expose(), "sk-live-1234567890");
    }

    #[test]
    fn urls_lose_their_password_in_messages() {
        let url = Secret::new("redis://:hunter2@10.0.0.1:6379/0");
        let shown = url.redacted_url();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("10.0.0.1:6379"), "{shown}");
        assert_eq!(
            Secret::new("redis://127.0.0.1:6379").redacted_url(),
            "redis://127.0.0.1:6379"
        );
    }

    #[test]
    fn env_references_resolve_and_missing_variables_are_named() {
        let missing = Secret::new("env::ASKACME_TEST_SURELY_UNSET_VARIABLE");
        let err = missing.resolve().unwrap_err();
        assert!(err.contains("ASKACME_TEST_SURELY_UNSET_VARIABLE"), "{err}");
        assert_eq!(
            Secret::new("literal").resolve().unwrap().expose(),
            "literal"
        );
    }
}
