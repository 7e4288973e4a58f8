//! Activations and the gated feed-forward units built on them: SiLU and SwiGLU (LLaMA),
//! tanh-approximated GELU and GeGLU (Gemma).

use std::sync::OnceLock;

use half::f16;
use half::slice::HalfFloatSliceExt;

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
///
/// Vectorized by `ziglama_tensor::vector::swiglu_ggml`, which computes exactly these values.
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    ziglama_tensor::vector::swiglu_ggml(gate, up);
}

/// `0.5 x (1 + tanh(sqrt(2/pi) x (1 + 0.044715 x^2)))`: GELU with the tanh approximation
/// (Hendrycks and Gimpel 2016), in `f32` as ggml's `ggml_gelu_f32` is compiled for CPUs with
/// FMA: the C compiler contracts `1 + 0.044715 x x` into one fused multiply-add, and the
/// table of [`gelu_ggml`] is built from exactly these values (rounding the product first
/// changes one of its 65,536 entries, at `x = -1.999`).
///
/// ```
/// assert_eq!(ziglama_nn::activation::gelu(0.0), 0.0);
/// assert!((ziglama_nn::activation::gelu(1.0) - 0.841_192).abs() < 1e-5);
/// ```
#[inline]
pub fn gelu(x: f32) -> f32 {
    const GELU_COEF_A: f32 = 0.044715;
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (GELU_COEF_A * x).mul_add(x, 1.0)).tanh())
}

/// [`gelu`] of every `f16` value, rounded to `f16`: ggml's lookup table, indexed by the bits
/// of the input rounded to `f16` (a NaN result is the quiet NaN with the input's sign, as
/// ggml's table holds it, so that the tables are equal bit for bit).
fn gelu_table() -> &'static [f16] {
    static TABLE: OnceLock<Vec<f16>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=u16::MAX)
            .map(|bits| {
                let y = gelu(f16::from_bits(bits).to_f32());
                if y.is_nan() {
                    f16::from_bits(0x7e00 | (bits & 0x8000))
                } else {
                    f16::from_f32(y)
                }
            })
            .collect()
    })
}

/// GELU as ggml's CPU backend computes it: 0 at or below -10, the identity at or above 10,
/// and in between the [`gelu`] of `x` rounded to `f16`, itself rounded to `f16` (a table
/// lookup).
///
/// ```
/// use ziglama_nn::activation::{gelu, gelu_ggml};
/// assert_eq!(gelu_ggml(-12.0), 0.0);
/// assert_eq!(gelu_ggml(12.0), 12.0);
/// assert!((gelu_ggml(0.5) - gelu(0.5)).abs() < 1e-3);
/// ```
#[inline]
pub fn gelu_ggml(x: f32) -> f32 {
    if x <= -10.0 {
        0.0
    } else if x >= 10.0 {
        x
    } else {
        gelu_table()[usize::from(f16::from_f32(x).to_bits())].to_f32()
    }
}

/// GeGLU in place, `gate[i] = gelu(gate[i]) * up[i]` (Shazeer 2020), as ggml's
/// `ggml_vec_geglu_f32`: [`gelu_ggml`] of the gate times the up projection.
///
/// ```
/// let mut gate = [1.0f32, -20.0];
/// ziglama_nn::activation::geglu(&mut gate, &[2.0, 3.0]);
/// assert!((gate[0] - 2.0 * 0.841_192).abs() < 2e-3);
/// assert_eq!(gate[1], 0.0);
/// ```
pub fn geglu(gate: &mut [f32], up: &[f32]) {
    // In chunks, so that the conversions to and from f16 run over slices (vectorized, and
    // rounding exactly as the one-value conversions do) rather than one call per value.
    const CHUNK: usize = 64;
    let table = gelu_table();
    let mut bits = [f16::ZERO; CHUNK];
    let mut gelu = [0f32; CHUNK];
    for (g, u) in gate.chunks_mut(CHUNK).zip(up.chunks(CHUNK)) {
        let len = g.len().min(u.len());
        let (g, u) = (&mut g[..len], &u[..len]);
        bits[..len].convert_from_f32_slice(g);
        for b in &mut bits[..len] {
            *b = table[usize::from(b.to_bits())];
        }
        bits[..len].convert_to_f32_slice(&mut gelu[..len]);
        for ((g, u), &y) in g.iter_mut().zip(u).zip(&gelu[..len]) {
            let x = *g;
            *g = if x <= -10.0 {
                0.0
            } else if x >= 10.0 {
                x * u
            } else {
                y * u
            };
        }
    }
}

