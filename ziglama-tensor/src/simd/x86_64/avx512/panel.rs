//! AVX-512 GEMM panels ([`crate::formats::RawPanel`]): up to 16 weight rows against every
//! activation row of a batch, one 32-bit lane per weight row.
//!
//! A panel repacks its weight rows once: the quants unpacked to one byte each and interleaved
//! four elements at a time (64 bytes = the same four elements of 16 rows), and the per-block
//! scales laid out one lane per row. Then, for every activation row, one broadcast of four
//! activation quants against one 64-byte load of weights gives four products of each of the
//! 16 rows (`vpdpbusd` with VNNI, `vpmaddubsw` + `vpmaddwd` without), so the integer sums of
//! 16 outputs build up in the lanes of one register with no unpacking and no horizontal
//! reduction; four activation rows go together, sharing each weight load. Each output keeps
//! the float operations of the single-row kernel it replaces, in the same order, on the same
//! exact integers, so it is bit-identical to it (`tests/gemm_tiles.rs` checks every output).

use std::arch::x86_64::*;

use crate::formats::q4_k::unpack_scales_mins;
use crate::formats::q8_k::BlockQ8_K;
use crate::formats::{BlockQ4_0, BlockQ4_K, BlockQ5_0, BlockQ6_K, BlockQ8_0, PANEL_ROWS};

/// Up to 16 Q4_K rows repacked for the panel kernels (rows past the last are zero).
struct Q4kPanel {
    /// Super-blocks per row.
    nb: usize,
    /// Index `64 b + g`: bytes `4 r..4 r + 4` are elements `4 g..4 g + 4` of super-block `b`
    /// of row `r`, one unsigned quant (`0..16`) per byte.
    q: Vec<[u8; 64]>,
    /// Index `8 b + j`: the scale of sub-block `j` of super-block `b`, lane `r` row `r`.
    sc: Vec<[i32; 16]>,
    /// The same as i16 pairs (`[2 r]` and `[2 r + 1]` both row `r`'s), for `vpmaddwd`.
    sc16: Vec<[i16; 32]>,
    /// Index `4 b + k`: `[2 r]` the minimum of sub-block `2 k`, `[2 r + 1]` of `2 k + 1`.
    mins: Vec<[i16; 32]>,
    /// Index `b`: `d` and `dmin` of each row as f32.
    d: Vec<[f32; 16]>,
    dmin: Vec<[f32; 16]>,
}

impl Q4kPanel {
    fn new(w: &[&[BlockQ4_K]]) -> Self {
        let nb = w[0].len();
        let mut p = Q4kPanel {
            nb,
            q: vec![[0; 64]; 64 * nb],
            sc: vec![[0; 16]; 8 * nb],
            sc16: vec![[0; 32]; 8 * nb],
            mins: vec![[0; 32]; 4 * nb],
            d: vec![[0.0; 16]; nb],
            dmin: vec![[0.0; 16]; nb],
        };
        for (r, row) in w.iter().enumerate().take(PANEL_ROWS) {
            for (b, x) in row.iter().enumerate() {
                let (sc, m) = unpack_scales_mins(&x.scales);
                for (j, &s) in sc.iter().enumerate() {
                    p.sc[8 * b + j][r] = i32::from(s);
                    p.sc16[8 * b + j][2 * r] = i16::from(s);
                    p.sc16[8 * b + j][2 * r + 1] = i16::from(s);
                }
                for k in 0..4 {
                    p.mins[4 * b + k][2 * r] = i16::from(m[2 * k]);
                    p.mins[4 * b + k][2 * r + 1] = i16::from(m[2 * k + 1]);
                }
                p.d[b][r] = x.d.to_f32();
                p.dmin[b][r] = x.dmin.to_f32();
                for k in 0..4 {
                    for l in 0..32 {
                        let q = x.qs[32 * k + l];
                        for (i, v) in [(64 * k + l, q & 0xF), (64 * k + 32 + l, q >> 4)] {
                            p.q[64 * b + i / 4][4 * r + i % 4] = v;
                        }
                    }
                }
            }
        }
        p
    }
}

