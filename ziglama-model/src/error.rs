//! The error type of the model layer.
//!
//! Every error a malformed GGUF file can cause names the field that could not be read (a
//! header field, a metadata key, a tensor name), the byte offset in the file where it starts,
//! and what was expected there. Errors from typed metadata accessors name the key and the
//! expected and found types.

use std::path::PathBuf;

use ziglama_tensor::TensorError;

/// Everything that can go wrong in the model layer.
///
/// ```
/// use ziglama_model::gguf::GgufFile;
/// use ziglama_model::ModelError;
/// use std::sync::Arc;
/// let err = GgufFile::from_bytes(Arc::new(b"GGUF\x01\0\0\0".to_vec())).unwrap_err();
/// assert!(matches!(err, ModelError::UnsupportedVersion { version: 1 }));
/// assert!(err.to_string().contains("byte offset 4"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A file could not be opened, mapped, created or written.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done ("open", "map", "create", "write").
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The first four bytes are not the GGUF magic.
    #[error("GGUF magic at byte offset 0: expected \"GGUF\" (47 47 55 46), found {found:02x?}")]
    BadMagic {
        /// The bytes found.
        found: [u8; 4],
    },

    /// A GGUF version this reader does not support (only 2 and 3 are).
    #[error("GGUF version at byte offset 4: version {version} is not supported, expected 2 or 3{}",
        version_hint(*version))]
    UnsupportedVersion {
        /// The version found.
        version: u32,
    },

    /// The data ends before a field is complete.
    #[error("{field} at byte offset {offset}: needs {needed} bytes but the file has only {available} left")]
    Truncated {
        /// The field being read.
        field: String,
        /// Where the field starts.
        offset: u64,
        /// Bytes the field needs.
        needed: u64,
        /// Bytes left from `offset` to the end of the data.
        available: u64,
    },

    /// A length or count that cannot fit in the bytes that remain (checked before allocating).
    #[error("{field} at byte offset {offset}: count {count} of items of at least {item_size} bytes each does not fit in the {available} bytes left")]
    CountTooLarge {
        /// The field holding the count.
        field: String,
        /// Where the count is stored.
        offset: u64,
        /// The count read.
        count: u64,
        /// The smallest size one item takes in the file.
        item_size: u64,
        /// Bytes left after the count.
        available: u64,
    },

    /// A field whose value is not allowed.
    #[error("{field} at byte offset {offset}: expected {expected}, found {found}")]
    InvalidValue {
        /// The field.
        field: String,
        /// Where the field starts.
        offset: u64,
        /// What the format allows there.
        expected: String,
        /// What was found.
        found: String,
    },

    /// A metadata value type id outside the GGUF specification.
    #[error(
        "{field} at byte offset {offset}: unknown GGUF metadata value type {id}, expected 0..=12"
    )]
    UnknownValueType {
        /// The field (which key's type, or which array's element type).
        field: String,
        /// Where the type id is stored.
        offset: u64,
        /// The id found.
        id: u32,
    },

    /// Arrays nested deeper than the reader accepts.
    #[error("{field} at byte offset {offset}: arrays nested deeper than {max} levels")]
    NestingTooDeep {
        /// The array.
        field: String,
        /// Where its element type is stored.
        offset: u64,
        /// The deepest nesting accepted.
        max: usize,
    },

    /// The same metadata key twice.
    #[error("metadata key `{key}` at byte offset {offset}: duplicate key (first at byte offset {first_offset})")]
    DuplicateKey {
        /// The key.
        key: String,
        /// Where the second occurrence starts.
        offset: u64,
        /// Where the first occurrence starts.
        first_offset: u64,
    },

    /// The same tensor name twice.
    #[error("tensor `{name}` at byte offset {offset}: duplicate tensor name (first at byte offset {first_offset})")]
    DuplicateTensor {
        /// The tensor name.
        name: String,
        /// Where the second tensor info starts.
        offset: u64,
        /// Where the first one starts.
        first_offset: u64,
    },

    /// A tensor whose type or shape the tensor layer rejects (an unknown or unsupported type
    /// id, a row that is not a whole number of blocks, a size that overflows).
    #[error("tensor `{tensor}` at byte offset {offset}: {source}")]
    InvalidTensor {
        /// The tensor name.
        tensor: String,
        /// Where the offending field (type id or dimensions) is stored.
        offset: u64,
        /// What the tensor layer said.
        #[source]
        source: TensorError,
    },

    /// Tensor data that does not lie inside the file.
    #[error("tensor `{tensor}` data offset at byte offset {offset}: data at file bytes {start}..{end} does not lie inside the file of {file_len} bytes")]
    TensorDataOutOfBounds {
        /// The tensor name.
        tensor: String,
        /// Where the tensor's data offset field is stored.
        offset: u64,
        /// First byte of the data in the file (saturated on overflow).
        start: u64,
        /// One past its last byte (saturated on overflow).
        end: u64,
        /// The file length.
        file_len: u64,
    },

    /// A metadata key that is not present.
    #[error("metadata key `{key}` is missing")]
    MissingKey {
        /// The key.
        key: String,
    },

    /// A metadata value of another type than the accessor expects.
    #[error("metadata key `{key}`: expected {expected}, found {found}")]
    WrongType {
        /// The key.
        key: String,
        /// The type (or types) the accessor accepts.
        expected: &'static str,
        /// The type found.
        found: String,
    },

    /// An integer metadata value that does not fit the requested type.
    #[error("metadata key `{key}`: value {value} does not fit in {target}")]
    OutOfRange {
        /// The key.
        key: String,
        /// The value found.
        value: i128,
        /// The requested type.
        target: &'static str,
    },

    /// A string that was asked for as UTF-8 but is not.
    #[error("{field}: not valid UTF-8 (valid up to byte {valid_up_to})")]
    NotUtf8 {
        /// Which string (key, or key and index).
        field: String,
        /// Length of the valid UTF-8 prefix.
        valid_up_to: usize,
    },

    /// An index past the end of a metadata array.
    #[error("{what}: index {index} is out of range for {len} items")]
    IndexOutOfRange {
        /// Which array.
        what: String,
        /// The index asked for.
        index: usize,
        /// The array's length.
        len: usize,
    },

    /// A tensor name that the file does not contain.
    #[error("tensor `{name}` not found")]
    TensorNotFound {
        /// The name asked for.
        name: String,
    },

    /// The tensor layer refused a tensor (for example when building a tensor from file data).
    #[error("tensor `{tensor}`: {source}")]
    Tensor {
        /// The tensor name.
        tensor: String,
        /// What the tensor layer said.
        #[source]
        source: TensorError,
    },

    /// A known model could not be fetched (see [`crate::catalog`]).
    #[error(transparent)]
    Fetch(#[from] crate::catalog::FetchError),
    /// A tokenizer that cannot be built from the file's metadata, or text it cannot encode.
    #[error(transparent)]
    Tokenizer(#[from] crate::tokenizer::TokenizerError),

    /// An architecture (`general.architecture`) this crate cannot run.
    #[error("architecture `{architecture}` is not supported (supported: {supported})")]
    UnknownArchitecture {
        /// The architecture named by the file.
        architecture: String,
        /// The architectures this crate runs.
        supported: &'static str,
    },

    /// A hyperparameter whose value the architecture cannot run with.
    #[error("metadata key `{key}`: {reason}")]
    InvalidHyperparameter {
        /// The key.
        key: String,
        /// What is wrong with its value.
        reason: String,
    },

    /// A model tensor whose shape is not what the hyperparameters say.
    #[error("tensor `{tensor}`: expected shape {expected}, found {found}")]
    TensorShape {
        /// The tensor name.
        tensor: String,
        /// The shape expected.
        expected: String,
        /// The shape found.
        found: String,
    },

    /// A batch entry the model cannot run (a token outside the vocabulary, a position past
    /// the context, a sequence the state does not have).
    #[error("batch entry {index}: {reason}")]
    InvalidBatch {
        /// The entry's index in the batch.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },

    /// A prompt (or generation) that does not fit in the context.
    #[error("{n_tokens} tokens do not fit in the context of {n_ctx} positions")]
    ContextOverflow {
        /// Tokens asked for.
        n_tokens: usize,
        /// Positions the context holds.
        n_ctx: usize,
    },

    /// An error of the neural-network layer (a shape, the KV cache, a product).
    #[error(transparent)]
    Nn(#[from] ziglama_nn::NnError),

    /// Something a GGUF writer was asked to write that the format (or llama.cpp) rejects.
    #[error("cannot write {field}: expected {expected}, found {found}")]
    InvalidWrite {
        /// What was being added (a key, a tensor).
        field: String,
        /// What is allowed.
        expected: String,
        /// What was given.
        found: String,
    },
}

fn version_hint(version: u32) -> &'static str {
    match version {
        1 => " (GGUF v1 is obsolete: convert the file with a current llama.cpp)",
        v if v != 0 && v & 0xffff == 0 => {
            " (this looks byte-swapped: big-endian GGUF files are not supported)"
        }
        _ => "",
    }
}

/// The result type of the model layer.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
