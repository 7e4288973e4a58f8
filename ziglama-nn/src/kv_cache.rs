//! The `KvCache` trait attention reads keys and values through.
//!
//! A cache holds, for every layer and every sequence, one key row and one value row per
//! position (`n_head_kv * head_dim` values each), rounded to `f16` as llama.cpp's KV cache
//! stores them. Implementations live above this layer (a contiguous cache in ziglama-model,
//! others in ziglama-infer); this crate only reads and writes through the trait.

use half::f16;

use crate::Result;

/// Per-layer, per-sequence storage of attention keys and values by position.
///
/// Attention at position `p` of sequence `s` reads the positions before `p` that its window
/// sees (all of `0..p` without a window) from the cache, and the positions of its own batch
/// from the batch; the batch's rows are stored after attention.
pub trait KvCache {
    /// Values in one key or value row: `n_head_kv * head_dim`.
    fn row_len(&self) -> usize;

    /// Stores the key and value rows of `pos` in `seq` for `layer`, rounding them to `f16`.
    ///
    /// # Errors
    ///
    /// A layer, sequence or position the cache cannot hold, or rows of the wrong length.
    fn store(
        &mut self,
        layer: usize,
        seq: usize,
        pos: usize,
        key: &[f32],
        value: &[f32],
    ) -> Result<()>;

    /// The key row of `pos` in `seq` for `layer`.
    ///
    /// # Errors
    ///
    /// A layer, sequence or position the cache does not hold.
    fn key(&self, layer: usize, seq: usize, pos: usize) -> Result<&[f16]>;

    /// The value row of `pos` in `seq` for `layer`.
    ///
    /// # Errors
    ///
    /// A layer, sequence or position the cache does not hold.
    fn value(&self, layer: usize, seq: usize, pos: usize) -> Result<&[f16]>;
}
