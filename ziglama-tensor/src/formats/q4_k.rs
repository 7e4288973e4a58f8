//! Q4_K: super-blocks of 256 4-bit values in 8 blocks of 32 with 6-bit scales and mins. Pairs with Q8_K.
//!
//! Value `i` of block `j` is `d * sc[j] * q[i] - dmin * m[j]`. The 32 bytes `qs[32 k..32 k + 32]`
//! hold blocks `2 k` (low nibbles) and `2 k + 1` (high nibbles). The eight 6-bit scales and
//! mins are packed in 12 bytes (see [`scale_min_k4`]).

use half::f16;

use super::q8_k::nearest_int;
use super::{q8_k::BlockQ8_K, Block, DotKernel, Kernels, Quantize, VecDot, QK_K};
#[cfg(target_arch = "x86_64")]
use super::{BatchKernels, Kernels4, RawDot, RawDot4, RawPanel, RawTile};
use crate::{GgmlType, Isa};

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
    /// On x86, in the order of llama.cpp's repacked matrix-vector kernel
    /// ([`vec_dot_ggml_gemv`]): what llama.cpp computes for one activation row with Q4_K
    /// weights of a multiple of 8 rows, i.e. every Q4_K tensor of the usual models. See
    /// [`x86_kernel`] for the other two orders.
    #[cfg(target_arch = "x86_64")]
    const KERNELS: Kernels<Self> = Kernels {
        avx2: Some(crate::simd::x86_64::avx2::kquant::vec_dot_q4_k_q8_k_gemv),
        avx512: Some(crate::simd::x86_64::avx512::kquant::vec_dot_q4_k_q8_k_gemv),
        avx512_vnni: None,
        neon: None,
    };
    #[cfg(target_arch = "x86_64")]
    const KERNELS4: Kernels4<Self> = Kernels4 {
        avx2: Some(crate::simd::x86_64::avx2::kquant::vec_dot4_q4_k_q8_k_gemv),
        avx512: Some(crate::simd::x86_64::avx512::kquant::vec_dot4_q4_k_q8_k_gemv),
        avx512_vnni: None,
        neon: None,
    };
    /// On x86, llama.cpp's order for each activation row ([`X86Order::for_output`]): tensors
    /// of a multiple of 8 rows in the repacked matrix-matrix order for the rows in whole groups
    /// of four of a batch of more than three, the matrix-vector order for the rest; other
    /// tensors in the `ggml_vec_dot_q4_K_q8_K` order, or the tiled order for 8 or more rows.
    #[cfg(target_arch = "x86_64")]
    fn batch_kernels(n_out: usize, n_rows: usize, isa: Isa) -> BatchKernels<Self> {
        let head = X86Order::for_output(n_out, 0, n_rows);
        let tail = X86Order::for_output(n_out, n_rows.saturating_sub(1), n_rows);
        BatchKernels {
            split: if head == X86Order::Gemm {
                n_rows - n_rows % 4
            } else {
                0
            },
            head: x86_kernel(head, isa),
            tail: x86_kernel(tail, isa),
        }
    }
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

/// The four summation orders of llama.cpp's Q4_K products on x86 with AVX2 (all four have
/// a scalar model here and AVX2 and AVX-512 kernels equal to it bit for bit).
///
/// Which one llama.cpp uses for an output is known from the tensor and the batch: Q4_K
/// tensors whose row count (`ne[1]`, output features) is a multiple of 8 are repacked at load
/// time (`q4_K_8x8`); a batch of `n` activation rows then goes through the repacked
/// matrix-matrix kernel for rows `0..n - n % 4` when `n > 3` ([`X86Order::Gemm`]) and
/// through the matrix-vector kernel for the rest ([`X86Order::Gemv`], so every row when
/// `n < 4`). Tensors with another row count are not repacked: every output of a batch of
/// fewer than 8 activation rows is one `ggml_vec_dot_q4_K_q8_K` ([`X86Order::VecDot`]), every
/// output of a larger batch comes from the tiled k-quant path ([`X86Order::Tiled`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum X86Order {
    /// `ggml_gemv_q4_K_8x8_q8_K`: [`vec_dot_ggml_gemv`]. [`VecDot::KERNELS`] on x86.
    Gemv,
    /// `ggml_gemm_q4_K_8x8_q8_K`: [`vec_dot_ggml_gemm`].
    Gemm,
    /// `ggml_vec_dot_q4_K_q8_K`: [`vec_dot_ggml_x86`].
    VecDot,
    /// The tiled k-quant matrix multiplication (`ggml-cpu/tiled`): [`vec_dot_ggml_tiled`].
    Tiled,
}

