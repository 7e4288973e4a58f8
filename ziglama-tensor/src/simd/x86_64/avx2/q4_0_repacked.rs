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

use super::legacy::{common, load_qs32, prefetch_ahead, prefetch_distance, unpack_nibbles};
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
pub(crate) fn fma1(i: i32, d: f32, acc: f32) -> f32 {
    _mm_cvtss_f32(_mm_fmadd_ss(
        _mm_cvtsi32_ss(_mm_setzero_ps(), i),
        _mm_set_ss(d),
        _mm_set_ss(acc),
    ))
}

/// The sum of the eight i32 lanes (exact).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn hsum_i32(v: __m256i) -> i32 {
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

/// One block of four rows in the layout of [`step4`]'s accumulator: `acc` lanes 0, 1, 4, 5
/// are rows 0, 2, 1, 3; the block's four integer sums are computed as in
/// [`vec_dot_q4_0_q8_0_repacked`] and each row advances by `fma(I, d_w * d_a, acc)`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn step1(x: [&BlockQ4_0; 4], y: &BlockQ8_0, acc: __m256) -> __m256 {
    let v = x.map(|x| block_lanes(x, y));
    // [r0 r1 r2 r3 | r0 r1 r2 r3], partial sums, then whole sums in both halves.
    let h = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    let sums = _mm256_add_epi32(h, _mm256_permute2x128_si256::<0x01>(h, h));
    // Lanes 0, 1, 4, 5: rows 0, 2, 1, 3.
    let sums = _mm256_permutevar8x32_epi32(sums, _mm256_setr_epi32(0, 2, 0, 0, 1, 3, 0, 0));
    let bits = |r: usize| x[r].d.to_bits() as i16;
    let dw = _mm256_cvtph_ps(_mm_setr_epi16(
        bits(0),
        bits(2),
        0,
        0,
        bits(1),
        bits(3),
        0,
        0,
    ));
    let d = _mm256_mul_ps(dw, _mm256_set1_ps(y.d.to_f32()));
    _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), d, acc)
}

/// The 16-bit partial sums of `(q - 8) * a` of two rows' blocks against one activation block
/// (`alo`, `ahi`: its quants 0..16 and 16..32 in both 128-bit halves; `m`: `8 * a` summed in
/// the same pairs): the low half row `x0`'s, the high half `x1`'s, each 16-bit lane the sum
/// of four products minus eight times their activations (at most `2 * 2 * 15 * 128 + 2 * 2 *
/// 8 * 128` in magnitude, exact), widened by pairs to eight i32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn pair(x0: &BlockQ4_0, x1: &BlockQ4_0, alo: __m256i, ahi: __m256i, m: __m256i) -> __m256i {
    let m4 = _mm256_set1_epi8(0x0F);
    // SAFETY: each `qs` is 16 readable bytes; the loads are unaligned.
    let v = unsafe { _mm256_loadu2_m128i(x1.qs.as_ptr().cast(), x0.qs.as_ptr().cast()) };
    let lo = _mm256_and_si256(v, m4);
    let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(v), m4);
    let p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, alo), _mm256_maddubs_epi16(hi, ahi));
    _mm256_madd_epi16(_mm256_sub_epi16(p, m), _mm256_set1_epi16(1))
}

