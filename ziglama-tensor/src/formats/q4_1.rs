//! Q4_1: blocks of 32 4-bit values with an f16 scale and minimum; value = d * q + m. Pairs with Q8_1.

use half::f16;

use super::q4_0::c_float_to_int;
use super::{q8_1::BlockQ8_1, Block, Kernels, Quantize, VecDot};
use crate::GgmlType;

/// Elements per Q4_1 block.
pub const QK4_1: usize = 32;

/// ggml's `block_q4_1`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4_1 {
    /// Scale.
    pub d: f16,
    /// Minimum.
    pub m: f16,
    /// Nibbles: element j in the low half of byte j, element j+16 in the high half.
    pub qs: [u8; 16],
}
const _: () = assert!(std::mem::size_of::<BlockQ4_1>() == 20);

impl Block for BlockQ4_1 {
    const TYPE: GgmlType = GgmlType::Q4_1;
    const BLOCK_SIZE: usize = QK4_1;
    /// ggml's `dequantize_row_q4_1`: `q * d + m` (a multiply, then an add: not fused).
    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK4_1)) {
            let d = b.d.to_f32();
            let m = b.m.to_f32();
            let (lo, hi) = y.split_at_mut(QK4_1 / 2);
            for ((&q, y0), y1) in b.qs.iter().zip(lo).zip(hi) {
                *y0 = (q & 0x0F) as f32 * d + m;
                *y1 = (q >> 4) as f32 * d + m;
            }
        }
    }
}

impl Quantize for BlockQ4_1 {
    /// ggml's `quantize_row_q4_1_ref`: `m` is the block minimum, `d = (max - min) / 15`,
    /// quants are `trunc((x - min) / d + 0.5)` clamped to 15.
    fn quantize(x: &[f32], out: &mut [Self]) {
        for (b, x) in out.iter_mut().zip(x.chunks_exact(QK4_1)) {
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
            let d = (max - min) / 15.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            b.d = f16::from_f32(d);
            b.m = f16::from_f32(min);
            let (lo, hi) = x.split_at(QK4_1 / 2);
            for ((q, &x0), &x1) in b.qs.iter_mut().zip(lo).zip(hi) {
                // C's float -> int8_t conversion, as x86-64 compiles it.
                let xi0 = (c_float_to_int((x0 - min) * id + 0.5) as i8).min(15) as u8;
                let xi1 = (c_float_to_int((x1 - min) * id + 0.5) as i8).min(15) as u8;
                *q = xi0 | (xi1 << 4);
            }
        }
    }
}

