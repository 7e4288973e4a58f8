//! Leaner four-row matrix-vector kernels for Q4_0, Q4_1, Q5_0 and Q8_0 (AVX-512 VNNI), used by
//! [`crate::matvec`] when decoding.
//!
//! Each row's result is bit-identical to the single-row kernels of `avx512::legacy` (and so to
//! ggml's x86 order): per row, one 8-lane f32 accumulator updated block by block in block
//! order by `acc = fma(d_w * d_a, q, acc)`, where lane `l` of `q` is the exact integer sum of
//! the products of elements `4l..4l + 4` of the block converted to f32; the Q4_1 minimum terms
//! fused into a scalar sum in block order (`s = fma(m_w, s_a, s)`), added after
//! `hsum_float_8`'s reduction. FMA works lane by lane, so it does not matter which register
//! holds an accumulator: here two rows share one 512-bit register (row `2p` in the low half,
//! row `2p + 1` in the high half), so one `vpdpbusd`, one conversion and one FMA advance two
//! rows by a block, against an activation block loaded once into both halves. The four-row
//! kernels of `avx512::legacy` spend two 256-bit FMAs, two broadcasts and an extraction per
//! row and block pair, and prefetch every block; these leave the prefetching to their caller
//! (`matvec` prefetches each task's weights 8 KiB ahead) and issue fewer instructions per
//! weight byte, which is what an instruction-bound product needs: SmolLM2's Q4_1 `ffn_gate`
//! products (30 x 1536 x 576) on one thread went from 23.7 to 29.5 GB/s
//! (`examples/decode_products.rs`, best of 30).
//!
//! `tests/matvec.rs` checks the products they compute bit for bit against `matmul`.

use std::arch::x86_64::*;

use half::f16;

use super::super::avx2::legacy::{common, hsum};
use crate::formats::{BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ8_0, BlockQ8_1};

/// The 16 quants of two rows' blocks widened to 64 bytes in `0..=15`: byte `32 r + j` is
/// element `j` of row `r`'s block (`j < 16`: low nibble of byte `j`; else the high nibble of
/// byte `j - 16`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(super) fn nibbles2(q0: &[u8; 16], q1: &[u8; 16]) -> __m512i {
    // SAFETY: both are 16 readable bytes; the loads are unaligned.
    let (a, b) = unsafe {
        (
            _mm_loadu_si128(q0.as_ptr().cast()),
            _mm_loadu_si128(q1.as_ptr().cast()),
        )
    };
    // 128-bit lanes [q0, q0, q1, q1], the odd ones shifted right by four.
    let both = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(a), b);
    let z = _mm512_permutexvar_epi64(
        _mm512_set_epi64(3, 2, 3, 2, 1, 0, 1, 0),
        _mm512_castsi256_si512(both),
    );
    let shifted = _mm512_srlv_epi64(z, _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0));
    _mm512_and_si512(shifted, _mm512_set1_epi8(0x0F))
}

/// An activation block's 32 quants in both 256-bit halves.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(super) fn act2(qs: &[i8; 32]) -> __m512i {
    // SAFETY: 32 readable bytes; the load is unaligned.
    let y = unsafe { _mm256_loadu_si256(qs.as_ptr().cast()) };
    _mm512_broadcast_i64x4(y)
}

