//! Causal grouped-query attention over the keys and values of a [`KvCache`] and of the batch
//! being run, with an optional sliding window.
//!
//! Numerics as llama.cpp's CPU path without flash attention: scores are products of the
//! `f16`-rounded query with the `f16` keys, scaled and soft-maxed in `f32`, and the
//! probabilities are rounded to `f16` before their product with the `f16` values; the
//! additions follow ggml's order ([`crate::ggml_order`]), which depends on whether the batch
//! has one token or more, as llama.cpp's kernel choice does. Position `t` of a sequence takes
//! the place of cache cell `t`, so lanes and chunks line up with llama.cpp's as long as its
//! cells are filled in position order.

use std::collections::HashMap;
use std::sync::Mutex;

use half::f16;
use half::slice::HalfFloatSliceExt;
use ziglama_tensor::ThreadPool;

use crate::error::len_error;
use crate::{KvCache, NnError, Result};
use ziglama_tensor::vector::{
    self, axpy_rows, dot_gemm, dot_gemm_rows, dot_gemv, reduce16_rows, softmax_ggml, Weights,
};

/// Key values (f32) scored per block, for every query head of a group, while the block is in
/// the L1 cache: 16 KiB.
const KEY_BLOCK_VALUES: usize = 4096;

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
    /// Sliding window (`attention.sliding_window`): a query at position `p` sees the keys at
    /// `p - window + 1 ..= p` only. `None` for global attention over `0..=p`.
    pub window: Option<usize>,
}

impl AttentionShape {
    /// The first position a query at `pos` attends to.
    ///
    /// ```
    /// use ziglama_nn::attention::AttentionShape;
    /// let mut shape = AttentionShape { n_head: 1, n_head_kv: 1, head_dim: 8, kq_scale: 1.0, window: None };
    /// assert_eq!(shape.first_visible(700), 0);
    /// shape.window = Some(512);
    /// assert_eq!(shape.first_visible(700), 189);
    /// assert_eq!(shape.first_visible(100), 0);
    /// ```
    pub fn first_visible(&self, pos: usize) -> usize {
        match self.window {
            Some(w) => (pos + 1).saturating_sub(w.max(1)),
            None => 0,
        }
    }
}

/// The keys and values of the batch being run, rounded to `f16` and not yet in the cache: one
/// row of `n_head_kv * head_dim` values per batch entry, in batch order.
#[derive(Clone, Copy, Debug)]
pub struct BatchKv<'a> {
    /// Key rows.
    pub keys: &'a [f16],
    /// Value rows.
    pub values: &'a [f16],
}

