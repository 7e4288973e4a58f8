//! AVX2 kernels for the legacy formats: Q4_0·Q8_0, Q4_1·Q8_1, Q5_0·Q8_0, Q5_1·Q8_1,
//! Q8_0·Q8_0 and IQ4_NL·Q8_0 dot products.
//!
//! One 32-element block fills one 256-bit register: the weight quants are widened to one byte
//! each (low nibbles in the low 128 bits, high nibbles in the high 128 bits, which is exactly
//! the order of the activation block's 32 bytes), multiplied with the activation bytes by
//! `vpmaddubsw` and summed in pairs by `vpmaddwd`, giving eight exact i32 partial sums of the
//! block, lane `l` holding the products of elements `4l..4l + 4`. Those are converted to f32
//! (exact: each is below 2^24 in magnitude).
//!
//! # ggml's order of the f32 operations
//!
//! The float arithmetic on top is, operation for operation, that of ggml's AVX2
//! `ggml_vec_dot_*` (what llama.cpp's CPU backend runs on x86 with AVX2, and on AVX-512
//! machines too: these functions have no AVX-512 path), so that matrix products, and with them
//! a model's logits, equal llama.cpp's bit for bit:
//!
//! - per block, the scale `d = f32(d_w) * f32(d_a)`, rounded to f32;
//! - ONE 8-lane accumulator, updated in block order: `acc = fma(d, partial sums, acc)`;
//! - the lanes reduced as ggml's `hsum_float_8`: high four plus low four, then lanes `0, 1`
//!   plus `2, 3`, then lane 0 plus lane 1;
//! - for Q4_1 and Q5_1, the scalar `summs = fma(f32(m_w), f32(s_a), summs)` in block order (the
//!   compiler fuses ggml's `summs += m * s`), added last: `hsum(acc) + summs`;
//! - IQ4_NL is the exception, as in ggml: blocks `2i` and `2i + 1` go to two accumulators,
//!   reduced as `hsum(acc_even + acc_odd)`, and a last odd block is added as a scalar,
//!   `sum + d * sumi` (two roundings, not fused).
//!
//! One accumulator makes the FMA latency a dependency chain of one FMA per block; ggml has the
//! same chain, and out-of-order execution overlaps the chains of consecutive rows.
//!
//! The integer part is exact for every input, with one precondition where the weights are
//! signed (Q8_0 and IQ4_NL): `vpmaddubsw` multiplies unsigned by signed bytes, so those
//! kernels move the weight's sign onto the activation (`vpsignb`), which cannot negate -128.
//! They are therefore exact when the activation quants lie in `-127..=127`, which is what every
//! Q8 quantizer (ggml's and ours: `round(x / (amax / 127))`) produces (ggml's kernels compute
//! the same wrong product for -128, by the same trick). The unsigned-weight formats (Q4_0,
//! Q5_0 with their offset subtracted separately, Q4_1, Q5_1) have no such precondition. The
//! only difference from the scalar reference is the order of the f32 additions (and the
//! rounding of `d_w * d_a` before, not after, the multiplication by the integer sum);
//! `tests/legacy_kernels.rs` bounds it, and checks the kernels against a scalar model of ggml's
//! order bit for bit.
//!
//! Each kernel reads `min(w.len(), a.len())` blocks.

use std::arch::x86_64::*;

use half::f16;

use crate::formats::{
    BlockIQ4_NL, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, BlockQ8_1,
};

/// The 16 bytes of a block's packed nibbles.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn load_qs16(qs: &[u8; 16]) -> __m128i {
    // SAFETY: `qs` is 16 readable bytes; the load is unaligned.
    unsafe { _mm_loadu_si128(qs.as_ptr().cast()) }
}

/// The 32 quants of a Q8 block.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn load_qs32(qs: &[i8; 32]) -> __m256i {
    // SAFETY: `qs` is 32 readable bytes; the load is unaligned.
    unsafe { _mm256_loadu_si256(qs.as_ptr().cast()) }
}

