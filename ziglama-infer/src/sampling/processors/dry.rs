//! DRY, "don't repeat yourself" (p-e-w 2024, text-generation-webui pull request 5677).

use std::collections::{HashMap, VecDeque};

use crate::sampling::{Candidates, LogitProcessor, SamplingError, TokenId};

/// Penalises tokens that would extend a sequence already repeated in the last
/// `penalty_last_n` tokens: a token that would make a repeat of length `L >= allowed_length`
/// loses `multiplier * base^(L - allowed_length)` from its logit (the exponent clamped so the
/// power stays finite in f32). Sequence breakers (token sequences, e.g. newline) cut the
/// search: no repeat is followed across one, and a single-token breaker is never penalised.
/// Disabled when `multiplier = 0`, `base < 1` or `penalty_last_n = 0` (llama.cpp's defaults:
/// 0, 1.75, 2, 64, breakers "\n", ":", "\"", "*").
///
/// Breakers are given as token sequences; turning breaker *strings* into every token sequence
/// that can spell them (llama.cpp does it through the vocabulary) is the caller's job.
#[derive(Clone, Debug)]
pub struct Dry {
    multiplier: f32,
    base: f32,
    allowed_length: usize,
    penalty_last_n: usize,
    /// Head token -> the tails of the breakers that start with it.
    breakers: HashMap<TokenId, Vec<Vec<TokenId>>>,
    last_tokens: VecDeque<TokenId>,
    repeat_count: Vec<usize>,
    max_token_repeat: HashMap<TokenId, usize>,
}

impl Dry {
    /// DRY with the given parameters and breaker token sequences (empty sequences are skipped).
    ///
    /// # Errors
    /// A non-finite `multiplier` or `base`.
    pub fn new(
        multiplier: f32,
        base: f32,
        allowed_length: usize,
        penalty_last_n: usize,
        breakers: impl IntoIterator<Item = Vec<TokenId>>,
    ) -> Result<Self, SamplingError> {
        for (name, v) in [("multiplier", multiplier), ("base", base)] {
            if !v.is_finite() {
                return Err(SamplingError::param("dry", name, v, "finite values"));
            }
        }
        let mut map: HashMap<TokenId, Vec<Vec<TokenId>>> = HashMap::new();
        for b in breakers {
            if let Some((&head, tail)) = b.split_first() {
                map.entry(head).or_default().push(tail.to_vec());
            }
        }
        Ok(Self {
            multiplier,
            base,
            allowed_length,
            penalty_last_n,
            breakers: map,
            last_tokens: VecDeque::new(),
            repeat_count: Vec::new(),
            max_token_repeat: HashMap::new(),
        })
    }

    fn enabled(&self) -> bool {
        self.multiplier != 0.0 && self.base >= 1.0 && self.penalty_last_n != 0
    }

    /// The `i`-th most recent token (0 = the last one).
    fn rat(&self, i: usize) -> TokenId {
        self.last_tokens[self.last_tokens.len() - 1 - i]
    }
}

impl LogitProcessor for Dry {
    fn name(&self) -> &str {
        "dry"
    }
    fn is_identity(&self) -> bool {
        !self.enabled() || self.last_tokens.len().min(self.penalty_last_n) <= self.allowed_length
    }

