//! The `KvCache` trait attention reads keys and values through, with llama.cpp's sequence
//! operations.
//!
//! A cache holds, for every layer and every sequence, one key row and one value row per
//! position (`n_head_kv * head_dim` values each), in a storage format of its choice (`f16` as
//! llama.cpp's default KV cache, or `f32`, `q8_0`, `q4_0`). Attention reads them back as
//! `f32` through [`KvCache::read`], a range of positions and a range of columns (one KV head)
//! at a time, so every storage format serves the same attention code; `f16` values convert
//! to `f32` exactly, so an `f16` cache gives bit for bit what reading `f16` rows gave.
//!
//! The sequence operations are llama.cpp's (`llama_memory_seq_rm`, `_seq_cp`, `_seq_keep`,
//! `_seq_add`, `_clear`). Only the core methods are required; the sequence operations have
//! default implementations built on them ([`KvCache::copy_sequence`] copies rows,
//! [`KvCache::shift_positions`] reads, re-rotates and re-stores them), which an
//! implementation overrides when it can do better (a paged cache forks by sharing blocks).
//!
//! Implementations live above this layer (ziglama-model's `model` module); this crate only
//! reads and writes through the trait.

use std::ops::Range;

use crate::rope::Rope;
use crate::{NnError, Result};

/// Per-layer, per-sequence storage of attention keys and values by position.
///
/// Attention at position `p` of sequence `s` reads the positions before `p` that its window
/// sees (all of `0..p` without a window) from the cache, and the positions of its own batch
/// from the batch; the batch's rows are stored after attention.
///
/// ```
/// use ziglama_nn::kv_cache::{KvCache, KeyRotation};
/// use ziglama_nn::rope::{Rope, RopeMode};
///
/// /// The smallest cache: one layer, one sequence, f32 rows by position.
/// #[derive(Default)]
/// struct Tiny { rows: Vec<Option<(Vec<f32>, Vec<f32>)>> }
///
/// impl KvCache for Tiny {
///     fn n_layer(&self) -> usize { 1 }
///     fn n_seq(&self) -> usize { 1 }
///     fn n_ctx(&self) -> usize { 16 }
///     fn row_len(&self) -> usize { 2 }
///     fn bytes(&self) -> usize { self.rows.iter().flatten().count() * 16 }
///     fn contains(&self, _: usize, _: usize, pos: usize) -> bool {
///         matches!(self.rows.get(pos), Some(Some(_)))
///     }
///     fn store(&mut self, _: usize, _: usize, pos: usize, k: &[f32], v: &[f32])
///         -> ziglama_nn::Result<()> {
///         if self.rows.len() <= pos { self.rows.resize(pos + 1, None); }
///         self.rows[pos] = Some((k.to_vec(), v.to_vec()));
///         Ok(())
///     }
///     fn read(&self, _: usize, seq: usize, positions: std::ops::Range<usize>,
///         cols: std::ops::Range<usize>, keys: &mut [f32], values: &mut [f32])
///         -> ziglama_nn::Result<()> {
///         let w = cols.len();
///         for (i, pos) in positions.enumerate() {
///             let Some(Some((k, v))) = self.rows.get(pos) else {
///                 return Err(ziglama_nn::NnError::PositionNotStored { layer: 0, seq, pos });
///             };
///             keys[i * w..][..w].copy_from_slice(&k[cols.clone()]);
///             values[i * w..][..w].copy_from_slice(&v[cols.clone()]);
///         }
///         Ok(())
///     }
///     fn remove_positions(&mut self, _: usize, positions: std::ops::Range<usize>)
///         -> ziglama_nn::Result<()> {
///         for pos in positions.start..positions.end.min(self.rows.len()) { self.rows[pos] = None; }
///         Ok(())
///     }
/// }
///
/// let mut c = Tiny::default();
/// for pos in 0..4 {
///     c.store(0, 0, pos, &[1.0, 0.0], &[pos as f32, 0.0])?;
/// }
/// assert_eq!(c.seq_len(0), 4);
/// // Context shift: drop positions 0..2 and move 2..4 down to 0..2, re-rotating the keys.
/// c.remove_positions(0, 0..2)?;
/// let rotation = KeyRotation::new(vec![Rope::new(2, RopeMode::Normal, 10000.0)], 2);
/// c.shift_positions(0, 2..4, -2, &rotation)?;
/// assert_eq!(c.seq_len(0), 2);
/// let (mut k, mut v) = ([0f32; 2], [0f32; 2]);
/// c.read(0, 0, 1..2, 0..2, &mut k, &mut v)?;
/// assert_eq!(v[0], 3.0); // the value of old position 3
/// assert!((k[0] - (-2f32).cos()).abs() < 1e-6); // the key rotated by -2
/// # Ok::<(), ziglama_nn::NnError>(())
/// ```
pub trait KvCache {
    /// Layers.
    fn n_layer(&self) -> usize;

