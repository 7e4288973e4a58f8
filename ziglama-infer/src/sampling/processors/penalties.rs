//! Repetition (Keskar et al. 2019, "CTRL"), frequency and presence penalties (OpenAI's API)
//! over the last `n` accepted tokens.

use std::collections::{HashMap, VecDeque};

use crate::sampling::{Candidates, LogitProcessor, SamplingError, TokenId};

/// For each candidate seen `count > 0` times among the last `last_n` accepted tokens: divides a
/// positive logit by `repeat` (multiplies a non-positive one, CTRL's fix for negative logits),
/// then subtracts `count * frequency + presence`. Disabled when `last_n = 0` or
/// `repeat = 1, frequency = 0, presence = 0` (llama.cpp's defaults: 64, 1, 0, 0).
///
/// ```
/// use ziglama_infer::sampling::{Candidates, LogitProcessor, Penalties};
/// let mut pen = Penalties::new(64, 2.0, 0.5, 0.25)?;
/// pen.accept(1);
/// pen.accept(1);
/// let mut c = Candidates::from_logits(&[1.0, 4.0, -1.0])?;
/// pen.apply(&mut c)?;
/// assert_eq!(c.as_slice()[1].logit, 4.0 / 2.0 - 2.0 * 0.5 - 0.25);
/// # Ok::<(), ziglama_infer::sampling::SamplingError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Penalties {
    last_n: usize,
    repeat: f32,
    frequency: f32,
    presence: f32,
    prev: VecDeque<TokenId>,
    counts: HashMap<TokenId, u32>,
    to_search: Vec<(TokenId, u32)>,
}

impl Penalties {
    /// Penalties over the last `last_n` tokens.
    ///
    /// # Errors
    /// A non-finite penalty.
    pub fn new(
        last_n: usize,
        repeat: f32,
        frequency: f32,
        presence: f32,
    ) -> Result<Self, SamplingError> {
        for (name, v) in [
            ("repeat", repeat),
            ("frequency", frequency),
            ("presence", presence),
        ] {
            if !v.is_finite() {
                return Err(SamplingError::param("penalties", name, v, "finite values"));
            }
        }
        Ok(Self {
            last_n,
            repeat,
            frequency,
            presence,
            prev: VecDeque::with_capacity(last_n),
            counts: HashMap::new(),
            to_search: Vec::new(),
        })
    }

    fn disabled(&self) -> bool {
        self.last_n == 0 || (self.repeat == 1.0 && self.frequency == 0.0 && self.presence == 0.0)
    }

    /// How often `token` occurs in the window.
    pub fn count(&self, token: TokenId) -> u32 {
        self.counts.get(&token).copied().unwrap_or(0)
    }

    fn penalise(&self, logit: &mut f32, count: u32) {
        if *logit <= 0.0 {
            *logit *= self.repeat;
        } else {
            *logit /= self.repeat;
        }
        *logit -= count as f32 * self.frequency + self.presence;
    }
}

impl LogitProcessor for Penalties {
    fn name(&self) -> &str {
        "penalties"
    }
    fn is_identity(&self) -> bool {
        self.disabled() || self.counts.is_empty()
    }
    fn apply(&mut self, c: &mut Candidates) -> Result<(), SamplingError> {
        if self.disabled() || self.counts.is_empty() {
            return Ok(());
        }
        // Candidates still in vocabulary order are found by index; the others by one scan.
        self.to_search.clear();
        for (&token, &count) in &self.counts {
            match c.data.get_mut(token as usize) {
                Some(x) if x.id == token => {
                    let mut l = x.logit;
                    self.penalise(&mut l, count);
                    x.logit = l;
                }
                _ => self.to_search.push((token, count)),
            }
        }
        if !self.to_search.is_empty() {
            for i in 0..c.data.len() {
                let id = c.data[i].id;
                if let Some(&(_, count)) = self.to_search.iter().find(|(t, _)| *t == id) {
                    let mut l = c.data[i].logit;
                    self.penalise(&mut l, count);
                    c.data[i].logit = l;
                }
            }
        }
        c.sorted = false;
        c.normalized = false;
        Ok(())
    }
    fn accept(&mut self, token: TokenId) {
        if self.last_n == 0 {
            return;
        }
        *self.counts.entry(token).or_insert(0) += 1;
        if self.prev.len() >= self.last_n {
            if let Some(old) = self.prev.pop_front() {
                if let Some(n) = self.counts.get_mut(&old) {
                    *n -= 1;
                    if *n == 0 {
                        self.counts.remove(&old);
                    }
                }
            }
        }
        self.prev.push_back(token);
    }
    fn reset(&mut self) {
        self.prev.clear();
        self.counts.clear();
    }
}