/// The first four bytes of a block as an i32 (for Q4_1 and Q8_1 the f16 pair `(d, m)` /
/// `(d, s)`, `d` in the low half).
#[inline]
fn head32<T: bytemuck::Pod>(x: &T) -> i32 {
    let b = bytemuck::bytes_of(x);
    i32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Lane `i` of `p` in the low 256 bits, lane `j` in the high 256 bits.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
fn halves(p: __m512, i: i32, j: i32) -> __m512 {
    let idx = _mm512_inserti64x4::<1>(
        _mm512_castsi256_si512(_mm256_set1_epi32(i)),
        _mm256_set1_epi32(j),
    );
    _mm512_permutexvar_ps(idx, p)
}

/// The reductions of the two rows of a shared accumulator, in `hsum_float_8`'s order.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
fn hsum2(acc: __m512) -> [f32; 2] {
    [
        hsum(_mm512_castps512_ps256(acc)),
        hsum(_mm512_extractf32x8_ps::<1>(acc)),
    ]
}

/// Q4_1·Q8_1, four rows, AVX-512 VNNI; each result bit-identical to
/// `avx512::legacy::vec_dot_q4_1_q8_1_vnni` of that row. Reads the blocks common to the four
/// rows and the activation.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL/VNNI, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn rows4_q4_1_q8_1_vnni(w: [&[BlockQ4_1]; 4], a: &[BlockQ8_1]) -> [f32; 4] {
    let (w, a) = common(w, a);
    let n = a.len();
    let zero = _mm512_setzero_si512();
    // Rows 0 and 1, rows 2 and 3.
    let (mut acc01, mut acc23) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    // Element 1 of 128-bit lane r: row r's sum of the minimum terms.
    let mut summs4 = _mm512_setzero_ps();
    for i in 0..n / 2 {
        let (y0, y1) = (&a[2 * i], &a[2 * i + 1]);
        let x: [[&BlockQ4_1; 2]; 4] = std::array::from_fn(|r| [&w[r][2 * i], &w[r][2 * i + 1]]);
        let h = |r: usize, b: usize| head32(x[r][b]);
        // 128-bit lane r: row r's (d_0, m_0, d_1, m_1).
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
        // Every 128-bit lane: the activation's (d_0, s_0, d_1, s_1).
        let ya = _mm512_broadcast_f32x4(_mm_cvtph_ps(_mm_set_epi32(0, 0, head32(y1), head32(y0))));
        // Element 4r + 2b: row r's d_w * d_a of block b (one f32 product, as the single-row
        // kernel's `scales_and_mins2`).
        let p = _mm512_mul_ps(wdm, ya);
        // The minimum terms: element 1 of each lane fused with block 0's m_w * s_a, then
        // (elements 1 and 3 swapped) block 1's, then swapped back.
        const SWAP13: i32 = 0b01_10_11_00;
        let t = _mm512_fmadd_ps(wdm, ya, summs4);
        let t = _mm512_fmadd_ps(wdm, ya, _mm512_permute_ps::<SWAP13>(t));
        summs4 = _mm512_permute_ps::<SWAP13>(t);
        for (b, y) in [y0, y1].into_iter().enumerate() {
            let yy = act2(&y.qs);
            let b = b as i32;
            let q01 = nibbles2(&x[0][b as usize].qs, &x[1][b as usize].qs);
            let q23 = nibbles2(&x[2][b as usize].qs, &x[3][b as usize].qs);
            let s01 = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(zero, q01, yy));
            let s23 = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(zero, q23, yy));
            acc01 = _mm512_fmadd_ps(halves(p, 2 * b, 4 + 2 * b), s01, acc01);
            acc23 = _mm512_fmadd_ps(halves(p, 8 + 2 * b, 12 + 2 * b), s23, acc23);
        }
    }
    let mut s16 = [0f32; 16];
    // SAFETY: `s16` is 16 writable f32; the store is unaligned.
    unsafe { _mm512_storeu_ps(s16.as_mut_ptr(), summs4) };
    let mut summs: [__m128; 4] = std::array::from_fn(|r| _mm_set_ss(s16[4 * r + 1]));
    if n % 2 == 1 {
        let y = &a[n - 1];
        let yy = act2(&y.qs);
        let (da, sa) = f16_pair(y.d, y.s);
        let mut d = [_mm_setzero_ps(); 4];
        for (r, dr) in d.iter_mut().enumerate() {
            let x = &w[r][n - 1];
            let (dw, mw) = f16_pair(x.d, x.m);
            summs[r] = _mm_fmadd_ss(mw, sa, summs[r]);
            *dr = _mm_mul_ss(dw, da);
        }
        let last = |r0: usize| {
            let q = nibbles2(&w[r0][n - 1].qs, &w[r0 + 1][n - 1].qs);
            let s = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(zero, q, yy));
            let dd = _mm512_insertf32x8::<1>(
                _mm512_castps256_ps512(_mm256_broadcastss_ps(d[r0])),
                _mm256_broadcastss_ps(d[r0 + 1]),
            );
            (dd, s)
        };
        let (dd, s) = last(0);
        acc01 = _mm512_fmadd_ps(dd, s, acc01);
        let (dd, s) = last(2);
        acc23 = _mm512_fmadd_ps(dd, s, acc23);
    }
    let ([s0, s1], [s2, s3]) = (hsum2(acc01), hsum2(acc23));
    [
        s0 + _mm_cvtss_f32(summs[0]),
        s1 + _mm_cvtss_f32(summs[1]),
        s2 + _mm_cvtss_f32(summs[2]),
        s3 + _mm_cvtss_f32(summs[3]),
    ]
}

