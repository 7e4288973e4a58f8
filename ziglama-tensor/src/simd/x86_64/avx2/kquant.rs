//! AVX2 kernels for the k-quant formats and IQ4_XS: their dot products with Q8_K.
//!
//! Every kernel computes, per super-block, the exact integer sums of the scalar reference and
//! applies the block's float scales once. The weight quants are widened to one unsigned byte
//! each in the element order of the Q8_K quants, multiplied with them by `vpmaddubsw`
//! (pairs of products, summed into i16) and multiplied by the sub-block scale by `vpmaddwd`
//! (into i32). Formats whose quants are offset (Q3_K's `-4`, Q6_K's `-32`) use them unsigned
//! and subtract `offset * scale * bsum` per sub-block with one more `vpmaddwd` over Q8_K's
//! `bsums`; the minimums of Q2_K, Q4_K and Q5_K use `bsums` the same way. Every intermediate
//! is bounded far below the i16 and i32 limits (stated at each kernel), so the integer part is
//! exact for every input, except where noted for IQ4_XS and Q8_K.
//!
//! The i32 lanes of a super-block are converted to f32 and accumulated by one FMA with
//! `d_w * d_a`; the only differences from the scalar reference are that the integer sum is
//! rounded to f32 in eight parts instead of one, and the order of the f32 additions.
//! `tests/kquant_kernels.rs` bounds the difference.
//!
//! Q4_K and Q6_K go further: their kernels follow llama.cpp's x86 summation orders exactly
//! (the repacked `gemv`/`gemm` kernels and `ggml_vec_dot_q4_K_q8_K` for Q4_K,
//! `ggml_vec_dot_q6_K_q8_K` and the tiled matrix multiplication for Q6_K), each equal bit for
//! bit to a scalar model in `formats::q4_k` / `formats::q6_k` (see docs/kernels.md).
//!
//! IQ4_XS and Q8_K·Q8_K multiply signed weights by signed activations with `vpsignb`, which
//! cannot negate -128: they are exact when the activation quants lie in `-127..=127`, which is
//! what Q8_K's quantizer produces (`d = max / -127`, quants clamped to 127).
//!
//! Each kernel reads `min(w.len(), a.len())` super-blocks.

use std::arch::x86_64::*;

use crate::formats::q3_k::unpack_scales as q3k_scales;
use crate::formats::q8_k::BlockQ8_K;
use crate::formats::{BlockIQ4_XS, BlockQ2_K, BlockQ3_K, BlockQ4_K, BlockQ5_K, BlockQ6_K};
use crate::formats::{TILE_COLS, TILE_ROWS};

/// 32 bytes starting at byte `32 i` of `s`.
#[inline(always)]
pub(crate) fn at32<T>(s: &[T], i: usize) -> &[T; 32] {
    s[32 * i..32 * i + 32]
        .try_into()
        .unwrap_or_else(|_| unreachable!())
}

/// An unaligned load of 32 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn load<T: Copy>(b: &[T; 32]) -> __m256i {
    const { assert!(std::mem::size_of::<T>() == 1) };
    // SAFETY: `b` is 32 readable bytes (one-byte elements, checked above); the load is
    // unaligned.
    unsafe { _mm256_loadu_si256(b.as_ptr().cast()) }
}

/// An unaligned load of 16 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn load16<T: Copy>(b: &[T; 16]) -> __m128i {
    const { assert!(std::mem::size_of::<T>() == 1) };
    // SAFETY: `b` is 16 readable bytes (one-byte elements, checked above); the load is
    // unaligned.
    unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
}

/// Q8_K's sixteen `bsums` as i16 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn load_bsums(y: &BlockQ8_K) -> __m256i {
    // SAFETY: `bsums` is 16 i16, 32 readable bytes; the load is unaligned.
    unsafe { _mm256_loadu_si256(y.bsums.as_ptr().cast()) }
}

/// `[a, b]` of two f16 as f32 in lanes 0 and 1.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn f16_pair(a: half::f16, b: half::f16) -> __m128 {
    _mm_cvtph_ps(_mm_cvtsi32_si128(
        i32::from(a.to_bits()) | (i32::from(b.to_bits()) << 16),
    ))
}

/// A `vpshufb` control that fills the low 128 bits with i16 lane `lo` and the high 128 bits
/// with i16 lane `hi` of each 128-bit half of its operand.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn pick16(lo: i16, hi: i16) -> __m256i {
    let c = |k: i16| (2 * k) | ((2 * k + 1) << 8);
    _mm256_set_m128i(_mm_set1_epi16(c(hi)), _mm_set1_epi16(c(lo)))
}

