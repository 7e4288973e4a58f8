//! AVX-512 versions of [`crate::vector`]: the same values as its scalar definitions
//! ([`crate::vector::scalar`]), bit for bit: the lanes of one 512-bit register are the 16
//! lanes of the definitions, and the reductions are written out in their order.

use std::arch::x86_64::*;

use crate::vector::{scalar, Weights};

/// `_mm512_reduce_add_ps` in [`scalar::reduce16`]'s order, written out.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn reduce16(v: __m512) -> f32 {
    let h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps::<1>(v));
    let q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps::<1>(h));
    let r = _mm_add_ps(q, _mm_movehl_ps(q, q));
    _mm_cvtss_f32(_mm_add_ss(r, _mm_movehdup_ps(r)))
}

/// ggml's `ggml_v_expf` (AVX-512): [`scalar::exp_ggml`] on 16 lanes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn exp16(x: __m512) -> __m512 {
    let c = |b: u32| _mm512_set1_ps(f32::from_bits(b));
    let r = c(0x4b40_0000);
    let z = _mm512_fmadd_ps(x, c(0x3fb8_aa3b), r);
    let n = _mm512_sub_ps(z, r);
    let b = _mm512_fnmadd_ps(n, c(0x35bf_be8e), _mm512_fnmadd_ps(n, c(0x3f31_7200), x));
    let d = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(_mm512_abs_ps(n), _mm512_set1_ps(192.0));
    let u = _mm512_mul_ps(b, b);
    let j = _mm512_fmadd_ps(
        _mm512_fmadd_ps(
            _mm512_fmadd_ps(c(0x3c07_2010), b, c(0x3d2b_9f17)),
            u,
            _mm512_fmadd_ps(c(0x3e2a_af33), b, c(0x3eff_fedb)),
        ),
        u,
        _mm512_fmadd_ps(c(0x3f7f_fff6), b, _mm512_set1_ps(1.0)),
    );
    let res = _mm512_scalef_ps(j, n);
    if d == 0 {
        return res;
    }
    let zero = _mm512_setzero_ps();
    let alt = _mm512_mask_blend_ps(
        _mm512_cmp_ps_mask::<_CMP_LE_OQ>(n, zero),
        _mm512_set1_ps(f32::INFINITY),
        zero,
    );
    _mm512_mask_blend_ps(d, res, alt)
}

/// Loads 16 f32 from the start of `x` (at least 16 long).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn load(x: &[f32]) -> __m512 {
    assert!(x.len() >= 16);
    // SAFETY: at least 16 readable f32; the load is unaligned.
    unsafe { _mm512_loadu_ps(x.as_ptr()) }
}

/// Stores 16 f32 at the start of `x` (at least 16 long).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn store(x: &mut [f32], v: __m512) {
    assert!(x.len() >= 16);
    // SAFETY: at least 16 writable f32; the store is unaligned.
    unsafe { _mm512_storeu_ps(x.as_mut_ptr(), v) }
}

/// [`crate::vector::softmax_ggml`].
///
/// # Safety
/// The CPU must support AVX-512 F/BW/DQ/VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn softmax_ggml(x: &mut [f32]) {
    let full = x.len() / 16 * 16;
    let mut vmax = _mm512_set1_ps(f32::NEG_INFINITY);
    for c in x[..full].chunks_exact(16) {
        vmax = _mm512_max_ps(vmax, load(c));
    }
    let max = x[full..]
        .iter()
        .copied()
        .fold(_mm512_reduce_max_ps(vmax), f32::max);
    if max == f32::NEG_INFINITY {
        x.iter_mut().for_each(|v| *v = 0.0);
        return;
    }
    let vm = _mm512_set1_ps(max);
    let mut sum = 0f64;
    for c in x[..full].chunks_exact_mut(16) {
        let v = exp16(_mm512_sub_ps(load(c), vm));
        store(c, v);
        sum += f64::from(reduce16(v));
    }
    for c in x[full..].iter_mut() {
        *c = (*c - max).exp();
        sum += f64::from(*c);
    }
    let scale = (1.0 / sum) as f32;
    let vs = _mm512_set1_ps(scale);
    for c in x[..full].chunks_exact_mut(16) {
        store(c, _mm512_mul_ps(load(c), vs));
    }
    for c in x[full..].iter_mut() {
        *c *= scale;
    }
}