impl BatchKv<'_> {
    /// No rows: every position attention reads comes from the cache.
    pub const EMPTY: BatchKv<'static> = BatchKv {
        keys: &[],
        values: &[],
    };
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
/// `shape.first_visible(p)..=p` of that sequence. Each of them is read from `batch` when an
/// entry of this batch has that sequence and position (`batch` then holds one row per entry),
/// else from `cache`. The result, one row of `n_head * head_dim` per entry, goes to `out`.
///
/// # Errors
///
/// Buffers of the wrong length, a head count that is not a multiple of the KV head count,
/// or a position neither the batch nor the cache holds.
#[allow(clippy::too_many_arguments)]
pub fn causal_attention(
    shape: &AttentionShape,
    layer: usize,
    q: &[f32],
    batch: BatchKv<'_>,
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
        ..
    } = *shape;
    let n = positions.len();
    let q_len = n_head * head_dim;
    let row_len = n_head_kv * head_dim;
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
    if cache.row_len() != row_len {
        return Err(len_error(
            "attention: KV cache row length",
            row_len,
            cache.row_len(),
        ));
    }
    let in_batch: HashMap<(usize, usize), usize> = if batch.keys.is_empty() {
        HashMap::new()
    } else {
        if batch.keys.len() != n * row_len {
            return Err(len_error(
                "attention: batch key rows",
                n * row_len,
                batch.keys.len(),
            ));
        }
        if batch.values.len() != n * row_len {
            return Err(len_error(
                "attention: batch value rows",
                n * row_len,
                batch.values.len(),
            ));
        }
        (0..n).map(|i| ((seqs[i], positions[i]), i)).collect()
    };
    let group = n_head / n_head_kv;
    // llama.cpp multiplies with tinyBLAS when the batch has two or more tokens, else with
    // ggml_vec_dot_f16; their summation orders differ (see `ggml_order`).
    let gemm = n >= 2;
    let tiny_blas = gemm && head_dim % 16 == 0;
    let kq_dot: Dot = if tiny_blas { dot_gemm } else { dot_gemv };
    // Lanes of the probability-value product: position t adds into lane t % lanes.
    let lanes = if gemm { 16 } else { 64 };
    // Every key and value row the batch sees, converted to f32 once (not once per token and
    // KV head, which is O(n^2) conversions for a prompt), all KV heads side by side.
    let spans = visible_spans(shape, positions, seqs);
    // Keys per block: a multiple of 16 (whole `dot_gemm_rows` blocks), at least 16.
    let key_block = (KEY_BLOCK_VALUES / head_dim / 16 * 16).max(16);
    let mut rows = Vec::with_capacity(spans.len());
    for span in &spans {
        rows.push(span.read(layer, row_len, &batch, &in_batch, cache)?);
    }
    let span_of = |seq: usize, first: usize, pos: usize| {
        spans
            .iter()
            .position(|s| s.seq == seq && s.lo <= first && pos < s.hi)
            .unwrap_or_else(|| unreachable!("every query's positions lie in one span"))
    };
    // One task per (token, KV head): the query heads of a group share the rows.
    let outs: Vec<Mutex<&mut [f32]>> = out.chunks_mut(group * head_dim).map(Mutex::new).collect();
    pool.run(n * n_head_kv, |task| {
        let (i, kvh) = (task / n_head_kv, task % n_head_kv);
        let (pos, seq) = (positions[i], seqs[i]);
        // Scores start at a multiple of 16 so that softmax's chunks are ggml's; positions
        // before `first` are masked (-inf, probability 0), as llama.cpp masks them.
        let first = shape.first_visible(pos);
        let start = first / 16 * 16;
        let n_kv = pos + 1 - start;
        let s = span_of(seq, first, pos);
        let (keys, values) = (&rows[s].0, &rows[s].1);
        let lo = spans[s].lo;
        // Start of the key or value row of position t, this KV head.
        let at = |t: usize| (t - lo) * row_len + kvh * head_dim;
        let mut o = outs[task].lock().unwrap_or_else(|e| e.into_inner());
        let n_scores = n_kv.next_multiple_of(16);
        let mut scores = vec![f32::NEG_INFINITY; group * n_scores];
        // The group's query heads, rounded to f16 as ggml rounds them for its F16 product.
        let mut qh = q[i * q_len + kvh * group * head_dim..][..group * head_dim].to_vec();
        vector::round_f16(&mut qh);
        // Keys in blocks of `key_block`, every head of the group scored against a block while
        // it is in the L1 cache.
        let mut t = first;
        while t <= pos {
            let end = (t + key_block).min(pos + 1);
            for (scores, qh) in scores
                .chunks_exact_mut(n_scores)
                .zip(qh.chunks_exact(head_dim))
            {
                let block = &mut scores[t - start..end - start];
                if tiny_blas {
                    // Sixteen keys at a time, each key's sum in the order of one `dot_gemm`.
                    dot_gemm_rows(&keys[at(t)..], row_len, qh, block);
                } else {
                    for (t, s) in (t..end).zip(block.iter_mut()) {
                        *s = kq_dot(&keys[at(t)..][..head_dim], qh);
                    }
                }
            }
            t = end;
        }
        for scores in scores.chunks_exact_mut(n_scores) {
            for s in &mut scores[first - start..=pos - start] {
                *s *= kq_scale;
            }
            softmax_ggml(scores);
            // The probabilities as ggml rounds them before their product with the values.
            vector::round_f16(scores);
        }
        // Lane `l` of head `g` at `acc[(l * group + g) * head_dim..]`; each lane's chain adds
        // its positions in increasing order, all heads of the group from one load of a row.
        let mut acc = vec![0f32; lanes * group * head_dim];
        for t0 in first..(first + lanes).min(pos + 1) {
            let lane = t0 % lanes;
            // Probability of position t0 + r * lanes for head g, read where softmax left it.
            let p = Weights {
                p: &scores[t0 - start..],
                rows: (pos - t0) / lanes + 1,
                row_step: lanes,
                head_step: n_scores,
            };
            axpy_rows(
                &mut acc[lane * group * head_dim..][..group * head_dim],
                group,
                p,
                &values[at(t0)..],
                lanes * row_len,
            );
        }
        // The lanes summed as ggml sums them: with 64 lanes (one token) lane l first becomes
        // (l + (32 + l)) + ((16 + l) + (48 + l)); then the 16 lanes in `reduce16`'s order.
        let gw = group * head_dim;
        if !gemm {
            let (low, high) = acc.split_at_mut(32 * gw);
            let (l0, l1) = low.split_at_mut(16 * gw);
            let (h0, h1) = high.split_at_mut(16 * gw);
            for (((a, &b), &c), &d) in l0.iter_mut().zip(&*l1).zip(&*h0).zip(&*h1) {
                *a = (*a + c) + (b + d);
            }
        }
        for (g, out) in o.chunks_exact_mut(head_dim).enumerate() {
            reduce16_rows(&acc[g * head_dim..], gw, out);
        }
    });
    Ok(())
}

