//! NEON kernels for the k-quants against Q8_K: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS and Q8_K
//! itself.
//!
//! Per super-block of 256 the kernels compute ggml's integer sums exactly (i32 lanes, each
//! sub-block's products multiplied by its scale with `mla`), reduce them once, and then apply
//! the same float expression as the scalar reference, in the same order: for Q4_K and Q5_K
//! `(d_w d_a) isum - (dmin_w d_a) summs` (Q2_K: `(d_a d_w) ...`), for Q3_K, Q6_K and Q8_K
//! `(d_w d_a) isum`, added to one f32 sum in block order. So on finite inputs the results
//! equal the reference's bit for bit; the tests still allow the rounding bound
//! `(2 n_blocks + 4) u S` (`u = 2^-24`, `S` the summed magnitudes) rather than depend on that.
//! IQ4_XS is the exception: ggml's reference adds one float term per 32 elements, the kernel
//! one per super-block (`(d_w d_a) * sum_j (ls_j - 32) sumi_j`, exact in i32), so its bound
//! counts eight terms per super-block.
//!
//! Q2_K, Q4_K and Q5_K read the minimums' sums from the activations' `bsums`, as ggml does;
//! they must be the sums of the quants (Q8_K's quantizer guarantees it). Q6_K subtracts its
//! offset of 32 from the quants directly and does not read `bsums`.

use std::arch::aarch64::*;

use super::{chunk16, f16_to_f32, int8_kernels, load_i8, load_u8};
use crate::formats::iq4_nl::KVALUES_IQ4NL;
use crate::formats::{
    BlockIQ4_XS, BlockQ2_K, BlockQ3_K, BlockQ4_K, BlockQ5_K, BlockQ6_K, BlockQ8_K,
};

/// The eight 6-bit scales and eight 6-bit minimums of a Q4_K super-block (ggml's
/// `get_scale_min_k4` for `j = 0..8`): entries 0..4 are the low six bits of bytes 0..4 and
/// 4..8; entries 4..8 take their low four bits from bytes 8..12 and their top two from the
/// top bits of bytes 0..4 (scales) and 4..8 (minimums).
#[inline]
fn scales_mins(q: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    let mut sc = [0u8; 8];
    let mut m = [0u8; 8];
    for j in 0..4 {
        sc[j] = q[j] & 63;
        m[j] = q[j + 4] & 63;
        sc[j + 4] = (q[j + 8] & 0x0F) | ((q[j] >> 6) << 4);
        m[j + 4] = (q[j + 8] >> 4) | ((q[j + 4] >> 6) << 4);
    }
    (sc, m)
}

/// `sum_j m[j] * (bsums[2j] + bsums[2j + 1])`: the minimums against the activations' sums
/// of 32 (each pair sum fits i16: at most 32 * 128).
#[target_feature(enable = "neon")]
#[inline]
fn min_sums(m: [u8; 8], bsums: &[i16; 16]) -> i32 {
    // SAFETY: `bsums` is 32 readable bytes; `vld1q_s16` needs only 2-byte alignment.
    let (b0, b1) = unsafe { (vld1q_s16(bsums.as_ptr()), vld1q_s16(bsums.as_ptr().add(8))) };
    let pairs = vpaddq_s16(b0, b1);
    let m = vreinterpretq_s16_u16(vmovl_u8(vcreate_u8(u64::from_le_bytes(m))));
    let prod = vmlal_s16(
        vmull_s16(vget_low_s16(pairs), vget_low_s16(m)),
        vget_high_s16(pairs),
        vget_high_s16(m),
    );
    vaddvq_s32(prod)
}

/// The sixteen 6-bit scales of a Q3_K super-block, before subtracting 32: scale `j` has its
/// low four bits in the low (`j < 8`) or high (`j >= 8`) nibble of byte `j % 8`, and its top
/// two bits at bit `2 (j / 4)` of byte `8 + j % 4`.
#[inline]
fn q3_k_scales(q: &[u8; 12]) -> [u8; 16] {
    std::array::from_fn(|j| {
        let low = if j < 8 { q[j] & 0x0F } else { q[j - 8] >> 4 };
        let high = (q[8 + j % 4] >> (2 * (j / 4))) & 3;
        low | (high << 4)
    })
}

