//! Loading the weights an architecture's hyperparameters call for, checking every shape.

use ziglama_nn::block::{BlockConfig, BlockWeights};
use ziglama_tensor::Tensor;

use crate::gguf::GgufFile;
use crate::{ModelError, Result};

use super::{Hparams, Weights};

/// Which optional tensors of a block an architecture has.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BlockTensors {
    /// `attn_q_norm` and `attn_k_norm`: RMSNorm of each query and key head.
    pub(crate) qk_norm: bool,
    /// `post_attention_norm` and `post_ffw_norm`: RMSNorm of each sub-block's output.
    pub(crate) post_norms: bool,
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

fn block(file: &GgufFile, il: usize, c: &BlockConfig, has: BlockTensors) -> Result<BlockWeights> {
    let a = &c.attention;
    let e = c.n_embd;
    let (q, kv) = (a.n_head * a.head_dim, a.n_head_kv * a.head_dim);
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
    let norm = |t: &str, len: usize, present: bool| -> Result<Option<Vec<f32>>> {
        present.then(|| f32_vector(file, &name(t), len)).transpose()
    };
    Ok(BlockWeights {
        attn_norm: f32_vector(file, &name("attn_norm"), e)?,
        wq: shape_of(file, &name("attn_q"), &[e, q])?,
        wk: shape_of(file, &name("attn_k"), &[e, kv])?,
        wv: shape_of(file, &name("attn_v"), &[e, kv])?,
        wo: shape_of(file, &name("attn_output"), &[q, e])?,
        attn_q_norm: norm("attn_q_norm", a.head_dim, has.qk_norm)?,
        attn_k_norm: norm("attn_k_norm", a.head_dim, has.qk_norm)?,
        attn_post_norm: norm("post_attention_norm", e, has.post_norms)?,
        ffn_norm: f32_vector(file, &name("ffn_norm"), e)?,
        ffn_gate: shape_of(file, &name("ffn_gate"), &[e, c.n_ff])?,
        ffn_up: shape_of(file, &name("ffn_up"), &[e, c.n_ff])?,
        ffn_down: shape_of(file, &name("ffn_down"), &[c.n_ff, e])?,
        ffn_post_norm: norm("post_ffw_norm", e, has.post_norms)?,
    })
}

/// Loads and checks every weight `hp` calls for: the embeddings, the final norm, the output
/// projection (the embeddings when the file has no `output.weight`), and each block with the
/// optional tensors `has` names.
pub(crate) fn load(file: &GgufFile, hp: &Hparams, has: BlockTensors) -> Result<Weights> {
    let (e, v) = (hp.n_embd, hp.n_vocab);
    let token_embd = shape_of(file, "token_embd.weight", &[e, v])?;
    let output_norm = f32_vector(file, "output_norm.weight", e)?;
    let output = if file.tensor_info("output.weight").is_some() {
        shape_of(file, "output.weight", &[e, v])?
    } else {
        token_embd.clone()
    };
    let blocks = hp
        .layers
        .iter()
        .enumerate()
        .map(|(il, c)| block(file, il, c, has))
        .collect::<Result<Vec<_>>>()?;
    Ok(Weights {
        token_embd,
        output_norm,
        output,
        blocks,
    })
}
