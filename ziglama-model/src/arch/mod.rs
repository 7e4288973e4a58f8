//! Model architectures, each built from GGUF metadata alone.
//!
//! An architecture describes what differs: it reads its hyperparameters into one
//! [`BlockConfig`] per layer and names the optional tensors its blocks have; the block code
//! that runs them is shared (`ziglama_nn::block`).
//!
//! - [`llama`]: the LLaMA family (LLaMA 1-3, SmolLM2, Mistral without sliding windows, ...).
//! - [`gemma3`]: Gemma 3, with sliding-window layers.

pub mod gemma3;
mod hparams;
pub mod llama;
mod weights;

use ziglama_nn::block::{BlockConfig, BlockWeights};
use ziglama_tensor::Tensor;

use crate::gguf::GgufFile;
use crate::{ModelError, Result};

/// The architectures (`general.architecture`) this crate runs.
pub const SUPPORTED: &str = "llama, gemma3";

/// Hyperparameters of a model, read from its GGUF metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct Hparams {
    /// `general.architecture`.
    pub architecture: String,
    /// Transformer blocks (`block_count`).
    pub n_layer: usize,
    /// Context length the model was trained with (`context_length`).
    pub n_ctx_train: usize,
    /// Vocabulary size (rows of `token_embd.weight`).
    pub n_vocab: usize,
    /// Width of the residual stream (`embedding_length`).
    pub n_embd: usize,
    /// The configuration of each block, in order.
    pub layers: Vec<BlockConfig>,
    /// Factor the token embeddings are multiplied by (`sqrt(n_embd)` for Gemma, else 1).
    pub embedding_scale: f32,
    /// `c` of the final `c * tanh(logits / c)` (`final_logit_softcapping`), if any.
    pub final_logit_softcapping: Option<f32>,
}

impl Hparams {
    /// The sliding window of each layer (`None` for a global layer): what the KV cache of
    /// each layer has to hold.
    ///
    /// ```no_run
    /// use ziglama_model::catalog::KnownModel;
    /// use ziglama_model::model::Model;
    /// let model = Model::load(KnownModel::Gemma3.ensure()?)?;
    /// let windows = model.hparams().windows();
    /// assert_eq!(windows[0], Some(512));
    /// assert_eq!(windows[5], None); // every sixth layer is global
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn windows(&self) -> Vec<Option<usize>> {
        self.layers.iter().map(|c| c.attention.window).collect()
    }
}

/// The weights of a model, borrowed from the GGUF file's memory map.
#[derive(Clone, Debug)]
pub struct Weights {
    /// Token embeddings (`token_embd.weight`), `[n_embd, n_vocab]`.
    pub token_embd: Tensor,
    /// Final RMSNorm weight (`output_norm.weight`).
    pub output_norm: Vec<f32>,
    /// Output projection (`output.weight`, or the token embeddings when tied).
    pub output: Tensor,
    /// The blocks, in order.
    pub blocks: Vec<BlockWeights>,
}

/// Reads the hyperparameters and loads the weights of `file`, by its architecture.
///
/// # Errors
///
/// [`ModelError::UnknownArchitecture`] for an architecture not in [`SUPPORTED`], and the
/// errors of the architecture's `hparams` and `weights`.
pub fn load(file: &GgufFile) -> Result<(Hparams, Weights)> {
    let architecture = file.architecture()?;
    match architecture {
        llama::ARCHITECTURE => {
            let hp = llama::hparams(file)?;
            let w = llama::weights(file, &hp)?;
            Ok((hp, w))
        }
        gemma3::ARCHITECTURE => {
            let hp = gemma3::hparams(file)?;
            let w = gemma3::weights(file, &hp)?;
            Ok((hp, w))
        }
        other => Err(ModelError::UnknownArchitecture {
            architecture: other.to_owned(),
            supported: SUPPORTED,
        }),
    }
}
