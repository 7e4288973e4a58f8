//! Prefix reuse: a new sequence whose prompt starts with tokens another sequence already
//! holds takes their keys and values instead of recomputing them (llama.cpp server's prompt
//! cache).

use ziglama_nn::{KvCache, NnError};

/// Makes sequence `to` hold the longest common prefix of `cached` (the tokens sequence
/// `from` holds at positions `0..`) and `prompt`, by a fork of `from` trimmed to that
/// prefix, and returns its length: the caller runs `prompt[n..]` at positions `n..`. At
/// least one token is left to run, so that the run gives logits. With a paged
/// [`super::MultiSequenceKvCache`] the prefix is shared, not copied.
///
/// ```
/// use ziglama_model::model::{reuse_prefix, ContiguousKvCache};
/// use ziglama_nn::KvCache;
/// let mut cache = ContiguousKvCache::new(1, 2, 16, 2);
/// let cached = [5u32, 6, 7, 8];
/// for pos in 0..4 {
///     cache.store(0, 0, pos, &[pos as f32; 2], &[0.0; 2])?;
/// }
/// let n = reuse_prefix(&mut cache, &cached, 0, 1, &[5, 6, 7, 9, 10])?;
/// assert_eq!(n, 3); // run [9, 10] at positions 3 and 4
/// assert_eq!(cache.seq_len(1), 3);
/// assert_eq!(reuse_prefix(&mut cache, &cached, 0, 1, &[5, 6])?, 1); // one token left to run
/// # Ok::<(), ziglama_nn::NnError>(())
/// ```
///
/// A sliding-window layer cannot go back: when `from` is longer than the window and the
/// common prefix ends before its last window, the positions the prompt's next token reads
/// have been evicted. Then `to` is left empty and the error is
/// [`NnError::PositionEvicted`]: run the prompt from the start. (A prompt that extends the
/// cached tokens, the next turn of a chat, always reuses them.)
///
/// # Errors
///
/// A sequence the cache does not have, a full cache, or [`NnError::PositionEvicted`].
pub fn reuse_prefix<C: KvCache + ?Sized>(
    cache: &mut C,
    cached: &[u32],
    from: usize,
    to: usize,
    prompt: &[u32],
) -> Result<usize, NnError> {
    let common = cached
        .iter()
        .zip(prompt)
        .take_while(|(a, b)| a == b)
        .count()
        .min(prompt.len().saturating_sub(1))
        .min(cache.seq_len(from));
    cache.copy_sequence(from, to)?;
    cache.remove_positions(to, common..usize::MAX)?;
    if let Err(e) = cache.check_continuation(to, common) {
        cache.remove_positions(to, 0..usize::MAX)?;
        return Err(e);
    }
    Ok(common)
}
