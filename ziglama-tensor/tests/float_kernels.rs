//! The SIMD float dot products (F32, F16, BF16) agree with the scalar reference on every
//! instruction set this CPU supports, for every length 0..=100 and some large ones, at
//! misaligned starting offsets.
//!
//! # The bound
//!
//! The reference computes each product exactly (f16 and bf16 products fit in f32; f32 products
//! are exact in f64) and sums in f64, so it is the exact sum `S` up to one final rounding to
//! f32. A kernel forms the products exactly too (f16/bf16 products fit in f32; f32 products are
//! fused into the add by FMA) and adds in f32: every element goes through at most
//! `n / 8 + 16` roundings of relative size `u = 2^-24` (a lane of the narrowest kernel
//! accumulates `n / 8` terms; tails, the accumulator merge and the horizontal reduction add
//! fewer than 16 more). The standard summation bound (Higham, *Accuracy and Stability of
//! Numerical Algorithms*, §4.2) then gives
//!
//! `|kernel - S| <= (n / 8 + 16) * u * sum |x_i y_i|`  (first order in `u`),
//!
//! and the reference is within `u * |S| <= u * sum |x_i y_i|` of `S`. The tests assert
//! `|kernel - reference| <= (n / 8 + 18) * u * sum |x_i y_i|`. Dropping, duplicating or
//! misaligning one element changes the result by about `|x_i y_i|`, far outside this bound
//! for the lengths tested; exact integer cases must come out exactly.

use half::{bf16, f16};
use proptest::prelude::*;
use ziglama_tensor::formats::{DotKernel, VecDot};
use ziglama_tensor::Isa;

/// A small deterministic generator (SplitMix64), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [-1, 1) times a scale of 2^e, e in -8..8, so magnitudes vary widely.
    fn value(&mut self) -> f32 {
        let r = self.next_u64();
        let u = (r >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
        let e = ((r >> 8) & 15) as i32 - 8;
        u * 2f32.powi(e)
    }
}

/// A float element type under test.
trait Elem: VecDot<Activation = Self> + Copy + std::fmt::Debug {
    fn from_f32(v: f32) -> Self;
    fn to_f64(self) -> f64;
}

