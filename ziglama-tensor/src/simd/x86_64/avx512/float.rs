//! AVX-512 kernels for the float formats: F32·F32, F16·F16 and BF16·BF16 dot products.
//!
//! All three widen to f32 and accumulate with FMA in four independent 16-lane accumulators
//! (64 elements per iteration), then one accumulator for the remaining whole vectors, and a
//! masked load for the last elements (masked-off lanes are neither read nor faulted on). A
//! masked head first brings the weight operand `w` (the one a matrix-vector product streams
//! from memory) to a 64-byte boundary, so its full-width loads do not span cache lines. F16
//! and BF16 products are exact in f32, so the only rounding is in the additions. The error
//! against the f64-accumulating scalar reference is bounded in `tests/float_kernels.rs`.
//!
//! BF16 has a second kernel, [`dot_bf16_dp`], using AVX512-BF16's `vdpbf16ps` (two products
//! per 32-bit lane per instruction). That instruction treats bf16 subnormal inputs as zero
//! and flushes subnormal results, so it differs from the reference on values below 2^-126;
//! [`dot_bf16`] uses it only where the CPU has AVX512-BF16, as ggml does.
//!
//! Each kernel reads `min(w.len(), a.len())` elements.

use std::arch::x86_64::*;
use std::sync::OnceLock;

use half::{bf16, f16};

/// Horizontal sum of the four accumulators.
#[inline]
#[target_feature(enable = "avx512f")]
fn reduce(acc: [__m512; 4]) -> f32 {
    let s = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
    _mm512_reduce_add_ps(s)
}

/// Elements from `p` to the next 64-byte boundary, at most `n`: the masked head after which
/// the weight operand's full-width loads are aligned. Misaligned 64-byte loads span two cache
/// lines; streaming a matrix from memory, they measured about 20% slower on Zen 5.
#[inline]
fn head_len<T>(p: *const T, n: usize) -> usize {
    ((64 - p as usize % 64) % 64 / std::mem::size_of::<T>()).min(n)
}

/// A mask of the low `r` lanes, `r <= 16`.
#[inline]
fn mask16(r: usize) -> __mmask16 {
    ((1u32 << r) - 1) as __mmask16
}

/// A mask of the low `r` lanes, `r <= 32`.
#[inline]
fn mask32(r: usize) -> __mmask32 {
    ((1u64 << r) - 1) as __mmask32
}

/// The dot product of two f32 slices.
///
/// # Safety
/// The CPU must support AVX-512 F.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub unsafe fn dot_f32(w: &[f32], a: &[f32]) -> f32 {
    let n = w.len().min(a.len());
    let (pw, pa) = (w.as_ptr(), a.as_ptr());
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut i = head_len(pw, n);
    if i > 0 {
        let m = mask16(i);
        // SAFETY: only the low i <= n lanes are read; masked lanes are not accessed.
        let (x, y) = unsafe { (_mm512_maskz_loadu_ps(m, pw), _mm512_maskz_loadu_ps(m, pa)) };
        acc[3] = _mm512_fmadd_ps(x, y, acc[3]);
    }
    while i + 64 <= n {
        for (k, acc) in acc.iter_mut().enumerate() {
            // SAFETY: i + 16k + 16 <= i + 64 <= n: both 16-element loads are in bounds.
            let (x, y) = unsafe {
                (
                    _mm512_loadu_ps(pw.add(i + 16 * k)),
                    _mm512_loadu_ps(pa.add(i + 16 * k)),
                )
            };
            *acc = _mm512_fmadd_ps(x, y, *acc);
        }
        i += 64;
    }
    while i + 16 <= n {
        // SAFETY: i + 16 <= n: both loads are in bounds.
        let (x, y) = unsafe { (_mm512_loadu_ps(pw.add(i)), _mm512_loadu_ps(pa.add(i))) };
        acc[0] = _mm512_fmadd_ps(x, y, acc[0]);
        i += 16;
    }
    if i < n {
        let m = mask16(n - i);
        // SAFETY: only the low n - i lanes are read, and i + (n - i) = n is in bounds; masked
        // lanes are not accessed.
        let (x, y) = unsafe {
            (
                _mm512_maskz_loadu_ps(m, pw.add(i)),
                _mm512_maskz_loadu_ps(m, pa.add(i)),
            )
        };
        acc[1] = _mm512_fmadd_ps(x, y, acc[1]);
    }
    reduce(acc)
}

/// Sixteen f16 values at `p` (only the lanes of `m`; the others are zero), widened to f32.
///
/// # Safety
/// `p` must be valid for reading the lanes selected by `m`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
unsafe fn load16_f16(p: *const f16, m: __mmask16) -> __m512 {
    // SAFETY: the caller guarantees the selected lanes are readable; masked lanes are not
    // accessed.
    _mm512_cvtph_ps(unsafe { _mm256_maskz_loadu_epi16(m, p.cast()) })
}