/// Two f16 values as f32, each in lane 0 of its own `__m128`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
fn f16_pair(a: f16, b: f16) -> (__m128, __m128) {
    let f = _mm_cvtph_ps(_mm_cvtsi32_si128(
        i32::from(a.to_bits()) | (i32::from(b.to_bits()) << 16),
    ));
    (f, _mm_movehdup_ps(f))
}

/// Generates the four-row kernel of a format whose blocks have one f16 scale `d`, paired with
/// Q8_0: `$quants` maps the same block of two rows to their 64 unsigned quants (row `2p` in the
/// low 256 bits), from which `$off * sum(a)` is subtracted per block, in i32, exactly (the
/// single-row kernels' `dot_offset_vnni`). Per row, as `avx512::legacy`'s `pairs_q8_0`: the
/// block's scale `d_w * d_a` (one f32 product) times the block's sums, fused into one 8-lane
/// accumulator in block order.
macro_rules! rows4_scaled {
    ($W:ty, $w:expr, $a:expr, $quants:expr, $off:expr) => {{
        let (w, a) = common($w, $a);
        let n = a.len();
        let zero = _mm512_setzero_si512();
        let offs = _mm512_set1_epi8($off as i8);
        let (mut acc01, mut acc23) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        let bits = |x: f16| i32::from(x.to_bits());
        let sums = |x0: &$W, x1: &$W, yy: __m512i, off: __m512i| {
            _mm512_cvtepi32_ps(_mm512_sub_epi32(
                _mm512_dpbusd_epi32(zero, $quants(x0, x1), yy),
                off,
            ))
        };
        for i in 0..n / 2 {
            let (y0, y1) = (&a[2 * i], &a[2 * i + 1]);
            let x: [[&$W; 2]; 4] = std::array::from_fn(|r| [&w[r][2 * i], &w[r][2 * i + 1]]);
            let pk = |r: usize| bits(x[r][0].d) | (bits(x[r][1].d) << 16);
            // Element 2r + b: row r's d_w of block b times the activation's d of block b
            // (one f32 product, as the single-row kernel's `scales2`).
            let wd = _mm256_cvtph_ps(_mm_set_epi32(pk(3), pk(2), pk(1), pk(0)));
            let ya = _mm256_cvtph_ps(_mm_set1_epi32(bits(y0.d) | (bits(y1.d) << 16)));
            let p = _mm512_castps256_ps512(_mm256_mul_ps(wd, ya));
            for (b, y) in [y0, y1].into_iter().enumerate() {
                let yy = act2(&y.qs);
                let off = _mm512_dpbusd_epi32(zero, offs, yy);
                let s01 = sums(x[0][b], x[1][b], yy, off);
                let s23 = sums(x[2][b], x[3][b], yy, off);
                let b = b as i32;
                acc01 = _mm512_fmadd_ps(halves(p, b, 2 + b), s01, acc01);
                acc23 = _mm512_fmadd_ps(halves(p, 4 + b, 6 + b), s23, acc23);
            }
        }
        if n % 2 == 1 {
            let y = &a[n - 1];
            let yy = act2(&y.qs);
            let off = _mm512_dpbusd_epi32(zero, offs, yy);
            let da = f16_pair(y.d, f16::ZERO).0;
            let d: [__m128; 4] =
                std::array::from_fn(|r| _mm_mul_ss(f16_pair(w[r][n - 1].d, f16::ZERO).0, da));
            let both = |r0: usize| {
                _mm512_insertf32x8::<1>(
                    _mm512_castps256_ps512(_mm256_broadcastss_ps(d[r0])),
                    _mm256_broadcastss_ps(d[r0 + 1]),
                )
            };
            let s01 = sums(&w[0][n - 1], &w[1][n - 1], yy, off);
            let s23 = sums(&w[2][n - 1], &w[3][n - 1], yy, off);
            acc01 = _mm512_fmadd_ps(both(0), s01, acc01);
            acc23 = _mm512_fmadd_ps(both(2), s23, acc23);
        }
        let ([s0, s1], [s2, s3]) = (hsum2(acc01), hsum2(acc23));
        [s0, s1, s2, s3]
    }};
}

