//! AVX-512 kernels for the k-quant formats and IQ4_XS: their dot products with Q8_K.
//!
//! The same integer scheme as the AVX2 kernels (`simd::x86_64::avx2::kquant`, whose module
//! documentation states the bounds that keep every integer step exact), on 512-bit registers:
//! one register holds 64 weight quants, so the two nibbles (Q4_K, Q5_K), the two 32-element
//! rows sharing a byte of `ql` (Q6_K) or two 2-bit rows (Q3_K, Q2_K) are unpacked side by
//! side by per-half variable shifts (`vpsrlvw`/`vpsllvw`), and the sub-block scales are
//! spread per 256-bit half (Q4_K, Q5_K: `vpshufb`) or per 128-bit lane (Q6_K, Q3_K, Q2_K:
//! `vpermw`). A super-block's sixteen i32 lanes are folded to eight before the same f32
//! accumulation as the AVX2 kernels.
//!
//! `vpdpbusd` (VNNI) does not shorten these kernels: it sums four products into i32, after
//! which the per-sub-block scale still costs one `vpmaddwd` (or, for IQ4_XS, whose four-product
//! sums do not fit in i16, a `vpmulld`), the same count as `vpmaddubsw` followed by
//! `vpmaddwd`. Q8_K·Q8_K, which has no sub-block scales, uses it.
//!
//! Each kernel reads `min(w.len(), a.len())` super-blocks.

use std::arch::x86_64::*;

use crate::formats::q3_k::unpack_scales as q3k_scales;
use crate::formats::q8_k::BlockQ8_K;
use crate::formats::{BlockIQ4_XS, BlockQ2_K, BlockQ3_K, BlockQ4_K, BlockQ5_K, BlockQ6_K};
use crate::formats::{TILE_COLS, TILE_ROWS};
use crate::simd::x86_64::avx2::kquant::{
    at32, common4, f16_pair, halves_sum, hsum, k4_min_sums, k4_scales_mins, load, load16,
    load_bsums, prefetch_block, q4k_repack_order, q4k_scales4, scales16, sums4, transpose4,
};

/// An unaligned load of 64 bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn load64<T: Copy>(b: &[T; 64]) -> __m512i {
    const { assert!(std::mem::size_of::<T>() == 1) };
    // SAFETY: `b` is 64 readable bytes (one-byte elements, checked above); the load is
    // unaligned.
    unsafe { _mm512_loadu_si512(b.as_ptr().cast()) }
}

/// 64 elements starting at element `64 i` of `s`.
#[inline(always)]
fn at64<T>(s: &[T], i: usize) -> &[T; 64] {
    s[64 * i..64 * i + 64]
        .try_into()
        .unwrap_or_else(|_| unreachable!())
}

/// Sixteen i16 lanes with `lo` in the low half (lanes 0..16) and `hi` in the high half.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn halves16(lo: i16, hi: i16) -> __m512i {
    _mm512_inserti64x4::<1>(
        _mm512_castsi256_si512(_mm256_set1_epi16(lo)),
        _mm256_set1_epi16(hi),
    )
}

/// `vpermw` indices that fill 128-bit lane `k` (i16 lanes `8 k..8 k + 8`) with i16 lane
/// `first + k` of the source.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn lanes128(first: i16) -> __m512i {
    let mut idx = [0i16; 32];
    for (i, v) in idx.iter_mut().enumerate() {
        *v = first + (i / 8) as i16;
    }
    // SAFETY: `idx` is 64 readable bytes; the load is unaligned.
    unsafe { _mm512_loadu_si512(idx.as_ptr().cast()) }
}

/// A `vpshufb` control that fills the low 256 bits with i16 lane `lo` and the high 256 bits
/// with i16 lane `hi` of each 128-bit lane of its operand.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn pick16x4(lo: i16, hi: i16) -> __m512i {
    let c = |k: i16| (2 * k) | ((2 * k + 1) << 8);
    halves16(c(lo), c(hi))
}