/// Packed nibbles widened to 32 bytes in `0..=15`: byte `j` of the result is element `j` of
/// the block (low nibbles are elements 0..16, high nibbles elements 16..32).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn unpack_nibbles(qs: &[u8; 16]) -> __m256i {
    let q = load_qs16(qs);
    let both = _mm256_set_m128i(_mm_srli_epi16::<4>(q), q);
    _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
}

/// The 32 bits of `qh` spread to 32 bytes: byte `j` is `0x10` where bit `j` is set, else 0.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn fifth_bits(qh: &[u8; 4]) -> __m256i {
    _mm256_and_si256(fifth_bit_mask(qh), _mm256_set1_epi8(0x10))
}

/// The 32 bits of `qh` spread to 32 bytes: byte `j` is `0xFF` where bit `j` is set, else 0.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn fifth_bit_mask(qh: &[u8; 4]) -> __m256i {
    let v = _mm256_set1_epi32(i32::from_le_bytes(*qh));
    // Byte j takes byte j / 8 of qh ...
    let spread = _mm256_shuffle_epi8(
        v,
        _mm256_set_epi64x(
            0x0303_0303_0303_0303,
            0x0202_0202_0202_0202,
            0x0101_0101_0101_0101,
            0,
        ),
    );
    // ... and keeps bit j % 8 of it.
    let select = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    _mm256_cmpeq_epi8(_mm256_and_si256(spread, select), select)
}

/// Eight exact i32 partial sums of `sum_j (qx_j - off) * y_j` for unsigned `qx_j <= 31` and
/// `off <= 16`, as f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_offset(qx: __m256i, y: __m256i, off: i8) -> __m256 {
    dot_offsets(qx, y, _mm256_set1_epi8(off))
}

/// Eight exact i32 partial sums of `sum_j (qx_j - off_j) * y_j` for unsigned `qx_j <= 31`
/// and `off_j <= 16` with `|qx_j - off_j| <= 16`, as f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_offsets(qx: __m256i, y: __m256i, off: __m256i) -> __m256 {
    // |pair sums| <= 2 * 31 * 128 and 2 * 16 * 128: no i16 saturation; the difference is
    // at most 2 * 16 * 128 in magnitude.
    let p = _mm256_maddubs_epi16(qx, y);
    let c = _mm256_maddubs_epi16(off, y);
    let s = _mm256_madd_epi16(_mm256_sub_epi16(p, c), _mm256_set1_epi16(1));
    _mm256_cvtepi32_ps(s)
}

/// Eight exact i32 partial sums of `sum_j qx_j * y_j` for unsigned `qx_j <= 31`, as f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_unsigned(qx: __m256i, y: __m256i) -> __m256 {
    let p = _mm256_maddubs_epi16(qx, y);
    _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)))
}

/// Eight exact i32 partial sums of `sum_j x_j * y_j` for signed bytes, as f32. Exact when no
/// `y_j` is -128 (see the module documentation).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_signed(x: __m256i, y: __m256i) -> __m256 {
    let ax = _mm256_sign_epi8(x, x);
    let sy = _mm256_sign_epi8(y, x);
    // |pair sums| <= 2 * 128 * 127 < 32768.
    let p = _mm256_maddubs_epi16(ax, sy);
    _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)))
}

/// `d_w * d_a` in every lane.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn scale(dw: f16, da: f16) -> __m256 {
    let h = _mm_cvtsi32_si128(i32::from(dw.to_bits()) | (i32::from(da.to_bits()) << 16));
    let f = _mm_cvtph_ps(h);
    _mm256_broadcastss_ps(_mm_mul_ss(f, _mm_movehdup_ps(f)))
}

