//! BF16: bfloat16, the upper half of an f32, blocks of one element. Its dot product pairs
//! with BF16.

use half::bf16;

use super::{Block, Quantize, VecDot};
use crate::GgmlType;

/// ggml's `ggml_compute_fp32_to_bf16`: round to nearest even, NaN kept quiet.
pub fn bf16_from_f32(v: f32) -> bf16 {
    let u = v.to_bits();
    if (u & 0x7fff_ffff) > 0x7f80_0000 {
        return bf16::from_bits(((u >> 16) | 64) as u16);
    }
    bf16::from_bits((u.wrapping_add(0x7fff + ((u >> 16) & 1)) >> 16) as u16)
}

impl Block for bf16 {
    const TYPE: GgmlType = GgmlType::BF16;
    const BLOCK_SIZE: usize = 1;
    fn dequantize(blocks: &[bf16], out: &mut [f32]) {
        for (o, h) in out.iter_mut().zip(blocks) {
            *o = f32::from_bits((h.to_bits() as u32) << 16);
        }
    }
}

impl Quantize for bf16 {
    fn quantize(x: &[f32], out: &mut [bf16]) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = bf16_from_f32(v);
        }
    }
}

impl VecDot for bf16 {
    type Activation = bf16;
    /// Products in f32, accumulated in f64, as ggml's scalar `ggml_vec_dot_bf16`.
    fn vec_dot(w: &[bf16], a: &[bf16]) -> f32 {
        w.iter()
            .zip(a)
            .map(|(x, y)| (x.to_f32() * y.to_f32()) as f64)
            .sum::<f64>() as f32
    }
    #[cfg(target_arch = "x86_64")]
    const KERNELS: super::Kernels<Self> = super::Kernels {
        avx2: Some(crate::simd::x86_64::avx2::float::dot_bf16),
        avx512: Some(crate::simd::x86_64::avx512::float::dot_bf16),
        ..super::Kernels::NONE
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_to_nearest_even_and_keeps_nan_quiet() {
        assert_eq!(bf16_from_f32(1.0).to_bits(), 0x3f80);
        // 1 + 2^-8 is exactly half-way between two bf16 values: ties go to even.
        assert_eq!(bf16_from_f32(f32::from_bits(0x3f80_8000)).to_bits(), 0x3f80);
        assert_eq!(bf16_from_f32(f32::from_bits(0x3f81_8000)).to_bits(), 0x3f82);
        assert_eq!(bf16_from_f32(f32::from_bits(0x7f80_0001)).to_bits(), 0x7fc0);
    }
}