/// Four rows' blocks `4 i..4 i + 4` against the activation blocks `y`, in the layout of the
/// accumulator (lanes 0, 1, 4, 5: rows 0, 2, 1, 3), each row advanced block by block, in
/// order, by `acc = fma(I, d_w * d_a, acc)`. The unsigned weight quants go through
/// `vpmaddubsw` against the activations, minus `8 * a` once per activation block; the 16
/// integer sums of four rows by four blocks are reduced together (six `vphaddd`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn step4(x: [&[BlockQ4_0; 4]; 4], y: &[BlockQ8_0; 4], acc: __m256) -> __m256 {
    let eights = _mm256_set1_epi8(8);
    // Per block: lanes 0..4 of the low half row 0 or 2 (the first of the pair), lanes 4..8
    // row 1 or 3.
    let s: [[__m256i; 2]; 4] = std::array::from_fn(|b| {
        // SAFETY: 16 readable bytes each; the loads are unaligned.
        let (alo, ahi) = unsafe {
            (
                _mm256_broadcastsi128_si256(_mm_loadu_si128(y[b].qs.as_ptr().cast())),
                _mm256_broadcastsi128_si256(_mm_loadu_si128(y[b].qs.as_ptr().add(16).cast())),
            )
        };
        let m = _mm256_add_epi16(
            _mm256_maddubs_epi16(eights, alo),
            _mm256_maddubs_epi16(eights, ahi),
        );
        [
            pair(&x[0][b], &x[1][b], alo, ahi, m),
            pair(&x[2][b], &x[3][b], alo, ahi, m),
        ]
    });
    // Per block: [r0 r0 r2 r2 | r1 r1 r3 r3], two partial sums each.
    let h: [__m256i; 4] = std::array::from_fn(|b| _mm256_hadd_epi32(s[b][0], s[b][1]));
    // [r0b0 r2b0 r0b1 r2b1 | r1b0 r3b0 r1b1 r3b1] and the same for blocks 2 and 3.
    let q01 = _mm256_cvtepi32_ps(_mm256_hadd_epi32(h[0], h[1]));
    let q23 = _mm256_cvtepi32_ps(_mm256_hadd_epi32(h[2], h[3]));
    let bits = |r: usize, b: usize| x[r][b].d.to_bits() as i16;
    let dw01 = _mm256_cvtph_ps(_mm_setr_epi16(
        bits(0, 0),
        bits(2, 0),
        bits(0, 1),
        bits(2, 1),
        bits(1, 0),
        bits(3, 0),
        bits(1, 1),
        bits(3, 1),
    ));
    let dw23 = _mm256_cvtph_ps(_mm_setr_epi16(
        bits(0, 2),
        bits(2, 2),
        bits(0, 3),
        bits(2, 3),
        bits(1, 2),
        bits(3, 2),
        bits(1, 3),
        bits(3, 3),
    ));
    let da = _mm256_castps128_ps256(_mm_cvtph_ps(_mm_setr_epi16(
        y[0].d.to_bits() as i16,
        y[1].d.to_bits() as i16,
        y[2].d.to_bits() as i16,
        y[3].d.to_bits() as i16,
        0,
        0,
        0,
        0,
    )));
    let d01 = _mm256_mul_ps(
        dw01,
        _mm256_permutevar8x32_ps(da, _mm256_setr_epi32(0, 0, 1, 1, 0, 0, 1, 1)),
    );
    let d23 = _mm256_mul_ps(
        dw23,
        _mm256_permutevar8x32_ps(da, _mm256_setr_epi32(2, 2, 3, 3, 2, 2, 3, 3)),
    );
    // Blocks 1 and 3 moved to lanes 0, 1 of each half; one FMA per block, in order.
    let acc = _mm256_fmadd_ps(q01, d01, acc);
    let acc = _mm256_fmadd_ps(
        _mm256_permute_ps::<0b11_10_11_10>(q01),
        _mm256_permute_ps::<0b11_10_11_10>(d01),
        acc,
    );
    let acc = _mm256_fmadd_ps(q23, d23, acc);
    _mm256_fmadd_ps(
        _mm256_permute_ps::<0b11_10_11_10>(q23),
        _mm256_permute_ps::<0b11_10_11_10>(d23),
        acc,
    )
}

/// Four rows of Q4_0·Q8_0 in the repacked order; each as [`vec_dot_q4_0_q8_0_repacked`] of
/// that row. Reads the blocks common to the four rows and the activation: four blocks at a
/// time ([`step4`]), then one at a time ([`step1`]); prefetches each row's blocks one group
/// of four rows ahead, as the other four-row kernels do.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_q4_0_q8_0_repacked(
    w: [&[BlockQ4_0]; 4],
    a: &[BlockQ8_0],
) -> [f32; 4] {
    let (w, a) = common(w, a);
    let dist = prefetch_distance(w[0]);
    let groups = a.len() / 4;
    let mut acc = _mm256_setzero_ps();
    for i in 0..groups {
        let x: [&[BlockQ4_0; 4]; 4] =
            w.map(|r| r[4 * i..4 * i + 4].try_into().expect("four blocks"));
        for r in x {
            // The four blocks' 72 bytes lie in the lines of bytes 0, 36 and 71.
            prefetch_ahead(&r[0], dist);
            prefetch_ahead(&r[2], dist);
            prefetch_ahead(&r[3], dist + 17);
        }
        let y: &[BlockQ8_0; 4] = a[4 * i..4 * i + 4].try_into().expect("four blocks");
        acc = step4(x, y, acc);
    }
    for b in 4 * groups..a.len() {
        acc = step1(w.map(|r| &r[b]), &a[b], acc);
    }
    // [r0 r2 . . | r1 r3 . .] to [r0 r1 r2 r3].
    let v = _mm_unpacklo_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc));
    let mut out = [0f32; 4];
    // SAFETY: `out` is four writable f32; the store is unaligned.
    unsafe { _mm_storeu_ps(out.as_mut_ptr(), v) };
    out
}

/// Up to 16 Q4_0 rows repacked for the panel (rows past the last are zero), in two halves of
/// eight rows, one 256-bit register each (the two halves of an index are also the 16 rows'
/// lanes of one 512-bit register, which the AVX-512 BW panel uses).
pub(crate) struct Panel {
    /// Index `8 b + g`, half `h`: bytes `4 r..4 r + 4` are the unsigned quants (`0..16`) of
    /// elements `4 g..4 g + 4` of block `b` of row `8 h + r`.
    pub(crate) q: Vec<[[u8; 32]; 2]>,
    /// Index `b`: each row's block scale as f32.
    pub(crate) d: Vec<[f32; 16]>,
}

/// Repacks up to 16 rows `w` into `p`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn repack(p: &mut Panel, w: &[&[BlockQ4_0]]) {
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
pub(crate) struct Offsets {
    /// Index `i`: `-8 * sum(a)` of activation block `i`.
    pub(crate) start: Vec<i32>,
    /// Index `i`: the scale of activation block `i` as f32.
    pub(crate) d: Vec<f32>,
}

/// Fills `o` for the activation blocks `a`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn offsets(o: &mut Offsets, a: &[BlockQ8_0]) {
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
pub(crate) fn quad(y: &BlockQ8_0, g: usize) -> i32 {
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
const PANEL_COLS: usize = 6;
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
