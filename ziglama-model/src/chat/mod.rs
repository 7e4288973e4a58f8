//! Chat templates: the GGUF `tokenizer.chat_template` rendered over a conversation into the
//! prompt text the model was trained on.
//!
//! Chat templates are Jinja2 programs written for Hugging Face's `apply_chat_template`,
//! which runs them with Python's jinja2. [`ChatTemplate`] runs them with
//! [minijinja](https://docs.rs/minijinja) set up to give the same text byte for byte: the
//! same whitespace rules (`trim_blocks`, `lstrip_blocks`), loop controls, the globals
//! `raise_exception` and `strftime_now`, a `tojson` filter that writes what Python's
//! `json.dumps` writes, values printed as Python prints them (`None`, `True`, `['a']`), and
//! Python's string and dict methods (`strip`, `split`, `startswith`, `items`, `get`, ...).
//! The test `chat_template` checks this against jinja2 on the real models' templates and
//! on every template of llama.cpp's `models/templates/`.
//!
//! ```
//! use ziglama_model::chat::{ChatTemplate, Message};
//! let template = ChatTemplate::new(
//!     "{{ bos_token }}{% for m in messages %}<|{{ m.role }}|>{{ m.content | trim }}\n{% endfor %}\
//!      {% if add_generation_prompt %}<|assistant|>{% endif %}",
//! )?
//! .with_special_tokens("<s>", "</s>");
//! let messages = [Message::system("You are helpful."), Message::user("  Hi!  ")];
//! assert_eq!(
//!     template.render(&messages, true)?,
//!     "<s><|system|>You are helpful.\n<|user|>Hi!\n<|assistant|>"
//! );
//! # Ok::<(), ziglama_model::chat::ChatError>(())
//! ```
//!
//! Templates are untrusted input: a syntax error, an error while rendering (including a
//! template refusing a conversation with `raise_exception`) and a template that would run
//! or print without end all return a [`ChatError`] (see [`Limits`]).
//!
//! ## Dependencies
//!
//! - `minijinja`: the Jinja2 engine (the most complete one in Rust: loop controls,
//!   namespaces, macros, fuel and recursion limits for untrusted templates).
//! - `minijinja-contrib` (`pycompat`): Python's string and dict methods.
//! - `serde_json`: JSON text (tools, tool calls, extra variables) parsed into template
//!   values with the order of object keys kept.

mod clock;
mod concat;
mod environment;
mod error;
mod expr;
mod filters;
mod json;
mod limits;
mod markup;
mod message;
mod methods;
mod python;
mod source;
mod template;

pub use clock::{Clock, DateTime};
pub use error::{ChatError, Result};
pub use json::parse_json;
pub use limits::Limits;
pub use message::Message;
pub use minijinja::Value;
pub use template::{ChatTemplate, CHAT_TEMPLATE_KEY};
