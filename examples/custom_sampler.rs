//! Bring your own sampler: a user-defined logit processor and a user-defined selector plugged
//! into a chain with the catalogue's own parts.
//!
//! ```text
//! cargo run --release --example custom_sampler
//! ```
//!
//! `ForbidTokens` is a [`LogitProcessor`] (it masks tokens a caller never wants), and
//! `CoolingDist` a [`Sampler`] with state: it draws like dist, but each accepted token lowers
//! its temperature, so a generation starts varied and settles (`reset` warms it up again).
//! The chain `top-k 50 -> ForbidTokens -> CoolingDist` is itself a `Sampler`, used here on
//! made-up Zipf-like logits over a 1,000-token vocabulary.

use std::collections::HashSet;

use ziglama::infer::sampling::{
    Candidates, Dist, LogitProcessor, Sampler, SamplerChain, SamplingError, TokenId, TopK,
};

/// Masks a fixed set of tokens (sets their logit to `-inf`).
struct ForbidTokens(HashSet<TokenId>);

impl LogitProcessor for ForbidTokens {
    fn name(&self) -> &str {
        "forbid-tokens"
    }
    fn apply(&mut self, c: &mut Candidates) -> Result<(), SamplingError> {
        for cand in c.as_mut_slice() {
            if self.0.contains(&cand.id) {
                cand.logit = f32::NEG_INFINITY;
            }
        }
        Ok(())
    }
}

/// Dist at a temperature that starts at `start` and is multiplied by `rate` per accepted token.
struct CoolingDist {
    start: f32,
    rate: f32,
    temp: f32,
    dist: Dist,
}

impl CoolingDist {
    fn new(start: f32, rate: f32, seed: u32) -> Self {
        Self {
            start,
            rate,
            temp: start,
            dist: Dist::new(seed),
        }
    }
}

impl Sampler for CoolingDist {
    fn name(&self) -> &str {
        "cooling-dist"
    }
    fn select(&mut self, c: &mut Candidates) -> Result<TokenId, SamplingError> {
        let t = self.temp;
        for cand in c.as_mut_slice() {
            cand.logit /= t;
        }
        self.dist.select(c)
    }
    fn accept(&mut self, _token: TokenId) {
        self.temp = (self.temp * self.rate).max(0.05);
    }
    fn reset(&mut self) {
        self.temp = self.start;
        self.dist.reset();
    }
}

fn main() -> Result<(), SamplingError> {
    // Zipf-like logits: token i has logit -1.1 ln(i + 1).
    let logits: Vec<f32> = (0..1000).map(|i| -1.1 * ((i + 1) as f32).ln()).collect();
    let forbidden: HashSet<TokenId> = [0, 2].into_iter().collect();

    let mut chain = SamplerChain::new(CoolingDist::new(2.0, 0.7, 42))
        .with(TopK::new(50))
        .with(ForbidTokens(forbidden.clone()))
        .with_logprobs(3);

    println!("step  token  temperature-driven pick (tokens 0 and 2 are forbidden)");
    for step in 0..12 {
        let token = chain.sample(&logits)?;
        assert!(!forbidden.contains(&token));
        let lp = chain.logprobs().expect("asked for log-probabilities");
        let top: Vec<String> = lp
            .final_
            .iter()
            .map(|t| format!("{}:{:.2}", t.id, t.logprob))
            .collect();
        println!(
            "{step:>4}  {token:>5}  final top-3 logprobs {}",
            top.join(" ")
        );
        chain.accept(token);
    }
    chain.reset();
    println!(
        "after reset the chain starts warm again: {}",
        chain.sample(&logits)?
    );
    Ok(())
}
