//! Vector operations of the neural-network layers in ggml's exact order, vectorized: the
//! softmax, SwiGLU, `exp` and the two f16 dot-product orders of attention that llama.cpp's
//! CPU backend (AVX-512 build) runs, so that a model using them agrees with llama.cpp bit for
//! bit while running at SIMD speed.
//!
//! Each function has a plain scalar definition here ([`scalar`]), which is the
//! specification; on a CPU with AVX-512 (when [`Isa::active`] is `Avx512`) an AVX-512 version
//! computes exactly the same values (lane layouts and reductions follow the scalar
//! definitions, which follow ggml's vector code), and elsewhere the scalar definition runs
//! (compiled with FMA where the CPU has it, so `f32::mul_add` is one instruction, not a
//! library call). `tests/vector_ops.rs` checks the two bit for bit.
//!
//! ```
//! let mut x = [1.0f32, 2.0, 3.0, f32::NEG_INFINITY];
//! ziglama_tensor::vector::softmax_ggml(&mut x);
//! assert!((x.iter().sum::<f32>() - 1.0).abs() < 1e-6);
//! assert_eq!(x[3], 0.0);
//! ```

#[cfg(target_arch = "x86_64")]
use crate::Isa;

/// Whether the AVX-512 versions run.
#[cfg(target_arch = "x86_64")]
#[inline]
fn avx512() -> bool {
    Isa::active() == Isa::Avx512
}

/// Whether the CPU has AVX2 and FMA (for the scalar definitions compiled with FMA).
#[cfg(target_arch = "x86_64")]
#[inline]
fn fma() -> bool {
    Isa::active() >= Isa::Avx2 && Isa::active() != Isa::Neon
}

/// Runs `$scalar(args)` compiled with AVX2 + FMA where the CPU has them.
macro_rules! with_fma {
    ($name:ident, $scalar:path, ($($arg:ident: $ty:ty),*) -> $ret:ty) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx2,fma")]
            fn $name($($arg: $ty),*) -> $ret {
                $scalar($($arg),*)
            }
            if fma() {
                // SAFETY: `fma()` checked that the CPU has AVX2 and FMA.
                return unsafe { $name($($arg),*) };
            }
        }
        $scalar($($arg),*)
    }};
}

/// ggml's softmax of one row (AVX-512 build): `exp(x - max)` with [`scalar::exp_ggml`] in
/// chunks of 16, each chunk's values summed as `_mm512_reduce_add_ps` ([`scalar::reduce16`])
/// and the chunk sums added in `f64`, a tail past a multiple of 16 with the library `exp`;
/// then every value is multiplied by `(1 / sum) as f32`. `-inf` entries become 0; a row of
/// only `-inf` becomes zeros.
pub fn softmax_ggml(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        // SAFETY: `avx512()` checked that the CPU has AVX-512 F/BW/DQ/VL (Isa::Avx512).
        return unsafe { crate::simd::x86_64::avx512::vector::softmax_ggml(x) };
    }
    with_fma!(softmax_fma, scalar::softmax_ggml, (x: &mut [f32]) -> ())
}

/// SwiGLU in place as ggml's `ggml_vec_swiglu_f32` (AVX-512 build): `gate[i] = x / (1 +
/// exp_ggml(0 - x)) * up[i]` with `x = gate[i]` over chunks of 16, and with the library `exp`
/// for a tail. Covers the shorter of the two slices.
pub fn swiglu_ggml(gate: &mut [f32], up: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        // SAFETY: as in `softmax_ggml`.
        return unsafe { crate::simd::x86_64::avx512::vector::swiglu_ggml(gate, up) };
    }
    with_fma!(swiglu_fma, scalar::swiglu_ggml, (gate: &mut [f32], up: &[f32]) -> ())
}

/// The dot product in llamafile tinyBLAS's order (what llama.cpp uses for attention products
/// of a batch of two or more tokens): one 16-lane accumulator over chunks of 16, `acc += x *
/// y` (product and sum rounded separately), reduced as [`scalar::reduce16`], then a tail past
/// a multiple of 16 added in order. Exact products (values that are f16 numbers) make this
/// equal to tinyBLAS's fused version. Lengths are cut to the shorter.
pub fn dot_gemm(x: &[f32], y: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        // SAFETY: as in `softmax_ggml`.
        return unsafe { crate::simd::x86_64::avx512::vector::dot_gemm(x, y) };
    }
    with_fma!(dot_gemm_fma, scalar::dot_gemm, (x: &[f32], y: &[f32]) -> f32)
}