    fn apply(&mut self, c: &mut Candidates) -> Result<(), SamplingError> {
        if !self.enabled() {
            return Ok(());
        }
        let n = self.last_tokens.len().min(self.penalty_last_n);
        if n <= self.allowed_length {
            return Ok(());
        }
        // 1. The nearest breaker limits how far back a repeat may reach.
        let mut rep_limit = n;
        for i in 0..n {
            let Some(tails) = self.breakers.get(&self.rat(i)) else {
                continue;
            };
            let mut longest: Option<usize> = None;
            for tail in tails {
                let len = tail.len();
                if longest.is_none_or(|l| len > l)
                    && len <= i
                    && (0..len).all(|o| tail[o] == self.rat(i - o - 1))
                {
                    longest = Some(len);
                }
            }
            if let Some(l) = longest {
                rep_limit = i - l;
                break;
            }
        }
        if rep_limit < self.allowed_length {
            return Ok(());
        }
        // 2. Z-algorithm over the reversed window: repeat_count[last - k] is the length of
        // the longest suffix of the context that also ends k tokens earlier.
        self.repeat_count.clear();
        self.repeat_count.resize(n, 0);
        let last = n - 1;
        let (mut lt, mut rt) = (0usize, 0usize);
        for k in 1..n {
            if k > rt {
                let mut m = 0;
                while m + k < n && self.rat(m) == self.rat(m + k) {
                    m += 1;
                }
                self.repeat_count[last - k] = m.min(rep_limit);
                if m > 0 {
                    lt = k;
                    rt = k + m - 1;
                }
            } else {
                let p = k - lt;
                let right_part_len = rt - k + 1;
                if self.repeat_count[last - p] < right_part_len {
                    self.repeat_count[last - k] = self.repeat_count[last - p].min(rep_limit);
                } else {
                    let mut i = rt + 1;
                    while i < n && self.rat(i) == self.rat(i - k) {
                        i += 1;
                    }
                    self.repeat_count[last - k] = (i - k).min(rep_limit);
                    lt = k;
                    rt = i - 1;
                }
            }
        }
        // 3. The token after each repeat would extend it: remember the longest per token.
        self.max_token_repeat.clear();
        for i in 0..n - 1 {
            let len = self.repeat_count[i];
            if len >= self.allowed_length {
                let token = self.rat(n - 2 - i);
                let e = self.max_token_repeat.entry(token).or_insert(len);
                *e = (*e).max(len);
            }
        }
        if self.max_token_repeat.is_empty() {
            return Ok(());
        }
        // 4. Penalise, the exponent clamped so base^exponent stays finite.
        const FLOAT_MAX_LOG: f32 = 88.722_84;
        let max_exponent = if self.base > 1.000_001 {
            (FLOAT_MAX_LOG / self.base.ln()) as i64
        } else {
            0
        };
        let mut penalties: Vec<(TokenId, f32)> = Vec::with_capacity(self.max_token_repeat.len());
        for (&token, &len) in &self.max_token_repeat {
            let single_token_breaker = self
                .breakers
                .get(&token)
                .is_some_and(|tails| tails.iter().any(Vec::is_empty));
            if single_token_breaker {
                continue;
            }
            let mut e = len as i64 - self.allowed_length as i64;
            if max_exponent > 0 && e > max_exponent {
                e = max_exponent;
            }
            // f32 * pow(f64, f64), rounded to f32, as in llama.cpp.
            let penalty = (f64::from(self.multiplier) * f64::from(self.base).powf(e as f64)) as f32;
            penalties.push((token, penalty));
        }
        // Candidates still in vocabulary order are found by index, the others by one scan.
        penalties.retain(|&(token, penalty)| match c.data.get_mut(token as usize) {
            Some(x) if x.id == token => {
                x.logit -= penalty;
                false
            }
            _ => true,
        });
        if !penalties.is_empty() {
            for x in &mut c.data {
                if let Some(&(_, penalty)) = penalties.iter().find(|(t, _)| *t == x.id) {
                    x.logit -= penalty;
                }
            }
        }
        c.sorted = false;
        c.normalized = false;
        Ok(())
    }

    fn accept(&mut self, token: TokenId) {
        if !self.enabled() {
            return;
        }
        if self.last_tokens.len() == self.penalty_last_n {
            self.last_tokens.pop_front();
        }
        self.last_tokens.push_back(token);
    }

    fn reset(&mut self) {
        self.last_tokens.clear();
        self.repeat_count.clear();
        self.max_token_repeat.clear();
    }
}
