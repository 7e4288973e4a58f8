//! # ziglama-nn
//!
//! Layers 3 and 4 of ziglama: the neural primitives (RMSNorm, RoPE, softmax, activations),
//! attention reading keys and values through the `KvCache` trait, and transformer blocks.
//!
//! Not built yet: this crate currently re-exports the tensor layer it will build on, so that
//! the dependency order (infer -> model -> nn -> tensor) is fixed from the start.
//!
//! ```
//! assert_eq!(ziglama_nn::tensor::GgmlType::Q4_K.block_size(), 256);
//! ```

#![forbid(unsafe_code)]

pub use ziglama_tensor as tensor;
