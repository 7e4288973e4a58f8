//! Q3_K: super-blocks of 256 3-bit values in 16 blocks of 16 with 6-bit scales. Pairs with Q8_K.
//!
//! Value `i` is `d * (sc[i / 16] - 32) * (q[i] - 4 * !h[i])`: `q` is two bits, laid out as
//! Q2_K's, and `h[i]`, bit `i / 32` of `hmask[i % 32]`, is a set high bit (no offset).
//! The sixteen 6-bit scales pack their low nibbles in bytes 0..8 and their top two bits in
//! bytes 8..12 (see [`unpack_scales`]).

use half::f16;

use super::{q8_k::BlockQ8_K, Block, Kernels, VecDot, QK_K};
use crate::GgmlType;

/// ggml's `block_q3_k`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ3_K {
    /// High (third) bits.
    pub hmask: [u8; 32],
    /// Low 2 bits.
    pub qs: [u8; 64],
    /// Sixteen 6-bit scales, packed.
    pub scales: [u8; 12],
    /// Super-block scale.
    pub d: f16,
}
const _: () = assert!(std::mem::size_of::<BlockQ3_K>() == 110);

/// The sixteen 6-bit scales (0..64, before subtracting 32) from their 12 packed bytes, as
/// ggml unpacks them with `kmask1 = 0x03030303`, `kmask2 = 0x0f0f0f0f`: scale `j` has its
/// low nibble in byte `j % 8` (low nibble for `j < 8`, high for `j >= 8`) and its top two bits
/// in bits `2 (j / 4) .. 2 (j / 4) + 2` of byte `8 + j % 4`.
pub fn unpack_scales(packed: &[u8; 12]) -> [u8; 16] {
    const KMASK1: u32 = 0x0303_0303;
    const KMASK2: u32 = 0x0f0f_0f0f;
    let word = |i: usize| {
        u32::from_le_bytes([
            packed[4 * i],
            packed[4 * i + 1],
            packed[4 * i + 2],
            packed[4 * i + 3],
        ])
    };
    let (a0, a1, tmp) = (word(0), word(1), word(2));
    let aux = [
        (a0 & KMASK2) | ((tmp & KMASK1) << 4),
        (a1 & KMASK2) | (((tmp >> 2) & KMASK1) << 4),
        ((a0 >> 4) & KMASK2) | (((tmp >> 4) & KMASK1) << 4),
        ((a1 >> 4) & KMASK2) | (((tmp >> 6) & KMASK1) << 4),
    ];
    let mut out = [0u8; 16];
    for (o, a) in out.chunks_exact_mut(4).zip(aux) {
        o.copy_from_slice(&a.to_le_bytes());
    }
    out
}

/// The signed 3-bit quant (-4..4) of element `e` (0..256) of a super-block.
#[inline]
fn q3(b: &BlockQ3_K, e: usize) -> i8 {
    let (h, r, l) = (e / 128, (e % 128) / 32, e % 32);
    let low = ((b.qs[32 * h + l] >> (2 * r)) & 3) as i8;
    let high_set = b.hmask[l] & (1 << (4 * h + r)) != 0;
    low - if high_set { 0 } else { 4 }
}

impl Block for BlockQ3_K {
    const TYPE: GgmlType = GgmlType::Q3_K;
    const BLOCK_SIZE: usize = QK_K;
    /// ggml's `dequantize_row_q3_K`: `(d * (sc - 32)) * q`.
    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
            let d_all = b.d.to_f32();
            let scales = unpack_scales(&b.scales);
            for (e, y) in y.iter_mut().enumerate() {
                let dl = d_all * (scales[e / 16] as i32 - 32) as f32;
                *y = dl * q3(b, e) as f32;
            }
        }
    }
}

