//! Q5_1: blocks of 32 5-bit values with an f16 scale and minimum; value = d * q + m. Pairs with Q8_1.

use half::f16;

use super::q4_0::c_float_to_int;
use super::{q8_1::BlockQ8_1, Block, Kernels, Quantize, VecDot};
use crate::GgmlType;

/// Elements per Q5_1 block.
pub const QK5_1: usize = 32;

/// ggml's `block_q5_1`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ5_1 {
    /// Scale.
    pub d: f16,
    /// Minimum.
    pub m: f16,
    /// Fifth bits, one per element (little-endian u32).
    pub qh: [u8; 4],
    /// Low nibbles, laid out as in Q4_1.
    pub qs: [u8; 16],
}
const _: () = assert!(std::mem::size_of::<BlockQ5_1>() == 24);

impl BlockQ5_1 {
    /// The 5-bit quants of the block (0..=31), in element order.
    #[inline]
    fn quants(&self) -> [u8; QK5_1] {
        let qh = u32::from_le_bytes(self.qh);
        let mut q = [0u8; QK5_1];
        for (j, &b) in self.qs.iter().enumerate() {
            q[j] = (b & 0x0F) | ((((qh >> j) << 4) & 0x10) as u8);
            q[j + 16] = (b >> 4) | (((qh >> (j + 12)) & 0x10) as u8);
        }
        q
    }
}

impl Block for BlockQ5_1 {
    const TYPE: GgmlType = GgmlType::Q5_1;
    const BLOCK_SIZE: usize = QK5_1;
    /// ggml's `dequantize_row_q5_1`: `q * d + m` (a multiply, then an add: not fused).
    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK5_1)) {
            let d = b.d.to_f32();
            let m = b.m.to_f32();
            for (y, &q) in y.iter_mut().zip(&b.quants()) {
                *y = q as f32 * d + m;
            }
        }
    }
}

impl Quantize for BlockQ5_1 {
    /// ggml's `quantize_row_q5_1_ref`: `m` is the block minimum, `d = (max - min) / 31`,
    /// quants are `trunc((x - min) / d + 0.5)` (no clamp in ggml).
    fn quantize(x: &[f32], out: &mut [Self]) {
        for (b, x) in out.iter_mut().zip(x.chunks_exact(QK5_1)) {
            let mut min = f32::MAX;
            let mut max = -f32::MAX;
            for &v in x {
                if v < min {
                    min = v;
                }
                if v > max {
                    max = v;
                }
            }
            let d = (max - min) / 31.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            b.d = f16::from_f32(d);
            b.m = f16::from_f32(min);
            let mut qh = 0u32;
            let (lo, hi) = x.split_at(QK5_1 / 2);
            for (j, (&x0, &x1)) in lo.iter().zip(hi).enumerate() {
                // C's float -> uint8_t conversion, as x86-64 compiles it.
                let xi0 = c_float_to_int((x0 - min) * id + 0.5) as u8;
                let xi1 = c_float_to_int((x1 - min) * id + 0.5) as u8;
                b.qs[j] = (xi0 & 0x0F) | ((xi1 & 0x0F) << 4);
                qh |= (((xi0 & 0x10) >> 4) as u32) << j;
                qh |= (((xi1 & 0x10) >> 4) as u32) << (j + QK5_1 / 2);
            }
            b.qh = qh.to_le_bytes();
        }
    }
}

