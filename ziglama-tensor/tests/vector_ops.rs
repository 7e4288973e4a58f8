//! The vectorized neural-network operations of `ziglama_tensor::vector` equal their scalar
//! definitions (`vector::scalar`, ggml's order) bit for bit on this CPU's kernel set, for every
//! length 0..=150 plus a few long ones, on values with a wide spread of magnitudes, exact
//! zeros, masked (`-inf`) entries and arguments where `exp` underflows and overflows.

use ziglama_tensor::vector::{self, scalar};

fn values(n: usize, seed: u64, spread: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
            if u.abs() < 0.01 {
                0.0
            } else {
                u * spread
            }
        })
        .collect()
}

fn lengths() -> impl Iterator<Item = usize> {
    (0..=150).chain([255, 256, 257, 1000, 4096 + 7])
}

fn same(a: &[f32], b: &[f32], what: &str) {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            x.to_bits() == y.to_bits(),
            "{what}: element {i}: {x} vs {y}"
        );
    }
}

#[test]
fn softmax_equals_its_definition() {
    for n in lengths() {
        for (spread, masked) in [(1.0, false), (30.0, true), (200.0, false), (0.001, true)] {
            let mut x = values(n, n as u64, spread);
            if masked {
                for v in x.iter_mut().step_by(3) {
                    *v = f32::NEG_INFINITY;
                }
            }
            let mut a = x.clone();
            vector::softmax_ggml(&mut a);
            scalar::softmax_ggml(&mut x);
            same(&a, &x, &format!("softmax n={n} spread={spread}"));
        }
        let mut all_masked = vec![f32::NEG_INFINITY; n];
        vector::softmax_ggml(&mut all_masked);
        assert!(all_masked.iter().all(|&v| v == 0.0));
    }
}

#[test]
fn swiglu_equals_its_definition() {
    for n in lengths() {
        for spread in [1.0, 20.0, 150.0] {
            let g = values(n, 3 + n as u64, spread);
            let u = values(n, 5 + n as u64, 2.0);
            let (mut a, mut b) = (g.clone(), g.clone());
            vector::swiglu_ggml(&mut a, &u);
            scalar::swiglu_ggml(&mut b, &u);
            same(&a, &b, &format!("swiglu n={n} spread={spread}"));
        }
    }
}

#[test]
fn exp_matches_the_library_exp() {
    for i in -1000..=1000 {
        let x = i as f32 * 0.1;
        let (a, b) = (scalar::exp_ggml(x), x.exp());
        if b.is_finite() && b > 1e-37 {
            assert!(((a - b) / b).abs() < 4e-7, "exp({x}): {a} vs {b}");
        }
    }
    assert_eq!(scalar::exp_ggml(f32::NEG_INFINITY), 0.0);
    assert_eq!(scalar::exp_ggml(0.0), 1.0);
    assert_eq!(scalar::exp_ggml(200.0), f32::INFINITY);
}

#[test]
fn dots_and_axpy_equal_their_definitions() {
    for n in lengths() {
        // f16-representable values (as attention uses) and arbitrary ones.
        for round in [true, false] {
            let f = |v: Vec<f32>| -> Vec<f32> {
                if round {
                    v.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect()
                } else {
                    v
                }
            };
            let x = f(values(n, 11 + n as u64, 3.0));
            let y = f(values(n + 3, 13 + n as u64, 0.7));
            let what = format!("n={n} f16={round}");
            assert_eq!(
                vector::dot_gemm(&x, &y).to_bits(),
                scalar::dot_gemm(&x, &y).to_bits(),
                "dot_gemm {what}"
            );
            let rows: Vec<Vec<f32>> = (0..4)
                .map(|r| f(values(n + r % 2, 19 + r as u64 + n as u64, 2.0)))
                .collect();
            let four = vector::dot_gemm4(std::array::from_fn(|r| &rows[r][..]), &y);
            for r in 0..4 {
                assert_eq!(
                    four[r].to_bits(),
                    scalar::dot_gemm(&rows[r], &y).to_bits(),
                    "dot_gemm4 row {r} {what}"
                );
            }
            // Rows of different lengths (each cut to its own length with y).
            let ragged = vector::dot_gemm4([&rows[0], &x, &rows[1], &y], &y);
            for (r, row) in [&rows[0], &x, &rows[1], &y].iter().enumerate() {
                assert_eq!(
                    ragged[r].to_bits(),
                    scalar::dot_gemm(row, &y).to_bits(),
                    "dot_gemm4 ragged row {r} {what}"
                );
            }
            assert_eq!(
                vector::dot_gemv(&x, &y).to_bits(),
                scalar::dot_gemv(&x, &y).to_bits(),
                "dot_gemv {what}"
            );
            let mut a = values(n, 17, 1.0);
            let mut b = a.clone();
            vector::axpy(&mut a, 0.375, &x);
            scalar::axpy(&mut b, 0.375, &x);
            same(&a, &b, &format!("axpy {what}"));
        }
    }
}

