//! RMSNorm, as ggml's `rms_norm` followed by the multiplication with the norm weight.

/// Normalizes `x` in place to unit root mean square and multiplies it by `weight`:
/// `x[i] * weight[i] / sqrt(mean(x^2) + eps)`.
///
/// As in ggml, each square is computed in `f32` and accumulated in `f64`, the scale
/// `1/sqrt(mean + eps)` is computed in `f32`, and `x` is scaled before the weight multiplies it.
///
/// `weight` must have `x.len()` elements (only the common prefix is used otherwise).
///
/// ```
/// let mut x = [1.0f32, 1.0, 1.0, 1.0];
/// ziglama_nn::norm::rms_norm(&mut x, &[2.0; 4], 1e-6);
/// assert!(x.iter().all(|v| (v - 2.0).abs() < 1e-5));
/// ```
pub fn rms_norm(x: &mut [f32], weight: &[f32], eps: f32) {
    let sum: f64 = x.iter().map(|&v| f64::from(v * v)).sum();
    let mean = (sum / x.len().max(1) as f64) as f32;
    let scale = 1.0 / (mean + eps).sqrt();
    for (v, w) in x.iter_mut().zip(weight) {
        *v = (*v * scale) * w;
    }
}

/// [`rms_norm`] of each row of `x` (rows of `weight.len()` elements).
pub fn rms_norm_rows(x: &mut [f32], weight: &[f32], eps: f32) {
    if weight.is_empty() {
        return;
    }
    for row in x.chunks_exact_mut(weight.len()) {
        rms_norm(row, weight, eps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_rms_after_norm() {
        let mut x: Vec<f32> = (0..64).map(|i| (i as f32 - 20.0) * 0.37).collect();
        rms_norm(&mut x, &[1.0; 64], 1e-5);
        let ms: f32 = x.iter().map(|v| v * v).sum::<f32>() / 64.0;
        assert!((ms - 1.0).abs() < 1e-4, "mean square {ms}");
    }

    #[test]
    fn rows_are_independent() {
        let mut x = vec![1.0f32, 2.0, 10.0, 20.0];
        rms_norm_rows(&mut x, &[1.0, 1.0], 0.0);
        assert!((x[0] - x[2]).abs() < 1e-6 && (x[1] - x[3]).abs() < 1e-6);
    }
}
