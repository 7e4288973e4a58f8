//! Min-p (Nguyen et al. 2024, "Turning Up the Heat: Min-p Sampling for Creative and Coherent
//! LLM Outputs").

use crate::sampling::{Candidates, LogitProcessor, SamplingError};

/// Keeps the candidates whose probability is at least `p` times the largest one, i.e. whose
/// logit is at least `max + ln p`, and at least `min_keep`. `p = 0` disables it. llama.cpp's
/// default is 0.05.
///
/// On an unsorted set it filters in one pass, keeping the order; only when that leaves fewer
/// than `min_keep` does it sort and cut (as llama.cpp).
///
/// ```
/// use ziglama_infer::sampling::{Candidates, LogitProcessor, MinP};
/// let mut c = Candidates::from_logits(&[0.0, -1.0, -5.0])?;
/// MinP::new(0.1, 1)?.apply(&mut c)?; // ln 0.1 = -2.3
/// assert_eq!(c.len(), 2);
/// # Ok::<(), ziglama_infer::sampling::SamplingError>(())
/// ```
#[derive(Clone, Debug)]
pub struct MinP {
    p: f32,
    min_keep: usize,
}

impl MinP {
    /// Min-p `p` in `[0, 1]`, keeping at least `min_keep`.
    ///
    /// # Errors
    /// `p` outside `[0, 1]`.
    pub fn new(p: f32, min_keep: usize) -> Result<Self, SamplingError> {
        if !(0.0..=1.0).contains(&p) {
            return Err(SamplingError::param("min-p", "p", p, "[0, 1]"));
        }
        Ok(Self { p, min_keep })
    }
}

impl LogitProcessor for MinP {
    fn name(&self) -> &str {
        "min-p"
    }
    fn is_identity(&self) -> bool {
        self.p <= 0.0
    }
    fn apply(&mut self, c: &mut Candidates) -> Result<(), SamplingError> {
        if self.p <= 0.0 || c.data.is_empty() {
            return Ok(());
        }
        let ln_p = self.p.ln();
        if !c.sorted {
            let max = c.data.iter().map(|x| x.logit).fold(-f32::MAX, f32::max);
            let min_logit = max + ln_p;
            let kept = c.data.iter().filter(|x| x.logit >= min_logit).count();
            if kept > 0 && kept >= self.min_keep {
                c.retain(|x| x.logit >= min_logit);
                return Ok(());
            }
            c.sort_descending();
        }
        let min_logit = c.data[0].logit + ln_p;
        let mut i = 1;
        while i < c.data.len() {
            if c.data[i].logit < min_logit && i >= self.min_keep {
                break;
            }
            i += 1;
        }
        c.truncate(i);
        Ok(())
    }
}
