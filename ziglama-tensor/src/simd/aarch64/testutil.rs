//! Test support: a seeded generator and the harness that compares a kernel with the scalar
//! reference over many lengths and misaligned offsets.

use crate::formats::{RawDot, VecDot};

/// SplitMix64: a tiny, seeded, reproducible generator (no dependency, same on every host).
pub(super) struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub(super) fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    /// 64 random bits.
    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub(super) fn range_i32(&mut self, lo: i32, hi: i32) -> i32 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i32
    }

    /// A random byte.
    pub(super) fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    /// Uniform in `[lo, hi)`.
    pub(super) fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * unit
    }

    /// A random f32 scale of either sign, magnitude between 2^-12 and 2^2.
    pub(super) fn scale(&mut self) -> f32 {
        let m = self.uniform(1.0, 2.0) * (2f32).powi(self.range_i32(-12, 1));
        if self.byte() & 1 == 0 {
            m
        } else {
            -m
        }
    }
}

/// Compares `kernel` with `W::vec_dot` on random data: for every length in `lengths` (in
/// blocks of `W`), three seeds, and the slices starting at block offsets 0, 1 and 3 of longer
/// vectors (weights and activations at different offsets, so neither is 16-byte aligned in
/// general).
///
/// Each case runs twice. In *exact* mode (`gen_*` get `true`) the generators must produce
/// data whose every partial sum is an integer below 2^24 in magnitude (unit scales, small
/// quants), so every float operation of both kernels is exact and the results must be equal:
/// this catches any error in the integer part. In *random* mode the results must agree within
/// `tol(w, a)`, the bound on the float rounding of the two summation orders.
pub(super) fn check<W: VecDot>(
    name: &str,
    kernel: RawDot<W>,
    lengths: &[usize],
    gen_w: impl Fn(&mut Rng, bool) -> W,
    gen_a: impl Fn(&mut Rng, bool) -> W::Activation,
    tol: impl Fn(&[W], &[W::Activation]) -> f64,
) {
    for &n in lengths {
        for (off_w, off_a) in [(0, 0), (1, 3), (3, 1)] {
            for seed in 0..3u64 {
                for exact in [true, false] {
                    let mut rng = Rng::new(seed * 1_000_003 + n as u64 * 101 + off_w as u64);
                    let w: Vec<W> = (0..n + off_w).map(|_| gen_w(&mut rng, exact)).collect();
                    let a: Vec<W::Activation> =
                        (0..n + off_a).map(|_| gen_a(&mut rng, exact)).collect();
                    let (w, a) = (&w[off_w..], &a[off_a..]);
                    let want = W::vec_dot(w, a);
                    // SAFETY: callers pass kernels this CPU supports (NEON, and `dotprod`
                    // only after checking `has_dotprod()`).
                    let got = unsafe { kernel(w, a) };
                    let case = format!("{name}: {n} blocks, offsets {off_w}/{off_a}, seed {seed}");
                    if exact {
                        assert_eq!(got, want, "{case}, exact mode");
                    } else {
                        let err = (got as f64 - want as f64).abs();
                        let bound = tol(w, a);
                        assert!(
                            err <= bound,
                            "{case}: kernel {got}, scalar {want}, |diff| {err:e} > bound {bound:e}"
                        );
                    }
                }
            }
        }
    }
}

/// Runs `check` for the three variants of an integer kernel: NEON only, `dotprod` (if this
/// CPU has it) and the dispatching one.
#[allow(clippy::too_many_arguments)]
pub(super) fn check_variants<W: VecDot>(
    name: &str,
    kernels: [RawDot<W>; 3],
    lengths: &[usize],
    gen_w: impl Fn(&mut Rng, bool) -> W + Copy,
    gen_a: impl Fn(&mut Rng, bool) -> W::Activation + Copy,
    tol: impl Fn(&[W], &[W::Activation]) -> f64 + Copy,
) {
    let [neon, dotprod, dispatch] = kernels;
    check(&format!("{name} (neon)"), neon, lengths, gen_w, gen_a, tol);
    if super::has_dotprod() {
        check(
            &format!("{name} (dotprod)"),
            dotprod,
            lengths,
            gen_w,
            gen_a,
            tol,
        );
    } else {
        eprintln!("{name}: this CPU has no dotprod; sdot variant not tested");
    }
    check(name, dispatch, lengths, gen_w, gen_a, tol);
}
