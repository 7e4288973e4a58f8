//! The error type of the neural-network layer.

use ziglama_tensor::TensorError;

/// Everything that can go wrong in the neural-network layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NnError {
    /// A buffer or tensor whose length or shape is not what the operation needs.
    #[error("{what}: expected {expected}, found {found}")]
    Shape {
        /// Which buffer or tensor, in which operation.
        what: String,
        /// The length or shape expected.
        expected: String,
        /// The length or shape found.
        found: String,
    },

    /// A position the KV cache cannot hold.
    #[error(
        "KV cache: position {pos} of sequence {seq} is outside the cache of {capacity} positions"
    )]
    PositionOutOfRange {
        /// The sequence.
        seq: usize,
        /// The position asked for.
        pos: usize,
        /// Positions the cache holds per sequence.
        capacity: usize,
    },

    /// A position attention reads that was never stored (positions must be run in order:
    /// a batch at position `p` needs `0..p` run before or in the same batch).
    #[error("KV cache: position {pos} of sequence {seq} in layer {layer} was never stored")]
    PositionNotStored {
        /// The layer.
        layer: usize,
        /// The sequence.
        seq: usize,
        /// The position.
        pos: usize,
    },

    /// A position a sliding-window cache no longer holds: a later position has taken its slot.
    #[error(
        "KV cache: position {pos} of sequence {seq} in layer {layer} has left the window of {window} positions"
    )]
    PositionEvicted {
        /// The layer.
        layer: usize,
        /// The sequence.
        seq: usize,
        /// The position.
        pos: usize,
        /// Positions the window holds.
        window: usize,
    },

    /// A sequence id the KV cache does not have.
    #[error("KV cache: sequence {seq} does not exist (the cache holds {n_seq} sequences)")]
    SequenceOutOfRange {
        /// The sequence asked for.
        seq: usize,
        /// Sequences the cache holds.
        n_seq: usize,
    },

    /// A KV cache with no room left for a new block of positions.
    #[error("KV cache: full ({capacity} blocks of positions in use)")]
    CacheFull {
        /// Blocks the cache can hold.
        capacity: usize,
    },

    /// A KV cache storage format that cannot hold the rows asked for (e.g. a row or column
    /// range not a whole number of quantization blocks).
    #[error("KV cache storage {format}: {reason}")]
    Storage {
        /// The storage format.
        format: String,
        /// What does not fit.
        reason: String,
    },

    /// A saved KV cache sequence that cannot be loaded: bad magic, wrong shapes, truncation.
    #[error("KV cache state file: {reason}")]
    StateFile {
        /// What is wrong with it.
        reason: String,
    },

    /// A matrix product the tensor layer refused.
    #[error("{what}: {source}")]
    Tensor {
        /// Which product.
        what: String,
        /// What the tensor layer said.
        #[source]
        source: TensorError,
    },
}

/// The result type of the neural-network layer.
pub type Result<T, E = NnError> = std::result::Result<T, E>;

/// An [`NnError::Shape`] for a length.
pub(crate) fn len_error(what: impl Into<String>, expected: usize, found: usize) -> NnError {
    NnError::Shape {
        what: what.into(),
        expected: expected.to_string(),
        found: found.to_string(),
    }
}
