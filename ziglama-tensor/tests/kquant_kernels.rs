//! The SIMD dot products of the k-quant formats (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K) and
//! IQ4_XS with Q8_K agree with the scalar reference on every kernel this CPU can run, for
//! random blocks, super-block counts 0..=3 and a few longer ones, at byte offsets that
//! misalign the blocks relative to 32 and 64 bytes; the reference quantizers of Q4_K,
//! Q6_K and Q8_K round-trip within their step size; and quantizers and dequantizers produce
//! the very bytes llama.cpp does on deterministic inputs with edge cases (fingerprints of
//! llama.cpp's outputs at the end of this file).
//!
//! # The bound
//!
//! Both the reference and the kernels compute each super-block's integer sums exactly (the
//! kernels as eight to sixteen i32 partial sums, each far below 2^24, so their conversion to
//! f32 is exact too). Only the f32 arithmetic on top differs. The reference forms each
//! super-block's term with at most four roundings (the integer sum to f32, `d_w * d_a`, their
//! product, and the minimum's term) and adds the `nb` terms in order (IQ4_XS: eight terms per
//! super-block, `8 nb` in all); a kernel rounds `d_w * d_a` once, fuses the multiplication
//! into the addition (FMA) into one of 8 or 16 lanes and reduces the lanes in a tree of at
//! most 5 levels, plus one addition of the minimums' accumulator. Every partial term thus
//! passes through at most `r_ref = c nb + 4` roundings in the reference (`c = 8` for IQ4_XS,
//! otherwise 1) and `nb + 10` in a kernel, each of relative size `u = 2^-24`; the summation
//! bound (Higham, *Accuracy and Stability of Numerical Algorithms*, §4.2), applied to the sum
//! of absolute partial terms
//!
//! `M = sum_i (|d_w sc_i q_i| + |dmin_w m_i|) |d_a q8_i|`
//!
//! gives, to first order in `u`, `|kernel - reference| <= ((c + 1) nb + 16) * u * M`.
//! One wrong, dropped or duplicated quant moves the result by about `M / (256 nb)`, far
//! outside the bound for the counts tested; and where all values are small integers every
//! operation is exact, so there the kernels must equal the reference bit for bit.
//!
//! The activation quants span `-127..=127`, the range of Q8_K's quantizer (its scale maps the
//! largest magnitude to -127 and quants are clamped to 127); the IQ4_XS and Q8_K·Q8_K kernels
//! rely on it (see `simd::x86_64::avx2::kquant`).

use half::f16;
use proptest::prelude::*;
use ziglama_tensor::formats::q4_k::scale_min_k4;
use ziglama_tensor::formats::{
    Block, BlockIQ4_XS, BlockQ2_K, BlockQ3_K, BlockQ4_K, BlockQ5_K, BlockQ6_K, BlockQ8_K,
    DotKernel, Quantize, VecDot, QK_K,
};
use ziglama_tensor::Isa;

const U: f64 = 1.0 / (1u64 << 24) as f64;

/// A small deterministic generator (SplitMix64), so failures reproduce from the seed.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1].
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f32 {
        let (a, b) = (self.uniform(), self.uniform());
        ((-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()) as f32
    }
    /// Uniform integer in `lo..=hi`.
    fn int(&mut self, lo: i32, hi: i32) -> i32 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i32
    }
    fn fill(&mut self, bytes: &mut [u8]) {
        for b in bytes {
            *b = self.next_u64() as u8;
        }
    }
}

/// A weight format under test: how to draw a random block, and the pieces whose
/// dequantized magnitudes make up `M`.
trait Weight: VecDot<Activation = BlockQ8_K> + Copy + std::fmt::Debug {
    /// Reference roundings per super-block (`c` in the module docs).
    const C: f64 = 1.0;
    /// A block of random quants and scale bytes with standard normal f16 scales.
    fn random(rng: &mut Rng) -> Self;
    /// A block with every quant and scale byte random but small scales, so that all sums stay
    /// small integers (exactly representable).
    fn unit(rng: &mut Rng) -> Self;
    /// Blocks whose dequantized values `v` give the magnitudes `sum |v_i|` of the terms.
    fn parts(&self) -> Vec<Self> {
        vec![*self]
    }
}

fn random_bytes<T: bytemuck::Pod>(rng: &mut Rng) -> T {
    let mut b: T = bytemuck::Zeroable::zeroed();
    rng.fill(bytemuck::bytes_of_mut(&mut b));
    b
}

fn nf16(rng: &mut Rng) -> f16 {
    f16::from_f32(rng.normal())
}

impl Weight for BlockQ2_K {
    fn random(rng: &mut Rng) -> Self {
        let mut b: Self = random_bytes(rng);
        (b.d, b.dmin) = (nf16(rng), nf16(rng));
        b
    }
    fn unit(rng: &mut Rng) -> Self {
        let mut b = Self::random(rng);
        (b.d, b.dmin) = (f16::ONE, f16::from_f32(-2.0));
        b
    }
    fn parts(&self) -> Vec<Self> {
        let (mut s, mut m) = (*self, *self);
        s.dmin = f16::ZERO;
        m.d = f16::ZERO;
        vec![s, m]
    }
}

impl Weight for BlockQ3_K {
    fn random(rng: &mut Rng) -> Self {
        let mut b: Self = random_bytes(rng);
        b.d = nf16(rng);
        b
    }
    fn unit(rng: &mut Rng) -> Self {
        let mut b = Self::random(rng);
        b.d = f16::from_f32(-1.0);
        b
    }
}

