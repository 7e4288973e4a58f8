//! Matrix-vector and matrix-matrix products of a (quantized) weight matrix with f32
//! activations, split across a [`ThreadPool`].
//!
//! As in ggml, the activations are first quantized to the weight format's activation type
//! ([`VecDot::Activation`]: Q8_0, Q8_1, Q8_K, f16, ...) and every output is one dot product
//! of a weight row with an activation row, computed by the best [`DotKernel`] for this CPU.

use std::sync::Mutex;

use crate::error::{Result, TensorError};
use crate::formats::{Block, DotKernel, Quantize, VecDot};
use crate::{Isa, Tensor, ThreadPool};

/// Rows of the weight matrix per task, at least; small enough to balance two to a few dozen
/// threads, large enough that claiming a task costs nothing by comparison.
const MIN_ROWS_PER_TASK: usize = 16;

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
    let k = w.row_len();
    let m = w.n_rows();
    let a_bs = <W::Activation as Block>::BLOCK_SIZE;
    if k == 0 || k % a_bs != 0 || k % W::BLOCK_SIZE != 0 {
        return Err(TensorError::NotBlockMultiple {
            op: "matmul activations",
            ty: <W::Activation as Block>::TYPE,
            n: k,
            block_size: a_bs,
        });
    }
    if x.len() % k != 0 {
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
    let w_row = k / W::BLOCK_SIZE;
    let a_row = k / a_bs;

    let mut xq: Vec<W::Activation> = vec![bytemuck::Zeroable::zeroed(); n * a_row];
    quantize_rows::<W::Activation>(x, &mut xq, k, pool);

    let kernel = DotKernel::<W>::select(isa);
    let rows_per_task = m
        .div_ceil(pool.n_threads() * 8)
        .max(MIN_ROWS_PER_TASK)
        .min(m);
    if n == 1 {
        let chunks: Vec<Mutex<&mut [f32]>> = y.chunks_mut(rows_per_task).map(Mutex::new).collect();
        pool.run(chunks.len(), |t| {
            let mut out = chunks[t].lock().unwrap_or_else(|e| e.into_inner());
            let r0 = t * rows_per_task;
            for (i, o) in out.iter_mut().enumerate() {
                let r = r0 + i;
                *o = kernel.call(&weights[r * w_row..(r + 1) * w_row], &xq);
            }
        });
        return Ok(());
    }
    // Several activation rows: each task owns a range of weight rows and computes all `n`
    // outputs for each (the weight row stays in cache), into a transposed buffer.
    let mut yt = vec![0f32; m * n];
    {
        let chunks: Vec<Mutex<&mut [f32]>> =
            yt.chunks_mut(rows_per_task * n).map(Mutex::new).collect();
        pool.run(chunks.len(), |t| {
            let mut out = chunks[t].lock().unwrap_or_else(|e| e.into_inner());
            let r0 = t * rows_per_task;
            for (i, o) in out.chunks_exact_mut(n).enumerate() {
                let r = r0 + i;
                let wr = &weights[r * w_row..(r + 1) * w_row];
                for (j, o) in o.iter_mut().enumerate() {
                    *o = kernel.call(wr, &xq[j * a_row..(j + 1) * a_row]);
                }
            }
        });
    }
    for (r, col) in yt.chunks_exact(n).enumerate() {
        for (j, &v) in col.iter().enumerate() {
            y[j * m + r] = v;
        }
    }
    Ok(())
}

/// Quantizes each row of `x` (length `k`) into the activation format, in parallel when there
/// are many rows.
fn quantize_rows<A: Quantize>(x: &[f32], xq: &mut [A], k: usize, pool: &ThreadPool) {
    let a_row = k / A::BLOCK_SIZE;
    let n = x.len() / k;
    if n < 4 || pool.n_threads() == 1 {
        for (src, dst) in x.chunks_exact(k).zip(xq.chunks_exact_mut(a_row)) {
            A::quantize(src, dst);
        }
        return;
    }
    let chunks: Vec<Mutex<&mut [A]>> = xq.chunks_mut(a_row).map(Mutex::new).collect();
    pool.run(n, |j| {
        let mut dst = chunks[j].lock().unwrap_or_else(|e| e.into_inner());
        A::quantize(&x[j * k..(j + 1) * k], &mut dst);
    });
}
