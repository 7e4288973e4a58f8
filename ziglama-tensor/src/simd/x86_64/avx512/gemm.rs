//! AVX-512 GEMM tiles for the legacy formats Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0: [`TILE_ROWS`]
//! weight rows against [`TILE_COLS`] activation rows per call, for prompt processing, where
//! each loaded and unpacked weight block is used for several activations and each loaded
//! activation block for several rows.
//!
//! # Bit-identical to the single-row kernels
//!
//! Every output `(r, c)` is computed with exactly the f32 operations of the single-row kernel
//! of the same variant (`avx512::legacy`, which equals `avx2::legacy` and ggml's AVX2
//! `ggml_vec_dot_*`): per block, in block order, `acc = fma(f32(d_w) * f32(d_a), partial
//! sums, acc)` on ONE 8-lane accumulator whose lane `l` takes the exact i32 sum of the
//! products of elements `4l..4l + 4`, reduced by `hsum_float_8`'s order; for Q4_1 and Q5_1
//! the scalar chain `summs = fma(f32(m_w), f32(s_a), summs)` in block order, added last.
//!
//! What differs is only how the vectors are laid out: one 512-bit accumulator holds the
//! 8-lane accumulators of two outputs `(r, 2p)` and `(r, 2p + 1)` (low and high half), so a
//! block's weight quants are loaded into both halves and multiplied with two activations'
//! quants in one instruction; the scale vector holds `d_w * d_a` of each output in its half
//! (the same f32 product, the same rounding); the minimum terms of the `TILE_COLS` outputs of
//! a row are lanes of one vector updated by one FMA per block (each lane the same FMA chain).
//! The integer partial sums are exact whichever instructions form them (VNNI `vpdpbusd` or BW
//! `vpmaddubsw` + `vpmaddwd`, an offset subtracted per activation block instead of per
//! product), so they equal the single-row kernel's. `tests/gemm_tiles.rs` checks every output
//! bit for bit against the single-row kernel of the same variant.

use std::arch::x86_64::*;

use super::super::avx2::legacy as avx2;
use super::legacy::dot_signed;
use crate::formats::{
    BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, BlockQ8_1, TILE_COLS, TILE_ROWS,
};

/// Pairs of activation rows per tile: one 512-bit accumulator per row and pair.
const PAIRS: usize = TILE_COLS / 2;
const _: () = assert!(TILE_COLS.is_multiple_of(2) && TILE_COLS <= 8);

/// The first four bytes of a block as an i32: for Q4_1, Q5_1 and Q8_1 the f16 pair
/// `(d, m)` / `(d, s)`, `d` in the low half.
#[inline]
fn head32<T: bytemuck::Pod>(x: &T) -> i32 {
    let b = bytemuck::bytes_of(x);
    i32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// The first two bytes of a block as an i32 (zero-extended): the f16 scale `d` of Q4_0, Q5_0
/// and Q8_0.
#[inline]
fn head16<T: bytemuck::Pod>(x: &T) -> i32 {
    let b = bytemuck::bytes_of(x);
    i32::from(u16::from_le_bytes([b[0], b[1]]))
}

/// A block's packed nibbles as 32 quants in `0..=15`, in both 256-bit halves (byte `32 h + j`
/// is element `j`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn nibbles_x2(qs: &[u8; 16]) -> __m512i {
    let v = _mm512_broadcast_i32x4(avx2::load_qs16(qs));
    // 128-bit lanes 1 and 3 (elements 16..32 of each half) take the high nibbles.
    const F: i64 = 0x0004_0004_0004_0004;
    let s = _mm512_srlv_epi16(v, _mm512_set_epi64(F, F, 0, 0, F, F, 0, 0));
    _mm512_and_si512(s, _mm512_set1_epi8(0x0F))
}

/// A Q5 block's quants in `0..=31`, in both 256-bit halves.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn q5_x2(qs: &[u8; 16], qh: &[u8; 4]) -> __m512i {
    let lo = nibbles_x2(qs);
    let h = u64::from(u32::from_le_bytes(*qh));
    _mm512_mask_add_epi8(lo, h | (h << 32), lo, _mm512_set1_epi8(0x10))
}

/// A Q8 block's 32 quants in both 256-bit halves.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn q8_x2(qs: &[i8; 32]) -> __m512i {
    _mm512_broadcast_i64x4(avx2::load_qs32(qs))
}

/// Two Q8 blocks' quants: `y0` in the low 256 bits, `y1` in the high.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn q8_pair(y0: &[i8; 32], y1: &[i8; 32]) -> __m512i {
    _mm512_inserti64x4::<1>(
        _mm512_castsi256_si512(avx2::load_qs32(y0)),
        avx2::load_qs32(y1),
    )
}