#[test]
fn dot_gemm_rows_equals_row_by_row_dot_gemm() {
    for n in [0, 5, 16, 17, 48, 64, 70, 256] {
        for extra in [0, 3] {
            let stride = n + extra;
            for rows in (0..=40).chain([63, 100]) {
                let x: Vec<f32> = values(rows * stride + n, 7 + n as u64, 2.0)
                    .iter()
                    .map(|&v| half::f16::from_f32(v).to_f32())
                    .collect();
                let y = values(n, 29 + rows as u64, 0.9);
                let mut a = vec![f32::NAN; rows];
                let mut b = vec![f32::NAN; rows];
                vector::dot_gemm_rows(&x, stride, &y, &mut a);
                scalar::dot_gemm_rows(&x, stride, &y, &mut b);
                same(
                    &a,
                    &b,
                    &format!("dot_gemm_rows n={n} stride={stride} rows={rows}"),
                );
                for (r, &d) in a.iter().enumerate() {
                    let want = scalar::dot_gemm(&x[r * stride..][..n], &y);
                    assert_eq!(d.to_bits(), want.to_bits(), "row {r} n={n} rows={rows}");
                }
            }
        }
    }
}

#[test]
fn axpy_rows_equals_row_by_row_axpy() {
    for w in [1, 15, 16, 20, 64, 80, 144, 256, 300] {
        for heads in 1..=9 {
            for rows in [0, 1, 2, 7, 33] {
                let stride = w + 5;
                let v = values(rows * stride + w, 41 + w as u64, 3.0);
                // Weights with exact zeros (skipped) among them.
                let mut p = values(rows * heads, 43 + heads as u64, 0.5);
                for x in p.iter_mut().step_by(4) {
                    *x = 0.0;
                }
                let start = values(heads * w, 47, 1.0);
                let (mut a, mut b) = (start.clone(), start);
                // Laid out row-major ([row][head]) here; attention's is head-major.
                let weights = vector::Weights {
                    p: &p,
                    rows,
                    row_step: heads,
                    head_step: 1,
                };
                vector::axpy_rows(&mut a, heads, weights, &v, stride);
                scalar::axpy_rows(&mut b, heads, weights, &v, stride);
                same(
                    &a,
                    &b,
                    &format!("axpy_rows w={w} heads={heads} rows={rows}"),
                );
                // The same weights head-major ([head][row]), as attention lays them out.
                let mut t = vec![f32::NAN; rows * heads];
                for r in 0..rows {
                    for g in 0..heads {
                        t[g * rows + r] = p[r * heads + g];
                    }
                }
                let head_major = vector::Weights {
                    p: &t,
                    rows,
                    row_step: 1,
                    head_step: rows,
                };
                let mut d = values(heads * w, 47, 1.0);
                vector::axpy_rows(&mut d, heads, head_major, &v, stride);
                same(
                    &a,
                    &d,
                    &format!("axpy_rows head-major w={w} heads={heads} rows={rows}"),
                );
                // The definition is axpy row after row.
                let mut c = values(heads * w, 47, 1.0);
                for r in 0..rows {
                    for g in 0..heads {
                        let pr = p[r * heads + g];
                        if pr != 0.0 {
                            scalar::axpy(&mut c[g * w..][..w], pr, &v[r * stride..][..w]);
                        }
                    }
                }
                same(
                    &a,
                    &c,
                    &format!("axpy_rows vs axpy w={w} heads={heads} rows={rows}"),
                );
            }
        }
    }
}

#[test]
fn round_f16_equals_the_half_conversion() {
    for n in lengths() {
        for spread in [1e-6, 1.0, 3e4, 1e5] {
            let x = values(n, 53 + n as u64, spread);
            let mut a = x.clone();
            vector::round_f16(&mut a);
            let want: Vec<f32> = x.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
            same(&a, &want, &format!("round_f16 n={n} spread={spread}"));
            let mut b = x.clone();
            scalar::round_f16(&mut b);
            same(
                &b,
                &want,
                &format!("scalar round_f16 n={n} spread={spread}"),
            );
        }
    }
}

#[test]
fn reduce16_rows_equals_reduce16_by_column() {
    for w in [0, 1, 15, 16, 17, 64, 100, 256] {
        for stride in [w, w + 7, 3 * w + 1] {
            let x = values(15 * stride + w, 59 + w as u64, 50.0);
            let mut a = vec![f32::NAN; w];
            vector::reduce16_rows(&x, stride, &mut a);
            let want: Vec<f32> = (0..w)
                .map(|d| scalar::reduce16(&std::array::from_fn(|l| x[l * stride + d])))
                .collect();
            same(&a, &want, &format!("reduce16_rows w={w} stride={stride}"));
            let mut b = vec![f32::NAN; w];
            scalar::reduce16_rows(&x, stride, &mut b);
            same(
                &b,
                &want,
                &format!("scalar reduce16_rows w={w} stride={stride}"),
            );
        }
    }
}
