//! The `llama` architecture (LLaMA 1-3, SmolLM2, Mistral without sliding windows, ...):
//! pre-norm blocks with SwiGLU, RoPE on adjacent pairs, optional llama3 frequency factors.

use ziglama_nn::activation::GatedUnit;
use ziglama_nn::attention::AttentionShape;
use ziglama_nn::block::BlockConfig;
use ziglama_nn::rope::RopeMode;

use super::hparams::{ArchKeys, BaseHparams};
use super::weights::{self, BlockTensors};
use super::{Hparams, Weights};
use crate::gguf::GgufFile;
use crate::{ModelError, Result};

/// The architecture name in `general.architecture`.
pub const ARCHITECTURE: &str = "llama";

/// Reads the hyperparameters of a `llama` file.
///
/// # Errors
///
/// A missing or mistyped key, a value that cannot work (see the shared checks), an unknown
/// RoPE scaling type, or a `rope_freqs.weight` of the wrong length.
pub fn hparams(file: &GgufFile) -> Result<Hparams> {
    let keys = ArchKeys {
        file,
        arch: ARCHITECTURE,
    };
    let base = BaseHparams::read(keys)?;
    let mut rope = base.rope(keys, RopeMode::Normal)?;
    if file.tensor_info("rope_freqs.weight").is_some() {
        let t = file.tensor("rope_freqs.weight")?;
        let factors = t.to_f32().map_err(|source| ModelError::Tensor {
            tensor: "rope_freqs.weight".into(),
            source,
        })?;
        if factors.len() != base.n_rot / 2 {
            return Err(ModelError::TensorShape {
                tensor: "rope_freqs.weight".into(),
                expected: format!("[{}]", base.n_rot / 2),
                found: format!("{:?}", t.shape()),
            });
        }
        rope.freq_factors = Some(factors);
    }
    let block = BlockConfig {
        n_embd: base.n_embd,
        n_ff: base.n_ff,
        attention: AttentionShape {
            n_head: base.n_head,
            n_head_kv: base.n_head_kv,
            head_dim: base.head_dim,
            kq_scale: 1.0 / (base.head_dim as f32).sqrt(),
            window: None,
        },
        rms_eps: base.rms_eps,
        rope,
        query_scale: 1.0,
        ffn: GatedUnit::SwiGlu,
    };
    Ok(Hparams {
        architecture: ARCHITECTURE.into(),
        n_layer: base.n_layer,
        n_ctx_train: base.n_ctx_train,
        n_vocab: base.n_vocab,
        n_embd: base.n_embd,
        layers: vec![block; base.n_layer],
        embedding_scale: 1.0,
        final_logit_softcapping: None,
    })
}

/// Loads the weights of a `llama` file: no query/key norms, no post-norms.
///
/// # Errors
///
/// A missing tensor, a tensor of the wrong shape, or a bias tensor (not supported yet).
pub fn weights(file: &GgufFile, hp: &Hparams) -> Result<Weights> {
    weights::load(file, hp, BlockTensors::default())
}
