//! Q4_0: blocks of 32 4-bit values with one f16 scale; value = d * (q - 8). Pairs with Q8_0.

use half::f16;

use super::{BatchKernels, Block, BlockQ8_0, DotKernel, Kernels, Quantize, RawDot, VecDot};
use crate::{GgmlType, Isa};

/// Elements per Q4_0 block.
pub const QK4_0: usize = 32;

/// C's float-to-integer conversion as x86-64 compilers emit it (`cvttss2si`): truncation toward
/// zero, and the "integer indefinite" `i32::MIN` for NaN, infinities and values outside `i32`.
/// ggml's reference quantizers then narrow that to `int8_t` / `uint8_t` (the low byte, which
/// Rust's integer `as` also keeps). Rust's float `as` saturates instead; the two differ only
/// for non-finite values, which the quantizers meet when a block's values are so small
/// (`|x| < ~2^-125`) that `1 / d` overflows to infinity: ggml then writes quants 0.
pub(crate) fn c_float_to_int(v: f32) -> i32 {
    if (-2_147_483_648.0..2_147_483_648.0).contains(&v) {
        v as i32
    } else {
        i32::MIN
    }
}

/// ggml's `block_q4_0`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4_0 {
    /// Scale.
    pub d: f16,
    /// Nibbles: element j in the low half of byte j, element j+16 in the high half.
    pub qs: [u8; 16],
}
const _: () = assert!(std::mem::size_of::<BlockQ4_0>() == 18);

impl Block for BlockQ4_0 {
    const TYPE: GgmlType = GgmlType::Q4_0;
    const BLOCK_SIZE: usize = QK4_0;
    /// ggml's `dequantize_row_q4_0`: `(q - 8) * d`.
    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK4_0)) {
            let d = b.d.to_f32();
            let (lo, hi) = y.split_at_mut(QK4_0 / 2);
            for ((&q, y0), y1) in b.qs.iter().zip(lo).zip(hi) {
                *y0 = ((q & 0x0F) as i32 - 8) as f32 * d;
                *y1 = ((q >> 4) as i32 - 8) as f32 * d;
            }
        }
    }
}

impl Quantize for BlockQ4_0 {
    /// ggml's `quantize_row_q4_0_ref`: the scale is the value of largest magnitude divided
    /// by -8 (so that value maps to quant 0, i.e. -8), quants are `trunc(x / d + 8.5)`
    /// clamped to 15.
    fn quantize(x: &[f32], out: &mut [Self]) {
        for (b, x) in out.iter_mut().zip(x.chunks_exact(QK4_0)) {
            let mut amax = 0f32;
            let mut max = 0f32;
            for &v in x {
                if amax < v.abs() {
                    amax = v.abs();
                    max = v;
                }
            }
            let d = max / -8.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            b.d = f16::from_f32(d);
            let (lo, hi) = x.split_at(QK4_0 / 2);
            for ((q, &x0), &x1) in b.qs.iter_mut().zip(lo).zip(hi) {
                // C's float -> int8_t conversion, as x86-64 compiles it.
                let xi0 = (c_float_to_int(x0 * id + 8.5) as i8).min(15) as u8;
                let xi1 = (c_float_to_int(x1 * id + 8.5) as i8).min(15) as u8;
                *q = xi0 | (xi1 << 4);
            }
        }
    }
}

