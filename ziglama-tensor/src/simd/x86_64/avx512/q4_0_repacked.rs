//! Q4_0·Q8_0 in the order of llama.cpp's repacked Q4_0 kernels, AVX-512 VNNI: per block the
//! exact integer sum `I` of `(q - 8) * a`, then `acc = fma(I, d_w * d_a, acc)` in block order
//! ([`crate::formats::q4_0::vec_dot_ggml_repacked`], which every kernel here equals bit for
//! bit: only the integer sums are computed differently, and they are exact).
//!
//! - The single-row and four-row kernels (decoding) read the blocks as stored: each block's
//!   32 unsigned quants (`q`, `0..16`) against its 32 activation quants in `vpdpbusd`, minus
//!   `8 * sum(a)` (one more `vpdpbusd` per block, shared by the rows), reduced to one sum per
//!   row. The four-row kernel holds two rows per register and reduces the four rows of a
//!   block together.
//! - The panel (batches) repacks up to 16 weight rows at a time, as the other panels of
//!   [`super::panel`] do: the unsigned quants interleaved four elements at a time, 64 bytes =
//!   the same four elements of 16 rows. One broadcast of four activation quants (straight
//!   from the activation block, as the memory operand of `vpdpbusd`) against one 64-byte load
//!   gives four products of each of the 16 rows, and each block's sum starts from
//!   `-8 * sum(a)`, computed once per activation block for all the weight rows of the call.
//!   The float work is one conversion and one FMA per block for 16 outputs.

use std::arch::x86_64::*;

use super::super::avx2::legacy::{common, load_qs32, unpack_nibbles};
use super::super::avx2::q4_0_repacked::{fma1, hsum_i32, offsets, quad, repack, Offsets, Panel};
use super::matvec::{act2, nibbles2};
use crate::formats::{BlockQ4_0, BlockQ8_0, PANEL_ROWS};

/// The VNNI target features of this file.
macro_rules! vnni {
    ($item:item) => {
        #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
        $item
    };
}

vnni! {
/// Q4_0·Q8_0 in the repacked order, AVX-512 VNNI.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL/VNNI, AVX2, FMA and F16C.
pub(crate) unsafe fn vec_dot_q4_0_q8_0_repacked(w: &[BlockQ4_0], a: &[BlockQ8_0]) -> f32 {
    let zero = _mm256_setzero_si256();
    let eights = _mm256_set1_epi8(8);
    let mut acc = 0f32;
    for (x, y) in w.iter().zip(a) {
        let ya = load_qs32(&y.qs);
        let lanes = _mm256_sub_epi32(
            _mm256_dpbusd_epi32(zero, unpack_nibbles(&x.qs), ya),
            _mm256_dpbusd_epi32(zero, eights, ya),
        );
        acc = fma1(hsum_i32(lanes), x.d.to_f32() * y.d.to_f32(), acc);
    }
    acc
}
}

vnni! {
/// Four rows' block `b` (one row per 128-bit lane) against activation block `y`, one block:
/// the four integer sums, then `acc = fma(I, d_w * d_a, acc)` (lane `r` row `r`).
#[inline]
fn step1(x: [&BlockQ4_0; 4], y: &BlockQ8_0, acc: __m128) -> __m128 {
    let zero = _mm512_setzero_si512();
    let ya = act2(&y.qs);
    // -8 sum(a) in eight partial lanes, in both halves.
    let start = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, _mm512_set1_epi8(8), ya));
    // Rows 0 | 1 and rows 2 | 3: eight partial sums of each row.
    let s01 = _mm512_dpbusd_epi32(start, nibbles2(&x[0].qs, &x[1].qs), ya);
    let s23 = _mm512_dpbusd_epi32(start, nibbles2(&x[2].qs, &x[3].qs), ya);
    // Per 128-bit lane k: the sums of its four lanes of s01 and s23, as [s01, s23, s01,
    // s23]; lanes 0 and 1 hold rows 0 and 2, lanes 2 and 3 rows 1 and 3.
    let t = _mm512_add_epi32(
        _mm512_unpacklo_epi32(s01, s23),
        _mm512_unpackhi_epi32(s01, s23),
    );
    let u = _mm512_add_epi32(_mm512_unpacklo_epi64(t, t), _mm512_unpackhi_epi64(t, t));
    let v = _mm512_add_epi32(u, _mm512_shuffle_i32x4::<0b10_11_00_01>(u, u));
    // Lanes [0, 8, 1, 9]: the four rows' sums.
    let gather = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 1, 8, 0);
    let sums = _mm512_castsi512_si128(_mm512_permutexvar_epi32(gather, v));
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
    _mm_fmadd_ps(_mm_cvtepi32_ps(sums), d, acc)
}
}

