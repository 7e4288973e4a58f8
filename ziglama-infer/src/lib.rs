//! # ziglama-infer
//!
//! Layer 6 of ziglama: the `TextGenerator` builder, samplers and logit processors, KV cache
//! implementations, streaming, batching, grammar-constrained output and profiling.
//!
//! Not built yet: this crate currently re-exports the model layer it will build on, so that
//! the dependency order (infer -> model -> nn -> tensor) is fixed from the start.
//!
//! ```
//! assert_eq!(ziglama_infer::model::tensor::GgmlType::Q8_0.type_size(), 34);
//! ```

#![forbid(unsafe_code)]

pub use ziglama_model as model;
