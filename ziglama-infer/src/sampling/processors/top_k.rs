//! Top-k (Fan, Lewis and Dauphin 2018, "Hierarchical Neural Story Generation").

use crate::sampling::{Candidates, LogitProcessor, SamplingError};

/// Keeps the `k` candidates of highest logit, sorted. `k = 0` disables it (llama.cpp: `<= 0`);
/// a `k` larger than the set keeps (and sorts) everything. llama.cpp's default is 40.
///
/// One pass with a `k`-element heap ([`Candidates::truncate_top_k`]): no full sort.
///
/// ```
/// use ziglama_infer::sampling::{Candidates, LogitProcessor, TopK};
/// let mut c = Candidates::from_logits(&[0.1, 0.9, 0.5, 0.7])?;
/// TopK::new(2).apply(&mut c)?;
/// assert_eq!(c.iter().map(|c| c.id).collect::<Vec<_>>(), [1, 3]);
/// # Ok::<(), ziglama_infer::sampling::SamplingError>(())
/// ```
#[derive(Clone, Debug)]
pub struct TopK {
    k: usize,
}

impl TopK {
    /// Keeps the top `k` (0 = disabled).
    pub fn new(k: usize) -> Self {
        Self { k }
    }
}

impl LogitProcessor for TopK {
    fn name(&self) -> &str {
        "top-k"
    }
    fn is_identity(&self) -> bool {
        self.k == 0
    }
    fn apply_to_logits(
        &mut self,
        logits: &[f32],
        out: &mut Candidates,
    ) -> Option<Result<(), SamplingError>> {
        Some(out.fill_top_k(logits, self.k))
    }
    fn apply(&mut self, c: &mut Candidates) -> Result<(), SamplingError> {
        c.truncate_top_k(self.k);
        Ok(())
    }
}
