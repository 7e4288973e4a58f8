//! # ziglama-nn
//!
//! Layers 3 and 4 of ziglama: the neural primitives (RMSNorm, RoPE, softmax, activations),
//! causal grouped-query attention reading keys and values through the [`KvCache`] trait, and
//! the transformer block that LLaMA, Gemma and the rest of the family are configured from.
//!
//! The numerics follow llama.cpp's CPU path: RMSNorm sums squares in `f64`, RoPE builds its
//! sine/cosine table with the same iterated `f32` products, keys and values are rounded to
//! `f16` as llama.cpp's KV cache stores them, and the query and the softmax probabilities are
//! rounded to `f16` before their products with the `f16` keys and values, as ggml's `mul_mat`
//! of an F16 matrix does.
//!
//! ```
//! use ziglama_nn::norm::rms_norm;
//! let mut x = [3.0f32, 4.0];
//! rms_norm(&mut x, &[1.0, 2.0], 0.0);
//! let s = (12.5f32).sqrt();
//! assert!((x[0] - 3.0 / s).abs() < 1e-6 && (x[1] - 8.0 / s).abs() < 1e-6);
//! ```

#![forbid(unsafe_code)]

pub mod activation;
pub mod attention;
pub mod block;
pub mod error;
pub mod ggml_order;
pub mod kv_cache;
pub mod norm;
pub mod rope;
pub mod softmax;

pub use error::{NnError, Result};
pub use half;
pub use kv_cache::KvCache;
pub use ziglama_tensor as tensor;
