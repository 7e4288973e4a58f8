//! Activations: SiLU and the SwiGLU gate of LLaMA's feed-forward network.

/// `x * sigmoid(x)`, computed as ggml does: `x / (1 + exp(-x))`.
///
/// ```
/// assert_eq!(ziglama_nn::activation::silu(0.0), 0.0);
/// assert!((ziglama_nn::activation::silu(10.0) - 10.0).abs() < 1e-3);
/// ```
#[inline]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// SiLU as ggml's AVX-512 `ggml_v_silu`: `x / (1 + exp(-x))` with ggml's `exp`
/// approximation ([`crate::ggml_order::exp_ggml`]).
#[inline]
pub fn silu_ggml(x: f32) -> f32 {
    x / (1.0 + crate::ggml_order::exp_ggml(0.0 - x))
}

/// SwiGLU in place, `gate[i] = silu(gate[i]) * up[i]`, as ggml's `ggml_vec_swiglu_f32`
/// (AVX-512 build): [`silu_ggml`] over chunks of 16, [`silu`] for a tail.
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    let n = gate.len().min(up.len());
    let full = n / 16 * 16;
    for (g, u) in gate[..full].iter_mut().zip(&up[..full]) {
        *g = silu_ggml(*g) * u;
    }
    for (g, u) in gate[full..n].iter_mut().zip(&up[full..n]) {
        *g = silu(*g) * u;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silu_values() {
        assert!((silu(1.0) - 0.731_058_6).abs() < 1e-6);
        assert!((silu(-1.0) + 0.268_941_4).abs() < 1e-6);
        assert_eq!(silu(-100.0), -0.0);
    }

    #[test]
    fn swiglu_multiplies() {
        let mut g = [1.0f32, 0.0];
        swiglu(&mut g, &[2.0, 5.0]);
        assert!((g[0] - 2.0 * silu(1.0)).abs() < 1e-7);
        assert_eq!(g[1], 0.0);
    }
}
