//! GGUF files: reading (zero-copy from a memory map) and writing.
//!
//! A GGUF file is a header (magic `GGUF`, version, tensor and key-value counts), typed
//! key-value metadata, one info record per tensor (name, dimensions innermost first, GGML
//! type, data offset), padding to `general.alignment` (default 32), and the tensor data, each
//! tensor starting at an aligned offset. Versions 2 and 3 share this layout; this module reads
//! both and writes version 3. All numbers are little-endian.
//!
//! Files are untrusted input: [`GgufFile`] checks every count, length, offset and size
//! against the file before using or allocating for it, and reports malformed input as a
//! [`ModelError`](crate::ModelError) naming the field, its byte offset and what was expected.
//!
//! ## Agreement with llama.cpp
//!
//! - [`GgufWriter`] lays files out as llama.cpp's `gguf_write_to_file` and gguf-py do:
//!   rewriting the SmolLM2 and Gemma 3 files gives them back byte for byte, and llama.cpp
//!   loads files we write with another alignment and tensor order to the same logits.
//! - The reader accepts what the specification allows and llama.cpp does not: arrays of
//!   arrays (nested at most [`MAX_ARRAY_DEPTH`] deep), and tensor data offsets that are
//!   aligned but not packed one after the other. It is stricter where the specification
//!   is: a `bool` must be 0 or 1, keys must be UTF-8, a tensor has 1 to [`MAX_DIMS`]
//!   dimensions, and `general.alignment` must be a `uint32` (as in llama.cpp).
//! - Tensor types are those [`GgmlType::from_id`] supports; a file with any other
//!   tensor type (say `I32` or `IQ2_XXS`) is an error naming the tensor and the type id.
//! - llama.cpp rejects arrays of arrays, so do not write them for it; the writer refuses
//!   tensor names of 64 bytes or more, which llama.cpp cannot hold. llama.cpp reads the
//!   version 2 and version 3 files the writer produces alike.
//!
//! Opening SmolLM2 (1.8 MB of header: 49152 tokens, 48900 merges) takes 1.3 ms, Gemma 3
//! (6.5 MB: 262144 tokens with scores) 7.3 ms, against 8.1 ms and 42 ms for llama.cpp's
//! `gguf_init_from_file` with `no_alloc` on the same machine (best of 20, 2026-11-27):
//! string arrays are kept in one buffer rather than one allocation per string.
//!
//! ```
//! use std::sync::Arc;
//! use ziglama_model::gguf::{GgufFile, GgufWriter};
//! use ziglama_model::tensor::{GgmlType, Tensor};
//!
//! let mut w = GgufWriter::new();
//! w.metadata_mut().insert("general.architecture", "llama")?;
//! w.metadata_mut().insert("llama.block_count", 2u32)?;
//! w.add_tensor("output_norm.weight", Tensor::from_f32(&[4], &[1.0, 2.0, 3.0, 4.0])?)?;
//! let bytes = w.to_bytes()?;
//!
//! let file = GgufFile::from_bytes(Arc::new(bytes))?;
//! assert_eq!((file.version(), file.alignment()), (3, 32));
//! assert_eq!(file.metadata().get_str("general.architecture")?, "llama");
//! let info = file.tensor_info("output_norm.weight").unwrap();
//! assert_eq!((info.dtype, info.shape.as_slice(), info.n_bytes), (GgmlType::F32, &[4][..], 16));
//! let t = file.tensor("output_norm.weight")?;
//! assert!(t.is_borrowed()); // zero-copy
//! assert_eq!(t.to_f32()?, [1.0, 2.0, 3.0, 4.0]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod file;
pub mod keys;
mod metadata;
mod reader;
pub mod requantize;
mod value;
mod writer;

pub use file::GgufFile;
pub use metadata::{FromMetadataValue, Metadata};
pub use value::{GgufString, MetadataArray, MetadataValue, StringArray, ValueType};
pub use writer::GgufWriter;

use ziglama_tensor::GgmlType;

/// The four bytes every GGUF file starts with.
pub const MAGIC: [u8; 4] = *b"GGUF";

/// The version [`GgufWriter`] writes.
pub const VERSION: u32 = 3;

/// The alignment of tensor data when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: usize = 32;

/// The metadata key that sets the alignment (a `uint32`, a non-zero power of two).
pub const KEY_ALIGNMENT: &str = "general.alignment";

/// The most dimensions a tensor may have (ggml's `GGML_MAX_DIMS`).
pub const MAX_DIMS: usize = 4;

/// The longest tensor name the reader accepts, in bytes (the specification's limit).
/// llama.cpp stores names in 64-byte buffers with a terminating zero, so [`GgufWriter`]
/// accepts at most 63.
pub const MAX_NAME_LEN: usize = 64;

/// The deepest nesting of arrays the reader accepts (an array of arrays is depth 2).
pub const MAX_ARRAY_DEPTH: usize = 8;

/// What a GGUF file says about one tensor.
///
/// ```
/// use ziglama_model::gguf::TensorInfo;
/// use ziglama_model::tensor::GgmlType;
/// let info = TensorInfo {
///     name: "token_embd.weight".into(),
///     dtype: GgmlType::Q8_0,
///     shape: vec![576, 49152],
///     offset: 0,
///     n_bytes: 576 / 32 * 34 * 49152,
/// };
/// assert_eq!(info.n_elements(), 576 * 49152);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor's name (`blk.0.attn_q.weight`, ...).
    pub name: String,
    /// The GGML element type.
    pub dtype: GgmlType,
    /// Dimensions in GGUF order, innermost (contiguous) first, as many as the file stores.
    pub shape: Vec<usize>,
    /// Offset of the data from the start of the data section (a multiple of the alignment).
    pub offset: u64,
    /// Size of the data in bytes.
    pub n_bytes: usize,
}

impl TensorInfo {
    /// Number of elements.
    pub fn n_elements(&self) -> usize {
        self.shape.iter().product()
    }
}
