//! AVX-512 kernels for the legacy formats: Q4_0·Q8_0, Q4_1·Q8_1, Q5_0·Q8_0, Q5_1·Q8_1,
//! Q8_0·Q8_0 and IQ4_NL·Q8_0 dot products, each in two variants: AVX-512 BW (`vpmaddubsw`
//! and `vpmaddwd`) and AVX-512 VNNI (`vpdpbusd`, which multiplies unsigned by signed bytes
//! and sums each group of four straight into i32).
//!
//! The integer work takes two 32-element blocks per 512-bit register (block 0 in the low 256
//! bits; inside each half the layout of the AVX2 kernels: byte `j` is element `j`), giving
//! sixteen exact i32 partial sums, lane `l` of each half holding the products of elements
//! `4l..4l + 4` of its block, converted to f32 (exact: below 2^24). These are exactly the
//! partial sums of the AVX2 kernels, and the float arithmetic on them is that of the AVX2
//! kernels, which is ggml's (see `avx2::legacy`): each half is applied with its block's scale
//! to ONE 8-lane accumulator, in block order (`acc = fma(d_0, low half, acc)`, then
//! `acc = fma(d_1, high half, acc)`), reduced in `hsum_float_8`'s order; the Q4_1 and Q5_1
//! terms `m_w * s_a` are fused into a scalar sum in block order and added last; IQ4_NL keeps
//! ggml's two accumulators for even and odd blocks (the two halves of one 512-bit
//! accumulator) and its scalar last odd block. So every kernel here returns, bit for bit, what
//! the AVX2 kernel (and llama.cpp) returns.
//!
//! Exactness of the integer part: as in the AVX2 kernels, the BW variants of Q8_0 and IQ4_NL
//! move the weight's sign onto the activation and need activation quants in `-127..=127` (what
//! every Q8 quantizer produces). The VNNI variants need no precondition: signed weights are
//! biased by +128 into unsigned bytes and `128 * sum(a)` is subtracted, all in i32. The
//! difference from the scalar reference is only the order of the f32 additions, bounded in
//! `tests/legacy_kernels.rs`.
//!
//! Each kernel reads `min(w.len(), a.len())` blocks.

use std::arch::x86_64::*;

use half::f16;

use super::super::avx2::legacy as avx2;
use crate::formats::{
    BlockIQ4_NL, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, BlockQ8_1,
};

/// A pair of blocks' nibbles widened to 64 bytes in `0..=15`: byte `32 b + j` is element `j`
/// of block `b`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn unpack_nibbles2(q0: &[u8; 16], q1: &[u8; 16]) -> __m512i {
    let both = _mm256_inserti128_si256::<1>(
        _mm256_castsi128_si256(avx2::load_qs16(q0)),
        avx2::load_qs16(q1),
    );
    // 128-bit lanes [q0, q0, q1, q1], the odd ones shifted right by four.
    let z = _mm512_permutexvar_epi64(
        _mm512_set_epi64(3, 2, 3, 2, 1, 0, 1, 0),
        _mm512_castsi256_si512(both),
    );
    let shifted = _mm512_srlv_epi16(
        z,
        _mm512_set_epi64(
            0x0004_0004_0004_0004,
            0x0004_0004_0004_0004,
            0,
            0,
            0x0004_0004_0004_0004,
            0x0004_0004_0004_0004,
            0,
            0,
        ),
    );
    _mm512_and_si512(shifted, _mm512_set1_epi8(0x0F))
}

/// A pair of Q8 blocks' quants: block 0 in the low 256 bits.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn load_qs2(y0: &[i8; 32], y1: &[i8; 32]) -> __m512i {
    _mm512_inserti64x4::<1>(
        _mm512_castsi256_si512(avx2::load_qs32(y0)),
        avx2::load_qs32(y1),
    )
}

/// The fifth bits of a pair of Q5 blocks as a byte mask (bit `32 b + j`: element `j` of block
/// `b`).
#[inline]
fn fifth_bits2(qh0: &[u8; 4], qh1: &[u8; 4]) -> __mmask64 {
    u64::from(u32::from_le_bytes(*qh0)) | (u64::from(u32::from_le_bytes(*qh1)) << 32)
}

/// `d_w * d_a` of two blocks, in lanes 0 and 1 (each an f32 product of the f16 scales).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn scales2(dw0: f16, dw1: f16, da0: f16, da1: f16) -> __m128 {
    let w = i32::from(dw0.to_bits()) | (i32::from(dw1.to_bits()) << 16);
    let a = i32::from(da0.to_bits()) | (i32::from(da1.to_bits()) << 16);
    let f = _mm_cvtph_ps(_mm_set_epi32(0, 0, a, w)); // [dw0, dw1, da0, da1]
    _mm_mul_ps(f, _mm_movehl_ps(f, f)) // [dw0 da0, dw1 da1, ..]
}

