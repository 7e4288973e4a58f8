//! Q5_0: blocks of 32 5-bit values with one f16 scale; value = d * (q - 16). Pairs with Q8_0.

use half::f16;

use super::q4_0::c_float_to_int;
use super::{Block, BlockQ8_0, Kernels, Quantize, VecDot};
use crate::GgmlType;

/// Elements per Q5_0 block.
pub const QK5_0: usize = 32;

/// ggml's `block_q5_0`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ5_0 {
    /// Scale.
    pub d: f16,
    /// Fifth bits, one per element (little-endian u32).
    pub qh: [u8; 4],
    /// Low nibbles, laid out as in Q4_0.
    pub qs: [u8; 16],
}
const _: () = assert!(std::mem::size_of::<BlockQ5_0>() == 22);

impl BlockQ5_0 {
    /// The 5-bit quants of the block (0..=31), in element order.
    #[inline]
    fn quants(&self) -> [u8; QK5_0] {
        let qh = u32::from_le_bytes(self.qh);
        let mut q = [0u8; QK5_0];
        for (j, &b) in self.qs.iter().enumerate() {
            q[j] = (b & 0x0F) | ((((qh >> j) << 4) & 0x10) as u8);
            q[j + 16] = (b >> 4) | (((qh >> (j + 12)) & 0x10) as u8);
        }
        q
    }
}

impl Block for BlockQ5_0 {
    const TYPE: GgmlType = GgmlType::Q5_0;
    const BLOCK_SIZE: usize = QK5_0;
    /// ggml's `dequantize_row_q5_0`: `(q - 16) * d`, bit 4 of quant `j` taken from bit `j`
    /// of `qh`.
    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK5_0)) {
            let d = b.d.to_f32();
            for (y, &q) in y.iter_mut().zip(&b.quants()) {
                *y = (q as i32 - 16) as f32 * d;
            }
        }
    }
}

impl Quantize for BlockQ5_0 {
    /// ggml's `quantize_row_q5_0_ref`: the scale is the value of largest magnitude divided
    /// by -16, quants are `trunc(x / d + 16.5)` clamped to 31.
    fn quantize(x: &[f32], out: &mut [Self]) {
        for (b, x) in out.iter_mut().zip(x.chunks_exact(QK5_0)) {
            let mut amax = 0f32;
            let mut max = 0f32;
            for &v in x {
                if amax < v.abs() {
                    amax = v.abs();
                    max = v;
                }
            }
            let d = max / -16.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            b.d = f16::from_f32(d);
            let mut qh = 0u32;
            let (lo, hi) = x.split_at(QK5_0 / 2);
            for (j, (&x0, &x1)) in lo.iter().zip(hi).enumerate() {
                // C's float -> int8_t conversion, as x86-64 compiles it.
                let xi0 = (c_float_to_int(x0 * id + 16.5) as i8).min(31) as u8;
                let xi1 = (c_float_to_int(x1 * id + 16.5) as i8).min(31) as u8;
                b.qs[j] = (xi0 & 0x0F) | ((xi1 & 0x0F) << 4);
                qh |= (((xi0 & 0x10) >> 4) as u32) << j;
                qh |= (((xi1 & 0x10) >> 4) as u32) << (j + QK5_0 / 2);
            }
            b.qh = qh.to_le_bytes();
        }
    }
}

