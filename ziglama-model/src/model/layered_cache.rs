//! The KV cache of a whole model: each layer's cache of the kind its attention needs (the
//! full context for global layers, a ring of the window for sliding-window layers), chosen
//! from the architecture's per-layer windows.

use ziglama_nn::half::f16;
use ziglama_nn::{KvCache, NnError};

use super::kv_cache::ContiguousKvCache;
use super::sliding_window::SlidingWindowKvCache;

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
    full: ContiguousKvCache,
    windows: Vec<SlidingWindowKvCache>,
    slots: Vec<Slot>,
}

impl LayeredKvCache {
    /// A cache for layers with the given sliding windows (`None` for a global layer), `n_seq`
    /// sequences of up to `n_ctx` positions, rows of `row_len` values. A window of `n_ctx`
    /// positions or more needs no ring and is held in full.
    pub fn new(windows: &[Option<usize>], n_seq: usize, n_ctx: usize, row_len: usize) -> Self {
        let mut sizes: Vec<usize> = Vec::new();
        let mut per_size: Vec<usize> = Vec::new();
        let mut n_full = 0;
        let slots: Vec<Slot> = windows
            .iter()
            .map(|w| match w {
                Some(w) if *w < n_ctx => {
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
        LayeredKvCache {
            n_ctx,
            n_seq,
            row_len,
            full: ContiguousKvCache::new(n_full, n_seq, n_ctx, row_len),
            windows: sizes
                .iter()
                .zip(&per_size)
                .map(|(&w, &n)| SlidingWindowKvCache::new(n, n_seq, w, row_len))
                .collect(),
            slots,
        }
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

    /// Positions per sequence `layer` can hold: `n_ctx`, or its window.
    pub fn capacity(&self, layer: usize) -> usize {
        match self.slots.get(layer) {
            Some(Slot::Full(_)) => self.n_ctx,
            Some(Slot::Window(g, _)) => self.windows[*g].window(),
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
        2 * self.capacity(layer) * self.n_seq * self.row_len * std::mem::size_of::<u16>()
    }

    /// Forgets every position of `seq`, in every layer.
    pub fn clear(&mut self, seq: usize) {
        self.full.clear(seq);
        for w in &mut self.windows {
            w.clear(seq);
        }
    }

    fn slot(&self, layer: usize) -> Result<Slot, NnError> {
        self.slots.get(layer).copied().ok_or_else(|| NnError::Shape {
            what: "KV cache layer".into(),
            expected: format!("below {}", self.slots.len()),
            found: layer.to_string(),
        })
    }
}

impl KvCache for LayeredKvCache {
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
        match self.slot(layer)? {
            Slot::Full(l) => self.full.store(l, seq, pos, key, value),
            Slot::Window(g, l) => self.windows[g].store(l, seq, pos, key, value),
        }
        .map_err(|e| relabel(e, layer))
    }

    fn key(&self, layer: usize, seq: usize, pos: usize) -> Result<&[f16], NnError> {
        match self.slot(layer)? {
            Slot::Full(l) => self.full.key(l, seq, pos),
            Slot::Window(g, l) => self.windows[g].key(l, seq, pos),
        }
        .map_err(|e| relabel(e, layer))
    }

    fn value(&self, layer: usize, seq: usize, pos: usize) -> Result<&[f16], NnError> {
        match self.slot(layer)? {
            Slot::Full(l) => self.full.value(l, seq, pos),
            Slot::Window(g, l) => self.windows[g].value(l, seq, pos),
        }
        .map_err(|e| relabel(e, layer))
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
                c.store(l, 0, pos, &[(10 * l + pos) as f32], &[0.0]).unwrap();
            }
        }
        for l in 0..5 {
            assert_eq!(c.key(l, 0, 4).unwrap()[0].to_f32(), (10 * l + 4) as f32);
        }
        assert_eq!(c.held(3, 0), 2);
        let err = c.key(3, 0, 1).unwrap_err();
        assert!(
            matches!(err, NnError::PositionEvicted { layer: 3, pos: 1, window: 2, .. }),
            "{err}"
        );
        assert_eq!(c.bytes(), (2 * 50 + 2 + 3 + 2) * 2 * 2);
        assert!(c.key(5, 0, 0).is_err());
    }
}
