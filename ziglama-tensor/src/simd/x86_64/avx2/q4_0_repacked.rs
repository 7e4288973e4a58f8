//! Q4_0·Q8_0 in the order of llama.cpp's repacked Q4_0 kernels (AVX2): per block the exact
//! integer sum, then one fused multiply-add, `acc = fma(I, d_w * d_a, acc)`, in block order
//! ([`crate::formats::q4_0::vec_dot_ggml_repacked`], which these equal bit for bit).
//!
//! The integer sums take ggml's sign trick: `|w| * sign(a, w)` through `vpmaddubsw` (no pair
//! of products exceeds 2 * 8 * 127 in magnitude, so the 16-bit sums are exact) and
//! `vpmaddwd`. Only the order of the float operations matters, and there is one per block.
//! Like ggml's, the trick needs activation quants in `-127..=127`, which is what the Q8_0
//! activation quantizer makes (`-128` times a negative weight would come out negated).

use std::arch::x86_64::*;

use super::legacy::{common, load_qs32, unpack_nibbles};
use crate::formats::{BlockQ4_0, BlockQ8_0};

/// The products `(q - 8) * a` of one block, summed exactly into eight i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn block_lanes(x: &BlockQ4_0, y: &BlockQ8_0) -> __m256i {
    let w = _mm256_sub_epi8(unpack_nibbles(&x.qs), _mm256_set1_epi8(8));
    let a = load_qs32(&y.qs);
    let p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
    _mm256_madd_epi16(p, _mm256_set1_epi16(1))
}

/// `fma(i, d, acc)` on one f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn fma1(i: i32, d: f32, acc: f32) -> f32 {
    _mm_cvtss_f32(_mm_fmadd_ss(
        _mm_cvtsi32_ss(_mm_setzero_ps(), i),
        _mm_set_ss(d),
        _mm_set_ss(acc),
    ))
}

/// The sum of the eight i32 lanes (exact).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_i32(v: __m256i) -> i32 {
    let q = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let d = _mm_add_epi32(q, _mm_unpackhi_epi64(q, q));
    _mm_cvtsi128_si32(_mm_add_epi32(d, _mm_shuffle_epi32::<0b01>(d)))
}

/// Q4_0·Q8_0 in the repacked order.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q4_0_q8_0_repacked(w: &[BlockQ4_0], a: &[BlockQ8_0]) -> f32 {
    let mut acc = 0f32;
    for (x, y) in w.iter().zip(a) {
        let d = x.d.to_f32() * y.d.to_f32();
        acc = fma1(hsum_i32(block_lanes(x, y)), d, acc);
    }
    acc
}

/// Four rows of Q4_0·Q8_0 in the repacked order; each as [`vec_dot_q4_0_q8_0_repacked`].
/// The four integer sums of a block are reduced together and the four accumulators advance
/// in one 128-bit FMA (lane `r` for row `r`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_q4_0_q8_0_repacked(
    w: [&[BlockQ4_0]; 4],
    a: &[BlockQ8_0],
) -> [f32; 4] {
    let (w, a) = common(w, a);
    let mut acc = _mm_setzero_ps();
    for (b, y) in a.iter().enumerate() {
        let x = w.map(|r| &r[b]);
        let v = x.map(|x| block_lanes(x, y));
        let h = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
        let sums = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256::<1>(h));
        let dw = _mm_cvtph_ps(_mm_setr_epi16(
            x[0].d.to_bits() as i16,
            x[1].d.to_bits() as i16,
            x[2].d.to_bits() as i16,
            x[3].d.to_bits() as i16,
            0,
            0,
            0,
            0,
        ));
        let d = _mm_mul_ps(dw, _mm_set1_ps(y.d.to_f32()));
        acc = _mm_fmadd_ps(_mm_cvtepi32_ps(sums), d, acc);
    }
    let mut out = [0f32; 4];
    // SAFETY: `out` is four writable f32; the store is unaligned.
    unsafe { _mm_storeu_ps(out.as_mut_ptr(), acc) };
    out
}
