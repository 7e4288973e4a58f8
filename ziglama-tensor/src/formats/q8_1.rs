//! Q8_1: blocks of 32 signed bytes with an f16 scale and the scaled sum d * sum(q); the activation format of Q4_1 and Q5_1.

use half::f16;

use super::{Block, Kernels, Quantize, VecDot};
use crate::GgmlType;

/// Elements per Q8_1 block.
pub const QK8_1: usize = 32;

/// ggml's `block_q8_1`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ8_1 {
    /// Scale.
    pub d: f16,
    /// d times the sum of the quants.
    pub s: f16,
    /// Quants.
    pub qs: [i8; 32],
}
const _: () = assert!(std::mem::size_of::<BlockQ8_1>() == 36);

impl Block for BlockQ8_1 {
    const TYPE: GgmlType = GgmlType::Q8_1;
    const BLOCK_SIZE: usize = QK8_1;
    /// `q * d`, as Q8_0 (ggml has no `dequantize_row_q8_1`; `s` is redundant for values).
    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK8_1)) {
            let d = b.d.to_f32();
            for (y, &q) in y.iter_mut().zip(&b.qs) {
                *y = q as f32 * d;
            }
        }
    }
}

impl Quantize for BlockQ8_1 {
    /// ggml's `quantize_row_q8_1_ref`: `d = amax / 127`, quants `round(x / d)` (half away
    /// from zero), and `s = f16(sum(q) * d)` with the unrounded f32 `d`.
    ///
    /// This quantizes every activation vector multiplied with Q4_1 and Q5_1 weights, so it
    /// is written to vectorize: `abs_max` and `round_to_i8` are exact replacements of the
    /// sequential `MAX` fold and of `roundf`.
    fn quantize(x: &[f32], out: &mut [Self]) {
        for (b, x) in out.iter_mut().zip(x.chunks_exact(QK8_1)) {
            let amax = abs_max(x);
            let d = amax / 127.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            b.d = f16::from_f32(d);
            if id.is_infinite() {
                // `d` is so small (`amax < ~2^-120`) that `1 / d` overflowed: every `x * id` is
                // infinite or NaN, which C's `(int8_t)roundf(..)` turns into 0 on x86-64
                // (`cvttss2si` gives 0x80000000, whose low byte is 0).
                b.qs = [0; QK8_1];
            } else {
                for (q, &v) in b.qs.iter_mut().zip(x) {
                    *q = round_to_i8(v * id);
                }
            }
            let sum: i32 = b.qs.iter().map(|&q| q as i32).sum();
            b.s = f16::from_f32(sum as f32 * d);
        }
    }

