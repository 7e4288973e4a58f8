//! IQ4_XS: super-blocks of 256 4-bit non-linear indices in 8 blocks of 32 with 6-bit scales. Pairs with Q8_K.
//!
//! Value `i` of block `ib` (32 elements) is `d * (ls[ib] - 32) * KVALUES_IQ4NL[q[i]]`; the
//! 16 bytes `qs[16 ib..16 ib + 16]` hold elements `0..16` of the block in their low nibbles
//! and `16..32` in their high nibbles, as IQ4_NL. The 6-bit `ls[ib]` is nibble `ib % 2` of
//! `scales_l[ib / 2]` with bits `2 ib, 2 ib + 1` of `scales_h` on top.

use half::f16;

use super::iq4_nl::KVALUES_IQ4NL;
use super::{q8_k::BlockQ8_K, Block, Kernels, VecDot, QK_K};
use crate::GgmlType;

/// ggml's `block_iq4_xs`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIQ4_XS {
    /// Super-block scale.
    pub d: f16,
    /// High 2 bits of the eight 6-bit block scales.
    pub scales_h: u16,
    /// Low 4 bits of the eight block scales.
    pub scales_l: [u8; 4],
    /// Indices into the IQ4_NL table.
    pub qs: [u8; 128],
}
const _: () = assert!(std::mem::size_of::<BlockIQ4_XS>() == 136);

/// The 6-bit scale (0..64, before subtracting 32) of block `ib` (0..8).
#[inline]
pub fn block_scale(b: &BlockIQ4_XS, ib: usize) -> u8 {
    ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | ((((b.scales_h >> (2 * ib)) & 3) as u8) << 4)
}

impl Block for BlockIQ4_XS {
    const TYPE: GgmlType = GgmlType::IQ4_XS;
    const BLOCK_SIZE: usize = QK_K;
    /// ggml's `dequantize_row_iq4_xs`: `(d * (ls - 32)) * KVALUES_IQ4NL[q]`.
    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
            let d = b.d.to_f32();
            for (ib, (qs, y)) in
                b.qs.chunks_exact(16)
                    .zip(y.chunks_exact_mut(32))
                    .enumerate()
            {
                let dl = d * (block_scale(b, ib) as i32 - 32) as f32;
                let (lo, hi) = y.split_at_mut(16);
                for ((lo, hi), &q) in lo.iter_mut().zip(hi).zip(qs) {
                    *lo = dl * KVALUES_IQ4NL[(q & 0xF) as usize] as f32;
                    *hi = dl * KVALUES_IQ4NL[(q >> 4) as usize] as f32;
                }
            }
        }
    }
}

impl VecDot for BlockIQ4_XS {
    type Activation = BlockQ8_K;
    /// ggml's `ggml_vec_dot_iq4_xs_q8_K_generic`: per block of 32, the exact integer dot
    /// product of the table values with the Q8_K quants times `d * d8 * (ls - 32)`, summed in
    /// block order.
    fn vec_dot(w: &[Self], a: &[BlockQ8_K]) -> f32 {
        let mut sumf = 0f32;
        for (x, y) in w.iter().zip(a) {
            let d4d8 = x.d.to_f32() * y.d;
            for (ib, (qs, q8)) in x.qs.chunks_exact(16).zip(y.qs.chunks_exact(32)).enumerate() {
                let dl = d4d8 * (block_scale(x, ib) as i32 - 32) as f32;
                let (q8l, q8h) = q8.split_at(16);
                let mut sumi1 = 0i32;
                let mut sumi2 = 0i32;
                for ((&q, &l), &h) in qs.iter().zip(q8l).zip(q8h) {
                    sumi1 += l as i32 * KVALUES_IQ4NL[(q & 0xF) as usize] as i32;
                    sumi2 += h as i32 * KVALUES_IQ4NL[(q >> 4) as usize] as i32;
                }
                sumf += dl * (sumi1 + sumi2) as f32;
            }
        }
        sumf
    }
    #[cfg(target_arch = "x86_64")]
    const KERNELS: Kernels<Self> = Kernels {
        avx2: Some(crate::simd::x86_64::avx2::kquant::vec_dot_iq4_xs_q8_k),
        avx512: Some(crate::simd::x86_64::avx512::kquant::vec_dot_iq4_xs_q8_k),
        avx512_vnni: None,
        neon: None,
    };
    #[cfg(target_arch = "aarch64")]
    const KERNELS: Kernels<Self> = Kernels {
        avx2: None,
        avx512: None,
        avx512_vnni: None,
        neon: Some(crate::simd::aarch64::kquant::vec_dot_iq4_xs_q8_k),
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const KERNELS: Kernels<Self> = Kernels::NONE;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_block() -> BlockIQ4_XS {
        // Block scales ls = 0, 9, 18, ..., 63 (minus 32: -32, -23, ..., 31).
        let ls: [u8; 8] = [0, 9, 18, 27, 36, 45, 54, 63];
        let mut b: BlockIQ4_XS = bytemuck::Zeroable::zeroed();
        for (ib, &l) in ls.iter().enumerate() {
            b.scales_l[ib / 2] |= (l & 0xF) << (4 * (ib % 2));
            b.scales_h |= ((l >> 4) as u16) << (2 * ib);
        }
        for (i, q) in b.qs.iter_mut().enumerate() {
            *q = (i * 37) as u8;
        }
        b.d = f16::from_f32(0.25);
        b
    }

    #[test]
    fn block_scales_unpack() {
        let b = sample_block();
        let ls: Vec<u8> = (0..8).map(|ib| block_scale(&b, ib)).collect();
        assert_eq!(ls, [0, 9, 18, 27, 36, 45, 54, 63]);
    }

    #[test]
    fn dequantize_hand_checked_values() {
        let mut y = [0f32; QK_K];
        BlockIQ4_XS::dequantize(&[sample_block()], &mut y);
        // Element 3: qs[3] = 111 = 0x6F, low nibble 15 -> 113; block 0, scale -32.
        assert_eq!(y[3], 0.25 * -32.0 * 113.0);
        // Element 7 * 32 + 16 + 1: qs[113] = 4181 % 256 = 85 = 0x55, high nibble 5 -> -35;
        // block 7, scale 31.
        assert_eq!(y[241], 0.25 * 31.0 * -35.0);
    }

    #[test]
    fn vec_dot_matches_dequantized_dot() {
        let b = sample_block();
        let mut y: BlockQ8_K = bytemuck::Zeroable::zeroed();
        y.d = 0.5;
        for i in 0..QK_K {
            y.qs[i] = ((i * 91) % 256) as u8 as i8;
        }
        let mut w = [0f32; QK_K];
        BlockIQ4_XS::dequantize(&[b], &mut w);
        let exact: f64 = (0..QK_K)
            .map(|i| w[i] as f64 * (y.qs[i] as f64 * 0.5))
            .sum();
        let got = BlockIQ4_XS::vec_dot(&[b], &[y]);
        assert!(
            (got as f64 - exact).abs() < 1e-6 * exact.abs().max(1.0),
            "{got} vs {exact}"
        );
    }
}
