//! NEON kernels for the float formats: F32·F32, F16·F16 and BF16·BF16.
//!
//! Both keep 16 running sums (four vectors of four lanes) updated with fused multiply-adds,
//! as ggml's NEON `ggml_vec_dot_f32`/`_f16` do, and finish the last `n % 16` elements in
//! scalar f32. The scalar references sum in f64, so results differ by rounding only: with
//! `u = 2^-24`, each of the 16 sums sees at most `n / 16` roundings and the final reduction
//! four more, so the error is at most about `(n / 16 + 5) u sum |x_i y_i|` (F16 and BF16
//! products are exact in f32: 11- and 8-bit significands).

use std::arch::aarch64::*;

use half::{bf16, f16};

/// Loads four f32.
#[target_feature(enable = "neon")]
#[inline]
fn load_f32x4(x: &[f32; 4]) -> float32x4_t {
    // SAFETY: `x` refers to 16 readable bytes; `vld1q_f32` needs only element alignment,
    // which a `&[f32; 4]` has.
    unsafe { vld1q_f32(x.as_ptr()) }
}

/// Loads four f16 and widens them to f32 (exact).
#[target_feature(enable = "neon")]
#[inline]
fn load_f16x4(x: &[f16; 4]) -> float32x4_t {
    // SAFETY: `x` refers to 8 readable bytes; `f16` is a `u16` with the same layout and
    // `vld1_u16` needs only 2-byte alignment, which a `&[f16; 4]` has.
    let bits = unsafe { vld1_u16(x.as_ptr().cast::<u16>()) };
    super::f16x4_to_f32(bits)
}

/// Elements `4k..4k + 4` of a 16-element chunk.
#[inline(always)]
fn quarter<T>(x: &[T], k: usize) -> &[T; 4] {
    x[4 * k..4 * k + 4]
        .try_into()
        .unwrap_or_else(|_| unreachable!("4 elements of a 16-element chunk"))
}

/// Loads four bf16 and widens them to f32 (exact: a bf16 is the top half of an f32).
#[target_feature(enable = "neon")]
#[inline]
fn load_bf16x4(x: &[bf16; 4]) -> float32x4_t {
    // SAFETY: `x` refers to 8 readable bytes; `bf16` is a `u16` with the same layout and
    // `vld1_u16` needs only 2-byte alignment, which a `&[bf16; 4]` has.
    let bits = unsafe { vld1_u16(x.as_ptr().cast::<u16>()) };
    vreinterpretq_f32_u32(vshll_n_u16::<16>(bits))
}

/// Sums the lanes of four accumulators pairwise.
#[target_feature(enable = "neon")]
#[inline]
fn reduce4(acc: [float32x4_t; 4]) -> f32 {
    vaddvq_f32(vaddq_f32(
        vaddq_f32(acc[0], acc[1]),
        vaddq_f32(acc[2], acc[3]),
    ))
}

/// `sum w[i] * a[i]` over F32 (for `f32`'s `Kernels::neon` slot).
///
/// # Safety
///
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot_f32(w: &[f32], a: &[f32]) -> f32 {
    let n = w.len().min(a.len());
    let (w, a) = (&w[..n], &a[..n]);
    let mut acc = [vdupq_n_f32(0.0); 4];
    let (wc, ac) = (w.chunks_exact(16), a.chunks_exact(16));
    let (wt, at) = (wc.remainder(), ac.remainder());
    for (x, y) in wc.zip(ac) {
        for (k, acc) in acc.iter_mut().enumerate() {
            *acc = vfmaq_f32(*acc, load_f32x4(quarter(x, k)), load_f32x4(quarter(y, k)));
        }
    }
    let mut sum = reduce4(acc);
    for (&x, &y) in wt.iter().zip(at) {
        sum = x.mul_add(y, sum);
    }
    sum
}

/// `sum w[i] * a[i]` over F16, products and sums in f32 (for `f16`'s `Kernels::neon` slot).
///
/// # Safety
///
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot_f16(w: &[f16], a: &[f16]) -> f32 {
    let n = w.len().min(a.len());
    let (w, a) = (&w[..n], &a[..n]);
    let mut acc = [vdupq_n_f32(0.0); 4];
    let (wc, ac) = (w.chunks_exact(16), a.chunks_exact(16));
    let (wt, at) = (wc.remainder(), ac.remainder());
    for (x, y) in wc.zip(ac) {
        for (k, acc) in acc.iter_mut().enumerate() {
            *acc = vfmaq_f32(*acc, load_f16x4(quarter(x, k)), load_f16x4(quarter(y, k)));
        }
    }
    let mut sum = reduce4(acc);
    for (&x, &y) in wt.iter().zip(at) {
        sum += super::f16_to_f32(x) * super::f16_to_f32(y);
    }
    sum
}

