//! The KV cache of a whole model: each layer's cache of the kind its attention needs (the
//! full context for global layers, a ring of the window for sliding-window layers), chosen
//! from the architecture's per-layer windows.

use std::ops::Range;

use ziglama_nn::kv_cache::{check_seq, shift_by_rows, KeyRotation};
use ziglama_nn::{KvCache, NnError};

use super::kv_cache::ContiguousKvCache;
use super::sliding_window::{end_after_shift, SlidingWindowKvCache};
use super::storage::KvType;

/// Where one model layer's keys and values live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// Layer `.0` of the contiguous cache.
    Full(usize),
    /// Layer `.1` of sliding-window cache `.0`.
    Window(usize, usize),
}

/// A KV cache per layer kind: global layers hold `n_ctx` positions per sequence, layers with
/// a sliding window of `w < n_ctx` positions hold only the last `w`.
///
/// Every sequence operation works as on a full cache while the windows hold what the
/// sequence's next position reads; what a ring has evicted cannot come back, so trimming a
/// sequence longer than the window to an earlier end, or a context shift that keeps its
/// first positions, is refused with [`NnError::PositionEvicted`]
/// ([`KvCache::check_continuation`], [`KvCache::shift_positions`]).
///
/// ```
/// use ziglama_model::model::LayeredKvCache;
/// use ziglama_nn::KvCache;
/// // Three layers: two sliding (window 4), one global; 16 positions, one sequence.
/// let mut cache = LayeredKvCache::new(&[Some(4), Some(4), None], 1, 16, 2);
/// for pos in 0..10 {
///     for layer in 0..3 {
///         cache.store(layer, 0, pos, &[1.0, 2.0], &[3.0, 4.0]).unwrap();
///     }
/// }
/// assert_eq!(cache.held(0, 0), 4);
/// assert_eq!(cache.held(2, 0), 10);
/// assert_eq!(cache.capacity(0), 4);
/// assert_eq!(cache.capacity(2), 16);
/// ```
#[derive(Clone, Debug)]
pub struct LayeredKvCache {
    n_ctx: usize,
    n_seq: usize,
    row_len: usize,
    ty: KvType,
    full: ContiguousKvCache,
    windows: Vec<SlidingWindowKvCache>,
    slots: Vec<Slot>,
}

impl LayeredKvCache {
    /// A cache for layers with the given sliding windows (`None` for a global layer), `n_seq`
    /// sequences of up to `n_ctx` positions, rows of `row_len` values. A window of `n_ctx`
    /// positions or more needs no ring and is held in full. Rows are stored in `f16`.
    pub fn new(windows: &[Option<usize>], n_seq: usize, n_ctx: usize, row_len: usize) -> Self {
        match Self::with_type(windows, n_seq, n_ctx, row_len, KvType::F16) {
            Ok(c) => c,
            Err(_) => unreachable!("f16 rows are whole blocks of one value"),
        }
    }

    /// [`LayeredKvCache::new`] with rows stored in `ty`.
    ///
    /// # Errors
    ///
    /// [`NnError::Storage`] when `row_len` is not whole blocks of `ty`.
    pub fn with_type(
        windows: &[Option<usize>],
        n_seq: usize,
        n_ctx: usize,
        row_len: usize,
        ty: KvType,
    ) -> Result<Self, NnError> {
        Self::with_slack(windows, n_seq, n_ctx, row_len, ty, 0)
    }