/// The sum of the eight lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn hsum(v: __m256) -> f32 {
    let q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let d = _mm_add_ps(q, _mm_movehl_ps(q, q));
    _mm_cvtss_f32(_mm_add_ss(d, _mm_movehdup_ps(d)))
}

/// The 8 scales and 8 mins of Q4_K/Q5_K as one vector: bytes 0..8 scales, 8..16 mins (the
/// unpacking of [`crate::formats::q4_k::scale_min_k4`], four bytes per 32-bit lane). `b` is
/// the 12 packed bytes followed by 4 bytes that are ignored (the next field of the block).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn k4_scales_mins(b: &[u8; 16]) -> __m128i {
    // With u0, u1, u2 the three packed words:
    //   scales 0..4 = u0 & 0x3f..            scales 4..8 = (u2 & 0x0f..) | ((u0 >> 2) & 0x30..)
    //   mins 0..4   = u1 & 0x3f..            mins 4..8   = ((u2 >> 4) & 0x0f..) | ((u1 >> 2) & 0x30..)
    let v = load16(b);
    let low = _mm_shuffle_epi32::<0b10_01_10_00>(v); // [u0, u2, u1, u2]
    let high = _mm_shuffle_epi32::<0b01_00_00_00>(v); // [_, u0, _, u1]
    let low = _mm_and_si128(
        _mm_srlv_epi32(low, _mm_set_epi32(4, 0, 0, 0)),
        _mm_set_epi32(0x0f0f_0f0f, 0x3f3f_3f3f, 0x0f0f_0f0f, 0x3f3f_3f3f),
    );
    let high = _mm_and_si128(
        _mm_srli_epi32::<2>(high),
        _mm_set_epi32(0x3030_3030, 0, 0x3030_3030, 0),
    );
    _mm_or_si128(low, high)
}

/// The 12 packed scale bytes of a Q4_K or Q5_K block and the 4 bytes after them.
#[inline(always)]
pub(crate) fn scales16<B: bytemuck::Pod>(b: &B) -> &[u8; 16] {
    // Both blocks start with d and dmin (4 bytes), then the 12 scale bytes, then at least
    // 32 more bytes of quants.
    bytemuck::bytes_of(b)[4..20]
        .try_into()
        .unwrap_or_else(|_| unreachable!())
}

/// `sum_j mins[j] * (bsums[2 j] + bsums[2 j + 1])` of a Q4_K/Q5_K block in four i32 lanes.
/// `|bsums[2j] + bsums[2j+1]| <= 32 * 128`, `mins < 64`: far from the i16/i32 limits.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn k4_min_sums(sm: __m128i, y: &BlockQ8_K) -> __m128i {
    let bs = load_bsums(y);
    let pairs = _mm_hadd_epi16(
        _mm256_castsi256_si128(bs),
        _mm256_extracti128_si256::<1>(bs),
    );
    _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_unpackhi_epi64(sm, sm)), pairs)
}

/// One Q4_K·Q8_K super-block, per pair of sub-blocks `j` (64 elements): the eight i32 lanes
/// of `sc[2j] * sum q * q8` over sub-block `2 j` plus `sc[2j+1] * ...` over `2 j + 1`, lane `l`
/// holding the elements `64 j + 4 l..64 j + 4 l + 4` and `64 j + 32 + 4 l..`. Pair sums are at
/// most `2 * 15 * 128`, times a scale below 64: exact in i16 and i32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q4k_pairs(x: &BlockQ4_K, y: &BlockQ8_K, sm: __m128i) -> [__m256i; 4] {
    let m4 = _mm256_set1_epi8(0x0F);
    let sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
    let mut out = [_mm256_setzero_si256(); 4];
    for (j, out) in out.iter_mut().enumerate() {
        let q4 = load(at32(&x.qs, j));
        let lo = _mm256_and_si256(q4, m4);
        let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q4), m4);
        let s_lo = _mm256_shuffle_epi8(sc, pick16(2 * j as i16, 2 * j as i16));
        let s_hi = _mm256_shuffle_epi8(sc, pick16(2 * j as i16 + 1, 2 * j as i16 + 1));
        let p_lo = _mm256_maddubs_epi16(lo, load(at32(&y.qs, 2 * j)));
        let p_hi = _mm256_maddubs_epi16(hi, load(at32(&y.qs, 2 * j + 1)));
        *out = _mm256_add_epi32(_mm256_madd_epi16(p_lo, s_lo), _mm256_madd_epi16(p_hi, s_hi));
    }
    out
}

