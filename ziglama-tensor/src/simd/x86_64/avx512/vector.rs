//! AVX-512 versions of [`crate::vector`]: the same values as its scalar definitions
//! ([`crate::vector::scalar`]), bit for bit: the lanes of one 512-bit register are the 16
//! lanes of the definitions, and the reductions are written out in their order.

use std::arch::x86_64::*;

use crate::vector::scalar;

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
