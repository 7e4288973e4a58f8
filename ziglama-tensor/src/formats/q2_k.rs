//! Q2_K: super-blocks of 256 2-bit values in 16 blocks of 16, each with a 4-bit scale and min. Pairs with Q8_K.
//!
//! Value `i` is `d * (scales[i / 16] & 0xF) * q[i] - dmin * (scales[i / 16] >> 4)` with `q` in
//! `0..4`. Each half of 128 elements uses 32 bytes of `qs`: element `32 r + l` of the half is
//! bits `2 r, 2 r + 1` of `qs[l]`.

use half::f16;

use super::{q8_k::BlockQ8_K, Block, Kernels, VecDot, QK_K};
use crate::GgmlType;

/// ggml's `block_q2_k`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ2_K {
    /// Per 16 elements: 4-bit scale (low nibble) and 4-bit min (high nibble).
    pub scales: [u8; 16],
    /// 2-bit quants.
    pub qs: [u8; 64],
    /// Super-block scale of the scales.
    pub d: f16,
    /// Super-block scale of the mins.
    pub dmin: f16,
}
const _: () = assert!(std::mem::size_of::<BlockQ2_K>() == 84);

/// The 2-bit quant of element `e` (0..256) of a super-block.
#[inline]
fn q2(qs: &[u8; 64], e: usize) -> u8 {
    let (h, r, l) = (e / 128, (e % 128) / 32, e % 32);
    (qs[32 * h + l] >> (2 * r)) & 3
}

impl Block for BlockQ2_K {
    const TYPE: GgmlType = GgmlType::Q2_K;
    const BLOCK_SIZE: usize = QK_K;
    /// ggml's `dequantize_row_q2_K`: `(d * sc) * q - dmin * m`.
    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
            let d = b.d.to_f32();
            let min = b.dmin.to_f32();
            for (e, y) in y.iter_mut().enumerate() {
                let sc = b.scales[e / 16];
                let dl = d * (sc & 0xF) as f32;
                let ml = min * (sc >> 4) as f32;
                *y = dl * q2(&b.qs, e) as f32 - ml;
            }
        }
    }
}

impl VecDot for BlockQ2_K {
    type Activation = BlockQ8_K;
    /// ggml's `ggml_vec_dot_q2_K_q8_K_generic`: per super-block the exact integer sums
    /// `sum_j (scales[j] & 0xF) * sum_i q[i] * q8[i]` and `sum_j (scales[j] >> 4) * bsums[j]`,
    /// scaled by `d * d8` and `dmin * d8`.
    fn vec_dot(w: &[Self], a: &[BlockQ8_K]) -> f32 {
        let mut sumf = 0f32;
        for (x, y) in w.iter().zip(a) {
            let summs: i32 = (0..16)
                .map(|j| y.bsums[j] as i32 * (x.scales[j] >> 4) as i32)
                .sum();
            let mut isum = 0i32;
            for j in 0..16 {
                let isuml: i32 = (16 * j..16 * j + 16)
                    .map(|e| y.qs[e] as i32 * q2(&x.qs, e) as i32)
                    .sum();
                isum += (x.scales[j] & 0xF) as i32 * isuml;
            }
            let dall = y.d * x.d.to_f32();
            let dmin = y.d * x.dmin.to_f32();
            sumf += dall * isum as f32 - dmin * summs as f32;
        }
        sumf
    }
    #[cfg(target_arch = "x86_64")]
    const KERNELS: Kernels<Self> = Kernels {
        avx2: Some(crate::simd::x86_64::avx2::kquant::vec_dot_q2_k_q8_k),
        avx512: Some(crate::simd::x86_64::avx512::kquant::vec_dot_q2_k_q8_k),
        avx512_vnni: None,
        neon: None,
    };
    #[cfg(target_arch = "aarch64")]
    const KERNELS: Kernels<Self> = Kernels {
        avx2: None,
        avx512: None,
        avx512_vnni: None,
        neon: Some(crate::simd::aarch64::kquant::vec_dot_q2_k_q8_k),
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const KERNELS: Kernels<Self> = Kernels::NONE;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_block() -> BlockQ2_K {
        let mut b: BlockQ2_K = bytemuck::Zeroable::zeroed();
        for (j, s) in b.scales.iter_mut().enumerate() {
            *s = (j as u8) | ((15 - j as u8) << 4);
        }
        for (i, q) in b.qs.iter_mut().enumerate() {
            *q = (i * 73) as u8;
        }
        b.d = f16::from_f32(0.5);
        b.dmin = f16::from_f32(0.25);
        b
    }

    #[test]
    fn dequantize_hand_checked_values() {
        let mut y = [0f32; QK_K];
        BlockQ2_K::dequantize(&[sample_block()], &mut y);
        // Element 200 = 128 + 2 * 32 + 8: qs[32 + 8] = 40 * 73 % 256 = 104 = 0b01101000,
        // bits 4..6 = 2; sub-block 12: scale 12, min 3.
        assert_eq!(y[200], 0.5 * 12.0 * 2.0 - 0.25 * 3.0);
        // Element 17: qs[17] = 17 * 73 % 256 = 217 = 0b11011001, bits 0..2 = 1; sub-block 1.
        assert_eq!(y[17], 0.5 * 1.0 * 1.0 - 0.25 * 14.0);
    }

    #[test]
    fn vec_dot_matches_dequantized_dot() {
        let b = sample_block();
        let mut y: BlockQ8_K = bytemuck::Zeroable::zeroed();
        y.d = 0.25;
        for i in 0..QK_K {
            y.qs[i] = ((i * 91) % 256) as u8 as i8;
        }
        for j in 0..16 {
            y.bsums[j] = y.qs[16 * j..16 * j + 16].iter().map(|&q| q as i16).sum();
        }
        let mut w = [0f32; QK_K];
        BlockQ2_K::dequantize(&[b], &mut w);
        let exact: f64 = (0..QK_K)
            .map(|i| w[i] as f64 * (y.qs[i] as f64 * 0.25))
            .sum();
        let got = BlockQ2_K::vec_dot(&[b], &[y]);
        assert!(
            (got as f64 - exact).abs() < 1e-6 * exact.abs().max(1.0),
            "{got} vs {exact}"
        );
    }
}