/// Positions `lo..hi` of sequence `seq` that some query of the batch sees: the union of the
/// queries' visible ranges, merged where they overlap or touch.
struct Span {
    seq: usize,
    lo: usize,
    hi: usize,
}

/// The spans of positions the queries at `positions` of `seqs` see, one per run of visible
/// positions of a sequence; each query's range lies in one of them.
fn visible_spans(shape: &AttentionShape, positions: &[usize], seqs: &[usize]) -> Vec<Span> {
    let mut ranges: Vec<(usize, usize, usize)> = positions
        .iter()
        .zip(seqs)
        .map(|(&p, &s)| (s, shape.first_visible(p), p + 1))
        .collect();
    ranges.sort_unstable();
    let mut spans: Vec<Span> = Vec::new();
    for (seq, lo, hi) in ranges {
        match spans.last_mut() {
            Some(last) if last.seq == seq && lo <= last.hi => last.hi = last.hi.max(hi),
            _ => spans.push(Span { seq, lo, hi }),
        }
    }
    spans
}

impl Span {
    /// The span's key and value rows (`row_len` values each, every KV head) as f32: from the
    /// batch where an entry of it has that sequence and position, else from the cache (runs
    /// of consecutive positions in one read).
    fn read(
        &self,
        layer: usize,
        row_len: usize,
        batch: &BatchKv<'_>,
        in_batch: &HashMap<(usize, usize), usize>,
        cache: &(dyn KvCache + Sync),
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let len = (self.hi - self.lo) * row_len;
        let mut keys = vec![0f32; len];
        let mut values = vec![0f32; len];
        let mut t = self.lo;
        while t < self.hi {
            let r = (t - self.lo) * row_len;
            if let Some(&j) = in_batch.get(&(self.seq, t)) {
                let at = j * row_len;
                batch.keys[at..][..row_len].convert_to_f32_slice(&mut keys[r..][..row_len]);
                batch.values[at..][..row_len].convert_to_f32_slice(&mut values[r..][..row_len]);
                t += 1;
                continue;
            }
            // A run of positions the cache holds, read in one call.
            let mut end = t + 1;
            while end < self.hi && !in_batch.contains_key(&(self.seq, end)) {
                end += 1;
            }
            let len = (end - t) * row_len;
            cache.read(
                layer,
                self.seq,
                t..end,
                0..row_len,
                &mut keys[r..][..len],
                &mut values[r..][..len],
            )?;
            t = end;
        }
        Ok((keys, values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test cache: one layer, one sequence, `f16` rows by position.
    struct Cache {
        row_len: usize,
        keys: Vec<Vec<f16>>,
        values: Vec<Vec<f16>>,
    }

    impl KvCache for Cache {
        fn n_layer(&self) -> usize {
            1
        }
        fn n_seq(&self) -> usize {
            1
        }
        fn n_ctx(&self) -> usize {
            1024
        }
        fn row_len(&self) -> usize {
            self.row_len
        }
        fn bytes(&self) -> usize {
            4 * self.row_len * self.keys.len()
        }
        fn contains(&self, _: usize, _: usize, pos: usize) -> bool {
            pos < self.keys.len()
        }
        fn store(&mut self, _: usize, _: usize, pos: usize, k: &[f32], v: &[f32]) -> Result<()> {
            if self.keys.len() <= pos {
                self.keys.resize(pos + 1, Vec::new());
                self.values.resize(pos + 1, Vec::new());
            }
            self.keys[pos] = k.iter().map(|&x| f16::from_f32(x)).collect();
            self.values[pos] = v.iter().map(|&x| f16::from_f32(x)).collect();
            Ok(())
        }
        fn read(
            &self,
            _: usize,
            seq: usize,
            positions: std::ops::Range<usize>,
            cols: std::ops::Range<usize>,
            keys: &mut [f32],
            values: &mut [f32],
        ) -> Result<()> {
            let w = cols.len();
            for (i, pos) in positions.enumerate() {
                let (Some(k), Some(v)) = (self.keys.get(pos), self.values.get(pos)) else {
                    return Err(NnError::PositionOutOfRange {
                        seq,
                        pos,
                        capacity: self.keys.len(),
                    });
                };
                k[cols.clone()].convert_to_f32_slice(&mut keys[i * w..][..w]);
                v[cols.clone()].convert_to_f32_slice(&mut values[i * w..][..w]);
            }
            Ok(())
        }
        fn remove_positions(&mut self, _: usize, positions: std::ops::Range<usize>) -> Result<()> {
            self.keys.truncate(positions.start);
            self.values.truncate(positions.start);
            Ok(())
        }
    }

    const SHAPE: AttentionShape = AttentionShape {
        n_head: 4,
        n_head_kv: 2,
        head_dim: 16,
        kq_scale: 0.25,
        window: None,
    };

    fn row(seed: usize, len: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((seed * 31 + i * 7) % 17) as f32 - 8.0) / 8.0)
            .collect()
    }

    fn filled(n_pos: usize) -> Cache {
        let mut c = Cache {
            row_len: 32,
            keys: Vec::new(),
            values: Vec::new(),
        };
        for p in 0..n_pos {
            c.store(0, 0, p, &row(p, 32), &row(p + 100, 32)).unwrap();
        }
        c
    }

    #[test]
    fn one_position_returns_its_value_for_every_head_of_the_group() {
        let cache = filled(1);
        let q = row(7, 64);
        let mut out = vec![0f32; 64];
        causal_attention(
            &SHAPE,
            0,
            &q,
            BatchKv::EMPTY,
            &[0],
            &[0],
            &cache,
            &mut out,
            &ThreadPool::new(1),
        )
        .unwrap();
        let v = row(100, 32);
        for h in 0..4 {
            let kvh = h / 2; // heads 0, 1 read KV head 0; heads 2, 3 read KV head 1
            for d in 0..16 {
                assert_eq!(
                    out[h * 16 + d],
                    round_f16(v[kvh * 16 + d]),
                    "head {h} dim {d}"
                );
            }
        }
    }

    #[test]
    fn later_positions_do_not_change_earlier_outputs() {
        let pool = ThreadPool::new(2);
        let q: Vec<f32> = (0..3).flat_map(|p| row(p + 50, 64)).collect();
        let mut short = vec![0f32; 3 * 64];
        causal_attention(
            &SHAPE,
            0,
            &q,
            BatchKv::EMPTY,
            &[0, 1, 2],
            &[0; 3],
            &filled(3),
            &mut short,
            &pool,
        )
        .unwrap();
        let mut long = vec![0f32; 3 * 64];
        causal_attention(
            &SHAPE,
            0,
            &q,
            BatchKv::EMPTY,
            &[0, 1, 2],
            &[0; 3],
            &filled(9),
            &mut long,
            &pool,
        )
        .unwrap();
        assert_eq!(short, long);
    }

    #[test]
    fn matches_a_plain_softmax_attention() {
        let cache = filled(5);
        let q = row(3, 64);
        let mut out = vec![0f32; 64];
        causal_attention(
            &SHAPE,
            0,
            &q,
            BatchKv::EMPTY,
            &[4],
            &[0],
            &cache,
            &mut out,
            &ThreadPool::new(1),
        )
        .unwrap();
        for h in 0..4 {
            let kvh = h / 2;
            let qh = &q[h * 16..][..16];
            let mut s: Vec<f32> = (0..5)
                .map(|t| {
                    let k = &cache.keys[t][kvh * 16..][..16];
                    qh.iter().zip(k).map(|(a, b)| a * b.to_f32()).sum::<f32>() * 0.25
                })
                .collect();
            crate::softmax::softmax(&mut s);
            for d in 0..16 {
                let want: f32 = (0..5)
                    .map(|t| s[t] * cache.values[t][kvh * 16 + d].to_f32())
                    .sum();
                assert!((out[h * 16 + d] - want).abs() < 2e-3, "head {h} dim {d}");
            }
        }
    }

    #[test]
    fn a_missing_position_is_an_error() {
        let cache = filled(2);
        let mut out = vec![0f32; 64];
        let err = causal_attention(
            &SHAPE,
            0,
            &row(1, 64),
            BatchKv::EMPTY,
            &[5],
            &[0],
            &cache,
            &mut out,
            &ThreadPool::new(1),
        )
        .unwrap_err();
        assert!(
            matches!(err, NnError::PositionOutOfRange { pos: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn wrong_lengths_are_errors() {
        let cache = filled(1);
        let mut out = vec![0f32; 63];
        let err = causal_attention(
            &SHAPE,
            0,
            &row(1, 64),
            BatchKv::EMPTY,
            &[0],
            &[0],
            &cache,
            &mut out,
            &ThreadPool::new(1),
        )
        .unwrap_err();
        assert!(err.to_string().contains("output rows"), "{err}");
    }
}