/// The sum of the two 256-bit halves' i32 lanes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn fold(v: __m512i) -> __m256i {
    _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64::<1>(v))
}

/// One Q4_K·Q8_K super-block per pair of sub-blocks `j`, as `avx2::kquant::q4k_pairs` (the
/// same lanes; see there for the bounds): one 512-bit register per pair, the low nibbles in
/// its low half and the high nibbles in its high half, folded to eight lanes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn q4k_pairs(x: &BlockQ4_K, y: &BlockQ8_K, sm: __m128i) -> [__m256i; 4] {
    let m4 = _mm512_set1_epi8(0x0F);
    let shift = halves16(0, 4);
    let sc = _mm512_broadcast_i32x4(_mm_cvtepu8_epi16(sm));
    let mut out = [_mm256_setzero_si256(); 4];
    for (j, out) in out.iter_mut().enumerate() {
        let q4 = _mm512_broadcast_i64x4(load(at32(&x.qs, j)));
        let q = _mm512_and_si512(_mm512_srlv_epi16(q4, shift), m4);
        let s = _mm512_shuffle_epi8(sc, pick16x4(2 * j as i16, 2 * j as i16 + 1));
        let p = _mm512_maddubs_epi16(q, load64(at64(&y.qs, j)));
        *out = fold(_mm512_madd_epi16(p, s));
    }
    out
}

/// One Q4_K·Q8_K super-block (see `avx2::kquant::q4k_sums` for the lanes and bounds).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn q4k_sums(x: &BlockQ4_K, y: &BlockQ8_K, sm: __m128i) -> __m256i {
    let m4 = _mm512_set1_epi8(0x0F);
    let shift = halves16(0, 4);
    let sc = _mm512_broadcast_i32x4(_mm_cvtepu8_epi16(sm));
    let mut sumi = _mm512_setzero_si512();
    for j in 0..4 {
        let q4 = _mm512_broadcast_i64x4(load(at32(&x.qs, j)));
        let q = _mm512_and_si512(_mm512_srlv_epi16(q4, shift), m4);
        let s = _mm512_shuffle_epi8(sc, pick16x4(2 * j as i16, 2 * j as i16 + 1));
        let p = _mm512_maddubs_epi16(q, load64(at64(&y.qs, j)));
        sumi = _mm512_add_epi32(sumi, _mm512_madd_epi16(p, s));
    }
    fold(sumi)
}

/// Q4_K·Q8_K in the order of llama.cpp's `ggml_vec_dot_q4_K_q8_K` (see
/// `avx2::kquant::vec_dot_q4_k_q8_k`), for Q4_K tensors llama.cpp does not repack.
///
/// # Safety
/// The CPU must support AVX-512 F, BW, DQ and VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q4_k_q8_k(w: &[BlockQ4_K], a: &[BlockQ8_K]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    let mut acc_m = _mm_setzero_ps();
    for (x, y) in w.iter().zip(a) {
        let dd = _mm_mul_ps(f16_pair(x.d, x.dmin), _mm_set1_ps(y.d));
        let sm = k4_scales_mins(scales16(x));
        let mins = _mm_cvtepi32_ps(k4_min_sums(sm, y));
        acc_m = _mm_fnmadd_ps(_mm_permute_ps::<0b0101_0101>(dd), mins, acc_m);
        let sumi = q4k_sums(x, y, sm);
        acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(sumi), acc);
    }
    let m = _mm_add_ps(acc_m, _mm_movehl_ps(acc_m, acc_m));
    hsum(acc) + _mm_cvtss_f32(_mm_add_ss(m, _mm_movehdup_ps(m)))
}

/// Q4_K·Q8_K in the order of llama.cpp's repacked matrix-vector kernel (see
/// `avx2::kquant::vec_dot_q4_k_q8_k_gemv`).
///
/// # Safety
/// The CPU must support AVX-512 F, BW, DQ and VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q4_k_q8_k_gemv(w: &[BlockQ4_K], a: &[BlockQ8_K]) -> f32 {
    q4k_repack_order!(gemv, w, a, q4k_sums)
}