impl Weight for BlockQ4_K {
    fn random(rng: &mut Rng) -> Self {
        let mut b: Self = random_bytes(rng);
        (b.d, b.dmin) = (nf16(rng), nf16(rng));
        b
    }
    fn unit(rng: &mut Rng) -> Self {
        let mut b = Self::random(rng);
        (b.d, b.dmin) = (f16::ONE, f16::from_f32(3.0));
        b
    }
    fn parts(&self) -> Vec<Self> {
        let (mut s, mut m) = (*self, *self);
        s.dmin = f16::ZERO;
        m.d = f16::ZERO;
        vec![s, m]
    }
}

impl Weight for BlockQ5_K {
    fn random(rng: &mut Rng) -> Self {
        let mut b: Self = random_bytes(rng);
        (b.d, b.dmin) = (nf16(rng), nf16(rng));
        b
    }
    fn unit(rng: &mut Rng) -> Self {
        let mut b = Self::random(rng);
        (b.d, b.dmin) = (f16::from_f32(2.0), f16::ONE);
        b
    }
    fn parts(&self) -> Vec<Self> {
        let (mut s, mut m) = (*self, *self);
        s.dmin = f16::ZERO;
        m.d = f16::ZERO;
        vec![s, m]
    }
}

impl Weight for BlockQ6_K {
    fn random(rng: &mut Rng) -> Self {
        let mut b: Self = random_bytes(rng);
        b.d = nf16(rng);
        b
    }
    fn unit(rng: &mut Rng) -> Self {
        let mut b = Self::random(rng);
        b.d = f16::ONE;
        b
    }
}

impl Weight for BlockQ8_K {
    fn random(rng: &mut Rng) -> Self {
        activation(rng, 127)
    }
    fn unit(rng: &mut Rng) -> Self {
        let mut b = activation(rng, 127);
        b.d = 1.0;
        b
    }
}

impl Weight for BlockIQ4_XS {
    const C: f64 = 8.0;
    fn random(rng: &mut Rng) -> Self {
        let mut b: Self = random_bytes(rng);
        b.d = nf16(rng);
        b
    }
    fn unit(rng: &mut Rng) -> Self {
        let mut b = Self::random(rng);
        b.d = f16::ONE;
        b
    }
}

/// A Q8_K block with quants uniform in `-max..=max`, a standard normal scale and consistent
/// `bsums`.
fn activation(rng: &mut Rng, max: i32) -> BlockQ8_K {
    let mut b: BlockQ8_K = bytemuck::Zeroable::zeroed();
    b.d = rng.normal();
    for q in b.qs.iter_mut() {
        *q = rng.int(-max, max) as i8;
    }
    for (s, q) in b.bsums.iter_mut().zip(b.qs.chunks_exact(16)) {
        *s = q.iter().map(|&q| q as i16).sum();
    }
    b
}

/// `M` of the module docs, in f64.
fn magnitude<W: Weight>(w: &[W], a: &[BlockQ8_K]) -> f64 {
    let mut m = 0f64;
    for (x, y) in w.iter().zip(a) {
        let mut ya = [0f32; QK_K];
        BlockQ8_K::dequantize(std::slice::from_ref(y), &mut ya);
        for p in x.parts() {
            let mut v = [0f32; QK_K];
            W::dequantize(&[p], &mut v);
            m += v
                .iter()
                .zip(&ya)
                .map(|(v, a)| (*v as f64 * *a as f64).abs())
                .sum::<f64>();
        }
    }
    m
}

/// `blocks` copied into a fresh buffer at a byte offset that is `shift` (a multiple of the
/// block's alignment) past a 64-byte boundary, passed to `f`.
fn at_offset<T: bytemuck::Pod, R>(blocks: &[T], shift: usize, f: impl FnOnce(&[T]) -> R) -> R {
    let bytes: &[u8] = bytemuck::cast_slice(blocks);
    let mut buf = vec![0u8; bytes.len() + 128];
    let base = buf.as_ptr() as usize;
    let start = (64 - base % 64) % 64 + shift;
    buf[start..start + bytes.len()].copy_from_slice(bytes);
    let view: &[T] = bytemuck::cast_slice(&buf[start..start + bytes.len()]);
    assert_eq!(view.as_ptr() as usize % 64, shift % 64);
    f(view)
}

/// The kernels to test: every one `W::KERNELS` attaches that this CPU can run (so a VNNI
/// kernel does not hide the plain AVX-512 one), plus the one `DotKernel::select` picks for
/// each supported instruction set.
fn kernels<W: Weight>() -> Vec<(String, DotKernel<W>)> {
    let mut out: Vec<(String, DotKernel<W>)> = Isa::all_supported()
        .into_iter()
        .map(|isa| {
            let k = DotKernel::<W>::select(isa);
            (format!("select({isa}) = {}", k.name()), k)
        })
        .collect();
    out.extend(
        DotKernel::<W>::variants()
            .into_iter()
            .map(|k| (k.name().to_string(), k)),
    );
    out
}

/// Checks every kernel against the reference on `nb` random super-blocks (after `skip`
/// leading ones, so the slice starts at an odd block), at byte shift `shift`.
fn check_random<W: Weight>(seed: u64, nb: usize, skip: usize, shift: usize) {
    let mut rng = Rng(seed);
    let w: Vec<W> = (0..nb + skip).map(|_| W::random(&mut rng)).collect();
    let a: Vec<BlockQ8_K> = (0..nb + skip).map(|_| activation(&mut rng, 127)).collect();
    let align = std::mem::align_of::<W>().max(std::mem::align_of::<BlockQ8_K>());
    let shift = shift * align;
    at_offset(&w, shift, |w| {
        at_offset(&a, shift + align, |a| {
            let (w, a) = (&w[skip..], &a[skip..]);
            let reference = W::vec_dot(w, a) as f64;
            let bound = ((W::C + 1.0) * nb as f64 + 16.0) * U * magnitude(w, a) + 1e-30;
            for (name, k) in kernels::<W>() {
                let got = k.call(w, a) as f64;
                assert!(
                    (got - reference).abs() <= bound,
                    "{:?} {name}: nb {nb} kernel {got} reference {reference} bound {bound}",
                    W::TYPE,
                );
            }
        })
    });
}