/// The eight 6-bit block scales of an IQ4_XS super-block, before subtracting 32.
#[inline]
fn iq4_xs_scales(x: &BlockIQ4_XS) -> [u8; 8] {
    std::array::from_fn(|ib| {
        let low = (x.scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0F;
        let high = ((x.scales_h >> (2 * ib)) & 3) as u8;
        low | (high << 4)
    })
}

int8_kernels! {
    /// Q2_K·Q8_K (for `BlockQ2_K`'s `Kernels::neon` slot). Element `128h + 32r + l` is bits
    /// `2r..2r + 2` of `qs[32h + l]`; group `j` of 16 has scale `scales[j] & 15` and minimum
    /// `scales[j] >> 4`.
    vec_dot_q2_k_q8_k, vec_dot_q2_k_q8_k_neon, vec_dot_q2_k_q8_k_dotprod,
    (w: &[BlockQ2_K], a: &[BlockQ8_K]) {
        let m3 = vdupq_n_u8(3);
        let mut sumf = 0f32;
        for (x, y) in w.iter().zip(a) {
            let sc = load_u8(&x.scales);
            let mins = vshrq_n_u8::<4>(sc);
            // SAFETY: `bsums` is 32 readable bytes; `vld1q_s16` needs only 2-byte alignment.
            let (b0, b1) =
                unsafe { (vld1q_s16(y.bsums.as_ptr()), vld1q_s16(y.bsums.as_ptr().add(8))) };
            let m0 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(mins)));
            let m1 = vreinterpretq_s16_u16(vmovl_high_u8(mins));
            let pm = vmull_s16(vget_low_s16(b0), vget_low_s16(m0));
            let pm = vmlal_s16(pm, vget_high_s16(b0), vget_high_s16(m0));
            let pm = vmlal_s16(pm, vget_low_s16(b1), vget_low_s16(m1));
            let pm = vmlal_s16(pm, vget_high_s16(b1), vget_high_s16(m1));
            let summs = vaddvq_s32(pm);
            let scales: [u8; 16] = std::array::from_fn(|j| x.scales[j] & 0x0F);
            let mut acc = [vdupq_n_s32(0); 4];
            for h in 0..2 {
                for i in 0..2 {
                    let mut q = load_u8(chunk16(&x.qs, 2 * h + i));
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let v = vreinterpretq_s8_u8(vandq_u8(q, m3));
                        q = vshrq_n_u8::<2>(q);
                        let j = 8 * h + 2 * r + i;
                        let p = dot_small(vdupq_n_s32(0), v, load_i8(chunk16(&y.qs, j)));
                        *acc = vmlaq_n_s32(*acc, p, scales[j] as i32);
                    }
                }
            }
            let isum = vaddvq_s32(vaddq_s32(vaddq_s32(acc[0], acc[1]), vaddq_s32(acc[2], acc[3])));
            let dall = y.d * f16_to_f32(x.d);
            let dmin = y.d * f16_to_f32(x.dmin);
            sumf += dall * isum as f32 - dmin * summs as f32;
        }
        sumf
    }
}

