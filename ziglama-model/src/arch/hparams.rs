//! Reading an architecture's hyperparameters from GGUF metadata: the keys every LLaMA-family
//! architecture shares, checked once here.

use ziglama_nn::rope::{Rope, RopeMode, RopeScaling};

use crate::gguf::keys::{arch, arch_key};
use crate::gguf::GgufFile;
use crate::{ModelError, Result};

/// The `<architecture>.*` keys of one file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ArchKeys<'a> {
    pub(crate) file: &'a GgufFile,
    pub(crate) arch: &'a str,
}

impl<'a> ArchKeys<'a> {
    pub(crate) fn key(&self, suffix: &str) -> String {
        arch_key(self.arch, suffix)
    }

    pub(crate) fn usize(&self, suffix: &str) -> Result<usize> {
        self.file.metadata().get_usize(&self.key(suffix))
    }

    pub(crate) fn opt_usize(&self, suffix: &str) -> Result<Option<usize>> {
        match self.file.metadata().get(&self.key(suffix)) {
            None => Ok(None),
            Some(_) => self.usize(suffix).map(Some),
        }
    }

    pub(crate) fn f32(&self, suffix: &str) -> Result<f32> {
        self.file.metadata().get_f32(&self.key(suffix))
    }

    pub(crate) fn opt_f32(&self, suffix: &str) -> Result<Option<f32>> {
        match self.file.metadata().get(&self.key(suffix)) {
            None => Ok(None),
            Some(_) => self.f32(suffix).map(Some),
        }
    }

    pub(crate) fn opt_str(&self, suffix: &str) -> Result<Option<&'a str>> {
        self.file.metadata().get_opt::<&str>(&self.key(suffix))
    }

    pub(crate) fn invalid(&self, suffix: &str, reason: impl Into<String>) -> ModelError {
        ModelError::InvalidHyperparameter {
            key: self.key(suffix),
            reason: reason.into(),
        }
    }
}

/// The hyperparameters every architecture of the family has.
#[derive(Clone, Debug)]
pub(crate) struct BaseHparams {
    pub(crate) n_layer: usize,
    pub(crate) n_embd: usize,
    pub(crate) n_ff: usize,
    pub(crate) n_head: usize,
    pub(crate) n_head_kv: usize,
    pub(crate) head_dim: usize,
    pub(crate) n_ctx_train: usize,
    pub(crate) n_vocab: usize,
    pub(crate) rms_eps: f32,
    pub(crate) freq_base: f32,
    pub(crate) n_rot: usize,
}

impl BaseHparams {
    /// Reads and checks the shared keys: a missing or mistyped key, zero heads, a head count
    /// that is not a multiple of the KV head count, key and value lengths that differ, an
    /// odd RoPE dimension count, or a missing `token_embd.weight` are errors.
    pub(crate) fn read(keys: ArchKeys<'_>) -> Result<BaseHparams> {
        let n_layer = keys.usize(arch::BLOCK_COUNT)?;
        let n_embd = keys.usize(arch::EMBEDDING_LENGTH)?;
        let n_ff = keys.usize(arch::FEED_FORWARD_LENGTH)?;
        let n_head = keys.usize(arch::HEAD_COUNT)?;
        let n_head_kv = keys.opt_usize(arch::HEAD_COUNT_KV)?.unwrap_or(n_head);
        let n_ctx_train = keys.usize(arch::CONTEXT_LENGTH)?;
        if n_head == 0 || n_embd == 0 {
            return Err(keys.invalid(arch::HEAD_COUNT, "n_head and n_embd must be non-zero"));
        }
        if n_head_kv == 0 || n_head % n_head_kv != 0 {
            return Err(keys.invalid(
                arch::HEAD_COUNT_KV,
                format!("{n_head_kv} does not divide attention.head_count {n_head}"),
            ));
        }
        let head_dim = keys.opt_usize(arch::KEY_LENGTH)?.unwrap_or(n_embd / n_head);
        if head_dim == 0 {
            return Err(keys.invalid(arch::KEY_LENGTH, "head size 0"));
        }
        if let Some(v) = keys.opt_usize(arch::VALUE_LENGTH)? {
            if v != head_dim {
                return Err(keys.invalid(
                    arch::VALUE_LENGTH,
                    format!("{v} differs from the key length {head_dim} (they must be equal)"),
                ));
            }
        }
        let rms_eps = keys.f32(arch::LAYER_NORM_RMS_EPSILON)?;
        let freq_base = keys.opt_f32(arch::ROPE_FREQ_BASE)?.unwrap_or(10000.0);
        let n_rot = keys
            .opt_usize(arch::ROPE_DIMENSION_COUNT)?
            .unwrap_or(head_dim);
        if n_rot != head_dim {
            return Err(keys.invalid(
                arch::ROPE_DIMENSION_COUNT,
                format!("{n_rot} differs from the head size {head_dim} (whole heads are rotated)"),
            ));
        }
        if n_rot % 2 != 0 {
            return Err(keys.invalid(arch::ROPE_DIMENSION_COUNT, format!("{n_rot} is odd")));
        }
        let n_vocab = keys.file.tensor("token_embd.weight")?.n_rows();
        Ok(BaseHparams {
            n_layer,
            n_embd,
            n_ff,
            n_head,
            n_head_kv,
            head_dim,
            n_ctx_train,
            n_vocab,
            rms_eps,
            freq_base,
            n_rot,
        })
    }

    /// The RoPE of the global layers: `mode`, the file's base, and the scaling it names.
    pub(crate) fn rope(&self, keys: ArchKeys<'_>, mode: RopeMode) -> Result<Rope> {
        let scaling = rope_scaling(keys, self.n_ctx_train)?;
        let attn_factor = keys.opt_f32("rope.scaling.attn_factor")?.unwrap_or(1.0);
        Ok(Rope::new(self.n_rot, mode, self.freq_base).with_scaling(&scaling, attn_factor))
    }
}

/// The RoPE scaling the metadata names (`rope.scaling.type`, `rope.scaling.factor`), as
/// llama.cpp reads it: no type means linear, a factor of 0 or none means no scaling.
fn rope_scaling(keys: ArchKeys<'_>, n_ctx_train: usize) -> Result<RopeScaling> {
    let kind = keys.opt_str(arch::ROPE_SCALING_TYPE)?.unwrap_or("linear");
    let factor = match keys.opt_f32(arch::ROPE_SCALING_FACTOR)? {
        Some(f) => Some(f),
        None => keys.opt_f32("rope.scale_linear")?,
    }
    .unwrap_or(0.0);
    let n_ctx_orig = keys
        .opt_usize(arch::ROPE_SCALING_ORIGINAL_CONTEXT_LENGTH)?
        .unwrap_or(n_ctx_train);
    Ok(match kind {
        "none" => RopeScaling::None,
        "linear" if factor == 0.0 || factor == 1.0 => RopeScaling::None,
        "linear" => RopeScaling::Linear { factor },
        "yarn" => RopeScaling::Yarn {
            factor,
            n_ctx_orig,
            beta_fast: keys.opt_f32("rope.scaling.yarn_beta_fast")?.unwrap_or(32.0),
            beta_slow: keys.opt_f32("rope.scaling.yarn_beta_slow")?.unwrap_or(1.0),
            log_mul: keys
                .opt_f32("rope.scaling.yarn_log_multiplier")?
                .unwrap_or(0.0),
        },
        other => {
            return Err(keys.invalid(
                arch::ROPE_SCALING_TYPE,
                format!("unsupported RoPE scaling `{other}` (supported: none, linear, yarn)"),
            ))
        }
    })
}