/// Checks every kernel equals the reference bit for bit where all arithmetic is exact: small
/// integer scales and activation quants in `-2..=2`, so every partial and total sum is an
/// integer below 2^24 (at most 5 super-blocks of at most `256 * 32 * 2 * 128` for Q6_K).
fn check_exact<W: Weight>(seed: u64, nb: usize) {
    let mut rng = Rng(seed);
    let w: Vec<W> = (0..nb).map(|_| W::unit(&mut rng)).collect();
    let a: Vec<BlockQ8_K> = (0..nb)
        .map(|_| {
            let mut b = activation(&mut rng, 2);
            b.d = 1.0;
            b
        })
        .collect();
    let reference = W::vec_dot(&w, &a);
    for (name, k) in kernels::<W>() {
        assert_eq!(k.call(&w, &a), reference, "{:?} {name}", W::TYPE);
    }
}

/// Block counts: 0..=3 most of the time, sometimes a longer odd or even one.
fn counts() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 0usize..=3, 1 => prop::sample::select(vec![5usize, 8, 16, 33])]
}

macro_rules! kernel_props {
    ($($name:ident: $w:ty,)*) => {$(
        mod $name {
            use super::*;

            proptest! {
                #[test]
                fn simd_matches_reference(
                    seed in any::<u64>(),
                    nb in counts(),
                    skip in 0usize..=3,
                    shift in 0usize..16,
                ) {
                    check_random::<$w>(seed, nb, skip, shift);
                }

                #[test]
                fn simd_is_exact_on_small_integers(seed in any::<u64>(), nb in 0usize..=5) {
                    check_exact::<$w>(seed, nb);
                }
            }

            #[test]
            fn simd_kernels_are_attached() {
                for isa in Isa::all_supported() {
                    let k = DotKernel::<$w>::select(isa);
                    if isa != Isa::Scalar {
                        assert_ne!(k.isa(), Isa::Scalar, "no SIMD kernel for {isa}");
                    }
                }
            }
        }
    )*};
}

kernel_props! {
    q2_k: BlockQ2_K,
    q3_k: BlockQ3_K,
    q4_k: BlockQ4_K,
    q5_k: BlockQ5_K,
    q6_k: BlockQ6_K,
    q8_k: BlockQ8_K,
    iq4_xs: BlockIQ4_XS,
}

/// Activations quantized from real floats (the production path) against every kernel.
#[test]
fn quantized_activations_match_reference() {
    let mut rng = Rng(7);
    let nb = 16;
    let x: Vec<f32> = (0..nb * QK_K).map(|_| rng.normal()).collect();
    let mut a = vec![bytemuck::Zeroable::zeroed(); nb];
    BlockQ8_K::quantize(&x, &mut a);
    assert!(a.iter().all(|b| b.qs.iter().all(|&q| q != -128)));
    fn one<W: Weight>(rng: &mut Rng, a: &[BlockQ8_K]) {
        let w: Vec<W> = (0..a.len()).map(|_| W::random(rng)).collect();
        let reference = W::vec_dot(&w, a) as f64;
        let bound = ((W::C + 1.0) * a.len() as f64 + 16.0) * U * magnitude(&w, a);
        for (name, k) in kernels::<W>() {
            let got = k.call(&w, a) as f64;
            assert!((got - reference).abs() <= bound, "{:?} {name}", W::TYPE);
        }
    }
    one::<BlockQ2_K>(&mut rng, &a);
    one::<BlockQ3_K>(&mut rng, &a);
    one::<BlockQ4_K>(&mut rng, &a);
    one::<BlockQ5_K>(&mut rng, &a);
    one::<BlockQ6_K>(&mut rng, &a);
    one::<BlockQ8_K>(&mut rng, &a);
    one::<BlockIQ4_XS>(&mut rng, &a);
}

/// Random rows: normal values times a per-super-block magnitude of 2^-10..2^10, with some
/// all-zero and some constant sub-blocks.
fn random_row(rng: &mut Rng, nb: usize) -> Vec<f32> {
    let mut x = Vec::with_capacity(nb * QK_K);
    for _ in 0..nb {
        let scale = 2f32.powi(rng.int(-10, 10));
        let kind = rng.int(0, 5);
        for i in 0..QK_K {
            x.push(match kind {
                0 if i < 64 => 0.0,
                1 if i % 32 < 16 => 0.25 * scale,
                2 => rng.normal().abs() * scale,
                _ => rng.normal() * scale,
            });
        }
    }
    x
}

fn round_trip<Q: Quantize>(x: &[f32]) -> Vec<f32> {
    let mut q = vec![bytemuck::Zeroable::zeroed(); x.len() / QK_K];
    Q::quantize(x, &mut q);
    let mut y = vec![0f32; x.len()];
    Q::dequantize(&q, &mut y);
    y
}