/// Four rows of [`vec_dot_q4_k_q8_k_gemv`], each bit-identical to it.
///
/// # Safety
/// The CPU must support AVX-512 F, BW, DQ and VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_q4_k_q8_k_gemv(w: [&[BlockQ4_K]; 4], a: &[BlockQ8_K]) -> [f32; 4] {
    q4k_repack_order!(gemv4, w, a, q4k_sums)
}

/// Q4_K·Q8_K in the order of llama.cpp's repacked matrix-matrix kernel (see
/// `avx2::kquant::vec_dot_q4_k_q8_k_gemm`).
///
/// # Safety
/// The CPU must support AVX-512 F, BW, DQ and VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q4_k_q8_k_gemm(w: &[BlockQ4_K], a: &[BlockQ8_K]) -> f32 {
    q4k_repack_order!(gemm, w, a, q4k_pairs)
}

/// Four rows of [`vec_dot_q4_k_q8_k_gemm`], each bit-identical to it.
///
/// # Safety
/// The CPU must support AVX-512 F, BW, DQ and VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_q4_k_q8_k_gemm(w: [&[BlockQ4_K]; 4], a: &[BlockQ8_K]) -> [f32; 4] {
    q4k_repack_order!(gemm4, w, a, q4k_pairs)
}

/// A GEMM tile ([`TILE_ROWS`] = 4 weight rows by [`TILE_COLS`] activation rows) in the order
/// of llama.cpp's repacked matrix-matrix kernel: `out[r][c]` is [`vec_dot_q4_k_q8_k_gemm`] of
/// `(w[r], a[c])`, by one call of the four-row kernel per activation row.
///
/// # Safety
/// The CPU must support AVX-512 F, BW, DQ and VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn tile_q4_k_q8_k_gemm(
    w: [&[BlockQ4_K]; TILE_ROWS],
    a: [&[BlockQ8_K]; TILE_COLS],
) -> [[f32; TILE_COLS]; TILE_ROWS] {
    const { assert!(TILE_ROWS == 4) };
    let mut out = [[0f32; TILE_COLS]; TILE_ROWS];
    for (c, a) in a.iter().enumerate() {
        // SAFETY: this function's own target features are those of the kernel.
        let v = unsafe { vec_dot4_q4_k_q8_k_gemm(w, a) };
        for (o, v) in out.iter_mut().zip(v) {
            o[c] = v;
        }
    }
    out
}

/// One Q5_K·Q8_K super-block (see `avx2::kquant::q5k_sums` for the bounds).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn q5k_sums(x: &BlockQ5_K, y: &BlockQ8_K, sm: __m128i) -> __m256i {
    let m4 = _mm512_set1_epi8(0x0F);
    let m16 = _mm512_set1_epi8(0x10);
    let shift = halves16(0, 4);
    let sc = _mm512_broadcast_i32x4(_mm_cvtepu8_epi16(sm));
    // The low half reads bit 2 j of qh, the high half bit 2 j + 1.
    let mut qh = _mm512_srlv_epi16(_mm512_broadcast_i64x4(load(&x.qh)), halves16(0, 1));
    let mut sumi = _mm512_setzero_si512();
    for j in 0..4 {
        let q4 = _mm512_broadcast_i64x4(load(at32(&x.qs, j)));
        let q = _mm512_or_si512(
            _mm512_and_si512(_mm512_srlv_epi16(q4, shift), m4),
            _mm512_and_si512(_mm512_slli_epi16::<4>(qh), m16),
        );
        qh = _mm512_srli_epi16::<2>(qh);
        let s = _mm512_shuffle_epi8(sc, pick16x4(2 * j as i16, 2 * j as i16 + 1));
        let p = _mm512_maddubs_epi16(q, load64(at64(&y.qs, j)));
        sumi = _mm512_add_epi32(sumi, _mm512_madd_epi16(p, s));
    }
    fold(sumi)
}

