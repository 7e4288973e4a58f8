//! NEON kernels for the legacy 32-element formats: Q8_0, Q4_0, Q5_0 and IQ4_NL against Q8_0;
//! Q4_1 and Q5_1 against Q8_1.
//!
//! Per block the kernels compute the integer dot product of the quants exactly, as four i32
//! lanes, and accumulate `lanes as f32 * (d_w * d_a)` into two f32x4 accumulators (even and
//! odd blocks), reduced once at the end, as ggml's NEON kernels do. The minimum of Q4_1/Q5_1
//! adds `m_w * s_a` per block in scalar f32. Against the scalar references (block order,
//! one f32 sum) only float rounding differs: with `u = 2^-24` and `S = sum over blocks of
//! |d_w d_a| sum |q_w q_a| (+ |m_w s_a|)`, each side's error is below `(n_blocks + 4) u S`.

use std::arch::aarch64::*;

use super::{chunk16, f16_to_f32, int8_kernels, load_i8, load_u8};
use crate::formats::iq4_nl::KVALUES_IQ4NL;
use crate::formats::{
    BlockIQ4_NL, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, BlockQ8_1,
};

/// Sums `vcvt(p) * s` over the blocks of `w` and `a`, where `(p, s)` (i32 lanes, f32 scale)
/// is the value of the block expression for the block pair `(x, y)`; two blocks per step into
/// two accumulators. Blocks past the shorter slice are ignored, as the scalar kernels do.
macro_rules! sum_blocks {
    ($w:expr, $a:expr, |$x:ident, $y:ident| $blk:expr) => {{
        let n = $w.len().min($a.len());
        let (w, a) = (&$w[..n], &$a[..n]);
        let mut acc0 = vdupq_n_f32(0.0);
        let mut acc1 = vdupq_n_f32(0.0);
        let (wc, ac) = (w.chunks_exact(2), a.chunks_exact(2));
        let (wt, at) = (wc.remainder(), ac.remainder());
        for (wp, ap) in wc.zip(ac) {
            let ($x, $y) = (&wp[0], &ap[0]);
            let (p0, s0): (int32x4_t, f32) = $blk;
            let ($x, $y) = (&wp[1], &ap[1]);
            let (p1, s1): (int32x4_t, f32) = $blk;
            acc0 = vmlaq_n_f32(acc0, vcvtq_f32_s32(p0), s0);
            acc1 = vmlaq_n_f32(acc1, vcvtq_f32_s32(p1), s1);
        }
        for ($x, $y) in wt.iter().zip(at) {
            let (p0, s0): (int32x4_t, f32) = $blk;
            acc0 = vmlaq_n_f32(acc0, vcvtq_f32_s32(p0), s0);
        }
        vaddvq_f32(vaddq_f32(acc0, acc1))
    }};
}

/// The two halves of a 4-bit block as bytes 0..=15: elements 0..16 (low nibbles) and
/// 16..32 (high nibbles).
#[target_feature(enable = "neon")]
#[inline]
fn nibbles(qs: &[u8; 16]) -> (uint8x16_t, uint8x16_t) {
    let q = load_u8(qs);
    (vandq_u8(q, vdupq_n_u8(0x0F)), vshrq_n_u8::<4>(q))
}

/// Byte lanes of the fifth bits: lane `k` of the first vector tests bit `k % 8` of byte
/// `k / 8`, of the second bit `k % 8` of byte `2 + k / 8`.
const QH_INDEX: [[u8; 16]; 2] = [
    [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1],
    [2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3],
];
const QH_BIT: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];

