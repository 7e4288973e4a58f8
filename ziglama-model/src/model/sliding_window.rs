//! A sliding-window KV cache: for every layer and sequence, a ring buffer of the last
//! `window` positions, so memory and per-token attention cost stay flat however long the
//! sequence grows.

use std::ops::Range;

use ziglama_nn::kv_cache::{check_seq, shift_by_rows, KeyRotation};
use ziglama_nn::{KvCache, NnError};

use super::storage::{check_read_buffers, KvType, Rows};

/// A slot no position occupies.
const EMPTY: usize = usize::MAX;

/// Keys and values of the last `window` positions of `n_seq` sequences, in a [`KvType`]
/// (`f16` unless chosen otherwise). Positions are unbounded ([`KvCache::n_ctx`] is
/// `usize::MAX`): the ring, not the context, limits what is held.
///
/// Position `p` lives in slot `p % window` (`p % capacity` with
/// [`SlidingWindowKvCache::with_capacity`]); storing `p + window` evicts it, and reading an
/// evicted position is an error ([`NnError::PositionEvicted`]). Attention with a window of
/// `window` positions never reads one (it sees `p - window + 1 ..= p`) as long as the
/// sequence only grows. An evicted position cannot come back: after the sequence is trimmed
/// to an earlier end ([`KvCache::remove_positions`] of its tail) or shifted down, the window
/// of the new end may reach back to evicted positions; [`KvCache::check_continuation`] says
/// so, [`KvCache::shift_positions`] refuses such a shift, and a read of one is
/// [`NnError::PositionEvicted`], never another position's row.
///
/// Memory: `2 * n_layer * n_seq * window * row_bytes` bytes (`capacity` for `window`).
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
    /// Slots per (layer, sequence): at least `window`.
    capacity: usize,
    row_len: usize,
    keys: Rows,
    values: Rows,
    /// The position in each (layer, sequence, slot), or [`EMPTY`].
    slots: Vec<usize>,
    /// Per (layer, sequence): positions below this that are not held were evicted (their
    /// slot was taken by a later position) and cannot be read again.
    lost_below: Vec<usize>,
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
        Self::with_capacity(n_layer, n_seq, window, window, row_len, ty)
    }

    /// [`SlidingWindowKvCache::with_type`] with a ring of `capacity` positions (at least the
    /// window) per layer and sequence: positions older than the window that still fit are
    /// kept, so the sequence can go back (be trimmed, or reuse a shorter prefix) by up to
    /// `capacity - window` positions, as llama.cpp's SWA cache keeps `n_swa + n_ubatch`
    /// cells. Attention still reads the window only.
    ///
    /// # Errors
    ///
    /// [`NnError::Storage`] when `row_len` is not whole blocks of `ty`.
    pub fn with_capacity(
        n_layer: usize,
        n_seq: usize,
        window: usize,
        capacity: usize,
        row_len: usize,
        ty: KvType,
    ) -> Result<Self, NnError> {
        let window = window.max(1);
        let capacity = capacity.max(window);
        let n_rows = n_layer * n_seq * capacity;
        Ok(SlidingWindowKvCache {
            n_layer,
            n_seq,
            window,
            capacity,
            row_len,
            keys: Rows::new(ty, row_len, n_rows)?,
            values: Rows::new(ty, row_len, n_rows)?,
            slots: vec![EMPTY; n_rows],
            lost_below: vec![0; n_layer * n_seq],
        })
    }

    /// The attention window: the positions before `p` a token at `p` reads.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Positions each layer holds per sequence: the window, or more (see
    /// [`SlidingWindowKvCache::with_capacity`]).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Sequences.
    pub fn n_seq(&self) -> usize {
        self.n_seq
    }

    /// Bytes of key and value storage.
    pub fn bytes(&self) -> usize {
        self.keys.bytes() + self.values.bytes()
    }

    /// Positions of `seq` that `layer` holds now (at most [`Self::capacity`]).
    pub fn held(&self, layer: usize, seq: usize) -> usize {
        if layer >= self.n_layer || seq >= self.n_seq {
            return 0;
        }
        let at = (layer * self.n_seq + seq) * self.capacity;
        self.slots[at..at + self.capacity]
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
        Ok((layer * self.n_seq + seq) * self.capacity + pos % self.capacity)
    }

    /// The slot of `pos`, which must be held.
    fn held_slot(&self, layer: usize, seq: usize, pos: usize) -> Result<usize, NnError> {
        let slot = self.slot(layer, seq, pos)?;
        if self.slots[slot] == pos {
            Ok(slot)
        } else if pos < self.lost_below[layer * self.n_seq + seq] {
            Err(NnError::PositionEvicted {
                layer,
                seq,
                pos,
                window: self.window,
            })
        } else {
            Err(NnError::PositionNotStored { layer, seq, pos })
        }
    }

    /// Whether `layer` holds `pos` of `seq` (both in range).
    fn holds(&self, layer: usize, seq: usize, pos: usize) -> bool {
        self.slots[(layer * self.n_seq + seq) * self.capacity + pos % self.capacity] == pos
    }

    /// One past the last position `seq` has in this ring, held or evicted: a shift of a
    /// range clipped to this moves everything the sequence had.
    pub(crate) fn extent(&self, seq: usize) -> usize {
        let marks = (0..self.n_layer).map(|l| self.lost_below[l * self.n_seq + seq]);
        marks.fold(self.seq_len(seq), usize::max)
    }

    /// Where the rows of `layer` that `seq` has lost go when `range` moves by `delta`: the
    /// positions a shift fills with rows the ring cannot give (what it still holds there is
    /// stale afterwards, and [`Self::lose`] drops it).
    pub(crate) fn lost_destinations(
        &self,
        layer: usize,
        seq: usize,
        range: &Range<usize>,
        delta: isize,
    ) -> Vec<usize> {
        let lost = self.lost_below[layer * self.n_seq + seq];
        (range.start..range.end.min(lost))
            .filter(|&p| !self.holds(layer, seq, p))
            .filter_map(|p| p.checked_add_signed(delta))
            .collect()
    }

    /// Drops what `layer` holds of `seq` at `positions` and counts them as evicted.
    pub(crate) fn lose(&mut self, layer: usize, seq: usize, positions: &[usize]) {
        for &p in positions {
            let slot = (layer * self.n_seq + seq) * self.capacity + p % self.capacity;
            if self.slots[slot] == p {
                self.slots[slot] = EMPTY;
            }
            let mark = &mut self.lost_below[layer * self.n_seq + seq];
            *mark = (*mark).max(p + 1);
        }
    }

    /// The first position of `layer`'s window before `end` (the positions a token at `end`
    /// reads from the cache) that `seq` will lack once `range` (clipped to
    /// [`Self::extent`]) has moved by `delta`, though the sequence has it; `end` is the
    /// sequence's end after the move.
    pub(crate) fn lost_after_shift(
        &self,
        layer: usize,
        seq: usize,
        range: &Range<usize>,
        delta: isize,
        end: usize,
    ) -> Option<usize> {
        let lost = self.lost_below[layer * self.n_seq + seq];
        let first = (end + 1).saturating_sub(self.window);
        (first..end).find(|&p| {
            let moved_from = p
                .checked_add_signed(-delta)
                .filter(|from| range.contains(from));
            let from = match moved_from {
                Some(from) => from,
                None if range.contains(&p) => return false, // vacated: a hole, not a loss
                None => p,
            };
            from < lost && !self.holds(layer, seq, from)
        })
    }

    /// Refuses a shift the windows cannot follow: [`NnError::PositionEvicted`] for the first
    /// layer whose window of `end` (the sequence's end after the move) `seq` will lack a
    /// position of once `range` has moved by `delta` ([`Self::lost_after_shift`]). `layers`
    /// pairs the layer numbers to report with this ring's layers.
    pub(crate) fn refuse_lost_window(
        &self,
        layers: impl Iterator<Item = (usize, usize)>,
        seq: usize,
        range: &Range<usize>,
        delta: isize,
        end: usize,
    ) -> Result<(), NnError> {
        for (model_layer, l) in layers {
            if let Some(pos) = self.lost_after_shift(l, seq, range, delta, end) {
                return Err(NnError::PositionEvicted {
                    layer: model_layer,
                    seq,
                    pos,
                    window: self.window,
                });
            }
        }
        Ok(())
    }
}

