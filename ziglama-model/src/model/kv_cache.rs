//! A simple contiguous KV cache: for every layer and sequence, `n_ctx` positions of key and
//! value rows in one allocation.

use std::ops::Range;

use ziglama_nn::kv_cache::check_seq;
use ziglama_nn::{KvCache, NnError};

use super::storage::{check_read_buffers, KvType, Rows};

/// Keys and values of `n_seq` sequences of up to `n_ctx` positions, in a [`KvType`] (`f16`
/// unless chosen otherwise).
///
/// Memory: `2 * n_layer * n_seq * n_ctx * row_bytes` bytes, reserved up front and zeroed
/// lazily by the OS. A fork ([`KvCache::copy_sequence`]) copies the rows.
///
/// ```
/// use ziglama_model::model::kv_cache::ContiguousKvCache;
/// use ziglama_nn::KvCache;
/// let mut cache = ContiguousKvCache::new(2, 1, 4, 3);
/// cache.store(1, 0, 2, &[1.0, 2.0, 3.0], &[0.5; 3]).unwrap();
/// let (mut k, mut v) = ([0f32; 3], [0f32; 3]);
/// cache.read(1, 0, 2..3, 0..3, &mut k, &mut v).unwrap();
/// assert_eq!(k, [1.0, 2.0, 3.0]);
/// assert!(cache.read(1, 0, 4..5, 0..3, &mut k, &mut v).is_err()); // past n_ctx
/// assert!(cache.read(1, 0, 1..2, 0..3, &mut k, &mut v).is_err()); // never stored
/// assert_eq!(cache.seq_len(0), 3);
/// cache.remove_positions(0, 0..usize::MAX).unwrap();
/// assert!(!cache.contains(1, 0, 2)); // removed
/// ```
#[derive(Clone, Debug)]
pub struct ContiguousKvCache {
    n_layer: usize,
    n_seq: usize,
    n_ctx: usize,
    row_len: usize,
    keys: Rows,
    values: Rows,
    /// Whether each (layer, sequence, position) row has been stored.
    stored: Vec<bool>,
}

impl ContiguousKvCache {
    /// A cache for `n_layer` layers, `n_seq` sequences of `n_ctx` positions, rows of
    /// `row_len` values (`n_head_kv * head_dim`), stored in `f16`.
    pub fn new(n_layer: usize, n_seq: usize, n_ctx: usize, row_len: usize) -> ContiguousKvCache {
        match Self::with_type(n_layer, n_seq, n_ctx, row_len, KvType::F16) {
            Ok(c) => c,
            Err(_) => unreachable!("f16 rows are whole blocks of one value"),
        }
    }

    /// [`ContiguousKvCache::new`] with rows stored in `ty`.
    ///
    /// # Errors
    ///
    /// [`NnError::Storage`] when `row_len` is not whole blocks of `ty`.
    pub fn with_type(
        n_layer: usize,
        n_seq: usize,
        n_ctx: usize,
        row_len: usize,
        ty: KvType,
    ) -> Result<ContiguousKvCache, NnError> {
        let n_rows = n_layer * n_seq * n_ctx;
        Ok(ContiguousKvCache {
            n_layer,
            n_seq,
            n_ctx,
            row_len,
            keys: Rows::new(ty, row_len, n_rows)?,
            values: Rows::new(ty, row_len, n_rows)?,
            stored: vec![false; n_rows],
        })
    }

    /// Positions per sequence.
    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// Sequences.
    pub fn n_seq(&self) -> usize {
        self.n_seq
    }

    /// Bytes of key and value storage.
    pub fn bytes(&self) -> usize {
        self.keys.bytes() + self.values.bytes()
    }

    /// Positions of `seq` that `layer` holds now.
    pub fn held(&self, layer: usize, seq: usize) -> usize {
        if layer >= self.n_layer || seq >= self.n_seq {
            return 0;
        }
        let at = (layer * self.n_seq + seq) * self.n_ctx;
        self.stored[at..at + self.n_ctx]
            .iter()
            .filter(|&&s| s)
            .count()
    }