/// The gated unit of a feed-forward network: `act(gate) * up`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatedUnit {
    /// SiLU gate ([`swiglu`]): LLaMA and most of its family.
    SwiGlu,
    /// GELU gate ([`geglu`]): Gemma.
    GeGlu,
}

impl GatedUnit {
    /// Applies the unit in place: `gate[i] = act(gate[i]) * up[i]`.
    pub fn apply(self, gate: &mut [f32], up: &[f32]) {
        match self {
            GatedUnit::SwiGlu => swiglu(gate, up),
            GatedUnit::GeGlu => geglu(gate, up),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_table_agrees_with_the_formula_within_f16_rounding() {
        for i in -2000..2000 {
            let x = i as f32 * 0.005;
            let want = gelu(x);
            let got = gelu_ggml(x);
            // Input and output each rounded to f16: relative 2^-11 each, plus the slope
            // (at most ~1.13) times the input rounding.
            assert!(
                (got - want).abs() <= 2.0 * 2f32.powi(-11) * (x.abs() + 1e-3) + 1e-4,
                "x {x}: {got} vs {want}"
            );
        }
    }

    /// The table equals the one ggml's CPU backend builds, entry for entry: its FNV-1a hash and
    /// three entries as `scripts/golden/gelu_table.py` reads them from libggml-cpu (the entry
    /// at `x = -1.999`, `0xbfff`, is the one an unfused `1 + a x x` gets wrong).
    #[test]
    fn gelu_table_is_ggml_s() {
        let table = gelu_table();
        let mut hash = 0xcbf2_9ce4_8422_2325u64;
        for byte in table.iter().flat_map(|v| v.to_bits().to_le_bytes()) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        let entry = |i: usize| table[i].to_bits();
        assert_eq!(
            (entry(0x3c00), entry(0xbfff), entry(0x4000)),
            (0x3abb, 0xa9d3, 0x3fd2)
        );
        assert_eq!(hash, 0xab04_4edb_a0ed_200c, "hash {hash:#018x}");
    }

    #[test]
    fn geglu_in_chunks_equals_the_value_by_value_definition() {
        // Lengths around the chunk size, values across the table's range and past both ends,
        // a NaN and both signs of zero.
        for len in [1usize, 63, 64, 65, 200] {
            let x: Vec<f32> = (0..len)
                .map(|i| match i % 50 {
                    7 => f32::NAN,
                    8 => -0.0,
                    9 => 10.0,
                    10 => -10.0,
                    _ => (i as f32 * 0.731).sin() * 14.0,
                })
                .collect();
            let up: Vec<f32> = (0..len).map(|i| (i as f32 * 0.377).cos() * 3.0).collect();
            let mut g = x.clone();
            geglu(&mut g, &up);
            for ((&x, &u), &y) in x.iter().zip(&up).zip(&g) {
                let want = if x <= -10.0 { 0.0 } else { gelu_ggml(x) * u };
                assert_eq!(y.to_bits(), want.to_bits(), "x={x} u={u}");
            }
        }
    }

    #[test]
    fn geglu_is_gelu_times_up() {
        let mut g = [0.3f32, 11.0, -10.0, 2.5];
        geglu(&mut g, &[2.0, 0.5, 7.0, -1.0]);
        assert_eq!(g, [gelu_ggml(0.3) * 2.0, 5.5, 0.0, -gelu_ggml(2.5)]);
    }

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