/// Lanes `i` (low half) and `j` (high half) of `v`, each broadcast over eight lanes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn halves(v: __m512, i: i32, j: i32) -> __m512 {
    let idx = _mm512_inserti64x4::<1>(
        _mm512_castsi256_si512(_mm256_set1_epi32(i)),
        _mm256_set1_epi32(j),
    );
    _mm512_permutexvar_ps(idx, v)
}

/// The eight lanes of each half of `acc` summed in `hsum_float_8`'s order.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn hsum_halves(acc: __m512) -> (f32, f32) {
    (
        avx2::hsum(_mm512_castps512_ps256(acc)),
        avx2::hsum(_mm512_extractf32x8_ps::<1>(acc)),
    )
}

/// `i32` partial sums to f32 (exact: below 2^24 in magnitude).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn to_f32(v: __m512i) -> __m512 {
    _mm512_cvtepi32_ps(v)
}

/// Generates the body of a tile of a format paired with Q8_0 (no minimum term).
///
/// `$wq(x)` gives a weight block's quants in both halves; `$pre(aq)` an integer vector derived
/// from a pair of activation blocks once for all rows (an offset correction, or anything);
/// `$dot(wq, aq, pre)` the sixteen exact partial sums as f32.
macro_rules! tile_q8_0 {
    ($w:expr, $a:expr, $wq:expr, $pre:expr, $dot:expr) => {{
        let (w, a): ([&[_]; TILE_ROWS], [&[BlockQ8_0]; TILE_COLS]) = ($w, $a);
        let nb = w[0].len();
        let mut acc = [[_mm512_setzero_ps(); PAIRS]; TILE_ROWS];
        for b in 0..nb {
            // The activations' scales: lane c holds f32(d_a) of activation c.
            let h: [i32; 4] = std::array::from_fn(|p| {
                if p < PAIRS {
                    head16(&a[2 * p][b]) | (head16(&a[2 * p + 1][b]) << 16)
                } else {
                    0
                }
            });
            let da8 =
                _mm512_castps256_ps512(_mm256_cvtph_ps(_mm_set_epi32(h[3], h[2], h[1], h[0])));
            let aq: [__m512i; PAIRS] =
                std::array::from_fn(|p| q8_pair(&a[2 * p][b].qs, &a[2 * p + 1][b].qs));
            let pre: [__m512i; PAIRS] = std::array::from_fn(|p| $pre(aq[p]));
            let da: [__m512; PAIRS] =
                std::array::from_fn(|p| halves(da8, 2 * p as i32, 2 * p as i32 + 1));
            for r in 0..TILE_ROWS {
                let x = &w[r][b];
                let wq = $wq(x);
                let dw = _mm512_broadcastss_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(head16(x))));
                for p in 0..PAIRS {
                    let q = $dot(wq, aq[p], pre[p]);
                    acc[r][p] = _mm512_fmadd_ps(_mm512_mul_ps(dw, da[p]), q, acc[r][p]);
                }
            }
        }
        let mut out = [[0f32; TILE_COLS]; TILE_ROWS];
        for r in 0..TILE_ROWS {
            for p in 0..PAIRS {
                (out[r][2 * p], out[r][2 * p + 1]) = hsum_halves(acc[r][p]);
            }
        }
        out
    }};
}

/// Generates the body of a tile of a format with a minimum, paired with Q8_1, as
/// [`tile_q8_0`], plus the minimum terms: per row one vector whose lane `2c + 1` is output
/// `c`'s `summs` chain.
macro_rules! tile_q8_1 {
    ($w:expr, $a:expr, $wq:expr, $dot:expr) => {{
        let (w, a): ([&[_]; TILE_ROWS], [&[BlockQ8_1]; TILE_COLS]) = ($w, $a);
        let nb = w[0].len();
        let mut acc = [[_mm512_setzero_ps(); PAIRS]; TILE_ROWS];
        let mut summs = [_mm512_setzero_ps(); TILE_ROWS];
        for b in 0..nb {
            // Lanes 2c and 2c + 1: f32(d_a) and f32(s_a) of activation c.
            let h: [i32; 8] =
                std::array::from_fn(|c| if c < TILE_COLS { head32(&a[c][b]) } else { 0 });
            let ds = _mm512_cvtph_ps(_mm256_set_epi32(
                h[7], h[6], h[5], h[4], h[3], h[2], h[1], h[0],
            ));
            let aq: [__m512i; PAIRS] =
                std::array::from_fn(|p| q8_pair(&a[2 * p][b].qs, &a[2 * p + 1][b].qs));
            let da: [__m512; PAIRS] =
                std::array::from_fn(|p| halves(ds, 4 * p as i32, 4 * p as i32 + 2));
            for r in 0..TILE_ROWS {
                let x = &w[r][b];
                let wq = $wq(x);
                let f = _mm_cvtph_ps(_mm_cvtsi32_si128(head32(x))); // [d_w, m_w, 0, 0]
                let dw = _mm512_broadcastss_ps(f);
                let mw = _mm512_broadcastss_ps(_mm_movehdup_ps(f));
                summs[r] = _mm512_fmadd_ps(mw, ds, summs[r]);
                for p in 0..PAIRS {
                    let q = $dot(wq, aq[p]);
                    acc[r][p] = _mm512_fmadd_ps(_mm512_mul_ps(dw, da[p]), q, acc[r][p]);
                }
            }
        }
        let mut out = [[0f32; TILE_COLS]; TILE_ROWS];
        for r in 0..TILE_ROWS {
            let mut s = [0f32; 16];
            // SAFETY: `s` is 16 writable f32; the store is unaligned.
            unsafe { _mm512_storeu_ps(s.as_mut_ptr(), summs[r]) };
            for p in 0..PAIRS {
                let (lo, hi) = hsum_halves(acc[r][p]);
                out[r][2 * p] = lo + s[4 * p + 1];
                out[r][2 * p + 1] = hi + s[4 * p + 3];
            }
        }
        out
    }};
}