int8_kernels! {
    /// Q3_K·Q8_K (for `BlockQ3_K`'s `Kernels::neon` slot). Element `128h + 32r + l` has low
    /// bits `2r..2r + 2` of `qs[32h + l]` and is lowered by 4 unless bit `4h + r` of
    /// `hmask[l]` is set; group `j` of 16 has scale `sc[j] - 32`.
    vec_dot_q3_k_q8_k, vec_dot_q3_k_q8_k_neon, vec_dot_q3_k_q8_k_dotprod,
    (w: &[BlockQ3_K], a: &[BlockQ8_K]) {
        let m3 = vdupq_n_u8(3);
        let four = vdupq_n_u8(4);
        let mut sumf = 0f32;
        for (x, y) in w.iter().zip(a) {
            let sc = q3_k_scales(&x.scales);
            let hm = [load_u8(chunk16(&x.hmask, 0)), load_u8(chunk16(&x.hmask, 1))];
            let mut acc = [vdupq_n_s32(0); 4];
            for h in 0..2 {
                for (i, &hm) in hm.iter().enumerate() {
                    let mut q = load_u8(chunk16(&x.qs, 2 * h + i));
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let bit = vdupq_n_u8(1 << (4 * h + r));
                        let high = vandq_u8(vtstq_u8(hm, bit), four);
                        let v = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(q, m3), high));
                        let v = vsubq_s8(v, vreinterpretq_s8_u8(four));
                        q = vshrq_n_u8::<2>(q);
                        let j = 8 * h + 2 * r + i;
                        let p = dot_small(vdupq_n_s32(0), v, load_i8(chunk16(&y.qs, j)));
                        *acc = vmlaq_n_s32(*acc, p, sc[j] as i32 - 32);
                    }
                }
            }
            let isum = vaddvq_s32(vaddq_s32(vaddq_s32(acc[0], acc[1]), vaddq_s32(acc[2], acc[3])));
            sumf += f16_to_f32(x.d) * y.d * isum as f32;
        }
        sumf
    }
}

int8_kernels! {
    /// Q4_K·Q8_K (for `BlockQ4_K`'s `Kernels::neon` slot).
    vec_dot_q4_k_q8_k, vec_dot_q4_k_q8_k_neon, vec_dot_q4_k_q8_k_dotprod,
    (w: &[BlockQ4_K], a: &[BlockQ8_K]) {
        let m4 = vdupq_n_u8(0x0F);
        let mut sumf = 0f32;
        for (x, y) in w.iter().zip(a) {
            let (sc, m) = scales_mins(&x.scales);
            let summs = min_sums(m, &y.bsums);
            // Two accumulators (low and high nibbles) halve the `mla` dependency chain.
            let (mut acc_lo, mut acc_hi) = (vdupq_n_s32(0), vdupq_n_s32(0));
            // 64 elements per step: 32 low nibbles (scale 2k), then 32 high nibbles (2k + 1).
            for k in 0..4 {
                let q0 = load_u8(chunk16(&x.qs, 2 * k));
                let q1 = load_u8(chunk16(&x.qs, 2 * k + 1));
                let lo0 = vreinterpretq_s8_u8(vandq_u8(q0, m4));
                let lo1 = vreinterpretq_s8_u8(vandq_u8(q1, m4));
                let hi0 = vreinterpretq_s8_u8(vshrq_n_u8::<4>(q0));
                let hi1 = vreinterpretq_s8_u8(vshrq_n_u8::<4>(q1));
                let lo = dot_small2(
                    vdupq_n_s32(0),
                    lo0,
                    load_i8(chunk16(&y.qs, 4 * k)),
                    lo1,
                    load_i8(chunk16(&y.qs, 4 * k + 1)),
                );
                let hi = dot_small2(
                    vdupq_n_s32(0),
                    hi0,
                    load_i8(chunk16(&y.qs, 4 * k + 2)),
                    hi1,
                    load_i8(chunk16(&y.qs, 4 * k + 3)),
                );
                acc_lo = vmlaq_n_s32(acc_lo, lo, sc[2 * k] as i32);
                acc_hi = vmlaq_n_s32(acc_hi, hi, sc[2 * k + 1] as i32);
            }
            let isum = vaddvq_s32(vaddq_s32(acc_lo, acc_hi));
            let d = f16_to_f32(x.d) * y.d;
            let dmin = f16_to_f32(x.dmin) * y.d;
            sumf += d * isum as f32 - dmin * summs as f32;
        }
        sumf
    }
}

