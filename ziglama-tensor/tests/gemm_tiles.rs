//! The GEMM tile kernels (`DotKernel::call_tile`) give every output bit for bit the value of
//! the single-row dot kernel of the same variant on the same pair of rows, for every format
//! and every kernel variant this CPU runs (the scalar reference and formats without tile
//! kernels take the single-row fallback, so they are covered too), over odd block counts; and
//! `matmul` with several activation rows (the tiled path, with partial tiles of rows and
//! activations) equals, bit for bit, the kernels of the format's batch plan
//! (`VecDot::batch_kernels`: the matrix-vector kernel for the formats whose llama.cpp order does
//! not depend on the batch, so there it equals each activation row alone), for every kernel set
//! and thread count. This is what keeps prompt processing bit-exact with llama.cpp wherever the
//! single-row kernels are.

use ziglama_tensor::formats::{
    q4_k, BlockIQ4_NL, BlockQ4_0, BlockQ4_1, BlockQ4_K, BlockQ5_0, BlockQ5_1, BlockQ6_K, BlockQ8_0,
    DotKernel, Quantize, VecDot, PANEL_ROWS, TILE_COLS, TILE_ROWS,
};
use ziglama_tensor::{matmul::matmul_with_isa, GgmlType, Isa, Tensor, ThreadPool};

/// Deterministic pseudo-random values in `[-1, 1)`, with a per-row magnitude spread over a few
/// decades (so the blocks' scales differ widely).
fn random_rows(rows: usize, k: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    };
    let mut out = Vec::with_capacity(rows * k);
    for r in 0..rows {
        let scale = [1.0f32, 0.01, 30.0, 0.3, 5.0][r % 5];
        for _ in 0..k {
            let v = next();
            // Some exact zeros and some outliers, as real activations have.
            let v = if v.abs() < 0.02 { 0.0 } else { v };
            out.push(if v > 0.97 { v * 8.0 * scale } else { v * scale });
        }
    }
    out
}

fn quantize_rows<B: Quantize>(x: &[f32], k: usize, activation: bool) -> Vec<B> {
    let per_row = k / B::BLOCK_SIZE;
    let mut out = vec![bytemuck::Zeroable::zeroed(); x.len() / k * per_row];
    for (src, dst) in x.chunks_exact(k).zip(out.chunks_exact_mut(per_row)) {
        if activation {
            B::quantize_activation(src, dst);
        } else {
            B::quantize(src, dst);
        }
    }
    out
}

/// Every variant of `W`: each tile's outputs equal the single-row calls bit for bit.
fn check_tiles<W: VecDot + Quantize>(block_counts: &[usize])
where
    W::Activation: Quantize,
{
    let a_bs = <W::Activation as ziglama_tensor::formats::Block>::BLOCK_SIZE;
    for &nb in block_counts {
        let k = nb * W::BLOCK_SIZE;
        assert_eq!(k % a_bs, 0);
        let w: Vec<W> = quantize_rows(&random_rows(TILE_ROWS, k, nb as u64), k, false);
        let a: Vec<W::Activation> =
            quantize_rows(&random_rows(TILE_COLS, k, 77 + nb as u64), k, true);
        let (wn, an) = (nb, k / a_bs);
        let wr: [&[W]; TILE_ROWS] = std::array::from_fn(|r| &w[r * wn..(r + 1) * wn]);
        let ar: [&[W::Activation]; TILE_COLS] = std::array::from_fn(|c| &a[c * an..(c + 1) * an]);
        for kernel in DotKernel::<W>::variants() {
            let tile = kernel.call_tile(wr, ar);
            for r in 0..TILE_ROWS {
                for c in 0..TILE_COLS {
                    let one = kernel.call(wr[r], ar[c]);
                    assert_eq!(
                        tile[r][c].to_bits(),
                        one.to_bits(),
                        "{:?} {} ({} tile kernel) nb={nb} r={r} c={c}: {} vs {}",
                        W::TYPE,
                        kernel.name(),
                        if kernel.has_tile() { "with" } else { "without" },
                        tile[r][c],
                        one
                    );
                }
            }
        }
    }
}