/// `d_w * d_a` of four blocks, in lanes 0..4.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn scales4(dw: [f16; 4], da: [f16; 4]) -> __m128 {
    let pk = |a: f16, b: f16| i32::from(a.to_bits()) | (i32::from(b.to_bits()) << 16);
    let h = _mm_set_epi32(
        pk(da[2], da[3]),
        pk(da[0], da[1]),
        pk(dw[2], dw[3]),
        pk(dw[0], dw[1]),
    );
    let f = _mm256_cvtph_ps(h); // [dw0, dw1, dw2, dw3 | da0, da1, da2, da3]
    _mm_mul_ps(_mm256_castps256_ps128(f), _mm256_extractf128_ps::<1>(f))
}

/// Lane `I` of `p` in all eight lanes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn lane<const I: i32>(p: __m128) -> __m256 {
    _mm256_permutevar8x32_ps(_mm256_castps128_ps256(p), _mm256_set1_epi32(I))
}

/// `acc = fma(d_0, low half of q, acc)`, then `acc = fma(d_1, high half of q, acc)`, where
/// `d_0, d_1` are lanes `I, I + 1` of `p`: a block pair applied in block order.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn apply_pair<const I: i32, const J: i32>(p: __m128, q: __m512, acc: __m256) -> __m256 {
    let acc = _mm256_fmadd_ps(lane::<I>(p), _mm512_castps512_ps256(q), acc);
    _mm256_fmadd_ps(lane::<J>(p), _mm512_extractf32x8_ps::<1>(q), acc)
}

/// For the formats with a minimum: `d_w * d_a` of two blocks in lanes 0 and 2, and `summs`
/// with `fma(m_w, s_a, summs)` applied for block 0, then block 1 (lane 0).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn scales_and_mins2(w: [(f16, f16); 2], a: [(f16, f16); 2], summs: __m128) -> (__m128, __m128) {
    let pack = |(d, m): (f16, f16)| i32::from(d.to_bits()) | (i32::from(m.to_bits()) << 16);
    let h = _mm_set_epi32(pack(a[1]), pack(a[0]), pack(w[1]), pack(w[0]));
    let f = _mm256_cvtph_ps(h); // [dw0, mw0, dw1, mw1 | da0, sa0, da1, sa1]
    let (fw, fa) = (_mm256_castps256_ps128(f), _mm256_extractf128_ps::<1>(f));
    let p = _mm_mul_ps(fw, fa); // [dw0 da0, .., dw1 da1, ..]
    let (mw, sa) = (_mm_movehdup_ps(fw), _mm_movehdup_ps(fa)); // [mw0, mw0, mw1, mw1], ..
    let summs = _mm_fmadd_ss(mw, sa, summs);
    let summs = _mm_fmadd_ss(_mm_movehl_ps(mw, mw), _mm_movehl_ps(sa, sa), summs);
    (p, summs)
}

/// Sixteen exact partial sums of `sum_j (qx_j - off) * y_j` (unsigned `qx_j <= 31`), BW.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn dot_offset(qx: __m512i, y: __m512i, off: i8) -> __m512 {
    let p = _mm512_maddubs_epi16(qx, y);
    let c = _mm512_maddubs_epi16(_mm512_set1_epi8(off), y);
    _mm512_cvtepi32_ps(_mm512_madd_epi16(
        _mm512_sub_epi16(p, c),
        _mm512_set1_epi16(1),
    ))
}

/// Sixteen exact partial sums of `sum_j qx_j * y_j` (unsigned `qx_j <= 31`), BW.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn dot_unsigned(qx: __m512i, y: __m512i) -> __m512 {
    let p = _mm512_maddubs_epi16(qx, y);
    _mm512_cvtepi32_ps(_mm512_madd_epi16(p, _mm512_set1_epi16(1)))
}

/// Sixteen exact partial sums of `sum_j x_j * y_j` for signed bytes, BW; exact when no `y_j`
/// is -128.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) fn dot_signed(x: __m512i, y: __m512i) -> __m512 {
    let ax = _mm512_abs_epi8(x);
    let sy = _mm512_mask_sub_epi8(y, _mm512_movepi8_mask(x), _mm512_setzero_si512(), y);
    let p = _mm512_maddubs_epi16(ax, sy);
    _mm512_cvtepi32_ps(_mm512_madd_epi16(p, _mm512_set1_epi16(1)))
}

/// Sixteen exact partial sums of `sum_j (qx_j - off) * y_j` for unsigned bytes `qx_j` and any
/// `off <= 255`, VNNI.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
fn dot_offset_vnni(qx: __m512i, y: __m512i, off: u8) -> __m512 {
    let zero = _mm512_setzero_si512();
    let p = _mm512_dpbusd_epi32(zero, qx, y);
    let c = _mm512_dpbusd_epi32(zero, _mm512_set1_epi8(off as i8), y);
    _mm512_cvtepi32_ps(_mm512_sub_epi32(p, c))
}