int8_kernels! {
    /// Q5_K·Q8_K (for `BlockQ5_K`'s `Kernels::neon` slot): Q4_K's layout plus a fifth bit
    /// per element, bit `2k` (low nibbles) or `2k + 1` (high nibbles) of `qh[l]` for element
    /// `l` of the `k`-th group of 64.
    vec_dot_q5_k_q8_k, vec_dot_q5_k_q8_k_neon, vec_dot_q5_k_q8_k_dotprod,
    (w: &[BlockQ5_K], a: &[BlockQ8_K]) {
        let m4 = vdupq_n_u8(0x0F);
        let one = vdupq_n_u8(1);
        let two = vdupq_n_u8(2);
        let mut sumf = 0f32;
        for (x, y) in w.iter().zip(a) {
            let (sc, m) = scales_mins(&x.scales);
            let summs = min_sums(m, &y.bsums);
            // The fifth bits of elements l = 0..16 and 16..32, shifted down two bits per step.
            let mut qh = [load_u8(chunk16(&x.qh, 0)), load_u8(chunk16(&x.qh, 1))];
            let (mut acc_lo, mut acc_hi) = (vdupq_n_s32(0), vdupq_n_s32(0));
            for k in 0..4 {
                // The quants of elements 64k + 16i + l (low) and 64k + 32 + 16i + l (high).
                let mut five = |i: usize| {
                    let q = load_u8(chunk16(&x.qs, 2 * k + i));
                    let ql = vorrq_u8(vandq_u8(q, m4), vshlq_n_u8::<4>(vandq_u8(qh[i], one)));
                    let qu = vorrq_u8(vshrq_n_u8::<4>(q), vshlq_n_u8::<3>(vandq_u8(qh[i], two)));
                    qh[i] = vshrq_n_u8::<2>(qh[i]);
                    (vreinterpretq_s8_u8(ql), vreinterpretq_s8_u8(qu))
                };
                let (l0, u0) = five(0);
                let (l1, u1) = five(1);
                let y4 = |j: usize| load_i8(chunk16(&y.qs, 4 * k + j));
                let lo = dot_small2(vdupq_n_s32(0), l0, y4(0), l1, y4(1));
                let hi = dot_small2(vdupq_n_s32(0), u0, y4(2), u1, y4(3));
                acc_lo = vmlaq_n_s32(acc_lo, lo, sc[2 * k] as i32);
                acc_hi = vmlaq_n_s32(acc_hi, hi, sc[2 * k + 1] as i32);
            }
            let isum = vaddvq_s32(vaddq_s32(acc_lo, acc_hi));
            let d = f16_to_f32(x.d) * y.d;
            let dmin = f16_to_f32(x.dmin) * y.d;
            sumf += d * isum as f32 - dmin * summs as f32;
        }
        sumf
    }
}

int8_kernels! {
    /// Q6_K·Q8_K (for `BlockQ6_K`'s `Kernels::neon` slot).
    vec_dot_q6_k_q8_k, vec_dot_q6_k_q8_k_neon, vec_dot_q6_k_q8_k_dotprod,
    (w: &[BlockQ6_K], a: &[BlockQ8_K]) {
        let m4 = vdupq_n_u8(0x0F);
        let m3 = vdupq_n_u8(0x03);
        let m30 = vdupq_n_u8(0x30);
        let off = vdupq_n_s8(32);
        let mut sumf = 0f32;
        for (x, y) in w.iter().zip(a) {
            // One accumulator per quarter `r`, so four `mla` chains of four run side by side.
            let mut acc = [vdupq_n_s32(0); 4];
            // Each half of 128 elements: bytes 64h.. of ql, 32h.. of qh, scales 8h..8h + 8.
            // Element 128h + 32r + l (r = 0..4, l = 0..32) has scale 8h + 2r + l / 16.
            for h in 0..2 {
                for half in 0..2 {
                    let qh = load_u8(chunk16(&x.qh, 2 * h + half));
                    let qla = load_u8(chunk16(&x.ql, 4 * h + half));
                    let qlb = load_u8(chunk16(&x.ql, 4 * h + 2 + half));
                    let q = [
                        vorrq_u8(vandq_u8(qla, m4), vshlq_n_u8::<4>(vandq_u8(qh, m3))),
                        vorrq_u8(vandq_u8(qlb, m4), vandq_u8(vshlq_n_u8::<2>(qh), m30)),
                        vorrq_u8(vshrq_n_u8::<4>(qla), vandq_u8(qh, m30)),
                        vorrq_u8(vshrq_n_u8::<4>(qlb), vandq_u8(vshrq_n_u8::<2>(qh), m30)),
                    ];
                    for (r, q) in q.into_iter().enumerate() {
                        let q = vsubq_s8(vreinterpretq_s8_u8(q), off);
                        let q8 = load_i8(chunk16(&y.qs, 8 * h + 2 * r + half));
                        let p = dot_small(vdupq_n_s32(0), q, q8);
                        acc[r] = vmlaq_n_s32(acc[r], p, x.scales[8 * h + 2 * r + half] as i32);
                    }
                }
            }
            let isum = vaddvq_s32(vaddq_s32(vaddq_s32(acc[0], acc[1]), vaddq_s32(acc[2], acc[3])));
            sumf += f16_to_f32(x.d) * y.d * isum as f32;
        }
        sumf
    }
}