/// For the formats with a minimum: `d_w * d_a` in lane 0 of the first result, and
/// `fma(m_w, s_a, summs)` in lane 0 of the second (ggml's `summs += m * s`, which the compiler
/// fuses). The two f16 pairs sit next to each other in both block layouts.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn scale_and_min(dw: f16, mw: f16, da: f16, sa: f16, summs: __m128) -> (__m128, __m128) {
    let w = i32::from(dw.to_bits()) | (i32::from(mw.to_bits()) << 16);
    let a = i32::from(da.to_bits()) | (i32::from(sa.to_bits()) << 16);
    let f = _mm_cvtph_ps(_mm_set_epi32(0, 0, a, w)); // [dw, mw, da, sa]
    let fa = _mm_movehl_ps(f, f); // [da, sa, ..]
    let d = _mm_mul_ss(f, fa);
    let summs = _mm_fmadd_ss(_mm_movehdup_ps(f), _mm_movehdup_ps(fa), summs);
    (d, summs)
}

/// The sum of the eight lanes, in the order of ggml's `hsum_float_8`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn hsum(v: __m256) -> f32 {
    let q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let d = _mm_add_ps(q, _mm_movehl_ps(q, q));
    _mm_cvtss_f32(_mm_add_ss(d, _mm_movehdup_ps(d)))
}

/// Runs `$step` (which maps a weight block, an activation block and an accumulator to the
/// new accumulator) over the blocks in order, into one accumulator, which it evaluates to.
macro_rules! one_accumulator {
    ($w:expr, $a:expr, $step:ident) => {{
        let mut acc = _mm256_setzero_ps();
        for (x, y) in $w.iter().zip($a) {
            acc = $step(x, y, acc);
        }
        acc
    }};
}

/// One Q4_0·Q8_0 block, accumulated into `acc`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn step_q4_0(x: &BlockQ4_0, y: &BlockQ8_0, acc: __m256) -> __m256 {
    let q = dot_offset(unpack_nibbles(&x.qs), load_qs32(&y.qs), 8);
    _mm256_fmadd_ps(scale(x.d, y.d), q, acc)
}

/// Q4_0·Q8_0.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q4_0_q8_0(w: &[BlockQ4_0], a: &[BlockQ8_0]) -> f32 {
    hsum(one_accumulator!(w, a, step_q4_0))
}

/// One Q5_0·Q8_0 block, accumulated into `acc`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn step_q5_0(x: &BlockQ5_0, y: &BlockQ8_0, acc: __m256) -> __m256 {
    // q - 16 = nibble - (16 where the fifth bit is clear): one `vpandn` instead of
    // setting the bit and subtracting 16 everywhere.
    let off = _mm256_andnot_si256(fifth_bit_mask(&x.qh), _mm256_set1_epi8(16));
    let q = dot_offsets(unpack_nibbles(&x.qs), load_qs32(&y.qs), off);
    _mm256_fmadd_ps(scale(x.d, y.d), q, acc)
}

/// Q5_0·Q8_0.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q5_0_q8_0(w: &[BlockQ5_0], a: &[BlockQ8_0]) -> f32 {
    hsum(one_accumulator!(w, a, step_q5_0))
}

/// Q8_0·Q8_0. Exact integer sums when the activation quants lie in `-127..=127`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q8_0_q8_0(w: &[BlockQ8_0], a: &[BlockQ8_0]) -> f32 {
    hsum(one_accumulator!(w, a, step_q8_0))
}

/// One Q8_0·Q8_0 block, accumulated into `acc`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn step_q8_0(x: &BlockQ8_0, y: &BlockQ8_0, acc: __m256) -> __m256 {
    let q = dot_signed(load_qs32(&x.qs), load_qs32(&y.qs));
    _mm256_fmadd_ps(scale(x.d, y.d), q, acc)
}

/// The IQ4_NL levels in both 128-bit halves, for `vpshufb`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn iq4nl_table() -> __m256i {
    let t = crate::formats::iq4_nl::KVALUES_IQ4NL;
    // SAFETY: the table is 16 readable bytes; the load is unaligned.
    let v = unsafe { _mm_loadu_si128(t.as_ptr().cast()) };
    _mm256_set_m128i(v, v)
}