impl VecDot for BlockQ4_1 {
    type Activation = BlockQ8_1;
    /// ggml's `ggml_vec_dot_q4_1_q8_1_generic`: per block the exact integer sum of `q * a`,
    /// then `(d_w * d_a) * sumi + m_w * s_a` accumulated in block order (`s_a` is the
    /// activation block's `d * sum(a)`, which accounts for the minimum).
    fn vec_dot(w: &[Self], a: &[BlockQ8_1]) -> f32 {
        let mut sumf = 0f32;
        for (x, y) in w.iter().zip(a) {
            let (ylo, yhi) = y.qs.split_at(QK4_1 / 2);
            let mut sumi0 = 0i32;
            let mut sumi1 = 0i32;
            for ((&q, &y0), &y1) in x.qs.iter().zip(ylo).zip(yhi) {
                sumi0 += (q & 0x0F) as i32 * y0 as i32;
                sumi1 += (q >> 4) as i32 * y1 as i32;
            }
            let sumi = sumi0 + sumi1;
            sumf += (x.d.to_f32() * y.d.to_f32()) * sumi as f32 + x.m.to_f32() * y.s.to_f32();
        }
        sumf
    }
    #[cfg(target_arch = "x86_64")]
    const KERNELS: Kernels<Self> = Kernels {
        avx2: Some(crate::simd::x86_64::avx2::legacy::vec_dot_q4_1_q8_1),
        avx512: Some(crate::simd::x86_64::avx512::legacy::vec_dot_q4_1_q8_1),
        avx512_vnni: Some(crate::simd::x86_64::avx512::legacy::vec_dot_q4_1_q8_1_vnni),
        neon: None,
    };
    #[cfg(target_arch = "x86_64")]
    const KERNELS4: super::Kernels4<Self> = super::Kernels4 {
        avx2: Some(crate::simd::x86_64::avx2::legacy::vec_dot4_q4_1_q8_1),
        avx512: Some(crate::simd::x86_64::avx512::legacy::vec_dot4_q4_1_q8_1),
        avx512_vnni: Some(crate::simd::x86_64::avx512::legacy::vec_dot4_q4_1_q8_1_vnni),
        neon: None,
    };
    #[cfg(target_arch = "x86_64")]
    const TILES: super::Tiles<Self> = super::Tiles {
        avx2: Some(crate::simd::x86_64::avx2::gemm::tile_q4_1_q8_1),
        avx512: Some(crate::simd::x86_64::avx512::gemm::tile_q4_1_q8_1),
        avx512_vnni: Some(crate::simd::x86_64::avx512::gemm::tile_q4_1_q8_1_vnni),
        neon: None,
    };
    #[cfg(target_arch = "aarch64")]
    const KERNELS: Kernels<Self> = Kernels {
        neon: Some(crate::simd::aarch64::legacy::vec_dot_q4_1_q8_1),
        ..Kernels::NONE
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const KERNELS: Kernels<Self> = Kernels::NONE;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dequantize_is_scale_times_quant_plus_minimum() {
        let mut qs = [0u8; 16];
        qs[0] = 0xF1; // element 0: 1, element 16: 15
        qs[5] = 0x07; // element 5: 7, element 21: 0
        let b = BlockQ4_1 {
            d: f16::from_f32(0.5),
            m: f16::from_f32(-2.0),
            qs,
        };
        let mut y = [0f32; 32];
        BlockQ4_1::dequantize(&[b], &mut y);
        assert_eq!(y[0], -1.5);
        assert_eq!(y[16], 5.5);
        assert_eq!(y[5], 1.5);
        assert_eq!(y[21], -2.0);
        assert_eq!(y[1], -2.0);
    }

    #[test]
    fn quantize_spans_minimum_to_maximum() {
        // min = -1, max = 14: d = 1, quants are x + 1 rounded half up.
        let x: Vec<f32> = (0..32).map(|i| (i % 16) as f32 - 1.0).collect();
        let mut x = x;
        x[3] = 0.49; // 1.49 + 0.5 -> 1
        x[4] = 0.5; // 1.5 + 0.5 -> 2
        let mut b = [BlockQ4_1 {
            d: f16::ZERO,
            m: f16::ZERO,
            qs: [0; 16],
        }];
        BlockQ4_1::quantize(&x, &mut b);
        assert_eq!(b[0].d.to_f32(), 1.0);
        assert_eq!(b[0].m.to_f32(), -1.0);
        assert_eq!(b[0].qs[0], 0x00);
        assert_eq!(b[0].qs[3], 0x31);
        assert_eq!(b[0].qs[4], 0x42);
        assert_eq!(b[0].qs[15], 0xFF);
    }

    #[test]
    fn constant_block_has_zero_scale_and_exact_minimum() {
        let mut b = [BlockQ4_1 {
            d: f16::ONE,
            m: f16::ZERO,
            qs: [9; 16],
        }];
        BlockQ4_1::quantize(&[3.0; 32], &mut b);
        assert_eq!(b[0].d.to_f32(), 0.0);
        assert_eq!(b[0].m.to_f32(), 3.0);
        assert_eq!(b[0].qs, [0; 16]);
        let mut y = [0f32; 32];
        BlockQ4_1::dequantize(&b, &mut y);
        assert_eq!(y, [3.0; 32]);
    }

    #[test]
    fn vec_dot_adds_minimum_times_activation_sum() {
        let w = BlockQ4_1 {
            d: f16::from_f32(0.5),
            m: f16::from_f32(-1.0),
            qs: [0x21; 16], // element j < 16: 1, j >= 16: 2
        };
        let mut qs = [0i8; 32];
        qs[0] = 4;
        qs[16] = -3;
        let a = BlockQ8_1 {
            d: f16::from_f32(0.25),
            s: f16::from_f32(0.25), // d * (4 - 3)
            qs,
        };
        let sumi = 4 - 2 * 3;
        let (m_w, s_a) = (-1.0f32, 0.25f32);
        let expected = (0.5f32 * 0.25) * sumi as f32 + m_w * s_a;
        assert_eq!(BlockQ4_1::vec_dot(&[w], &[a]), expected);
    }

    /// The hashes are of the output of ggml's own `quantize_row_q4_1_ref` and
    /// `dequantize_row_q4_1` (libggml-base of llama.cpp as built by llama-cpp-python
    /// 0.3.36) on [`golden::golden_input`]: 4096 blocks of zeros, constants, lone spikes,
    /// exact ties and random values over scales from 2^-20 to 2^12.
    #[test]
    fn quantize_and_dequantize_match_ggml_bit_for_bit() {
        use crate::formats::q4_0::golden::{fnv1a, golden_input};
        let x = golden_input();
        let mut q = vec![<BlockQ4_1 as bytemuck::Zeroable>::zeroed(); x.len() / 32];
        BlockQ4_1::quantize(&x, &mut q);
        assert_eq!(fnv1a(bytemuck::cast_slice(&q)), 0x9327b6a7c9a3c583);
        let mut y = vec![0f32; x.len()];
        BlockQ4_1::dequantize(&q, &mut y);
        assert_eq!(fnv1a(bytemuck::cast_slice(&y)), 0x5bc4153f7be25816);
    }
}
