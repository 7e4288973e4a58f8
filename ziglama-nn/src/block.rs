//! The transformer block every architecture is built from: attention and a gated
//! feed-forward network, each normalized and added to the residual stream.
//!
//! ```text
//! h = x + post_attn_norm(Wo · attention(rope(qk_norm(Wq · norm(x))), rope(qk_norm(Wk · norm(x))), Wv · norm(x)))
//! y = h + post_ffn_norm(Wdown · (act(Wgate · norm(h)) * Wup · norm(h)))
//! ```
//!
//! LLaMA has neither the query/key norms nor the post-norms and gates with SiLU; Gemma 3 has
//! all four norms, gates with GELU and slides a window over 5 of every 6 layers. An
//! architecture describes its blocks with a [`BlockConfig`] and [`BlockWeights`] per layer;
//! the code that runs them is this one.

use std::sync::Mutex;

use half::f16;
use ziglama_tensor::matmul::matmuls;
use ziglama_tensor::matvec::{gated_matvec, matvecs};
use ziglama_tensor::{matmul, Tensor, ThreadPool};

use crate::activation::GatedUnit;
use crate::attention::{causal_attention, AttentionShape, BatchKv};
use crate::error::len_error;
use crate::norm::rms_norm_rows;
use crate::rope::Rope;
use crate::{KvCache, NnError, Result};

/// Hyperparameters of one transformer block.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockConfig {
    /// Width of the residual stream (`embedding_length`).
    pub n_embd: usize,
    /// Hidden width of the feed-forward network (`feed_forward_length`).
    pub n_ff: usize,
    /// The attention shape, sliding window included.
    pub attention: AttentionShape,
    /// RMSNorm epsilon (`attention.layer_norm_rms_epsilon`).
    pub rms_eps: f32,
    /// The RoPE applied to queries and keys.
    pub rope: Rope,
    /// Factor the queries are multiplied by after RoPE (Gemma's `query_pre_attn_scalar`
    /// scaling; 1 for LLaMA, which scales the scores instead through `kq_scale`).
    pub query_scale: f32,
    /// The gated unit of the feed-forward network.
    pub ffn: GatedUnit,
}

/// The weights of one block. Matrices are GGML tensors of any format, `[in, out]` in GGUF
/// order (rows of `in` values, `out` rows); optional norms are present in the architectures
/// that have them.
#[derive(Clone, Debug)]
pub struct BlockWeights {
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
    /// RMSNorm weight of each query head (`attn_q_norm`), `head_dim` values.
    pub attn_q_norm: Option<Vec<f32>>,
    /// RMSNorm weight of each key head (`attn_k_norm`), `head_dim` values.
    pub attn_k_norm: Option<Vec<f32>>,
    /// RMSNorm weight after attention (`post_attention_norm`), `n_embd` values.
    pub attn_post_norm: Option<Vec<f32>>,
    /// RMSNorm weight before the feed-forward network (`ffn_norm`), `n_embd` values.
    pub ffn_norm: Vec<f32>,
    /// Gate projection (`ffn_gate`), `[n_embd, n_ff]`.
    pub ffn_gate: Tensor,
    /// Up projection (`ffn_up`), `[n_embd, n_ff]`.
    pub ffn_up: Tensor,
    /// Down projection (`ffn_down`), `[n_ff, n_embd]`.
    pub ffn_down: Tensor,
    /// RMSNorm weight after the feed-forward network (`post_ffw_norm`), `n_embd` values.
    pub ffn_post_norm: Option<Vec<f32>>,
}

/// Work buffers of a block's forward pass, reused across calls and layers (owned by the
/// caller, as per-sequence state is).
#[derive(Clone, Debug, Default)]
pub struct BlockScratch {
    norm: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    k16: Vec<f16>,
    v16: Vec<f16>,
    attn: Vec<f32>,
    proj: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
}

fn resize<T: Copy + Default>(buf: &mut Vec<T>, len: usize) -> &mut [T] {
    buf.resize(len, T::default());
    &mut buf[..len]
}

