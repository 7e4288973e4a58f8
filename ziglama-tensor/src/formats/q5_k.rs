//! Q5_K: super-blocks of 256 5-bit values in 8 blocks of 32 with 6-bit scales and mins. Pairs with Q8_K.
//!
//! As Q4_K with a fifth bit: value `i` of block `j` is `d * sc[j] * (q[i] + 16 h[i]) - dmin * m[j]`,
//! where bit `j` of `qh[i % 32]` is the fifth bit of element `i` of block `j`.

use half::f16;

use super::q4_k::{scale_min_k4, unpack_scales_mins};
use super::{q8_k::BlockQ8_K, Block, Kernels, VecDot, QK_K};
use crate::GgmlType;

/// ggml's `block_q5_k`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ5_K {
    /// Super-block scale of the scales.
    pub d: f16,
    /// Super-block scale of the mins.
    pub dmin: f16,
    /// Eight 6-bit scales and eight 6-bit mins, packed.
    pub scales: [u8; 12],
    /// Fifth bits.
    pub qh: [u8; 32],
    /// Low 4 bits.
    pub qs: [u8; 128],
}
const _: () = assert!(std::mem::size_of::<BlockQ5_K>() == 176);

impl Block for BlockQ5_K {
    const TYPE: GgmlType = GgmlType::Q5_K;
    const BLOCK_SIZE: usize = QK_K;
    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
            let d = b.d.to_f32();
            let min = b.dmin.to_f32();
            for (k, (ql, y)) in
                b.qs.chunks_exact(32)
                    .zip(y.chunks_exact_mut(64))
                    .enumerate()
            {
                let (sc1, m1) = scale_min_k4(2 * k, &b.scales);
                let (sc2, m2) = scale_min_k4(2 * k + 1, &b.scales);
                let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
                let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
                let (u1, u2) = (1u8 << (2 * k), 2u8 << (2 * k));
                let (lo, hi) = y.split_at_mut(32);
                for (((lo, hi), &q), &h) in lo.iter_mut().zip(hi).zip(ql).zip(&b.qh) {
                    let h1 = if h & u1 != 0 { 16 } else { 0 };
                    let h2 = if h & u2 != 0 { 16 } else { 0 };
                    *lo = d1 * ((q & 0xF) + h1) as f32 - m1;
                    *hi = d2 * ((q >> 4) + h2) as f32 - m2;
                }
            }
        }
    }
}

