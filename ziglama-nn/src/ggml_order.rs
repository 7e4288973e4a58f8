//! ggml's floating-point summation orders, reproduced in scalar code so that attention agrees
//! with llama.cpp bit for bit.
//!
//! llama.cpp's CPU backend (built for AVX-512, as the oracle this project checks against is)
//! computes the attention products of `f16` keys and values with two kernels, whose lane
//! layouts fix the order of the `f32` additions:
//!
//! - [`dot_gemm`]: llamafile's `tinyBLAS`, used when the batch has two or more tokens: one
//!   16-lane accumulator over the length in chunks of 16, then `_mm512_reduce_add_ps`.
//! - [`dot_gemv`]: `ggml_vec_dot_f16`, used for a single token: four 16-lane accumulators
//!   over chunks of 64, folded pairwise, reduced, and any tail added in `f64`.
//!
//! Both multiply values that are `f16` numbers (keys, values, and the query and
//! probabilities rounded to `f16`), whose products are exact in `f32`, so the fused
//! multiply-adds of the vector code equal a plain multiplication and addition here.
//!
//! [`exp_ggml`] is ggml's AVX-512 `expf` approximation and [`softmax_ggml`] its softmax.

/// `_mm512_reduce_add_ps`: halves added pairwise (16 -> 8 -> 4 -> 2 -> 1).
#[inline]
pub fn reduce16(v: &[f32; 16]) -> f32 {
    let mut h = [0f32; 8];
    for i in 0..8 {
        h[i] = v[i] + v[i + 8];
    }
    let q = [h[0] + h[4], h[1] + h[5], h[2] + h[6], h[3] + h[7]];
    let r = [q[0] + q[2], q[1] + q[3]];
    r[0] + r[1]
}

/// tinyBLAS's dot product order. `x` and `y` must hold `f16` values; lengths are cut to the
/// shorter and any tail past a multiple of 16 is added last, in order.
pub fn dot_gemm(x: &[f32], y: &[f32]) -> f32 {
    let n = x.len().min(y.len());
    let mut acc = [0f32; 16];
    let full = n / 16 * 16;
    for (cx, cy) in x[..full].chunks_exact(16).zip(y[..full].chunks_exact(16)) {
        for l in 0..16 {
            acc[l] += cx[l] * cy[l];
        }
    }
    let mut s = reduce16(&acc);
    for i in full..n {
        s += x[i] * y[i];
    }
    s
}

/// `ggml_vec_dot_f16`'s order (AVX-512 build). `x` and `y` must hold `f16` values.
pub fn dot_gemv(x: &[f32], y: &[f32]) -> f32 {
    let n = x.len().min(y.len());
    let mut acc = [[0f32; 16]; 4];
    let full = n / 64 * 64;
    for (cx, cy) in x[..full].chunks_exact(64).zip(y[..full].chunks_exact(64)) {
        for (j, a) in acc.iter_mut().enumerate() {
            for l in 0..16 {
                a[l] += cx[16 * j + l] * cy[16 * j + l];
            }
        }
    }
    let mut x0 = [0f32; 16];
    for l in 0..16 {
        let a = acc[0][l] + acc[2][l];
        let b = acc[1][l] + acc[3][l];
        x0[l] = a + b;
    }
    let mut s = f64::from(reduce16(&x0));
    for i in full..n {
        s += f64::from(x[i] * y[i]);
    }
    s as f32
}

