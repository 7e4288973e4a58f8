//! AVX2 kernels for the float formats: F32·F32, F16·F16 and BF16·BF16 dot products.
//!
//! All three widen to f32 and accumulate with FMA in four independent 8-lane accumulators (32
//! elements per iteration, so the FMA latency is hidden), then one 8-lane accumulator for the
//! remaining whole vectors, and one zero-padded vector for the last `n % 8` elements. F16 and
//! BF16 products are exact in f32 (11- and 8-bit significands), so the only rounding is in the
//! additions; F32 products are fused into the addition. The error against the f64-accumulating
//! scalar reference is bounded in `tests/float_kernels.rs`.
//!
//! Each kernel reads `min(w.len(), a.len())` elements.

use std::arch::x86_64::*;

use half::{bf16, f16};

/// Horizontal sum of the four accumulators.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn reduce(acc: [__m256; 4]) -> f32 {
    let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
    let d = _mm_add_ps(q, _mm_movehl_ps(q, q));
    let o = _mm_add_ss(d, _mm_movehdup_ps(d));
    _mm_cvtss_f32(o)
}

/// The dot product of two f32 slices.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_f32(w: &[f32], a: &[f32]) -> f32 {
    let n = w.len().min(a.len());
    let (pw, pa) = (w.as_ptr(), a.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        for (k, acc) in acc.iter_mut().enumerate() {
            // SAFETY: i + 8k + 8 <= i + 32 <= n, so both 8-element loads are in bounds.
            let (x, y) = unsafe {
                (
                    _mm256_loadu_ps(pw.add(i + 8 * k)),
                    _mm256_loadu_ps(pa.add(i + 8 * k)),
                )
            };
            *acc = _mm256_fmadd_ps(x, y, *acc);
        }
        i += 32;
    }
    while i + 8 <= n {
        // SAFETY: i + 8 <= n, so both loads are in bounds.
        let (x, y) = unsafe { (_mm256_loadu_ps(pw.add(i)), _mm256_loadu_ps(pa.add(i))) };
        acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
        i += 8;
    }
    if i < n {
        let (mut bx, mut by) = ([0f32; 8], [0f32; 8]);
        bx[..n - i].copy_from_slice(&w[i..n]);
        by[..n - i].copy_from_slice(&a[i..n]);
        // SAFETY: the stack buffers hold 8 elements each.
        let (x, y) = unsafe { (_mm256_loadu_ps(bx.as_ptr()), _mm256_loadu_ps(by.as_ptr())) };
        acc[1] = _mm256_fmadd_ps(x, y, acc[1]);
    }
    reduce(acc)
}

/// Eight f16 values at `p`, widened to f32.
///
/// # Safety
/// `p` must be valid for reading 8 `f16` (16 bytes).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load8_f16(p: *const f16) -> __m256 {
    // SAFETY: the caller guarantees 16 readable bytes at `p`; the load is unaligned.
    _mm256_cvtph_ps(unsafe { _mm_loadu_si128(p.cast()) })
}

/// The dot product of two f16 slices (products and sums in f32).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_f16(w: &[f16], a: &[f16]) -> f32 {
    let n = w.len().min(a.len());
    let (pw, pa) = (w.as_ptr(), a.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        for (k, acc) in acc.iter_mut().enumerate() {
            // SAFETY: i + 8k + 8 <= n: both 8-element loads are in bounds.
            let (x, y) = unsafe { (load8_f16(pw.add(i + 8 * k)), load8_f16(pa.add(i + 8 * k))) };
            *acc = _mm256_fmadd_ps(x, y, *acc);
        }
        i += 32;
    }
    while i + 8 <= n {
        // SAFETY: i + 8 <= n: both loads are in bounds.
        let (x, y) = unsafe { (load8_f16(pw.add(i)), load8_f16(pa.add(i))) };
        acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
        i += 8;
    }
    if i < n {
        let (mut bx, mut by) = ([f16::ZERO; 8], [f16::ZERO; 8]);
        bx[..n - i].copy_from_slice(&w[i..n]);
        by[..n - i].copy_from_slice(&a[i..n]);
        // SAFETY: the stack buffers hold 8 elements each.
        let (x, y) = unsafe { (load8_f16(bx.as_ptr()), load8_f16(by.as_ptr())) };
        acc[1] = _mm256_fmadd_ps(x, y, acc[1]);
    }
    reduce(acc)
}

