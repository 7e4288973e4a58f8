//! # ziglama-model
//!
//! Layer 5 of ziglama: GGUF files (reading, zero-copy from a memory map, and writing),
//! tokenizers, chat templates and model architectures.

#![forbid(unsafe_code)]

pub mod catalog;
pub mod gguf;

pub use ziglama_tensor as tensor;
