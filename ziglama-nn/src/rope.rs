//! Rotary position embeddings (RoPE) as ggml's `rope_ext`: the normal (adjacent pairs) and
//! NeoX (halves) pairings, a frequency base, and the scaling kinds GGUF metadata can name:
//! none, linear, YaRN, and per-dimension frequency factors (llama3's `rope_freqs.weight`).
//!
//! Each pair turns as `(x0 cos - x1 sin, x0 sin + x1 cos)` with the fused multiply-adds GCC
//! contracts ggml's `x0*cos_theta - x1*sin_theta` and `x0*sin_theta + x1*cos_theta` into (the
//! first product fused, the second rounded): [`ziglama_tensor::rotate`].

use ziglama_tensor::rotate::{rotate_interleaved, rotate_split};

/// Which elements of a head RoPE rotates together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeMode {
    /// Adjacent pairs `(x[2i], x[2i+1])` (LLaMA as converted to GGUF).
    Normal,
    /// Halves `(x[i], x[i + n_dims/2])` (GPT-NeoX, Gemma, Qwen, ...).
    Neox,
}

/// How the rotation frequencies are scaled for contexts longer than the training one.
#[derive(Clone, Debug, PartialEq)]
pub enum RopeScaling {
    /// No scaling.
    None,
    /// Linear (position interpolation): positions divided by `factor`.
    Linear {
        /// The scaling factor (`rope.scaling.factor`).
        factor: f32,
    },
    /// YaRN: interpolation for low frequencies, extrapolation for high ones, and a magnitude
    /// correction, as llama.cpp computes it.
    Yarn {
        /// The scaling factor (`rope.scaling.factor`).
        factor: f32,
        /// Context length before scaling (`rope.scaling.original_context_length`).
        n_ctx_orig: usize,
        /// `beta_fast` (llama.cpp's default 32).
        beta_fast: f32,
        /// `beta_slow` (llama.cpp's default 1).
        beta_slow: f32,
        /// `rope.scaling.yarn_log_multiplier` (0 when absent).
        log_mul: f32,
    },
}

/// A RoPE configuration: everything ggml's `rope_ext` takes besides the data and positions.
#[derive(Clone, Debug, PartialEq)]
pub struct Rope {
    /// Number of leading dimensions of each head that are rotated (`rope.dimension_count`).
    pub n_dims: usize,
    /// The pairing.
    pub mode: RopeMode,
    /// Base frequency (`rope.freq_base`).
    pub freq_base: f32,
    /// Frequency scale (1 / scaling factor; 1 without scaling).
    pub freq_scale: f32,
    /// YaRN extrapolation mix (0 disables YaRN).
    pub ext_factor: f32,
    /// Magnitude factor applied to sine and cosine.
    pub attn_factor: f32,
    /// YaRN `beta_fast`.
    pub beta_fast: f32,
    /// YaRN `beta_slow`.
    pub beta_slow: f32,
    /// Context length before scaling (used by YaRN's correction range).
    pub n_ctx_orig: usize,
    /// Per-pair frequency divisors (llama3 `rope_freqs.weight`), `n_dims / 2` of them.
    pub freq_factors: Option<Vec<f32>>,
}

impl Rope {
    /// An unscaled RoPE over `n_dims` dimensions with base `freq_base`.
    ///
    /// ```
    /// use ziglama_nn::rope::{Rope, RopeMode};
    /// let rope = Rope::new(4, RopeMode::Normal, 10000.0);
    /// let mut x = [1.0f32, 0.0, 1.0, 0.0];
    /// rope.apply(&mut x, 4, 0); // position 0 leaves x unchanged
    /// assert_eq!(x, [1.0, 0.0, 1.0, 0.0]);
    /// ```
    pub fn new(n_dims: usize, mode: RopeMode, freq_base: f32) -> Rope {
        Rope {
            n_dims,
            mode,
            freq_base,
            freq_scale: 1.0,
            ext_factor: 0.0,
            attn_factor: 1.0,
            beta_fast: 32.0,
            beta_slow: 1.0,
            n_ctx_orig: 0,
            freq_factors: None,
        }
    }

