//! Tail-free sampling (Phibbs 2019, "Tail-Free Sampling",
//! trentbrick.github.io/Tail-Free-Sampling).

use crate::sampling::{Candidates, LogitProcessor, SamplingError};

/// Cuts the tail where the sorted probability curve flattens: with `p` sorted descending, the
/// absolute second differences `|p_i - 2 p_{i+1} + p_{i+2}|`, normalised to sum to 1, are
/// accumulated and the candidates after the first index where the sum exceeds `z` are dropped
/// (at least `min_keep` kept). `z = 1` disables it. Common values: 0.9-0.99.
///
/// ```
/// use ziglama_infer::sampling::{Candidates, LogitProcessor, TailFree};
/// let mut c = Candidates::from_logits(&[5.0, 4.9, 1.0, 0.9, 0.8, 0.7])?;
/// TailFree::new(0.5, 1)?.apply(&mut c)?;
/// assert_eq!(c.len(), 1);
/// # Ok::<(), ziglama_infer::sampling::SamplingError>(())
/// ```
#[derive(Clone, Debug)]
pub struct TailFree {
    z: f32,
    min_keep: usize,
    d2: Vec<f32>,
}

impl TailFree {
    /// Tail-free sampling with parameter `z` in `[0, 1]`.
    ///
    /// # Errors
    /// `z` outside `[0, 1]`.
    pub fn new(z: f32, min_keep: usize) -> Result<Self, SamplingError> {
        if !(0.0..=1.0).contains(&z) {
            return Err(SamplingError::param("tail-free", "z", z, "[0, 1]"));
        }
        Ok(Self {
            z,
            min_keep,
            d2: Vec::new(),
        })
    }
}

impl LogitProcessor for TailFree {
    fn name(&self) -> &str {
        "tail-free"
    }
    fn apply(&mut self, c: &mut Candidates) -> Result<(), SamplingError> {
        if self.z >= 1.0 || c.len() <= 2 {
            return Ok(());
        }
        c.softmax_for("tail-free", true)?;
        let p = &c.data;
        self.d2.clear();
        self.d2.extend(
            (0..p.len() - 2).map(|i| ((p[i].p - p[i + 1].p) - (p[i + 1].p - p[i + 2].p)).abs()),
        );
        let sum: f32 = self.d2.iter().sum();
        let n = self.d2.len();
        if sum > 1e-6 {
            self.d2.iter_mut().for_each(|d| *d /= sum);
        } else {
            self.d2.iter_mut().for_each(|d| *d = 1.0 / n as f32);
        }
        let mut cum = 0.0f32;
        let mut last = c.len();
        for (i, d) in self.d2.iter().enumerate() {
            cum += d;
            if cum > self.z && i >= self.min_keep {
                last = i;
                break;
            }
        }
        c.truncate(last.max(1));
        Ok(())
    }
}