impl VecDot for BlockQ5_0 {
    type Activation = BlockQ8_0;
    /// ggml's `ggml_vec_dot_q5_0_q8_0_generic`: per block the exact integer sum of
    /// `(q - 16) * a`, then `(d_w * d_a) * sumi` accumulated in block order.
    fn vec_dot(w: &[Self], a: &[BlockQ8_0]) -> f32 {
        let mut sumf = 0f32;
        for (x, y) in w.iter().zip(a) {
            let sumi: i32 = x
                .quants()
                .iter()
                .zip(&y.qs)
                .map(|(&q, &a)| (q as i32 - 16) * a as i32)
                .sum();
            sumf += (x.d.to_f32() * y.d.to_f32()) * sumi as f32;
        }
        sumf
    }
    #[cfg(target_arch = "x86_64")]
    const KERNELS: Kernels<Self> = Kernels {
        avx2: Some(crate::simd::x86_64::avx2::legacy::vec_dot_q5_0_q8_0),
        avx512: Some(crate::simd::x86_64::avx512::legacy::vec_dot_q5_0_q8_0),
        avx512_vnni: Some(crate::simd::x86_64::avx512::legacy::vec_dot_q5_0_q8_0_vnni),
        neon: None,
    };
    #[cfg(target_arch = "x86_64")]
    const KERNELS4: super::Kernels4<Self> = super::Kernels4 {
        avx2: Some(crate::simd::x86_64::avx2::legacy::vec_dot4_q5_0_q8_0),
        avx512: Some(crate::simd::x86_64::avx512::legacy::vec_dot4_q5_0_q8_0),
        avx512_vnni: Some(crate::simd::x86_64::avx512::legacy::vec_dot4_q5_0_q8_0_vnni),
        neon: None,
    };
    #[cfg(target_arch = "x86_64")]
    const TILES: super::Tiles<Self> = super::Tiles {
        avx2: Some(crate::simd::x86_64::avx2::gemm::tile_q5_0_q8_0),
        avx512: Some(crate::simd::x86_64::avx512::gemm::tile_q5_0_q8_0),
        avx512_vnni: Some(crate::simd::x86_64::avx512::gemm::tile_q5_0_q8_0_vnni),
        neon: None,
    };
    #[cfg(target_arch = "x86_64")]
    const PANEL_VNNI: Option<super::RawPanel<Self>> =
        Some(crate::simd::x86_64::avx512::panel::q5_0_q8_0_vnni);
    #[cfg(target_arch = "aarch64")]
    const KERNELS: Kernels<Self> = Kernels {
        neon: Some(crate::simd::aarch64::legacy::vec_dot_q5_0_q8_0),
        ..Kernels::NONE
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const KERNELS: Kernels<Self> = Kernels::NONE;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dequantize_takes_the_fifth_bit_from_qh() {
        let mut qs = [0u8; 16];
        qs[0] = 0xF1; // element 0 low bits 1, element 16 low bits 15
        qs[2] = 0x00;
        // bit 0 (element 0), bit 16 (element 16) and bit 2 (element 2) set.
        let qh = (1u32 | (1 << 16) | (1 << 2)).to_le_bytes();
        let b = BlockQ5_0 {
            d: f16::from_f32(0.5),
            qh,
            qs,
        };
        let mut y = [0f32; 32];
        BlockQ5_0::dequantize(&[b], &mut y);
        assert_eq!(y[0], (17 - 16) as f32 * 0.5);
        assert_eq!(y[16], (31 - 16) as f32 * 0.5);
        assert_eq!(y[2], 0.0); // 16 - 16
        assert_eq!(y[1], -8.0); // 0 - 16
        assert_eq!(y[17], -8.0);
    }

    #[test]
    fn quantize_round_trips_representable_values() {
        // Largest magnitude -16 -> d = 1; every integer in -16..=15 is exact.
        let x: Vec<f32> = (0..32).map(|i| i as f32 - 16.0).collect();
        let mut b = [BlockQ5_0 {
            d: f16::ZERO,
            qh: [0; 4],
            qs: [0; 16],
        }];
        BlockQ5_0::quantize(&x, &mut b);
        assert_eq!(b[0].d.to_f32(), 1.0);
        // elements 16..32 have quants 16..32 (bit 4 set), elements 0..16 quants 0..16.
        assert_eq!(u32::from_le_bytes(b[0].qh), 0xFFFF_0000);
        let mut y = [0f32; 32];
        BlockQ5_0::dequantize(&b, &mut y);
        assert_eq!(y.to_vec(), x);
    }

    #[test]
    fn positive_maximum_clamps_to_thirty_one() {
        let mut x = [0f32; 32];
        x[0] = 16.0; // d = -1: -16 + 16.5 -> 0
        x[1] = -16.0; // 32.5 -> 32 -> 31
        let mut b = [BlockQ5_0 {
            d: f16::ZERO,
            qh: [0; 4],
            qs: [0; 16],
        }];
        BlockQ5_0::quantize(&x, &mut b);
        assert_eq!(b[0].d.to_f32(), -1.0);
        assert_eq!(b[0].quants()[0], 0);
        assert_eq!(b[0].quants()[1], 31);
    }

    #[test]
    fn vec_dot_is_the_scaled_integer_dot() {
        let b = BlockQ5_0 {
            d: f16::from_f32(2.0),
            qh: (1u32 << 31).to_le_bytes(), // element 31 has bit 4
            qs: [0x3F; 16],                 // low bits: j < 16: 15, j >= 16: 3
        };
        let mut qs = [0i8; 32];
        qs[0] = 10; // (15 - 16) * 10
        qs[31] = -2; // (19 - 16) * -2
        qs[20] = 1; // (3 - 16) * 1
        let a = BlockQ8_0 {
            d: f16::from_f32(0.125),
            qs,
        };
        let sumi = -10 - 6 - 13;
        assert_eq!(
            BlockQ5_0::vec_dot(&[b], &[a]),
            (2.0f32 * 0.125) * sumi as f32
        );
    }

    /// The hashes are of the output of ggml's own `quantize_row_q5_0_ref` and
    /// `dequantize_row_q5_0` (libggml-base of llama.cpp as built by llama-cpp-python
    /// 0.3.36) on [`golden::golden_input`]: 4096 blocks of zeros, constants, lone spikes,
    /// exact ties and random values over scales from 2^-20 to 2^12.
    #[test]
    fn quantize_and_dequantize_match_ggml_bit_for_bit() {
        use crate::formats::q4_0::golden::{fnv1a, golden_input};
        let x = golden_input();
        let mut q = vec![<BlockQ5_0 as bytemuck::Zeroable>::zeroed(); x.len() / 32];
        BlockQ5_0::quantize(&x, &mut q);
        assert_eq!(fnv1a(bytemuck::cast_slice(&q)), 0xf5a713dccf72d483);
        let mut y = vec![0f32; x.len()];
        BlockQ5_0::dequantize(&q, &mut y);
        assert_eq!(fnv1a(bytemuck::cast_slice(&y)), 0xdbd27917fc3b1257);
    }
}
