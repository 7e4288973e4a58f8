//! What can go wrong while generating text.

use ziglama_model::chat::ChatError;
use ziglama_model::tokenizer::TokenizerError;
use ziglama_model::ModelError;

use crate::sampling::SamplingError;

/// Why a [`TextGenerator`](super::TextGenerator) could not be built or could not generate.
///
/// ```
/// use ziglama_infer::generator::GenerationError;
/// let e = GenerationError::PromptTooLong { n_tokens: 600, n_ctx: 512 };
/// assert_eq!(e.to_string(), "the prompt has 600 tokens but the context holds 512 positions");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerationError {
    /// The model failed (a forward pass, or building its tokenizer from the GGUF file).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The prompt could not be tokenized.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The sampling parameters are out of range, or a sampler failed on a step's logits.
    #[error(transparent)]
    Sampling(#[from] SamplingError),
    /// The chat template could not be read or rendered.
    #[error(transparent)]
    Chat(#[from] ChatError),
    /// The prompt has no tokens (and the vocabulary adds no BOS token to start from).
    #[error("the prompt has no tokens")]
    EmptyPrompt,
    /// The prompt does not fit in the context window.
    #[error("the prompt has {n_tokens} tokens but the context holds {n_ctx} positions")]
    PromptTooLong {
        /// Tokens in the prompt.
        n_tokens: usize,
        /// Positions the state holds.
        n_ctx: usize,
    },
    /// A parameter of the generation is invalid.
    #[error("invalid generation parameter {name}: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}
