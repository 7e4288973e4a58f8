//! Running a token source to a stop, delivering its text by callback or to a consumer
//! thread.

use std::convert::Infallible;
use std::fmt;
use std::ops::ControlFlow;

use ziglama_model::tokenizer::Tokenizer;

use super::{FlushPolicy, IncrementalDecoder, Producer, StopReason, StopRules, TextStream};

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
/// [`TextStream`] and delivering them to a callback ([`run`](Self::run)) or to a consumer
/// thread through a [`Producer`] ([`run_into`](Self::run_into)).
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
    pub fn run<S, F>(&self, mut source: S, mut on_chunk: F) -> Result<Generated, S::Error>
    where
        S: TokenSource,
        F: FnMut(&str) -> ControlFlow<()>,
    {
        let mut stream = TextStream::new(self.policy)
            .with_stop_strings(self.rules.stop_strings().iter().cloned())
            .with_decoder(self.decoder.clone());
        let mut tokens = Vec::new();
        let stop_reason = loop {
            if let Some(reason) = self.rules.check_before_next(tokens.len()) {
                break reason;
            }
            let Some(id) = source.next_token()? else {
                break StopReason::ContextFull;
            };
            let token_stop = match &self.pieces {
                Pieces::Tokenizer(tok) => self.rules.check_token(tok, id),
                Pieces::Custom(_) => self
                    .rules
                    .stop_tokens()
                    .contains(&id)
                    .then_some(StopReason::StopToken(id)),
            };
            if let Some(reason) = token_stop {
                break reason;
            }
            tokens.push(id);
            let chunk = match &self.pieces {
                Pieces::Tokenizer(tok) => stream.push_token(tok, id),
                Pieces::Custom(pieces) => stream.push_bytes(&pieces(id)),
            };
            let flow = chunk.map_or(ControlFlow::Continue(()), |c| on_chunk(&c));
            if let Some(m) = stream.stop_string() {
                break StopReason::StopString(m.index);
            }
            if flow.is_break() {
                break StopReason::Cancelled;
            }
        };
        let done = stream.finish();
        if let Some(chunk) = done.last_chunk {
            // The generation is over; whether the callback wants more changes nothing.
            let _ = on_chunk(&chunk);
        }
        Ok(Generated {
            text: done.text,
            tokens,
            stop_reason,
        })
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
