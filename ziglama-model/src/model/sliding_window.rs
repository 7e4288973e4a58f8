//! A sliding-window KV cache: for every layer and sequence, a ring buffer of the last
//! `window` positions, so memory and per-token attention cost stay flat however long the
//! sequence grows.

use std::ops::Range;

use ziglama_nn::kv_cache::check_seq;
use ziglama_nn::{KvCache, NnError};

use super::storage::{check_read_buffers, KvType, Rows};

/// A slot no position occupies.
const EMPTY: usize = usize::MAX;

/// Keys and values of the last `window` positions of `n_seq` sequences, in a [`KvType`]
/// (`f16` unless chosen otherwise). Positions are unbounded ([`KvCache::n_ctx`] is
/// `usize::MAX`): the ring, not the context, limits what is held.
///
/// Position `p` lives in slot `p % window`; storing `p + window` evicts it, and reading an
/// evicted position is an error ([`NnError::PositionEvicted`]). Attention with a window of
/// `window` positions never reads one (it sees `p - window + 1 ..= p`).
///
/// Memory: `2 * n_layer * n_seq * window * row_bytes` bytes.
///
/// ```
/// use ziglama_model::model::SlidingWindowKvCache;
/// use ziglama_nn::KvCache;
/// let mut cache = SlidingWindowKvCache::new(1, 1, 4, 2);
/// for pos in 0..10 {
///     cache.store(0, 0, pos, &[pos as f32, 0.0], &[0.0; 2]).unwrap();
/// }
/// assert_eq!(cache.held(0, 0), 4); // positions 6..=9
/// let (mut k, mut v) = ([0f32; 2], [0f32; 2]);
/// cache.read(0, 0, 9..10, 0..2, &mut k, &mut v).unwrap();
/// assert_eq!(k[0], 9.0);
/// assert!(cache.read(0, 0, 5..6, 0..2, &mut k, &mut v).is_err()); // evicted by position 9
/// assert_eq!(cache.seq_len(0), 10);
/// ```
#[derive(Clone, Debug)]
pub struct SlidingWindowKvCache {
    n_layer: usize,
    n_seq: usize,
    window: usize,
    row_len: usize,
    keys: Rows,
    values: Rows,
    /// The position in each (layer, sequence, slot), or [`EMPTY`].
    slots: Vec<usize>,
}

impl SlidingWindowKvCache {
    /// A cache for `n_layer` layers, `n_seq` sequences, the last `window` positions of each
    /// (at least 1), rows of `row_len` values (`n_head_kv * head_dim`).
    pub fn new(n_layer: usize, n_seq: usize, window: usize, row_len: usize) -> Self {
        match Self::with_type(n_layer, n_seq, window, row_len, KvType::F16) {
            Ok(c) => c,
            Err(_) => unreachable!("f16 rows are whole blocks of one value"),
        }
    }

    /// [`SlidingWindowKvCache::new`] with rows stored in `ty`.
    ///
    /// # Errors
    ///
    /// [`NnError::Storage`] when `row_len` is not whole blocks of `ty`.
    pub fn with_type(
        n_layer: usize,
        n_seq: usize,
        window: usize,
        row_len: usize,
        ty: KvType,
    ) -> Result<Self, NnError> {
        let window = window.max(1);
        let n_rows = n_layer * n_seq * window;
        Ok(SlidingWindowKvCache {
            n_layer,
            n_seq,
            window,
            row_len,
            keys: Rows::new(ty, row_len, n_rows)?,
            values: Rows::new(ty, row_len, n_rows)?,
            slots: vec![EMPTY; n_rows],
        })
    }

    /// Positions each layer holds per sequence.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Sequences.
    pub fn n_seq(&self) -> usize {
        self.n_seq
    }

    /// Bytes of key and value storage.
    pub fn bytes(&self) -> usize {
        self.keys.bytes() + self.values.bytes()
    }

    /// Positions of `seq` that `layer` holds now (at most [`Self::window`]).
    pub fn held(&self, layer: usize, seq: usize) -> usize {
        if layer >= self.n_layer || seq >= self.n_seq {
            return 0;
        }
        let at = (layer * self.n_seq + seq) * self.window;
        self.slots[at..at + self.window]
            .iter()
            .filter(|&&p| p != EMPTY)
            .count()
    }

    /// The slot index of `pos`, after checking `layer` and `seq`.
    fn slot(&self, layer: usize, seq: usize, pos: usize) -> Result<usize, NnError> {
        check_seq(self.n_seq, seq)?;
        if layer >= self.n_layer {
            return Err(NnError::Shape {
                what: "KV cache layer".into(),
                expected: format!("below {}", self.n_layer),
                found: layer.to_string(),
            });
        }
        Ok((layer * self.n_seq + seq) * self.window + pos % self.window)
    }

