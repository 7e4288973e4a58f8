//! The SIMD dot products of the legacy block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL)
//! agree with the scalar reference on every kernel this CPU can run, for random blocks, block
//! counts 0..=3 and odd counts up to 67, at slice offsets that misalign the blocks relative to
//! 32 and 64 bytes; and the reference quantizers round-trip within their step size.
//!
//! # The bound
//!
//! Both the reference and the kernels compute each block's integer sum `sum_j q_j a_j`
//! exactly (kernels as several exact i32 partial sums below 2^24, so their conversion to f32
//! is exact too). What differs is only the f32 arithmetic on top: the reference forms each
//! block's term with one or two roundings (`sumi * d_w * d_a`, plus `m_w * s_a` for the
//! formats with a minimum) and adds the `nb` terms in block order; a kernel rounds
//! `d_w * d_a` once, fuses the multiplication into the addition (FMA) into one of up to 2 x 16
//! lanes, and reduces the lanes in a tree of at most 6 levels. Every partial term therefore
//! passes through at most `nb + 4` roundings in the reference and `nb / 2 + 10` in a kernel,
//! each of relative size `u = 2^-24`; the summation bound (Higham, *Accuracy and Stability of
//! Numerical Algorithms*, §4.2), applied to the sum of absolute partial terms
//!
//! `M = sum_b ( |d_w d_a| sum_j |q_j a_j| + |m_w s_a| )`,
//!
//! gives, to first order in `u`, `|kernel - reference| <= (2 nb + 16) * u * M` (with room to
//! spare). One wrong, dropped or duplicated quant moves the result by `|d_w d_a q_j a_j|`,
//! which for the block counts tested is far outside the bound; and with unit scales every
//! operation is exact, so there the kernels must equal the reference bit for bit.
//!
//! The activation quants span `-128..=127` except for the formats with signed weights (Q8_0,
//! IQ4_NL), where they span `-127..=127`: their AVX2 and AVX-512 BW kernels move the weight's
//! sign onto the activation, which cannot negate -128, and no Q8 quantizer (ggml's or ours)
//! produces -128 from finite values with a representable inverse scale (ggml-cpu's x86
//! activation quantizer writes -128 for NaN, infinities and blocks below ~2^-120, where ggml's
//! kernels compute the same wrong product by the same sign trick). The VNNI variants are exact
//! for -128 as well, which is tested.
//!
//! # ggml's order, bit for bit
//!
//! Beyond the bound, every x86 kernel (AVX2, AVX-512 BW, AVX-512 VNNI) must return exactly what
//! ggml's AVX2 `ggml_vec_dot_*` returns, which is what llama.cpp computes on x86 (see the
//! module documentation of `simd::x86_64::avx2::legacy`): [`Legacy::ggml`] is a scalar model
//! of that order (per block `d = f32(d_w) * f32(d_a)`; eight lanes, lane `l` the exact sum of
//! the products of elements `4l..4l + 4`; one accumulator updated by `fma` in block order;
//! `hsum_float_8`'s reduction; `fma`-accumulated `m_w s_a` added last; IQ4_NL's two
//! accumulators and scalar last block), and the kernels are compared with it bit for bit.
//!
//! The activation quantizers ggml-cpu runs on x86 (`quantize_row_q8_0`, `quantize_row_q8_1`:
//! `127 / amax`, round half to even) are checked against hashes of libggml-cpu's own output
//! on inputs built to land near rounding ties.

use half::f16;
use proptest::prelude::*;
use ziglama_tensor::formats::iq4_nl::KVALUES_IQ4NL;
use ziglama_tensor::formats::{
    BlockIQ4_NL, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, BlockQ8_1, DotKernel,
    Quantize, VecDot,
};
use ziglama_tensor::Isa;

const U: f64 = 1.0 / (1u64 << 24) as f64;

/// A weight format under test: how to read its integer quants and minimum term back, to size
/// the error bound.
trait Legacy: VecDot + std::fmt::Debug {
    /// `|d_w d_a| sum_j |q_j a_j| + |m_w s_a|` of one block pair.
    fn magnitude(w: &Self, a: &Self::Activation) -> f64;
    /// The dot product in the order of ggml's AVX2 kernel for this format, computed in scalar
    /// code (see the module documentation).
    fn ggml(w: &[Self], a: &[Self::Activation]) -> f32;
}

/// The eight lanes of ggml's per-block partial sums: lane `l` is the exact integer sum of
/// `q(j) * a_j` over `j` in `4l..4l + 4`, as f32.
fn lanes(q: impl Fn(usize) -> i32, a: &[i8; 32]) -> [f32; 8] {
    std::array::from_fn(|l| (4 * l..4 * l + 4).map(|j| q(j) * a[j] as i32).sum::<i32>() as f32)
}

/// ggml's `hsum_float_8`: high four lanes plus low four, lanes `0, 1` plus `2, 3`, then lane 0
/// plus lane 1.
fn hsum_float_8(v: [f32; 8]) -> f32 {
    let r: [f32; 4] = std::array::from_fn(|i| v[i + 4] + v[i]);
    (r[0] + r[2]) + (r[1] + r[3])
}

/// The `(m_w, s_a)` of a block pair, for the formats with a minimum.
type MinTerm<'a, W, A> = &'a dyn Fn(&W, &A) -> (f16, f16);

