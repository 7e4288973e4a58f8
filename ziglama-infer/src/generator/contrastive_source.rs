//! Contrastive search run on a model: the `top_k` candidates of each step go through the
//! model as one batch, one sequence each, all holding the same prefix.

use std::time::Instant;

use ziglama_model::model::{Batch, BatchEntry, Model, State};
use ziglama_tensor::ThreadPool;

use crate::stream::TokenSource;

use super::contrastive::{contrastive_scores, top_k_probabilities};
use super::source::{log_sum_exp, step_logprobs, Steps};
use super::{ContrastiveSearch, GenerationError, TokenLogprobs};

/// Contrastive search over `model`, in a state of its own with `top_k` sequences that all
/// hold the same prefix.
///
/// Each step feeds the `top_k` candidates at the next position, candidate `i` in sequence
/// `i` (one batch), which gives each candidate's hidden state `h_v` and its next logits.
/// The winner's position is then held by its own sequence only; the next step's batch first
/// writes the winner into the others (rows without logits), then the new candidates. Only
/// [`Model::forward_with_hidden`] is used, whatever the KV cache. The hidden states of the
/// prompt (all its positions) and of each chosen token form the context the degeneration
/// penalty compares with.
pub(crate) struct ContrastiveSource<'a> {
    pub(super) model: &'a Model,
    pub(super) pool: &'a ThreadPool,
    pub(super) search: ContrastiveSearch,
    pub(super) state: State,
    /// The prompt, until it has run.
    pub(super) prompt: Vec<u32>,
    /// Positions every sequence holds (but the last one, which only `winner`'s holds
    /// correctly when `winner` is set).
    pub(super) n_past: usize,
    /// The last token chosen and the sequence that holds it, until the others get it.
    pub(super) winner: Option<(u32, usize)>,
    /// The logits for the next position.
    pub(super) logits: Vec<f32>,
    /// One hidden state per position held, row after row.
    pub(super) context: Vec<f32>,
    pub(super) steps: Steps,
}

impl<'a> ContrastiveSource<'a> {
    /// A source for `prompt`, with a state of `n_ctx` positions.
    pub(super) fn new(
        model: &'a Model,
        pool: &'a ThreadPool,
        search: ContrastiveSearch,
        n_ctx: usize,
        prompt: Vec<u32>,
        steps: Steps,
    ) -> ContrastiveSource<'a> {
        ContrastiveSource {
            model,
            pool,
            search,
            state: model.new_state(n_ctx, search.top_k.max(1)),
            prompt,
            n_past: 0,
            winner: None,
            logits: Vec::new(),
            context: Vec::new(),
            steps,
        }
    }

    /// Runs the prompt in every sequence (hidden states for every position of sequence 0).
    fn prefill(&mut self) -> Result<(), GenerationError> {
        let t0 = Instant::now();
        let prompt = std::mem::take(&mut self.prompt);
        let mut batch = Batch::prompt(&prompt, 0, 0);
        batch.entries.iter_mut().for_each(|e| e.logits = true);
        for seq in 1..self.search.top_k {
            for (pos, &token) in prompt.iter().enumerate() {
                batch.push(BatchEntry {
                    token,
                    pos,
                    seq,
                    logits: false,
                });
            }
        }
        let out = self
            .model
            .forward_with_hidden(&batch, &mut self.state, self.pool)?;
        let n_vocab = self.model.n_vocab();
        self.logits = out.logits[(prompt.len() - 1) * n_vocab..].to_vec();
        self.context = out.hidden;
        self.n_past = prompt.len();
        self.steps.prompt_done(prompt.len(), t0.elapsed());
        Ok(())
    }
}

impl TokenSource for ContrastiveSource<'_> {
    type Error = GenerationError;

    fn next_token(&mut self) -> Result<Option<u32>, GenerationError> {
        let t0 = Instant::now();
        if !self.prompt.is_empty() {
            if self.prompt.len() > self.state.n_ctx() {
                return Ok(None);
            }
            self.prefill()?;
        }
        if self.n_past >= self.state.n_ctx() {
            return Ok(None);
        }
        let lse = (self.steps.n_logprobs > 0).then(|| log_sum_exp(&self.logits));
        self.steps.mask(&mut self.logits);
        let top = top_k_probabilities(&self.logits, self.search.top_k);
        if top.is_empty() {
            return Err(crate::sampling::SamplingError::EmptyCandidates {
                sampler: "contrastive",
            }
            .into());
        }
        let mut batch = Batch::new();
        if let Some((token, holder)) = self.winner.take() {
            for seq in (0..self.search.top_k).filter(|&s| s != holder) {
                batch.push(BatchEntry {
                    token,
                    pos: self.n_past - 1,
                    seq,
                    logits: false,
                });
            }
        }
        for (seq, &(token, _)) in top.iter().enumerate() {
            batch.push(BatchEntry {
                token,
                pos: self.n_past,
                seq,
                logits: true,
            });
        }
        let out = self
            .model
            .forward_with_hidden(&batch, &mut self.state, self.pool)?;
        let probs: Vec<f64> = top.iter().map(|t| t.1).collect();
        let dim = self.model.n_embd();
        let scores = contrastive_scores(
            &probs,
            &out.hidden,
            &self.context,
            dim,
            self.search.penalty_alpha,
        );
        let mut best = 0;
        for (i, &s) in scores.iter().enumerate() {
            if s > scores[best] {
                best = i;
            }
        }
        let token = top[best].0;
        self.winner = Some((token, best));
        let logprobs = lse.map(|lse| {
            let ids: Vec<u32> = top.iter().map(|t| t.0).collect();
            TokenLogprobs {
                token,
                logprob: self.logits[token as usize] - lse,
                top: Some(step_logprobs(
                    token,
                    &self.logits,
                    &ids,
                    self.steps.n_logprobs,
                )),
            }
        });
        let n_vocab = self.model.n_vocab();
        self.logits = out.logits[best * n_vocab..(best + 1) * n_vocab].to_vec();
        self.context
            .extend_from_slice(&out.hidden[best * dim..(best + 1) * dim]);
        self.n_past += 1;
        self.steps.token_done(t0.elapsed(), logprobs);
        Ok(Some(token))
    }
}