    /// Sequences (ids `0..n_seq`).
    fn n_seq(&self) -> usize;

    /// Positions each sequence can reach (`0..n_ctx`): the capacity per sequence.
    fn n_ctx(&self) -> usize;

    /// Values in one key or value row: `n_head_kv * head_dim`.
    fn row_len(&self) -> usize;

    /// Bytes of key and value storage in use.
    fn bytes(&self) -> usize;

    /// Whether `layer` holds `pos` of `seq` (false for anything out of range).
    fn contains(&self, layer: usize, seq: usize, pos: usize) -> bool;

    /// Stores the key and value rows of `pos` in `seq` for `layer`, in the cache's storage
    /// format.
    ///
    /// # Errors
    ///
    /// A layer, sequence or position the cache cannot hold, rows of the wrong length, or a
    /// full cache.
    fn store(
        &mut self,
        layer: usize,
        seq: usize,
        pos: usize,
        key: &[f32],
        value: &[f32],
    ) -> Result<()>;

    /// Writes columns `cols` of the key and value rows of `positions` in `seq` for `layer`
    /// into `keys` and `values` (`positions.len() * cols.len()` values each, position after
    /// position), as `f32`.
    ///
    /// # Errors
    ///
    /// A layer, sequence or position the cache does not hold, columns outside the row or not
    /// on a block boundary of a block-quantized storage, or buffers of the wrong length.
    fn read(
        &self,
        layer: usize,
        seq: usize,
        positions: Range<usize>,
        cols: Range<usize>,
        keys: &mut [f32],
        values: &mut [f32],
    ) -> Result<()>;

    /// Forgets `positions` of `seq` in every layer (`llama_memory_seq_rm`); positions not
    /// held are ignored, so `0..usize::MAX` empties the sequence.
    ///
    /// # Errors
    ///
    /// A sequence the cache does not have.
    fn remove_positions(&mut self, seq: usize, positions: Range<usize>) -> Result<()>;

    /// One past the last position `seq` holds in any layer (0 when empty): where the
    /// sequence continues. Out-of-range sequences have length 0.
    fn seq_len(&self, seq: usize) -> usize {
        let mut len = 0;
        for layer in 0..self.n_layer() {
            for pos in (len..self.n_ctx()).rev() {
                if self.contains(layer, seq, pos) {
                    len = pos + 1;
                    break;
                }
            }
        }
        len
    }

    /// Makes `dst` a copy of `src` (`llama_memory_seq_cp`, a fork): `dst`'s positions are
    /// replaced by every position `src` holds.
    ///
    /// # Errors
    ///
    /// A sequence the cache does not have, or a full cache.
    fn copy_sequence(&mut self, src: usize, dst: usize) -> Result<()> {
        check_seq(self.n_seq(), src)?;
        check_seq(self.n_seq(), dst)?;
        if src == dst {
            return Ok(());
        }
        self.remove_positions(dst, 0..usize::MAX)?;
        let n = self.row_len();
        let (mut k, mut v) = (vec![0f32; n], vec![0f32; n]);
        for layer in 0..self.n_layer() {
            for pos in 0..self.seq_len(src) {
                if self.contains(layer, src, pos) {
                    self.read(layer, src, pos..pos + 1, 0..n, &mut k, &mut v)?;
                    self.store(layer, dst, pos, &k, &v)?;
                }
            }
        }
        Ok(())
    }

    /// Forgets every sequence but `seq` (`llama_memory_seq_keep`).
    ///
    /// # Errors
    ///
    /// A sequence the cache does not have.
    fn keep_sequence(&mut self, seq: usize) -> Result<()> {
        check_seq(self.n_seq(), seq)?;
        for other in (0..self.n_seq()).filter(|&s| s != seq) {
            self.remove_positions(other, 0..usize::MAX)?;
        }
        Ok(())
    }