/// One Q4_K·Q8_K super-block: the eight i32 lanes of `sum_j sc[j] * sum q * q8`, lane `l`
/// holding the elements `i` with `(i % 32) / 4 == l` (ggml's `ggml_vec_dot_q4_K_q8_K` lanes).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q4k_sums(x: &BlockQ4_K, y: &BlockQ8_K, sm: __m128i) -> __m256i {
    let [p0, p1, p2, p3] = q4k_pairs(x, y, sm);
    _mm256_add_epi32(_mm256_add_epi32(p0, p1), _mm256_add_epi32(p2, p3))
}

/// Q4_K·Q8_K in the order of llama.cpp's `ggml_vec_dot_q4_K_q8_K` (x86; see
/// [`crate::formats::q4_k::vec_dot_ggml_x86`]), which it uses for Q4_K tensors it does not
/// repack: eight f32 lanes of `fma(d, lanes, acc)`, four of minimum terms.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q4_k_q8_k(w: &[BlockQ4_K], a: &[BlockQ8_K]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    let mut acc_m = _mm_setzero_ps();
    for (x, y) in w.iter().zip(a) {
        let dd = _mm_mul_ps(f16_pair(x.d, x.dmin), _mm_set1_ps(y.d)); // [d, dmin]
        let sm = k4_scales_mins(scales16(x));
        let mins = _mm_cvtepi32_ps(k4_min_sums(sm, y));
        acc_m = _mm_fnmadd_ps(_mm_permute_ps::<0b0101_0101>(dd), mins, acc_m);
        let sumi = q4k_sums(x, y, sm);
        acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(sumi), acc);
    }
    let m = _mm_add_ps(acc_m, _mm_movehl_ps(acc_m, acc_m));
    hsum(acc) + _mm_cvtss_f32(_mm_add_ss(m, _mm_movehdup_ps(m)))
}

/// The two 128-bit halves of `v` added: four i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn halves_sum(v: __m256i) -> __m128i {
    _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v))
}

/// `[sum a, sum b, sum c, sum d]` of four vectors of four i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn sums4(a: __m128i, b: __m128i, c: __m128i, d: __m128i) -> __m128i {
    _mm_hadd_epi32(_mm_hadd_epi32(a, b), _mm_hadd_epi32(c, d))
}

/// The 4x4 transpose of i32 lanes: lane `r` of output `k` is lane `k` of input `r`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn transpose4(v: [__m128i; 4]) -> [__m128i; 4] {
    let t0 = _mm_unpacklo_epi32(v[0], v[1]);
    let t1 = _mm_unpacklo_epi32(v[2], v[3]);
    let t2 = _mm_unpackhi_epi32(v[0], v[1]);
    let t3 = _mm_unpackhi_epi32(v[2], v[3]);
    [
        _mm_unpacklo_epi64(t0, t1),
        _mm_unpackhi_epi64(t0, t1),
        _mm_unpacklo_epi64(t2, t3),
        _mm_unpackhi_epi64(t2, t3),
    ]
}

/// `[d_w * d_a, dmin_w * d_a]` of four Q4_K blocks against one activation scale: lane `r` of
/// each is row `r`'s (the same roundings as the single-row kernels).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn q4k_scales4(x: [&BlockQ4_K; 4], d_a: f32) -> (__m128, __m128) {
    let b = |h: half::f16| h.to_bits() as i16;
    let h = _mm_setr_epi16(
        b(x[0].d),
        b(x[1].d),
        b(x[2].d),
        b(x[3].d),
        b(x[0].dmin),
        b(x[1].dmin),
        b(x[2].dmin),
        b(x[3].dmin),
    );
    let dd = _mm256_mul_ps(_mm256_cvtph_ps(h), _mm256_set1_ps(d_a));
    (_mm256_castps256_ps128(dd), _mm256_extractf128_ps::<1>(dd))
}

/// Prefetches into L1 the cache lines of the block `dist` bytes after `x` (one per 64 bytes;
/// successive blocks are back to back, so together they cover every line). A hint only: the
/// address may lie outside any allocation and the instruction never faults.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn prefetch_block<T>(x: &T, dist: usize) {
    let p = (x as *const T).cast::<i8>().wrapping_add(dist);
    for k in (0..std::mem::size_of::<T>()).step_by(64) {
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(k));
    }
}

/// The four rows cut to their common length in blocks (and the activation to it).
#[inline(always)]
pub(crate) fn common4<'a, W, A>(w: [&'a [W]; 4], a: &'a [A]) -> ([&'a [W]; 4], &'a [A]) {
    let n = w.iter().map(|r| r.len()).min().unwrap_or(0).min(a.len());
    (w.map(|r| &r[..n]), &a[..n])
}

