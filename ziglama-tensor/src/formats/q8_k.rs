//! Q8_K: super-blocks of 256 signed bytes with an f32 scale and per-16 sums; the activation format of the k-quants and IQ4_XS.
//!
//! Value `i` of a block is `d * qs[i]`. `bsums[j]` is the sum of `qs[16 j..16 j + 16]`, which
//! lets the k-quant dot products apply their per-block minimums (and Q6_K its offset of 32)
//! with 16 multiplications instead of 256.

use super::{Block, Kernels, Quantize, VecDot, QK_K};
use crate::GgmlType;

/// ggml's `block_q8_k`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ8_K {
    /// Scale (f32, unlike the other formats).
    pub d: f32,
    /// Quants.
    pub qs: [i8; 256],
    /// Sums of each group of 16 quants.
    pub bsums: [i16; 16],
}
const _: () = assert!(std::mem::size_of::<BlockQ8_K>() == 292);

/// ggml's `nearest_int`: rounds `fval` to the nearest integer, ties to even, by adding
/// 1.5 * 2^23 and reading the low mantissa bits. Exact for `|fval| <= 4194303`; outside that
/// range it returns the same (meaningless) value ggml does, so quantizers stay byte-identical.
#[inline]
pub(crate) fn nearest_int(fval: f32) -> i32 {
    let val = fval + 12582912.0;
    (val.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

impl Block for BlockQ8_K {
    const TYPE: GgmlType = GgmlType::Q8_K;
    const BLOCK_SIZE: usize = QK_K;
    /// ggml's `dequantize_row_q8_K`: `d * q`.
    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
            for (y, &q) in y.iter_mut().zip(&b.qs) {
                *y = b.d * q as f32;
            }
        }
    }
}

impl Quantize for BlockQ8_K {
    /// ggml's `quantize_row_q8_K_ref` (which is also what ggml's x86 CPU backend runs for
    /// activations), computed by [`quantize_ref`] or, where the active kernel set has one, a
    /// SIMD version that produces the same bytes.
    fn quantize(x: &[f32], out: &mut [Self]) {
        #[cfg(target_arch = "x86_64")]
        if matches!(crate::Isa::active(), crate::Isa::Avx2 | crate::Isa::Avx512) {
            // SAFETY: `Isa::active` only returns an instruction set this CPU supports, and
            // both AVX2 and AVX-512 include the AVX2, FMA and F16C the kernel needs.
            unsafe { crate::simd::x86_64::avx2::kquant::quantize_q8_k(x, out) };
            return;
        }
        quantize_ref(x, out)
    }
}

/// ggml's `quantize_row_q8_K_ref`: the scale maps the value of largest magnitude to -127
/// (`d = max / -127`), quants round half to even and are clamped to 127, and `bsums` are
/// filled. ggml leaves `bsums` untouched for an all-zero block; here they are set to zero.
/// The specification [`Quantize::quantize`] follows; `x` holds `out.len() * 256` values.
pub fn quantize_ref(x: &[f32], out: &mut [BlockQ8_K]) {
    for (b, x) in out.iter_mut().zip(x.chunks_exact(QK_K)) {
        let mut max = 0f32;
        let mut amax = 0f32;
        for &v in x {
            let ax = v.abs();
            if ax > amax {
                amax = ax;
                max = v;
            }
        }
        if amax == 0.0 {
            b.d = 0.0;
            b.qs = [0; QK_K];
            b.bsums = [0; 16];
            continue;
        }
        let iscale = -127.0 / max;
        for (q, &v) in b.qs.iter_mut().zip(x) {
            *q = nearest_int(iscale * v).min(127) as i8;
        }
        for (s, q) in b.bsums.iter_mut().zip(b.qs.chunks_exact(16)) {
            *s = q.iter().map(|&q| q as i32).sum::<i32>() as i16;
        }
        b.d = 1.0 / iscale;
    }
}

