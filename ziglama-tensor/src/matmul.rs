//! Matrix-vector and matrix-matrix products of a (quantized) weight matrix with f32
//! activations, split across a [`ThreadPool`].
//!
//! As in ggml, the activations are first quantized to the weight format's activation type
//! ([`VecDot::Activation`]: Q8_0, Q8_1, Q8_K, f16, ...) and every output is one dot product
//! of a weight row with an activation row, computed by the best [`DotKernel`](crate::formats::DotKernel) for this CPU.

use std::cell::Cell;
use std::mem::size_of;
use std::sync::Mutex;

use crate::error::{Result, TensorError};
use crate::formats::{BatchKernels, Block, Quantize, VecDot, PANEL_ROWS, TILE_COLS, TILE_ROWS};
use crate::{GgmlType, Isa, Tensor, ThreadPool};

/// Work per task, at least, in weight bytes times activation rows: at memory speed (10-30
/// GB/s per core) a task of this size takes a microsecond or more, so claiming it (tens of
/// nanoseconds) costs little, while small products (a 576-wide projection of a small model)
/// are not cut into slivers that cost more to hand out than to compute.
const MIN_TASK_WORK: usize = 16 << 10;

/// How far ahead of the weight row being read `matmul` prefetches, in bytes.
const PREFETCH_AHEAD: usize = 8 << 10;

/// Brings `bytes` towards L1 ahead of use, where the CPU has a prefetch instruction.
#[inline]
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    crate::simd::x86_64::avx2::float::prefetch(bytes);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// Tasks per thread, at most: enough that a thread delayed by the OS is covered by the others.
const MAX_TASKS_PER_THREAD: usize = 8;

/// Rows per task for `m` rows of `row_bytes` bytes times `n` activation rows on `threads`
/// threads: as many tasks as the work allows, up to [`MAX_TASKS_PER_THREAD`] per thread,
/// split evenly.
fn rows_per_task(m: usize, row_bytes: usize, n: usize, threads: usize) -> usize {
    let work = m.saturating_mul(row_bytes).saturating_mul(n);
    let n_tasks = (work / MIN_TASK_WORK)
        .clamp(1, threads * MAX_TASKS_PER_THREAD)
        .min(m);
    m.div_ceil(n_tasks)
}

/// `y = x W^T`: for each of the `n` rows of `x` (each `w.row_len()` long), the dot product with
/// every row of `w`, so `y` holds `n` rows of `w.n_rows()` values.
///
/// `w` may be of any type in the registry; `x` and `y` are row-major f32. Uses the kernels of
/// [`Isa::active`].
///
/// ```
/// use ziglama_tensor::{matmul, GgmlType, Tensor, ThreadPool};
/// let w = Tensor::from_f32(&[2, 3], &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0]).unwrap();
/// let x = [2.0, 3.0, 4.0, 5.0]; // two rows of 2
/// let mut y = [0f32; 6];
/// matmul(&w, &x, &mut y, &ThreadPool::new(1)).unwrap();
/// assert_eq!(y, [2.0, 3.0, 5.0, 4.0, 5.0, 9.0]);
/// ```
pub fn matmul(w: &Tensor, x: &[f32], y: &mut [f32], pool: &ThreadPool) -> Result<()> {
    matmul_with_isa(w, x, y, pool, Isa::active())
}

/// [`matmul`] of the same activation rows `x` with each of `ws`, into the matching `ys`;
/// the activations are quantized once for consecutive weights whose formats share an
/// activation format (a block's query, key and value projections), not once per product.
/// Every output is the one [`matmul`] gives.
///
/// ```
/// use ziglama_tensor::matmul::matmuls;
/// use ziglama_tensor::{Tensor, ThreadPool};
/// let a = Tensor::from_f32(&[2, 1], &[1.0, 0.0]).unwrap();
/// let b = Tensor::from_f32(&[2, 1], &[0.0, 1.0]).unwrap();
/// let x = [2.0, 3.0, 4.0, 5.0]; // two rows of 2
/// let (mut ya, mut yb) = ([0f32; 2], [0f32; 2]);
/// matmuls(&[&a, &b], &x, &mut [&mut ya, &mut yb], &ThreadPool::new(1)).unwrap();
/// assert_eq!((ya, yb), ([2.0, 4.0], [3.0, 5.0]));
/// ```
///
/// # Errors
///
/// As [`matmul`], or a different number of weights and outputs.
pub fn matmuls(ws: &[&Tensor], x: &[f32], ys: &mut [&mut [f32]], pool: &ThreadPool) -> Result<()> {
    if ws.len() != ys.len() {
        return Err(TensorError::LengthMismatch {
            op: "matmuls: outputs",
            expected: ws.len(),
            actual: ys.len(),
            unit: "matrices",
        });
    }
    let set_sharing = |on: bool| {
        let mut scratch = SCRATCH.take();
        scratch.sharing = on;
        scratch.quantized = None;
        SCRATCH.set(scratch);
    };
    set_sharing(true);
    let result = ws
        .iter()
        .zip(ys.iter_mut())
        .try_for_each(|(w, y)| matmul(w, x, y, pool));
    set_sharing(false);
    result
}