/// Q4_K·Q8_K in a llama.cpp repacked-kernel order. `gemv`/`gemv4` take `$total`, which maps
/// a block, its activation and its unpacked scales to eight i32 lanes summing to the whole
/// super-block's integer sum, and make one FMA per super-block; `gemm`/`gemm4` take `$pairs`,
/// which maps them to the four pair-of-sub-block vectors of eight i32 lanes, and make one FMA
/// per pair of sub-blocks, in order. Lane 0 of the accumulator is `acc`, lane 1
/// `acc_min`; the result is `acc - acc_min`.
macro_rules! q4k_repack_order {
    (gemv, $w:expr, $a:expr, $total:ident) => {{
        let mut acc = _mm_setzero_ps();
        for (x, y) in $w.iter().zip($a) {
            let sm = k4_scales_mins(scales16(x));
            let t = _mm_hadd_epi32(halves_sum($total(x, y, sm)), k4_min_sums(sm, y));
            let t = _mm_hadd_epi32(t, t); // [I, M, I, M]
            let dd = _mm_mul_ps(f16_pair(x.d, x.dmin), _mm_set1_ps(y.d)); // [d, dmin, 0, 0]
            acc = _mm_fmadd_ps(_mm_cvtepi32_ps(t), dd, acc);
        }
        _mm_cvtss_f32(_mm_sub_ss(acc, _mm_movehdup_ps(acc)))
    }};
    (gemm, $w:expr, $a:expr, $pairs:ident) => {{
        let mut acc = _mm_setzero_ps();
        for (x, y) in $w.iter().zip($a) {
            let sm = k4_scales_mins(scales16(x));
            let [p0, p1, p2, p3] = $pairs(x, y, sm);
            let isum = sums4(
                halves_sum(p0),
                halves_sum(p1),
                halves_sum(p2),
                halves_sum(p3),
            );
            let imin = k4_min_sums(sm, y);
            let lo = _mm_cvtepi32_ps(_mm_unpacklo_epi32(isum, imin)); // [I0, M0, I1, M1]
            let hi = _mm_cvtepi32_ps(_mm_unpackhi_epi32(isum, imin)); // [I2, M2, I3, M3]
            let dd = _mm_mul_ps(f16_pair(x.d, x.dmin), _mm_set1_ps(y.d)); // [d, dmin, 0, 0]
            acc = _mm_fmadd_ps(lo, dd, acc);
            acc = _mm_fmadd_ps(_mm_movehl_ps(lo, lo), dd, acc);
            acc = _mm_fmadd_ps(hi, dd, acc);
            acc = _mm_fmadd_ps(_mm_movehl_ps(hi, hi), dd, acc);
        }
        _mm_cvtss_f32(_mm_sub_ss(acc, _mm_movehdup_ps(acc)))
    }};
    (gemv4, $w:expr, $a:expr, $total:ident) => {{
        let ([w0, w1, w2, w3], a) = common4($w, $a);
        let dist = 4 * std::mem::size_of_val(w0);
        let mut acc = _mm_setzero_ps();
        let mut acc_min = _mm_setzero_ps();
        for (i, y) in a.iter().enumerate() {
            let x = [&w0[i], &w1[i], &w2[i], &w3[i]];
            let mut s = [_mm_setzero_si128(); 4];
            let mut m = [_mm_setzero_si128(); 4];
            for r in 0..4 {
                prefetch_block(x[r], dist);
                let sm = k4_scales_mins(scales16(x[r]));
                s[r] = halves_sum($total(x[r], y, sm));
                m[r] = k4_min_sums(sm, y);
            }
            let (d, dmin) = q4k_scales4(x, y.d);
            acc = _mm_fmadd_ps(_mm_cvtepi32_ps(sums4(s[0], s[1], s[2], s[3])), d, acc);
            acc_min = _mm_fmadd_ps(
                _mm_cvtepi32_ps(sums4(m[0], m[1], m[2], m[3])),
                dmin,
                acc_min,
            );
        }
        let mut out = [0f32; 4];
        // SAFETY: `out` is four writable f32; the store is unaligned.
        unsafe { _mm_storeu_ps(out.as_mut_ptr(), _mm_sub_ps(acc, acc_min)) };
        out
    }};
    (gemm4, $w:expr, $a:expr, $pairs:ident) => {{
        let ([w0, w1, w2, w3], a) = common4($w, $a);
        let dist = 4 * std::mem::size_of_val(w0);
        let mut acc = _mm_setzero_ps();
        let mut acc_min = _mm_setzero_ps();
        for (i, y) in a.iter().enumerate() {
            let x = [&w0[i], &w1[i], &w2[i], &w3[i]];
            let mut s = [_mm_setzero_si128(); 4];
            let mut m = [_mm_setzero_si128(); 4];
            for r in 0..4 {
                prefetch_block(x[r], dist);
                let sm = k4_scales_mins(scales16(x[r]));
                let [p0, p1, p2, p3] = $pairs(x[r], y, sm);
                s[r] = sums4(
                    halves_sum(p0),
                    halves_sum(p1),
                    halves_sum(p2),
                    halves_sum(p3),
                );
                m[r] = k4_min_sums(sm, y);
            }
            let (d, dmin) = q4k_scales4(x, y.d);
            // Lane r of s[k] / m[k]: row r's pair k.
            let (s, m) = (transpose4(s), transpose4(m));
            for k in 0..4 {
                acc = _mm_fmadd_ps(_mm_cvtepi32_ps(s[k]), d, acc);
                acc_min = _mm_fmadd_ps(_mm_cvtepi32_ps(m[k]), dmin, acc_min);
            }
        }
        let mut out = [0f32; 4];
        // SAFETY: `out` is four writable f32; the store is unaligned.
        unsafe { _mm_storeu_ps(out.as_mut_ptr(), _mm_sub_ps(acc, acc_min)) };
        out
    }};
}
pub(crate) use q4k_repack_order;

