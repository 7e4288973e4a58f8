//! [`ChatTemplate`]: a chat template compiled once and rendered over conversations.

use std::sync::Arc;

use minijinja::{Environment, ErrorKind, Value};

use super::clock::{system_clock, Clock, DateTime};
use super::environment::{build, Raised, TEMPLATE_NAME};
use super::error::{ChatError, Result};
use super::limits::Limits;
use super::message::Message;
use super::source::prepare;

/// A Jinja chat template, ready to render conversations into a prompt exactly as
/// Hugging Face's `apply_chat_template` renders them with Python's jinja2.
///
/// The template sees the variables `messages` (a list of maps with `role`, `content` and
/// any extra fields), `add_generation_prompt`, `bos_token`, `eos_token`, `tools` and
/// `documents` (none unless given), plus any passed to [`ChatTemplate::render_with`]; and
/// the functions `raise_exception(message)` and `strftime_now(format)`.
///
/// ```
/// use ziglama_model::chat::{ChatTemplate, Message};
/// let chatml = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n\
///               {% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
/// let t = ChatTemplate::new(chatml)?;
/// let prompt = t.render(&[Message::system("Be brief."), Message::user("Hi!")], true)?;
/// assert_eq!(
///     prompt,
///     "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n"
/// );
/// # Ok::<(), ziglama_model::chat::ChatError>(())
/// ```
pub struct ChatTemplate {
    source: String,
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
    clock: Clock,
    limits: Limits,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("source", &self.source)
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compiles a template; a syntax error is reported with its line. The bos and eos
    /// tokens are empty until set with [`ChatTemplate::with_special_tokens`].
    pub fn new(source: impl Into<String>) -> Result<Self> {
        let source = source.into();
        let clock = system_clock();
        let limits = Limits::default();
        let env = compile(&source, clock.clone(), &limits)?;
        Ok(Self {
            source,
            env,
            bos_token: String::new(),
            eos_token: String::new(),
            clock,
            limits,
        })
    }

    /// Sets the texts of `bos_token` and `eos_token`.
    pub fn with_special_tokens(mut self, bos: impl Into<String>, eos: impl Into<String>) -> Self {
        self.bos_token = bos.into();
        self.eos_token = eos.into();
        self
    }

    /// Sets the clock `strftime_now` reads (by default the system time in UTC).
    ///
    /// ```
    /// use ziglama_model::chat::{ChatTemplate, DateTime, Message};
    /// let t = ChatTemplate::new("Today is {{ strftime_now('%d %b %Y') }}.")?
    ///     .with_clock(|| DateTime::new(2024, 3, 9, 13, 7, 5).unwrap())?;
    /// assert_eq!(t.render(&[], false)?, "Today is 09 Mar 2024.");
    /// # Ok::<(), ziglama_model::chat::ChatError>(())
    /// ```
    pub fn with_clock(
        mut self,
        clock: impl Fn() -> DateTime + Send + Sync + 'static,
    ) -> Result<Self> {
        self.clock = Arc::new(clock);
        self.env = compile(&self.source, self.clock.clone(), &self.limits)?;
        Ok(self)
    }

    /// Sets the limits rendering stays within (see [`Limits`]).
    pub fn with_limits(mut self, limits: Limits) -> Result<Self> {
        self.limits = limits;
        self.env = compile(&self.source, self.clock.clone(), &self.limits)?;
        Ok(self)
    }

    /// The template's source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The text of `bos_token`.
    pub fn bos_token(&self) -> &str {
        &self.bos_token
    }

    /// The text of `eos_token`.
    pub fn eos_token(&self) -> &str {
        &self.eos_token
    }

