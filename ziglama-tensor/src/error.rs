//! The error type of the tensor layer.

use crate::GgmlType;

/// Everything that can go wrong in the tensor layer: shapes, sizes and types that do not
/// fit together. Each variant says which operation and what was expected.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TensorError {
    /// A GGML type id that ziglama does not know or does not support.
    #[error("unsupported GGML type id {id} ({name})")]
    UnsupportedType {
        /// The numeric type id as stored in the file.
        id: u32,
        /// Its ggml name, or "unknown".
        name: &'static str,
    },
    /// A row length that is not a whole number of blocks of the type.
    #[error("{op}: {n} elements is not a multiple of the {ty} block size {block_size}")]
    NotBlockMultiple {
        /// The operation that was asked for.
        op: &'static str,
        /// The type involved.
        ty: GgmlType,
        /// The element count given.
        n: usize,
        /// The type's block size.
        block_size: usize,
    },
    /// A buffer whose length does not match what the shape and type require.
    #[error("{op}: expected {expected} {unit}, got {actual}")]
    LengthMismatch {
        /// The operation that was asked for.
        op: &'static str,
        /// What the shape and type require.
        expected: usize,
        /// What was given.
        actual: usize,
        /// "bytes" or "elements".
        unit: &'static str,
    },
    /// A byte buffer that is not aligned for the block type read from it.
    #[error("{op}: {ty} data at address offset {offset} is not aligned to {align} bytes")]
    Misaligned {
        /// The operation that was asked for.
        op: &'static str,
        /// The type involved.
        ty: GgmlType,
        /// The address modulo the required alignment.
        offset: usize,
        /// The required alignment.
        align: usize,
    },
    /// A type that has no quantizer (or is not a valid target of the operation).
    #[error("{op}: not available for {ty}")]
    NotAvailable {
        /// The operation that was asked for.
        op: &'static str,
        /// The type involved.
        ty: GgmlType,
    },
    /// A shape whose element or byte count overflows `usize`, or that is otherwise invalid.
    #[error("invalid shape {shape:?}: {reason}")]
    InvalidShape {
        /// The dimensions, innermost first.
        shape: Vec<usize>,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// The result type of the tensor layer.
pub type Result<T, E = TensorError> = std::result::Result<T, E>;