int8_kernels! {
    /// IQ4_XS·Q8_K (for `BlockIQ4_XS`'s `Kernels::neon` slot): blocks of 32 as in IQ4_NL
    /// (low nibbles first), each with the 6-bit scale `ls - 32`.
    vec_dot_iq4_xs_q8_k, vec_dot_iq4_xs_q8_k_neon, vec_dot_iq4_xs_q8_k_dotprod,
    (w: &[BlockIQ4_XS], a: &[BlockQ8_K]) {
        // SAFETY: the table is 16 readable bytes; `vld1q_s8` has no alignment requirement.
        let levels = unsafe { vld1q_s8(KVALUES_IQ4NL.as_ptr()) };
        let m4 = vdupq_n_u8(0x0F);
        let mut sumf = 0f32;
        for (x, y) in w.iter().zip(a) {
            let ls = iq4_xs_scales(x);
            let mut acc = [vdupq_n_s32(0); 2];
            for (ib, &ls) in ls.iter().enumerate() {
                let q = load_u8(chunk16(&x.qs, ib));
                let lo = vqtbl1q_s8(levels, vandq_u8(q, m4));
                let hi = vqtbl1q_s8(levels, vshrq_n_u8::<4>(q));
                let p = dot_i8(vdupq_n_s32(0), lo, load_i8(chunk16(&y.qs, 2 * ib)));
                let p = dot_i8(p, hi, load_i8(chunk16(&y.qs, 2 * ib + 1)));
                acc[ib % 2] = vmlaq_n_s32(acc[ib % 2], p, ls as i32 - 32);
            }
            let isum = vaddvq_s32(vaddq_s32(acc[0], acc[1]));
            sumf += f16_to_f32(x.d) * y.d * isum as f32;
        }
        sumf
    }
}

int8_kernels! {
    /// Q8_K·Q8_K (for `BlockQ8_K`'s `Kernels::neon` slot): the plain scaled integer dot.
    vec_dot_q8_k_q8_k, vec_dot_q8_k_q8_k_neon, vec_dot_q8_k_q8_k_dotprod,
    (w: &[BlockQ8_K], a: &[BlockQ8_K]) {
        let mut sumf = 0f32;
        for (x, y) in w.iter().zip(a) {
            let mut acc = [vdupq_n_s32(0); 4];
            for i in 0..16 {
                let p = load_i8(chunk16(&x.qs, i));
                acc[i % 4] = dot_i8(acc[i % 4], p, load_i8(chunk16(&y.qs, i)));
            }
            let isum = vaddvq_s32(vaddq_s32(vaddq_s32(acc[0], acc[1]), vaddq_s32(acc[2], acc[3])));
            sumf += x.d * y.d * isum as f32;
        }
        sumf
    }
}

#[cfg(test)]
mod tests {
    use half::f16;

    use super::super::testutil::{check_variants, Rng};
    use super::*;

