//! Cost in integer micro-dollars from a deployment's prices and a response's usage.

use crate::config::{PriceConfig, UsdPerMtok};
use crate::providers::types::Usage;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pricing {
    pub input: UsdPerMtok,
    pub cached_input: UsdPerMtok,
    pub cache_write: UsdPerMtok,
    pub output: UsdPerMtok,
}

impl From<&PriceConfig> for Pricing {
    fn from(price: &PriceConfig) -> Self {
        Self {
            input: price.input,
            cached_input: price.cached_input.unwrap_or(price.input),
            cache_write: price.cache_write.unwrap_or(price.input),
            output: price.output,
        }
    }
}

impl Pricing {
    /// Cached and cache-write tokens are part of `prompt_tokens` and billed at their own prices;
    /// the rest of the prompt at the input price. Rounded once, half up, at the end.
    pub fn cost_micro_usd(&self, usage: &Usage) -> u64 {
        let prompt = u128::from(usage.prompt_tokens);
        let cached = u128::from(usage.cached_tokens()).min(prompt);
        let written = u128::from(usage.cache_write_tokens()).min(prompt - cached);
        let uncached = prompt - cached - written;
        let per = |p: UsdPerMtok| u128::from(p.micro_usd());
        let scaled = uncached * per(self.input)
            + cached * per(self.cached_input)
            + written * per(self.cache_write)
            + u128::from(usage.completion_tokens) * per(self.output);
        u64::try_from((scaled + 500_000) / 1_000_000).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(input: u64, cached: u64, write: u64, output: u64) -> Pricing {
        Pricing {
            input: UsdPerMtok::from_micro_usd(input),
            cached_input: UsdPerMtok::from_micro_usd(cached),
            cache_write: UsdPerMtok::from_micro_usd(write),
            output: UsdPerMtok::from_micro_usd(output),
        }
    }

    #[test]
    fn openai_cached_tokens_are_billed_at_the_cached_price() {
        // gpt-4o: $2.50 in, $1.25 cached, $10 out per Mtok. 2000 prompt (1500 cached), 300 out:
        // 500*2.5 + 1500*1.25 + 300*10 = 1250 + 1875 + 3000 = 6125 micro-dollars.
        let usage = Usage::new(2000, 300, 1500, 0);
        assert_eq!(
            price(2_500_000, 1_250_000, 2_500_000, 10_000_000).cost_micro_usd(&usage),
            6125
        );
    }

    #[test]
    fn anthropic_cache_writes_have_their_own_price() {
        // Sonnet: $3 in, $0.30 cache read, $3.75 cache write, $15 out. 10 in + 100 read + 20 write, 5 out:
        // 10*3 + 100*0.3 + 20*3.75 + 5*15 = 30 + 30 + 75 + 75 = 210.
        let usage = Usage::new(130, 5, 100, 20);
        assert_eq!(
            price(3_000_000, 300_000, 3_750_000, 15_000_000).cost_micro_usd(&usage),
            210
        );
    }

    #[test]
    fn rounding_happens_once_half_up() {
        // 1 token at $0.50/Mtok = 0.5 µ$ → 1; 3 tokens at $0.15 = 0.45 → 0.
        assert_eq!(
            price(500_000, 0, 0, 0).cost_micro_usd(&Usage::new(1, 0, 0, 0)),
            1
        );
        assert_eq!(
            price(150_000, 0, 0, 0).cost_micro_usd(&Usage::new(3, 0, 0, 0)),
            0
        );
    }

    #[test]
    fn defaults_fall_back_to_the_input_price() {
        let config: PriceConfig = toml::from_str("input = 2.0\noutput = 8.0").unwrap();
        let pricing = Pricing::from(&config);
        assert_eq!(pricing.cached_input.micro_usd(), 2_000_000);
        assert_eq!(pricing.cache_write.micro_usd(), 2_000_000);
    }
}