/// Q5_K·Q8_K in the order of llama.cpp's x86 `ggml_vec_dot_q5_K_q8_K` (see
/// [`crate::formats::q4_k::vec_dot_q5_k_ggml_x86`]).
///
/// # Safety
/// The CPU must support AVX-512 F, BW, DQ and VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q5_k_q8_k(w: &[BlockQ5_K], a: &[BlockQ8_K]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    let mut summs = _mm_setzero_ps();
    for (x, y) in w.iter().zip(a) {
        let dd = _mm_mul_ps(f16_pair(x.d, x.dmin), _mm_set1_ps(y.d));
        let sm = k4_scales_mins(scales16(x));
        // The minimum terms summed to one integer, then one scalar FMA (ggml's `summs`).
        let m = k4_min_sums(sm, y);
        let m = _mm_hadd_epi32(m, m);
        let m = _mm_cvtepi32_ps(_mm_hadd_epi32(m, m));
        summs = _mm_fnmadd_ss(_mm_movehdup_ps(dd), m, summs);
        let sumi = q5k_sums(x, y, sm);
        acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum(acc) + _mm_cvtss_f32(summs)
}

/// One Q6_K·Q8_K super-block (see `avx2::kquant::q6k_sums` for the bounds). Each half of
/// 128 elements is two registers: rows 0 and 1 (low nibbles of `ql[0..32]`, `ql[32..64]`
/// with bits 0-1 and 2-3 of `qh`) and rows 2 and 3 (high nibbles, bits 4-5 and 6-7).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn q6k_sums(x: &BlockQ6_K, y: &BlockQ8_K) -> __m256i {
    let m4 = _mm512_set1_epi8(0x0F);
    let m30 = _mm512_set1_epi8(0x30);
    let up = halves16(4, 2);
    let down = halves16(0, 2);
    let sc8 = load16(&x.scales);
    let sc16 = _mm256_cvtepi8_epi16(sc8);
    let sc = _mm512_castsi256_si512(sc16);
    let offset = _mm256_slli_epi32::<5>(_mm256_madd_epi16(sc16, load_bsums(y)));
    let mut sumi = _mm512_setzero_si512();
    for h in 0..2 {
        let ql = load64(at64(&x.ql, h));
        let qh = _mm512_broadcast_i64x4(load(at32(&x.qh, h)));
        let q01 = _mm512_or_si512(
            _mm512_and_si512(ql, m4),
            _mm512_and_si512(_mm512_sllv_epi16(qh, up), m30),
        );
        let q23 = _mm512_or_si512(
            _mm512_and_si512(_mm512_srli_epi16::<4>(ql), m4),
            _mm512_and_si512(_mm512_srlv_epi16(qh, down), m30),
        );
        let p01 = _mm512_maddubs_epi16(q01, load64(at64(&y.qs, 2 * h)));
        let p23 = _mm512_maddubs_epi16(q23, load64(at64(&y.qs, 2 * h + 1)));
        let s01 = _mm512_permutexvar_epi16(lanes128(8 * h as i16), sc);
        let s23 = _mm512_permutexvar_epi16(lanes128(8 * h as i16 + 4), sc);
        sumi = _mm512_add_epi32(sumi, _mm512_madd_epi16(p01, s01));
        sumi = _mm512_add_epi32(sumi, _mm512_madd_epi16(p23, s23));
    }
    _mm256_sub_epi32(fold(sumi), offset)
}

/// Q6_K·Q8_K.
///
/// # Safety
/// The CPU must support AVX-512 F, BW, DQ and VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q6_k_q8_k(w: &[BlockQ6_K], a: &[BlockQ8_K]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for (x, y) in w.iter().zip(a) {
        let d = _mm_cvtss_f32(f16_pair(x.d, x.d)) * y.d;
        let sumi = q6k_sums(x, y);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum(acc)
}

