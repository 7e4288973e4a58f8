//! Q4_0 in the order of llama.cpp's repacked Q4_0 kernels (`q4_0::X86Order::Repacked`):
//! every kernel of that order (AVX2, AVX-512 BW and AVX-512 VNNI, one row and four rows) equals the
//! scalar model `q4_0::vec_dot_ggml_repacked` bit for bit, on random rows and on the extreme
//! quants (every integer sum at its largest magnitude), and `matmul` picks that order exactly
//! for the tensors llama.cpp repacks (row counts that are multiples of 8, on x86 with AVX2).
//! The panels are checked in `gemm_tiles.rs`; the end-to-end agreement with llama.cpp in
//! ziglama-model's SmolLM2 Q4_0 test.

use half::f16;
use ziglama_tensor::formats::q4_0::{self, X86Order};
use ziglama_tensor::formats::{BlockQ4_0, BlockQ8_0, DotKernel, Quantize};
use ziglama_tensor::{matmul::matmul_with_isa, Isa, Tensor, ThreadPool};

/// xorshift64: deterministic bytes.
fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}

fn random_weights(n: usize, seed: u64) -> Vec<BlockQ4_0> {
    let mut next = rng(seed);
    (0..n)
        .map(|_| BlockQ4_0 {
            // Scales over several decades, both signs.
            d: f16::from_f32(((next() % 2001) as f32 - 1000.0) / 256.0),
            qs: std::array::from_fn(|_| next() as u8),
        })
        .collect()
}

fn random_activations(n: usize, seed: u64) -> Vec<BlockQ8_0> {
    let mut next = rng(seed);
    (0..n)
        .map(|_| BlockQ8_0 {
            d: f16::from_f32((next() % 1000) as f32 / 777.0 + 0.001),
            qs: std::array::from_fn(|_| ((next() % 255) as i32 - 127) as i8),
        })
        .collect()
}

fn variants() -> Vec<DotKernel<BlockQ4_0>> {
    let v = q4_0::x86_kernel_variants(X86Order::Repacked);
    // The SIMD kernels themselves are under test wherever the CPU has them.
    let simd = v.iter().filter(|k| k.isa() != Isa::Scalar).count();
    let expected = if cfg!(target_arch = "x86_64") {
        usize::from(Isa::Avx2.is_supported())
            + usize::from(Isa::Avx512.is_supported())
            + usize::from(Isa::has_avx512_vnni())
    } else {
        0
    };
    assert_eq!(simd, expected, "kernels of the repacked order on this CPU");
    v
}

fn check(w: &[BlockQ4_0], a: &[BlockQ8_0], nb: usize, what: &str) {
    let rows = w.len() / nb;
    for kernel in variants() {
        for r in 0..rows {
            let row = &w[r * nb..(r + 1) * nb];
            let want = q4_0::vec_dot_ggml_repacked(row, a);
            let got = kernel.call(row, a);
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "{what}: {} row {r}: {got} vs {want}",
                kernel.name()
            );
        }
        for r in 0..rows.saturating_sub(3) {
            let four: [&[BlockQ4_0]; 4] =
                std::array::from_fn(|i| &w[(r + i) * nb..(r + i + 1) * nb]);
            let got = kernel.call4(four, a);
            for i in 0..4 {
                let want = q4_0::vec_dot_ggml_repacked(four[i], a);
                assert_eq!(
                    got[i].to_bits(),
                    want.to_bits(),
                    "{what}: {} four rows from {r}, row {i}: {} vs {want}",
                    kernel.name(),
                    got[i]
                );
            }
        }
    }
}

#[test]
fn every_kernel_equals_the_scalar_model_on_random_rows() {
    for nb in [1usize, 2, 3, 7, 18, 48] {
        let w = random_weights(6 * nb, nb as u64);
        let a = random_activations(nb, 100 + nb as u64);
        check(&w, &a, nb, &format!("random, {nb} blocks"));
    }
}