/// One past the last position `seq` holds in `cache` once `range` has moved by `delta`
/// (positions moved below zero are gone).
pub(crate) fn end_after_shift<C: KvCache + ?Sized>(
    cache: &C,
    seq: usize,
    range: &Range<usize>,
    delta: isize,
) -> usize {
    let len = cache.seq_len(seq);
    let mut end = 0;
    for layer in 0..cache.n_layer() {
        let mut moved_seen = false;
        for p in (0..len).rev() {
            if !cache.contains(layer, seq, p) {
                continue;
            }
            if range.contains(&p) {
                if !moved_seen {
                    moved_seen = true;
                    if let Some(q) = p.checked_add_signed(delta) {
                        end = end.max(q + 1);
                    }
                }
            } else {
                end = end.max(p + 1);
                if p < range.start {
                    break;
                }
            }
        }
    }
    end
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
        let evicted = std::mem::replace(&mut self.slots[slot], pos);
        if evicted != EMPTY && evicted != pos {
            let mark = &mut self.lost_below[layer * self.n_seq + seq];
            *mark = (*mark).max(evicted + 1);
        }
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
            let at = (layer * self.n_seq + seq) * self.capacity;
            for p in &mut self.slots[at..at + self.capacity] {
                if *p != EMPTY && positions.contains(p) {
                    *p = EMPTY;
                }
            }
            // Removing up to or past the mark: what was evicted at or above the start is
            // removed now (it may be stored again); what lies below the start stays lost.
            let mark = &mut self.lost_below[layer * self.n_seq + seq];
            if positions.start < *mark && positions.end >= *mark {
                *mark = positions.start;
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
            let at = (layer * self.n_seq + seq) * self.capacity;
            for &p in &self.slots[at..at + self.capacity] {
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
            self.lost_below[layer * self.n_seq + dst] = self.lost_below[layer * self.n_seq + src];
            let s = (layer * self.n_seq + src) * self.capacity;
            let d = (layer * self.n_seq + dst) * self.capacity;
            for i in 0..self.capacity {
                self.slots[d + i] = self.slots[s + i];
                if self.slots[s + i] != EMPTY {
                    self.keys.copy_row(s + i, d + i);
                    self.values.copy_row(s + i, d + i);
                }
            }
        }
        Ok(())
    }

    fn check_continuation(&self, seq: usize, pos: usize) -> Result<(), NnError> {
        check_seq(self.n_seq, seq)?;
        let first = (pos + 1).saturating_sub(self.window);
        for layer in 0..self.n_layer {
            let lost = self.lost_below[layer * self.n_seq + seq].min(pos);
            if let Some(p) = (first..lost).find(|&p| !self.holds(layer, seq, p)) {
                return Err(NnError::PositionEvicted {
                    layer,
                    seq,
                    pos: p,
                    window: self.window,
                });
            }
        }
        Ok(())
    }

    fn shift_positions(
        &mut self,
        seq: usize,
        positions: Range<usize>,
        delta: isize,
        rotation: &KeyRotation,
    ) -> Result<(), NnError> {
        check_seq(self.n_seq, seq)?;
        let range = positions.start..positions.end.min(self.extent(seq));
        let dests: Vec<Vec<usize>> = (0..self.n_layer)
            .map(|l| self.lost_destinations(l, seq, &range, delta))
            .collect();
        let lost_end = dests.iter().flatten().map(|p| p + 1).max().unwrap_or(0);
        let end = end_after_shift(self, seq, &range, delta).max(lost_end);
        self.refuse_lost_window((0..self.n_layer).map(|l| (l, l)), seq, &range, delta, end)?;
        shift_by_rows(self, seq, range.clone(), delta, rotation)?;
        for (layer, d) in dests.iter().enumerate() {
            self.lose(layer, seq, d);
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
    fn evicted_positions_do_not_come_back() {
        let mut c = SlidingWindowKvCache::new(1, 2, 4, 1);
        for pos in 0..10 {
            c.store(0, 0, pos, &[pos as f32], &[0.0]).unwrap();
        }
        // Holds 6..=9; 0..=5 were evicted.
        c.check_continuation(0, 10).unwrap();
        c.remove_positions(0, 9..usize::MAX).unwrap();
        c.check_continuation(0, 9).unwrap(); // the window of 9 is 6..=8
        c.remove_positions(0, 8..usize::MAX).unwrap();
        let e = c.check_continuation(0, 8).unwrap_err(); // the window of 8 is 5..=7
        assert!(
            matches!(
                e,
                NnError::PositionEvicted {
                    pos: 5,
                    window: 4,
                    ..
                }
            ),
            "{e}"
        );
        let (k, v) = (&mut [0f32; 1], &mut [0f32; 1]);
        let e = c.read(0, 0, 5..6, 0..1, k, v).unwrap_err();
        assert!(matches!(e, NnError::PositionEvicted { pos: 5, .. }), "{e}");
        // A removed position that was held is only not stored.
        let e = c.read(0, 0, 8..9, 0..1, k, v).unwrap_err();
        assert!(
            matches!(e, NnError::PositionNotStored { pos: 8, .. }),
            "{e}"
        );
        // A fork carries what was lost.
        c.copy_sequence(0, 1).unwrap();
        assert!(c.check_continuation(1, 8).is_err());
        // Emptied, the sequence starts afresh.
        c.remove_positions(1, 0..usize::MAX).unwrap();
        c.check_continuation(1, 0).unwrap();
        c.store(0, 1, 0, &[1.0], &[0.0]).unwrap();
        c.read(0, 1, 0..1, 0..1, k, v).unwrap();
        assert_eq!(k[0], 1.0);
    }

    #[test]
    fn a_shift_that_needs_evicted_positions_is_refused_and_moves_nothing() {
        let rotation = KeyRotation::new(
            vec![ziglama_nn::rope::Rope::new(
                2,
                ziglama_nn::rope::RopeMode::Normal,
                1e4,
            )],
            2,
        );
        let mut c = SlidingWindowKvCache::new(1, 1, 4, 2);
        for pos in 0..10 {
            c.store(0, 0, pos, &[pos as f32, 0.0], &[pos as f32, 0.0])
                .unwrap();
        }
        // A context shift keeping 0..4: the window of the new end 6 is 3..=5, and 3 (kept)
        // was evicted.
        c.remove_positions(0, 4..8).unwrap();
        let e = c.shift_positions(0, 8..10, -4, &rotation).unwrap_err();
        assert!(matches!(e, NnError::PositionEvicted { pos: 3, .. }), "{e}");
        assert!(c.contains(0, 0, 8) && c.contains(0, 0, 9) && !c.contains(0, 0, 4));
        // Keeping nothing: the window of the new end 2 is 0..=1, both moved.
        c.remove_positions(0, 0..8).unwrap();
        c.shift_positions(0, 8..10, -8, &rotation).unwrap();
        assert_eq!(c.seq_len(0), 2);
        c.check_continuation(0, 2).unwrap();
        let (mut k, mut v) = ([0f32; 2], [0f32; 2]);
        c.read(0, 0, 1..2, 0..2, &mut k, &mut v).unwrap();
        assert_eq!(v[0], 9.0);
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
