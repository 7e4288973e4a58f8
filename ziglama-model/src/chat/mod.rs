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
//! The test `chat_template` checks this against jinja2 on SmolLM2's template, on every
//! template of llama.cpp's `models/templates/` and on llama.cpp's ChatML fallback, over 29
//! conversations, and on probes of Python semantics and random expressions.
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
//! ## Where minijinja and jinja2 differ, and what is done about it
//!
//! Most differences are settled by the environment: a formatter, filters (`tojson`,
//! `string`, `join`, `trim`, `indent`, `escape`, and `map`/`select`/`selectattr`/`reject`/
//! `rejectattr` returning one-shot generators as Python's do), tests (`iterable`,
//! `sequence`, `mapping`) and methods. Some operations cannot be configured, so the
//! template text is rewritten before it is compiled (`source.rs`, with a small expression
//! lexer that follows jinja2's precedence, `expr.rs`); the rewrites keep line numbers:
//! - `for x in none` fails in Python: each loop's iterable goes through a guard filter;
//! - `~` prints its operands with Python's `str`: each operand goes through a filter;
//! - `markup + str` escapes the string (markupsafe): in templates that use `safe` or
//!   `escape`, chains of `+` become calls of a function with Python's semantics;
//! - `str % args` is Python's printf-style formatting: `%` becomes a function call;
//! - `-x` negates booleans as Python does: unary minus (on anything but a number literal)
//!   becomes a function call.
//!
//! What remains different (checked by the tests, never met in a real template): ordering
//! comparisons of values Python cannot order (a list and a string, an undefined value)
//! give false instead of an error; `x + not y` does not parse; a `namespace()` lists its
//! attributes in sorted order, not in the order they were set.
//!
//! `{% generation %}` blocks (accepted by transformers' environment) render their body.
//! The variables are those `apply_chat_template` passes, except that only `bos_token` and
//! `eos_token` of the special tokens are set, and `strftime_now` reads UTC, not local time.
//!
//! ## Dependencies
//!
//! - `minijinja`: the Jinja2 engine (the most complete one in Rust: loop controls,
//!   namespaces, macros, fuel and recursion limits for untrusted templates).
//! - `minijinja-contrib` (`pycompat`): Python's string and dict methods.
//! - `serde_json`: JSON text (tools, tool calls, extra variables) parsed into template
//!   values with the order of object keys kept.

mod arithmetic;
mod clock;
mod concat;
mod environment;
mod error;
mod expr;
mod filters;
mod generators;
mod gguf;
mod json;
mod limits;
mod markup;
mod message;
mod methods;
mod numbers;
mod python;
mod source;
mod template;

pub use clock::{Clock, DateTime};
pub use error::{ChatError, Result};
pub use gguf::{CHAT_TEMPLATE_KEY, CHAT_TEMPLATE_TOOL_USE_KEY};
pub use json::parse_json;
pub use limits::Limits;
pub use message::Message;
pub use minijinja::Value;
pub use template::ChatTemplate;