proptest! {
    /// Q8_K: `d = max / -127` and quants are rounded to nearest, so every value is within half
    /// a step `|d| / 2` (plus the rounding of `d * q` and of `d` itself, and of the difference
    /// taken in f32: a value exactly halfway between two steps, as seed 16357672070577570565
    /// draws, lands a few ulps of the value beyond the half step) of the input.
    #[test]
    fn q8_k_round_trip(seed in any::<u64>(), nb in 1usize..=4) {
        let x = random_row(&mut Rng(seed), nb);
        let y = round_trip::<BlockQ8_K>(&x);
        for (xb, yb) in x.chunks_exact(QK_K).zip(y.chunks_exact(QK_K)) {
            let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
            let step = amax / 127.0;
            for (a, b) in xb.iter().zip(yb) {
                let ulps = 4.0 * f32::EPSILON * a.abs().max(b.abs());
                prop_assert!((a - b).abs() <= 0.5 * step * (1.0 + 1e-5) + ulps, "{a} vs {b}");
            }
        }
    }

    /// Q6_K: quants of sub-block `j` are `round(x / (d sc_j))` clamped to `-32..=31`, where
    /// `d sc_j` is about the sub-block's `amax_j / 32` and at most the super-block's
    /// `amax / 31` (the scale search stays within `nmax +- 0.9`, the 8-bit `sc_j` within 1/256
    /// of it). Rounding costs half a step; the clamp at 31 (the value of largest magnitude
    /// maps to -32, so only values of the other sign clamp) costs at most another half, so the
    /// error is at most `amax / 31`. Small super-blocks have an f16 `d` in the subnormal range,
    /// rounded by up to `2^-25` absolute, which moves a value by up to `|sc q| 2^-25 <= 2^-13`.
    #[test]
    fn q6_k_round_trip(seed in any::<u64>(), nb in 1usize..=4) {
        let x = random_row(&mut Rng(seed), nb);
        let y = round_trip::<BlockQ6_K>(&x);
        for (xb, yb) in x.chunks_exact(QK_K).zip(y.chunks_exact(QK_K)) {
            let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (a, b) in xb.iter().zip(yb) {
                let bound = amax / 31.0 + 2f32.powi(-13);
                prop_assert!((a - b).abs() <= bound, "{a} vs {b} (amax {amax})");
            }
        }
    }

    /// Q4_K: each sub-block of 32 is quantized to 16 levels between its minimum and maximum,
    /// with 6-bit scales and mins relative to the super-block's largest: the error is at most
    /// one level of the super-block's widest sub-block, `range / 15`, plus the rounding of the
    /// 6-bit min (`max_min / 126`); asserted as `(max - min) / 15 + max_min / 63`, plus the
    /// f16 rounding of `d` and `dmin` in their subnormal range (`2^-25` absolute, times
    /// `sc q + m <= 63 * 15 + 63`: below `2^-15`).
    #[test]
    fn q4_k_round_trip(seed in any::<u64>(), nb in 1usize..=4) {
        let x = random_row(&mut Rng(seed), nb);
        let y = round_trip::<BlockQ4_K>(&x);
        for (xb, yb) in x.chunks_exact(QK_K).zip(y.chunks_exact(QK_K)) {
            let (mut range, mut max_min) = (0f32, 0f32);
            for s in xb.chunks_exact(32) {
                let lo = s.iter().fold(0f32, |m, &v| m.min(v));
                let hi = s.iter().fold(f32::MIN, |m, &v| m.max(v));
                range = range.max(hi - lo);
                max_min = max_min.max(-lo);
            }
            let bound = range / 15.0 + max_min / 63.0 + 2f32.powi(-15);
            for (a, b) in xb.iter().zip(yb) {
                prop_assert!((a - b).abs() <= bound, "{a} vs {b} (bound {bound})");
            }
        }
    }
}

/// Q4_K's quantizer maps the largest sub-block scale to the top 6-bit code, 63, and
/// `scale_min_k4` reads back what it packed.
#[test]
fn q4_k_largest_scale_is_63() {
    let mut rng = Rng(11);
    let x = random_row(&mut rng, 8);
    let mut q = vec![bytemuck::Zeroable::zeroed(); 8];
    BlockQ4_K::quantize(&x, &mut q);
    for b in &q {
        let top = (0..8).map(|j| scale_min_k4(j, &b.scales).0).max();
        assert_eq!(top, Some(63), "{b:?}");
    }
}

/// FNV-1a (64-bit) of a byte string: a compact fingerprint of golden outputs.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// Sixteen super-blocks of deterministic inputs, one of eight kinds each (plain, offset with a
/// tiny spread, cubed, one third zero, one sub-block only, all zero, non-negative, and scaled
/// by 2^-14 so that the f16 scales are subnormal), computed with f32 operations that numpy
/// performs identically.
fn golden_input() -> Vec<f32> {
    let mut x = Vec::with_capacity(16 * QK_K);
    for i in 0..16 * QK_K {
        let v = (((i * 7919) % 2003) as f32 - 1001.0) / 137.0;
        x.push(match (i / QK_K) % 8 {
            0 => v,
            1 => v * 1e-3 + 0.5,
            2 => v * v * v,
            3 if i % 3 == 0 => 0.0,
            4 if i % QK_K >= 32 => 0.0,
            5 => 0.0,
            6 => v.abs(),
            7 => v * 2f32.powi(-14),
            _ => v,
        });
    }
    x
}

/// Four super-blocks of deterministic bytes, with the scale fields (`d` at `d_at`, `dmin` at
/// `dmin_at`) set to 0.01234, -0.75, 2e-6 (an f16 subnormal), 1.0 and 0.5, -0.002, 1e-7,
/// 0.25.
fn golden_blocks<B: Block>(d_at: usize, dmin_at: Option<usize>, f32_scale: bool) -> Vec<B> {
    let size = std::mem::size_of::<B>();
    let mut bytes: Vec<u8> = (0..4 * size)
        .map(|j| ((j * 131 + 17) ^ (j >> 3)) as u8)
        .collect();
    let ds = [0.01234f32, -0.75, 2.0e-6, 1.0];
    let dmins = [0.5f32, -0.002, 1.0e-7, 0.25];
    for (k, b) in bytes.chunks_exact_mut(size).enumerate() {
        if f32_scale {
            b[d_at..d_at + 4].copy_from_slice(&ds[k].to_le_bytes());
        } else {
            b[d_at..d_at + 2].copy_from_slice(&f16::from_f32(ds[k]).to_le_bytes());
        }
        if let Some(m) = dmin_at {
            b[m..m + 2].copy_from_slice(&f16::from_f32(dmins[k]).to_le_bytes());
        }
    }
    let mut blocks = vec![bytemuck::Zeroable::zeroed(); 4];
    bytemuck::cast_slice_mut::<B, u8>(&mut blocks).copy_from_slice(&bytes);
    blocks
}