/// Q4_K·Q8_K in the order of llama.cpp's repacked matrix-vector kernel
/// (`ggml_gemv_q4_K_8x8_q8_K`; see [`crate::formats::q4_k::vec_dot_ggml_gemv`]): per
/// super-block, the whole integer sum and minimum sum reduced from the lanes (exact) and
/// accumulated by one FMA each.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q4_k_q8_k_gemv(w: &[BlockQ4_K], a: &[BlockQ8_K]) -> f32 {
    q4k_repack_order!(gemv, w, a, q4k_sums)
}

/// Four rows of [`vec_dot_q4_k_q8_k_gemv`], each bit-identical to it: the four rows' sums
/// reduced together and accumulated in one vector (lane `r`: row `r`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_q4_k_q8_k_gemv(w: [&[BlockQ4_K]; 4], a: &[BlockQ8_K]) -> [f32; 4] {
    q4k_repack_order!(gemv4, w, a, q4k_sums)
}

/// Q4_K·Q8_K in the order of llama.cpp's repacked matrix-matrix kernel
/// (`ggml_gemm_q4_K_8x8_q8_K`; see [`crate::formats::q4_k::vec_dot_ggml_gemm`]): one FMA per
/// pair of sub-blocks.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q4_k_q8_k_gemm(w: &[BlockQ4_K], a: &[BlockQ8_K]) -> f32 {
    q4k_repack_order!(gemm, w, a, q4k_pairs)
}

/// Four rows of [`vec_dot_q4_k_q8_k_gemm`], each bit-identical to it.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_q4_k_q8_k_gemm(w: [&[BlockQ4_K]; 4], a: &[BlockQ8_K]) -> [f32; 4] {
    q4k_repack_order!(gemm4, w, a, q4k_pairs)
}

/// A GEMM tile ([`TILE_ROWS`] = 4 weight rows by [`TILE_COLS`] activation rows) in the order
/// of llama.cpp's repacked matrix-matrix kernel: `out[r][c]` is [`vec_dot_q4_k_q8_k_gemm`] of
/// `(w[r], a[c])`, by one call of the four-row kernel per activation row.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
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

/// One Q5_K·Q8_K super-block: as [`q4k_sums`] with the fifth bits (bit `2 j` of `qh` for the
/// low nibbles of pair `j`, bit `2 j + 1` for the high ones) added as 16. Pair sums are at
/// most `2 * 31 * 128`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q5k_sums(x: &BlockQ5_K, y: &BlockQ8_K, sm: __m128i) -> __m256i {
    let m4 = _mm256_set1_epi8(0x0F);
    let m16 = _mm256_set1_epi8(0x10);
    let sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
    let mut qh = load(&x.qh);
    let mut sumi = _mm256_setzero_si256();
    for j in 0..4 {
        let q4 = load(at32(&x.qs, j));
        let lo = _mm256_or_si256(
            _mm256_and_si256(q4, m4),
            _mm256_and_si256(_mm256_slli_epi16::<4>(qh), m16),
        );
        let hi = _mm256_or_si256(
            _mm256_and_si256(_mm256_srli_epi16::<4>(q4), m4),
            _mm256_and_si256(_mm256_slli_epi16::<3>(qh), m16),
        );
        qh = _mm256_srli_epi16::<2>(qh);
        let s_lo = _mm256_shuffle_epi8(sc, pick16(2 * j as i16, 2 * j as i16));
        let s_hi = _mm256_shuffle_epi8(sc, pick16(2 * j as i16 + 1, 2 * j as i16 + 1));
        let p_lo = _mm256_maddubs_epi16(lo, load(at32(&y.qs, 2 * j)));
        let p_hi = _mm256_maddubs_epi16(hi, load(at32(&y.qs, 2 * j + 1)));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p_lo, s_lo));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p_hi, s_hi));
    }
    sumi
}

