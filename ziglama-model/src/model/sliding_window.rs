//! A sliding-window KV cache: for every layer and sequence, a ring buffer of the last
//! `window` positions, so memory and per-token attention cost stay flat however long the
//! sequence grows.

use ziglama_nn::half::f16;
use ziglama_nn::half::slice::HalfBitsSliceExt;
use ziglama_nn::{KvCache, NnError};

/// A slot no position occupies.
const EMPTY: usize = usize::MAX;

/// Keys and values of the last `window` positions of `n_seq` sequences, in `f16`.
///
/// Position `p` lives in slot `p % window`; storing `p + window` evicts it, and reading an
/// evicted position is an error ([`NnError::PositionEvicted`]). Attention with a window of
/// `window` positions never reads one (it sees `p - window + 1 ..= p`).
///
/// Memory: `2 * n_layer * n_seq * window * row_len * 2` bytes.
///
/// ```
/// use ziglama_model::model::SlidingWindowKvCache;
/// use ziglama_nn::KvCache;
/// let mut cache = SlidingWindowKvCache::new(1, 1, 4, 2);
/// for pos in 0..10 {
///     cache.store(0, 0, pos, &[pos as f32, 0.0], &[0.0; 2]).unwrap();
/// }
/// assert_eq!(cache.held(0, 0), 4); // positions 6..=9
/// assert_eq!(cache.key(0, 0, 9).unwrap()[0].to_f32(), 9.0);
/// assert!(cache.key(0, 0, 5).is_err()); // evicted by position 9
/// ```
#[derive(Clone, Debug)]
pub struct SlidingWindowKvCache {
    n_layer: usize,
    n_seq: usize,
    window: usize,
    row_len: usize,
    keys: Vec<u16>,
    values: Vec<u16>,
    /// The position in each (layer, sequence, slot), or [`EMPTY`].
    slots: Vec<usize>,
}

impl SlidingWindowKvCache {
    /// A cache for `n_layer` layers, `n_seq` sequences, the last `window` positions of each
    /// (at least 1), rows of `row_len` values (`n_head_kv * head_dim`).
    pub fn new(n_layer: usize, n_seq: usize, window: usize, row_len: usize) -> Self {
        let window = window.max(1);
        let len = n_layer * n_seq * window * row_len;
        SlidingWindowKvCache {
            n_layer,
            n_seq,
            window,
            row_len,
            keys: vec![0u16; len],
            values: vec![0u16; len],
            slots: vec![EMPTY; n_layer * n_seq * window],
        }
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
        (self.keys.len() + self.values.len()) * std::mem::size_of::<u16>()
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

    /// Forgets every position of `seq`.
    pub fn clear(&mut self, seq: usize) {
        if seq >= self.n_seq {
            return;
        }
        for layer in 0..self.n_layer {
            let at = (layer * self.n_seq + seq) * self.window;
            self.slots[at..at + self.window].fill(EMPTY);
        }
    }

    /// The slot index of `pos`, after checking `layer` and `seq`.
    fn slot(&self, layer: usize, seq: usize, pos: usize) -> Result<usize, NnError> {
        if seq >= self.n_seq {
            return Err(NnError::SequenceOutOfRange {
                seq,
                n_seq: self.n_seq,
            });
        }
        if layer >= self.n_layer {
            return Err(NnError::Shape {
                what: "KV cache layer".into(),
                expected: format!("below {}", self.n_layer),
                found: layer.to_string(),
            });
        }
        Ok((layer * self.n_seq + seq) * self.window + pos % self.window)
    }

    /// The row offset of `pos`, which must be held.
    fn held_offset(&self, layer: usize, seq: usize, pos: usize) -> Result<usize, NnError> {
        let slot = self.slot(layer, seq, pos)?;
        match self.slots[slot] {
            p if p == pos => Ok(slot * self.row_len),
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
        let slot = self.slot(layer, seq, pos)?;
        for (what, row) in [("key", key), ("value", value)] {
            if row.len() != self.row_len {
                return Err(NnError::Shape {
                    what: format!("KV cache {what} row"),
                    expected: self.row_len.to_string(),
                    found: row.len().to_string(),
                });
            }
        }
        let at = slot * self.row_len;
        for (d, s) in self.keys[at..at + self.row_len].iter_mut().zip(key) {
            *d = f16::from_f32(*s).to_bits();
        }
        for (d, s) in self.values[at..at + self.row_len].iter_mut().zip(value) {
            *d = f16::from_f32(*s).to_bits();
        }
        self.slots[slot] = pos;
        Ok(())
    }

    fn key(&self, layer: usize, seq: usize, pos: usize) -> Result<&[f16], NnError> {
        let at = self.held_offset(layer, seq, pos)?;
        Ok(self.keys[at..at + self.row_len].reinterpret_cast())
    }

    fn value(&self, layer: usize, seq: usize, pos: usize) -> Result<&[f16], NnError> {
        let at = self.held_offset(layer, seq, pos)?;
        Ok(self.values[at..at + self.row_len].reinterpret_cast())
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
        for pos in 4..7 {
            assert_eq!(c.key(1, 1, pos).unwrap()[0].to_f32(), pos as f32);
            assert_eq!(c.value(1, 1, pos).unwrap()[0].to_f32(), -(pos as f32));
        }
        assert!(matches!(
            c.key(1, 1, 3),
            Err(NnError::PositionEvicted { pos: 3, .. })
        ));
        assert!(matches!(
            c.key(1, 1, 7),
            Err(NnError::PositionNotStored { pos: 7, .. })
        ));
        assert!(matches!(
            c.key(1, 0, 5),
            Err(NnError::PositionNotStored { .. })
        ));
        c.clear(1);
        assert_eq!(c.held(1, 1), 0);
        assert!(c.key(1, 1, 6).is_err());
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