impl Elem for f32 {
    fn from_f32(v: f32) -> Self {
        v
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl Elem for f16 {
    fn from_f32(v: f32) -> Self {
        f16::from_f32(v)
    }
    fn to_f64(self) -> f64 {
        self.to_f64()
    }
}

impl Elem for bf16 {
    fn from_f32(v: f32) -> Self {
        bf16::from_f32(v)
    }
    fn to_f64(self) -> f64 {
        self.to_f64()
    }
}

/// The bound of the module docs for `n` elements.
fn bound<T: Elem>(x: &[T], y: &[T]) -> f64 {
    let abs: f64 = x
        .iter()
        .zip(y)
        .map(|(a, b)| (a.to_f64() * b.to_f64()).abs())
        .sum();
    (x.len() as f64 / 8.0 + 18.0) * 2f64.powi(-24) * abs
}

/// Checks every supported kernel set on `x`, `y` against the scalar reference.
fn check<T: Elem>(x: &[T], y: &[T], what: &str) -> Result<(), String> {
    let reference = T::vec_dot(x, y);
    let b = bound(x, y);
    for isa in Isa::all_supported() {
        let k = DotKernel::<T>::select(isa);
        let got = k.call(x, y);
        let err = (got as f64 - reference as f64).abs();
        if err > b || got.is_nan() != reference.is_nan() {
            return Err(format!(
                "{what}: {:?} n={} kernel {} (asked {isa}): got {got}, reference {reference}, \
                 error {err:e} > bound {b:e}",
                std::any::type_name::<T>(),
                x.len(),
                k.isa(),
            ));
        }
    }
    Ok(())
}

/// Lengths 0..=100 and some large ones, each at starting offsets 0, 1 and 3 of a buffer, and
/// a few lengths at every offset 0..64 (so loads are misaligned relative to the vector width
/// and the cache line in every way).
fn lengths_and_offsets<T: Elem>(seed: u64) {
    let mut rng = Rng(seed);
    let lengths = (0..=100usize).chain([127, 128, 129, 255, 1000, 4096, 4096 + 37, 100_003]);
    for n in lengths {
        // Every offset modulo a cache line for a few lengths (the AVX-512 kernels peel a head
        // up to the weight's next 64-byte boundary), three offsets for the rest.
        let offsets: Vec<usize> = if [5, 40, 200, 4096].contains(&n) {
            (0..64).collect()
        } else {
            vec![0, 1, 3]
        };
        for off in offsets {
            let xs: Vec<T> = (0..n + off).map(|_| T::from_f32(rng.value())).collect();
            let ys: Vec<T> = (0..n + off).map(|_| T::from_f32(rng.value())).collect();
            check(&xs[off..], &ys[off..], &format!("offset {off}")).unwrap();
        }
    }
}

#[test]
fn f32_kernels_match_the_reference_for_all_lengths_and_offsets() {
    lengths_and_offsets::<f32>(1);
}

#[test]
fn f16_kernels_match_the_reference_for_all_lengths_and_offsets() {
    lengths_and_offsets::<f16>(2);
}

#[test]
fn bf16_kernels_match_the_reference_for_all_lengths_and_offsets() {
    lengths_and_offsets::<bf16>(3);
}

/// Small integers: every partial sum is exact in f32, so every kernel must agree exactly,
/// and a dropped or doubled element (of value at least 1) shows.
fn exact_on_integers<T: Elem>() {
    for n in (0..=130usize).chain([1000, 4099]) {
        let x: Vec<T> = (0..n).map(|i| T::from_f32((i % 7) as f32 - 3.0)).collect();
        let y: Vec<T> = (0..n).map(|i| T::from_f32((i % 5) as f32 + 1.0)).collect();
        let exact: f64 = x.iter().zip(&y).map(|(a, b)| a.to_f64() * b.to_f64()).sum();
        for isa in Isa::all_supported() {
            let k = DotKernel::<T>::select(isa);
            assert_eq!(k.call(&x, &y) as f64, exact, "n={n} isa={}", k.isa());
        }
    }
}

#[test]
fn kernels_are_exact_on_small_integers() {
    exact_on_integers::<f32>();
    exact_on_integers::<f16>();
    exact_on_integers::<bf16>();
}

#[test]
fn every_float_format_has_a_simd_kernel_where_the_cpu_has_simd() {
    for isa in Isa::all_supported() {
        if cfg!(target_arch = "x86_64") && isa != Isa::Scalar {
            assert_eq!(DotKernel::<f32>::select(isa).isa(), isa);
            assert_eq!(DotKernel::<f16>::select(isa).isa(), isa);
            assert_eq!(DotKernel::<bf16>::select(isa).isa(), isa);
        }
    }
}

#[test]
fn nan_and_infinity_propagate() {
    for n in [1usize, 7, 33, 100] {
        let mut x = vec![1.0f32; n];
        let y = vec![1.0f32; n];
        x[n - 1] = f32::NAN;
        check(&x, &y, "nan").unwrap();
        x[n - 1] = f32::INFINITY;
        for isa in Isa::all_supported() {
            assert_eq!(DotKernel::<f32>::select(isa).call(&x, &y), f32::INFINITY);
        }
    }
}

/// Both bf16 kernels of the AVX-512 set, called directly: the AVX512-BF16 one (`vdpbf16ps`)
/// is hidden behind run-time detection in `dot_bf16`, so test it and the shift one apart.
#[cfg(target_arch = "x86_64")]
#[test]
fn both_avx512_bf16_kernels_match_the_reference() {
    use ziglama_tensor::simd::x86_64::avx512::float::{dot_bf16_dp, dot_bf16_shift};
    if !Isa::Avx512.is_supported() {
        return;
    }
    let dp = std::arch::is_x86_feature_detected!("avx512bf16");
    let mut rng = Rng(4);
    for n in (0..=200usize).chain([4096, 4096 + 31]) {
        let x: Vec<bf16> = (0..n + 1).map(|_| bf16::from_f32(rng.value())).collect();
        let y: Vec<bf16> = (0..n + 1).map(|_| bf16::from_f32(rng.value())).collect();
        let (x, y) = (&x[1..], &y[1..]);
        let reference = bf16::vec_dot(x, y) as f64;
        let b = bound(x, y);
        // SAFETY: AVX-512 F/BW/VL support was checked above.
        let shift = unsafe { dot_bf16_shift(x, y) } as f64;
        assert!((shift - reference).abs() <= b, "shift n={n}");
        if dp {
            // SAFETY: AVX512-BF16 was detected, on top of AVX-512 F/BW/VL.
            let got = unsafe { dot_bf16_dp(x, y) } as f64;
            assert!((got - reference).abs() <= b, "vdpbf16ps n={n}");
        }
    }
}

/// The vectorized f16 conversions of the F16 format agree with the scalar ones bit for bit,
/// on a sweep of f32 bit patterns (every sign, exponent and rounding case, subnormals,
/// infinities and NaNs) at odd lengths.
#[test]
fn f16_quantize_and_dequantize_match_elementwise_conversion() {
    use ziglama_tensor::formats::{Block, Quantize};
    let mut bits: Vec<u32> = (0..=u32::MAX).step_by(65_537).collect();
    bits.extend([
        0,
        0x8000_0000,
        0x7f80_0000,
        0xff80_0000,
        0x7fc0_0000,
        0x7f80_0001,
    ]);
    // Exact ties between two f16 values (round half to even) around 1.0 and in the subnormals.
    bits.extend([
        0x3f80_1000,
        0x3f80_3000,
        0x3380_0000,
        0x3300_0000,
        0x3340_0000,
    ]);
    let x: Vec<f32> = bits.iter().map(|&b| f32::from_bits(b)).collect();
    for len in [x.len(), x.len() - 3, 7] {
        let x = &x[..len];
        let mut q = vec![f16::ZERO; len];
        f16::quantize(x, &mut q);
        for (v, h) in x.iter().zip(&q) {
            assert_eq!(
                h.to_bits(),
                f16::from_f32(*v).to_bits(),
                "{:#x}",
                v.to_bits()
            );
        }
        let mut back = vec![0f32; len];
        f16::dequantize(&q, &mut back);
        for (h, b) in q.iter().zip(&back) {
            assert_eq!(b.to_bits(), h.to_f32().to_bits(), "{:#x}", h.to_bits());
        }
    }
}

fn finite_f32() -> impl Strategy<Value = f32> {
    -1.0e6f32..1.0e6
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn f32_random_vectors(pairs in prop::collection::vec((finite_f32(), finite_f32()), 0..300),
                          off in 0usize..4) {
        let off = off.min(pairs.len());
        let (x, y): (Vec<f32>, Vec<f32>) = pairs.into_iter().unzip();
        prop_assert!(check(&x[off..], &y[off..], "proptest").is_ok(),
                     "{}", check(&x[off..], &y[off..], "proptest").unwrap_err());
    }

    #[test]
    fn f16_random_vectors(pairs in prop::collection::vec((-6.0e4f32..6.0e4, -1.0f32..1.0), 0..300),
                          off in 0usize..4) {
        let off = off.min(pairs.len());
        let x: Vec<f16> = pairs.iter().map(|p| f16::from_f32(p.0)).collect();
        let y: Vec<f16> = pairs.iter().map(|p| f16::from_f32(p.1)).collect();
        prop_assert!(check(&x[off..], &y[off..], "proptest").is_ok(),
                     "{}", check(&x[off..], &y[off..], "proptest").unwrap_err());
    }

    #[test]
    fn bf16_random_vectors(pairs in prop::collection::vec((finite_f32(), finite_f32()), 0..300),
                           off in 0usize..4) {
        let off = off.min(pairs.len());
        let x: Vec<bf16> = pairs.iter().map(|p| bf16::from_f32(p.0)).collect();
        let y: Vec<bf16> = pairs.iter().map(|p| bf16::from_f32(p.1)).collect();
        prop_assert!(check(&x[off..], &y[off..], "proptest").is_ok(),
                     "{}", check(&x[off..], &y[off..], "proptest").unwrap_err());
    }
}