    /// This RoPE with `scaling` applied, deriving `freq_scale`, `ext_factor` and
    /// `attn_factor` as llama.cpp's context set-up does; `attn_factor` is further multiplied by
    /// `rope_attn_factor` (`rope.scaling.attn_factor`, 1 when absent).
    pub fn with_scaling(mut self, scaling: &RopeScaling, rope_attn_factor: f32) -> Rope {
        self.freq_scale = 1.0;
        self.ext_factor = 0.0;
        self.attn_factor = 1.0;
        match *scaling {
            RopeScaling::None => {}
            RopeScaling::Linear { factor } => {
                if factor != 0.0 {
                    self.freq_scale = 1.0 / factor;
                }
            }
            RopeScaling::Yarn {
                factor,
                n_ctx_orig,
                beta_fast,
                beta_slow,
                log_mul,
            } => {
                let factor = if factor == 0.0 { 1.0 } else { factor };
                self.freq_scale = 1.0 / factor;
                self.ext_factor = 1.0;
                self.beta_fast = beta_fast;
                self.beta_slow = beta_slow;
                self.n_ctx_orig = n_ctx_orig;
                let mscale = |scale: f32, m: f32| {
                    if scale <= 1.0 {
                        1.0
                    } else {
                        0.1 * m * scale.ln() + 1.0
                    }
                };
                let f = 1.0 / self.freq_scale;
                self.attn_factor = if log_mul != 0.0 {
                    mscale(f, 1.0) / mscale(f, log_mul)
                } else {
                    mscale(f, 1.0)
                };
                // rope_yarn multiplies by (1 + 0.1 ln f) again; llama.cpp cancels it here.
                self.attn_factor *= 1.0 / (1.0 + 0.1 * f.ln());
            }
        }
        self.attn_factor *= rope_attn_factor;
        self
    }

    /// YaRN's correction range (start and end dimension pair), as ggml computes it.
    fn corr_dims(&self) -> [f32; 2] {
        let n_dims = self.n_dims as f32;
        let dim = |n_rot: f32| {
            n_dims * (self.n_ctx_orig as f32 / (n_rot * 2.0 * std::f32::consts::PI)).ln()
                / (2.0 * self.freq_base.ln())
        };
        let start = dim(self.beta_fast).floor();
        let end = dim(self.beta_slow).ceil();
        [start.max(0.0), end.min(n_dims - 1.0)]
    }

    /// Fills `cache` (`n_dims` values) with `(cos, sin)` pairs for position `pos`.
    pub fn sin_cos(&self, pos: i64, cache: &mut [f32]) {
        let theta_scale = self.freq_base.powf(-2.0 / self.n_dims as f32);
        let corr = self.corr_dims();
        let mut theta = pos as f32;
        for (i, pair) in cache[..self.n_dims].chunks_exact_mut(2).enumerate() {
            let ff = self
                .freq_factors
                .as_ref()
                .and_then(|f| f.get(i).copied())
                .unwrap_or(1.0);
            let theta_extrap = theta / ff;
            let theta_interp = self.freq_scale * theta_extrap;
            let mut t = theta_interp;
            let mut mscale = self.attn_factor;
            if self.ext_factor != 0.0 {
                let ramp = {
                    let y = (i as f32 - corr[0]) / (corr[1] - corr[0]).max(0.001);
                    1.0 - y.clamp(0.0, 1.0)
                };
                let ramp_mix = ramp * self.ext_factor;
                t = theta_interp * (1.0 - ramp_mix) + theta_extrap * ramp_mix;
                mscale *= 1.0 + 0.1 * (1.0 / self.freq_scale).ln();
            }
            pair[0] = t.cos() * mscale;
            pair[1] = t.sin() * mscale;
            theta *= theta_scale;
        }
    }

    /// Rotates each head of `x` (heads of `head_dim` values, one after another) for position
    /// `pos`. Dimensions past `n_dims` are left alone.
    pub fn apply(&self, x: &mut [f32], head_dim: usize, pos: i64) {
        let mut cache = vec![0f32; self.n_dims];
        self.sin_cos(pos, &mut cache);
        self.apply_with(x, head_dim, &cache);
    }