/// Sixteen exact partial sums of `sum_j qx_j * y_j` for unsigned bytes `qx_j`, VNNI.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
fn dot_unsigned_vnni(qx: __m512i, y: __m512i) -> __m512 {
    _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), qx, y))
}

/// Generates the driver of weight format `$W` paired with Q8_0: `$pair` maps two weight blocks
/// and the pair of activation quants to sixteen partial sums, which are applied to one 8-lane
/// accumulator in block order. An odd last block is paired with a zero block whose half is
/// not applied.
macro_rules! pairs_q8_0 {
    ($W:ty, $w:expr, $a:expr, $pair:expr) => {{
        let (w, a) = ($w, $a);
        let n = w.len().min(a.len());
        let (w, a) = (&w[..n], &a[..n]);
        let mut acc = _mm256_setzero_ps();
        let (w4, a4) = (w.chunks_exact(4), a.chunks_exact(4));
        let (wr, ar) = (w4.remainder(), a4.remainder());
        for (x, y) in w4.zip(a4) {
            let p = scales4(
                [x[0].d, x[1].d, x[2].d, x[3].d],
                [y[0].d, y[1].d, y[2].d, y[3].d],
            );
            let q = $pair(&x[0], &x[1], load_qs2(&y[0].qs, &y[1].qs));
            acc = apply_pair::<0, 1>(p, q, acc);
            let q = $pair(&x[2], &x[3], load_qs2(&y[2].qs, &y[3].qs));
            acc = apply_pair::<2, 3>(p, q, acc);
        }
        if wr.len() >= 2 {
            let p = scales2(wr[0].d, wr[1].d, ar[0].d, ar[1].d);
            let q = $pair(&wr[0], &wr[1], load_qs2(&ar[0].qs, &ar[1].qs));
            acc = apply_pair::<0, 1>(p, q, acc);
        }
        if wr.len() % 2 == 1 {
            let i = wr.len() - 1;
            let z: $W = bytemuck::Zeroable::zeroed();
            let zq = [0i8; 32];
            let p = scales2(wr[i].d, z.d, ar[i].d, z.d);
            let q = $pair(&wr[i], &z, load_qs2(&ar[i].qs, &zq));
            acc = _mm256_fmadd_ps(lane::<0>(p), _mm512_castps512_ps256(q), acc);
        }
        avx2::hsum(acc)
    }};
}

/// Generates the driver of weight format `$W` with a minimum, paired with Q8_1, as
/// [`pairs_q8_0`]; the `m_w * s_a` terms are fused into a scalar sum in block order, added
/// last.
macro_rules! pairs_q8_1 {
    ($W:ty, $w:expr, $a:expr, $pair:expr) => {{
        let (w, a) = ($w, $a);
        let n = w.len().min(a.len());
        let (w, a) = (&w[..n], &a[..n]);
        let mut summs = _mm_setzero_ps();
        let mut acc = _mm256_setzero_ps();
        let (w2, a2) = (w.chunks_exact(2), a.chunks_exact(2));
        let (wr, ar) = (w2.remainder(), a2.remainder());
        for (x, y) in w2.zip(a2) {
            let (p, s) = scales_and_mins2(
                [(x[0].d, x[0].m), (x[1].d, x[1].m)],
                [(y[0].d, y[0].s), (y[1].d, y[1].s)],
                summs,
            );
            summs = s;
            let q = $pair(&x[0], &x[1], load_qs2(&y[0].qs, &y[1].qs));
            acc = apply_pair::<0, 2>(p, q, acc);
        }
        if let (Some(x), Some(y)) = (wr.first(), ar.first()) {
            let z: $W = bytemuck::Zeroable::zeroed();
            let zq = [0i8; 32];
            let (dw, mw) = f16_pair(x.d, x.m);
            let (da, sa) = f16_pair(y.d, y.s);
            summs = _mm_fmadd_ss(mw, sa, summs);
            let q = $pair(x, &z, load_qs2(&y.qs, &zq));
            let d = _mm256_broadcastss_ps(_mm_mul_ss(dw, da));
            acc = _mm256_fmadd_ps(d, _mm512_castps512_ps256(q), acc);
        }
        avx2::hsum(acc) + _mm_cvtss_f32(summs)
    }};
}

/// Two f16 values as f32, each in lane 0 of its own `__m128`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn f16_pair(a: f16, b: f16) -> (__m128, __m128) {
    let f = _mm_cvtph_ps(_mm_cvtsi32_si128(
        i32::from(a.to_bits()) | (i32::from(b.to_bits()) << 16),
    ));
    (f, _mm_movehdup_ps(f))
}