    /// [`LayeredKvCache::with_type`] whose rings hold `slack` positions more than their
    /// window ([`SlidingWindowKvCache::with_capacity`]), so a sequence longer than the window
    /// can go back by up to `slack` positions (trimmed, or reusing a shorter prefix of it) as
    /// with llama.cpp's SWA cache, which keeps `n_swa + n_ubatch` cells. Costs `slack`
    /// positions of rows per sliding layer and sequence; a ring that would reach `n_ctx`
    /// positions is held in full.
    ///
    /// ```
    /// use ziglama_model::model::{KvType, LayeredKvCache};
    /// use ziglama_nn::KvCache;
    /// let mut cache = LayeredKvCache::with_slack(&[Some(4)], 1, 64, 1, KvType::F32, 2)?;
    /// for pos in 0..10 {
    ///     cache.store(0, 0, pos, &[pos as f32], &[0.0])?;
    /// }
    /// assert_eq!(cache.capacity(0), 6); // 4..=9
    /// cache.remove_positions(0, 8..usize::MAX)?;
    /// cache.check_continuation(0, 8)?; // the window of 8 is 5..=7
    /// cache.remove_positions(0, 6..usize::MAX)?;
    /// assert!(cache.check_continuation(0, 6).is_err()); // 3 is gone
    /// # Ok::<(), ziglama_nn::NnError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`NnError::Storage`] when `row_len` is not whole blocks of `ty`.
    pub fn with_slack(
        windows: &[Option<usize>],
        n_seq: usize,
        n_ctx: usize,
        row_len: usize,
        ty: KvType,
        slack: usize,
    ) -> Result<Self, NnError> {
        let mut sizes: Vec<usize> = Vec::new();
        let mut per_size: Vec<usize> = Vec::new();
        let mut n_full = 0;
        let slots: Vec<Slot> = windows
            .iter()
            .map(|w| match w {
                Some(w) if w.saturating_add(slack) < n_ctx => {
                    let w = (*w).max(1);
                    let g = match sizes.iter().position(|&s| s == w) {
                        Some(g) => g,
                        None => {
                            sizes.push(w);
                            per_size.push(0);
                            sizes.len() - 1
                        }
                    };
                    per_size[g] += 1;
                    Slot::Window(g, per_size[g] - 1)
                }
                _ => {
                    n_full += 1;
                    Slot::Full(n_full - 1)
                }
            })
            .collect();
        Ok(LayeredKvCache {
            n_ctx,
            n_seq,
            row_len,
            ty,
            full: ContiguousKvCache::with_type(n_full, n_seq, n_ctx, row_len, ty)?,
            windows: sizes
                .iter()
                .zip(&per_size)
                .map(|(&w, &n)| {
                    SlidingWindowKvCache::with_capacity(n, n_seq, w, w + slack, row_len, ty)
                })
                .collect::<Result<_, _>>()?,
            slots,
        })
    }

    /// Positions each sequence can reach.
    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// Sequences.
    pub fn n_seq(&self) -> usize {
        self.n_seq
    }

    /// Layers.
    pub fn n_layer(&self) -> usize {
        self.slots.len()
    }

    /// Positions per sequence `layer` can hold: `n_ctx`, or its ring's (the window, plus
    /// the slack of [`LayeredKvCache::with_slack`]).
    pub fn capacity(&self, layer: usize) -> usize {
        match self.slots.get(layer) {
            Some(Slot::Full(_)) => self.n_ctx,
            Some(Slot::Window(g, _)) => self.windows[*g].capacity(),
            None => 0,
        }
    }

    /// Positions of `seq` that `layer` holds now.
    pub fn held(&self, layer: usize, seq: usize) -> usize {
        match self.slots.get(layer) {
            Some(Slot::Full(l)) => self.full.held(*l, seq),
            Some(Slot::Window(g, l)) => self.windows[*g].held(*l, seq),
            None => 0,
        }
    }

    /// Bytes of key and value storage, all layers.
    pub fn bytes(&self) -> usize {
        self.full.bytes() + self.windows.iter().map(|w| w.bytes()).sum::<usize>()
    }

    /// Bytes of key and value storage of `layer`.
    pub fn layer_bytes(&self, layer: usize) -> usize {
        let row_bytes = self.ty.row_bytes(self.row_len).unwrap_or(0);
        2 * self.capacity(layer) * self.n_seq * row_bytes
    }

    /// The storage format of the rows.
    pub fn kv_type(&self) -> KvType {
        self.ty
    }

    /// The model layer of layer `l` of ring `g`.
    fn model_layer(&self, g: usize, l: usize) -> usize {
        let slot = Slot::Window(g, l);
        self.slots.iter().position(|s| *s == slot).unwrap_or(l)
    }

    fn slot(&self, layer: usize) -> Result<Slot, NnError> {
        self.slots
            .get(layer)
            .copied()
            .ok_or_else(|| NnError::Shape {
                what: "KV cache layer".into(),
                expected: format!("below {}", self.slots.len()),
                found: layer.to_string(),
            })
    }
}

impl KvCache for LayeredKvCache {
    fn n_layer(&self) -> usize {
        self.slots.len()
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
        LayeredKvCache::bytes(self)
    }

    fn contains(&self, layer: usize, seq: usize, pos: usize) -> bool {
        pos < self.n_ctx
            && match self.slots.get(layer) {
                Some(Slot::Full(l)) => self.full.contains(*l, seq, pos),
                Some(Slot::Window(g, l)) => self.windows[*g].contains(*l, seq, pos),
                None => false,
            }
    }

    fn store(
        &mut self,
        layer: usize,
        seq: usize,
        pos: usize,
        key: &[f32],
        value: &[f32],
    ) -> Result<(), NnError> {
        if pos >= self.n_ctx {
            return Err(NnError::PositionOutOfRange {
                seq,
                pos,
                capacity: self.n_ctx,
            });
        }
        match self.slot(layer)? {
            Slot::Full(l) => self.full.store(l, seq, pos, key, value),
            Slot::Window(g, l) => self.windows[g].store(l, seq, pos, key, value),
        }
        .map_err(|e| relabel(e, layer))
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
        match self.slot(layer)? {
            Slot::Full(l) => self.full.read(l, seq, positions, cols, keys, values),
            Slot::Window(g, l) => self.windows[g].read(l, seq, positions, cols, keys, values),
        }
        .map_err(|e| relabel(e, layer))
    }