impl VecDot for BlockQ4_0 {
    type Activation = BlockQ8_0;
    /// ggml's `ggml_vec_dot_q4_0_q8_0_generic`: per block the exact integer sum of
    /// `(q - 8) * a`, then `sumi * d_w * d_a` accumulated in block order.
    fn vec_dot(w: &[Self], a: &[BlockQ8_0]) -> f32 {
        let mut sumf = 0f32;
        for (x, y) in w.iter().zip(a) {
            let (ylo, yhi) = y.qs.split_at(QK4_0 / 2);
            let mut sumi0 = 0i32;
            let mut sumi1 = 0i32;
            for ((&q, &y0), &y1) in x.qs.iter().zip(ylo).zip(yhi) {
                sumi0 += ((q & 0x0F) as i32 - 8) * y0 as i32;
                sumi1 += ((q >> 4) as i32 - 8) * y1 as i32;
            }
            let sumi = sumi0 + sumi1;
            sumf += sumi as f32 * x.d.to_f32() * y.d.to_f32();
        }
        sumf
    }
    /// llama.cpp's order for the tensor's shape ([`X86Order::for_tensor`]): the repacked
    /// order for every activation row when `n_out` is a multiple of 8, else ggml's
    /// `vec_dot` order ([`DotKernel::select`]).
    fn batch_kernels(n_out: usize, n_rows: usize, isa: Isa) -> BatchKernels<Self> {
        let _ = n_rows;
        BatchKernels::uniform(x86_kernel(X86Order::for_tensor(n_out), isa))
    }
    #[cfg(target_arch = "x86_64")]
    const KERNELS: Kernels<Self> = Kernels {
        avx2: Some(crate::simd::x86_64::avx2::legacy::vec_dot_q4_0_q8_0),
        avx512: Some(crate::simd::x86_64::avx512::legacy::vec_dot_q4_0_q8_0),
        avx512_vnni: Some(crate::simd::x86_64::avx512::legacy::vec_dot_q4_0_q8_0_vnni),
        neon: None,
    };
    #[cfg(target_arch = "x86_64")]
    const KERNELS4: super::Kernels4<Self> = super::Kernels4 {
        avx2: Some(crate::simd::x86_64::avx2::legacy::vec_dot4_q4_0_q8_0),
        avx512: Some(crate::simd::x86_64::avx512::legacy::vec_dot4_q4_0_q8_0),
        avx512_vnni: Some(crate::simd::x86_64::avx512::legacy::vec_dot4_q4_0_q8_0_vnni),
        neon: None,
    };
    #[cfg(target_arch = "x86_64")]
    const TILES: super::Tiles<Self> = super::Tiles {
        avx2: Some(crate::simd::x86_64::avx2::gemm::tile_q4_0_q8_0),
        avx512: Some(crate::simd::x86_64::avx512::gemm::tile_q4_0_q8_0),
        avx512_vnni: Some(crate::simd::x86_64::avx512::gemm::tile_q4_0_q8_0_vnni),
        neon: None,
    };
    #[cfg(target_arch = "x86_64")]
    const PANEL_VNNI: Option<super::RawPanel<Self>> =
        Some(crate::simd::x86_64::avx512::panel::q4_0_q8_0_vnni);
    #[cfg(target_arch = "aarch64")]
    const KERNELS: Kernels<Self> = Kernels {
        neon: Some(crate::simd::aarch64::legacy::vec_dot_q4_0_q8_0),
        ..Kernels::NONE
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const KERNELS: Kernels<Self> = Kernels::NONE;
}

/// The two summation orders of llama.cpp's Q4_0 products on x86 with AVX2.
///
/// llama.cpp repacks, at load time, every Q4_0 tensor whose row count (`ne[1]`, output
/// features) is a multiple of 8 into eight interleaved rows (`ggml-cpu/repack.cpp`,
/// `q4_0_8x8_q8_0`, chosen on any x86 CPU with AVX2); its matrix-matrix and matrix-vector
/// kernels for that layout then sum in one order, whatever the batch
/// ([`X86Order::Repacked`]). Other Q4_0 tensors go through `ggml_vec_dot_q4_0_q8_0`
/// ([`X86Order::VecDot`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum X86Order {
    /// `ggml_gemm_q4_0_8x8_q8_0` / `ggml_gemv_q4_0_8x8_q8_0`: [`vec_dot_ggml_repacked`].
    Repacked,
    /// `ggml_vec_dot_q4_0_q8_0`: [`VecDot::KERNELS`] on x86.
    VecDot,
}