    /// ggml-cpu's `quantize_row_q8_1` (see `quantize_activation_block`): on x86-64
    /// `id = 127 / amax` and rounding half to even, on aarch64 `id = 1 / d` and rounding half
    /// to even; `s = f16(d * sum(q))` in both. Other targets: the reference.
    fn quantize_activation(x: &[f32], out: &mut [Self]) {
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        for (b, x) in out.iter_mut().zip(x.chunks_exact(QK8_1)) {
            let (d, qs, sum) = quantize_activation_block(x);
            b.d = f16::from_f32(d);
            b.s = f16::from_f32(d * sum as f32);
            b.qs = qs;
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        Self::quantize(x, out)
    }
}

/// ggml-cpu's activation quantizer of one 32-element block (`quantize_row_q8_0` and
/// `quantize_row_q8_1` of llama.cpp's CPU backend, which share everything but `s`): returns
/// the scale `d` (in f32, before its conversion to f16), the quants, and the sum of the
/// quants as ggml forms it for Q8_1's `s` (wrapping i32 arithmetic on the values before they
/// are narrowed to bytes).
///
/// On x86-64 this is ggml's AVX/AVX2 code (what every x86 build of llama.cpp with AVX runs,
/// AVX-512 builds included): `amax` by `maxps` in eight lanes then a 4-2-1 tree (including
/// `maxps`'s NaN behaviour: the second operand wins), `d = amax / 127`,
/// `id = 127 / amax` (not `1 / d`), quants `x * id` rounded half to EVEN (`roundps`), converted
/// by `cvtps2dq` (NaN and infinities become `i32::MIN`) and narrowed with signed saturation.
///
/// On aarch64 it is ggml's NEON code: `id = 1 / d` as in the reference, but rounded half to
/// even (`vcvtnq_s32_f32`: saturating, NaN becomes 0) and narrowed by truncation to the low
/// byte (the C conversion of the stored `int32` lanes).
///
/// Elsewhere ggml-cpu uses the reference quantizers, and so does this (through
/// [`Quantize::quantize`]; this function is not called there).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline]
pub(crate) fn quantize_activation_block(x: &[f32]) -> (f32, [i8; QK8_1], i32) {
    debug_assert_eq!(x.len(), QK8_1);
    let mut q = [0i8; QK8_1];
    #[cfg(target_arch = "x86_64")]
    {
        let amax = abs_max_maxps(x);
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        // 1.5 * 2^23: adding it rounds |v| < 2^22 to an integer, ties to even, and leaves that
        // integer in the low mantissa bits.
        const MAGIC: f32 = 12_582_912.0;
        let mut lanes = [0i32; QK8_1];
        let mut small = true;
        for (l, &v) in lanes.iter_mut().zip(x) {
            let v = v * id;
            small &= v.abs() < 4_194_304.0;
            *l = ((v + MAGIC).to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
        }
        if !small {
            // Only when `id` overflowed (amax below ~2^-120) or `x` holds NaN or infinities:
            // then `v` is NaN or infinite, which `cvtps2dq` turns into `i32::MIN`.
            for (l, &v) in lanes.iter_mut().zip(x) {
                let r = (v * id).round_ties_even();
                *l = if (-2_147_483_648.0..2_147_483_648.0).contains(&r) {
                    r as i32
                } else {
                    i32::MIN
                };
            }
        }
        let mut sum = 0i32;
        for (q, &l) in q.iter_mut().zip(&lanes) {
            *q = l.clamp(-128, 127) as i8;
            sum = sum.wrapping_add(l);
        }
        (d, q, sum)
    }
    #[cfg(target_arch = "aarch64")]
    {
        let amax = abs_max(x);
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut sum = 0i32;
        for (q, &v) in q.iter_mut().zip(x) {
            // `as i32` saturates and maps NaN to 0, as `vcvtnq_s32_f32` does.
            let l = (v * id).round_ties_even() as i32;
            *q = l as i8;
            sum = sum.wrapping_add(l);
        }
        (d, q, sum)
    }
}

/// `max |x_j|` exactly as ggml's AVX code forms it from 32 values: `a = maxps(a, b)`
/// (`if a > b { a } else { b }`, so a NaN in either operand yields `b`) over the four groups of
/// eight lanes, then the high four lanes against the low four, then lanes `0, 1` against
/// `2, 3`, then lane 0 against lane 1.
#[cfg(target_arch = "x86_64")]
#[inline]
fn abs_max_maxps(x: &[f32]) -> f32 {
    let maxps = |a: f32, b: f32| if a > b { a } else { b };
    let mut m = [0f32; 8];
    for (m, &v) in m.iter_mut().zip(x) {
        *m = v.abs();
    }
    for c in x[8..].chunks_exact(8) {
        for (m, &v) in m.iter_mut().zip(c) {
            *m = maxps(*m, v.abs());
        }
    }
    let m4: [f32; 4] = std::array::from_fn(|i| maxps(m[i + 4], m[i]));
    let m2 = [maxps(m4[0], m4[2]), maxps(m4[1], m4[3])];
    maxps(m2[0], m2[1])
}

/// The largest `|v|` of `x` (0 for an empty slice; NaNs ignored, as `f32::max` does), in
/// eight independent lanes so that it vectorizes. `max` is exact, so the grouping does not
/// change the value.
#[inline]
pub(crate) fn abs_max(x: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (m, &v) in lanes.iter_mut().zip(c) {
            *m = m.max(v.abs());
        }
    }
    let m = rest.iter().fold(0f32, |m, &v| m.max(v.abs()));
    lanes.iter().fold(m, |a, &b| a.max(b))
}

/// `v.round() as i8` (round half away from zero, then saturate; NaN gives 0) without the
/// `roundf` library call or a saturating float-to-int conversion, so that loops over it
/// vectorize even on baseline x86_64.
///
/// NaN becomes 0, then clamping to `[-128, 127]` changes no result (`round` of anything
/// beyond saturates to the same bound). Adding and subtracting `M = 1.5 * 2^23` rounds to the
/// nearest integer with ties to even (exact for `|c| <= 2^22`, in the default rounding mode
/// Rust assumes). `c - r` is exact, so it is `±0.5` exactly at the ties, where rounding away
/// from zero gives `c ± 0.5` (exact too). Finally `r + M` holds the integer `r` in the low
/// bits of its mantissa: its bit pattern minus that of `M` is `r`.
#[inline]
pub(crate) fn round_to_i8(v: f32) -> i8 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
    let c = if v.is_nan() { 0.0 } else { v }.clamp(-128.0, 127.0);
    let r = (c + MAGIC) - MAGIC;
    let r = if (c - r).abs() == 0.5 {
        c + 0.5f32.copysign(c)
    } else {
        r
    };
    ((r + MAGIC).to_bits() as i32 - MAGIC.to_bits() as i32) as i8
}