/// The fifth bits of a Q5 block as 0x10 or 0 per element: elements 0..16 and 16..32. Bit
/// `j` of the little-endian `qh` belongs to element `j`.
#[target_feature(enable = "neon")]
#[inline]
fn fifth_bits(qh: [u8; 4]) -> (uint8x16_t, uint8x16_t) {
    let bytes = vreinterpretq_u8_u32(vdupq_n_u32(u32::from_le_bytes(qh)));
    let bit = load_u8(&QH_BIT);
    let sixteen = vdupq_n_u8(0x10);
    let spread = |idx: &[u8; 16]| vandq_u8(vtstq_u8(vqtbl1q_u8(bytes, load_u8(idx)), bit), sixteen);
    (spread(&QH_INDEX[0]), spread(&QH_INDEX[1]))
}

int8_kernels! {
    /// Q8_0·Q8_0 (for `BlockQ8_0`'s `Kernels::neon` slot).
    vec_dot_q8_0_q8_0, vec_dot_q8_0_q8_0_neon, vec_dot_q8_0_q8_0_dotprod,
    (w: &[BlockQ8_0], a: &[BlockQ8_0]) {
        sum_blocks!(w, a, |x, y| {
            let p = dot_i8(vdupq_n_s32(0), load_i8(chunk16(&x.qs, 0)), load_i8(chunk16(&y.qs, 0)));
            let p = dot_i8(p, load_i8(chunk16(&x.qs, 1)), load_i8(chunk16(&y.qs, 1)));
            (p, f16_to_f32(x.d) * f16_to_f32(y.d))
        })
    }
}

int8_kernels! {
    /// Q4_0·Q8_0 (for `BlockQ4_0`'s `Kernels::neon` slot).
    vec_dot_q4_0_q8_0, vec_dot_q4_0_q8_0_neon, vec_dot_q4_0_q8_0_dotprod,
    (w: &[BlockQ4_0], a: &[BlockQ8_0]) {
        let eight = vdupq_n_s8(8);
        sum_blocks!(w, a, |x, y| {
            let (lo, hi) = nibbles(&x.qs);
            let lo = vsubq_s8(vreinterpretq_s8_u8(lo), eight);
            let hi = vsubq_s8(vreinterpretq_s8_u8(hi), eight);
            let p = dot_small2(
                vdupq_n_s32(0),
                lo,
                load_i8(chunk16(&y.qs, 0)),
                hi,
                load_i8(chunk16(&y.qs, 1)),
            );
            (p, f16_to_f32(x.d) * f16_to_f32(y.d))
        })
    }
}

int8_kernels! {
    /// Q4_1·Q8_1 (for `BlockQ4_1`'s `Kernels::neon` slot): `d_w d_a sum(q_w q_a) + m_w s_a`
    /// per block.
    vec_dot_q4_1_q8_1, vec_dot_q4_1_q8_1_neon, vec_dot_q4_1_q8_1_dotprod,
    (w: &[BlockQ4_1], a: &[BlockQ8_1]) {
        let mut summs = 0f32;
        let sum = sum_blocks!(w, a, |x, y| {
            let (lo, hi) = nibbles(&x.qs);
            let (lo, hi) = (vreinterpretq_s8_u8(lo), vreinterpretq_s8_u8(hi));
            let p = dot_small2(
                vdupq_n_s32(0),
                lo,
                load_i8(chunk16(&y.qs, 0)),
                hi,
                load_i8(chunk16(&y.qs, 1)),
            );
            summs += f16_to_f32(x.m) * f16_to_f32(y.s);
            (p, f16_to_f32(x.d) * f16_to_f32(y.d))
        });
        sum + summs
    }
}

int8_kernels! {
    /// Q5_0·Q8_0 (for `BlockQ5_0`'s `Kernels::neon` slot).
    vec_dot_q5_0_q8_0, vec_dot_q5_0_q8_0_neon, vec_dot_q5_0_q8_0_dotprod,
    (w: &[BlockQ5_0], a: &[BlockQ8_0]) {
        let sixteen = vdupq_n_s8(16);
        sum_blocks!(w, a, |x, y| {
            let (lo, hi) = nibbles(&x.qs);
            let (hlo, hhi) = fifth_bits(x.qh);
            let lo = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(lo, hlo)), sixteen);
            let hi = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(hi, hhi)), sixteen);
            let p = dot_small2(
                vdupq_n_s32(0),
                lo,
                load_i8(chunk16(&y.qs, 0)),
                hi,
                load_i8(chunk16(&y.qs, 1)),
            );
            (p, f16_to_f32(x.d) * f16_to_f32(y.d))
        })
    }
}

