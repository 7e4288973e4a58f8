//! Running a token source to a stop, delivering its text by callback or to a consumer
//! thread.

use std::convert::Infallible;
use std::fmt;
use std::ops::ControlFlow;

use ziglama_model::tokenizer::Tokenizer;

use super::{Chunks, FlushPolicy, IncrementalDecoder, Producer, StopReason, StopRules, TextStream};

/// Where generated tokens come from: a model and its sampler (what a text generator
/// supplies), or a recorded sequence.
///
/// Closures `FnMut() -> Result<Option<u32>, E>` are token sources.
pub trait TokenSource {
    /// Why a token could not be produced.
    type Error;

    /// The next token; `Ok(None)` when the source cannot produce another (its context
    /// window is full, or a recorded sequence has ended), which stops the generation with
    /// [`StopReason::ContextFull`].
    ///
    /// # Errors
    ///
    /// Whatever the source fails with (a forward pass that fails, ...).
    fn next_token(&mut self) -> Result<Option<u32>, Self::Error>;
}

impl<F, E> TokenSource for F
where
    F: FnMut() -> Result<Option<u32>, E>,
{
    type Error = E;
    fn next_token(&mut self) -> Result<Option<u32>, E> {
        self()
    }
}

/// A recorded token sequence as a [`TokenSource`] that never fails.
///
/// ```
/// use ziglama_infer::stream::{RecordedTokens, TokenSource};
/// let mut source = RecordedTokens::new(vec![5, 6]);
/// assert_eq!(source.next_token(), Ok(Some(5)));
/// assert_eq!(source.next_token(), Ok(Some(6)));
/// assert_eq!(source.next_token(), Ok(None));
/// ```
#[derive(Clone, Debug, Default)]
pub struct RecordedTokens {
    tokens: std::vec::IntoIter<u32>,
}

impl RecordedTokens {
    /// A source yielding `tokens` in order, then nothing.
    pub fn new(tokens: Vec<u32>) -> RecordedTokens {
        RecordedTokens {
            tokens: tokens.into_iter(),
        }
    }
}

impl TokenSource for RecordedTokens {
    type Error = Infallible;
    fn next_token(&mut self) -> Result<Option<u32>, Infallible> {
        Ok(self.tokens.next())
    }
}

/// What a finished generation made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generated {
    /// The text: every chunk delivered, concatenated. It ends before a stop string and
    /// leaves out end-of-generation and stop tokens.
    pub text: String,
    /// The tokens whose text was taken (the one that completed a stop string included; an
    /// end-of-generation or stop token not).
    pub tokens: Vec<u32>,
    /// Why it stopped.
    pub stop_reason: StopReason,
}

/// Runs a [`TokenSource`] under [`StopRules`], turning its tokens into text chunks with a
/// [`TextStream`] and delivering them to a callback ([`run`](Self::run)), as an iterator
/// in the caller's thread ([`chunks`](Self::chunks)), or to a consumer thread through a
/// [`Producer`] ([`run_into`](Self::run_into)).
///
/// However the text is delivered, the chunks concatenate to [`Generated::text`], which is
/// what the same tokens give without streaming ([`generate`](Self::generate)). After any
/// stop (a cancellation included) the text still held back, by the flush policy or as a
/// possible start of a stop string, is delivered in one last chunk.
///
/// ```
/// use std::ops::ControlFlow;
/// use ziglama_infer::stream::{FlushPolicy, RecordedTokens, StopReason, StopRules, StreamingGenerator};
///
/// // A stand-in tokenizer-free run: pieces are bytes of token ids < 256 (see `with_pieces`).
/// let pieces = |id: u32| vec![id as u8];
/// let generator = StreamingGenerator::with_pieces(pieces, StopRules::new().with_stop_strings(["!"]))
///     .with_flush_policy(FlushPolicy::WordBoundary);
/// let tokens: Vec<u32> = "Hi there you! ignored".bytes().map(u32::from).collect();
///
/// let mut chunks = Vec::new();
/// let done = generator
///     .run(RecordedTokens::new(tokens.clone()), |chunk| {
///         chunks.push(chunk.to_string());
///         ControlFlow::Continue(())
///     })
///     .unwrap();
/// assert_eq!(chunks, ["Hi ", "there ", "you"]);
/// assert_eq!(done.text, "Hi there you");
/// assert_eq!(done.stop_reason, StopReason::StopString(0));
/// assert_eq!(generator.generate(RecordedTokens::new(tokens)).unwrap(), done);
/// ```
pub struct StreamingGenerator<'t> {
    pieces: Pieces<'t>,
    rules: StopRules,
    policy: FlushPolicy,
    decoder: IncrementalDecoder,
}

