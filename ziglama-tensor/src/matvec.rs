//! Matrix-vector products for decoding: several products of one activation row as one pool
//! operation, with the weights prefetched well ahead of the kernels.
//!
//! A decoding step multiplies every weight matrix by a single activation row. [`matvecs`]
//! does what [`matmul`](crate::matmul()) does for one row (the activation quantized to the
//! format's activation type, every output one call of the kernel `matmul` would choose, four
//! rows per call where the format has a four-row kernel), so each output is bit-identical to
//! `matmul`'s, but
//!
//! - several products of the same row (a block's query, key and value projections) are
//!   split into tasks of one [`ThreadPool::run`], so the threads meet once instead of once
//!   per product;
//! - each task prefetches its weight bytes [`PREFETCH_AHEAD`] bytes ahead of the rows it
//!   computes, one `prefetcht0` per cache line, in memory order. The four-row kernels
//!   prefetch by themselves only one group of four rows ahead, which for the short rows of a
//!   small model (a 576-wide Q4_1 row is 432 bytes) is too little to cover the memory latency
//!   at one thread's bandwidth: with this prefetch the products of a SmolLM2 decoding step
//!   take about half the time (measurements in `docs/performance.md`).
//!
//! [`gated_matvec`] fuses a feed-forward network's gate and up products with the gated unit
//! that combines them, again in one pool operation.

use std::mem::size_of;
use std::sync::Mutex;

use crate::error::{Result, TensorError};
use crate::formats::{
    Block, BlockIQ4_NL, BlockIQ4_XS, BlockQ2_K, BlockQ3_K, BlockQ4_0, BlockQ4_1, BlockQ4_K,
    BlockQ5_0, BlockQ5_1, BlockQ5_K, BlockQ6_K, BlockQ8_0, BlockQ8_1, BlockQ8_K, DotKernel,
    Quantize, VecDot,
};
use crate::{GgmlType, Isa, Tensor, ThreadPool};

/// How far ahead of the row being computed each task prefetches its weights, in bytes.
pub const PREFETCH_AHEAD: usize = 8 << 10;

/// Work per task, at least, in weight bytes (as `matmul`'s tasks): small products are not cut
/// into slivers that cost more to hand out than to compute.
const MIN_TASK_BYTES: usize = 16 << 10;

/// Tasks per thread and product, at most: enough that a thread delayed by the OS is covered by
/// the others.
const MAX_TASKS_PER_THREAD: usize = 8;

/// Brings the cache lines of `bytes` towards L1, where the CPU has a prefetch instruction.
#[inline]
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    crate::simd::x86_64::avx2::float::prefetch(bytes);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// One weight matrix with the activation row quantized for it and the kernel `matmul` would
/// use, behind an interface that does not name the format.
trait Prepared: Sync {
    /// Output rows.
    fn n_rows(&self) -> usize;
    /// Bytes of one weight row.
    fn row_bytes(&self) -> usize;
    /// A prefetcher of the weights for a task that starts at row `r0`.
    fn prefetcher(&self, r0: usize) -> Prefetcher<'_>;
    /// Computes rows `r0..r0 + out.len()` into `out`, prefetching through `pf`.
    fn rows(&self, r0: usize, out: &mut [f32], pf: &mut Prefetcher<'_>);
}

/// Prefetches a byte range in memory order, a fixed distance ahead of a reading position,
/// each cache line once.
struct Prefetcher<'a> {
    bytes: &'a [u8],
    /// The first byte not yet prefetched.
    next: usize,
}

impl<'a> Prefetcher<'a> {
    fn new(bytes: &'a [u8], start: usize) -> Self {
        Prefetcher { bytes, next: start }
    }

    /// Reading is about to cover `..end`: prefetch up to `end + PREFETCH_AHEAD`.
    #[inline]
    fn upto(&mut self, end: usize) {
        let target = (end + PREFETCH_AHEAD).min(self.bytes.len());
        if target > self.next {
            prefetch(&self.bytes[self.next..target]);
            // Whole lines were touched: continue at the line after the last one.
            self.next = target.next_multiple_of(64);
        }
    }
}

/// A four-row kernel (see [`Typed::rows4`]).
type Rows4<W> = fn([&[W]; 4], &[<W as VecDot>::Activation]) -> [f32; 4];

