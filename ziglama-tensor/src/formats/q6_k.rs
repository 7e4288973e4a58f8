//! Q6_K: super-blocks of 256 6-bit values in 16 blocks of 16 with 8-bit scales. Pairs with Q8_K.
//!
//! Value `i` is `d * scales[i / 16] * (q[i] - 32)` with `q` in `0..64`. Each half of 128
//! elements uses 64 bytes of `ql` and 32 of `qh`: element `32 r + l` (`r` in `0..4`, `l` in
//! `0..32`) takes its low nibble from `ql[l + 32 (r % 2)]` (low nibble for `r < 2`, high for
//! `r >= 2`) and its top two bits from bits `2 r, 2 r + 1` of `qh[l]`.

use half::f16;

use super::q8_k::nearest_int;
use super::{q8_k::BlockQ8_K, Block, DotKernel, Kernels, Quantize, VecDot, QK_K};
use crate::{GgmlType, Isa};

/// ggml's `block_q6_k`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ6_K {
    /// Low 4 bits.
    pub ql: [u8; 128],
    /// High 2 bits.
    pub qh: [u8; 64],
    /// 8-bit scales, one per 16 elements.
    pub scales: [i8; 16],
    /// Super-block scale.
    pub d: f16,
}
const _: () = assert!(std::mem::size_of::<BlockQ6_K>() == 210);

/// ggml's `GROUP_MAX_EPS`: a group whose largest magnitude is below it quantizes to zero.
const GROUP_MAX_EPS: f32 = 1e-15;

/// The four signed 6-bit quants (`q - 32`) at `l`, `l + 32`, `l + 64`, `l + 96` of a half
/// super-block (64 bytes of `ql`, 32 of `qh`).
#[inline]
fn unpack_q6(ql: &[u8], qh: &[u8], l: usize) -> [i8; 4] {
    let h = qh[l];
    [
        ((ql[l] & 0xF) | ((h & 3) << 4)) as i8 - 32,
        ((ql[l + 32] & 0xF) | (((h >> 2) & 3) << 4)) as i8 - 32,
        ((ql[l] >> 4) | (((h >> 4) & 3) << 4)) as i8 - 32,
        ((ql[l + 32] >> 4) | (((h >> 6) & 3) << 4)) as i8 - 32,
    ]
}

/// ggml's `make_qx_quants` with `rmse_type = 1` and no importance weights (the only form its
/// reference quantizers use): quants `L[i] = l + nmax` with `l` in `-nmax..nmax`, chosen by
/// a search over 19 scales around `-nmax / max` that maximizes `sumlx^2 / suml2` with weights
/// `x^2`. Returns the scale. Float operations follow ggml's order exactly.
fn make_qx_quants(nmax: i32, x: &[f32], l_out: &mut [i8]) -> f32 {
    let n = x.len();
    let mut max = 0f32;
    let mut amax = 0f32;
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l_out[..n].fill(0);
        return 0.0;
    }
    let mut iscale = -(nmax as f32) / max;
    let mut sumlx = 0f32;
    let mut suml2 = 0f32;
    for i in 0..n {
        let l = nearest_int(iscale * x[i]).clamp(-nmax, nmax - 1);
        l_out[i] = (l + nmax) as i8;
        let w = x[i] * x[i];
        let lf = l as f32;
        sumlx += w * x[i] * lf;
        suml2 += w * lf * lf;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        sumlx = 0.0;
        suml2 = 0.0;
        for &v in x {
            let l = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
            let w = v * v;
            let lf = l as f32;
            sumlx += w * v * lf;
            suml2 += w * lf * lf;
        }
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for i in 0..n {
                let l = nearest_int(iscale * x[i]);
                l_out[i] = (nmax + l.clamp(-nmax, nmax - 1)) as i8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

impl Block for BlockQ6_K {
    const TYPE: GgmlType = GgmlType::Q6_K;
    const BLOCK_SIZE: usize = QK_K;
    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
            let d = b.d.to_f32();
            for (h, y) in y.chunks_exact_mut(128).enumerate() {
                let ql = &b.ql[64 * h..64 * h + 64];
                let qh = &b.qh[32 * h..32 * h + 32];
                let sc = &b.scales[8 * h..8 * h + 8];
                for l in 0..32 {
                    let is = l / 16;
                    let q = unpack_q6(ql, qh, l);
                    for r in 0..4 {
                        y[l + 32 * r] = d * sc[is + 2 * r] as f32 * q[r] as f32;
                    }
                }
            }
        }
    }
}