const LEGACY_BLOCKS: &[usize] = &[1, 2, 3, 5, 7, 18, 48];
const KQUANT_BLOCKS: &[usize] = &[1, 2, 3, 6];

#[test]
fn q4_0_tiles_equal_single_row_calls() {
    check_tiles::<BlockQ4_0>(LEGACY_BLOCKS);
}

#[test]
fn q4_1_tiles_equal_single_row_calls() {
    check_tiles::<BlockQ4_1>(LEGACY_BLOCKS);
}

#[test]
fn q5_0_tiles_equal_single_row_calls() {
    check_tiles::<BlockQ5_0>(LEGACY_BLOCKS);
}

#[test]
fn q5_1_tiles_equal_single_row_calls() {
    check_tiles::<BlockQ5_1>(LEGACY_BLOCKS);
}

#[test]
fn q8_0_tiles_equal_single_row_calls() {
    check_tiles::<BlockQ8_0>(LEGACY_BLOCKS);
}

#[test]
fn q4_k_tiles_equal_single_row_calls() {
    check_tiles::<BlockQ4_K>(KQUANT_BLOCKS);
}

#[test]
fn q6_k_tiles_equal_single_row_calls() {
    check_tiles::<BlockQ6_K>(KQUANT_BLOCKS);
}

/// Weight rows of the largest panel call tested: more than two groups of `PANEL_ROWS`.
const MAX_ROWS: usize = 2 * PANEL_ROWS + 8;

