//! Mirostat (Basu et al. 2021, "Mirostat: A Neural Text Decoding Algorithm that Directly
//! Controls Perplexity"), versions 1 and 2.
//!
//! Both keep a running threshold `mu` (initially `2 tau`) that persists across tokens: after
//! each choice, `mu -= eta * (surprise - tau)` with `surprise = -log2 p` of the chosen token,
//! steering the observed surprise towards the target `tau`. Both draw with
//! `discrete_distribution` semantics from their own MT19937 (see [`crate::sampling::rng`]).

use crate::sampling::rng::{discrete, Mt19937};
use crate::sampling::{Candidates, Sampler, SamplingError, TokenId};

fn check(sampler: &'static str, tau: f32, eta: f32) -> Result<(), SamplingError> {
    if !tau.is_finite() {
        return Err(SamplingError::param(sampler, "tau", tau, "finite values"));
    }
    if !eta.is_finite() {
        return Err(SamplingError::param(sampler, "eta", eta, "finite values"));
    }
    Ok(())
}

/// Draws among the current (sorted, normalised) candidates, records and returns the choice,
/// and updates `mu`.
fn draw_and_learn(
    c: &mut Candidates,
    rng: &mut Mt19937,
    mu: &mut f32,
    tau: f32,
    eta: f32,
) -> TokenId {
    let idx = discrete(c.data.iter().map(|x| x.p), rng);
    c.selected = Some(idx);
    let surprise = -c.data[idx].p.log2();
    *mu -= eta * (surprise - tau);
    c.data[idx].id
}

/// Mirostat 1: estimates the Zipf exponent `s` from the top `m` probabilities, derives the `k`
/// that gives the target surprise, keeps the top `k` and draws. llama.cpp's defaults: tau 5,
/// eta 0.1, m 100.
#[derive(Clone, Debug)]
pub struct Mirostat {
    n_vocab: usize,
    seed: u32,
    tau: f32,
    eta: f32,
    m: usize,
    mu: f32,
    rng: Mt19937,
}

impl Mirostat {
    /// Mirostat 1 over a vocabulary of `n_vocab` tokens.
    ///
    /// # Errors
    /// Non-finite `tau` or `eta`.
    pub fn new(
        n_vocab: usize,
        seed: u32,
        tau: f32,
        eta: f32,
        m: usize,
    ) -> Result<Self, SamplingError> {
        check("mirostat", tau, eta)?;
        Ok(Self {
            n_vocab,
            seed,
            tau,
            eta,
            m,
            mu: 2.0 * tau,
            rng: Mt19937::new(seed),
        })
    }

    /// The current threshold `mu` (maximum surprise, in bits).
    pub fn mu(&self) -> f32 {
        self.mu
    }
}

impl Sampler for Mirostat {
    fn name(&self) -> &str {
        "mirostat"
    }
    fn select(&mut self, c: &mut Candidates) -> Result<TokenId, SamplingError> {
        // The estimate reads only the m most probable tokens and the cut keeps the top k:
        // sort those m (a selection, not a sort of the vocabulary), and the rest only when
        // k reaches past them.
        c.softmax_for("mirostat", false)?;
        let prefix = self.m.max(1);
        let all_sorted = c.sort_prefix(prefix);
        let n = c.data.len();
        let mut sum_ti_bi = 0.0f32;
        let mut sum_ti_sq = 0.0f32;
        let mut i = 0;
        while i + 1 < self.m && i + 1 < n {
            let t_i = ((i + 2) as f32 / (i + 1) as f32).ln();
            let b_i = (c.data[i].p / c.data[i + 1].p).ln();
            sum_ti_bi += t_i * b_i;
            sum_ti_sq += t_i * t_i;
            i += 1;
        }
        let s_hat = sum_ti_bi / sum_ti_sq;
        let epsilon_hat = s_hat - 1.0;
        let k = ((epsilon_hat * 2.0f32.powf(self.mu))
            / (1.0 - (self.n_vocab as f32).powf(-epsilon_hat)))
        .powf(1.0 / s_hat);
        // llama.cpp converts with int(k): out of range or NaN gives INT_MIN on x86, so 1.
        let k = if k.is_nan() || !(-2_147_483_648.0..2_147_483_648.0).contains(&k) {
            1
        } else {
            (k as i64).max(1) as usize
        };
        if !all_sorted && k > prefix {
            c.sort_after_prefix(prefix);
        }
        c.truncate(k);
        c.sorted = true;
        c.softmax_for("mirostat", true)?;
        Ok(draw_and_learn(
            c,
            &mut self.rng,
            &mut self.mu,
            self.tau,
            self.eta,
        ))
    }
    fn reset(&mut self) {
        self.mu = 2.0 * self.tau;
        self.rng = Mt19937::new(self.seed);
    }
}

/// Mirostat 2: keeps the candidates whose surprise `-log2 p` is at most `mu` (at least one),
/// renormalises and draws. llama.cpp's defaults: tau 5, eta 0.1.
#[derive(Clone, Debug)]
pub struct MirostatV2 {
    seed: u32,
    tau: f32,
    eta: f32,
    mu: f32,
    rng: Mt19937,
}

impl MirostatV2 {
    /// Mirostat 2.
    ///
    /// # Errors
    /// Non-finite `tau` or `eta`.
    pub fn new(seed: u32, tau: f32, eta: f32) -> Result<Self, SamplingError> {
        check("mirostat-v2", tau, eta)?;
        Ok(Self {
            seed,
            tau,
            eta,
            mu: 2.0 * tau,
            rng: Mt19937::new(seed),
        })
    }

    /// The current threshold `mu` (maximum surprise, in bits).
    pub fn mu(&self) -> f32 {
        self.mu
    }
}

impl Sampler for MirostatV2 {
    fn name(&self) -> &str {
        "mirostat-v2"
    }
    fn select(&mut self, c: &mut Candidates) -> Result<TokenId, SamplingError> {
        c.softmax_for("mirostat-v2", false)?;
        let mu = self.mu;
        if c.sorted {
            let keep = c.data.iter().position(|x| -x.p.log2() > mu);
            c.truncate(keep.unwrap_or(c.data.len()).max(1));
        } else {
            // Surprise grows as the logit falls, so the tokens kept are the top ones: count
            // them, then select that many (no sort of the whole vocabulary).
            // Compared in probability space (p >= 2^-mu), with llama.cpp's exact test
            // (-log2 p > mu) only within 1e-4 of the threshold: one log2 per token saved.
            let thr = (-mu).exp2();
            let (hi, lo) = (thr * 1.0001, thr * 0.9999);
            let keep = c
                .data
                .iter()
                .filter(|x| x.p > hi || (x.p >= lo && -x.p.log2() <= mu))
                .count();
            c.truncate_top_k(keep.max(1));
        }
        c.softmax_for("mirostat-v2", true)?;
        Ok(draw_and_learn(
            c,
            &mut self.rng,
            &mut self.mu,
            self.tau,
            self.eta,
        ))
    }
    fn reset(&mut self) {
        self.mu = 2.0 * self.tau;
        self.rng = Mt19937::new(self.seed);
    }
}