impl X86Order {
    /// The order llama.cpp uses on an AVX2 machine for activation row `row` of a batch of
    /// `n_rows`, with a Q4_K tensor of `n_out` rows (output features).
    pub fn for_output(n_out: usize, row: usize, n_rows: usize) -> Self {
        if !n_out.is_multiple_of(8) {
            if n_rows >= 8 {
                X86Order::Tiled
            } else {
                X86Order::VecDot
            }
        } else if n_rows > 3 && row < n_rows - n_rows % 4 {
            X86Order::Gemm
        } else {
            X86Order::Gemv
        }
    }
}

/// The best Q4_K kernel in `order` at or below `isa` that this CPU can run (single-row and
/// four-row versions, each four-row result bit-identical to the single-row one; for
/// [`X86Order::Gemm`] also a GEMM tile and, with AVX-512, a GEMM panel, each output
/// bit-identical to the single-row kernel, which is what llama.cpp computes for a group of
/// four activation rows); the scalar reference [`VecDot::vec_dot`] where there is none (below
/// AVX2, or off x86, where llama.cpp does not use these orders either).
/// `x86_kernel(X86Order::Gemv, isa)` is `DotKernel::select(isa)`.
pub fn x86_kernel(order: X86Order, isa: Isa) -> DotKernel<BlockQ4_K> {
    x86_kernel_variants(order)
        .into_iter()
        .rev()
        .find(|k| k.isa() <= isa)
        .unwrap_or_else(DotKernel::scalar)
}

/// Every kernel in `order` this CPU can run, scalar first and the preferred one last (as
/// [`DotKernel::variants`]): for testing each against the others. With AVX-512 there are two
/// for [`X86Order::Gemm`], `avx512` and (where the CPU has VNNI) `avx512_vnni`, which differ
/// in their GEMM panel only.
pub fn x86_kernel_variants(order: X86Order) -> Vec<DotKernel<BlockQ4_K>> {
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
    let mut out = vec![DotKernel::scalar()];
    #[cfg(target_arch = "x86_64")]
    {
        use crate::simd::x86_64::avx512::panel;
        use crate::simd::x86_64::{avx2::kquant as v2, avx512::kquant as v5};
        type K = (
            RawDot<BlockQ4_K>,
            Option<RawDot4<BlockQ4_K>>,
            Option<RawTile<BlockQ4_K>>,
        );
        let (k2, k5): (K, K) = match order {
            X86Order::Gemv => (
                (
                    v2::vec_dot_q4_k_q8_k_gemv,
                    Some(v2::vec_dot4_q4_k_q8_k_gemv),
                    None,
                ),
                (
                    v5::vec_dot_q4_k_q8_k_gemv,
                    Some(v5::vec_dot4_q4_k_q8_k_gemv),
                    None,
                ),
            ),
            X86Order::Gemm => (
                (
                    v2::vec_dot_q4_k_q8_k_gemm,
                    Some(v2::vec_dot4_q4_k_q8_k_gemm),
                    Some(v2::tile_q4_k_q8_k_gemm),
                ),
                (
                    v5::vec_dot_q4_k_q8_k_gemm,
                    Some(v5::vec_dot4_q4_k_q8_k_gemm),
                    Some(v5::tile_q4_k_q8_k_gemm),
                ),
            ),
            X86Order::VecDot => (
                (v2::vec_dot_q4_k_q8_k, None, None),
                (v5::vec_dot_q4_k_q8_k, None, None),
            ),
            X86Order::Tiled => (
                (v2::vec_dot_q4_k_q8_k_tiled, None, None),
                (v5::vec_dot_q4_k_q8_k_tiled, None, None),
            ),
        };
        let gemm = order == X86Order::Gemm;
        let p5: Option<RawPanel<BlockQ4_K>> = gemm.then_some(panel::q4_k_q8_k_gemm);
        let p5v: Option<RawPanel<BlockQ4_K>> = gemm.then_some(panel::q4_k_q8_k_gemm_vnni);
        // Each kernel needs exactly the features of its instruction set (the VNNI panel
        // also VNNI), which is checked before it is stored.
        if Isa::Avx2.is_supported() {
            let (f, f4, tile) = k2;
            out.push(DotKernel::from_parts(f, f4, tile, None, Isa::Avx2, "avx2"));
        }
        if Isa::Avx512.is_supported() {
            let (f, f4, tile) = k5;
            out.push(DotKernel::from_parts(
                f,
                f4,
                tile,
                p5,
                Isa::Avx512,
                "avx512",
            ));
            if gemm && Isa::has_avx512_vnni() {
                out.push(DotKernel::from_parts(
                    f,
                    f4,
                    tile,
                    p5v,
                    Isa::Avx512,
                    "avx512_vnni",
                ));
            }
        }
    }
    let _ = order;
    out
}