/// Q5_K·Q8_K in the order of llama.cpp's x86 `ggml_vec_dot_q5_K_q8_K` (see
/// [`crate::formats::q4_k::vec_dot_q5_k_ggml_x86`]).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
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

/// One Q6_K·Q8_K super-block: the eight i32 lanes of `sum_j sc[j] * sum (q - 32) * q8`.
/// The unsigned quants (`0..64`) give pair sums of at most `2 * 63 * 128`, times a scale of
/// magnitude at most 128: exact. The offset is applied as `32 * sum_j sc[j] * bsums[j]`
/// (`|bsums| <= 16 * 128`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q6k_sums(x: &BlockQ6_K, y: &BlockQ8_K) -> __m256i {
    let m4 = _mm256_set1_epi8(0x0F);
    let m30 = _mm256_set1_epi8(0x30);
    let sc = load16(&x.scales);
    let offset = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc), load_bsums(y));
    let mut sumi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32::<5>(offset));
    for h in 0..2 {
        let sc_h = if h == 0 { sc } else { _mm_srli_si128::<8>(sc) };
        let sc16 = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(sc_h));
        let ql0 = load(at32(&x.ql, 2 * h));
        let ql1 = load(at32(&x.ql, 2 * h + 1));
        let qh = load(at32(&x.qh, h));
        let q = [
            _mm256_or_si256(
                _mm256_and_si256(ql0, m4),
                _mm256_and_si256(_mm256_slli_epi16::<4>(qh), m30),
            ),
            _mm256_or_si256(
                _mm256_and_si256(ql1, m4),
                _mm256_and_si256(_mm256_slli_epi16::<2>(qh), m30),
            ),
            _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16::<4>(ql0), m4),
                _mm256_and_si256(qh, m30),
            ),
            _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16::<4>(ql1), m4),
                _mm256_and_si256(_mm256_srli_epi16::<2>(qh), m30),
            ),
        ];
        for (r, &q) in q.iter().enumerate() {
            let p = _mm256_maddubs_epi16(q, load(at32(&y.qs, 4 * h + r)));
            let s = _mm256_shuffle_epi8(sc16, pick16(2 * r as i16, 2 * r as i16 + 1));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, s));
        }
    }
    sumi
}

/// Q6_K·Q8_K.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q6_k_q8_k(w: &[BlockQ6_K], a: &[BlockQ8_K]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for (x, y) in w.iter().zip(a) {
        let d = _mm_cvtss_f32(f16_pair(x.d, x.d)) * y.d;
        let sumi = q6k_sums(x, y);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum(acc)
}

/// Q3_K·Q8_K: quants `q' = low2 + 4 h` in `0..8` (so `q = q' - 4`), their sub-block sums
/// times `sc - 32` (magnitude at most 32; pair sums at most `2 * 7 * 128`), minus
/// `4 * sum_j (sc[j] - 32) * bsums[j]`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q3_k_q8_k(w: &[BlockQ3_K], a: &[BlockQ8_K]) -> f32 {
    let m3 = _mm256_set1_epi8(3);
    let m4 = _mm256_set1_epi8(4);
    let mut acc = _mm256_setzero_ps();
    for (x, y) in w.iter().zip(a) {
        let d = _mm_cvtss_f32(f16_pair(x.d, x.d)) * y.d;
        let scales = q3k_scales(&x.scales);
        let sc = _mm_sub_epi8(load16(&scales), _mm_set1_epi8(32));
        let offset = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc), load_bsums(y));
        let mut sumi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32::<2>(offset));
        let mut hm = load(&x.hmask);
        for h in 0..2 {
            let sc_h = if h == 0 { sc } else { _mm_srli_si128::<8>(sc) };
            let sc16 = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(sc_h));
            let mut qs = load(at32(&x.qs, h));
            for r in 0..4 {
                let q = _mm256_or_si256(
                    _mm256_and_si256(qs, m3),
                    _mm256_and_si256(_mm256_slli_epi16::<2>(hm), m4),
                );
                qs = _mm256_srli_epi16::<2>(qs);
                hm = _mm256_srli_epi16::<1>(hm);
                let p = _mm256_maddubs_epi16(q, load(at32(&y.qs, 4 * h + r)));
                let s = _mm256_shuffle_epi8(sc16, pick16(2 * r as i16, 2 * r as i16 + 1));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, s));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum(acc)
}