/// Generates the IQ4_NL driver in ggml's order for this format: blocks `2i` and `2i + 1` into
/// the low and high halves of one 512-bit accumulator (ggml's two 8-lane accumulators), their
/// sum reduced as `hsum_float_8`, then a last odd block added as the scalar `d * sumi`.
macro_rules! pairs_iq4_nl {
    ($w:expr, $a:expr, $pair:expr) => {{
        let (w, a) = ($w, $a);
        let n = w.len().min(a.len());
        let (w, a) = (&w[..n], &a[..n]);
        let mut acc = _mm512_setzero_ps();
        let (w2, a2) = (w.chunks_exact(2), a.chunks_exact(2));
        let (wr, ar) = (w2.remainder(), a2.remainder());
        for (x, y) in w2.zip(a2) {
            let p = scales2(x[0].d, x[1].d, y[0].d, y[1].d);
            let s = _mm512_insertf32x8::<1>(_mm512_castps256_ps512(lane::<0>(p)), lane::<1>(p));
            let q = $pair(&x[0], &x[1], load_qs2(&y[0].qs, &y[1].qs));
            acc = _mm512_fmadd_ps(s, q, acc);
        }
        let sum = avx2::hsum(_mm256_add_ps(
            _mm512_castps512_ps256(acc),
            _mm512_extractf32x8_ps::<1>(acc),
        ));
        match (wr.first(), ar.first()) {
            (Some(x), Some(y)) => {
                let z: BlockIQ4_NL = bytemuck::Zeroable::zeroed();
                let q = $pair(x, &z, load_qs2(&y.qs, &[0i8; 32]));
                // The block's integer sum: exact in f32 whatever the order (below 2^24).
                let sumi = avx2::hsum(_mm512_castps512_ps256(q));
                sum + x.d.to_f32() * y.d.to_f32() * sumi
            }
            _ => sum,
        }
    }};
}

// Four-row kernels: four weight rows against one activation row (whose block pairs are loaded
// once), each row with its own accumulator updated in exactly the single-row kernel's order, so
// each result is bit-identical to the single-row kernel's while the four FMA chains overlap.
// Each reads `min` over the four rows and the activation of their lengths in blocks, and
// prefetches each row `avx2::prefetch_distance` ahead (see there why).

/// Four rows of [`pairs_q8_0`]: the same operations per row, one accumulator per row.
macro_rules! pairs4_q8_0 {
    ($W:ty, $w:expr, $a:expr, $pair:expr) => {{
        let (w, a) = avx2::common($w, $a);
        let n = a.len();
        let dist = avx2::prefetch_distance(w[0]);
        let mut acc = [_mm256_setzero_ps(); 4];
        for i in 0..n / 2 {
            let (y0, y1) = (&a[2 * i], &a[2 * i + 1]);
            let y = load_qs2(&y0.qs, &y1.qs);
            for r in 0..4 {
                let (x0, x1) = (&w[r][2 * i], &w[r][2 * i + 1]);
                avx2::prefetch_ahead(x0, dist);
                avx2::prefetch_ahead(x1, dist);
                let p = scales2(x0.d, x1.d, y0.d, y1.d);
                acc[r] = apply_pair::<0, 1>(p, $pair(x0, x1, y), acc[r]);
            }
        }
        if n % 2 == 1 {
            let y = &a[n - 1];
            let z: $W = bytemuck::Zeroable::zeroed();
            let yq = load_qs2(&y.qs, &[0i8; 32]);
            for r in 0..4 {
                let x = &w[r][n - 1];
                let p = scales2(x.d, z.d, y.d, z.d);
                let q = $pair(x, &z, yq);
                acc[r] = _mm256_fmadd_ps(lane::<0>(p), _mm512_castps512_ps256(q), acc[r]);
            }
        }
        acc.map(|acc| avx2::hsum(acc))
    }};
}

