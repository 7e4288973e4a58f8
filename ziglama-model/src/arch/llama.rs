//! The `llama` architecture: hyperparameters from GGUF metadata and the weights of every
//! block, validated against them.

use ziglama_nn::attention::AttentionShape;
use ziglama_nn::block::{LlamaBlockConfig, LlamaBlockWeights};
use ziglama_nn::rope::{Rope, RopeMode, RopeScaling};
use ziglama_tensor::Tensor;

use crate::gguf::keys::{arch, arch_key};
use crate::gguf::GgufFile;
use crate::{ModelError, Result};

/// The architecture name in `general.architecture`.
pub const ARCHITECTURE: &str = "llama";

/// Hyperparameters of a `llama` model, read from its GGUF metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaHparams {
    /// Transformer blocks (`block_count`).
    pub n_layer: usize,
    /// Context length the model was trained with (`context_length`).
    pub n_ctx_train: usize,
    /// Vocabulary size (rows of `token_embd.weight`).
    pub n_vocab: usize,
    /// The configuration every block shares.
    pub block: LlamaBlockConfig,
}

fn usize_key(file: &GgufFile, suffix: &str) -> Result<usize> {
    file.metadata().get_usize(&arch_key(ARCHITECTURE, suffix))
}

fn opt_usize_key(file: &GgufFile, suffix: &str) -> Result<Option<usize>> {
    file.metadata()
        .get_opt::<u64>(&arch_key(ARCHITECTURE, suffix))
        .and_then(|v| {
            v.map(|v| {
                usize::try_from(v).map_err(|_| ModelError::OutOfRange {
                    key: arch_key(ARCHITECTURE, suffix),
                    value: i128::from(v),
                    target: "usize",
                })
            })
            .transpose()
        })
}

fn opt_f32_key(file: &GgufFile, suffix: &str) -> Result<Option<f32>> {
    let key = arch_key(ARCHITECTURE, suffix);
    match file.metadata().get(&key) {
        None => Ok(None),
        Some(_) => file.metadata().get_f32(&key).map(Some),
    }
}

fn invalid(suffix: &str, reason: impl Into<String>) -> ModelError {
    ModelError::InvalidHyperparameter {
        key: arch_key(ARCHITECTURE, suffix),
        reason: reason.into(),
    }
}