    /// Lengths in super-blocks. In exact mode (unit scales, activations in -3..=3, Q6_K scales
    /// in -32..32) a super-block sums to at most 256 * 15 * 63 * 3 (Q4_K) or 256 * 32 * 32 * 3
    /// (Q6_K), so nine stay below 2^24.
    const LENGTHS: &[usize] = &[0, 1, 2, 3, 4, 5, 7, 9];

    fn gen_q8_k(rng: &mut Rng, exact: bool) -> BlockQ8_K {
        let qs: [i8; 256] = std::array::from_fn(|_| {
            if exact {
                rng.range_i32(-3, 3) as i8
            } else {
                rng.byte() as i8
            }
        });
        let bsums =
            std::array::from_fn(|j| qs[16 * j..16 * j + 16].iter().map(|&q| q as i16).sum());
        BlockQ8_K {
            d: if exact { 1.0 } else { rng.scale() },
            qs,
            bsums,
        }
    }

    fn scale(rng: &mut Rng, exact: bool) -> f16 {
        f16::from_f32(if exact { 1.0 } else { rng.scale() })
    }

    fn tol(n: usize, s: f64) -> f64 {
        (2.0 * n as f64 + 4.0) * f32::EPSILON as f64 * s
    }

    #[test]
    fn scales_mins_match_ggml_get_scale_min_k4() {
        let q: [u8; 12] = [
            0xC1, 0x42, 0x83, 0x04, 0xC5, 0x46, 0x87, 0x08, 0x9A, 0xBC, 0xDE, 0xF1,
        ];
        let (sc, m) = scales_mins(&q);
        assert_eq!(sc, [0x01, 0x02, 0x03, 0x04, 0x3A, 0x1C, 0x2E, 0x01]);
        assert_eq!(m, [0x05, 0x06, 0x07, 0x08, 0x39, 0x1B, 0x2D, 0x0F]);
    }

    #[test]
    fn q3_k_scales_unpack_six_bits() {
        // Scale j = 17 * j % 64 packed by the layout in `q3_k_scales`' docs.
        let want: [u8; 16] = std::array::from_fn(|j| (17 * j % 64) as u8);
        let mut q = [0u8; 12];
        for (j, &s) in want.iter().enumerate() {
            q[j % 8] |= (s & 0x0F) << (4 * (j / 8));
            q[8 + j % 4] |= (s >> 4) << (2 * (j / 4));
        }
        assert_eq!(q3_k_scales(&q), want);
    }

    #[test]
    fn q2_k_matches_scalar() {
        check_variants::<BlockQ2_K>(
            "q2_k",
            [
                vec_dot_q2_k_q8_k_neon,
                vec_dot_q2_k_q8_k_dotprod,
                vec_dot_q2_k_q8_k,
            ],
            LENGTHS,
            |rng, exact| BlockQ2_K {
                scales: std::array::from_fn(|_| rng.byte()),
                qs: std::array::from_fn(|_| rng.byte()),
                d: scale(rng, exact),
                dmin: scale(rng, exact),
            },
            gen_q8_k,
            |w, a| {
                let s = w.iter().zip(a).map(|(x, y)| {
                    let sq: f64 = (0..256)
                        .map(|i| (x.scales[i / 16] & 15) as f64 * 3.0 * (y.qs[i] as f64).abs())
                        .sum();
                    let sm: f64 = (0..16)
                        .map(|j| (x.scales[j] >> 4) as f64 * (y.bsums[j] as f64).abs())
                        .sum();
                    (x.d.to_f64() * y.d as f64).abs() * sq
                        + (x.dmin.to_f64() * y.d as f64).abs() * sm
                });
                tol(w.len(), s.sum())
            },
        );
    }