    /// Forgets everything (`llama_memory_clear`).
    ///
    /// # Errors
    ///
    /// Those of [`KvCache::remove_positions`] (none for a well-formed cache).
    fn clear(&mut self) -> Result<()> {
        for seq in 0..self.n_seq() {
            self.remove_positions(seq, 0..usize::MAX)?;
        }
        Ok(())
    }

    /// Checks that `seq` can continue at `pos`: that a batch starting there finds every
    /// position before `pos` its attention reads that the cache is meant to keep. Caches
    /// that forget positions only when told to (contiguous, paged) have nothing to check; a
    /// sliding-window ring has, when its window at `pos` reaches back to positions it has
    /// overwritten (after the sequence was trimmed or shifted back below its newest
    /// position). [`crate::NnError::PositionEvicted`] then names the first such position,
    /// before anything runs, instead of a failed read in the middle of a forward pass.
    ///
    /// # Errors
    ///
    /// [`NnError::PositionEvicted`], or a sequence the cache does not have.
    fn check_continuation(&self, seq: usize, pos: usize) -> Result<()> {
        let _ = pos;
        check_seq(self.n_seq(), seq)
    }

    /// Moves `positions` of `seq` by `delta` (`llama_memory_seq_add`), re-rotating their
    /// keys with `rotation` (RoPE by `delta`) as llama.cpp's K-shift does. Positions that
    /// would become negative are removed. Used for context shifting: remove the oldest
    /// positions, then shift the rest down.
    ///
    /// A sliding-window ring cannot give back positions it has overwritten: it refuses,
    /// before moving anything, a shift after which the window of the sequence's new end
    /// would need one (a context shift that keeps the first positions of a sequence longer
    /// than the window; llama.cpp refuses to shift a windowed cache at all).
    ///
    /// # Errors
    ///
    /// A sequence the cache does not have, a destination past the context, a `rotation`
    /// without a RoPE for some layer, or [`NnError::PositionEvicted`] as above.
    fn shift_positions(
        &mut self,
        seq: usize,
        positions: Range<usize>,
        delta: isize,
        rotation: &KeyRotation,
    ) -> Result<()> {
        shift_by_rows(self, seq, positions, delta, rotation)
    }
}

impl<C: KvCache + ?Sized> KvCache for Box<C> {
    fn n_layer(&self) -> usize {
        (**self).n_layer()
    }
    fn n_seq(&self) -> usize {
        (**self).n_seq()
    }
    fn n_ctx(&self) -> usize {
        (**self).n_ctx()
    }
    fn row_len(&self) -> usize {
        (**self).row_len()
    }
    fn bytes(&self) -> usize {
        (**self).bytes()
    }
    fn contains(&self, layer: usize, seq: usize, pos: usize) -> bool {
        (**self).contains(layer, seq, pos)
    }
    fn store(&mut self, layer: usize, seq: usize, pos: usize, k: &[f32], v: &[f32]) -> Result<()> {
        (**self).store(layer, seq, pos, k, v)
    }
    fn read(
        &self,
        layer: usize,
        seq: usize,
        positions: Range<usize>,
        cols: Range<usize>,
        keys: &mut [f32],
        values: &mut [f32],
    ) -> Result<()> {
        (**self).read(layer, seq, positions, cols, keys, values)
    }
    fn remove_positions(&mut self, seq: usize, positions: Range<usize>) -> Result<()> {
        (**self).remove_positions(seq, positions)
    }
    fn seq_len(&self, seq: usize) -> usize {
        (**self).seq_len(seq)
    }
    fn copy_sequence(&mut self, src: usize, dst: usize) -> Result<()> {
        (**self).copy_sequence(src, dst)
    }
    fn keep_sequence(&mut self, seq: usize) -> Result<()> {
        (**self).keep_sequence(seq)
    }
    fn clear(&mut self) -> Result<()> {
        (**self).clear()
    }
    fn check_continuation(&self, seq: usize, pos: usize) -> Result<()> {
        (**self).check_continuation(seq, pos)
    }
    fn shift_positions(
        &mut self,
        seq: usize,
        positions: Range<usize>,
        delta: isize,
        rotation: &KeyRotation,
    ) -> Result<()> {
        (**self).shift_positions(seq, positions, delta, rotation)
    }
}

