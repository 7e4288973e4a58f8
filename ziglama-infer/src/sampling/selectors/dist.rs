//! Sampling from the distribution (llama.cpp's `dist`).

use rand_core::Rng;

use crate::sampling::rng::{uniform_f64, Mt19937};
use crate::sampling::{Candidates, Sampler, SamplingError, TokenId};

/// Draws a token from the softmax of the candidates' logits and leaves the set normalised.
///
/// One uniform double `u` per step; the chosen candidate is the first (in the current order)
/// whose running sum of unnormalised weights `exp(l_i - max)` reaches `u` times their total,
/// exactly as llama.cpp's dist does. With [`Dist::new`] the generator is MT19937 seeded like
/// llama.cpp's, so the same seed picks the same tokens; [`Dist::with_rng`] takes any
/// `rand_core` generator. A single candidate still consumes one draw (as in llama.cpp).
///
/// ```
/// use ziglama_infer::sampling::{Dist, Sampler};
/// let logits = [0.0, 1.0, 2.0, 3.0];
/// let a: Vec<u32> = { let mut d = Dist::new(7); (0..8).map(|_| d.sample(&logits).unwrap()).collect() };
/// let b: Vec<u32> = { let mut d = Dist::new(7); (0..8).map(|_| d.sample(&logits).unwrap()).collect() };
/// assert_eq!(a, b);
/// ```
#[derive(Clone, Debug)]
pub struct Dist<R = Mt19937> {
    rng: R,
    initial: R,
}

impl Dist<Mt19937> {
    /// Dist with MT19937 seeded with `seed` (llama.cpp's generator and seeding).
    pub fn new(seed: u32) -> Self {
        Self::with_rng(Mt19937::new(seed))
    }
}

impl<R: Rng + Clone + Send> Dist<R> {
    /// Dist drawing from `rng` ([`Sampler::reset`] returns to this state).
    pub fn with_rng(rng: R) -> Self {
        Self {
            initial: rng.clone(),
            rng,
        }
    }
}

impl<R: Rng + Clone + Send> Sampler for Dist<R> {
    fn name(&self) -> &str {
        "dist"
    }

    fn select(&mut self, c: &mut Candidates) -> Result<TokenId, SamplingError> {
        let n = c.data.len();
        if n == 0 {
            return Err(SamplingError::EmptyCandidates { sampler: "dist" });
        }
        if n == 1 {
            uniform_f64(&mut self.rng);
            c.data[0].p = 1.0;
            c.normalized = true;
            c.selected = Some(0);
            return Ok(c.data[0].id);
        }
        let max = c.max_logit().unwrap_or(f32::NEG_INFINITY);
        if max == f32::NEG_INFINITY {
            return Err(SamplingError::AllMasked { sampler: "dist", n });
        }
        let mut sum = 0.0f64;
        for x in &mut c.data {
            let p = (x.logit - max).exp();
            x.p = p;
            sum += f64::from(p);
        }
        let target = sum * uniform_f64(&mut self.rng);
        let mut run = 0.0f64;
        let mut selected = None;
        for (i, x) in c.data.iter_mut().enumerate() {
            if selected.is_none() {
                run += f64::from(x.p);
                if run >= target {
                    selected = Some(i);
                }
            }
            x.p = (f64::from(x.p) / sum) as f32;
        }
        let i = selected.unwrap_or(n - 1);
        c.normalized = true;
        c.selected = Some(i);
        Ok(c.data[i].id)
    }

    fn reset(&mut self) {
        self.rng = self.initial.clone();
    }
}
