//! Rotation of pairs of values by angles given as `(cos, sin)` pairs: the inner loop of
//! rotary position embeddings, with the fused multiply-adds ggml's compiled C uses,
//! `(x0 cos - x1 sin, x0 sin + x1 cos)` with `x0 cos` and `x0 sin` fused into the additions
//! and the other products rounded. On x86_64 with AVX2 and FMA eight pairs at a time, with
//! the same operations (bit-identical).

#[cfg(target_arch = "x86_64")]
use crate::Isa;

/// One pair rotated by `(c, s)`.
#[inline]
fn rotate(x0: f32, x1: f32, c: f32, s: f32) -> (f32, f32) {
    (x0.mul_add(c, -(x1 * s)), x0.mul_add(s, x1 * c))
}

/// Whether the AVX2 kernels may run (the active kernel set has AVX2 and FMA).
#[cfg(target_arch = "x86_64")]
#[inline]
fn avx2() -> bool {
    matches!(Isa::active(), Isa::Avx2 | Isa::Avx512)
}

/// Rotates the adjacent pairs `(x[2i], x[2i + 1])` by `(cs[2i], cs[2i + 1])` (cosine, sine),
/// for the whole pairs both slices hold.
///
/// ```
/// let mut x = [1.0f32, 0.0];
/// ziglama_tensor::rotate::rotate_interleaved(&mut x, &[0.0, 1.0]); // a quarter turn
/// assert_eq!(x, [0.0, 1.0]);
/// ```
pub fn rotate_interleaved(x: &mut [f32], cs: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: the active kernel set is AVX2 or AVX-512, so the CPU has AVX2 and FMA.
        unsafe { crate::simd::x86_64::avx2::rotate::rotate_interleaved(x, cs) };
        return;
    }
    rotate_interleaved_scalar(x, cs);
}

/// Rotates the pairs `(x0[i], x1[i])` by `(cs[2i], cs[2i + 1])` (cosine, sine), for the
/// pairs all three slices hold (NeoX-style RoPE: a head's halves).
///
/// ```
/// let (mut a, mut b) = ([1.0f32], [0.0f32]);
/// ziglama_tensor::rotate::rotate_split(&mut a, &mut b, &[0.0, 1.0]); // a quarter turn
/// assert_eq!((a, b), ([0.0], [1.0]));
/// ```
pub fn rotate_split(x0: &mut [f32], x1: &mut [f32], cs: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: the active kernel set is AVX2 or AVX-512, so the CPU has AVX2 and FMA.
        unsafe { crate::simd::x86_64::avx2::rotate::rotate_split(x0, x1, cs) };
        return;
    }
    rotate_split_scalar(x0, x1, cs);
}

/// [`rotate_interleaved`] one pair at a time: the definition.
pub fn rotate_interleaved_scalar(x: &mut [f32], cs: &[f32]) {
    for (p, t) in x.chunks_exact_mut(2).zip(cs.chunks_exact(2)) {
        (p[0], p[1]) = rotate(p[0], p[1], t[0], t[1]);
    }
}

/// [`rotate_split`] one pair at a time: the definition.
pub fn rotate_split_scalar(x0: &mut [f32], x1: &mut [f32], cs: &[f32]) {
    for ((a, b), t) in x0.iter_mut().zip(x1.iter_mut()).zip(cs.chunks_exact(2)) {
        (*a, *b) = rotate(*a, *b, t[0], t[1]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i as f32 + seed) * 0.731).sin() * 3.0)
            .collect()
    }

    /// The kernels equal the one-pair-at-a-time definition bit for bit, at every length
    /// around the vector width.
    #[test]
    fn kernels_equal_the_definition() {
        for n in [0usize, 1, 2, 7, 8, 9, 16, 17, 31, 64, 128] {
            let cs = values(2 * n, 0.5);
            let (x0, x1) = (values(n, 1.0), values(n, 2.0));
            let (mut a, mut b) = (x0.clone(), x1.clone());
            rotate_split(&mut a, &mut b, &cs);
            let (mut ra, mut rb) = (x0.clone(), x1.clone());
            rotate_split_scalar(&mut ra, &mut rb, &cs);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!((bits(&a), bits(&b)), (bits(&ra), bits(&rb)), "split n={n}");
            let x = values(2 * n, 3.0);
            let (mut y, mut ry) = (x.clone(), x.clone());
            rotate_interleaved(&mut y, &cs);
            rotate_interleaved_scalar(&mut ry, &cs);
            assert_eq!(bits(&y), bits(&ry), "interleaved n={n}");
        }
    }
}