fn golden_dequantize<B: Block>(d_at: usize, dmin_at: Option<usize>, f32_scale: bool) -> u64 {
    let blocks = golden_blocks::<B>(d_at, dmin_at, f32_scale);
    let mut y = vec![0f32; 4 * QK_K];
    B::dequantize(&blocks, &mut y);
    fnv1a(bytemuck::cast_slice(&y))
}

fn golden_quantize<Q: Quantize>() -> u64 {
    let x = golden_input();
    let mut q = vec![bytemuck::Zeroable::zeroed(); 16];
    Q::quantize(&x, &mut q);
    fnv1a(bytemuck::cast_slice(&q))
}

/// Fingerprints of llama.cpp's own outputs (libggml-base of llama-cpp-python 0.3.36, through
/// `quantize_row_*_ref` and `dequantize_row_*` on the inputs above): ours must be the same
/// bytes. Any difference in rounding, order of float operations or layout changes them.
#[test]
fn quantizers_match_llama_cpp_bytes() {
    assert_eq!(
        golden_quantize::<BlockQ4_K>(),
        0xb0d1_755d_e07c_0524,
        "Q4_K"
    );
    assert_eq!(
        golden_quantize::<BlockQ6_K>(),
        0xd21b_5ebb_2b86_c308,
        "Q6_K"
    );
    assert_eq!(
        golden_quantize::<BlockQ8_K>(),
        0xa343_e59b_1f75_b15a,
        "Q8_K"
    );
}

/// See [`quantizers_match_llama_cpp_bytes`].
#[test]
fn dequantizers_match_llama_cpp_bytes() {
    let cases = [
        (
            "Q2_K",
            golden_dequantize::<BlockQ2_K>(80, Some(82), false),
            0x559f_0e10_44c2_3883,
        ),
        (
            "Q3_K",
            golden_dequantize::<BlockQ3_K>(108, None, false),
            0x2d01_06c4_ee4f_88f0,
        ),
        (
            "Q4_K",
            golden_dequantize::<BlockQ4_K>(0, Some(2), false),
            0x8aaf_cff0_e238_1320,
        ),
        (
            "Q5_K",
            golden_dequantize::<BlockQ5_K>(0, Some(2), false),
            0xf3f9_e061_226d_f6b3,
        ),
        (
            "Q6_K",
            golden_dequantize::<BlockQ6_K>(208, None, false),
            0xfc9e_124e_1261_3db3,
        ),
        (
            "Q8_K",
            golden_dequantize::<BlockQ8_K>(0, None, true),
            0x50b0_af8d_fefa_e8f2,
        ),
        (
            "IQ4_XS",
            golden_dequantize::<BlockIQ4_XS>(0, None, false),
            0xac56_b9ef_b1a1_f66c,
        ),
    ];
    for (name, ours, llama_cpp) in cases {
        assert_eq!(ours, llama_cpp, "{name}");
    }
}

/// Values that stress the Q8_K quantizer: exact ties at the rounding step (`k + 0.5` times the
/// scale), both signs of the largest magnitude (the first one sets the scale's sign), zeros,
/// subnormals, huge values, infinities and NaNs.
fn q8_k_stress_row(rng: &mut Rng, nb: usize) -> Vec<f32> {
    let mut x = Vec::with_capacity(nb * QK_K);
    for _ in 0..nb {
        let amax = 2f32.powi(rng.int(-20, 20));
        let kind = rng.int(0, 7);
        for i in 0..QK_K {
            let v = match rng.int(0, 15) {
                0 => (rng.int(-127, 126) as f32 + 0.5) * amax / 127.0,
                1 => amax,
                2 => -amax,
                3 => 0.0,
                4 => -0.0,
                5 => f32::from_bits(rng.next_u64() as u32 & 0x007f_ffff),
                _ => rng.normal() * amax / 3.0,
            };
            x.push(match kind {
                0 if i == 37 => f32::NAN,
                1 if i == 200 => f32::INFINITY,
                2 if i % 5 == 0 => f32::NEG_INFINITY,
                3 => 0.0,
                4 => f32::MAX * rng.normal().signum(),
                _ => v,
            });
        }
    }
    x
}

proptest! {
    /// `BlockQ8_K::quantize` (SIMD where the active kernel set has it) writes exactly the
    /// bytes of the reference `quantize_ref`, for every input, special values included.
    #[test]
    fn q8_k_quantize_is_bit_exact(seed in any::<u64>(), nb in 0usize..=4) {
        let x = q8_k_stress_row(&mut Rng(seed), nb);
        let mut fast = vec![bytemuck::Zeroable::zeroed(); nb];
        let mut reference = vec![bytemuck::Zeroable::zeroed(); nb];
        BlockQ8_K::quantize(&x, &mut fast);
        ziglama_tensor::formats::q8_k::quantize_ref(&x, &mut reference);
        let (f, r): (&[u8], &[u8]) = (bytemuck::cast_slice(&fast), bytemuck::cast_slice(&reference));
        prop_assert_eq!(f, r);
    }
}

