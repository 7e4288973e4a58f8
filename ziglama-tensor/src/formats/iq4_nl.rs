//! IQ4_NL: blocks of 32 4-bit indices into a fixed non-linear table, with one f16 scale; value = d * `KVALUES_IQ4NL[q]`. Pairs with Q8_0.

use half::f16;

use super::{Block, BlockQ8_0, Kernels, VecDot};
use crate::GgmlType;

/// Elements per IQ4_NL block.
pub const QK4_NL: usize = 32;

/// The sixteen non-linear levels IQ4_NL and IQ4_XS indices select (ggml's `kvalues_iq4nl`).
pub const KVALUES_IQ4NL: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// ggml's `block_iq4_nl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIQ4_NL {
    /// Scale.
    pub d: f16,
    /// Indices into the non-linear table, laid out as in Q4_0.
    pub qs: [u8; 16],
}
const _: () = assert!(std::mem::size_of::<BlockIQ4_NL>() == 18);

impl Block for BlockIQ4_NL {
    const TYPE: GgmlType = GgmlType::IQ4_NL;
    const BLOCK_SIZE: usize = QK4_NL;
    /// ggml's `dequantize_row_iq4_nl`: `d * KVALUES_IQ4NL[q]`.
    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK4_NL)) {
            let d = b.d.to_f32();
            let (lo, hi) = y.split_at_mut(QK4_NL / 2);
            for ((&q, y0), y1) in b.qs.iter().zip(lo).zip(hi) {
                *y0 = d * KVALUES_IQ4NL[(q & 0x0F) as usize] as f32;
                *y1 = d * KVALUES_IQ4NL[(q >> 4) as usize] as f32;
            }
        }
    }
}

impl VecDot for BlockIQ4_NL {
    type Activation = BlockQ8_0;
    /// ggml's `ggml_vec_dot_iq4_nl_q8_0_generic`: per block the exact integer sum of
    /// `KVALUES_IQ4NL[q] * a`, then `(d_a * d_w) * sumi` accumulated in block order.
    fn vec_dot(w: &[Self], a: &[BlockQ8_0]) -> f32 {
        let mut sumf = 0f32;
        for (x, y) in w.iter().zip(a) {
            let d = y.d.to_f32() * x.d.to_f32();
            let (ylo, yhi) = y.qs.split_at(QK4_NL / 2);
            let mut sumi1 = 0i32;
            let mut sumi2 = 0i32;
            for ((&q, &y0), &y1) in x.qs.iter().zip(ylo).zip(yhi) {
                sumi1 += y0 as i32 * KVALUES_IQ4NL[(q & 0x0F) as usize] as i32;
                sumi2 += y1 as i32 * KVALUES_IQ4NL[(q >> 4) as usize] as i32;
            }
            sumf += d * (sumi1 + sumi2) as f32;
        }
        sumf
    }
    #[cfg(target_arch = "x86_64")]
    const KERNELS: Kernels<Self> = Kernels {
        avx2: Some(crate::simd::x86_64::avx2::legacy::vec_dot_iq4_nl_q8_0),
        avx512: Some(crate::simd::x86_64::avx512::legacy::vec_dot_iq4_nl_q8_0),
        avx512_vnni: Some(crate::simd::x86_64::avx512::legacy::vec_dot_iq4_nl_q8_0_vnni),
        neon: None,
    };
    #[cfg(target_arch = "x86_64")]
    const KERNELS4: super::Kernels4<Self> = super::Kernels4 {
        avx2: Some(crate::simd::x86_64::avx2::legacy::vec_dot4_iq4_nl_q8_0),
        avx512: Some(crate::simd::x86_64::avx512::legacy::vec_dot4_iq4_nl_q8_0),
        avx512_vnni: Some(crate::simd::x86_64::avx512::legacy::vec_dot4_iq4_nl_q8_0_vnni),
        neon: None,
    };
    #[cfg(target_arch = "aarch64")]
    const KERNELS: Kernels<Self> = Kernels {
        neon: Some(crate::simd::aarch64::legacy::vec_dot_iq4_nl_q8_0),
        ..Kernels::NONE
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const KERNELS: Kernels<Self> = Kernels::NONE;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dequantize_looks_up_the_table() {
        let mut qs = [0x88u8; 16]; // index 8: level 1
        qs[0] = 0xF0; // element 0: -127, element 16: 113
        let b = BlockIQ4_NL {
            d: f16::from_f32(0.5),
            qs,
        };
        let mut y = [0f32; 32];
        BlockIQ4_NL::dequantize(&[b], &mut y);
        assert_eq!(y[0], -63.5);
        assert_eq!(y[16], 56.5);
        assert_eq!(y[1], 0.5);
    }

    #[test]
    fn vec_dot_is_the_scaled_integer_dot_of_table_values() {
        let b = BlockIQ4_NL {
            d: f16::from_f32(0.25),
            qs: [0x70; 16], // j < 16: -127, j >= 16: -10
        };
        let mut qs = [0i8; 32];
        qs[2] = -127;
        qs[17] = 3;
        let a = BlockQ8_0 {
            d: f16::from_f32(2.0),
            qs,
        };
        let sumi = 127 * 127 - 30;
        assert_eq!(BlockIQ4_NL::vec_dot(&[b], &[a]), 0.5 * sumi as f32);
    }

    /// ggml's `dequantize_row_iq4_nl` (libggml-base of llama.cpp, llama-cpp-python 0.3.36) of
    /// the bytes ggml's Q4_0 quantizer makes of [`golden_input`](crate::formats::q4_0::golden)
    /// (the layouts are the same) hashes to this value.
    #[test]
    fn dequantize_matches_ggml_bit_for_bit() {
        use crate::formats::q4_0::golden::{fnv1a, golden_input};
        use crate::formats::{BlockQ4_0, Quantize};
        let x = golden_input();
        let mut q = vec![<BlockQ4_0 as bytemuck::Zeroable>::zeroed(); x.len() / 32];
        BlockQ4_0::quantize(&x, &mut q);
        let iq: &[BlockIQ4_NL] = bytemuck::cast_slice(&q);
        let mut y = vec![0f32; x.len()];
        BlockIQ4_NL::dequantize(iq, &mut y);
        assert_eq!(fnv1a(bytemuck::cast_slice(&y)), 0x90c28ab5515ed6d9);
    }
}