    /// [`Rope::apply`] with a table [`Rope::sin_cos`] made.
    pub fn apply_with(&self, x: &mut [f32], head_dim: usize, cache: &[f32]) {
        let n = self.n_dims.min(head_dim) & !1;
        // Eight pairs at a time where the CPU allows, with the operations of `rotate`.
        for head in x.chunks_exact_mut(head_dim) {
            match self.mode {
                RopeMode::Normal => rotate_interleaved(&mut head[..n], &cache[..n]),
                RopeMode::Neox => {
                    let (lo, hi) = head[..n].split_at_mut(n / 2);
                    rotate_split(lo, hi, &cache[..n]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_preserves_norm_and_angle() {
        let rope = Rope::new(4, RopeMode::Normal, 10000.0);
        let mut x = [1.0f32, 0.0, 0.0, 1.0];
        rope.apply(&mut x, 4, 3);
        assert!((x[0] - 3f32.cos()).abs() < 1e-6 && (x[1] - 3f32.sin()).abs() < 1e-6);
        // second pair: frequency 10000^(-2/4) = 0.01
        assert!((x[2] + (0.03f32).sin()).abs() < 1e-6 && (x[3] - 0.03f32.cos()).abs() < 1e-6);
    }

    #[test]
    fn neox_pairs_halves() {
        let rope = Rope::new(4, RopeMode::Neox, 10000.0);
        let mut x = [1.0f32, 0.0, 0.0, 0.0];
        rope.apply(&mut x, 4, 2);
        assert!((x[0] - 2f32.cos()).abs() < 1e-6 && (x[2] - 2f32.sin()).abs() < 1e-6);
        assert_eq!(x[1], 0.0);
    }

    #[test]
    fn linear_scaling_divides_positions() {
        let a = Rope::new(8, RopeMode::Normal, 10000.0)
            .with_scaling(&RopeScaling::Linear { factor: 4.0 }, 1.0);
        let b = Rope::new(8, RopeMode::Normal, 10000.0);
        let (mut ca, mut cb) = ([0f32; 8], [0f32; 8]);
        a.sin_cos(8, &mut ca);
        b.sin_cos(2, &mut cb);
        for (x, y) in ca.iter().zip(&cb) {
            assert!((x - y).abs() < 1e-5);
        }
    }

    #[test]
    fn freq_factors_divide_theta() {
        let mut a = Rope::new(4, RopeMode::Normal, 10000.0);
        a.freq_factors = Some(vec![2.0, 1.0]);
        let mut c = [0f32; 4];
        a.sin_cos(4, &mut c);
        assert!((c[0] - 2f32.cos()).abs() < 1e-6 && (c[1] - 2f32.sin()).abs() < 1e-6);
    }

    #[test]
    fn yarn_high_frequencies_extrapolate_low_interpolate() {
        let rope = Rope::new(64, RopeMode::Neox, 10000.0).with_scaling(
            &RopeScaling::Yarn {
                factor: 4.0,
                n_ctx_orig: 4096,
                beta_fast: 32.0,
                beta_slow: 1.0,
                log_mul: 0.0,
            },
            1.0,
        );
        let mut c = [0f32; 64];
        rope.sin_cos(100, &mut c);
        // first pair (highest frequency): theta = pos, unscaled; magnitude 1 + 0.1 ln 4 (YaRN's
        // mscale, applied once)
        let mag = (c[0] * c[0] + c[1] * c[1]).sqrt();
        assert!(
            (mag - (1.0 + 0.1 * 4f32.ln())).abs() < 1e-5,
            "magnitude {mag}"
        );
        assert!((c[1] / c[0] - 100f32.tan()).abs() < 1e-3);
        // last pair (lowest frequency): interpolated, theta = pos * base^(-62/64) / 4
        let theta = 100.0 * 10000f32.powf(-62.0 / 64.0) / 4.0;
        assert!((c[63].atan2(c[62]) - theta).abs() < 1e-5);
    }
}
