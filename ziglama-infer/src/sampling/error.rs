//! The error type of the sampling layer.

use super::TokenId;

/// Everything that can go wrong while turning logits into a token.
///
/// Bad input is reported, never a panic: a NaN or `+inf` logit, an empty candidate set, a
/// parameter outside its range (named with the sampler it belongs to).
///
/// ```
/// use ziglama_infer::sampling::{Candidates, SamplingError};
/// let err = Candidates::from_logits(&[0.5, f32::NAN]).unwrap_err();
/// assert!(matches!(err, SamplingError::NonFiniteLogit { token: 1, .. }));
/// assert!(err.to_string().contains("token 1"));
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SamplingError {
    /// A logit handed in was NaN or `+inf` (`-inf` is allowed: it masks a token out).
    #[error("logit of token {token} is {value}: logits must be finite or -inf")]
    NonFiniteLogit {
        /// The token (index into the logits).
        token: usize,
        /// The value found.
        value: f32,
    },
    /// There was nothing to choose from.
    #[error("{sampler}: the candidate set is empty")]
    EmptyCandidates {
        /// The sampler that found it empty.
        sampler: &'static str,
    },
    /// Every candidate left has a logit of `-inf`: no distribution can be formed.
    #[error("{sampler}: every one of the {n} candidates has a logit of -inf")]
    AllMasked {
        /// The sampler that found it.
        sampler: &'static str,
        /// How many candidates were left.
        n: usize,
    },
    /// A parameter is outside the range its sampler accepts.
    #[error("{sampler}: {parameter} = {value} is outside {expected}")]
    InvalidParameter {
        /// The sampler.
        sampler: &'static str,
        /// The parameter's name.
        parameter: &'static str,
        /// The value given (as text, so integers and floats both fit).
        value: String,
        /// The accepted range, in words.
        expected: &'static str,
    },
    /// A token id is not in the vocabulary the sampler was built for.
    #[error("{sampler}: token {token} is outside the vocabulary of {n_vocab} tokens")]
    TokenOutOfRange {
        /// The sampler.
        sampler: &'static str,
        /// The token.
        token: TokenId,
        /// The vocabulary size.
        n_vocab: usize,
    },
}

impl SamplingError {
    /// An [`SamplingError::InvalidParameter`] for a float parameter.
    pub(crate) fn param(
        sampler: &'static str,
        parameter: &'static str,
        value: impl ToString,
        expected: &'static str,
    ) -> Self {
        SamplingError::InvalidParameter {
            sampler,
            parameter,
            value: value.to_string(),
            expected,
        }
    }
}