/// ggml's one-accumulator order: `acc = fma(f32(d_w) * f32(d_a), lanes, acc)` per block in
/// order, reduced by [`hsum_float_8`]; plus `summs = fma(m_w, s_a, summs)` per block, added
/// last (for formats without a minimum, `summs` stays 0 and is not added).
fn ggml_one_accumulator<W, A>(
    w: &[W],
    a: &[A],
    scales: impl Fn(&W, &A) -> (f16, f16),
    mins: Option<MinTerm<W, A>>,
    block_lanes: impl Fn(&W, &A) -> [f32; 8],
) -> f32 {
    let mut acc = [0f32; 8];
    let mut summs = 0f32;
    for (x, y) in w.iter().zip(a) {
        let (dw, da) = scales(x, y);
        let d = dw.to_f32() * da.to_f32();
        if let Some(mins) = mins {
            let (m, s) = mins(x, y);
            summs = m.to_f32().mul_add(s.to_f32(), summs);
        }
        let l = block_lanes(x, y);
        for (acc, l) in acc.iter_mut().zip(l) {
            *acc = d.mul_add(l, *acc);
        }
    }
    match mins {
        Some(_) => hsum_float_8(acc) + summs,
        None => hsum_float_8(acc),
    }
}

fn nibble(qs: &[u8; 16], j: usize) -> i32 {
    if j < 16 {
        (qs[j] & 0x0F) as i32
    } else {
        (qs[j - 16] >> 4) as i32
    }
}

fn fifth_bit(qh: &[u8; 4], j: usize) -> i32 {
    ((u32::from_le_bytes(*qh) >> j) & 1) as i32 * 16
}

fn abs_dot(q: impl Fn(usize) -> i32, a: &[i8; 32]) -> f64 {
    (0..32).map(|j| (q(j) * a[j] as i32).abs() as f64).sum()
}

fn dd(x: f16, y: f16) -> f64 {
    (x.to_f64() * y.to_f64()).abs()
}

impl Legacy for BlockQ4_0 {
    fn magnitude(w: &Self, a: &BlockQ8_0) -> f64 {
        dd(w.d, a.d) * abs_dot(|j| nibble(&w.qs, j) - 8, &a.qs)
    }
    fn ggml(w: &[Self], a: &[BlockQ8_0]) -> f32 {
        ggml_one_accumulator(
            w,
            a,
            |x, y| (x.d, y.d),
            None,
            |x, y| lanes(|j| nibble(&x.qs, j) - 8, &y.qs),
        )
    }
}

impl Legacy for BlockQ5_0 {
    fn magnitude(w: &Self, a: &BlockQ8_0) -> f64 {
        dd(w.d, a.d) * abs_dot(|j| nibble(&w.qs, j) + fifth_bit(&w.qh, j) - 16, &a.qs)
    }
    fn ggml(w: &[Self], a: &[BlockQ8_0]) -> f32 {
        ggml_one_accumulator(
            w,
            a,
            |x, y| (x.d, y.d),
            None,
            |x, y| lanes(|j| nibble(&x.qs, j) + fifth_bit(&x.qh, j) - 16, &y.qs),
        )
    }
}

impl Legacy for BlockQ4_1 {
    fn magnitude(w: &Self, a: &BlockQ8_1) -> f64 {
        dd(w.d, a.d) * abs_dot(|j| nibble(&w.qs, j), &a.qs) + dd(w.m, a.s)
    }
    fn ggml(w: &[Self], a: &[BlockQ8_1]) -> f32 {
        ggml_one_accumulator(
            w,
            a,
            |x, y| (x.d, y.d),
            Some(&|x: &Self, y: &BlockQ8_1| (x.m, y.s)),
            |x, y| lanes(|j| nibble(&x.qs, j), &y.qs),
        )
    }
}

impl Legacy for BlockQ5_1 {
    fn magnitude(w: &Self, a: &BlockQ8_1) -> f64 {
        dd(w.d, a.d) * abs_dot(|j| nibble(&w.qs, j) + fifth_bit(&w.qh, j), &a.qs) + dd(w.m, a.s)
    }
    fn ggml(w: &[Self], a: &[BlockQ8_1]) -> f32 {
        ggml_one_accumulator(
            w,
            a,
            |x, y| (x.d, y.d),
            Some(&|x: &Self, y: &BlockQ8_1| (x.m, y.s)),
            |x, y| lanes(|j| nibble(&x.qs, j) + fifth_bit(&x.qh, j), &y.qs),
        )
    }
}

impl Legacy for BlockQ8_0 {
    fn magnitude(w: &Self, a: &BlockQ8_0) -> f64 {
        dd(w.d, a.d) * abs_dot(|j| w.qs[j] as i32, &a.qs)
    }
    fn ggml(w: &[Self], a: &[BlockQ8_0]) -> f32 {
        ggml_one_accumulator(
            w,
            a,
            |x, y| (x.d, y.d),
            None,
            |x, y| lanes(|j| x.qs[j] as i32, &y.qs),
        )
    }
}

impl Legacy for BlockIQ4_NL {
    fn magnitude(w: &Self, a: &BlockQ8_0) -> f64 {
        dd(w.d, a.d) * abs_dot(|j| KVALUES_IQ4NL[nibble(&w.qs, j) as usize] as i32, &a.qs)
    }
    /// ggml's IQ4_NL order: blocks `2i` and `2i + 1` into two accumulators, `hsum_float_8` of
    /// their sum, then a last odd block as `sum + d * sumi` (two roundings).
    fn ggml(w: &[Self], a: &[BlockQ8_0]) -> f32 {
        let level = |x: &Self, j: usize| KVALUES_IQ4NL[nibble(&x.qs, j) as usize] as i32;
        let mut acc = [[0f32; 8]; 2];
        let pairs = w.len().min(a.len()) / 2;
        for (i, (x, y)) in w.iter().zip(a).take(2 * pairs).enumerate() {
            let d = x.d.to_f32() * y.d.to_f32();
            let l = lanes(|j| level(x, j), &y.qs);
            for (acc, l) in acc[i % 2].iter_mut().zip(l) {
                *acc = d.mul_add(l, *acc);
            }
        }
        let sum = hsum_float_8(std::array::from_fn(|l| acc[0][l] + acc[1][l]));
        match (w.get(2 * pairs), a.get(2 * pairs)) {
            (Some(x), Some(y)) => {
                let sumi: i32 = (0..32).map(|j| level(x, j) * y.qs[j] as i32).sum();
                sum + x.d.to_f32() * y.d.to_f32() * sumi as f32
            }
            _ => sum,
        }
    }
}

