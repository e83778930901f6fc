//! Prices are written in the config as USD per million tokens (`2.5`) and held as integer
//! micro-dollars per million tokens, so every cost computed from them is exact integer arithmetic.

use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsdPerMtok(u64);

impl UsdPerMtok {
    pub const fn from_micro_usd(micro_usd_per_mtok: u64) -> Self {
        Self(micro_usd_per_mtok)
    }

    /// Micro-dollars per million tokens.
    pub const fn micro_usd(self) -> u64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for UsdPerMtok {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let usd = f64::deserialize(deserializer)?;
        // Prices finer than a micro-dollar per million tokens do not exist; the bound keeps the
        // integer conversion exact and catches typos such as a price per token pasted as per Mtok.
        if !usd.is_finite() || !(0.0..=1_000_000.0).contains(&usd) {
            return Err(serde::de::Error::custom(format!(
                "price must be a number of USD per million tokens between 0 and 1000000, got {usd}"
            )));
        }
        Ok(Self((usd * 1e6).round() as u64))
    }
}