int8_kernels! {
    /// Q5_1·Q8_1 (for `BlockQ5_1`'s `Kernels::neon` slot): `d_w d_a sum(q_w q_a) + m_w s_a`
    /// per block.
    vec_dot_q5_1_q8_1, vec_dot_q5_1_q8_1_neon, vec_dot_q5_1_q8_1_dotprod,
    (w: &[BlockQ5_1], a: &[BlockQ8_1]) {
        let mut summs = 0f32;
        let sum = sum_blocks!(w, a, |x, y| {
            let (lo, hi) = nibbles(&x.qs);
            let (hlo, hhi) = fifth_bits(x.qh);
            let lo = vreinterpretq_s8_u8(vorrq_u8(lo, hlo));
            let hi = vreinterpretq_s8_u8(vorrq_u8(hi, hhi));
            let p = dot_small2(
                vdupq_n_s32(0),
                lo,
                load_i8(chunk16(&y.qs, 0)),
                hi,
                load_i8(chunk16(&y.qs, 1)),
            );
            summs += f16_to_f32(x.m) * f16_to_f32(y.s);
            (p, f16_to_f32(x.d) * f16_to_f32(y.d))
        });
        sum + summs
    }
}

int8_kernels! {
    /// IQ4_NL·Q8_0 (for `BlockIQ4_NL`'s `Kernels::neon` slot): the 4-bit indices select their
    /// levels from the 16-entry table with one `tbl` per 16 elements.
    vec_dot_iq4_nl_q8_0, vec_dot_iq4_nl_q8_0_neon, vec_dot_iq4_nl_q8_0_dotprod,
    (w: &[BlockIQ4_NL], a: &[BlockQ8_0]) {
        // SAFETY: the table is 16 readable bytes; `vld1q_s8` has no alignment requirement.
        let levels = unsafe { vld1q_s8(KVALUES_IQ4NL.as_ptr()) };
        sum_blocks!(w, a, |x, y| {
            let (lo, hi) = nibbles(&x.qs);
            let lo = vqtbl1q_s8(levels, lo);
            let hi = vqtbl1q_s8(levels, hi);
            let p = dot_i8(vdupq_n_s32(0), lo, load_i8(chunk16(&y.qs, 0)));
            let p = dot_i8(p, hi, load_i8(chunk16(&y.qs, 1)));
            (p, f16_to_f32(x.d) * f16_to_f32(y.d))
        })
    }
}

#[cfg(test)]
mod tests {
    use half::f16;

    use super::super::testutil::{check_variants, Rng};
    use super::*;

    /// Lengths in blocks: empty, one to three, and longer odd counts (the two-block loop plus
    /// a one-block tail). In exact mode at most 31 blocks of at most 32 * 128 * 128 keep every
    /// sum below 2^24.
    const LENGTHS: &[usize] = &[0, 1, 2, 3, 4, 5, 7, 17, 31];

    /// A block scale: 1 in exact mode, else random.
    fn scale(rng: &mut Rng, exact: bool) -> f16 {
        f16::from_f32(if exact { 1.0 } else { rng.scale() })
    }

    fn gen_q8_0(rng: &mut Rng, exact: bool) -> BlockQ8_0 {
        BlockQ8_0 {
            d: scale(rng, exact),
            qs: std::array::from_fn(|_| rng.byte() as i8),
        }
    }

