//! Text generation: [`TextGenerator`] puts a model, its tokenizer, a sampler, a KV cache,
//! stop rules and streaming together.
//!
//! - [`TextGenerator::builder`] ([`TextGeneratorBuilder`]): every part has a default taken
//!   from the model and can be replaced (any [`Sampler`](crate::sampling::Sampler), a
//!   caller's [`State`](ziglama_model::model::State), a shared thread pool, a chat
//!   template, a cancellation flag).
//! - [`GenerationConfig`]: token limits, stop strings and tokens, seed, log-probabilities,
//!   echo, the sampling parameters (presets from [`Preset`](crate::sampling::Preset)), the
//!   flush policy, and [`ContrastiveSearch`].
//! - [`GenerationResult`]: text, tokens, [`StopReason`](crate::stream::StopReason),
//!   log-probabilities ([`TokenLogprobs`]) and [`Timings`].
//! - [`Prompt`]: text, tokens, or a conversation rendered by the chat template.
//!
//! The prompt runs in one batch; each step then decodes one token. The model stepped by its
//! sampler is a [`TokenSource`](crate::stream::TokenSource) run by a
//! [`StreamingGenerator`](crate::stream::StreamingGenerator), so the text is the same
//! whether it is returned whole, streamed to a callback, iterated or pushed into a
//! [`TokenBuffer`](crate::stream::TokenBuffer) for another thread.
//!
//! ```no_run
//! use std::ops::ControlFlow;
//! use ziglama_infer::generator::{GenerationConfig, TextGenerator};
//! use ziglama_infer::model::{catalog::KnownModel, model::Model};
//! use ziglama_infer::sampling::Preset;
//!
//! let model = Model::load(KnownModel::SmolLM2.ensure()?)?;
//! let config = GenerationConfig::preset(Preset::Balanced)
//!     .with_seed(42)
//!     .with_max_tokens(48)
//!     .with_stop_strings(["\n\n"]);
//! let mut generator = TextGenerator::builder(&model).config(config).build()?;
//!
//! let whole = generator.generate("Once upon a time")?;
//! let mut streamed = String::new();
//! let again = generator.stream("Once upon a time", |chunk| {
//!     streamed.push_str(chunk);
//!     ControlFlow::Continue(())
//! })?;
//! assert_eq!(streamed, whole.text);
//! assert_eq!(again.tokens, whole.tokens);
//! println!(
//!     "{} tokens, {:.1} tokens/s, first after {:?}",
//!     whole.tokens.len(),
//!     whole.timings.generated_tokens_per_second().unwrap_or(0.0),
//!     whole.timings.time_to_first_token,
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod builder;
mod chunks;
mod config;
mod contrastive;
mod contrastive_source;
mod error;
mod prompt;
mod result;
mod source;
mod text_generator;

pub use builder::{TextGeneratorBuilder, DEFAULT_CONTEXT_SIZE};
pub use chunks::GenerationChunks;
pub use config::GenerationConfig;
pub use contrastive::{
    contrastive_pick, contrastive_scores, top_k_probabilities, ContrastiveSearch,
};
pub use error::GenerationError;
pub use prompt::Prompt;
pub use result::{GenerationResult, Timings, TokenLogprobs};
pub use text_generator::TextGenerator;