/// The exact integer sums of one Q4_K·Q8_K super-block per pair of sub-blocks (64 elements,
/// `k` in `0..4`): `sc[2k] * sum(q * q8)` over sub-block `2k` plus `sc[2k+1] * ...` over
/// `2k + 1`, and `m[2k] * S(2k) + m[2k+1] * S(2k+1)` with `S(j)` the sum of the 32 activation
/// quants of sub-block `j` (from `bsums`). Every value is exact in i32.
pub(crate) fn pair_sums(x: &BlockQ4_K, y: &BlockQ8_K) -> ([i32; 4], [i32; 4]) {
    let (sc, m) = unpack_scales_mins(&x.scales);
    let mut isum = [0i32; 4];
    let mut imin = [0i32; 4];
    for k in 0..4 {
        let q4 = &x.qs[32 * k..32 * k + 32];
        let (q8l, q8h) = y.qs[64 * k..64 * k + 64].split_at(32);
        let (mut lo, mut hi) = (0i32, 0i32);
        for ((&q, &l), &h) in q4.iter().zip(q8l).zip(q8h) {
            lo += (q & 0xF) as i32 * l as i32;
            hi += (q >> 4) as i32 * h as i32;
        }
        isum[k] = sc[2 * k] as i32 * lo + sc[2 * k + 1] as i32 * hi;
        let s = |j: usize| y.bsums[2 * j] as i32 + y.bsums[2 * j + 1] as i32;
        imin[k] = m[2 * k] as i32 * s(2 * k) + m[2 * k + 1] as i32 * s(2 * k + 1);
    }
    (isum, imin)
}

/// The dot product in the order of llama.cpp's repacked x86 matrix-vector kernel
/// (`ggml_gemv_q4_K_8x8_q8_K`, AVX2; the AVX-512 build runs the same code), which llama.cpp
/// uses on every x86 CPU with AVX2 for Q4_K weights whose row count is a multiple of 8, for
/// one activation row and for the rows left over after the groups of four (see
/// [`vec_dot_ggml_gemm`]).
///
/// Per super-block: the exact integer sum of the whole super-block `I` (scales applied) and
/// of its minimum terms `M` are each converted to f32 once, then
/// `acc = fma(I, d_w * d_a, acc)` and `acc_min = fma(M, dmin_w * d_a, acc_min)`, in block
/// order; the result is `acc - acc_min`.
pub fn vec_dot_ggml_gemv(w: &[BlockQ4_K], a: &[BlockQ8_K]) -> f32 {
    let (mut acc, mut acc_min) = (0f32, 0f32);
    for (x, y) in w.iter().zip(a) {
        let (isum, imin) = pair_sums(x, y);
        let d = x.d.to_f32() * y.d;
        let dmin = x.dmin.to_f32() * y.d;
        acc = (isum.iter().sum::<i32>() as f32).mul_add(d, acc);
        acc_min = (imin.iter().sum::<i32>() as f32).mul_add(dmin, acc_min);
    }
    acc - acc_min
}