    /// Q8_1 as ggml's quantizer makes it: `s = d * sum(q)`. Exact mode keeps |q| <= 64 so the
    /// sum (at most 2048) is an exact f16.
    fn gen_q8_1(rng: &mut Rng, exact: bool) -> BlockQ8_1 {
        let d = scale(rng, exact);
        let qs: [i8; 32] = std::array::from_fn(|_| {
            if exact {
                rng.range_i32(-64, 63) as i8
            } else {
                rng.byte() as i8
            }
        });
        let sum: i32 = qs.iter().map(|&q| q as i32).sum();
        BlockQ8_1 {
            d,
            s: f16::from_f32(d.to_f32() * sum as f32),
            qs,
        }
    }

    /// A minimum: a small integer in exact mode, else random.
    fn minimum(rng: &mut Rng, exact: bool) -> f16 {
        f16::from_f32(if exact {
            rng.range_i32(-8, 8) as f32
        } else {
            rng.scale() * 8.0
        })
    }

    fn bytes<const N: usize>(rng: &mut Rng) -> [u8; N] {
        std::array::from_fn(|_| rng.byte())
    }

    /// The tolerance for `n` blocks whose summed magnitude is `s` (see the module docs; both
    /// the kernel's and the reference's errors are within `(n + 4) u s`, `u = EPSILON / 2`).
    fn tol(n: usize, s: f64) -> f64 {
        (n as f64 + 4.0) * f32::EPSILON as f64 * s
    }

    /// `sum |q_w q_a|` of one block pair given the weight quants as integers.
    fn abs_dot(qw: impl Iterator<Item = i32>, qa: &[i8; 32]) -> f64 {
        qw.zip(qa).map(|(p, &q)| (p * q as i32).abs() as f64).sum()
    }