/// Four [`dot_gemm`]s of the rows `x[r]` with one `y`, each bit-identical to
/// `dot_gemm(x[r], y)`: the four accumulation chains are independent, so they overlap (one
/// `dot_gemm` of a 256-wide head waits on its chain of additions), and each chunk of `y` is
/// loaded once. Each row is cut to its shorter length with `y`.
pub fn dot_gemm4(x: [&[f32]; 4], y: &[f32]) -> [f32; 4] {
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        // SAFETY: as in `softmax_ggml`.
        return unsafe { crate::simd::x86_64::avx512::vector::dot_gemm4(x, y) };
    }
    with_fma!(dot_gemm4_fma, scalar::dot_gemm4, (x: [&[f32]; 4], y: &[f32]) -> [f32; 4])
}

/// The dot product in `ggml_vec_dot_f16`'s order (AVX-512 build; a single token's attention):
/// four 16-lane accumulators over chunks of 64, folded as `(a0 + a2) + (a1 + a3)`, reduced as
/// [`scalar::reduce16`], then a tail added in `f64`. Lengths are cut to the shorter.
pub fn dot_gemv(x: &[f32], y: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        // SAFETY: as in `softmax_ggml`.
        return unsafe { crate::simd::x86_64::avx512::vector::dot_gemv(x, y) };
    }
    with_fma!(dot_gemv_fma, scalar::dot_gemv, (x: &[f32], y: &[f32]) -> f32)
}

/// `acc[i] += p * v[i]` (product and sum rounded separately) over the shorter length.
pub fn axpy(acc: &mut [f32], p: f32, v: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        // SAFETY: as in `softmax_ggml`.
        return unsafe { crate::simd::x86_64::avx512::vector::axpy(acc, p, v) };
    }
    scalar::axpy(acc, p, v)
}

/// `out[r] = dot_gemm(&x[r * stride..][..y.len()], y)` for every `r < out.len()`, each
/// bit-identical to that [`dot_gemm`]: the rows of a matrix (keys, `stride` apart) against
/// one vector (a query). The AVX-512 version runs sixteen rows' chains side by side and
/// reduces the sixteen accumulators together (the same pairwise additions as
/// [`scalar::reduce16`], interleaved across rows).
///
/// # Panics
///
/// If `x` is too short for the last row.
pub fn dot_gemm_rows(x: &[f32], stride: usize, y: &[f32], out: &mut [f32]) {
    if let Some(last) = out.len().checked_sub(1) {
        assert!(
            x.len() >= last * stride + y.len(),
            "dot_gemm_rows: {} values for {} rows of {} with stride {stride}",
            x.len(),
            out.len(),
            y.len()
        );
    }
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        // SAFETY: as in `softmax_ggml`; the length of `x` was checked above.
        return unsafe { crate::simd::x86_64::avx512::vector::dot_gemm_rows(x, stride, y, out) };
    }
    with_fma!(
        dot_gemm_rows_fma,
        scalar::dot_gemm_rows,
        (x: &[f32], stride: usize, y: &[f32], out: &mut [f32]) -> ()
    )
}

/// The weights of [`axpy_rows`]: the weight of row `r < rows` for head `g` is
/// `p[g * head_step + r * row_step]`.
#[derive(Clone, Copy, Debug)]
pub struct Weights<'a> {
    /// The weights.
    pub p: &'a [f32],
    /// How many rows there are.
    pub rows: usize,
    /// Distance in `p` from one row's weight to the next row's (same head).
    pub row_step: usize,
    /// Distance in `p` from one head's weight to the next head's (same row).
    pub head_step: usize,
}

impl Weights<'_> {
    /// The weight of row `r` for head `g`.
    #[inline]
    pub fn at(&self, r: usize, g: usize) -> f32 {
        self.p[g * self.head_step + r * self.row_step]
    }
}

