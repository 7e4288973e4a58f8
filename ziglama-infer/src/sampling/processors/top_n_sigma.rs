//! Top-nσ (Tang et al. 2024, "Top-nσ: Not All Logits Are You Need").

use crate::sampling::{Candidates, LogitProcessor, SamplingError};

/// Masks (sets to `-inf`) every candidate whose logit is below `max - n * σ`, σ the standard
/// deviation of the finite logits. `n <= 0` disables it (llama.cpp's default is -1). The
/// candidates stay in place: the count of finite logits is what shrinks.
#[derive(Clone, Debug)]
pub struct TopNSigma {
    n: f32,
}

impl TopNSigma {
    /// `n` standard deviations.
    ///
    /// # Errors
    /// A non-finite `n`.
    pub fn new(n: f32) -> Result<Self, SamplingError> {
        if !n.is_finite() {
            return Err(SamplingError::param("top-n-sigma", "n", n, "finite values"));
        }
        Ok(Self { n })
    }
}

impl LogitProcessor for TopNSigma {
    fn name(&self) -> &str {
        "top-n-sigma"
    }
    fn is_identity(&self) -> bool {
        self.n <= 0.0
    }
    fn apply(&mut self, c: &mut Candidates) -> Result<(), SamplingError> {
        if self.n <= 0.0 || c.data.len() <= 1 {
            return Ok(());
        }
        let mut max = c.data[0].logit;
        let mut sum = 0.0f32;
        let mut count = 0usize;
        for x in &c.data {
            if x.logit != f32::NEG_INFINITY {
                max = max.max(x.logit);
                sum += x.logit;
                count += 1;
            }
        }
        let mean = if count > 0 { sum / count as f32 } else { 0.0 };
        let mut acc = 0.0f32;
        for x in &c.data {
            if x.logit != f32::NEG_INFINITY {
                let d = f64::from(x.logit - mean);
                acc = (f64::from(acc) + d * d) as f32;
            }
        }
        let std = if count > 0 {
            (acc / count as f32).sqrt()
        } else {
            0.0
        };
        let cut = max - self.n * std;
        for x in &mut c.data {
            if x.logit < cut {
                x.logit = f32::NEG_INFINITY;
            }
        }
        c.normalized = false;
        Ok(())
    }
}
