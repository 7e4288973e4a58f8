//! Q8_0: blocks of 32 signed bytes with one f16 scale; value = d * q. Weights and the
//! activation format of Q4_0, Q5_0, Q8_0 and IQ4_NL.

use half::f16;

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use super::q8_1::quantize_activation_block;
use super::q8_1::{abs_max, round_to_i8};
use super::{Block, Kernels, Quantize, VecDot};
use crate::GgmlType;

/// Elements per Q8_0 block.
pub const QK8_0: usize = 32;

/// ggml's `block_q8_0`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ8_0 {
    /// Scale.
    pub d: f16,
    /// Quants.
    pub qs: [i8; QK8_0],
}
const _: () = assert!(std::mem::size_of::<BlockQ8_0>() == 34);

impl Block for BlockQ8_0 {
    const TYPE: GgmlType = GgmlType::Q8_0;
    const BLOCK_SIZE: usize = QK8_0;
    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK8_0)) {
            let d = b.d.to_f32();
            for (y, &q) in y.iter_mut().zip(&b.qs) {
                *y = q as f32 * d;
            }
        }
    }
}

impl Quantize for BlockQ8_0 {
    /// ggml's `quantize_row_q8_0_ref`. This is also the activation quantizer of Q4_0, Q5_0,
    /// Q8_0 and IQ4_NL, so it uses the vectorizable `abs_max` and `round_to_i8` of Q8_1 (exact
    /// equivalents of the reference's max and `roundf`).
    fn quantize(x: &[f32], out: &mut [Self]) {
        for (b, x) in out.iter_mut().zip(x.chunks_exact(QK8_0)) {
            let amax = abs_max(x);
            let d = amax / 127.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            b.d = f16::from_f32(d);
            if id.is_infinite() {
                // |x| < ~2^-125: x * id is infinite or NaN, which C's conversion to int8_t
                // (cvttss2si, low byte of i32::MIN) turns into 0.
                b.qs = [0; QK8_0];
                continue;
            }
            for (q, &v) in b.qs.iter_mut().zip(x) {
                *q = round_to_i8(v * id);
            }
        }
    }

    /// ggml-cpu's `quantize_row_q8_0` (see `quantize_activation_block`): on x86-64
    /// `id = 127 / amax` and rounding half to even, on aarch64 `id = 1 / d` and rounding half
    /// to even. Other targets: the reference.
    fn quantize_activation(x: &[f32], out: &mut [Self]) {
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        for (b, x) in out.iter_mut().zip(x.chunks_exact(QK8_0)) {
            let (d, qs, _) = quantize_activation_block(x);
            b.d = f16::from_f32(d);
            b.qs = qs;
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        Self::quantize(x, out)
    }
}

impl VecDot for BlockQ8_0 {
    type Activation = BlockQ8_0;
    fn vec_dot(w: &[Self], a: &[Self]) -> f32 {
        let mut sum = 0f32;
        for (x, y) in w.iter().zip(a) {
            let sumi: i32 =
                x.qs.iter()
                    .zip(&y.qs)
                    .map(|(&p, &q)| p as i32 * q as i32)
                    .sum();
            sum += sumi as f32 * (x.d.to_f32() * y.d.to_f32());
        }
        sum
    }
    #[cfg(target_arch = "x86_64")]
    const KERNELS: Kernels<Self> = Kernels {
        avx2: Some(crate::simd::x86_64::avx2::legacy::vec_dot_q8_0_q8_0),
        avx512: Some(crate::simd::x86_64::avx512::legacy::vec_dot_q8_0_q8_0),
        avx512_vnni: Some(crate::simd::x86_64::avx512::legacy::vec_dot_q8_0_q8_0_vnni),
        neon: None,
    };
    #[cfg(target_arch = "x86_64")]
    const KERNELS4: super::Kernels4<Self> = super::Kernels4 {
        avx2: Some(crate::simd::x86_64::avx2::legacy::vec_dot4_q8_0_q8_0),
        avx512: Some(crate::simd::x86_64::avx512::legacy::vec_dot4_q8_0_q8_0),
        avx512_vnni: Some(crate::simd::x86_64::avx512::legacy::vec_dot4_q8_0_q8_0_vnni),
        neon: None,
    };
    #[cfg(target_arch = "x86_64")]
    const TILES: super::Tiles<Self> = super::Tiles {
        avx2: Some(crate::simd::x86_64::avx2::gemm::tile_q8_0_q8_0),
        avx512: Some(crate::simd::x86_64::avx512::gemm::tile_q8_0_q8_0),
        avx512_vnni: Some(crate::simd::x86_64::avx512::gemm::tile_q8_0_q8_0_vnni),
        neon: None,
    };
    #[cfg(target_arch = "x86_64")]
    const PANEL_VNNI: Option<super::RawPanel<Self>> =
        Some(crate::simd::x86_64::avx512::panel::q8_0_q8_0_vnni);
    #[cfg(target_arch = "aarch64")]
    const KERNELS: Kernels<Self> = Kernels {
        neon: Some(crate::simd::aarch64::legacy::vec_dot_q8_0_q8_0),
        ..Kernels::NONE
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const KERNELS: Kernels<Self> = Kernels::NONE;
}