/// One IQ4_NL·Q8_0 block, accumulated into `acc`; `table` is [`iq4nl_table`].
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn step_iq4_nl(x: &BlockIQ4_NL, y: &BlockQ8_0, table: __m256i, acc: __m256) -> __m256 {
    let v = _mm256_shuffle_epi8(table, unpack_nibbles(&x.qs));
    let q = dot_signed(v, load_qs32(&y.qs));
    _mm256_fmadd_ps(scale(x.d, y.d), q, acc)
}

/// IQ4_NL·Q8_0. Exact integer sums when the activation quants lie in `-127..=127`. In ggml's
/// order for this format: pairs of blocks into two accumulators, then a last odd block as a
/// scalar.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_iq4_nl_q8_0(w: &[BlockIQ4_NL], a: &[BlockQ8_0]) -> f32 {
    let table = iq4nl_table();
    let n = w.len().min(a.len());
    let (w, a) = (&w[..n], &a[..n]);
    let mut acc0 = _mm256_setzero_ps();
    let mut acc1 = _mm256_setzero_ps();
    let (wp, ap) = (w.chunks_exact(2), a.chunks_exact(2));
    let (wr, ar) = (wp.remainder(), ap.remainder());
    for (x, y) in wp.zip(ap) {
        acc0 = step_iq4_nl(&x[0], &y[0], table, acc0);
        acc1 = step_iq4_nl(&x[1], &y[1], table, acc1);
    }
    let sum = hsum(_mm256_add_ps(acc0, acc1));
    match (wr.first(), ar.first()) {
        (Some(x), Some(y)) => {
            let v = _mm256_shuffle_epi8(table, unpack_nibbles(&x.qs));
            // The block's integer sum: exact in f32 whatever the order (below 2^24).
            let sumi = hsum(dot_signed(v, load_qs32(&y.qs)));
            sum + x.d.to_f32() * y.d.to_f32() * sumi
        }
        _ => sum,
    }
}

/// One Q4_1·Q8_1 block: the product accumulated into `acc`, `m_w * s_a` fused into lane 0 of
/// `summs`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn step_q4_1(x: &BlockQ4_1, y: &BlockQ8_1, acc: __m256, summs: &mut __m128) -> __m256 {
    let q = dot_unsigned(unpack_nibbles(&x.qs), load_qs32(&y.qs));
    let (d, s) = scale_and_min(x.d, x.m, y.d, y.s, *summs);
    *summs = s;
    _mm256_fmadd_ps(_mm256_broadcastss_ps(d), q, acc)
}

/// Q4_1·Q8_1: `sum_b d_w d_a sum_j q_j a_j + m_w s_a`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q4_1_q8_1(w: &[BlockQ4_1], a: &[BlockQ8_1]) -> f32 {
    let mut summs = _mm_setzero_ps();
    let mut step = |x: &BlockQ4_1, y: &BlockQ8_1, acc: __m256| step_q4_1(x, y, acc, &mut summs);
    let acc = one_accumulator!(w, a, step);
    hsum(acc) + _mm_cvtss_f32(summs)
}

/// One Q5_1·Q8_1 block, as [`step_q4_1`].
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn step_q5_1(x: &BlockQ5_1, y: &BlockQ8_1, acc: __m256, summs: &mut __m128) -> __m256 {
    let qx = _mm256_or_si256(unpack_nibbles(&x.qs), fifth_bits(&x.qh));
    let q = dot_unsigned(qx, load_qs32(&y.qs));
    let (d, s) = scale_and_min(x.d, x.m, y.d, y.s, *summs);
    *summs = s;
    _mm256_fmadd_ps(_mm256_broadcastss_ps(d), q, acc)
}