impl Quantize for BlockQ6_K {
    /// ggml's `quantize_row_q6_k_ref`.
    fn quantize(x: &[f32], out: &mut [Self]) {
        let mut l = [0i8; QK_K];
        let mut scales = [0f32; QK_K / 16];
        for (y, x) in out.iter_mut().zip(x.chunks_exact(QK_K)) {
            let mut max_scale = 0f32;
            let mut max_abs_scale = 0f32;
            for ib in 0..QK_K / 16 {
                let scale = make_qx_quants(32, &x[16 * ib..16 * ib + 16], &mut l[16 * ib..]);
                scales[ib] = scale;
                let abs_scale = scale.abs();
                if abs_scale > max_abs_scale {
                    max_abs_scale = abs_scale;
                    max_scale = scale;
                }
            }
            if max_abs_scale < GROUP_MAX_EPS {
                *y = bytemuck::Zeroable::zeroed();
                continue;
            }
            let iscale = -128.0 / max_scale;
            y.d = f16::from_f32(1.0 / iscale);
            for (s, &v) in y.scales.iter_mut().zip(&scales) {
                *s = nearest_int(iscale * v).min(127) as i8;
            }
            for j in 0..QK_K / 16 {
                let d = y.d.to_f32() * y.scales[j] as f32;
                if d == 0.0 {
                    continue;
                }
                for ii in 0..16 {
                    let q = nearest_int(x[16 * j + ii] / d).clamp(-32, 31);
                    l[16 * j + ii] = (q + 32) as i8;
                }
            }
            for h in 0..2 {
                let l = &l[128 * h..128 * h + 128];
                let ql = &mut y.ql[64 * h..64 * h + 64];
                for i in 0..32 {
                    let q = [
                        l[i] as u8,
                        l[i + 32] as u8,
                        l[i + 64] as u8,
                        l[i + 96] as u8,
                    ];
                    ql[i] = (q[0] & 0xF) | ((q[2] & 0xF) << 4);
                    ql[i + 32] = (q[1] & 0xF) | ((q[3] & 0xF) << 4);
                    y.qh[32 * h + i] =
                        (q[0] >> 4) | ((q[1] >> 4) << 2) | ((q[2] >> 4) << 4) | ((q[3] >> 4) << 6);
                }
            }
        }
    }
}

