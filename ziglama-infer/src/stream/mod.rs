//! Delivering generated text: incremental detokenization, stop strings, flush policies and
//! the token buffer that carries a generation to its consumer.
//!
//! The parts, each usable alone, in the order text flows through them:
//!
//! - [`IncrementalDecoder`]: token pieces in, complete UTF-8 characters out; a character
//!   split across tokens is held back until complete, never shown as U+FFFD.
//! - [`StopStrings`]: cuts the text before the first stop string, even one spanning several
//!   tokens, and releases only text that cannot be the start of one.
//! - [`ChunkAssembler`] with a [`FlushPolicy`]: hands text over after every token, or at
//!   word, sentence or line breaks.
//! - [`TextStream`]: the three above as one pipeline, token in, chunks out.
//! - [`TokenBuffer`] ([`Producer`], [`Consumer`]): a bounded queue between a generating
//!   thread and a consuming one, with backpressure, closing from either side and a shared
//!   [`StreamStatus`].
//! - [`StopRules`], [`StopReason`] and [`Cancellation`]: when a generation stops, why it
//!   did; a flag that stops it from another thread.
//! - [`StreamingGenerator`]: runs any [`TokenSource`] (a model and its sampler, a recorded
//!   sequence) under the stop rules, delivering the text by callback, as an iterator
//!   ([`Chunks`]) or, through a [`Producer`], to a consumer that iterates on another
//!   thread.
//!
//! The invariant the parts keep together: for every flush policy, the chunks of a stream
//! concatenate to the text a non-streamed generation returns, byte for byte.
//!
//! ```
//! use ziglama_infer::stream::{FlushPolicy, TextStream};
//!
//! // "😀" (F0 9F 98 80) arrives split over two pieces; "<end>" over three.
//! let pieces: [&[u8]; 6] = [b"Hi \xF0\x9F", b"\x98\x80", b" <e", b"n", b"d>", b"tail"];
//! for policy in FlushPolicy::ALL {
//!     let mut stream = TextStream::new(policy).with_stop_strings(["<end>"]);
//!     let mut streamed = String::new();
//!     for piece in pieces {
//!         if let Some(chunk) = stream.push_bytes(piece) {
//!             assert!(!chunk.contains('\u{FFFD}') && !chunk.contains('<'));
//!             streamed.push_str(&chunk);
//!         }
//!     }
//!     let done = stream.finish();
//!     streamed.extend(done.last_chunk);
//!     assert_eq!(streamed, "Hi 😀 ");
//!     assert_eq!(done.text, streamed);
//! }
//! ```

mod buffer;
mod cancel;
mod chunks;
mod decode;
mod flush;
mod generator;
mod rules;
mod stop;
mod stop_strings;
mod text;

pub use buffer::{Closed, Consumer, Iter, Producer, TokenBuffer};
pub use cancel::Cancellation;
pub use chunks::Chunks;
pub use decode::{IncrementalDecoder, SpecialTokens};
pub use flush::{ChunkAssembler, FlushPolicy};
pub use generator::{Generated, RecordedTokens, StreamingGenerator, TokenSource};
pub use rules::StopRules;
pub use stop::{StopReason, StreamStatus};
pub use stop_strings::{StopStringMatch, StopStrings};
pub use text::{FinishedText, TextStream};