    /// The row index of (`layer`, `seq`, `pos`), checked.
    fn row(&self, layer: usize, seq: usize, pos: usize) -> Result<usize, NnError> {
        check_seq(self.n_seq, seq)?;
        if pos >= self.n_ctx {
            return Err(NnError::PositionOutOfRange {
                seq,
                pos,
                capacity: self.n_ctx,
            });
        }
        if layer >= self.n_layer {
            return Err(NnError::Shape {
                what: "KV cache layer".into(),
                expected: format!("below {}", self.n_layer),
                found: layer.to_string(),
            });
        }
        Ok((layer * self.n_seq + seq) * self.n_ctx + pos)
    }
}

impl KvCache for ContiguousKvCache {
    fn n_layer(&self) -> usize {
        self.n_layer
    }

    fn n_seq(&self) -> usize {
        self.n_seq
    }

    fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    fn row_len(&self) -> usize {
        self.row_len
    }

    fn bytes(&self) -> usize {
        ContiguousKvCache::bytes(self)
    }

    fn contains(&self, layer: usize, seq: usize, pos: usize) -> bool {
        self.row(layer, seq, pos).is_ok_and(|r| self.stored[r])
    }

    fn store(
        &mut self,
        layer: usize,
        seq: usize,
        pos: usize,
        key: &[f32],
        value: &[f32],
    ) -> Result<(), NnError> {
        let r = self.row(layer, seq, pos)?;
        self.keys.write(r, key, "key")?;
        self.values.write(r, value, "value")?;
        self.stored[r] = true;
        Ok(())
    }

    fn read(
        &self,
        layer: usize,
        seq: usize,
        positions: Range<usize>,
        cols: Range<usize>,
        keys: &mut [f32],
        values: &mut [f32],
    ) -> Result<(), NnError> {
        let w = cols.len();
        let n = positions.len();
        check_read_buffers(n * w, keys, values)?;
        for (i, pos) in positions.enumerate() {
            let r = self.row(layer, seq, pos)?;
            if !self.stored[r] {
                return Err(NnError::PositionNotStored { layer, seq, pos });
            }
            self.keys.read(r, cols.clone(), &mut keys[i * w..][..w])?;
            self.values
                .read(r, cols.clone(), &mut values[i * w..][..w])?;
        }
        Ok(())
    }

    fn remove_positions(&mut self, seq: usize, positions: Range<usize>) -> Result<(), NnError> {
        check_seq(self.n_seq, seq)?;
        let (a, b) = (
            positions.start.min(self.n_ctx),
            positions.end.min(self.n_ctx),
        );
        for layer in 0..self.n_layer {
            let at = (layer * self.n_seq + seq) * self.n_ctx;
            if a < b {
                self.stored[at + a..at + b].fill(false);
            }
        }
        Ok(())
    }

    fn copy_sequence(&mut self, src: usize, dst: usize) -> Result<(), NnError> {
        check_seq(self.n_seq, src)?;
        check_seq(self.n_seq, dst)?;
        if src == dst {
            return Ok(());
        }
        for layer in 0..self.n_layer {
            let (s, d) = (
                (layer * self.n_seq + src) * self.n_ctx,
                (layer * self.n_seq + dst) * self.n_ctx,
            );
            for pos in 0..self.n_ctx {
                self.stored[d + pos] = self.stored[s + pos];
                if self.stored[s + pos] {
                    self.keys.copy_row(s + pos, d + pos);
                    self.values.copy_row(s + pos, d + pos);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_storage_is_exact_for_f16_values_and_bytes_follow_the_format() {
        let mut c = ContiguousKvCache::new(1, 1, 2, 32);
        let k: Vec<f32> = (0..32).map(|i| i as f32 * 0.125).collect();
        c.store(0, 0, 1, &k, &k).unwrap();
        let (mut a, mut b) = (vec![0f32; 16], vec![0f32; 16]);
        c.read(0, 0, 1..2, 16..32, &mut a, &mut b).unwrap();
        assert_eq!(a, &k[16..]);
        assert_eq!(c.bytes(), 2 * 2 * 32 * 2);
        let q = ContiguousKvCache::with_type(1, 1, 2, 32, KvType::Q4_0).unwrap();
        assert_eq!(KvCache::bytes(&q), 2 * 2 * 18);
        assert!(ContiguousKvCache::with_type(1, 1, 2, 30, KvType::Q8_0).is_err());
    }
}