impl X86Order {
    /// The order llama.cpp uses on an AVX2 machine for a Q4_0 tensor of `n_out` rows.
    ///
    /// ```
    /// use ziglama_tensor::formats::q4_0::X86Order;
    /// assert_eq!(X86Order::for_tensor(576), X86Order::Repacked);
    /// assert_eq!(X86Order::for_tensor(100), X86Order::VecDot);
    /// ```
    pub fn for_tensor(n_out: usize) -> Self {
        if n_out.is_multiple_of(8) {
            X86Order::Repacked
        } else {
            X86Order::VecDot
        }
    }
}

/// The dot product in the order of llama.cpp's repacked Q4_0 kernels on x86
/// (`ggml_gemm_q4_0_8x8_q8_0` and `ggml_gemv_q4_0_8x8_q8_0`, AVX2 and AVX-512 builds alike):
/// per block, the exact integer sum `I` of `(q - 8) * a` converted to f32 once, then
/// `acc = fma(I, d_w * d_a, acc)` in block order.
///
/// Every step but the fused multiply-add is exact, so any kernel that computes the same
/// integer sums and the same chain of FMAs gives this result bit for bit.
///
/// ```
/// use half::f16;
/// use ziglama_tensor::formats::{q4_0, BlockQ4_0, BlockQ8_0};
/// let w = BlockQ4_0 { d: f16::from_f32(0.5), qs: [0x9A; 16] }; // quants 2 (j < 16) and 1
/// let a = BlockQ8_0 { d: f16::from_f32(0.25), qs: [3; 32] };
/// // (16 * 2 * 3 + 16 * 1 * 3) * 0.5 * 0.25, twice.
/// assert_eq!(q4_0::vec_dot_ggml_repacked(&[w, w], &[a, a]), 2.0 * 144.0 * 0.125);
/// ```
pub fn vec_dot_ggml_repacked(w: &[BlockQ4_0], a: &[BlockQ8_0]) -> f32 {
    let mut acc = 0f32;
    for (x, y) in w.iter().zip(a) {
        let (ylo, yhi) = y.qs.split_at(QK4_0 / 2);
        let mut sumi = 0i32;
        for ((&q, &y0), &y1) in x.qs.iter().zip(ylo).zip(yhi) {
            sumi += ((q & 0x0F) as i32 - 8) * y0 as i32 + ((q >> 4) as i32 - 8) * y1 as i32;
        }
        acc = (sumi as f32).mul_add(x.d.to_f32() * y.d.to_f32(), acc);
    }
    acc
}

/// The best kernel in `order` at or below `isa` that this CPU runs. The repacked order has
/// AVX2 kernels, AVX-512 kernels for CPUs without VNNI (the AVX2 one-row and four-row kernels
/// with a 512-bit `vpmaddubsw` panel) and AVX-512 VNNI kernels, each with a wide GEMM panel;
/// below AVX2, and off x86, where llama.cpp does not repack either, it is
/// [`DotKernel::select`]. `x86_kernel(X86Order::VecDot, isa)` is `DotKernel::select(isa)`.
pub fn x86_kernel(order: X86Order, isa: Isa) -> DotKernel<BlockQ4_0> {
    let repacked = order == X86Order::Repacked && (isa == Isa::Avx2 || isa == Isa::Avx512);
    if !repacked {
        return DotKernel::select(isa);
    }
    x86_kernel_variants(order)
        .into_iter()
        .rev()
        .find(|k| k.isa() != Isa::Scalar && k.isa() <= isa)
        .unwrap_or_else(|| DotKernel::select(isa))
}