    fn remove_positions(&mut self, seq: usize, positions: Range<usize>) -> Result<(), NnError> {
        check_seq(self.n_seq, seq)?;
        self.full.remove_positions(seq, positions.clone())?;
        for w in &mut self.windows {
            w.remove_positions(seq, positions.clone())?;
        }
        Ok(())
    }

    fn seq_len(&self, seq: usize) -> usize {
        let windows = self.windows.iter().map(|w| w.seq_len(seq));
        windows.fold(self.full.seq_len(seq), usize::max)
    }

    fn copy_sequence(&mut self, src: usize, dst: usize) -> Result<(), NnError> {
        self.full.copy_sequence(src, dst)?;
        for w in &mut self.windows {
            w.copy_sequence(src, dst)?;
        }
        Ok(())
    }

    fn check_continuation(&self, seq: usize, pos: usize) -> Result<(), NnError> {
        check_seq(self.n_seq, seq)?;
        for (g, w) in self.windows.iter().enumerate() {
            w.check_continuation(seq, pos).map_err(|e| match e {
                NnError::PositionEvicted {
                    layer,
                    seq,
                    pos,
                    window,
                } => NnError::PositionEvicted {
                    layer: self.model_layer(g, layer),
                    seq,
                    pos,
                    window,
                },
                other => other,
            })?;
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
        let extent = self.windows.iter().map(|w| w.extent(seq));
        let range = positions.start
            ..positions
                .end
                .min(extent.fold(self.seq_len(seq), usize::max));
        let end = end_after_shift(self, seq, &range, delta);
        for (g, ring) in self.windows.iter().enumerate() {
            let layers = (0..ring.n_layer()).map(|l| (self.model_layer(g, l), l));
            ring.refuse_lost_window(layers, seq, &range, delta, end)?;
        }
        let dests: Vec<Vec<Vec<usize>>> = self
            .windows
            .iter()
            .map(|w| {
                (0..w.n_layer())
                    .map(|l| w.lost_destinations(l, seq, &range, delta))
                    .collect()
            })
            .collect();
        shift_by_rows(self, seq, range, delta, rotation)?;
        for (w, dests) in self.windows.iter_mut().zip(&dests) {
            for (l, d) in dests.iter().enumerate() {
                w.lose(l, seq, d);
            }
        }
        Ok(())
    }
}

/// An inner cache's error, naming the model layer instead of the inner cache's index.
fn relabel(e: NnError, model_layer: usize) -> NnError {
    match e {
        NnError::PositionNotStored { seq, pos, .. } => NnError::PositionNotStored {
            layer: model_layer,
            seq,
            pos,
        },
        NnError::PositionEvicted {
            seq, pos, window, ..
        } => NnError::PositionEvicted {
            layer: model_layer,
            seq,
            pos,
            window,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_route_to_their_kind_and_errors_name_the_model_layer() {
        let mut c = LayeredKvCache::new(&[None, Some(2), Some(3), Some(2), Some(100)], 1, 50, 1);
        assert_eq!(
            (0..5).map(|l| c.capacity(l)).collect::<Vec<_>>(),
            [50, 2, 3, 2, 50]
        );
        for pos in 0..5 {
            for l in 0..5 {
                c.store(l, 0, pos, &[(10 * l + pos) as f32], &[0.0])
                    .unwrap();
            }
        }
        let (mut k, mut v) = ([0f32], [0f32]);
        for l in 0..5 {
            c.read(l, 0, 4..5, 0..1, &mut k, &mut v).unwrap();
            assert_eq!(k[0], (10 * l + 4) as f32);
        }
        assert_eq!(c.held(3, 0), 2);
        let err = c.read(3, 0, 1..2, 0..1, &mut k, &mut v).unwrap_err();
        assert!(
            matches!(
                err,
                NnError::PositionEvicted {
                    layer: 3,
                    pos: 1,
                    window: 2,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(c.bytes(), (2 * 50 + 2 + 3 + 2) * 2 * 2);
        assert!(c.read(5, 0, 0..1, 0..1, &mut k, &mut v).is_err());
        // Trimmed back to 3: the window-2 layers (1 and 3) need position 2, evicted by 4.
        c.remove_positions(0, 3..usize::MAX).unwrap();
        let err = c.check_continuation(0, 3).unwrap_err();
        assert!(
            matches!(
                err,
                NnError::PositionEvicted {
                    layer: 1,
                    pos: 2,
                    window: 2,
                    ..
                }
            ),
            "{err}"
        );
    }
}