/// How token ids become text.
enum Pieces<'t> {
    Tokenizer(&'t Tokenizer),
    Custom(Box<dyn Fn(u32) -> Vec<u8> + Send + Sync + 't>),
}

impl fmt::Debug for StreamingGenerator<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamingGenerator")
            .field("rules", &self.rules)
            .field("policy", &self.policy)
            .field("decoder", &self.decoder)
            .finish_non_exhaustive()
    }
}

impl<'t> StreamingGenerator<'t> {
    /// A generator decoding with `tokenizer` (special tokens rendered, as
    /// [`Tokenizer::decode`] does), delivering after every token.
    pub fn new(tokenizer: &'t Tokenizer, rules: StopRules) -> StreamingGenerator<'t> {
        StreamingGenerator {
            pieces: Pieces::Tokenizer(tokenizer),
            rules,
            policy: FlushPolicy::EveryToken,
            decoder: IncrementalDecoder::new(),
        }
    }

    /// A generator without a tokenizer: `pieces` gives each token's bytes, and no token is
    /// an end-of-generation token (only the caller's stop tokens stop it). For tests and
    /// for vocabularies ziglama does not build.
    pub fn with_pieces(
        pieces: impl Fn(u32) -> Vec<u8> + Send + Sync + 't,
        rules: StopRules,
    ) -> StreamingGenerator<'t> {
        StreamingGenerator {
            pieces: Pieces::Custom(Box::new(pieces)),
            rules,
            policy: FlushPolicy::EveryToken,
            decoder: IncrementalDecoder::new(),
        }
    }

