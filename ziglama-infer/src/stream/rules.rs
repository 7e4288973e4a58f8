//! The stop rules of a generation: which tokens end it, how many it may make, the stop
//! strings its text is watched for, and the flag that cancels it.

use ziglama_model::tokenizer::Tokenizer;

use super::{Cancellation, StopReason};

/// When a generation stops.
///
/// Token rules are checked on each new token before its text joins the output
/// ([`check_token`](Self::check_token)); the limit and the cancellation flag before each new
/// token is asked for ([`check_before_next`](Self::check_before_next)); the stop strings are
/// watched in the text by a [`TextStream`](super::TextStream) built with them.
///
/// ```
/// use ziglama_infer::stream::{Cancellation, StopReason, StopRules};
///
/// let cancel = Cancellation::new();
/// let rules = StopRules::new()
///     .with_max_tokens(64)
///     .with_stop_tokens([13])
///     .with_stop_strings(["\n\n"])
///     .with_cancellation(cancel.clone());
/// assert_eq!(rules.check_before_next(10), None);
/// assert_eq!(rules.check_before_next(64), Some(StopReason::MaxTokens));
/// cancel.cancel();
/// assert_eq!(rules.check_before_next(10), Some(StopReason::Cancelled));
/// ```
#[derive(Clone, Debug, Default)]
pub struct StopRules {
    max_tokens: Option<usize>,
    stop_tokens: Vec<u32>,
    stop_strings: Vec<String>,
    ignore_end_of_generation: bool,
    cancellation: Option<Cancellation>,
}

impl StopRules {
    /// Stops only at the vocabulary's end-of-generation tokens.
    pub fn new() -> StopRules {
        StopRules::default()
    }

    /// Stops after `max_tokens` new tokens.
    pub fn with_max_tokens(mut self, max_tokens: usize) -> StopRules {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Also stops at these tokens (their text is not part of the output).
    pub fn with_stop_tokens(mut self, ids: impl IntoIterator<Item = u32>) -> StopRules {
        self.stop_tokens.extend(ids);
        self
    }

    /// Stops where the text reaches one of these strings (the output ends before it; empty
    /// strings are ignored). [`StopReason::StopString`] gives the index in this list.
    pub fn with_stop_strings<I, S>(mut self, stops: I) -> StopRules
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.stop_strings = stops.into_iter().map(Into::into).collect();
        self
    }

    /// Keeps generating past end-of-generation tokens (llama.cpp's `--ignore-eos`); their
    /// text becomes part of the output.
    pub fn ignoring_end_of_generation(mut self) -> StopRules {
        self.ignore_end_of_generation = true;
        self
    }

    /// Stops when this flag is raised, from any thread.
    pub fn with_cancellation(mut self, cancellation: Cancellation) -> StopRules {
        self.cancellation = Some(cancellation);
        self
    }

    /// The limit on new tokens.
    pub fn max_tokens(&self) -> Option<usize> {
        self.max_tokens
    }

    /// The caller's stop tokens.
    pub fn stop_tokens(&self) -> &[u32] {
        &self.stop_tokens
    }

    /// The stop strings, as given.
    pub fn stop_strings(&self) -> &[String] {
        &self.stop_strings
    }

    /// The cancellation flag, if one was given.
    pub fn cancellation(&self) -> Option<&Cancellation> {
        self.cancellation.as_ref()
    }

    /// Whether the generation must stop before asking for another token, having made
    /// `n_generated` so far: cancelled, or at the limit.
    pub fn check_before_next(&self, n_generated: usize) -> Option<StopReason> {
        if self.cancellation.as_ref().is_some_and(|c| c.is_cancelled()) {
            return Some(StopReason::Cancelled);
        }
        match self.max_tokens {
            Some(max) if n_generated >= max => Some(StopReason::MaxTokens),
            _ => None,
        }
    }

    /// Whether token `id`, just generated, ends the generation (an end-of-generation token
    /// of the vocabulary, or one of the caller's stop tokens). Such a token's text is not
    /// part of the output.
    ///
    /// ```no_run
    /// use ziglama_infer::model::{catalog::KnownModel, gguf::GgufFile, tokenizer::Tokenizer};
    /// use ziglama_infer::stream::{StopReason, StopRules};
    ///
    /// let tok = Tokenizer::from_gguf(&GgufFile::open(KnownModel::SmolLM2.ensure()?)?)?;
    /// let im_end = tok.eot().unwrap();
    /// assert_eq!(StopRules::new().check_token(&tok, im_end), Some(StopReason::EndOfGeneration(im_end)));
    /// assert_eq!(StopRules::new().ignoring_end_of_generation().check_token(&tok, im_end), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_token(&self, tokenizer: &Tokenizer, id: u32) -> Option<StopReason> {
        if !self.ignore_end_of_generation && tokenizer.is_eog(id) {
            Some(StopReason::EndOfGeneration(id))
        } else if self.stop_tokens.contains(&id) {
            Some(StopReason::StopToken(id))
        } else {
            None
        }
    }
}