struct Typed<'a, W: VecDot> {
    weights: &'a [W],
    bytes: &'a [u8],
    w_row: usize,
    xq: Vec<W::Activation>,
    kernel: DotKernel<W>,
    /// A four-row kernel bit-identical to `kernel`'s that replaces its `call4` (the leaner
    /// kernels of `simd::x86_64::avx512::matvec`).
    rows4: Option<Rows4<W>>,
}

impl<'a, W: VecDot> Typed<'a, W> {
    fn new(w: &'a Tensor, x: &[f32], isa: Isa) -> Result<Self> {
        let k = w.row_len();
        let a_bs = <W::Activation as Block>::BLOCK_SIZE;
        if k == 0 || !k.is_multiple_of(a_bs) || !k.is_multiple_of(W::BLOCK_SIZE) {
            return Err(TensorError::NotBlockMultiple {
                op: "matvec activations",
                ty: <W::Activation as Block>::TYPE,
                n: k,
                block_size: a_bs,
            });
        }
        if x.len() != k {
            return Err(TensorError::LengthMismatch {
                op: "matvec: x length",
                expected: k,
                actual: x.len(),
                unit: "elements",
            });
        }
        let weights: &[W] = w.blocks()?;
        let mut xq = vec![bytemuck::Zeroable::zeroed(); k / a_bs];
        <W::Activation as Quantize>::quantize_activation(x, &mut xq);
        Ok(Typed {
            weights,
            bytes: bytemuck::cast_slice(weights),
            w_row: k / W::BLOCK_SIZE,
            xq,
            // The kernel of `matmul` for one activation row.
            kernel: *W::batch_kernels(w.n_rows(), 1, isa).for_row(0),
            rows4: None,
        })
    }
}

impl<W: VecDot> Prepared for Typed<'_, W> {
    fn n_rows(&self) -> usize {
        self.weights.len() / self.w_row
    }

    fn row_bytes(&self) -> usize {
        self.w_row * size_of::<W>()
    }

    fn prefetcher(&self, r0: usize) -> Prefetcher<'_> {
        Prefetcher::new(self.bytes, r0 * self.row_bytes())
    }

    fn rows(&self, r0: usize, out: &mut [f32], pf: &mut Prefetcher<'_>) {
        let (w_row, rb) = (self.w_row, self.row_bytes());
        let row = |r: usize| &self.weights[r * w_row..(r + 1) * w_row];
        let mut i = 0;
        if let Some(rows4) = self.rows4 {
            while i + 4 <= out.len() {
                let r = r0 + i;
                pf.upto((r + 4) * rb);
                let v = rows4([row(r), row(r + 1), row(r + 2), row(r + 3)], &self.xq);
                out[i..i + 4].copy_from_slice(&v);
                i += 4;
            }
        } else if self.kernel.has_rows4() {
            while i + 4 <= out.len() {
                let r = r0 + i;
                pf.upto((r + 4) * rb);
                let v = self
                    .kernel
                    .call4([row(r), row(r + 1), row(r + 2), row(r + 3)], &self.xq);
                out[i..i + 4].copy_from_slice(&v);
                i += 4;
            }
        }
        for (j, o) in out.iter_mut().enumerate().skip(i) {
            let r = r0 + j;
            pf.upto((r + 1) * rb);
            *o = self.kernel.call(row(r), &self.xq);
        }
    }
}

