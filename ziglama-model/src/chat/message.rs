//! One message of a conversation: a role and its text, with any other fields a template
//! reads (tool calls, reasoning, a tool call id, ...).

use minijinja::Value;

/// A message of a conversation, as chat templates see it: a map with `role`, `content`
/// and any extra fields.
///
/// Roles are strings: templates know `system`, `user`, `assistant` and often `tool`; any
/// other role is passed as it is and the template decides (many refuse unknown roles).
///
/// ```
/// use ziglama_model::chat::{parse_json, Message};
/// let m = Message::assistant("")
///     .with("reasoning_content", "Paris is the capital.")
///     .with("tool_calls", parse_json(r#"[{"type": "function",
///         "function": {"name": "lookup", "arguments": {"q": "Paris"}}}]"#)?);
/// assert_eq!(m.role, "assistant");
/// assert_eq!(m.to_value().get_attr("reasoning_content")?.as_str(), Some("Paris is the capital."));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// Who speaks: `system`, `user`, `assistant`, `tool` or any other role.
    pub role: String,
    /// The text of the message.
    pub content: String,
    /// Further fields, in order (`tool_calls`, `reasoning_content`, `tool_call_id`,
    /// `name`, ...); a field named `content` or `role` replaces the one above, for example
    /// to pass content parts (a list) or no content (none).
    pub extra: Vec<(String, Value)>,
}

impl Message {
    /// A message with a role and content and no other fields.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
            extra: Vec::new(),
        }
    }

    /// A `system` message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }

    /// A `user` message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }

    /// An `assistant` message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }

    /// A `tool` message (a tool's result).
    pub fn tool(content: impl Into<String>) -> Self {
        Self::new("tool", content)
    }

    /// Adds a field (replacing an earlier one of the same name).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        let key = key.into();
        self.extra.retain(|(k, _)| *k != key);
        self.extra.push((key, value.into()));
        self
    }

    /// The message as a template value: a map of `role`, `content`, then the extra fields.
    pub fn to_value(&self) -> Value {
        let fields = [
            ("role".to_owned(), Value::from(self.role.as_str())),
            ("content".to_owned(), Value::from(self.content.as_str())),
        ];
        Value::from_pairs(fields.into_iter().chain(self.extra.iter().cloned()))
    }
}

impl From<&Message> for Value {
    fn from(m: &Message) -> Value {
        m.to_value()
    }
}