/// Four activation quants starting at element `4 g` of `y`, broadcast to every lane.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn quad(y: &BlockQ8_K, g: usize) -> __m512i {
    let q: [i8; 4] = y.qs[4 * g..4 * g + 4]
        .try_into()
        .unwrap_or_else(|_| unreachable!());
    _mm512_set1_epi32(i32::from_le_bytes(q.map(|v| v as u8)))
}

/// `(bsums[4 k] + bsums[4 k + 1], bsums[4 k + 2] + bsums[4 k + 3])` of `y` as two i16 in one
/// dword, broadcast: the activation sums of sub-blocks `2 k` and `2 k + 1` (each at most
/// `32 * 128` in magnitude).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn bsum_pair(y: &BlockQ8_K, k: usize) -> __m512i {
    let s = |j: usize| y.bsums[2 * j].wrapping_add(y.bsums[2 * j + 1]);
    let (lo, hi) = (s(2 * k) as u16 as u32, s(2 * k + 1) as u16 as u32);
    _mm512_set1_epi32((lo | (hi << 16)) as i32)
}

/// A 64-byte load.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn load_bytes<T: bytemuck::Pod>(v: &T) -> __m512i {
    const { assert!(std::mem::size_of::<T>() == 64) };
    // SAFETY: `v` is 64 readable bytes (checked above); the load is unaligned.
    unsafe { _mm512_loadu_si512((v as *const T).cast()) }
}

/// Sixteen f32 of a panel.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn load_f32(v: &[f32; 16]) -> __m512 {
    // SAFETY: 16 readable f32; the load is unaligned.
    unsafe { _mm512_loadu_ps(v.as_ptr()) }
}

/// The Q4_K panel in the order of llama.cpp's repacked matrix-matrix kernel
/// ([`crate::formats::q4_k::vec_dot_ggml_gemm`]) for `C` activation rows: per super-block and
/// pair of sub-blocks `k`, the exact integer sums `I_k` (scales applied) and `M_k` (minimum
/// terms) of each of the 16 rows, then `acc = fma(I_k, d_w * d_a, acc)` and
/// `acc_min = fma(M_k, dmin_w * d_a, acc_min)`; the result is `acc - acc_min`, lane `r` for
/// row `r`. `$sub` maps (the sum so far, 64 weight bytes, broadcast activation quads, the
/// sub-block's scales as i32 and as i16 pairs) to the sum with four more products per lane;
/// `$scale` maps a sub-block's sum and its i32 scales to the scaled sum (for a `$sub` that
/// does not apply the scale itself).
macro_rules! q4k_gemm_rows {
    ($name:ident, $features:literal, $sub:ident, $scale:ident) => {
        #[inline]
        #[target_feature(enable = $features)]
        fn $name<const C: usize>(p: &Q4kPanel, a: [&[BlockQ8_K]; C]) -> [__m512; C] {
            let mut acc = [_mm512_setzero_ps(); C];
            let mut acc_min = [_mm512_setzero_ps(); C];
            for b in 0..p.nb {
                let y: [&BlockQ8_K; C] = std::array::from_fn(|c| &a[c][b]);
                let (dw, dminw) = (load_f32(&p.d[b]), load_f32(&p.dmin[b]));
                let d: [__m512; C] =
                    std::array::from_fn(|c| _mm512_mul_ps(dw, _mm512_set1_ps(y[c].d)));
                let dmin: [__m512; C] =
                    std::array::from_fn(|c| _mm512_mul_ps(dminw, _mm512_set1_ps(y[c].d)));
                for k in 0..4 {
                    let mut isum = [_mm512_setzero_si512(); C];
                    for j in [2 * k, 2 * k + 1] {
                        let (s32, s16) =
                            (load_bytes(&p.sc[8 * b + j]), load_bytes(&p.sc16[8 * b + j]));
                        let mut sub = [_mm512_setzero_si512(); C];
                        for g in 8 * j..8 * j + 8 {
                            let wq = load_bytes(&p.q[64 * b + g]);
                            for c in 0..C {
                                sub[c] = $sub(sub[c], wq, quad(y[c], g), s16);
                            }
                        }
                        for c in 0..C {
                            isum[c] = _mm512_add_epi32(isum[c], $scale(sub[c], s32));
                        }
                    }
                    let mins = load_bytes(&p.mins[4 * b + k]);
                    for c in 0..C {
                        let m = _mm512_madd_epi16(mins, bsum_pair(y[c], k));
                        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[c]), d[c], acc[c]);
                        acc_min[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(m), dmin[c], acc_min[c]);
                    }
                }
            }
            std::array::from_fn(|c| _mm512_sub_ps(acc[c], acc_min[c]))
        }
    };
}