/// The first four bytes of a block as an i32: for Q4_1, Q5_1 and Q8_1 the f16 pair
/// `(d, m)` / `(d, s)`, `d` in the low half.
#[inline]
fn head32<T: bytemuck::Pod>(x: &T) -> i32 {
    let b = bytemuck::bytes_of(x);
    i32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Four rows of [`pairs_q8_1`]: the same operations per row, one accumulator per row. The
/// float work of a block pair is done for the four rows together, with the roundings of
/// [`scales_and_mins2`]: 128-bit lane `r` of one vector holds row `r`'s `(d_0, m_0, d_1, m_1)`,
/// multiplied by the activation's `(d_0, s_0, d_1, s_1)` for the scales, and the minimum
/// terms are fused into row `r`'s sum (kept in element 1 of its lane) block 0 first, then
/// block 1, by two FMAs with a swap of elements 1 and 3 between them.
macro_rules! pairs4_q8_1 {
    ($W:ty, $w:expr, $a:expr, $pair:expr) => {{
        let (w, a) = avx2::common($w, $a);
        let n = a.len();
        let dist = avx2::prefetch_distance(w[0]);
        let mut acc = [_mm256_setzero_ps(); 4];
        // Element 1 of 128-bit lane r: row r's sum of the minimum terms.
        let mut summs4 = _mm512_setzero_ps();
        for i in 0..n / 2 {
            let (y0, y1) = (&a[2 * i], &a[2 * i + 1]);
            let y = load_qs2(&y0.qs, &y1.qs);
            let x: [[&$W; 2]; 4] = std::array::from_fn(|r| [&w[r][2 * i], &w[r][2 * i + 1]]);
            let h = |r: usize, b: usize| head32(x[r][b]);
            let wdm = _mm512_cvtph_ps(_mm256_set_epi32(
                h(3, 1),
                h(3, 0),
                h(2, 1),
                h(2, 0),
                h(1, 1),
                h(1, 0),
                h(0, 1),
                h(0, 0),
            ));
            let ya = _mm_cvtph_ps(_mm_set_epi32(0, 0, head32(y1), head32(y0)));
            let ya = _mm512_broadcast_f32x4(ya);
            let p = _mm512_mul_ps(wdm, ya);
            // Elements 1 and 3 of each lane swapped.
            const SWAP13: i32 = 0b01_10_11_00;
            let t = _mm512_fmadd_ps(wdm, ya, summs4);
            let t = _mm512_fmadd_ps(wdm, ya, _mm512_permute_ps::<SWAP13>(t));
            summs4 = _mm512_permute_ps::<SWAP13>(t);
            for r in 0..4 {
                avx2::prefetch_ahead(x[r][0], dist);
                avx2::prefetch_ahead(x[r][1], dist);
                let q = $pair(x[r][0], x[r][1], y);
                let d0 = _mm512_castps512_ps256(_mm512_permutexvar_ps(
                    _mm512_set1_epi32(4 * r as i32),
                    p,
                ));
                let d1 = _mm512_castps512_ps256(_mm512_permutexvar_ps(
                    _mm512_set1_epi32(4 * r as i32 + 2),
                    p,
                ));
                let acc_r = _mm256_fmadd_ps(d0, _mm512_castps512_ps256(q), acc[r]);
                acc[r] = _mm256_fmadd_ps(d1, _mm512_extractf32x8_ps::<1>(q), acc_r);
            }
        }
        let mut s16 = [0f32; 16];
        // SAFETY: `s16` is 16 writable f32; the store is unaligned.
        unsafe { _mm512_storeu_ps(s16.as_mut_ptr(), summs4) };
        let mut summs: [__m128; 4] = std::array::from_fn(|r| _mm_set_ss(s16[4 * r + 1]));
        if n % 2 == 1 {
            let y = &a[n - 1];
            let z: $W = bytemuck::Zeroable::zeroed();
            let yq = load_qs2(&y.qs, &[0i8; 32]);
            let (da, sa) = f16_pair(y.d, y.s);
            for r in 0..4 {
                let x = &w[r][n - 1];
                let (dw, mw) = f16_pair(x.d, x.m);
                summs[r] = _mm_fmadd_ss(mw, sa, summs[r]);
                let q = $pair(x, &z, yq);
                let d = _mm256_broadcastss_ps(_mm_mul_ss(dw, da));
                acc[r] = _mm256_fmadd_ps(d, _mm512_castps512_ps256(q), acc[r]);
            }
        }
        [0, 1, 2, 3].map(|r| avx2::hsum(acc[r]) + _mm_cvtss_f32(summs[r]))
    }};
}

/// Four rows of [`pairs_iq4_nl`]: the same operations per row, one 512-bit accumulator (ggml's
/// even and odd accumulators) per row.
macro_rules! pairs4_iq4_nl {
    ($w:expr, $a:expr, $pair:expr) => {{
        let (w, a) = avx2::common($w, $a);
        let n = a.len();
        let dist = avx2::prefetch_distance(w[0]);
        let mut acc = [_mm512_setzero_ps(); 4];
        for i in 0..n / 2 {
            let (y0, y1) = (&a[2 * i], &a[2 * i + 1]);
            let y = load_qs2(&y0.qs, &y1.qs);
            for r in 0..4 {
                let (x0, x1) = (&w[r][2 * i], &w[r][2 * i + 1]);
                avx2::prefetch_ahead(x0, dist);
                avx2::prefetch_ahead(x1, dist);
                let p = scales2(x0.d, x1.d, y0.d, y1.d);
                let s = _mm512_insertf32x8::<1>(_mm512_castps256_ps512(lane::<0>(p)), lane::<1>(p));
                acc[r] = _mm512_fmadd_ps(s, $pair(x0, x1, y), acc[r]);
            }
        }
        [0, 1, 2, 3].map(|r| {
            let sum = avx2::hsum(_mm256_add_ps(
                _mm512_castps512_ps256(acc[r]),
                _mm512_extractf32x8_ps::<1>(acc[r]),
            ));
            if n % 2 == 1 {
                let (x, y) = (&w[r][n - 1], &a[n - 1]);
                let z: BlockIQ4_NL = bytemuck::Zeroable::zeroed();
                let q = $pair(x, &z, load_qs2(&y.qs, &[0i8; 32]));
                // The block's integer sum: exact in f32 whatever the order (below 2^24).
                let sumi = avx2::hsum(_mm512_castps512_ps256(q));
                sum + x.d.to_f32() * y.d.to_f32() * sumi
            } else {
                sum
            }
        })
    }};
}

/// The Q4_0 quants of a block pair, in `0..=15` (the offset 8 is subtracted in the product).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn q4_0_pair(x0: &BlockQ4_0, x1: &BlockQ4_0) -> __m512i {
    unpack_nibbles2(&x0.qs, &x1.qs)
}

