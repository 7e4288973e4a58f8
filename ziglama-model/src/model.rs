//! A loaded model: weights and hyperparameters, and the forward pass over a batch.
//!
//! [`Model`] is immutable once loaded and `Send + Sync`; everything that changes while a
//! sequence runs (the KV cache, work buffers) lives in a [`State`] the caller owns and passes
//! in. A forward pass takes a [`Batch`] of (token, position, sequence, wants-logits) entries,
//! as llama.cpp's `llama_batch`: a whole prompt in one pass, or one token per step.
//!
//! ```no_run
//! use ziglama_model::catalog::KnownModel;
//! use ziglama_model::model::{Batch, Model};
//! use ziglama_tensor::ThreadPool;
//!
//! let model = Model::load(KnownModel::SmolLM2.ensure()?)?;
//! let mut state = model.new_state(512, 1);
//! let pool = ThreadPool::new(2);
//! let prompt = [1u32, 9906, 28];
//! let logits = model.forward(&Batch::prompt(&prompt, 0, 0), &mut state, &pool)?;
//! let next = ziglama_model::model::argmax(&logits);
//! let logits = model.forward(&Batch::one(next as u32, prompt.len(), 0), &mut state, &pool)?;
//! assert_eq!(logits.len(), model.n_vocab());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod kv_cache;
mod layered_cache;
mod paged;
mod prefix;
mod sliding_window;
mod state_file;
mod storage;

use std::path::Path;

use ziglama_nn::block::BlockScratch;
use ziglama_nn::kv_cache::KeyRotation;
use ziglama_nn::norm::rms_norm_rows;
use ziglama_nn::KvCache;
use ziglama_tensor::matvec::matvecs;
use ziglama_tensor::{matmul, ThreadPool};

use crate::arch::{self, Hparams, Weights};
use crate::gguf::GgufFile;
use crate::{ModelError, Result};

pub use kv_cache::ContiguousKvCache;
pub use layered_cache::LayeredKvCache;
pub use paged::MultiSequenceKvCache;
pub use prefix::reuse_prefix;
pub use sliding_window::SlidingWindowKvCache;
pub use state_file::{load_sequence, save_sequence};
pub use storage::KvType;

/// One entry of a [`Batch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchEntry {
    /// The token id.
    pub token: u32,
    /// Its position in its sequence (0 for the first token).
    pub pos: usize,
    /// The sequence it belongs to.
    pub seq: usize,
    /// Whether the forward pass returns logits for it.
    pub logits: bool,
}

/// Tokens to run in one forward pass, possibly of several sequences.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// The entries, in order.
    pub entries: Vec<BatchEntry>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// `tokens` of sequence `seq` at positions `start..`, logits for the last one only.
    pub fn prompt(tokens: &[u32], start: usize, seq: usize) -> Batch {
        let n = tokens.len();
        Batch {
            entries: tokens
                .iter()
                .enumerate()
                .map(|(i, &token)| BatchEntry {
                    token,
                    pos: start + i,
                    seq,
                    logits: i + 1 == n,
                })
                .collect(),
        }
    }

    /// One token of sequence `seq` at `pos`, with logits (a decoding step).
    pub fn one(token: u32, pos: usize, seq: usize) -> Batch {
        Batch {
            entries: vec![BatchEntry {
                token,
                pos,
                seq,
                logits: true,
            }],
        }
    }

    /// Appends an entry.
    pub fn push(&mut self, entry: BatchEntry) {
        self.entries.push(entry);
    }

    /// Entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Per-sequence state of a model: the KV cache and work buffers. Owned by the caller.
///
/// The cache is any [`KvCache`]: [`Model::new_state`] gives a [`LayeredKvCache`] in `f16`
/// (the full context for global layers, the window for sliding-window layers), and
/// [`Model::new_state_with`] takes the caller's (another storage format, a paged
/// [`MultiSequenceKvCache`], a `Box<dyn KvCache + Send + Sync>`).
#[derive(Clone, Debug)]
pub struct State<C = LayeredKvCache> {
    /// The KV cache.
    pub cache: C,
    scratch: BlockScratch,
    x: Vec<f32>,
}

impl<C: KvCache> State<C> {
    /// Positions each sequence can hold.
    pub fn n_ctx(&self) -> usize {
        self.cache.n_ctx()
    }

    /// Forgets every position of `seq`, to run a new sequence in its place (a sequence the
    /// cache does not have is left alone).
    pub fn clear(&mut self, seq: usize) {
        // The only error is a sequence out of range, which holds nothing to forget.
        let _ = self.cache.remove_positions(seq, 0..usize::MAX);
    }
}