/// Four products per lane by VNNI, unscaled: a sub-block's raw sum is at most
/// `32 * 15 * 128` in magnitude.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
fn sub_vnni(sum: __m512i, wq: __m512i, aq: __m512i, _s16: __m512i) -> __m512i {
    _mm512_dpbusd_epi32(sum, wq, aq)
}

/// The raw sub-block sum times its scale (below 64): at most `60 * 10^3 * 63`, exact.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn scale_mul(sum: __m512i, s32: __m512i) -> __m512i {
    _mm512_mullo_epi32(sum, s32)
}

/// Four products per lane, scaled: `vpmaddubsw` pairs (at most `2 * 15 * 128`, exact in i16),
/// then `vpmaddwd` with the scale pairs into i32.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn sub_bw(sum: __m512i, wq: __m512i, aq: __m512i, s16: __m512i) -> __m512i {
    _mm512_add_epi32(sum, _mm512_madd_epi16(_mm512_maddubs_epi16(wq, aq), s16))
}

/// The sum as it is (`sub_bw` applied the scale).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn scale_none(sum: __m512i, _s32: __m512i) -> __m512i {
    sum
}

q4k_gemm_rows!(
    q4k_gemm_rows_vnni,
    "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c",
    sub_vnni,
    scale_mul
);
q4k_gemm_rows!(
    q4k_gemm_rows_bw,
    "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c",
    sub_bw,
    scale_none
);

/// Runs `rows::<4>` over the activation rows four at a time and `rows::<1>` over the rest,
/// storing lane `r` of activation row `j`'s result at `out[j * stride + r]`.
macro_rules! panel_driver {
    ($w:expr, $a:expr, $out:expr, $stride:expr, $panel:expr, $rows:ident) => {{
        let (w, a, out, stride) = ($w, $a, $out, $stride);
        let n_rows = w.len().min(PANEL_ROWS);
        let nb = w[0].len();
        let p = $panel;
        let n = if nb == 0 { 0 } else { a.len() / nb };
        let row = |j: usize| &a[j * nb..(j + 1) * nb];
        let mut store = |j: usize, v: __m512| {
            let mut lanes = [0f32; 16];
            // SAFETY: `lanes` is 16 writable f32; the store is unaligned.
            unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), v) };
            out[j * stride..j * stride + n_rows].copy_from_slice(&lanes[..n_rows]);
        };
        let mut j = 0;
        while j + 4 <= n {
            let v = $rows::<4>(&p, std::array::from_fn(|c| row(j + c)));
            for (c, v) in v.into_iter().enumerate() {
                store(j + c, v);
            }
            j += 4;
        }
        while j < n {
            let [v] = $rows::<1>(&p, [row(j)]);
            store(j, v);
            j += 1;
        }
    }};
}

/// Q4_K panel in the repacked matrix-matrix order, with VNNI (see [`q4_k_q8_k_gemm`]).
///
/// # Safety
/// The CPU must support AVX-512 F, BW, DQ, VL and VNNI, AVX2, FMA and F16C; `w` must be
/// non-empty, its rows of one length, and `out` long enough (as
/// [`crate::formats::DotKernel::call_panel`] checks).
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn q4_k_q8_k_gemm_vnni(
    w: &[&[BlockQ4_K]],
    a: &[BlockQ8_K],
    out: &mut [f32],
    stride: usize,
) {
    panel_driver!(w, a, out, stride, Q4kPanel::new(w), q4k_gemm_rows_vnni)
}

/// Q4_K panel in the order of llama.cpp's repacked matrix-matrix kernel: every output
/// bit-identical to `avx512::kquant::vec_dot_q4_k_q8_k_gemm` (and so to
/// [`crate::formats::q4_k::vec_dot_ggml_gemm`]) of its pair of rows.
///
/// # Safety
/// The CPU must support AVX-512 F, BW, DQ and VL, AVX2, FMA and F16C; `w` must be non-empty,
/// its rows of one length, and `out` long enough (as
/// [`crate::formats::DotKernel::call_panel`] checks).
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn q4_k_q8_k_gemm(
    w: &[&[BlockQ4_K]],
    a: &[BlockQ8_K],
    out: &mut [f32],
    stride: usize,
) {
    panel_driver!(w, a, out, stride, Q4kPanel::new(w), q4k_gemm_rows_bw)
}

