//! F16: IEEE half-precision floats, blocks of one element. Its dot product pairs with F16
//! (activations are rounded to f16 first, as ggml does).

use half::f16;

use super::{Block, Quantize, VecDot};
use crate::GgmlType;

impl Block for f16 {
    const TYPE: GgmlType = GgmlType::F16;
    const BLOCK_SIZE: usize = 1;
    fn dequantize(blocks: &[f16], out: &mut [f32]) {
        for (o, h) in out.iter_mut().zip(blocks) {
            *o = h.to_f32();
        }
    }
}

impl Quantize for f16 {
    /// Round to nearest even, as ggml's `GGML_FP32_TO_FP16`.
    fn quantize(x: &[f32], out: &mut [f16]) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = f16::from_f32(v);
        }
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
