//! Q4_0·Q8_0 in the order of llama.cpp's repacked Q4_0 kernels, a GEMM panel for AVX-512 BW
//! without VNNI: per block the exact integer sum `I` of `(q - 8) * a`, then
//! `acc = fma(I, d_w * d_a, acc)` in block order
//! ([`crate::formats::q4_0::vec_dot_ggml_repacked`], which it equals bit for bit).
//!
//! The panel is the AVX2 one ([`super::super::avx2::q4_0_repacked`], whose repacking and
//! activation offsets it shares) with 512-bit registers: the 16 weight rows of a panel are
//! the 16 lanes of one register (four unsigned quants per lane), so one `vpmaddubsw` with a
//! broadcast of four activation quants advances all 16 rows; the eight groups of a block are
//! added in 16 bits (each lane at most `8 * 2 * 15 * 128 = 30720` in magnitude, exact), then
//! `vpmaddwd` with ones, plus the block's `-8 * sum(a)`, one conversion and one FMA per block.
//! Its single-row and four-row kernels are the AVX2 ones (the same order and results).

use std::arch::x86_64::*;

use super::super::avx2::q4_0_repacked::{offsets, quad, repack, Offsets, Panel};
use crate::formats::{BlockQ4_0, BlockQ8_0, PANEL_ROWS};

/// The target features of this file.
macro_rules! bw {
    ($item:item) => {
        #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
        $item
    };
}

/// Activation rows per pass of [`rows`].
const PANEL_COLS: usize = 8;

bw! {
/// The panel against `C` activation rows (`a[c]`: the blocks of row `c` with their
/// [`Offsets`]): lane `r` of result `c` is weight row `r`'s dot product with activation row
/// `c`.
#[inline]
fn rows<const C: usize>(p: &Panel, a: [(&[BlockQ8_0], &[i32], &[f32]); C]) -> [__m512; C] {
    let ones = _mm512_set1_epi16(1);
    let mut acc = [_mm512_setzero_ps(); C];
    for (b, dw) in p.d.iter().enumerate() {
        let mut s = [_mm512_setzero_si512(); C];
        for g in 0..8 {
            let q = &p.q[8 * b + g];
            // SAFETY: `q` is 64 readable bytes (two arrays of 32, contiguous); the load is
            // unaligned.
            let w = unsafe { _mm512_loadu_si512(q.as_ptr().cast()) };
            for c in 0..C {
                let y = _mm512_set1_epi32(quad(&a[c].0[b], g));
                s[c] = _mm512_add_epi16(s[c], _mm512_maddubs_epi16(w, y));
            }
        }
        // SAFETY: 16 readable f32; the load is unaligned.
        let dw = unsafe { _mm512_loadu_ps(dw.as_ptr()) };
        for c in 0..C {
            let i = _mm512_add_epi32(_mm512_madd_epi16(s[c], ones), _mm512_set1_epi32(a[c].1[b]));
            let d = _mm512_mul_ps(dw, _mm512_set1_ps(a[c].2[b]));
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), d, acc[c]);
        }
    }
    acc
}
}

bw! {
/// Q4_0 panel in the repacked order, AVX-512 BW ([`crate::formats::RawPanel`], a wide one:
/// any number of weight rows): every output bit-identical to
/// [`crate::formats::q4_0::vec_dot_ggml_repacked`] on its pair of rows. The activation
/// blocks' offsets are computed once for all the weight rows; then each group of 16 weight
/// rows is repacked and goes against every activation row, [`PANEL_COLS`] at a time sharing
/// each weight load.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL, AVX2, FMA and F16C; `w` must be non-empty, its
/// rows of one length, and `out` long enough (as
/// [`crate::formats::DotKernel::call_panel`] checks).
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
        let mut store = |j: usize, v: __m512| {
            let o = &mut out[j * stride..j * stride + n_rows];
            // SAFETY: `o` is `n_rows <= 16` writable f32 (the slice above is bounds-checked);
            // the masked store writes exactly those lanes, unaligned.
            unsafe { _mm512_mask_storeu_ps(o.as_mut_ptr(), ((1u32 << n_rows) - 1) as u16, v) };
        };
        let mut j = 0;
        while j + PANEL_COLS <= n {
            let v = rows::<PANEL_COLS>(&p, std::array::from_fn(|c| row(j + c)));
            for (c, v) in v.into_iter().enumerate() {
                store(j + c, v);
            }
            j += PANEL_COLS;
        }
        while j < n {
            let [v] = rows::<1>(&p, [row(j)]);
            store(j, v);
            j += 1;
        }
    }
}
}