impl LlamaHparams {
    /// Reads and checks the hyperparameters of a `llama` GGUF file.
    ///
    /// # Errors
    ///
    /// A missing or mistyped key, a value that cannot work (zero heads, a head count that is
    /// not a multiple of the KV head count, an odd RoPE dimension count, an unknown RoPE
    /// scaling type), or a missing `token_embd.weight`.
    pub fn from_gguf(file: &GgufFile) -> Result<LlamaHparams> {
        let n_layer = usize_key(file, arch::BLOCK_COUNT)?;
        let n_embd = usize_key(file, arch::EMBEDDING_LENGTH)?;
        let n_ff = usize_key(file, arch::FEED_FORWARD_LENGTH)?;
        let n_head = usize_key(file, arch::HEAD_COUNT)?;
        let n_head_kv = opt_usize_key(file, arch::HEAD_COUNT_KV)?.unwrap_or(n_head);
        let n_ctx_train = usize_key(file, arch::CONTEXT_LENGTH)?;
        if n_head == 0 || n_embd == 0 {
            return Err(invalid(
                arch::HEAD_COUNT,
                "n_head and n_embd must be non-zero",
            ));
        }
        if n_head_kv == 0 || n_head % n_head_kv != 0 {
            return Err(invalid(
                arch::HEAD_COUNT_KV,
                format!("{n_head_kv} does not divide attention.head_count {n_head}"),
            ));
        }
        let head_dim = opt_usize_key(file, arch::KEY_LENGTH)?.unwrap_or(n_embd / n_head);
        if head_dim == 0 {
            return Err(invalid(arch::KEY_LENGTH, "head size 0"));
        }
        if let Some(v) = opt_usize_key(file, arch::VALUE_LENGTH)? {
            if v != head_dim {
                return Err(invalid(
                    arch::VALUE_LENGTH,
                    format!("{v} differs from the key length {head_dim} (llama needs them equal)"),
                ));
            }
        }
        let rms_eps = file
            .metadata()
            .get_f32(&arch_key(ARCHITECTURE, arch::LAYER_NORM_RMS_EPSILON))?;
        let freq_base = opt_f32_key(file, arch::ROPE_FREQ_BASE)?.unwrap_or(10000.0);
        let n_rot = opt_usize_key(file, arch::ROPE_DIMENSION_COUNT)?.unwrap_or(head_dim);
        if n_rot != head_dim {
            return Err(invalid(
                arch::ROPE_DIMENSION_COUNT,
                format!(
                    "{n_rot} differs from the head size {head_dim} (llama rotates whole heads)"
                ),
            ));
        }
        if n_rot % 2 != 0 {
            return Err(invalid(
                arch::ROPE_DIMENSION_COUNT,
                format!("{n_rot} is odd"),
            ));
        }
        let scaling = Self::rope_scaling(file, n_ctx_train)?;
        let attn_factor = opt_f32_key(file, "rope.scaling.attn_factor")?.unwrap_or(1.0);
        let mut rope =
            Rope::new(n_rot, RopeMode::Normal, freq_base).with_scaling(&scaling, attn_factor);
        if file.tensor_info("rope_freqs.weight").is_some() {
            let t = file.tensor("rope_freqs.weight")?;
            let factors = t.to_f32().map_err(|source| ModelError::Tensor {
                tensor: "rope_freqs.weight".into(),
                source,
            })?;
            if factors.len() != n_rot / 2 {
                return Err(ModelError::TensorShape {
                    tensor: "rope_freqs.weight".into(),
                    expected: format!("[{}]", n_rot / 2),
                    found: format!("{:?}", t.shape()),
                });
            }
            rope.freq_factors = Some(factors);
        }
        let n_vocab = file.tensor("token_embd.weight")?.n_rows();
        Ok(LlamaHparams {
            n_layer,
            n_ctx_train,
            n_vocab,
            block: LlamaBlockConfig {
                n_embd,
                n_ff,
                attention: AttentionShape {
                    n_head,
                    n_head_kv,
                    head_dim,
                    kq_scale: 1.0 / (head_dim as f32).sqrt(),
                },
                rms_eps,
                rope,
            },
        })
    }

    /// The RoPE scaling the metadata names (`rope.scaling.type`, `rope.scaling.factor`), as
    /// llama.cpp reads it: no type means linear, a factor of 0 or none means no scaling.
    fn rope_scaling(file: &GgufFile, n_ctx_train: usize) -> Result<RopeScaling> {
        let key = arch_key(ARCHITECTURE, arch::ROPE_SCALING_TYPE);
        let kind = file.metadata().get_opt::<&str>(&key)?.unwrap_or("linear");
        let factor = match opt_f32_key(file, arch::ROPE_SCALING_FACTOR)? {
            Some(f) => Some(f),
            None => opt_f32_key(file, "rope.scale_linear")?,
        }
        .unwrap_or(0.0);
        let n_ctx_orig =
            opt_usize_key(file, arch::ROPE_SCALING_ORIGINAL_CONTEXT_LENGTH)?.unwrap_or(n_ctx_train);
        Ok(match kind {
            "none" => RopeScaling::None,
            "linear" if factor == 0.0 || factor == 1.0 => RopeScaling::None,
            "linear" => RopeScaling::Linear { factor },
            "yarn" => RopeScaling::Yarn {
                factor,
                n_ctx_orig,
                beta_fast: opt_f32_key(file, "rope.scaling.yarn_beta_fast")?.unwrap_or(32.0),
                beta_slow: opt_f32_key(file, "rope.scaling.yarn_beta_slow")?.unwrap_or(1.0),
                log_mul: opt_f32_key(file, "rope.scaling.yarn_log_multiplier")?.unwrap_or(0.0),
            },
            other => {
                return Err(invalid(
                    arch::ROPE_SCALING_TYPE,
                    format!("unsupported RoPE scaling `{other}` (supported: none, linear, yarn)"),
                ))
            }
        })
    }
}