/// Q5_1·Q8_1.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q5_1_q8_1(w: &[BlockQ5_1], a: &[BlockQ8_1]) -> f32 {
    let mut summs = _mm_setzero_ps();
    let mut step = |x: &BlockQ5_1, y: &BlockQ8_1, acc: __m256| step_q5_1(x, y, acc, &mut summs);
    let acc = one_accumulator!(w, a, step);
    hsum(acc) + _mm_cvtss_f32(summs)
}

// Four-row kernels: four weight rows against one activation row, each row with its own
// accumulator updated in exactly the single-row kernel's order, so each result is bit-identical
// to the single-row kernel's while the four FMA chains overlap. Each reads `min` over the four
// rows and the activation of their lengths in blocks.

/// The four rows and the activation cut to their common length in blocks.
#[inline]
pub(crate) fn common<'a, W, A>(w: [&'a [W]; 4], a: &'a [A]) -> ([&'a [W]; 4], &'a [A]) {
    let n = w.iter().fold(a.len(), |n, r| n.min(r.len()));
    (w.map(|r| &r[..n]), &a[..n])
}

/// How far ahead a four-row kernel prefetches: the same position four rows further, i.e. the
/// next group of four when the rows lie back to back as in a weight matrix.
///
/// Reading four rows at once makes four interleaved streams, which the hardware prefetchers
/// follow much worse than the one sequential stream of row-by-row reading (out of cache a
/// four-row kernel without it ran at about half the speed of the single-row one), and one
/// burst of prefetches for the next group before each call (as `matmul` does for one row)
/// stalls on the miss buffers; a prefetch per block and row, one group ahead, keeps the
/// streams fed. If the rows are not back to back it only prefetches useless lines.
#[inline]
pub(crate) fn prefetch_distance<W>(row: &[W]) -> usize {
    4 * size_of_val(row)
}

/// Prefetches the cache line `dist` bytes after `x` into L1. A hint only: the address is not
/// dereferenced, may lie outside any allocation (the line after the last rows of a matrix),
/// and the instruction never faults.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn prefetch_ahead<T>(x: &T, dist: usize) {
    let p = (x as *const T).cast::<i8>().wrapping_add(dist);
    _mm_prefetch::<_MM_HINT_T0>(p);
}

/// Runs `$step` (weight block, activation block, accumulator, row index to the new
/// accumulator) over the blocks of four rows in order, one accumulator per row, and evaluates
/// to the four accumulators. Prefetches each row [`prefetch_distance`] ahead.
macro_rules! four_accumulators {
    ($w:expr, $a:expr, $step:expr) => {{
        let ([w0, w1, w2, w3], a) = common($w, $a);
        let dist = prefetch_distance(w0);
        let mut acc = [_mm256_setzero_ps(); 4];
        for (i, y) in a.iter().enumerate() {
            prefetch_ahead(&w0[i], dist);
            prefetch_ahead(&w1[i], dist);
            prefetch_ahead(&w2[i], dist);
            prefetch_ahead(&w3[i], dist);
            acc[0] = $step(&w0[i], y, acc[0], 0);
            acc[1] = $step(&w1[i], y, acc[1], 1);
            acc[2] = $step(&w2[i], y, acc[2], 2);
            acc[3] = $step(&w3[i], y, acc[3], 3);
        }
        acc
    }};
}

