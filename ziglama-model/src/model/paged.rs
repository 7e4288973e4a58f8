//! A paged KV cache for many sequences: a pool of fixed-size blocks of positions, each
//! sequence a table of blocks, forks sharing blocks copy-on-write (the PagedAttention idea).

use std::ops::Range;

use ziglama_nn::kv_cache::check_seq;
use ziglama_nn::{KvCache, NnError};

use super::storage::{check_read_buffers, KvType, Rows};

/// One block: `block_size` positions of every layer, keys and values.
#[derive(Clone, Debug)]
struct Block {
    keys: Rows,
    values: Rows,
}

/// Keys and values of `n_seq` sequences in a shared pool of blocks of `block_size`
/// positions (all layers of those positions), allocated as positions are stored.
///
/// A sequence is a table from its block index (`pos / block_size`) to a block of the pool,
/// and a record of which (position, layer) rows it holds. [`KvCache::copy_sequence`] (a fork)
/// copies the table and shares every block; the first store into a shared block copies it
/// (copy-on-write), so two continuations of one prefix hold the prefix once, plus a copy of
/// the block the fork point falls in. [`KvCache::bytes`] counts the blocks in use.
///
/// ```
/// use ziglama_model::model::{KvType, MultiSequenceKvCache};
/// use ziglama_nn::KvCache;
/// // 1 layer, 2 sequences of up to 64 positions, rows of 2 values, blocks of 16 positions.
/// let mut cache = MultiSequenceKvCache::new(1, 2, 64, 2, 16, KvType::F16)?;
/// for pos in 0..32 {
///     cache.store(0, 0, pos, &[pos as f32, 0.0], &[0.0; 2])?;
/// }
/// let block = 2 * 16 * 2 * 2; // keys and values, 16 positions, 2 values, 2 bytes
/// assert_eq!(cache.bytes(), 2 * block);
/// cache.copy_sequence(0, 1)?; // a fork: shares both blocks
/// assert_eq!(cache.bytes(), 2 * block);
/// cache.store(0, 1, 32, &[1.0, 1.0], &[1.0; 2])?; // a new block for sequence 1 only
/// assert_eq!(cache.bytes(), 3 * block);
/// cache.store(0, 1, 31, &[9.0, 9.0], &[9.0; 2])?; // copy-on-write of the shared block
/// assert_eq!(cache.bytes(), 4 * block);
/// let (mut k, mut v) = ([0f32; 2], [0f32; 2]);
/// cache.read(0, 0, 31..32, 0..2, &mut k, &mut v)?;
/// assert_eq!(k[0], 31.0); // sequence 0 is untouched
/// # Ok::<(), ziglama_nn::NnError>(())
/// ```
#[derive(Clone, Debug)]
pub struct MultiSequenceKvCache {
    n_layer: usize,
    n_seq: usize,
    n_ctx: usize,
    row_len: usize,
    block_size: usize,
    ty: KvType,
    /// Blocks the pool may hold at most.
    max_blocks: usize,
    /// The pool; `None` for a free entry.
    blocks: Vec<Option<Block>>,
    /// Sequences using each block.
    refs: Vec<usize>,
    /// Free entries of `blocks`.
    free: Vec<usize>,
    /// Per sequence: block index -> pool entry.
    tables: Vec<Vec<Option<usize>>>,
    /// Per sequence: whether it holds (position, layer), at `pos * n_layer + layer`.
    held: Vec<Vec<bool>>,
}

impl MultiSequenceKvCache {
    /// A cache for `n_layer` layers and `n_seq` sequences of up to `n_ctx` positions, rows of
    /// `row_len` values in `ty`, blocks of `block_size` positions (at least 1). The pool may
    /// grow to `n_seq * ceil(n_ctx / block_size)` blocks (every sequence full and nothing
    /// shared); see [`MultiSequenceKvCache::with_max_blocks`] for a smaller pool.
    ///
    /// # Errors
    ///
    /// [`NnError::Storage`] when `row_len` is not whole blocks of `ty`.
    pub fn new(
        n_layer: usize,
        n_seq: usize,
        n_ctx: usize,
        row_len: usize,
        block_size: usize,
        ty: KvType,
    ) -> Result<Self, NnError> {
        ty.row_bytes(row_len)?;
        let block_size = block_size.max(1);
        Ok(MultiSequenceKvCache {
            n_layer,
            n_seq,
            n_ctx,
            row_len,
            block_size,
            ty,
            max_blocks: n_seq * n_ctx.div_ceil(block_size),
            blocks: Vec::new(),
            refs: Vec::new(),
            free: Vec::new(),
            tables: vec![Vec::new(); n_seq],
            held: vec![Vec::new(); n_seq],
        })
    }

    /// Limits the pool to `max_blocks` blocks; a store that needs one more is
    /// [`NnError::CacheFull`].
    pub fn with_max_blocks(mut self, max_blocks: usize) -> Self {
        self.max_blocks = max_blocks;
        self
    }

    /// Positions per block.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Blocks in use.
    pub fn blocks_in_use(&self) -> usize {
        self.blocks.len() - self.free.len()
    }

    /// Bytes of one block (keys and values of `block_size` positions of every layer).
    pub fn block_bytes(&self) -> usize {
        2 * self.n_layer * self.block_size * self.ty.row_bytes(self.row_len).unwrap_or(0)
    }

    fn check(&self, layer: usize, seq: usize, pos: usize) -> Result<(), NnError> {
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
        Ok(())
    }

    fn is_held(&self, layer: usize, seq: usize, pos: usize) -> bool {
        self.held[seq]
            .get(pos * self.n_layer + layer)
            .copied()
            .unwrap_or(false)
    }