/// Every kernel in `order` this CPU runs, the scalar reference first and the preferred one
/// last (as [`DotKernel::variants`]). For [`X86Order::Repacked`] the scalar entry is
/// [`vec_dot_ggml_repacked`] itself, which every other entry equals bit for bit.
pub fn x86_kernel_variants(order: X86Order) -> Vec<DotKernel<BlockQ4_0>> {
    if order == X86Order::VecDot {
        return DotKernel::variants();
    }
    let model: RawDot<BlockQ4_0> = vec_dot_ggml_repacked;
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
    let mut out = vec![DotKernel::from_parts(
        model,
        None,
        None,
        None,
        Isa::Scalar,
        "scalar_repacked",
    )];
    #[cfg(target_arch = "x86_64")]
    {
        use crate::simd::x86_64::{avx2::q4_0_repacked as v2, avx512::q4_0_repacked as v5};
        if Isa::Avx2.is_supported() {
            out.push(
                DotKernel::from_parts(
                    v2::vec_dot_q4_0_q8_0_repacked,
                    Some(v2::vec_dot4_q4_0_q8_0_repacked),
                    None,
                    Some(v2::panel_q4_0_q8_0_repacked),
                    Isa::Avx2,
                    "avx2_repacked",
                )
                .with_wide_panel(),
            );
        }
        if Isa::Avx512.is_supported() {
            // Without VNNI: the AVX2 single-row and four-row kernels (the same order, and
            // features the AVX-512 CPU has), with a 512-bit `vpmaddubsw` panel.
            out.push(
                DotKernel::from_parts(
                    v2::vec_dot_q4_0_q8_0_repacked,
                    Some(v2::vec_dot4_q4_0_q8_0_repacked),
                    None,
                    Some(crate::simd::x86_64::avx512::q4_0_repacked_bw::panel_q4_0_q8_0_repacked),
                    Isa::Avx512,
                    "avx512_repacked",
                )
                .with_wide_panel(),
            );
        }
        if Isa::has_avx512_vnni() {
            out.push(
                DotKernel::from_parts(
                    v5::vec_dot_q4_0_q8_0_repacked,
                    Some(v5::vec_dot4_q4_0_q8_0_repacked),
                    None,
                    Some(v5::panel_q4_0_q8_0_repacked),
                    Isa::Avx512,
                    "avx512_vnni_repacked",
                )
                .with_wide_panel(),
            );
        }
    }
    out
}

/// Test data shared by the legacy formats' tests: a deterministic input (built from exact
/// float operations only, so it is the same on every platform) and the hash the golden
/// values of ggml's output were recorded with.
#[cfg(test)]
pub(crate) mod golden {
    /// Deterministic test input: 4096 blocks of 32 values, built from exact float operations only.
    pub(crate) fn golden_input() -> Vec<f32> {
        let mut s = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mut x = Vec::with_capacity(4096 * 32);
        for b in 0..4096u64 {
            let e = (next() % 33) as i32 - 20; // scale 2^-20 ..= 2^12: f16 scales from subnormal to large, never infinite
            let scale = f32::from_bits(((e + 127) as u32) << 23);
            let one = next() % 32;
            let c = ((next() % 2001) as f32 - 1000.0) / 64.0;
            for j in 0..32u64 {
                let r = next();
                x.push(match b % 8 {
                    0 => 0.0,
                    1 => c,
                    2 => {
                        if j == one {
                            -scale
                        } else {
                            0.0
                        }
                    }
                    3 => ((r % 64) as f32 - 32.0) * 0.5,
                    4 => ((r % 34) as f32 - 17.0) / 16.0 * scale,
                    _ => ((r >> 40) as i32 - (1 << 23)) as f32 / (1 << 23) as f32 * scale,
                });
            }
        }
        x
    }

    /// FNV-1a, 64-bit.
    pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(d: f32, qs: [u8; 16]) -> BlockQ4_0 {
        BlockQ4_0 {
            d: f16::from_f32(d),
            qs,
        }
    }

    #[test]
    fn dequantize_splits_nibbles_into_halves() {
        let mut qs = [0x88u8; 16];
        qs[0] = 0xF0; // element 0: 0 - 8 = -8, element 16: 15 - 8 = 7
        qs[3] = 0x19; // element 3: 9 - 8 = 1, element 19: 1 - 8 = -7
        let mut y = [1f32; 32];
        BlockQ4_0::dequantize(&[block(0.5, qs)], &mut y);
        let mut expected = [0f32; 32];
        expected[0] = -4.0;
        expected[16] = 3.5;
        expected[3] = 0.5;
        expected[19] = -3.5;
        assert_eq!(y, expected);
    }