/// The Q5_0 / Q5_1 quants of a block pair, in `0..=31`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn q5_pair(qs: [&[u8; 16]; 2], qh: [&[u8; 4]; 2]) -> __m512i {
    let lo = unpack_nibbles2(qs[0], qs[1]);
    _mm512_mask_add_epi8(lo, fifth_bits2(qh[0], qh[1]), lo, _mm512_set1_epi8(0x10))
}

/// The IQ4_NL levels of a block pair, looked up in `table` (see [`iq4nl_table`]).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn iq4_nl_pair(x0: &BlockIQ4_NL, x1: &BlockIQ4_NL, table: __m512i) -> __m512i {
    _mm512_shuffle_epi8(table, unpack_nibbles2(&x0.qs, &x1.qs))
}

/// The IQ4_NL levels in every 128-bit lane, plus `bias` (wrapping).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn iq4nl_table(bias: i8) -> __m512i {
    let t = avx2::iq4nl_table();
    let t = _mm256_add_epi8(t, _mm256_set1_epi8(bias));
    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(t), t)
}

/// Q4_0·Q8_0, AVX-512 BW.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q4_0_q8_0(w: &[BlockQ4_0], a: &[BlockQ8_0]) -> f32 {
    let pair = |x0: &BlockQ4_0, x1: &BlockQ4_0, y: __m512i| dot_offset(q4_0_pair(x0, x1), y, 8);
    pairs_q8_0!(BlockQ4_0, w, a, pair)
}

/// Q4_0·Q8_0, AVX-512 VNNI.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL/VNNI, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q4_0_q8_0_vnni(w: &[BlockQ4_0], a: &[BlockQ8_0]) -> f32 {
    let pair =
        |x0: &BlockQ4_0, x1: &BlockQ4_0, y: __m512i| dot_offset_vnni(q4_0_pair(x0, x1), y, 8);
    pairs_q8_0!(BlockQ4_0, w, a, pair)
}

/// Q5_0·Q8_0, AVX-512 BW.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q5_0_q8_0(w: &[BlockQ5_0], a: &[BlockQ8_0]) -> f32 {
    let pair = |x0: &BlockQ5_0, x1: &BlockQ5_0, y: __m512i| {
        dot_offset(q5_pair([&x0.qs, &x1.qs], [&x0.qh, &x1.qh]), y, 16)
    };
    pairs_q8_0!(BlockQ5_0, w, a, pair)
}

/// Q5_0·Q8_0, AVX-512 VNNI.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL/VNNI, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q5_0_q8_0_vnni(w: &[BlockQ5_0], a: &[BlockQ8_0]) -> f32 {
    let pair = |x0: &BlockQ5_0, x1: &BlockQ5_0, y: __m512i| {
        dot_offset_vnni(q5_pair([&x0.qs, &x1.qs], [&x0.qh, &x1.qh]), y, 16)
    };
    pairs_q8_0!(BlockQ5_0, w, a, pair)
}

/// Q8_0·Q8_0, AVX-512 BW. Exact integer sums when the activation quants lie in `-127..=127`.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q8_0_q8_0(w: &[BlockQ8_0], a: &[BlockQ8_0]) -> f32 {
    let pair = |x0: &BlockQ8_0, x1: &BlockQ8_0, y: __m512i| dot_signed(load_qs2(&x0.qs, &x1.qs), y);
    pairs_q8_0!(BlockQ8_0, w, a, pair)
}

/// Q8_0·Q8_0, AVX-512 VNNI: `sum (x + 128) y - 128 sum y`, exact for all quants.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL/VNNI, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q8_0_q8_0_vnni(w: &[BlockQ8_0], a: &[BlockQ8_0]) -> f32 {
    let pair = |x0: &BlockQ8_0, x1: &BlockQ8_0, y: __m512i| {
        let biased = _mm512_xor_si512(load_qs2(&x0.qs, &x1.qs), _mm512_set1_epi8(i8::MIN));
        dot_offset_vnni(biased, y, 128)
    };
    pairs_q8_0!(BlockQ8_0, w, a, pair)
}

/// IQ4_NL·Q8_0, AVX-512 BW. Exact integer sums when the activation quants lie in
/// `-127..=127`.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_iq4_nl_q8_0(w: &[BlockIQ4_NL], a: &[BlockQ8_0]) -> f32 {
    let table = iq4nl_table(0);
    let pair =
        |x0: &BlockIQ4_NL, x1: &BlockIQ4_NL, y: __m512i| dot_signed(iq4_nl_pair(x0, x1, table), y);
    pairs_iq4_nl!(w, a, pair)
}