    /// Renders a conversation; with `add_generation_prompt` the prompt ends with what opens
    /// the assistant's reply.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let messages = Value::from_iter(messages.iter().map(Message::to_value));
        self.render_with(&messages, add_generation_prompt, &[])
    }

    /// Renders a conversation given as a template value (a list of message maps, for
    /// example parsed with [`crate::chat::parse_json`]), with extra variables: `tools`,
    /// `documents`, `enable_thinking`, ... (a variable given here replaces the default of
    /// the same name).
    ///
    /// ```
    /// use ziglama_model::chat::{parse_json, ChatTemplate};
    /// let t = ChatTemplate::new("{% for t in tools %}{{ t.function.name }}: {{ t | tojson }}\n{% endfor %}\
    ///                            {{ messages[0].content }}")?;
    /// let messages = parse_json(r#"[{"role": "user", "content": "Weather?"}]"#)?;
    /// let tools = parse_json(r#"[{"type": "function", "function": {"name": "get_weather"}}]"#)?;
    /// let out = t.render_with(&messages, true, &[("tools", tools)])?;
    /// assert_eq!(
    ///     out,
    ///     "get_weather: {\"type\": \"function\", \"function\": {\"name\": \"get_weather\"}}\nWeather?"
    /// );
    /// # Ok::<(), ziglama_model::chat::ChatError>(())
    /// ```
    pub fn render_with(
        &self,
        messages: &Value,
        add_generation_prompt: bool,
        variables: &[(&str, Value)],
    ) -> Result<String> {
        let defaults = [
            ("messages", messages.clone()),
            ("add_generation_prompt", Value::from(add_generation_prompt)),
            ("bos_token", Value::from(self.bos_token.as_str())),
            ("eos_token", Value::from(self.eos_token.as_str())),
            ("tools", Value::from(())),
            ("documents", Value::from(())),
        ];
        let context = Value::from_pairs(defaults.into_iter().chain(variables.iter().cloned()));
        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| convert(&e, false))?;
        let mut out = LimitedWriter {
            buf: Vec::new(),
            max: self.limits.max_output_bytes,
            exceeded: false,
        };
        match template.render_captured_to(context, &mut out) {
            Ok(_) => String::from_utf8(out.buf).map_err(|e| ChatError::Render {
                line: 0,
                message: format!("output is not valid UTF-8: {e}"),
            }),
            Err(e) => Err(convert(&e, out.exceeded)),
        }
    }
}

/// Compiles the source (after [`prepare`]) into an environment.
fn compile(source: &str, clock: Clock, limits: &Limits) -> Result<Environment<'static>> {
    build(prepare(source), clock, limits).map_err(|e| convert(&e, false))
}

/// A writer that refuses to grow past `max` bytes.
struct LimitedWriter {
    buf: Vec<u8>,
    max: usize,
    exceeded: bool,
}

impl std::io::Write for LimitedWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len().saturating_add(data.len()) > self.max {
            self.exceeded = true;
            return Err(std::io::Error::other("output limit reached"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The chat error for a minijinja error.
fn convert(e: &minijinja::Error, output_exceeded: bool) -> ChatError {
    let line = e.line().unwrap_or(0);
    let detail = e.detail().map(str::to_owned).unwrap_or_default();
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(raised) = s.downcast_ref::<Raised>() {
            return ChatError::Raised {
                message: raised.0.clone(),
                line,
            };
        }
        source = s.source();
    }
    let message = if detail.is_empty() {
        e.kind().to_string()
    } else {
        format!("{}: {detail}", e.kind())
    };
    match e.kind() {
        ErrorKind::SyntaxError => ChatError::Syntax { line, message },
        ErrorKind::OutOfFuel => ChatError::LimitExceeded { line, message },
        ErrorKind::WriteFailure if output_exceeded => ChatError::LimitExceeded {
            line,
            message: "output limit reached".into(),
        },
        _ if detail == "recursion limit exceeded" => ChatError::LimitExceeded { line, message },
        _ => ChatError::Render { line, message },
    }
}

#[cfg(test)]
mod tests {
    use super::ChatTemplate;

    #[test]
    fn templates_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ChatTemplate>();
    }
}