/// A legacy weight block whose quants, shifted by `OFFSET`, are unsigned bytes: the value of
/// quant `i` is `d * (u[i] - OFFSET)` with `u[i]` in `0..=255`.
trait UnsignedQuants: bytemuck::Pod {
    /// What the unsigned quants are shifted by (8 for Q4_0, 16 for Q5_0, 128 for Q8_0).
    const OFFSET: i32;
    /// The 32 unsigned quants, in element order.
    fn unsigned(&self) -> [u8; 32];
    /// The block scale.
    fn scale(&self) -> f32;
}

/// The 32 nibbles of a Q4_0 / Q5_0 block in element order: the low nibbles of the 16 bytes,
/// then the high ones.
fn nibbles(qs: &[u8; 16]) -> [u8; 32] {
    let v = u128::from_le_bytes(*qs);
    let m = u128::from_le_bytes([0x0F; 16]);
    let mut u = [0u8; 32];
    u[..16].copy_from_slice(&(v & m).to_le_bytes());
    u[16..].copy_from_slice(&((v >> 4) & m).to_le_bytes());
    u
}

impl UnsignedQuants for BlockQ4_0 {
    const OFFSET: i32 = 8;
    fn unsigned(&self) -> [u8; 32] {
        nibbles(&self.qs)
    }
    fn scale(&self) -> f32 {
        self.d.to_f32()
    }
}

/// Byte `j` of entry `b` is `0x10` where bit `j` of `b` is set: eight fifth bits of Q5_0 at
/// a time.
const FIFTH_BITS: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut b = 0;
    while b < 256 {
        let mut j = 0;
        while j < 8 {
            if b & (1 << j) != 0 {
                t[b] |= 0x10 << (8 * j);
            }
            j += 1;
        }
        b += 1;
    }
    t
};

impl UnsignedQuants for BlockQ5_0 {
    const OFFSET: i32 = 16;
    fn unsigned(&self) -> [u8; 32] {
        let mut u = nibbles(&self.qs);
        for (chunk, &bits) in u.chunks_exact_mut(8).zip(&self.qh) {
            let high = FIFTH_BITS[bits as usize].to_le_bytes();
            for (u, h) in chunk.iter_mut().zip(high) {
                *u |= h;
            }
        }
        u
    }
    fn scale(&self) -> f32 {
        self.d.to_f32()
    }
}

impl UnsignedQuants for BlockQ8_0 {
    const OFFSET: i32 = 128;
    fn unsigned(&self) -> [u8; 32] {
        self.qs.map(|q| (q as u8) ^ 0x80)
    }
    fn scale(&self) -> f32 {
        self.d.to_f32()
    }
}

/// Up to 16 rows of a legacy format repacked for the panel kernels (rows past the last are
/// zero).
struct LegacyPanel {
    /// Index `8 b + g`: bytes `4 r..4 r + 4` are the unsigned quants of elements
    /// `4 g..4 g + 4` of block `b` of row `r`.
    q: Vec<[u8; 64]>,
    /// Index `b`: each row's block scale as f32.
    d: Vec<[f32; 16]>,
}

impl LegacyPanel {
    fn new<W: UnsignedQuants>(w: &[&[W]]) -> Self {
        let nb = w[0].len();
        let mut p = LegacyPanel {
            q: vec![[0; 64]; 8 * nb],
            d: vec![[0.0; 16]; nb],
        };
        for (r, row) in w.iter().enumerate().take(PANEL_ROWS) {
            for (b, x) in row.iter().enumerate() {
                p.d[b][r] = x.scale();
                let u = x.unsigned();
                for (g, quad) in u.chunks_exact(4).enumerate() {
                    p.q[8 * b + g][4 * r..4 * r + 4].copy_from_slice(quad);
                }
            }
        }
        p
    }
}

