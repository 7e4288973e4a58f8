//! Chat templates from GGUF files: the file's own template, or the fallbacks llama.cpp
//! uses when a file has none.

use super::error::{ChatError, Result};
use super::template::ChatTemplate;
use crate::gguf::{GgufFile, Metadata};

/// The GGUF metadata key of the chat template.
pub const CHAT_TEMPLATE_KEY: &str = "tokenizer.chat_template";

/// The GGUF metadata key of the tool-use variant of the chat template.
pub const CHAT_TEMPLATE_TOOL_USE_KEY: &str = "tokenizer.chat_template.tool_use";

/// A ChatML template: `<|im_start|>role\ncontent<|im_end|>\n` per message, then
/// `<|im_start|>assistant\n` with `add_generation_prompt`. Content must be a string.
const CHATML: &str = "{% for message in messages %}\
{{ '<|im_start|>' + message.role + '\\n' }}{{ message.content + '<|im_end|>\\n' }}\
{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

impl ChatTemplate {
    /// The template of a GGUF file (`tokenizer.chat_template`), with the texts of its
    /// `tokenizer.ggml.bos_token_id` and `tokenizer.ggml.eos_token_id` tokens as
    /// `bos_token` and `eos_token` (empty when the file names none).
    ///
    /// ```no_run
    /// use ziglama_model::chat::{ChatTemplate, Message};
    /// use ziglama_model::gguf::GgufFile;
    /// let file = GgufFile::open("SmolLM2-135M-Instruct.Q4_1.gguf")?;
    /// let t = ChatTemplate::from_gguf(&file)?;
    /// let prompt = t.render(&[Message::user("Hello")], true)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        Self::from_gguf_key(file, CHAT_TEMPLATE_KEY)?.ok_or(ChatError::MissingTemplate {
            key: CHAT_TEMPLATE_KEY,
        })
    }

    /// The template llama.cpp renders a GGUF file's conversations with: the file's
    /// `tokenizer.chat_template`, else its `tokenizer.chat_template.tool_use`, else ChatML
    /// ([`ChatTemplate::chatml`]), with the file's bos and eos token texts. (Gemma 3 270M's
    /// file has no template, so llama.cpp's chat uses ChatML for it.)
    pub fn from_gguf_or_chatml(file: &GgufFile) -> Result<Self> {
        if let Some(t) = Self::from_gguf_key(file, CHAT_TEMPLATE_KEY)? {
            return Ok(t);
        }
        if let Some(t) = Self::from_gguf_key(file, CHAT_TEMPLATE_TOOL_USE_KEY)? {
            return Ok(t);
        }
        let (bos, eos) = special_token_texts(file.metadata())?;
        Ok(Self::chatml()?.with_special_tokens(bos, eos))
    }

    /// A ChatML template (`<|im_start|>role\ncontent<|im_end|>\n` per message), the
    /// format llama.cpp falls back to; it renders as llama.cpp's fallback does.
    ///
    /// ```
    /// use ziglama_model::chat::{ChatTemplate, Message};
    /// let t = ChatTemplate::chatml()?;
    /// assert_eq!(
    ///     t.render(&[Message::user("Hi")], true)?,
    ///     "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    /// );
    /// # Ok::<(), ziglama_model::chat::ChatError>(())
    /// ```
    pub fn chatml() -> Result<Self> {
        Self::new(CHATML)
    }

    /// The template under `key`, if the file has one.
    fn from_gguf_key(file: &GgufFile, key: &str) -> Result<Option<Self>> {
        let meta = file.metadata();
        let Some(source) = meta.get_opt::<&str>(key).map_err(ChatError::Metadata)? else {
            return Ok(None);
        };
        let (bos, eos) = special_token_texts(meta)?;
        Ok(Some(Self::new(source)?.with_special_tokens(bos, eos)))
    }
}

/// The texts of the bos and eos tokens (empty when the file names none).
fn special_token_texts(meta: &Metadata) -> Result<(String, String)> {
    let token_text = |key: &str| -> Result<String> {
        let Some(id) = meta.get_opt::<u32>(key).map_err(ChatError::Metadata)? else {
            return Ok(String::new());
        };
        let tokens = meta
            .get_str_array("tokenizer.ggml.tokens")
            .map_err(ChatError::Metadata)?;
        Ok(tokens
            .get_str(id as usize)
            .map_err(ChatError::Metadata)?
            .to_owned())
    };
    Ok((
        token_text("tokenizer.ggml.bos_token_id")?,
        token_text("tokenizer.ggml.eos_token_id")?,
    ))
}