/// `-off * (sum of each group of four activation quants)`, VNNI: the offset correction, once
/// per activation block pair.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
fn neg_offset_vnni(aq: __m512i, off: u8) -> __m512i {
    let c = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(off as i8), aq);
    _mm512_sub_epi32(_mm512_setzero_si512(), c)
}

/// `off * (sum of each group of four activation quants)`, BW.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn offset_bw(aq: __m512i, off: i8) -> __m512i {
    _mm512_madd_epi16(
        _mm512_maddubs_epi16(_mm512_set1_epi8(off), aq),
        _mm512_set1_epi16(1),
    )
}

/// Sixteen exact partial sums of unsigned weight quants `<= 31` times activation quants, BW.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn dot_unsigned_bw(wq: __m512i, aq: __m512i) -> __m512i {
    _mm512_madd_epi16(_mm512_maddubs_epi16(wq, aq), _mm512_set1_epi16(1))
}

/// Q4_0·Q8_0 tile, AVX-512 VNNI; each output as `avx512::legacy::vec_dot_q4_0_q8_0_vnni`.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL/VNNI, AVX2, FMA and F16C; all rows must have the
/// same number of blocks.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn tile_q4_0_q8_0_vnni(
    w: [&[BlockQ4_0]; TILE_ROWS],
    a: [&[BlockQ8_0]; TILE_COLS],
) -> [[f32; TILE_COLS]; TILE_ROWS] {
    tile_q8_0!(
        w,
        a,
        |x: &BlockQ4_0| nibbles_x2(&x.qs),
        |aq| neg_offset_vnni(aq, 8),
        |wq, aq, pre| to_f32(_mm512_dpbusd_epi32(pre, wq, aq))
    )
}

/// Q4_0·Q8_0 tile, AVX-512 BW; each output as `avx512::legacy::vec_dot_q4_0_q8_0`.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL, AVX2, FMA and F16C; all rows must have the same
/// number of blocks.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn tile_q4_0_q8_0(
    w: [&[BlockQ4_0]; TILE_ROWS],
    a: [&[BlockQ8_0]; TILE_COLS],
) -> [[f32; TILE_COLS]; TILE_ROWS] {
    tile_q8_0!(
        w,
        a,
        |x: &BlockQ4_0| nibbles_x2(&x.qs),
        |aq| offset_bw(aq, 8),
        |wq, aq, pre| to_f32(_mm512_sub_epi32(dot_unsigned_bw(wq, aq), pre))
    )
}

/// Q5_0·Q8_0 tile, AVX-512 VNNI; each output as `avx512::legacy::vec_dot_q5_0_q8_0_vnni`.
///
/// # Safety
/// As [`tile_q4_0_q8_0_vnni`].
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn tile_q5_0_q8_0_vnni(
    w: [&[BlockQ5_0]; TILE_ROWS],
    a: [&[BlockQ8_0]; TILE_COLS],
) -> [[f32; TILE_COLS]; TILE_ROWS] {
    tile_q8_0!(
        w,
        a,
        |x: &BlockQ5_0| q5_x2(&x.qs, &x.qh),
        |aq| neg_offset_vnni(aq, 16),
        |wq, aq, pre| to_f32(_mm512_dpbusd_epi32(pre, wq, aq))
    )
}