impl VecDot for BlockQ5_1 {
    type Activation = BlockQ8_1;
    /// ggml's `ggml_vec_dot_q5_1_q8_1_generic`: per block the exact integer sum of `q * a`,
    /// then `(d_w * d_a) * sumi + m_w * s_a` accumulated in block order.
    fn vec_dot(w: &[Self], a: &[BlockQ8_1]) -> f32 {
        let mut sumf = 0f32;
        for (x, y) in w.iter().zip(a) {
            let sumi: i32 = x
                .quants()
                .iter()
                .zip(&y.qs)
                .map(|(&q, &a)| q as i32 * a as i32)
                .sum();
            sumf += (x.d.to_f32() * y.d.to_f32()) * sumi as f32 + x.m.to_f32() * y.s.to_f32();
        }
        sumf
    }
    #[cfg(target_arch = "x86_64")]
    const KERNELS: Kernels<Self> = Kernels {
        avx2: Some(crate::simd::x86_64::avx2::legacy::vec_dot_q5_1_q8_1),
        avx512: Some(crate::simd::x86_64::avx512::legacy::vec_dot_q5_1_q8_1),
        avx512_vnni: Some(crate::simd::x86_64::avx512::legacy::vec_dot_q5_1_q8_1_vnni),
        neon: None,
    };
    #[cfg(target_arch = "x86_64")]
    const KERNELS4: super::Kernels4<Self> = super::Kernels4 {
        avx2: Some(crate::simd::x86_64::avx2::legacy::vec_dot4_q5_1_q8_1),
        avx512: Some(crate::simd::x86_64::avx512::legacy::vec_dot4_q5_1_q8_1),
        avx512_vnni: Some(crate::simd::x86_64::avx512::legacy::vec_dot4_q5_1_q8_1_vnni),
        neon: None,
    };
    #[cfg(target_arch = "x86_64")]
    const TILES: super::Tiles<Self> = super::Tiles {
        avx2: Some(crate::simd::x86_64::avx2::gemm::tile_q5_1_q8_1),
        avx512: Some(crate::simd::x86_64::avx512::gemm::tile_q5_1_q8_1),
        avx512_vnni: Some(crate::simd::x86_64::avx512::gemm::tile_q5_1_q8_1_vnni),
        neon: None,
    };
    #[cfg(target_arch = "aarch64")]
    const KERNELS: Kernels<Self> = Kernels {
        neon: Some(crate::simd::aarch64::legacy::vec_dot_q5_1_q8_1),
        ..Kernels::NONE
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const KERNELS: Kernels<Self> = Kernels::NONE;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dequantize_is_scale_times_five_bit_quant_plus_minimum() {
        let mut qs = [0u8; 16];
        qs[0] = 0x21; // element 0 low bits 1, element 16 low bits 2
        let qh = (1u32 << 16).to_le_bytes(); // element 16 gets bit 4: 18
        let b = BlockQ5_1 {
            d: f16::from_f32(0.25),
            m: f16::from_f32(1.0),
            qh,
            qs,
        };
        let mut y = [0f32; 32];
        BlockQ5_1::dequantize(&[b], &mut y);
        assert_eq!(y[0], 1.25);
        assert_eq!(y[16], 18.0 * 0.25 + 1.0);
        assert_eq!(y[1], 1.0);
    }

    #[test]
    fn quantize_round_trips_a_ramp() {
        // min = 0, max = 31: d = 1, quants equal the values.
        let x: Vec<f32> = (0..32).map(|i| i as f32).collect();
        let mut b = [BlockQ5_1 {
            d: f16::ZERO,
            m: f16::ZERO,
            qh: [0; 4],
            qs: [0; 16],
        }];
        BlockQ5_1::quantize(&x, &mut b);
        assert_eq!(b[0].d.to_f32(), 1.0);
        assert_eq!(b[0].m.to_f32(), 0.0);
        assert_eq!(u32::from_le_bytes(b[0].qh), 0xFFFF_0000);
        assert_eq!(b[0].qs[1], 0x11); // 1 and 17 & 15
        let mut y = [0f32; 32];
        BlockQ5_1::dequantize(&b, &mut y);
        assert_eq!(y.to_vec(), x);
    }

    #[test]
    fn vec_dot_adds_minimum_times_activation_sum() {
        let w = BlockQ5_1 {
            d: f16::from_f32(1.0),
            m: f16::from_f32(0.5),
            qh: [0xFF; 4], // all quants have bit 4
            qs: [0x00; 16],
        };
        let mut qs = [0i8; 32];
        qs[3] = 2;
        qs[30] = -1;
        let a = BlockQ8_1 {
            d: f16::from_f32(0.5),
            s: f16::from_f32(0.5),
            qs,
        };
        let sumi = 16 * 2 - 16;
        let expected = (1.0f32 * 0.5) * sumi as f32 + 0.5 * 0.5;
        assert_eq!(BlockQ5_1::vec_dot(&[w], &[a]), expected);
    }

    /// The hashes are of the output of ggml's own `quantize_row_q5_1_ref` and
    /// `dequantize_row_q5_1` (libggml-base of llama.cpp as built by llama-cpp-python
    /// 0.3.36) on [`golden::golden_input`]: 4096 blocks of zeros, constants, lone spikes,
    /// exact ties and random values over scales from 2^-20 to 2^12.
    #[test]
    fn quantize_and_dequantize_match_ggml_bit_for_bit() {
        use crate::formats::q4_0::golden::{fnv1a, golden_input};
        let x = golden_input();
        let mut q = vec![<BlockQ5_1 as bytemuck::Zeroable>::zeroed(); x.len() / 32];
        BlockQ5_1::quantize(&x, &mut q);
        assert_eq!(fnv1a(bytemuck::cast_slice(&q)), 0xed58571ccd6a1503);
        let mut y = vec![0f32; x.len()];
        BlockQ5_1::dequantize(&q, &mut y);
        assert_eq!(fnv1a(bytemuck::cast_slice(&y)), 0xe6e51194cb5c4bdd);
    }
}
