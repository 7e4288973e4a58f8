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
use crate::formats::{BlockQ4_0, BlockQ8_0, PANEL_ROWS};

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

/// Up to 16 Q4_0 rows repacked for the panel (rows past the last are zero), in two halves of
/// eight rows, one 256-bit register each.
struct Panel {
    /// Index `8 b + g`, half `h`: bytes `4 r..4 r + 4` are the unsigned quants (`0..16`) of
    /// elements `4 g..4 g + 4` of block `b` of row `8 h + r`.
    q: Vec<[[u8; 32]; 2]>,
    /// Index `b`: each row's block scale as f32.
    d: Vec<[f32; 16]>,
}

/// Repacks up to 16 rows `w` into `p`.
#[target_feature(enable = "avx2,fma,f16c")]
fn repack(p: &mut Panel, w: &[&[BlockQ4_0]]) {
    let nb = w[0].len();
    p.q.clear();
    p.q.resize(8 * nb, [[0; 32]; 2]);
    p.d.clear();
    p.d.resize(nb, [0.0; 16]);
    let m4 = _mm_set1_epi8(0x0F);
    for (r, row) in w.iter().enumerate().take(PANEL_ROWS) {
        let (h, k) = (r / 8, 4 * (r % 8));
        for (b, x) in row.iter().enumerate() {
            p.d[b][r] = x.d.to_f32();
            // SAFETY: `qs` is 16 readable bytes; the load is unaligned.
            let v = unsafe { _mm_loadu_si128(x.qs.as_ptr().cast()) };
            let mut quads = [0u32; 8];
            // SAFETY: `quads` is 32 writable bytes; the stores are unaligned.
            unsafe {
                _mm_storeu_si128(quads.as_mut_ptr().cast(), _mm_and_si128(v, m4));
                _mm_storeu_si128(
                    quads.as_mut_ptr().add(4).cast(),
                    _mm_and_si128(_mm_srli_epi16::<4>(v), m4),
                );
            }
            for (g, quad) in quads.iter().enumerate() {
                p.q[8 * b + g][h][k..k + 4].copy_from_slice(&quad.to_le_bytes());
            }
        }
    }
}

/// Per activation block: `-8 * sum(a)` (the offset of the unsigned weight quants, which
/// starts each block's integer sum) and the scale as f32.
#[derive(Default)]
struct Offsets {
    start: Vec<i32>,
    d: Vec<f32>,
}

/// Fills `o` for the activation blocks `a`.
#[target_feature(enable = "avx2,fma,f16c")]
fn offsets(o: &mut Offsets, a: &[BlockQ8_0]) {
    o.start.clear();
    o.d.clear();
    o.start.reserve(a.len());
    o.d.reserve(a.len());
    let minus8 = _mm256_set1_epi16(-8);
    for y in a {
        let pairs = _mm256_maddubs_epi16(_mm256_set1_epi8(1), load_qs32(&y.qs));
        o.start.push(hsum_i32(_mm256_madd_epi16(pairs, minus8)));
        o.d.push(y.d.to_f32());
    }
}

/// Four activation quants of a block (`g` of its eight groups) as one i32, to broadcast.
#[inline]
fn quad(y: &BlockQ8_0, g: usize) -> i32 {
    let q = &y.qs[4 * g..4 * g + 4];
    i32::from_le_bytes([q[0] as u8, q[1] as u8, q[2] as u8, q[3] as u8])
}

/// One half (eight weight rows) of a panel's group of quants.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load8(q: &[u8; 32]) -> __m256i {
    // SAFETY: `q` is 32 readable bytes; the load is unaligned.
    unsafe { _mm256_loadu_si256(q.as_ptr().cast()) }
}

