//! F32: plain 32-bit floats, blocks of one element. Its dot product pairs with F32.

use super::{Block, Quantize, VecDot};
use crate::GgmlType;

impl Block for f32 {
    const TYPE: GgmlType = GgmlType::F32;
    const BLOCK_SIZE: usize = 1;
    fn dequantize(blocks: &[f32], out: &mut [f32]) {
        out.copy_from_slice(blocks);
    }
}

impl Quantize for f32 {
    fn quantize(x: &[f32], out: &mut [f32]) {
        out.copy_from_slice(x);
    }
}

impl VecDot for f32 {
    type Activation = f32;
    /// Accumulates in f64, as ggml's scalar `ggml_vec_dot_f32` does.
    fn vec_dot(w: &[f32], a: &[f32]) -> f32 {
        w.iter()
            .zip(a)
            .map(|(&x, &y)| x as f64 * y as f64)
            .sum::<f64>() as f32
    }
    #[cfg(target_arch = "x86_64")]
    const KERNELS: super::Kernels<Self> = super::Kernels {
        avx2: Some(crate::simd::x86_64::avx2::float::dot_f32),
        avx512: Some(crate::simd::x86_64::avx512::float::dot_f32),
        ..super::Kernels::NONE
    };
}
