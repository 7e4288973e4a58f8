//! `matvec::matvecs` and `matvec::gated_matvec` (the decoding path) give every output bit for
//! bit the value `matmul` gives for the same product, for every format of the registry, every
//! kernel set this CPU runs, 1 to 3 threads, matrix heights that leave partial groups of four
//! rows and partial tasks, and several products of different formats in one call. This is what
//! lets the transformer block decode through them without changing a logit.

use ziglama_tensor::matmul::matmul_with_isa;
use ziglama_tensor::matvec::{gated_matvec_with_isa, matvecs_with_isa};
use ziglama_tensor::{formats, GgmlType, Isa, Tensor, ThreadPool};

/// Deterministic pseudo-random values in `[-1, 1)` (xorshift).
fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        })
        .collect()
}

/// A `[k, m]` weight of `ty`: quantized random values where the format has a quantizer,
/// otherwise random bytes below 0x3c (so every f16 scale is finite and below 1).
fn weight(ty: GgmlType, k: usize, m: usize, seed: u64) -> Tensor {
    if formats::can_quantize(ty) {
        return Tensor::quantize(ty, &[k, m], &random(k * m, seed)).unwrap();
    }
    let n = ty.row_size(k).unwrap() * m;
    let bytes: Vec<u8> = random(n, seed)
        .iter()
        .map(|v| ((v + 1.0) * 30.0) as u8)
        .collect();
    Tensor::from_bytes(ty, &[k, m], &bytes).unwrap()
}

fn row_len_for(ty: GgmlType) -> usize {
    // An odd number of 32-element blocks where the format allows it, else three super-blocks.
    if ty.block_size() == 32 {
        544
    } else {
        768
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn matvecs_equal_matmul_for_every_format_kernel_set_and_thread_count() {
    for ty in GgmlType::ALL {
        let k = row_len_for(ty);
        let x = random(k, 99);
        for m in [1usize, 6, 64, 301] {
            let w = weight(ty, k, m, m as u64);
            for isa in Isa::all_supported() {
                let mut want = vec![0f32; m];
                matmul_with_isa(&w, &x, &mut want, &ThreadPool::new(1), isa).unwrap();
                for threads in [1usize, 2, 3] {
                    let mut got = vec![f32::NAN; m];
                    matvecs_with_isa(&[&w], &x, &mut [&mut got], &ThreadPool::new(threads), isa)
                        .unwrap();
                    assert_eq!(
                        bits(&got),
                        bits(&want),
                        "{ty:?} m={m} {isa:?} threads={threads}"
                    );
                }
            }
        }
    }
}

#[test]
fn several_products_in_one_call_equal_each_alone() {
    // A block's query, key and value projections of different formats and heights.
    let k = 768;
    let x = random(k, 5);
    let ws = [
        weight(GgmlType::Q4_1, k, 768, 1),
        weight(GgmlType::Q5_0, k, 256, 2),
        weight(GgmlType::Q8_0, k, 250, 3),
        weight(GgmlType::Q4_K, k, 129, 4),
    ];
    for isa in Isa::all_supported() {
        for threads in [1usize, 2] {
            let pool = ThreadPool::new(threads);
            let mut ys: Vec<Vec<f32>> = ws.iter().map(|w| vec![f32::NAN; w.n_rows()]).collect();
            let mut outs: Vec<&mut [f32]> = ys.iter_mut().map(|y| y.as_mut_slice()).collect();
            let refs: Vec<&Tensor> = ws.iter().collect();
            matvecs_with_isa(&refs, &x, &mut outs, &pool, isa).unwrap();
            for (w, y) in ws.iter().zip(&ys) {
                let mut want = vec![0f32; w.n_rows()];
                matmul_with_isa(w, &x, &mut want, &pool, isa).unwrap();
                assert_eq!(bits(y), bits(&want), "{:?} {isa:?} {threads}", w.dtype());
            }
        }
    }
}

#[test]
fn gated_matvec_equals_the_unit_on_whole_matmul_rows() {
    let k = 544;
    let x = random(k, 11);
    // Heights that are and are not multiples of the alignment (16) and of 4.
    for m in [16usize, 100, 1536, 1541] {
        for ty in [GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q8_0] {
            let (gate, up) = (weight(ty, k, m, 7), weight(ty, k, m, 8));
            for isa in Isa::all_supported() {
                let pool1 = ThreadPool::new(1);
                let (mut g, mut u) = (vec![0f32; m], vec![0f32; m]);
                matmul_with_isa(&gate, &x, &mut g, &pool1, isa).unwrap();
                matmul_with_isa(&up, &x, &mut u, &pool1, isa).unwrap();
                ziglama_tensor::vector::swiglu_ggml(&mut g, &u);
                for threads in [1usize, 2, 3] {
                    let (mut out, mut ub) = (vec![f32::NAN; m], vec![f32::NAN; m]);
                    let unit = |g: &mut [f32], u: &[f32]| ziglama_tensor::vector::swiglu_ggml(g, u);
                    gated_matvec_with_isa(
                        &gate,
                        &up,
                        &x,
                        &mut out,
                        &mut ub,
                        &unit,
                        16,
                        &ThreadPool::new(threads),
                        isa,
                    )
                    .unwrap();
                    assert_eq!(bits(&out), bits(&g), "{ty:?} m={m} {isa:?} {threads}");
                    assert_eq!(bits(&ub), bits(&u), "{ty:?} m={m} {isa:?} {threads}");
                }
            }
        }
    }
}

#[test]
fn wrong_lengths_are_errors() {
    let w = weight(GgmlType::Q8_0, 64, 3, 1);
    let pool = ThreadPool::new(2);
    let mut y = [0f32; 3];
    assert!(matvecs_with_isa(&[&w], &[0.0; 32], &mut [&mut y], &pool, Isa::Scalar).is_err());
    let mut short = [0f32; 2];
    assert!(matvecs_with_isa(&[&w], &[0.0; 64], &mut [&mut short], &pool, Isa::Scalar).is_err());
    assert!(matvecs_with_isa(&[&w, &w], &[0.0; 64], &mut [&mut y], &pool, Isa::Scalar).is_err());
    let other = weight(GgmlType::Q8_0, 64, 4, 2);
    let (mut o, mut u) = ([0f32; 3], [0f32; 3]);
    let unit = |_: &mut [f32], _: &[f32]| {};
    assert!(gated_matvec_with_isa(
        &w,
        &other,
        &[0.0; 64],
        &mut o,
        &mut u,
        &unit,
        16,
        &pool,
        Isa::Scalar
    )
    .is_err());
}
