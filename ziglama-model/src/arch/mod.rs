//! Model architectures, each built from GGUF metadata alone.
//!
//! [`llama`] is the LLaMA family (LLaMA 1-3, SmolLM2, Mistral without sliding windows, ...).

pub mod llama;

/// The architectures (`general.architecture`) this crate runs.
pub const SUPPORTED: &str = "llama";