/// The dot product in the order of llama.cpp's repacked x86 matrix-matrix kernel
/// (`ggml_gemm_q4_K_8x8_q8_K`, both its AVX2 and its AVX-512 BW/DQ branches), which
/// llama.cpp uses for the activation rows `0..n - n % 4` of a batch of `n > 3` rows (in
/// groups of four; the rest go through [`vec_dot_ggml_gemv`]) with Q4_K weights whose row
/// count is a multiple of 8, on x86 with AVX2.
///
/// As [`vec_dot_ggml_gemv`], but with one fused multiply-add per pair of sub-blocks (64
/// elements) instead of one per super-block: for `k` in `0..4`,
/// `acc = fma(I_k, d_w * d_a, acc)` and `acc_min = fma(M_k, dmin_w * d_a, acc_min)`.
///
/// The activations of those groups are quantized by `ggml_quantize_mat_q8_K_4x8`, which gives
/// the same quants and scale as [`BlockQ8_K`]'s quantizer except where the largest magnitude
/// of a block occurs with both signs: there it takes the positive one, the reference the
/// first one, and the quants and scale come out negated. Every term `I_k * (d_w * d_a)` is
/// then the same, so this function on the reference quantizer's blocks gives llama.cpp's
/// result bit for bit.
pub fn vec_dot_ggml_gemm(w: &[BlockQ4_K], a: &[BlockQ8_K]) -> f32 {
    let (mut acc, mut acc_min) = (0f32, 0f32);
    for (x, y) in w.iter().zip(a) {
        let (isum, imin) = pair_sums(x, y);
        let d = x.d.to_f32() * y.d;
        let dmin = x.dmin.to_f32() * y.d;
        for k in 0..4 {
            acc = (isum[k] as f32).mul_add(d, acc);
            acc_min = (imin[k] as f32).mul_add(dmin, acc_min);
        }
    }
    acc - acc_min
}

/// The dot product in the order of llama.cpp's tiled k-quant matrix multiplication
/// (`ggml_compute_forward_mul_mat_tiled`), which it uses for every output of a product with
/// 8 or more activation rows whose Q4_K weights are not repacked (row count not a multiple
/// of 8): per super-block, with `I` and `M` the exact integer sums of the whole super-block
/// and of its minimum terms, `r = fma(-dmin_w, M, I * d_w)` (`I * d_w` rounded), then
/// `acc = fma(r, d_a, acc)`, in block order.
pub fn vec_dot_ggml_tiled(w: &[BlockQ4_K], a: &[BlockQ8_K]) -> f32 {
    let mut acc = 0f32;
    for (x, y) in w.iter().zip(a) {
        let (isum, imin) = pair_sums(x, y);
        let i = isum.iter().sum::<i32>() as f32;
        let m = imin.iter().sum::<i32>() as f32;
        let r = (-x.dmin.to_f32()).mul_add(m, i * x.d.to_f32());
        acc = r.mul_add(y.d, acc);
    }
    acc
}