#[test]
fn every_kernel_equals_the_scalar_model_at_the_extremes() {
    // Quants 0 (-8) and 15 (7) against activations -127 and 127, the ends of what the Q8_0
    // activation quantizer makes (it never makes -128; llama.cpp's kernels, like the AVX2
    // one here, take ggml's sign trick, which gets -128 times a negative weight wrong).
    let nb = 5;
    let mut w = Vec::new();
    for (i, byte) in [0x00u8, 0xFF, 0x0F, 0xF0, 0x88, 0x80]
        .into_iter()
        .enumerate()
    {
        for b in 0..nb {
            w.push(BlockQ4_0 {
                d: f16::from_f32(if (i + b) % 2 == 0 { 1.5 } else { -0.001 }),
                qs: [byte; 16],
            });
        }
    }
    for q in [-127i8, 127] {
        let a: Vec<BlockQ8_0> = (0..nb)
            .map(|b| BlockQ8_0 {
                d: f16::from_f32(0.25 + b as f32),
                qs: [q; 32],
            })
            .collect();
        check(&w, &a, nb, &format!("extremes, activations {q}"));
    }
}

#[test]
fn the_scalar_model_is_the_integer_sum_with_one_fma_per_block() {
    let w = random_weights(3, 7);
    let a = random_activations(3, 8);
    let mut acc = 0f32;
    for (x, y) in w.iter().zip(&a) {
        let q = |e: usize| {
            let byte = x.qs[e % 16];
            (if e < 16 { byte & 0x0F } else { byte >> 4 }) as i32 - 8
        };
        let i: i32 = (0..32).map(|e| q(e) * y.qs[e] as i32).sum();
        acc = (i as f32).mul_add(x.d.to_f32() * y.d.to_f32(), acc);
    }
    assert_eq!(q4_0::vec_dot_ggml_repacked(&w, &a).to_bits(), acc.to_bits());
}

#[test]
fn matmul_uses_the_repacked_order_exactly_where_llama_cpp_repacks() {
    let pool = ThreadPool::new(2);
    let k = 64;
    for n_out in [8usize, 16, 12] {
        let x: Vec<f32> = (0..n_out * k)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let w = Tensor::quantize(ziglama_tensor::GgmlType::Q4_0, &[k, n_out], &x).unwrap();
        let blocks: &[BlockQ4_0] = w.blocks().unwrap();
        for n in [1usize, 5] {
            let acts: Vec<f32> = (0..n * k)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) / 5.0)
                .collect();
            let mut aq = vec![bytemuck::Zeroable::zeroed(); n * k / 32];
            for (src, dst) in acts.chunks_exact(k).zip(aq.chunks_exact_mut(k / 32)) {
                BlockQ8_0::quantize_activation(src, dst);
            }
            for isa in [Isa::Scalar, Isa::Avx2, Isa::Avx512]
                .into_iter()
                .filter(|i| i.is_supported())
            {
                let mut y = vec![0f32; n * n_out];
                matmul_with_isa(&w, &acts, &mut y, &pool, isa).unwrap();
                let order = X86Order::for_tensor(n_out);
                assert_eq!(order == X86Order::Repacked, n_out % 8 == 0);
                for j in 0..n {
                    let a = &aq[j * 2..(j + 1) * 2];
                    for r in 0..n_out {
                        let row = &blocks[r * 2..(r + 1) * 2];
                        let want = if isa == Isa::Scalar || order == X86Order::VecDot {
                            DotKernel::<BlockQ4_0>::select(isa).call(row, a)
                        } else {
                            q4_0::vec_dot_ggml_repacked(row, a)
                        };
                        assert_eq!(
                            y[j * n_out + r].to_bits(),
                            want.to_bits(),
                            "{isa:?} n_out={n_out} n={n} j={j} r={r}"
                        );
                    }
                }
            }
        }
    }
}