// ---------------------------------------------------------------------------------------
// llama.cpp's x86 summation orders, checked against llama.cpp itself.
//
// `tests/data/kquant_ggml/case*.bin` are answers of llama.cpp's CPU backend built for an
// AVX-512 (Zen 5) machine, called directly: random Q4_K and Q6_K weights and f32 activation
// rows; the activations quantized by `quantize_row_q8_K`; the products of the Q4_K weights
// repacked to `q4_K_8x8` by `ggml_gemm_q4_K_8x8_q8_K` (activation rows 0..4, quantized by
// `ggml_quantize_mat_q8_K_4x8`) and `ggml_gemv_q4_K_8x8_q8_K` (every row), the products of the
// plain weights by `ggml_vec_dot_q4_K_q8_K` and `ggml_vec_dot_q6_K_q8_K`. Layout (little
// endian): `nb, nc, nr` (u32), Q4_K weights (`nc` rows of `nb` blocks), Q6_K weights (same
// shape), activations (`nr` rows of `256 nb` f32), their Q8_K blocks, then f32 outputs
// `[row][col]`: gemm (`nr - nr % 4` rows), gemv, Q4_K vec_dot, Q6_K vec_dot, and `ggml_mul_mat`
// of the plain (not repacked) Q4_K and Q6_K weights through a graph (`nr` rows each), which is
// `ggml_vec_dot_*` for fewer than 8 activation rows and the tiled k-quant path for 8 or more.

struct GgmlCase {
    nc: usize,
    nr: usize,
    q4k: Vec<BlockQ4_K>,
    q6k: Vec<BlockQ6_K>,
    x: Vec<f32>,
    xq: Vec<BlockQ8_K>,
    gemm: Vec<f32>,
    gemv: Vec<f32>,
    q4k_vec_dot: Vec<f32>,
    q6k_vec_dot: Vec<f32>,
    q4k_mul_mat: Vec<f32>,
    q6k_mul_mat: Vec<f32>,
}

fn ggml_cases() -> Vec<GgmlCase> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/kquant_ggml");
    (1..=4)
        .map(|i| {
            let bytes = std::fs::read(format!("{dir}/case{i}.bin")).unwrap();
            let mut at = 0;
            let mut take = |n: usize| {
                at += n;
                &bytes[at - n..at]
            };
            let hdr: Vec<usize> = take(12)
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize)
                .collect();
            let (nb, nc, nr) = (hdr[0], hdr[1], hdr[2]);
            fn pods<T: bytemuck::Pod>(b: &[u8]) -> Vec<T> {
                b.chunks_exact(std::mem::size_of::<T>())
                    .map(bytemuck::pod_read_unaligned)
                    .collect()
            }
            let q4k = pods(take(nc * nb * 144));
            let q6k = pods(take(nc * nb * 210));
            let x = pods(take(nr * nb * 256 * 4));
            let xq = pods(take(nr * nb * 292));
            let g4 = nr - nr % 4;
            GgmlCase {
                nc,
                nr,
                q4k,
                q6k,
                x,
                xq,
                gemm: pods(take(g4 * nc * 4)),
                gemv: pods(take(nr * nc * 4)),
                q4k_vec_dot: pods(take(nr * nc * 4)),
                q6k_vec_dot: pods(take(nr * nc * 4)),
                q4k_mul_mat: pods(take(nr * nc * 4)),
                q6k_mul_mat: pods(take(nr * nc * 4)),
            }
        })
        .collect()
}

fn assert_bits(what: &str, got: f32, want: f32) {
    assert_eq!(
        got.to_bits(),
        want.to_bits(),
        "{what}: {got} vs llama.cpp {want}"
    );
}

#[test]
fn ggml_order_models_equal_llama_cpp() {
    use ziglama_tensor::formats::{q4_k, q6_k};
    for (ci, c) in ggml_cases().iter().enumerate() {
        let nb = c.xq.len() / c.nr;
        let mut xq = vec![bytemuck::Zeroable::zeroed(); c.xq.len()];
        BlockQ8_K::quantize(&c.x, &mut xq);
        assert_eq!(xq, c.xq, "case {ci}: Q8_K quants");
        for r in 0..c.nr {
            let a = &c.xq[r * nb..(r + 1) * nb];
            for col in 0..c.nc {
                let w4 = &c.q4k[col * nb..(col + 1) * nb];
                let w6 = &c.q6k[col * nb..(col + 1) * nb];
                let at = format!("case {ci} row {r} col {col}");
                let o = r * c.nc + col;
                assert_bits(&at, q4_k::vec_dot_ggml_gemv(w4, a), c.gemv[o]);
                assert_bits(&at, q4_k::vec_dot_ggml_x86(w4, a), c.q4k_vec_dot[o]);
                assert_bits(&at, q6_k::vec_dot_ggml_x86(w6, a), c.q6k_vec_dot[o]);
                if r < c.nr - c.nr % 4 {
                    assert_bits(&at, q4_k::vec_dot_ggml_gemm(w4, a), c.gemm[o]);
                }
                if q6_k::x86_uses_tiled(c.nr) {
                    assert_bits(&at, q4_k::vec_dot_ggml_tiled(w4, a), c.q4k_mul_mat[o]);
                    assert_bits(&at, q6_k::vec_dot_ggml_tiled(w6, a), c.q6k_mul_mat[o]);
                } else {
                    assert_bits(&at, q4_k::vec_dot_ggml_x86(w4, a), c.q4k_mul_mat[o]);
                    assert_bits(&at, q6_k::vec_dot_ggml_x86(w6, a), c.q6k_mul_mat[o]);
                }
            }
        }
    }
}