    /// A new pool entry with a block of zeros.
    fn allocate(&mut self) -> Result<usize, NnError> {
        if self.blocks_in_use() >= self.max_blocks {
            return Err(NnError::CacheFull {
                capacity: self.max_blocks,
            });
        }
        let n_rows = self.n_layer * self.block_size;
        let block = Block {
            keys: Rows::new(self.ty, self.row_len, n_rows)?,
            values: Rows::new(self.ty, self.row_len, n_rows)?,
        };
        Ok(match self.free.pop() {
            Some(i) => {
                self.blocks[i] = Some(block);
                self.refs[i] = 1;
                i
            }
            None => {
                self.blocks.push(Some(block));
                self.refs.push(1);
                self.blocks.len() - 1
            }
        })
    }

    /// Drops one user of pool entry `i`, freeing it when none is left.
    fn release(&mut self, i: usize) {
        self.refs[i] -= 1;
        if self.refs[i] == 0 {
            self.blocks[i] = None;
            self.free.push(i);
        }
    }

    /// The pool entry of `seq`'s block `b`, owned by `seq` alone (allocated, or copied if
    /// shared).
    fn own_block(&mut self, seq: usize, b: usize) -> Result<usize, NnError> {
        if self.tables[seq].len() <= b {
            self.tables[seq].resize(b + 1, None);
        }
        match self.tables[seq][b] {
            Some(i) if self.refs[i] == 1 => Ok(i),
            Some(i) => {
                let copy = self.blocks[i].clone();
                let j = self.allocate()?;
                self.blocks[j] = copy;
                self.release(i);
                self.tables[seq][b] = Some(j);
                Ok(j)
            }
            None => {
                let j = self.allocate()?;
                self.tables[seq][b] = Some(j);
                Ok(j)
            }
        }
    }

    /// Releases `seq`'s block `b` if it holds no row of `seq` any more.
    fn release_if_empty(&mut self, seq: usize, b: usize) {
        let per_block = self.block_size * self.n_layer;
        let held = &self.held[seq];
        let start = (b * per_block).min(held.len());
        let end = ((b + 1) * per_block).min(held.len());
        if held[start..end].iter().any(|&h| h) {
            return;
        }
        if let Some(Some(i)) = self.tables[seq].get(b).copied() {
            self.tables[seq][b] = None;
            self.release(i);
        }
    }
}

impl KvCache for MultiSequenceKvCache {
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
        self.blocks_in_use() * self.block_bytes()
    }

    fn contains(&self, layer: usize, seq: usize, pos: usize) -> bool {
        self.check(layer, seq, pos).is_ok() && self.is_held(layer, seq, pos)
    }

    fn store(
        &mut self,
        layer: usize,
        seq: usize,
        pos: usize,
        key: &[f32],
        value: &[f32],
    ) -> Result<(), NnError> {
        self.check(layer, seq, pos)?;
        for (what, row) in [("key", key), ("value", value)] {
            if row.len() != self.row_len {
                return Err(NnError::Shape {
                    what: format!("KV cache {what} row"),
                    expected: self.row_len.to_string(),
                    found: row.len().to_string(),
                });
            }
        }
        let i = self.own_block(seq, pos / self.block_size)?;
        let r = layer * self.block_size + pos % self.block_size;
        let Some(block) = self.blocks[i].as_mut() else {
            unreachable!("an owned block is allocated");
        };
        block.keys.write(r, key, "key")?;
        block.values.write(r, value, "value")?;
        let at = pos * self.n_layer + layer;
        let held = &mut self.held[seq];
        if held.len() <= at {
            held.resize((pos + 1) * self.n_layer, false);
        }
        held[at] = true;
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
        for (j, pos) in positions.enumerate() {
            self.check(layer, seq, pos)?;
            let block = match self.tables[seq].get(pos / self.block_size) {
                Some(Some(i)) if self.is_held(layer, seq, pos) => self.blocks[*i].as_ref(),
                _ => None,
            };
            let Some(block) = block else {
                return Err(NnError::PositionNotStored { layer, seq, pos });
            };
            let r = layer * self.block_size + pos % self.block_size;
            block.keys.read(r, cols.clone(), &mut keys[j * w..][..w])?;
            block
                .values
                .read(r, cols.clone(), &mut values[j * w..][..w])?;
        }
        Ok(())
    }

    fn remove_positions(&mut self, seq: usize, positions: Range<usize>) -> Result<(), NnError> {
        check_seq(self.n_seq, seq)?;
        let n_pos = self.held[seq].len() / self.n_layer.max(1);
        let (a, b) = (positions.start.min(n_pos), positions.end.min(n_pos));
        if a >= b {
            return Ok(());
        }
        self.held[seq][a * self.n_layer..b * self.n_layer].fill(false);
        for block in a / self.block_size..b.div_ceil(self.block_size) {
            self.release_if_empty(seq, block);
        }
        Ok(())
    }

    fn seq_len(&self, seq: usize) -> usize {
        let Some(held) = self.held.get(seq) else {
            return 0;
        };
        held.iter()
            .rposition(|&h| h)
            .map_or(0, |i| i / self.n_layer.max(1) + 1)
    }

    fn copy_sequence(&mut self, src: usize, dst: usize) -> Result<(), NnError> {
        check_seq(self.n_seq, src)?;
        check_seq(self.n_seq, dst)?;
        if src == dst {
            return Ok(());
        }
        for i in std::mem::take(&mut self.tables[dst]).into_iter().flatten() {
            self.release(i);
        }
        let table = self.tables[src].clone();
        for &i in table.iter().flatten() {
            self.refs[i] += 1;
        }
        self.tables[dst] = table;
        self.held[dst] = self.held[src].clone();
        Ok(())
    }
}
