//! XTC, "exclude top choices" (Weidmann 2024, text-generation-webui pull request 6335).

use crate::sampling::rng::{uniform_f32, Mt19937};
use crate::sampling::{Candidates, LogitProcessor, SamplingError};

/// With probability `probability`, removes every candidate whose probability is at least
/// `threshold` except the least probable of them, steering away from the most predictable
/// continuations while keeping a viable one; never leaves fewer than `min_keep`. Disabled when
/// `probability <= 0` or `threshold > 0.5` (llama.cpp's defaults: 0.0 and 0.1).
///
/// The coin is a float draw from its own MT19937 seeded with `seed` (as llama.cpp), taken
/// only when the set has at least two candidates.
#[derive(Clone, Debug)]
pub struct Xtc {
    probability: f32,
    threshold: f32,
    min_keep: usize,
    seed: u32,
    rng: Mt19937,
}

impl Xtc {
    /// XTC with the given chance, threshold, `min_keep` and seed.
    ///
    /// # Errors
    /// `probability` or `threshold` outside `[0, 1]`.
    pub fn new(
        probability: f32,
        threshold: f32,
        min_keep: usize,
        seed: u32,
    ) -> Result<Self, SamplingError> {
        if !(0.0..=1.0).contains(&probability) {
            return Err(SamplingError::param(
                "xtc",
                "probability",
                probability,
                "[0, 1]",
            ));
        }
        if !(0.0..=1.0).contains(&threshold) {
            return Err(SamplingError::param(
                "xtc",
                "threshold",
                threshold,
                "[0, 1]",
            ));
        }
        Ok(Self {
            probability,
            threshold,
            min_keep,
            seed,
            rng: Mt19937::new(seed),
        })
    }
}

impl LogitProcessor for Xtc {
    fn name(&self) -> &str {
        "xtc"
    }
    fn is_identity(&self) -> bool {
        // With these parameters apply returns before drawing, so skipping it keeps the RNG.
        self.probability <= 0.0 || self.threshold > 0.5
    }
    fn apply(&mut self, c: &mut Candidates) -> Result<(), SamplingError> {
        if self.probability <= 0.0 || self.threshold > 0.5 || c.data.len() < 2 {
            return Ok(());
        }
        if uniform_f32(&mut self.rng) > self.probability {
            return Ok(());
        }
        c.softmax_for("xtc", true)?;
        let mut pos_last = 0;
        for (i, x) in c.data.iter().enumerate() {
            if x.p >= self.threshold {
                pos_last = i;
            } else {
                break;
            }
        }
        if c.data.len() - pos_last >= self.min_keep && pos_last > 0 {
            c.data.drain(..pos_last);
            c.normalized = false;
        }
        Ok(())
    }
    fn reset(&mut self) {
        self.rng = Mt19937::new(self.seed);
    }
}