    #[test]
    fn quantize_maps_the_largest_magnitude_to_minus_eight() {
        // max = -4 (larger magnitude than 3.5): d = -4 / -8 = 0.5, so x = -4 -> q = 0.
        let mut x = [0f32; 32];
        x[0] = -4.0;
        x[1] = 3.5; // 3.5 / 0.5 = 7 -> q = 15
        x[17] = 1.0; // 2 -> q = 10
        x[18] = 0.24; // 0.48 + 8.5 = 8.98 -> truncated to 8
        let mut b = [BlockQ4_0 {
            d: f16::ZERO,
            qs: [0; 16],
        }];
        BlockQ4_0::quantize(&x, &mut b);
        assert_eq!(b[0].d.to_f32(), 0.5);
        assert_eq!(b[0].qs[0], 0x80);
        assert_eq!(b[0].qs[1], 0xAF);
        assert_eq!(b[0].qs[2], 0x88);
        let mut y = [0f32; 32];
        BlockQ4_0::dequantize(&b, &mut y);
        assert_eq!(&y[..2], &[-4.0, 3.5]);
        assert_eq!(y[17], 1.0);
    }

    #[test]
    fn positive_maximum_clamps_to_fifteen() {
        // max = 8 > 0: d = -1, x = 8 -> -8 + 8.5 = 0.5 -> 0; x = -8 -> 16.5 -> 16 -> 15.
        let mut x = [0f32; 32];
        x[0] = 8.0;
        x[1] = -8.0;
        let mut b = [BlockQ4_0 {
            d: f16::ZERO,
            qs: [0; 16],
        }];
        BlockQ4_0::quantize(&x, &mut b);
        assert_eq!(b[0].d.to_f32(), -1.0);
        assert_eq!(b[0].qs[0] & 0x0F, 0);
        assert_eq!(b[0].qs[1] & 0x0F, 15);
    }

    #[test]
    fn all_zero_block_quantizes_to_zero_scale() {
        let mut b = [BlockQ4_0 {
            d: f16::ONE,
            qs: [0; 16],
        }];
        BlockQ4_0::quantize(&[0f32; 32], &mut b);
        assert_eq!(b[0].d.to_f32(), 0.0);
        assert_eq!(b[0].qs, [0x88; 16]);
    }

    #[test]
    fn vec_dot_is_the_scaled_integer_dot() {
        let w = block(0.5, [0x9A; 16]); // element j < 16: 10 - 8 = 2, j >= 16: 9 - 8 = 1
        let mut qs = [0i8; 32];
        qs[0] = 3; // 2 * 3
        qs[20] = -5; // 1 * -5
        qs[31] = 127; // 1 * 127
        let a = BlockQ8_0 {
            d: f16::from_f32(0.25),
            qs,
        };
        let sumi = 6 - 5 + 127;
        let dot = BlockQ4_0::vec_dot(&[w, w], &[a, a]);
        assert_eq!(dot, 2.0 * sumi as f32 * 0.5 * 0.25);
    }

    /// The hashes are of the output of ggml's own `quantize_row_q4_0_ref` and
    /// `dequantize_row_q4_0` (libggml-base of llama.cpp as built by llama-cpp-python
    /// 0.3.36) on [`golden::golden_input`]: 4096 blocks of zeros, constants, lone spikes,
    /// exact ties and random values over scales from 2^-20 to 2^12.
    #[test]
    fn quantize_and_dequantize_match_ggml_bit_for_bit() {
        use crate::formats::q4_0::golden::{fnv1a, golden_input};
        let x = golden_input();
        let mut q = vec![<BlockQ4_0 as bytemuck::Zeroable>::zeroed(); x.len() / 32];
        BlockQ4_0::quantize(&x, &mut q);
        assert_eq!(fnv1a(bytemuck::cast_slice(&q)), 0x46c89dc7f7c517b2);
        let mut y = vec![0f32; x.len()];
        BlockQ4_0::dequantize(&q, &mut y);
        assert_eq!(fnv1a(bytemuck::cast_slice(&y)), 0xe80c18e3dd06eb55);
    }
}
