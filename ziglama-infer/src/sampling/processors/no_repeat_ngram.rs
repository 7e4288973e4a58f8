//! No-repeat-n-gram blocking (Paulus, Xiong and Socher 2018, "A Deep Reinforced Model for
//! Abstractive Summarization"; Hugging Face's `no_repeat_ngram_size`).

use crate::sampling::{Candidates, LogitProcessor, SamplingError, TokenId};

/// Forbids (sets to `-inf`) every token that would complete an `n`-gram already present in the
/// accepted tokens: after the last `n - 1` tokens, any token that followed the same `n - 1`
/// tokens before is banned. `n = 0` disables it; `n = 1` bans every token seen.
///
/// ```
/// use ziglama_infer::sampling::{Candidates, LogitProcessor, NoRepeatNgram};
/// let mut ng = NoRepeatNgram::new(2);
/// for t in [1, 2, 3, 1] { ng.accept(t); } // "1 2" was seen; after "1", 2 is banned
/// let mut c = Candidates::from_logits(&[0.0; 4])?;
/// ng.apply(&mut c)?;
/// assert_eq!(c.as_slice()[2].logit, f32::NEG_INFINITY);
/// assert_eq!(c.as_slice()[3].logit, 0.0);
/// # Ok::<(), ziglama_infer::sampling::SamplingError>(())
/// ```
#[derive(Clone, Debug)]
pub struct NoRepeatNgram {
    n: usize,
    history: Vec<TokenId>,
    banned: Vec<TokenId>,
}

impl NoRepeatNgram {
    /// Blocks repeated `n`-grams.
    pub fn new(n: usize) -> Self {
        Self {
            n,
            history: Vec::new(),
            banned: Vec::new(),
        }
    }
}

impl LogitProcessor for NoRepeatNgram {
    fn name(&self) -> &str {
        "no-repeat-ngram"
    }
    fn apply(&mut self, c: &mut Candidates) -> Result<(), SamplingError> {
        let n = self.n;
        let h = &self.history;
        if n == 0 || h.len() < n - 1 {
            return Ok(());
        }
        let prefix = &h[h.len() + 1 - n..];
        self.banned.clear();
        for start in 0..(h.len() + 1).saturating_sub(n) {
            if &h[start..start + n - 1] == prefix {
                self.banned.push(h[start + n - 1]);
            }
        }
        if self.banned.is_empty() {
            return Ok(());
        }
        for x in &mut c.data {
            if self.banned.contains(&x.id) {
                x.logit = f32::NEG_INFINITY;
            }
        }
        c.sorted = false;
        c.normalized = false;
        Ok(())
    }
    fn accept(&mut self, token: TokenId) {
        if self.n > 0 {
            self.history.push(token);
        }
    }
    fn reset(&mut self) {
        self.history.clear();
    }
}
