//! Tokenizers built from GGUF metadata.

/// Why a tokenizer could not be built or could not encode a text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenizerError {
    /// The file's `tokenizer.ggml.model` names a tokenizer ziglama does not implement.
    #[error("tokenizer model `{0}` is not supported")]
    UnsupportedModel(String),
}