/// What a forward pass returns for the entries of a batch that want logits, in batch order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outputs {
    /// One row of [`Model::n_vocab`] logits per entry.
    pub logits: Vec<f32>,
    /// One row of [`Model::n_embd`] values per entry: the last hidden state, after the final
    /// norm.
    pub hidden: Vec<f32>,
}

/// A model ready to run: hyperparameters and weights. Immutable and `Send + Sync`.
#[derive(Debug)]
pub struct Model {
    hparams: Hparams,
    weights: Weights,
    file: GgufFile,
}

/// The index of the largest value (the first one on ties), 0 for an empty slice.
///
/// ```
/// assert_eq!(ziglama_model::model::argmax(&[0.5, 2.0, 2.0, -1.0]), 1);
/// ```
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

impl Model {
    /// Opens a GGUF file and builds the model its metadata describes.
    ///
    /// # Errors
    ///
    /// The file cannot be read, its architecture is not supported, or a hyperparameter or
    /// tensor is missing or wrong (see [`Model::from_gguf`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        Model::from_gguf(GgufFile::open(path)?)
    }

    /// Builds the model `file`'s metadata describes, checking every tensor's shape.
    ///
    /// # Errors
    ///
    /// [`ModelError::UnknownArchitecture`] for an architecture not in
    /// [`arch::SUPPORTED`]; a missing or mistyped hyperparameter; [`ModelError::TensorNotFound`]
    /// or [`ModelError::TensorShape`] for a missing or misshapen tensor.
    pub fn from_gguf(file: GgufFile) -> Result<Model> {
        let (hparams, weights) = arch::load(&file)?;
        Ok(Model {
            hparams,
            weights,
            file,
        })
    }

    /// The GGUF file the model was loaded from (metadata, tokenizer data).
    pub fn gguf(&self) -> &GgufFile {
        &self.file
    }

    /// The hyperparameters.
    pub fn hparams(&self) -> &Hparams {
        &self.hparams
    }

    /// The weights.
    pub fn weights(&self) -> &Weights {
        &self.weights
    }

    /// Width of the residual stream: the length of each hidden-state row.
    pub fn n_embd(&self) -> usize {
        self.hparams.n_embd
    }

    /// Vocabulary size: the length of each logits row.
    pub fn n_vocab(&self) -> usize {
        self.hparams.n_vocab
    }

    /// Context length the model was trained with.
    pub fn n_ctx_train(&self) -> usize {
        self.hparams.n_ctx_train
    }

    /// A fresh state for `n_seq` sequences of up to `n_ctx` positions each: global layers
    /// cache `n_ctx` positions, sliding-window layers their window.
    pub fn new_state(&self, n_ctx: usize, n_seq: usize) -> State {
        self.new_state_with(LayeredKvCache::new(
            &self.hparams.windows(),
            n_seq,
            n_ctx,
            self.kv_row_len(),
        ))
    }

    /// A fresh state with the caller's cache, which must have [`Model::kv_row_len`] values
    /// per row and one layer per block (checked by [`Model::forward`]).
    ///
    /// ```no_run
    /// use ziglama_model::catalog::KnownModel;
    /// use ziglama_model::model::{KvType, LayeredKvCache, Model};
    /// let model = Model::load(KnownModel::SmolLM2.ensure()?)?;
    /// let cache = LayeredKvCache::with_type(
    ///     &model.hparams().windows(), 1, 512, model.kv_row_len(), KvType::Q8_0)?;
    /// let state = model.new_state_with(cache);
    /// assert_eq!(state.n_ctx(), 512);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new_state_with<C: KvCache>(&self, cache: C) -> State<C> {
        State {
            cache,
            scratch: BlockScratch::default(),
            x: Vec::new(),
        }
    }

    /// Values in one key or value row of the KV cache: `n_head_kv * head_dim`.
    pub fn kv_row_len(&self) -> usize {
        self.hparams
            .layers
            .first()
            .map_or(0, |c| c.attention.n_head_kv * c.attention.head_dim)
    }

    /// What a cache needs to re-rotate its keys when positions move
    /// ([`KvCache::shift_positions`]): every layer's RoPE and the head width.
    pub fn key_rotation(&self) -> KeyRotation {
        let layers = &self.hparams.layers;
        KeyRotation::new(
            layers.iter().map(|c| c.rope.clone()).collect(),
            layers.first().map_or(0, |c| c.attention.head_dim),
        )
    }

    /// Runs `batch` through the model, storing its keys and values in `state`, and returns
    /// the logits of the entries that want them, one row of [`Model::n_vocab`] values each,
    /// in batch order.
    ///
    /// Every entry at position `p` of sequence `s` attends to positions `0..=p` of `s`; those
    /// before this batch must have been run already.
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidBatch`] for a token outside the vocabulary, a position past the
    /// state's context or a sequence it does not have (checked before anything runs), or an
    /// error of the layers below.
    pub fn forward<C: KvCache + Sync>(
        &self,
        batch: &Batch,
        state: &mut State<C>,
        pool: &ThreadPool,
    ) -> Result<Vec<f32>> {
        self.forward_with_hidden(batch, state, pool)
            .map(|out| out.logits)
    }

    /// [`Model::forward`], also returning the last hidden state of each entry that wants
    /// logits: the residual stream after the final norm, the vector the output projection
    /// turns into logits (what contrastive search compares). It costs nothing more than
    /// `forward`, which computes it anyway.
    ///
    /// # Errors
    ///
    /// As [`Model::forward`].
    pub fn forward_with_hidden<C: KvCache + Sync>(
        &self,
        batch: &Batch,
        state: &mut State<C>,
        pool: &ThreadPool,
    ) -> Result<Outputs> {
        let cache = &state.cache;
        if cache.n_layer() != self.hparams.layers.len() || cache.row_len() != self.kv_row_len() {
            return Err(ziglama_nn::NnError::Shape {
                what: "KV cache".into(),
                expected: format!(
                    "{} layers of rows of {} values",
                    self.hparams.layers.len(),
                    self.kv_row_len()
                ),
                found: format!(
                    "{} layers of rows of {} values",
                    cache.n_layer(),
                    cache.row_len()
                ),
            }
            .into());
        }
        for (index, e) in batch.entries.iter().enumerate() {
            let reason = if e.token as usize >= self.n_vocab() {
                format!(
                    "token {} is outside the vocabulary of {}",
                    e.token,
                    self.n_vocab()
                )
            } else if e.pos >= state.n_ctx() {
                format!(
                    "position {} is past the context of {} positions",
                    e.pos,
                    state.n_ctx()
                )
            } else if e.seq >= state.cache.n_seq() {
                format!(
                    "sequence {} does not exist (the state has {})",
                    e.seq,
                    state.cache.n_seq()
                )
            } else {
                continue;
            };
            return Err(ModelError::InvalidBatch { index, reason });
        }
        let n = batch.len();
        let e = self.hparams.n_embd;
        let State { cache, scratch, x } = state;
        x.resize(n * e, 0.0);
        for (i, entry) in batch.entries.iter().enumerate() {
            self.weights
                .token_embd
                .dequantize_row_into(entry.token as usize, &mut x[i * e..][..e])
                .map_err(|source| ModelError::Tensor {
                    tensor: "token_embd.weight".into(),
                    source,
                })?;
        }
        let scale = self.hparams.embedding_scale;
        if scale != 1.0 {
            x.iter_mut().for_each(|v| *v *= scale);
        }
        let positions: Vec<usize> = batch.entries.iter().map(|e| e.pos).collect();
        let seqs: Vec<usize> = batch.entries.iter().map(|e| e.seq).collect();
        let cache: &mut (dyn KvCache + Sync) = cache;
        for (il, (block, config)) in self
            .weights
            .blocks
            .iter()
            .zip(&self.hparams.layers)
            .enumerate()
        {
            block.forward(config, il, x, &positions, &seqs, cache, scratch, pool)?;
        }
        let mut out_rows = Vec::new();
        for (i, entry) in batch.entries.iter().enumerate() {
            if entry.logits {
                out_rows.extend_from_slice(&x[i * e..][..e]);
            }
        }
        rms_norm_rows(
            &mut out_rows,
            &self.weights.output_norm,
            self.hparams.layers.first().map_or(0.0, |c| c.rms_eps),
        );
        let n_out = out_rows.len() / e.max(1);
        let mut logits = vec![0f32; n_out * self.n_vocab()];
        if n_out > 0 {
            // One row (decoding): the matrix-vector path, same outputs as `matmul`'s.
            let output = &self.weights.output;
            if n_out == 1 {
                matvecs(&[output], &out_rows, &mut [&mut logits], pool)
            } else {
                matmul(output, &out_rows, &mut logits, pool)
            }
            .map_err(|source| ModelError::Tensor {
                tensor: "output.weight".into(),
                source,
            })?;
        }
        if let Some(c) = self.hparams.final_logit_softcapping {
            let inv = 1.0 / c;
            logits.iter_mut().for_each(|v| *v = (*v * inv).tanh() * c);
        }
        Ok(Outputs {
            logits,
            hidden: out_rows,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn model_is_send_and_sync() {
        assert_send_sync::<Model>();
    }

    #[test]
    fn prompt_batch_wants_last_logits_only() {
        let b = Batch::prompt(&[5, 6, 7], 10, 2);
        assert_eq!(b.len(), 3);
        assert_eq!(b.entries[0].pos, 10);
        assert_eq!(b.entries[2].seq, 2);
        assert_eq!(
            b.entries.iter().map(|e| e.logits).collect::<Vec<_>>(),
            [false, false, true]
        );
    }
}