/// A dot-product kernel under test.
type Kernel<W> = Box<dyn Fn(&[W], &[<W as VecDot>::Activation]) -> f32>;

/// Every kernel of `W` this CPU can run, by name: the ones [`DotKernel::select`] picks for
/// each supported instruction set, and every variant (so the AVX-512 BW kernel is tested on a
/// VNNI machine too, where `select` prefers VNNI).
fn kernels<W: VecDot>() -> Vec<(String, Kernel<W>)> {
    let mut out: Vec<(String, Kernel<W>)> = Vec::new();
    for isa in Isa::all_supported() {
        let k = DotKernel::<W>::select(isa);
        out.push((
            format!("select({isa}) -> {}", k.name()),
            Box::new(move |w, a| k.call(w, a)),
        ));
    }
    for k in DotKernel::<W>::variants() {
        out.push((
            format!("variant {}", k.name()),
            Box::new(move |w, a| k.call(w, a)),
        ));
    }
    out
}

/// Checks every kernel against the reference on `w[off..]`, `a[off..]`.
fn check<W: Legacy>(w: &[W], a: &[W::Activation], off: usize) -> Result<(), TestCaseError> {
    let (w, a) = (&w[off..], &a[off..]);
    let reference = W::vec_dot(w, a);
    let m: f64 = w.iter().zip(a).map(|(w, a)| W::magnitude(w, a)).sum();
    let bound = (2.0 * w.len() as f64 + 16.0) * U * m + f32::MIN_POSITIVE as f64;
    let ggml = W::ggml(w, a);
    for (name, k) in kernels::<W>() {
        let got = k(w, a);
        let err = (got as f64 - reference as f64).abs();
        prop_assert!(
            err <= bound,
            "{name}: {got} vs reference {reference} (|diff| {err:e} > bound {bound:e}), {} blocks at offset {off}",
            w.len()
        );
        if name.ends_with("-> avx2") || name.contains("avx512") || name == "variant avx2" {
            prop_assert_eq!(
                got.to_bits(),
                ggml.to_bits(),
                "{}: {} vs ggml's order {}, {} blocks at offset {}",
                name,
                got,
                ggml,
                w.len(),
                off
            );
        }
    }
    Ok(())
}