impl VecDot for BlockQ8_1 {
    type Activation = BlockQ8_1;
    /// The plain scaled integer dot, `sumi * (d_w * d_a)` per block as in Q8_0 (ggml has no
    /// Q8_1 x Q8_1 kernel; Q8_1 is an activation format).
    fn vec_dot(w: &[Self], a: &[BlockQ8_1]) -> f32 {
        let mut sumf = 0f32;
        for (x, y) in w.iter().zip(a) {
            let sumi: i32 =
                x.qs.iter()
                    .zip(&y.qs)
                    .map(|(&p, &q)| p as i32 * q as i32)
                    .sum();
            sumf += sumi as f32 * (x.d.to_f32() * y.d.to_f32());
        }
        sumf
    }
    const KERNELS: Kernels<Self> = Kernels::NONE;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_stores_the_scaled_quant_sum() {
        let mut x = [0f32; 32];
        x[0] = 127.0; // d = 1
        x[1] = -2.5; // rounds away from zero: -3
        x[2] = 0.5; // 1
        x[3] = 3.49; // 3
        let mut b = [BlockQ8_1 {
            d: f16::ZERO,
            s: f16::ZERO,
            qs: [0; 32],
        }];
        BlockQ8_1::quantize(&x, &mut b);
        assert_eq!(b[0].d.to_f32(), 1.0);
        assert_eq!(&b[0].qs[..5], &[127, -3, 1, 3, 0]);
        assert_eq!(b[0].s.to_f32(), 128.0);
        let mut y = [0f32; 32];
        BlockQ8_1::dequantize(&b, &mut y);
        assert_eq!(&y[..4], &[127.0, -3.0, 1.0, 3.0]);
    }

    #[test]
    fn zero_block_has_zero_scale_and_sum() {
        let mut b = [BlockQ8_1 {
            d: f16::ONE,
            s: f16::ONE,
            qs: [1; 32],
        }];
        BlockQ8_1::quantize(&[0f32; 32], &mut b);
        assert_eq!((b[0].d.to_f32(), b[0].s.to_f32()), (0.0, 0.0));
        assert_eq!(b[0].qs, [0; 32]);
    }

    #[test]
    fn vec_dot_is_the_scaled_integer_dot() {
        let mut qs = [0i8; 32];
        qs[0] = -128;
        qs[31] = 127;
        let b = BlockQ8_1 {
            d: f16::from_f32(0.5),
            s: f16::ZERO,
            qs,
        };
        let sumi = 128 * 128 + 127 * 127;
        assert_eq!(
            BlockQ8_1::vec_dot(&[b, b], &[b, b]),
            2.0 * (sumi as f32 * 0.25)
        );
    }

    /// The hashes are of the output of ggml's own `quantize_row_q8_1_ref` and
    /// `dequantize_row_q8_1` (libggml-base of llama.cpp as built by llama-cpp-python
    /// 0.3.36) on [`golden::golden_input`]: 4096 blocks of zeros, constants, lone spikes,
    /// exact ties and random values over scales from 2^-20 to 2^12.
    #[test]
    fn quantize_and_dequantize_match_ggml_bit_for_bit() {
        use crate::formats::q4_0::golden::{fnv1a, golden_input};
        let x = golden_input();
        let mut q = vec![<BlockQ8_1 as bytemuck::Zeroable>::zeroed(); x.len() / 32];
        BlockQ8_1::quantize(&x, &mut q);
        assert_eq!(fnv1a(bytemuck::cast_slice(&q)), 0xcaf922c02f2c4c81);
    }

    #[test]
    fn round_to_i8_equals_round_then_saturating_cast() {
        let special = [
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            -2.5,
            0.49999997,
            -0.49999997,
            126.5,
            127.0,
            127.49999,
            127.5,
            127.6,
            128.0,
            300.0,
            -127.5,
            -127.50001,
            -128.0,
            -128.5,
            -300.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MIN_POSITIVE,
            1e-45,
            f32::MAX,
        ];
        for v in special {
            assert_eq!(round_to_i8(v), v.round() as i8, "{v}");
        }
        // Every 997th bit pattern: all signs, exponents and a spread of mantissas.
        for bits in (0..=u32::MAX).step_by(997) {
            let v = f32::from_bits(bits);
            assert_eq!(round_to_i8(v), v.round() as i8, "{v} ({bits:#x})");
        }
        // Every float in [-130, 130] on a fine grid, ties included.
        for i in -1_040_000..=1_040_000 {
            let v = i as f32 / 8000.0;
            assert_eq!(round_to_i8(v), v.round() as i8, "{v}");
        }
    }

    #[test]
    fn abs_max_is_the_largest_magnitude_whatever_the_length() {
        for n in [0usize, 1, 7, 8, 9, 31, 32, 33] {
            let x: Vec<f32> = (0..n).map(|i| (i as f32 - 5.5) * 0.25).collect();
            let expected = x.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert_eq!(abs_max(&x), expected, "{n}");
        }
        assert_eq!(abs_max(&[1.0, f32::NAN, -3.0]), 3.0);
    }
}