#[test]
fn ggml_order_kernels_equal_llama_cpp() {
    use ziglama_tensor::formats::q4_k::{x86_kernel, X86Order};
    for (ci, c) in ggml_cases().iter().enumerate() {
        let nb = c.xq.len() / c.nr;
        for isa in Isa::all_supported() {
            let gemv = x86_kernel(X86Order::Gemv, isa);
            let gemm = x86_kernel(X86Order::Gemm, isa);
            let vec_dot = x86_kernel(X86Order::VecDot, isa);
            let q6 = DotKernel::<BlockQ6_K>::select(isa);
            let q6_tiled = ziglama_tensor::formats::q6_k::x86_tiled_kernel(isa);
            let q4_tiled = x86_kernel(X86Order::Tiled, isa);
            if gemv.isa() == Isa::Scalar {
                continue;
            }
            for r in 0..c.nr {
                let a = &c.xq[r * nb..(r + 1) * nb];
                for col in 0..c.nc {
                    let w4 = &c.q4k[col * nb..(col + 1) * nb];
                    let w6 = &c.q6k[col * nb..(col + 1) * nb];
                    let at = format!("case {ci} {isa} row {r} col {col}");
                    let o = r * c.nc + col;
                    assert_bits(&at, gemv.call(w4, a), c.gemv[o]);
                    assert_bits(&at, vec_dot.call(w4, a), c.q4k_vec_dot[o]);
                    assert_bits(&at, q6.call(w6, a), c.q6k_vec_dot[o]);
                    if r < c.nr - c.nr % 4 {
                        assert_bits(&at, gemm.call(w4, a), c.gemm[o]);
                    }
                    if c.nr >= 8 {
                        assert_bits(&at, q6_tiled.call(w6, a), c.q6k_mul_mat[o]);
                        assert_bits(&at, q4_tiled.call(w4, a), c.q4k_mul_mat[o]);
                    }
                }
            }
        }
    }
}

/// An f16 scale from anywhere in its range: ordinary, large (products near the f32 limit
/// for large activation scales), subnormal, zero, the extremes, either sign.
fn extreme_f16(rng: &mut Rng) -> f16 {
    let v = match rng.int(0, 6) {
        0 | 1 => rng.normal(),
        2 => rng.normal() * 1e4,
        3 => f16::from_bits(rng.int(1, 0x3ff) as u16).to_f32(),
        4 => 0.0,
        5 => 65504.0,
        _ => rng.normal() * 1e-3,
    };
    f16::from_f32(if rng.int(0, 1) == 0 { v } else { -v })
}

/// A Q8_K activation block with quants over the full range (or `-127..=127`) and a scale
/// from 1e-30 to 1e30.
fn extreme_activation(rng: &mut Rng) -> BlockQ8_K {
    let max = if rng.int(0, 3) == 0 { 2 } else { 127 };
    let mut b = activation(rng, max);
    b.d = rng.normal() * 10f32.powi(rng.int(-30, 30));
    b
}

/// Equal bits, or both NaN (an overflow to infinity of opposite signs in the sum).
fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Checks `kernel` (single-row, four-row and, if it has one, tile calls) against the scalar
/// order `model` on four random weight rows and four activation rows of `nb` blocks, the
/// rows starting `skip` blocks into their buffers.
fn check_order<W: Copy + VecDot<Activation = BlockQ8_K>>(
    what: &str,
    kernel: DotKernel<W>,
    model: fn(&[W], &[BlockQ8_K]) -> f32,
    rows: &[Vec<W>],
    acts: &[Vec<BlockQ8_K>],
    skip: usize,
) {
    let w: [&[W]; 4] = std::array::from_fn(|r| &rows[r][skip..]);
    let a: [&[BlockQ8_K]; 4] = std::array::from_fn(|c| &acts[c][skip..]);
    for (c, a) in a.iter().enumerate() {
        let four = kernel.call4(w, a);
        for (r, w) in w.iter().enumerate() {
            let want = model(w, a);
            let got = kernel.call(w, a);
            assert!(
                same(got, want),
                "{what} {}: row {r} act {c}: {got} vs model {want}",
                kernel.name()
            );
            assert!(
                same(four[r], want),
                "{what} {} call4: row {r} act {c}: {} vs model {want}",
                kernel.name(),
                four[r]
            );
        }
    }
    let tile = kernel.call_tile(w, a);
    for (r, w) in w.iter().enumerate() {
        for (c, a) in a.iter().enumerate() {
            let want = model(w, a);
            assert!(
                same(tile[r][c], want),
                "{what} {} tile: row {r} act {c}: {} vs model {want}",
                kernel.name(),
                tile[r][c]
            );
        }
    }
}

/// A scalar model of one of llama.cpp's Q4_K orders.
type Q4kModel = fn(&[BlockQ4_K], &[BlockQ8_K]) -> f32;