    /// The slot of `pos`, which must be held.
    fn held_slot(&self, layer: usize, seq: usize, pos: usize) -> Result<usize, NnError> {
        let slot = self.slot(layer, seq, pos)?;
        match self.slots[slot] {
            p if p == pos => Ok(slot),
            p if p != EMPTY && p > pos => Err(NnError::PositionEvicted {
                layer,
                seq,
                pos,
                window: self.window,
            }),
            _ => Err(NnError::PositionNotStored { layer, seq, pos }),
        }
    }
}

impl KvCache for SlidingWindowKvCache {
    fn n_layer(&self) -> usize {
        self.n_layer
    }

    fn n_seq(&self) -> usize {
        self.n_seq
    }

    fn n_ctx(&self) -> usize {
        usize::MAX
    }

    fn row_len(&self) -> usize {
        self.row_len
    }

    fn bytes(&self) -> usize {
        SlidingWindowKvCache::bytes(self)
    }

    fn contains(&self, layer: usize, seq: usize, pos: usize) -> bool {
        self.held_slot(layer, seq, pos).is_ok()
    }

    fn store(
        &mut self,
        layer: usize,
        seq: usize,
        pos: usize,
        key: &[f32],
        value: &[f32],
    ) -> Result<(), NnError> {
        let slot = self.slot(layer, seq, pos)?;
        self.keys.write(slot, key, "key")?;
        self.values.write(slot, value, "value")?;
        self.slots[slot] = pos;
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
            let slot = self.held_slot(layer, seq, pos)?;
            self.keys
                .read(slot, cols.clone(), &mut keys[i * w..][..w])?;
            self.values
                .read(slot, cols.clone(), &mut values[i * w..][..w])?;
        }
        Ok(())
    }

    fn remove_positions(&mut self, seq: usize, positions: Range<usize>) -> Result<(), NnError> {
        check_seq(self.n_seq, seq)?;
        for layer in 0..self.n_layer {
            let at = (layer * self.n_seq + seq) * self.window;
            for p in &mut self.slots[at..at + self.window] {
                if *p != EMPTY && positions.contains(p) {
                    *p = EMPTY;
                }
            }
        }
        Ok(())
    }

    fn seq_len(&self, seq: usize) -> usize {
        if seq >= self.n_seq {
            return 0;
        }
        let mut len = 0;
        for layer in 0..self.n_layer {
            let at = (layer * self.n_seq + seq) * self.window;
            for &p in &self.slots[at..at + self.window] {
                if p != EMPTY {
                    len = len.max(p + 1);
                }
            }
        }
        len
    }

    fn copy_sequence(&mut self, src: usize, dst: usize) -> Result<(), NnError> {
        check_seq(self.n_seq, src)?;
        check_seq(self.n_seq, dst)?;
        if src == dst {
            return Ok(());
        }
        for layer in 0..self.n_layer {
            let s = (layer * self.n_seq + src) * self.window;
            let d = (layer * self.n_seq + dst) * self.window;
            for i in 0..self.window {
                self.slots[d + i] = self.slots[s + i];
                if self.slots[s + i] != EMPTY {
                    self.keys.copy_row(s + i, d + i);
                    self.values.copy_row(s + i, d + i);
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
    fn holds_the_last_window_positions() {
        let mut c = SlidingWindowKvCache::new(2, 2, 3, 1);
        for pos in 0..7 {
            c.store(1, 1, pos, &[pos as f32], &[-(pos as f32)]).unwrap();
        }
        assert_eq!(c.held(1, 1), 3);
        assert_eq!(c.held(0, 1), 0);
        let (mut k, mut v) = ([0f32; 3], [0f32; 3]);
        c.read(1, 1, 4..7, 0..1, &mut k, &mut v).unwrap();
        assert_eq!(k, [4.0, 5.0, 6.0]);
        assert_eq!(v, [-4.0, -5.0, -6.0]);
        let (k, v) = (&mut [0f32; 1], &mut [0f32; 1]);
        assert!(matches!(
            c.read(1, 1, 3..4, 0..1, k, v),
            Err(NnError::PositionEvicted { pos: 3, .. })
        ));
        assert!(matches!(
            c.read(1, 1, 7..8, 0..1, k, v),
            Err(NnError::PositionNotStored { pos: 7, .. })
        ));
        assert!(matches!(
            c.read(1, 0, 5..6, 0..1, k, v),
            Err(NnError::PositionNotStored { .. })
        ));
        c.remove_positions(1, 0..usize::MAX).unwrap();
        assert_eq!(c.held(1, 1), 0);
        assert!(!c.contains(1, 1, 6));
    }

    #[test]
    fn bad_indices_are_errors() {
        let mut c = SlidingWindowKvCache::new(1, 1, 2, 2);
        assert!(c.store(0, 1, 0, &[0.0; 2], &[0.0; 2]).is_err());
        assert!(c.store(1, 0, 0, &[0.0; 2], &[0.0; 2]).is_err());
        assert!(c.store(0, 0, 0, &[0.0; 3], &[0.0; 2]).is_err());
        assert_eq!(c.bytes(), 2 * 2 * 2 * 2);
    }
}
