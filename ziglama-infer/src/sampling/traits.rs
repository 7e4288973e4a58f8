//! The two traits of the sampling layer: [`LogitProcessor`] transforms a candidate set,
//! [`Sampler`] selects a token from one.

use super::{Candidates, SamplingError, StepLogprobs, TokenId};

/// Transforms a candidate set: masks, reorders, shrinks, rescales (top-k, top-p, penalties,
/// temperature, a grammar mask, ...).
///
/// Stateful processors (penalties over the last tokens, DRY, no-repeat-n-gram) learn the
/// tokens actually chosen through [`LogitProcessor::accept`] and forget them on
/// [`LogitProcessor::reset`]. The trait is object-safe: a chain holds `Box<dyn LogitProcessor>`.
///
/// ```
/// use ziglama_infer::sampling::{Candidates, LogitProcessor, SamplingError};
/// /// Forbids odd token ids.
/// struct EvenOnly;
/// impl LogitProcessor for EvenOnly {
///     fn name(&self) -> &str { "even-only" }
///     fn apply(&mut self, c: &mut Candidates) -> Result<(), SamplingError> {
///         c.retain(|c| c.id % 2 == 0);
///         Ok(())
///     }
/// }
/// let mut c = Candidates::from_logits(&[1.0, 5.0, 2.0])?;
/// EvenOnly.apply(&mut c)?;
/// assert_eq!(c.len(), 2);
/// # Ok::<(), SamplingError>(())
/// ```
pub trait LogitProcessor: Send {
    /// A short name, as in llama.cpp's sampler names ("top-k", "min-p", ...).
    fn name(&self) -> &str;

    /// Transforms the candidates of one step.
    ///
    /// # Errors
    /// When the set cannot be processed (empty where a distribution is needed, all masked).
    fn apply(&mut self, candidates: &mut Candidates) -> Result<(), SamplingError>;

    /// Learns that `token` was chosen (default: nothing to learn).
    fn accept(&mut self, _token: TokenId) {}

    /// Forgets every token accepted so far (default: nothing to forget).
    fn reset(&mut self) {}

    /// Whether [`LogitProcessor::apply`] would leave any candidate set exactly as it is right
    /// now (disabled by its parameters, nothing learned yet). A chain may then skip it.
    /// The default, `false`, is always safe.
    fn is_identity(&self) -> bool {
        false
    }

    /// Fills `out` from one step's raw logits and applies this processor, in one pass, when
    /// that is faster than [`Candidates::fill_from_logits`] followed by
    /// [`LogitProcessor::apply`] (top-k is: it never writes the whole vocabulary). Must leave
    /// `out` exactly as those two calls would. `None`, the default, means "not supported".
    fn apply_to_logits(
        &mut self,
        _logits: &[f32],
        _out: &mut Candidates,
    ) -> Option<Result<(), SamplingError>> {
        None
    }
}

/// Selects one token: from a candidate set ([`Sampler::select`]) or straight from one step's
/// logits ([`Sampler::sample`]).
///
/// Greedy, dist and the Mirostats are samplers; so is a [`SamplerChain`](super::SamplerChain),
/// a chain of processors ending in a sampler. The trait is object-safe and `Send`, so a text
/// generator can hold a `Box<dyn Sampler>`; after each step it calls [`Sampler::accept`] with
/// the token it kept.
///
/// ```
/// use ziglama_infer::sampling::{Greedy, Sampler};
/// let mut s: Box<dyn Sampler> = Box::new(Greedy::new());
/// assert_eq!(s.sample(&[0.1, 0.9, 0.3])?, 1);
/// # Ok::<(), ziglama_infer::sampling::SamplingError>(())
/// ```
pub trait Sampler: Send {
    /// A short name ("greedy", "dist", "chain", ...).
    fn name(&self) -> &str;

    /// Chooses a token from the candidates, recording its position with
    /// [`Candidates::set_selected`]. A sampler may transform the set first (Mirostat does).
    ///
    /// # Errors
    /// [`SamplingError::EmptyCandidates`], [`SamplingError::AllMasked`], or a processor's error.
    fn select(&mut self, candidates: &mut Candidates) -> Result<TokenId, SamplingError>;

    /// Learns that `token` was kept (stateful samplers and chains).
    fn accept(&mut self, _token: TokenId) {}

    /// Returns to the state just after construction (seeds included).
    fn reset(&mut self) {}

    /// Chooses a token from one step's logits (one per vocabulary entry).
    ///
    /// The default builds a fresh candidate set; [`SamplerChain`](super::SamplerChain)
    /// overrides it to reuse its buffer and keep the set for [`Sampler::candidates`].
    ///
    /// # Errors
    /// [`SamplingError::NonFiniteLogit`] for NaN or `+inf` logits, or whatever `select` says.
    fn sample(&mut self, logits: &[f32]) -> Result<TokenId, SamplingError> {
        let mut c = Candidates::from_logits(logits)?;
        self.select(&mut c)
    }

    /// The candidate set of the last [`Sampler::sample`] call, if the sampler keeps it.
    fn candidates(&self) -> Option<&Candidates> {
        None
    }

    /// The log-probabilities of the last [`Sampler::sample`] call, if the sampler records them
    /// (a [`SamplerChain`](super::SamplerChain) built [`with_logprobs`](super::SamplerChain::with_logprobs)).
    fn logprobs(&self) -> Option<&StepLogprobs> {
        None
    }
}

impl<S: Sampler + ?Sized> Sampler for Box<S> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn select(&mut self, candidates: &mut Candidates) -> Result<TokenId, SamplingError> {
        (**self).select(candidates)
    }
    fn accept(&mut self, token: TokenId) {
        (**self).accept(token)
    }
    fn reset(&mut self) {
        (**self).reset()
    }
    fn sample(&mut self, logits: &[f32]) -> Result<TokenId, SamplingError> {
        (**self).sample(logits)
    }
    fn candidates(&self) -> Option<&Candidates> {
        (**self).candidates()
    }
    fn logprobs(&self) -> Option<&StepLogprobs> {
        (**self).logprobs()
    }
}

impl<P: LogitProcessor + ?Sized> LogitProcessor for Box<P> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn apply(&mut self, candidates: &mut Candidates) -> Result<(), SamplingError> {
        (**self).apply(candidates)
    }
    fn accept(&mut self, token: TokenId) {
        (**self).accept(token)
    }
    fn reset(&mut self) {
        (**self).reset()
    }
    fn is_identity(&self) -> bool {
        (**self).is_identity()
    }
    fn apply_to_logits(
        &mut self,
        logits: &[f32],
        out: &mut Candidates,
    ) -> Option<Result<(), SamplingError>> {
        (**self).apply_to_logits(logits, out)
    }
}
