//! A text generator's generation as an iterator of chunks.

use std::fmt;

use ziglama_model::model::LayeredKvCache;
use ziglama_nn::KvCache;

use crate::stream::{Chunks, StopReason};

use super::source::ModelSource;
use super::text_generator::Finish;
use super::{GenerationError, GenerationResult};

/// The chunks of one generation of a [`TextGenerator`](super::TextGenerator), generated
/// lazily in the caller's thread (made by [`TextGenerator::chunks`](super::TextGenerator::chunks)).
///
/// With echo the prompt's text comes first. A model or sampler error is yielded once and
/// ends the iteration. The chunks concatenate to the result's text.
pub struct GenerationChunks<'g, C: KvCache + Sync = LayeredKvCache> {
    echo: Option<String>,
    chunks: Chunks<'g, 'static, ModelSource<'g, C>>,
    finish: Finish<'g>,
}

impl<'g, C: KvCache + Sync> GenerationChunks<'g, C> {
    pub(super) fn new(
        chunks: Chunks<'g, 'static, ModelSource<'g, C>>,
        finish: Finish<'g>,
    ) -> GenerationChunks<'g, C> {
        GenerationChunks {
            echo: finish.echo.clone(),
            chunks,
            finish,
        }
    }

    /// Stops the generation now ([`StopReason::Cancelled`]) and returns the text it still
    /// held back (the echoed prompt too, if not yielded yet), as the last chunk.
    pub fn cancel(&mut self) -> Option<String> {
        match (self.echo.take(), self.chunks.cancel()) {
            (Some(mut a), Some(b)) => {
                a.push_str(&b);
                Some(a)
            }
            (a, b) => a.or(b),
        }
    }

    /// Why the generation stopped, once it has.
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.chunks.stop_reason()
    }

    /// The tokens generated so far.
    pub fn tokens(&self) -> &[u32] {
        self.chunks.tokens()
    }

    /// The result. A generation still running is cancelled first (its text then includes
    /// what was held back and not yet yielded).
    pub fn into_result(self) -> GenerationResult {
        self.finish.result(self.chunks.into_generated())
    }
}

impl<C: KvCache + Sync> Iterator for GenerationChunks<'_, C> {
    type Item = Result<String, GenerationError>;

    fn next(&mut self) -> Option<Result<String, GenerationError>> {
        if let Some(echo) = self.echo.take() {
            return Some(Ok(echo));
        }
        self.chunks.next()
    }
}

impl<C: KvCache + Sync> fmt::Debug for GenerationChunks<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenerationChunks")
            .field("chunks", &self.chunks)
            .finish_non_exhaustive()
    }
}