/// Q2_K·Q8_K: quants in `0..4` times the low-nibble scales (pair sums at most `2 * 3 * 128`),
/// and the high-nibble mins times `bsums`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q2_k_q8_k(w: &[BlockQ2_K], a: &[BlockQ8_K]) -> f32 {
    let m3 = _mm256_set1_epi8(3);
    let low4 = _mm_set1_epi8(0x0F);
    let mut acc = _mm256_setzero_ps();
    let mut acc_m = _mm256_setzero_ps();
    for (x, y) in w.iter().zip(a) {
        let dd = _mm_mul_ps(f16_pair(x.d, x.dmin), _mm_set1_ps(y.d));
        let packed = load16(&x.scales);
        let sc = _mm_and_si128(packed, low4);
        let mn = _mm_and_si128(_mm_srli_epi16::<4>(packed), low4);
        let mins = _mm256_madd_epi16(_mm256_cvtepu8_epi16(mn), load_bsums(y));
        acc_m = _mm256_fnmadd_ps(
            _mm256_broadcastss_ps(_mm_movehdup_ps(dd)),
            _mm256_cvtepi32_ps(mins),
            acc_m,
        );
        let mut sumi = _mm256_setzero_si256();
        for h in 0..2 {
            let sc_h = if h == 0 { sc } else { _mm_srli_si128::<8>(sc) };
            let sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sc_h));
            let mut qs = load(at32(&x.qs, h));
            for r in 0..4 {
                let q = _mm256_and_si256(qs, m3);
                qs = _mm256_srli_epi16::<2>(qs);
                let p = _mm256_maddubs_epi16(q, load(at32(&y.qs, 4 * h + r)));
                let s = _mm256_shuffle_epi8(sc16, pick16(2 * r as i16, 2 * r as i16 + 1));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, s));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum(_mm256_add_ps(acc, acc_m))
}

/// `|x| * sign(y, x)`: signed byte products summed in pairs into sixteen i16 lanes. Exact
/// when no `y` is -128 (pair sums at most `2 * 128 * 127`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn pairs_signed(x: __m256i, y: __m256i) -> __m256i {
    _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x))
}

/// IQ4_XS·Q8_K: the nibbles index the IQ4_NL table by `vpshufb`; the signed products (see
/// [`pairs_signed`]) are multiplied by the block scale `ls - 32` in `vpmaddwd` (magnitude at
/// most `32 * 2 * 32512`: exact in i32) and the super-block sum scaled by `d * d8`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_iq4_xs_q8_k(w: &[BlockIQ4_XS], a: &[BlockQ8_K]) -> f32 {
    let table = _mm256_broadcastsi128_si256(load16(&crate::formats::iq4_nl::KVALUES_IQ4NL));
    let m4 = _mm_set1_epi8(0x0F);
    let mut acc = _mm256_setzero_ps();
    for (x, y) in w.iter().zip(a) {
        let d = _mm_cvtss_f32(f16_pair(x.d, x.d)) * y.d;
        let sl = u32::from_le_bytes(x.scales_l);
        let sh = u32::from(x.scales_h);
        let mut sumi = _mm256_setzero_si256();
        for ib in 0..8 {
            let ls = ((sl >> (4 * ib)) & 0xF) | (((sh >> (2 * ib)) & 3) << 4);
            let q = load16(
                x.qs[16 * ib..16 * ib + 16]
                    .try_into()
                    .unwrap_or_else(|_| unreachable!()),
            );
            let idx = _mm256_set_m128i(
                _mm_and_si128(_mm_srli_epi16::<4>(q), m4),
                _mm_and_si128(q, m4),
            );
            let v = _mm256_shuffle_epi8(table, idx);
            let p = pairs_signed(v, load(at32(&y.qs, ib)));
            let s = _mm256_set1_epi16(ls as i16 - 32);
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, s));
        }
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
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
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
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
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
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
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