/// `-OFFSET` times the sum of each group of four activation quants of every block of `a`
/// (the starting value of each lane's sum in [`legacy_rows_vnni`]), computed once per call
/// of a legacy panel for all its weight rows.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
fn group_starts<const OFFSET: i32>(a: &[BlockQ8_0]) -> Vec<[i32; 8]> {
    let ones = _mm256_set1_epi8(1);
    a.iter()
        .map(|y| {
            // SAFETY: `qs` is 32 readable bytes; the load is unaligned.
            let q = unsafe { _mm256_loadu_si256(y.qs.as_ptr().cast()) };
            let s = _mm256_mullo_epi32(
                _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, q),
                _mm256_set1_epi32(-OFFSET),
            );
            let mut out = [0i32; 8];
            // SAFETY: `out` is 8 writable i32; the store is unaligned.
            unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), s) };
            out
        })
        .collect()
}

/// The legacy panel in ggml's x86 order (the single-row kernels of `avx512::legacy`) for `C`
/// activation rows (`a[c]`, with its [`group_starts`] `s[c]`): per block, in block order, the
/// eight exact i32 lane sums `L_g` (elements `4 g..4 g + 4`, `(u - OFFSET) * a`) of each of
/// the 16 rows, then `acc_g = fma(d_w * d_a, f32(L_g), acc_g)`; the result is `hsum_float_8`
/// of the eight accumulators, lane `r` for row `r`. The offset enters as the starting value
/// of each lane's sum, broadcast from memory as the activation quants are.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
fn legacy_rows_vnni<const C: usize>(
    p: &LegacyPanel,
    a: [&[BlockQ8_0]; C],
    s: [&[[i32; 8]]; C],
) -> [__m512; C] {
    let mut acc = [[_mm512_setzero_ps(); 8]; C];
    for (b, dw) in p.d.iter().enumerate() {
        let y: [&BlockQ8_0; C] = std::array::from_fn(|c| &a[c][b]);
        let dw = load_f32(dw);
        let d: [__m512; C] = std::array::from_fn(|c| {
            let da = _mm512_cvtph_ps(_mm256_set1_epi16(y[c].d.to_bits() as i16));
            _mm512_mul_ps(dw, da)
        });
        // Written out per group so that the accumulators stay in registers.
        macro_rules! group {
            ($g:literal) => {{
                let wq = load_bytes(&p.q[8 * b + $g]);
                for c in 0..C {
                    let quad = y[c].qs.as_ptr();
                    // SAFETY: bytes `4 g..4 g + 4` of the 32 of `qs`; the load is unaligned.
                    let quad = unsafe { quad.add(4 * $g).cast::<i32>().read_unaligned() };
                    let init = _mm512_set1_epi32(s[c][b][$g]);
                    let l = _mm512_dpbusd_epi32(init, wq, _mm512_set1_epi32(quad));
                    acc[c][$g] = _mm512_fmadd_ps(d[c], _mm512_cvtepi32_ps(l), acc[c][$g]);
                }
            }};
        }
        group!(0);
        group!(1);
        group!(2);
        group!(3);
        group!(4);
        group!(5);
        group!(6);
        group!(7);
    }
    std::array::from_fn(|c| {
        let a = &acc[c];
        _mm512_add_ps(
            _mm512_add_ps(_mm512_add_ps(a[0], a[4]), _mm512_add_ps(a[2], a[6])),
            _mm512_add_ps(_mm512_add_ps(a[1], a[5]), _mm512_add_ps(a[3], a[7])),
        )
    })
}