/// IQ4_NL·Q8_0, AVX-512 VNNI: the levels biased by +128 (`1..=241`, unsigned), then
/// `128 * sum(a)` subtracted; exact for all quants.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL/VNNI, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_iq4_nl_q8_0_vnni(w: &[BlockIQ4_NL], a: &[BlockQ8_0]) -> f32 {
    let table = iq4nl_table(i8::MIN);
    let pair = |x0: &BlockIQ4_NL, x1: &BlockIQ4_NL, y: __m512i| {
        dot_offset_vnni(iq4_nl_pair(x0, x1, table), y, 128)
    };
    pairs_iq4_nl!(w, a, pair)
}

/// Q4_1·Q8_1, AVX-512 BW.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q4_1_q8_1(w: &[BlockQ4_1], a: &[BlockQ8_1]) -> f32 {
    let pair = |x0: &BlockQ4_1, x1: &BlockQ4_1, y: __m512i| {
        dot_unsigned(unpack_nibbles2(&x0.qs, &x1.qs), y)
    };
    pairs_q8_1!(BlockQ4_1, w, a, pair)
}

/// Q4_1·Q8_1, AVX-512 VNNI.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL/VNNI, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q4_1_q8_1_vnni(w: &[BlockQ4_1], a: &[BlockQ8_1]) -> f32 {
    let pair = |x0: &BlockQ4_1, x1: &BlockQ4_1, y: __m512i| {
        dot_unsigned_vnni(unpack_nibbles2(&x0.qs, &x1.qs), y)
    };
    pairs_q8_1!(BlockQ4_1, w, a, pair)
}

/// Q5_1·Q8_1, AVX-512 BW.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q5_1_q8_1(w: &[BlockQ5_1], a: &[BlockQ8_1]) -> f32 {
    let pair = |x0: &BlockQ5_1, x1: &BlockQ5_1, y: __m512i| {
        dot_unsigned(q5_pair([&x0.qs, &x1.qs], [&x0.qh, &x1.qh]), y)
    };
    pairs_q8_1!(BlockQ5_1, w, a, pair)
}

/// Q5_1·Q8_1, AVX-512 VNNI.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL/VNNI, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q5_1_q8_1_vnni(w: &[BlockQ5_1], a: &[BlockQ8_1]) -> f32 {
    let pair = |x0: &BlockQ5_1, x1: &BlockQ5_1, y: __m512i| {
        dot_unsigned_vnni(q5_pair([&x0.qs, &x1.qs], [&x0.qh, &x1.qh]), y)
    };
    pairs_q8_1!(BlockQ5_1, w, a, pair)
}

/// Q4_0·Q8_0, AVX-512 BW, four rows; each as [`vec_dot_q4_0_q8_0`].
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_q4_0_q8_0(w: [&[BlockQ4_0]; 4], a: &[BlockQ8_0]) -> [f32; 4] {
    let pair = |x0: &BlockQ4_0, x1: &BlockQ4_0, y: __m512i| dot_offset(q4_0_pair(x0, x1), y, 8);
    pairs4_q8_0!(BlockQ4_0, w, a, pair)
}

/// Q4_0·Q8_0, AVX-512 VNNI, four rows; each as [`vec_dot_q4_0_q8_0_vnni`].
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL/VNNI, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_q4_0_q8_0_vnni(w: [&[BlockQ4_0]; 4], a: &[BlockQ8_0]) -> [f32; 4] {
    let pair =
        |x0: &BlockQ4_0, x1: &BlockQ4_0, y: __m512i| dot_offset_vnni(q4_0_pair(x0, x1), y, 8);
    pairs4_q8_0!(BlockQ4_0, w, a, pair)
}

/// Q5_0·Q8_0, AVX-512 BW, four rows; each as [`vec_dot_q5_0_q8_0`].
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_q5_0_q8_0(w: [&[BlockQ5_0]; 4], a: &[BlockQ8_0]) -> [f32; 4] {
    let pair = |x0: &BlockQ5_0, x1: &BlockQ5_0, y: __m512i| {
        dot_offset(q5_pair([&x0.qs, &x1.qs], [&x0.qh, &x1.qh]), y, 16)
    };
    pairs4_q8_0!(BlockQ5_0, w, a, pair)
}

/// Q5_0·Q8_0, AVX-512 VNNI, four rows; each as [`vec_dot_q5_0_q8_0_vnni`].
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL/VNNI, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_q5_0_q8_0_vnni(w: [&[BlockQ5_0]; 4], a: &[BlockQ8_0]) -> [f32; 4] {
    let pair = |x0: &BlockQ5_0, x1: &BlockQ5_0, y: __m512i| {
        dot_offset_vnni(q5_pair([&x0.qs, &x1.qs], [&x0.qh, &x1.qh]), y, 16)
    };
    pairs4_q8_0!(BlockQ5_0, w, a, pair)
}

