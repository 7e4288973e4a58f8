//! A generation as an iterator of text chunks, pulled in the caller's thread.

use std::fmt;

use super::{Generated, StopReason, StreamingGenerator, TextStream, TokenSource};

/// The chunks of one generation, generated lazily: each [`next`](Iterator::next) asks the
/// token source for tokens until a chunk is complete or the generation stops. Made by
/// [`StreamingGenerator::chunks`].
///
/// The iterator ends after the last chunk. A source error is yielded once, as `Err`, and
/// ends the iteration.
pub struct Chunks<'g, 't, S: TokenSource> {
    generator: &'g StreamingGenerator<'t>,
    source: S,
    /// The text pipeline, until the generation stops.
    stream: Option<TextStream>,
    tokens: Vec<u32>,
    /// The final text, once the generation has stopped.
    text: String,
    stop_reason: Option<StopReason>,
}

impl<'g, 't, S: TokenSource> Chunks<'g, 't, S> {
    /// The chunks of `generator` running `source`.
    pub(super) fn new(generator: &'g StreamingGenerator<'t>, source: S) -> Chunks<'g, 't, S> {
        Chunks {
            generator,
            source,
            stream: Some(generator.text_stream()),
            tokens: Vec::new(),
            text: String::new(),
            stop_reason: None,
        }
    }

    /// Stops the generation now as [`StopReason::Cancelled`] (if it is still running) and
    /// returns the text it still held back, as the last chunk.
    pub fn cancel(&mut self) -> Option<String> {
        self.stop(StopReason::Cancelled)
    }

    /// Why the generation stopped, once it has.
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stop_reason
    }

    /// The tokens taken so far.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// What the generation made. A generation still running is cancelled here (its text
    /// then includes what was held back and not yet yielded), and so is one whose source
    /// failed.
    pub fn into_generated(mut self) -> Generated {
        let _ = self.stop(StopReason::Cancelled);
        Generated {
            text: std::mem::take(&mut self.text),
            tokens: std::mem::take(&mut self.tokens),
            stop_reason: self.stop_reason.unwrap_or(StopReason::Cancelled),
        }
    }

    /// Ends the generation (if running) for `reason`; returns the last chunk.
    fn stop(&mut self, reason: StopReason) -> Option<String> {
        let stream = self.stream.take()?;
        self.stop_reason = Some(reason);
        let done = stream.finish();
        self.text = done.text;
        done.last_chunk
    }
}

impl<S: TokenSource> Iterator for Chunks<'_, '_, S> {
    type Item = Result<String, S::Error>;

    fn next(&mut self) -> Option<Result<String, S::Error>> {
        loop {
            let stream = self.stream.as_mut()?;
            if let Some(reason) = self.generator.rules().check_before_next(self.tokens.len()) {
                return self.stop(reason).map(Ok);
            }
            let id = match self.source.next_token() {
                Ok(Some(id)) => id,
                Ok(None) => return self.stop(StopReason::ContextFull).map(Ok),
                Err(e) => {
                    // The text so far stays available; the stop reason stays unknown.
                    if let Some(stream) = self.stream.take() {
                        self.text = stream.finish().text;
                    }
                    return Some(Err(e));
                }
            };
            if let Some(reason) = self.generator.token_stop(id) {
                return self.stop(reason).map(Ok);
            }
            self.tokens.push(id);
            let chunk = self.generator.push_token(stream, id);
            if let Some(m) = stream.stop_string() {
                let last = self.stop(StopReason::StopString(m.index));
                return match (chunk, last) {
                    (Some(mut a), Some(b)) => {
                        a.push_str(&b);
                        Some(Ok(a))
                    }
                    (a, b) => a.or(b).map(Ok),
                };
            }
            if let Some(chunk) = chunk {
                return Some(Ok(chunk));
            }
        }
    }
}

impl<S: TokenSource> fmt::Debug for Chunks<'_, '_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunks")
            .field("tokens", &self.tokens)
            .field("stop_reason", &self.stop_reason)
            .finish_non_exhaustive()
    }
}