/// A wide legacy panel (any number of weight rows, see [`crate::formats::DotKernel::call_panel`]):
/// the activation blocks' [`group_starts`] once, then each group of 16 weight rows repacked
/// and run two activation rows at a time (sixteen accumulators each fill half the registers)
/// and one for the last odd row.
macro_rules! legacy_panel {
    ($name:ident, $block:ty, $doc:literal) => {
        #[doc = $doc]
        ///
        /// # Safety
        /// The CPU must support AVX-512 F, BW, DQ, VL and VNNI, AVX2, FMA and F16C; `w` must
        /// be non-empty, its rows of one length, and `out` long enough (as
        /// [`crate::formats::DotKernel::call_panel`] checks).
        #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
        pub(crate) unsafe fn $name(
            w: &[&[$block]],
            a: &[BlockQ8_0],
            out: &mut [f32],
            stride: usize,
        ) {
            const OFFSET: i32 = <$block as UnsignedQuants>::OFFSET;
            let nb = w[0].len();
            if nb == 0 {
                return;
            }
            let n = a.len() / nb;
            let starts = group_starts::<OFFSET>(a);
            let row = |j: usize| &a[j * nb..(j + 1) * nb];
            let start = |j: usize| &starts[j * nb..(j + 1) * nb];
            for (i, w) in w.chunks(PANEL_ROWS).enumerate() {
                let p = LegacyPanel::new(w);
                let n_rows = w.len();
                let out = &mut out[i * PANEL_ROWS..];
                let mut store = |j: usize, v: __m512| {
                    let o = &mut out[j * stride..j * stride + n_rows];
                    // SAFETY: `o` is `n_rows <= 16` writable f32 (the slice above is
                    // bounds-checked); the masked store writes exactly those lanes, unaligned.
                    unsafe {
                        _mm512_mask_storeu_ps(o.as_mut_ptr(), ((1u32 << n_rows) - 1) as u16, v)
                    };
                };
                let mut j = 0;
                while j + 2 <= n {
                    let v =
                        legacy_rows_vnni::<2>(&p, [row(j), row(j + 1)], [start(j), start(j + 1)]);
                    store(j, v[0]);
                    store(j + 1, v[1]);
                    j += 2;
                }
                if j < n {
                    let [v] = legacy_rows_vnni::<1>(&p, [row(j)], [start(j)]);
                    store(j, v);
                }
            }
        }
    };
}

legacy_panel!(
    q4_0_q8_0_vnni,
    BlockQ4_0,
    "Q4_0 panel: every output bit-identical to `avx512::legacy`'s VNNI Q4_0 kernel."
);
legacy_panel!(
    q5_0_q8_0_vnni,
    BlockQ5_0,
    "Q5_0 panel: every output bit-identical to `avx512::legacy`'s VNNI Q5_0 kernel."
);
legacy_panel!(
    q8_0_q8_0_vnni,
    BlockQ8_0,
    "Q8_0 panel: every output bit-identical to `avx512::legacy`'s VNNI Q8_0 kernel."
);

/// Up to 16 Q6_K rows repacked for the panel kernels (rows past the last are zero).
struct Q6kPanel {
    /// Index `64 b + g`: bytes `4 r..4 r + 4` are the unsigned quants (`0..64`) of elements
    /// `4 g..4 g + 4` of super-block `b` of row `r`.
    q: Vec<[u8; 64]>,
    /// Index `16 b + j`: the scale of sub-block `j` (16 elements), lane `r` row `r`.
    sc: Vec<[i32; 16]>,
    /// Index `b`: each row's `d` as f32.
    d: Vec<[f32; 16]>,
}

impl Q6kPanel {
    fn new(w: &[&[BlockQ6_K]]) -> Self {
        let nb = w[0].len();
        let mut p = Q6kPanel {
            q: vec![[0; 64]; 64 * nb],
            sc: vec![[0; 16]; 16 * nb],
            d: vec![[0.0; 16]; nb],
        };
        for (r, row) in w.iter().enumerate().take(PANEL_ROWS) {
            for (b, x) in row.iter().enumerate() {
                p.d[b][r] = x.d.to_f32();
                for (j, &s) in x.scales.iter().enumerate() {
                    p.sc[16 * b + j][r] = i32::from(s);
                }
                for h in 0..2 {
                    let (ql, qh) = (&x.ql[64 * h..64 * h + 64], &x.qh[32 * h..32 * h + 32]);
                    for l in 0..32 {
                        let q = [
                            (ql[l] & 0xF) | ((qh[l] & 3) << 4),
                            (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4),
                            (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4),
                            (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4),
                        ];
                        for (k, q) in q.into_iter().enumerate() {
                            let i = 128 * h + 32 * k + l;
                            p.q[64 * b + i / 4][4 * r + i % 4] = q;
                        }
                    }
                }
            }
        }
        p
    }
}