/// [`crate::vector::swiglu_ggml`].
///
/// # Safety
/// As [`softmax_ggml`].
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn swiglu_ggml(gate: &mut [f32], up: &[f32]) {
    let n = gate.len().min(up.len());
    let full = n / 16 * 16;
    let one = _mm512_set1_ps(1.0);
    for (g, u) in gate[..full]
        .chunks_exact_mut(16)
        .zip(up[..full].chunks_exact(16))
    {
        let x = load(g);
        let e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), x));
        store(
            g,
            _mm512_mul_ps(_mm512_div_ps(x, _mm512_add_ps(one, e)), load(u)),
        );
    }
    scalar::swiglu_ggml(&mut gate[full..n], &up[full..n]);
}

/// [`crate::vector::dot_gemm`].
///
/// # Safety
/// As [`softmax_ggml`].
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn dot_gemm(x: &[f32], y: &[f32]) -> f32 {
    let n = x.len().min(y.len());
    let full = n / 16 * 16;
    let mut acc = _mm512_setzero_ps();
    for (cx, cy) in x[..full].chunks_exact(16).zip(y[..full].chunks_exact(16)) {
        acc = _mm512_add_ps(acc, _mm512_mul_ps(load(cx), load(cy)));
    }
    let mut s = reduce16(acc);
    for i in full..n {
        s += x[i] * y[i];
    }
    s
}

/// [`crate::vector::dot_gemm4`]: [`dot_gemm`] of four rows with one `y`, the chunks of the
/// four rows in lockstep (four independent accumulators).
///
/// # Safety
/// As [`softmax_ggml`].
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn dot_gemm4(x: [&[f32]; 4], y: &[f32]) -> [f32; 4] {
    let n = x.iter().map(|r| r.len()).min().unwrap_or(0).min(y.len());
    if x.iter().any(|r| r.len().min(y.len()) != n) {
        // Rows of different lengths: each with its own length, one at a time.
        // SAFETY: this function's own target features are those of `dot_gemm`.
        return x.map(|r| unsafe { dot_gemm(r, y) });
    }
    let full = n / 16 * 16;
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    while i < full {
        let vy = load(&y[i..]);
        for (a, r) in acc.iter_mut().zip(&x) {
            *a = _mm512_add_ps(*a, _mm512_mul_ps(load(&r[i..]), vy));
        }
        i += 16;
    }
    let mut out = [0f32; 4];
    for ((o, a), r) in out.iter_mut().zip(acc).zip(&x) {
        let mut s = reduce16(a);
        for j in full..n {
            s += r[j] * y[j];
        }
        *o = s;
    }
    out
}

/// [`crate::vector::dot_gemv`].
///
/// # Safety
/// As [`softmax_ggml`].
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn dot_gemv(x: &[f32], y: &[f32]) -> f32 {
    let n = x.len().min(y.len());
    let full = n / 64 * 64;
    let mut acc = [_mm512_setzero_ps(); 4];
    for (cx, cy) in x[..full].chunks_exact(64).zip(y[..full].chunks_exact(64)) {
        for (j, a) in acc.iter_mut().enumerate() {
            let p = _mm512_mul_ps(load(&cx[16 * j..]), load(&cy[16 * j..]));
            *a = _mm512_add_ps(*a, p);
        }
    }
    let x0 = _mm512_add_ps(_mm512_add_ps(acc[0], acc[2]), _mm512_add_ps(acc[1], acc[3]));
    let mut s = f64::from(reduce16(x0));
    for i in full..n {
        s += f64::from(x[i] * y[i]);
    }
    s as f32
}

/// [`crate::vector::axpy`].
///
/// # Safety
/// As [`softmax_ggml`].
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn axpy(acc: &mut [f32], p: f32, v: &[f32]) {
    let n = acc.len().min(v.len());
    let full = n / 16 * 16;
    let vp = _mm512_set1_ps(p);
    for (a, v) in acc[..full]
        .chunks_exact_mut(16)
        .zip(v[..full].chunks_exact(16))
    {
        store(a, _mm512_add_ps(load(a), _mm512_mul_ps(vp, load(v))));
    }
    scalar::axpy(&mut acc[full..n], p, &v[full..n]);
}

