//! Softmax, as ggml's `soft_max`: subtract the maximum, exponentiate, sum in `f64`, scale.

/// Softmax of `x` in place. Entries of `-inf` (masked) become 0. An all-masked (or empty)
/// input is left as zeros.
///
/// ```
/// let mut x = [0.0f32, f32::NEG_INFINITY, 0.0];
/// ziglama_nn::softmax::softmax(&mut x);
/// assert_eq!(x, [0.5, 0.0, 0.5]);
/// ```
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        x.iter_mut().for_each(|v| *v = 0.0);
        return;
    }
    let mut sum = 0f64;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += f64::from(*v);
    }
    let inv = (1.0 / sum) as f32;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_to_one_and_orders() {
        let mut x = [1.0f32, 2.0, 3.0, -50.0];
        softmax(&mut x);
        let s: f32 = x.iter().sum();
        assert!((s - 1.0).abs() < 1e-6);
        assert!(x[2] > x[1] && x[1] > x[0] && x[0] > x[3]);
        assert!((x[2] / x[1] - std::f32::consts::E).abs() < 1e-4);
    }

    #[test]
    fn large_values_do_not_overflow() {
        let mut x = [1000.0f32, 1000.0];
        softmax(&mut x);
        assert_eq!(x, [0.5, 0.5]);
    }
}
