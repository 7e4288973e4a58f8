//! # ziglama-model
//!
//! Layer 5 of ziglama: GGUF files (reading, zero-copy from a memory map, and writing),
//! tokenizers, chat templates and model architectures.
//!
//! ```no_run
//! use ziglama_model::gguf::GgufFile;
//! let file = GgufFile::open("SmolLM2-135M-Instruct.Q4_1.gguf")?;
//! assert_eq!(file.metadata().get_str("general.architecture")?, "llama");
//! let n_layers = file.metadata().get_u32("llama.block_count")?;
//! let q = file.tensor("blk.0.attn_q.weight")?; // borrowed from the memory map
//! # Ok::<(), ziglama_model::ModelError>(())
//! ```
//!
//! ## Dependencies
//!
//! - `regex`: the regular-expression steps of the BPE pre-tokenizers (DeepSeek, Falcon,
//!   StarCoder, ...), which llama.cpp runs through `std::regex`.
//! - `unicode-general-category`: the Unicode general category of every code point, which the
//!   pre-tokenizers split by (`\p{L}`, `\p{N}`, ...).

#![forbid(unsafe_code)]

pub mod arch;
pub mod catalog;
pub mod chat;
pub mod error;
pub mod gguf;
pub mod model;
pub mod tokenizer;

pub use error::{ModelError, Result};
pub use ziglama_tensor as tensor;