vnni! {
/// The 16 bytes of packed quants of four blocks, one per 128-bit lane.
#[inline]
fn quants4(x: [&BlockQ4_0; 4]) -> __m512i {
    // SAFETY: each `qs` is 16 readable bytes; the loads are unaligned.
    let q = x.map(|x| unsafe { _mm_loadu_si128(x.qs.as_ptr().cast()) });
    let z = _mm512_castsi128_si512(q[0]);
    let z = _mm512_inserti32x4::<1>(z, q[1]);
    let z = _mm512_inserti32x4::<2>(z, q[2]);
    _mm512_inserti32x4::<3>(z, q[3])
}
}

vnni! {
/// The first 64 bytes of four consecutive blocks (their scales are words 0, 9, 18 and 27).
#[inline]
fn head64(blocks: &[BlockQ4_0; 4]) -> __m512i {
    let bytes: &[u8] = bytemuck::cast_slice(blocks);
    // SAFETY: `bytes` is 72 readable bytes; the load reads the first 64, unaligned.
    unsafe { _mm512_loadu_si512(bytes.as_ptr().cast()) }
}
}

vnni! {
/// Four rows' blocks `4 i..4 i + 4` against the activation blocks `y`: lane `4 k` of `acc`
/// is row `k`'s accumulator, advanced block by block, in order, by
/// `acc = fma(I, d_w * d_a, acc)`. The integer sums of the 16 row-blocks are reduced
/// together, and the 16 scales come from four loads.
#[inline]
fn step4(x: [&[BlockQ4_0; 4]; 4], y: &[BlockQ8_0; 4], acc: __m512) -> __m512 {
    let zero = _mm512_setzero_si512();
    let (m4, eights) = (_mm512_set1_epi8(0x0F), _mm512_set1_epi8(8));
    // Per block: lane 4 k + l of s[b] is a partial sum of row k (128-bit lane k).
    let s: [__m512i; 4] = std::array::from_fn(|b| {
        // SAFETY: 16 readable bytes each; the loads are unaligned.
        let (lo, hi) = unsafe {
            (
                _mm_loadu_si128(y[b].qs.as_ptr().cast()),
                _mm_loadu_si128(y[b].qs.as_ptr().add(16).cast()),
            )
        };
        let (alo, ahi) = (_mm512_broadcast_i32x4(lo), _mm512_broadcast_i32x4(hi));
        let sum8 = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, eights, alo), eights, ahi);
        let q = quants4([&x[0][b], &x[1][b], &x[2][b], &x[3][b]]);
        let (qlo, qhi) = (
            _mm512_and_si512(q, m4),
            _mm512_and_si512(_mm512_srli_epi16::<4>(q), m4),
        );
        let s = _mm512_dpbusd_epi32(_mm512_sub_epi32(zero, sum8), qlo, alo);
        _mm512_dpbusd_epi32(s, qhi, ahi)
    });
    // Lane 4 k + b: row k's sum of block b.
    let t01 = _mm512_add_epi32(_mm512_unpacklo_epi32(s[0], s[1]), _mm512_unpackhi_epi32(s[0], s[1]));
    let t23 = _mm512_add_epi32(_mm512_unpacklo_epi32(s[2], s[3]), _mm512_unpackhi_epi32(s[2], s[3]));
    let sums = _mm512_add_epi32(_mm512_unpacklo_epi64(t01, t23), _mm512_unpackhi_epi64(t01, t23));
    // The same layout of d_w: words 0, 9, 18, 27 of each row's 64 bytes.
    let pick = _mm512_set_epi16(
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 59, 50, 41, 32,
        27, 18, 9, 0,
    );
    let p01 = _mm512_permutex2var_epi16(head64(x[0]), pick, head64(x[1]));
    let p23 = _mm512_permutex2var_epi16(head64(x[2]), pick, head64(x[3]));
    let dw = _mm512_cvtph_ps(_mm256_inserti128_si256::<1>(
        _mm512_castsi512_si256(p01),
        _mm512_castsi512_si128(p23),
    ));
    let da = _mm512_broadcast_f32x4(_mm_cvtph_ps(_mm_setr_epi16(
        y[0].d.to_bits() as i16,
        y[1].d.to_bits() as i16,
        y[2].d.to_bits() as i16,
        y[3].d.to_bits() as i16,
        0,
        0,
        0,
        0,
    )));
    let d = _mm512_mul_ps(dw, da);
    let f = _mm512_cvtepi32_ps(sums);
    // Block b's terms moved to element 0 of each 128-bit lane, one FMA per block in order.
    let acc = _mm512_fmadd_ps(f, d, acc);
    let acc = _mm512_fmadd_ps(_mm512_permute_ps::<1>(f), _mm512_permute_ps::<1>(d), acc);
    let acc = _mm512_fmadd_ps(_mm512_permute_ps::<2>(f), _mm512_permute_ps::<2>(d), acc);
    _mm512_fmadd_ps(_mm512_permute_ps::<3>(f), _mm512_permute_ps::<3>(d), acc)
}
}

