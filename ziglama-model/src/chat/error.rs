//! What can go wrong when loading or rendering a chat template.

use crate::ModelError;

/// An error of a chat template: missing, not valid Jinja, failed while rendering, or
/// stopped by a limit. Templates are untrusted input, so each of these is an error, never
/// a panic.
///
/// ```
/// use ziglama_model::chat::{ChatError, ChatTemplate, Message};
/// let err = ChatTemplate::new("{% for m in messages %}").unwrap_err();
/// assert!(matches!(err, ChatError::Syntax { line: 1, .. }));
///
/// let t = ChatTemplate::new("{{ raise_exception('no system role') }}").unwrap();
/// let err = t.render(&[Message::user("hi")], true).unwrap_err();
/// assert!(matches!(&err, ChatError::Raised { message, .. } if message == "no system role"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChatError {
    /// The GGUF file has no chat template (`tokenizer.chat_template`).
    #[error("metadata key `{key}` is missing: the model has no chat template")]
    MissingTemplate {
        /// The metadata key looked up.
        key: &'static str,
    },

    /// The template or the metadata it needs (the bos/eos token texts) could not be read.
    #[error("chat template metadata: {0}")]
    Metadata(#[source] ModelError),

    /// The template is not valid Jinja.
    #[error("chat template syntax error at line {line}: {message}")]
    Syntax {
        /// The line of the template (1-based).
        line: usize,
        /// What the parser said.
        message: String,
    },

    /// The template called `raise_exception(message)`: it refuses the conversation (for
    /// example a system message where the model has no system role).
    #[error("chat template refused the conversation (line {line}): {message}")]
    Raised {
        /// The template's message, as it passed it.
        message: String,
        /// The line of the template that raised (0 if unknown).
        line: usize,
    },

    /// Rendering failed: an undefined value used, an operation on the wrong types, an
    /// unknown filter or method.
    #[error("chat template error at line {line}: {message}")]
    Render {
        /// The line of the template (0 if unknown).
        line: usize,
        /// What failed.
        message: String,
    },

    /// Rendering needed more work (fuel), nesting or output than the template's limits
    /// allow (see [`crate::chat::Limits`]).
    #[error("chat template stopped at line {line}: {message}")]
    LimitExceeded {
        /// The line of the template (0 if unknown).
        line: usize,
        /// Which limit.
        message: String,
    },

    /// A JSON value (tools, tool calls, extra variables) that could not be parsed.
    #[error("invalid JSON for a chat template value: {0}")]
    Json(String),
}

/// The result type of chat templates.
pub type Result<T, E = ChatError> = std::result::Result<T, E>;
