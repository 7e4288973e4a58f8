//! The `gemma3` architecture (Gemma 3): embeddings scaled by `sqrt(n_embd)`, RMSNorm on each
//! query and key head and after each sub-block, GeGLU, NeoX RoPE, queries scaled by
//! `1/sqrt(head_dim)`, and sliding-window attention on 5 of every 6 layers, whose RoPE has a
//! base of its own.

use ziglama_nn::activation::GatedUnit;
use ziglama_nn::attention::AttentionShape;
use ziglama_nn::block::BlockConfig;
use ziglama_nn::rope::{Rope, RopeMode};

use super::hparams::{ArchKeys, BaseHparams};
use super::weights::{self, BlockTensors};
use super::{Hparams, Weights};
use crate::gguf::keys::arch;
use crate::gguf::{GgufFile, MetadataArray, MetadataValue};
use crate::Result;

/// The architecture name in `general.architecture`.
pub const ARCHITECTURE: &str = "gemma3";

/// Layers per repetition of the sliding-window pattern when the file names none: the last
/// layer of each group of six attends globally.
const DEFAULT_SWA_PATTERN: usize = 6;

/// RoPE base of the sliding-window layers when the file names none (`rope.freq_base_swa`).
const DEFAULT_FREQ_BASE_SWA: f32 = 10000.0;

/// Which layers slide a window, from `attention.sliding_window_pattern`: an array of one
/// boolean per layer, or a period `n` (layer `il` slides unless `il % n == n - 1`; 0 means
/// every layer), 6 when absent.
fn sliding_layers(keys: ArchKeys<'_>, n_layer: usize) -> Result<Vec<bool>> {
    const KEY: &str = "attention.sliding_window_pattern";
    let period = match keys.file.metadata().get(&keys.key(KEY)) {
        None => DEFAULT_SWA_PATTERN,
        Some(MetadataValue::Array(MetadataArray::Bool(flags))) => {
            if flags.len() != n_layer {
                return Err(
                    keys.invalid(KEY, format!("{} flags for {n_layer} layers", flags.len()))
                );
            }
            return Ok(flags.clone());
        }
        Some(_) => keys.usize(KEY)?,
    };
    Ok((0..n_layer)
        .map(|il| period == 0 || il % period < period - 1)
        .collect())
}

/// Reads the hyperparameters of a `gemma3` file.
///
/// # Errors
///
/// A missing or mistyped key, a value that cannot work (see the shared checks), an unknown
/// RoPE scaling type, or a sliding-window pattern that does not fit the layer count.
pub fn hparams(file: &GgufFile) -> Result<Hparams> {
    let keys = ArchKeys {
        file,
        arch: ARCHITECTURE,
    };
    let base = BaseHparams::read(keys)?;
    let global_rope = base.rope(keys, RopeMode::Neox)?;
    let window = keys.opt_usize(arch::SLIDING_WINDOW)?.filter(|&w| w > 0);
    let sliding = match window {
        Some(_) => sliding_layers(keys, base.n_layer)?,
        None => vec![false; base.n_layer],
    };
    let freq_base_swa = keys
        .opt_f32("rope.freq_base_swa")?
        .unwrap_or(DEFAULT_FREQ_BASE_SWA);
    let local_rope = Rope::new(base.n_rot, RopeMode::Neox, freq_base_swa);
    // Gemma 3 27B scales queries by n_embd / n_head instead of the head size.
    let query_dim = if base.n_layer == 62 {
        base.n_embd / base.n_head
    } else {
        base.head_dim
    };
    let layers = sliding
        .iter()
        .map(|&slides| BlockConfig {
            n_embd: base.n_embd,
            n_ff: base.n_ff,
            attention: AttentionShape {
                n_head: base.n_head,
                n_head_kv: base.n_head_kv,
                head_dim: base.head_dim,
                kq_scale: 1.0,
                window: if slides { window } else { None },
            },
            rms_eps: base.rms_eps,
            rope: if slides {
                local_rope.clone()
            } else {
                global_rope.clone()
            },
            query_scale: 1.0 / (query_dim as f32).sqrt(),
            ffn: GatedUnit::GeGlu,
        })
        .collect();
    let softcap = keys
        .opt_f32("final_logit_softcapping")?
        .filter(|&c| c != 0.0);
    Ok(Hparams {
        architecture: ARCHITECTURE.into(),
        n_layer: base.n_layer,
        n_ctx_train: base.n_ctx_train,
        n_vocab: base.n_vocab,
        n_embd: base.n_embd,
        layers,
        embedding_scale: (base.n_embd as f32).sqrt(),
        final_logit_softcapping: softcap,
    })
}

/// Loads the weights of a `gemma3` file: every block has query/key norms and post-norms.
///
/// # Errors
///
/// A missing tensor, a tensor of the wrong shape, or a bias tensor (not supported yet).
pub fn weights(file: &GgufFile, hp: &Hparams) -> Result<Weights> {
    weights::load(
        file,
        hp,
        BlockTensors {
            qk_norm: true,
            post_norms: true,
        },
    )
}