/// `sum w[i] * a[i]` over BF16, products and sums in f32 (for `bf16`'s `Kernels::neon` slot).
///
/// # Safety
///
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot_bf16(w: &[bf16], a: &[bf16]) -> f32 {
    let n = w.len().min(a.len());
    let (w, a) = (&w[..n], &a[..n]);
    let mut acc = [vdupq_n_f32(0.0); 4];
    let (wc, ac) = (w.chunks_exact(16), a.chunks_exact(16));
    let (wt, at) = (wc.remainder(), ac.remainder());
    for (x, y) in wc.zip(ac) {
        for (k, acc) in acc.iter_mut().enumerate() {
            *acc = vfmaq_f32(*acc, load_bf16x4(quarter(x, k)), load_bf16x4(quarter(y, k)));
        }
    }
    let mut sum = reduce4(acc);
    for (&x, &y) in wt.iter().zip(at) {
        sum += x.to_f32() * y.to_f32();
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{check, Rng};
    use super::*;

    /// Element counts: empty, tiny, around the 16-element step, and long odd ones.
    const LENGTHS: &[usize] = &[0, 1, 2, 3, 4, 15, 16, 17, 31, 33, 63, 65, 255, 1001];

    fn small_int(rng: &mut Rng) -> f32 {
        rng.range_i32(-8, 8) as f32
    }

    fn random(rng: &mut Rng) -> f32 {
        // Mixed signs and magnitudes over a few binades.
        rng.uniform(-1.0, 1.0) * [0.01, 1.0, 30.0][rng.below(3)]
    }

    fn magnitude_f32(w: &[f32], a: &[f32]) -> f64 {
        w.iter()
            .zip(a)
            .map(|(&x, &y)| (x as f64 * y as f64).abs())
            .sum()
    }

    fn magnitude_f16(w: &[f16], a: &[f16]) -> f64 {
        w.iter()
            .zip(a)
            .map(|(x, y)| (x.to_f64() * y.to_f64()).abs())
            .sum()
    }

    #[test]
    fn f32_matches_scalar() {
        check::<f32>(
            "f32",
            vec_dot_f32,
            LENGTHS,
            |rng, exact| if exact { small_int(rng) } else { random(rng) },
            |rng, exact| if exact { small_int(rng) } else { random(rng) },
            |w, a| (w.len() as f64 / 16.0 + 8.0) * f32::EPSILON as f64 * magnitude_f32(w, a),
        );
    }

    #[test]
    fn f16_matches_scalar() {
        let gen = |rng: &mut Rng, exact: bool| {
            f16::from_f32(if exact { small_int(rng) } else { random(rng) })
        };
        check::<f16>("f16", vec_dot_f16, LENGTHS, gen, gen, |w, a| {
            (w.len() as f64 / 16.0 + 8.0) * f32::EPSILON as f64 * magnitude_f16(w, a)
        });
    }

    #[test]
    fn bf16_matches_scalar() {
        let gen = |rng: &mut Rng, exact: bool| {
            bf16::from_f32(if exact { small_int(rng) } else { random(rng) })
        };
        check::<bf16>("bf16", vec_dot_bf16, LENGTHS, gen, gen, |w, a| {
            let s: f64 = w
                .iter()
                .zip(a)
                .map(|(x, y)| (x.to_f64() * y.to_f64()).abs())
                .sum();
            (w.len() as f64 / 16.0 + 8.0) * f32::EPSILON as f64 * s
        });
    }

    #[test]
    fn f16_subnormals_and_extremes_convert_exactly() {
        // Smallest subnormal, largest subnormal, smallest normal, max, negative zero.
        let xs = [
            0x0001u16, 0x03FF, 0x0400, 0x7BFF, 0x8000, 0xFBFF, 0x3C00, 0xC000,
        ];
        // Three copies, so the vector loop and the scalar tail both see each value.
        let w: Vec<f16> = xs
            .iter()
            .cycle()
            .take(24)
            .map(|&b| f16::from_bits(b))
            .collect();
        for (i, &x) in w.iter().enumerate() {
            let mut e = vec![f16::ZERO; w.len()];
            e[i] = f16::ONE;
            // SAFETY: NEON is part of every aarch64 CPU this test runs on.
            let got = unsafe { vec_dot_f16(&w, &e) };
            assert_eq!(got, x.to_f32(), "bits {:#06x}", x.to_bits());
        }
    }
}