vnni! {
/// Four rows of Q4_0·Q8_0 in the repacked order, AVX-512 VNNI; each as
/// [`vec_dot_q4_0_q8_0_repacked`] of that row. Reads the blocks common to the four rows and
/// the activation: four blocks at a time ([`step4`]), then one at a time.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL/VNNI, AVX2, FMA and F16C.
pub(crate) unsafe fn vec_dot4_q4_0_q8_0_repacked(
    w: [&[BlockQ4_0]; 4],
    a: &[BlockQ8_0],
) -> [f32; 4] {
    let (w, a) = common(w, a);
    let groups = a.len() / 4;
    let mut acc16 = _mm512_setzero_ps();
    for i in 0..groups {
        let x: [&[BlockQ4_0; 4]; 4] = w.map(|r| {
            r[4 * i..4 * i + 4]
                .try_into()
                .expect("four blocks")
        });
        let y: &[BlockQ8_0; 4] = a[4 * i..4 * i + 4].try_into().expect("four blocks");
        acc16 = step4(x, y, acc16);
    }
    // Lanes 0, 4, 8, 12: the four rows.
    let lanes = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0);
    let mut acc = _mm512_castps512_ps128(_mm512_permutexvar_ps(lanes, acc16));
    for b in 4 * groups..a.len() {
        acc = step1(w.map(|r| &r[b]), &a[b], acc);
    }
    let mut out = [0f32; 4];
    // SAFETY: `out` is four writable f32; the store is unaligned.
    unsafe { _mm_storeu_ps(out.as_mut_ptr(), acc) };
    out
}
}

vnni! {
/// Sixteen lanes of a panel: the two eight-row halves of one group of quants.
#[inline]
fn load16(q: &[[u8; 32]; 2]) -> __m512i {
    // SAFETY: `q` is 64 readable bytes; the load is unaligned.
    unsafe { _mm512_loadu_si512(q.as_ptr().cast()) }
}
}