/// The sixteen [`reduce16`]s of `a[0..16]`, in row order: the same pairwise additions (halves
/// of 8, then 4, then 2, then 1), the rows interleaved in the registers between the steps.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
fn reduce16x16(a: &[__m512; 16]) -> __m512 {
    // h[i] = v[i] + v[i + 8]: rows 2k (lanes 0..8) and 2k + 1 (lanes 8..16).
    let h: [__m512; 8] = std::array::from_fn(|k| {
        let (x, y) = (a[2 * k], a[2 * k + 1]);
        _mm512_add_ps(
            _mm512_shuffle_f32x4::<0x44>(x, y),
            _mm512_shuffle_f32x4::<0xee>(x, y),
        )
    });
    // q[i] = h[i] + h[i + 4]: rows 4j..4j + 4, one per 128-bit block.
    let q: [__m512; 4] = std::array::from_fn(|j| {
        let (x, y) = (h[2 * j], h[2 * j + 1]);
        _mm512_add_ps(
            _mm512_shuffle_f32x4::<0x88>(x, y),
            _mm512_shuffle_f32x4::<0xdd>(x, y),
        )
    });
    // r[i] = q[i] + q[i + 2]: block b holds rows b and 4 + b (r), then 8 + b and 12 + b.
    let r: [__m512; 2] = std::array::from_fn(|j| {
        let (x, y) = (q[2 * j], q[2 * j + 1]);
        _mm512_add_ps(
            _mm512_shuffle_ps::<0x44>(x, y),
            _mm512_shuffle_ps::<0xee>(x, y),
        )
    });
    // r[0] + r[1]: lane 4b + c holds row 4c + b.
    let s = _mm512_add_ps(
        _mm512_shuffle_ps::<0x88>(r[0], r[1]),
        _mm512_shuffle_ps::<0xdd>(r[0], r[1]),
    );
    let idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    _mm512_permutexvar_ps(idx, s)
}

/// [`crate::vector::dot_gemm_rows`].
///
/// # Safety
/// As [`softmax_ggml`], and `x` must hold `(out.len() - 1) * stride + y.len()` values when
/// `out` is not empty.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn dot_gemm_rows(x: &[f32], stride: usize, y: &[f32], out: &mut [f32]) {
    let n = y.len();
    let full = n / 16 * 16;
    let blocks = out.len() / 16;
    for (b, o) in out[..blocks * 16].chunks_exact_mut(16).enumerate() {
        let base = x[b * 16 * stride..].as_ptr();
        let mut acc = [_mm512_setzero_ps(); 16];
        let mut i = 0;
        while i < full {
            let vy = load(&y[i..]);
            for (r, a) in acc.iter_mut().enumerate() {
                // SAFETY: row `b * 16 + r` of `x` has `n` values from `(b * 16 + r) * stride`
                // (the caller's contract) and `i + 16 <= n`.
                let vx = unsafe { _mm512_loadu_ps(base.add(r * stride + i)) };
                *a = _mm512_add_ps(*a, _mm512_mul_ps(vx, vy));
            }
            i += 16;
        }
        let s = reduce16x16(&acc);
        // SAFETY: `o` has 16 writable f32.
        unsafe { _mm512_storeu_ps(o.as_mut_ptr(), s) };
        if full < n {
            for (r, o) in o.iter_mut().enumerate() {
                let row = &x[(b * 16 + r) * stride..][..n];
                for j in full..n {
                    *o += row[j] * y[j];
                }
            }
        }
    }
    let mut r = blocks * 16;
    while r + 4 <= out.len() {
        let rows: [&[f32]; 4] = std::array::from_fn(|j| &x[(r + j) * stride..][..n]);
        // SAFETY: this function's own target features are those of `dot_gemm4`.
        out[r..r + 4].copy_from_slice(&unsafe { dot_gemm4(rows, y) });
        r += 4;
    }
    for r in r..out.len() {
        // SAFETY: as above.
        out[r] = unsafe { dot_gemm(&x[r * stride..][..n], y) };
    }
}

/// `H` heads' accumulators over `16 * C` columns from `col`, kept in registers across the rows
/// (see [`axpy_rows`]).
///
/// # Safety
/// As [`axpy_rows`], with `g0 + H <= heads` and `col + 16 * C <= acc.len() / heads`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
unsafe fn axpy_block<const H: usize, const C: usize>(
    acc: &mut [f32],
    heads: usize,
    g0: usize,
    col: usize,
    p: Weights<'_>,
    v: &[f32],
    stride: usize,
) {
    let w = acc.len() / heads;
    let mut a: [[__m512; C]; H] =
        std::array::from_fn(|h| std::array::from_fn(|c| load(&acc[(g0 + h) * w + col + 16 * c..])));
    for r in 0..p.rows {
        let row = v[r * stride + col..].as_ptr();
        // SAFETY: row `r` of `v` has `w` values from `r * stride` (the caller's contract) and
        // `col + 16 * C <= w`.
        let vs: [__m512; C] = std::array::from_fn(|c| unsafe { _mm512_loadu_ps(row.add(16 * c)) });
        for (h, a) in a.iter_mut().enumerate() {
            let p = p.at(r, g0 + h);
            // Rows whose weight is 0 are skipped, as in the definition.
            let k: __mmask16 = if p != 0.0 { 0xffff } else { 0 };
            let vp = _mm512_set1_ps(p);
            for (a, &v) in a.iter_mut().zip(&vs) {
                *a = _mm512_mask_add_ps(*a, k, *a, _mm512_mul_ps(vp, v));
            }
        }
    }
    for (h, a) in a.iter().enumerate() {
        for (c, &a) in a.iter().enumerate() {
            store(&mut acc[(g0 + h) * w + col + 16 * c..], a);
        }
    }
}

