//! Prices are written in the config as USD per million tokens (`2.5`) and held as integer
//! micro-dollars per million tokens, so every cost computed from them is exact integer arithmetic.

use serde::{Deserialize, Deserializer};

/// Micro-dollars as a USD amount with all six decimals: `1.250000`.
pub fn format_usd_micro(micro: u64) -> String {
    format!("{}.{:06}", micro / 1_000_000, micro % 1_000_000)
}

/// `"10"`, `"0.25"`, `"$3.5"` → micro-dollars, exactly (no float rounding).
pub fn parse_usd_micro(text: &str) -> Result<u64, String> {
    let bad = || format!("`{text}` is not an amount in USD (e.g. 10 or 0.25)");
    let digits = text.trim().trim_start_matches('$');
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !fraction.chars().all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    if fraction.len() > 6 {
        return Err(format!(
            "`{text}`: amounts are kept to the micro-dollar (6 decimals)"
        ));
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let fraction: u64 = format!("{fraction:0<6}").parse().map_err(|_| bad())?;
    whole
        .checked_mul(1_000_000)
        .and_then(|w| w.checked_add(fraction))
        .ok_or_else(bad)
}

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

#[cfg(test)]
mod tests {
    use super::{format_usd_micro, parse_usd_micro};

    #[test]
    fn usd_amounts_parse_exactly() {
        assert_eq!(parse_usd_micro("10"), Ok(10_000_000));
        assert_eq!(parse_usd_micro("0.25"), Ok(250_000));
        assert_eq!(parse_usd_micro("$3.000001"), Ok(3_000_001));
        assert_eq!(parse_usd_micro(".5"), Ok(500_000));
        assert_eq!(format_usd_micro(3_000_001), "3.000001");
        for bad in ["", "abc", "-1", "1.2.3", "0.0000001", "1e3"] {
            assert!(parse_usd_micro(bad).is_err(), "{bad}");
        }
    }
}
