//! What a generation starts from: text, tokens, or a conversation for the chat template.

use ziglama_model::chat::Message;

/// The input of a generation.
///
/// - [`Prompt::Text`] is tokenized as llama.cpp tokenizes a prompt: BOS added if the
///   vocabulary asks for it, special-token text (`<|im_start|>`) parsed as special tokens.
/// - [`Prompt::Tokens`] is used as it is.
/// - [`Prompt::Chat`] is rendered with the model's chat template (messages, then the
///   assistant's turn opened: `add_generation_prompt`), then tokenized as text, without a
///   second BOS when the template already wrote one.
///
/// ```
/// use ziglama_infer::generator::Prompt;
/// use ziglama_infer::model::chat::Message;
/// assert!(matches!(Prompt::from("Hello"), Prompt::Text(_)));
/// assert!(matches!(Prompt::from(vec![1u32, 2]), Prompt::Tokens(_)));
/// assert!(matches!(Prompt::from(vec![Message::user("Hi")]), Prompt::Chat(_)));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Prompt {
    /// Text, tokenized by the generator.
    Text(String),
    /// Token ids.
    Tokens(Vec<u32>),
    /// A conversation, rendered by the chat template.
    Chat(Vec<Message>),
}

impl From<&str> for Prompt {
    fn from(text: &str) -> Prompt {
        Prompt::Text(text.to_owned())
    }
}

impl From<String> for Prompt {
    fn from(text: String) -> Prompt {
        Prompt::Text(text)
    }
}

impl From<&String> for Prompt {
    fn from(text: &String) -> Prompt {
        Prompt::Text(text.clone())
    }
}

impl From<Vec<u32>> for Prompt {
    fn from(tokens: Vec<u32>) -> Prompt {
        Prompt::Tokens(tokens)
    }
}

impl From<&[u32]> for Prompt {
    fn from(tokens: &[u32]) -> Prompt {
        Prompt::Tokens(tokens.to_vec())
    }
}

impl From<Vec<Message>> for Prompt {
    fn from(messages: Vec<Message>) -> Prompt {
        Prompt::Chat(messages)
    }
}

impl From<&[Message]> for Prompt {
    fn from(messages: &[Message]) -> Prompt {
        Prompt::Chat(messages.to_vec())
    }
}