/// `w` with `x` quantized for it.
fn prepare<'a>(w: &'a Tensor, x: &[f32], isa: Isa) -> Result<Box<dyn Prepared + 'a>> {
    fn boxed<'a, W: VecDot>(w: &'a Tensor, x: &[f32], isa: Isa) -> Result<Box<dyn Prepared + 'a>> {
        Ok(Box::new(Typed::<W>::new(w, x, isa)?))
    }
    /// `Typed` for `W`; where its chosen kernel is `avx512_vnni`, with the lean four-row
    /// kernel `rows4` gives (bit-identical to that kernel, and only to it).
    #[cfg(target_arch = "x86_64")]
    fn with_rows4<'a, W: VecDot>(
        w: &'a Tensor,
        x: &[f32],
        isa: Isa,
        rows4: fn() -> Option<Rows4<W>>,
    ) -> Result<Box<dyn Prepared + 'a>> {
        let mut t = Typed::<W>::new(w, x, isa)?;
        if t.kernel.name() == "avx512_vnni" {
            t.rows4 = rows4();
        }
        Ok(Box::new(t))
    }
    macro_rules! lean {
        ($W:ty, $rows4:ident) => {{
            #[cfg(target_arch = "x86_64")]
            let prepared = with_rows4::<$W>(w, x, isa, crate::simd::x86_64::avx512::matvec::$rows4);
            #[cfg(not(target_arch = "x86_64"))]
            let prepared = boxed::<$W>(w, x, isa);
            prepared
        }};
    }
    match w.dtype() {
        GgmlType::F32 => boxed::<f32>(w, x, isa),
        GgmlType::F16 => boxed::<half::f16>(w, x, isa),
        GgmlType::BF16 => boxed::<half::bf16>(w, x, isa),
        GgmlType::Q4_0 => lean!(BlockQ4_0, q4_0_rows4),
        GgmlType::Q4_1 => lean!(BlockQ4_1, q4_1_rows4),
        GgmlType::Q5_0 => lean!(BlockQ5_0, q5_0_rows4),
        GgmlType::Q5_1 => boxed::<BlockQ5_1>(w, x, isa),
        GgmlType::Q8_0 => lean!(BlockQ8_0, q8_0_rows4),
        GgmlType::Q8_1 => boxed::<BlockQ8_1>(w, x, isa),
        GgmlType::Q2_K => boxed::<BlockQ2_K>(w, x, isa),
        GgmlType::Q3_K => boxed::<BlockQ3_K>(w, x, isa),
        GgmlType::Q4_K => boxed::<BlockQ4_K>(w, x, isa),
        GgmlType::Q5_K => boxed::<BlockQ5_K>(w, x, isa),
        GgmlType::Q6_K => boxed::<BlockQ6_K>(w, x, isa),
        GgmlType::Q8_K => boxed::<BlockQ8_K>(w, x, isa),
        GgmlType::IQ4_NL => boxed::<BlockIQ4_NL>(w, x, isa),
        GgmlType::IQ4_XS => boxed::<BlockIQ4_XS>(w, x, isa),
    }
}

/// Rows per task of a product of `m` rows of `row_bytes` bytes on `threads` threads, a
/// multiple of `align`.
fn rows_per_task(m: usize, row_bytes: usize, threads: usize, align: usize) -> usize {
    let n_tasks = (m.saturating_mul(row_bytes) / MIN_TASK_BYTES)
        .clamp(1, threads * MAX_TASKS_PER_THREAD)
        .min(m.max(1));
    m.div_ceil(n_tasks).next_multiple_of(align.max(1))
}

fn check_out(what: &'static str, expected: usize, actual: usize) -> Result<()> {
    if expected != actual {
        return Err(TensorError::LengthMismatch {
            op: what,
            expected,
            actual,
            unit: "elements",
        });
    }
    Ok(())
}

/// `ys[i] = ws[i] x` for every `i` (each `ys[i]` holds `ws[i].n_rows()` values, `x` is one
/// row of `ws[i].row_len()` values), as one pool operation. Each output is bit-identical to
/// [`matmul`](crate::matmul())'s for the same product. Uses the kernels of [`Isa::active`].
///
/// ```
/// use ziglama_tensor::{matvec::matvecs, Tensor, ThreadPool};
/// let a = Tensor::from_f32(&[2, 2], &[1.0, 0.0, 0.0, 1.0]).unwrap();
/// let b = Tensor::from_f32(&[2, 1], &[1.0, 1.0]).unwrap();
/// let (mut ya, mut yb) = ([0f32; 2], [0f32; 1]);
/// matvecs(&[&a, &b], &[2.0, 3.0], &mut [&mut ya, &mut yb], &ThreadPool::new(2)).unwrap();
/// assert_eq!((ya, yb), ([2.0, 3.0], [5.0]));
/// ```
///
/// # Errors
///
/// `ws` and `ys` of different lengths, an `x` or `ys[i]` of the wrong length, a row length
/// that is not a whole number of blocks.
pub fn matvecs(ws: &[&Tensor], x: &[f32], ys: &mut [&mut [f32]], pool: &ThreadPool) -> Result<()> {
    matvecs_with_isa(ws, x, ys, pool, Isa::active())
}

