//! ggml's floating-point summation orders, reproduced in scalar code so that attention agrees
//! with llama.cpp bit for bit.
//!
//! llama.cpp's CPU backend (built for AVX-512, as the oracle this project checks against is)
//! computes the attention products of `f16` keys and values with two kernels, whose lane
//! layouts fix the order of the `f32` additions:
//!
//! - [`dot_gemm`]: llamafile's `tinyBLAS`, used when the batch has two or more tokens: one
//!   16-lane accumulator over the length in chunks of 16, then `_mm512_reduce_add_ps`.
//! - [`dot_gemv`]: `ggml_vec_dot_f16`, used for a single token: four 16-lane accumulators
//!   over chunks of 64, folded pairwise, reduced, and any tail added in `f64`.
//!
//! Both multiply values that are `f16` numbers (keys, values, and the query and
//! probabilities rounded to `f16`), whose products are exact in `f32`, so the fused
//! multiply-adds of the vector code equal a plain multiplication and addition here.
//!
//! [`exp_ggml`] is ggml's AVX-512 `expf` approximation and [`softmax_ggml`] its softmax.
//!
//! The definitions live in `ziglama_tensor::vector::scalar`, beside their vectorized versions
//! (which attention and the activations run); this module names them for the layer that
//! uses them.

pub use ziglama_tensor::vector::scalar::{dot_gemm, dot_gemv, exp_ggml, reduce16, softmax_ggml};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_constants() {
        assert_eq!(f32::from_bits(0x3fb8_aa3b), std::f32::consts::LOG2_E);
        assert_eq!(f32::from_bits(0x3f31_7200), 0.693_145_75_f32);
        assert_eq!(f32::from_bits(0x3f7f_fff6), 0.999_999_4_f32);
    }

    #[test]
    fn exp_is_close_to_libm() {
        for i in -800..=800 {
            let x = i as f32 * 0.1;
            let (a, b) = (exp_ggml(x), x.exp());
            assert!(((a - b) / b).abs() < 4e-7, "exp({x}): {a} vs {b}");
        }
        assert_eq!(exp_ggml(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_ggml(-200.0), 0.0);
        assert_eq!(exp_ggml(0.0), 1.0);
        // underflow to subnormals, and 2^n for negative n
        let tiny = exp_ggml(-100.0);
        assert!(tiny > 0.0 && tiny < f32::MIN_POSITIVE, "{tiny}");
        assert!(((exp_ggml(-20.0) - (-20f32).exp()) / (-20f32).exp()).abs() < 4e-7);
    }

    #[test]
    fn dots_equal_the_exact_sum_on_integers() {
        let x: Vec<f32> = (0..100).map(|i| (i % 7) as f32).collect();
        let y: Vec<f32> = (0..100).map(|i| (i % 5) as f32 - 2.0).collect();
        let exact: f32 = x.iter().zip(&y).map(|(a, b)| a * b).sum();
        assert_eq!(dot_gemm(&x, &y), exact);
        assert_eq!(dot_gemv(&x, &y), exact);
    }

    #[test]
    fn softmax_sums_to_one_and_masks() {
        let mut x: Vec<f32> = (0..40).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        x[5] = f32::NEG_INFINITY;
        softmax_ggml(&mut x);
        let s: f64 = x.iter().map(|&v| f64::from(v)).sum();
        assert!((s - 1.0).abs() < 1e-6);
        assert_eq!(x[5], 0.0);
    }
}