fn tensor_error(what: &str) -> impl FnOnce(ziglama_tensor::TensorError) -> NnError + '_ {
    move |source| NnError::Tensor {
        what: what.to_owned(),
        source,
    }
}

/// `y = x W^T` for the rows of `x`: for one row (decoding) through [`matvecs`], whose
/// prefetching suits a matrix-vector product, otherwise through [`matmul`]; the outputs are
/// the same either way.
fn product(what: &str, w: &Tensor, x: &[f32], y: &mut [f32], pool: &ThreadPool) -> Result<()> {
    if x.len() == w.row_len() {
        matvecs(&[w], x, &mut [y], pool)
    } else {
        matmul(w, x, y, pool)
    }
    .map_err(tensor_error(what))
}

/// Several products of the same activation rows: for one row, one pool operation
/// ([`matvecs`]); otherwise [`matmuls`], which quantizes the activations once.
fn products(
    what: &str,
    ws: &[&Tensor],
    x: &[f32],
    ys: &mut [&mut [f32]],
    pool: &ThreadPool,
) -> Result<()> {
    if ws.first().is_some_and(|w| x.len() == w.row_len()) {
        return matvecs(ws, x, ys, pool).map_err(tensor_error(what));
    }
    matmuls(ws, x, ys, pool).map_err(tensor_error(what))
}

/// Values of a row per gated-unit task: a multiple of 16, so that the tasks' pieces keep
/// ggml's 16-element chunks, which start at each row's start.
const GATE_PIECE: usize = 512;

/// Where a piece of a row may start for the gated units to give the values they give on the
/// whole row: ggml's SwiGLU works in chunks of 16 from the row's start (GeGLU element by
/// element).
const GATE_ALIGN: usize = 16;

/// `unit` on each row of `n_ff` values, split across the pool.
fn gate_rows(unit: GatedUnit, gate: &mut [f32], up: &[f32], n_ff: usize, pool: &ThreadPool) {
    if n_ff == 0 {
        return;
    }
    let pieces: Vec<Mutex<(&mut [f32], &[f32])>> = gate
        .chunks_mut(n_ff)
        .zip(up.chunks(n_ff))
        .flat_map(|(g, u)| g.chunks_mut(GATE_PIECE).zip(u.chunks(GATE_PIECE)))
        .map(Mutex::new)
        .collect();
    pool.run(pieces.len(), |i| {
        let mut piece = pieces[i].lock().unwrap_or_else(|e| e.into_inner());
        let (g, u) = &mut *piece;
        unit.apply(g, u);
    });
}

/// Row-wise steps (norms, RoPE, residual adds) run as this many tasks per thread: enough to
/// even out the threads, few enough that handing them out costs little.
const ROW_TASKS_PER_THREAD: usize = 4;

/// Rows per task of a row-wise step over `n` rows.
fn rows_per_task(n: usize, pool: &ThreadPool) -> usize {
    n.div_ceil(pool.n_threads() * ROW_TASKS_PER_THREAD).max(1)
}

/// Adds `delta`, RMS-normalized with `norm` when there is one, to the residual stream `x`.
fn add_residual(x: &mut [f32], delta: &mut [f32], norm: Option<&[f32]>, eps: f32) {
    if let Some(w) = norm {
        rms_norm_rows(delta, w, eps);
    }
    for (r, d) in x.iter_mut().zip(delta.iter()) {
        *r += d;
    }
}