impl VecDot for BlockQ8_K {
    type Activation = BlockQ8_K;
    /// ggml has no Q8_K x Q8_K product; this is the plain one: per block, the exact integer dot
    /// product of the quants times both scales.
    fn vec_dot(w: &[Self], a: &[BlockQ8_K]) -> f32 {
        let mut sumf = 0f32;
        for (x, y) in w.iter().zip(a) {
            let isum: i32 =
                x.qs.iter()
                    .zip(&y.qs)
                    .map(|(&p, &q)| p as i32 * q as i32)
                    .sum();
            sumf += x.d * y.d * isum as f32;
        }
        sumf
    }
    #[cfg(target_arch = "x86_64")]
    const KERNELS: Kernels<Self> = Kernels {
        avx2: Some(crate::simd::x86_64::avx2::kquant::vec_dot_q8_k_q8_k),
        avx512: None,
        avx512_vnni: Some(crate::simd::x86_64::avx512::kquant::vec_dot_q8_k_q8_k_vnni),
        neon: None,
    };
    #[cfg(target_arch = "aarch64")]
    const KERNELS: Kernels<Self> = Kernels {
        avx2: None,
        avx512: None,
        avx512_vnni: None,
        neon: Some(crate::simd::aarch64::kquant::vec_dot_q8_k_q8_k),
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const KERNELS: Kernels<Self> = Kernels::NONE;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_rounds_half_to_even() {
        let cases = [
            (0.5, 0),
            (1.5, 2),
            (2.5, 2),
            (-0.5, 0),
            (-1.5, -2),
            (-2.5, -2),
            (0.49999997, 0),
            (126.6, 127),
            (-127.0, -127),
            (4194303.0, 4194303),
        ];
        for (x, n) in cases {
            assert_eq!(nearest_int(x), n, "nearest_int({x})");
        }
    }

    #[test]
    fn quantize_maps_largest_magnitude_to_minus_127_and_fills_bsums() {
        let mut x = [0f32; QK_K];
        for (i, v) in x.iter_mut().enumerate() {
            *v = (i as f32 - 100.0) / 10.0;
        }
        // Largest magnitude: x[255] = 15.5, so d = 15.5 / -127 and q[255] = -127.
        let mut b = [bytemuck::Zeroable::zeroed()];
        BlockQ8_K::quantize(&x, &mut b);
        let b: BlockQ8_K = b[0];
        assert_eq!(b.d, 1.0 / (-127.0 / 15.5));
        assert_eq!(b.qs[255], -127);
        assert_eq!(b.qs[100], 0);
        // x[0] = -10 -> -10 * -127 / 15.5 = 81.93...
        assert_eq!(b.qs[0], 82);
        for j in 0..16 {
            let s: i32 = b.qs[16 * j..16 * j + 16].iter().map(|&q| q as i32).sum();
            assert_eq!(b.bsums[j] as i32, s);
        }
        let mut y = [0f32; QK_K];
        BlockQ8_K::dequantize(&[b], &mut y);
        for (a, b) in x.iter().zip(&y) {
            assert!((a - b).abs() <= 15.5 / 127.0 * 0.5 + 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn zero_block_quantizes_to_zero() {
        let mut b = [BlockQ8_K {
            d: 1.0,
            qs: [3; QK_K],
            bsums: [48; 16],
        }];
        BlockQ8_K::quantize(&[0.0; QK_K], &mut b);
        assert_eq!(b[0], bytemuck::Zeroable::zeroed());
    }

    #[test]
    fn vec_dot_is_scaled_integer_dot() {
        let mut x: BlockQ8_K = bytemuck::Zeroable::zeroed();
        let mut y: BlockQ8_K = bytemuck::Zeroable::zeroed();
        x.d = 0.5;
        y.d = 0.25;
        for i in 0..QK_K {
            x.qs[i] = (i as i32 % 7 - 3) as i8;
            y.qs[i] = (i as i32 % 5 - 2) as i8;
        }
        let isum: i32 = (0..QK_K)
            .map(|i| (i as i32 % 7 - 3) * (i as i32 % 5 - 2))
            .sum();
        assert_eq!(
            BlockQ8_K::vec_dot(&[x, x], &[y, y]),
            2.0 * 0.125 * isum as f32
        );
    }
}