/// Q8_0·Q8_0, AVX-512 BW, four rows; each as [`vec_dot_q8_0_q8_0`].
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_q8_0_q8_0(w: [&[BlockQ8_0]; 4], a: &[BlockQ8_0]) -> [f32; 4] {
    let pair = |x0: &BlockQ8_0, x1: &BlockQ8_0, y: __m512i| dot_signed(load_qs2(&x0.qs, &x1.qs), y);
    pairs4_q8_0!(BlockQ8_0, w, a, pair)
}

/// Q8_0·Q8_0, AVX-512 VNNI, four rows; each as [`vec_dot_q8_0_q8_0_vnni`].
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL/VNNI, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_q8_0_q8_0_vnni(w: [&[BlockQ8_0]; 4], a: &[BlockQ8_0]) -> [f32; 4] {
    let pair = |x0: &BlockQ8_0, x1: &BlockQ8_0, y: __m512i| {
        let biased = _mm512_xor_si512(load_qs2(&x0.qs, &x1.qs), _mm512_set1_epi8(i8::MIN));
        dot_offset_vnni(biased, y, 128)
    };
    pairs4_q8_0!(BlockQ8_0, w, a, pair)
}

/// IQ4_NL·Q8_0, AVX-512 BW, four rows; each as [`vec_dot_iq4_nl_q8_0`].
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_iq4_nl_q8_0(w: [&[BlockIQ4_NL]; 4], a: &[BlockQ8_0]) -> [f32; 4] {
    let table = iq4nl_table(0);
    let pair =
        |x0: &BlockIQ4_NL, x1: &BlockIQ4_NL, y: __m512i| dot_signed(iq4_nl_pair(x0, x1, table), y);
    pairs4_iq4_nl!(w, a, pair)
}

/// IQ4_NL·Q8_0, AVX-512 VNNI, four rows; each as [`vec_dot_iq4_nl_q8_0_vnni`].
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL/VNNI, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_iq4_nl_q8_0_vnni(
    w: [&[BlockIQ4_NL]; 4],
    a: &[BlockQ8_0],
) -> [f32; 4] {
    let table = iq4nl_table(i8::MIN);
    let pair = |x0: &BlockIQ4_NL, x1: &BlockIQ4_NL, y: __m512i| {
        dot_offset_vnni(iq4_nl_pair(x0, x1, table), y, 128)
    };
    pairs4_iq4_nl!(w, a, pair)
}

/// Q4_1·Q8_1, AVX-512 BW, four rows; each as [`vec_dot_q4_1_q8_1`].
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_q4_1_q8_1(w: [&[BlockQ4_1]; 4], a: &[BlockQ8_1]) -> [f32; 4] {
    let pair = |x0: &BlockQ4_1, x1: &BlockQ4_1, y: __m512i| {
        dot_unsigned(unpack_nibbles2(&x0.qs, &x1.qs), y)
    };
    pairs4_q8_1!(BlockQ4_1, w, a, pair)
}

/// Q4_1·Q8_1, AVX-512 VNNI, four rows; each as [`vec_dot_q4_1_q8_1_vnni`].
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL/VNNI, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_q4_1_q8_1_vnni(w: [&[BlockQ4_1]; 4], a: &[BlockQ8_1]) -> [f32; 4] {
    let pair = |x0: &BlockQ4_1, x1: &BlockQ4_1, y: __m512i| {
        dot_unsigned_vnni(unpack_nibbles2(&x0.qs, &x1.qs), y)
    };
    pairs4_q8_1!(BlockQ4_1, w, a, pair)
}

/// Q5_1·Q8_1, AVX-512 BW, four rows; each as [`vec_dot_q5_1_q8_1`].
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_q5_1_q8_1(w: [&[BlockQ5_1]; 4], a: &[BlockQ8_1]) -> [f32; 4] {
    let pair = |x0: &BlockQ5_1, x1: &BlockQ5_1, y: __m512i| {
        dot_unsigned(q5_pair([&x0.qs, &x1.qs], [&x0.qh, &x1.qh]), y)
    };
    pairs4_q8_1!(BlockQ5_1, w, a, pair)
}

/// Q5_1·Q8_1, AVX-512 VNNI, four rows; each as [`vec_dot_q5_1_q8_1_vnni`].
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL/VNNI, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_q5_1_q8_1_vnni(w: [&[BlockQ5_1]; 4], a: &[BlockQ8_1]) -> [f32; 4] {
    let pair = |x0: &BlockQ5_1, x1: &BlockQ5_1, y: __m512i| {
        dot_unsigned_vnni(q5_pair([&x0.qs, &x1.qs], [&x0.qh, &x1.qh]), y)
    };
    pairs4_q8_1!(BlockQ5_1, w, a, pair)
}