impl VecDot for BlockQ5_K {
    type Activation = BlockQ8_K;
    /// ggml's `ggml_vec_dot_q5_K_q8_K_generic`: as Q4_K's, with the fifth bits added to the
    /// quants before the exact integer sums.
    fn vec_dot(w: &[Self], a: &[BlockQ8_K]) -> f32 {
        let mut sumf = 0f32;
        for (x, y) in w.iter().zip(a) {
            let (sc, m) = unpack_scales_mins(&x.scales);
            let summs: i32 = (0..16).map(|j| y.bsums[j] as i32 * m[j / 2] as i32).sum();
            let mut isum = 0i32;
            for (k, (q5, q8)) in x.qs.chunks_exact(32).zip(y.qs.chunks_exact(64)).enumerate() {
                let (q8l, q8h) = q8.split_at(32);
                let (u1, u2) = (1u8 << (2 * k), 2u8 << (2 * k));
                let mut lo = 0i32;
                let mut hi = 0i32;
                for (((&q, &h), &l8), &h8) in q5.iter().zip(&x.qh).zip(q8l).zip(q8h) {
                    let ql = (q & 0xF) as i32 + if h & u1 != 0 { 16 } else { 0 };
                    let qh = (q >> 4) as i32 + if h & u2 != 0 { 16 } else { 0 };
                    lo += ql * l8 as i32;
                    hi += qh * h8 as i32;
                }
                isum += sc[2 * k] as i32 * lo + sc[2 * k + 1] as i32 * hi;
            }
            let d = x.d.to_f32() * y.d;
            let dmin = x.dmin.to_f32() * y.d;
            sumf += d * isum as f32 - dmin * summs as f32;
        }
        sumf
    }
    #[cfg(target_arch = "x86_64")]
    const KERNELS: Kernels<Self> = Kernels {
        avx2: Some(crate::simd::x86_64::avx2::kquant::vec_dot_q5_k_q8_k),
        avx512: Some(crate::simd::x86_64::avx512::kquant::vec_dot_q5_k_q8_k),
        avx512_vnni: None,
        neon: None,
    };
    #[cfg(target_arch = "aarch64")]
    const KERNELS: Kernels<Self> = Kernels {
        avx2: None,
        avx512: None,
        avx512_vnni: None,
        neon: Some(crate::simd::aarch64::kquant::vec_dot_q5_k_q8_k),
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const KERNELS: Kernels<Self> = Kernels::NONE;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_block() -> BlockQ5_K {
        // Scales 10..18 and mins 20..28 (all below 64, blocks 4..8 using the packed high bits).
        let sc: [u8; 8] = [10, 11, 12, 13, 50, 51, 52, 53];
        let m: [u8; 8] = [20, 21, 22, 23, 60, 61, 62, 63];
        let mut scales = [0u8; 12];
        for j in 0..4 {
            scales[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
            scales[j + 4] = m[j] | ((m[j + 4] >> 4) << 6);
            scales[j + 8] = (sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4);
        }
        let mut qs = [0u8; 128];
        for (i, q) in qs.iter_mut().enumerate() {
            *q = (i % 16) as u8 | ((15 - i % 16) as u8) << 4;
        }
        let mut qh = [0u8; 32];
        for (i, h) in qh.iter_mut().enumerate() {
            *h = (i * 29) as u8;
        }
        BlockQ5_K {
            d: f16::from_f32(0.5),
            dmin: f16::from_f32(0.125),
            scales,
            qh,
            qs,
        }
    }

    #[test]
    fn dequantize_hand_checked_values() {
        let b = sample_block();
        let mut y = [0f32; QK_K];
        BlockQ5_K::dequantize(&[b], &mut y);
        // Element 3: block 0 (sc 10, m 20); low nibble 3; qh[3] = 87 = 0b1010111, bit 0 set.
        assert_eq!(y[3], 0.5 * 10.0 * 19.0 - 0.125 * 20.0);
        // Element 32 + 3: block 1 (sc 11, m 21); high nibble 12; bit 1 of 87 set.
        assert_eq!(y[35], 0.5 * 11.0 * 28.0 - 0.125 * 21.0);
        // Element 192 + 32 + 3: block 7 (sc 53, m 63); high nibble of qs[99] = 15 - 3 = 12;
        // bit 7 of 87 clear.
        assert_eq!(y[227], 0.5 * 53.0 * 12.0 - 0.125 * 63.0);
    }

    #[test]
    fn vec_dot_matches_dequantized_dot() {
        let b = sample_block();
        let mut y: BlockQ8_K = bytemuck::Zeroable::zeroed();
        y.d = 0.25;
        for i in 0..QK_K {
            y.qs[i] = ((i * 53) % 256) as u8 as i8;
        }
        for j in 0..16 {
            y.bsums[j] = y.qs[16 * j..16 * j + 16].iter().map(|&q| q as i16).sum();
        }
        let mut w = [0f32; QK_K];
        BlockQ5_K::dequantize(&[b], &mut w);
        let exact: f64 = (0..QK_K)
            .map(|i| w[i] as f64 * (y.qs[i] as f64 * 0.25))
            .sum();
        let got = BlockQ5_K::vec_dot(&[b], &[y]);
        assert!(
            (got as f64 - exact).abs() < 1e-6 * exact.abs().max(1.0),
            "{got} vs {exact}"
        );
    }
}