/// [`axpy_block`] for `hn` (1 to 4) heads.
///
/// # Safety
/// As [`axpy_block`] with `H = hn`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
unsafe fn axpy_heads<const C: usize>(
    hn: usize,
    acc: &mut [f32],
    heads: usize,
    g0: usize,
    col: usize,
    p: Weights<'_>,
    v: &[f32],
    stride: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        match hn {
            1 => axpy_block::<1, C>(acc, heads, g0, col, p, v, stride),
            2 => axpy_block::<2, C>(acc, heads, g0, col, p, v, stride),
            3 => axpy_block::<3, C>(acc, heads, g0, col, p, v, stride),
            _ => axpy_block::<4, C>(acc, heads, g0, col, p, v, stride),
        }
    }
}

/// [`crate::vector::axpy_rows`].
///
/// # Safety
/// As [`softmax_ggml`], with `heads > 0` dividing `acc.len()`, and `v` holding `(p.rows - 1) *
/// stride + acc.len() / heads` values when `p.rows > 0`.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn axpy_rows(
    acc: &mut [f32],
    heads: usize,
    p: Weights<'_>,
    v: &[f32],
    stride: usize,
) {
    let w = acc.len() / heads;
    if p.rows == 0 {
        return;
    }
    let full = w / 16 * 16;
    let mut g0 = 0;
    while g0 < heads {
        let hn = (heads - g0).min(4);
        let mut col = 0;
        while col + 64 <= full {
            // SAFETY: `g0 + hn <= heads`, the block ends within `full <= w`, and the rest of
            // the contract is the caller's.
            unsafe { axpy_heads::<4>(hn, acc, heads, g0, col, p, v, stride) };
            col += 64;
        }
        while col < full {
            // SAFETY: as above.
            unsafe { axpy_heads::<1>(hn, acc, heads, g0, col, p, v, stride) };
            col += 16;
        }
        g0 += hn;
    }
    if full < w {
        for r in 0..p.rows {
            let row = &v[r * stride + full..][..w - full];
            for (g, acc) in acc.chunks_exact_mut(w).enumerate() {
                let p = p.at(r, g);
                if p != 0.0 {
                    scalar::axpy(&mut acc[full..], p, row);
                }
            }
        }
    }
}

/// [`crate::vector::round_f16`]: F16C conversions, rounding to nearest (ties to even).
///
/// # Safety
/// As [`softmax_ggml`].
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn round_f16(x: &mut [f32]) {
    let full = x.len() / 16 * 16;
    for c in x[..full].chunks_exact_mut(16) {
        let h = _mm512_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(load(c));
        store(c, _mm512_cvtph_ps(h));
    }
    scalar::round_f16(&mut x[full..]);
}

/// [`crate::vector::reduce16_rows`]: the pairwise additions of [`scalar::reduce16`] on whole
/// chunks of 16 columns.
///
/// # Safety
/// As [`softmax_ggml`], and `x` must hold `15 * stride + out.len()` values.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn reduce16_rows(x: &[f32], stride: usize, out: &mut [f32]) {
    let full = out.len() / 16 * 16;
    for (c, o) in out[..full].chunks_exact_mut(16).enumerate() {
        let d = 16 * c;
        // SAFETY: row `l` has `out.len()` values from `l * stride` (the caller's contract)
        // and `d + 16 <= out.len()`.
        let v: [__m512; 16] =
            std::array::from_fn(|l| unsafe { _mm512_loadu_ps(x.as_ptr().add(l * stride + d)) });
        let h: [__m512; 8] = std::array::from_fn(|i| _mm512_add_ps(v[i], v[i + 8]));
        let q: [__m512; 4] = std::array::from_fn(|i| _mm512_add_ps(h[i], h[i + 4]));
        let r = [_mm512_add_ps(q[0], q[2]), _mm512_add_ps(q[1], q[3])];
        store(o, _mm512_add_ps(r[0], r[1]));
    }
    for d in full..out.len() {
        let v: [f32; 16] = std::array::from_fn(|l| x[l * stride + d]);
        out[d] = scalar::reduce16(&v);
    }
}