/// [`matmul`] with the kernels of `isa` (or the best below it that this CPU supports).
pub fn matmul_with_isa(
    w: &Tensor,
    x: &[f32],
    y: &mut [f32],
    pool: &ThreadPool,
    isa: Isa,
) -> Result<()> {
    (w.dtype().traits().matmul)(w, x, y, pool, isa)
}

fn shape_error(op: &'static str, expected: usize, actual: usize) -> TensorError {
    TensorError::LengthMismatch {
        op,
        expected,
        actual,
        unit: "elements",
    }
}

/// The product for weight format `W`; the registry stores one instance per format.
pub(crate) fn matmul_typed<W: VecDot>(
    w: &Tensor,
    x: &[f32],
    y: &mut [f32],
    pool: &ThreadPool,
    isa: Isa,
) -> Result<()> {
    let plan = W::batch_kernels(w.n_rows(), x.len() / w.row_len().max(1), isa);
    matmul_with_plan(w, x, y, pool, &plan)
}

/// [`matmul_typed`] with the kernels of `plan`.
fn matmul_with_plan<W: VecDot>(
    w: &Tensor,
    x: &[f32],
    y: &mut [f32],
    pool: &ThreadPool,
    plan: &BatchKernels<W>,
) -> Result<()> {
    let k = w.row_len();
    let m = w.n_rows();
    let a_bs = <W::Activation as Block>::BLOCK_SIZE;
    if k == 0 || !k.is_multiple_of(a_bs) || !k.is_multiple_of(W::BLOCK_SIZE) {
        return Err(TensorError::NotBlockMultiple {
            op: "matmul activations",
            ty: <W::Activation as Block>::TYPE,
            n: k,
            block_size: a_bs,
        });
    }
    if !x.len().is_multiple_of(k) {
        return Err(shape_error(
            "matmul: x length a multiple of the row length",
            k,
            x.len(),
        ));
    }
    let n = x.len() / k;
    if y.len() != n * m {
        return Err(shape_error("matmul: y length", n * m, y.len()));
    }
    if n == 0 || m == 0 {
        return Ok(());
    }
    let weights: &[W] = w.blocks()?;
    let mut scratch = SCRATCH.take();
    let result = product_rows(weights, plan, x, y, (k, m, n), &mut scratch, pool);
    keep_scratch(scratch);
    result
}

/// Buffers of [`matmul_with_plan`] reused from one call to the next on the calling thread (so
/// that a batch's products do not each allocate, zero and free megabytes on the one thread
/// while the others wait).
#[derive(Default)]
struct Scratch {
    /// The quantized activations, as 8-byte words (every block type's alignment divides 8).
    xq: Vec<u64>,
    /// The tasks' results, before [`gather`] puts them in place.
    yt: Vec<f32>,
    /// Set by [`matmuls`] while its products run: they all read the same activations.
    sharing: bool,
    /// While `sharing`, what `xq` holds: the activations quantized to this format, with rows
    /// of this length and this many rows.
    quantized: Option<(GgmlType, usize, usize)>,
}

thread_local! {
    static SCRATCH: Cell<Scratch> = Cell::new(Scratch::default());
}

/// Largest buffer, in bytes, [`SCRATCH`] keeps between calls (a product with every logit of
/// a long batch is not worth holding on to).
const SCRATCH_KEEP: usize = 32 << 20;

