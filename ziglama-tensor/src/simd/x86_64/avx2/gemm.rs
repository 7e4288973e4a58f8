//! AVX2 GEMM tiles for the legacy formats Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0: [`TILE_ROWS`]
//! weight rows against [`TILE_COLS`] activation rows per call, each output bit-identical to
//! the single-row kernel of `avx2::legacy` (see `avx512::gemm` for the argument: the same f32
//! operations per output, in the same order, on the same exact integer partial sums).
//!
//! With sixteen 256-bit registers a tile is computed two weight rows at a time (eight 8-lane
//! accumulators); each weight block is unpacked once for the [`TILE_COLS`] activations, each
//! activation block's offset correction computed once for all rows, and the scales
//! `d_w * d_a` of a row's outputs formed by one 4-lane multiplication per block.

use std::arch::x86_64::*;

use super::legacy::{dot_signed, fifth_bits, hsum, load_qs32, unpack_nibbles};
use crate::formats::{
    BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, BlockQ8_1, TILE_COLS, TILE_ROWS,
};

const _: () = assert!(TILE_COLS == 4 && TILE_ROWS.is_multiple_of(2));

/// The first two bytes of a block (the f16 scale `d`), zero-extended.
#[inline]
fn head16<T: bytemuck::Pod>(x: &T) -> i32 {
    let b = bytemuck::bytes_of(x);
    i32::from(u16::from_le_bytes([b[0], b[1]]))
}

/// The first four bytes of a block: `(d, m)` of Q4_1 / Q5_1, `(d, s)` of Q8_1.
#[inline]
fn head32<T: bytemuck::Pod>(x: &T) -> i32 {
    let b = bytemuck::bytes_of(x);
    i32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Lane `c` of `v` in all eight lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn lane(v: __m128, c: usize) -> __m256 {
    _mm256_permutevar8x32_ps(_mm256_castps128_ps256(v), _mm256_set1_epi32(c as i32))
}

/// Eight exact i32 partial sums of unsigned weight quants `<= 31` times activation quants.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_unsigned_i32(wq: __m256i, aq: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(wq, aq), _mm256_set1_epi16(1))
}

/// `off` times the sum of each group of four activation quants.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn offset_i32(aq: __m256i, off: i8) -> __m256i {
    dot_unsigned_i32(_mm256_set1_epi8(off), aq)
}

/// Generates a tile of a format paired with Q8_0: `$wq(x)` the weight quants of a block,
/// `$pre(aq)` a per-activation-block integer vector, `$dot(wq, aq, pre)` the eight exact
/// partial sums as f32.
macro_rules! tile_q8_0 {
    ($w:expr, $a:expr, $wq:expr, $pre:expr, $dot:expr) => {{
        let (w, a): ([&[_]; TILE_ROWS], [&[BlockQ8_0]; TILE_COLS]) = ($w, $a);
        let nb = w[0].len();
        let mut out = [[0f32; TILE_COLS]; TILE_ROWS];
        for r0 in (0..TILE_ROWS).step_by(2) {
            let mut acc = [[_mm256_setzero_ps(); TILE_COLS]; 2];
            for b in 0..nb {
                let da = _mm_cvtph_ps(_mm_set_epi32(
                    0,
                    0,
                    head16(&a[2][b]) | (head16(&a[3][b]) << 16),
                    head16(&a[0][b]) | (head16(&a[1][b]) << 16),
                ));
                let aq: [__m256i; TILE_COLS] = std::array::from_fn(|c| load_qs32(&a[c][b].qs));
                let pre: [__m256i; TILE_COLS] = std::array::from_fn(|c| $pre(aq[c]));
                for (i, acc) in acc.iter_mut().enumerate() {
                    let x = &w[r0 + i][b];
                    let wq = $wq(x);
                    let dw = _mm_broadcastss_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(head16(x))));
                    let d = _mm_mul_ps(dw, da);
                    for c in 0..TILE_COLS {
                        let q = $dot(wq, aq[c], pre[c]);
                        acc[c] = _mm256_fmadd_ps(lane(d, c), q, acc[c]);
                    }
                }
            }
            for i in 0..2 {
                for c in 0..TILE_COLS {
                    out[r0 + i][c] = hsum(acc[i][c]);
                }
            }
        }
        out
    }};
}