/// The RoPE of every layer and the head width: what a cache needs to re-rotate its keys when
/// positions move (rotating a key stored at `p` by RoPE at `delta` gives the key at
/// `p + delta`, up to rounding, as llama.cpp's K-shift).
#[derive(Clone, Debug, PartialEq)]
pub struct KeyRotation {
    ropes: Vec<Rope>,
    head_dim: usize,
}

impl KeyRotation {
    /// One RoPE per layer; keys are rows of heads of `head_dim` values.
    ///
    /// ```
    /// use ziglama_nn::kv_cache::KeyRotation;
    /// use ziglama_nn::rope::{Rope, RopeMode};
    /// let r = KeyRotation::new(vec![Rope::new(2, RopeMode::Normal, 10000.0)], 2);
    /// let mut key = [1.0f32, 0.0];
    /// r.rotate(0, &mut key, 1).unwrap();
    /// assert!((key[0] - 1f32.cos()).abs() < 1e-6 && (key[1] - 1f32.sin()).abs() < 1e-6);
    /// assert!(r.rotate(1, &mut key, 1).is_err()); // no RoPE for layer 1
    /// ```
    pub fn new(ropes: Vec<Rope>, head_dim: usize) -> KeyRotation {
        KeyRotation { ropes, head_dim }
    }

    /// Rotates the key row `key` of `layer` by `delta` positions.
    ///
    /// # Errors
    ///
    /// No RoPE for `layer`, or a row that is not whole heads.
    pub fn rotate(&self, layer: usize, key: &mut [f32], delta: i64) -> Result<()> {
        let rope = self.ropes.get(layer).ok_or_else(|| NnError::Shape {
            what: "key rotation: RoPE of layer".into(),
            expected: format!("below {}", self.ropes.len()),
            found: layer.to_string(),
        })?;
        if self.head_dim == 0 || !key.len().is_multiple_of(self.head_dim) {
            return Err(NnError::Shape {
                what: "key rotation: key row".into(),
                expected: format!("a multiple of head_dim {}", self.head_dim),
                found: key.len().to_string(),
            });
        }
        rope.apply(key, self.head_dim, delta);
        Ok(())
    }
}

/// An error unless `seq < n_seq`.
///
/// # Errors
///
/// [`NnError::SequenceOutOfRange`].
pub fn check_seq(n_seq: usize, seq: usize) -> Result<()> {
    if seq >= n_seq {
        return Err(NnError::SequenceOutOfRange { seq, n_seq });
    }
    Ok(())
}

/// [`KvCache::shift_positions`] for any cache: reads the rows of `positions` held by `seq`
/// (every layer, as `f32`), removes them, rotates the keys and stores every row at its new
/// position, in increasing order (so a ring buffer keeps the newest). Holds the moved rows
/// in `f32` meanwhile: `2 * 4 * row_len` bytes per layer and position.
///
/// # Errors
///
/// As [`KvCache::shift_positions`].
pub fn shift_by_rows<C: KvCache + ?Sized>(
    cache: &mut C,
    seq: usize,
    positions: Range<usize>,
    delta: isize,
    rotation: &KeyRotation,
) -> Result<()> {
    check_seq(cache.n_seq(), seq)?;
    let end = positions.end.min(cache.seq_len(seq));
    let n = cache.row_len();
    let mut moved: Vec<(usize, usize, Vec<f32>, Vec<f32>)> = Vec::new();
    for layer in 0..cache.n_layer() {
        for pos in positions.start..end {
            if !cache.contains(layer, seq, pos) {
                continue;
            }
            let Some(new) = pos.checked_add_signed(delta) else {
                continue; // would be negative: removed
            };
            if new >= cache.n_ctx() {
                return Err(NnError::PositionOutOfRange {
                    seq,
                    pos: new,
                    capacity: cache.n_ctx(),
                });
            }
            let (mut k, mut v) = (vec![0f32; n], vec![0f32; n]);
            cache.read(layer, seq, pos..pos + 1, 0..n, &mut k, &mut v)?;
            rotation.rotate(layer, &mut k, delta as i64)?;
            moved.push((new, layer, k, v));
        }
    }
    cache.remove_positions(seq, positions.start..end)?;
    moved.sort_by_key(|&(pos, layer, ..)| (pos, layer));
    for (pos, layer, k, v) in moved {
        cache.store(layer, seq, pos, &k, &v)?;
    }
    Ok(())
}