/// Q4_K·Q8_K in the order of llama.cpp's tiled k-quant matrix multiplication (see
/// [`crate::formats::q4_k::vec_dot_ggml_tiled`]), which it uses for batches of 8 or more
/// activation rows with Q4_K weights it does not repack: per super-block the lanes reduced to
/// the exact sums `I` and `M`, `r = fma(-dmin_w, M, f32(I) * d_w)`, `acc = fma(r, d_a, acc)`.
///
/// # Safety
/// The CPU must support AVX-512 F, BW, DQ and VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q4_k_q8_k_tiled(w: &[BlockQ4_K], a: &[BlockQ8_K]) -> f32 {
    let mut acc = _mm_setzero_ps();
    for (x, y) in w.iter().zip(a) {
        let sm = k4_scales_mins(scales16(x));
        let t = _mm_hadd_epi32(halves_sum(q4k_sums(x, y, sm)), k4_min_sums(sm, y));
        let f = _mm_cvtepi32_ps(_mm_hadd_epi32(t, t)); // [I, M, I, M]
        let dd = f16_pair(x.d, x.dmin); // [d, dmin, 0, 0]
        let r = _mm_fnmadd_ss(_mm_movehdup_ps(dd), _mm_movehdup_ps(f), _mm_mul_ss(f, dd));
        acc = _mm_fmadd_ss(r, _mm_set_ss(y.d), acc);
    }
    _mm_cvtss_f32(acc)
}

/// Four rows of [`vec_dot_q6_k_q8_k`], each bit-identical to it (its own eight-lane
/// accumulator, the same operations in the same order); the activation block is shared and
/// each row is prefetched four rows ahead, block by block.
///
/// # Safety
/// The CPU must support AVX-512 F, BW, DQ and VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_q6_k_q8_k(w: [&[BlockQ6_K]; 4], a: &[BlockQ8_K]) -> [f32; 4] {
    let ([w0, w1, w2, w3], a) = common4(w, a);
    let dist = 4 * std::mem::size_of_val(w0);
    let mut acc = [_mm256_setzero_ps(); 4];
    for (i, y) in a.iter().enumerate() {
        let x = [&w0[i], &w1[i], &w2[i], &w3[i]];
        for (acc, x) in acc.iter_mut().zip(x) {
            prefetch_block(x, dist);
            let d = _mm_cvtss_f32(f16_pair(x.d, x.d)) * y.d;
            let sumi = q6k_sums(x, y);
            *acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), *acc);
        }
    }
    [hsum(acc[0]), hsum(acc[1]), hsum(acc[2]), hsum(acc[3])]
}

/// Q6_K·Q8_K in the order of llama.cpp's tiled k-quant matrix multiplication (see
/// [`crate::formats::q6_k::vec_dot_ggml_tiled`]), which it uses for batches of 8 or more
/// activation rows: per super-block the lanes reduced to the exact sum `I`, then
/// `acc = fma(f32(I) * d_w, d_a, acc)`.
///
/// # Safety
/// The CPU must support AVX-512 F, BW, DQ and VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q6_k_q8_k_tiled(w: &[BlockQ6_K], a: &[BlockQ8_K]) -> f32 {
    let mut acc = _mm_setzero_ps();
    for (x, y) in w.iter().zip(a) {
        let s = halves_sum(q6k_sums(x, y));
        let s = _mm_hadd_epi32(s, s);
        let s = _mm_hadd_epi32(s, s);
        let r = _mm_mul_ss(_mm_cvtepi32_ps(s), f16_pair(x.d, x.d));
        acc = _mm_fmadd_ss(r, _mm_set_ss(y.d), acc);
    }
    _mm_cvtss_f32(acc)
}

