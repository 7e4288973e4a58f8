//! A chain of logit processors ending in a selector: itself a [`Sampler`].

use super::logprobs::{top_logprobs, StepLogprobs};
use super::{Candidates, LogitProcessor, Sampler, SamplingError, TokenId};

/// Processors applied in order, then a selector; the chain is a [`Sampler`] itself, owns the
/// candidate buffer it reuses from step to step, and forwards `accept`/`reset` to every part.
///
/// ```
/// use ziglama_infer::sampling::{Dist, MinP, Sampler, SamplerChain, Temperature, TopK};
/// let mut chain = SamplerChain::new(Dist::new(42))
///     .with(TopK::new(40))
///     .with(MinP::new(0.05, 1)?)
///     .with(Temperature::new(0.8)?);
/// let logits = [0.0, 4.0, 3.5, -2.0];
/// let token = chain.sample(&logits)?;
/// chain.accept(token);
/// assert!(token == 1 || token == 2);
/// assert_eq!(chain.candidates().unwrap().len(), 2); // min-p dropped the others
/// # Ok::<(), ziglama_infer::sampling::SamplingError>(())
/// ```
pub struct SamplerChain {
    processors: Vec<Box<dyn LogitProcessor>>,
    selector: Box<dyn Sampler>,
    candidates: Candidates,
    n_logprobs: usize,
    logprobs: Option<StepLogprobs>,
}

impl SamplerChain {
    /// A chain with no processors yet, ending in `selector`.
    pub fn new(selector: impl Sampler + 'static) -> Self {
        Self::from_boxed(Vec::new(), Box::new(selector))
    }

    /// A chain from already boxed parts.
    pub fn from_boxed(
        processors: Vec<Box<dyn LogitProcessor>>,
        selector: Box<dyn Sampler>,
    ) -> Self {
        Self {
            processors,
            selector,
            candidates: Candidates::new(),
            n_logprobs: 0,
            logprobs: None,
        }
    }

    /// Appends a processor (applied after those already there).
    pub fn with(mut self, processor: impl LogitProcessor + 'static) -> Self {
        self.processors.push(Box::new(processor));
        self
    }

    /// Appends a processor in place.
    pub fn push(&mut self, processor: Box<dyn LogitProcessor>) {
        self.processors.push(processor);
    }

    /// Asks [`Sampler::sample`] to record the top-`n` log-probabilities of the raw and of the
    /// final distribution at each step (0, the default, records nothing and costs nothing).
    pub fn with_logprobs(mut self, n: usize) -> Self {
        self.n_logprobs = n;
        self
    }

    /// The processors, in order.
    pub fn processors(&self) -> &[Box<dyn LogitProcessor>] {
        &self.processors
    }

    /// The selector at the end.
    pub fn selector(&self) -> &dyn Sampler {
        &*self.selector
    }

    /// Applies the processors only (no selection) to `candidates`.
    ///
    /// # Errors
    /// The first processor's error.
    pub fn apply_processors(&mut self, candidates: &mut Candidates) -> Result<(), SamplingError> {
        for p in &mut self.processors {
            p.apply(candidates)?;
        }
        Ok(())
    }
}

impl Sampler for SamplerChain {
    fn name(&self) -> &str {
        "chain"
    }

    fn select(&mut self, candidates: &mut Candidates) -> Result<TokenId, SamplingError> {
        self.apply_processors(candidates)?;
        self.selector.select(candidates)
    }

    fn accept(&mut self, token: TokenId) {
        for p in &mut self.processors {
            p.accept(token);
        }
        self.selector.accept(token);
    }

    fn reset(&mut self) {
        for p in &mut self.processors {
            p.reset();
        }
        self.selector.reset();
    }

    fn sample(&mut self, logits: &[f32]) -> Result<TokenId, SamplingError> {
        let raw = if self.n_logprobs > 0 {
            Some(top_logprobs(
                logits.iter().enumerate().map(|(i, &l)| (i as TokenId, l)),
                self.n_logprobs,
            ))
        } else {
            None
        };
        // Leading processors that would change nothing are skipped; the first one that can
        // work on the raw logits (top-k) fills the candidate set itself, in one pass.
        let first = self
            .processors
            .iter()
            .position(|p| !p.is_identity())
            .unwrap_or(self.processors.len());
        let mut rest = first;
        match self.processors.get_mut(first) {
            Some(p) => match p.apply_to_logits(logits, &mut self.candidates) {
                Some(result) => {
                    result?;
                    rest += 1;
                }
                None => self.candidates.fill_from_logits(logits)?,
            },
            None => self.candidates.fill_from_logits(logits)?,
        }
        for p in &mut self.processors[rest..] {
            p.apply(&mut self.candidates)?;
        }
        let token = self.selector.select(&mut self.candidates)?;
        if let Some(raw) = raw {
            let c = &self.candidates;
            let fin = top_logprobs(c.iter().map(|c| (c.id, c.logit)), self.n_logprobs);
            self.logprobs = Some(StepLogprobs {
                token,
                raw,
                final_: fin,
            });
        }
        Ok(token)
    }

    fn candidates(&self) -> Option<&Candidates> {
        Some(&self.candidates)
    }

    /// The log-probabilities recorded by the last [`Sampler::sample`] call, when asked for
    /// with [`SamplerChain::with_logprobs`].
    fn logprobs(&self) -> Option<&StepLogprobs> {
        self.logprobs.as_ref()
    }
}

impl std::fmt::Debug for SamplerChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.processors.iter().map(|p| p.name()).collect();
        f.debug_struct("SamplerChain")
            .field("processors", &names)
            .field("selector", &self.selector.name())
            .finish()
    }
}
