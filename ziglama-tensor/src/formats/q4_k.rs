//! Q4_K: super-blocks of 256 4-bit values in 8 blocks of 32 with 6-bit scales and mins. Pairs with Q8_K.
//!
//! Value `i` of block `j` is `d * sc[j] * q[i] - dmin * m[j]`. The 32 bytes `qs[32 k..32 k + 32]`
//! hold blocks `2 k` (low nibbles) and `2 k + 1` (high nibbles). The eight 6-bit scales and
//! mins are packed in 12 bytes (see [`scale_min_k4`]).

use half::f16;

use super::q8_k::nearest_int;
use super::{q8_k::BlockQ8_K, Block, Kernels, Quantize, VecDot, QK_K};
use crate::GgmlType;

/// ggml's `block_q4_k`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4_K {
    /// Super-block scale of the scales.
    pub d: f16,
    /// Super-block scale of the mins.
    pub dmin: f16,
    /// Eight 6-bit scales and eight 6-bit mins, packed.
    pub scales: [u8; 12],
    /// 4-bit quants.
    pub qs: [u8; 128],
}
const _: () = assert!(std::mem::size_of::<BlockQ4_K>() == 144);

/// ggml's `get_scale_min_k4`: the 6-bit scale and min of block `j` (0..8) from the 12 packed
/// bytes of Q4_K and Q5_K. Blocks 0..4 keep theirs in the low 6 bits of bytes `j` and `j + 4`;
/// blocks 4..8 in the nibbles of byte `j + 4`, with the top two bits in the high bits of bytes
/// `j - 4` (scale) and `j` (min).
#[inline]
pub fn scale_min_k4(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// The eight scales and eight mins of a Q4_K/Q5_K block, unpacked.
#[inline]
pub(crate) fn unpack_scales_mins(q: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    let mut sc = [0u8; 8];
    let mut m = [0u8; 8];
    for j in 0..8 {
        (sc[j], m[j]) = scale_min_k4(j, q);
    }
    (sc, m)
}

/// ggml's `make_qkx2_quants`: quantizes `x` to `L[i]` in `0..=nmax` with a scale and a
/// minimum (`x ~ scale * L - the_min`), minimizing the weighted error over a search of
/// `nstep + 1` candidate scales. Returns `(scale, the_min)`. Every float operation follows
/// ggml's order, so results are bit-identical.
#[allow(clippy::too_many_arguments)]
pub(crate) fn make_qkx2_quants(
    nmax: i32,
    x: &[f32],
    weights: &[f32],
    l_out: &mut [u8],
    l_aux: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
) -> (f32, f32) {
    let n = x.len();
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l_out[..n].fill(0);
        return (0.0, -min);
    }
    let mut iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0f32;
    for i in 0..n {
        let l = nearest_int(iscale * (x[i] - min));
        l_out[i] = l.clamp(0, nmax) as u8;
        let diff = scale * l_out[i] as f32 + min - x[i];
        let diff = if use_mad { diff.abs() } else { diff * diff };
        best_error += weights[i] * diff;
    }
    if nstep < 1 {
        return (scale, -min);
    }
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0f32, 0f32, 0f32);
        for i in 0..n {
            let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            l_aux[i] = l as u8;
            let w = weights[i];
            let lf = l as f32;
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0f32;
            for i in 0..n {
                let diff = this_scale * l_aux[i] as f32 + this_min - x[i];
                let diff = if use_mad { diff.abs() } else { diff * diff };
                cur_error += weights[i] * diff;
            }
            if cur_error < best_error {
                l_out[..n].copy_from_slice(&l_aux[..n]);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

impl Block for BlockQ4_K {
    const TYPE: GgmlType = GgmlType::Q4_K;
    const BLOCK_SIZE: usize = QK_K;
    /// ggml's `dequantize_row_q4_K`: `(d * sc) * q - dmin * m`.
    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
            let d = b.d.to_f32();
            let min = b.dmin.to_f32();
            for (k, (q, y)) in
                b.qs.chunks_exact(32)
                    .zip(y.chunks_exact_mut(64))
                    .enumerate()
            {
                let (sc1, m1) = scale_min_k4(2 * k, &b.scales);
                let (sc2, m2) = scale_min_k4(2 * k + 1, &b.scales);
                let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
                let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
                let (lo, hi) = y.split_at_mut(32);
                for ((lo, hi), &q) in lo.iter_mut().zip(hi).zip(q) {
                    *lo = d1 * (q & 0xF) as f32 - m1;
                    *hi = d2 * (q >> 4) as f32 - m2;
                }
            }
        }
    }
}

