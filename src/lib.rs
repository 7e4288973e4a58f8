//! # ziglama
//!
//! Run LLaMA-family language models from GGUF files on the CPU, with the whole inference
//! layer as parts you pick: samplers, logit processors, KV caches, streaming, batching,
//! grammar-constrained output and profiling.
//!
//! This facade re-exports the crates of the six layers:
//!
//! | layers | crate | what |
//! |---|---|---|
//! | 1-2 | [`tensor`] | GGML types and block formats, tensors, quantized kernels, thread pool |
//! | 3-4 | [`nn`] | norms, RoPE, attention, transformer blocks |
//! | 5 | [`model`] | GGUF files, tokenizers, architectures |
//! | 6 | [`infer`] | text generation, sampling, KV caches, streaming, batching, grammars |
//!
//! ```
//! use ziglama::tensor::GgmlType;
//! assert_eq!(GgmlType::Q4_0.type_size(), 18);
//! ```

#![forbid(unsafe_code)]

pub use ziglama_infer as infer;
pub use ziglama_model as model;
pub use ziglama_nn as nn;
pub use ziglama_tensor as tensor;