    fn nib(qs: &[u8; 16]) -> impl Iterator<Item = i32> + '_ {
        (0..32).map(move |j| {
            (if j < 16 {
                qs[j] & 0x0F
            } else {
                qs[j - 16] >> 4
            }) as i32
        })
    }

    fn q5(qs: &[u8; 16], qh: [u8; 4]) -> impl Iterator<Item = i32> + '_ {
        let h = u32::from_le_bytes(qh);
        nib(qs)
            .enumerate()
            .map(move |(j, q)| q | (((h >> j) & 1) << 4) as i32)
    }

    fn dd(a: f16, b: f16) -> f64 {
        (a.to_f64() * b.to_f64()).abs()
    }

    #[test]
    fn q8_0_matches_scalar() {
        check_variants::<BlockQ8_0>(
            "q8_0",
            [
                vec_dot_q8_0_q8_0_neon,
                vec_dot_q8_0_q8_0_dotprod,
                vec_dot_q8_0_q8_0,
            ],
            LENGTHS,
            gen_q8_0,
            gen_q8_0,
            |w, a| {
                let s = w
                    .iter()
                    .zip(a)
                    .map(|(x, y)| dd(x.d, y.d) * abs_dot(x.qs.iter().map(|&q| q as i32), &y.qs));
                tol(w.len(), s.sum())
            },
        );
    }

    #[test]
    fn q4_0_matches_scalar() {
        check_variants::<BlockQ4_0>(
            "q4_0",
            [
                vec_dot_q4_0_q8_0_neon,
                vec_dot_q4_0_q8_0_dotprod,
                vec_dot_q4_0_q8_0,
            ],
            LENGTHS,
            |rng, exact| BlockQ4_0 {
                d: scale(rng, exact),
                qs: bytes(rng),
            },
            gen_q8_0,
            |w, a| {
                let s = w
                    .iter()
                    .zip(a)
                    .map(|(x, y)| dd(x.d, y.d) * abs_dot(nib(&x.qs).map(|q| q - 8), &y.qs));
                tol(w.len(), s.sum())
            },
        );
    }

    #[test]
    fn q5_0_matches_scalar() {
        check_variants::<BlockQ5_0>(
            "q5_0",
            [
                vec_dot_q5_0_q8_0_neon,
                vec_dot_q5_0_q8_0_dotprod,
                vec_dot_q5_0_q8_0,
            ],
            LENGTHS,
            |rng, exact| BlockQ5_0 {
                d: scale(rng, exact),
                qh: bytes(rng),
                qs: bytes(rng),
            },
            gen_q8_0,
            |w, a| {
                let s = w
                    .iter()
                    .zip(a)
                    .map(|(x, y)| dd(x.d, y.d) * abs_dot(q5(&x.qs, x.qh).map(|q| q - 16), &y.qs));
                tol(w.len(), s.sum())
            },
        );
    }

    #[test]
    fn q4_1_matches_scalar() {
        check_variants::<BlockQ4_1>(
            "q4_1",
            [
                vec_dot_q4_1_q8_1_neon,
                vec_dot_q4_1_q8_1_dotprod,
                vec_dot_q4_1_q8_1,
            ],
            LENGTHS,
            |rng, exact| BlockQ4_1 {
                d: scale(rng, exact),
                m: minimum(rng, exact),
                qs: bytes(rng),
            },
            gen_q8_1,
            |w, a| {
                let s = w
                    .iter()
                    .zip(a)
                    .map(|(x, y)| dd(x.d, y.d) * abs_dot(nib(&x.qs), &y.qs) + dd(x.m, y.s));
                tol(2 * w.len(), s.sum())
            },
        );
    }

    #[test]
    fn q5_1_matches_scalar() {
        check_variants::<BlockQ5_1>(
            "q5_1",
            [
                vec_dot_q5_1_q8_1_neon,
                vec_dot_q5_1_q8_1_dotprod,
                vec_dot_q5_1_q8_1,
            ],
            LENGTHS,
            |rng, exact| BlockQ5_1 {
                d: scale(rng, exact),
                m: minimum(rng, exact),
                qh: bytes(rng),
                qs: bytes(rng),
            },
            gen_q8_1,
            |w, a| {
                let s = w
                    .iter()
                    .zip(a)
                    .map(|(x, y)| dd(x.d, y.d) * abs_dot(q5(&x.qs, x.qh), &y.qs) + dd(x.m, y.s));
                tol(2 * w.len(), s.sum())
            },
        );
    }

    #[test]
    fn iq4_nl_matches_scalar() {
        check_variants::<BlockIQ4_NL>(
            "iq4_nl",
            [
                vec_dot_iq4_nl_q8_0_neon,
                vec_dot_iq4_nl_q8_0_dotprod,
                vec_dot_iq4_nl_q8_0,
            ],
            LENGTHS,
            |rng, exact| BlockIQ4_NL {
                d: scale(rng, exact),
                qs: bytes(rng),
            },
            // Exact mode: |level| <= 127 and |a| <= 128 keep 31 blocks below 2^24 as for Q8_0.
            gen_q8_0,
            |w, a| {
                let s = w.iter().zip(a).map(|(x, y)| {
                    let q = nib(&x.qs).map(|q| KVALUES_IQ4NL[q as usize] as i32);
                    dd(x.d, y.d) * abs_dot(q, &y.qs)
                });
                tol(w.len(), s.sum())
            },
        );
    }

    /// Extreme quants: every weight and activation at its most negative value, where an i16
    /// accumulation of two products (2 * 128 * 128) would overflow.
    #[test]
    fn q8_0_extremes_are_exact() {
        let b = BlockQ8_0 {
            d: f16::ONE,
            qs: [-128; 32],
        };
        let w = vec![b; 5];
        let want = 5.0 * 32.0 * 16384.0;
        // SAFETY: NEON is part of every aarch64 CPU.
        assert_eq!(unsafe { vec_dot_q8_0_q8_0_neon(&w, &w) }, want);
        // SAFETY: as above.
        assert_eq!(unsafe { vec_dot_q8_0_q8_0(&w, &w) }, want);
    }
}
