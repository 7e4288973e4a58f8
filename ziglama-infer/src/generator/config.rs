//! The parameters of one generation.

use crate::sampling::{Preset, SamplingConfig};
use crate::stream::FlushPolicy;

use super::{ContrastiveSearch, GenerationError};

/// What a [`TextGenerator`](super::TextGenerator) generates and when it stops: token
/// limits, stop strings and stop tokens, the sampling parameters and their seed,
/// log-probabilities, echo of the prompt, the flush policy of streamed text, and the
/// decoding strategy (sampling, or contrastive search).
///
/// ```
/// use ziglama_infer::generator::GenerationConfig;
/// use ziglama_infer::sampling::Preset;
///
/// let config = GenerationConfig::preset(Preset::Focused)
///     .with_max_tokens(64)
///     .with_stop_strings(["\n\n", "User:"])
///     .with_seed(7)
///     .with_logprobs(5);
/// assert_eq!(config.max_tokens, 64);
/// assert_eq!(config.sampling.temperature, 0.3);
/// assert_eq!(config.stop_strings.len(), 2);
/// assert!(GenerationConfig::greedy().is_greedy());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct GenerationConfig {
    /// Most new tokens (128). The prompt does not count.
    pub max_tokens: usize,
    /// Fewest new tokens (0): until this many are made, end-of-generation tokens and the
    /// stop tokens are masked out of the candidates (stop strings still stop).
    pub min_tokens: usize,
    /// Stop strings: the text ends just before the first one found, even across tokens.
    pub stop_strings: Vec<String>,
    /// Token ids that stop the generation (their text is left out), besides the
    /// vocabulary's end-of-generation tokens.
    pub stop_token_ids: Vec<u32>,
    /// Keep going past end-of-generation tokens (their text is kept), as llama.cpp's
    /// `--ignore-eos`.
    pub ignore_eos: bool,
    /// The seed of the sampler's random numbers; it replaces `sampling.seed`.
    pub seed: u32,
    /// Top log-probabilities to record per generated token (0, the default, records none).
    pub logprobs: usize,
    /// Whether the result's text (and the stream) starts with the prompt's text.
    pub echo: bool,
    /// The sampler chain's parameters (llama.cpp's defaults; a builder's own sampler
    /// replaces them).
    pub sampling: SamplingConfig,
    /// Where streamed text is cut into chunks.
    pub flush_policy: FlushPolicy,
    /// Contrastive search instead of sampling, when set.
    pub contrastive: Option<ContrastiveSearch>,
}

impl Default for GenerationConfig {
    fn default() -> GenerationConfig {
        GenerationConfig {
            max_tokens: 128,
            min_tokens: 0,
            stop_strings: Vec::new(),
            stop_token_ids: Vec::new(),
            ignore_eos: false,
            seed: 0,
            logprobs: 0,
            echo: false,
            sampling: SamplingConfig::default(),
            flush_policy: FlushPolicy::EveryToken,
            contrastive: None,
        }
    }
}

impl GenerationConfig {
    /// The sampling parameters of a [`Preset`], the other parameters at their defaults.
    pub fn preset(preset: Preset) -> GenerationConfig {
        GenerationConfig {
            sampling: SamplingConfig::preset(preset),
            ..GenerationConfig::default()
        }
    }

    /// Greedy decoding: the most probable token every time ([`Preset::Deterministic`]).
    pub fn greedy() -> GenerationConfig {
        GenerationConfig::preset(Preset::Deterministic)
    }

    /// Whether the sampler this configuration builds always picks the most probable token.
    pub fn is_greedy(&self) -> bool {
        self.contrastive.is_none()
            && self.sampling.temperature <= 0.0
            && self.sampling.dynatemp_range <= 0.0
            && self.sampling.mirostat == crate::sampling::MirostatMode::Off
    }

    /// Sets the most new tokens.
    pub fn with_max_tokens(mut self, n: usize) -> GenerationConfig {
        self.max_tokens = n;
        self
    }

    /// Sets the fewest new tokens.
    pub fn with_min_tokens(mut self, n: usize) -> GenerationConfig {
        self.min_tokens = n;
        self
    }

    /// Adds stop strings.
    pub fn with_stop_strings<I, S>(mut self, stops: I) -> GenerationConfig
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.stop_strings.extend(stops.into_iter().map(Into::into));
        self
    }

    /// Adds stop tokens.
    pub fn with_stop_tokens(mut self, ids: impl IntoIterator<Item = u32>) -> GenerationConfig {
        self.stop_token_ids.extend(ids);
        self
    }

    /// Keeps going past end-of-generation tokens.
    pub fn ignoring_eos(mut self) -> GenerationConfig {
        self.ignore_eos = true;
        self
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u32) -> GenerationConfig {
        self.seed = seed;
        self
    }

    /// Records the top `n` log-probabilities of each generated token.
    pub fn with_logprobs(mut self, n: usize) -> GenerationConfig {
        self.logprobs = n;
        self
    }

    /// Starts the text with the prompt's text.
    pub fn with_echo(mut self, echo: bool) -> GenerationConfig {
        self.echo = echo;
        self
    }

    /// Sets the sampling parameters.
    pub fn with_sampling(mut self, sampling: SamplingConfig) -> GenerationConfig {
        self.sampling = sampling;
        self
    }

    /// Sets the flush policy of streamed text.
    pub fn with_flush_policy(mut self, policy: FlushPolicy) -> GenerationConfig {
        self.flush_policy = policy;
        self
    }

    /// Decodes by contrastive search instead of sampling.
    pub fn with_contrastive(mut self, search: ContrastiveSearch) -> GenerationConfig {
        self.contrastive = Some(search);
        self
    }

    /// Checks the parameters that do not belong to the sampler chain.
    ///
    /// ```
    /// use ziglama_infer::generator::{ContrastiveSearch, GenerationConfig};
    /// let bad = GenerationConfig::default().with_contrastive(ContrastiveSearch::new(1.5, 4));
    /// assert!(bad.validate().is_err());
    /// assert!(GenerationConfig::default().validate().is_ok());
    /// ```
    ///
    /// # Errors
    ///
    /// [`GenerationError::InvalidParameter`] for `min_tokens > max_tokens` or contrastive
    /// parameters out of range.
    pub fn validate(&self) -> Result<(), GenerationError> {
        if self.min_tokens > self.max_tokens {
            return Err(GenerationError::InvalidParameter {
                name: "min_tokens",
                reason: format!(
                    "{} is more than max_tokens ({})",
                    self.min_tokens, self.max_tokens
                ),
            });
        }
        if let Some(c) = &self.contrastive {
            c.validate()?;
        }
        Ok(())
    }
}
