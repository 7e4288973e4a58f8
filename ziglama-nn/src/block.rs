//! The LLaMA transformer block: pre-norm attention and a SwiGLU feed-forward network, each
//! added to the residual stream.
//!
//! ```text
//! h = x + Wo · attention(rope(Wq · norm(x)), rope(Wk · norm(x)), Wv · norm(x))
//! y = h + Wdown · (silu(Wgate · norm(h)) * Wup · norm(h))
//! ```

use std::sync::Mutex;

use ziglama_tensor::{matmul, Tensor, ThreadPool};

use crate::activation::swiglu;
use crate::attention::{causal_attention, AttentionShape};
use crate::error::len_error;
use crate::norm::rms_norm_rows;
use crate::rope::Rope;
use crate::{KvCache, NnError, Result};

/// Hyperparameters shared by every block of a LLaMA model.
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaBlockConfig {
    /// Width of the residual stream (`embedding_length`).
    pub n_embd: usize,
    /// Hidden width of the feed-forward network (`feed_forward_length`).
    pub n_ff: usize,
    /// The attention shape.
    pub attention: AttentionShape,
    /// RMSNorm epsilon (`attention.layer_norm_rms_epsilon`).
    pub rms_eps: f32,
    /// The RoPE applied to queries and keys.
    pub rope: Rope,
}

/// The weights of one LLaMA block. Matrices are GGML tensors of any format, `[in, out]` in
/// GGUF order (rows of `in` values, `out` rows).
#[derive(Clone, Debug)]
pub struct LlamaBlockWeights {
    /// RMSNorm weight before attention (`attn_norm`), `n_embd` values.
    pub attn_norm: Vec<f32>,
    /// Query projection (`attn_q`), `[n_embd, n_head * head_dim]`.
    pub wq: Tensor,
    /// Key projection (`attn_k`), `[n_embd, n_head_kv * head_dim]`.
    pub wk: Tensor,
    /// Value projection (`attn_v`), `[n_embd, n_head_kv * head_dim]`.
    pub wv: Tensor,
    /// Output projection (`attn_output`), `[n_head * head_dim, n_embd]`.
    pub wo: Tensor,
    /// RMSNorm weight before the feed-forward network (`ffn_norm`), `n_embd` values.
    pub ffn_norm: Vec<f32>,
    /// Gate projection (`ffn_gate`), `[n_embd, n_ff]`.
    pub ffn_gate: Tensor,
    /// Up projection (`ffn_up`), `[n_embd, n_ff]`.
    pub ffn_up: Tensor,
    /// Down projection (`ffn_down`), `[n_ff, n_embd]`.
    pub ffn_down: Tensor,
}

/// Work buffers of a block's forward pass, reused across calls and layers (owned by the
/// caller, as per-sequence state is).
#[derive(Clone, Debug, Default)]
pub struct BlockScratch {
    norm: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    attn: Vec<f32>,
    proj: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
}

fn resize(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    buf.resize(len, 0.0);
    &mut buf[..len]
}

fn product(what: &str, w: &Tensor, x: &[f32], y: &mut [f32], pool: &ThreadPool) -> Result<()> {
    matmul(w, x, y, pool).map_err(|source| NnError::Tensor {
        what: what.to_owned(),
        source,
    })
}

/// Values of a row per SwiGLU task: a multiple of 16, so that the tasks' pieces keep ggml's
/// 16-element chunks, which start at each row's start.
const SWIGLU_PIECE: usize = 512;

/// [`swiglu`] on each row of `n_ff` values, split across the pool.
fn swiglu_rows(gate: &mut [f32], up: &[f32], n_ff: usize, pool: &ThreadPool) {
    if n_ff == 0 {
        return;
    }
    let pieces: Vec<Mutex<(&mut [f32], &[f32])>> = gate
        .chunks_mut(n_ff)
        .zip(up.chunks(n_ff))
        .flat_map(|(g, u)| g.chunks_mut(SWIGLU_PIECE).zip(u.chunks(SWIGLU_PIECE)))
        .map(Mutex::new)
        .collect();
    pool.run(pieces.len(), |i| {
        let mut piece = pieces[i].lock().unwrap_or_else(|e| e.into_inner());
        let (g, u) = &mut *piece;
        swiglu(g, u);
    });
}