/// Sixteen bf16 values at `p` as two vectors of f32: the even-indexed elements and the
/// odd-indexed ones (a bf16 is the upper half of an f32, so widening is a shift or a mask).
/// Both operands of a dot product are split the same way, so products still pair up.
///
/// # Safety
/// `p` must be valid for reading 16 `bf16` (32 bytes).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load16_bf16(p: *const bf16) -> (__m256, __m256) {
    // SAFETY: the caller guarantees 32 readable bytes at `p`; the load is unaligned.
    let v = unsafe { _mm256_loadu_si256(p.cast()) };
    let even = _mm256_slli_epi32::<16>(v);
    let odd = _mm256_and_si256(v, _mm256_set1_epi32(0xffff_0000_u32 as i32));
    (_mm256_castsi256_ps(even), _mm256_castsi256_ps(odd))
}

/// The dot product of two bf16 slices (products and sums in f32).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_bf16(w: &[bf16], a: &[bf16]) -> f32 {
    let n = w.len().min(a.len());
    let (pw, pa) = (w.as_ptr(), a.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        // SAFETY: i + 32 <= n: both pairs of 16-element loads are in bounds.
        let ((x0, x1), (y0, y1), (x2, x3), (y2, y3)) = unsafe {
            (
                load16_bf16(pw.add(i)),
                load16_bf16(pa.add(i)),
                load16_bf16(pw.add(i + 16)),
                load16_bf16(pa.add(i + 16)),
            )
        };
        acc[0] = _mm256_fmadd_ps(x0, y0, acc[0]);
        acc[1] = _mm256_fmadd_ps(x1, y1, acc[1]);
        acc[2] = _mm256_fmadd_ps(x2, y2, acc[2]);
        acc[3] = _mm256_fmadd_ps(x3, y3, acc[3]);
        i += 32;
    }
    while i + 16 <= n {
        // SAFETY: i + 16 <= n: both loads are in bounds.
        let ((x0, x1), (y0, y1)) = unsafe { (load16_bf16(pw.add(i)), load16_bf16(pa.add(i))) };
        acc[0] = _mm256_fmadd_ps(x0, y0, acc[0]);
        acc[1] = _mm256_fmadd_ps(x1, y1, acc[1]);
        i += 16;
    }
    if i < n {
        let (mut bx, mut by) = ([bf16::ZERO; 16], [bf16::ZERO; 16]);
        bx[..n - i].copy_from_slice(&w[i..n]);
        by[..n - i].copy_from_slice(&a[i..n]);
        // SAFETY: the stack buffers hold 16 elements each.
        let ((x0, x1), (y0, y1)) = unsafe { (load16_bf16(bx.as_ptr()), load16_bf16(by.as_ptr())) };
        acc[2] = _mm256_fmadd_ps(x0, y0, acc[2]);
        acc[3] = _mm256_fmadd_ps(x1, y1, acc[3]);
    }
    reduce(acc)
}

/// Asks for the cache lines of `bytes` to be brought into L1 (`prefetcht0` on each line):
/// `matmul` calls it a few KiB ahead of the weight row it reads. Only a hint: nothing is
/// read architecturally and nothing can fault. SSE, so every x86_64 CPU has it.
#[inline]
pub fn prefetch(bytes: &[u8]) {
    let p = bytes.as_ptr();
    let mut off = 0;
    while off < bytes.len() {
        // SAFETY: `prefetcht0` is part of SSE, which every x86_64 CPU has; it neither reads
        // memory architecturally nor faults, and `p + off` lies inside `bytes` anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.add(off).cast()) };
        off += 64;
    }
}