/// [`matvecs`] with the kernels of `isa` (or the best below it that this CPU supports).
///
/// # Errors
///
/// As [`matvecs`].
pub fn matvecs_with_isa(
    ws: &[&Tensor],
    x: &[f32],
    ys: &mut [&mut [f32]],
    pool: &ThreadPool,
    isa: Isa,
) -> Result<()> {
    check_out("matvecs: outputs per weight", ws.len(), ys.len())?;
    let prepared = ws
        .iter()
        .map(|w| prepare(w, x, isa))
        .collect::<Result<Vec<_>>>()?;
    for (p, y) in prepared.iter().zip(ys.iter()) {
        check_out("matvecs: y length", p.n_rows(), y.len())?;
    }
    // Tasks: (product, first row, output rows).
    let mut tasks: Vec<(usize, usize, Mutex<&mut [f32]>)> = Vec::new();
    for (i, (p, y)) in prepared.iter().zip(ys.iter_mut()).enumerate() {
        let rpt = rows_per_task(p.n_rows(), p.row_bytes(), pool.n_threads(), 4);
        for (t, chunk) in y.chunks_mut(rpt).enumerate() {
            tasks.push((i, t * rpt, Mutex::new(chunk)));
        }
    }
    pool.run(tasks.len(), |t| {
        let (i, r0, out) = &tasks[t];
        let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
        let p = &prepared[*i];
        p.rows(*r0, &mut out, &mut p.prefetcher(*r0));
    });
    Ok(())
}

/// The feed-forward network's first half for one activation row: `out = unit(gate x, up x)`,
/// both products and the unit in one pool operation. Each task computes the same rows of
/// both products (into `out` and `up_buf`) and then applies `unit` to them; its rows start
/// at a multiple of `align` (a unit that works in chunks from the row's start, as ggml's
/// SwiGLU does in chunks of 16, gives the same values as on the whole row when `align` is a
/// multiple of its chunk). Each product's outputs are bit-identical to
/// [`matmul`](crate::matmul())'s.
///
/// # Errors
///
/// `gate` and `up` of different shapes, an `x`, `out` or `up_buf` of the wrong length, a row
/// length that is not a whole number of blocks.
#[allow(clippy::too_many_arguments)]
pub fn gated_matvec(
    gate: &Tensor,
    up: &Tensor,
    x: &[f32],
    out: &mut [f32],
    up_buf: &mut [f32],
    unit: &(dyn Fn(&mut [f32], &[f32]) + Sync),
    align: usize,
    pool: &ThreadPool,
) -> Result<()> {
    gated_matvec_with_isa(gate, up, x, out, up_buf, unit, align, pool, Isa::active())
}

/// [`gated_matvec`] with the kernels of `isa` (or the best below it that this CPU supports).
///
/// # Errors
///
/// As [`gated_matvec`].
#[allow(clippy::too_many_arguments)]
pub fn gated_matvec_with_isa(
    gate: &Tensor,
    up: &Tensor,
    x: &[f32],
    out: &mut [f32],
    up_buf: &mut [f32],
    unit: &(dyn Fn(&mut [f32], &[f32]) + Sync),
    align: usize,
    pool: &ThreadPool,
    isa: Isa,
) -> Result<()> {
    if gate.shape() != up.shape() {
        return Err(TensorError::LengthMismatch {
            op: "gated_matvec: up rows (gate and up of one shape)",
            expected: gate.n_rows(),
            actual: up.n_rows(),
            unit: "rows",
        });
    }
    let (g, u) = (prepare(gate, x, isa)?, prepare(up, x, isa)?);
    let m = g.n_rows();
    check_out("gated_matvec: out length", m, out.len())?;
    check_out("gated_matvec: up_buf length", m, up_buf.len())?;
    let rb = g.row_bytes() + u.row_bytes();
    let rpt = rows_per_task(m, rb, pool.n_threads(), align.max(4).next_multiple_of(4));
    let tasks: Vec<Mutex<(&mut [f32], &mut [f32])>> = out
        .chunks_mut(rpt)
        .zip(up_buf.chunks_mut(rpt))
        .map(Mutex::new)
        .collect();
    pool.run(tasks.len(), |t| {
        let mut guard = tasks[t].lock().unwrap_or_else(|e| e.into_inner());
        let (go, uo) = &mut *guard;
        let r0 = t * rpt;
        g.rows(r0, go, &mut g.prefetcher(r0));
        u.rows(r0, uo, &mut u.prefetcher(r0));
        unit(go, uo);
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_are_aligned_and_cover_the_rows() {
        assert!(rows_per_task(1536, 432, 2, 16).is_multiple_of(16));
        assert_eq!(rows_per_task(3, 1 << 20, 4, 4), 4);
        let r = rows_per_task(192, 432, 2, 4);
        assert!(r >= 32 && r.is_multiple_of(4), "{r}");
    }
}