/// The Q6_K panel in the order of llama.cpp's tiled k-quant matrix multiplication
/// ([`crate::formats::q6_k::vec_dot_ggml_tiled`]) for `C` activation rows: per super-block,
/// the exact integer sum `I` of each of the 16 rows (sub-block `j`: the unsigned products
/// started at `-32 * bsums[j]`, times the scale), then `acc = fma(f32(I) * d_w, d_a, acc)`.
/// `$sub` adds four products per lane (unscaled).
macro_rules! q6k_tiled_rows {
    ($name:ident, $features:literal, $sub:ident) => {
        #[inline]
        #[target_feature(enable = $features)]
        fn $name<const C: usize>(p: &Q6kPanel, a: [&[BlockQ8_K]; C]) -> [__m512; C] {
            let mut acc = [_mm512_setzero_ps(); C];
            for (b, dw) in p.d.iter().enumerate() {
                let y: [&BlockQ8_K; C] = std::array::from_fn(|c| &a[c][b]);
                let mut isum = [_mm512_setzero_si512(); C];
                for j in 0..16 {
                    let s = load_bytes(&p.sc[16 * b + j]);
                    let mut sub: [__m512i; C] =
                        std::array::from_fn(|c| _mm512_set1_epi32(-32 * i32::from(y[c].bsums[j])));
                    for g in 4 * j..4 * j + 4 {
                        let wq = load_bytes(&p.q[64 * b + g]);
                        for c in 0..C {
                            sub[c] = $sub(sub[c], wq, quad(y[c], g));
                        }
                    }
                    for c in 0..C {
                        isum[c] = _mm512_add_epi32(isum[c], _mm512_mullo_epi32(sub[c], s));
                    }
                }
                let dw = load_f32(dw);
                for c in 0..C {
                    let t = _mm512_mul_ps(_mm512_cvtepi32_ps(isum[c]), dw);
                    acc[c] = _mm512_fmadd_ps(t, _mm512_set1_ps(y[c].d), acc[c]);
                }
            }
            acc
        }
    };
}

/// Four products per lane by VNNI (unsigned quants below 64: a sub-block's sum is at most
/// `16 * 63 * 128 + 32 * 16 * 128` in magnitude, times a scale of at most 128).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
fn q6k_sub_vnni(sum: __m512i, wq: __m512i, aq: __m512i) -> __m512i {
    _mm512_dpbusd_epi32(sum, wq, aq)
}

/// Four products per lane: `vpmaddubsw` pairs (at most `2 * 63 * 128`, exact in i16), then
/// `vpmaddwd` with ones.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn q6k_sub_bw(sum: __m512i, wq: __m512i, aq: __m512i) -> __m512i {
    let p = _mm512_maddubs_epi16(wq, aq);
    _mm512_add_epi32(sum, _mm512_madd_epi16(p, _mm512_set1_epi16(1)))
}

q6k_tiled_rows!(
    q6k_tiled_rows_vnni,
    "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c",
    q6k_sub_vnni
);
q6k_tiled_rows!(
    q6k_tiled_rows_bw,
    "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c",
    q6k_sub_bw
);

/// Q6_K panel in the tiled order, with VNNI (see [`q6_k_q8_k_tiled`]).
///
/// # Safety
/// The CPU must support AVX-512 F, BW, DQ, VL and VNNI, AVX2, FMA and F16C; `w` must be
/// non-empty, its rows of one length, and `out` long enough (as
/// [`crate::formats::DotKernel::call_panel`] checks).
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn q6_k_q8_k_tiled_vnni(
    w: &[&[BlockQ6_K]],
    a: &[BlockQ8_K],
    out: &mut [f32],
    stride: usize,
) {
    panel_driver!(w, a, out, stride, Q6kPanel::new(w), q6k_tiled_rows_vnni)
}

/// Q6_K panel in the order of llama.cpp's tiled matrix multiplication: every output
/// bit-identical to `avx512::kquant::vec_dot_q6_k_q8_k_tiled` (and so to
/// [`crate::formats::q6_k::vec_dot_ggml_tiled`]) of its pair of rows.
///
/// # Safety
/// The CPU must support AVX-512 F, BW, DQ and VL, AVX2, FMA and F16C; `w` must be non-empty,
/// its rows of one length, and `out` long enough (as
/// [`crate::formats::DotKernel::call_panel`] checks).
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn q6_k_q8_k_tiled(
    w: &[&[BlockQ6_K]],
    a: &[BlockQ8_K],
    out: &mut [f32],
    stride: usize,
) {
    panel_driver!(w, a, out, stride, Q6kPanel::new(w), q6k_tiled_rows_bw)
}