/// Generates a tile of a format with a minimum, paired with Q8_1, as [`tile_q8_0`], plus per
/// row the four outputs' `summs` chains in the lanes of one vector.
macro_rules! tile_q8_1 {
    ($w:expr, $a:expr, $wq:expr) => {{
        let (w, a): ([&[_]; TILE_ROWS], [&[BlockQ8_1]; TILE_COLS]) = ($w, $a);
        let nb = w[0].len();
        let mut out = [[0f32; TILE_COLS]; TILE_ROWS];
        for r0 in (0..TILE_ROWS).step_by(2) {
            let mut acc = [[_mm256_setzero_ps(); TILE_COLS]; 2];
            let mut summs = [_mm_setzero_ps(); 2];
            for b in 0..nb {
                // [d_0, s_0, d_1, s_1, d_2, s_2, d_3, s_3] of the activations' blocks.
                let ds = _mm256_cvtph_ps(_mm_set_epi32(
                    head32(&a[3][b]),
                    head32(&a[2][b]),
                    head32(&a[1][b]),
                    head32(&a[0][b]),
                ));
                let even = _mm256_permutevar8x32_ps(ds, _mm256_set_epi32(7, 5, 3, 1, 6, 4, 2, 0));
                let da = _mm256_castps256_ps128(even);
                let sa = _mm256_extractf128_ps::<1>(even);
                let aq: [__m256i; TILE_COLS] = std::array::from_fn(|c| load_qs32(&a[c][b].qs));
                for (i, acc) in acc.iter_mut().enumerate() {
                    let x = &w[r0 + i][b];
                    let wq = $wq(x);
                    let f = _mm_cvtph_ps(_mm_cvtsi32_si128(head32(x))); // [d_w, m_w, 0, 0]
                    let d = _mm_mul_ps(_mm_broadcastss_ps(f), da);
                    summs[i] = _mm_fmadd_ps(_mm_broadcastss_ps(_mm_movehdup_ps(f)), sa, summs[i]);
                    for c in 0..TILE_COLS {
                        let q = _mm256_cvtepi32_ps(dot_unsigned_i32(wq, aq[c]));
                        acc[c] = _mm256_fmadd_ps(lane(d, c), q, acc[c]);
                    }
                }
            }
            for i in 0..2 {
                let mut s = [0f32; 4];
                // SAFETY: `s` is 4 writable f32; the store is unaligned.
                unsafe { _mm_storeu_ps(s.as_mut_ptr(), summs[i]) };
                for c in 0..TILE_COLS {
                    out[r0 + i][c] = hsum(acc[i][c]) + s[c];
                }
            }
        }
        out
    }};
}

/// Q4_0·Q8_0 tile, AVX2; each output as `avx2::legacy::vec_dot_q4_0_q8_0`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; all rows must have the same number of blocks.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn tile_q4_0_q8_0(
    w: [&[BlockQ4_0]; TILE_ROWS],
    a: [&[BlockQ8_0]; TILE_COLS],
) -> [[f32; TILE_COLS]; TILE_ROWS] {
    tile_q8_0!(
        w,
        a,
        |x: &BlockQ4_0| unpack_nibbles(&x.qs),
        |aq| offset_i32(aq, 8),
        |wq, aq, pre| _mm256_cvtepi32_ps(_mm256_sub_epi32(dot_unsigned_i32(wq, aq), pre))
    )
}

/// Q5_0·Q8_0 tile, AVX2; each output as `avx2::legacy::vec_dot_q5_0_q8_0`.
///
/// # Safety
/// As [`tile_q4_0_q8_0`].
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn tile_q5_0_q8_0(
    w: [&[BlockQ5_0]; TILE_ROWS],
    a: [&[BlockQ8_0]; TILE_COLS],
) -> [[f32; TILE_COLS]; TILE_ROWS] {
    tile_q8_0!(
        w,
        a,
        |x: &BlockQ5_0| _mm256_or_si256(unpack_nibbles(&x.qs), fifth_bits(&x.qh)),
        |aq| offset_i32(aq, 16),
        |wq, aq, pre| _mm256_cvtepi32_ps(_mm256_sub_epi32(dot_unsigned_i32(wq, aq), pre))
    )
}

/// Q8_0·Q8_0 tile, AVX2; each output as `avx2::legacy::vec_dot_q8_0_q8_0` (exact integer
/// sums when the activation quants lie in `-127..=127`).
///
/// # Safety
/// As [`tile_q4_0_q8_0`].
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn tile_q8_0_q8_0(
    w: [&[BlockQ8_0]; TILE_ROWS],
    a: [&[BlockQ8_0]; TILE_COLS],
) -> [[f32; TILE_COLS]; TILE_ROWS] {
    tile_q8_0!(
        w,
        a,
        |x: &BlockQ8_0| load_qs32(&x.qs),
        |_aq| _mm256_setzero_si256(),
        |wq, aq, _pre| dot_signed(wq, aq)
    )
}

/// Q4_1·Q8_1 tile, AVX2; each output as `avx2::legacy::vec_dot_q4_1_q8_1`.
///
/// # Safety
/// As [`tile_q4_0_q8_0`].
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn tile_q4_1_q8_1(
    w: [&[BlockQ4_1]; TILE_ROWS],
    a: [&[BlockQ8_1]; TILE_COLS],
) -> [[f32; TILE_COLS]; TILE_ROWS] {
    tile_q8_1!(w, a, |x: &BlockQ4_1| unpack_nibbles(&x.qs))
}

/// Q5_1·Q8_1 tile, AVX2; each output as `avx2::legacy::vec_dot_q5_1_q8_1`.
///
/// # Safety
/// As [`tile_q4_0_q8_0`].
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn tile_q5_1_q8_1(
    w: [&[BlockQ5_1]; TILE_ROWS],
    a: [&[BlockQ8_1]; TILE_COLS],
) -> [[f32; TILE_COLS]; TILE_ROWS] {
    tile_q8_1!(w, a, |x: &BlockQ5_1| _mm256_or_si256(
        unpack_nibbles(&x.qs),
        fifth_bits(&x.qh)
    ))
}