/// Q5_0·Q8_0 tile, AVX-512 BW; each output as `avx512::legacy::vec_dot_q5_0_q8_0`.
///
/// # Safety
/// As [`tile_q4_0_q8_0`].
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn tile_q5_0_q8_0(
    w: [&[BlockQ5_0]; TILE_ROWS],
    a: [&[BlockQ8_0]; TILE_COLS],
) -> [[f32; TILE_COLS]; TILE_ROWS] {
    tile_q8_0!(
        w,
        a,
        |x: &BlockQ5_0| q5_x2(&x.qs, &x.qh),
        |aq| offset_bw(aq, 16),
        |wq, aq, pre| to_f32(_mm512_sub_epi32(dot_unsigned_bw(wq, aq), pre))
    )
}

/// Q8_0·Q8_0 tile, AVX-512 VNNI (weights biased by +128, `128 * sum(a)` subtracted); each
/// output as `avx512::legacy::vec_dot_q8_0_q8_0_vnni`.
///
/// # Safety
/// As [`tile_q4_0_q8_0_vnni`].
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn tile_q8_0_q8_0_vnni(
    w: [&[BlockQ8_0]; TILE_ROWS],
    a: [&[BlockQ8_0]; TILE_COLS],
) -> [[f32; TILE_COLS]; TILE_ROWS] {
    tile_q8_0!(
        w,
        a,
        |x: &BlockQ8_0| _mm512_xor_si512(q8_x2(&x.qs), _mm512_set1_epi8(i8::MIN)),
        |aq| neg_offset_vnni(aq, 128),
        |wq, aq, pre| to_f32(_mm512_dpbusd_epi32(pre, wq, aq))
    )
}

/// Q8_0·Q8_0 tile, AVX-512 BW; each output as `avx512::legacy::vec_dot_q8_0_q8_0` (exact
/// integer sums when the activation quants lie in `-127..=127`).
///
/// # Safety
/// As [`tile_q4_0_q8_0`].
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn tile_q8_0_q8_0(
    w: [&[BlockQ8_0]; TILE_ROWS],
    a: [&[BlockQ8_0]; TILE_COLS],
) -> [[f32; TILE_COLS]; TILE_ROWS] {
    tile_q8_0!(
        w,
        a,
        |x: &BlockQ8_0| q8_x2(&x.qs),
        |_aq| _mm512_setzero_si512(),
        |wq, aq, _pre| dot_signed(wq, aq)
    )
}

/// Q4_1·Q8_1 tile, AVX-512 VNNI; each output as `avx512::legacy::vec_dot_q4_1_q8_1_vnni`.
///
/// # Safety
/// As [`tile_q4_0_q8_0_vnni`].
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn tile_q4_1_q8_1_vnni(
    w: [&[BlockQ4_1]; TILE_ROWS],
    a: [&[BlockQ8_1]; TILE_COLS],
) -> [[f32; TILE_COLS]; TILE_ROWS] {
    tile_q8_1!(w, a, |x: &BlockQ4_1| nibbles_x2(&x.qs), |wq, aq| to_f32(
        _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq, aq)
    ))
}

/// Q4_1·Q8_1 tile, AVX-512 BW; each output as `avx512::legacy::vec_dot_q4_1_q8_1`.
///
/// # Safety
/// As [`tile_q4_0_q8_0`].
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn tile_q4_1_q8_1(
    w: [&[BlockQ4_1]; TILE_ROWS],
    a: [&[BlockQ8_1]; TILE_COLS],
) -> [[f32; TILE_COLS]; TILE_ROWS] {
    tile_q8_1!(w, a, |x: &BlockQ4_1| nibbles_x2(&x.qs), |wq, aq| to_f32(
        dot_unsigned_bw(wq, aq)
    ))
}

/// Q5_1·Q8_1 tile, AVX-512 VNNI; each output as `avx512::legacy::vec_dot_q5_1_q8_1_vnni`.
///
/// # Safety
/// As [`tile_q4_0_q8_0_vnni`].
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn tile_q5_1_q8_1_vnni(
    w: [&[BlockQ5_1]; TILE_ROWS],
    a: [&[BlockQ8_1]; TILE_COLS],
) -> [[f32; TILE_COLS]; TILE_ROWS] {
    tile_q8_1!(w, a, |x: &BlockQ5_1| q5_x2(&x.qs, &x.qh), |wq, aq| to_f32(
        _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq, aq)
    ))
}

/// Q5_1·Q8_1 tile, AVX-512 BW; each output as `avx512::legacy::vec_dot_q5_1_q8_1`.
///
/// # Safety
/// As [`tile_q4_0_q8_0`].
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn tile_q5_1_q8_1(
    w: [&[BlockQ5_1]; TILE_ROWS],
    a: [&[BlockQ8_1]; TILE_COLS],
) -> [[f32; TILE_COLS]; TILE_ROWS] {
    tile_q8_1!(w, a, |x: &BlockQ5_1| q5_x2(&x.qs, &x.qh), |wq, aq| to_f32(
        dot_unsigned_bw(wq, aq)
    ))
}