/// ggml's AVX-512 `ggml_v_expf` for one lane: a degree-5 polynomial after range reduction,
/// 0 below about -87 (and for `-inf`), infinity above about 88.
#[inline]
pub fn exp_ggml(x: f32) -> f32 {
    // The constants, as ggml writes them in hexadecimal.
    const SHIFT: u32 = 0x4b40_0000; // 0x1.8p23
    const LOG2E: u32 = 0x3fb8_aa3b; // 0x1.715476p+0
    const LN2_HI: u32 = 0x3f31_7200; // 0x1.62e4p-1
    const LN2_LO: u32 = 0x35bf_be8e; // 0x1.7f7d1cp-20
    const C5: u32 = 0x3c07_2010; // 0x1.0e4020p-7
    const C4: u32 = 0x3d2b_9f17; // 0x1.573e2ep-5
    const C3: u32 = 0x3e2a_af33; // 0x1.555e66p-3
    const C2: u32 = 0x3eff_fedb; // 0x1.fffdb6p-2
    const C1: u32 = 0x3f7f_fff6; // 0x1.ffffecp-1
    let c = f32::from_bits;
    let r = c(SHIFT);
    let z = x.mul_add(c(LOG2E), r);
    let n = z - r;
    let b = (-n).mul_add(c(LN2_LO), (-n).mul_add(c(LN2_HI), x));
    if n.abs() > 192.0 || n.is_nan() {
        return if n <= 0.0 { 0.0 } else { f32::INFINITY };
    }
    let u = b * b;
    let hi = c(C5).mul_add(b, c(C4));
    let lo = c(C3).mul_add(b, c(C2));
    let j = hi.mul_add(u, lo).mul_add(u, c(C1).mul_add(b, 1.0));
    // _mm512_scalef_ps(j, n) = j * 2^n, rounded once: exact in f64, then one rounding
    // (to a subnormal where it underflows). |n| <= 192, so 2^n is a normal f64.
    let pow2 = f64::from_bits(((n as i64 + 1023) as u64) << 52);
    (f64::from(j) * pow2) as f32
}

/// ggml's `soft_max` of one row (AVX-512 build): `exp_ggml(x - max)` in chunks of 16, each
/// chunk reduced with [`reduce16`] and summed in `f64`, then every value scaled by
/// `(1 / sum) as f32`. A tail past a multiple of 16 uses the library `exp`. `-inf` entries
/// (masked) become 0; a row of only `-inf` becomes zeros.
pub fn softmax_ggml(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        x.iter_mut().for_each(|v| *v = 0.0);
        return;
    }
    let full = x.len() / 16 * 16;
    let mut sum = 0f64;
    for chunk in x[..full].chunks_exact_mut(16) {
        let mut v = [0f32; 16];
        for (o, c) in v.iter_mut().zip(chunk.iter_mut()) {
            *o = exp_ggml(*c - max);
            *c = *o;
        }
        sum += f64::from(reduce16(&v));
    }
    for c in x[full..].iter_mut() {
        *c = (*c - max).exp();
        sum += f64::from(*c);
    }
    let scale = (1.0 / sum) as f32;
    for c in x.iter_mut() {
        *c *= scale;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_constants() {
        assert_eq!(f32::from_bits(0x3fb8_aa3b), std::f32::consts::LOG2_E);
        assert_eq!(f32::from_bits(0x3f31_7200), 0.693_145_75_f32);
        assert_eq!(f32::from_bits(0x3f7f_fff6), 0.999_999_4_f32);
    }

    #[test]
    fn exp_is_close_to_libm() {
        for i in -800..=800 {
            let x = i as f32 * 0.1;
            let (a, b) = (exp_ggml(x), x.exp());
            assert!(((a - b) / b).abs() < 4e-7, "exp({x}): {a} vs {b}");
        }
        assert_eq!(exp_ggml(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_ggml(-200.0), 0.0);
        assert_eq!(exp_ggml(0.0), 1.0);
        // underflow to subnormals, and 2^n for negative n
        let tiny = exp_ggml(-100.0);
        assert!(tiny > 0.0 && tiny < f32::MIN_POSITIVE, "{tiny}");
        assert!(((exp_ggml(-20.0) - (-20f32).exp()) / (-20f32).exp()).abs() < 4e-7);
    }

    #[test]
    fn dots_equal_the_exact_sum_on_integers() {
        let x: Vec<f32> = (0..100).map(|i| (i % 7) as f32).collect();
        let y: Vec<f32> = (0..100).map(|i| (i % 5) as f32 - 2.0).collect();
        let exact: f32 = x.iter().zip(&y).map(|(a, b)| a * b).sum();
        assert_eq!(dot_gemm(&x, &y), exact);
        assert_eq!(dot_gemv(&x, &y), exact);
    }

    #[test]
    fn softmax_sums_to_one_and_masks() {
        let mut x: Vec<f32> = (0..40).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        x[5] = f32::NEG_INFINITY;
        softmax_ggml(&mut x);
        let s: f64 = x.iter().map(|&v| f64::from(v)).sum();
        assert!((s - 1.0).abs() < 1e-6);
        assert_eq!(x[5], 0.0);
    }
}