/// Returns `scratch` to [`SCRATCH`], dropping buffers larger than [`SCRATCH_KEEP`].
fn keep_scratch(mut scratch: Scratch) {
    if scratch.xq.capacity() * size_of::<u64>() > SCRATCH_KEEP {
        scratch.xq = Vec::new();
        scratch.quantized = None;
    }
    if scratch.yt.capacity() * size_of::<f32>() > SCRATCH_KEEP {
        scratch.yt = Vec::new();
    }
    SCRATCH.set(scratch);
}

/// The product of [`matmul_with_plan`] once its shapes are checked: `dims` is `(k, m, n)`.
fn product_rows<W: VecDot>(
    weights: &[W],
    plan: &BatchKernels<W>,
    x: &[f32],
    y: &mut [f32],
    (k, m, n): (usize, usize, usize),
    scratch: &mut Scratch,
    pool: &ThreadPool,
) -> Result<()> {
    let a_bs = <W::Activation as Block>::BLOCK_SIZE;
    let w_row = k / W::BLOCK_SIZE;
    let a_row = k / a_bs;
    let xq_bytes = n * a_row * size_of::<W::Activation>();
    if scratch.xq.len() < xq_bytes.div_ceil(size_of::<u64>()) {
        scratch.xq.resize(xq_bytes.div_ceil(size_of::<u64>()), 0);
    }
    // Within `matmuls`, the activations already quantized to this format are reused.
    let key = (<W::Activation as Block>::TYPE, k, n);
    let reuse = scratch.sharing && scratch.quantized == Some(key);
    scratch.quantized = scratch.sharing.then_some(key);
    let xq_words: &mut [u8] = bytemuck::cast_slice_mut(&mut scratch.xq[..]);
    let xq: &mut [W::Activation] = bytemuck::cast_slice_mut(&mut xq_words[..xq_bytes]);
    if !reuse {
        quantize_rows::<W::Activation>(x, xq, k, pool);
    }
    let xq: &[W::Activation] = xq;

    let kernel = *plan.for_row(0);
    let row_bytes = w_row * size_of::<W>();
    let all_bytes: &[u8] = bytemuck::cast_slice(weights);
    let rows_per_task = rows_per_task(m, row_bytes, n, pool.n_threads());
    if n == 1 {
        let chunks: Vec<Mutex<&mut [f32]>> = y.chunks_mut(rows_per_task).map(Mutex::new).collect();
        pool.run(chunks.len(), |t| {
            let mut out = chunks[t].lock().unwrap_or_else(|e| e.into_inner());
            // Software prefetch PREFETCH_AHEAD bytes ahead of the row being read: with 4 KiB
            // pages the hardware prefetcher restarts at every page boundary (measurements in
            // docs/kernels.md).
            let r0 = t * rows_per_task;
            let ahead = |r: usize, rows: usize| {
                let (start, end) = (r * row_bytes, (r + rows) * row_bytes);
                (start + PREFETCH_AHEAD).min(all_bytes.len())
                    ..(end + PREFETCH_AHEAD).min(all_bytes.len())
            };
            let row = |r: usize| &weights[r * w_row..(r + 1) * w_row];
            // Four rows per call where the format has a four-row kernel: each row's sum is
            // bit-identical to a one-row call, and the four independent accumulation chains
            // overlap (a one-row kernel that sums blocks in ggml's order is bound by its
            // chain of dependent FMAs). The four-row kernels prefetch the next four rows
            // themselves, block by block (four interleaved streams defeat the hardware
            // prefetchers, and a burst of prefetches for four rows before each call measured
            // ~8% slower than none), so there is no prefetch here.
            let mut i = 0;
            if kernel.has_rows4() {
                while i + 4 <= out.len() {
                    let r = r0 + i;
                    let v = kernel.call4([row(r), row(r + 1), row(r + 2), row(r + 3)], xq);
                    out[i..i + 4].copy_from_slice(&v);
                    i += 4;
                }
            }
            for (j, o) in out.iter_mut().enumerate().skip(i) {
                let r = r0 + j;
                prefetch(&all_bytes[ahead(r, 1)]);
                *o = kernel.call(row(r), xq);
            }
        });
        return Ok(());
    }
    // Several activation rows: each task owns a range of weight rows and computes all `n`
    // outputs for each, into a transposed buffer. Where the format has a GEMM tile kernel,
    // groups of TILE_ROWS weight rows (which stay in L1) go against TILE_COLS activation
    // rows at a time, each weight block loaded and unpacked once for TILE_COLS activations
    // and each activation block once for TILE_ROWS rows; every output is bit-identical to
    // the single-row kernel's.
    let split = plan.split.min(n);
    let segments = [(&plan.head, 0, split), (&plan.tail, split, n)];
    // Segments whose kernel has a GEMM panel run as panels of PANEL_ROWS weight rows against
    // all of the segment's activation rows; the others as tiles or single-row calls.
    let (panels, others): (Vec<_>, Vec<_>) = segments
        .iter()
        .filter(|(_, j0, j1)| j0 < j1)
        .partition(|(k, _, _)| k.has_panel());
    let tiles = others.iter().any(|(k, _, _)| k.has_tile());
    let rows_per_task = if !panels.is_empty() {
        rows_per_task.next_multiple_of(PANEL_ROWS)
    } else if tiles {
        rows_per_task.next_multiple_of(TILE_ROWS)
    } else {
        rows_per_task
    };
    // Task t's results for rows r0..r0 + rows, activation-major: [j][r - r0], so that each
    // activation's results are one contiguous segment of y's row j.
    // Every element is written by a task before `gather` reads it, so stale values from an
    // earlier call need no clearing.
    if scratch.yt.len() < m * n {
        scratch.yt.resize(m * n, 0.0);
    }
    let yt = &mut scratch.yt[..m * n];
    {
        let chunks: Vec<Mutex<&mut [f32]>> =
            yt.chunks_mut(rows_per_task * n).map(Mutex::new).collect();
        pool.run(chunks.len(), |t| {
            let mut out = chunks[t].lock().unwrap_or_else(|e| e.into_inner());
            let r0 = t * rows_per_task;
            let rows = out.len() / n;
            let row = |r: usize| &weights[r * w_row..(r + 1) * w_row];
            let act = |j: usize| &xq[j * a_row..(j + 1) * a_row];
            for &(kernel, j0, j1) in &panels {
                let wr: Vec<&[W]> = (0..rows).map(|i| row(r0 + i)).collect();
                kernel.call_panel(
                    &wr,
                    &xq[j0 * a_row..j1 * a_row],
                    &mut out[j0 * rows..],
                    rows,
                );
            }
            let mut i = 0;
            if tiles {
                while i + TILE_ROWS <= rows {
                    let wr: [&[W]; TILE_ROWS] = std::array::from_fn(|k| row(r0 + i + k));
                    for &(kernel, j0, j1) in &others {
                        let mut j = j0;
                        if kernel.has_tile() {
                            while j + TILE_COLS <= j1 {
                                let v = kernel.call_tile(wr, std::array::from_fn(|c| act(j + c)));
                                for (k, vr) in v.iter().enumerate() {
                                    for (c, &x) in vr.iter().enumerate() {
                                        out[(j + c) * rows + i + k] = x;
                                    }
                                }
                                j += TILE_COLS;
                            }
                        }
                        for jj in j..j1 {
                            for (k, w) in wr.iter().enumerate() {
                                out[jj * rows + i + k] = kernel.call(w, act(jj));
                            }
                        }
                    }
                    i += TILE_ROWS;
                }
            }
            for ii in i..rows {
                let wr = row(r0 + ii);
                for &(kernel, j0, j1) in &others {
                    for j in j0..j1 {
                        out[j * rows + ii] = kernel.call(wr, act(j));
                    }
                }
            }
        });
    }
    gather(yt, y, m, n, rows_per_task, pool);
    Ok(())
}