/// Every kernel of `variants`: a GEMM panel (`DotKernel::call_panel`) of 1 to `MAX_ROWS`
/// weight rows (narrow panels take them `PANEL_ROWS` at a time, wide ones at once) against 1 to 9 activation rows (whole and partial groups of the kernels'
/// four) gives every output bit for bit the single-row kernel's value, writes nothing
/// between the outputs (`stride` larger than the panel), and for the kernels without a panel
/// the fallback does the same.
fn check_panels<W: VecDot + Quantize>(variants: &[DotKernel<W>], block_counts: &[usize])
where
    W::Activation: Quantize,
{
    let a_bs = <W::Activation as ziglama_tensor::formats::Block>::BLOCK_SIZE;
    for &nb in block_counts {
        let k = nb * W::BLOCK_SIZE;
        let w: Vec<W> = quantize_rows(&random_rows(MAX_ROWS, k, 5 + nb as u64), k, false);
        let an = k / a_bs;
        for n in [1usize, 3, 4, 5, 9] {
            let a: Vec<W::Activation> =
                quantize_rows(&random_rows(n, k, 91 + (nb * n) as u64), k, true);
            for rows in [1usize, 5, 8, 13, PANEL_ROWS, 33, MAX_ROWS] {
                let wr: Vec<&[W]> = (0..rows).map(|r| &w[r * nb..(r + 1) * nb]).collect();
                let stride = rows + 3;
                for kernel in variants {
                    let mut out = vec![f32::NAN; n * stride];
                    kernel.call_panel(&wr, &a, &mut out, stride);
                    for j in 0..n {
                        for r in 0..stride {
                            let got = out[j * stride + r];
                            if r >= rows {
                                assert!(got.is_nan(), "{} wrote past the panel", kernel.name());
                                continue;
                            }
                            let want = kernel.call(wr[r], &a[j * an..(j + 1) * an]);
                            assert_eq!(
                                got.to_bits(),
                                want.to_bits(),
                                "{:?} {} ({} panel) nb={nb} rows={rows} n={n} r={r} j={j}: \
                                 {got} vs {want}",
                                W::TYPE,
                                kernel.name(),
                                if kernel.has_panel() {
                                    "with"
                                } else {
                                    "without"
                                },
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn q4_k_gemm_panels_equal_single_row_calls() {
    let variants = q4_k::x86_kernel_variants(q4_k::X86Order::Gemm);
    // With AVX-512 the panels themselves are under test, not only the fallback.
    assert_eq!(
        variants.iter().any(|k| k.has_panel()),
        cfg!(target_arch = "x86_64") && Isa::Avx512.is_supported()
    );
    check_panels::<BlockQ4_K>(&variants, KQUANT_BLOCKS);
}

#[test]
fn q6_k_tiled_panels_equal_single_row_calls() {
    let variants = ziglama_tensor::formats::q6_k::x86_tiled_kernel_variants();
    assert_eq!(
        variants.iter().any(|k| k.has_panel()),
        cfg!(target_arch = "x86_64") && Isa::Avx512.is_supported()
    );
    check_panels::<BlockQ6_K>(&variants, KQUANT_BLOCKS);
}

#[test]
fn legacy_panels_equal_single_row_calls() {
    check_panels::<BlockQ4_0>(&DotKernel::variants(), LEGACY_BLOCKS);
    check_panels::<BlockQ5_0>(&DotKernel::variants(), LEGACY_BLOCKS);
    check_panels::<BlockQ8_0>(&DotKernel::variants(), LEGACY_BLOCKS);
    check_panels::<BlockQ4_1>(&DotKernel::variants(), &[1, 3]);
    assert_eq!(
        DotKernel::<BlockQ5_0>::variants()
            .iter()
            .any(|k| k.has_panel()),
        Isa::has_avx512_vnni()
    );
}

/// IQ4_NL has no reference quantizer; its tile fallback is checked on blocks made of random
/// bytes.
#[test]
fn iq4_nl_tile_fallback_equals_single_row_calls() {
    let nb = 5;
    let mut s = 12345u32;
    let mut byte = || {
        s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
        (s >> 16) as u8
    };
    let w: Vec<BlockIQ4_NL> = (0..TILE_ROWS * nb)
        .map(|i| {
            let mut b = [0u8; 18];
            b.iter_mut().for_each(|x| *x = byte());
            b[..2].copy_from_slice(&half::f16::from_f32(0.01 * (i % 7 + 1) as f32).to_le_bytes());
            bytemuck::cast(b)
        })
        .collect();
    let a: Vec<BlockQ8_0> = quantize_rows(&random_rows(TILE_COLS, nb * 32, 3), nb * 32, true);
    let wr: [&[BlockIQ4_NL]; TILE_ROWS] = std::array::from_fn(|r| &w[r * nb..(r + 1) * nb]);
    let ar: [&[BlockQ8_0]; TILE_COLS] = std::array::from_fn(|c| &a[c * nb..(c + 1) * nb]);
    for kernel in DotKernel::<BlockIQ4_NL>::variants() {
        let tile = kernel.call_tile(wr, ar);
        for r in 0..TILE_ROWS {
            for c in 0..TILE_COLS {
                assert_eq!(tile[r][c].to_bits(), kernel.call(wr[r], ar[c]).to_bits());
            }
        }
    }
}

/// `matmul` of `n` activation rows at once equals `n` matrix-vector products, bit for bit, for
/// odd numbers of weight rows and activation rows (partial tiles on both sides), on every
/// kernel set and with one and two threads.
/// `matmul` of `n` activation rows against the kernels of the format's batch plan
/// ([`VecDot::batch_kernels`]), one call per (weight row, activation row): every output bit
/// for bit. For the formats whose llama.cpp order does not depend on the batch (the legacy
/// ones and the floats) the plan is the matrix-vector kernel, so the batched product equals
/// each activation row alone; the k-quants on x86 follow llama.cpp's batch orders (Q4_K's
/// repacked gemm for whole groups of four rows and gemv for the rest, Q6_K's tiled order for
/// 8 or more rows).
fn check_batched<W: VecDot + Quantize>(
    w: &Tensor,
    x: &[f32],
    y: &[f32],
    n: usize,
    isa: Isa,
    what: &str,
) where
    W::Activation: Quantize,
{
    let k = w.row_len();
    let m = w.n_rows();
    let blocks: &[W] = w.blocks().unwrap();
    let w_row = k / W::BLOCK_SIZE;
    let a_row = k / <W::Activation as ziglama_tensor::formats::Block>::BLOCK_SIZE;
    let xq: Vec<W::Activation> = quantize_rows(x, k, true);
    let plan = W::batch_kernels(m, n, isa);
    for j in 0..n {
        let kernel = plan.for_row(j);
        for r in 0..m {
            let want = kernel.call(&blocks[r * w_row..][..w_row], &xq[j * a_row..][..a_row]);
            assert_eq!(
                y[j * m + r].to_bits(),
                want.to_bits(),
                "{what} row {r} act {j}: {} vs {want}",
                y[j * m + r]
            );
        }
    }
}

#[test]
fn batched_matmul_follows_the_batch_plan() {
    let types = [
        (GgmlType::Q4_0, 96),
        (GgmlType::Q4_1, 96),
        (GgmlType::Q5_0, 64),
        (GgmlType::Q5_1, 64),
        (GgmlType::Q8_0, 160),
        (GgmlType::Q4_K, 256),
        (GgmlType::Q6_K, 512),
        (GgmlType::F16, 48),
        (GgmlType::F32, 40),
    ];
    for (ty, k) in types {
        for m in [1usize, 4, 7, 8, 13, 16, 40] {
            let w = Tensor::quantize(ty, &[k, m], &random_rows(m, k, m as u64 + 5)).unwrap();
            for n in [2usize, 4, 5, 9] {
                let x = random_rows(n, k, 100 + n as u64);
                for isa in Isa::all_supported() {
                    for threads in [1usize, 2] {
                        let pool = ThreadPool::new(threads);
                        let mut y = vec![f32::NAN; n * m];
                        matmul_with_isa(&w, &x, &mut y, &pool, isa).unwrap();
                        let what = format!("{ty:?} {isa} threads={threads} m={m} n={n}");
                        match ty {
                            GgmlType::Q4_0 => check_batched::<BlockQ4_0>(&w, &x, &y, n, isa, &what),
                            GgmlType::Q4_1 => check_batched::<BlockQ4_1>(&w, &x, &y, n, isa, &what),
                            GgmlType::Q5_0 => check_batched::<BlockQ5_0>(&w, &x, &y, n, isa, &what),
                            GgmlType::Q5_1 => check_batched::<BlockQ5_1>(&w, &x, &y, n, isa, &what),
                            GgmlType::Q8_0 => check_batched::<BlockQ8_0>(&w, &x, &y, n, isa, &what),
                            GgmlType::Q4_K => check_batched::<BlockQ4_K>(&w, &x, &y, n, isa, &what),
                            GgmlType::Q6_K => check_batched::<BlockQ6_K>(&w, &x, &y, n, isa, &what),
                            _ => {}
                        }
                        if !matches!(ty, GgmlType::Q4_K | GgmlType::Q6_K) {
                            // The plan is the matrix-vector kernel: equal to each row alone.
                            for j in 0..n {
                                let mut yj = vec![f32::NAN; m];
                                matmul_with_isa(&w, &x[j * k..(j + 1) * k], &mut yj, &pool, isa)
                                    .unwrap();
                                for r in 0..m {
                                    assert_eq!(
                                        y[j * m + r].to_bits(),
                                        yj[r].to_bits(),
                                        "{what} row {r} act {j}: {} vs {}",
                                        y[j * m + r],
                                        yj[r]
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn q4_0_repacked_panels_equal_single_row_calls() {
    use ziglama_tensor::formats::q4_0;
    let variants = q4_0::x86_kernel_variants(q4_0::X86Order::Repacked);
    // Every SIMD kernel of the repacked order has a panel.
    for k in &variants {
        assert_eq!(k.has_panel(), k.isa() != Isa::Scalar, "{}", k.name());
    }
    check_panels::<BlockQ4_0>(&variants, LEGACY_BLOCKS);
}