/// The dot product of two f16 slices (products and sums in f32).
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VL.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub unsafe fn dot_f16(w: &[f16], a: &[f16]) -> f32 {
    let n = w.len().min(a.len());
    let (pw, pa) = (w.as_ptr(), a.as_ptr());
    let mut acc = [_mm512_setzero_ps(); 4];
    let all: __mmask16 = 0xffff;
    let head = head_len(pw, n);
    let mut i = 0;
    while i < head {
        let m = mask16((head - i).min(16));
        // SAFETY: only lanes below head - i are read, all below n.
        let (x, y) = unsafe { (load16_f16(pw.add(i), m), load16_f16(pa.add(i), m)) };
        acc[3] = _mm512_fmadd_ps(x, y, acc[3]);
        i += 16.min(head - i);
    }
    while i + 64 <= n {
        for (k, acc) in acc.iter_mut().enumerate() {
            // SAFETY: i + 16k + 16 <= n: both 16-element loads are in bounds.
            let (x, y) = unsafe {
                (
                    load16_f16(pw.add(i + 16 * k), all),
                    load16_f16(pa.add(i + 16 * k), all),
                )
            };
            *acc = _mm512_fmadd_ps(x, y, *acc);
        }
        i += 64;
    }
    while i + 16 <= n {
        // SAFETY: i + 16 <= n: both loads are in bounds.
        let (x, y) = unsafe { (load16_f16(pw.add(i), all), load16_f16(pa.add(i), all)) };
        acc[0] = _mm512_fmadd_ps(x, y, acc[0]);
        i += 16;
    }
    if i < n {
        let m = mask16(n - i);
        // SAFETY: only the low n - i lanes are read, all below n.
        let (x, y) = unsafe { (load16_f16(pw.add(i), m), load16_f16(pa.add(i), m)) };
        acc[1] = _mm512_fmadd_ps(x, y, acc[1]);
    }
    reduce(acc)
}

/// Thirty-two bf16 values at `p` (only the lanes of `m`; the others are zero) as two vectors
/// of f32: the even-indexed elements and the odd-indexed ones (a bf16 is the upper half of an
/// f32). Both operands of a dot product are split the same way, so products still pair up.
///
/// # Safety
/// `p` must be valid for reading the lanes selected by `m`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
unsafe fn load32_bf16(p: *const bf16, m: __mmask32) -> (__m512, __m512) {
    // SAFETY: the caller guarantees the selected lanes are readable; masked lanes are not
    // accessed.
    let v = unsafe { _mm512_maskz_loadu_epi16(m, p.cast()) };
    let even = _mm512_slli_epi32::<16>(v);
    let odd = _mm512_and_si512(v, _mm512_set1_epi32(0xffff_0000_u32 as i32));
    (_mm512_castsi512_ps(even), _mm512_castsi512_ps(odd))
}

/// Whether the CPU has AVX512-BF16 (detected once).
fn has_avx512_bf16() -> bool {
    static BF16: OnceLock<bool> = OnceLock::new();
    *BF16.get_or_init(|| std::arch::is_x86_feature_detected!("avx512bf16"))
}

/// The dot product of two bf16 slices (products and sums in f32): [`dot_bf16_dp`] where the
/// CPU has AVX512-BF16, else [`dot_bf16_shift`].
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VL.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub unsafe fn dot_bf16(w: &[bf16], a: &[bf16]) -> f32 {
    if has_avx512_bf16() {
        // SAFETY: AVX512-BF16 was detected, and the caller guarantees the rest.
        unsafe { dot_bf16_dp(w, a) }
    } else {
        // SAFETY: the caller guarantees AVX-512 F, BW and VL.
        unsafe { dot_bf16_shift(w, a) }
    }
}