impl VecDot for BlockQ3_K {
    type Activation = BlockQ8_K;
    /// ggml's `ggml_vec_dot_q3_K_q8_K_generic`: per super-block the exact integer sum
    /// `sum_j (sc[j] - 32) * sum_i q[i] * q8[i]` with the signed 3-bit quants, scaled by
    /// `d * d8`.
    fn vec_dot(w: &[Self], a: &[BlockQ8_K]) -> f32 {
        let mut sumf = 0f32;
        for (x, y) in w.iter().zip(a) {
            let scales = unpack_scales(&x.scales);
            let mut isum = 0i32;
            for (j, &sc) in scales.iter().enumerate() {
                let s: i32 = (16 * j..16 * j + 16)
                    .map(|e| y.qs[e] as i32 * q3(x, e) as i32)
                    .sum();
                isum += (sc as i32 - 32) * s;
            }
            sumf += x.d.to_f32() * y.d * isum as f32;
        }
        sumf
    }
    #[cfg(target_arch = "x86_64")]
    const KERNELS: Kernels<Self> = Kernels {
        avx2: Some(crate::simd::x86_64::avx2::kquant::vec_dot_q3_k_q8_k),
        avx512: Some(crate::simd::x86_64::avx512::kquant::vec_dot_q3_k_q8_k),
        avx512_vnni: None,
        neon: None,
    };
    #[cfg(target_arch = "aarch64")]
    const KERNELS: Kernels<Self> = Kernels {
        avx2: None,
        avx512: None,
        avx512_vnni: None,
        neon: Some(crate::simd::aarch64::kquant::vec_dot_q3_k_q8_k),
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const KERNELS: Kernels<Self> = Kernels::NONE;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packs sixteen 6-bit scales the way ggml's `quantize_row_q3_K_ref` does.
    fn pack_scales(ls: &[u8; 16]) -> [u8; 12] {
        let mut s = [0u8; 12];
        for (j, &l) in ls.iter().enumerate() {
            if j < 8 {
                s[j] = l & 0xF;
            } else {
                s[j - 8] |= (l & 0xF) << 4;
            }
            s[8 + j % 4] |= (l >> 4) << (2 * (j / 4));
        }
        s
    }

    #[test]
    fn unpack_scales_inverts_packing() {
        let ls: [u8; 16] = [0, 1, 17, 32, 33, 47, 48, 63, 5, 21, 37, 53, 62, 30, 14, 60];
        assert_eq!(unpack_scales(&pack_scales(&ls)), ls);
    }

    fn sample_block() -> BlockQ3_K {
        let mut ls = [0u8; 16];
        for (j, l) in ls.iter_mut().enumerate() {
            *l = (j * 4) as u8; // scales - 32 = -32, -28, ..., 28
        }
        let mut b: BlockQ3_K = bytemuck::Zeroable::zeroed();
        b.scales = pack_scales(&ls);
        for (i, q) in b.qs.iter_mut().enumerate() {
            *q = (i * 73) as u8;
        }
        for (i, h) in b.hmask.iter_mut().enumerate() {
            *h = (i * 45) as u8;
        }
        b.d = f16::from_f32(0.5);
        b
    }

    #[test]
    fn dequantize_hand_checked_values() {
        let mut y = [0f32; QK_K];
        BlockQ3_K::dequantize(&[sample_block()], &mut y);
        // Element 200 = 128 + 2 * 32 + 8: qs[40] = 104, bits 4..6 = 2; hmask[8] = 360 % 256
        // = 104 = 0b01101000, bit 6 set: q = 2. Sub-block 12: scale 48 - 32 = 16.
        assert_eq!(y[200], 0.5 * 16.0 * 2.0);
        // Element 17: qs[17] = 217, bits 0..2 = 1; hmask[17] = 765 % 256 = 253, bit 0 set:
        // q = 1. Sub-block 1: scale 4 - 32 = -28.
        assert_eq!(y[17], 0.5 * -28.0 * 1.0);
        // Element 130 = 128 + 2: qs[34] = 2482 % 256 = 178 = 0b10110010, bits 0..2 = 2;
        // hmask[2] = 90 = 0b01011010, bit 4 set: q = 2. Sub-block 8: scale 0.
        assert_eq!(y[130], 0.0);
        // Element 2: qs[2] bits 0..2 = 2, hmask[2] bit 0 clear: q = 2 - 4 = -2, scale -32.
        assert_eq!(y[2], 0.5 * -32.0 * -2.0);
    }

    #[test]
    fn vec_dot_matches_dequantized_dot() {
        let b = sample_block();
        let mut y: BlockQ8_K = bytemuck::Zeroable::zeroed();
        y.d = 0.25;
        for i in 0..QK_K {
            y.qs[i] = ((i * 91) % 256) as u8 as i8;
        }
        let mut w = [0f32; QK_K];
        BlockQ3_K::dequantize(&[b], &mut w);
        let exact: f64 = (0..QK_K)
            .map(|i| w[i] as f64 * (y.qs[i] as f64 * 0.25))
            .sum();
        let got = BlockQ3_K::vec_dot(&[b], &[y]);
        assert!(
            (got as f64 - exact).abs() < 1e-6 * exact.abs().max(1.0),
            "{got} vs {exact}"
        );
    }
}