/// Q4_0·Q8_0, four rows, AVX-512 VNNI; each result bit-identical to
/// `avx512::legacy::vec_dot_q4_0_q8_0_vnni` of that row (quants `0..=15`, offset 8). Reads
/// the blocks common to the four rows and the activation.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL/VNNI, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn rows4_q4_0_q8_0_vnni(w: [&[BlockQ4_0]; 4], a: &[BlockQ8_0]) -> [f32; 4] {
    let quants = |x0: &BlockQ4_0, x1: &BlockQ4_0| nibbles2(&x0.qs, &x1.qs);
    rows4_scaled!(BlockQ4_0, w, a, quants, 8u8)
}

/// Q5_0·Q8_0, four rows, AVX-512 VNNI; each result bit-identical to
/// `avx512::legacy::vec_dot_q5_0_q8_0_vnni` of that row (quants `0..=31`: the nibble plus 16
/// where the fifth bit is set; offset 16). Reads the blocks common to the four rows and the
/// activation.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL/VNNI, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn rows4_q5_0_q8_0_vnni(w: [&[BlockQ5_0]; 4], a: &[BlockQ8_0]) -> [f32; 4] {
    let quants = |x0: &BlockQ5_0, x1: &BlockQ5_0| {
        let lo = nibbles2(&x0.qs, &x1.qs);
        // Bit 32 r + j: the fifth bit of element j of row r's block.
        let high =
            u64::from(u32::from_le_bytes(x0.qh)) | (u64::from(u32::from_le_bytes(x1.qh)) << 32);
        _mm512_mask_add_epi8(lo, high, lo, _mm512_set1_epi8(0x10))
    };
    rows4_scaled!(BlockQ5_0, w, a, quants, 16u8)
}

/// Q8_0·Q8_0, four rows, AVX-512 VNNI; each result bit-identical to
/// `avx512::legacy::vec_dot_q8_0_q8_0_vnni` of that row (the signed quants biased by +128 into
/// unsigned bytes; offset 128). Reads the blocks common to the four rows and the activation.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL/VNNI, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn rows4_q8_0_q8_0_vnni(w: [&[BlockQ8_0]; 4], a: &[BlockQ8_0]) -> [f32; 4] {
    let quants = |x0: &BlockQ8_0, x1: &BlockQ8_0| {
        // SAFETY: each `qs` is 32 readable bytes; the loads are unaligned.
        let (q0, q1) = unsafe {
            (
                _mm256_loadu_si256(x0.qs.as_ptr().cast()),
                _mm256_loadu_si256(x1.qs.as_ptr().cast()),
            )
        };
        let both = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(q0), q1);
        _mm512_xor_si512(both, _mm512_set1_epi8(i8::MIN))
    };
    rows4_scaled!(BlockQ8_0, w, a, quants, 128u8)
}