    /// Sets where the text is cut into chunks.
    pub fn with_flush_policy(mut self, policy: FlushPolicy) -> StreamingGenerator<'t> {
        self.policy = policy;
        self
    }

    /// Sets the decoder (to hide special tokens, for instance).
    pub fn with_decoder(mut self, decoder: IncrementalDecoder) -> StreamingGenerator<'t> {
        self.decoder = decoder;
        self
    }

    /// The stop rules.
    pub fn rules(&self) -> &StopRules {
        &self.rules
    }

    /// Runs `source` to a stop without streaming.
    ///
    /// # Errors
    ///
    /// The source's error.
    pub fn generate<S: TokenSource>(&self, source: S) -> Result<Generated, S::Error> {
        self.run(source, |_| ControlFlow::Continue(()))
    }

    /// Runs `source` to a stop, handing each chunk to `on_chunk`; the callback returning
    /// [`ControlFlow::Break`] cancels the generation ([`StopReason::Cancelled`]).
    ///
    /// # Errors
    ///
    /// The source's error; the chunks delivered before it stay delivered.
    pub fn run<S, F>(&self, source: S, mut on_chunk: F) -> Result<Generated, S::Error>
    where
        S: TokenSource,
        F: FnMut(&str) -> ControlFlow<()>,
    {
        let mut chunks = self.chunks(source);
        while let Some(chunk) = chunks.next() {
            if on_chunk(&chunk?).is_break() {
                if let Some(last) = chunks.cancel() {
                    // The generation is over; whether the callback wants more changes nothing.
                    let _ = on_chunk(&last);
                }
            }
        }
        Ok(chunks.into_generated())
    }

    /// The generation as an iterator of chunks, run lazily in the caller's thread: each
    /// `next` asks `source` for tokens until a chunk is complete. Dropping the iterator
    /// stops the generation.
    ///
    /// ```
    /// use ziglama_infer::stream::{FlushPolicy, RecordedTokens, StopReason, StopRules, StreamingGenerator};
    ///
    /// let generator = StreamingGenerator::with_pieces(|id| vec![id as u8], StopRules::new())
    ///     .with_flush_policy(FlushPolicy::SentenceBoundary);
    /// let tokens: Vec<u32> = "One. Two! Three".bytes().map(u32::from).collect();
    /// let mut chunks = generator.chunks(RecordedTokens::new(tokens));
    /// let sentences: Vec<String> = chunks.by_ref().map(Result::unwrap).collect();
    /// assert_eq!(sentences, ["One. ", "Two! ", "Three"]);
    /// assert_eq!(chunks.into_generated().stop_reason, StopReason::ContextFull);
    /// ```
    pub fn chunks<S: TokenSource>(&self, source: S) -> Chunks<'_, 't, S> {
        Chunks::new(self, source)
    }

    /// A fresh text pipeline for one generation.
    pub(super) fn text_stream(&self) -> TextStream {
        TextStream::new(self.policy)
            .with_stop_strings(self.rules.stop_strings().iter().cloned())
            .with_decoder(self.decoder.clone())
    }

    /// Whether token `id` ends the generation before its text is taken.
    pub(super) fn token_stop(&self, id: u32) -> Option<StopReason> {
        match &self.pieces {
            Pieces::Tokenizer(tok) => self.rules.check_token(tok, id),
            Pieces::Custom(_) => self
                .rules
                .stop_tokens()
                .contains(&id)
                .then_some(StopReason::StopToken(id)),
        }
    }

    /// Pushes token `id`'s piece into `stream`.
    pub(super) fn push_token(&self, stream: &mut TextStream, id: u32) -> Option<String> {
        match &self.pieces {
            Pieces::Tokenizer(tok) => stream.push_token(tok, id),
            Pieces::Custom(pieces) => stream.push_bytes(&pieces(id)),
        }
    }

    /// Runs `source` to a stop, pushing each chunk into `producer` (backpressure: a full
    /// buffer pauses the generation) and finishing the stream with the stop reason, or as
    /// failed with the source's error. The consumer closing the stream cancels the
    /// generation.
    ///
    /// ```
    /// use ziglama_infer::stream::{FlushPolicy, RecordedTokens, StopRules, StreamingGenerator, TokenBuffer};
    ///
    /// let generator = StreamingGenerator::with_pieces(|id| vec![id as u8], StopRules::new())
    ///     .with_flush_policy(FlushPolicy::Newline);
    /// let tokens: Vec<u32> = "one\ntwo\nthree".bytes().map(u32::from).collect();
    /// let (producer, consumer) = TokenBuffer::bounded(1);
    /// let done = std::thread::scope(|s| {
    ///     let worker = s.spawn(|| generator.run_into(RecordedTokens::new(tokens), producer));
    ///     let lines: Vec<String> = consumer.iter().collect();
    ///     assert_eq!(lines, ["one\n", "two\n", "three"]);
    ///     worker.join().unwrap()
    /// })
    /// .unwrap();
    /// assert_eq!(done.text, "one\ntwo\nthree");
    /// ```
    ///
    /// # Errors
    ///
    /// The source's error (the stream then ends as [`Failed`](super::StreamStatus::Failed)
    /// with its message).
    pub fn run_into<S>(&self, source: S, producer: Producer<String>) -> Result<Generated, S::Error>
    where
        S: TokenSource,
        S::Error: fmt::Display,
    {
        let result = self.run(source, |chunk| match producer.push(chunk.to_string()) {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        });
        match &result {
            Ok(done) => producer.finish(done.stop_reason),
            Err(e) => producer.fail(e.to_string()),
        }
        result
    }
}