/// Q8_K·Q8_K with VNNI: the weight quants are flipped to unsigned (`x + 128`) for `vpdpbusd`,
/// which sums four products straight into i32 (no intermediate i16, so exact for every input,
/// -128 included), and `128 * sum(y)` (also by `vpdpbusd`, of ones with `y`) is subtracted.
/// Per lane, `|sum (x + 128) y| <= 32 * 255 * 128`: exact in i32.
///
/// # Safety
/// The CPU must support AVX-512 F, BW, DQ, VL and VNNI, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q8_k_q8_k_vnni(w: &[BlockQ8_K], a: &[BlockQ8_K]) -> f32 {
    let flip = _mm512_set1_epi8(-128);
    let ones = _mm512_set1_epi8(1);
    let mut acc = _mm256_setzero_ps();
    for (x, y) in w.iter().zip(a) {
        let mut sumi = _mm512_setzero_si512();
        let mut ysum = _mm512_setzero_si512();
        for i in 0..4 {
            let yq = load64(at64(&y.qs, i));
            let xu = _mm512_xor_si512(load64(at64(&x.qs, i)), flip);
            sumi = _mm512_dpbusd_epi32(sumi, xu, yq);
            ysum = _mm512_dpbusd_epi32(ysum, ones, yq);
        }
        let sumi = _mm512_sub_epi32(sumi, _mm512_slli_epi32::<7>(ysum));
        let sumi = fold(sumi);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(x.d * y.d), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum(acc)
}

/// The eight i32 lanes of `sum_j sc16[j] * sum q * q8` over the 2-bit rows of Q2_K or Q3_K
/// (with Q3_K's high bits from `hmask`, as 4): each register holds two rows of 32 (one half
/// super-block's 32 `qs` bytes shifted by `2 r` per 256-bit half), whose four 128-bit lanes are
/// four consecutive sub-blocks. Pair sums are at most `2 * 7 * 128`, times a scale of
/// magnitude at most 32: exact.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn two_bit_sums(qs: &[u8; 64], hmask: Option<&[u8; 32]>, y: &BlockQ8_K, sc16: __m256i) -> __m256i {
    let m3 = _mm512_set1_epi8(3);
    let m4 = _mm512_set1_epi8(4);
    let sc = _mm512_castsi256_si512(sc16);
    let mut hm = hmask.map(|h| _mm512_srlv_epi16(_mm512_broadcast_i64x4(load(h)), halves16(0, 1)));
    let mut sumi = _mm512_setzero_si512();
    for h in 0..2 {
        let q2 = _mm512_broadcast_i64x4(load(at32(qs, h)));
        for p in 0..2 {
            let shift = halves16(4 * p as i16, 4 * p as i16 + 2);
            let mut q = _mm512_and_si512(_mm512_srlv_epi16(q2, shift), m3);
            if let Some(bits) = hm.as_mut() {
                q = _mm512_or_si512(q, _mm512_and_si512(_mm512_slli_epi16::<2>(*bits), m4));
                *bits = _mm512_srli_epi16::<2>(*bits);
            }
            let prod = _mm512_maddubs_epi16(q, load64(at64(&y.qs, 2 * h + p)));
            let s = _mm512_permutexvar_epi16(lanes128(8 * h as i16 + 4 * p as i16), sc);
            sumi = _mm512_add_epi32(sumi, _mm512_madd_epi16(prod, s));
        }
    }
    fold(sumi)
}

/// Q3_K·Q8_K: quants `low2 + 4 h` in `0..8` (see `avx2::kquant::vec_dot_q3_k_q8_k`), minus
/// `4 * sum_j (sc[j] - 32) * bsums[j]`.
///
/// # Safety
/// The CPU must support AVX-512 F, BW, DQ and VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q3_k_q8_k(w: &[BlockQ3_K], a: &[BlockQ8_K]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for (x, y) in w.iter().zip(a) {
        let d = _mm_cvtss_f32(f16_pair(x.d, x.d)) * y.d;
        let scales = q3k_scales(&x.scales);
        let sc16 = _mm256_cvtepi8_epi16(_mm_sub_epi8(load16(&scales), _mm_set1_epi8(32)));
        let offset = _mm256_slli_epi32::<2>(_mm256_madd_epi16(sc16, load_bsums(y)));
        let sumi = _mm256_sub_epi32(two_bit_sums(&x.qs, Some(&x.hmask), y, sc16), offset);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum(acc)
}