/// Checks that every kernel equals the reference exactly (for inputs where all float
/// operations are exact).
fn check_exact<W: Legacy>(w: &[W], a: &[W::Activation]) -> Result<(), TestCaseError> {
    let reference = W::vec_dot(w, a);
    for (name, k) in kernels::<W>() {
        prop_assert_eq!(k(w, a), reference, "{}: {} blocks", name, w.len());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Strategies.

/// Any finite f16: zero (either sign), subnormals, normals up to 65504.
fn finite_f16() -> impl Strategy<Value = f16> + Clone {
    prop_oneof![
        1 => Just(f16::ZERO),
        8 => any::<u16>()
            .prop_filter("finite", |b| b & 0x7C00 != 0x7C00)
            .prop_map(f16::from_bits),
    ]
}

/// A small integer-valued f16 in -8..=8 (products and sums of these stay exact in f32).
fn small_int_f16() -> impl Strategy<Value = f16> + Clone {
    (-8i8..=8).prop_map(|v| f16::from_f32(v as f32))
}

fn act_qs(full_range: bool) -> impl Strategy<Value = [i8; 32]> + Clone {
    let lo = if full_range { -128 } else { -127 };
    prop::array::uniform32(lo..=127i8)
}

/// Block count, then a leading offset of 0..4 blocks that the check skips (so the checked
/// slice starts 0, 18, 36 or 54 bytes into an allocation, for 18-byte blocks).
fn lengths() -> impl Strategy<Value = (usize, usize)> {
    (
        prop_oneof![0..=3usize, (2..=33usize).prop_map(|k| 2 * k + 1)],
        0..4usize,
    )
}

fn q8_0(
    d: impl Strategy<Value = f16> + Clone,
    full_range: bool,
) -> impl Strategy<Value = BlockQ8_0> + Clone {
    (d, act_qs(full_range)).prop_map(|(d, qs)| BlockQ8_0 { d, qs })
}

fn q8_1(
    d: impl Strategy<Value = f16> + Clone,
    s: impl Strategy<Value = f16> + Clone,
) -> impl Strategy<Value = BlockQ8_1> + Clone {
    (d, s, act_qs(true)).prop_map(|(d, s, qs)| BlockQ8_1 { d, s, qs })
}

fn q4_0(d: impl Strategy<Value = f16> + Clone) -> impl Strategy<Value = BlockQ4_0> + Clone {
    (d, any::<[u8; 16]>()).prop_map(|(d, qs)| BlockQ4_0 { d, qs })
}

fn q5_0(d: impl Strategy<Value = f16> + Clone) -> impl Strategy<Value = BlockQ5_0> + Clone {
    (d, any::<[u8; 4]>(), any::<[u8; 16]>()).prop_map(|(d, qh, qs)| BlockQ5_0 { d, qh, qs })
}

fn q4_1(
    d: impl Strategy<Value = f16> + Clone,
    m: impl Strategy<Value = f16> + Clone,
) -> impl Strategy<Value = BlockQ4_1> + Clone {
    (d, m, any::<[u8; 16]>()).prop_map(|(d, m, qs)| BlockQ4_1 { d, m, qs })
}

fn q5_1(
    d: impl Strategy<Value = f16> + Clone,
    m: impl Strategy<Value = f16> + Clone,
) -> impl Strategy<Value = BlockQ5_1> + Clone {
    (d, m, any::<[u8; 4]>(), any::<[u8; 16]>()).prop_map(|(d, m, qh, qs)| BlockQ5_1 {
        d,
        m,
        qh,
        qs,
    })
}

fn iq4_nl(d: impl Strategy<Value = f16> + Clone) -> impl Strategy<Value = BlockIQ4_NL> + Clone {
    (d, any::<[u8; 16]>()).prop_map(|(d, qs)| BlockIQ4_NL { d, qs })
}

/// `n` weight blocks and `n` activation blocks, with the offset.
fn pairs<W: std::fmt::Debug, A: std::fmt::Debug>(
    w: impl Strategy<Value = W> + Clone,
    a: impl Strategy<Value = A> + Clone,
) -> impl Strategy<Value = (Vec<W>, Vec<A>, usize)> {
    lengths().prop_flat_map(move |(n, off)| {
        (
            prop::collection::vec(w.clone(), n + off),
            prop::collection::vec(a.clone(), n + off),
            Just(off),
        )
    })
}

const ONE: f16 = f16::ONE;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn q4_0_kernels_match_reference(
        (w, a, off) in pairs(q4_0(finite_f16()), q8_0(finite_f16(), true))
    ) {
        check(&w, &a, off)?;
    }

    #[test]
    fn q5_0_kernels_match_reference(
        (w, a, off) in pairs(q5_0(finite_f16()), q8_0(finite_f16(), true))
    ) {
        check(&w, &a, off)?;
    }

    #[test]
    fn q4_1_kernels_match_reference(
        (w, a, off) in pairs(q4_1(finite_f16(), finite_f16()), q8_1(finite_f16(), finite_f16()))
    ) {
        check(&w, &a, off)?;
    }

    #[test]
    fn q5_1_kernels_match_reference(
        (w, a, off) in pairs(q5_1(finite_f16(), finite_f16()), q8_1(finite_f16(), finite_f16()))
    ) {
        check(&w, &a, off)?;
    }

    #[test]
    fn q8_0_kernels_match_reference(
        (w, a, off) in pairs(q8_0(finite_f16(), true), q8_0(finite_f16(), false))
    ) {
        check(&w, &a, off)?;
    }

    #[test]
    fn iq4_nl_kernels_match_reference(
        (w, a, off) in pairs(iq4_nl(finite_f16()), q8_0(finite_f16(), false))
    ) {
        check(&w, &a, off)?;
    }

    // Unit scales (and small integer minima): every float operation is exact, so the kernels
    // must equal the reference exactly. Up to 32 blocks keeps every partial sum below 2^24.
    #[test]
    fn unit_scale_kernels_are_exact(
        n in 0..=32usize,
        seed_w in prop::collection::vec(any::<[u8; 16]>(), 32),
        seed_h in prop::collection::vec(any::<[u8; 4]>(), 32),
        act in prop::collection::vec(act_qs(true), 32),
        mins in prop::collection::vec((small_int_f16(), small_int_f16()), 32),
    ) {
        let a8: Vec<_> = act[..n].iter().map(|&qs| BlockQ8_0 { d: ONE, qs }).collect();
        let a8_127: Vec<_> = a8
            .iter()
            .map(|b| BlockQ8_0 { d: ONE, qs: b.qs.map(|q| q.max(-127)) })
            .collect();
        let a1: Vec<_> = act[..n]
            .iter()
            .zip(&mins)
            .map(|(&qs, &(_, s))| BlockQ8_1 { d: ONE, s, qs })
            .collect();
        let q40: Vec<_> = seed_w[..n].iter().map(|&qs| BlockQ4_0 { d: ONE, qs }).collect();
        check_exact(&q40, &a8)?;
        let q50: Vec<_> = seed_w[..n]
            .iter()
            .zip(&seed_h)
            .map(|(&qs, &qh)| BlockQ5_0 { d: ONE, qh, qs })
            .collect();
        check_exact(&q50, &a8)?;
        let q41: Vec<_> = seed_w[..n]
            .iter()
            .zip(&mins)
            .map(|(&qs, &(m, _))| BlockQ4_1 { d: ONE, m, qs })
            .collect();
        check_exact(&q41, &a1)?;
        let q51: Vec<_> = seed_w[..n]
            .iter()
            .zip(&seed_h)
            .zip(&mins)
            .map(|((&qs, &qh), &(m, _))| BlockQ5_1 { d: ONE, m, qh, qs })
            .collect();
        check_exact(&q51, &a1)?;
        let iq: Vec<_> = seed_w[..n].iter().map(|&qs| BlockIQ4_NL { d: ONE, qs }).collect();
        check_exact(&iq, &a8_127)?;
        let q80: Vec<_> = seed_w[..n]
            .iter()
            .zip(&seed_h)
            .map(|(lo, hi)| {
                let mut qs = [0i8; 32];
                for j in 0..16 {
                    qs[j] = lo[j] as i8;
                    qs[j + 16] = (lo[j] ^ hi[j % 4]).wrapping_mul(7) as i8;
                }
                BlockQ8_0 { d: ONE, qs }
            })
            .collect();
        check_exact(&q80, &a8_127)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Four-row kernels.

/// Four weight rows and one activation row: allocations of `n + 3` blocks, row `r` starting at
/// block `(off + r) % 4` (so the rows sit at different offsets), the activation at `off`.
type Rows4<W, A> = ([Vec<W>; 4], Vec<A>, usize, usize);

fn rows4<W: std::fmt::Debug, A: std::fmt::Debug>(
    w: impl Strategy<Value = W> + Clone,
    a: impl Strategy<Value = A> + Clone,
) -> impl Strategy<Value = Rows4<W, A>> {
    lengths().prop_flat_map(move |(n, off)| {
        let row = prop::collection::vec(w.clone(), n + 3);
        (
            [row.clone(), row.clone(), row.clone(), row],
            prop::collection::vec(a.clone(), n + 3),
            Just(n),
            Just(off),
        )
    })
}

/// `DotKernel::call4` equals four `DotKernel::call`s bit for bit on every kernel this CPU
/// runs, and on the x86 SIMD kernels also ggml's order ([`Legacy::ggml`]).
fn check4<W: Legacy>((w, a, n, off): &Rows4<W, W::Activation>) -> Result<(), TestCaseError> {
    let (n, off) = (*n, *off);
    let a = &a[off.min(3)..][..n];
    let rows: [&[W]; 4] = std::array::from_fn(|r| &w[r][(off + r) % 4..][..n]);
    let mut ks: Vec<_> = Isa::all_supported()
        .into_iter()
        .map(DotKernel::<W>::select)
        .collect();
    ks.extend(DotKernel::<W>::variants());
    for k in ks {
        let got = k.call4(rows, a);
        for r in 0..4 {
            let one = k.call(rows[r], a);
            prop_assert_eq!(
                got[r].to_bits(),
                one.to_bits(),
                "{} row {}: call4 {} vs call {}, {} blocks at offset {}",
                k.name(),
                r,
                got[r],
                one,
                n,
                off
            );
            if k.isa() == Isa::Avx2 || k.isa() == Isa::Avx512 {
                let ggml = W::ggml(rows[r], a);
                prop_assert_eq!(got[r].to_bits(), ggml.to_bits(), "{} row {}", k.name(), r);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn q4_0_call4_is_four_calls(x in rows4(q4_0(finite_f16()), q8_0(finite_f16(), true))) {
        check4(&x)?;
    }

    #[test]
    fn q5_0_call4_is_four_calls(x in rows4(q5_0(finite_f16()), q8_0(finite_f16(), true))) {
        check4(&x)?;
    }

    #[test]
    fn q4_1_call4_is_four_calls(
        x in rows4(q4_1(finite_f16(), finite_f16()), q8_1(finite_f16(), finite_f16()))
    ) {
        check4(&x)?;
    }

    #[test]
    fn q5_1_call4_is_four_calls(
        x in rows4(q5_1(finite_f16(), finite_f16()), q8_1(finite_f16(), finite_f16()))
    ) {
        check4(&x)?;
    }

    #[test]
    fn q8_0_call4_is_four_calls(x in rows4(q8_0(finite_f16(), true), q8_0(finite_f16(), false))) {
        check4(&x)?;
    }

    #[test]
    fn iq4_nl_call4_is_four_calls(x in rows4(iq4_nl(finite_f16()), q8_0(finite_f16(), false))) {
        check4(&x)?;
    }
}

/// The VNNI variants of the signed-weight formats are exact even for -128 activations (the BW
/// and AVX2 ones document that they are not).
#[test]
fn vnni_signed_kernels_handle_minus_128() {
    if !Isa::has_avx512_vnni() {
        // Not a skip of anything this CPU runs: the VNNI kernels cannot execute here, and the
        // properties above cover every kernel that can. Say so in the test output.
        eprintln!("vnni_signed_kernels_handle_minus_128: no AVX-512 VNNI on this CPU, not run");
        return;
    }
    let w8 = BlockQ8_0 {
        d: ONE,
        qs: std::array::from_fn(|j| if j % 2 == 0 { -128 } else { -(j as i8) }),
    };
    let a = BlockQ8_0 {
        d: ONE,
        qs: [-128; 32],
    };
    let iq = BlockIQ4_NL {
        d: ONE,
        qs: [0x70; 16],
    }; // levels -127 / -10
    let w8s = [w8, w8, w8];
    let as3 = [a, a, a];
    let iqs = [iq, iq, iq];
    let vnni = |name: &str| name == "avx512_vnni";
    let f8 = DotKernel::<BlockQ8_0>::variants()
        .into_iter()
        .find(|k| vnni(k.name()))
        .expect("Q8_0 has a VNNI kernel");
    let fi = DotKernel::<BlockIQ4_NL>::variants()
        .into_iter()
        .find(|k| vnni(k.name()))
        .expect("IQ4_NL has a VNNI kernel");
    let (got8, goti) = (f8.call(&w8s, &as3), fi.call(&iqs, &as3));
    assert_eq!(got8, BlockQ8_0::vec_dot(&w8s, &as3));
    assert_eq!(goti, BlockIQ4_NL::vec_dot(&iqs, &as3));
    assert_eq!(goti, 3.0 * 16.0 * (-128.0 * (-10.0 - 127.0)));
}

/// Every legacy format has its AVX2, AVX-512 and VNNI kernels attached on x86_64 (so the
/// properties above test SIMD code, not the reference against itself).
#[cfg(target_arch = "x86_64")]
#[test]
fn legacy_formats_have_x86_kernels() {
    fn has<W: VecDot>(name: &str) {
        let k = &W::KERNELS;
        assert!(k.avx2.is_some(), "{name}: no AVX2 kernel");
        assert!(k.avx512.is_some(), "{name}: no AVX-512 kernel");
        assert!(k.avx512_vnni.is_some(), "{name}: no AVX-512 VNNI kernel");
        let k4 = &W::KERNELS4;
        assert!(k4.avx2.is_some(), "{name}: no AVX2 four-row kernel");
        assert!(k4.avx512.is_some(), "{name}: no AVX-512 four-row kernel");
        assert!(
            k4.avx512_vnni.is_some(),
            "{name}: no AVX-512 VNNI four-row kernel"
        );
        for k in DotKernel::<W>::variants() {
            assert_eq!(
                k.has_rows4(),
                k.isa() != Isa::Scalar,
                "{name}: {}",
                k.name()
            );
        }
    }
    has::<BlockQ4_0>("Q4_0");
    has::<BlockQ4_1>("Q4_1");
    has::<BlockQ5_0>("Q5_0");
    has::<BlockQ5_1>("Q5_1");
    has::<BlockQ8_0>("Q8_0");
    has::<BlockIQ4_NL>("IQ4_NL");
    if Isa::Avx512.is_supported() {
        assert_eq!(
            DotKernel::<BlockQ4_0>::select(Isa::Avx512).isa(),
            Isa::Avx512
        );
    }
    if Isa::Avx2.is_supported() {
        assert_eq!(DotKernel::<BlockQ4_0>::select(Isa::Avx2).isa(), Isa::Avx2);
    }
}

// ---------------------------------------------------------------------------------------------
// Quantize round trips.

/// Random blocks of 32 values, each block with its own magnitude in 10^-2 .. 10^3 (so the
/// f16 scale stays a normal f16), with an optional constant offset (for the formats with a
/// minimum).
fn rows() -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(
        (
            -2.0f32..3.0,
            -1.0f32..1.0,
            prop::array::uniform32(-1.0f32..1.0),
        ),
        0..6,
    )
    .prop_map(|blocks| {
        blocks
            .into_iter()
            .flat_map(|(e, off, v)| {
                let s = 10f32.powf(e);
                v.map(|x| (x + off) * s)
            })
            .collect()
    })
}

fn round_trip<B: Quantize>(x: &[f32]) -> (Vec<B>, Vec<f32>) {
    let mut q = vec![bytemuck::Zeroable::zeroed(); x.len() / B::BLOCK_SIZE];
    B::quantize(x, &mut q);
    let mut y = vec![0f32; x.len()];
    B::dequantize(&q, &mut y);
    (q, y)
}

const F16_REL: f32 = 1.0 / 2048.0; // half an ulp of f16, relative

/// Asserts `|x - y| <= bound(block)` element-wise, per block of 32.
fn assert_close(
    x: &[f32],
    y: &[f32],
    bound: impl Fn(usize, &[f32]) -> f32,
) -> Result<(), TestCaseError> {
    for (b, (xb, yb)) in x.chunks(32).zip(y.chunks(32)).enumerate() {
        let bound = bound(b, xb);
        for (j, (&xv, &yv)) in xb.iter().zip(yb).enumerate() {
            prop_assert!(
                (xv - yv).abs() <= bound,
                "block {b} element {j}: {xv} -> {yv} (|diff| {} > {bound})",
                (xv - yv).abs()
            );
        }
    }
    Ok(())
}

fn amax(x: &[f32]) -> f32 {
    x.iter().fold(0f32, |m, v| m.max(v.abs()))
}

fn range(x: &[f32]) -> (f32, f32) {
    x.iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    // Q4_0 / Q5_0: d = -max/8 (-max/16); values round to the nearest step except on the side
    // opposite the maximum, where +8 (+16) steps clamp to +7 (+15): error <= |d|, plus the f16
    // rounding of d times at most 8 (16) steps.
    #[test]
    fn q4_0_round_trip(x in rows()) {
        let (_, y) = round_trip::<BlockQ4_0>(&x);
        assert_close(&x, &y, |_, xb| {
            let d = amax(xb) / 8.0;
            d * (1.0 + 8.0 * F16_REL) * (1.0 + 1e-6)
        })?;
    }

    #[test]
    fn q5_0_round_trip(x in rows()) {
        let (_, y) = round_trip::<BlockQ5_0>(&x);
        assert_close(&x, &y, |_, xb| {
            let d = amax(xb) / 16.0;
            d * (1.0 + 16.0 * F16_REL) * (1.0 + 1e-6)
        })?;
    }

    // Q4_1 / Q5_1: d = (max - min) / 15 (31), values round half up: error <= d / 2, plus the
    // f16 rounding of d times at most 15 (31) steps and of the minimum.
    #[test]
    fn q4_1_round_trip(x in rows()) {
        let (_, y) = round_trip::<BlockQ4_1>(&x);
        assert_close(&x, &y, |_, xb| {
            let (lo, hi) = range(xb);
            let d = (hi - lo) / 15.0;
            (0.5 * d + 15.0 * d * F16_REL + lo.abs() * F16_REL) * (1.0 + 1e-5)
        })?;
    }

    #[test]
    fn q5_1_round_trip(x in rows()) {
        let (_, y) = round_trip::<BlockQ5_1>(&x);
        assert_close(&x, &y, |_, xb| {
            let (lo, hi) = range(xb);
            let d = (hi - lo) / 31.0;
            (0.5 * d + 31.0 * d * F16_REL + lo.abs() * F16_REL) * (1.0 + 1e-5)
        })?;
    }

    // Q8_1: d = amax / 127, round to nearest: error <= d / 2 plus the f16 rounding of d times
    // at most 127 steps; and s is d times the sum of the quants, rounded to f16.
    #[test]
    fn q8_1_round_trip(x in rows()) {
        let (q, y) = round_trip::<BlockQ8_1>(&x);
        assert_close(&x, &y, |_, xb| {
            let d = amax(xb) / 127.0;
            (0.5 * d + 127.0 * d * F16_REL) * (1.0 + 1e-5)
        })?;
        for (b, xb) in q.iter().zip(x.chunks(32)) {
            let d = amax(xb) / 127.0;
            let sum: i32 = b.qs.iter().map(|&v| v as i32).sum();
            let exact = sum as f32 * d;
            prop_assert!((b.s.to_f32() - exact).abs() <= exact.abs() * F16_REL * 1.0001 + 1e-7);
            prop_assert!(b.qs.iter().all(|&v| v != -128));
        }
    }
}

/// Blocks of values so small (`|x| < 2^-125`) that the inverse scale `1 / d` overflows: every
/// `x * id` is infinite or NaN, which ggml's C conversions turn into quant 0 on x86-64 (the
/// bytes of ggml's own output on such blocks, checked against libggml-base's
/// `quantize_row_*_ref`); Rust's saturating `as` alone would write 15, 31 or ±127.
#[test]
fn quantizers_write_zero_quants_when_the_inverse_scale_overflows() {
    let x: Vec<f32> = (0..32).map(|j| (j as f32 - 15.5) * 7e-41).collect();
    let mut q40 = [bytemuck::Zeroable::zeroed()];
    BlockQ4_0::quantize(&x, &mut q40);
    assert_eq!(q40[0].qs, [0; 16]);
    let mut q41 = [bytemuck::Zeroable::zeroed()];
    BlockQ4_1::quantize(&x, &mut q41);
    assert_eq!(q41[0].qs, [0; 16]);
    let mut q50 = [bytemuck::Zeroable::zeroed()];
    BlockQ5_0::quantize(&x, &mut q50);
    assert_eq!((q50[0].qs, q50[0].qh), ([0; 16], [0; 4]));
    let mut q51 = [bytemuck::Zeroable::zeroed()];
    BlockQ5_1::quantize(&x, &mut q51);
    assert_eq!((q51[0].qs, q51[0].qh), ([0; 16], [0; 4]));
    let mut q81 = [bytemuck::Zeroable::zeroed()];
    BlockQ8_1::quantize(&x, &mut q81);
    assert_eq!((q81[0].qs, q81[0].s), ([0; 32], f16::ZERO));
}

// ---------------------------------------------------------------------------------------------
// The activation quantizers llama.cpp's CPU backend runs.

/// FNV-1a, 64-bit.
#[cfg(target_arch = "x86_64")]
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// 2048 blocks built to land near the rounding ties of a Q8 quantizer: one element of each
/// block is `±amax` (a random normal f32 between 2^-10 and 2^11), the others are
/// `(k + 0.5) * amax / 127` for random `k` in `-127..=126`, computed in f32, then left alone or
/// moved one ulp up or down. So `x * id` is within a few ulps of a half-integer, where the
/// choice of `id` (`127 / amax` or `1 / (amax / 127)`) and of the tie rule decide the quant.
/// Only exact f32 operations on integers and one multiplication and one division per value:
/// the same bits in any IEEE-754 language (the golden hashes were made from a Python copy).
#[cfg(target_arch = "x86_64")]
fn near_ties() -> Vec<f32> {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut x = Vec::with_capacity(2048 * 32);
    for _ in 0..2048 {
        let e = (next() % 21) as u32; // exponent -10 ..= 10
        let amax = f32::from_bits(((e + 117) << 23) | (next() & 0x7F_FFFF) as u32);
        let first = next() % 32;
        for j in 0..32 {
            let r = next();
            x.push(if j == first {
                if r & 1 == 1 {
                    amax
                } else {
                    -amax
                }
            } else {
                let k = (r % 254) as f32 - 127.0;
                let v = (k + 0.5) * amax / 127.0;
                match (r >> 32) % 3 {
                    1 => f32::from_bits(v.to_bits() + 1),
                    2 => f32::from_bits(v.to_bits() - 1),
                    _ => v,
                }
            });
        }
    }
    x
}

fn quantize_both<B: Quantize>(x: &[f32]) -> (Vec<B>, Vec<B>) {
    let mut r = vec![bytemuck::Zeroable::zeroed(); x.len() / B::BLOCK_SIZE];
    let mut c = r.clone();
    B::quantize(x, &mut r);
    B::quantize_activation(x, &mut c);
    (r, c)
}

/// The hashes are of libggml-cpu's `quantize_row_q8_0` / `quantize_row_q8_1` (llama.cpp as
/// built by llama-cpp-python 0.3.36 on an x86-64 AVX-512 machine; these functions run their
/// AVX2 code there) and of libggml-base's `quantize_row_q8_0_ref` / `quantize_row_q8_1_ref`,
/// called through ctypes on [`near_ties`] (as `scripts/golden/ggml_ref.py`'s `cpu_from_float`
/// and `from_float_ref` do). 2040 of the 2048 blocks differ between the two quantizers.
#[cfg(target_arch = "x86_64")]
#[test]
fn activation_quantizers_match_ggml_cpu_on_x86_bit_for_bit() {
    let x = near_ties();
    assert_eq!(
        fnv1a(bytemuck::cast_slice(&x)),
        0xd074_01c9_bd7a_5ad9,
        "input"
    );
    let (r, c) = quantize_both::<BlockQ8_0>(&x);
    assert_eq!(
        fnv1a(bytemuck::cast_slice(&r)),
        0xb05c_c532_1690_ba73,
        "Q8_0 reference"
    );
    assert_eq!(
        fnv1a(bytemuck::cast_slice(&c)),
        0x8bf3_34e9_3b6f_a188,
        "Q8_0 ggml-cpu"
    );
    let (r, c) = quantize_both::<BlockQ8_1>(&x);
    assert_eq!(
        fnv1a(bytemuck::cast_slice(&r)),
        0x79d5_5949_dd8e_d921,
        "Q8_1 reference"
    );
    assert_eq!(
        fnv1a(bytemuck::cast_slice(&c)),
        0x8a98_232c_c45f_3440,
        "Q8_1 ggml-cpu"
    );
}

/// Blocks where ggml-cpu's x86 quantizer does something unusual, and the bytes it writes
/// (libggml-cpu's own output, as for the hashes above): exact ties (to even), a tiny block
/// whose `127 / amax` overflows (every quant -128, `s` 0), NaN (quant -128; a NaN in the first
/// lane is dropped by `maxps`), and infinities (`d` infinite, `id = 0`, `inf * 0` is NaN).
#[cfg(target_arch = "x86_64")]
#[test]
fn activation_quantizers_handle_ties_and_non_finite_values_as_ggml_cpu() {
    let mut x = Vec::new();
    x.extend([1e-38f32; 32]);
    let mut b = [0f32; 32];
    b[3] = 1e-39;
    x.extend(b);
    x.extend((0..32).map(|j| j as f32 - 15.5));
    let mut b = [0f32; 32];
    b[..6].copy_from_slice(&[127.0, 2.5, -2.5, 0.5, -0.5, 1.5]);
    x.extend(b);
    for (at, v) in [(5, f32::NAN), (0, f32::NAN), (9, f32::INFINITY)] {
        let mut b = [1f32; 32];
        b[at] = v;
        x.extend(b);
    }
    let mut b = [1f32; 32];
    b[9] = f32::NEG_INFINITY;
    b[17] = 3.0;
    x.extend(b);
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let (_, c0) = quantize_both::<BlockQ8_0>(&x);
    let (_, c1) = quantize_both::<BlockQ8_1>(&x);
    let ones = "7f".repeat(31);
    let m128 = "80".repeat(32);
    let want0 = [
        format!("0000{m128}"),
        format!("0000{m128}"),
        "d02f8189919aa2aab2bac3cbd3dbe3ecf4fc040c141d252d353d464e565e666f777f".to_owned(),
        format!("003c7f02fe0000020000{}", "00".repeat(24)),
        format!("0820{}80{}", "7f".repeat(5), "7f".repeat(26)),
        format!("082080{ones}"),
        format!("007c{}80{}", "00".repeat(9), "00".repeat(22)),
        format!("007c{}80{}", "00".repeat(9), "00".repeat(22)),
    ];
    let want1 = [
        format!("00000000{m128}"),
        format!("00000000{m128}"),
        "d02f00008189919aa2aab2bac3cbd3dbe3ecf4fc040c141d252d353d464e565e666f777f".to_owned(),
        format!("003c08587f02fe0000020000{}", "00".repeat(24)),
        format!("082000fc{}80{}", "7f".repeat(5), "7f".repeat(26)),
        format!("082000fc80{ones}"),
        format!("007c00fc{}80{}", "00".repeat(9), "00".repeat(22)),
        format!("007c00fc{}80{}", "00".repeat(9), "00".repeat(22)),
    ];
    for (i, (b0, b1)) in c0.iter().zip(&c1).enumerate() {
        assert_eq!(hex(bytemuck::bytes_of(b0)), want0[i], "Q8_0 block {i}");
        assert_eq!(hex(bytemuck::bytes_of(b1)), want1[i], "Q8_1 block {i}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whatever the target, the activation quantizer has the reference's scale and differs
    /// from its quants by at most one step (the tie rule, and on x86-64 `127 / amax` against
    /// `1 / d`), and Q8_1's `s` is `d` times the sum of its own quants.
    #[test]
    fn activation_quantizers_are_within_one_step_of_the_reference(x in rows()) {
        let (r, c) = quantize_both::<BlockQ8_0>(&x);
        for (r, c) in r.iter().zip(&c) {
            prop_assert_eq!(r.d, c.d);
            for (a, b) in r.qs.iter().zip(&c.qs) {
                prop_assert!((*a as i32 - *b as i32).abs() <= 1, "{:?} vs {:?}", r, c);
            }
        }
        let (r, c) = quantize_both::<BlockQ8_1>(&x);
        for ((r, c), xb) in r.iter().zip(&c).zip(x.chunks(32)) {
            prop_assert_eq!(r.d, c.d);
            for (a, b) in r.qs.iter().zip(&c.qs) {
                prop_assert!((*a as i32 - *b as i32).abs() <= 1, "{:?} vs {:?}", r, c);
            }
            let sum: i32 = c.qs.iter().map(|&q| q as i32).sum();
            prop_assert_eq!(c.s, f16::from_f32(amax(xb) / 127.0 * sum as f32));
        }
    }
}
