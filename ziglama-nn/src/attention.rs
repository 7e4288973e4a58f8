//! Causal grouped-query attention reading keys and values through a [`KvCache`].
//!
//! Numerics as llama.cpp's CPU path without flash attention: scores are products of the
//! `f16`-rounded query with the `f16` keys, scaled and soft-maxed in `f32`, and the
//! probabilities are rounded to `f16` before their product with the `f16` values; the
//! additions follow ggml's order ([`crate::ggml_order`]), which depends on whether the batch
//! has one token or more, as llama.cpp's kernel choice does.

use std::sync::Mutex;

use half::f16;
use ziglama_tensor::ThreadPool;

use crate::error::len_error;
use crate::ggml_order::{dot_gemm, dot_gemv, softmax_ggml};
use crate::{KvCache, NnError, Result};

/// A dot product of two rows in one of ggml's summation orders.
type Dot = fn(&[f32], &[f32]) -> f32;

/// The shape of an attention layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttentionShape {
    /// Query heads (`attention.head_count`).
    pub n_head: usize,
    /// Key-value heads (`attention.head_count_kv`); divides `n_head`.
    pub n_head_kv: usize,
    /// Width of one head (`attention.key_length`).
    pub head_dim: usize,
    /// Factor applied to the scores before softmax (`1/sqrt(head_dim)` for LLaMA).
    pub kq_scale: f32,
}

/// Rounds `x` to the nearest `f16` and back, as ggml does converting activations for an F16
/// matrix product.
#[inline]
pub fn round_f16(x: f32) -> f32 {
    f16::from_f32(x).to_f32()
}

/// Causal attention of a batch of query rows.
///
/// `q` holds one row of `n_head * head_dim` (RoPE already applied) per batch entry; entry `i`
/// is at position `positions[i]` of sequence `seqs[i]` and attends to positions
/// `0..=positions[i]` of that sequence in `cache` (which must hold them all, this batch's keys
/// and values included). The result, one row of `n_head * head_dim` per entry, goes to `out`.
///
/// # Errors
///
/// Buffers of the wrong length, a head count that is not a multiple of the KV head count,
/// or a position the cache does not hold.
#[allow(clippy::too_many_arguments)]
pub fn causal_attention(
    shape: &AttentionShape,
    layer: usize,
    q: &[f32],
    positions: &[usize],
    seqs: &[usize],
    cache: &(dyn KvCache + Sync),
    out: &mut [f32],
    pool: &ThreadPool,
) -> Result<()> {
    let AttentionShape {
        n_head,
        n_head_kv,
        head_dim,
        kq_scale,
    } = *shape;
    let n = positions.len();
    let q_len = n_head * head_dim;
    if n_head_kv == 0 || n_head % n_head_kv != 0 || head_dim == 0 {
        return Err(NnError::Shape {
            what: "attention heads".into(),
            expected: "n_head a multiple of n_head_kv, both non-zero, head_dim non-zero".into(),
            found: format!("n_head {n_head}, n_head_kv {n_head_kv}, head_dim {head_dim}"),
        });
    }
    if seqs.len() != n {
        return Err(len_error("attention: sequence ids", n, seqs.len()));
    }
    if q.len() != n * q_len {
        return Err(len_error("attention: query rows", n * q_len, q.len()));
    }
    if out.len() != n * q_len {
        return Err(len_error("attention: output rows", n * q_len, out.len()));
    }
    if cache.row_len() != n_head_kv * head_dim {
        return Err(len_error(
            "attention: KV cache row length",
            n_head_kv * head_dim,
            cache.row_len(),
        ));
    }
    let group = n_head / n_head_kv;
    // llama.cpp multiplies with tinyBLAS when the batch has two or more tokens, else with
    // ggml_vec_dot_f16; their summation orders differ (see `ggml_order`).
    let gemm = n >= 2;
    let kq_dot = if gemm && head_dim % 16 == 0 {
        dot_gemm
    } else {
        dot_gemv
    };
    let kqv_dot: Dot = if gemm { dot_gemm } else { dot_gemv };
    let kqv_pad = if gemm { 16 } else { 64 };
    let outs: Vec<Mutex<&mut [f32]>> = out.chunks_mut(head_dim).map(Mutex::new).collect();
    let error: Mutex<Option<NnError>> = Mutex::new(None);
    pool.run(n * n_head, |task| {
        let (i, h) = (task / n_head, task % n_head);
        let kvh = h / group;
        let qh: Vec<f32> = q[i * q_len + h * head_dim..][..head_dim]
            .iter()
            .map(|&x| round_f16(x))
            .collect();
        let (pos, seq) = (positions[i], seqs[i]);
        let result = (|| -> Result<()> {
            let n_kv = pos + 1;
            let mut scores = vec![f32::NEG_INFINITY; n_kv.next_multiple_of(16)];
            let mut k = vec![0f32; head_dim];
            for (t, score) in scores[..n_kv].iter_mut().enumerate() {
                let row = &cache.key(layer, seq, t)?[kvh * head_dim..][..head_dim];
                for (a, b) in k.iter_mut().zip(row) {
                    *a = b.to_f32();
                }
                *score = kq_dot(&k, &qh) * kq_scale;
            }
            softmax_ggml(&mut scores);
            let len = n_kv.next_multiple_of(kqv_pad);
            let mut probs = vec![0f32; len];
            for (p, s) in probs.iter_mut().zip(&scores[..n_kv]) {
                *p = round_f16(*s);
            }
            // Values transposed: one row of `len` positions per dimension.
            let mut vt = vec![0f32; head_dim * len];
            for t in 0..n_kv {
                let row = &cache.value(layer, seq, t)?[kvh * head_dim..][..head_dim];
                for (d, v) in row.iter().enumerate() {
                    vt[d * len + t] = v.to_f32();
                }
            }
            let mut o = outs[task].lock().unwrap_or_else(|e| e.into_inner());
            for (d, out) in o.iter_mut().enumerate() {
                *out = kqv_dot(&vt[d * len..][..len], &probs);
            }
            Ok(())
        })();
        if let Err(e) = result {
            *error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
        }
    });
    match error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
