//! The model and its sampler as a [`TokenSource`]: the prompt in one batch, then one token
//! per decoding step.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ziglama_model::model::{Batch, LayeredKvCache, Model, State};
use ziglama_nn::KvCache;
use ziglama_tensor::ThreadPool;

use crate::sampling::{top_logprobs, Sampler, StepLogprobs};
use crate::stream::TokenSource;

use super::contrastive_source::ContrastiveSource;
use super::{GenerationError, TokenLogprobs};

/// What a source records while it runs, read when the generation ends.
#[derive(Debug, Default)]
pub(super) struct Record {
    /// Prompt tokens run, and the time of their pass (set once the prompt has run).
    pub(super) prompt: Option<(usize, Duration)>,
    /// From the start to the first token.
    pub(super) first_token: Option<Duration>,
    /// One per token made.
    pub(super) latencies: Vec<Duration>,
    /// One per token made, when asked for.
    pub(super) logprobs: Vec<TokenLogprobs>,
}

/// What every source needs besides the model: the step rules and the shared record.
pub(super) struct Steps {
    /// When the generation started.
    pub(super) started: Instant,
    /// Tokens masked while fewer than `min_tokens` have been made.
    pub(super) masked: Vec<u32>,
    /// Fewest new tokens.
    pub(super) min_tokens: usize,
    /// Top log-probabilities to record (0: none).
    pub(super) n_logprobs: usize,
    /// Tokens made so far.
    pub(super) n_generated: usize,
    /// Shared with whoever reads the record at the end.
    pub(super) record: Rc<RefCell<Record>>,
}

impl Steps {
    /// Masks the stop tokens while too few tokens have been made.
    pub(super) fn mask(&self, logits: &mut [f32]) {
        if self.n_generated < self.min_tokens {
            for &id in &self.masked {
                if let Some(l) = logits.get_mut(id as usize) {
                    *l = f32::NEG_INFINITY;
                }
            }
        }
    }

    /// Records the prompt's pass.
    pub(super) fn prompt_done(&self, n_tokens: usize, time: Duration) {
        self.record.borrow_mut().prompt = Some((n_tokens, time));
    }

    /// Records token `token`, made in `latency`, with its log-probabilities.
    pub(super) fn token_done(&mut self, latency: Duration, logprobs: Option<TokenLogprobs>) {
        let mut record = self.record.borrow_mut();
        if record.first_token.is_none() {
            record.first_token = Some(self.started.elapsed());
        }
        record.latencies.push(latency);
        record.logprobs.extend(logprobs);
        self.n_generated += 1;
    }
}

/// `ln sum exp(logits)`, skipping NaNs (`-inf` when nothing is finite).
pub(super) fn log_sum_exp(logits: &[f32]) -> f32 {
    let max = logits
        .iter()
        .copied()
        .filter(|l| !l.is_nan())
        .fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return max;
    }
    let sum: f64 = logits
        .iter()
        .filter(|l| !l.is_nan())
        .map(|&l| f64::from(l - max).exp())
        .sum();
    max + sum.ln() as f32
}

/// The model stepped by a sampler: each call runs what is pending (the prompt, or the last
/// token) through the model and samples the next token from the logits.
pub(super) struct SampledSource<'a, C = LayeredKvCache> {
    pub(super) model: &'a Model,
    pub(super) pool: &'a ThreadPool,
    pub(super) state: &'a mut State<C>,
    /// The tokens whose keys and values sequence 0 of `state` holds, at positions `0..`.
    pub(super) cached: &'a mut Vec<u32>,
    pub(super) sampler: &'a mut dyn Sampler,
    /// Tokens to run before the next sampling step (the rest of the prompt, then the last
    /// token made).
    pub(super) pending: Vec<u32>,
    pub(super) steps: Steps,
}

impl<C: KvCache + Sync> TokenSource for SampledSource<'_, C> {
    type Error = GenerationError;

    fn next_token(&mut self) -> Result<Option<u32>, GenerationError> {
        let t0 = Instant::now();
        let n_past = self.cached.len();
        if n_past + self.pending.len() > self.state.n_ctx() {
            return Ok(None);
        }
        let batch = Batch::prompt(&self.pending, n_past, 0);
        let mut logits = self.model.forward(&batch, self.state, self.pool)?;
        if self.steps.n_generated == 0 {
            self.steps.prompt_done(self.pending.len(), t0.elapsed());
        }
        self.cached.append(&mut self.pending);
        let lse = (self.steps.n_logprobs > 0).then(|| log_sum_exp(&logits));
        self.steps.mask(&mut logits);
        let token = self.sampler.sample(&logits)?;
        self.sampler.accept(token);
        self.pending.push(token);
        let logprobs = lse.map(|lse| TokenLogprobs {
            token,
            logprob: logits
                .get(token as usize)
                .map_or(f32::NEG_INFINITY, |l| l - lse),
            top: self.sampler.logprobs().cloned(),
        });
        self.steps.token_done(t0.elapsed(), logprobs);
        Ok(Some(token))
    }
}

/// The raw log-probabilities of one step for a source without a sampler chain: the top-`n`
/// of `logits`, and of the candidates' logits for the final distribution.
pub(super) fn step_logprobs(
    token: u32,
    logits: &[f32],
    candidates: &[u32],
    n: usize,
) -> StepLogprobs {
    let raw = top_logprobs(logits.iter().enumerate().map(|(i, &l)| (i as u32, l)), n);
    let final_ = top_logprobs(
        candidates.iter().map(|&id| {
            (
                id,
                logits
                    .get(id as usize)
                    .copied()
                    .unwrap_or(f32::NEG_INFINITY),
            )
        }),
        n,
    );
    StepLogprobs { token, raw, final_ }
}

/// The source a generation runs: sampling, or contrastive search.
pub(super) enum ModelSource<'a, C = LayeredKvCache> {
    /// A sampler chooses each token.
    Sampled(SampledSource<'a, C>),
    /// Contrastive search chooses each token.
    Contrastive(Box<ContrastiveSource<'a>>),
}

impl<C: KvCache + Sync> TokenSource for ModelSource<'_, C> {
    type Error = GenerationError;

    fn next_token(&mut self) -> Result<Option<u32>, GenerationError> {
        match self {
            ModelSource::Sampled(s) => s.next_token(),
            ModelSource::Contrastive(s) => s.next_token(),
        }
    }
}