impl Quantize for BlockQ4_K {
    /// ggml's `quantize_row_q4_k_ref`.
    fn quantize(x: &[f32], out: &mut [Self]) {
        let mut l = [0u8; QK_K];
        let mut l_aux = [0u8; 32];
        let mut weights = [0f32; 32];
        let mut mins = [0f32; 8];
        let mut scales = [0f32; 8];
        for (y, x) in out.iter_mut().zip(x.chunks_exact(QK_K)) {
            let mut max_scale = 0f32;
            let mut max_min = 0f32;
            for j in 0..8 {
                let xb = &x[32 * j..32 * j + 32];
                let mut sum_x2 = 0f32;
                for &v in xb {
                    sum_x2 += v * v;
                }
                let av_x = (sum_x2 / 32.0).sqrt();
                for (w, &v) in weights.iter_mut().zip(xb) {
                    *w = av_x + v.abs();
                }
                (scales[j], mins[j]) = make_qkx2_quants(
                    15,
                    xb,
                    &weights,
                    &mut l[32 * j..32 * j + 32],
                    &mut l_aux,
                    -1.0,
                    0.1,
                    20,
                    false,
                );
                if scales[j] > max_scale {
                    max_scale = scales[j];
                }
                if mins[j] > max_min {
                    max_min = mins[j];
                }
            }
            let inv_scale = if max_scale > 0.0 {
                63.0 / max_scale
            } else {
                0.0
            };
            let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
            y.scales = [0; 12];
            for j in 0..8 {
                // ggml stores the rounded value in a uint8_t before clamping to 63.
                let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
                let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
                if j < 4 {
                    y.scales[j] = ls;
                    y.scales[j + 4] = lm;
                } else {
                    y.scales[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
                    y.scales[j - 4] |= (ls >> 4) << 6;
                    y.scales[j] |= (lm >> 4) << 6;
                }
            }
            y.d = f16::from_f32(max_scale / 63.0);
            y.dmin = f16::from_f32(max_min / 63.0);
            for j in 0..8 {
                let (sc, m) = scale_min_k4(j, &y.scales);
                let d = y.d.to_f32() * sc as f32;
                if d == 0.0 {
                    continue;
                }
                let dm = y.dmin.to_f32() * m as f32;
                for ii in 0..32 {
                    let q = nearest_int((x[32 * j + ii] + dm) / d);
                    l[32 * j + ii] = q.clamp(0, 15) as u8;
                }
            }
            for (k, q) in y.qs.chunks_exact_mut(32).enumerate() {
                for (i, q) in q.iter_mut().enumerate() {
                    *q = l[64 * k + i] | (l[64 * k + 32 + i] << 4);
                }
            }
        }
    }
}

impl VecDot for BlockQ4_K {
    type Activation = BlockQ8_K;
    /// ggml's `ggml_vec_dot_q4_K_q8_K_generic`: per super-block, the exact integer sums
    /// `sum_j sc[j] * sum_i q[i] * q8[i]` and `sum_j m[j/2] * bsums[j]`, scaled by
    /// `d * d8` and `dmin * d8`.
    fn vec_dot(w: &[Self], a: &[BlockQ8_K]) -> f32 {
        let mut sumf = 0f32;
        for (x, y) in w.iter().zip(a) {
            let (sc, m) = unpack_scales_mins(&x.scales);
            let summs: i32 = (0..16).map(|j| y.bsums[j] as i32 * m[j / 2] as i32).sum();
            let mut isum = 0i32;
            for (k, (q4, q8)) in x.qs.chunks_exact(32).zip(y.qs.chunks_exact(64)).enumerate() {
                let (q8l, q8h) = q8.split_at(32);
                let mut lo = 0i32;
                let mut hi = 0i32;
                for ((&q, &l), &h) in q4.iter().zip(q8l).zip(q8h) {
                    lo += (q & 0xF) as i32 * l as i32;
                    hi += (q >> 4) as i32 * h as i32;
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
        avx2: Some(crate::simd::x86_64::avx2::kquant::vec_dot_q4_k_q8_k),
        avx512: Some(crate::simd::x86_64::avx512::kquant::vec_dot_q4_k_q8_k),
        avx512_vnni: None,
        neon: None,
    };
    #[cfg(target_arch = "aarch64")]
    const KERNELS: Kernels<Self> = Kernels {
        avx2: None,
        avx512: None,
        avx512_vnni: None,
        neon: Some(crate::simd::aarch64::kquant::vec_dot_q4_k_q8_k),
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const KERNELS: Kernels<Self> = Kernels::NONE;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::Quantize;

    /// A block with scales 1..=8, mins 0..8 (blocks 4..8 exercising the packed high bits:
    /// scales 33..=36 and mins 40..=43), d = 0.5, dmin = 0.25 and quants `i % 16`.
    fn sample_block() -> BlockQ4_K {
        let sc = [1u8, 2, 3, 4, 33, 34, 35, 36];
        let m = [0u8, 1, 2, 3, 40, 41, 42, 43];
        let mut scales = [0u8; 12];
        for j in 0..4 {
            scales[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
            scales[j + 4] = m[j] | ((m[j + 4] >> 4) << 6);
            scales[j + 8] = (sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4);
        }
        let mut qs = [0u8; 128];
        for (i, q) in qs.iter_mut().enumerate() {
            *q = (i % 16) as u8 | (((i + 5) % 16) as u8) << 4;
        }
        BlockQ4_K {
            d: f16::from_f32(0.5),
            dmin: f16::from_f32(0.25),
            scales,
            qs,
        }
    }

    #[test]
    fn scale_min_k4_unpacks_six_bit_pairs() {
        let b = sample_block();
        let (sc, m) = unpack_scales_mins(&b.scales);
        assert_eq!(sc, [1, 2, 3, 4, 33, 34, 35, 36]);
        assert_eq!(m, [0, 1, 2, 3, 40, 41, 42, 43]);
    }

    #[test]
    fn dequantize_hand_checked_values() {
        let b = sample_block();
        let mut y = [0f32; QK_K];
        BlockQ4_K::dequantize(&[b], &mut y);
        // Element 0: block 0 (sc 1, m 0), q = 0 -> 0.
        assert_eq!(y[0], 0.0);
        // Element 33: block 1 (sc 2, m 1), high nibble of qs[1] = 6 -> 0.5*2*6 - 0.25*1.
        assert_eq!(y[33], 5.75);
        // Element 200: block 6 (sc 35, m 42), low nibble of qs[3*32 + 8] = 104 % 16 = 8.
        assert_eq!(y[200], 0.5 * 35.0 * 8.0 - 0.25 * 42.0);
    }

    #[test]
    fn vec_dot_matches_dequantized_dot() {
        let b = sample_block();
        let mut y: BlockQ8_K = bytemuck::Zeroable::zeroed();
        y.d = 0.125;
        for i in 0..QK_K {
            y.qs[i] = ((i * 37) % 255) as i8;
        }
        for j in 0..16 {
            y.bsums[j] = y.qs[16 * j..16 * j + 16].iter().map(|&q| q as i16).sum();
        }
        let mut w = [0f32; QK_K];
        BlockQ4_K::dequantize(&[b], &mut w);
        let exact: f64 = (0..QK_K)
            .map(|i| w[i] as f64 * (y.qs[i] as f64 * 0.125))
            .sum();
        let got = BlockQ4_K::vec_dot(&[b], &[y]);
        assert!(
            (got as f64 - exact).abs() < 1e-6 * exact.abs(),
            "{got} vs {exact}"
        );
    }

    #[test]
    fn quantize_round_trip_is_close_and_idempotent() {
        let x: Vec<f32> = (0..2 * QK_K)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let mut q = vec![bytemuck::Zeroable::zeroed(); 2];
        BlockQ4_K::quantize(&x, &mut q);
        let mut y = vec![0f32; 2 * QK_K];
        BlockQ4_K::dequantize(&q, &mut y);
        for (a, b) in x.iter().zip(&y) {
            assert!((a - b).abs() < 0.1, "{a} vs {b}");
        }
        let mut q2 = vec![bytemuck::Zeroable::zeroed(); 2];
        BlockQ4_K::quantize(&y, &mut q2);
        let mut y2 = vec![0f32; 2 * QK_K];
        BlockQ4_K::dequantize(&q2, &mut y2);
        for (a, b) in y.iter().zip(&y2) {
            assert!((a - b).abs() < 0.02, "{a} vs {b}");
        }
    }
}
