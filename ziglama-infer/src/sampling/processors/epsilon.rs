//! Truncation by an absolute probability floor: epsilon and eta sampling (Hewitt, Manning and
//! Liang 2022, "Truncation Sampling as Language Model Desmoothing").

use crate::sampling::{Candidates, LogitProcessor, SamplingError};

fn check(sampler: &'static str, epsilon: f32) -> Result<f32, SamplingError> {
    if (0.0..1.0).contains(&epsilon) {
        Ok(epsilon)
    } else {
        Err(SamplingError::param(sampler, "epsilon", epsilon, "[0, 1)"))
    }
}

/// Keeps the candidates (in descending order) whose probability is at least `floor`, and at
/// least `min_keep` (at least one). The set is left sorted with the pre-truncation softmax.
fn keep_above(c: &mut Candidates, floor: f32, min_keep: usize) -> Result<(), SamplingError> {
    let n = c.data.partition_point(|x| x.p >= floor);
    c.truncate(n.max(min_keep).max(1));
    Ok(())
}

/// Epsilon sampling: drops every candidate whose probability is below `epsilon`. The paper
/// recommends `epsilon` around 3e-4 for large models. `epsilon = 0` disables it.
///
/// ```
/// use ziglama_infer::sampling::{Candidates, Epsilon, LogitProcessor};
/// let mut c = Candidates::from_logits(&[0.0, 0.0, -10.0])?;
/// Epsilon::new(1e-3, 1)?.apply(&mut c)?;
/// assert_eq!(c.len(), 2);
/// # Ok::<(), ziglama_infer::sampling::SamplingError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Epsilon {
    epsilon: f32,
    min_keep: usize,
}

impl Epsilon {
    /// Floor `epsilon` in `[0, 1)`.
    ///
    /// # Errors
    /// `epsilon` outside `[0, 1)`.
    pub fn new(epsilon: f32, min_keep: usize) -> Result<Self, SamplingError> {
        Ok(Self {
            epsilon: check("epsilon", epsilon)?,
            min_keep,
        })
    }
}

impl LogitProcessor for Epsilon {
    fn name(&self) -> &str {
        "epsilon"
    }
    fn apply(&mut self, c: &mut Candidates) -> Result<(), SamplingError> {
        if self.epsilon <= 0.0 {
            return Ok(());
        }
        c.softmax_for("epsilon", true)?;
        keep_above(c, self.epsilon, self.min_keep)
    }
}

/// Eta sampling: an entropy-dependent floor `eta = min(epsilon, sqrt(epsilon) * exp(-H))`, `H`
/// the entropy (in nats) of the current distribution: flat distributions keep more tokens.
/// The paper recommends `epsilon` around 6e-4 to 2e-3. `epsilon = 0` disables it.
///
/// ```
/// use ziglama_infer::sampling::{Candidates, Eta, LogitProcessor};
/// let mut c = Candidates::from_logits(&[0.0, 0.0, -10.0])?;
/// Eta::new(0.01, 1)?.apply(&mut c)?;
/// assert_eq!(c.len(), 2);
/// # Ok::<(), ziglama_infer::sampling::SamplingError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Eta {
    epsilon: f32,
    min_keep: usize,
}

impl Eta {
    /// Eta sampling with parameter `epsilon` in `[0, 1)`.
    ///
    /// # Errors
    /// `epsilon` outside `[0, 1)`.
    pub fn new(epsilon: f32, min_keep: usize) -> Result<Self, SamplingError> {
        Ok(Self {
            epsilon: check("eta", epsilon)?,
            min_keep,
        })
    }
}

impl LogitProcessor for Eta {
    fn name(&self) -> &str {
        "eta"
    }
    fn apply(&mut self, c: &mut Candidates) -> Result<(), SamplingError> {
        if self.epsilon <= 0.0 {
            return Ok(());
        }
        c.softmax_for("eta", true)?;
        let entropy: f32 = c
            .data
            .iter()
            .filter(|x| x.p > 0.0)
            .map(|x| -x.p * x.p.ln())
            .sum();
        let eta = self.epsilon.min(self.epsilon.sqrt() * (-entropy).exp());
        keep_above(c, eta, self.min_keep)
    }
}