/// Four rows of a format without a minimum against Q8_0: `$ints` maps a weight block and the
/// activation quants to the block's eight partial sums. The four rows' scales are converted
/// and multiplied by `d_a` in one vector per block (lane `r`: row `r`'s `d_w * d_a`, the
/// rounding of [`scale`]), then broadcast for each row's FMA. (Measured: faster than four
/// per-row [`scale`]s for Q5_0, ~4% slower for Q4_0, no clear difference for Q8_0, which
/// therefore use [`four_accumulators`].)
macro_rules! four_rows_scaled {
    ($w:expr, $a:expr, $ints:expr) => {{
        let ([w0, w1, w2, w3], a) = common($w, $a);
        let dist = prefetch_distance(w0);
        let mut acc = [_mm256_setzero_ps(); 4];
        for (i, y) in a.iter().enumerate() {
            let x = [&w0[i], &w1[i], &w2[i], &w3[i]];
            for xr in x {
                prefetch_ahead(xr, dist);
            }
            let bits = |r: usize| x[r].d.to_bits() as i16;
            let dw = _mm_cvtph_ps(_mm_set_epi16(
                0,
                0,
                0,
                0,
                bits(3),
                bits(2),
                bits(1),
                bits(0),
            ));
            let da = _mm_cvtph_ps(_mm_set1_epi16(y.d.to_bits() as i16));
            let p = _mm256_castps128_ps256(_mm_mul_ps(dw, da));
            let yq = load_qs32(&y.qs);
            for r in 0..4 {
                let d = _mm256_permutevar8x32_ps(p, _mm256_set1_epi32(r as i32));
                acc[r] = _mm256_fmadd_ps(d, $ints(x[r], yq), acc[r]);
            }
        }
        acc.map(|acc| hsum(acc))
    }};
}

/// Q4_0·Q8_0, four rows; each as [`vec_dot_q4_0_q8_0`].
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_q4_0_q8_0(w: [&[BlockQ4_0]; 4], a: &[BlockQ8_0]) -> [f32; 4] {
    let step = |x: &BlockQ4_0, y: &BlockQ8_0, acc: __m256, _r: usize| step_q4_0(x, y, acc);
    four_accumulators!(w, a, step).map(|acc| hsum(acc))
}

/// Q5_0·Q8_0, four rows; each as [`vec_dot_q5_0_q8_0`].
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_q5_0_q8_0(w: [&[BlockQ5_0]; 4], a: &[BlockQ8_0]) -> [f32; 4] {
    let ints = |x: &BlockQ5_0, y: __m256i| {
        let off = _mm256_andnot_si256(fifth_bit_mask(&x.qh), _mm256_set1_epi8(16));
        dot_offsets(unpack_nibbles(&x.qs), y, off)
    };
    four_rows_scaled!(w, a, ints)
}

/// Q8_0·Q8_0, four rows; each as [`vec_dot_q8_0_q8_0`].
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_q8_0_q8_0(w: [&[BlockQ8_0]; 4], a: &[BlockQ8_0]) -> [f32; 4] {
    let step = |x: &BlockQ8_0, y: &BlockQ8_0, acc: __m256, _r: usize| step_q8_0(x, y, acc);
    four_accumulators!(w, a, step).map(|acc| hsum(acc))
}