    #[test]
    fn q3_k_matches_scalar() {
        check_variants::<BlockQ3_K>(
            "q3_k",
            [
                vec_dot_q3_k_q8_k_neon,
                vec_dot_q3_k_q8_k_dotprod,
                vec_dot_q3_k_q8_k,
            ],
            LENGTHS,
            |rng, exact| BlockQ3_K {
                hmask: std::array::from_fn(|_| rng.byte()),
                qs: std::array::from_fn(|_| rng.byte()),
                scales: std::array::from_fn(|_| rng.byte()),
                d: scale(rng, exact),
            },
            gen_q8_k,
            |w, a| {
                let s = w.iter().zip(a).map(|(x, y)| {
                    let sc = q3_k_scales(&x.scales);
                    let sq: f64 = (0..256)
                        .map(|i| (sc[i / 16] as f64 - 32.0).abs() * 4.0 * (y.qs[i] as f64).abs())
                        .sum();
                    (x.d.to_f64() * y.d as f64).abs() * sq
                });
                tol(w.len(), s.sum())
            },
        );
    }

    #[test]
    fn iq4_xs_matches_scalar() {
        check_variants::<BlockIQ4_XS>(
            "iq4_xs",
            [
                vec_dot_iq4_xs_q8_k_neon,
                vec_dot_iq4_xs_q8_k_dotprod,
                vec_dot_iq4_xs_q8_k,
            ],
            // Exact mode: 256 * 127 * 32 * 3 per super-block, so at most 5 super-blocks.
            &[0, 1, 2, 3, 4, 5],
            |rng, exact| BlockIQ4_XS {
                d: scale(rng, exact),
                scales_h: rng.next_u64() as u16,
                scales_l: std::array::from_fn(|_| rng.byte()),
                qs: std::array::from_fn(|_| rng.byte()),
            },
            gen_q8_k,
            |w, a| {
                let s = w.iter().zip(a).map(|(x, y)| {
                    let ls = iq4_xs_scales(x);
                    let sq: f64 = (0..256)
                        .map(|i| (ls[i / 32] as f64 - 32.0).abs() * 127.0 * (y.qs[i] as f64).abs())
                        .sum();
                    (x.d.to_f64() * y.d as f64).abs() * sq
                });
                // Eight float terms per super-block in the reference.
                tol(4 * w.len(), s.sum())
            },
        );
    }

    #[test]
    fn q8_k_matches_scalar() {
        check_variants::<BlockQ8_K>(
            "q8_k",
            [
                vec_dot_q8_k_q8_k_neon,
                vec_dot_q8_k_q8_k_dotprod,
                vec_dot_q8_k_q8_k,
            ],
            LENGTHS,
            gen_q8_k,
            gen_q8_k,
            |w, a| {
                let s = w.iter().zip(a).map(|(x, y)| {
                    let sq: f64 =
                        x.qs.iter()
                            .zip(&y.qs)
                            .map(|(&p, &q)| (p as f64 * q as f64).abs())
                            .sum();
                    (x.d as f64 * y.d as f64).abs() * sq
                });
                tol(w.len(), s.sum())
            },
        );
    }

    #[test]
    fn q4_k_matches_scalar() {
        check_variants::<BlockQ4_K>(
            "q4_k",
            [
                vec_dot_q4_k_q8_k_neon,
                vec_dot_q4_k_q8_k_dotprod,
                vec_dot_q4_k_q8_k,
            ],
            LENGTHS,
            |rng, exact| BlockQ4_K {
                d: scale(rng, exact),
                dmin: scale(rng, exact),
                scales: std::array::from_fn(|_| rng.byte()),
                qs: std::array::from_fn(|_| rng.byte()),
            },
            gen_q8_k,
            |w, a| {
                let s = w.iter().zip(a).map(|(x, y)| {
                    let (sc, m) = scales_mins(&x.scales);
                    let mut sq = 0f64;
                    for (i, &q8) in y.qs.iter().enumerate() {
                        let b = x.qs[32 * (i / 64) + i % 32];
                        let q = if i % 64 < 32 { b & 0x0F } else { b >> 4 };
                        sq += sc[i / 32] as f64 * (q as f64 * q8 as f64).abs();
                    }
                    let sm: f64 = (0..16)
                        .map(|j| m[j / 2] as f64 * (y.bsums[j] as f64).abs())
                        .sum();
                    (x.d.to_f64() * y.d as f64).abs() * sq
                        + (x.dmin.to_f64() * y.d as f64).abs() * sm
                });
                tol(w.len(), s.sum())
            },
        );
    }

