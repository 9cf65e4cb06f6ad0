//! Cost of token usage in exact integer micro-dollars.

use super::Usage;

/// Micro-dollars in a dollar, and tokens in a million tokens.
const MILLION: u64 = 1_000_000;
/// Largest accepted price: USD 1e9 per million tokens, i.e. 1e15 µ$ (below 2^53, so every
/// accepted `f64` rounds to the intended integer and `u128` arithmetic cannot overflow).
const MAX_MICROS_PER_MTOK: f64 = 1e15;

/// Prices in micro-dollars per million tokens are integers: USD 2.00 / M tokens =
/// 2_000_000 µ$ per M tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    pub input_micros_per_mtok: u64,
    pub output_micros_per_mtok: u64,
}

impl Price {
    /// Converts USD per million tokens to integer µ$ per million tokens, rounded to the nearest
    /// micro-dollar (halves away from zero). `None` when a price is negative, not finite or
    /// above USD 1e9 per million tokens.
    pub fn from_usd_per_mtok(input: f64, output: f64) -> Option<Price> {
        Some(Price {
            input_micros_per_mtok: usd_to_micros(input)?,
            output_micros_per_mtok: usd_to_micros(output)?,
        })
    }
}

fn usd_to_micros(usd: f64) -> Option<u64> {
    if !usd.is_finite() || usd < 0.0 {
        return None;
    }
    let micros = (usd * MILLION as f64).round();
    if micros > MAX_MICROS_PER_MTOK {
        return None;
    }
    // In range [0, 1e15] and integral: the cast is exact.
    Some(micros as u64)
}

/// Cost accumulator in exact integer arithmetic: the cost of a usage is
/// `(prompt * in + completion * out) / 1_000_000` micro-dollars. The metric is an integer
/// counter of micro-dollars; the remainder (in pico-dollars: the numerator mod 1_000_000) is
/// carried to the next request, so that over many requests no fraction is lost or counted twice:
/// the sum of everything `add` returned is always `floor(total numerator / 1_000_000)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CostAccumulator {
    remainder: u64,
}