/// The first four bytes of a block as an i32: for Q4_1, Q5_1 and Q8_1 the f16 pair
/// `(d, m)` / `(d, s)`, `d` in the low half.
#[inline]
fn head32<T: bytemuck::Pod>(x: &T) -> i32 {
    let b = bytemuck::bytes_of(x);
    i32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Four rows of a format with a minimum against Q8_1: `$ints` maps a weight block and the
/// activation quants to the block's eight partial sums. The per-block float work of the four
/// rows is done together, with the roundings of [`scale_and_min`]: lanes `2r, 2r + 1` of one
/// vector hold row `r`'s `(d_w, m_w)`, multiplied by `(d_a, s_a)` for the scales (lane `2r`:
/// `d_w * d_a`) and fused into one vector of sums (lane `2r + 1`: row `r`'s
/// `summs = fma(m_w, s_a, summs)`; the even lanes are not used).
macro_rules! four_rows_with_min {
    ($w:expr, $a:expr, $ints:expr) => {{
        let ([w0, w1, w2, w3], a) = common($w, $a);
        let dist = prefetch_distance(w0);
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut summs = _mm256_setzero_ps();
        for (i, y) in a.iter().enumerate() {
            let x = [&w0[i], &w1[i], &w2[i], &w3[i]];
            for xr in x {
                prefetch_ahead(xr, dist);
            }
            let wdm = _mm256_cvtph_ps(_mm_set_epi32(
                head32(x[3]),
                head32(x[2]),
                head32(x[1]),
                head32(x[0]),
            ));
            let f = _mm_cvtph_ps(_mm_cvtsi32_si128(head32(y))); // [d_a, s_a, 0, 0]
            let ya = _mm256_castpd_ps(_mm256_broadcastsd_pd(_mm_castps_pd(f)));
            let p = _mm256_mul_ps(wdm, ya);
            summs = _mm256_fmadd_ps(wdm, ya, summs);
            let yq = load_qs32(&y.qs);
            for r in 0..4 {
                let d = _mm256_permutevar8x32_ps(p, _mm256_set1_epi32(2 * r as i32));
                acc[r] = _mm256_fmadd_ps(d, $ints(x[r], yq), acc[r]);
            }
        }
        let mut s = [0f32; 8];
        // SAFETY: `s` is 8 writable f32; the store is unaligned.
        unsafe { _mm256_storeu_ps(s.as_mut_ptr(), summs) };
        [0, 1, 2, 3].map(|r| hsum(acc[r]) + s[2 * r + 1])
    }};
}

/// Q4_1·Q8_1, four rows; each as [`vec_dot_q4_1_q8_1`].
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_q4_1_q8_1(w: [&[BlockQ4_1]; 4], a: &[BlockQ8_1]) -> [f32; 4] {
    let ints = |x: &BlockQ4_1, y: __m256i| dot_unsigned(unpack_nibbles(&x.qs), y);
    four_rows_with_min!(w, a, ints)
}

/// Q5_1·Q8_1, four rows; each as [`vec_dot_q5_1_q8_1`].
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_q5_1_q8_1(w: [&[BlockQ5_1]; 4], a: &[BlockQ8_1]) -> [f32; 4] {
    let ints = |x: &BlockQ5_1, y: __m256i| {
        dot_unsigned(_mm256_or_si256(unpack_nibbles(&x.qs), fifth_bits(&x.qh)), y)
    };
    four_rows_with_min!(w, a, ints)
}

/// IQ4_NL·Q8_0, four rows; each as [`vec_dot_iq4_nl_q8_0`] (pairs of blocks into two
/// accumulators per row, then a last odd block as a scalar).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_iq4_nl_q8_0(w: [&[BlockIQ4_NL]; 4], a: &[BlockQ8_0]) -> [f32; 4] {
    let table = iq4nl_table();
    let (w, a) = common(w, a);
    let dist = prefetch_distance(w[0]);
    let pairs = a.len() / 2;
    let mut even = [_mm256_setzero_ps(); 4];
    let mut odd = [_mm256_setzero_ps(); 4];
    for i in 0..pairs {
        let (y0, y1) = (&a[2 * i], &a[2 * i + 1]);
        for r in 0..4 {
            prefetch_ahead(&w[r][2 * i], dist);
            even[r] = step_iq4_nl(&w[r][2 * i], y0, table, even[r]);
            odd[r] = step_iq4_nl(&w[r][2 * i + 1], y1, table, odd[r]);
        }
    }
    [0, 1, 2, 3].map(|r| {
        let sum = hsum(_mm256_add_ps(even[r], odd[r]));
        if a.len() % 2 == 1 {
            let (x, y) = (&w[r][a.len() - 1], &a[a.len() - 1]);
            let v = _mm256_shuffle_epi8(table, unpack_nibbles(&x.qs));
            // The block's integer sum: exact in f32 whatever the order (below 2^24).
            let sumi = hsum(dot_signed(v, load_qs32(&y.qs)));
            sum + x.d.to_f32() * y.d.to_f32() * sumi
        } else {
            sum
        }
    })
}
