//! Greedy selection: the most probable token.

use crate::sampling::{Candidates, Sampler, SamplingError, TokenId};

/// Chooses the candidate of highest logit (the first one on ties), as llama.cpp's greedy.
/// Deterministic; probabilities are left as they are.
///
/// ```
/// use ziglama_infer::sampling::{Greedy, Sampler};
/// assert_eq!(Greedy::new().sample(&[1.0, 3.0, 3.0])?, 1);
/// # Ok::<(), ziglama_infer::sampling::SamplingError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Greedy;

impl Greedy {
    /// The greedy selector.
    pub fn new() -> Self {
        Self
    }
}

impl Sampler for Greedy {
    fn name(&self) -> &str {
        "greedy"
    }
    fn select(&mut self, c: &mut Candidates) -> Result<TokenId, SamplingError> {
        if c.data.is_empty() {
            return Err(SamplingError::EmptyCandidates { sampler: "greedy" });
        }
        let mut best = 0;
        for i in 1..c.data.len() {
            if c.data[i].logit > c.data[best].logit {
                best = i;
            }
        }
        c.selected = Some(best);
        Ok(c.data[best].id)
    }
}