impl CostAccumulator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the cost of `usage` at `price`; returns the whole micro-dollars to add to the
    /// counter now (saturating at `u64::MAX` for absurd inputs).
    pub fn add(&mut self, usage: Usage, price: Price) -> u64 {
        let input = u128::from(usage.prompt_tokens) * u128::from(price.input_micros_per_mtok);
        let output = u128::from(usage.completion_tokens) * u128::from(price.output_micros_per_mtok);
        let numerator = input
            .saturating_add(output)
            .saturating_add(u128::from(self.remainder));
        let million = u128::from(MILLION);
        // Less than 1_000_000: fits.
        self.remainder = u64::try_from(numerator % million).unwrap_or(0);
        u64::try_from(numerator / million).unwrap_or(u64::MAX)
    }

    /// The fraction of a micro-dollar carried so far, in pico-dollars (`< 1_000_000`).
    pub fn remainder_picos(&self) -> u64 {
        self.remainder
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{test, RngCore, SplitMix64};

    fn usage(prompt_tokens: u64, completion_tokens: u64) -> Usage {
        Usage {
            prompt_tokens,
            completion_tokens,
        }
    }

    #[test]
    fn prices_convert_to_the_nearest_micro_dollar() {
        let p = Price::from_usd_per_mtok(2.0, 8.0).unwrap();
        assert_eq!(p.input_micros_per_mtok, 2_000_000);
        assert_eq!(p.output_micros_per_mtok, 8_000_000);
        let p = Price::from_usd_per_mtok(0.15, 0.6).unwrap();
        assert_eq!(
            (p.input_micros_per_mtok, p.output_micros_per_mtok),
            (150_000, 600_000)
        );
        let p = Price::from_usd_per_mtok(0.0375, 0.000_000_4).unwrap();
        assert_eq!(
            (p.input_micros_per_mtok, p.output_micros_per_mtok),
            (37_500, 0)
        );
        let p = Price::from_usd_per_mtok(0.000_000_6, 0.0).unwrap();
        assert_eq!((p.input_micros_per_mtok, p.output_micros_per_mtok), (1, 0));
        let p = Price::from_usd_per_mtok(-0.0, 1e9).unwrap();
        assert_eq!(
            (p.input_micros_per_mtok, p.output_micros_per_mtok),
            (0, 1_000_000_000_000_000)
        );
    }

    #[test]
    fn prices_that_are_negative_not_finite_or_too_large_are_refused() {
        for bad in [
            -0.01,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1.1e9,
            1e300,
        ] {
            assert_eq!(Price::from_usd_per_mtok(bad, 1.0), None, "{bad}");
            assert_eq!(Price::from_usd_per_mtok(1.0, bad), None, "{bad}");
        }
    }

    #[test]
    fn a_million_one_token_requests_at_two_dollars_per_million_cost_exactly_two_dollars() {
        let price = Price::from_usd_per_mtok(2.0, 8.0).unwrap();
        let mut acc = CostAccumulator::new();
        let total: u64 = (0..1_000_000).map(|_| acc.add(usage(1, 0), price)).sum();
        assert_eq!(total, 2_000_000);
        assert_eq!(acc.remainder_picos(), 0);
    }

    #[test]
    fn fractions_of_a_micro_dollar_are_carried_not_lost() {
        // 1 token at USD 0.15/M is 0.15 µ$: nothing per request, USD 0.15 per million requests.
        let price = Price::from_usd_per_mtok(0.15, 0.6).unwrap();
        let mut acc = CostAccumulator::new();
        let mut total = 0u64;
        for _ in 0..1_000_000 {
            total += acc.add(usage(1, 0), price);
        }
        assert_eq!(total, 150_000);
        assert_eq!(acc.remainder_picos(), 0);
        assert_eq!(acc.add(usage(0, 1), price), 0);
        assert_eq!(acc.remainder_picos(), 600_000);
        assert_eq!(acc.add(usage(0, 1), price), 1);
        assert_eq!(acc.remainder_picos(), 200_000);
    }

    #[test]
    fn summing_per_request_costs_equals_the_exact_total_for_random_usages() {
        let mut rng = SplitMix64::new(0x9e37_79b9_7f4a_7c15);
        let mut next = move || rng.next_u64();
        for _ in 0..20 {
            let price = Price {
                input_micros_per_mtok: next() % 100_000_000,
                output_micros_per_mtok: next() % 100_000_000,
            };
            let mut acc = CostAccumulator::new();
            let mut sum = 0u128;
            let mut exact = 0u128;
            for _ in 0..5_000 {
                let u = usage(next() % 200_000, next() % 50_000);
                sum += u128::from(acc.add(u, price));
                exact += u128::from(u.prompt_tokens) * u128::from(price.input_micros_per_mtok)
                    + u128::from(u.completion_tokens) * u128::from(price.output_micros_per_mtok);
                assert_eq!(sum, exact / 1_000_000);
                assert_eq!(u128::from(acc.remainder_picos()), exact % 1_000_000);
            }
        }
    }

    #[test]
    fn absurd_usages_and_prices_saturate_instead_of_overflowing() {
        let mut acc = CostAccumulator::new();
        let max = Price {
            input_micros_per_mtok: u64::MAX,
            output_micros_per_mtok: u64::MAX,
        };
        assert_eq!(acc.add(usage(u64::MAX, u64::MAX), max), u64::MAX);
        assert!(acc.remainder_picos() < 1_000_000);
        let price = Price::from_usd_per_mtok(1e9, 1e9).unwrap();
        let mut acc = CostAccumulator::new();
        assert_eq!(acc.add(usage(u64::MAX, 0), price), u64::MAX);
        let mut acc = CostAccumulator::new();
        let got = acc.add(usage(10_000_000_000, 1), price);
        assert_eq!(got, 10_000_000_000_000_000_000 + 1_000_000_000);
    }
}
