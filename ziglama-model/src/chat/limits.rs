//! Bounds on the work a chat template may do: templates are untrusted input, so a loop
//! that never ends, recursion without a base case or output without bound stops with an
//! error instead of hanging or exhausting memory.

/// The limits a [`crate::chat::ChatTemplate`] renders within.
///
/// ```
/// use ziglama_model::chat::{ChatError, ChatTemplate, Limits, Message};
/// let t = ChatTemplate::new("{% for i in range(100000) %}{{ i }}{% endfor %}")?
///     .with_limits(Limits { max_output_bytes: 1000, ..Limits::default() })?;
/// let err = t.render(&[Message::user("hi")], false).unwrap_err();
/// assert!(matches!(err, ChatError::LimitExceeded { .. }));
/// # Ok::<(), ChatError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Instructions the template engine may execute in one render (minijinja's fuel).
    pub fuel: u64,
    /// How deep macro calls and nested blocks may go.
    pub recursion: usize,
    /// Bytes of output one render may produce.
    pub max_output_bytes: usize,
}

impl Default for Limits {
    /// Ample for any real chat template over a long conversation: 50 million
    /// instructions, recursion depth 100, 64 MiB of output.
    fn default() -> Self {
        Self {
            fuel: 50_000_000,
            recursion: 100,
            max_output_bytes: 64 << 20,
        }
    }
}