/// Q8_K·Q8_K: signed products summed exactly into i32 (see [`pairs_signed`]), scaled by
/// `d_w * d_a`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q8_k_q8_k(w: &[BlockQ8_K], a: &[BlockQ8_K]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for (x, y) in w.iter().zip(a) {
        let mut sumi = _mm256_setzero_si256();
        for i in 0..8 {
            let p = pairs_signed(load(at32(&x.qs, i)), load(at32(&y.qs, i)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(x.d * y.d), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum(acc)
}

/// ggml's `quantize_row_q8_K_ref`, bit for bit, eight values at a time: the scale comes from
/// the first value of largest magnitude (as the reference's strict `>` search picks it; NaNs
/// are skipped by both), quants are rounded by the same magic-number trick as
/// [`crate::formats::q8_k`]'s `nearest_int` (integer operations on the float bits, so even
/// infinities and NaNs give the reference's values), clamped to 127 and truncated to bytes
/// as the reference's `int8_t` store does; `bsums` by `vpsadbw`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn quantize_q8_k(x: &[f32], out: &mut [BlockQ8_K]) {
    for (b, x) in out.iter_mut().zip(x.chunks_exact(256)) {
        let x: &[f32; 256] = x.try_into().unwrap_or_else(|_| unreachable!());
        let load8 = |c: usize| {
            let c: &[f32; 8] = x[8 * c..8 * c + 8]
                .try_into()
                .unwrap_or_else(|_| unreachable!());
            // SAFETY: `c` is 8 readable f32; the load is unaligned.
            unsafe { _mm256_loadu_ps(c.as_ptr()) }
        };
        let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
        // max_ps(v, m) returns m when v is NaN, so NaNs never become the maximum.
        let mut m = _mm256_setzero_ps();
        for c in 0..32 {
            m = _mm256_max_ps(_mm256_and_ps(load8(c), abs_mask), m);
        }
        let m = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps::<1>(m));
        let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        let amax = _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
        if amax == 0.0 {
            b.d = 0.0;
            b.qs = [0; 256];
            b.bsums = [0; 16];
            continue;
        }
        let target = _mm256_set1_ps(amax);
        let mut max = amax;
        for c in 0..32 {
            let eq = _mm256_cmp_ps::<_CMP_EQ_OQ>(_mm256_and_ps(load8(c), abs_mask), target);
            let bits = _mm256_movemask_ps(eq);
            if bits != 0 {
                max = x[8 * c + bits.trailing_zeros() as usize];
                break;
            }
        }
        let iscale = -127.0 / max;
        let vscale = _mm256_set1_ps(iscale);
        let magic = _mm256_set1_ps(12582912.0);
        let mantissa = _mm256_set1_epi32(0x007f_ffff);
        let bias = _mm256_set1_epi32(0x0040_0000);
        let top = _mm256_set1_epi32(127);
        // Byte 0 of each i32 to bytes 0..4 of its 128-bit lane, then both lanes' first
        // dwords together.
        let low_bytes = _mm256_set1_epi32(0x0c08_0400);
        let gather = _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1);
        for c in 0..32 {
            let v = _mm256_add_ps(_mm256_mul_ps(load8(c), vscale), magic);
            let i = _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(v), mantissa), bias);
            let i = _mm256_min_epi32(i, top);
            let bytes = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(i, low_bytes), gather);
            let q: &mut [i8; 8] = (&mut b.qs[8 * c..8 * c + 8])
                .try_into()
                .unwrap_or_else(|_| unreachable!());
            // SAFETY: `q` is 8 writable bytes; the store is unaligned.
            unsafe { _mm_storel_epi64(q.as_mut_ptr().cast(), _mm256_castsi256_si128(bytes)) };
        }
        let flip = _mm256_set1_epi8(-128);
        for k in 0..8 {
            // Sums of 8 bytes (flipped to unsigned, so each sum is 8 * 128 too large).
            let u = _mm256_xor_si256(load(at32(&b.qs, k)), flip);
            let s = _mm256_sad_epu8(u, _mm256_setzero_si256());
            let lo = _mm256_castsi256_si128(s);
            let hi = _mm256_extracti128_si256::<1>(s);
            let s0 = _mm_cvtsi128_si32(lo) + _mm_extract_epi32::<2>(lo) - 2048;
            let s1 = _mm_cvtsi128_si32(hi) + _mm_extract_epi32::<2>(hi) - 2048;
            b.bsums[2 * k] = s0 as i16;
            b.bsums[2 * k + 1] = s1 as i16;
        }
        b.d = 1.0 / iscale;
    }
}