vnni! {
/// The panel against `C` activation rows (`a[c]`: the blocks of row `c` with their
/// [`Offsets`]): lane `r` of result `c` is row `r`'s dot product with activation row `c`.
#[inline]
fn rows<const C: usize>(p: &Panel, a: [(&[BlockQ8_0], &[i32], &[f32]); C]) -> [__m512; C] {
    let mut acc = [_mm512_setzero_ps(); C];
    for (b, dw) in p.d.iter().enumerate() {
        // Two chains of `vpdpbusd` per activation row (groups 0..4 and 4..8), so that
        // 2 C independent chains hide its latency; their sum is exact.
        let mut lo: [__m512i; C] = std::array::from_fn(|c| _mm512_set1_epi32(a[c].1[b]));
        let mut hi = [_mm512_setzero_si512(); C];
        for g in 0..4 {
            let (wlo, whi) = (load16(&p.q[8 * b + g]), load16(&p.q[8 * b + 4 + g]));
            for c in 0..C {
                let y = &a[c].0[b];
                lo[c] = _mm512_dpbusd_epi32(lo[c], wlo, _mm512_set1_epi32(quad(y, g)));
                hi[c] = _mm512_dpbusd_epi32(hi[c], whi, _mm512_set1_epi32(quad(y, 4 + g)));
            }
        }
        let sums: [__m512i; C] = std::array::from_fn(|c| _mm512_add_epi32(lo[c], hi[c]));
        // SAFETY: 16 readable f32; the load is unaligned.
        let dw = unsafe { _mm512_loadu_ps(dw.as_ptr()) };
        for c in 0..C {
            let d = _mm512_mul_ps(dw, _mm512_set1_ps(a[c].2[b]));
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums[c]), d, acc[c]);
        }
    }
    acc
}
}

vnni! {
/// [`rows`] for eight activation rows, one chain of `vpdpbusd` each (eight independent
/// chains hide its latency), each weight load shared by eight rows.
#[inline]
fn rows8(p: &Panel, a: [(&[BlockQ8_0], &[i32], &[f32]); 8]) -> [__m512; 8] {
    let mut acc = [_mm512_setzero_ps(); 8];
    for (b, dw) in p.d.iter().enumerate() {
        let mut sums: [__m512i; 8] = std::array::from_fn(|c| _mm512_set1_epi32(a[c].1[b]));
        for g in 0..8 {
            let w = load16(&p.q[8 * b + g]);
            for c in 0..8 {
                sums[c] = _mm512_dpbusd_epi32(sums[c], w, _mm512_set1_epi32(quad(&a[c].0[b], g)));
            }
        }
        // SAFETY: 16 readable f32; the load is unaligned.
        let dw = unsafe { _mm512_loadu_ps(dw.as_ptr()) };
        for c in 0..8 {
            let d = _mm512_mul_ps(dw, _mm512_set1_ps(a[c].2[b]));
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums[c]), d, acc[c]);
        }
    }
    acc
}
}

vnni! {
/// Q4_0 panel in the repacked order ([`crate::formats::RawPanel`], a wide one: any number of
/// weight rows): every output bit-identical to [`vec_dot_q4_0_q8_0_repacked`] on its pair of
/// rows. The activation blocks' offsets are computed once for all the weight rows; then each
/// group of 16 weight rows is repacked (it stays in L1) and goes against every activation
/// row, four at a time sharing each weight load.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL/VNNI, AVX2, FMA and F16C; `w` must be non-empty,
/// its rows of one length, and `out` long enough (as
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
        while j + 8 <= n {
            let v = rows8(&p, std::array::from_fn(|c| row(j + c)));
            for (c, v) in v.into_iter().enumerate() {
                store(j + c, v);
            }
            j += 8;
        }
        while j + 4 <= n {
            let v = rows::<4>(&p, std::array::from_fn(|c| row(j + c)));
            for (c, v) in v.into_iter().enumerate() {
                store(j + c, v);
            }
            j += 4;
        }
        while j < n {
            let [v] = rows::<1>(&p, [row(j)]);
            store(j, v);
            j += 1;
        }
    }
}
}