/// Activation rows per task of [`gather`].
const GATHER_ROWS: usize = 16;

/// Copies the tasks' results into `y` (`n` rows of `m`): task `t` of `rows_per_task` weight
/// rows holds, from `yt[t * rows_per_task * n]` on, its rows' results for activation `j` at
/// `j * rows_t..(j + 1) * rows_t` (`rows_t` is `rows_per_task` except for a shorter last
/// task), which is one contiguous segment of row `j` of `y`. In parallel over groups of
/// activation rows.
fn gather(yt: &[f32], y: &mut [f32], m: usize, n: usize, rows_per_task: usize, pool: &ThreadPool) {
    let chunks: Vec<Mutex<&mut [f32]>> = y.chunks_mut(GATHER_ROWS * m).map(Mutex::new).collect();
    pool.run(chunks.len(), |t| {
        let mut out = chunks[t].lock().unwrap_or_else(|e| e.into_inner());
        let j0 = t * GATHER_ROWS;
        for (jj, dst) in out.chunks_exact_mut(m).enumerate() {
            let j = j0 + jj;
            for (task, seg) in dst.chunks_mut(rows_per_task).enumerate() {
                let rows = seg.len();
                let base = task * rows_per_task * n;
                seg.copy_from_slice(&yt[base + j * rows..base + (j + 1) * rows]);
            }
        }
    });
}