/// A safe four-row Q4_1 kernel: only handed out by [`q4_1_rows4`] on a CPU that has the
/// features.
fn q4_1_checked(w: [&[BlockQ4_1]; 4], a: &[BlockQ8_1]) -> [f32; 4] {
    // SAFETY: this function is only reachable through `q4_1_rows4`, which returns it only
    // after `vnni_supported` confirmed every feature the kernel is compiled for.
    unsafe { rows4_q4_1_q8_1_vnni(w, a) }
}

/// A safe four-row Q4_0 kernel: only handed out by [`q4_0_rows4`] on a CPU that has the
/// features.
fn q4_0_checked(w: [&[BlockQ4_0]; 4], a: &[BlockQ8_0]) -> [f32; 4] {
    // SAFETY: as `q4_1_checked`, through `q4_0_rows4`.
    unsafe { rows4_q4_0_q8_0_vnni(w, a) }
}

/// A safe four-row Q5_0 kernel: only handed out by [`q5_0_rows4`] on a CPU that has the
/// features.
fn q5_0_checked(w: [&[BlockQ5_0]; 4], a: &[BlockQ8_0]) -> [f32; 4] {
    // SAFETY: as `q4_1_checked`, through `q5_0_rows4`.
    unsafe { rows4_q5_0_q8_0_vnni(w, a) }
}

/// A safe four-row Q8_0 kernel: only handed out by [`q8_0_rows4`] on a CPU that has the
/// features.
fn q8_0_checked(w: [&[BlockQ8_0]; 4], a: &[BlockQ8_0]) -> [f32; 4] {
    // SAFETY: as `q4_1_checked`, through `q8_0_rows4`.
    unsafe { rows4_q8_0_q8_0_vnni(w, a) }
}

fn vnni_supported() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512dq")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512vnni")
        && is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
}

/// A safe four-row kernel: four weight rows against one activation row.
pub(crate) type Rows4<W, A> = fn([&[W]; 4], &[A]) -> [f32; 4];

/// A four-row Q4_1·Q8_1 kernel bit-identical to the `avx512_vnni` kernel of `BlockQ4_1`, if
/// this CPU can run it.
pub(crate) fn q4_1_rows4() -> Option<Rows4<BlockQ4_1, BlockQ8_1>> {
    vnni_supported().then_some(q4_1_checked as Rows4<BlockQ4_1, BlockQ8_1>)
}

/// A four-row Q4_0·Q8_0 kernel bit-identical to the `avx512_vnni` kernel of `BlockQ4_0`, if
/// this CPU can run it.
pub(crate) fn q4_0_rows4() -> Option<Rows4<BlockQ4_0, BlockQ8_0>> {
    vnni_supported().then_some(q4_0_checked as Rows4<BlockQ4_0, BlockQ8_0>)
}

/// A four-row Q5_0·Q8_0 kernel bit-identical to the `avx512_vnni` kernel of `BlockQ5_0`, if
/// this CPU can run it.
pub(crate) fn q5_0_rows4() -> Option<Rows4<BlockQ5_0, BlockQ8_0>> {
    vnni_supported().then_some(q5_0_checked as Rows4<BlockQ5_0, BlockQ8_0>)
}

/// A four-row Q8_0·Q8_0 kernel bit-identical to the `avx512_vnni` kernel of `BlockQ8_0`, if
/// this CPU can run it.
pub(crate) fn q8_0_rows4() -> Option<Rows4<BlockQ8_0, BlockQ8_0>> {
    vnni_supported().then_some(q8_0_checked as Rows4<BlockQ8_0, BlockQ8_0>)
}
