//! The standardised metadata key names of the GGUF specification.
//!
//! Keys that every file may carry are constants here. Keys of the model's architecture are
//! prefixed by its name (`llama.block_count`, `gemma3.block_count`): their suffixes are the
//! constants of [`arch`], joined to the architecture with [`arch_key`].
//!
//! ```
//! use ziglama_model::gguf::keys::{self, arch, arch_key};
//! assert_eq!(keys::TOKENIZER_TOKENS, "tokenizer.ggml.tokens");
//! assert_eq!(arch_key("llama", arch::HEAD_COUNT_KV), "llama.attention.head_count_kv");
//! ```

/// The architecture (`llama`, `gemma3`, ...): the prefix of the model's own keys.
pub const GENERAL_ARCHITECTURE: &str = "general.architecture";
/// The version of the quantization format (`uint32`).
pub const GENERAL_QUANTIZATION_VERSION: &str = "general.quantization_version";
/// The alignment of tensor data (`uint32`, a power of two; 32 when absent).
pub const GENERAL_ALIGNMENT: &str = super::KEY_ALIGNMENT;
/// The model's name.
pub const GENERAL_NAME: &str = "general.name";
/// The model's author.
pub const GENERAL_AUTHOR: &str = "general.author";
/// The organisation that published the model.
pub const GENERAL_ORGANIZATION: &str = "general.organization";
/// The model's license.
pub const GENERAL_LICENSE: &str = "general.license";
/// The size label (`135M`, `7B`, ...).
pub const GENERAL_SIZE_LABEL: &str = "general.size_label";
/// The predominant tensor type, as llama.cpp's `llama_ftype` (`uint32`).
pub const GENERAL_FILE_TYPE: &str = "general.file_type";

/// The tokenizer model (`llama` for SentencePiece, `gpt2` for byte-level BPE, ...).
pub const TOKENIZER_MODEL: &str = "tokenizer.ggml.model";
/// The pre-tokenizer (`smollm`, `llama3`, `default`, ...).
pub const TOKENIZER_PRE: &str = "tokenizer.ggml.pre";
/// The vocabulary: one string per token id.
pub const TOKENIZER_TOKENS: &str = "tokenizer.ggml.tokens";
/// Per-token scores (`float32`), for SentencePiece.
pub const TOKENIZER_SCORES: &str = "tokenizer.ggml.scores";
/// Per-token types (`int32`: normal, unknown, control, user-defined, unused, byte).
pub const TOKENIZER_TOKEN_TYPE: &str = "tokenizer.ggml.token_type";
/// BPE merges, `"left right"` strings in priority order.
pub const TOKENIZER_MERGES: &str = "tokenizer.ggml.merges";
/// Beginning-of-sequence token id.
pub const TOKENIZER_BOS_ID: &str = "tokenizer.ggml.bos_token_id";
/// End-of-sequence token id.
pub const TOKENIZER_EOS_ID: &str = "tokenizer.ggml.eos_token_id";
/// Unknown token id.
pub const TOKENIZER_UNK_ID: &str = "tokenizer.ggml.unknown_token_id";
/// Separator token id.
pub const TOKENIZER_SEP_ID: &str = "tokenizer.ggml.separator_token_id";
/// Padding token id.
pub const TOKENIZER_PAD_ID: &str = "tokenizer.ggml.padding_token_id";
/// Whether to add the BOS token when tokenizing (`bool`).
pub const TOKENIZER_ADD_BOS: &str = "tokenizer.ggml.add_bos_token";
/// Whether to add the EOS token when tokenizing (`bool`).
pub const TOKENIZER_ADD_EOS: &str = "tokenizer.ggml.add_eos_token";
/// Whether SentencePiece adds a space before the text (`bool`).
pub const TOKENIZER_ADD_SPACE_PREFIX: &str = "tokenizer.ggml.add_space_prefix";
/// The Jinja chat template.
pub const TOKENIZER_CHAT_TEMPLATE: &str = "tokenizer.chat_template";

/// `<architecture>.<suffix>`, the key of an architecture's hyperparameter.
pub fn arch_key(architecture: &str, suffix: &str) -> String {
    format!("{architecture}.{suffix}")
}

/// Suffixes of the per-architecture keys; join them with [`arch_key`].
pub mod arch {
    /// Context length the model was trained with.
    pub const CONTEXT_LENGTH: &str = "context_length";
    /// Width of the residual stream (`n_embd`).
    pub const EMBEDDING_LENGTH: &str = "embedding_length";
    /// Number of transformer blocks.
    pub const BLOCK_COUNT: &str = "block_count";
    /// Hidden width of the feed-forward network.
    pub const FEED_FORWARD_LENGTH: &str = "feed_forward_length";
    /// Number of experts (mixture-of-experts models).
    pub const EXPERT_COUNT: &str = "expert_count";
    /// Number of experts used per token.
    pub const EXPERT_USED_COUNT: &str = "expert_used_count";
    /// Vocabulary size, when the file states it.
    pub const VOCAB_SIZE: &str = "vocab_size";
    /// Number of query heads.
    pub const HEAD_COUNT: &str = "attention.head_count";
    /// Number of key-value heads (grouped-query attention).
    pub const HEAD_COUNT_KV: &str = "attention.head_count_kv";
    /// Epsilon of LayerNorm.
    pub const LAYER_NORM_EPSILON: &str = "attention.layer_norm_epsilon";
    /// Epsilon of RMSNorm.
    pub const LAYER_NORM_RMS_EPSILON: &str = "attention.layer_norm_rms_epsilon";
    /// Width of one key head, when not `n_embd / n_head`.
    pub const KEY_LENGTH: &str = "attention.key_length";
    /// Width of one value head, when not `n_embd / n_head`.
    pub const VALUE_LENGTH: &str = "attention.value_length";
    /// Sliding-window size of local attention layers.
    pub const SLIDING_WINDOW: &str = "attention.sliding_window";
    /// Number of dimensions RoPE rotates.
    pub const ROPE_DIMENSION_COUNT: &str = "rope.dimension_count";
    /// RoPE base frequency.
    pub const ROPE_FREQ_BASE: &str = "rope.freq_base";
    /// RoPE scaling type (`none`, `linear`, `yarn`).
    pub const ROPE_SCALING_TYPE: &str = "rope.scaling.type";
    /// RoPE scaling factor.
    pub const ROPE_SCALING_FACTOR: &str = "rope.scaling.factor";
    /// Context length before RoPE scaling.
    pub const ROPE_SCALING_ORIGINAL_CONTEXT_LENGTH: &str = "rope.scaling.original_context_length";
}
