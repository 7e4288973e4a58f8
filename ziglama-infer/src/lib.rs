//! # ziglama-infer
//!
//! Layer 6 of ziglama: the `TextGenerator` builder, samplers and logit processors, KV cache
//! implementations, streaming, batching, grammar-constrained output and profiling.
//!
//! - [`generator`]: the `TextGenerator` builder, generation parameters and results,
//!   contrastive search.
//! - [`sampling`]: the `Sampler` and `LogitProcessor` traits and the sampler catalogue.
//! - [`stream`]: incremental UTF-8-safe detokenization, stop strings and the token buffer
//!   that carries a generation to its consumer.
//!
//! ```
//! assert_eq!(ziglama_infer::model::tensor::GgmlType::Q8_0.type_size(), 34);
//! ```

#![forbid(unsafe_code)]

pub use ziglama_model as model;

pub mod generator;
pub mod sampling;
pub mod stream;