/// Halves `h0..h0 + H` of the panel (eight weight rows each) against `C` activation rows
/// (`a[c]`: the blocks of row `c` with their [`Offsets`]): lane `r` of result `[c][h]` is row
/// `8 (h0 + h) + r`'s dot product with activation row `c`.
///
/// Per block, `vpmaddubsw` of the unsigned weight quants with a broadcast of four activation
/// quants gives two sums of two products per row (each at most `2 * 15 * 128` in magnitude);
/// the eight groups of the block are added in 16 bits (at most `8 * 3840 = 30720`, exact),
/// then `vpmaddwd` with ones sums each row's pair, the block's `-8 * sum(a)` is added, and
/// one conversion and one FMA advance each row's accumulator.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn rows<const C: usize, const H: usize>(
    p: &Panel,
    h0: usize,
    a: [(&[BlockQ8_0], &[i32], &[f32]); C],
) -> [[__m256; H]; C] {
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[_mm256_setzero_ps(); H]; C];
    for (b, dw) in p.d.iter().enumerate() {
        let mut s = [[_mm256_setzero_si256(); H]; C];
        for g in 0..8 {
            let w: [__m256i; H] = std::array::from_fn(|h| load8(&p.q[8 * b + g][h0 + h]));
            for c in 0..C {
                let y = _mm256_set1_epi32(quad(&a[c].0[b], g));
                for h in 0..H {
                    s[c][h] = _mm256_add_epi16(s[c][h], _mm256_maddubs_epi16(w[h], y));
                }
            }
        }
        // SAFETY: 8 readable f32 at 8 (h0 + h) (h0 + h < 2); the loads are unaligned.
        let dw: [__m256; H] =
            std::array::from_fn(|h| unsafe { _mm256_loadu_ps(dw.as_ptr().add(8 * (h0 + h))) });
        for c in 0..C {
            let start = _mm256_set1_epi32(a[c].1[b]);
            let da = _mm256_set1_ps(a[c].2[b]);
            for h in 0..H {
                let i = _mm256_add_epi32(_mm256_madd_epi16(s[c][h], ones), start);
                let d = _mm256_mul_ps(dw[h], da);
                acc[c][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i), d, acc[c][h]);
            }
        }
    }
    acc
}

/// Activation rows per pass of [`rows`] over a half of the panel.
const PANEL_COLS: usize = 4;
/// Halves of the panel per pass of [`rows`].
const PANEL_HALVES: usize = 2;

/// Q4_0 panel in the repacked order, AVX2 ([`crate::formats::RawPanel`], a wide one: any
/// number of weight rows): every output bit-identical to [`vec_dot_q4_0_q8_0_repacked`] on
/// its pair of rows. The activation blocks' offsets are computed once for all the weight
/// rows; then each group of 16 weight rows is repacked (it stays in L1) and goes against
/// every activation row, [`PANEL_COLS`] at a time sharing each weight load.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; `w` must be non-empty, its rows of one length,
/// and `out` long enough (as [`crate::formats::DotKernel::call_panel`] checks).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn panel_q4_0_q8_0_repacked(
    w: &[&[BlockQ4_0]],
    a: &[BlockQ8_0],
    out: &mut [f32],
    stride: usize,
) {
    let nb = w[0].len();
    if nb == 0 {
        return;
    }
    let n = a.len() / nb;
    let mut o = Offsets::default();
    offsets(&mut o, a);
    let row = |j: usize| {
        let blocks = j * nb..(j + 1) * nb;
        (&a[blocks.clone()], &o.start[blocks.clone()], &o.d[blocks])
    };
    let mut p = Panel {
        q: Vec::new(),
        d: Vec::new(),
    };
    for (i, w) in w.chunks(PANEL_ROWS).enumerate() {
        repack(&mut p, w);
        let out = &mut out[i * PANEL_ROWS..];
        let n_rows = w.len();
        let halves = n_rows.div_ceil(8);
        let mut store = |j: usize, h: usize, v: __m256| {
            let k = (n_rows - 8 * h).min(8);
            let mut t = [0f32; 8];
            // SAFETY: `t` is 8 writable f32; the store is unaligned.
            unsafe { _mm256_storeu_ps(t.as_mut_ptr(), v) };
            out[j * stride + 8 * h..j * stride + 8 * h + k].copy_from_slice(&t[..k]);
        };
        let run = |h0: usize, hs: usize, store: &mut dyn FnMut(usize, usize, __m256)| {
            let mut j = 0;
            macro_rules! pass {
                ($c:expr, $h:expr) => {{
                    let v = rows::<$c, $h>(&p, h0, std::array::from_fn(|c| row(j + c)));
                    for (c, v) in v.into_iter().enumerate() {
                        for (h, v) in v.into_iter().enumerate() {
                            store(j + c, h0 + h, v);
                        }
                    }
                    j += $c;
                }};
            }
            while j + PANEL_COLS <= n {
                if hs == 2 {
                    pass!(PANEL_COLS, PANEL_HALVES);
                } else {
                    pass!(PANEL_COLS, 1);
                }
            }
            while j < n {
                if hs == 2 {
                    pass!(1, 2);
                } else {
                    pass!(1, 1);
                }
            }
        };
        if PANEL_HALVES == 2 && halves == 2 {
            run(0, 2, &mut store);
        } else {
            for h in 0..halves {
                run(h, 1, &mut store);
            }
        }
    }
}
