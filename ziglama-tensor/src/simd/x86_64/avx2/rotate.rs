//! AVX2 kernels of [`crate::rotate`]: pairs of values rotated by `(cos, sin)` with the same
//! fused multiply-adds as the scalar definition, eight at a time, so every output is
//! bit-identical to it.

use std::arch::x86_64::*;

/// [`crate::rotate::rotate_interleaved`]: pairs `(x[2i], x[2i + 1])`, table pairs
/// `(cs[2i], cs[2i + 1])`, for `2i + 1 < min(x.len(), cs.len())`.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn rotate_interleaved(x: &mut [f32], cs: &[f32]) {
    let n = x.len().min(cs.len()) & !1;
    let (px, pt) = (x.as_mut_ptr(), cs.as_ptr());
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n <= both lengths, so the loads and the store are in bounds.
        let (v, t) = unsafe { (_mm256_loadu_ps(px.add(i)), _mm256_loadu_ps(pt.add(i))) };
        let x0 = _mm256_moveldup_ps(v);
        let x1 = _mm256_movehdup_ps(v);
        // (sin, cos) in each pair: x1 * sin in even lanes, x1 * cos in odd lanes, rounded.
        let p = _mm256_mul_ps(x1, _mm256_permute_ps::<0b10_11_00_01>(t));
        // Even lanes x0 * cos - x1 * sin, odd lanes x0 * sin + x1 * cos, each fused once.
        let r = _mm256_fmaddsub_ps(x0, t, p);
        // SAFETY: as for the loads.
        unsafe { _mm256_storeu_ps(px.add(i), r) };
        i += 8;
    }
    crate::rotate::rotate_interleaved_scalar(&mut x[i..n], &cs[i..n]);
}

/// [`crate::rotate::rotate_split`]: pairs `(x0[i], x1[i])`, table pairs `(cs[2i], cs[2i + 1])`,
/// for `i < min(x0.len(), x1.len(), cs.len() / 2)`.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn rotate_split(x0: &mut [f32], x1: &mut [f32], cs: &[f32]) {
    let n = x0.len().min(x1.len()).min(cs.len() / 2);
    let (pa, pb, pt) = (x0.as_mut_ptr(), x1.as_mut_ptr(), cs.as_ptr());
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n, so x0[i..i + 8], x1[i..i + 8] and cs[2i..2i + 16] are in bounds.
        let (a, b, t0, t1) = unsafe {
            (
                _mm256_loadu_ps(pa.add(i)),
                _mm256_loadu_ps(pb.add(i)),
                _mm256_loadu_ps(pt.add(2 * i)),
                _mm256_loadu_ps(pt.add(2 * i + 8)),
            )
        };
        // Even lanes of (t0, t1) are the cosines, odd lanes the sines; the shuffle leaves
        // them in 64-bit chunks ordered 0, 2, 1, 3, which the permutation puts back.
        let c = _mm256_shuffle_ps::<0b10_00_10_00>(t0, t1);
        let s = _mm256_shuffle_ps::<0b11_01_11_01>(t0, t1);
        let c = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(c)));
        let s = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(s)));
        // x0 * cos - (x1 * sin) and x0 * sin + (x1 * cos), the products in brackets rounded.
        let r0 = _mm256_fmsub_ps(a, c, _mm256_mul_ps(b, s));
        let r1 = _mm256_fmadd_ps(a, s, _mm256_mul_ps(b, c));
        // SAFETY: as for the loads.
        unsafe {
            _mm256_storeu_ps(pa.add(i), r0);
            _mm256_storeu_ps(pb.add(i), r1);
        }
        i += 8;
    }
    crate::rotate::rotate_split_scalar(&mut x0[i..n], &mut x1[i..n], &cs[2 * i..2 * n]);
}