/// Q5_K (which shares Q4_K's scales and minimums) in the order of llama.cpp's x86
/// `ggml_vec_dot_q5_K_q8_K` (AVX2 branch, which AVX-512 builds run too; used for fewer than 8
/// activation rows, Q5_K not being repacked on x86): eight i32 lanes as
/// [`vec_dot_ggml_x86`] (`acc[l] = fma(d_a * d_w, lane l, acc[l])`), but the minimum terms of
/// a super-block summed to one integer `M` and accumulated in one scalar,
/// `summs = fma(-(d_a * dmin_w), M, summs)` (the compiler fuses llama.cpp's `+=`); the result
/// is `hsum_float_8(acc) + summs`.
pub fn vec_dot_q5_k_ggml_x86(w: &[super::BlockQ5_K], a: &[BlockQ8_K]) -> f32 {
    let mut acc = [0f32; 8];
    let mut summs = 0f32;
    for (x, y) in w.iter().zip(a) {
        let (sc, m) = unpack_scales_mins(&x.scales);
        let d = y.d * x.d.to_f32();
        let dmin = -(y.d * x.dmin.to_f32());
        let mut lanes = [0i32; 8];
        for i in 0..QK_K {
            let (k, half, p) = (i / 64, (i / 32) % 2, i % 32);
            let q = ((x.qs[32 * k + p] >> (4 * half)) & 0xF) | (((x.qh[p] >> (i / 32)) & 1) << 4);
            lanes[p / 4] += sc[i / 32] as i32 * q as i32 * y.qs[i] as i32;
        }
        let mins: i32 = (0..8)
            .map(|j| m[j] as i32 * (y.bsums[2 * j] as i32 + y.bsums[2 * j + 1] as i32))
            .sum();
        summs = dmin.mul_add(mins as f32, summs);
        for (acc, &l) in acc.iter_mut().zip(&lanes) {
            *acc = d.mul_add(l as f32, *acc);
        }
    }
    hsum_float_8(acc) + summs
}

/// ggml's `hsum_float_8`: `((a4 + a0) + (a6 + a2)) + ((a5 + a1) + (a7 + a3))`.
pub(crate) fn hsum_float_8(a: [f32; 8]) -> f32 {
    let r = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    (r[0] + r[2]) + (r[1] + r[3])
}

/// The dot product in the order of llama.cpp's x86 `ggml_vec_dot_q4_K_q8_K` (its AVX2
/// branch, which AVX-512 builds run too), used for Q4_K weights that are not repacked
/// (row count not a multiple of 8, or no AVX2).
///
/// Per super-block, eight exact i32 lanes: lane `l` collects the elements `i` with
/// `(i % 32) / 4 == l` (scales applied), and four lanes of minimum terms, lane `k` those of
/// sub-blocks `2k` and `2k + 1`. Then `acc[l] = fma(d, float(lane l), acc[l])` with
/// `d = d_a * d_w`, and `acc_m[k] = fma(-(d_a * dmin_w), float(lane k), acc_m[k])`; the result
/// is ggml's `hsum_float_8(acc)` plus `(acc_m[0] + acc_m[2]) + (acc_m[1] + acc_m[3])`.
pub fn vec_dot_ggml_x86(w: &[BlockQ4_K], a: &[BlockQ8_K]) -> f32 {
    let mut acc = [0f32; 8];
    let mut acc_m = [0f32; 4];
    for (x, y) in w.iter().zip(a) {
        let (sc, m) = unpack_scales_mins(&x.scales);
        let d = y.d * x.d.to_f32();
        let dmin = -(y.d * x.dmin.to_f32());
        let mut lanes = [0i32; 8];
        for i in 0..QK_K {
            let (k, half, p) = (i / 64, (i / 32) % 2, i % 32);
            let q = (x.qs[32 * k + p] >> (4 * half)) & 0xF;
            lanes[p / 4] += sc[i / 32] as i32 * q as i32 * y.qs[i] as i32;
        }
        for (acc, &l) in acc.iter_mut().zip(&lanes) {
            *acc = d.mul_add(l as f32, *acc);
        }
        for (k, acc) in acc_m.iter_mut().enumerate() {
            let s = |j: usize| y.bsums[2 * j] as i32 + y.bsums[2 * j + 1] as i32;
            let l = m[2 * k] as i32 * s(2 * k) + m[2 * k + 1] as i32 * s(2 * k + 1);
            *acc = dmin.mul_add(l as f32, *acc);
        }
    }
    hsum_float_8(acc) + ((acc_m[0] + acc_m[2]) + (acc_m[1] + acc_m[3]))
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