impl LlamaBlockWeights {
    /// Checks every weight against `config`, naming the first one of the wrong shape.
    ///
    /// # Errors
    ///
    /// [`NnError::Shape`] naming the weight (prefixed with `name`, e.g. `blk.3`).
    pub fn validate(&self, name: &str, config: &LlamaBlockConfig) -> Result<()> {
        let a = &config.attention;
        let (e, f) = (config.n_embd, config.n_ff);
        let (q, kv) = (a.n_head * a.head_dim, a.n_head_kv * a.head_dim);
        let check = |what: &str, t: &Tensor, cols: usize, rows: usize| {
            if t.shape() != [cols, rows] {
                return Err(NnError::Shape {
                    what: format!("{name}.{what}.weight"),
                    expected: format!("[{cols}, {rows}]"),
                    found: format!("{:?}", t.shape()),
                });
            }
            Ok(())
        };
        check("attn_q", &self.wq, e, q)?;
        check("attn_k", &self.wk, e, kv)?;
        check("attn_v", &self.wv, e, kv)?;
        check("attn_output", &self.wo, q, e)?;
        check("ffn_gate", &self.ffn_gate, e, f)?;
        check("ffn_up", &self.ffn_up, e, f)?;
        check("ffn_down", &self.ffn_down, f, e)?;
        if self.attn_norm.len() != e {
            return Err(len_error(
                format!("{name}.attn_norm.weight"),
                e,
                self.attn_norm.len(),
            ));
        }
        if self.ffn_norm.len() != e {
            return Err(len_error(
                format!("{name}.ffn_norm.weight"),
                e,
                self.ffn_norm.len(),
            ));
        }
        Ok(())
    }

    /// Runs the block on the residual stream `x` (one row of `n_embd` per batch entry, updated
    /// in place). Entry `i` is at position `positions[i]` of sequence `seqs[i]`; its key and
    /// value are stored in `cache` for `layer` before attention runs.
    ///
    /// # Errors
    ///
    /// Buffers of the wrong length, a position or sequence the cache cannot hold, or a
    /// product the tensor layer refuses.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        config: &LlamaBlockConfig,
        layer: usize,
        x: &mut [f32],
        positions: &[usize],
        seqs: &[usize],
        cache: &mut (dyn KvCache + Sync),
        scratch: &mut BlockScratch,
        pool: &ThreadPool,
    ) -> Result<()> {
        let n = positions.len();
        let a = &config.attention;
        let (e, hd) = (config.n_embd, a.head_dim);
        let (q_len, kv_len) = (a.n_head * hd, a.n_head_kv * hd);
        if x.len() != n * e {
            return Err(len_error("block: residual rows", n * e, x.len()));
        }
        if seqs.len() != n {
            return Err(len_error("block: sequence ids", n, seqs.len()));
        }

        // Attention.
        let norm = resize(&mut scratch.norm, n * e);
        norm.copy_from_slice(x);
        rms_norm_rows(norm, &self.attn_norm, config.rms_eps);
        let q = resize(&mut scratch.q, n * q_len);
        product("attn_q", &self.wq, norm, q, pool)?;
        let k = resize(&mut scratch.k, n * kv_len);
        product("attn_k", &self.wk, norm, k, pool)?;
        let v = resize(&mut scratch.v, n * kv_len);
        product("attn_v", &self.wv, norm, v, pool)?;
        let mut table = vec![0f32; config.rope.n_dims];
        for (i, &pos) in positions.iter().enumerate() {
            config.rope.sin_cos(pos as i64, &mut table);
            config
                .rope
                .apply_with(&mut q[i * q_len..][..q_len], hd, &table);
            config
                .rope
                .apply_with(&mut k[i * kv_len..][..kv_len], hd, &table);
            cache.store(
                layer,
                seqs[i],
                pos,
                &k[i * kv_len..][..kv_len],
                &v[i * kv_len..][..kv_len],
            )?;
        }
        let attn = resize(&mut scratch.attn, n * q_len);
        causal_attention(a, layer, q, positions, seqs, cache, attn, pool)?;
        let proj = resize(&mut scratch.proj, n * e);
        product("attn_output", &self.wo, attn, proj, pool)?;
        for (r, p) in x.iter_mut().zip(proj.iter()) {
            *r += p;
        }

        // Feed-forward network.
        let norm = resize(&mut scratch.norm, n * e);
        norm.copy_from_slice(x);
        rms_norm_rows(norm, &self.ffn_norm, config.rms_eps);
        let f = config.n_ff;
        let gate = resize(&mut scratch.gate, n * f);
        product("ffn_gate", &self.ffn_gate, norm, gate, pool)?;
        let up = resize(&mut scratch.up, n * f);
        product("ffn_up", &self.ffn_up, norm, up, pool)?;
        swiglu_rows(gate, up, f, pool);
        let proj = resize(&mut scratch.proj, n * e);
        product("ffn_down", &self.ffn_down, gate, proj, pool)?;
        for (r, p) in x.iter_mut().zip(proj.iter()) {
            *r += p;
        }
        Ok(())
    }
}
