//! Why a generation ended, and how a stream stands: types the generator and both ends of a
//! stream share.

use std::fmt;

/// Why a generation stopped.
///
/// ```
/// use ziglama_infer::stream::StopReason;
/// assert_eq!(StopReason::MaxTokens.to_string(), "the maximum number of tokens was reached");
/// assert!(StopReason::EndOfGeneration(2).is_natural());
/// assert!(!StopReason::Cancelled.is_natural());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StopReason {
    /// The model produced an end-of-generation token of its vocabulary (EOS, EOT, ...; see
    /// [`Tokenizer::is_eog`](ziglama_model::tokenizer::Tokenizer::is_eog)). Its text is not
    /// part of the output.
    EndOfGeneration(u32),
    /// The model produced one of the caller's stop tokens. Its text is not part of the output.
    StopToken(u32),
    /// The text reached one of the caller's stop strings (its index in the list given). The
    /// output ends just before it.
    StopString(usize),
    /// The configured maximum number of new tokens was generated.
    MaxTokens,
    /// The context window (KV cache) is full.
    ContextFull,
    /// The generation was cancelled: by a [`Cancellation`](super::Cancellation), by a
    /// callback asking to stop, or by the consumer closing the stream.
    Cancelled,
}

impl StopReason {
    /// The token that ended the generation, for an end-of-generation or stop token.
    ///
    /// ```
    /// use ziglama_infer::stream::StopReason;
    /// assert_eq!(StopReason::StopToken(13).token(), Some(13));
    /// assert_eq!(StopReason::StopString(0).token(), None);
    /// ```
    pub fn token(self) -> Option<u32> {
        match self {
            StopReason::EndOfGeneration(id) | StopReason::StopToken(id) => Some(id),
            _ => None,
        }
    }

    /// Whether the model or the caller's text rules ended the generation (end-of-generation
    /// token, stop token, stop string), rather than a limit or a cancellation.
    pub fn is_natural(self) -> bool {
        matches!(
            self,
            StopReason::EndOfGeneration(_) | StopReason::StopToken(_) | StopReason::StopString(_)
        )
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::EndOfGeneration(id) => write!(f, "end-of-generation token {id}"),
            StopReason::StopToken(id) => write!(f, "stop token {id}"),
            StopReason::StopString(i) => write!(f, "stop string #{i}"),
            StopReason::MaxTokens => f.write_str("the maximum number of tokens was reached"),
            StopReason::ContextFull => f.write_str("the context window is full"),
            StopReason::Cancelled => f.write_str("cancelled"),
        }
    }
}

/// How a stream stands, as both its producer and its consumer see it.
///
/// A stream starts [`Running`](StreamStatus::Running) and ends once, in
/// [`Finished`](StreamStatus::Finished) (with the generation's [`StopReason`]; a cancelled
/// stream is `Finished(StopReason::Cancelled)`) or [`Failed`](StreamStatus::Failed).
///
/// ```
/// use ziglama_infer::stream::{StopReason, StreamStatus};
/// let s = StreamStatus::Finished(StopReason::Cancelled);
/// assert!(s.is_cancelled() && !s.is_running());
/// assert_eq!(s.stop_reason(), Some(StopReason::Cancelled));
/// assert_eq!(StreamStatus::Failed("out of memory".into()).stop_reason(), None);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum StreamStatus {
    /// The producer is still generating.
    #[default]
    Running,
    /// The generation ended for this reason.
    Finished(StopReason),
    /// The generation failed; the message says why.
    Failed(String),
}

impl StreamStatus {
    /// Whether the producer is still generating.
    pub fn is_running(&self) -> bool {
        matches!(self, StreamStatus::Running)
    }

    /// Whether the stream was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, StreamStatus::Finished(StopReason::Cancelled))
    }

    /// The reason a finished stream stopped.
    pub fn stop_reason(&self) -> Option<StopReason> {
        match self {
            StreamStatus::Finished(r) => Some(*r),
            _ => None,
        }
    }
}

impl fmt::Display for StreamStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamStatus::Running => f.write_str("running"),
            StreamStatus::Finished(r) => write!(f, "finished: {r}"),
            StreamStatus::Failed(m) => write!(f, "failed: {m}"),
        }
    }
}