/// For each row of `e` values: [`add_residual`] of `delta` into `x`, then, when `next` is
/// given, `next.0` = `x` RMS-normalized with weight `next.1` (the next sub-layer's input).
/// Split by rows across the pool; every row is computed as it would be alone.
fn residual_rows(
    x: &mut [f32],
    delta: &mut [f32],
    post_norm: Option<&[f32]>,
    next: Option<(&mut [f32], &[f32])>,
    e: usize,
    eps: f32,
    pool: &ThreadPool,
) {
    let per = (rows_per_task(x.len() / e.max(1), pool) * e).max(1);
    let (norm_out, norm_w) = match next {
        Some((out, w)) => (Some(out), w),
        None => (None, &[][..]),
    };
    let mut outs: Vec<Option<&mut [f32]>> = match norm_out {
        Some(out) => out.chunks_mut(per).map(Some).collect(),
        None => Vec::new(),
    };
    outs.resize_with(x.len().div_ceil(per), || None);
    let chunks: Vec<Mutex<_>> = x
        .chunks_mut(per)
        .zip(delta.chunks_mut(per))
        .zip(outs)
        .map(Mutex::new)
        .collect();
    pool.run(chunks.len(), |t| {
        let mut chunk = chunks[t].lock().unwrap_or_else(|e| e.into_inner());
        let ((x, delta), out) = &mut *chunk;
        add_residual(x, delta, post_norm, eps);
        if let Some(out) = out {
            out.copy_from_slice(x);
            rms_norm_rows(out, norm_w, eps);
        }
    });
}

/// `out` = each row of `x` RMS-normalized with `weight`, split by rows across the pool.
fn norm_rows_into(out: &mut [f32], x: &[f32], weight: &[f32], eps: f32, pool: &ThreadPool) {
    let e = weight.len().max(1);
    let per = rows_per_task(x.len() / e, pool) * e;
    let chunks: Vec<Mutex<(&mut [f32], &[f32])>> = out
        .chunks_mut(per)
        .zip(x.chunks(per))
        .map(Mutex::new)
        .collect();
    pool.run(chunks.len(), |t| {
        let mut chunk = chunks[t].lock().unwrap_or_else(|e| e.into_inner());
        let (out, x) = &mut *chunk;
        out.copy_from_slice(x);
        rms_norm_rows(out, weight, eps);
    });
}

impl BlockWeights {
    /// Checks every weight against `config`, naming the first one of the wrong shape.
    ///
    /// # Errors
    ///
    /// [`NnError::Shape`] naming the weight (prefixed with `name`, e.g. `blk.3`).
    pub fn validate(&self, name: &str, config: &BlockConfig) -> Result<()> {
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
        let hd = a.head_dim;
        let norms = [
            ("attn_norm", Some(&self.attn_norm), e),
            ("attn_q_norm", self.attn_q_norm.as_ref(), hd),
            ("attn_k_norm", self.attn_k_norm.as_ref(), hd),
            ("post_attention_norm", self.attn_post_norm.as_ref(), e),
            ("ffn_norm", Some(&self.ffn_norm), e),
            ("post_ffw_norm", self.ffn_post_norm.as_ref(), e),
        ];
        for (what, weight, len) in norms {
            if let Some(w) = weight {
                if w.len() != len {
                    return Err(len_error(format!("{name}.{what}.weight"), len, w.len()));
                }
            }
        }
        Ok(())
    }