impl VecDot for BlockQ6_K {
    type Activation = BlockQ8_K;
    /// ggml's `ggml_vec_dot_q6_K_q8_K_generic`: per super-block the exact integer sum
    /// `sum_j scales[j] * sum_i (q[i] - 32) * q8[i]`, scaled by `d * d8`.
    fn vec_dot(w: &[Self], a: &[BlockQ8_K]) -> f32 {
        let mut sumf = 0f32;
        for (x, y) in w.iter().zip(a) {
            let mut isum = 0i32;
            for h in 0..2 {
                let ql = &x.ql[64 * h..64 * h + 64];
                let qh = &x.qh[32 * h..32 * h + 32];
                let q8 = &y.qs[128 * h..128 * h + 128];
                let mut sub = [0i32; 8];
                for l in 0..32 {
                    let q = unpack_q6(ql, qh, l);
                    for r in 0..4 {
                        sub[2 * r + l / 16] += q[r] as i32 * q8[l + 32 * r] as i32;
                    }
                }
                for (k, &s) in sub.iter().enumerate() {
                    isum += x.scales[8 * h + k] as i32 * s;
                }
            }
            sumf += x.d.to_f32() * y.d * isum as f32;
        }
        sumf
    }
    /// On x86, in the order of llama.cpp's `ggml_vec_dot_q6_K_q8_K` ([`vec_dot_ggml_x86`]),
    /// which it uses for batches of fewer than 8 activation rows (see [`x86_tiled_kernel`] for
    /// the order of larger batches).
    #[cfg(target_arch = "x86_64")]
    const KERNELS: Kernels<Self> = Kernels {
        avx2: Some(crate::simd::x86_64::avx2::kquant::vec_dot_q6_k_q8_k),
        avx512: Some(crate::simd::x86_64::avx512::kquant::vec_dot_q6_k_q8_k),
        avx512_vnni: None,
        neon: None,
    };
    #[cfg(target_arch = "x86_64")]
    const KERNELS4: super::Kernels4<Self> = super::Kernels4 {
        avx2: Some(crate::simd::x86_64::avx2::kquant::vec_dot4_q6_k_q8_k),
        avx512: Some(crate::simd::x86_64::avx512::kquant::vec_dot4_q6_k_q8_k),
        avx512_vnni: None,
        neon: None,
    };
    /// On x86, llama.cpp's order: [`vec_dot_ggml_x86`] for fewer than 8 activation rows,
    /// [`vec_dot_ggml_tiled`] for every row of a larger batch.
    #[cfg(target_arch = "x86_64")]
    fn batch_kernels(n_out: usize, n_rows: usize, isa: Isa) -> super::BatchKernels<Self> {
        let _ = n_out;
        super::BatchKernels::uniform(if x86_uses_tiled(n_rows) {
            x86_tiled_kernel(isa)
        } else {
            DotKernel::select(isa)
        })
    }
    #[cfg(target_arch = "aarch64")]
    const KERNELS: Kernels<Self> = Kernels {
        avx2: None,
        avx512: None,
        avx512_vnni: None,
        neon: Some(crate::simd::aarch64::kquant::vec_dot_q6_k_q8_k),
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const KERNELS: Kernels<Self> = Kernels::NONE;
}

/// The dot product in the order of llama.cpp's x86 `ggml_vec_dot_q6_K_q8_K` (its AVX2
/// branch; there is no AVX-512 branch, and x86 does not repack Q6_K), which every x86 CPU with
/// AVX2 runs for Q6_K weights.
///
/// Per super-block, eight exact i32 lanes: lane `l` collects the elements `i` with
/// `(i % 32) / 4 == l`, `scales[i / 16] * q[i] * q8[i]` with the unsigned quants `q` in
/// `0..64`, minus `32 * (scales[2l] * bsums[2l] + scales[2l + 1] * bsums[2l + 1])` (the offset
/// of 32, applied through Q8_K's sums of 16). Then `acc[l] = fma(d, float(lane l), acc[l])`
/// with `d = d_a * d_w`, and the result is ggml's `hsum_float_8(acc)`.
pub fn vec_dot_ggml_x86(w: &[BlockQ6_K], a: &[BlockQ8_K]) -> f32 {
    let mut acc = [0f32; 8];
    for (x, y) in w.iter().zip(a) {
        let d = y.d * x.d.to_f32();
        let mut lanes = [0i32; 8];
        for (l, lane) in lanes.iter_mut().enumerate() {
            *lane = -32
                * (x.scales[2 * l] as i32 * y.bsums[2 * l] as i32
                    + x.scales[2 * l + 1] as i32 * y.bsums[2 * l + 1] as i32);
        }
        for h in 0..2 {
            let ql = &x.ql[64 * h..64 * h + 64];
            let qh = &x.qh[32 * h..32 * h + 32];
            for p in 0..32 {
                let q = unpack_q6(ql, qh, p);
                for (r, &q) in q.iter().enumerate() {
                    let i = 128 * h + 32 * r + p;
                    lanes[p / 4] += x.scales[i / 16] as i32 * (q as i32 + 32) * y.qs[i] as i32;
                }
            }
        }
        for (acc, &l) in acc.iter_mut().zip(&lanes) {
            *acc = d.mul_add(l as f32, *acc);
        }
    }
    super::q4_k::hsum_float_8(acc)
}

/// The dot product in the order of llama.cpp's tiled k-quant matrix multiplication
/// (`ggml_compute_forward_mul_mat_tiled`, `ggml-cpu/tiled/`), which it uses instead of
/// [`vec_dot_ggml_x86`] for every output of a product whose activation has 8 rows or more
/// (`src1->ne[1] >= 8`) and whose weights are not repacked (on x86 every Q6_K tensor).
///
/// Per super-block, the exact integer sum `I` of the whole super-block (scales and the offset
/// of 32 applied) is converted to f32 and multiplied by `d_w` (one rounding), then
/// `acc = fma(that, d_a, acc)` in block order (the compiler fuses llama.cpp's multiply and
/// add). Checked against llama.cpp's AVX-512 VNNI build.
pub fn vec_dot_ggml_tiled(w: &[BlockQ6_K], a: &[BlockQ8_K]) -> f32 {
    let mut acc = 0f32;
    for (x, y) in w.iter().zip(a) {
        let mut isum = 0i32;
        for h in 0..2 {
            let ql = &x.ql[64 * h..64 * h + 64];
            let qh = &x.qh[32 * h..32 * h + 32];
            for p in 0..32 {
                for (r, &q) in unpack_q6(ql, qh, p).iter().enumerate() {
                    let i = 128 * h + 32 * r + p;
                    isum += x.scales[i / 16] as i32 * q as i32 * y.qs[i] as i32;
                }
            }
        }
        acc = (isum as f32 * x.d.to_f32()).mul_add(y.d, acc);
    }
    acc
}

/// Which of llama.cpp's x86 orders a Q6_K product follows: [`vec_dot_ggml_x86`] for batches
/// of fewer than 8 activation rows, [`vec_dot_ggml_tiled`] for 8 or more (every row of the
/// batch).
pub fn x86_uses_tiled(n_rows: usize) -> bool {
    n_rows >= 8
}

/// The best Q6_K kernel in the order of [`vec_dot_ggml_tiled`] at or below `isa` that this
/// CPU can run (with AVX-512 also a GEMM panel, each output bit-identical to the single-row
/// kernel); the scalar reference where there is none. The single-row kernel of
/// [`VecDot::KERNELS`] follows [`vec_dot_ggml_x86`].
pub fn x86_tiled_kernel(isa: Isa) -> DotKernel<BlockQ6_K> {
    x86_tiled_kernel_variants()
        .into_iter()
        .rev()
        .find(|k| k.isa() <= isa)
        .unwrap_or_else(DotKernel::scalar)
}

/// Every kernel in the order of [`vec_dot_ggml_tiled`] this CPU can run, scalar first and the
/// preferred one last (as [`DotKernel::variants`]): with AVX-512 two, `avx512` and (where the
/// CPU has VNNI) `avx512_vnni`, which differ in their GEMM panel only.
pub fn x86_tiled_kernel_variants() -> Vec<DotKernel<BlockQ6_K>> {
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
    let mut out = vec![DotKernel::scalar()];
    #[cfg(target_arch = "x86_64")]
    {
        use crate::simd::x86_64::avx512::panel;
        use crate::simd::x86_64::{avx2::kquant as v2, avx512::kquant as v5};
        // Each kernel needs exactly the features of its instruction set (the VNNI panel
        // also VNNI), which is checked before it is stored.
        if Isa::Avx2.is_supported() {
            let f: super::RawDot<BlockQ6_K> = v2::vec_dot_q6_k_q8_k_tiled;
            out.push(DotKernel::from_parts(
                f,
                None,
                None,
                None,
                Isa::Avx2,
                "avx2",
            ));
        }
        if Isa::Avx512.is_supported() {
            let f: super::RawDot<BlockQ6_K> = v5::vec_dot_q6_k_q8_k_tiled;
            let p: super::RawPanel<BlockQ6_K> = panel::q6_k_q8_k_tiled;
            out.push(DotKernel::from_parts(
                f,
                None,
                None,
                Some(p),
                Isa::Avx512,
                "avx512",
            ));
            if Isa::has_avx512_vnni() {
                let p: super::RawPanel<BlockQ6_K> = panel::q6_k_q8_k_tiled_vnni;
                out.push(DotKernel::from_parts(
                    f,
                    None,
                    None,
                    Some(p),
                    Isa::Avx512,
                    "avx512_vnni",
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block with `q[i] = i % 64` (so `q - 32` runs over `-32..32`), scales `j - 8` and
    /// d = 0.5.
    fn sample_block() -> BlockQ6_K {
        let mut l = [0u8; QK_K];
        for (i, l) in l.iter_mut().enumerate() {
            *l = (i % 64) as u8;
        }
        let mut b: BlockQ6_K = bytemuck::Zeroable::zeroed();
        for h in 0..2 {
            for i in 0..32 {
                let q = [
                    l[128 * h + i],
                    l[128 * h + i + 32],
                    l[128 * h + i + 64],
                    l[128 * h + i + 96],
                ];
                b.ql[64 * h + i] = (q[0] & 0xF) | ((q[2] & 0xF) << 4);
                b.ql[64 * h + i + 32] = (q[1] & 0xF) | ((q[3] & 0xF) << 4);
                b.qh[32 * h + i] =
                    (q[0] >> 4) | ((q[1] >> 4) << 2) | ((q[2] >> 4) << 4) | ((q[3] >> 4) << 6);
            }
        }
        for (j, s) in b.scales.iter_mut().enumerate() {
            *s = j as i8 - 8;
        }
        b.d = f16::from_f32(0.5);
        b
    }

    #[test]
    fn dequantize_hand_checked_values() {
        let mut y = [0f32; QK_K];
        BlockQ6_K::dequantize(&[sample_block()], &mut y);
        for (i, &v) in y.iter().enumerate() {
            let expected = 0.5 * ((i / 16) as f32 - 8.0) * ((i % 64) as f32 - 32.0);
            assert_eq!(v, expected, "element {i}");
        }
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
        BlockQ6_K::dequantize(&[b], &mut w);
        let exact: f64 = (0..QK_K)
            .map(|i| w[i] as f64 * (y.qs[i] as f64 * 0.25))
            .sum();
        let got = BlockQ6_K::vec_dot(&[b], &[y]);
        assert!(
            (got as f64 - exact).abs() < 1e-6 * exact.abs().max(1.0),
            "{got} vs {exact}"
        );
    }

    #[test]
    fn quantize_round_trip_is_close() {
        let x: Vec<f32> = (0..QK_K)
            .map(|i| ((i * 7919) % 1000) as f32 / 250.0 - 2.0)
            .collect();
        let mut q = [bytemuck::Zeroable::zeroed()];
        BlockQ6_K::quantize(&x, &mut q);
        let mut y = [0f32; QK_K];
        BlockQ6_K::dequantize(&q, &mut y);
        for (a, b) in x.iter().zip(&y) {
            // Six bits over [-2, 2]: a step of about 4/63 per sub-block, error half of it.
            assert!((a - b).abs() < 0.05, "{a} vs {b}");
        }
    }

    #[test]
    fn all_zero_input_gives_zero_block() {
        let mut q = [sample_block()];
        BlockQ6_K::quantize(&[0.0; QK_K], &mut q);
        assert_eq!(q[0], bytemuck::Zeroable::zeroed());
    }
}