    #[test]
    fn q5_k_matches_scalar() {
        check_variants::<BlockQ5_K>(
            "q5_k",
            [
                vec_dot_q5_k_q8_k_neon,
                vec_dot_q5_k_q8_k_dotprod,
                vec_dot_q5_k_q8_k,
            ],
            // Exact mode: 256 * 31 * 63 * 3 per super-block, so at most 7 super-blocks.
            &[0, 1, 2, 3, 4, 5, 7],
            |rng, exact| BlockQ5_K {
                d: scale(rng, exact),
                dmin: scale(rng, exact),
                scales: std::array::from_fn(|_| rng.byte()),
                qh: std::array::from_fn(|_| rng.byte()),
                qs: std::array::from_fn(|_| rng.byte()),
            },
            gen_q8_k,
            |w, a| {
                let s = w.iter().zip(a).map(|(x, y)| {
                    let (sc, m) = scales_mins(&x.scales);
                    // |q| <= 31 bounds every quant without unpacking the fifth bits.
                    let sq: f64 = (0..256)
                        .map(|i| sc[i / 32] as f64 * 31.0 * (y.qs[i] as f64).abs())
                        .sum();
                    let sm: f64 = (0..16)
                        .map(|j| m[j / 2] as f64 * (y.bsums[j] as f64).abs())
                        .sum();
                    (x.d.to_f64() * y.d as f64).abs() * sq
                        + (x.dmin.to_f64() * y.d as f64).abs() * sm
                });
                tol(w.len(), s.sum())
            },
        );
    }

    #[test]
    fn q6_k_matches_scalar() {
        check_variants::<BlockQ6_K>(
            "q6_k",
            [
                vec_dot_q6_k_q8_k_neon,
                vec_dot_q6_k_q8_k_dotprod,
                vec_dot_q6_k_q8_k,
            ],
            LENGTHS,
            |rng, exact| BlockQ6_K {
                ql: std::array::from_fn(|_| rng.byte()),
                qh: std::array::from_fn(|_| rng.byte()),
                scales: std::array::from_fn(|_| {
                    if exact {
                        rng.range_i32(-32, 31) as i8
                    } else {
                        rng.byte() as i8
                    }
                }),
                d: scale(rng, exact),
            },
            gen_q8_k,
            |w, a| {
                // An upper bound of sum |scale * (q - 32) * q8| that needs no unpacking:
                // |q - 32| <= 32.
                let s = w.iter().zip(a).map(|(x, y)| {
                    let sq: f64 = y
                        .qs
                        .iter()
                        .enumerate()
                        .map(|(i, &q8)| (x.scales[i / 16] as f64).abs() * 32.0 * (q8 as f64).abs())
                        .sum();
                    (x.d.to_f64() * y.d as f64).abs() * sq
                });
                tol(w.len(), s.sum())
            },
        );
    }

    /// The largest products the NEON-only path packs four to an i16 lane: every Q6_K quant at
    /// -32 against activations of -128 (4 * 4096 = 16384 per lane, no overflow).
    #[test]
    fn q6_k_extremes_are_exact() {
        let x = BlockQ6_K {
            ql: [0; 128],
            qh: [0; 64],
            scales: [1; 16],
            d: f16::ONE,
        };
        let y = BlockQ8_K {
            d: 1.0,
            qs: [-128; 256],
            bsums: [-2048; 16],
        };
        let (w, a) = (vec![x; 3], vec![y; 3]);
        let want = 3.0 * 256.0 * 4096.0;
        assert_eq!(<BlockQ6_K as crate::formats::VecDot>::vec_dot(&w, &a), want);
        // SAFETY: NEON is part of every aarch64 CPU; the dispatcher checks `dotprod`.
        unsafe {
            assert_eq!(vec_dot_q6_k_q8_k_neon(&w, &a), want);
            assert_eq!(vec_dot_q6_k_q8_k(&w, &a), want);
        }
    }
}
