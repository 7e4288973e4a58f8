//! The text pipeline of a generation: tokens in, chunks of finished text out.

use ziglama_model::tokenizer::Tokenizer;

use super::{ChunkAssembler, FlushPolicy, IncrementalDecoder, StopStringMatch, StopStrings};

/// Turns generated tokens into chunks of text: decodes them UTF-8-safely
/// ([`IncrementalDecoder`]), cuts the text before the first stop string ([`StopStrings`])
/// and hands it over at the breaks of a [`FlushPolicy`] ([`ChunkAssembler`]).
///
/// The chunks returned by [`push_token`](Self::push_token) and
/// [`finish`](Self::finish) concatenate to [`FinishedText::text`], whatever the policy:
/// the decoded text of all tokens pushed, ending before the first stop string. No chunk
/// holds part of a stop string or part of a character.
///
/// ```
/// use ziglama_infer::stream::{FlushPolicy, TextStream};
///
/// let mut stream = TextStream::new(FlushPolicy::WordBoundary).with_stop_strings(["\nUser:"]);
/// let mut chunks = Vec::new();
/// for piece in ["Hel", "lo the", "re!\n", "Us", "er: ignored"] {
///     chunks.extend(stream.push_bytes(piece.as_bytes()));
///     if stream.stop_string().is_some() {
///         break;
///     }
/// }
/// let done = stream.finish();
/// chunks.extend(done.last_chunk);
/// assert_eq!(chunks, ["Hello ", "there!"]);
/// assert_eq!(done.text, "Hello there!");
/// assert_eq!(done.stop_string.map(|m| m.index), Some(0));
/// ```
#[derive(Clone, Debug, Default)]
pub struct TextStream {
    decoder: IncrementalDecoder,
    stops: StopStrings,
    assembler: ChunkAssembler,
    /// Everything past the stop-string matcher: the final text so far.
    text: String,
}

/// What a [`TextStream`] hands over at its end.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FinishedText {
    /// The last chunk, if text was still pending.
    pub last_chunk: Option<String>,
    /// The whole text: every chunk concatenated.
    pub text: String,
    /// The stop string that ended the text, if one did.
    pub stop_string: Option<StopStringMatch>,
}

impl TextStream {
    /// A stream applying `policy`, with no stop strings and a default [`IncrementalDecoder`].
    pub fn new(policy: FlushPolicy) -> TextStream {
        TextStream {
            decoder: IncrementalDecoder::new(),
            stops: StopStrings::default(),
            assembler: ChunkAssembler::new(policy),
            text: String::new(),
        }
    }

    /// Sets the stop strings (empty ones are ignored).
    pub fn with_stop_strings<I, S>(mut self, stops: I) -> TextStream
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.stops = StopStrings::new(stops);
        self
    }

    /// Sets the decoder (to hide special tokens, or strip a leading space).
    pub fn with_decoder(mut self, decoder: IncrementalDecoder) -> TextStream {
        self.decoder = decoder;
        self
    }

    /// Pushes a generated token; returns the chunk it completes, if any.
    ///
    /// Once a stop string has matched ([`stop_string`](Self::stop_string)), tokens are
    /// ignored.
    pub fn push_token(&mut self, tokenizer: &Tokenizer, id: u32) -> Option<String> {
        if self.stops.matched().is_some() {
            return None;
        }
        let text = self.decoder.push_token(tokenizer, id);
        Self::pass(&mut self.stops, &mut self.assembler, &mut self.text, text)
    }

    /// Pushes a token's piece as raw bytes; returns the chunk it completes, if any.
    pub fn push_bytes(&mut self, piece: &[u8]) -> Option<String> {
        if self.stops.matched().is_some() {
            return None;
        }
        let text = self.decoder.push_bytes(piece);
        Self::pass(&mut self.stops, &mut self.assembler, &mut self.text, text)
    }

    /// Runs decoded text through the stop-string matcher and the assembler.
    fn pass(
        stops: &mut StopStrings,
        assembler: &mut ChunkAssembler,
        all: &mut String,
        decoded: &str,
    ) -> Option<String> {
        if decoded.is_empty() {
            return None;
        }
        let released = stops.push(decoded);
        all.push_str(released);
        let chunk = assembler.push(released);
        if stops.matched().is_none() {
            return chunk;
        }
        // The text is complete: hand over everything.
        match (chunk, assembler.finish()) {
            (Some(mut a), Some(b)) => {
                a.push_str(&b);
                Some(a)
            }
            (a, b) => a.or(b),
        }
    }

    /// The stop string that ended the text, once one has.
    pub fn stop_string(&self) -> Option<StopStringMatch> {
        self.stops.matched()
    }

    /// The final text so far: everything decoded that is known to come before any stop
    /// string (including text the flush policy has not handed over yet).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Ends the stream: flushes the decoder (an unfinished character becomes U+FFFD, as in
    /// the lossy decode of the whole), the stop-string matcher and the assembler.
    pub fn finish(mut self) -> FinishedText {
        let mut last = None;
        if self.stops.matched().is_none() {
            let tail = self.decoder.finish();
            let mut released = self.stops.push(tail).to_string();
            if self.stops.matched().is_none() {
                released.push_str(self.stops.finish());
            }
            self.text.push_str(&released);
            last = self.assembler.push(&released);
        }
        let last_chunk = match (last, self.assembler.finish()) {
            (Some(mut a), Some(b)) => {
                a.push_str(&b);
                Some(a)
            }
            (a, b) => a.or(b),
        };
        FinishedText {
            last_chunk,
            text: self.text,
            stop_string: self.stops.matched(),
        }
    }
}
