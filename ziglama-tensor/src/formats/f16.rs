//! F16: IEEE half-precision floats, blocks of one element. Its dot product pairs with F16
//! (activations are rounded to f16 first, as ggml does).

use half::f16;
use half::slice::HalfFloatSliceExt;

use super::{Block, Quantize, VecDot};
use crate::GgmlType;

impl Block for f16 {
    const TYPE: GgmlType = GgmlType::F16;
    const BLOCK_SIZE: usize = 1;
    /// Exact. Whole slices go through `half`'s vectorized conversion (F16C where the CPU has
    /// it, detected at run time).
    fn dequantize(blocks: &[f16], out: &mut [f32]) {
        let n = blocks.len().min(out.len());
        blocks[..n].convert_to_f32_slice(&mut out[..n]);
    }
}

impl Quantize for f16 {
    /// Round to nearest even, as ggml's `GGML_FP32_TO_FP16` (F16C's `vcvtps2ph` on x86).
    /// Whole slices go through `half`'s vectorized conversion (F16C where the CPU has it,
    /// detected at run time), element for element the same as `f16::from_f32`.
    fn quantize(x: &[f32], out: &mut [f16]) {
        let n = x.len().min(out.len());
        out[..n].convert_from_f32_slice(&x[..n]);
    }
}

impl VecDot for f16 {
    type Activation = f16;
    /// Products in f32, accumulated in f64, as ggml's scalar `ggml_vec_dot_f16`.
    fn vec_dot(w: &[f16], a: &[f16]) -> f32 {
        w.iter()
            .zip(a)
            .map(|(x, y)| (x.to_f32() * y.to_f32()) as f64)
            .sum::<f64>() as f32
    }
    #[cfg(target_arch = "x86_64")]
    const KERNELS: super::Kernels<Self> = super::Kernels {
        avx2: Some(crate::simd::x86_64::avx2::float::dot_f16),
        avx512: Some(crate::simd::x86_64::avx512::float::dot_f16),
        ..super::Kernels::NONE
    };
}