    /// Runs the block on the residual stream `x` (one row of `n_embd` per batch entry, updated
    /// in place). Entry `i` is at position `positions[i]` of sequence `seqs[i]`; it attends to
    /// the positions before it held in `cache` and to the batch's own keys and values, which
    /// are stored in `cache` for `layer` after attention (so a sliding-window cache never has
    /// to hold more than its window, however long the batch).
    ///
    /// # Errors
    ///
    /// Buffers of the wrong length, a position or sequence the cache cannot hold, or a
    /// product the tensor layer refuses.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        config: &BlockConfig,
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
        norm_rows_into(norm, x, &self.attn_norm, config.rms_eps, pool);
        let q = resize(&mut scratch.q, n * q_len);
        let k = resize(&mut scratch.k, n * kv_len);
        let v = resize(&mut scratch.v, n * kv_len);
        products(
            "attn_q, attn_k, attn_v",
            &[&self.wq, &self.wk, &self.wv],
            norm,
            &mut [&mut *q, &mut *k, &mut *v],
            pool,
        )?;
        let k16 = resize(&mut scratch.k16, n * kv_len);
        let v16 = resize(&mut scratch.v16, n * kv_len);
        {
            // Query and key norms, RoPE, the query scale and the f16 keys and values, row by
            // row, split by rows across the pool.
            let per = rows_per_task(n, pool);
            let chunks: Vec<Mutex<_>> = q
                .chunks_mut(per * q_len)
                .zip(k.chunks_mut(per * kv_len))
                .zip(v.chunks(per * kv_len))
                .zip(k16.chunks_mut(per * kv_len))
                .zip(v16.chunks_mut(per * kv_len))
                .map(Mutex::new)
                .collect();
            pool.run(chunks.len(), |t| {
                let mut chunk = chunks[t].lock().unwrap_or_else(|e| e.into_inner());
                let ((((q, k), v), k16), v16) = &mut *chunk;
                self.rotate_rows(config, q, k, &positions[t * per..]);
                for (d, s) in k16.iter_mut().zip(k.iter()) {
                    *d = f16::from_f32(*s);
                }
                for (d, s) in v16.iter_mut().zip(v.iter()) {
                    *d = f16::from_f32(*s);
                }
            });
        }
        let attn = resize(&mut scratch.attn, n * q_len);
        let batch = BatchKv {
            keys: k16,
            values: v16,
        };
        causal_attention(a, layer, q, batch, positions, seqs, cache, attn, pool)?;
        for (i, &pos) in positions.iter().enumerate() {
            cache.store(
                layer,
                seqs[i],
                pos,
                &k[i * kv_len..][..kv_len],
                &v[i * kv_len..][..kv_len],
            )?;
        }
        let proj = resize(&mut scratch.proj, n * e);
        product("attn_output", &self.wo, attn, proj, pool)?;
        // The residual add, and the feed-forward network's input norm.
        let norm = resize(&mut scratch.norm, n * e);
        residual_rows(
            x,
            proj,
            self.attn_post_norm.as_deref(),
            Some((&mut *norm, &self.ffn_norm)),
            e,
            config.rms_eps,
            pool,
        );

        // Feed-forward network.
        let f = config.n_ff;
        let gate = resize(&mut scratch.gate, n * f);
        let up = resize(&mut scratch.up, n * f);
        if n == 1 {
            let unit = config.ffn;
            gated_matvec(
                &self.ffn_gate,
                &self.ffn_up,
                norm,
                gate,
                up,
                &|g: &mut [f32], u: &[f32]| unit.apply(g, u),
                GATE_ALIGN,
                pool,
            )
            .map_err(tensor_error("ffn_gate, ffn_up"))?;
        } else {
            products(
                "ffn_gate, ffn_up",
                &[&self.ffn_gate, &self.ffn_up],
                norm,
                &mut [&mut *gate, &mut *up],
                pool,
            )?;
            gate_rows(config.ffn, gate, up, f, pool);
        }
        let proj = resize(&mut scratch.proj, n * e);
        product("ffn_down", &self.ffn_down, gate, proj, pool)?;
        residual_rows(
            x,
            proj,
            self.ffn_post_norm.as_deref(),
            None,
            e,
            config.rms_eps,
            pool,
        );
        Ok(())
    }

    /// The query and key norms, RoPE and the query scale on rows of queries `q` and keys `k`,
    /// row `i` at position `positions[i]`.
    fn rotate_rows(&self, config: &BlockConfig, q: &mut [f32], k: &mut [f32], positions: &[usize]) {
        let a = &config.attention;
        let hd = a.head_dim;
        let (q_len, kv_len) = (a.n_head * hd, a.n_head_kv * hd);
        if let Some(w) = &self.attn_q_norm {
            rms_norm_rows(q, w, config.rms_eps);
        }
        if let Some(w) = &self.attn_k_norm {
            rms_norm_rows(k, w, config.rms_eps);
        }
        let mut table = vec![0f32; config.rope.n_dims];
        for ((qi, ki), &pos) in q
            .chunks_exact_mut(q_len)
            .zip(k.chunks_exact_mut(kv_len))
            .zip(positions)
        {
            config.rope.sin_cos(pos as i64, &mut table);
            config.rope.apply_with(qi, hd, &table);
            if config.query_scale != 1.0 {
                qi.iter_mut().for_each(|x| *x *= config.query_scale);
            }
            config.rope.apply_with(ki, hd, &table);
        }
    }
}