/// Accumulates rows of `v` into `heads` accumulators in order: for each row `r < p.rows`
/// (`v[r * stride..][..w]`, `w = acc.len() / heads`) and each `g < heads` whose weight
/// `p.at(r, g)` is not 0, `acc[g * w + i] += p.at(r, g) * v[r * stride + i]` (product and sum
/// rounded separately), as [`axpy`] row after row. The AVX-512 version keeps the
/// accumulators in registers across the rows and loads each row once for all heads.
///
/// # Panics
///
/// If `heads` is 0 or does not divide `acc.len()`, or `p.p` or `v` is too short for the last
/// row.
pub fn axpy_rows(acc: &mut [f32], heads: usize, p: Weights<'_>, v: &[f32], stride: usize) {
    assert!(
        heads > 0 && acc.len().is_multiple_of(heads),
        "axpy_rows: {heads} heads for {} accumulators",
        acc.len()
    );
    let w = acc.len() / heads;
    if let Some(last) = p.rows.checked_sub(1) {
        assert!(
            v.len() >= last * stride + w,
            "axpy_rows: {} values for {} rows of {w} with stride {stride}",
            v.len(),
            p.rows
        );
        assert!(
            p.p.len() > (heads - 1) * p.head_step + last * p.row_step,
            "axpy_rows: {} weights for {} rows of {heads} heads",
            p.p.len(),
            p.rows
        );
    }
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        // SAFETY: as in `softmax_ggml`; the lengths were checked above.
        return unsafe { crate::simd::x86_64::avx512::vector::axpy_rows(acc, heads, p, v, stride) };
    }
    with_fma!(
        axpy_rows_fma,
        scalar::axpy_rows,
        (acc: &mut [f32], heads: usize, p: Weights<'_>, v: &[f32], stride: usize) -> ()
    )
}

/// Rounds every value to the nearest `f16` (ties to even) and back to `f32`, as ggml does
/// converting activations for an F16 matrix product (F16C conversions on AVX-512).
pub fn round_f16(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        // SAFETY: as in `softmax_ggml` (Isa::Avx512 includes F16C).
        return unsafe { crate::simd::x86_64::avx512::vector::round_f16(x) };
    }
    scalar::round_f16(x)
}

/// `out[d]` = [`scalar::reduce16`] of the sixteen values `x[l * stride + d]`, `l < 16`: sixteen
/// rows (`stride` apart) summed column by column in `_mm512_reduce_add_ps`'s order, as the
/// lanes of an accumulator are folded. The AVX-512 version adds whole rows in that order.
///
/// # Panics
///
/// If `x` is shorter than `15 * stride + out.len()` (and `out` is not empty).
pub fn reduce16_rows(x: &[f32], stride: usize, out: &mut [f32]) {
    if out.is_empty() {
        return;
    }
    assert!(
        x.len() >= 15 * stride + out.len(),
        "reduce16_rows: {} values for 16 rows of {} with stride {stride}",
        x.len(),
        out.len()
    );
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        // SAFETY: as in `softmax_ggml`; the length of `x` was checked above.
        return unsafe { crate::simd::x86_64::avx512::vector::reduce16_rows(x, stride, out) };
    }
    scalar::reduce16_rows(x, stride, out)
}

/// The scalar definitions: the specification of the functions above.
pub mod scalar {
    /// `_mm512_reduce_add_ps`'s order: halves added pairwise (16 -> 8 -> 4 -> 2 -> 1).
    #[inline(always)]
    pub fn reduce16(v: &[f32; 16]) -> f32 {
        let h: [f32; 8] = std::array::from_fn(|i| v[i] + v[i + 8]);
        let q = [h[0] + h[4], h[1] + h[5], h[2] + h[6], h[3] + h[7]];
        let r = [q[0] + q[2], q[1] + q[3]];
        r[0] + r[1]
    }

    /// ggml's AVX-512 `ggml_v_expf` for one lane: a degree-5 polynomial after range
    /// reduction, scaled by `2^n` (`vscalefps`); where `|n| > 192`, 0 for `n <= 0` and
    /// infinity otherwise (a NaN input gives NaN).
    #[inline(always)]
    pub fn exp_ggml(x: f32) -> f32 {
        let c = f32::from_bits;
        let r = c(0x4b40_0000); // 0x1.8p23
        let z = x.mul_add(c(0x3fb8_aa3b), r); // log2(e)
        let n = z - r;
        let b = (-n).mul_add(c(0x35bf_be8e), (-n).mul_add(c(0x3f31_7200), x));
        if n.abs() > 192.0 {
            return if n <= 0.0 { 0.0 } else { f32::INFINITY };
        }
        let u = b * b;
        let hi = c(0x3c07_2010).mul_add(b, c(0x3d2b_9f17));
        let lo = c(0x3e2a_af33).mul_add(b, c(0x3eff_fedb));
        let j = hi.mul_add(u, lo).mul_add(u, c(0x3f7f_fff6).mul_add(b, 1.0));
        if n.is_nan() {
            return f32::NAN;
        }
        // vscalefps: j * 2^n rounded once (exact in f64, |n| <= 192).
        let pow2 = f64::from_bits(((n as i64 + 1023) as u64) << 52);
        (f64::from(j) * pow2) as f32
    }

