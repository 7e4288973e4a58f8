//! A simple contiguous KV cache: for every layer and sequence, `n_ctx` positions of `f16` key
//! and value rows in one allocation.

use ziglama_nn::half::f16;
use ziglama_nn::half::slice::HalfBitsSliceExt;
use ziglama_nn::{KvCache, NnError};

/// Keys and values of `n_seq` sequences of up to `n_ctx` positions, in `f16`.
///
/// Memory: `2 * n_layer * n_seq * n_ctx * row_len * 2` bytes, zeroed lazily by the OS.
///
/// ```
/// use ziglama_model::model::kv_cache::ContiguousKvCache;
/// use ziglama_nn::KvCache;
/// let mut cache = ContiguousKvCache::new(2, 1, 4, 3);
/// cache.store(1, 0, 2, &[1.0, 2.0, 3.0], &[0.5; 3]).unwrap();
/// assert_eq!(cache.key(1, 0, 2).unwrap()[2].to_f32(), 3.0);
/// assert!(cache.key(1, 0, 4).is_err()); // past n_ctx
/// assert!(cache.key(1, 0, 1).is_err()); // never stored
/// cache.clear(0);
/// assert!(cache.key(1, 0, 2).is_err()); // cleared
/// ```
#[derive(Clone, Debug)]
pub struct ContiguousKvCache {
    n_layer: usize,
    n_seq: usize,
    n_ctx: usize,
    row_len: usize,
    keys: Vec<u16>,
    values: Vec<u16>,
    /// Whether each (layer, sequence, position) row has been stored.
    stored: Vec<bool>,
}

impl ContiguousKvCache {
    /// A cache for `n_layer` layers, `n_seq` sequences of `n_ctx` positions, rows of
    /// `row_len` values (`n_head_kv * head_dim`).
    pub fn new(n_layer: usize, n_seq: usize, n_ctx: usize, row_len: usize) -> ContiguousKvCache {
        let len = n_layer * n_seq * n_ctx * row_len;
        ContiguousKvCache {
            n_layer,
            n_seq,
            n_ctx,
            row_len,
            keys: vec![0u16; len],
            values: vec![0u16; len],
            stored: vec![false; n_layer * n_seq * n_ctx],
        }
    }

    /// Forgets every position of `seq` (to run a new sequence in its place).
    pub fn clear(&mut self, seq: usize) {
        for layer in 0..self.n_layer {
            if seq < self.n_seq {
                let at = (layer * self.n_seq + seq) * self.n_ctx;
                self.stored[at..at + self.n_ctx].fill(false);
            }
        }
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
        (self.keys.len() + self.values.len()) * std::mem::size_of::<u16>()
    }

    /// Positions of `seq` that `layer` holds now.
    pub fn held(&self, layer: usize, seq: usize) -> usize {
        if layer >= self.n_layer || seq >= self.n_seq {
            return 0;
        }
        let at = (layer * self.n_seq + seq) * self.n_ctx;
        self.stored[at..at + self.n_ctx].iter().filter(|&&s| s).count()
    }

    fn offset(&self, layer: usize, seq: usize, pos: usize) -> Result<usize, NnError> {
        if seq >= self.n_seq {
            return Err(NnError::SequenceOutOfRange {
                seq,
                n_seq: self.n_seq,
            });
        }
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
        Ok(((layer * self.n_seq + seq) * self.n_ctx + pos) * self.row_len)
    }

    /// [`Self::offset`] of a row that has been stored.
    fn stored_offset(&self, layer: usize, seq: usize, pos: usize) -> Result<usize, NnError> {
        let at = self.offset(layer, seq, pos)?;
        if !self.stored[(layer * self.n_seq + seq) * self.n_ctx + pos] {
            return Err(NnError::PositionNotStored { layer, seq, pos });
        }
        Ok(at)
    }
}

impl KvCache for ContiguousKvCache {
    fn row_len(&self) -> usize {
        self.row_len
    }

    fn store(
        &mut self,
        layer: usize,
        seq: usize,
        pos: usize,
        key: &[f32],
        value: &[f32],
    ) -> Result<(), NnError> {
        let at = self.offset(layer, seq, pos)?;
        for (what, row) in [("key", key), ("value", value)] {
            if row.len() != self.row_len {
                return Err(NnError::Shape {
                    what: format!("KV cache {what} row"),
                    expected: self.row_len.to_string(),
                    found: row.len().to_string(),
                });
            }
        }
        let n = self.row_len;
        for (d, s) in self.keys[at..at + n].iter_mut().zip(key) {
            *d = f16::from_f32(*s).to_bits();
        }
        for (d, s) in self.values[at..at + n].iter_mut().zip(value) {
            *d = f16::from_f32(*s).to_bits();
        }
        self.stored[((layer * self.n_seq + seq) * self.n_ctx) + pos] = true;
        Ok(())
    }

    fn key(&self, layer: usize, seq: usize, pos: usize) -> Result<&[f16], NnError> {
        let at = self.stored_offset(layer, seq, pos)?;
        Ok(self.keys[at..at + self.row_len].reinterpret_cast())
    }

    fn value(&self, layer: usize, seq: usize, pos: usize) -> Result<&[f16], NnError> {
        let at = self.stored_offset(layer, seq, pos)?;
        Ok(self.values[at..at + self.row_len].reinterpret_cast())
    }
}
