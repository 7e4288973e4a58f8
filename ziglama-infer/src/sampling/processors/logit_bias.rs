//! Logit bias: fixed additive offsets per token (OpenAI's `logit_bias`; `-inf` bans a token).

use crate::sampling::{Candidates, LogitProcessor, SamplingError, TokenId};

/// Adds `bias` to the logit of each listed token (`-inf` removes it from consideration).
///
/// ```
/// use ziglama_infer::sampling::{Candidates, LogitBias, LogitProcessor};
/// let mut c = Candidates::from_logits(&[1.0, 2.0])?;
/// LogitBias::new([(0, 5.0), (1, f32::NEG_INFINITY)])?.apply(&mut c)?;
/// assert_eq!(c.as_slice()[0].logit, 6.0);
/// assert_eq!(c.as_slice()[1].logit, f32::NEG_INFINITY);
/// # Ok::<(), ziglama_infer::sampling::SamplingError>(())
/// ```
#[derive(Clone, Debug)]
pub struct LogitBias {
    biases: Vec<(TokenId, f32)>,
    to_search: Vec<(TokenId, f32)>,
}

impl LogitBias {
    /// Biases per token.
    ///
    /// # Errors
    /// A NaN or `+inf` bias.
    pub fn new(biases: impl IntoIterator<Item = (TokenId, f32)>) -> Result<Self, SamplingError> {
        let biases: Vec<_> = biases.into_iter().collect();
        if let Some(&(_, b)) = biases
            .iter()
            .find(|(_, b)| b.is_nan() || *b == f32::INFINITY)
        {
            return Err(SamplingError::param(
                "logit-bias",
                "bias",
                b,
                "finite values or -inf",
            ));
        }
        Ok(Self {
            biases,
            to_search: Vec::new(),
        })
    }
}

impl LogitProcessor for LogitBias {
    fn name(&self) -> &str {
        "logit-bias"
    }
    fn is_identity(&self) -> bool {
        self.biases.is_empty()
    }
    fn apply(&mut self, c: &mut Candidates) -> Result<(), SamplingError> {
        if self.biases.is_empty() {
            return Ok(());
        }
        self.to_search.clear();
        for &(token, bias) in &self.biases {
            match c.data.get_mut(token as usize) {
                Some(x) if x.id == token => x.logit += bias,
                _ => self.to_search.push((token, bias)),
            }
        }
        for x in &mut c.data {
            if self.to_search.is_empty() {
                break;
            }
            if let Some(&(_, bias)) = self.to_search.iter().find(|(t, _)| *t == x.id) {
                x.logit += bias;
            }
        }
        c.sorted = false;
        c.normalized = false;
        Ok(())
    }
}