/// The weights of a `llama` model, borrowed from the GGUF file's memory map.
#[derive(Clone, Debug)]
pub struct LlamaWeights {
    /// Token embeddings (`token_embd.weight`), `[n_embd, n_vocab]`.
    pub token_embd: Tensor,
    /// Final RMSNorm weight (`output_norm.weight`).
    pub output_norm: Vec<f32>,
    /// Output projection (`output.weight`, or the token embeddings when tied).
    pub output: Tensor,
    /// The blocks, in order.
    pub blocks: Vec<LlamaBlockWeights>,
}

fn shape_of(file: &GgufFile, name: &str, expected: &[usize]) -> Result<Tensor> {
    let t = file.tensor(name)?;
    if t.shape() != expected {
        return Err(ModelError::TensorShape {
            tensor: name.into(),
            expected: format!("{expected:?}"),
            found: format!("{:?}", t.shape()),
        });
    }
    Ok(t)
}

fn f32_vector(file: &GgufFile, name: &str, len: usize) -> Result<Vec<f32>> {
    shape_of(file, name, &[len])?
        .to_f32()
        .map_err(|source| ModelError::Tensor {
            tensor: name.into(),
            source,
        })
}

impl LlamaWeights {
    /// Loads and checks every weight `hp` calls for.
    ///
    /// # Errors
    ///
    /// [`ModelError::TensorNotFound`] for a missing tensor, [`ModelError::TensorShape`] for
    /// one of the wrong shape, and an error for bias tensors (not supported yet).
    pub fn from_gguf(file: &GgufFile, hp: &LlamaHparams) -> Result<LlamaWeights> {
        let c = &hp.block;
        let a = &c.attention;
        let (e, v) = (c.n_embd, hp.n_vocab);
        let token_embd = shape_of(file, "token_embd.weight", &[e, v])?;
        let output_norm = f32_vector(file, "output_norm.weight", e)?;
        let output = if file.tensor_info("output.weight").is_some() {
            shape_of(file, "output.weight", &[e, v])?
        } else {
            token_embd.clone()
        };
        let (q, kv) = (a.n_head * a.head_dim, a.n_head_kv * a.head_dim);
        let mut blocks = Vec::with_capacity(hp.n_layer);
        for il in 0..hp.n_layer {
            let name = |t: &str| format!("blk.{il}.{t}.weight");
            for bias in [
                "attn_q",
                "attn_k",
                "attn_v",
                "attn_output",
                "ffn_gate",
                "ffn_up",
                "ffn_down",
            ] {
                let b = format!("blk.{il}.{bias}.bias");
                if file.tensor_info(&b).is_some() {
                    return Err(ModelError::InvalidHyperparameter {
                        key: b,
                        reason: "bias tensors are not supported yet".into(),
                    });
                }
            }
            blocks.push(LlamaBlockWeights {
                attn_norm: f32_vector(file, &name("attn_norm"), e)?,
                wq: shape_of(file, &name("attn_q"), &[e, q])?,
                wk: shape_of(file, &name("attn_k"), &[e, kv])?,
                wv: shape_of(file, &name("attn_v"), &[e, kv])?,
                wo: shape_of(file, &name("attn_output"), &[q, e])?,
                ffn_norm: f32_vector(file, &name("ffn_norm"), e)?,
                ffn_gate: shape_of(file, &name("ffn_gate"), &[e, c.n_ff])?,
                ffn_up: shape_of(file, &name("ffn_up"), &[e, c.n_ff])?,
                ffn_down: shape_of(file, &name("ffn_down"), &[c.n_ff, e])?,
            });
        }
        Ok(LlamaWeights {
            token_embd,
            output_norm,
            output,
            blocks,
        })
    }
}