fn random_rows<W>(rng: &mut Rng, n: usize, f: impl Fn(&mut Rng) -> W) -> Vec<Vec<W>> {
    (0..4).map(|_| (0..n).map(|_| f(rng)).collect()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every Q4_K kernel this CPU runs equals the scalar model of llama.cpp's order it
    /// follows, bit for bit: the attached kernels (`DotKernel::variants`, `select`) the
    /// repacked matrix-vector order, and `x86_kernel` each of the three orders.
    #[test]
    fn q4_k_kernels_follow_ggml_orders(seed in any::<u64>(), nb in counts(), skip in 0usize..=2) {
        use ziglama_tensor::formats::q4_k::{self, x86_kernel, X86Order};
        let mut rng = Rng(seed);
        let rows = random_rows(&mut rng, nb + skip, |rng| {
            let mut b = BlockQ4_K::random(rng);
            (b.d, b.dmin) = (extreme_f16(rng), extreme_f16(rng));
            b
        });
        let acts = random_rows(&mut rng, nb + skip, extreme_activation);
        for (_, k) in kernels::<BlockQ4_K>().into_iter().filter(|(_, k)| k.isa() != Isa::Scalar) {
            check_order("Q4_K attached", k, q4_k::vec_dot_ggml_gemv, &rows, &acts, skip);
        }
        let orders: [(X86Order, Q4kModel); 4] = [
            (X86Order::Gemv, q4_k::vec_dot_ggml_gemv),
            (X86Order::Gemm, q4_k::vec_dot_ggml_gemm),
            (X86Order::VecDot, q4_k::vec_dot_ggml_x86),
            (X86Order::Tiled, q4_k::vec_dot_ggml_tiled),
        ];
        for isa in Isa::all_supported() {
            for (order, model) in orders {
                let k = x86_kernel(order, isa);
                if k.isa() != Isa::Scalar {
                    check_order(&format!("Q4_K {order:?} {isa}"), k, model, &rows, &acts, skip);
                }
            }
        }
    }

    /// Every Q5_K kernel this CPU runs equals the scalar model of llama.cpp's x86 order, bit
    /// for bit.
    #[test]
    fn q5_k_kernels_follow_ggml_order(seed in any::<u64>(), nb in counts(), skip in 0usize..=2) {
        let mut rng = Rng(seed);
        let rows = random_rows(&mut rng, nb + skip, |rng| {
            let mut b = BlockQ5_K::random(rng);
            (b.d, b.dmin) = (extreme_f16(rng), extreme_f16(rng));
            b
        });
        let acts = random_rows(&mut rng, nb + skip, extreme_activation);
        for (_, k) in kernels::<BlockQ5_K>().into_iter().filter(|(_, k)| k.isa() != Isa::Scalar) {
            check_order("Q5_K", k, ziglama_tensor::formats::q4_k::vec_dot_q5_k_ggml_x86, &rows, &acts, skip);
        }
    }

    /// Every Q6_K kernel this CPU runs equals the scalar model of llama.cpp's x86 order, bit
    /// for bit.
    #[test]
    fn q6_k_kernels_follow_ggml_order(seed in any::<u64>(), nb in counts(), skip in 0usize..=2) {
        let mut rng = Rng(seed);
        let rows = random_rows(&mut rng, nb + skip, |rng| {
            let mut b = BlockQ6_K::random(rng);
            b.d = extreme_f16(rng);
            b
        });
        let acts = random_rows(&mut rng, nb + skip, extreme_activation);
        for (_, k) in kernels::<BlockQ6_K>().into_iter().filter(|(_, k)| k.isa() != Isa::Scalar) {
            check_order("Q6_K", k, ziglama_tensor::formats::q6_k::vec_dot_ggml_x86, &rows, &acts, skip);
        }
        for isa in Isa::all_supported() {
            let k = ziglama_tensor::formats::q6_k::x86_tiled_kernel(isa);
            if k.isa() != Isa::Scalar {
                check_order("Q6_K tiled", k, ziglama_tensor::formats::q6_k::vec_dot_ggml_tiled, &rows, &acts, skip);
            }
        }
    }
}

/// The order selection follows llama.cpp's: repacked (multiple of 8 rows) tensors use the
/// matrix-matrix order for the activation rows in whole groups of four of a batch of more
/// than three, the matrix-vector order otherwise; other tensors `ggml_vec_dot_q4_K_q8_K`.
#[test]
fn q4_k_order_selection() {
    use ziglama_tensor::formats::q4_k::X86Order::{self, *};
    let orders = |n_out, n| {
        (0..n)
            .map(|r| X86Order::for_output(n_out, r, n))
            .collect::<Vec<_>>()
    };
    assert_eq!(orders(640, 1), [Gemv]);
    assert_eq!(orders(640, 3), [Gemv; 3]);
    assert_eq!(orders(640, 4), [Gemm; 4]);
    assert_eq!(orders(640, 6), [Gemm, Gemm, Gemm, Gemm, Gemv, Gemv]);
    assert_eq!(orders(100, 6), [VecDot; 6]);
    assert_eq!(orders(100, 8), [Tiled; 8]);
    assert_eq!(
        orders(640, 9),
        [Gemm, Gemm, Gemm, Gemm, Gemm, Gemm, Gemm, Gemm, Gemv]
    );
}

/// Q5_K against llama.cpp's `ggml_vec_dot_q5_K_q8_K` (`tests/data/kquant_ggml/q5k_case*.bin`:
/// `nb, nc, nr` (u32), Q5_K weights, Q8_K activations, f32 outputs `[row][col]`): the scalar
/// model and every kernel this CPU runs, bit for bit.
#[test]
fn q5_k_equals_llama_cpp() {
    use ziglama_tensor::formats::q4_k::vec_dot_q5_k_ggml_x86;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/kquant_ggml");
    for i in 1..=4 {
        let bytes = std::fs::read(format!("{dir}/q5k_case{i}.bin")).unwrap();
        let u = |k: usize| u32::from_le_bytes(bytes[4 * k..4 * k + 4].try_into().unwrap()) as usize;
        let (nb, nc, nr) = (u(0), u(1), u(2));
        let (w_at, a_at) = (12, 12 + nc * nb * 176);
        let o_at = a_at + nr * nb * 292;
        let w: Vec<BlockQ5_K> = bytes[w_at..a_at]
            .chunks_exact(176)
            .map(bytemuck::pod_read_unaligned)
            .collect();
        let a: Vec<BlockQ8_K> = bytes[a_at..o_at]
            .chunks_exact(292)
            .map(bytemuck::pod_read_unaligned)
            .collect();
        let out: Vec<f32> = bytes[o_at..]
            .chunks_exact(4)
            .map(bytemuck::pod_read_unaligned)
            .collect();
        for r in 0..nr {
            for c in 0..nc {
                let (wr, ar) = (&w[c * nb..(c + 1) * nb], &a[r * nb..(r + 1) * nb]);
                let at = format!("Q5_K case {i} row {r} col {c}");
                assert_bits(&at, vec_dot_q5_k_ggml_x86(wr, ar), out[r * nc + c]);
                for (name, k) in kernels::<BlockQ5_K>() {
                    if k.isa() != Isa::Scalar {
                        assert_bits(&format!("{at} {name}"), k.call(wr, ar), out[r * nc + c]);
                    }
                }
            }
        }
    }
}