/// Quantizes each row of `x` (length `k`) into the activation format, in parallel when there
/// are many rows.
fn quantize_rows<A: Quantize>(x: &[f32], xq: &mut [A], k: usize, pool: &ThreadPool) {
    let a_row = k / A::BLOCK_SIZE;
    let n = x.len() / k;
    if n < 4 || pool.n_threads() == 1 {
        for (src, dst) in x.chunks_exact(k).zip(xq.chunks_exact_mut(a_row)) {
            A::quantize_activation(src, dst);
        }
        return;
    }
    let chunks: Vec<Mutex<&mut [A]>> = xq.chunks_mut(a_row).map(Mutex::new).collect();
    pool.run(n, |j| {
        let mut dst = chunks[j].lock().unwrap_or_else(|e| e.into_inner());
        A::quantize_activation(&x[j * k..(j + 1) * k], &mut dst);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GgmlType;

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn tasks_cover_the_rows_evenly_and_small_products_stay_whole() {
        // 192 rows of 360 bytes (a small model's K projection): a few tasks, not slivers.
        let r = rows_per_task(192, 360, 1, 2);
        assert!(r >= 32, "{r}");
        // A large matrix: up to 8 tasks per thread, evenly split.
        assert_eq!(rows_per_task(4096, 2304, 1, 2), 256);
        // A tiny one: one task.
        assert_eq!(rows_per_task(4, 18, 1, 2), 4);
        // Never more tasks than rows.
        assert_eq!(rows_per_task(3, 1 << 20, 1, 4), 1);
    }

    /// Every output is the same kernel call on the same data however rows are split, so the
    /// result is bit-identical across thread counts, equal to the dot of each row computed
    /// alone, and close to the f32 product.
    #[test]
    fn matmul_is_independent_of_threads_and_matches_row_dots() {
        let k = 256;
        for ty in [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0] {
            for m in [1usize, 5, 64, 300] {
                let wf = random(m * k, m as u64);
                let w = Tensor::quantize(ty, &[k, m], &wf).unwrap();
                let deq = w.to_f32().unwrap();
                for n in [1usize, 3, 6] {
                    let x = random(n * k, 7 + n as u64);
                    let mut first: Option<Vec<f32>> = None;
                    for threads in [1usize, 2, 3] {
                        let pool = ThreadPool::new(threads);
                        let mut y = vec![f32::NAN; n * m];
                        matmul(&w, &x, &mut y, &pool).unwrap();
                        match &first {
                            None => first = Some(y.clone()),
                            Some(f) => assert_eq!(f, &y, "{ty:?} m={m} n={n} threads={threads}"),
                        }
                        for j in 0..n {
                            for r in 0..m {
                                let exact: f32 = deq[r * k..(r + 1) * k]
                                    .iter()
                                    .zip(&x[j * k..(j + 1) * k])
                                    .map(|(a, b)| a * b)
                                    .sum();
                                // Activation rounding (Q8_0: 1/254 of the row's max per
                                // element) bounds the difference.
                                let tol = 0.02 * k as f32 / 16.0;
                                let got = y[j * m + r];
                                assert!((got - exact).abs() < tol, "{ty:?} {got} vs {exact}");
                            }
                        }
                    }
                }
            }
        }
    }

    /// A plan that splits the activation rows between two kernels gives each output the value
    /// of its row's kernel, with and without tiles, for split points inside and between tile
    /// groups.
    #[test]
    fn batch_plans_give_each_activation_row_its_kernel() {
        use crate::formats::{BlockQ4_1, DotKernel};
        let (k, m) = (96, 13);
        let w = Tensor::quantize(GgmlType::Q4_1, &[k, m], &random(k * m, 9)).unwrap();
        let rows: &[BlockQ4_1] = w.blocks().unwrap();
        let variants = DotKernel::<BlockQ4_1>::variants();
        let (first, last) = (variants[0], *variants.last().unwrap());
        for n in [2usize, 5, 9] {
            let x = random(n * k, 10 + n as u64);
            let mut xq = vec![bytemuck::Zeroable::zeroed(); n * k / 32];
            quantize_rows::<crate::formats::BlockQ8_1>(&x, &mut xq, k, &ThreadPool::new(1));
            for split in [0usize, 1, 4, n] {
                for (head, tail) in [(first, last), (last, first)] {
                    let plan = BatchKernels { split, head, tail };
                    for threads in [1usize, 2] {
                        let mut y = vec![f32::NAN; n * m];
                        matmul_with_plan(&w, &x, &mut y, &ThreadPool::new(threads), &plan).unwrap();
                        for j in 0..n {
                            for r in 0..m {
                                let want = plan
                                    .for_row(j)
                                    .call(&rows[r * 3..(r + 1) * 3], &xq[j * 3..(j + 1) * 3]);
                                assert_eq!(
                                    y[j * m + r].to_bits(),
                                    want.to_bits(),
                                    "n={n} split={split} r={r} j={j}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// Products through `matmuls`, which quantize the activations once per run of weights
    /// sharing an activation format, equal the products one at a time, bit for bit.
    #[test]
    fn shared_activations_give_the_products_of_single_calls() {
        let k = 256;
        let types = [
            GgmlType::Q8_0,
            GgmlType::Q4_0,
            GgmlType::Q4_1,
            GgmlType::Q8_0,
            GgmlType::F32,
        ];
        let ws: Vec<Tensor> = types
            .iter()
            .enumerate()
            .map(|(i, &ty)| Tensor::quantize(ty, &[k, 40], &random(40 * k, i as u64)).unwrap())
            .collect();
        let refs: Vec<&Tensor> = ws.iter().collect();
        for n in [1usize, 5] {
            let pool = ThreadPool::new(2);
            let x = random(n * k, 20 + n as u64);
            let mut shared = vec![vec![f32::NAN; n * 40]; ws.len()];
            let mut outs: Vec<&mut [f32]> = shared.iter_mut().map(|y| &mut y[..]).collect();
            matmuls(&refs, &x, &mut outs, &pool).unwrap();
            // A product after `matmuls` quantizes its own (different) activations.
            let x2 = random(n * k, 30 + n as u64);
            let mut after = vec![f32::NAN; n * 40];
            matmul(&ws[1], &x2, &mut after, &pool).unwrap();
            let mut alone = vec![f32::NAN; n * 40];
            matmul(&ws[1], &x2, &mut alone, &ThreadPool::new(1)).unwrap();
            assert_eq!(after, alone, "n={n}");
            for (w, y) in ws.iter().zip(&shared) {
                let mut single = vec![f32::NAN; n * 40];
                matmul(w, &x, &mut single, &pool).unwrap();
                assert_eq!(&single, y, "{:?} n={n}", w.dtype());
            }
        }
    }

    #[test]
    fn scalar_and_active_kernels_agree() {
        let (k, m) = (512, 40);
        let w = Tensor::quantize(GgmlType::Q8_0, &[k, m], &random(k * m, 3)).unwrap();
        let x = random(k, 4);
        let pool = ThreadPool::new(2);
        let (mut a, mut b) = (vec![0f32; m], vec![0f32; m]);
        matmul_with_isa(&w, &x, &mut a, &pool, Isa::Scalar).unwrap();
        matmul_with_isa(&w, &x, &mut b, &pool, Isa::active()).unwrap();
        for (a, b) in a.iter().zip(&b) {
            assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "{a} vs {b}");
        }
    }

    #[test]
    fn shape_errors_are_reported() {
        let w = Tensor::from_f32(&[4, 2], &[0.0; 8]).unwrap();
        let pool = ThreadPool::new(1);
        let mut y = [0f32; 2];
        assert!(matmul(&w, &[0.0; 5], &mut y, &pool).is_err());
        assert!(matmul(&w, &[0.0; 8], &mut y, &pool).is_err());
        let q = Tensor::zeros(GgmlType::Q8_0, &[32, 1]).unwrap();
        let mut y1 = [0f32; 1];
        assert!(matmul(&q, &[0.0; 32], &mut y1, &pool).is_ok());
        assert_eq!(y1, [0.0]);
    }
}