/// The dot product of two bf16 slices, widening by shifts and accumulating with FMA.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VL.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")]
pub unsafe fn dot_bf16_shift(w: &[bf16], a: &[bf16]) -> f32 {
    let n = w.len().min(a.len());
    let (pw, pa) = (w.as_ptr(), a.as_ptr());
    let mut acc = [_mm512_setzero_ps(); 4];
    let all = !0 as __mmask32;
    let mut i = head_len(pw, n);
    if i > 0 {
        let m = mask32(i);
        // SAFETY: only the low i <= n lanes are read.
        let ((x0, x1), (y0, y1)) = unsafe { (load32_bf16(pw, m), load32_bf16(pa, m)) };
        acc[2] = _mm512_fmadd_ps(x0, y0, acc[2]);
        acc[3] = _mm512_fmadd_ps(x1, y1, acc[3]);
    }
    while i + 64 <= n {
        // SAFETY: i + 64 <= n: both pairs of 32-element loads are in bounds.
        let ((x0, x1), (y0, y1), (x2, x3), (y2, y3)) = unsafe {
            (
                load32_bf16(pw.add(i), all),
                load32_bf16(pa.add(i), all),
                load32_bf16(pw.add(i + 32), all),
                load32_bf16(pa.add(i + 32), all),
            )
        };
        acc[0] = _mm512_fmadd_ps(x0, y0, acc[0]);
        acc[1] = _mm512_fmadd_ps(x1, y1, acc[1]);
        acc[2] = _mm512_fmadd_ps(x2, y2, acc[2]);
        acc[3] = _mm512_fmadd_ps(x3, y3, acc[3]);
        i += 64;
    }
    while i + 32 <= n {
        // SAFETY: i + 32 <= n: both loads are in bounds.
        let ((x0, x1), (y0, y1)) =
            unsafe { (load32_bf16(pw.add(i), all), load32_bf16(pa.add(i), all)) };
        acc[0] = _mm512_fmadd_ps(x0, y0, acc[0]);
        acc[1] = _mm512_fmadd_ps(x1, y1, acc[1]);
        i += 32;
    }
    if i < n {
        let m = mask32(n - i);
        // SAFETY: only the low n - i lanes are read, all below n.
        let ((x0, x1), (y0, y1)) =
            unsafe { (load32_bf16(pw.add(i), m), load32_bf16(pa.add(i), m)) };
        acc[2] = _mm512_fmadd_ps(x0, y0, acc[2]);
        acc[3] = _mm512_fmadd_ps(x1, y1, acc[3]);
    }
    reduce(acc)
}

/// Thirty-two bf16 values at `p` (only the lanes of `m`; the others are zero), as the pair
/// vector `vdpbf16ps` takes.
///
/// # Safety
/// `p` must be valid for reading the lanes selected by `m`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,avx2,fma,f16c")]
unsafe fn load32_bh(p: *const bf16, m: __mmask32) -> __m512bh {
    // SAFETY: the caller guarantees the selected lanes are readable; masked lanes are not
    // accessed.
    let v = unsafe { _mm512_maskz_loadu_epi16(m, p.cast()) };
    // SAFETY: `__m512i` and `__m512bh` are both 64-byte vectors of plain bits.
    unsafe { std::mem::transmute::<__m512i, __m512bh>(v) }
}

/// The dot product of two bf16 slices with AVX512-BF16's `vdpbf16ps`, which multiplies pairs
/// of bf16 and adds both products to an f32 lane. Subnormal bf16 inputs count as zero.
///
/// # Safety
/// The CPU must support AVX-512 F, BW, VL and BF16.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,avx2,fma,f16c")]
pub unsafe fn dot_bf16_dp(w: &[bf16], a: &[bf16]) -> f32 {
    let n = w.len().min(a.len());
    let (pw, pa) = (w.as_ptr(), a.as_ptr());
    let mut acc = [_mm512_setzero_ps(); 4];
    let all = !0 as __mmask32;
    let mut i = head_len(pw, n);
    if i > 0 {
        let m = mask32(i);
        // SAFETY: only the low i <= n lanes are read.
        let (x, y) = unsafe { (load32_bh(pw, m), load32_bh(pa, m)) };
        acc[3] = _mm512_dpbf16_ps(acc[3], x, y);
    }
    while i + 128 <= n {
        for (k, acc) in acc.iter_mut().enumerate() {
            // SAFETY: i + 32k + 32 <= i + 128 <= n: both 32-element loads are in bounds.
            let (x, y) = unsafe {
                (
                    load32_bh(pw.add(i + 32 * k), all),
                    load32_bh(pa.add(i + 32 * k), all),
                )
            };
            *acc = _mm512_dpbf16_ps(*acc, x, y);
        }
        i += 128;
    }
    while i + 32 <= n {
        // SAFETY: i + 32 <= n: both loads are in bounds.
        let (x, y) = unsafe { (load32_bh(pw.add(i), all), load32_bh(pa.add(i), all)) };
        acc[0] = _mm512_dpbf16_ps(acc[0], x, y);
        i += 32;
    }
    if i < n {
        let m = mask32(n - i);
        // SAFETY: only the low n - i lanes are read, all below n.
        let (x, y) = unsafe { (load32_bh(pw.add(i), m), load32_bh(pa.add(i), m)) };
        acc[1] = _mm512_dpbf16_ps(acc[1], x, y);
    }
    reduce(acc)
}