/// Q2_K·Q8_K: quants in `0..4` times the low-nibble scales, and the high-nibble mins times
/// `bsums`.
///
/// # Safety
/// The CPU must support AVX-512 F, BW, DQ and VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q2_k_q8_k(w: &[BlockQ2_K], a: &[BlockQ8_K]) -> f32 {
    let low4 = _mm_set1_epi8(0x0F);
    let mut acc = _mm256_setzero_ps();
    let mut acc_m = _mm256_setzero_ps();
    for (x, y) in w.iter().zip(a) {
        let dd = _mm_mul_ps(f16_pair(x.d, x.dmin), _mm_set1_ps(y.d));
        let packed = load16(&x.scales);
        let sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(packed, low4));
        let mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16::<4>(packed), low4));
        let mins = _mm256_madd_epi16(mn16, load_bsums(y));
        acc_m = _mm256_fnmadd_ps(
            _mm256_broadcastss_ps(_mm_movehdup_ps(dd)),
            _mm256_cvtepi32_ps(mins),
            acc_m,
        );
        let sumi = two_bit_sums(&x.qs, None, y, sc16);
        acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum(_mm256_add_ps(acc, acc_m))
}

/// IQ4_XS·Q8_K: two blocks of 32 per register, their 32 `qs` bytes spread to the lane order
/// `[lo(b0), hi(b0), lo(b1), hi(b1)]` (the element order of the Q8_K quants), looked up in the
/// IQ4_NL table by `vpshufb`. The signed products are formed as `|v| * (±q8)` (exact when no
/// activation quant is -128; pair sums at most `2 * 127 * 128`) and scaled by the blocks'
/// `ls - 32` in `vpmaddwd`.
///
/// # Safety
/// The CPU must support AVX-512 F, BW, DQ and VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_iq4_xs_q8_k(w: &[BlockIQ4_XS], a: &[BlockQ8_K]) -> f32 {
    let table = _mm512_broadcast_i32x4(load16(&crate::formats::iq4_nl::KVALUES_IQ4NL));
    let m4 = _mm512_set1_epi8(0x0F);
    let shift = _mm512_inserti64x4::<1>(
        _mm512_castsi256_si512(_mm256_set_m128i(_mm_set1_epi16(4), _mm_setzero_si128())),
        _mm256_set_m128i(_mm_set1_epi16(4), _mm_setzero_si128()),
    );
    let mut acc = _mm256_setzero_ps();
    for (x, y) in w.iter().zip(a) {
        let d = _mm_cvtss_f32(f16_pair(x.d, x.d)) * y.d;
        let sl = u32::from_le_bytes(x.scales_l);
        let sh = u32::from(x.scales_h);
        let ls =
            |ib: usize| ((((sl >> (4 * ib)) & 0xF) | (((sh >> (2 * ib)) & 3) << 4)) as i16) - 32;
        let mut sumi = _mm512_setzero_si512();
        for k in 0..4 {
            // [b0, b1] -> [b0, b0, b1, b1] by 128-bit lanes, then nibbles by lane.
            let q = _mm512_shuffle_i64x2::<0b0101_0000>(
                _mm512_castsi256_si512(load(at32(&x.qs, k))),
                _mm512_castsi256_si512(load(at32(&x.qs, k))),
            );
            let idx = _mm512_and_si512(_mm512_srlv_epi16(q, shift), m4);
            let v = _mm512_shuffle_epi8(table, idx);
            let neg = _mm512_movepi8_mask(v);
            let q8 = load64(at64(&y.qs, k));
            let q8s = _mm512_mask_sub_epi8(q8, neg, _mm512_setzero_si512(), q8);
            let p = _mm512_maddubs_epi16(_mm512_abs_epi8(v), q8s);
            let s = halves16(ls(2 * k), ls(2 * k + 1));
            sumi = _mm512_add_epi32(sumi, _mm512_madd_epi16(p, s));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(fold(sumi)), acc);
    }
    hsum(acc)
}