    /// See [`super::softmax_ggml`].
    #[inline(always)]
    pub fn softmax_ggml(x: &mut [f32]) {
        let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if max == f32::NEG_INFINITY {
            x.iter_mut().for_each(|v| *v = 0.0);
            return;
        }
        let full = x.len() / 16 * 16;
        let mut sum = 0f64;
        for chunk in x[..full].chunks_exact_mut(16) {
            let mut v = [0f32; 16];
            for (o, c) in v.iter_mut().zip(chunk.iter_mut()) {
                *o = exp_ggml(*c - max);
                *c = *o;
            }
            sum += f64::from(reduce16(&v));
        }
        for c in x[full..].iter_mut() {
            *c = (*c - max).exp();
            sum += f64::from(*c);
        }
        let scale = (1.0 / sum) as f32;
        for c in x.iter_mut() {
            *c *= scale;
        }
    }

    /// See [`super::swiglu_ggml`].
    #[inline(always)]
    pub fn swiglu_ggml(gate: &mut [f32], up: &[f32]) {
        let n = gate.len().min(up.len());
        let full = n / 16 * 16;
        for (g, u) in gate[..full].iter_mut().zip(&up[..full]) {
            *g = *g / (1.0 + exp_ggml(0.0 - *g)) * u;
        }
        for (g, u) in gate[full..n].iter_mut().zip(&up[full..n]) {
            *g = *g / (1.0 + (-*g).exp()) * u;
        }
    }

    /// See [`super::dot_gemm`].
    #[inline(always)]
    pub fn dot_gemm(x: &[f32], y: &[f32]) -> f32 {
        let n = x.len().min(y.len());
        let mut acc = [0f32; 16];
        let full = n / 16 * 16;
        for (cx, cy) in x[..full].chunks_exact(16).zip(y[..full].chunks_exact(16)) {
            for l in 0..16 {
                acc[l] += cx[l] * cy[l];
            }
        }
        let mut s = reduce16(&acc);
        for i in full..n {
            s += x[i] * y[i];
        }
        s
    }

    /// See [`super::dot_gemm4`]: four [`dot_gemm`]s.
    #[inline(always)]
    pub fn dot_gemm4(x: [&[f32]; 4], y: &[f32]) -> [f32; 4] {
        x.map(|x| dot_gemm(x, y))
    }

    /// See [`super::dot_gemv`].
    #[inline(always)]
    pub fn dot_gemv(x: &[f32], y: &[f32]) -> f32 {
        let n = x.len().min(y.len());
        let mut acc = [[0f32; 16]; 4];
        let full = n / 64 * 64;
        for (cx, cy) in x[..full].chunks_exact(64).zip(y[..full].chunks_exact(64)) {
            for (j, a) in acc.iter_mut().enumerate() {
                for l in 0..16 {
                    a[l] += cx[16 * j + l] * cy[16 * j + l];
                }
            }
        }
        let x0: [f32; 16] =
            std::array::from_fn(|l| (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]));
        let mut s = f64::from(reduce16(&x0));
        for i in full..n {
            s += f64::from(x[i] * y[i]);
        }
        s as f32
    }

    /// See [`super::axpy`].
    #[inline(always)]
    pub fn axpy(acc: &mut [f32], p: f32, v: &[f32]) {
        for (a, v) in acc.iter_mut().zip(v) {
            *a += p * v;
        }
    }

    /// See [`super::dot_gemm_rows`].
    #[inline(always)]
    pub fn dot_gemm_rows(x: &[f32], stride: usize, y: &[f32], out: &mut [f32]) {
        for (r, o) in out.iter_mut().enumerate() {
            *o = dot_gemm(&x[r * stride..][..y.len()], y);
        }
    }

    /// See [`super::axpy_rows`].
    #[inline(always)]
    pub fn axpy_rows(
        acc: &mut [f32],
        heads: usize,
        p: super::Weights<'_>,
        v: &[f32],
        stride: usize,
    ) {
        let w = acc.len() / heads;
        for r in 0..p.rows {
            let row = &v[r * stride..][..w];
            for (g, acc) in acc.chunks_exact_mut(w).enumerate() {
                let p = p.at(r, g);
                if p != 0.0 {
                    axpy(acc, p, row);
                }
            }
        }
    }

    /// See [`super::round_f16`].
    #[inline(always)]
    pub fn round_f16(x: &mut [f32]) {
        for v in x.iter_mut() {
            *v = half::f16::from_f32(*v).to_f32();
        }
    }

    /// See [`super::reduce16_rows`].
    #[inline(always)]
    pub fn reduce16_rows(x: &[f32], stride: usize, out: &mut [f32]) {
        for (d, o) in out.iter_mut().enumerate() {
            let v: [f32; 16] = std::array::from_fn(|l| x[l * stride + d]);
            *o = reduce16(&v);
        }
    }
}
